//! Calibration of `dvt_cds::json_cost`: parse worst-case texts into `serde_json::Value`
//! under a counting allocator (each request rounded to mimalloc's size class, as the
//! service's allocator does) and check that the peak of live bytes stays under the bound
//! `expansion` reads from the bytes. Prints each case's peak, bound and tightness
//! (`cargo test --test json_cost -- --nocapture`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use dvt_cds::json_cost::{expansion, size_class};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(size_class(layout.size()), Relaxed) + size_class(layout.size());
        PEAK.fetch_max(live, Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(size_class(layout.size()), Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Counted as the allocator may do it: the new block, then the old one freed.
        let live = LIVE.fetch_add(size_class(new_size), Relaxed) + size_class(new_size);
        PEAK.fetch_max(live, Relaxed);
        LIVE.fetch_sub(size_class(layout.size()), Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The counters are global: one measurement at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Peak bytes allocated while parsing `text` (the tree, the scratch, transient copies).
fn parse_peak(text: &[u8]) -> usize {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let before = LIVE.load(Relaxed);
    PEAK.store(before, Relaxed);
    let parsed = serde_json::from_slice::<serde_json::Value>(text);
    let peak = PEAK.load(Relaxed) - before;
    drop(parsed);
    peak
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
    let text = include_str!("../benches/data/patient-300.request.json");
    let peak = parse_peak(text.as_bytes());
    let bound = expansion(text.as_bytes());
    assert!(bound < 2 * peak, "bound {bound} vs peak {peak}");
}
