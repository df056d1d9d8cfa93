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

use crate::assessment::HookInput;
use crate::cds_hooks::{Hook, Invalid, NamedHook, RequestBody, Response};
use crate::fhir::{FetchError, FetchFuture, FhirGet, FhirSettings, FhirSource, SearchWindows};
use crate::mappings::Mappings;
use crate::pipeline::{self, CallEnv, CallError};
use crate::record::resource::{self, Field, Resource, ResourceType};

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

fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn not_json(path: &Path, e: serde_json::Error) -> String {
    format!("{} is not valid JSON: {e}", path.display())
}

/// `dvt-cds evaluate`: the CDS Hooks response (the command prints it as JSON), or a
/// message for unreadable input.
pub fn evaluate_command(args: &EvaluateArgs) -> Result<Response, String> {
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
            let bundle = resource::from_slice(&read_file(b)?).map_err(|e| not_json(b, e))?;
            let (input, resources) = from_bundle(bundle, args)?;
            Ok(pipeline::respond_to(&mappings, &input, &resources, now))
        }
        (None, Some(r)) => {
            let body = RequestBody::from_slice(&read_file(r)?).map_err(|e| not_json(r, e))?;
            evaluate_request(&mappings, args.hook, body, now)
        }
    }
}

/// A CDS Hooks request through the service's pipeline, offline: the response, or why
/// the service would refuse it (each problem in the words of the service's
/// OperationOutcome). `hook`, when given, replaces the request's own `hook`.
pub fn evaluate_request(
    mappings: &Mappings,
    hook: Option<Hook>,
    mut body: RequestBody,
    now: DateTime<Utc>,
) -> Result<Response, String> {
    let hook = request_hook(hook, &mut body)?;
    let req = body.validate(hook).map_err(|list| invalid(&list))?;
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
            // Files named on the command line: no body budget.
            body_allowance: usize::MAX,
        };
        pipeline::answer_request(&env, req, &()).await
    });
    answered.map_err(|e| match e {
        CallError::NotJson(e) => format!("the request is not valid JSON: {e}"),
        CallError::TooLarge => "the request is too large once parsed".into(),
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
fn request_hook(given: Option<Hook>, body: &mut RequestBody) -> Result<Hook, String> {
    if let Some(h) = given {
        body.set_hook(h);
        return Ok(h);
    }
    let problem = match body.hook() {
        NamedHook::Name(name) => {
            return Hook::from_wire(name).ok_or_else(|| {
                let name: String = name.chars().take(64).collect();
                invalid(&[Invalid::new(
                    "hook",
                    format!(
                        "\"{name}\" is not a hook dvt-cds answers: expected one of {} (or give --hook)",
                        hook_names()
                    ),
                )])
            });
        }
        // Not an object: any hook will do, the validator refuses the body itself.
        NamedHook::NotAnObject => return Ok(Hook::PatientView),
        NamedHook::Absent => "required",
        NamedHook::NotAString => "not a string",
    };
    Err(invalid(&[Invalid::new(
        "hook",
        format!(
            "{problem}: expected one of {} (or give --hook)",
            hook_names()
        ),
    )]))
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

/// A Bundle of any type (as read from the file): pick the patient, pass every resource,
/// moved out of the Bundle by the one flattener (the reader drops other patients'
/// resources by their subject).
pub fn from_bundle(
    bundle: Field<Resource>,
    args: &EvaluateArgs,
) -> Result<(HookInput, Vec<Box<Resource>>), String> {
    let bundle = match bundle {
        Field::Value(b) if b.is_bundle() => b,
        _ => {
            return Err(
                "--bundle: the file is not a FHIR Bundle (resourceType must be \"Bundle\")"
                    .to_string(),
            );
        }
    };
    let mut resources = Vec::with_capacity(bundle.bundle.entry.count());
    // An entry without a resource is no resource of the patient's: left out.
    let mut unreadable = 0;
    resource::flatten(Box::new(bundle), None, &mut unreadable, &mut |r, _| {
        resources.push(r)
    });
    let patients: Vec<&str> = resources
        .iter()
        .filter(|r| r.resource_type() == Some(&ResourceType::Patient))
        .filter_map(|r| r.id())
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
    use serde_json::{Value, json};

    fn body(v: Value) -> RequestBody {
        RequestBody::from_slice(v.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn the_hook_is_the_requests_unless_given() {
        let mut req = body(json!({"hook": "order-select"}));
        assert_eq!(request_hook(None, &mut req), Ok(Hook::OrderSelect));
        // Given: it replaces the request's, so the validator checks the rest against it.
        assert_eq!(
            request_hook(Some(Hook::OrderSign), &mut req),
            Ok(Hook::OrderSign)
        );
        assert_eq!(req.hook(), NamedHook::Name("order-sign"));
        let cases = [
            (json!({}), "hook: required"),
            (json!({"hook": 3}), "hook: not a string"),
            (
                json!({"hook": "medication-prescribe"}),
                "not a hook dvt-cds answers",
            ),
        ];
        for (v, expected) in cases {
            let e = request_hook(None, &mut body(v.clone())).unwrap_err();
            assert!(e.contains(expected) && e.contains("--hook"), "{v}: {e}");
        }
        // Not an object: left to the validator, which says what it is.
        let m = Mappings::embedded().unwrap();
        let e = evaluate_request(&m, None, body(json!([1])), Utc::now()).unwrap_err();
        assert!(e.contains("expected a JSON object"), "{e}");
    }
}
