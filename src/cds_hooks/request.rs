//! A hook call's JSON body into a [`HookRequest`]: every rule of the spec checked here,
//! once, so the rest of the service can rely on the result.
//!
//! Spec: `cds-hooks-2.0.1.md` "Calling a CDS Service" and the hook pages
//! (`hook-*.md`, "Context"). Strict on what the spec requires; lenient where real EHRs
//! deviate (contract.md: `draftOrders` without `Bundle.type`).
//!
//! The body's bytes are read once, straight into typed parts ([`RequestBody`]): the
//! envelope's elements keep the JSON kind they came as (the messages name it), the
//! prefetch and draft orders are FHIR resources of [`crate::record::resource`], and
//! every element the service never reads is skipped unread. No `serde_json::Value`.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::{FhirAuthorization, Hook, HookContext, HookRequest, Invalid, Prefetch};
use crate::record::resource::{self, Entry, Field, Lenient, Resource, Text, lenient_struct};

/// Why a body is not a hook request.
#[derive(Debug)]
pub enum RequestError {
    /// Not JSON (serde_json's message: line and column, never the content).
    NotJson(serde_json::Error),
    /// JSON, but it breaks the spec: every problem found.
    Invalid(Vec<Invalid>),
    /// Its resources would take more memory than `allowance`.
    TooLarge,
}

/// Parse and validate the body of `POST /cds-services/{id}` for the service answering
/// `hook`, its resources within `allowance` bytes (what the body budget reserved for
/// its parsed form: [`crate::record::resource::within_allowance`]). Returns every
/// problem found, not just the first, so a client fixes them in one go.
pub fn parse_hook_request(
    hook: Hook,
    body: &[u8],
    allowance: usize,
) -> Result<HookRequest, RequestError> {
    resource::within_allowance(allowance, || RequestBody::from_slice(body))
        .map_err(|_| RequestError::TooLarge)?
        .map_err(RequestError::NotJson)?
        .validate(hook)
        .map_err(RequestError::Invalid)
}

/// A hook call's body, read but not validated yet (`dvt-cds evaluate` picks the hook
/// from it before validating). No `Debug`: it holds the access token.
pub struct RequestBody(Wire<Envelope>);

/// The `hook` a body names, as found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamedHook<'a> {
    /// The body is not a JSON object.
    NotAnObject,
    Absent,
    NotAString,
    Name(&'a str),
}

impl RequestBody {
    /// Read a body: `Err` only when it is not JSON.
    pub fn from_slice(body: &[u8]) -> serde_json::Result<RequestBody> {
        resource::read_json(body).map(RequestBody)
    }

    pub fn hook(&self) -> NamedHook<'_> {
        match &self.0 {
            Wire::Got(e) => match &e.hook {
                Wire::Absent => NamedHook::Absent,
                Wire::Got(name) => NamedHook::Name(name),
                Wire::Wrong(_) => NamedHook::NotAString,
            },
            Wire::Absent | Wire::Wrong(_) => NamedHook::NotAnObject,
        }
    }

    /// Name `hook` in the body (in place of its own), so that the rest is validated
    /// against it. A body that is not an object stays one.
    pub fn set_hook(&mut self, hook: Hook) {
        if let Wire::Got(e) = &mut self.0 {
            e.hook = Wire::Got(hook.as_str().into());
        }
    }

    /// Check the body against the spec for the service answering `hook`.
    pub fn validate(self, hook: Hook) -> Result<HookRequest, Vec<Invalid>> {
        match self.0 {
            Wire::Got(envelope) => envelope.validate(hook),
            Wire::Wrong(kind) => Err(vec![Invalid::new(
                "",
                format!(
                    "expected a JSON object (a CDS Hooks request), got {}",
                    kind.describe()
                ),
            )]),
            // A JSON text always holds a value.
            Wire::Absent => Err(vec![Invalid::new("", "expected a JSON object")]),
        }
    }
}

/// The JSON kind of a value, for messages (never the value itself: it may be PHI).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

impl Kind {
    fn describe(self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::Bool => "a boolean",
            Kind::Number => "a number",
            Kind::String => "a string",
            Kind::Array => "an array",
            Kind::Object => "an object",
        }
    }
}

/// The JSON kind of a value, in the words of the request's messages (the feedback
/// body, still read as a `Value`, says the same).
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => Kind::Null,
        Value::Bool(_) => Kind::Bool,
        Value::Number(_) => Kind::Number,
        Value::String(_) => Kind::String,
        Value::Array(_) => Kind::Array,
        Value::Object(_) => Kind::Object,
    }
    .describe()
}

