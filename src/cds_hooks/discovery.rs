//! Discovery entries (`GET /cds-services`). Spec: `cds-hooks-2.0.1.md` "Discovery".

use std::collections::BTreeMap;

use serde::Serialize;

use super::Hook;

/// One CDS Service as discovery describes it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscoveryService {
    pub hook: &'static str,
    pub id: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    /// CDS Hooks 2.0 tokens only (`{{context.patientId}}`); omitted when empty (JSON rule).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub prefetch: BTreeMap<&'static str, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_requirements: Option<&'static str>,
}

const USAGE: &str = "Send the prefetch listed here, or fhirServer with fhirAuthorization \
    (read access to Patient, Condition, Observation, Procedure, MedicationRequest, \
    MedicationStatement, Encounter, ServiceRequest and DiagnosticReport for the patient). \
    Without either the service answers 412. Calls are authenticated with a JWT signed \
    ES384 or RS384 by a registered issuer.";

impl DiscoveryService {
    pub fn for_hook(hook: Hook) -> Self {
        let (title, description) = match hook {
            Hook::PatientView => (
                "DVT assessment when a chart is opened",
                "Recognises calf pain or leg swelling in the patient's record, weighs deep \
                 vein thrombosis risk factors (Wells) and warning signs of pulmonary \
                 embolism, and suggests the next step: D-dimer, compression ultrasound, or \
                 urgent assessment.",
            ),
            Hook::EncounterStart => (
                "DVT assessment at the start of an encounter",
                "At admission or check-in, recognises calf pain or leg swelling, weighs deep \
                 vein thrombosis risk factors (Wells) and pulmonary embolism warning signs, \
                 and suggests the next step.",
            ),
            Hook::OrderSelect => (
                "DVT work-up check while ordering",
                "When a D-dimer or leg ultrasound is selected, checks it against the \
                 patient's deep vein thrombosis pre-test probability (Wells) and says whether \
                 it fits.",
            ),
            Hook::OrderSign => (
                "DVT work-up check before signing",
                "Before orders are signed, checks D-dimer and leg ultrasound orders against \
                 the patient's deep vein thrombosis pre-test probability (Wells) and flags \
                 pulmonary embolism warning signs.",
            ),
        };
        DiscoveryService {
            hook: hook.as_str(),
            id: hook.service_id(),
            title,
            description,
            prefetch: crate::fhir::prefetch_templates(hook),
            usage_requirements: Some(USAGE),
        }
    }
}

/// The body of `GET /cds-services`: the four services.
pub fn discovery_document() -> serde_json::Value {
    let services: Vec<DiscoveryService> = Hook::ALL
        .into_iter()
        .map(DiscoveryService::for_hook)
        .collect();
    serde_json::json!({ "services": services })
}
