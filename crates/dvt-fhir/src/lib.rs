//! The one place dvt-cds compiles fhir-sdk (R4B models, which R4 data shares for the
//! resources used here). Functions are non-generic and take plain data, so the generated
//! FHIR code is compiled once, in this crate, and edits elsewhere do not recompile it.
//!
//! Records are never parsed through these types (they are strict and silently drop
//! malformed choice elements: `fhir-notes.md`); they are used only to build what the
//! service sends: the draft `ServiceRequest` of a card suggestion (`dvt-model.md` §6).

use fhir_sdk::r4b::codes::{RequestIntent, RequestPriority, RequestStatus};
use fhir_sdk::r4b::resources::ServiceRequest;
use fhir_sdk::r4b::types::{CodeableConcept, Coding, Reference};

/// One coding of a draft order's code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftCoding {
    pub system: String,
    pub code: String,
    pub display: Option<String>,
}

/// Priority of a draft order (`ServiceRequest.priority`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DraftPriority {
    Stat,
    Urgent,
    Routine,
}

/// What a card suggests ordering: a draft `ServiceRequest` for the clinician to sign.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    /// `Patient.id` of the subject.
    pub patient_id: String,
    /// The hook's encounter, when known.
    pub encounter_id: Option<String>,
    /// CPT and LOINC codings (where known) of the order.
    pub codings: Vec<DraftCoding>,
    /// Human-readable order name (`code.text`).
    pub text: String,
    /// Optional category coding (e.g. SNOMED CT 363679005 Imaging).
    pub category: Option<DraftCoding>,
    pub priority: DraftPriority,
    /// Relative references (`Condition/7`) of the index presentation: `reasonReference`.
    pub reason_references: Vec<String>,
    /// Short instruction for the performer (`note` is avoided: it needs an author).
    pub patient_instruction: Option<String>,
}

fn coding(c: &DraftCoding) -> Result<Coding, String> {
    let mut b = Coding::builder()
        .system(c.system.clone())
        .code(c.code.clone());
    if let Some(d) = &c.display {
        b = b.display(d.clone());
    }
    b.build().map_err(|e| e.to_string())
}

fn reference(r: &str) -> Result<Reference, String> {
    Reference::builder()
        .reference(r.to_string())
        .build()
        .map_err(|e| e.to_string())
}

/// Build the draft `ServiceRequest` (status `draft`, intent `order`) as FHIR JSON.
/// Errors only if fhir-sdk refuses the resource (a missing required element).
pub fn draft_service_request(draft: &Draft) -> Result<serde_json::Value, String> {
    let codings = draft
        .codings
        .iter()
        .map(|c| coding(c).map(Some))
        .collect::<Result<Vec<_>, _>>()?;
    let code = CodeableConcept::builder()
        .coding(codings)
        .text(draft.text.clone())
        .build()
        .map_err(|e| e.to_string())?;
    let priority = match draft.priority {
        DraftPriority::Stat => RequestPriority::Stat,
        DraftPriority::Urgent => RequestPriority::Urgent,
        DraftPriority::Routine => RequestPriority::Routine,
    };
    let mut b = ServiceRequest::builder()
        .status(RequestStatus::Draft)
        .intent(RequestIntent::Order)
        .priority(priority)
        .code(code)
        .subject(reference(&format!("Patient/{}", draft.patient_id))?);
    if let Some(cat) = &draft.category {
        let cc = CodeableConcept::builder()
            .coding(vec![Some(coding(cat)?)])
            .build()
            .map_err(|e| e.to_string())?;
        b = b.category(vec![Some(cc)]);
    }
    if let Some(enc) = &draft.encounter_id {
        b = b.encounter(reference(&format!("Encounter/{enc}"))?);
    }
    if !draft.reason_references.is_empty() {
        let refs = draft
            .reason_references
            .iter()
            .map(|r| reference(r).map(Some))
            .collect::<Result<Vec<_>, _>>()?;
        b = b.reason_reference(refs);
    }
    if let Some(instr) = &draft.patient_instruction {
        b = b.patient_instruction(instr.clone());
    }
    let resource = b.build().map_err(|e| e.to_string())?;
    serde_json::to_value(&resource).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draft_has_status_intent_subject_code_and_reason() {
        let d = Draft {
            patient_id: "p1".into(),
            encounter_id: Some("e1".into()),
            codings: vec![DraftCoding {
                system: "http://www.ama-assn.org/go/cpt".into(),
                code: "93971".into(),
                display: Some("Duplex scan".into()),
            }],
            text: "Leg-vein ultrasound".into(),
            category: None,
            priority: DraftPriority::Urgent,
            reason_references: vec!["Condition/7".into()],
            patient_instruction: None,
        };
        let v = draft_service_request(&d).unwrap();
        assert_eq!(v["resourceType"], "ServiceRequest");
        assert_eq!(v["status"], "draft");
        assert_eq!(v["intent"], "order");
        assert_eq!(v["priority"], "urgent");
        assert_eq!(v["subject"]["reference"], "Patient/p1");
        assert_eq!(v["encounter"]["reference"], "Encounter/e1");
        assert_eq!(v["code"]["coding"][0]["code"], "93971");
        assert_eq!(v["reasonReference"][0]["reference"], "Condition/7");
        assert!(v.get("category").is_none());
    }
}
