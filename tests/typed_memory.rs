//! Memory of the typed parse (`record::resource`, issue 11): for the benchmark body and
//! the worst bodies of the hardening issue (tiny objects, empty objects, deep arrays in
//! skipped and in read elements, long strings), the bytes the parsed form KEEPS (live
//! after the parse) and the PEAK while parsing, as multiples of the body's size, under a
//! counting allocator (mimalloc's size classes). Targets: kept <= 2x, peak <= 3x.
//! `cargo test --test typed_memory -- --nocapture --test-threads=1` prints the table.
//!
//! Cases that miss the targets are asserted against their measured multiple (plus a
//! margin), so that a change that makes them worse fails here and one that fixes them
//! shows: see BENCHMARKS.md, "Memory of the typed parse", for why they miss.

#[path = "common/counting.rs"]
mod counting;

use std::collections::HashMap;

use counting::{Counting, Measured, measure};
use dvt_cds::record::resource::{
    CodeableConcept, Coding, Entry, Field, Period, Quantity, Reference, Resource, allowance_for,
    within_allowance,
};
use serde::Deserialize;

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A hook request as the typed parse reads it: only the prefetch, each value a resource
/// or Bundle (as `benches/scan.rs` reads it).
#[derive(Deserialize)]
struct TypedRequest {
    #[allow(dead_code)]
    prefetch: HashMap<String, Field<Resource>>,
}

fn typed(body: &[u8]) -> Measured {
    measure(|| serde_json::from_slice::<TypedRequest>(body).expect("JSON"))
}

fn repeat_join(item: &str, n: usize) -> String {
    vec![item; n].join(",")
}

/// A request whose one prefetch value is `resource`.
fn request(resource: &str) -> String {
    format!(
        r#"{{"hook":"patient-view","hookInstance":"x","context":{{}},"prefetch":{{"p":{resource}}}}}"#
    )
}

fn bundle(entries: &str) -> String {
    request(&format!(
        r#"{{"resourceType":"Bundle","type":"searchset","entry":[{entries}]}}"#
    ))
}

