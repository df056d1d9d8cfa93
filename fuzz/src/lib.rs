//! Fuzz harness of dvt-cds: the per-input work of every target lives in [`harness`]
//! (also compiled into `tests/fuzz_regression.rs`); the typed parser's target in
//! [`typed`].

pub mod harness;
pub mod typed;
