//! Which Medications a call reads live (pure: no I/O): the `medicationReference`s of the
//! current MedicationRequests and MedicationStatements that neither a contained resource
//! (`#id`) nor a Medication already gathered (prefetch or `_include`) resolves
//! (`dvt-model.md` §1 "Medications").

use std::collections::HashSet;

use url::Url;

use super::egress::ServerBase;
use crate::record::resource::{Resource, ResourceType};

/// Most Medications read live in one call. A patient's list of current medications is
/// rarely longer (polypharmacy is counted from 5 to 10 drugs), each read is a round trip
/// inside the call's deadline, and an odd or hostile record could reference thousands.
/// A reference past the cap stays unresolved: the record notes it and the patient counts
/// as possibly anticoagulated (§1), the safe side.
pub const MAX_MEDICATION_READS: usize = 20;

/// The ids of the Medications to read, in record order, each once: references of
/// current MedicationRequests / MedicationStatements to `Medication/{id}`, relative or
/// absolute under `server` (another server's ids mean nothing on ours), that no
/// Medication in `resources` answers. Contained (`#id`) and `urn:` references are left
/// to the record: nothing on the server can resolve them.
pub fn unresolved_ids(resources: &[Box<Resource>], server: Option<&ServerBase>) -> Vec<String> {
    let known: HashSet<&str> = resources
        .iter()
        .filter(|r| r.resource_type() == Some(&ResourceType::Medication))
        .filter_map(|r| r.id())
        .collect();
    let mut seen = HashSet::new();
    resources
        .iter()
        .filter(|r| is_current_medication_use(r))
        .filter_map(|r| r.medication.medication_reference.get()?.reference.as_str())
        .filter_map(|reference| medication_id(reference, server))
        .filter(|id| !known.contains(id.as_str()))
        .filter(|id| seen.insert(id.clone()))
        .collect()
}

/// A MedicationRequest / MedicationStatement whose status may still mean current use
/// (the statuses the record reader never counts are left out: `dvt-model.md` §1).
fn is_current_medication_use(r: &Resource) -> bool {
    let status = r.status.as_str().unwrap_or("");
    match r.resource_type() {
        Some(ResourceType::MedicationRequest) => !matches!(
            status,
            "entered-in-error" | "cancelled" | "stopped" | "completed"
        ),
        Some(ResourceType::MedicationStatement) => !matches!(
            status,
            "entered-in-error" | "stopped" | "completed" | "not-taken"
        ),
        _ => false,
    }
}

/// The id of a reference to a Medication that can be read on `server`.
fn medication_id(reference: &str, server: Option<&ServerBase>) -> Option<String> {
    let reference = reference.trim();
    if reference.starts_with('#') || reference.starts_with("urn:") {
        return None;
    }
    let path = if reference.contains("://") {
        let url = Url::parse(reference).ok()?;
        if !server.is_some_and(|s| s.contains(&url)) {
            return None;
        }
        url.path().to_string()
    } else {
        reference.to_string()
    };
    // `.../Medication/{id}`, or `.../Medication/{id}/_history/{version}`.
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let segments = match segments.as_slice() {
        [rest @ .., "_history", _] => rest,
        all => all,
    };
    match segments {
        [.., "Medication", id] if is_fhir_id(id) => Some((*id).to_string()),
        _ => None,
    }
}

/// FHIR `id`: `[A-Za-z0-9\-\.]{1,64}` (it goes into a read URL).
fn is_fhir_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::resource::{Field, from_value};
    use serde_json::{Value, json};

    fn typed(v: Value) -> Box<Resource> {
        match from_value(&v) {
            Field::Value(r) => Box::new(r),
            _ => panic!("not a resource: {v}"),
        }
    }

    fn request(id: &str, status: &str, reference: &str) -> Value {
        json!({"resourceType": "MedicationRequest", "id": id, "status": status,
               "medicationReference": {"reference": reference}})
    }

    #[test]
    fn only_unresolved_readable_references_of_current_use_are_read() {
        let server = ServerBase::parse("https://ehr.example/fhir").unwrap();
        let resources = vec![
            request("a", "active", "Medication/m1"),
            request("b", "active", "Medication/m1"), // the same Medication: once
            request(
                "c",
                "on-hold",
                "https://ehr.example/fhir/Medication/m2/_history/3",
            ),
            request("d", "active", "https://other.example/fhir/Medication/m3"),
            request("e", "stopped", "Medication/m4"),
            request("f", "active", "#contained"),
            request(
                "g",
                "active",
                "urn:uuid:4e0a3a1e-3283-4575-ab82-028d55fe2719",
            ),
            request("h", "active", "Medication/in-the-prefetch"),
            request("i", "active", "Medication/a%2Fb"),
            request("j", "active", "Substance/s1"),
            json!({"resourceType": "MedicationStatement", "id": "k", "status": "active",
                   "medicationReference": {"reference": " Medication/m5 "}}),
            json!({"resourceType": "MedicationStatement", "id": "l", "status": "not-taken",
                   "medicationReference": {"reference": "Medication/m6"}}),
            json!({"resourceType": "Medication", "id": "in-the-prefetch"}),
            json!({"resourceType": "Observation", "id": "o",
                   "medicationReference": {"reference": "Medication/m7"}}),
        ];
        let resources: Vec<Box<Resource>> = resources.into_iter().map(typed).collect();
        assert_eq!(
            unresolved_ids(&resources, Some(&server)),
            ["m1", "m2", "m5"]
        );
        // Without a server, absolute references are not ours to read.
        assert_eq!(unresolved_ids(&resources, None), ["m1", "m5"]);
    }
}
