//! Compact builders of synthetic FHIR R4 records for the clinical tests. Every date is
//! relative to NOW (2026-11-20T12:00:00Z).
#![allow(dead_code)]

use std::sync::OnceLock;

use chrono::{DateTime, Duration, Utc};
use dvt_cds::assessment::HookInput;
use dvt_cds::cds_hooks::Hook;
use dvt_cds::mappings::Mappings;
use dvt_cds::pipeline::respond_to;
pub use dvt_cds::record::resource::from_values;
use serde_json::{Value, json};

pub const ICD: &str = "http://hl7.org/fhir/sid/icd-10-cm";
pub const SCT: &str = "http://snomed.info/sct";
pub const LOINC: &str = "http://loinc.org";
pub const CPT: &str = "http://www.ama-assn.org/go/cpt";
pub const RX: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";
pub const UCUM: &str = "http://unitsofmeasure.org";
pub const PID: &str = "p1";

pub fn mappings() -> &'static Mappings {
    static M: OnceLock<Mappings> = OnceLock::new();
    M.get_or_init(|| Mappings::embedded().expect("shipped mappings load"))
}

pub fn now() -> DateTime<Utc> {
    "2026-11-20T12:00:00Z".parse().unwrap()
}

/// The calendar date `n` days before now.
pub fn day(n: i64) -> String {
    (now() - Duration::days(n)).date_naive().to_string()
}

/// A dateTime `h` hours before now.
pub fn hours(h: i64) -> String {
    (now() - Duration::hours(h)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A birth date giving this age in years at now.
pub fn born(age: i32) -> String {
    format!("{}-06-01", 2026 - age)
}

pub fn patient(birth: Option<&str>) -> Value {
    let mut p = json!({"resourceType": "Patient", "id": PID, "gender": "female"});
    if let Some(b) = birth {
        p["birthDate"] = json!(b);
    }
    p
}

pub fn adult() -> Value {
    patient(Some(&born(40)))
}

fn subject() -> Value {
    json!({"reference": format!("Patient/{PID}")})
}

/// An active, confirmed Condition with onset `days` ago.
pub fn cond(id: &str, system: &str, code: &str, days: i64) -> Value {
    json!({
        "resourceType": "Condition", "id": id,
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
        "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}]},
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": subject(),
        "onsetDateTime": day(days)
    })
}

/// The same with a clinicalStatus code.
pub fn cond_status(id: &str, system: &str, code: &str, days: i64, status: &str) -> Value {
    let mut c = cond(id, system, code, days);
    c["clinicalStatus"]["coding"][0]["code"] = json!(status);
    c
}

pub fn leg_pain(id: &str, code: &str, days: i64) -> Value {
    cond(id, ICD, code, days)
}

/// An Observation with a code and an optional value.
pub fn obs(id: &str, system: &str, code: &str, effective: &str) -> Value {
    json!({
        "resourceType": "Observation", "id": id, "status": "final",
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": subject(),
        "effectiveDateTime": effective
    })
}

pub fn qty(mut o: Value, value: Value, unit: &str) -> Value {
    o["valueQuantity"] = json!({"value": value, "unit": unit, "system": UCUM, "code": unit});
    o
}

pub fn d_dimer(id: &str, code: &str, value: f64, unit: &str, days: i64) -> Value {
    qty(obs(id, LOINC, code, &day(days)), json!(value), unit)
}

pub fn procedure(id: &str, system: &str, code: &str, days: i64) -> Value {
    json!({
        "resourceType": "Procedure", "id": id, "status": "completed",
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": subject(),
        "performedDateTime": day(days)
    })
}

pub fn med_request(id: &str, rxnorm: &str, status: &str) -> Value {
    json!({
        "resourceType": "MedicationRequest", "id": id, "status": status, "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": RX, "code": rxnorm}]},
        "subject": subject(),
        "authoredOn": day(20)
    })
}

pub fn encounter(id: &str, class: &str, start: i64, end: Option<i64>) -> Value {
    let mut period = json!({"start": day(start)});
    if let Some(e) = end {
        period["end"] = json!(day(e));
    }
    json!({
        "resourceType": "Encounter", "id": id, "status": if end.is_some() { "finished" } else { "in-progress" },
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": class},
        "subject": subject(),
        "period": period
    })
}

pub fn service_request(id: &str, system: &str, code: &str, status: &str, days: i64) -> Value {
    json!({
        "resourceType": "ServiceRequest", "id": id, "status": status, "intent": "order",
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": subject(),
        "authoredOn": day(days)
    })
}

pub fn input(hook: Hook) -> HookInput {
    HookInput {
        hook,
        hook_instance: "d1b8e0a2-0000-4000-8000-000000000001".to_string(),
        patient_id: PID.to_string(),
        encounter_id: None,
        draft_orders: vec![],
        data_quality: vec![],
    }
}

pub fn run(resources: &[Value]) -> Value {
    run_with(&input(Hook::PatientView), resources)
}

pub fn run_with(input: &HookInput, resources: &[Value]) -> Value {
    serde_json::to_value(respond_to(
        mappings(),
        input,
        &from_values(resources),
        now(),
    ))
    .unwrap()
}

/// The single card, or None.
pub fn card(resp: &Value) -> Option<&Value> {
    let cards = resp["cards"].as_array().expect("cards array");
    assert!(cards.len() <= 1, "at most one card");
    cards.first()
}

pub fn ext(resp: &Value) -> &Value {
    &card(resp).expect("a card")["extension"]["dvt-assessment"]
}

pub fn category(resp: &Value) -> Option<String> {
    card(resp).map(|c| {
        c["extension"]["dvt-assessment"]["category"]
            .as_str()
            .unwrap()
            .to_string()
    })
}

/// The codes of every suggested ServiceRequest.
pub fn suggestion_codes(resp: &Value) -> Vec<String> {
    let Some(c) = card(resp) else { return vec![] };
    c.get("suggestions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|s| {
            s["actions"][0]["resource"]["code"]["coding"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|c| c["code"].as_str().unwrap().to_string())
        .collect()
}

pub fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|x| x.as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}
