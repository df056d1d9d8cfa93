#![no_main]
//! cargo fuzz run hook_request (see fuzz/README.md).

libfuzzer_sys::fuzz_target!(|data: &[u8]| dvt_cds_fuzz::harness::hook_request(data));
