//! Prefetch keys, their templates and the per-key decision (pure: no I/O).
//!
//! One table ([`key_specs`]) drives both the discovery templates and the live queries,
//! so what the EHR prefetches and what we fetch ourselves are the same searches (the
//! live ones may add a date window, which CDS Hooks 2.0 templates cannot express).

use super::bundle;
use crate::cds_hooks::{Hook, Prefetch, Prefetched};
use crate::record::resource::{Resource, ResourceType};

/// What a prefetch key reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// `Type/{{context.<field>}}`: one resource.
    Read(ContextId),
    /// `Type?patient={{context.patientId}}&_count=N`: a search.
    Search {
        /// Default `_count`: sized for a real record (hundreds of Conditions, thousands
        /// of Observations); servers cap it to their maximum and page the rest.
        count: u32,
        /// The search parameter that narrows live queries by date, when the resource
        /// type has one the model's windows can use (see `date_window` below).
        date_param: Option<&'static str>,
        /// `_include` of the resources the matches reference, in the template and the
        /// live query: a medication's `medicationReference` is read with it, in the
        /// same round trip (`dvt-model.md` §1 "Medications").
        include: Option<&'static str>,
    },
}

/// The context field a read takes its id from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContextId {
    Patient,
    Encounter,
}

/// One prefetch key (names fixed in common.md "Cross-team contracts").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySpec {
    pub key: &'static str,
    pub resource_type: &'static str,
    pub kind: KeyKind,
}

impl KeySpec {
    /// How the key is named in errors and notes: key and FHIR interaction, never an id.
    pub fn describe(&self) -> String {
        match self.kind {
            KeyKind::Read(_) => format!("{} ({} read)", self.key, self.resource_type),
            KeyKind::Search { .. } => format!("{} ({} search)", self.key, self.resource_type),
        }
    }

    /// The CDS Hooks 2.0 prefetch template (only `{{context.*}}` tokens).
    pub fn template(&self) -> String {
        match self.kind {
            KeyKind::Read(ContextId::Patient) => {
                format!("{}/{{{{context.patientId}}}}", self.resource_type)
            }
            KeyKind::Read(ContextId::Encounter) => {
                format!("{}/{{{{context.encounterId}}}}", self.resource_type)
            }
            KeyKind::Search { count, include, .. } => {
                let mut t = format!(
                    "{}?patient={{{{context.patientId}}}}&_count={count}",
                    self.resource_type
                );
                if let Some(include) = include {
                    t.push_str("&_include=");
                    t.push_str(include);
                }
                t
            }
        }
    }
}

const fn search(
    key: &'static str,
    resource_type: &'static str,
    count: u32,
    date_param: Option<&'static str>,
) -> KeySpec {
    KeySpec {
        key,
        resource_type,
        kind: KeyKind::Search {
            count,
            date_param,
            include: None,
        },
    }
}

/// A search that also returns the Medication each match references.
const fn search_including(
    key: &'static str,
    resource_type: &'static str,
    count: u32,
    include: &'static str,
) -> KeySpec {
    KeySpec {
        key,
        resource_type,
        kind: KeyKind::Search {
            count,
            date_param: None,
            include: Some(include),
        },
    }
}

/// The keys every service prefetches. Why each exists and how far back live queries
/// reach is written in README.md ("Prefetch keys").
const COMMON_KEYS: [KeySpec; 9] = [
    KeySpec {
        key: "patient",
        resource_type: "Patient",
        kind: KeyKind::Read(ContextId::Patient),
    },
    // No date narrowing: previous VTE counts at any time, and active conditions
    // (cancer, paralysis, long-term drug use) may have an old onset (dvt-model.md §2).
    search("conditions", "Condition", 500, None),
    search("observations", "Observation", 1000, Some("date")),
    search("procedures", "Procedure", 200, Some("date")),
    // No date narrowing: a long-running prescription can be years old (§2 "current").
    // The Medications they reference come in the same Bundle (search.mode include).
    search_including(
        "medicationRequests",
        "MedicationRequest",
        200,
        "MedicationRequest:medication",
    ),
    search_including(
        "medicationStatements",
        "MedicationStatement",
        200,
        "MedicationStatement:medication",
    ),
    search("encounters", "Encounter", 200, Some("date")),
    search("serviceRequests", "ServiceRequest", 200, Some("authored")),
    search("diagnosticReports", "DiagnosticReport", 200, Some("date")),
];

