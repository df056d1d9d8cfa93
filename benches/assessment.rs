//! Assessment speed on a record of 500 resources (issue 11's targets: < 0.5 ms from JSON
//! bytes to the response JSON, < 50 µs from parsed resources to the assessment).
//! Run: `cargo bench --bench assessment -- --warm-up-time 1 --measurement-time 3`.
//! Instructions per call, which the machine's load does not move: `ASSESS_ONCE` below;
//! the three measures timed call by call, interleaved: `ASSESS_INTERLEAVED` below.

use std::hint::black_box;

use chrono::{DateTime, Duration, Utc};
use criterion::{Criterion, criterion_group};
use dvt_cds::assessment::{HookInput, assess};
use dvt_cds::cds_hooks::{Hook, RequestBody};
use dvt_cds::evaluate::evaluate_request;
use dvt_cds::mappings::Mappings;
use serde_json::{Value, json};

/// The allocator the `dvt-cds` binary ships with, so the figures are the service's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn now() -> DateTime<Utc> {
    "2026-11-20T12:00:00Z".parse().unwrap()
}

fn day(n: i64) -> String {
    (now() - Duration::days(n)).date_naive().to_string()
}

/// A realistic mix: problems, vitals panels, labs, procedures, medications, encounters.
fn record() -> Vec<Value> {
    let subject = json!({"reference": "Patient/p1"});
    let mut r = vec![json!({"resourceType": "Patient", "id": "p1", "birthDate": "1961-03-14"})];
    let conds = [
        ("http://hl7.org/fhir/sid/icd-10-cm", "I10"),
        ("http://hl7.org/fhir/sid/icd-10-cm", "E11.9"),
        ("http://snomed.info/sct", "38341003"),
        ("http://hl7.org/fhir/sid/icd-10-cm", "M79.662"),
        ("http://hl7.org/fhir/sid/icd-10-cm", "C50.911"),
    ];
    for i in 0..499 {
        let d = (i % 200) as i64;
        let res = match i % 5 {
            0 => {
                let (s, c) = conds[i % conds.len()];
                json!({"resourceType": "Condition", "id": format!("c{i}"), "subject": subject,
                    "clinicalStatus": {"coding": [{"code": "active"}]},
                    "code": {"coding": [{"system": s, "code": c}]}, "onsetDateTime": day(d)})
            }
            1 => {
                json!({"resourceType": "Observation", "id": format!("o{i}"), "status": "final", "subject": subject,
                "code": {"coding": [{"system": "http://loinc.org", "code": "85353-1"}]},
                "effectiveDateTime": format!("{}T08:00:00Z", day(d)),
                "component": [
                    {"code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]}, "valueQuantity": {"value": 80 + (i % 30), "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}},
                    {"code": {"coding": [{"system": "http://loinc.org", "code": "59408-5"}]}, "valueQuantity": {"value": 97, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}}
                ]})
            }
            2 => {
                json!({"resourceType": "Observation", "id": format!("l{i}"), "status": "final", "subject": subject,
                "code": {"coding": [{"system": "http://loinc.org", "code": if i % 3 == 0 { "48065-7" } else { "2345-7" }}]},
                "effectiveDateTime": day(d), "valueQuantity": {"value": 400, "unit": "ug/L", "system": "http://unitsofmeasure.org", "code": "ug/L"}})
            }
            3 => {
                json!({"resourceType": "Procedure", "id": format!("pr{i}"), "status": "completed", "subject": subject,
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": if i % 2 == 0 { "609588000" } else { "73761001" }}]},
                "performedDateTime": day(d)})
            }
            _ => {
                json!({"resourceType": "MedicationRequest", "id": format!("m{i}"), "status": "active", "intent": "order", "subject": subject,
                "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "197361"}]},
                "authoredOn": day(d)})
            }
        };
        r.push(res);
    }
    r
}

/// A patient-view request whose prefetch holds the record under the service's keys.
fn request_bytes(resources: &[Value]) -> Vec<u8> {
    let mut prefetch = serde_json::Map::new();
    for (key, template) in dvt_cds::fhir::prefetch_templates(Hook::PatientView) {
        let rt = template.split(['/', '?']).next().unwrap_or_default();
        let value = if rt == "Patient" {
            resources[0].clone()
        } else {
            let entries: Vec<Value> = resources[1..]
                .iter()
                .filter(|r| r["resourceType"] == rt)
                .map(|r| json!({"resource": r}))
                .collect();
            json!({"resourceType": "Bundle", "type": "searchset", "entry": entries})
        };
        prefetch.insert(key.to_string(), value);
    }
    serde_json::to_vec(&json!({
        "hook": "patient-view",
        "hookInstance": "bench-1",
        "context": {"userId": "Practitioner/1", "patientId": "p1"},
        "prefetch": prefetch
    }))
    .unwrap()
}

