//! Black-box tests of the service in dev mode: discovery, hook calls and every class of
//! bad input (status + OperationOutcome), CORS, request ids, operations endpoints, logs,
//! shutdown, and the command line.

mod common;

use common::*;
use serde_json::{Value, json};

const HOOKS: [&str; 4] = [
    "patient-view",
    "encounter-start",
    "order-select",
    "order-sign",
];

/// Discovery names the mapping set that answers (`dvt-model.md` §6; README "Endpoints"):
/// the shipped one by default, a site's own with `--mappings DIR`; and the release.
#[tokio::test]
async fn discovery_names_the_mapping_set() {
    let app = TestApp::dev();
    let (_, _, body) = get(&app.url("/cds-services"), None).await;
    for s in body["services"].as_array().expect("services") {
        assert_eq!(
            s["extension"]["dvt-cds-mappings"],
            json!({"name": "dvt-cds-default", "version": "2.0.0"}),
            "{s}"
        );
        assert_eq!(
            s["extension"]["dvt-cds-service"],
            json!({"name": "dvt-cds", "version": env!("CARGO_PKG_VERSION")}),
            "{s}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let from = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings");
    std::fs::create_dir_all(dir.path().join("valuesets")).unwrap();
    for e in std::fs::read_dir(from.join("valuesets")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(
            &p,
            dir.path().join("valuesets").join(p.file_name().unwrap()),
        )
        .unwrap();
    }
    let model = std::fs::read_to_string(from.join("model.toml"))
        .unwrap()
        .replace("id = \"dvt-cds-default\"", "id = \"stmary-dvt\"")
        .replace("version = \"2.0.0\"", "version = \"2026.3\"");
    std::fs::write(dir.path().join("model.toml"), model).unwrap();
    let site = TestApp::spawn(&["--dev", "--mappings", dir.path().to_str().unwrap()]);
    let (_, _, body) = get(&site.url("/cds-services"), None).await;
    for s in body["services"].as_array().expect("services") {
        assert_eq!(
            s["extension"]["dvt-cds-mappings"],
            json!({"name": "stmary-dvt", "version": "2026.3"}),
            "{s}"
        );
    }
}

/// `dvt-cds --version` (and `-V`) names the release and the embedded mapping set, the
/// same two versions discovery gives.
#[test]
fn version_names_the_release_and_the_mapping_set() {
    for flag in ["--version", "-V"] {
        let out = run(&[flag]);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!(
                "dvt-cds {} (mappings dvt-cds-default 2.0.0)\n",
                env!("CARGO_PKG_VERSION")
            )
        );
    }
}

