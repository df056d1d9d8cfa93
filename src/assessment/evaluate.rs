//! `dvt-cds evaluate`: assess a Bundle or a CDS Hooks request from files, offline.
//! The only I/O is reading the files named on the command line.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{HookInput, respond};
use crate::cds_hooks::Hook;
use crate::mappings::Mappings;

/// Arguments of `dvt-cds evaluate` (the command line is parsed in `cli`).
#[derive(Debug, Clone, Default)]
pub struct EvaluateArgs {
    /// A Bundle (any type) holding the Patient and their resources.
    pub bundle: Option<PathBuf>,
    /// A CDS Hooks request with prefetch.
    pub request: Option<PathBuf>,
    /// Which patient, when the bundle holds several.
    pub patient: Option<String>,
    /// The hook (default patient-view).
    pub hook: Option<Hook>,
    /// "now" (default: the current time).
    pub now: Option<DateTime<Utc>>,
    /// Load mappings from this directory instead of the embedded ones.
    pub mappings_dir: Option<PathBuf>,
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{} is not valid JSON: {e}", path.display()))
}

/// `dvt-cds evaluate`: the CDS Hooks response JSON, or a message for unreadable input.
pub fn evaluate_command(args: &EvaluateArgs) -> Result<Value, String> {
    let mappings = match &args.mappings_dir {
        Some(d) => Mappings::load_dir(d),
        None => Mappings::embedded(),
    }
    .map_err(|e| format!("mappings: {e}"))?;
    let now = args.now.unwrap_or_else(Utc::now);
    match (&args.bundle, &args.request) {
        (Some(_), Some(_)) => Err("give either --bundle or --request, not both".to_string()),
        (None, None) => Err("give --bundle FILE or --request FILE".to_string()),
        (Some(b), None) => {
            let v = read_json(b)?;
            let (input, resources) = from_bundle(&v, args)?;
            Ok(respond(&mappings, &input, &resources, now))
        }
        (None, Some(r)) => {
            let v = read_json(r)?;
            let (input, resources) = from_request_owned(v, args.hook)?;
            Ok(respond(&mappings, &input, &resources, now))
        }
    }
}

/// A Bundle of any type: pick the patient, pass every resource (the reader drops other
/// patients' resources by their subject).
pub fn from_bundle(v: &Value, args: &EvaluateArgs) -> Result<(HookInput, Vec<Value>), String> {
    if v.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Err(
            "--bundle: the file is not a FHIR Bundle (resourceType must be \"Bundle\")".to_string(),
        );
    }
    let resources: Vec<Value> = v
        .get("entry")
        .and_then(Value::as_array)
        .map(|e| {
            e.iter()
                .filter_map(|x| x.get("resource").cloned())
                .collect()
        })
        .unwrap_or_default();
    let patients: Vec<&str> = resources
        .iter()
        .filter(|r| r.get("resourceType").and_then(Value::as_str) == Some("Patient"))
        .filter_map(|r| r.get("id").and_then(Value::as_str))
        .collect();
    let patient_id = match (&args.patient, patients.as_slice()) {
        (Some(p), list) if list.contains(&p.as_str()) => p.clone(),
        (Some(p), _) => {
            return Err(format!(
                "--patient {p}: no Patient with that id in the bundle"
            ));
        }
        (None, [one]) => (*one).to_string(),
        (None, []) => return Err("the bundle holds no Patient (with an id)".to_string()),
        (None, _) => {
            return Err(format!(
                "the bundle holds {} patients: choose one with --patient ID",
                patients.len()
            ));
        }
    };
    let input = HookInput {
        hook: args.hook.unwrap_or(Hook::PatientView),
        hook_instance: format!("evaluate-{patient_id}"),
        patient_id,
        encounter_id: None,
        draft_orders: vec![],
        data_quality: vec![],
    };
    Ok((input, resources))
}

/// A CDS Hooks request read leniently: hookInstance, context and every prefetch value
/// (a Bundle's entries or a single resource; `null` and OperationOutcome ignored).
pub fn from_request(v: &Value, hook: Option<Hook>) -> Result<(HookInput, Vec<Value>), String> {
    from_request_owned(v.clone(), hook)
}

/// [`from_request`] taking the request by value (the resources are moved, not copied).
pub fn from_request_owned(
    mut v: Value,
    hook: Option<Hook>,
) -> Result<(HookInput, Vec<Value>), String> {
    let prefetch = v.get_mut("prefetch").map(Value::take);
    let obj = v
        .as_object()
        .ok_or("--request: the file is not a JSON object")?;
    let hook = match (obj.get("hook").and_then(Value::as_str), hook) {
        (_, Some(h)) => h,
        (Some(name), None) => Hook::from_wire(name)
            .ok_or_else(|| format!("--request: unsupported hook \"{name}\""))?,
        (None, None) => Hook::PatientView,
    };
    let ctx = obj
        .get("context")
        .and_then(Value::as_object)
        .ok_or("--request: context is missing")?;
    let patient_id = ctx
        .get("patientId")
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or("--request: context.patientId is missing")?
        .to_string();
    let encounter_id = ctx
        .get("encounterId")
        .and_then(Value::as_str)
        .map(str::to_string);
    let draft_orders = match ctx.get("draftOrders") {
        Some(b @ Value::Object(_)) => vec![b.clone()],
        Some(Value::Array(a)) => a.clone(),
        _ => vec![],
    };
    let mut resources = Vec::new();
    if let Some(Value::Object(prefetch)) = prefetch {
        for (_, mut value) in prefetch {
            match value.get("resourceType").and_then(Value::as_str) {
                None | Some("OperationOutcome") => {}
                Some("Bundle") => {
                    if let Some(Value::Array(entries)) = value.get_mut("entry").map(Value::take) {
                        resources.extend(entries.into_iter().filter_map(|mut e| {
                            let r = e.get_mut("resource").map(Value::take)?;
                            let outcome = r.get("resourceType").and_then(Value::as_str)
                                == Some("OperationOutcome");
                            (!outcome).then_some(r)
                        }));
                    }
                }
                Some(_) => resources.push(value),
            }
        }
    }
    let input = HookInput {
        hook,
        hook_instance: obj
            .get("hookInstance")
            .and_then(Value::as_str)
            .unwrap_or("evaluate")
            .to_string(),
        patient_id,
        encounter_id,
        draft_orders,
        data_quality: vec![],
    };
    Ok((input, resources))
}
