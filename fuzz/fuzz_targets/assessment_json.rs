#![no_main]
//! cargo fuzz run assessment_json (see fuzz/README.md).

libfuzzer_sys::fuzz_target!(|data: &[u8]| dvt_cds_fuzz::harness::assessment_json(data));