/// The inputs of both measures, built once.
struct Inputs {
    m: Mappings,
    bytes: Vec<u8>,
    typed: Vec<Box<dvt_cds::record::resource::Resource>>,
    input: HookInput,
    // "now" is an input like the resources: read once, outside the timed loops.
    now: DateTime<Utc>,
}

impl Inputs {
    fn new() -> Self {
        let resources = record();
        assert_eq!(resources.len(), 500);
        Inputs {
            m: Mappings::embedded().unwrap(),
            bytes: request_bytes(&resources),
            typed: dvt_cds::record::resource::from_values(&resources),
            input: HookInput {
                hook: Hook::PatientView,
                hook_instance: "bench-1".into(),
                patient_id: "p1".into(),
                encounter_id: None,
                draft_orders: vec![],
                data_quality: vec![],
            },
            now: now(),
        }
    }

    fn bytes_to_response(&self) -> Vec<u8> {
        let body = RequestBody::from_slice(black_box(&self.bytes)).unwrap();
        let out = evaluate_request(&self.m, None, body, self.now).unwrap();
        serde_json::to_vec(&out).unwrap()
    }

    /// The physical limit beside the two measures: the same bytes scanned as JSON and
    /// nothing kept.
    fn scan_only(&self) -> serde::de::IgnoredAny {
        serde_json::from_slice(black_box(&self.bytes)).unwrap()
    }

    fn parsed_to_assessment(&self) -> dvt_cds::assessment::Assessment {
        assess(
            &self.m,
            &self.input,
            black_box(&self.typed),
            black_box(self.now),
        )
    }
}

fn bench(c: &mut Criterion) {
    let inputs = Inputs::new();
    println!("assessment: body of {} bytes", inputs.bytes.len());
    c.bench_function("json bytes to response json (500 resources)", |b| {
        b.iter(|| black_box(inputs.bytes_to_response()))
    });
    c.bench_function("json bytes scanned only (IgnoredAny, 500 resources)", |b| {
        b.iter(|| black_box(inputs.scan_only()))
    });
    c.bench_function("parsed resources to assessment (500 resources)", |b| {
        b.iter(|| black_box(inputs.parsed_to_assessment()))
    });
}

criterion_group!(benches, bench);

/// `ASSESS_ONCE=KIND ASSESS_TIMES=N` (KIND `bytes`, `parsed` or `scan`): run that measure N times
/// and exit, without criterion, for an instruction count that does not depend on the
/// machine's load: `valgrind --tool=callgrind` of N=10 minus that of N=0, divided by 10.
fn once(kind: &str) {
    let inputs = Inputs::new();
    let times: usize =
        std::env::var("ASSESS_TIMES").map_or(1, |n| n.parse().expect("ASSESS_TIMES"));
    for _ in 0..times {
        match kind {
            "bytes" => drop(black_box(inputs.bytes_to_response())),
            "parsed" => drop(black_box(inputs.parsed_to_assessment())),
            "scan" => {
                black_box(inputs.scan_only());
            }
            other => panic!("ASSESS_ONCE={other}: bytes, parsed or scan"),
        }
    }
}

/// `ASSESS_INTERLEAVED=N`: the three measures one call after another, N rounds, each
/// call timed alone; the fastest and the median of each. This VM's speed drifts by up
/// to 1.5x within minutes, which moves criterion's runs of one measure after another;
/// interleaved, the drift falls on all three alike, and the fastest calls are those no
/// stall touched.
fn interleaved(rounds: usize) {
    let inputs = Inputs::new();
    let mut times: [Vec<std::time::Duration>; 3] = Default::default();
    for _ in 0..rounds {
        let t = std::time::Instant::now();
        black_box(inputs.scan_only());
        times[0].push(t.elapsed());
        let t = std::time::Instant::now();
        drop(black_box(inputs.bytes_to_response()));
        times[1].push(t.elapsed());
        let t = std::time::Instant::now();
        drop(black_box(inputs.parsed_to_assessment()));
        times[2].push(t.elapsed());
    }
    let names = [
        "json bytes scanned only (IgnoredAny)",
        "json bytes to response json",
        "parsed resources to assessment",
    ];
    println!(
        "{rounds} interleaved rounds, 500 resources, body of {} bytes",
        inputs.bytes.len()
    );
    for (name, t) in names.iter().zip(&mut times) {
        t.sort_unstable();
        println!(
            "{name:<40} fastest {:>8.1} µs   median {:>8.1} µs",
            t[0].as_secs_f64() * 1e6,
            t[t.len() / 2].as_secs_f64() * 1e6
        );
    }
}

fn main() {
    if let Ok(kind) = std::env::var("ASSESS_ONCE") {
        return once(&kind);
    }
    if let Ok(rounds) = std::env::var("ASSESS_INTERLEAVED") {
        return interleaved(rounds.parse().expect("ASSESS_INTERLEAVED"));
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
