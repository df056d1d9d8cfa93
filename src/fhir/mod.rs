//! FHIR data for a hook call: prefetch templates, prefetch resolution and live queries.
//!
//! The pure core never sees HTTP: it receives the resources gathered here as JSON.
//! Live queries go through the [`FhirSource`] trait so tests can put a fault-injecting
//! source (a hang, a 500) in place of the real one.
//!
//! STUB (to be replaced by the "FHIR data" issue): gather uses prefetch only.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::cds_hooks::{Hook, HookRequest};

/// Settings for live queries (flags of `dvt-cds serve`).
#[derive(Debug, Clone)]
pub struct FhirSettings {
    /// Allow queries without `fhirAuthorization` (`--dev`, or configured for a sandbox).
    pub allow_anonymous: bool,
    /// Per-query timeout (each HTTP request, each page).
    pub query_timeout: Duration,
    /// Most pages followed per search (the first page included).
    pub max_pages: usize,
}

impl Default for FhirSettings {
    fn default() -> Self {
        FhirSettings {
            allow_anonymous: false,
            query_timeout: Duration::from_millis(2000),
            max_pages: 10,
        }
    }
}

/// The prefetch templates of the service answering `hook` (CDS Hooks 2.0 tokens only).
pub fn prefetch_templates(hook: Hook) -> BTreeMap<&'static str, String> {
    let mut t = BTreeMap::new();
    t.insert("patient", "Patient/{{context.patientId}}".to_string());
    t.insert(
        "conditions",
        "Condition?patient={{context.patientId}}".to_string(),
    );
    if hook == Hook::EncounterStart {
        t.insert("encounter", "Encounter/{{context.encounterId}}".to_string());
    }
    t
}

/// Why the data a call needs could not be had: becomes a 412 with an OperationOutcome.
#[derive(Debug, Clone)]
pub struct DataUnavailable {
    /// Which query failed, by prefetch key and FHIR search (no patient id).
    pub query: String,
    /// Why: "no fhirServer in the request", "connection refused", "timed out after 2s",
    /// "HTTP 401 from the FHIR server", "response is not a FHIR Bundle", ...
    pub reason: String,
}

/// What the call will be assessed on.
#[derive(Debug, Default)]
pub struct Gathered {
    /// Every resource from prefetch and live queries (Patient included when known).
    pub resources: Vec<serde_json::Value>,
    /// Prefetch keys that were fetched live (for metrics; no patient data).
    pub fetched_keys: Vec<&'static str>,
}

/// Source of live FHIR searches. Implemented over reqwest; tests can inject faults.
pub trait FhirSource: Send + Sync {}

/// Gather the data for `req` before `deadline`. STUB: prefetch only.
pub async fn gather(
    _source: &dyn FhirSource,
    _settings: &FhirSettings,
    req: &HookRequest,
    _deadline: tokio::time::Instant,
) -> Result<Gathered, DataUnavailable> {
    let mut resources = Vec::new();
    for value in req.prefetch.values() {
        match value.get("resourceType").and_then(|v| v.as_str()) {
            Some("Bundle") => {
                if let Some(entries) = value.get("entry").and_then(|e| e.as_array()) {
                    resources.extend(entries.iter().filter_map(|e| e.get("resource").cloned()));
                }
            }
            Some("OperationOutcome") | None => {}
            Some(_) => resources.push(value.clone()),
        }
    }
    Ok(Gathered {
        resources,
        fetched_keys: Vec::new(),
    })
}

/// The live source over HTTP. STUB.
pub struct HttpFhirSource;

impl HttpFhirSource {
    pub fn new(_settings: &FhirSettings) -> Self {
        HttpFhirSource
    }
}

impl FhirSource for HttpFhirSource {}
