#![no_main]
//! cargo fuzz run feedback (see fuzz/README.md).

libfuzzer_sys::fuzz_target!(|data: &[u8]| dvt_cds_fuzz::harness::feedback(data));
