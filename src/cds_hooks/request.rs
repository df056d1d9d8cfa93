//! A hook call's JSON body into a [`HookRequest`]: every rule of the spec checked here,
//! once, so the rest of the service can rely on the result.
//!
//! Spec: `cds-hooks-2.0.1.md` "Calling a CDS Service" and the hook pages
//! (`hook-*.md`, "Context"). Strict on what the spec requires; lenient where real EHRs
//! deviate (contract.md: `draftOrders` without `Bundle.type`).

use serde_json::{Map, Value};

use super::{FhirAuthorization, Hook, HookContext, HookRequest, Invalid};

/// [`parse_hook_request`] of a body it owns: the prefetch (most of a request's bytes) is
/// moved into the [`HookRequest`], not copied.
pub fn parse_hook_request_owned(hook: Hook, mut body: Value) -> Result<HookRequest, Vec<Invalid>> {
    let prefetch = match body.as_object_mut().map(|o| o.remove("prefetch")) {
        Some(Some(Value::Object(p))) => Some(p),
        Some(Some(other)) => {
            // Put back what is not an object: the borrowed parser reports it.
            if let Some(o) = body.as_object_mut() {
                o.insert("prefetch".to_string(), other);
            }
            None
        }
        _ => None,
    };
    let mut req = parse_hook_request(hook, &body)?;
    if let Some(p) = prefetch {
        req.prefetch = p;
    }
    Ok(req)
}

/// Parse the body of `POST /cds-services/{id}` for the service answering `hook`.
/// Returns every problem found, not just the first, so a client fixes them in one go.
pub fn parse_hook_request(hook: Hook, body: &Value) -> Result<HookRequest, Vec<Invalid>> {
    let mut errs = Vec::new();
    let Some(obj) = body.as_object() else {
        return Err(vec![Invalid::new(
            "",
            format!(
                "expected a JSON object (a CDS Hooks request), got {}",
                kind(body)
            ),
        )]);
    };

    match obj.get("hook") {
        Some(Value::String(h)) if h == hook.as_str() => {}
        Some(Value::String(h)) => errs.push(Invalid::new(
            "hook",
            format!(
                "expected \"{}\" (the hook of service {}), got \"{}\"",
                hook.as_str(),
                hook.service_id(),
                h
            ),
        )),
        other => errs.push(missing_or_type(
            "hook",
            other,
            "the string \"".to_string() + hook.as_str() + "\"",
        )),
    }

    let hook_instance = required_string(obj, "hookInstance", "", &mut errs);

    let fhir_server = match obj.get("fhirServer") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match url::Url::parse(s) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Some(u),
            _ => {
                errs.push(Invalid::new(
                    "fhirServer",
                    "expected an absolute http(s) URL (the FHIR base URL)",
                ));
                None
            }
        },
        Some(other) => {
            errs.push(Invalid::new(
                "fhirServer",
                format!("expected a URL string, got {}", kind(other)),
            ));
            None
        }
    };

    let fhir_authorization = match obj.get("fhirAuthorization") {
        None | Some(Value::Null) => None,
        Some(Value::Object(a)) => parse_authorization(a, &mut errs),
        Some(other) => {
            errs.push(Invalid::new(
                "fhirAuthorization",
                format!("expected an object, got {}", kind(other)),
            ));
            None
        }
    };
    // Spec: "If fhirAuthorization is provided, this field is REQUIRED."
    if obj.get("fhirAuthorization").is_some_and(|v| !v.is_null())
        && obj.get("fhirServer").is_none_or(Value::is_null)
    {
        errs.push(Invalid::new(
            "fhirServer",
            "required when fhirAuthorization is present: the FHIR base URL the token is for",
        ));
    }

    let context = match obj.get("context") {
        Some(Value::Object(c)) => parse_context(hook, c, &mut errs),
        other => {
            errs.push(missing_or_type("context", other, "an object".to_string()));
            None
        }
    };

    let prefetch = match obj.get("prefetch") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(p)) => p.clone(),
        Some(other) => {
            errs.push(Invalid::new(
                "prefetch",
                format!("expected an object of prefetch keys, got {}", kind(other)),
            ));
            Map::new()
        }
    };

    match (errs.is_empty(), hook_instance, context) {
        (true, Some(hook_instance), Some(context)) => Ok(HookRequest {
            hook,
            hook_instance,
            fhir_server,
            fhir_authorization,
            context,
            prefetch,
        }),
        _ => Err(errs),
    }
}

