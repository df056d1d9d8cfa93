//! What each fuzz target does with one input. Shared by the cargo-fuzz binaries
//! (`fuzz/fuzz_targets/*.rs`) and the stable regression test (`tests/fuzz_regression.rs`
//! includes this file with `#[path]`), so a corpus file means the same in both.
//!
//! The structured targets read their input through [`Bytes`], a small byte reader that
//! turns the fuzzer's bytes into choices among values the service really reads (codes of
//! the shipped mappings, FHIR statuses, dates around the windows, units), which reaches
//! far deeper than raw JSON.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value, json};

use dvt_cds::assessment::HookInput;
use dvt_cds::cds_hooks::{
    FeedbackEntry, Hook, MAX_FEEDBACK_ENTRIES, RequestError, parse_feedback, parse_hook_request,
};
use dvt_cds::http::auth::{AuthFile, AuthOptions, Authenticator, IssuerConfig};
use dvt_cds::mappings::Mappings;
use dvt_cds::pipeline::respond_to;
use dvt_cds::record::resource::from_values;

/// Fuzz inputs larger than this are ignored (the HTTP layer limits bodies anyway).
const MAX_INPUT: usize = 256 * 1024;

// ---------------------------------------------------------------- byte reader

/// Reads choices from the fuzzer's bytes; zeros once the input is used up, so every
/// input decodes to something and short inputs give small values.
pub struct Bytes<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Bytes<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Bytes { data, pos: 0 }
    }
    pub fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
    /// A number in `0..n` (0 when n is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        let v = if n <= 256 {
            usize::from(self.byte())
        } else {
            usize::from(self.byte()) << 8 | usize::from(self.byte())
        };
        v % n
    }
    pub fn chance(&mut self, one_in: u8) -> bool {
        self.byte().is_multiple_of(one_in.max(1))
    }
    pub fn pick<T: Clone>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())].clone()
    }
    /// A short string taken from the input itself (for the odd unexpected value).
    pub fn raw_str(&mut self) -> String {
        let n = self.below(12);
        (0..n).map(|_| char::from(self.byte())).collect()
    }
}

// ---------------------------------------------------------------- raw JSON targets

fn json_of(data: &[u8]) -> Option<Value> {
    if data.len() > MAX_INPUT {
        return None;
    }
    serde_json::from_slice(data).ok()
}

/// Target `hook_request`: any JSON body against every hook's parser.
pub fn hook_request(data: &[u8]) {
    if data.len() > MAX_INPUT {
        return;
    }
    for hook in Hook::ALL {
        match parse_hook_request(hook, data, usize::MAX) {
            Ok(req) => {
                // What the parser promises the rest of the service.
                assert_eq!(req.hook, hook);
                assert!(!req.hook_instance.is_empty());
                assert!(valid_fhir_id(&req.context.patient_id));
                if let Some(e) = &req.context.encounter_id {
                    assert!(valid_fhir_id(e));
                }
                assert_eq!(hook == Hook::EncounterStart, {
                    hook == Hook::EncounterStart && req.context.encounter_id.is_some()
                });
                if let Some(u) = &req.fhir_server {
                    assert!(matches!(u.scheme(), "http" | "https"));
                }
                if req.fhir_authorization.is_some() {
                    assert!(req.fhir_server.is_some());
                }
                let _ = format!("{req:?}");
            }
            Err(RequestError::Invalid(errs)) => {
                assert!(!errs.is_empty(), "an error without a reason");
            }
            Err(RequestError::NotJson(_) | RequestError::TooLarge) => {}
        }
    }
}

fn valid_fhir_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Target `feedback`: any JSON body; accepted entries must survive the storage round
/// trip (they are serialised as the de-duplication key).
pub fn feedback(data: &[u8]) {
    let Some(v) = json_of(data) else { return };
    match parse_feedback(&v) {
        Ok(entries) => {
            assert!(!entries.is_empty());
            assert!(entries.len() <= MAX_FEEDBACK_ENTRIES);
            for e in &entries {
                let text = serde_json::to_string(e).expect("a FeedbackEntry serialises");
                let back: FeedbackEntry =
                    serde_json::from_str(&text).expect("a serialised FeedbackEntry reads back");
                assert_eq!(&back, e);
            }
        }
        Err(errs) => {
            assert!(!errs.is_empty(), "an error without a reason");
            // Past the entry limit, one issue and no per-entry work.
            let entries = v.get("feedback").and_then(|f| f.as_array()).map(Vec::len);
            if entries.is_some_and(|n| n > MAX_FEEDBACK_ENTRIES) {
                assert_eq!(errs.len(), 1);
            }
        }
    }
}

