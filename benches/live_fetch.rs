//! Live FHIR queries of one patient-view call against a local Helios FHIR server: the
//! whole `gather` (nine queries, concurrent) against the slowest of its queries run
//! alone. Target: whole ≤ 1.3 × slowest single (contract.md, "Talking to the FHIR
//! server": independent queries run concurrently).
//!
//! `DVT_HFS_BIN=... DVT_HFS_SEARCH_PARAMS=... cargo bench --bench live_fetch`
//! (scripts/hfs-setup prints both). Without them it prints why it skipped.

#[path = "../tests/fhir_support/mod.rs"]
mod fhir_support;

use std::time::{Duration, Instant};

use dvt_cds::cds_hooks::{FhirAuthorization, Hook, HookContext, HookRequest, Prefetched};
use dvt_cds::fhir::{self, EgressPolicy, FhirSettings, HttpFhirSource, ServerBase};
use fhir_support::synthetic;
use fhir_support::{Behaviour, Fake, Hfs};
use serde_json::{Map, Value, json};

const ITERATIONS: usize = 40;

/// The same comparison against a fake server that answers every query after a fixed
/// latency and costs no CPU: shows what the client's concurrency alone gives.
async fn latency_only() {
    let latency = Duration::from_millis(20);
    let empty = json!({"resourceType": "Bundle", "type": "searchset"}).to_string();
    let fake = Fake::start(Behaviour::AnswerAfter(
        latency,
        200,
        "application/fhir+json",
        empty,
    ))
    .await;
    let settings = FhirSettings {
        egress: EgressPolicy {
            dev: false,
            servers: vec![ServerBase::of(&fake.base())],
        },
        ..FhirSettings::default()
    };
    let source = HttpFhirSource::new(&settings);
    let mut prefetch = Map::new();
    prefetch.insert(
        "patient".into(),
        json!({"resourceType": "Patient", "id": "p"}),
    );
    let mut req = request_to(fake.base(), "p", prefetch.clone());
    let mut whole = Vec::new();
    for _ in 0..20 {
        whole.push(timed(&source, &settings, &req).await);
    }
    for (k, _) in fhir::prefetch_templates(Hook::PatientView) {
        if k != "conditions" {
            prefetch.insert(k.into(), Value::Null);
        }
    }
    req.prefetch = prefetch
        .iter()
        .map(|(k, v)| (k.clone(), Prefetched::from_value(v)))
        .collect();
    let mut single = Vec::new();
    for _ in 0..20 {
        single.push(timed(&source, &settings, &req).await);
    }
    let (w, s) = (
        median(whole).as_secs_f64() * 1e3,
        median(single).as_secs_f64() * 1e3,
    );
    println!(
        "live_fetch: fake server, {} ms latency per query, no CPU cost",
        latency.as_millis()
    );
    println!("  whole gather (8 concurrent)   median {w:>8.2} ms");
    println!("  one query                     median {s:>8.2} ms");
    println!(
        "  ratio whole / single          {:.2} (target <= 1.30)",
        w / s
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(latency_only());
    if std::env::var_os("DVT_HFS_BIN").is_none()
        || std::env::var_os("DVT_HFS_SEARCH_PARAMS").is_none()
    {
        println!(
            "live_fetch: hfs part skipped: set DVT_HFS_BIN and DVT_HFS_SEARCH_PARAMS (eval \"$(scripts/hfs-setup)\")"
        );
        return;
    }
    runtime.block_on(run());
}

/// A heavier record than the test patients: a few hundred resources spread over types.
fn volume(patient: &str) -> Value {
    let now = synthetic::now();
    let mut entries = Vec::new();
    let mut add = |rt: &str, n: usize, body: &dyn Fn(usize) -> Value| {
        for i in 0..n {
            let id = format!("{patient}-bulk-{}-{i}", rt.to_lowercase());
            let mut r = body(i);
            r["resourceType"] = json!(rt);
            r["id"] = json!(id);
            r["subject"] = json!({"reference": format!("Patient/{patient}")});
            entries.push(
                json!({"resource": r, "request": {"method": "PUT", "url": format!("{rt}/{id}")}}),
            );
        }
    };
    let at = |days: usize| (now - chrono::Duration::days(days as i64)).to_rfc3339();
    add("Observation", 300, &|i| {
        json!({"status": "final", "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "valueQuantity": {"value": 60 + i % 40, "unit": "/min"}, "effectiveDateTime": at(i % 270)})
    });
    add("Condition", 80, &|i| {
        json!({"code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": format!("Z{:02}.0", i % 99)}]},
        "recordedDate": at(i * 20)})
    });
    add(
        "Procedure",
        40,
        &|i| json!({"status": "completed", "code": {"text": "bulk"}, "performedDateTime": at(i * 6)}),
    );
    add(
        "MedicationRequest",
        60,
        &|i| json!({"status": "active", "intent": "order", "medicationCodeableConcept": {"text": "bulk"}, "authoredOn": at(i * 30)}),
    );
    add(
        "Encounter",
        60,
        &|i| json!({"status": "finished", "class": {"code": "AMB"}, "period": {"start": at(i * 3), "end": at(i * 3)}}),
    );
    json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})
}

