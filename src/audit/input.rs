//! What `audit` reads: a directory of patient Bundles (Synthea's `fhir/` output, one
//! patient per Bundle) or of FHIR Bulk Data NDJSON files (one resource type per file).
//! A file or line that cannot be read is an [`Unreadable`] entry of the report, never
//! the end of the run.

use std::path::{Path, PathBuf};

use crate::record;
use crate::record::resource::{self, Field, Resource, ResourceType};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// An input the audit could not use, and why (file name and line, never its content).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unreadable {
    pub input: String,
    pub reason: String,
}

impl Unreadable {
    pub fn new(input: impl Into<String>, reason: impl Into<String>) -> Unreadable {
        Unreadable {
            input: input.into(),
            reason: reason.into(),
        }
    }
}

/// How the report names a file: its file name (the directory is the one given).
pub fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// The two layouts `audit` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InputKind {
    /// `*.json` Bundles, one patient each.
    Bundles,
    /// `*.ndjson` Bulk Data files, one resource type each, grouped by patient here.
    Ndjson,
}

/// The files of an input directory, sorted by name.
#[derive(Debug, Clone)]
pub struct Inventory {
    pub kind: InputKind,
    pub files: Vec<PathBuf>,
    /// Files left aside on purpose: Synthea's hospital and practitioner Bundles (no
    /// patient), and files that are neither `.json` nor `.ndjson`.
    pub skipped: Vec<PathBuf>,
}

/// Synthea writes the organisations and practitioners of a run in Bundles of their own.
const NOT_PATIENT_BUNDLES: [&str; 2] = ["hospitalInformation", "practitionerInformation"];

/// List `dir`: Bundles or NDJSON files (not both: which one is meant would be a guess).
pub fn discover(dir: &Path) -> Result<Inventory, String> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: cannot read the directory: {e}", dir.display()))?;
    let (mut bundles, mut ndjson, mut skipped) = (Vec::new(), Vec::new(), Vec::new());
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: cannot list: {e}", dir.display()))?;
        let path = entry.path();
        if !path.is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".ndjson") {
            ndjson.push(path);
        } else if name.ends_with(".json")
            && !NOT_PATIENT_BUNDLES.iter().any(|p| name.starts_with(p))
        {
            bundles.push(path);
        } else {
            skipped.push(path);
        }
    }
    bundles.sort();
    ndjson.sort();
    skipped.sort();
    let (kind, files) = match (bundles.is_empty(), ndjson.is_empty()) {
        (false, true) => (InputKind::Bundles, bundles),
        (true, false) => (InputKind::Ndjson, ndjson),
        (false, false) => {
            return Err(format!(
                "{}: holds both .json Bundles ({}) and .ndjson files ({}): give a directory \
                 of one kind",
                dir.display(),
                bundles.len(),
                ndjson.len()
            ));
        }
        (true, true) => {
            return Err(format!(
                "{}: no patient Bundles (*.json) or Bulk Data files (*.ndjson) in it",
                dir.display()
            ));
        }
    };
    Ok(Inventory {
        kind,
        files,
        skipped,
    })
}

/// One patient's resources, ready for the assessment.
#[derive(Debug, Clone)]
pub struct PatientResources {
    pub patient_id: String,
    pub resources: Vec<Box<Resource>>,
}

impl PatientResources {
    /// The Patient resource itself (the first one with this id).
    pub fn patient(&self) -> Option<&Resource> {
        self.resources
            .iter()
            .find(|r| {
                r.resource_type() == Some(&ResourceType::Patient)
                    && r.id() == Some(self.patient_id.as_str())
            })
            .map(|r| &**r)
    }
}

/// Read one Bundle file holding one patient (Synthea writes a transaction Bundle per
/// patient; every resource of it is that patient's).
pub fn read_bundle(path: &Path) -> Result<PatientResources, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let bundle = resource::from_slice(&bytes).map_err(|e| format!("not valid JSON: {e}"))?;
    drop(bytes);
    bundle_resources(bundle)
}

/// The resources of a one-patient Bundle, moved out of it by the one flattener (an entry
/// without a resource is left out).
pub fn bundle_resources(bundle: Field<Resource>) -> Result<PatientResources, String> {
    let bundle = match bundle {
        Field::Value(b) if b.is_bundle() => b,
        _ => return Err("not a FHIR Bundle (resourceType is not \"Bundle\")".to_string()),
    };
    let mut resources = Vec::with_capacity(bundle.bundle.entry.count());
    let mut unreadable = 0;
    resource::flatten(Box::new(bundle), None, &mut unreadable, &mut |r, _| {
        resources.push(r)
    });
    let patients: Vec<&str> = resources
        .iter()
        .filter(|r| r.resource_type() == Some(&ResourceType::Patient))
        .filter_map(|r| r.id())
        .collect();
    let patient_id = match patients.as_slice() {
        [one] => (*one).to_string(),
        [] => return Err("the Bundle holds no Patient with an id".to_string()),
        many => {
            return Err(format!(
                "the Bundle holds {} Patients: audit reads one patient per Bundle",
                many.len()
            ));
        }
    };
    Ok(PatientResources {
        patient_id,
        resources,
    })
}