// ---------------------------------------------------------------- assessment targets

pub fn mappings() -> &'static Mappings {
    static M: OnceLock<Mappings> = OnceLock::new();
    M.get_or_init(|| Mappings::embedded().expect("the shipped mappings load"))
}

/// "now" of every assessment run: fixed, so a corpus file always means the same.
pub fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-20T12:00:00Z")
        .expect("a valid instant")
        .with_timezone(&Utc)
}

/// Checks on a response that hold whatever the record says (CDS Hooks 2.0 "Card
/// Attributes"; dvt-model.md §6: at most one card).
fn check_response(resp: &Value) {
    let cards = resp["cards"].as_array().expect("cards is an array");
    assert!(cards.len() <= 1, "more than one card");
    for card in cards {
        let summary = card["summary"].as_str().expect("card.summary is a string");
        assert!(!summary.is_empty(), "empty summary");
        assert!(
            summary.chars().count() < 140,
            "summary of {} characters (the spec wants < 140)",
            summary.chars().count()
        );
        assert!(
            matches!(
                card["indicator"].as_str(),
                Some("info" | "warning" | "critical")
            ),
            "indicator {}",
            card["indicator"]
        );
        assert!(
            card["source"]["label"]
                .as_str()
                .is_some_and(|l| !l.is_empty())
        );
        if let Some(u) = card.get("uuid") {
            assert!(u.as_str().is_some_and(|u| uuid::Uuid::parse_str(u).is_ok()));
        }
        if let Some(sugs) = card.get("suggestions") {
            for s in sugs.as_array().expect("suggestions is an array") {
                assert!(s["label"].as_str().is_some_and(|l| !l.is_empty()));
            }
        }
        if let Some(links) = card.get("links") {
            for l in links.as_array().expect("links is an array") {
                assert!(l["url"].as_str().is_some_and(|u| u.starts_with("http")));
                assert!(matches!(l["type"].as_str(), Some("absolute" | "smart")));
            }
        }
    }
    serde_json::to_string(resp).expect("the response serialises");
}

fn run_assessment(input: &HookInput, resources: &[Value]) {
    let resp = respond_to(mappings(), input, &from_values(resources), now());
    check_response(&serde_json::to_value(resp).expect("the response serialises"));
}

/// Target `assessment_json`: raw JSON as the patient's data. An object with `context`
/// goes through the service's pipeline as `dvt-cds evaluate --request` does (validation,
/// prefetch, assessment), an array is a list of resources, anything else one resource
/// (a Bundle, say).
pub fn assessment_json(data: &[u8]) {
    let Some(v) = json_of(data) else { return };
    let hook = Hook::ALL[data.len() % 4];
    if v.get("context").is_some() {
        let Ok(body) = dvt_cds::cds_hooks::RequestBody::from_slice(data) else {
            return;
        };
        if let Ok(resp) = dvt_cds::evaluate::evaluate_request(mappings(), Some(hook), body, now()) {
            check_response(&serde_json::to_value(resp).expect("the response serialises"));
        }
        return;
    }
    let resources = match v {
        Value::Array(a) => a,
        other => vec![other],
    };
    let draft_orders: Vec<Value> = if hook.is_order_hook() {
        resources
            .iter()
            .filter(|r| r.get("status").and_then(Value::as_str) == Some("draft"))
            .cloned()
            .collect()
    } else {
        Vec::new()
    };
    let input = HookInput {
        hook,
        hook_instance: "fuzz".to_string(),
        patient_id: "p1".to_string(),
        encounter_id: (hook == Hook::EncounterStart).then(|| "e1".to_string()),
        draft_orders: from_values(&draft_orders),
        data_quality: vec![],
    };
    run_assessment(&input, &resources);
}

/// Target `assessment_structured`: a generated FHIR-like record.
pub fn assessment_structured(data: &[u8]) {
    let mut b = Bytes::new(data);
    let (input, resources) = fhir_record(&mut b);
    run_assessment(&input, &resources);
}

struct Code {
    set: &'static str,
    system: &'static str,
    code: &'static str,
}

/// A sample of the shipped mappings' codes (fuzz/tools/make_data.py).
fn codes() -> &'static [Code] {
    static C: OnceLock<Vec<Code>> = OnceLock::new();
    C.get_or_init(|| {
        include_str!("codes.tsv")
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| {
                let mut it = l.split('\t');
                Some(Code {
                    set: it.next()?,
                    system: it.next()?,
                    code: it.next()?,
                })
            })
            .collect()
    })
}

