//! The DVT assessment (`dvt-model.md` §1–§5, §7). Pure: plain data in, plain data out.
//!
//! STUB (to be replaced by the "DVT assessment" issue).

use chrono::{DateTime, Utc};

use crate::cds_hooks::Hook;
use crate::mappings::Mappings;

/// What the assessment needs to know about the call itself.
#[derive(Debug, Clone)]
pub struct HookInput {
    pub hook: Hook,
    pub hook_instance: String,
    pub patient_id: String,
    pub encounter_id: Option<String>,
    /// Resources of `context.draftOrders` (order hooks, §7).
    pub draft_orders: Vec<serde_json::Value>,
}

/// Evaluate a hook call: the CDS Hooks response body (`{"cards": [...]}`, at most one card).
pub fn respond(
    _mappings: &Mappings,
    _input: &HookInput,
    _resources: &[serde_json::Value],
    _now: DateTime<Utc>,
) -> serde_json::Value {
    serde_json::json!({"cards": []})
}

/// Arguments of `dvt-cds evaluate` (the command line is parsed in `cli`).
#[derive(Debug, Clone, Default)]
pub struct EvaluateArgs {
    /// A Bundle (any type) holding the Patient and their resources.
    pub bundle: Option<std::path::PathBuf>,
    /// A CDS Hooks request with prefetch.
    pub request: Option<std::path::PathBuf>,
    /// Which patient, when the bundle holds several.
    pub patient: Option<String>,
    /// The hook (default patient-view).
    pub hook: Option<Hook>,
    /// "now" (default: the current time).
    pub now: Option<DateTime<Utc>>,
    /// Load mappings from this directory instead of the embedded ones.
    pub mappings_dir: Option<std::path::PathBuf>,
}

/// `dvt-cds evaluate`: the CDS Hooks response JSON, or a message for unreadable input.
pub fn evaluate_command(_args: &EvaluateArgs) -> Result<serde_json::Value, String> {
    Err("not implemented yet".to_string())
}
