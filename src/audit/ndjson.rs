//! FHIR Bulk Data NDJSON (`Patient.ndjson`, `Condition.ndjson`, ...: one resource type
//! per file, lines in any order) grouped by patient through an offset index: one pass
//! records where each patient's lines are (file, byte offset, length); each patient is
//! then read back alone. Memory: the index plus the largest patient, not the population.
//!
//! A line belongs to the patient its `subject` or `patient` reference names (a Patient
//! line to its own id). Medication lines belong to nobody: they are indexed by id and
//! added to a patient whose MedicationRequest / MedicationStatement references them, so
//! that the record can resolve `medicationReference` (`dvt-model.md` §1 Medications).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::input::{PatientResources, Unreadable, file_name};
use crate::record::resource::{self, Field, Resource};

/// Where one line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LineRef {
    file: u32,
    offset: u64,
    len: u32,
}

/// The offset index of a set of NDJSON files.
#[derive(Debug, Default)]
pub struct BulkIndex {
    files: Vec<PathBuf>,
    /// Patients in the order their first line was met, with their lines.
    patients: Vec<(String, Vec<LineRef>)>,
    by_id: HashMap<String, usize>,
    medications: HashMap<String, LineRef>,
    /// Lines that name no patient and are not Medications (Organization, Practitioner...).
    pub unlinked_lines: u64,
    /// Lines and files that could not be read.
    pub unreadable: Vec<Unreadable>,
}

/// What the indexing pass reads of a line; serde skips the rest without building it.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(rename = "resourceType", borrow)]
    resource_type: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    id: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    subject: Option<Reference<'a>>,
    #[serde(borrow)]
    patient: Option<Reference<'a>>,
}

#[derive(Deserialize)]
struct Reference<'a> {
    #[serde(borrow)]
    reference: Option<std::borrow::Cow<'a, str>>,
}

/// The longest line indexed: a longer one is reported, not read (a length must fit the
/// index's u32, and no single resource is this large).
const MAX_LINE: u64 = u32::MAX as u64;

impl BulkIndex {
    /// Index `files` (one pass, line by line).
    pub fn build(files: &[PathBuf]) -> BulkIndex {
        let mut index = BulkIndex {
            files: files.to_vec(),
            ..BulkIndex::default()
        };
        for (i, path) in files.iter().enumerate() {
            if let Err(e) = index.index_file(i as u32, path) {
                index.unreadable.push(Unreadable::new(
                    file_name(path),
                    format!("cannot read: {e}"),
                ));
            }
        }
        index
    }

    fn index_file(&mut self, file: u32, path: &Path) -> std::io::Result<()> {
        let mut reader = BufReader::with_capacity(1 << 16, File::open(path)?);
        let mut line = Vec::new();
        let (mut offset, mut number) = (0u64, 0u64);
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line)? as u64;
            if n == 0 {
                return Ok(());
            }
            number += 1;
            let at = LineRef {
                file,
                offset,
                len: n.min(MAX_LINE) as u32,
            };
            offset += n;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let here = || format!("{} line {number}", file_name(path));
            if n > MAX_LINE {
                self.unreadable
                    .push(Unreadable::new(here(), "line longer than 4 GiB"));
                continue;
            }
            match serde_json::from_slice::<Head>(&line) {
                Ok(head) => self.add(head, at, here),
                Err(e) => self.unreadable.push(Unreadable::new(
                    here(),
                    format!("not a JSON resource: {}", e.classify_text()),
                )),
            }
        }
    }

    fn add(&mut self, head: Head, at: LineRef, here: impl Fn() -> String) {
        let Some(kind) = head.resource_type.as_deref() else {
            self.unreadable
                .push(Unreadable::new(here(), "no resourceType"));
            return;
        };
        let owner = match kind {
            "Patient" => head.id.as_deref().filter(|id| !id.is_empty()),
            "Medication" => {
                if let Some(id) = head.id.as_deref() {
                    self.medications.insert(id.to_string(), at);
                }
                return;
            }
            _ => [&head.subject, &head.patient]
                .into_iter()
                .flatten()
                .find_map(|r| r.reference.as_deref().and_then(patient_of)),
        };
        match owner {
            Some(id) => {
                let slot = match self.by_id.get(id) {
                    Some(&slot) => slot,
                    None => {
                        self.patients.push((id.to_string(), Vec::new()));
                        self.by_id.insert(id.to_string(), self.patients.len() - 1);
                        self.patients.len() - 1
                    }
                };
                self.patients[slot].1.push(at);
            }
            None if kind == "Patient" => self
                .unreadable
                .push(Unreadable::new(here(), "Patient without an id")),
            None => self.unlinked_lines += 1,
        }
    }

    /// How many patients (distinct ids) the files name.
    pub fn len(&self) -> usize {
        self.patients.len()
    }

    pub fn is_empty(&self) -> bool {
        self.patients.is_empty()
    }

    /// Read the `n`th patient's lines back, with the Medications they reference.
    pub fn read_patient(&self, n: usize) -> Result<PatientResources, String> {
        let (id, lines) = &self.patients[n];
        let mut sorted = lines.clone();
        sorted.sort_by_key(|l| (l.file, l.offset));
        let mut files = OpenFiles::default();
        let mut resources = Vec::with_capacity(sorted.len() + 1);
        for at in &sorted {
            resources.push(files.read(&self.files, *at)?);
        }
        let mut wanted: Vec<&str> = resources.iter().flat_map(|r| medication_refs(r)).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let medications: Vec<LineRef> = wanted
            .iter()
            .filter_map(|m| self.medications.get(*m).copied())
            .collect();
        for at in medications {
            resources.push(files.read(&self.files, at)?);
        }
        Ok(PatientResources {
            patient_id: id.clone(),
            resources,
        })
    }
}