const ICD: &str = "http://hl7.org/fhir/sid/icd-10-cm";
const SNOMED: &str = "http://snomed.info/sct";
const UCUM: &str = "http://unitsofmeasure.org";

fn coding(b: &mut Bytes<'_>) -> Value {
    let cs = codes();
    let c = &cs[b.below(cs.len())];
    let mut system = Value::from(c.system);
    let mut code = c.code.to_string();
    match b.below(16) {
        // The variants EHRs send: no dot, lower case, padded, OID system.
        0 => code = code.replace('.', ""),
        1 => code = code.to_lowercase(),
        2 => code = format!(" {code} "),
        3 if c.system == ICD => system = "urn:oid:2.16.840.1.113883.6.90".into(),
        4 if c.system == SNOMED => system = "urn:oid:2.16.840.1.113883.6.96".into(),
        5 => code.push_str(b.pick(&["0", "1", "2", "9", "X", ".", "Y1"])),
        6 => code = b.raw_str(),
        7 => system = Value::Null,
        _ => {}
    }
    let mut o = Map::new();
    if b.below(20) != 0 {
        o.insert("system".into(), system);
    }
    if b.below(30) == 0 {
        o.insert("code".into(), json!(7));
    } else {
        o.insert("code".into(), code.into());
    }
    if b.chance(4) {
        o.insert("display".into(), c.set.into());
    }
    Value::Object(o)
}

fn concept(b: &mut Bytes<'_>) -> Value {
    match b.below(24) {
        0 => json!("not a CodeableConcept"),
        1 => json!({"coding": {"code": "x"}}),
        2 => json!({"text": "free text only"}),
        _ => {
            let n = 1 + b.below(3);
            json!({"coding": (0..n).map(|_| coding(b)).collect::<Vec<_>>()})
        }
    }
}

fn status_concept(b: &mut Bytes<'_>, codes: &[&str]) -> Value {
    match b.below(12) {
        0 => json!("active"),
        1 => json!({"coding": []}),
        _ => json!({"coding": [{"code": b.pick(codes)}]}),
    }
}

const DAYS: &[i64] = &[
    0, 1, 2, 3, 4, 6, 7, 8, 13, 14, 15, 20, 27, 28, 29, 30, 31, 41, 42, 43, 55, 56, 57, 83, 84, 85,
    89, 90, 91, 182, 183, 184, 279, 280, 281, 400, 3650, 20000, -1, -30,
];

/// A date around the model's windows, in one of the forms FHIR allows (and a few it
/// does not).
fn date(b: &mut Bytes<'_>) -> Value {
    let t = now() - Duration::days(b.pick(DAYS)) - Duration::hours(b.pick(&[0, 1, 11, 12, 13, 23]));
    let s = match b.below(14) {
        0..=3 => t.format("%Y-%m-%d").to_string(),
        4..=6 => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        7 => t.format("%Y-%m-%dT%H:%M:%S%.3f+05:30").to_string(),
        8 => t.format("%Y-%m-%dT%H:%M:%S").to_string(),
        9 => t.format("%Y-%m").to_string(),
        10 => t.format("%Y").to_string(),
        11 => b
            .pick(&[
                "yesterday",
                "2026-02-30",
                "2026-13-01",
                "",
                "20261120",
                "2026-11-20T25:00:00Z",
                "0000-01-01",
                "9999-12-31T23:59:59Z",
                "2026-11-20T12:00:00.123456789-14:00",
                "+12026-11-20",
            ])
            .to_string(),
        12 => return json!(20261120),
        _ => return Value::Null,
    };
    Value::String(s)
}

const STATUSES: &[&str] = &[
    "active",
    "completed",
    "final",
    "preliminary",
    "amended",
    "in-progress",
    "entered-in-error",
    "cancelled",
    "stopped",
    "not-done",
    "not-taken",
    "planned",
    "finished",
    "revoked",
    "draft",
    "on-hold",
    "unknown",
    " active ",
    "",
];

const UNITS: &[&str] = &[
    "ug/L",
    "ng/mL",
    "mg/L",
    "ug/mL",
    "ng/mL{FEU}",
    "ug/L{DDU}",
    "mg/L{FEU}{DDU}",
    "ng/mL{",
    "}ng/mL",
    "%",
    "/min",
    "{beats}/min",
    "beats/min",
    "mmol/L",
    "",
    " % ",
];

const VALUES: &[f64] = &[
    0.0, 0.4, 0.5, 0.49, 1.0, 17.0, 94.9, 95.0, 99.0, 100.0, 100.1, 120.0, 249.0, 250.0, 251.0,
    499.0, 500.0, 501.0, 700.0, 1e6, 1e300, -1.0, -0.0,
];

