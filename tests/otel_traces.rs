//! OpenTelemetry traces, black-box: the real binary sends its spans to an OTLP/HTTP
//! receiver run by the test (POST /v1/traces, protobuf bodies decoded with
//! `opentelemetry-proto`), and its FHIR queries go to a fake FHIR server that records
//! their headers.
//!
//! A hook call with the EHR's `traceparent` gives one trace: the call's server span (the
//! EHR's span its parent), the FHIR query and its GET (whose context the FHIR server
//! receives as `traceparent`), and the assessment; no attribute anywhere holds the
//! patient id, the access token or the patient's name. Without an endpoint (or with the
//! standard kill switch) nothing is exported and no `traceparent` leaves the service.

mod common;
mod fhir_support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use common::*;
use fhir_support::{Behaviour, Fake};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message;
use serde_json::{Value, json};

const PATIENT: &str = "PATIENT-SENTINEL-4711";
const TOKEN: &str = "TOKEN-SENTINEL-0815";
const NAME: &str = "NAME-SENTINEL";
/// The EHR's trace and span (W3C trace-context's example ids).
const EHR_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const EHR_SPAN: &str = "00f067aa0ba902b7";

/// What the receiver got: each export's resource attributes and spans.
#[derive(Default)]
struct Received {
    exports: Vec<ExportTraceServiceRequest>,
    /// Requests that were not protobuf OTLP (wrong path, content type or body).
    rejected: Vec<String>,
}

/// An OTLP/HTTP trace receiver on 127.0.0.1.
struct Collector {
    base: String,
    received: Arc<Mutex<Received>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(
    State(received): State<Arc<Mutex<Received>>>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if content_type != "application/x-protobuf" {
        received.lock().unwrap().rejected.push(content_type);
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, Vec::new()).into_response();
    }
    match ExportTraceServiceRequest::decode(body) {
        Ok(export) => {
            received.lock().unwrap().exports.push(export);
            (
                [(header::CONTENT_TYPE, "application/x-protobuf")],
                ExportTraceServiceResponse::default().encode_to_vec(),
            )
                .into_response()
        }
        Err(e) => {
            received.lock().unwrap().rejected.push(e.to_string());
            (StatusCode::BAD_REQUEST, Vec::new()).into_response()
        }
    }
}

