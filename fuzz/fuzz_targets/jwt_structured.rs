#![no_main]
//! cargo fuzz run jwt_structured (see fuzz/README.md).

libfuzzer_sys::fuzz_target!(|data: &[u8]| dvt_cds_fuzz::harness::jwt_structured(data));