#[tokio::test]
async fn discovery_lists_the_four_services_with_prefetch() {
    let app = TestApp::dev();
    let (status, headers, body) = get(&app.url("/cds-services"), None).await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let services = body["services"].as_array().expect("services array");
    let mut pairs: Vec<(String, String)> = services
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_string(),
                s["hook"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    pairs.sort();
    assert_eq!(
        pairs,
        [
            (
                "dvt-encounter-start".to_string(),
                "encounter-start".to_string()
            ),
            ("dvt-order-select".to_string(), "order-select".to_string()),
            ("dvt-order-sign".to_string(), "order-sign".to_string()),
            ("dvt-patient-view".to_string(), "patient-view".to_string()),
        ]
    );
    for s in services {
        assert!(s["title"].as_str().is_some_and(|t| !t.is_empty()), "{s}");
        assert!(
            s["description"].as_str().is_some_and(|t| !t.is_empty()),
            "{s}"
        );
        assert_eq!(
            s["prefetch"]["patient"], "Patient/{{context.patientId}}",
            "{s}"
        );
        // The Medications a medicationReference names come with the search (§1).
        assert_eq!(
            s["prefetch"]["medicationRequests"],
            "MedicationRequest?patient={{context.patientId}}&_count=200&_include=MedicationRequest:medication",
            "{s}"
        );
        assert_eq!(
            s["prefetch"]["medicationStatements"],
            "MedicationStatement?patient={{context.patientId}}&_count=200&_include=MedicationStatement:medication",
            "{s}"
        );
    }
    let es = services
        .iter()
        .find(|s| s["hook"] == "encounter-start")
        .unwrap();
    assert_eq!(
        es["prefetch"]["encounter"],
        "Encounter/{{context.encounterId}}"
    );
}

#[tokio::test]
async fn every_hook_with_full_prefetch_answers_200_with_cards() {
    let app = TestApp::dev();
    for hook in HOOKS {
        let (status, _, body) = post_json(
            &app.url(&format!("/cds-services/{}", service_of(hook))),
            &hook_request(hook),
            None,
        )
        .await;
        assert_eq!(status, 200, "{hook}: {body}");
        assert!(body["cards"].is_array(), "{hook}: {body}");
        assert!(
            dvt_cds::cds_hooks::violations(&body).is_empty(),
            "{hook}: {body}"
        );
    }
}

#[tokio::test]
async fn draft_orders_without_bundle_type_are_accepted() {
    let app = TestApp::dev();
    let mut req = hook_request("order-sign");
    req["context"]["draftOrders"] = json!({"entry": [{"resource": {"resourceType": "ServiceRequest",
        "status": "draft", "intent": "order", "code": {"text": "D-dimer"}}}]});
    let (status, _, body) = post_json(&app.url("/cds-services/dvt-order-sign"), &req, None).await;
    assert_eq!(status, 200, "{body}");
}

/// Each bad request: (what, service, body, expected field path in the OperationOutcome).
fn invalid_requests() -> Vec<(&'static str, &'static str, Value, &'static str)> {
    let mut v = Vec::new();
    let mut r = hook_request("patient-view");
    r["hook"] = json!("order-sign");
    v.push((
        "hook does not match the service",
        "dvt-patient-view",
        r,
        "hook",
    ));
    let mut r = hook_request("patient-view");
    r.as_object_mut().unwrap().remove("hook");
    v.push(("hook missing", "dvt-patient-view", r, "hook"));
    let mut r = hook_request("patient-view");
    r.as_object_mut().unwrap().remove("hookInstance");
    v.push((
        "hookInstance missing",
        "dvt-patient-view",
        r,
        "hookInstance",
    ));
    let mut r = hook_request("patient-view");
    r["context"].as_object_mut().unwrap().remove("patientId");
    v.push((
        "patientId missing",
        "dvt-patient-view",
        r,
        "context.patientId",
    ));
    let mut r = hook_request("patient-view");
    r["context"].as_object_mut().unwrap().remove("userId");
    v.push(("userId missing", "dvt-patient-view", r, "context.userId"));
    let mut r = hook_request("patient-view");
    r.as_object_mut().unwrap().remove("context");
    v.push(("context missing", "dvt-patient-view", r, "context"));
    let mut r = hook_request("encounter-start");
    r["context"].as_object_mut().unwrap().remove("encounterId");
    v.push((
        "encounterId missing (encounter-start)",
        "dvt-encounter-start",
        r,
        "context.encounterId",
    ));
    let mut r = hook_request("order-sign");
    r["context"].as_object_mut().unwrap().remove("draftOrders");
    v.push((
        "draftOrders missing (order-sign)",
        "dvt-order-sign",
        r,
        "context.draftOrders",
    ));
    let mut r = hook_request("order-select");
    r["context"].as_object_mut().unwrap().remove("draftOrders");
    v.push((
        "draftOrders missing (order-select)",
        "dvt-order-select",
        r,
        "context.draftOrders",
    ));
    let mut r = hook_request("patient-view");
    r["fhirAuthorization"] = json!({"access_token": "t", "token_type": "Bearer", "expires_in": 300,
        "scope": "user/*.read", "subject": "dvt-cds"});
    v.push((
        "fhirAuthorization without fhirServer",
        "dvt-patient-view",
        r,
        "fhirServer",
    ));
    let mut r = hook_request("patient-view");
    r["fhirServer"] = json!("not a url");
    v.push(("fhirServer not a URL", "dvt-patient-view", r, "fhirServer"));
    let mut r = hook_request("patient-view");
    r["prefetch"] = json!([1, 2]);
    v.push(("prefetch not an object", "dvt-patient-view", r, "prefetch"));
    v.push(("body not an object", "dvt-patient-view", json!([1]), ""));
    v
}

#[tokio::test]
async fn each_invalid_request_is_400_with_an_operation_outcome_naming_the_field() {
    let app = TestApp::dev();
    for (what, service, body, path) in invalid_requests() {
        let (status, _, resp) =
            post_json(&app.url(&format!("/cds-services/{service}")), &body, None).await;
        assert_eq!(status, 400, "{what}: {resp}");
        let text = assert_operation_outcome(&resp);
        if !path.is_empty() {
            assert!(
                resp["issue"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|i| i["expression"] == json!([path])),
                "{what}: no issue with expression [{path}]: {text}"
            );
        }
    }
}

#[tokio::test]
async fn wrong_hook_message_says_the_expected_value() {
    let app = TestApp::dev();
    let mut r = hook_request("patient-view");
    r["hook"] = json!("order-sign");
    let (_, _, resp) = post_json(&app.url("/cds-services/dvt-patient-view"), &r, None).await;
    let text = assert_operation_outcome(&resp);
    assert!(text.contains("patient-view"), "{text}");
}

#[tokio::test]
async fn malformed_json_is_400() {
    let app = TestApp::dev();
    let req = client()
        .post(app.url("/cds-services/dvt-patient-view"))
        .header("content-type", "application/json")
        .body("{\"hook\": ");
    let (status, _, body) = send(req).await;
    assert_eq!(status, 400);
    assert!(assert_operation_outcome(&body).contains("not valid JSON"));
}

#[tokio::test]
async fn unknown_service_and_unknown_path_are_404() {
    let app = TestApp::dev();
    let (status, _, body) = post_json(
        &app.url("/cds-services/no-such-service"),
        &hook_request("patient-view"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    assert!(assert_operation_outcome(&body).contains("no-such-service"));
    let (status, _, body) = post_json(
        &app.url("/cds-services/no-such-service/feedback"),
        &json!({"feedback": []}),
        None,
    )
    .await;
    assert_eq!(status, 404);
    assert_operation_outcome(&body);
    let (status, _, body) = get(&app.url("/nothing/here"), None).await;
    assert_eq!(status, 404);
    assert_operation_outcome(&body);
}

#[tokio::test]
async fn wrong_method_is_405_with_allow() {
    let app = TestApp::dev();
    let (status, headers, body) = get(&app.url("/cds-services/dvt-patient-view"), None).await;
    assert_eq!(status, 405);
    assert_eq!(headers["allow"], "POST");
    assert_operation_outcome(&body);
    let (status, headers, body) = post_json(&app.url("/cds-services"), &json!({}), None).await;
    assert_eq!(status, 405);
    assert_eq!(headers["allow"], "GET");
    assert_operation_outcome(&body);
}

#[tokio::test]
async fn body_over_max_body_is_413() {
    let app = TestApp::spawn(&["--dev", "--max-body", "2KiB"]);
    let mut r = hook_request("patient-view");
    r["prefetch"]["padding"] = json!("x".repeat(4096));
    let (status, _, body) = post_json(&app.url("/cds-services/dvt-patient-view"), &r, None).await;
    assert_eq!(status, 413);
    assert!(assert_operation_outcome(&body).contains("2048"));
    // Chunked (no Content-Length): the limit still holds.
    let payload = format!("{{\"a\": \"{}\"}}", "y".repeat(4096));
    let raw = format!(
        "POST /cds-services/dvt-patient-view HTTP/1.1\r\nHost: localhost\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
         {:x}\r\n{payload}\r\n0\r\n\r\n",
        payload.len()
    );
    let port = app.port();
    let head = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let _ = s.write_all(raw.as_bytes());
        let mut buf = vec![0u8; 512];
        let n = s.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    })
    .await
    .unwrap();
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
}

#[tokio::test]
async fn non_json_body_is_415() {
    let app = TestApp::dev();
    for ct in [Some("text/plain"), None] {
        let mut req = client()
            .post(app.url("/cds-services/dvt-patient-view"))
            .body(hook_request("patient-view").to_string());
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        let (status, _, body) = send(req).await;
        assert_eq!(status, 415, "{ct:?}");
        assert_operation_outcome(&body);
    }
    // application/json with a charset is JSON.
    let req = client()
        .post(app.url("/cds-services/dvt-patient-view"))
        .header("content-type", "application/json; charset=utf-8")
        .body(hook_request("patient-view").to_string());
    assert_eq!(send(req).await.0, 200);
}

/// Spec "Prefetch Template": data not in the prefetch and no FHIR server to fetch it
/// from → 412 with an OperationOutcome saying which query.
#[tokio::test]
async fn missing_data_without_fhir_server_is_412_naming_the_query() {
    let app = TestApp::dev();
    let mut r = hook_request("patient-view");
    r.as_object_mut().unwrap().remove("prefetch");
    let (status, _, body) = post_json(&app.url("/cds-services/dvt-patient-view"), &r, None).await;
    assert_eq!(status, 412, "{body}");
    let text = assert_operation_outcome(&body);
    assert!(text.contains("fhirServer"), "{text}");
    let (_, _, metrics) = send(client().get(app.url("/metrics"))).await;
    let metrics = metrics.as_str().unwrap_or_default().to_string();
    assert!(
        metrics.contains("dvt_cds_http_requests_total{route=\"/cds-services/{id}\",service=\"dvt-patient-view\",status=\"412\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn request_id_is_propagated_or_generated() {
    let app = TestApp::dev();
    let req = client()
        .get(app.url("/cds-services"))
        .header("x-request-id", "abc-123");
    let (_, headers, _) = send(req).await;
    assert_eq!(headers["x-request-id"], "abc-123");
    let (_, headers, _) = get(&app.url("/cds-services"), None).await;
    let generated = headers["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(generated).is_ok(), "{generated}");
    // A header that could forge log lines is replaced.
    let req = client()
        .get(app.url("/cds-services"))
        .header("x-request-id", "a b\"c");
    let (_, headers, _) = send(req).await;
    assert_ne!(headers["x-request-id"], "a b\"c");
    assert!(
        app.wait_for_log("abc-123")
            .contains("request_id=\"abc-123\"")
    );
}

#[tokio::test]
async fn cors_preflight_is_answered_on_every_route_in_dev() {
    let app = TestApp::dev();
    for path in [
        "/cds-services",
        "/cds-services/dvt-order-sign",
        "/cds-services/dvt-order-sign/feedback",
    ] {
        let req = client()
            .request(reqwest::Method::OPTIONS, app.url(path))
            .header("origin", "https://sandbox.cds-hooks.org")
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            );
        let (status, headers, _) = send(req).await;
        assert!(status == 200 || status == 204, "{path}: {status}");
        assert_eq!(headers["access-control-allow-origin"], "*", "{path}");
        let allowed = headers["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase();
        assert!(
            allowed.contains("authorization") && allowed.contains("content-type"),
            "{allowed}"
        );
        let methods = headers["access-control-allow-methods"].to_str().unwrap();
        assert!(methods.contains("POST"), "{methods}");
    }
}

#[tokio::test]
async fn healthz_readyz_and_metrics() {
    let app = TestApp::dev();
    assert_eq!(get(&app.url("/healthz"), None).await.0, 200);
    let (status, _, body) = get(&app.url("/readyz"), None).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ready");
    let mut bad = hook_request("patient-view");
    bad["hook"] = json!("order-sign");
    assert_eq!(
        post_json(&app.url("/cds-services/dvt-patient-view"), &bad, None)
            .await
            .0,
        400
    );
    assert_eq!(
        post_json(
            &app.url("/cds-services/dvt-patient-view"),
            &hook_request("patient-view"),
            None
        )
        .await
        .0,
        200
    );
    let resp = client().get(app.url("/metrics")).send().await.unwrap();
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = resp.text().await.unwrap();
    for needle in [
        "dvt_cds_http_requests_total{route=\"/cds-services/{id}\",service=\"dvt-patient-view\",status=\"400\"} 1",
        "dvt_cds_http_requests_total{route=\"/cds-services/{id}\",service=\"dvt-patient-view\",status=\"200\"} 1",
        "dvt_cds_http_request_duration_seconds_bucket{route=\"/cds-services/{id}\",service=\"dvt-patient-view\",le=\"+Inf\"} 2",
        "dvt_cds_fhir_gather_duration_seconds_count{service=\"dvt-patient-view\"} 1",
        "# TYPE dvt_cds_cards_total counter",
        "# TYPE dvt_cds_feedback_total counter",
        "# TYPE dvt_cds_fhir_failures_total counter",
        // Sub-millisecond buckets (a prefetch-only call can take less than 1 ms).
        "dvt_cds_http_request_duration_seconds_bucket{route=\"/cds-services/{id}\",service=\"dvt-patient-view\",le=\"0.0001\"}",
        // Byte units (these were *_kib before; CHANGELOG.md lists the renames).
        "\ndvt_cds_inflight_body_bytes 0\n",
        "\ndvt_cds_inflight_body_limit_bytes 134217728\n",
        "\ndvt_cds_fhir_inflight_bytes 0\n",
        "\ndvt_cds_fhir_inflight_limit_bytes 268435456\n",
        &format!(
            "\ndvt_cds_build_info{{version=\"{}\",mapping_set=\"dvt-cds-default\",mapping_version=\"2.0.0\"}} 1\n",
            env!("CARGO_PKG_VERSION")
        ),
        "\nprocess_resident_memory_bytes ",
        "\nprocess_virtual_memory_bytes ",
        "\nprocess_cpu_seconds_total ",
        "\nprocess_open_fds ",
        "\nprocess_max_fds ",
        "\nprocess_start_time_seconds ",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    assert!(!text.contains("_kib"), "a metric still in KiB:\n{text}");
}

#[tokio::test]
async fn logs_carry_no_patient_id_token_or_body() {
    let app = TestApp::dev();
    let mut r = hook_request("patient-view");
    r["context"]["patientId"] = json!("PATIENT-SENTINEL-4711");
    r["fhirServer"] = json!("http://127.0.0.1:9/fhir");
    r["fhirAuthorization"] = json!({"access_token": "TOKEN-SENTINEL-0815", "token_type": "Bearer",
        "expires_in": 300, "scope": "user/*.read", "subject": "dvt-cds"});
    r["prefetch"]["patient"]["name"] = json!([{"family": "NAME-SENTINEL"}]);
    let hook_instance = r["hookInstance"].as_str().unwrap().to_string();
    let (status, _, _) = post_json(
        &app.url("/cds-services/dvt-patient-view"),
        &r,
        Some("JWT-SENTINEL"),
    )
    .await;
    assert!(status == 200 || status == 412, "{status}");
    let mut bad = r.clone();
    bad["hook"] = json!("order-sign");
    post_json(&app.url("/cds-services/dvt-patient-view"), &bad, None).await;
    let logs = app.wait_for_log("invalid request");
    assert!(
        logs.contains(&hook_instance),
        "the request line should name the hookInstance:\n{logs}"
    );
    for secret in [
        "PATIENT-SENTINEL",
        "TOKEN-SENTINEL",
        "NAME-SENTINEL",
        "JWT-SENTINEL",
    ] {
        assert!(
            !logs.contains(secret),
            "{secret} leaked into the logs:\n{logs}"
        );
    }
}

#[tokio::test]
async fn json_log_format_writes_one_json_object_per_line() {
    let app = TestApp::spawn(&["--dev", "--log-format", "json"]);
    get(&app.url("/cds-services"), None).await;
    let logs = app.wait_for_log("\"route\":\"/cds-services\"");
    let lines: Vec<&str> = logs.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 2, "{logs}");
    for l in &lines {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(v["level"].is_string(), "{l}");
    }
    let req_line: Value = lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["route"] == "/cds-services")
        .expect("request line");
    assert_eq!(req_line["status"], 200);
    assert!(req_line["request_id"].is_string());
    assert!(
        logs.contains("DEV MODE"),
        "dev mode warns at startup: {logs}"
    );
}

#[tokio::test]
async fn sigterm_stops_the_service_with_exit_0() {
    let mut app = TestApp::dev();
    assert_eq!(get(&app.url("/healthz"), None).await.0, 200);
    let status = app.terminate();
    assert!(status.success(), "{status:?}\n{}", app.logs());
}

#[test]
fn serve_without_auth_config_or_dev_refuses_to_start_and_says_what_to_pass() {
    let out = run(&["serve", "--listen", "127.0.0.1:0"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--auth-config") && err.contains("--dev"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "must not claim to listen");
}

#[test]
fn invalid_flag_values_fail_at_startup() {
    for args in [
        ["serve", "--dev", "--deadline", "soon"],
        ["serve", "--dev", "--max-body", "lots"],
        ["serve", "--dev", "--public-url", "not a url"],
        ["serve", "--dev", "--log-format", "xml"],
        ["serve", "--dev", "--body-timeout", "slowly"],
        ["serve", "--dev", "--header-timeout", "0s"],
        ["serve", "--dev", "--max-inflight-body", "plenty"],
    ] {
        let out = run(&args);
        assert!(!out.status.success(), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
}

#[test]
fn a_body_budget_below_the_body_limit_is_refused_at_startup() {
    let out = run(&[
        "serve",
        "--dev",
        "--listen",
        "127.0.0.1:0",
        "--max-body",
        "1MiB",
        // Above the body limit, but not its bytes and its parsed allowance (9 MiB and
        // 16 KiB): the largest body could never be served.
        "--max-inflight-body",
        "9MiB",
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--max-inflight-body")
            && err.contains("--max-body")
            && err.contains("8 times"),
        "{err}"
    );
}

#[test]
fn a_live_data_pool_below_the_call_budget_is_refused_at_startup() {
    let out = run(&[
        "serve",
        "--dev",
        "--listen",
        "127.0.0.1:0",
        "--fhir-max-bytes",
        "16MiB",
        "--fhir-max-inflight-bytes",
        "8MiB",
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--fhir-max-inflight-bytes") && err.contains("--fhir-max-bytes"),
        "{err}"
    );
}

/// Every `serve` setting (from `serve --help`) is documented in README.md's
/// configuration table and in .env.example, so the two cannot drift from the binary.
#[test]
fn every_serve_setting_is_documented() {
    let out = run(&["serve", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    let vars: std::collections::BTreeSet<&str> = help
        .split("[env: ")
        .skip(1)
        .filter_map(|rest| rest.split(['=', ']']).next())
        .collect();
    assert!(vars.len() >= 15, "{help}");
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let example = std::fs::read_to_string(format!("{root}/.env.example")).unwrap();
    for var in vars {
        assert!(
            readme.contains(&format!("`{var}`")),
            "{var} is not in README.md"
        );
        assert!(example.contains(var), "{var} is not in .env.example");
    }
}

#[test]
fn serve_reads_flags_from_the_environment() {
    let out = command()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("DVT_CDS_DEADLINE", "never")
        .env("DVT_CDS_DEV", "true")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("never"));
}

#[test]
fn evaluate_reports_unreadable_input_on_stderr_with_exit_2() {
    let out = run(&[
        "evaluate",
        "--request",
        "/nonexistent/request.json",
        "--now",
        "2025-03-01T09:30:00Z",
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(!out.stderr.is_empty());
    assert!(out.stdout.is_empty());
    let out = run(&["evaluate", "--hook", "no-such-hook"]);
    assert!(!out.status.success());
}

#[test]
fn mappings_check_of_the_embedded_set_succeeds() {
    let out = run(&["mappings", "check"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `--deadline` bounds the whole call: a FHIR server that accepts but never answers
/// gives a 412 soon after the deadline, not a hung EHR.
#[tokio::test]
async fn a_hanging_fhir_server_gives_412_within_the_deadline() {
    let hang = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let fhir = format!("http://{}/fhir", hang.local_addr().unwrap());
    let app = TestApp::spawn(&["--dev", "--deadline", "300ms", "--fhir-timeout", "10s"]);
    let mut r = hook_request("patient-view");
    r.as_object_mut().unwrap().remove("prefetch");
    r["fhirServer"] = json!(fhir);
    let started = std::time::Instant::now();
    let (status, _, body) = post_json(&app.url("/cds-services/dvt-patient-view"), &r, None).await;
    let took = started.elapsed();
    assert_eq!(status, 412, "{body}");
    assert_operation_outcome(&body);
    assert!(
        took < std::time::Duration::from_millis(1500),
        "took {took:?}"
    );
    drop(hang);
}
