//! Calibration of `dvt_cds::json_cost`: parse worst-case texts into `serde_json::Value`
//! under a counting allocator (each request rounded to mimalloc's size class, as the
//! service's allocator does) and check that the peak of live bytes stays under the bound
//! `expansion` reads from the bytes. Prints each case's peak, bound and tightness
//! (`cargo test --test json_cost -- --nocapture`).

#[path = "common/counting.rs"]
mod counting;

use counting::{Counting, measure};
use dvt_cds::json_cost::expansion;

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Peak bytes allocated while parsing `text` (the tree, the scratch, transient copies).
fn parse_peak(text: &[u8]) -> usize {
    measure(|| serde_json::from_slice::<serde_json::Value>(text)).peak
}

fn repeat_join(item: &str, sep: &str, n: usize) -> String {
    let mut s = String::with_capacity((item.len() + sep.len()) * n);
    for i in 0..n {
        if i > 0 {
            s.push_str(sep);
        }
        s.push_str(item);
    }
    s
}

fn nested(open: &str, close: &str, depth: usize) -> String {
    format!("{}0{}", open.repeat(depth), close.repeat(depth))
}

/// The worst cases for each term of the model, and real FHIR.
fn cases() -> Vec<(&'static str, String)> {
    const N: usize = 100_000;
    let keys: String = (0..5000)
        .map(|i| format!("\"k{:05}\":{i}", (i * 7919) % 5000))
        .collect::<Vec<_>>()
        .join(",");
    vec![
        (
            "empty objects [{},...]",
            format!("[{}]", repeat_join("{}", ",", N)),
        ),
        (
            "empty arrays [[],...]",
            format!("[{}]", repeat_join("[]", ",", N)),
        ),
        (
            "tiny objects [{\"a\":0},...]",
            format!("[{}]", repeat_join("{\"a\":0}", ",", N)),
        ),
        (
            "empty-key objects [{\"\":0},...]",
            format!("[{}]", repeat_join("{\"\":0}", ",", N)),
        ),
        (
            "one-element arrays [[0],...]",
            format!("[{}]", repeat_join("[0]", ",", N)),
        ),
        (
            "small numbers [0,0,...]",
            format!("[{}]", repeat_join("0", ",", N)),
        ),
        (
            "short strings [\"a\",...]",
            format!("[{}]", repeat_join("\"a\"", ",", N)),
        ),
        (
            "65-byte strings",
            format!(
                "[{}]",
                repeat_join(&format!("\"{}\"", "x".repeat(65)), ",", N / 10)
            ),
        ),
        (
            "deep arrays x1000",
            format!("[{}]", repeat_join(&nested("[", "]", 126), ",", 1000)),
        ),
        (
            "deep objects x1000",
            format!("[{}]", repeat_join(&nested("{\"\":", "}", 126), ",", 1000)),
        ),
        ("one long string", format!("\"{}\"", "y".repeat(3 << 20))),
        (
            "one long escaped string",
            format!("\"{}\"", "\\n".repeat(1 << 20)),
        ),
        (
            "long numbers",
            format!(
                "[{}]",
                repeat_join(&format!("0.{}1", "0".repeat(5000)), ",", 100)
            ),
        ),
        ("5000 members, unsorted", format!("{{{keys}}}")),
        (
            "patient-300 request",
            include_str!("../benches/data/patient-300.request.json").to_string(),
        ),
    ]
}

#[test]
fn the_bound_holds_for_worst_case_texts() {
    let _serial = counting::serial();
    let mut failures = Vec::new();
    println!("| text | bytes | parsed peak | bound | peak/bytes | bound/peak |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, text) in cases() {
        let peak = parse_peak(text.as_bytes());
        let bound = expansion(text.as_bytes());
        println!(
            "| {name} | {} | {peak} | {bound} | {:.1} | {:.2} |",
            text.len(),
            peak as f64 / text.len() as f64,
            bound as f64 / peak.max(1) as f64
        );
        if peak > bound {
            failures.push(format!("{name}: parsed peak {peak} > bound {bound}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn the_bound_is_not_wildly_loose_on_real_fhir() {
    let _serial = counting::serial();
    let text = include_str!("../benches/data/patient-300.request.json");
    let peak = parse_peak(text.as_bytes());
    let bound = expansion(text.as_bytes());
    assert!(bound < 2 * peak, "bound {bound} vs peak {peak}");
}