fn quantity(b: &mut Bytes<'_>) -> Value {
    let mut q = Map::new();
    match b.below(10) {
        0 => {}
        1 => {
            q.insert("value".into(), json!("500"));
        }
        2 => {
            q.insert("value".into(), json!(u64::MAX));
        }
        _ => {
            q.insert("value".into(), json!(b.pick(VALUES)));
        }
    }
    let unit = b.pick(UNITS);
    match b.below(5) {
        0 => {
            q.insert("unit".into(), unit.into());
        }
        1 => {
            q.insert("code".into(), unit.into());
            q.insert("system".into(), UCUM.into());
        }
        2 => {
            q.insert("code".into(), unit.into());
            q.insert("system".into(), "http://example.org/units".into());
            q.insert("unit".into(), b.pick(UNITS).into());
        }
        3 => {
            q.insert("code".into(), json!(["mg/L"]));
        }
        _ => {
            q.insert("code".into(), unit.into());
        }
    }
    if b.chance(4) {
        q.insert(
            "comparator".into(),
            b.pick(&["<", "<=", ">=", ">", "ad", ""]).into(),
        );
    }
    Value::Object(q)
}

fn reference(b: &mut Bytes<'_>) -> Value {
    match b.below(10) {
        0 => json!({"reference": "Patient/p2"}),
        1 => json!({"reference": "http://fhir.example.org/r4/Patient/p1/_history/3"}),
        2 => json!({"reference": "urn:uuid:9368d37b-283f-44a0-93ea-547cebab93ed"}),
        3 => json!("Patient/p1"),
        4 => json!({"display": "someone"}),
        5 => json!({"reference": "Patient/"}),
        _ => json!({"reference": "Patient/p1"}),
    }
}

const KINDS: &[&str] = &[
    "Condition",
    "Observation",
    "Procedure",
    "MedicationRequest",
    "MedicationStatement",
    "Encounter",
    "ServiceRequest",
    "DiagnosticReport",
    "ImagingStudy",
    "Medication",
    "Patient",
    "Basic",
];