fn parse_authorization(
    a: &Map<String, Value>,
    errs: &mut Vec<Invalid>,
) -> Option<FhirAuthorization> {
    let access_token = required_string(a, "access_token", "fhirAuthorization.", errs);
    // Spec: token_type is the fixed value "Bearer"; EHRs vary the case.
    let token_type = match a.get("token_type") {
        None => "Bearer".to_string(),
        Some(Value::String(t)) if t.eq_ignore_ascii_case("bearer") => t.clone(),
        Some(_) => {
            errs.push(Invalid::new(
                "fhirAuthorization.token_type",
                "expected \"Bearer\"",
            ));
            return None;
        }
    };
    let expires_in = match a.get("expires_in") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_i64() {
            Some(n) => Some(n),
            None => {
                errs.push(Invalid::new(
                    "fhirAuthorization.expires_in",
                    "expected an integer number of seconds",
                ));
                None
            }
        },
    };
    let opt = |k: &str| a.get(k).and_then(Value::as_str).map(str::to_string);
    Some(FhirAuthorization {
        access_token: access_token?,
        token_type,
        expires_in,
        scope: opt("scope"),
        subject: opt("subject"),
    })
}

fn parse_context(
    hook: Hook,
    c: &Map<String, Value>,
    errs: &mut Vec<Invalid>,
) -> Option<HookContext> {
    let user_id = required_string(c, "userId", "context.", errs);
    let patient_id = required_string(c, "patientId", "context.", errs);
    if let Some(p) = &patient_id {
        check_fhir_id("context.patientId", p, errs);
    }
    let encounter_id = if hook == Hook::EncounterStart {
        required_string(c, "encounterId", "context.", errs)
    } else {
        match c.get("encounterId") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(_) => {
                errs.push(Invalid::new(
                    "context.encounterId",
                    "expected a non-empty string (an Encounter id)",
                ));
                None
            }
        }
    };
    if let Some(e) = &encounter_id {
        check_fhir_id("context.encounterId", e, errs);
    }

    let draft_orders = if hook.is_order_hook() {
        match c.get("draftOrders") {
            Some(Value::Object(b)) => draft_order_resources(b, errs),
            other => {
                errs.push(missing_or_type(
                    "context.draftOrders",
                    other,
                    format!(
                        "a FHIR Bundle of draft orders ({} requires it)",
                        hook.as_str()
                    ),
                ));
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };

    // order-select: the ids of the orders just selected. Informational for us, so a
    // client that omits it is not refused.
    let selections = match c.get("selections") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };

    Some(HookContext {
        user_id: user_id?,
        patient_id: patient_id?,
        encounter_id,
        draft_orders,
        selections,
    })
}

/// The resources of `draftOrders`. Lenient: `Bundle.type` may be missing (seen in real
/// EHRs); an entry without a `resource` object is skipped rather than failing the call.
fn draft_order_resources(b: &Map<String, Value>, errs: &mut Vec<Invalid>) -> Vec<Value> {
    match b.get("resourceType") {
        None => {}
        Some(Value::String(t)) if t == "Bundle" => {}
        Some(_) => {
            errs.push(Invalid::new(
                "context.draftOrders.resourceType",
                "expected \"Bundle\"",
            ));
            return Vec::new();
        }
    }
    match b.get("entry") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(entries)) => entries
            .iter()
            .filter_map(|e| e.get("resource"))
            .filter(|r| r.is_object())
            .cloned()
            .collect(),
        Some(_) => {
            errs.push(Invalid::new(
                "context.draftOrders.entry",
                "expected an array of Bundle entries",
            ));
            Vec::new()
        }
    }
}

/// FHIR `id`: `[A-Za-z0-9\-\.]{1,64}`. Checked because ids go into FHIR query URLs.
fn check_fhir_id(path: &str, id: &str, errs: &mut Vec<Invalid>) {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if !ok {
        errs.push(Invalid::new(
            path,
            "expected a FHIR id: 1 to 64 of A-Z a-z 0-9 - .",
        ));
    }
}

fn required_string(
    obj: &Map<String, Value>,
    key: &str,
    prefix: &str,
    errs: &mut Vec<Invalid>,
) -> Option<String> {
    let path = format!("{prefix}{key}");
    match obj.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::String(_)) => {
            errs.push(Invalid::new(path, "expected a non-empty string, got \"\""));
            None
        }
        other => {
            errs.push(missing_or_type(&path, other, "a string".to_string()));
            None
        }
    }
}