/// A living adult on `now` (the report's second denominator), by the assessment's own
/// rules: not deceased (`record::deceased_at`, `dvt-model.md` §1) and 18 or older (§4
/// rule 2; an unknown, unreadable or future birth date counts as adult, as rule 2 says).
pub fn living_adult(patient: &Resource, now: DateTime<Utc>) -> bool {
    let deceased = record::deceased_at(
        patient.person.deceased_boolean.get().copied(),
        patient.person.deceased_date_time.as_str(),
        now,
    );
    let age = patient
        .person
        .birth_date
        .as_str()
        .and_then(record::parse_when)
        .filter(|w| !w.is_future(now))
        .and_then(|w| record::age_at(w.date(), now));
    !deceased && age.is_none_or(|a| a >= 18)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn typed(v: Value) -> Field<Resource> {
        resource::from_value(&v)
    }

    fn now() -> DateTime<Utc> {
        "2026-12-01T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn living_adults_by_birth_date_and_death() {
        let cases = [
            (json!({"birthDate": "2008-12-01"}), true),
            (json!({"birthDate": "2008-12-02"}), false),
            (json!({"birthDate": "2008"}), true),
            (json!({"birthDate": "2010-05"}), false),
            (json!({}), true),
            (json!({"birthDate": "not a date"}), true),
            (
                json!({"birthDate": "1950-01-01", "deceasedBoolean": true}),
                false,
            ),
            (
                json!({"birthDate": "1950-01-01", "deceasedBoolean": false}),
                true,
            ),
            (
                json!({"birthDate": "1950-01-01", "deceasedDateTime": "2026-11-30T10:00:00Z"}),
                false,
            ),
            (
                json!({"birthDate": "1950-01-01", "deceasedDateTime": "2027-01-01"}),
                true,
            ),
            // As rule 2 reads it: an unreadable date of death proves nothing, the patient
            // is assessed (and gets a card), so the denominator counts them too.
            (
                json!({"birthDate": "1950-01-01", "deceasedDateTime": "garbled"}),
                true,
            ),
        ];
        for (patient, expected) in cases {
            let Field::Value(typed) = typed(patient.clone()) else {
                panic!("{patient}")
            };
            assert_eq!(living_adult(&typed, now()), expected, "{patient}");
        }
    }

    #[test]
    fn a_bundle_gives_its_one_patient_and_every_resource() {
        let b = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": "urn:uuid:p1", "resource": {"resourceType": "Patient", "id": "p1"}},
            {"resource": {"resourceType": "Condition", "id": "c1",
                          "subject": {"reference": "urn:uuid:p1"}}},
            {"request": {"method": "POST"}}
        ]});
        let p = bundle_resources(typed(b)).unwrap();
        assert_eq!(p.patient_id, "p1");
        assert_eq!(p.resources.len(), 2);
        assert!(p.patient().is_some());
    }

    #[test]
    fn bundles_without_one_patient_are_refused_with_a_reason() {
        let none = json!({"resourceType": "Bundle", "entry": [
            {"resource": {"resourceType": "Organization", "id": "o"}}]});
        assert!(
            bundle_resources(typed(none))
                .unwrap_err()
                .contains("no Patient")
        );
        let two = json!({"resourceType": "Bundle", "entry": [
            {"resource": {"resourceType": "Patient", "id": "a"}},
            {"resource": {"resourceType": "Patient", "id": "b"}}]});
        assert!(
            bundle_resources(typed(two))
                .unwrap_err()
                .contains("2 Patients")
        );
        let not_bundle = json!({"resourceType": "Patient", "id": "a"});
        assert!(
            bundle_resources(typed(not_bundle))
                .unwrap_err()
                .contains("not a FHIR Bundle")
        );
    }

    #[test]
    fn discover_skips_synthea_hospital_files_and_refuses_mixed_or_empty_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let touch = |n: &str| std::fs::write(dir.path().join(n), "{}").unwrap();
        assert!(
            discover(dir.path())
                .unwrap_err()
                .contains("no patient Bundles")
        );
        touch("hospitalInformation1.json");
        touch("practitionerInformation1.json");
        touch("notes.txt");
        touch("b_patient.json");
        touch("a_patient.json");
        let inv = discover(dir.path()).unwrap();
        assert_eq!(inv.kind, InputKind::Bundles);
        let names: Vec<_> = inv.files.iter().map(|p| p.file_name().unwrap()).collect();
        assert_eq!(names, ["a_patient.json", "b_patient.json"]);
        assert_eq!(inv.skipped.len(), 3);
        touch("Patient.ndjson");
        assert!(discover(dir.path()).unwrap_err().contains("both"));
        assert!(discover(&dir.path().join("missing")).is_err());
    }
}
