//! Conformance matrix: one test per Service SHALL / SHALL NOT of
//! `shared/cds-hooks/requirements-2.0.csv` that this service can be tested for, named
//! `req_<id>_...`. Black-box: the real binary on a free port.
//!
//! Covered (67): 1, 3, 4, 5, 6, 7, 9, 10, 13, 16, 29, 36, 54, 55, 56, 57, 59, 74, 75,
//! 80, 83, 85, 87, 88, 89, 90, 92, 93, 95, 96, 98, 100, 103, 105, 107, 111, 115, 117,
//! 119, 121, 124, 127, 128, 130, 131, 132, 133, 134, 135, 136, 138, 139, 141, 142, 144,
//! 147, 176, 199, 201, 203, 208, 214, 216, 217, 218, 219, 220.
//!
//! Card requirements (80–147, 214–220) are checked on every card answered to the example
//! requests `cds-hooks/examples/*.request.json`; those tests FAIL when the examples
//! produce no card at all (nothing would have been checked).
//!
//! Not covered, and why:
//! - 2, 168 (HTTPS): TLS is terminated by the deployment's reverse proxy; the service
//!   speaks plain HTTP behind it (README, "Deployment").
//! - 61 (a valid access token on each FHIR call): FHIR queries belong to `fhir`; its
//!   tests against the Helios FHIR server check the bearer token.
//! - 125 (actions of a suggestion are applied together): client behaviour.
//! - 211 (several services with the same id to update stale guidance): we do not use
//!   this; each hook has its own service id, so there is nothing to test.
//! - 213 (negotiating which hooks a client supports): organisational, not testable.

mod common;

use std::sync::OnceLock;

use common::jwt;
use common::*;
use serde_json::{Value, json};

// ---------------------------------------------------------------- shared fixtures

/// `(example file name, response)` for every `cds-hooks/examples/*.request.json`.
fn example_responses() -> &'static [(String, Value)] {
    static RESPONSES: OnceLock<Vec<(String, Value)>> = OnceLock::new();
    RESPONSES.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("cds-hooks/examples");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.retain(|p| p.to_string_lossy().ends_with(".request.json"));
        files.sort();
        // A runtime of its own: the tests using this are plain #[test]s.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let app = TestApp::dev();
                let mut out = Vec::new();
                for f in files {
                    let req: Value =
                        serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
                    let hook = req["hook"].as_str().expect("example has a hook");
                    let (status, _, body) = post_json(
                        &app.url(&format!("/cds-services/{}", service_of(hook))),
                        &req,
                        None,
                    )
                    .await;
                    let name = f.file_name().unwrap().to_string_lossy().into_owned();
                    assert_eq!(status, 200, "{name}: {body}");
                    out.push((name, body));
                }
                out
            })
        })
        .join()
        .unwrap()
    })
}

/// Every card of the example responses, with the file it came from. Panics (fails the
/// test) when there is none: card requirements would go unchecked.
fn example_cards() -> Vec<(&'static str, &'static Value)> {
    let cards: Vec<(&str, &Value)> = example_responses()
        .iter()
        .flat_map(|(name, body)| {
            body["cards"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |c| (name.as_str(), c))
        })
        .collect();
    assert!(
        !cards.is_empty(),
        "no card at all across {} example requests under cds-hooks/examples: the card \
         requirements cannot be checked",
        example_responses().len()
    );
    cards
}

fn suggestions(card: &Value) -> impl Iterator<Item = &Value> {
    card["suggestions"].as_array().into_iter().flatten()
}

fn actions(card: &Value) -> impl Iterator<Item = &Value> {
    suggestions(card).flat_map(|s| s["actions"].as_array().into_iter().flatten())
}

fn links(card: &Value) -> impl Iterator<Item = &Value> {
    card["links"].as_array().into_iter().flatten()
}

fn override_reasons(card: &Value) -> impl Iterator<Item = &Value> {
    card["overrideReasons"].as_array().into_iter().flatten()
}

/// Every Coding a card sends: overrideReasons and source.topic.
fn codings(card: &Value) -> Vec<&Value> {
    let mut v: Vec<&Value> = override_reasons(card).collect();
    if card["source"]["topic"].is_object() {
        v.push(&card["source"]["topic"]);
    }
    v
}

