//! Memory of the typed parse (`record::resource`, issue 11): for the benchmark body and
//! the worst bodies of the hardening issue (tiny objects, empty objects, deep arrays in
//! skipped and in read elements, long strings), the bytes the parsed form KEEPS (live
//! after the parse) and the PEAK while parsing, as multiples of the body's size, under a
//! counting allocator (mimalloc's size classes). Targets: kept <= 2x, peak <= 3x.
//! `cargo test --test typed_memory -- --nocapture --test-threads=1` prints the table.

#[path = "common/counting.rs"]
mod counting;

use std::collections::HashMap;

use counting::{Counting, Measured, measure};
use dvt_cds::record::resource::{
    CodeableConcept, Coding, Entry, Field, Period, Quantity, Reference, Resource,
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

fn deep(n: usize) -> String {
    format!("{}0{}", "[".repeat(n), "]".repeat(n))
}

/// The benchmark body (compact, as sent) and the worst cases, each near 1 to 4 MiB.
fn cases() -> Vec<(&'static str, String)> {
    const N: usize = 100_000;
    let bench: serde_json::Value =
        serde_json::from_str(include_str!("../benches/data/patient-300.request.json")).unwrap();
    vec![
        ("patient-300 request (compact)", bench.to_string()),
        (
            "Bundle of 1e5 tiny entries {\"resource\":{\"resourceType\":\"Condition\"}}",
            bundle(&repeat_join(
                r#"{"resource":{"resourceType":"Condition"}}"#,
                N,
            )),
        ),
        (
            "Bundle of 1e6 entries {}",
            bundle(&repeat_join("{}", 10 * N)),
        ),
        ("Bundle of 1e6 entries 0", bundle(&repeat_join("0", 10 * N))),
        (
            "contained: 1e6 resources {}",
            condition(&format!(r#""contained":[{}]"#, repeat_join("{}", 10 * N))),
        ),
        (
            "code.coding: 1e6 codings {}",
            condition(&format!(
                r#""code":{{"coding":[{}]}}"#,
                repeat_join("{}", 10 * N)
            )),
        ),
        (
            "category: 1e6 concepts {}",
            condition(&format!(r#""category":[{}]"#, repeat_join("{}", 10 * N))),
        ),
        (
            "code.coding: 2e5 codings {\"code\":\"a\"}",
            condition(&format!(
                r#""code":{{"coding":[{}]}}"#,
                repeat_join(r#"{"code":"a"}"#, 2 * N)
            )),
        ),
        (
            "skipped element: 1e4 arrays 100 deep",
            condition(&format!(
                r#""extension":[{}]"#,
                repeat_join(&deep(100), N / 10)
            )),
        ),
        (
            "read element (category): 1e4 arrays 100 deep",
            condition(&format!(
                r#""category":[{}]"#,
                repeat_join(&deep(100), N / 10)
            )),
        ),
        (
            "read element (code.coding): 1e4 arrays 100 deep",
            condition(&format!(
                r#""code":{{"coding":[{}]}}"#,
                repeat_join(&deep(100), N / 10)
            )),
        ),
        (
            "one long string, read (code.text, 4 MiB)",
            condition(&format!(r#""code":{{"text":"{}"}}"#, "y".repeat(4 << 20))),
        ),
        (
            "one long escaped string, read (code.text, 2 MiB of \\n)",
            condition(&format!(r#""code":{{"text":"{}"}}"#, "\\n".repeat(1 << 20))),
        ),
        (
            "one long string, skipped (text.div, 4 MiB)",
            condition(&format!(r#""text":{{"div":"{}"}}"#, "y".repeat(4 << 20))),
        ),
        (
            "2e5 short strings, read (code.coding[].display \"a\")",
            condition(&format!(
                r#""code":{{"coding":[{}]}}"#,
                repeat_join(r#"{"display":"a"}"#, 2 * N)
            )),
        ),
    ]
}

#[test]
fn sizes_of_the_parsed_types() {
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
    println!("| body | bytes | kept | peak | kept/bytes | peak/bytes |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, body) in cases() {
        let m = typed(body.as_bytes());
        let n = body.len() as f64;
        println!(
            "| {name} | {} | {} | {} | {:.2} | {:.2} |",
            body.len(),
            m.kept,
            m.peak,
            m.kept as f64 / n,
            m.peak as f64 / n
        );
    }
}
