#![no_main]
//! cargo fuzz run typed_resource (see fuzz/README.md).

libfuzzer_sys::fuzz_target!(|data: &[u8]| dvt_cds_fuzz::typed::typed_resource(data));