fn resource(b: &mut Bytes<'_>, depth: u8) -> Value {
    let kind = if depth < 1 && b.chance(20) {
        "Bundle"
    } else {
        b.pick(KINDS)
    };
    let mut r = Map::new();
    if b.below(30) != 0 {
        r.insert("resourceType".into(), kind.into());
    }
    match b.below(12) {
        0 => {}
        1 => {
            r.insert("id".into(), json!(3));
        }
        _ => {
            r.insert(
                "id".into(),
                b.pick(&["1", "2", "3", "m1", "x", "p1", ""]).into(),
            );
        }
    }
    if kind == "Bundle" {
        let n = b.below(4);
        let entries: Vec<Value> = (0..n)
            .map(|_| {
                if b.chance(8) {
                    json!({"fullUrl": "x"})
                } else {
                    json!({"resource": resource(b, depth + 1)})
                }
            })
            .collect();
        r.insert("type".into(), b.pick(&["searchset", "collection"]).into());
        r.insert("entry".into(), entries.into());
        return Value::Object(r);
    }
    if kind == "Patient" {
        r.insert("id".into(), b.pick(&["p1", "p2"]).into());
        r.insert("birthDate".into(), birth_date(b));
        return Value::Object(r);
    }
    if !b.chance(6) {
        r.insert("subject".into(), reference(b));
    }
    if b.chance(5) {
        r.insert("status".into(), json!(1));
    } else if !b.chance(6) {
        r.insert("status".into(), b.pick(STATUSES).into());
    }
    let code_key = match kind {
        "MedicationRequest" | "MedicationStatement" => "medicationCodeableConcept",
        "Encounter" => "reasonCode",
        "ImagingStudy" => "procedureCode",
        _ => "code",
    };
    let n = b.below(3);
    if code_key == "reasonCode" || code_key == "procedureCode" {
        if n > 0 || b.chance(3) {
            let list: Vec<Value> = (0..n).map(|_| concept(b)).collect();
            r.insert(code_key.into(), list.into());
        }
    } else if !b.chance(8) {
        r.insert(code_key.into(), concept(b));
    }
    match kind {
        "Condition" => {
            if !b.chance(3) {
                r.insert(
                    "clinicalStatus".into(),
                    status_concept(
                        b,
                        &[
                            "active",
                            "recurrence",
                            "relapse",
                            "inactive",
                            "remission",
                            "resolved",
                        ],
                    ),
                );
            }
            if b.chance(3) {
                r.insert(
                    "verificationStatus".into(),
                    status_concept(
                        b,
                        &["confirmed", "provisional", "refuted", "entered-in-error"],
                    ),
                );
            }
        }
        "Observation" => {
            match b.below(6) {
                0 => {
                    r.insert("valueBoolean".into(), b.pick(&[true, false]).into());
                }
                1 => {
                    r.insert("valueCodeableConcept".into(), concept(b));
                }
                2 => {}
                _ => {
                    r.insert("valueQuantity".into(), quantity(b));
                }
            }
            let n = b.below(4);
            if n > 0 {
                let comps: Vec<Value> = (0..n)
                    .map(|_| json!({"code": concept(b), "valueQuantity": quantity(b)}))
                    .collect();
                r.insert("component".into(), comps.into());
            }
        }
        "Procedure" if b.chance(2) => {
            let cat = json!({"coding": [{"system": SNOMED, "code": "387713003"}]});
            let v = if b.chance(2) { json!([cat]) } else { cat };
            r.insert("category".into(), v);
        }
        "Encounter" => {
            let class = b.pick(&["IMP", "ACUTE", "NONAC", "AMB", "EMER", " IMP "]);
            let v = match b.below(4) {
                0 => json!({"coding": [{"code": class}]}),
                1 => json!(class),
                _ => {
                    json!({"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": class})
                }
            };
            r.insert("class".into(), v);
            let mut period = Map::new();
            if !b.chance(5) {
                period.insert("start".into(), date(b));
            }
            if !b.chance(3) {
                period.insert("end".into(), date(b));
            }
            r.insert("period".into(), Value::Object(period));
        }
        "MedicationRequest" | "MedicationStatement" if b.chance(2) => {
            let target = b.pick(&["Medication/m1", "#m1", "m1", "Medication/zz", ""]);
            r.insert("medicationReference".into(), json!({"reference": target}));
            if b.chance(2) {
                r.insert(
                    "contained".into(),
                    json!([{"resourceType": "Medication", "id": "m1", "code": concept(b)}]),
                );
            }
        }
        _ => {}
    }
    if b.chance(3) {
        let site = json!({"coding": [coding(b)]});
        r.insert(
            "bodySite".into(),
            if b.chance(2) { json!([site]) } else { site },
        );
    }
    // Dates: the element the reader uses for this kind, sometimes another one too.
    let n = 1 + b.below(3);
    for _ in 0..n {
        let (k, sub) = b.pick(&[
            ("onsetDateTime", ""),
            ("onsetPeriod", "start"),
            ("recordedDate", ""),
            ("effectiveDateTime", ""),
            ("effectivePeriod", "start"),
            ("effectiveInstant", ""),
            ("issued", ""),
            ("performedDateTime", ""),
            ("performedPeriod", "start"),
            ("performedPeriod", "end"),
            ("authoredOn", ""),
            ("dateAsserted", ""),
            ("started", ""),
        ]);
        let d = date(b);
        if sub.is_empty() {
            r.insert(k.into(), d);
        } else {
            let e = r.entry(k).or_insert_with(|| json!({}));
            if let Some(o) = e.as_object_mut() {
                o.insert(sub.into(), d);
            }
        }
    }
    Value::Object(r)
}

fn birth_date(b: &mut Bytes<'_>) -> Value {
    let years = b.pick(&[10, 17, 18, 19, 30, 49, 50, 51, 70, 95, 130]);
    let t = now() - Duration::days(years * 365 + years / 4) + Duration::days(b.pick(&[-1, 0, 1]));
    match b.below(8) {
        0 => t.format("%Y").to_string().into(),
        1 => b.pick(&["1970-02-30", "", "unknown"]).into(),
        2 => json!(1970),
        3 => (now() + Duration::days(3))
            .format("%Y-%m-%d")
            .to_string()
            .into(),
        _ => t.format("%Y-%m-%d").to_string().into(),
    }
}

