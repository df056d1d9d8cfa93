//! What the unit tests of the clinical core share: the shipped mappings, parsed once, and
//! one fixed "now" with day arithmetic, so a table row reads `day(3)` for "3 days ago".

use std::sync::OnceLock;

use chrono::{DateTime, Utc};

use crate::mappings::Mappings;

/// The embedded (shipped) mapping set, parsed once per test binary.
pub fn shipped() -> &'static Mappings {
    static M: OnceLock<Mappings> = OnceLock::new();
    M.get_or_init(|| Mappings::embedded().expect("shipped mappings"))
}

/// The tests' fixed request time.
pub fn now() -> DateTime<Utc> {
    "2026-11-20T12:00:00Z".parse().unwrap()
}

/// The calendar day `n` days before [`now`], as a FHIR date.
pub fn day(n: i64) -> String {
    (now().date_naive() - chrono::Duration::days(n)).to_string()
}
