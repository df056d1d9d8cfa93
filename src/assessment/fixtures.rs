//! Small records for the assessment's unit tests (the spec v2 decisions of §3, §4, §5, §7,
//! table-driven in the module of each rule).

pub use serde_json::{Value, json};

pub use super::{Assessment, Category, HookInput, Indicator, SuggestionKind, assess};
pub use crate::cds_hooks::Hook;
use crate::record::resource;
pub use crate::test_support::{day, now, shipped as m};
pub use SuggestionKind::{Ctpa, DDimer, Ultrasound};

pub const ICD: &str = "http://hl7.org/fhir/sid/icd-10-cm";
pub const SCT: &str = "http://snomed.info/sct";
pub const LOINC: &str = "http://loinc.org";
pub const CPT: &str = "http://www.ama-assn.org/go/cpt";
pub const RX: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";

pub fn patient(age: i32) -> Value {
    json!({"resourceType": "Patient", "id": "p", "birthDate": format!("{}-06-01", 2026 - age)})
}
pub fn cond(id: &str, system: &str, code: &str, days: i64) -> Value {
    json!({"resourceType": "Condition", "id": id,
           "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
           "code": {"coding": [{"system": system, "code": code}]},
           "subject": {"reference": "Patient/p"}, "onsetDateTime": day(days)})
}
pub fn obs_qty(id: &str, code: &str, value: f64, unit: &str, days: i64) -> Value {
    json!({"resourceType": "Observation", "id": id, "status": "final",
           "code": {"coding": [{"system": LOINC, "code": code}]},
           "subject": {"reference": "Patient/p"}, "effectiveDateTime": day(days),
           "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}})
}
pub fn procedure(id: &str, days: i64) -> Value {
    json!({"resourceType": "Procedure", "id": id, "status": "completed",
           "code": {"coding": [{"system": SCT, "code": "10002003"}]},
           "subject": {"reference": "Patient/p"}, "performedDateTime": day(days)})
}
pub fn anticoagulant() -> Value {
    json!({"resourceType": "MedicationRequest", "id": "ac", "status": "active", "intent": "order",
           "medicationCodeableConcept": {"coding": [{"system": RX, "code": "1037045"}]},
           "subject": {"reference": "Patient/p"}, "authoredOn": day(20)})
}
pub fn draft(id: &str, system: &str, code: &str) -> Value {
    json!({"resourceType": "ServiceRequest", "id": id, "status": "draft", "intent": "proposal",
           "code": {"coding": [{"system": system, "code": code}]},
           "subject": {"reference": "Patient/p"}})
}
pub fn pain() -> Value {
    cond("pain", ICD, "M79.662", 2)
}
pub fn swelling() -> Value {
    cond("sw", ICD, "R22.42", 2)
}
pub fn heart_rate(v: f64) -> Value {
    obs_qty("hr", "8867-4", v, "/min", 0)
}
pub fn sob() -> Value {
    cond("sob", ICD, "R06.02", 1)
}
pub fn input(hook: Hook, drafts: Vec<Value>) -> HookInput {
    HookInput {
        hook,
        hook_instance: "t".into(),
        patient_id: "p".into(),
        encounter_id: None,
        draft_orders: resource::from_values(&drafts),
        data_quality: vec![],
    }
}
pub fn run(resources: Vec<Value>) -> Assessment {
    assess(
        m(),
        &input(Hook::PatientView, vec![]),
        &resource::from_values(&resources),
        now(),
    )
}
pub fn run_order(resources: Vec<Value>, drafts: Vec<Value>) -> Assessment {
    assess(
        m(),
        &input(Hook::OrderSign, drafts),
        &resource::from_values(&resources),
        now(),
    )
}
pub fn kinds(a: &Assessment) -> Vec<(SuggestionKind, bool)> {
    a.suggestions
        .iter()
        .map(|s| (s.kind, s.is_recommended))
        .collect()
}