impl Collector {
    async fn start() -> Collector {
        let received = Arc::new(Mutex::new(Received::default()));
        let app = axum::Router::new()
            .route("/v1/traces", axum::routing::post(receive))
            .fallback(|uri: axum::http::Uri| async move {
                (StatusCode::NOT_FOUND, format!("no route {uri}"))
            })
            .with_state(received.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Collector {
            base,
            received,
            task,
        }
    }

    fn spans(&self) -> Vec<Span> {
        let r = self.received.lock().unwrap();
        r.exports
            .iter()
            .flat_map(|e| &e.resource_spans)
            .flat_map(|rs| &rs.scope_spans)
            .flat_map(|ss| ss.spans.clone())
            .collect()
    }

    /// Wait until `ready` holds for what was received (at most 10 s).
    async fn wait_for(&self, ready: impl Fn(&[Span]) -> bool) -> Vec<Span> {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let spans = self.spans();
            if ready(&spans) || Instant::now() > until {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn text(v: &AnyValue) -> String {
    match &v.value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::ArrayValue(a)) => {
            a.values.iter().map(text).collect::<Vec<_>>().join(",")
        }
        Some(any_value::Value::KvlistValue(l)) => l
            .values
            .iter()
            .map(|kv| {
                format!(
                    "{}={}",
                    kv.key,
                    kv.value.as_ref().map(text).unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join(","),
        Some(any_value::Value::BytesValue(b)) => String::from_utf8_lossy(b).into_owned(),
        // A reference into a string table (profiles only): nothing a span sends.
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn attr(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .map(text)
}

/// Every string a span exports: its name, attributes, events and their attributes,
/// status message, links' attributes.
fn everything_in(span: &Span) -> Vec<String> {
    let kv = |list: &[KeyValue]| {
        list.iter()
            .map(|kv| {
                format!(
                    "{}={}",
                    kv.key,
                    kv.value.as_ref().map(text).unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
    };
    let mut all = vec![span.name.clone()];
    all.extend(kv(&span.attributes));
    for e in &span.events {
        all.push(e.name.clone());
        all.extend(kv(&e.attributes));
    }
    for l in &span.links {
        all.extend(kv(&l.attributes));
    }
    if let Some(s) = &span.status {
        all.push(s.message.clone());
    }
    all
}

/// A searchset Bundle with the patient's calf pain (two days old): the one live query
/// of the call answers it, so the assessment shows a card.
fn calf_pain_searchset() -> String {
    let onset = (chrono::Utc::now() - chrono::Duration::days(2))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut entry = calf_pain_entry("calf-pain-1", &format!("Patient/{PATIENT}"));
    entry["resource"]["onsetDateTime"] = json!(onset);
    entry["resource"]["recordedDate"] = json!(onset);
    json!({"resourceType": "Bundle", "type": "searchset", "total": 1, "entry": [entry]}).to_string()
}

/// A patient-view call for [`PATIENT`] whose prefetch lacks `conditions`, so the service
/// queries `fhir` for it (with [`TOKEN`]); the Patient carries [`NAME`].
fn call_needing_one_query(fhir: &url::Url) -> Value {
    let mut r = hook_request("patient-view");
    r["prefetch"]
        .as_object_mut()
        .unwrap()
        .remove("conditions")
        .expect("a conditions key");
    let mut r: Value =
        serde_json::from_str(&r.to_string().replace("example-patient", PATIENT)).unwrap();
    r["prefetch"]["patient"]["name"] = json!([{"family": NAME}]);
    r["fhirServer"] = json!(fhir.as_str());
    r["fhirAuthorization"] = json!({"access_token": TOKEN, "token_type": "Bearer",
        "expires_in": 300, "scope": "user/*.read", "subject": "dvt-cds"});
    r
}

/// POST the call with the EHR's `traceparent`.
async fn call_with_traceparent(app: &TestApp, body: &Value) -> (u16, Value) {
    let (status, _, answer) = send(
        client()
            .post(app.url("/cds-services/dvt-patient-view"))
            .header("traceparent", format!("00-{EHR_TRACE}-{EHR_SPAN}-01"))
            .json(body),
    )
    .await;
    (status, answer)
}

/// The `traceparent` header of each request the fake FHIR server received.
fn traceparents(fhir: &Fake) -> Vec<Option<String>> {
    fhir.requests
        .lock()
        .unwrap()
        .iter()
        .map(|head| {
            head.lines().find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("traceparent")
                    .then(|| value.trim().to_string())
            })
        })
        .collect()
}

fn find<'a>(spans: &'a [Span], name: &str) -> &'a Span {
    spans.iter().find(|s| s.name == name).unwrap_or_else(|| {
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
        panic!("no span {name:?} among {names:?}")
    })
}

/// The whole path: the EHR's span is the parent, the FHIR server gets the GET span's
/// context, every span of the call is in the EHR's trace, the outcome is on the server
/// span, the spans are flushed on SIGTERM (the batch delay is set far past the test),
/// and no exported string holds the patient id, the token or the name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_call_is_one_trace_under_the_ehrs_span_without_phi() {
    let collector = Collector::start().await;
    let fhir = Fake::start(Behaviour::Answer(
        200,
        "application/fhir+json",
        calf_pain_searchset(),
    ))
    .await;
    let mut app = TestApp::spawn_env(
        &["--dev", "--otlp-endpoint", &collector.base],
        // Only the shutdown flush can send them: what this test checks.
        &[("OTEL_BSP_SCHEDULE_DELAY", "600000")],
    );
    assert!(
        app.wait_for_log("traces: OpenTelemetry spans are sent")
            .contains(&format!("{}/v1/traces", collector.base)),
        "{}",
        app.logs()
    );

    let (status, answer) = call_with_traceparent(&app, &call_needing_one_query(&fhir.base())).await;
    assert_eq!(status, 200, "{answer}");
    let cards = answer["cards"].as_array().expect("cards");
    assert_eq!(cards.len(), 1, "{answer}");

    // The FHIR server got the call's trace, as a child of a span of ours.
    let sent = traceparents(&fhir);
    assert_eq!(sent.len(), 1, "one live query: {sent:?}");
    let sent = sent[0].clone().expect("a traceparent on the FHIR request");
    let parts: Vec<&str> = sent.split('-').collect();
    assert_eq!(parts.len(), 4, "{sent}");
    assert_eq!(
        (parts[0], parts[1], parts[3]),
        ("00", EHR_TRACE, "01"),
        "{sent}"
    );
    assert_ne!(
        parts[2], EHR_SPAN,
        "the FHIR request's parent is our span: {sent}"
    );

    // Nothing exported before the shutdown flush.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(collector.spans().is_empty(), "exported before the flush");
    let exit = app.terminate();
    assert!(exit.success(), "{exit:?}\n{}", app.logs());
    let spans = collector
        .wait_for(|s| s.iter().any(|s| s.name == "POST /cds-services/{id}"))
        .await;
    assert!(
        collector.received.lock().unwrap().rejected.is_empty(),
        "not OTLP protobuf: {:?}",
        collector.received.lock().unwrap().rejected
    );

    let server = find(&spans, "POST /cds-services/{id}");
    assert_eq!(hex(&server.trace_id), EHR_TRACE);
    assert_eq!(
        hex(&server.parent_span_id),
        EHR_SPAN,
        "the EHR's span is the parent"
    );
    assert_eq!(server.kind, SpanKind::Server as i32);
    for (key, value) in [
        ("http.request.method", "POST"),
        ("http.route", "/cds-services/{id}"),
        ("http.response.status_code", "200"),
        ("cds.service", "dvt-patient-view"),
        ("cds.hook", "patient-view"),
        ("cds.cards", "1"),
        ("cds.indicator", cards[0]["indicator"].as_str().unwrap()),
    ] {
        assert_eq!(
            attr(&server.attributes, key).as_deref(),
            Some(value),
            "{key}: {server:?}"
        );
    }
    assert!(
        attr(&server.attributes, "cds.hook_instance").is_some(),
        "{server:?}"
    );

    let assessment = find(&spans, "assessment");
    assert_eq!(assessment.parent_span_id, server.span_id);
    let category = attr(&assessment.attributes, "dvt.category").expect("a category");
    assert_eq!(
        Some(category.as_str()),
        cards[0]["extension"]["dvt-assessment"]["category"].as_str(),
        "{assessment:?}"
    );

    let query = find(&spans, "FHIR search Condition");
    assert_eq!(query.parent_span_id, server.span_id);
    assert_eq!(
        attr(&query.attributes, "fhir.query").as_deref(),
        Some("conditions")
    );
    assert_eq!(attr(&query.attributes, "fhir.pages").as_deref(), Some("1"));
    let get = find(&spans, "GET");
    assert_eq!(get.parent_span_id, query.span_id);
    assert_eq!(get.kind, SpanKind::Client as i32);
    assert_eq!(
        hex(&get.span_id),
        parts[2],
        "the traceparent the FHIR server got"
    );
    assert_eq!(
        attr(&get.attributes, "http.response.status_code").as_deref(),
        Some("200")
    );

    // One trace: every span of the call is in the EHR's.
    for s in &spans {
        assert_eq!(hex(&s.trace_id), EHR_TRACE, "{s:?}");
    }

    // No PHI or secret anywhere: span strings and the resource's attributes.
    let mut exported: Vec<String> = spans.iter().flat_map(everything_in).collect();
    for e in &collector.received.lock().unwrap().exports {
        for rs in &e.resource_spans {
            if let Some(r) = &rs.resource {
                assert_eq!(
                    attr(&r.attributes, "service.name").as_deref(),
                    Some("dvt-cds")
                );
                assert_eq!(
                    attr(&r.attributes, "service.version").as_deref(),
                    Some(env!("CARGO_PKG_VERSION"))
                );
                exported.extend(r.attributes.iter().map(|kv| format!("{kv:?}")));
            }
        }
    }
    assert!(exported.len() > 20, "{exported:?}");
    for secret in [PATIENT, TOKEN, NAME] {
        for s in &exported {
            assert!(!s.contains(secret), "{secret} exported in {s:?}");
        }
    }
}

/// The standard variables win over the flag's variable: DVT_CDS_OTLP_ENDPOINT names a
/// dead port, OTEL_EXPORTER_OTLP_ENDPOINT the receiver, and the receiver gets the
/// spans (sent by the batch timer this time, the process left running). OTEL_SERVICE_NAME
/// names the service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standard_variables_win_over_the_flags_variable() {
    let collector = Collector::start().await;
    let app = TestApp::spawn_env(
        &["--dev"],
        &[
            ("DVT_CDS_OTLP_ENDPOINT", "http://127.0.0.1:9"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.base),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("OTEL_SERVICE_NAME", "dvt-cds-ward-7"),
        ],
    );
    let (status, _, _) = send(
        client()
            .post(app.url("/cds-services/dvt-patient-view"))
            .json(&hook_request("patient-view")),
    )
    .await;
    assert_eq!(status, 200);
    let spans = collector
        .wait_for(|s| s.iter().any(|s| s.name == "assessment"))
        .await;
    find(&spans, "POST /cds-services/{id}");
    let server = find(&spans, "POST /cds-services/{id}");
    // No traceparent came in: the call's span starts its own trace.
    assert!(server.parent_span_id.is_empty(), "{server:?}");
    let names: Vec<String> = collector
        .received
        .lock()
        .unwrap()
        .exports
        .iter()
        .flat_map(|e| &e.resource_spans)
        .filter_map(|rs| rs.resource.as_ref())
        .filter_map(|r| attr(&r.attributes, "service.name"))
        .collect();
    assert!(names.iter().all(|n| n == "dvt-cds-ward-7"), "{names:?}");
    assert!(
        app.logs().contains("OTEL_EXPORTER_OTLP_ENDPOINT"),
        "{}",
        app.logs()
    );
}

/// Off by default: the call works, nothing says traces are on, and the EHR's
/// `traceparent` is not passed on to the FHIR server. With the receiver configured but
/// OTEL_SDK_DISABLED=true, the receiver gets nothing, even after the shutdown flush.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_endpoint_or_with_the_kill_switch_nothing_is_exported() {
    let collector = Collector::start().await;
    for env in [
        vec![("OTEL_BSP_SCHEDULE_DELAY", "10")],
        vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.base.as_str()),
            ("OTEL_SDK_DISABLED", "true"),
            ("OTEL_BSP_SCHEDULE_DELAY", "10"),
        ],
    ] {
        let fhir = Fake::start(Behaviour::Answer(
            200,
            "application/fhir+json",
            calf_pain_searchset(),
        ))
        .await;
        let mut app = TestApp::spawn_env(&["--dev"], &env);
        let (status, answer) =
            call_with_traceparent(&app, &call_needing_one_query(&fhir.base())).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(traceparents(&fhir), vec![None], "{env:?}");
        assert!(app.terminate().success());
        assert!(!app.logs().contains("traces:"), "{}", app.logs());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = collector.received.lock().unwrap();
    assert!(
        r.exports.is_empty() && r.rejected.is_empty(),
        "something was sent"
    );
}

/// A malformed endpoint, or a protocol this service does not speak, stops `serve` with a
/// message naming the setting (exit 2), before it listens.
#[test]
fn a_bad_traces_setting_stops_serve() {
    let out = command()
        .args([
            "serve",
            "--dev",
            "--listen",
            "127.0.0.1:0",
            "--otlp-endpoint",
            "collector:4318",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--otlp-endpoint collector:4318"), "{err}");
    let out = command()
        .args(["serve", "--dev", "--listen", "127.0.0.1:0"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("OTEL_EXPORTER_OTLP_PROTOCOL=grpc"), "{err}");
    assert!(
        out.stdout.is_empty(),
        "it listened: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}
