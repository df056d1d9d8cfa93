//! Discovery entries (`GET /cds-services`). Spec: `cds-hooks-2.0.1.md` "Discovery".

use std::collections::BTreeMap;

use serde::Serialize;

use super::Hook;
use crate::mappings::Mappings;

/// The key of our discovery extension (CDS Hooks 2.0 "Extensions": a JSON object under
/// `extension`): which mapping set answers, in the shape of the card extension's
/// `mappings` (`dvt-model.md` §6), so an EHR can tell which clinical knowledge it calls.
pub const MAPPINGS_EXTENSION: &str = "dvt-cds-mappings";

/// The key of our discovery extension that names the software answering: `{"name":
/// "dvt-cds", "version": <crate version>}`, so an EHR team can tell which release it
/// calls (with the mapping set, what changed between two answers).
pub const SERVICE_EXTENSION: &str = "dvt-cds-service";

/// The software a service runs: this build's name and version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceRef {
    pub name: &'static str,
    pub version: &'static str,
}

impl ServiceRef {
    pub const THIS: ServiceRef = ServiceRef {
        name: "dvt-cds",
        version: env!("CARGO_PKG_VERSION"),
    };
}

/// A discovery entry's `extension` (CDS Hooks 2.0 "Extensions": one object whose keys
/// are the extension's names).
#[derive(Debug, Clone, Serialize)]
pub struct DiscoveryExtension {
    #[serde(rename = "dvt-cds-mappings")]
    pub mappings: MappingSetRef,
    #[serde(rename = "dvt-cds-service")]
    pub service: ServiceRef,
}

/// The mapping set a service answers with: `{"name": id, "version": version}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MappingSetRef {
    pub name: String,
    pub version: String,
}

impl MappingSetRef {
    pub fn of(mappings: &Mappings) -> Self {
        MappingSetRef {
            name: mappings.id.clone(),
            version: mappings.version.clone(),
        }
    }
}

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
    /// `{"dvt-cds-mappings": {"name": .., "version": ..}, "dvt-cds-service": {"name":
    /// "dvt-cds", "version": ..}}`.
    pub extension: DiscoveryExtension,
}

const USAGE: &str = "Send the prefetch listed here, or fhirServer with fhirAuthorization \
    (read access to Patient, Condition, Observation, Procedure, MedicationRequest, \
    MedicationStatement, Encounter, ServiceRequest and DiagnosticReport for the patient). \
    Without either the service answers 412. Calls are authenticated with a JWT signed \
    ES384 or RS384 by a registered issuer.";

impl DiscoveryService {
    pub fn for_hook(hook: Hook, mappings: &MappingSetRef) -> Self {
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
            extension: DiscoveryExtension {
                mappings: mappings.clone(),
                service: ServiceRef::THIS,
            },
        }
    }
}

/// The body of `GET /cds-services`: the four services, each naming the mapping set.
pub fn discovery_document(mappings: &Mappings) -> serde_json::Value {
    let set = MappingSetRef::of(mappings);
    let services: Vec<DiscoveryService> = Hook::ALL
        .into_iter()
        .map(|hook| DiscoveryService::for_hook(hook, &set))
        .collect();
    serde_json::json!({ "services": services })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_service_names_the_mapping_set_and_the_release() {
        let m = Mappings::embedded().expect("shipped mappings");
        let d = discovery_document(&m);
        let services = d["services"].as_array().expect("services");
        assert_eq!(services.len(), 4);
        for s in services {
            assert_eq!(
                s["extension"][MAPPINGS_EXTENSION],
                serde_json::json!({"name": "dvt-cds-default", "version": "2.0.0"}),
                "{s}"
            );
            assert_eq!(
                s["extension"][SERVICE_EXTENSION],
                serde_json::json!({"name": "dvt-cds", "version": env!("CARGO_PKG_VERSION")}),
                "{s}"
            );
            assert_eq!(s["extension"].as_object().map(|o| o.len()), Some(2), "{s}");
        }
    }
}