const ENCOUNTER_KEY: KeySpec = KeySpec {
    key: "encounter",
    resource_type: "Encounter",
    kind: KeyKind::Read(ContextId::Encounter),
};

/// The prefetch keys of the service answering `hook`.
pub fn key_specs(hook: Hook) -> Vec<KeySpec> {
    let mut keys = COMMON_KEYS.to_vec();
    if hook == Hook::EncounterStart {
        keys.push(ENCOUNTER_KEY);
    }
    keys
}

/// Why a key is fetched live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchReason {
    /// The key is absent from the prefetch.
    Absent,
    /// The EHR put an OperationOutcome there: it failed to fetch.
    Outcome,
    /// The value is not a FHIR resource (a string, a number, no `resourceType`).
    Malformed,
}

/// What to do with one prefetch key (contract.md, "Prefetch: every case").
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// `null`: the data does not exist; no query.
    NoData,
    /// Query it from `fhirServer`.
    Fetch(FetchReason),
    /// Use these resources; when `next` is set, the prefetch Bundle has more pages to
    /// read with the same token.
    Use {
        resources: Vec<Box<Resource>>,
        next: Option<String>,
    },
}

/// Decide, key by key, what the prefetch gives and what must be fetched: each key's
/// value is moved out of the prefetch, not copied. Keys of the prefetch that are not in
/// `keys` are ignored.
pub fn plan(keys: &[KeySpec], mut prefetch: Prefetch) -> Vec<(KeySpec, Decision)> {
    keys.iter()
        .map(|spec| (*spec, decide(prefetch.take(spec.key))))
        .collect()
}