/// A generated record: hook input (hook, encounter, draft orders) and resources.
pub fn fhir_record(b: &mut Bytes<'_>) -> (HookInput, Vec<Value>) {
    let hook = b.pick(&Hook::ALL);
    let mut resources = Vec::new();
    match b.below(8) {
        0 => {}
        1 => {
            resources
                .push(json!({"resourceType": "Patient", "id": "p1", "birthDate": birth_date(b)}));
            resources
                .push(json!({"resourceType": "Patient", "id": "p2", "birthDate": birth_date(b)}));
        }
        _ => resources
            .push(json!({"resourceType": "Patient", "id": "p1", "birthDate": birth_date(b)})),
    }
    let n = b.below(14);
    for _ in 0..n {
        resources.push(resource(b, 0));
    }
    let draft_orders: Vec<Value> = if hook.is_order_hook() {
        (0..b.below(3))
            .map(|_| {
                let mut r = resource(b, 1);
                if let Some(o) = r.as_object_mut() {
                    o.insert("resourceType".into(), "ServiceRequest".into());
                    o.insert("status".into(), "draft".into());
                }
                r
            })
            .collect()
    } else {
        Vec::new()
    };
    let patient_id = if b.chance(16) { "" } else { "p1" };
    let input = HookInput {
        hook,
        hook_instance: "fuzz".to_string(),
        patient_id: patient_id.to_string(),
        encounter_id: (hook == Hook::EncounterStart || b.chance(4)).then(|| "e1".to_string()),
        draft_orders: from_values(&draft_orders),
        data_quality: vec![],
    };
    (input, resources)
}

// ---------------------------------------------------------------- JWT targets

pub const ISS: &str = "https://ehr.example.org";
pub const AUD: &str = "https://cds.example.org/cds-services/dvt-patient-view";

struct JwtEnv {
    rt: tokio::runtime::Runtime,
    auth: Authenticator,
}

/// One Authenticator for the whole run: issuer `ISS` with the fuzz-only JWKS
/// (fuzz/keys/jwks.json, written to a temp file because the verifier reads files).
fn jwt_env() -> &'static JwtEnv {
    static E: OnceLock<JwtEnv> = OnceLock::new();
    E.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("dvt-cds-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let jwks = dir.join("jwks.json");
        std::fs::write(&jwks, include_str!("../keys/jwks.json")).expect("write jwks");
        let file = AuthFile {
            issuer: vec![IssuerConfig {
                iss: ISS.to_string(),
                jwks_file: Some(jwks),
                jwks_url: None,
                jku: Vec::new(),
                fhir_servers: Vec::new(),
            }],
        };
        let auth =
            Authenticator::from_config(file, &dir, &AuthOptions::default()).expect("auth config");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        JwtEnv { rt, auth }
    })
}