/// An element of the request as found: absent, read, or of a JSON kind it does not take
/// (kept, so that the message can name it).
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Wire<T> {
    #[default]
    Absent,
    Got(T),
    Wrong(Kind),
}

impl<T> Wire<T> {
    /// Absent or `null`: the spec's "not given" for an optional element.
    fn is_unset(&self) -> bool {
        matches!(self, Wire::Absent | Wire::Wrong(Kind::Null))
    }
}

impl<'de, T: Lenient<'de>> Deserialize<'de> for Wire<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(WireVisitor(PhantomData))
    }
}

struct WireVisitor<T>(PhantomData<T>);

fn wire<T>(v: Option<T>, kind: Kind) -> Wire<T> {
    v.map_or(Wire::Wrong(kind), Wire::Got)
}

impl<'de, T: Lenient<'de>> Visitor<'de> for WireVisitor<T> {
    type Value = Wire<T>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(wire(T::from_bool(v), Kind::Bool))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(wire(T::from_i64(v), Kind::Number))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(wire(T::from_u64(v), Kind::Number))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(wire(T::from_f64(v), Kind::Number))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(wire(T::from_str(v), Kind::String))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(wire(T::from_null(), Kind::Null))
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(wire(T::from_null(), Kind::Null))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Ok(wire(T::from_map(map)?, Kind::Object))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Ok(wire(T::from_seq(seq)?, Kind::Array))
    }
}

lenient_struct! {
    /// The body's elements (spec "HTTP Request"); any other is skipped unread.
    pub struct Envelope {
        "hook" => hook: Wire<Text>,
        "hookInstance" => hook_instance: Wire<Text>,
        "fhirServer" => fhir_server: Wire<Text>,
        "fhirAuthorization" => fhir_authorization: Wire<Authorization>,
        "context" => context: Wire<Context>,
        "prefetch" => prefetch: Wire<Prefetch>,
    }
}

lenient_struct! {
    /// `fhirAuthorization` as sent. Its token goes into [`FhirAuthorization`], whose
    /// `Debug` redacts it.
    pub struct Authorization {
        "access_token" => access_token: Wire<Text>,
        "token_type" => token_type: Wire<Text>,
        "expires_in" => expires_in: Wire<i64>,
        "scope" => scope: Field<Text>,
        "subject" => subject: Field<Text>,
    }
}

lenient_struct! {
    /// `context`: the fields of the four hooks dvt-cds answers.
    pub struct Context {
        "userId" => user_id: Wire<Text>,
        "patientId" => patient_id: Wire<Text>,
        "encounterId" => encounter_id: Wire<Text>,
        "draftOrders" => draft_orders: Wire<DraftOrders>,
        "selections" => selections: Field<Vec<Text>>,
    }
}

lenient_struct! {
    /// `context.draftOrders`: a Bundle, its entries' resources typed.
    pub struct DraftOrders {
        "resourceType" => resource_type: Wire<Text>,
        "entry" => entry: Wire<Vec<Field<Entry>>>,
    }
}