fn request(hfs: &Hfs, patient: &str, prefetch: Map<String, Value>) -> HookRequest {
    request_to(hfs.base(), patient, prefetch)
}

fn request_to(base: url::Url, patient: &str, prefetch: Map<String, Value>) -> HookRequest {
    HookRequest {
        hook: Hook::PatientView,
        hook_instance: "bench".into(),
        fhir_server: Some(base),
        fhir_authorization: Some(FhirAuthorization {
            access_token: "bench-token".into(),
            token_type: "Bearer".into(),
            expires_in: None,
            scope: None,
            subject: None,
        }),
        context: HookContext {
            user_id: "Practitioner/bench".into(),
            patient_id: patient.into(),
            encounter_id: None,
            draft_orders: vec![],
            selections: vec![],
        },
        prefetch: prefetch
            .iter()
            .map(|(k, v)| (k.clone(), Prefetched::from_value(v)))
            .collect(),
    }
}

async fn timed(source: &HttpFhirSource, settings: &FhirSettings, req: &HookRequest) -> Duration {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let started = Instant::now();
    let prefetch = req.prefetch.clone();
    let got = fhir::gather(
        source,
        settings,
        &[],
        req,
        prefetch,
        deadline,
        synthetic::now(),
    )
    .await
    .expect("gather");
    let took = started.elapsed();
    std::hint::black_box(got.resources.len());
    took
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn run() {
    let hfs = Hfs::start(50).await;
    let patient = synthetic::patients().into_iter().next().unwrap();
    hfs.load(&patient.transaction()).await;
    hfs.load(&volume(&patient.id)).await;

    // hfs listed as with `--fhir-server`.
    let settings = FhirSettings {
        egress: EgressPolicy {
            dev: false,
            servers: vec![ServerBase::of(&hfs.base())],
        },
        ..FhirSettings::default()
    };
    let source = HttpFhirSource::new(&settings);
    let keys: Vec<&str> = fhir::prefetch_templates(Hook::PatientView)
        .into_keys()
        .collect();
    // A request where only `key` is missing from the prefetch: one live query.
    let single = |key: &str| {
        let mut prefetch = Map::new();
        for k in &keys {
            if *k != key {
                prefetch.insert((*k).into(), Value::Null);
            }
        }
        request(&hfs, &patient.id, prefetch)
    };
    let whole = request(&hfs, &patient.id, Map::new());

    for _ in 0..5 {
        timed(&source, &settings, &whole).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let prefetch = whole.prefetch.clone();
    let all = fhir::gather(
        &source,
        &settings,
        &[],
        &whole,
        prefetch,
        deadline,
        synthetic::now(),
    )
    .await
    .expect("gather");
    assert_eq!(all.fetched_keys.len(), keys.len());
    let mut whole_times = Vec::new();
    let mut slowest_single = Vec::new();
    let mut sum_single = Vec::new();
    let mut per_key: Vec<Vec<Duration>> = vec![Vec::new(); keys.len()];
    for _ in 0..ITERATIONS {
        whole_times.push(timed(&source, &settings, &whole).await);
        let mut slowest = Duration::ZERO;
        let mut sum = Duration::ZERO;
        for (i, key) in keys.iter().enumerate() {
            let t = timed(&source, &settings, &single(key)).await;
            per_key[i].push(t);
            slowest = slowest.max(t);
            sum += t;
        }
        slowest_single.push(slowest);
        sum_single.push(sum);
    }
    println!(
        "live_fetch: {ITERATIONS} iterations against hfs on 127.0.0.1; one call gathers {} resources",
        all.resources.len()
    );
    for (key, times) in keys.iter().zip(per_key) {
        println!(
            "  single query {key:<22} median {:>8.2} ms",
            median(times).as_secs_f64() * 1e3
        );
    }
    let w = median(whole_times).as_secs_f64() * 1e3;
    let s = median(slowest_single).as_secs_f64() * 1e3;
    let sum = median(sum_single).as_secs_f64() * 1e3;
    println!("  whole gather (9 concurrent)   median {w:>8.2} ms");
    println!("  slowest single query          median {s:>8.2} ms");
    println!("  sum of single queries         median {sum:>8.2} ms");
    println!(
        "  ratio whole / slowest single  {:.2} (target <= 1.30)",
        w / s
    );
}