/// The patient id of a reference: `Patient/ID` (relative or absolute, `_history` after
/// it ignored, as Bulk Data writes them) or `urn:uuid:ID` (as Synthea's Bundles do).
fn patient_of(reference: &str) -> Option<&str> {
    let id = if let Some(i) = reference.rfind("Patient/") {
        let rest = &reference[i + "Patient/".len()..];
        rest.split('/').next().unwrap_or(rest)
    } else {
        reference.strip_prefix("urn:uuid:")?
    };
    (!id.is_empty()).then_some(id)
}

/// The Medication ids a resource references by `Medication/ID` (contained `#id` ones are
/// inside it already).
fn medication_refs(r: &Resource) -> Option<&str> {
    let reference = r
        .medication
        .medication_reference
        .get()?
        .reference
        .as_str()?;
    let i = reference.rfind("Medication/")?;
    let rest = &reference[i + "Medication/".len()..];
    Some(rest.split('/').next().unwrap_or(rest))
}

/// The files one patient's read has open (a handful: one per resource type).
#[derive(Default)]
struct OpenFiles {
    open: HashMap<u32, File>,
}

impl OpenFiles {
    fn read(&mut self, paths: &[PathBuf], at: LineRef) -> Result<Box<Resource>, String> {
        let path = &paths[at.file as usize];
        let file = match self.open.entry(at.file) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => v.insert(
                File::open(path).map_err(|e| format!("{}: cannot reopen: {e}", file_name(path)))?,
            ),
        };
        let mut buf = vec![0u8; at.len as usize];
        file.seek(SeekFrom::Start(at.offset))
            .and_then(|_| file.read_exact(&mut buf))
            .map_err(|e| format!("{}: cannot read back: {e}", file_name(path)))?;
        // Indexed lines are JSON objects: anything else means the file changed.
        match resource::from_slice(&buf) {
            Ok(Field::Value(r)) => Ok(Box::new(r)),
            _ => Err(format!("{}: changed while the audit ran", file_name(path))),
        }
    }
}

/// serde_json's error kinds in words (the message itself could quote the line's content).
trait Classify {
    fn classify_text(&self) -> String;
}