/// The decision for one prefetch value (`None`: the key is absent).
pub fn decide(value: Option<Prefetched>) -> Decision {
    let resource = match value {
        None => return Decision::Fetch(FetchReason::Absent),
        Some(Prefetched::Null) => return Decision::NoData,
        Some(Prefetched::NotAnObject) => return Decision::Fetch(FetchReason::Malformed),
        Some(Prefetched::Resource(r)) => r,
    };
    match resource.resource_type() {
        None => Decision::Fetch(FetchReason::Malformed),
        Some(ResourceType::OperationOutcome) => Decision::Fetch(FetchReason::Outcome),
        Some(ResourceType::Bundle) => Decision::Use {
            next: bundle::next_link(&resource).map(str::to_owned),
            resources: bundle::resources(resource),
        },
        Some(_) => Decision::Use {
            resources: vec![resource],
            next: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn obs(id: &str) -> Value {
        json!({"resourceType": "Observation", "id": id, "status": "final"})
    }

    /// A prefetch value as a body gives it.
    fn sent(v: &Value) -> Option<Prefetched> {
        Some(Prefetched::from_value(v))
    }

    fn typed(v: Value) -> Box<Resource> {
        match crate::record::resource::from_value(&v) {
            crate::record::resource::Field::Value(r) => Box::new(r),
            _ => panic!("not a resource: {v}"),
        }
    }

    fn prefetch_of(v: &Value) -> Prefetch {
        v.as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), Prefetched::from_value(v)))
            .collect()
    }

    #[test]
    fn absent_key_is_fetched() {
        assert_eq!(decide(None), Decision::Fetch(FetchReason::Absent));
    }

    #[test]
    fn null_means_no_data_and_no_query() {
        assert_eq!(decide(sent(&Value::Null)), Decision::NoData);
    }

    #[test]
    fn operation_outcome_is_fetched() {
        let oo = json!({"resourceType": "OperationOutcome",
                        "issue": [{"severity": "error", "code": "timeout"}]});
        assert_eq!(decide(sent(&oo)), Decision::Fetch(FetchReason::Outcome));
    }

    #[test]
    fn non_resource_values_are_fetched() {
        for v in [json!("Patient/1"), json!(3), json!([]), json!({"id": "x"})] {
            assert_eq!(
                decide(sent(&v)),
                Decision::Fetch(FetchReason::Malformed),
                "{v}"
            );
        }
    }

    #[test]
    fn single_resource_is_used() {
        let p = json!({"resourceType": "Patient", "id": "p1"});
        assert_eq!(
            decide(sent(&p)),
            Decision::Use {
                resources: vec![typed(p)],
                next: None
            }
        );
    }

    #[test]
    fn empty_bundle_is_used_as_no_results() {
        let b = json!({"resourceType": "Bundle", "type": "searchset", "total": 0});
        assert_eq!(
            decide(sent(&b)),
            Decision::Use {
                resources: vec![],
                next: None
            }
        );
    }

    #[test]
    fn bundle_entries_are_read_leniently() {
        // No Bundle.type, no search.mode on one entry, an outcome entry, an entry
        // without a resource, an entry whose resource has no resourceType.
        let b = json!({"resourceType": "Bundle", "entry": [
            {"resource": obs("a")},
            {"resource": obs("b"), "search": {"mode": "match"}},
            {"resource": {"resourceType": "OperationOutcome"}, "search": {"mode": "outcome"}},
            {"fullUrl": "urn:uuid:x"},
            {"resource": {"id": "c"}},
            {"resource": obs("d"), "search": {"mode": "include"}}
        ]});
        assert_eq!(
            decide(sent(&b)),
            Decision::Use {
                resources: vec![typed(obs("a")), typed(obs("b")), typed(obs("d"))],
                next: None
            }
        );
    }

    #[test]
    fn bundle_with_next_link_is_used_and_followed() {
        let b = json!({"resourceType": "Bundle", "type": "searchset",
            "link": [{"relation": "self", "url": "https://ehr.example/fhir/Observation?patient=1"},
                     {"relation": "next", "url": "https://ehr.example/fhir/Observation?page=2"}],
            "entry": [{"resource": obs("a")}]});
        assert_eq!(
            decide(sent(&b)),
            Decision::Use {
                resources: vec![typed(obs("a"))],
                next: Some("https://ehr.example/fhir/Observation?page=2".into())
            }
        );
    }

    #[test]
    fn plan_covers_every_key_and_ignores_unknown_ones() {
        let prefetch = json!({
            "patient": {"resourceType": "Patient", "id": "p1"},
            "conditions": null,
            "observations": {"resourceType": "OperationOutcome"},
            "somethingElse": {"resourceType": "Patient", "id": "other"},
            "encounter": {"resourceType": "Encounter", "id": "e1"}
        });
        let planned = plan(&key_specs(Hook::PatientView), prefetch_of(&prefetch));
        let keys: Vec<&str> = planned.iter().map(|(s, _)| s.key).collect();
        assert_eq!(
            keys,
            [
                "patient",
                "conditions",
                "observations",
                "procedures",
                "medicationRequests",
                "medicationStatements",
                "encounters",
                "serviceRequests",
                "diagnosticReports"
            ]
        );
        assert!(matches!(planned[0].1, Decision::Use { .. }));
        assert_eq!(planned[1].1, Decision::NoData);
        assert_eq!(planned[2].1, Decision::Fetch(FetchReason::Outcome));
        assert_eq!(planned[3].1, Decision::Fetch(FetchReason::Absent));
        // encounter-start also reads the hook's Encounter.
        let planned = plan(&key_specs(Hook::EncounterStart), prefetch_of(&prefetch));
        assert_eq!(planned.last().unwrap().0.key, "encounter");
        assert!(matches!(planned.last().unwrap().1, Decision::Use { .. }));
    }

    #[test]
    fn templates_use_only_context_tokens_and_a_count() {
        for hook in Hook::ALL {
            for spec in key_specs(hook) {
                let t = spec.template();
                let rest = t
                    .replace("{{context.patientId}}", "")
                    .replace("{{context.encounterId}}", "");
                assert!(!rest.contains("{{"), "{t}");
                assert!(t.starts_with(spec.resource_type), "{t}");
                if let KeyKind::Search { include, .. } = spec.kind {
                    assert!(t.contains("?patient={{context.patientId}}&_count="), "{t}");
                    // Medications come with their references, and only they.
                    let medication = spec.resource_type.starts_with("Medication");
                    assert_eq!(include.is_some(), medication, "{t}");
                    if let Some(i) = include {
                        assert!(t.ends_with(&format!("&_include={i}")), "{t}");
                        assert_eq!(i, format!("{}:medication", spec.resource_type));
                    }
                }
            }
        }
    }
}