fn condition(elements: &str) -> String {
    request(&format!(r#"{{"resourceType":"Condition",{elements}}}"#))
}

/// What a case must stay under, as multiples of the body's size.
#[derive(Clone, Copy)]
enum Bound {
    /// The issue's targets: kept <= 2x, peak <= 3x.
    Target,
    /// Missed today: the measured multiples plus about 5 % (BENCHMARKS.md says why).
    Missed { kept: f64, peak: f64 },
}

impl Bound {
    fn limits(self) -> (f64, f64) {
        match self {
            Bound::Target => (2.0, 3.0),
            Bound::Missed { kept, peak } => (kept, peak),
        }
    }
}

fn missed(kept: f64, peak: f64) -> Bound {
    Bound::Missed { kept, peak }
}

fn deep(n: usize) -> String {
    format!("{}0{}", "[".repeat(n), "]".repeat(n))
}

/// The benchmark body (compact, as sent) and the worst cases, each 0.3 to 4 MiB (the
/// multiples do not grow with the size; the cases that keep the most are the smallest,
/// so that the suite does not allocate gigabytes).
fn cases() -> Vec<(&'static str, String, Bound)> {
    const N: usize = 100_000;
    let bench: serde_json::Value =
        serde_json::from_str(include_str!("../benches/data/patient-300.request.json")).unwrap();
    let codings = |items: &str| condition(&format!(r#""code":{{"coding":[{items}]}}"#));
    vec![
        (
            "patient-300 request (compact)",
            bench.to_string(),
            Bound::Target,
        ),
        (
            "Bundle of 1e4 tiny entries {\"resource\":{\"resourceType\":\"Condition\"}}",
            bundle(&repeat_join(
                r#"{"resource":{"resourceType":"Condition"}}"#,
                N / 10,
            )),
            missed(12.7, 12.7),
        ),
        (
            "Bundle of 1e5 entries {}",
            bundle(&repeat_join("{}", N)),
            Bound::Target,
        ),
        (
            "Bundle of 1e5 entries 0",
            bundle(&repeat_join("0", N)),
            Bound::Target,
        ),
        (
            "contained: 1e4 resources {}",
            condition(&format!(r#""contained":[{}]"#, repeat_join("{}", N / 10))),
            Bound::Target,
        ),
        (
            "code.coding: 1e5 codings {}",
            codings(&repeat_join("{}", N)),
            Bound::Target,
        ),
        (
            "category: 1e5 concepts {}",
            condition(&format!(r#""category":[{}]"#, repeat_join("{}", N))),
            Bound::Target,
        ),
        (
            "code.coding: 1e5 codings {\"code\":\"a\"}",
            codings(&repeat_join(r#"{"code":"a"}"#, N)),
            missed(9.2, 13.2),
        ),
        (
            "code.coding: 1e5 codings {\"display\":\"a\"}",
            codings(&repeat_join(r#"{"display":"a"}"#, N)),
            missed(7.5, 10.7),
        ),
        (
            "skipped element (extension): 1e4 arrays 100 deep",
            condition(&format!(
                r#""extension":[{}]"#,
                repeat_join(&deep(100), N / 10)
            )),
            Bound::Target,
        ),
        (
            "read element (category): 1e4 arrays 100 deep",
            condition(&format!(
                r#""category":[{}]"#,
                repeat_join(&deep(100), N / 10)
            )),
            Bound::Target,
        ),
        (
            "read element (code.coding): 1e4 arrays 100 deep",
            codings(&repeat_join(&deep(100), N / 10)),
            Bound::Target,
        ),
        (
            "one long string, read (code.text, 4 MiB)",
            condition(&format!(r#""code":{{"text":"{}"}}"#, "y".repeat(4 << 20))),
            Bound::Target,
        ),
        (
            "one long escaped string, read (code.text, 2 MiB of \\n)",
            condition(&format!(r#""code":{{"text":"{}"}}"#, "\\n".repeat(1 << 20))),
            Bound::Target,
        ),
        (
            "one long string, skipped (text.div, 4 MiB)",
            condition(&format!(r#""text":{{"div":"{}"}}"#, "y".repeat(4 << 20))),
            Bound::Target,
        ),
    ]
}

#[test]
fn sizes_of_the_parsed_types() {
    let _serial = counting::serial();
    println!("size_of Resource {}", size_of::<Resource>());
    println!("size_of Field<Resource> {}", size_of::<Field<Resource>>());
    println!("size_of Field<Entry> {}", size_of::<Field<Entry>>());
    println!("size_of CodeableConcept {}", size_of::<CodeableConcept>());
    println!("size_of Coding {}", size_of::<Coding>());
    println!("size_of Reference {}", size_of::<Reference>());
    println!("size_of Quantity {}", size_of::<Quantity>());
    println!("size_of Period {}", size_of::<Period>());
    println!("size_of Field<Box<str>> {}", size_of::<Field<Box<str>>>());
}

#[test]
fn kept_and_peak_of_the_typed_parse() {
    let _serial = counting::serial();
    let mut failures = Vec::new();
    println!("| body | bytes | kept | peak | kept/bytes | peak/bytes | asserted |");
    println!("|---|---:|---:|---:|---:|---:|---|");
    for (name, body, bound) in cases() {
        let m = typed(body.as_bytes());
        let n = body.len() as f64;
        let (kept, peak) = (m.kept as f64 / n, m.peak as f64 / n);
        let (max_kept, max_peak) = bound.limits();
        let asserted = match bound {
            Bound::Target => "target".to_string(),
            Bound::Missed { .. } => format!("missed: <= {max_kept} / {max_peak}"),
        };
        println!(
            "| {name} | {} | {} | {} | {kept:.2} | {peak:.2} | {asserted} |",
            body.len(),
            m.kept,
            m.peak
        );
        if kept > max_kept || peak > max_peak {
            failures.push(format!(
                "{name}: kept {kept:.2}x (max {max_kept}), peak {peak:.2}x (max {max_peak})"
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// With the allowance the service gives a body (`resource::allowance_for` its length,
/// what the memory budget took for it), every worst body is read or refused as a whole,
/// and no parse, read or refused, passes what the budget took for it.
#[test]
fn an_allowance_bounds_the_worst_bodies() {
    let _serial = counting::serial();
    println!("| body | within the allowance | kept/bytes | peak/bytes | budget/bytes |");
    println!("|---|---|---:|---:|---:|");
    let mut failures = Vec::new();
    for (name, body, _) in cases() {
        let mut outcome = String::new();
        let m = measure(|| {
            let parsed = within_allowance(allowance_for(body.len()), || {
                serde_json::from_slice::<TypedRequest>(body.as_bytes())
            });
            outcome = match &parsed {
                Ok(Ok(_)) => "read".to_string(),
                Err(_) => "refused (over the allowance)".to_string(),
                Ok(Err(e)) => format!("error {e}"),
            };
            parsed
        });
        // What the memory budget took for this body before the parse: the parse must
        // stay within it.
        let budget = allowance_for(body.len());
        let n = body.len() as f64;
        let (kept, peak) = (m.kept as f64 / n, m.peak as f64 / n);
        let budget_x = budget as f64 / n;
        println!("| {name} | {outcome} | {kept:.2} | {peak:.2} | {budget_x:.2} |");
        if outcome.starts_with("error") || m.peak > budget {
            failures.push(format!(
                "{name}: {outcome}, peak {peak:.2}x over the budget's {budget_x:.2}x"
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