fn is_absolute_url(v: &Value) -> bool {
    v.as_str()
        .and_then(|s| url::Url::parse(s).ok())
        .is_some_and(|u| u.has_host() || u.scheme() == "urn")
}

async fn discovery(app: &TestApp) -> Vec<Value> {
    let (status, _, body) = get(&app.url("/cds-services"), None).await;
    assert_eq!(status, 200);
    body["services"].as_array().expect("services array").clone()
}

// ---------------------------------------------------------------- JSON (1, 3)

#[tokio::test]
async fn req_001_responses_are_json() {
    let app = TestApp::dev();
    let (_, h, _) = get(&app.url("/cds-services"), None).await;
    assert!(
        h["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let (_, h, _) = post_json(
        &app.url("/cds-services/dvt-patient-view"),
        &hook_request("patient-view"),
        None,
    )
    .await;
    assert!(
        h["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let (_, h, b) = post_json(&app.url("/cds-services/dvt-patient-view"), &json!({}), None).await;
    assert!(
        h["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert!(b.is_object());
}

#[tokio::test]
async fn req_003_no_null_or_empty_values_in_what_we_send() {
    let app = TestApp::dev();
    let (_, _, d) = get(&app.url("/cds-services"), None).await;
    assert!(dvt_cds::cds_hooks::violations(&d).is_empty(), "{d}");
    for hook in [
        "patient-view",
        "encounter-start",
        "order-select",
        "order-sign",
    ] {
        let (_, _, b) = post_json(
            &app.url(&format!("/cds-services/{}", service_of(hook))),
            &hook_request(hook),
            None,
        )
        .await;
        assert!(dvt_cds::cds_hooks::violations(&b).is_empty(), "{hook}: {b}");
    }
    let (_, _, e) = post_json(&app.url("/cds-services/dvt-patient-view"), &json!({}), None).await;
    assert!(dvt_cds::cds_hooks::violations(&e).is_empty(), "{e}");
    for (name, body) in example_responses() {
        assert!(
            dvt_cds::cds_hooks::violations(body).is_empty(),
            "{name}: {body}"
        );
    }
}

// ---------------------------------------------------------------- discovery (4–36, 55–59)

#[tokio::test]
async fn req_004_discovery_endpoint_at_base_cds_services() {
    let app = TestApp::dev();
    assert_eq!(get(&app.url("/cds-services"), None).await.0, 200);
}

#[tokio::test]
async fn req_005_discovery_always_available_with_get() {
    let app = TestApp::dev();
    // Also after bad calls, and with a trailing query string.
    post_json(&app.url("/cds-services/dvt-patient-view"), &json!({}), None).await;
    assert_eq!(get(&app.url("/cds-services"), None).await.0, 200);
    assert_eq!(get(&app.url("/cds-services?x=1"), None).await.0, 200);
}

#[tokio::test]
async fn req_006_discovery_is_an_object_with_a_services_array() {
    let app = TestApp::dev();
    let (_, _, body) = get(&app.url("/cds-services"), None).await;
    assert!(body.is_object());
    assert!(
        body["services"].as_array().is_some_and(|s| !s.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn req_007_each_service_has_a_hook_string() {
    let app = TestApp::dev();
    for s in discovery(&app).await {
        let hook = s["hook"].as_str().unwrap_or_else(|| panic!("{s}"));
        assert!(dvt_cds::cds_hooks::Hook::from_wire(hook).is_some(), "{s}");
    }
}

#[tokio::test]
async fn req_009_each_service_has_a_description_string() {
    let app = TestApp::dev();
    for s in discovery(&app).await {
        assert!(
            s["description"].as_str().is_some_and(|d| !d.is_empty()),
            "{s}"
        );
    }
}

#[tokio::test]
async fn req_010_each_service_has_an_id_usable_in_the_url() {
    let app = TestApp::dev();
    for s in discovery(&app).await {
        let id = s["id"].as_str().unwrap_or_else(|| panic!("{s}"));
        assert!(
            !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
            "{id}"
        );
    }
}

#[tokio::test]
async fn req_013_discovery_answers_200() {
    let app = TestApp::dev();
    let (status, _, _) = get(&app.url("/cds-services"), None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn req_016_each_service_is_at_base_cds_services_id() {
    let app = TestApp::dev();
    for s in discovery(&app).await {
        let (id, hook) = (s["id"].as_str().unwrap(), s["hook"].as_str().unwrap());
        let (status, _, body) = post_json(
            &app.url(&format!("/cds-services/{id}")),
            &hook_request(hook),
            None,
        )
        .await;
        assert_eq!(status, 200, "{id}: {body}");
    }
}

#[tokio::test]
async fn req_029_prefetch_templates_are_in_discovery() {
    let app = TestApp::dev();
    for s in discovery(&app).await {
        assert!(
            s["prefetch"]
                .as_object()
                .is_some_and(|p| p.contains_key("patient")),
            "{s}"
        );
    }
}

#[tokio::test]
async fn req_036_each_prefetch_key_maps_to_a_query_string() {
    let app = TestApp::dev();
    for s in discovery(&app).await {
        for (key, query) in s["prefetch"].as_object().unwrap() {
            assert!(!key.is_empty());
            let q = query.as_str().unwrap_or_else(|| panic!("{key}: {query}"));
            let resource = q.split(['/', '?']).next().unwrap();
            assert!(
                resource
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_uppercase()),
                "{key}: {q}"
            );
        }
    }
}

/// All `{{...}}` tokens of a template, and whether the braces balance.
fn tokens(template: &str) -> (Vec<String>, bool) {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let Some(end) = rest[start..].find("}}") else {
            return (out, false);
        };
        out.push(rest[start + 2..start + end].to_string());
        rest = &rest[start + end + 2..];
    }
    let balanced = !rest.contains('{') && !rest.contains('}');
    (out, balanced)
}

#[tokio::test]
async fn req_055_prefetch_tokens_are_delimited_by_double_braces() {
    let app = TestApp::dev();
    for s in discovery(&app).await {
        for (key, q) in s["prefetch"].as_object().unwrap() {
            let (toks, balanced) = tokens(q.as_str().unwrap());
            assert!(balanced, "{key}: stray brace in {q}");
            assert!(
                !toks.is_empty(),
                "{key}: {q} has no token (every query is about the patient)"
            );
        }
    }
}

const USER_TOKENS: [&str; 4] = [
    "userPractitionerId",
    "userPractitionerRoleId",
    "userPatientId",
    "userRelatedPersonId",
];

#[tokio::test]
async fn req_056_tokens_are_context_paths_or_user_identifiers() {
    let app = TestApp::dev();
    for s in discovery(&app).await {
        for (_, q) in s["prefetch"].as_object().unwrap() {
            for t in tokens(q.as_str().unwrap()).0 {
                assert!(
                    t.starts_with("context.") || USER_TOKENS.contains(&t.as_str()),
                    "{t} in {q}"
                );
            }
        }
    }
}

/// Root-level primitive context fields of each hook (hook pages, "Context").
fn primitive_context_fields(hook: &str) -> &'static [&'static str] {
    match hook {
        "patient-view" => &["userId", "patientId", "encounterId"],
        "encounter-start" => &["userId", "patientId", "encounterId"],
        "order-select" | "order-sign" => &["userId", "patientId", "encounterId"],
        _ => &[],
    }
}

#[tokio::test]
async fn req_057_only_root_level_primitive_context_fields_are_tokens() {
    let app = TestApp::dev();
    for s in discovery(&app).await {
        let hook = s["hook"].as_str().unwrap();
        for (_, q) in s["prefetch"].as_object().unwrap() {
            for t in tokens(q.as_str().unwrap()).0 {
                if let Some(field) = t.strip_prefix("context.") {
                    assert!(!field.contains('.'), "{t}: not root level");
                    assert!(
                        primitive_context_fields(hook).contains(&field),
                        "{hook}: {t} is not a primitive field"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn req_059_context_tokens_are_named_context_dot_field() {
    let app = TestApp::dev();
    let mut seen = 0;
    for s in discovery(&app).await {
        for (_, q) in s["prefetch"].as_object().unwrap() {
            for t in tokens(q.as_str().unwrap()).0 {
                if !USER_TOKENS.contains(&t.as_str()) {
                    assert!(
                        t.starts_with("context.") && t.len() > "context.".len(),
                        "{t}"
                    );
                    seen += 1;
                }
            }
        }
    }
    assert!(seen > 0);
}

// ---------------------------------------------------------------- calls (54, 74, 75)

#[tokio::test]
async fn req_054_412_when_data_is_neither_prefetched_nor_fetchable() {
    let app = TestApp::dev();
    let mut r = hook_request("patient-view");
    r.as_object_mut().unwrap().remove("prefetch");
    let (status, _, body) = post_json(&app.url("/cds-services/dvt-patient-view"), &r, None).await;
    assert_eq!(status, 412, "{body}");
    assert_operation_outcome(&body);
    // An unreachable FHIR server is the same.
    r["fhirServer"] = json!("http://127.0.0.1:9/fhir");
    let (status, _, body) = post_json(&app.url("/cds-services/dvt-patient-view"), &r, None).await;
    assert_eq!(status, 412, "{body}");
}

#[tokio::test]
async fn req_074_success_is_200_with_a_cards_array() {
    let app = TestApp::dev();
    let (status, _, body) = post_json(
        &app.url("/cds-services/dvt-patient-view"),
        &hook_request("patient-view"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(body["cards"].is_array(), "{body}");
    for (name, body) in example_responses() {
        assert!(body["cards"].is_array(), "{name}: {body}");
    }
}

#[test]
fn req_075_system_actions_when_present_are_an_array_of_actions() {
    for (name, body) in example_responses() {
        if let Some(sa) = body.get("systemActions") {
            let sa = sa.as_array().unwrap_or_else(|| panic!("{name}: {sa}"));
            for a in sa {
                assert!(
                    a["type"].is_string() && a["description"].is_string(),
                    "{name}: {a}"
                );
            }
        }
    }
    example_cards();
}

// ---------------------------------------------------------------- cards (80–147)

#[test]
fn req_080_card_uuid_is_a_unique_string() {
    let mut seen = std::collections::HashSet::new();
    for (name, c) in example_cards() {
        let uuid = c["uuid"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: card without uuid: {c}"));
        assert!(uuid::Uuid::parse_str(uuid).is_ok(), "{name}: {uuid}");
        assert!(
            seen.insert(uuid.to_string()),
            "{name}: uuid {uuid} repeated"
        );
    }
}

#[test]
fn req_083_summary_under_140_chars() {
    for (name, c) in example_cards() {
        let s = c["summary"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: {c}"));
        assert!(
            !s.is_empty() && s.chars().count() < 140,
            "{name}: {} chars: {s}",
            s.chars().count()
        );
    }
}

#[test]
fn req_085_detail_is_markdown_text() {
    for (name, c) in example_cards() {
        if let Some(d) = c.get("detail") {
            let d = d
                .as_str()
                .unwrap_or_else(|| panic!("{name}: detail not a string"));
            assert!(!d.is_empty(), "{name}");
            assert_eq!(
                d.matches("```").count() % 2,
                0,
                "{name}: unbalanced code fence"
            );
            assert!(!d.to_ascii_lowercase().contains("<script"), "{name}");
        }
    }
}

fn check_indicator(name: &str, c: &Value) {
    let i = c["indicator"]
        .as_str()
        .unwrap_or_else(|| panic!("{name}: no indicator: {c}"));
    assert!(["info", "warning", "critical"].contains(&i), "{name}: {i}");
}

#[test]
fn req_087_indicator_is_a_required_string() {
    for (name, c) in example_cards() {
        assert!(c["indicator"].is_string(), "{name}: {c}");
    }
}

#[test]
fn req_088_indicator_is_info_warning_or_critical() {
    for (name, c) in example_cards() {
        check_indicator(name, c);
    }
}

#[test]
fn req_089_indicator_usable_for_sorting() {
    // Usable for sort order means one of the ordered values, on every card.
    for (name, c) in example_cards() {
        check_indicator(name, c);
    }
}

#[test]
fn req_090_source_is_a_required_object() {
    for (name, c) in example_cards() {
        assert!(c["source"].is_object(), "{name}: {c}");
    }
}

#[test]
fn req_092_suggestions_are_an_array() {
    for (name, c) in example_cards() {
        if let Some(s) = c.get("suggestions") {
            assert!(
                s.as_array().is_some_and(|a| a.iter().all(Value::is_object)),
                "{name}: {s}"
            );
        }
    }
}

#[test]
fn req_093_selection_behavior_given_with_suggestions() {
    for (name, c) in example_cards() {
        if c.get("suggestions").is_some() {
            assert!(c["selectionBehavior"].is_string(), "{name}: {c}");
        }
    }
}

#[test]
fn req_095_selection_behavior_is_at_most_one_or_any() {
    for (name, c) in example_cards() {
        if let Some(sb) = c.get("selectionBehavior") {
            assert!(sb == "at-most-one" || sb == "any", "{name}: {sb}");
        }
    }
}

#[test]
fn req_096_selection_behavior_is_a_string_present_with_suggestions() {
    for (name, c) in example_cards() {
        match (c.get("suggestions"), c.get("selectionBehavior")) {
            (Some(_), Some(sb)) => assert!(sb.is_string(), "{name}"),
            (Some(_), None) => panic!("{name}: suggestions without selectionBehavior"),
            (None, Some(sb)) => assert!(sb.is_string(), "{name}"),
            (None, None) => {}
        }
    }
}

#[test]
fn req_098_override_reasons_are_an_array_of_codings() {
    for (name, c) in example_cards() {
        if let Some(o) = c.get("overrideReasons") {
            let o = o.as_array().unwrap_or_else(|| panic!("{name}: {o}"));
            for r in o {
                assert!(
                    r["code"].is_string() && r["system"].is_string(),
                    "{name}: {r}"
                );
            }
        }
    }
}

fn check_override_displays(name: &str, c: &Value) {
    for r in override_reasons(c) {
        assert!(
            r["display"].as_str().is_some_and(|d| !d.is_empty()),
            "{name}: {r}"
        );
    }
}

#[test]
fn req_100_override_reasons_have_a_display() {
    for (name, c) in example_cards() {
        check_override_displays(name, c);
    }
}

#[test]
fn req_103_links_are_an_array_of_links() {
    for (name, c) in example_cards() {
        if let Some(l) = c.get("links") {
            assert!(
                l.as_array().is_some_and(|a| a.iter().all(Value::is_object)),
                "{name}: {l}"
            );
        }
    }
}

#[test]
fn req_105_source_label_is_a_required_string() {
    for (name, c) in example_cards() {
        assert!(
            c["source"]["label"].as_str().is_some_and(|l| !l.is_empty()),
            "{name}: {c}"
        );
    }
}

#[test]
fn req_107_source_url_is_absolute() {
    for (name, c) in example_cards() {
        if let Some(u) = c["source"].get("url") {
            assert!(is_absolute_url(u), "{name}: {u}");
        }
    }
}

#[test]
fn req_111_source_icon_is_absolute() {
    for (name, c) in example_cards() {
        if let Some(u) = c["source"].get("icon") {
            assert!(is_absolute_url(u), "{name}: {u}");
        }
    }
}

#[test]
fn req_115_source_topic_is_a_coding() {
    for (name, c) in example_cards() {
        if let Some(t) = c["source"].get("topic") {
            assert!(
                t["code"].is_string() && t["system"].is_string(),
                "{name}: {t}"
            );
        }
    }
}

#[test]
fn req_117_suggestion_label_is_a_required_string() {
    for (name, c) in example_cards() {
        for s in suggestions(c) {
            assert!(
                s["label"].as_str().is_some_and(|l| !l.is_empty()),
                "{name}: {s}"
            );
        }
    }
}

#[test]
fn req_119_suggestion_uuid_is_a_string() {
    for (name, c) in example_cards() {
        for s in suggestions(c) {
            if let Some(u) = s.get("uuid") {
                assert!(u.is_string(), "{name}: {s}");
            }
        }
    }
}

#[test]
fn req_121_is_recommended_is_a_boolean() {
    for (name, c) in example_cards() {
        for s in suggestions(c) {
            if let Some(r) = s.get("isRecommended") {
                assert!(r.is_boolean(), "{name}: {s}");
            }
        }
    }
}

#[test]
fn req_124_suggestion_actions_are_an_array() {
    for (name, c) in example_cards() {
        for s in suggestions(c) {
            if let Some(a) = s.get("actions") {
                assert!(
                    a.as_array().is_some_and(|a| a.iter().all(Value::is_object)),
                    "{name}: {s}"
                );
            }
        }
    }
}

#[test]
fn req_127_action_type_is_create_update_or_delete() {
    for (name, c) in example_cards() {
        for a in actions(c) {
            let t = a["type"].as_str().unwrap_or_else(|| panic!("{name}: {a}"));
            assert!(["create", "update", "delete"].contains(&t), "{name}: {t}");
        }
    }
}

#[test]
fn req_128_action_description_is_a_required_string() {
    for (name, c) in example_cards() {
        for a in actions(c) {
            assert!(
                a["description"].as_str().is_some_and(|d| !d.is_empty()),
                "{name}: {a}"
            );
        }
    }
}

#[test]
fn req_130_action_resource_is_a_fhir_resource() {
    for (name, c) in example_cards() {
        for a in actions(c) {
            if let Some(r) = a.get("resource") {
                assert!(r["resourceType"].is_string(), "{name}: {a}");
            }
        }
    }
}

#[test]
fn req_131_create_carries_a_new_resource() {
    for (name, c) in example_cards() {
        for a in actions(c).filter(|a| a["type"] == "create") {
            let r = &a["resource"];
            assert!(
                r["resourceType"].is_string(),
                "{name}: create without a resource: {a}"
            );
        }
    }
}

#[test]
fn req_132_update_carries_the_whole_resource() {
    for (name, c) in example_cards() {
        for a in actions(c).filter(|a| a["type"] == "update") {
            let r = &a["resource"];
            assert!(
                r["resourceType"].is_string() && r["id"].is_string(),
                "{name}: {a}"
            );
        }
    }
}

#[test]
fn req_133_delete_does_not_use_resource_for_an_id() {
    for (name, c) in example_cards() {
        for a in actions(c).filter(|a| a["type"] == "delete") {
            assert!(
                !a.get("resource").is_some_and(Value::is_string),
                "{name}: {a}"
            );
        }
    }
}

#[test]
fn req_134_delete_gives_resource_id() {
    for (name, c) in example_cards() {
        for a in actions(c).filter(|a| a["type"] == "delete") {
            assert!(a.get("resourceId").is_some(), "{name}: {a}");
        }
    }
}

#[test]
fn req_135_resource_id_is_a_string() {
    for (name, c) in example_cards() {
        for a in actions(c) {
            if let Some(id) = a.get("resourceId") {
                let ok = id.is_string()
                    || id
                        .as_array()
                        .is_some_and(|v| v.iter().all(Value::is_string));
                assert!(ok, "{name}: {a}");
            }
        }
    }
}

#[test]
fn req_136_override_reasons_have_human_readable_display() {
    for (name, c) in example_cards() {
        check_override_displays(name, c);
    }
}

#[test]
fn req_138_link_label_is_a_required_string() {
    for (name, c) in example_cards() {
        for l in links(c) {
            assert!(
                l["label"].as_str().is_some_and(|s| !s.is_empty()),
                "{name}: {l}"
            );
        }
    }
}

#[test]
fn req_139_link_url_is_a_required_url() {
    for (name, c) in example_cards() {
        for l in links(c) {
            assert!(is_absolute_url(&l["url"]), "{name}: {l}");
        }
    }
}

#[test]
fn req_141_link_type_is_a_required_string() {
    for (name, c) in example_cards() {
        for l in links(c) {
            assert!(l["type"].is_string(), "{name}: {l}");
        }
    }
}

#[test]
fn req_142_link_type_is_absolute_or_smart() {
    for (name, c) in example_cards() {
        for l in links(c) {
            assert!(
                l["type"] == "absolute" || l["type"] == "smart",
                "{name}: {l}"
            );
        }
    }
}

#[test]
fn req_144_link_app_context_is_a_string() {
    for (name, c) in example_cards() {
        for l in links(c) {
            if let Some(a) = l.get("appContext") {
                assert!(a.is_string(), "{name}: {l}");
            }
        }
    }
}

#[test]
fn req_147_absolute_links_have_no_app_context() {
    for (name, c) in example_cards() {
        for l in links(c).filter(|l| l["type"] == "absolute") {
            assert!(l.get("appContext").is_none(), "{name}: {l}");
        }
    }
}

// ---------------------------------------------------------------- security (176–208)

fn auth_app() -> (TestApp, jwt::KeyPair) {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let key = jwt::es384("conformance-key");
    let config = jwt::write_auth_config(dir.path(), &[&key], &[]);
    let app = TestApp::spawn_in(
        dir,
        &[
            "--auth-config",
            config.to_str().unwrap(),
            "--public-url",
            jwt::PUBLIC_URL,
        ],
    );
    (app, key)
}

#[tokio::test]
async fn req_176_clients_are_authenticated_with_a_signed_jwt() {
    let (app, key) = auth_app();
    assert_eq!(get(&app.url("/cds-services"), None).await.0, 401);
    let token = jwt::sign(&key, &jwt::claims("/cds-services"), None);
    assert_eq!(get(&app.url("/cds-services"), Some(&token)).await.0, 200);
    let token = jwt::sign(&key, &jwt::claims("/cds-services/dvt-patient-view"), None);
    let (status, _, _) = post_json(
        &app.url("/cds-services/dvt-patient-view"),
        &hook_request("patient-view"),
        Some(&token),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn req_199_without_jku_the_out_of_band_jwks_is_used() {
    let (app, key) = auth_app();
    let token = jwt::sign(&key, &jwt::claims("/cds-services"), None);
    assert_eq!(get(&app.url("/cds-services"), Some(&token)).await.0, 200);
}

#[tokio::test]
async fn req_201_alg_none_is_rejected() {
    let (app, key) = auth_app();
    let token = jwt::unsigned(&key.kid, &jwt::claims("/cds-services"));
    let (status, _, body) = get(&app.url("/cds-services"), Some(&token)).await;
    assert_eq!(status, 401);
    assert_operation_outcome(&body);
}

#[tokio::test]
async fn req_203_symmetric_algorithms_are_rejected() {
    let (app, key) = auth_app();
    let token = jwt::hmac_with_public_key(&key, &jwt::claims("/cds-services"));
    let (status, _, body) = get(&app.url("/cds-services"), Some(&token)).await;
    assert_eq!(status, 401);
    assert_operation_outcome(&body);
}

#[tokio::test]
async fn req_208_cors_is_supported() {
    let app = TestApp::dev();
    let req = client()
        .request(
            reqwest::Method::OPTIONS,
            app.url("/cds-services/dvt-patient-view"),
        )
        .header("origin", "https://sandbox.cds-hooks.org")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        );
    let (status, h, _) = send(req).await;
    assert!(status < 300);
    assert!(h.contains_key("access-control-allow-origin"));
    let req = client()
        .get(app.url("/cds-services"))
        .header("origin", "https://sandbox.cds-hooks.org");
    let (_, h, _) = send(req).await;
    assert!(
        h.contains_key("access-control-allow-origin"),
        "simple requests carry CORS headers too"
    );
}

// ---------------------------------------------------------------- extensions, codings (214–220)

fn extensions_are_objects(v: &Value, name: &str) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                if k == "extension" {
                    assert!(
                        child.is_object(),
                        "{name}: extension is not an object: {child}"
                    );
                }
                extensions_are_objects(child, name);
            }
        }
        Value::Array(a) => a.iter().for_each(|c| extensions_are_objects(c, name)),
        _ => {}
    }
}

#[tokio::test]
async fn req_214_extensions_are_json_objects() {
    let app = TestApp::dev();
    let (_, _, d) = get(&app.url("/cds-services"), None).await;
    extensions_are_objects(&d, "discovery");
    for (name, c) in example_cards() {
        // A FHIR resource inside an action has FHIR extensions (arrays): skip resources.
        let mut c = c.clone();
        for s in c["suggestions"].as_array_mut().into_iter().flatten() {
            for a in s["actions"].as_array_mut().into_iter().flatten() {
                a.as_object_mut().unwrap().remove("resource");
            }
        }
        extensions_are_objects(&c, name);
    }
}

#[test]
fn req_216_coding_code_is_a_required_string() {
    for (name, c) in example_cards() {
        for coding in codings(c) {
            assert!(
                coding["code"].as_str().is_some_and(|s| !s.is_empty()),
                "{name}: {coding}"
            );
        }
    }
}

#[test]
fn req_217_coding_system_is_a_required_string() {
    for (name, c) in example_cards() {
        for coding in codings(c) {
            assert!(
                coding["system"].as_str().is_some_and(|s| !s.is_empty()),
                "{name}: {coding}"
            );
        }
    }
}

#[test]
fn req_218_coding_code_is_a_string() {
    for (name, c) in example_cards() {
        for coding in codings(c) {
            assert!(coding["code"].is_string(), "{name}: {coding}");
        }
    }
}

#[test]
fn req_219_override_reason_codings_have_display() {
    for (name, c) in example_cards() {
        check_override_displays(name, c);
    }
}

#[test]
fn req_220_topic_display_when_given_is_a_string() {
    for (name, c) in example_cards() {
        if let Some(d) = c["source"]["topic"].get("display") {
            assert!(d.is_string(), "{name}: {d}");
        }
    }
}
