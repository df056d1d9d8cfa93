//! `dvt-cds evaluate`: assess a CDS Hooks request or a Bundle from files, offline.
//!
//! A request goes through the service's own pipeline ([`crate::pipeline::answer`]):
//! the same validation, the same prefetch handling, the same assessment, so `evaluate`
//! and the service give the same answer to the same request and refuse the same
//! requests with the same words. The only I/O is reading the files named on the command
//! line: no live FHIR query is made (a request whose prefetch lacks a key is refused as
//! the service refuses one it cannot query for).

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::assessment::{HookInput, respond};
use crate::cds_hooks::{Hook, Invalid};
use crate::fhir::{FetchError, FetchFuture, FhirGet, FhirSettings, FhirSource, SearchWindows};
use crate::mappings::Mappings;
use crate::pipeline::{self, CallEnv, CallError};

/// Arguments of `dvt-cds evaluate` (the command line is parsed in `cli`).
#[derive(Debug, Clone, Default)]
pub struct EvaluateArgs {
    /// A Bundle (any type) holding the Patient and their resources.
    pub bundle: Option<PathBuf>,
    /// A CDS Hooks request with prefetch.
    pub request: Option<PathBuf>,
    /// Which patient, when the bundle holds several.
    pub patient: Option<String>,
    /// The hook. A request's own hook unless given; patient-view for a bundle.
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
            let resources = crate::record::resource::from_values(&resources);
            Ok(respond(&mappings, &input, &resources, now))
        }
        (None, Some(r)) => evaluate_request(&mappings, args.hook, read_json(r)?, now),
    }
}

/// A CDS Hooks request through the service's pipeline, offline: the response, or why
/// the service would refuse it (each problem in the words of the service's
/// OperationOutcome). `hook`, when given, replaces the request's own `hook`.
pub fn evaluate_request(
    mappings: &Mappings,
    hook: Option<Hook>,
    mut body: Value,
    now: DateTime<Utc>,
) -> Result<Value, String> {
    let hook = request_hook(hook, &mut body)?;
    let settings = FhirSettings {
        // The service's search windows: prefetch is filtered as the service filters it.
        windows: SearchWindows::from_model(&mappings.model.windows),
        // No FHIR server may be queried: offline.
        ..FhirSettings::default()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let answered = runtime.block_on(async {
        let env = CallEnv {
            mappings,
            source: &Offline,
            settings: &settings,
            client_servers: &[],
            deadline: tokio::time::Instant::now() + OFFLINE_DEADLINE,
            now,
        };
        pipeline::answer(&env, hook, body, &()).await
    });
    answered.map_err(|e| match e {
        CallError::Invalid(list) => invalid(&list),
        CallError::Unavailable(u) => format!(
            "{}\n  (dvt-cds evaluate makes no live FHIR query: the request's prefetch must \
             hold every key)",
            u.explanation()
        ),
        CallError::DeadlineExceeded => "the request could not be evaluated in time".into(),
        CallError::Internal(e) => format!("internal error: {e}"),
    })
}

/// Offline there is nothing to wait for; the deadline only bounds a bug.
const OFFLINE_DEADLINE: Duration = Duration::from_secs(60);

/// A refused request: each problem in the words of the service's 400 OperationOutcome
/// (one `diagnostics` per line).
fn invalid(list: &[Invalid]) -> String {
    let mut message = String::from("the request is invalid (the service answers 400):");
    for i in list {
        message.push_str("\n  ");
        message.push_str(&i.to_string());
    }
    message
}

/// The hook a request is evaluated for: `given` (written into the request, so the
/// validator checks the rest against it), else the request's own.
fn request_hook(given: Option<Hook>, body: &mut Value) -> Result<Hook, String> {
    if let Some(h) = given {
        if let Some(obj) = body.as_object_mut() {
            obj.insert("hook".into(), Value::String(h.as_str().into()));
        }
        return Ok(h);
    }
    match body.get("hook") {
        Some(Value::String(name)) => Hook::from_wire(name).ok_or_else(|| {
            let name: String = name.chars().take(64).collect();
            invalid(&[Invalid::new(
                "hook",
                format!(
                    "\"{name}\" is not a hook dvt-cds answers: expected one of {} (or give --hook)",
                    hook_names()
                ),
            )])
        }),
        // Not an object: any hook will do, the validator refuses the body itself.
        _ if !body.is_object() => Ok(Hook::PatientView),
        other => Err(invalid(&[Invalid::new(
            "hook",
            format!(
                "{}: expected one of {} (or give --hook)",
                if other.is_none() {
                    "required"
                } else {
                    "not a string"
                },
                hook_names()
            ),
        )])),
    }
}

fn hook_names() -> String {
    Hook::ALL.map(Hook::as_str).join(", ")
}

/// A FHIR source that reads nothing: `evaluate` allows no FHIR server, so it is never
/// asked; if it were, the read fails like an unreachable server.
struct Offline;

impl FhirSource for Offline {
    fn get<'a>(&'a self, _: FhirGet<'a>) -> FetchFuture<'a> {
        Box::pin(async {
            Err(FetchError::Transport(
                "dvt-cds evaluate reads no live FHIR data".into(),
            ))
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_hook_is_the_requests_unless_given() {
        let mut body = json!({"hook": "order-select"});
        assert_eq!(request_hook(None, &mut body), Ok(Hook::OrderSelect));
        // Given: it replaces the request's, so the validator checks the rest against it.
        assert_eq!(
            request_hook(Some(Hook::OrderSign), &mut body),
            Ok(Hook::OrderSign)
        );
        assert_eq!(body["hook"], "order-sign");
        let cases = [
            (json!({}), "hook: required"),
            (json!({"hook": 3}), "hook: not a string"),
            (
                json!({"hook": "medication-prescribe"}),
                "not a hook dvt-cds answers",
            ),
        ];
        for (mut body, expected) in cases {
            let e = request_hook(None, &mut body).unwrap_err();
            assert!(e.contains(expected) && e.contains("--hook"), "{body}: {e}");
        }
        // Not an object: left to the validator, which says what it is.
        let m = Mappings::embedded().unwrap();
        let e = evaluate_request(&m, None, json!([1]), Utc::now()).unwrap_err();
        assert!(e.contains("expected a JSON object"), "{e}");
    }
}