/// Target `jwt`: any bytes as the bearer token. Nothing the fuzzer makes may verify
/// (it has no private key).
pub fn jwt(data: &[u8]) {
    if data.len() > 16 * 1024 {
        return;
    }
    let token = String::from_utf8_lossy(data);
    let env = jwt_env();
    let r = env.rt.block_on(env.auth.verify(&token, AUD));
    match r {
        Ok(v) => panic!("a fuzzed token verified: jti {}", v.jti),
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Signing keys of the fuzz-only JWKS (fuzz/keys/*.pem, made by tools/make_data.py).
struct Signers {
    rsa: jsonwebtoken::EncodingKey,
    ec256: jsonwebtoken::EncodingKey,
    ec384: jsonwebtoken::EncodingKey,
    hmac: jsonwebtoken::EncodingKey,
}

fn signers() -> &'static Signers {
    static S: OnceLock<Signers> = OnceLock::new();
    S.get_or_init(|| Signers {
        rsa: jsonwebtoken::EncodingKey::from_rsa_pem(include_bytes!("../keys/rsa.pem"))
            .expect("rsa key"),
        ec256: jsonwebtoken::EncodingKey::from_ec_pem(include_bytes!("../keys/ec-256.pem"))
            .expect("ec key"),
        ec384: jsonwebtoken::EncodingKey::from_ec_pem(include_bytes!("../keys/ec-384.pem"))
            .expect("ec key"),
        hmac: jsonwebtoken::EncodingKey::from_secret(b"fuzz-secret"),
    })
}

/// jti values of the structured target that are fresh on every run (a replay check
/// would otherwise refuse a corpus file run twice).
static FRESH: AtomicU64 = AtomicU64::new(0);

/// Target `jwt_structured`: a token built from choices (header alg / kid / jku, claims
/// of every type, the signature by the right key, a wrong key or none) and an oracle:
/// a token verifies only if it is genuinely signed by the key its kid names with an
/// allowed algorithm and its claims pass every check; a token that is clean in every
/// respect verifies.
pub fn jwt_structured(data: &[u8]) {
    use jsonwebtoken::Algorithm as A;
    let mut b = Bytes::new(data);
    let env = jwt_env();
    let s = signers();
    let t0 = jsonwebtoken::get_current_timestamp() as i64;

    let alg = b.pick(&[
        "ES384", "RS384", "ES256", "RS256", "HS256", "none", "PS256", "RS512", "EdDSA", "es256",
    ]);
    let kid = b.pick(&[
        Some("ec-384"),
        Some("rsa-384"),
        Some("ec-256"),
        Some("rsa-1"),
        Some("oct-1"),
        Some("ec-mislabelled"),
        Some("nope"),
        None,
    ]);
    let mut header = Map::new();
    header.insert("alg".into(), alg.into());
    if let Some(k) = kid {
        header.insert("kid".into(), k.into());
    }
    if b.chance(2) {
        header.insert("typ".into(), "JWT".into());
    }
    let jku = b.chance(10);
    if jku {
        header.insert("jku".into(), "https://127.0.0.1:9/jwks".into());
    }
    if b.chance(16) {
        header.insert("kid".into(), json!(7));
    }

    // Claims: each clean most of the time, otherwise a value a check must refuse.
    let mut claims = Map::new();
    let mut clean = true;
    match b.below(12) {
        0 => {
            clean = false;
        }
        1 => {
            claims.insert("iss".into(), "https://evil.example.org".into());
            clean = false;
        }
        2 => {
            claims.insert("iss".into(), json!([ISS]));
            clean = false;
        }
        _ => {
            claims.insert("iss".into(), ISS.into());
        }
    }
    match b.below(12) {
        0 => clean = false,
        1 => {
            claims.insert("aud".into(), "https://other.example.org".into());
            clean = false;
        }
        2 => {
            claims.insert("aud".into(), json!(["x", AUD]));
        }
        3 => {
            claims.insert("aud".into(), json!([]));
            clean = false;
        }
        4 => {
            claims.insert("aud".into(), json!(5));
            clean = false;
        }
        _ => {
            claims.insert("aud".into(), AUD.into());
        }
    }
    let exp_ok;
    match b.below(14) {
        0 => {
            exp_ok = false;
            clean = false;
        }
        1 => {
            claims.insert("exp".into(), json!(t0 - 3600));
            exp_ok = false;
            clean = false;
        }
        2 => {
            claims.insert("exp".into(), json!(t0 - 70));
            exp_ok = false;
            clean = false;
        }
        3 => {
            // Within the leeway: accepted.
            claims.insert("exp".into(), json!(t0 - 50));
            exp_ok = true;
        }
        4 => {
            claims.insert("exp".into(), json!((t0 + 300).to_string()));
            exp_ok = false;
            clean = false;
        }
        5 => {
            claims.insert("exp".into(), json!(-5));
            exp_ok = false;
            clean = false;
        }
        6 => {
            // Not expired, but valid for ever: refused by the lifetime bound.
            claims.insert("exp".into(), json!(u64::MAX));
            exp_ok = true;
            clean = false;
        }
        7 => {
            claims.insert("exp".into(), json!(t0 as f64 + 300.5));
            exp_ok = true;
            clean = false;
        }
        _ => {
            claims.insert("exp".into(), json!(t0 + 300));
            exp_ok = true;
        }
    }
    match b.below(10) {
        0 => {
            claims.insert("nbf".into(), json!(t0 + 3600));
            clean = false;
        }
        1 => {
            claims.insert("nbf".into(), json!(t0 - 10));
        }
        2 => {
            claims.insert("nbf".into(), json!("soon"));
            clean = false;
        }
        _ => {}
    }
    match b.below(10) {
        0 => clean = false,
        1 => {
            claims.insert("iat".into(), Value::Null);
            clean = false;
        }
        2 => {
            // iat must be a number.
            claims.insert("iat".into(), json!("yesterday"));
            clean = false;
        }
        _ => {
            claims.insert("iat".into(), json!(t0));
        }
    }
    let jti = match b.below(10) {
        0 => {
            clean = false;
            None
        }
        1 => {
            claims.insert("jti".into(), "".into());
            clean = false;
            None
        }
        2 => {
            claims.insert("jti".into(), json!(12));
            clean = false;
            None
        }
        3 => {
            // The same jti every time: verifies at most once per lifetime.
            claims.insert("jti".into(), "fixed".into());
            clean = false;
            Some("fixed".to_string())
        }
        _ => {
            let j = format!("fresh-{}", FRESH.fetch_add(1, Ordering::Relaxed));
            claims.insert("jti".into(), j.clone().into());
            Some(j)
        }
    };
    if b.chance(8) {
        claims.insert("sub".into(), b.raw_str().into());
    }

    let signing_input = format!(
        "{}.{}",
        b64(Value::Object(header.clone()).to_string().as_bytes()),
        b64(Value::Object(claims.clone()).to_string().as_bytes())
    );
    // Who signs, and with which algorithm.
    let (key, key_alg, genuine_kid) = match b.below(8) {
        0 => (None, None, None),
        1 => (Some(&s.hmac), Some(A::HS256), None),
        2 => (Some(&s.rsa), Some(A::RS256), Some("rsa-1")),
        3 => (Some(&s.rsa), Some(A::RS384), Some("rsa-384")),
        4 => (Some(&s.ec256), Some(A::ES256), Some("ec-256")),
        5 => (Some(&s.ec384), Some(A::ES384), Some("ec-384")),
        6 => (Some(&s.rsa), Some(A::RS512), None),
        // The signer the header asks for.
        _ => match (alg, kid) {
            ("RS256", Some("rsa-1")) => (Some(&s.rsa), Some(A::RS256), Some("rsa-1")),
            ("RS384", Some("rsa-384" | "rsa-1")) => (Some(&s.rsa), Some(A::RS384), kid),
            ("ES256", Some("ec-256")) => (Some(&s.ec256), Some(A::ES256), Some("ec-256")),
            ("ES384", Some("ec-384")) => (Some(&s.ec384), Some(A::ES384), Some("ec-384")),
            _ => (None, None, None),
        },
    };
    let sig = match (key, key_alg) {
        (Some(k), Some(a)) => jsonwebtoken::crypto::sign(signing_input.as_bytes(), k, a)
            .expect("signing with a fuzz key"),
        _ => b64(&b.raw_str().into_bytes()),
    };
    let mut token = format!("{signing_input}.{sig}");
    let mangled = match b.below(16) {
        0 => {
            token.push_str(".x");
            true
        }
        1 => {
            token.truncate(token.len().saturating_sub(2));
            true
        }
        2 => {
            token = format!(" {token}");
            true
        }
        _ => false,
    };

    // What the signature can prove: the key the kid names, with the header's alg.
    let key_fits = matches!(
        (alg, kid),
        ("RS256", Some("rsa-1"))
            | ("RS384", Some("rsa-1" | "rsa-384"))
            | ("ES256", Some("ec-256"))
            | ("ES384", Some("ec-384"))
    );
    let alg_matches_sig = matches!(
        (alg, key_alg),
        ("RS256", Some(A::RS256))
            | ("RS384", Some(A::RS384))
            | ("ES256", Some(A::ES256))
            | ("ES384", Some(A::ES384))
    );
    let same_key = match (kid, genuine_kid) {
        (Some("rsa-1" | "rsa-384"), Some("rsa-1" | "rsa-384")) => true,
        (Some(k), Some(g)) => k == g,
        _ => false,
    };
    let genuine =
        key_fits && alg_matches_sig && same_key && !header.get("kid").is_some_and(Value::is_number);

    let r = env.rt.block_on(env.auth.verify(&token, AUD));
    let t1 = jsonwebtoken::get_current_timestamp() as i64;
    match &r {
        Ok(v) => {
            assert!(genuine, "verified without a genuine signature: {token}");
            assert!(!jku && !mangled, "verified a jku / mangled token: {token}");
            assert_eq!(v.iss, ISS);
            assert!(exp_ok, "verified an expired token: {token}");
            assert_eq!(Some(&v.jti), jti.as_ref(), "{token}");
            let aud_ok = match claims.get("aud") {
                Some(Value::String(a)) => a == AUD,
                Some(Value::Array(a)) => a.iter().any(|x| x == AUD),
                _ => false,
            };
            assert!(aud_ok, "verified for the wrong audience: {token}");
            if let Some(nbf) = claims.get("nbf").and_then(Value::as_i64) {
                assert!(nbf <= t1 + 60, "verified before nbf: {token}");
            }
            let iat = claims.get("iat").and_then(Value::as_f64);
            assert!(iat.is_some(), "verified without a numeric iat: {token}");
            let iat = iat.unwrap_or_default();
            assert!(
                iat <= (t1 + 60) as f64,
                "verified an iat in the future: {token}"
            );
            let exp = claims
                .get("exp")
                .and_then(Value::as_f64)
                .unwrap_or(f64::MAX);
            assert!(
                exp - iat <= 360.0,
                "verified a token living over 5 min + leeway: {token}"
            );
        }
        Err(e) => {
            // The replay cache refuses new tokens once it holds REPLAY_CACHE_CAP live
            // ones (a long run mints that many clean tokens, some valid for ever).
            let full = e.check.starts_with("jti cache full");
            assert!(
                !clean || !genuine || jku || mangled || full,
                "a clean, genuinely signed token was refused ({}): {token}",
                e.check
            );
            let _ = e.to_string();
        }
    }
}
