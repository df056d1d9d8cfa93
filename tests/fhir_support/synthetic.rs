//! Small synthetic patients as transaction Bundles (PUT keeps the ids), dated relative
//! to a fixed "now". Each resource is marked with whether it falls inside the live
//! search windows (`FhirSettings::default().windows`), so tests know what `gather`
//! must return.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

/// The fixed "now" of the synthetic data.
pub fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-06-15T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn ago(days: i64) -> String {
    (now() - Duration::days(days)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn day_ago(days: i64) -> String {
    (now() - Duration::days(days))
        .format("%Y-%m-%d")
        .to_string()
}

pub struct Patient {
    pub id: String,
    /// Every resource of the patient, with whether `gather` must return it.
    pub resources: Vec<(Value, bool)>,
}

impl Patient {
    fn new(id: &str, gender: &str, birth: &str) -> Patient {
        let patient = json!({"resourceType": "Patient", "id": id, "gender": gender, "birthDate": birth,
                             "name": [{"family": "Synthetic", "given": [id]}]});
        Patient {
            id: id.into(),
            resources: vec![(patient, true)],
        }
    }

    fn subject(&self) -> Value {
        json!({"reference": format!("Patient/{}", self.id)})
    }

    fn add(&mut self, mut resource: Value, expected: bool) -> &mut Self {
        let n = self.resources.len();
        let rt = resource["resourceType"].as_str().unwrap().to_owned();
        resource["id"] = json!(format!("{}-{}-{n}", self.id, rt.to_lowercase()));
        if rt != "Patient" {
            resource["subject"] = self.subject();
        }
        self.resources.push((resource, expected));
        self
    }

    fn condition(
        &mut self,
        system: &str,
        code: &str,
        onset_days: i64,
        clinical: &str,
    ) -> &mut Self {
        let r = json!({"resourceType": "Condition",
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": clinical}]},
            "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}]},
            "code": {"coding": [{"system": system, "code": code}]},
            "onsetDateTime": ago(onset_days), "recordedDate": ago(onset_days)});
        // Conditions are never narrowed by date: all are expected.
        self.add(r, true)
    }

    fn observation(&mut self, loinc: &str, value: Value, days: i64) -> &mut Self {
        let mut r = json!({"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
            "effectiveDateTime": ago(days)});
        r.as_object_mut()
            .unwrap()
            .extend(value.as_object().unwrap().clone());
        self.add(r, days <= 280)
    }

    fn procedure(&mut self, snomed: &str, days: i64) -> &mut Self {
        let r = json!({"resourceType": "Procedure", "status": "completed",
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": snomed}]},
            "performedPeriod": {"start": ago(days), "end": ago(days)}});
        self.add(r, days <= 280)
    }

    fn medication_request(&mut self, rxnorm: &str, status: &str, days: i64) -> &mut Self {
        let r = json!({"resourceType": "MedicationRequest", "status": status, "intent": "order",
            "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": rxnorm}]},
            "authoredOn": day_ago(days)});
        self.add(r, true)
    }

    fn medication_statement(&mut self, rxnorm: &str, days: i64) -> &mut Self {
        let r = json!({"resourceType": "MedicationStatement", "status": "active",
            "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": rxnorm}]},
            "effectiveDateTime": ago(days)});
        self.add(r, true)
    }

    fn encounter(&mut self, class: &str, start_days: i64, end_days: Option<i64>) -> &mut Self {
        let mut period = json!({"start": ago(start_days)});
        if let Some(e) = end_days {
            period["end"] = json!(ago(e));
        }
        let r = json!({"resourceType": "Encounter", "status": if end_days.is_some() {"finished"} else {"in-progress"},
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": class},
            "period": period});
        self.add(r, end_days.is_none_or(|e| e <= 183))
    }

    fn service_request(&mut self, cpt: &str, days: i64) -> &mut Self {
        let r = json!({"resourceType": "ServiceRequest", "status": "active", "intent": "order",
            "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": cpt}]},
            "authoredOn": ago(days)});
        self.add(r, days <= 7)
    }

    fn diagnostic_report(&mut self, cpt: &str, days: i64) -> &mut Self {
        let r = json!({"resourceType": "DiagnosticReport", "status": "final",
            "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": cpt}]},
            "effectiveDateTime": ago(days), "issued": ago(days)});
        self.add(r, days <= 7)
    }

    /// The transaction Bundle that loads the patient (PUT keeps the ids).
    pub fn transaction(&self) -> Value {
        let entries: Vec<Value> = self
            .resources
            .iter()
            .map(|(r, _)| {
                let url = format!(
                    "{}/{}",
                    r["resourceType"].as_str().unwrap(),
                    r["id"].as_str().unwrap()
                );
                json!({"fullUrl": format!("urn:uuid:{}", uuid_like(&url)), "resource": r,
                       "request": {"method": "PUT", "url": url}})
            })
            .collect();
        json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})
    }

    /// `(type, id)` of every resource `gather` must return for this patient.
    pub fn expected(&self) -> BTreeSet<(String, String)> {
        self.resources
            .iter()
            .filter(|(_, e)| *e)
            .map(|(r, _)| type_id(r))
            .collect()
    }

    /// `(type, id)` of the expected resources of one type.
    pub fn expected_of(&self, resource_type: &str) -> BTreeSet<(String, String)> {
        self.expected()
            .into_iter()
            .filter(|(t, _)| t == resource_type)
            .collect()
    }
}

