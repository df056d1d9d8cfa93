//! The physical limit of parsing (issue 11): the time to merely scan the benchmark body's
//! bytes (`serde_json::from_slice::<IgnoredAny>`: validates the JSON, builds nothing)
//! against parsing it into a `serde_json::Value` tree as the floor (`benches/floor.rs`)
//! and today's service do. A typed core cannot parse faster than the scan with serde_json;
//! if the scan alone is near the target, a faster parser is the way (issue 11).
//!
//! Beside them, the typed parse (`record::resource`): the same body read in one pass with
//! every prefetch value a `Field<Resource>` (elements the model does not read skipped
//! unread), through a bench-local envelope that skips everything but `prefetch`.
//!
//! The body: `benches/data/patient-300.request.json` written compactly, as
//! `scripts/bench-load` sends it (298 resources, 290,283 bytes = 284 KiB; bench-load's
//! re-dating keeps every length). `BENCH_BODY=FILE` scans another file as it is.
//!
//! Run: `cargo bench --bench scan -- --warm-up-time 1 --measurement-time 5`. Instructions
//! per parse, which the machine's load does not move: `SCAN_ONCE` below.

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

use dvt_cds::record::resource::{Field, Resource, read_json};

/// The allocator the `dvt-cds` binary and the floor ship with: the tree's cost is mostly
/// allocation, so the figure must be the service's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The bytes `scripts/bench-load` posts (or `BENCH_BODY` as it is).
fn body() -> Vec<u8> {
    if let Some(path) = std::env::var_os("BENCH_BODY") {
        return std::fs::read(&path).expect("BENCH_BODY: cannot read the file");
    }
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/data/patient-300.request.json"
    );
    let pretty: Value = serde_json::from_slice(&std::fs::read(path).expect(path)).expect(path);
    serde_json::to_vec(&pretty).unwrap()
}

/// The request as the typed parse reads it: only the prefetch, each value a resource
/// (or Bundle) read by `record::resource` (`null` reads as `Field::Invalid`). Bench-local:
/// the product's envelope is `cds_hooks::request`'s.
#[derive(Deserialize)]
struct TypedRequest {
    prefetch: HashMap<String, Field<Resource>>,
}

/// Read as the product reads a body (`record::resource::read_json`: one UTF-8 check of
/// the whole text, then serde_json over a `str`).
fn typed(body: &[u8]) -> HashMap<String, Field<Resource>> {
    read_json::<TypedRequest>(body).unwrap().prefetch
}

/// The same types read by sonic-rs (SIMD; x86-64's baseline SSE2 here), for comparison:
/// not the product's parser (BENCHMARKS.md says why).
fn typed_sonic(body: &[u8]) -> HashMap<String, Field<Resource>> {
    sonic_rs::from_slice::<TypedRequest>(body).unwrap().prefetch
}

fn bench(c: &mut Criterion) {
    let body = body();
    eprintln!("scan: body of {} bytes", body.len());
    let mut g = c.benchmark_group("parse the benchmark body");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("scan only (IgnoredAny)", |b| {
        b.iter(|| serde_json::from_slice::<IgnoredAny>(black_box(&body)).unwrap())
    });
    // Dropped inside the timing: the floor frees its tree on every call too.
    g.bench_function("into a Value tree, and drop it", |b| {
        b.iter(|| serde_json::from_slice::<Value>(black_box(&body)).unwrap())
    });
    g.bench_function("into a Value tree, drop not timed", |b| {
        b.iter_with_large_drop(|| serde_json::from_slice::<Value>(black_box(&body)).unwrap())
    });
    g.bench_function("typed resources, and drop them", |b| {
        b.iter(|| typed(black_box(&body)))
    });
    g.bench_function("sonic scan only (IgnoredAny)", |b| {
        b.iter(|| sonic_rs::from_slice::<IgnoredAny>(black_box(&body)).unwrap())
    });
    g.bench_function("sonic typed resources, and drop them", |b| {
        b.iter(|| typed_sonic(black_box(&body)))
    });
    g.bench_function("typed resources, drop not timed", |b| {
        b.iter_with_large_drop(|| typed(black_box(&body)))
    });
    g.finish();
}

criterion_group!(benches, bench);

/// `SCAN_ONCE=KIND SCAN_TIMES=N` (KIND `scan`, `value` or `typed`): parse the body N times
/// and exit, without criterion, for an instruction count that does not depend on the
/// machine's load: `valgrind --tool=callgrind` of N=10 minus that of N=0, divided by 10.
fn once(kind: &str) {
    let body = body();
    let times: usize = std::env::var("SCAN_TIMES").map_or(1, |n| n.parse().expect("SCAN_TIMES"));
    for _ in 0..times {
        match kind {
            "scan" => drop(black_box(
                serde_json::from_slice::<IgnoredAny>(&body).unwrap(),
            )),
            "value" => drop(black_box(serde_json::from_slice::<Value>(&body).unwrap())),
            "typed" => drop(black_box(typed(&body))),
            "sonic-scan" => drop(black_box(
                sonic_rs::from_slice::<IgnoredAny>(&body).unwrap(),
            )),
            "sonic-typed" => drop(black_box(typed_sonic(&body))),
            other => panic!("SCAN_ONCE={other}: scan, value or typed"),
        }
    }
}

fn main() {
    if let Ok(kind) = std::env::var("SCAN_ONCE") {
        return once(&kind);
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