impl Envelope {
    fn validate(self, hook: Hook) -> Result<HookRequest, Vec<Invalid>> {
        let mut errs = Vec::new();
        match &self.hook {
            Wire::Got(h) if &**h == hook.as_str() => {}
            Wire::Got(h) => errs.push(Invalid::new(
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

        let hook_instance = required_string(&self.hook_instance, "hookInstance", &mut errs);
        let fhir_server = fhir_server(&self.fhir_server, &mut errs);

        let authorization_unset = self.fhir_authorization.is_unset();
        let fhir_authorization = match self.fhir_authorization {
            Wire::Got(a) => a.validate(&mut errs),
            Wire::Wrong(kind) if kind != Kind::Null => {
                errs.push(Invalid::new(
                    "fhirAuthorization",
                    format!("expected an object, got {}", kind.describe()),
                ));
                None
            }
            Wire::Absent | Wire::Wrong(_) => None,
        };
        // Spec: "If fhirAuthorization is provided, this field is REQUIRED."
        if !authorization_unset && self.fhir_server.is_unset() {
            errs.push(Invalid::new(
                "fhirServer",
                "required when fhirAuthorization is present: the FHIR base URL the token is for",
            ));
        }

        let context = match self.context {
            Wire::Got(c) => c.validate(hook, &mut errs),
            other => {
                errs.push(missing_or_type("context", &other, "an object".to_string()));
                None
            }
        };

        let prefetch = match self.prefetch {
            Wire::Got(p) => p,
            Wire::Wrong(kind) if kind != Kind::Null => {
                errs.push(Invalid::new(
                    "prefetch",
                    format!(
                        "expected an object of prefetch keys, got {}",
                        kind.describe()
                    ),
                ));
                Prefetch::default()
            }
            Wire::Absent | Wire::Wrong(_) => Prefetch::default(),
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
}

/// `fhirServer`: absent or `null`, or an absolute http(s) URL.
fn fhir_server(server: &Wire<Text>, errs: &mut Vec<Invalid>) -> Option<url::Url> {
    match server {
        Wire::Got(s) => match url::Url::parse(s) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Some(u),
            _ => {
                errs.push(Invalid::new(
                    "fhirServer",
                    "expected an absolute http(s) URL (the FHIR base URL)",
                ));
                None
            }
        },
        Wire::Wrong(kind) if *kind != Kind::Null => {
            errs.push(Invalid::new(
                "fhirServer",
                format!("expected a URL string, got {}", kind.describe()),
            ));
            None
        }
        Wire::Absent | Wire::Wrong(_) => None,
    }
}

impl Authorization {
    fn validate(self, errs: &mut Vec<Invalid>) -> Option<FhirAuthorization> {
        let access_token =
            required_string(&self.access_token, "fhirAuthorization.access_token", errs);
        // Spec: token_type is the fixed value "Bearer"; EHRs vary the case.
        let token_type = match self.token_type {
            Wire::Absent => "Bearer".to_string(),
            Wire::Got(t) if t.eq_ignore_ascii_case("bearer") => t.into(),
            Wire::Got(_) | Wire::Wrong(_) => {
                errs.push(Invalid::new(
                    "fhirAuthorization.token_type",
                    "expected \"Bearer\"",
                ));
                return None;
            }
        };
        let expires_in = match self.expires_in {
            Wire::Got(n) => Some(n),
            Wire::Wrong(kind) if kind != Kind::Null => {
                errs.push(Invalid::new(
                    "fhirAuthorization.expires_in",
                    "expected an integer number of seconds",
                ));
                None
            }
            Wire::Absent | Wire::Wrong(_) => None,
        };
        Some(FhirAuthorization {
            access_token: access_token?,
            token_type,
            expires_in,
            scope: self.scope.into_value().map(String::from),
            subject: self.subject.into_value().map(String::from),
        })
    }
}

impl Context {
    fn validate(self, hook: Hook, errs: &mut Vec<Invalid>) -> Option<HookContext> {
        let user_id = required_string(&self.user_id, "context.userId", errs);
        let patient_id = required_string(&self.patient_id, "context.patientId", errs);
        if let Some(p) = &patient_id {
            check_fhir_id("context.patientId", p, errs);
        }
        let encounter_id = if hook == Hook::EncounterStart {
            required_string(&self.encounter_id, "context.encounterId", errs)
        } else {
            match &self.encounter_id {
                Wire::Got(s) if !s.is_empty() => Some(s.to_string()),
                unset if unset.is_unset() => None,
                _ => {
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
            match self.draft_orders {
                Wire::Got(b) => b.resources(errs),
                other => {
                    errs.push(missing_or_type(
                        "context.draftOrders",
                        &other,
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
        let selections = self
            .selections
            .into_value()
            .unwrap_or_default()
            .into_iter()
            .map(String::from)
            .collect();

        Some(HookContext {
            user_id: user_id?,
            patient_id: patient_id?,
            encounter_id,
            draft_orders,
            selections,
        })
    }
}

impl DraftOrders {
    /// The resources of `draftOrders`. Lenient: `Bundle.type` may be missing (seen in
    /// real EHRs); an entry without a `resource` object is skipped rather than failing
    /// the call. Only the Bundle's own entries are orders: nothing here is flattened.
    fn resources(self, errs: &mut Vec<Invalid>) -> Vec<Box<Resource>> {
        match &self.resource_type {
            Wire::Absent => {}
            Wire::Got(t) if &**t == "Bundle" => {}
            Wire::Got(_) | Wire::Wrong(_) => {
                errs.push(Invalid::new(
                    "context.draftOrders.resourceType",
                    "expected \"Bundle\"",
                ));
                return Vec::new();
            }
        }
        match self.entry {
            Wire::Got(entries) => entries
                .into_iter()
                .filter_map(|e| e.into_value()?.resource.into_value())
                .collect(),
            Wire::Wrong(kind) if kind != Kind::Null => {
                errs.push(Invalid::new(
                    "context.draftOrders.entry",
                    "expected an array of Bundle entries",
                ));
                Vec::new()
            }
            Wire::Absent | Wire::Wrong(_) => Vec::new(),
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

/// A required non-empty string at `path`.
fn required_string(got: &Wire<Text>, path: &str, errs: &mut Vec<Invalid>) -> Option<String> {
    match got {
        Wire::Got(s) if !s.is_empty() => Some(s.to_string()),
        Wire::Got(_) => {
            errs.push(Invalid::new(path, "expected a non-empty string, got \"\""));
            None
        }
        other => {
            errs.push(missing_or_type(path, other, "a string".to_string()));
            None
        }
    }
}

fn missing_or_type<T>(path: &str, got: &Wire<T>, expected: String) -> Invalid {
    match got {
        Wire::Wrong(kind) => Invalid::new(
            path,
            format!("expected {expected}, got {}", kind.describe()),
        ),
        // Callers judge what they got themselves: only absence reaches here.
        Wire::Absent | Wire::Got(_) => Invalid::new(path, format!("required: expected {expected}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cds_hooks::Prefetched;
    use serde_json::json;

    fn base(hook: &str) -> Value {
        json!({
            "hook": hook,
            "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
            "context": {"userId": "Practitioner/1", "patientId": "p1"}
        })
    }

    fn parse(hook: Hook, body: &Value) -> Result<HookRequest, Vec<Invalid>> {
        match parse_hook_request(hook, body.to_string().as_bytes(), usize::MAX) {
            Ok(r) => Ok(r),
            Err(RequestError::Invalid(list)) => Err(list),
            Err(e) => panic!("{body}: {e:?}"),
        }
    }

    fn paths(r: Result<HookRequest, Vec<Invalid>>) -> Vec<String> {
        r.expect_err("should be invalid")
            .into_iter()
            .map(|i| i.path)
            .collect()
    }

    fn messages(r: Result<HookRequest, Vec<Invalid>>) -> Vec<String> {
        r.expect_err("should be invalid")
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn minimal_patient_view_parses() {
        let r = parse(Hook::PatientView, &base("patient-view")).unwrap();
        assert_eq!(r.context.patient_id, "p1");
        assert!(r.prefetch.is_empty());
        assert!(r.fhir_server.is_none());
    }

    #[test]
    fn not_json_is_told_apart_from_invalid() {
        assert!(matches!(
            parse_hook_request(Hook::PatientView, b"{\"hook\": ", usize::MAX),
            Err(RequestError::NotJson(_))
        ));
        for (body, kind) in [
            (json!([1]), "an array"),
            (json!("x"), "a string"),
            (json!(null), "null"),
            (json!(3.5), "a number"),
        ] {
            assert_eq!(
                messages(parse(Hook::PatientView, &body)),
                [format!(
                    "expected a JSON object (a CDS Hooks request), got {kind}"
                )]
            );
        }
    }

    #[test]
    fn prefetch_values_are_typed_resources_null_or_not_objects() {
        let mut b = base("patient-view");
        b["prefetch"] = json!({
            "patient": {"resourceType": "Patient", "id": "p1", "birthDate": "1970-01-01",
                        "text": {"div": "<div>skipped</div>"}},
            "conditions": null,
            "observations": "Observation?patient=p1",
            "procedures": {"resourceType": "Bundle", "entry": [
                {"resource": {"resourceType": "Procedure", "id": "x"}}]},
        });
        let mut r = parse(Hook::PatientView, &b).unwrap();
        assert_eq!(r.prefetch.len(), 4);
        let Some(Prefetched::Resource(p)) = r.prefetch.take("patient") else {
            panic!()
        };
        assert_eq!(p.person.birth_date.as_str(), Some("1970-01-01"));
        assert_eq!(r.prefetch.get("conditions"), Some(&Prefetched::Null));
        assert_eq!(
            r.prefetch.get("observations"),
            Some(&Prefetched::NotAnObject)
        );
        let Some(Prefetched::Resource(bundle)) = r.prefetch.get("procedures") else {
            panic!()
        };
        assert_eq!(bundle.bundle.entry.count(), 1);
        assert_eq!(r.prefetch.get("patient"), None);
        // Built in code, the same values.
        assert_eq!(
            Prefetched::from_value(&b["prefetch"]["conditions"]),
            Prefetched::Null
        );
        assert_eq!(
            Prefetched::from_value(&b["prefetch"]["procedures"]),
            *r.prefetch.get("procedures").unwrap()
        );
    }

    #[test]
    fn resources_past_the_allowance_refuse_the_body() {
        use crate::record::resource::{ALLOWANCE_SLACK, RESOURCE_COST};
        // `contained: [{}, ...]`: 3 bytes of text and no tree, a whole resource each.
        let body = |n: usize| {
            let mut b = base("patient-view");
            b["prefetch"] = json!({"patient": {"resourceType": "Patient",
                                               "contained": vec![json!({}); n]}});
            b.to_string()
        };
        let parse =
            |n: usize| parse_hook_request(Hook::PatientView, body(n).as_bytes(), ALLOWANCE_SLACK);
        // The slack alone: the Patient, the envelope's strings and what fits beside
        // them (each contained resource with its slots in the list, at most 5: every
        // buffer the doubling list had, at the allocator's classes) always fit; more than
        // the slack holds resources never do.
        let each = RESOURCE_COST + 5 * std::mem::size_of::<Box<Resource>>();
        let fits = (ALLOWANCE_SLACK - RESOURCE_COST - 2048) / each;
        assert!(parse(fits).is_ok());
        let never = ALLOWANCE_SLACK / RESOURCE_COST + 1;
        assert!(matches!(parse(never), Err(RequestError::TooLarge)));
    }

    #[test]
    fn prefetch_keys_are_charged_to_the_allowance() {
        use crate::record::resource::allowance_for;
        // `{"k0":null,"k1":null,...}`: 10 bytes a key, a string and a table slot each.
        let body = |n: usize| {
            let mut b = base("patient-view");
            b["prefetch"] = (0..n).map(|i| (format!("k{i}"), json!(null))).collect();
            b.to_string()
        };
        let parse = |n: usize| {
            let text = body(n);
            parse_hook_request(
                Hook::PatientView,
                text.as_bytes(),
                allowance_for(text.len()),
            )
        };
        // A few keys fit the slack; a hundred thousand pass 8 times their bytes.
        assert_eq!(parse(20).unwrap().prefetch.len(), 20);
        assert!(matches!(parse(100_000), Err(RequestError::TooLarge)));
    }

    #[test]
    fn prefetch_that_is_not_an_object_is_refused_null_is_empty() {
        let mut b = base("patient-view");
        b["prefetch"] = json!(null);
        assert!(parse(Hook::PatientView, &b).unwrap().prefetch.is_empty());
        b["prefetch"] = json!("not an object");
        assert_eq!(
            messages(parse(Hook::PatientView, &b)),
            ["prefetch: expected an object of prefetch keys, got a string"]
        );
    }

    #[test]
    fn wrong_hook_names_expected_value() {
        let e = parse(Hook::PatientView, &base("order-sign")).unwrap_err();
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
            paths(parse(Hook::EncounterStart, &base("encounter-start"))),
            ["context.encounterId"]
        );
    }

    #[test]
    fn order_hooks_require_draft_orders_but_not_bundle_type() {
        assert_eq!(
            paths(parse(Hook::OrderSign, &base("order-sign"))),
            ["context.draftOrders"]
        );
        let mut b = base("order-select");
        b["context"]["draftOrders"] = json!({"entry": [
            {"resource": {"resourceType": "ServiceRequest", "status": "draft"}},
            {"bad": 1}, {"resource": "not an object"}, 7]});
        let r = parse(Hook::OrderSelect, &b).unwrap();
        assert_eq!(r.context.draft_orders.len(), 1);
        assert_eq!(r.context.draft_orders[0].status.as_str(), Some("draft"));
        b["context"]["draftOrders"] = json!({"resourceType": "Bundle", "entry": null});
        assert!(
            parse(Hook::OrderSelect, &b)
                .unwrap()
                .context
                .draft_orders
                .is_empty()
        );
        b["context"]["draftOrders"] = json!({"resourceType": null, "entry": 3});
        assert_eq!(
            paths(parse(Hook::OrderSelect, &b)),
            ["context.draftOrders.resourceType"]
        );
        b["context"]["draftOrders"] = json!({"entry": {}});
        assert_eq!(
            paths(parse(Hook::OrderSelect, &b)),
            ["context.draftOrders.entry"]
        );
        b["context"]["draftOrders"] = json!([]);
        assert_eq!(
            messages(parse(Hook::OrderSelect, &b)),
            [
                "context.draftOrders: expected a FHIR Bundle of draft orders (order-select \
              requires it), got an array"
            ]
        );
    }

    #[test]
    fn fhir_authorization_requires_fhir_server() {
        let mut b = base("patient-view");
        b["fhirAuthorization"] = json!({"access_token": "t", "token_type": "Bearer"});
        assert_eq!(paths(parse(Hook::PatientView, &b)), ["fhirServer"]);
        b["fhirServer"] = json!(null);
        assert_eq!(paths(parse(Hook::PatientView, &b)), ["fhirServer"]);
        b["fhirAuthorization"] = json!(null);
        assert!(parse(Hook::PatientView, &b).is_ok());
    }

    #[test]
    fn authorization_fields_are_checked_as_before() {
        let mut b = base("patient-view");
        b["fhirServer"] = json!("https://fhir.example.org/r4");
        b["fhirAuthorization"] = json!({"access_token": "t", "expires_in": 300,
                                        "scope": "patient/*.read", "subject": 5});
        let a = parse(Hook::PatientView, &b)
            .unwrap()
            .fhir_authorization
            .unwrap();
        assert_eq!(a.token_type, "Bearer");
        assert_eq!(a.expires_in, Some(300));
        assert_eq!(a.scope.as_deref(), Some("patient/*.read"));
        assert_eq!(a.subject, None);
        // An integer, not 3.0; a bad token_type stops before expires_in is judged.
        b["fhirAuthorization"] = json!({"access_token": "", "expires_in": 3.0});
        assert_eq!(
            messages(parse(Hook::PatientView, &b)),
            [
                "fhirAuthorization.access_token: expected a non-empty string, got \"\"",
                "fhirAuthorization.expires_in: expected an integer number of seconds"
            ]
        );
        b["fhirAuthorization"] = json!({"token_type": "MAC", "expires_in": "x"});
        assert_eq!(
            messages(parse(Hook::PatientView, &b)),
            [
                "fhirAuthorization.access_token: required: expected a string",
                "fhirAuthorization.token_type: expected \"Bearer\""
            ]
        );
        b["fhirAuthorization"] = json!([]);
        b["fhirServer"] = json!(7);
        assert_eq!(
            messages(parse(Hook::PatientView, &b)),
            [
                "fhirServer: expected a URL string, got a number",
                "fhirAuthorization: expected an object, got an array"
            ]
        );
    }

    #[test]
    fn reports_every_problem_at_once() {
        let b = json!({"hook": "patient-view", "context": {"patientId": "a/b"}});
        let p = paths(parse(Hook::PatientView, &b));
        assert_eq!(p, ["hookInstance", "context.userId", "context.patientId"]);
        let b = json!({"hook": 1, "hookInstance": "", "context": [],
                       "fhirServer": "ftp://x", "prefetch": 2});
        assert_eq!(
            messages(parse(Hook::PatientView, &b)),
            [
                "hook: expected the string \"patient-view\", got a number",
                "hookInstance: expected a non-empty string, got \"\"",
                "fhirServer: expected an absolute http(s) URL (the FHIR base URL)",
                "context: expected an object, got an array",
                "prefetch: expected an object of prefetch keys, got a number"
            ]
        );
    }

    #[test]
    fn selections_keep_their_strings() {
        let mut b = base("order-select");
        b["context"]["draftOrders"] = json!({"resourceType": "Bundle"});
        b["context"]["selections"] = json!(["ServiceRequest/1", 2, null]);
        let r = parse(Hook::OrderSelect, &b).unwrap();
        assert_eq!(r.context.selections, ["ServiceRequest/1"]);
    }

    #[test]
    fn the_hook_can_be_named_in_place_of_the_bodys() {
        let mut body = RequestBody::from_slice(base("order-sign").to_string().as_bytes()).unwrap();
        assert_eq!(body.hook(), NamedHook::Name("order-sign"));
        body.set_hook(Hook::PatientView);
        assert!(body.validate(Hook::PatientView).is_ok());
        let body = RequestBody::from_slice(b"[1]").unwrap();
        assert_eq!(body.hook(), NamedHook::NotAnObject);
    }

    #[test]
    fn token_is_not_in_debug_output() {
        let mut b = base("patient-view");
        b["fhirServer"] = json!("https://fhir.example.org/r4");
        b["fhirAuthorization"] = json!({"access_token": "s3cret-token", "token_type": "bearer"});
        let r = parse(Hook::PatientView, &b).unwrap();
        assert!(!format!("{r:?}").contains("s3cret-token"));
    }
}