fn missing_or_type(path: &str, got: Option<&Value>, expected: String) -> Invalid {
    match got {
        None => Invalid::new(path, format!("required: expected {expected}")),
        Some(v) => Invalid::new(path, format!("expected {expected}, got {}", kind(v))),
    }
}

/// The JSON kind of a value, for messages (never the value itself: it may be PHI).
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base(hook: &str) -> Value {
        json!({
            "hook": hook,
            "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
            "context": {"userId": "Practitioner/1", "patientId": "p1"}
        })
    }

    #[test]
    fn owned_parser_agrees_with_the_borrowed_one() {
        let mut with_prefetch = base("patient-view");
        with_prefetch["prefetch"] = json!({"patient": {"resourceType": "Patient", "id": "p1"},
                                           "conditions": null});
        let mut bad_prefetch = base("patient-view");
        bad_prefetch["prefetch"] = json!("not an object");
        let mut two_faults = bad_prefetch.clone();
        two_faults.as_object_mut().unwrap().remove("hookInstance");
        for body in [
            base("patient-view"),
            with_prefetch,
            bad_prefetch,
            two_faults,
            json!([1]),
        ] {
            let owned = parse_hook_request_owned(Hook::PatientView, body.clone());
            let borrowed = parse_hook_request(Hook::PatientView, &body);
            match (owned, borrowed) {
                (Ok(a), Ok(b)) => assert_eq!(a.prefetch, b.prefetch),
                (Err(a), Err(b)) => assert_eq!(format!("{a:?}"), format!("{b:?}")),
                (a, b) => panic!("owned {a:?} but borrowed {b:?}"),
            }
        }
    }

    fn paths(r: Result<HookRequest, Vec<Invalid>>) -> Vec<String> {
        r.expect_err("should be invalid")
            .into_iter()
            .map(|i| i.path)
            .collect()
    }

    #[test]
    fn minimal_patient_view_parses() {
        let r = parse_hook_request(Hook::PatientView, &base("patient-view")).unwrap();
        assert_eq!(r.context.patient_id, "p1");
        assert!(r.prefetch.is_empty());
        assert!(r.fhir_server.is_none());
    }

    #[test]
    fn wrong_hook_names_expected_value() {
        let e = parse_hook_request(Hook::PatientView, &base("order-sign")).unwrap_err();
        assert_eq!(e[0].path, "hook");
        assert!(
            e[0].message.contains("\"patient-view\""),
            "{}",
            e[0].message
        );
    }

    #[test]
    fn encounter_start_requires_encounter_id() {
        assert_eq!(
            paths(parse_hook_request(
                Hook::EncounterStart,
                &base("encounter-start")
            )),
            ["context.encounterId"]
        );
    }

    #[test]
    fn order_hooks_require_draft_orders_but_not_bundle_type() {
        assert_eq!(
            paths(parse_hook_request(Hook::OrderSign, &base("order-sign"))),
            ["context.draftOrders"]
        );
        let mut b = base("order-select");
        b["context"]["draftOrders"] =
            json!({"entry": [{"resource": {"resourceType": "ServiceRequest"}}, {"bad": 1}]});
        let r = parse_hook_request(Hook::OrderSelect, &b).unwrap();
        assert_eq!(r.context.draft_orders.len(), 1);
    }

    #[test]
    fn fhir_authorization_requires_fhir_server() {
        let mut b = base("patient-view");
        b["fhirAuthorization"] = json!({"access_token": "t", "token_type": "Bearer"});
        assert_eq!(
            paths(parse_hook_request(Hook::PatientView, &b)),
            ["fhirServer"]
        );
    }

    #[test]
    fn reports_every_problem_at_once() {
        let b = json!({"hook": "patient-view", "context": {"patientId": "a/b"}});
        let p = paths(parse_hook_request(Hook::PatientView, &b));
        assert_eq!(p, ["hookInstance", "context.userId", "context.patientId"]);
    }

    #[test]
    fn token_is_not_in_debug_output() {
        let mut b = base("patient-view");
        b["fhirServer"] = json!("https://fhir.example.org/r4");
        b["fhirAuthorization"] = json!({"access_token": "s3cret-token", "token_type": "bearer"});
        let r = parse_hook_request(Hook::PatientView, &b).unwrap();
        assert!(!format!("{r:?}").contains("s3cret-token"));
    }
}