fn uuid_like(s: &str) -> String {
    // A stable, valid-looking uuid from the resource URL (fullUrl must be unique).
    let mut h: u128 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h = (h ^ u128::from(b)).wrapping_mul(0x100000001b3);
    }
    let x = format!("{h:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

pub fn type_id(r: &Value) -> (String, String) {
    (
        r["resourceType"].as_str().unwrap_or_default().to_owned(),
        r["id"].as_str().unwrap_or_default().to_owned(),
    )
}

/// `(type, id)` of what `gather` returned (typed resources).
pub fn type_ids(
    resources: &[Box<dvt_cds::record::resource::Resource>],
) -> BTreeSet<(String, String)> {
    resources
        .iter()
        .map(|r| {
            (
                r.resource_type().map_or("", |t| t.as_str()).to_owned(),
                r.id().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

const ICD10: &str = "http://hl7.org/fhir/sid/icd-10-cm";
const SNOMED: &str = "http://snomed.info/sct";

/// Four patients covering every resource type, each with resources inside and outside
/// the live windows.
pub fn patients() -> Vec<Patient> {
    // Calf pain after knee surgery, with an old DVT: many Observations (for paging).
    let mut p1 = Patient::new("dvt-p1", "male", "1961-04-02");
    p1.condition(ICD10, "M79.661", 2, "active")
        .condition(ICD10, "I82.401", 3 * 365, "resolved")
        .condition(SNOMED, "363346000", 5 * 365, "remission")
        .observation("8867-4", json!({"valueQuantity": {"value": 104, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}}), 0)
        .observation("8867-4", json!({"valueQuantity": {"value": 88, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}}), 1)
        .observation("59408-5", json!({"valueQuantity": {"value": 97, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}}), 0)
        .observation("48065-7", json!({"valueQuantity": {"value": 820, "unit": "ug/L", "system": "http://unitsofmeasure.org", "code": "ug/L"}}), 1)
        .observation("29463-7", json!({"valueQuantity": {"value": 91, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}}), 20)
        .observation("8867-4", json!({"valueQuantity": {"value": 70, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}}), 200)
        .observation("8480-6", json!({"valueQuantity": {"value": 130, "unit": "mm[Hg]", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}), 400)
        .observation("8867-4", json!({"valueQuantity": {"value": 66, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}}), 900)
        .procedure("609588000", 20)
        .procedure("80146002", 2000)
        .medication_request("1114195", "active", 700)
        .medication_request("197361", "stopped", 3000)
        .encounter("IMP", 24, Some(19))
        .encounter("AMB", 700, Some(700))
        .service_request("93971", 1)
        .service_request("93971", 60)
        .diagnostic_report("93971", 0)
        .diagnostic_report("93971", 100);

    // Pregnant, leg swelling, on a contraceptive before (statement).
    let mut p2 = Patient::new("dvt-p2", "female", "1994-09-12");
    p2.condition(ICD10, "R22.42", 1, "active")
        .condition(SNOMED, "77386006", 90, "active")
        .observation(
            "82810-3",
            json!({"valueCodeableConcept": {"coding": [{"system": SNOMED, "code": "77386006"}]}}),
            90,
        )
        .observation(
            "82810-3",
            json!({"valueCodeableConcept": {"coding": [{"system": SNOMED, "code": "60001007"}]}}),
            600,
        )
        .procedure("11466000", 1100)
        .medication_statement("748962", 500)
        .encounter("AMB", 0, None);

    // Leg pain with PE warning signs.
    let mut p3 = Patient::new("dvt-p3", "female", "1950-01-30");
    p3.condition(ICD10, "M79.662", 1, "active")
        .condition(ICD10, "R06.02", 0, "active")
        .observation("59408-5", json!({"valueQuantity": {"value": 91, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}}), 0)
        .observation("8867-4", json!({"valueQuantity": {"value": 112, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}}), 0)
        .medication_request("855332", "active", 30)
        .encounter("EMER", 0, None)
        .diagnostic_report("93970", 3);

    // Almost nothing: a Patient and one old Condition (empty searches elsewhere).
    let mut p4 = Patient::new("dvt-p4", "male", "2001-11-05");
    p4.condition(ICD10, "Z86.718", 4000, "active");

    vec![p1, p2, p3, p4]
}