impl Classify for serde_json::Error {
    fn classify_text(&self) -> String {
        use serde_json::error::Category;
        let what = match self.classify() {
            Category::Io => "read error",
            Category::Syntax => "syntax error",
            Category::Data => "not a FHIR resource object",
            Category::Eof => "truncated",
        };
        format!("{what} at column {}", self.column())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, lines: &[&str]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, lines.join("\n") + "\n").unwrap();
        p
    }

    fn ids(p: &PatientResources) -> Vec<String> {
        let mut v: Vec<String> = p
            .resources
            .iter()
            .map(|r| {
                format!(
                    "{}/{}",
                    r.resource_type().unwrap().as_str(),
                    r.id().unwrap()
                )
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn lines_in_any_order_are_grouped_by_patient() {
        let dir = tempfile::tempdir().unwrap();
        // Conditions before Patients, patients interleaved, one absolute reference.
        let cond = write(
            dir.path(),
            "Condition.ndjson",
            &[
                r#"{"resourceType":"Condition","id":"c2","subject":{"reference":"Patient/b"}}"#,
                r#"{"resourceType":"Condition","id":"c1","subject":{"reference":"https://x.org/fhir/Patient/a/_history/3"}}"#,
                r#"{"resourceType":"Condition","id":"c3","subject":{"reference":"Patient/b"}}"#,
            ],
        );
        let pat = write(
            dir.path(),
            "Patient.ndjson",
            &[
                r#"{"resourceType":"Patient","id":"b"}"#,
                "",
                r#"{"resourceType":"Patient","id":"a"}"#,
            ],
        );
        let allergy = write(
            dir.path(),
            "AllergyIntolerance.ndjson",
            &[
                r#"{"resourceType":"AllergyIntolerance","id":"x1","patient":{"reference":"urn:uuid:a"}}"#,
            ],
        );
        let org = write(
            dir.path(),
            "Organization.ndjson",
            &[r#"{"resourceType":"Organization","id":"o1"}"#],
        );
        let index = BulkIndex::build(&[cond, pat, allergy, org]);
        assert!(index.unreadable.is_empty(), "{:?}", index.unreadable);
        assert_eq!(index.len(), 2);
        assert_eq!(index.unlinked_lines, 1);
        let all: HashMap<String, Vec<String>> = (0..index.len())
            .map(|n| {
                let p = index.read_patient(n).unwrap();
                (p.patient_id.clone(), ids(&p))
            })
            .collect();
        assert_eq!(
            all["a"],
            ["AllergyIntolerance/x1", "Condition/c1", "Patient/a"]
        );
        assert_eq!(all["b"], ["Condition/c2", "Condition/c3", "Patient/b"]);
    }

    #[test]
    fn unreadable_lines_are_counted_and_named_and_the_rest_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let pat = write(
            dir.path(),
            "Patient.ndjson",
            &[
                r#"{"resourceType":"Patient","id":"a"}"#,
                r#"{"resourceType":"Patient","id":"b", TRUNCATED"#,
                r#"[1, 2]"#,
                r#"{"id":"no-type"}"#,
                r#"{"resourceType":"Patient"}"#,
                r#"{"resourceType":"Patient","id":"c"}"#,
            ],
        );
        let missing = dir.path().join("Missing.ndjson");
        let index = BulkIndex::build(&[pat, missing]);
        assert_eq!(index.len(), 2);
        let where_: Vec<&str> = index.unreadable.iter().map(|u| u.input.as_str()).collect();
        assert_eq!(
            where_,
            [
                "Patient.ndjson line 2",
                "Patient.ndjson line 3",
                "Patient.ndjson line 4",
                "Patient.ndjson line 5",
                "Missing.ndjson"
            ]
        );
        // The reason never quotes the line (it may hold PHI).
        assert!(
            index
                .unreadable
                .iter()
                .all(|u| !u.reason.contains("TRUNCATED"))
        );
    }

    #[test]
    fn referenced_medications_join_their_patient() {
        let dir = tempfile::tempdir().unwrap();
        let meds = write(
            dir.path(),
            "Medication.ndjson",
            &[
                r#"{"resourceType":"Medication","id":"m1","code":{"text":"apixaban"}}"#,
                r#"{"resourceType":"Medication","id":"m2","code":{"text":"other"}}"#,
            ],
        );
        let mr = write(
            dir.path(),
            "MedicationRequest.ndjson",
            &[
                r#"{"resourceType":"MedicationRequest","id":"r1","subject":{"reference":"Patient/a"},"medicationReference":{"reference":"Medication/m1"}}"#,
                r#"{"resourceType":"MedicationRequest","id":"r2","subject":{"reference":"Patient/a"},"medicationReference":{"reference":"Medication/m1"}}"#,
            ],
        );
        let pat = write(
            dir.path(),
            "Patient.ndjson",
            &[r#"{"resourceType":"Patient","id":"a"}"#],
        );
        let index = BulkIndex::build(&[meds, mr, pat]);
        let p = index.read_patient(0).unwrap();
        assert_eq!(
            ids(&p),
            [
                "Medication/m1",
                "MedicationRequest/r1",
                "MedicationRequest/r2",
                "Patient/a"
            ]
        );
    }

    #[test]
    fn patient_references() {
        assert_eq!(patient_of("Patient/p1"), Some("p1"));
        assert_eq!(
            patient_of("https://x/fhir/Patient/p1/_history/2"),
            Some("p1")
        );
        assert_eq!(patient_of("urn:uuid:1234"), Some("1234"));
        assert_eq!(patient_of("Group/g"), None);
        assert_eq!(patient_of("Patient/"), None);
    }
}
