//! `dvt-cds evaluate --request F --now T` and the running service (`serve --dev --now T`,
//! the test-only fixed clock) give the same answer to the same request, and refuse the
//! same requests with the same words: they run one pipeline (src/pipeline.rs).

mod common;

use std::path::{Path, PathBuf};

use common::{TestApp, hook_request, post_json, run, service_of};
use serde_json::{Value, json};

/// The clock of the examples (cds-hooks/examples/README.md).
const NOW: &str = "2026-11-20T12:00:00Z";

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("cds-hooks/examples")
}

/// Every example request (all four hooks; order-select and order-sign with draftOrders),
/// and the minimal request of each hook from the API tests' fixtures.
fn valid_requests() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(examples_dir()).expect("examples dir") {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if name.ends_with(".request.json") {
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            out.push((name, v));
        }
    }
    for hook in [
        "patient-view",
        "encounter-start",
        "order-select",
        "order-sign",
    ] {
        out.push((format!("fixture {hook}"), hook_request(hook)));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// `dvt-cds evaluate --request <body> --now NOW [extra]`: exit code, stdout, stderr.
fn evaluate(dir: &Path, body: &Value, extra: &[&str]) -> (i32, String, String) {
    let file = dir.join("request.json");
    std::fs::write(&file, body.to_string()).unwrap();
    let mut args = vec![
        "evaluate",
        "--request",
        file.to_str().unwrap(),
        "--now",
        NOW,
    ];
    args.extend_from_slice(extra);
    let out = run(&args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn fixed_clock_service() -> TestApp {
    TestApp::spawn(&["--dev", "--now", NOW])
}

#[tokio::test]
async fn evaluate_and_the_service_give_the_same_answer() {
    let app = fixed_clock_service();
    let tmp = tempfile::tempdir().unwrap();
    let requests = valid_requests();
    let hooks: std::collections::BTreeSet<String> = requests
        .iter()
        .map(|(_, r)| r["hook"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(hooks.len(), 4, "every hook is compared: {hooks:?}");
    let mut carded = 0;
    for (name, req) in &requests {
        let hook = req["hook"].as_str().unwrap();
        let (code, stdout, stderr) = evaluate(tmp.path(), req, &[]);
        assert_eq!(code, 0, "{name}: {stderr}");
        let offline: Value = serde_json::from_str(&stdout).unwrap();
        let (status, _, served) = post_json(
            &app.url(&format!("/cds-services/{}", service_of(hook))),
            req,
            None,
        )
        .await;
        assert_eq!(status, 200, "{name}: {served}");
        assert_eq!(offline, served, "{name}: evaluate and the service differ");
        carded += usize::from(!served["cards"].as_array().unwrap().is_empty());
    }
    // The comparison means something: most examples raise a card.
    assert!(carded >= 7, "{carded} carded");
}

#[tokio::test]
async fn an_order_select_request_is_evaluated_as_order_select() {
    // The draft D-dimer of this order-select example is seen: no second D-dimer is
    // suggested (cds-hooks/examples/README.md). Evaluated as patient-view, it would be.
    let path = examples_dir().join("dvt-evaluation.request.json");
    let req: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(req["hook"], "order-select");
    let tmp = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = evaluate(tmp.path(), &req, &[]);
    assert_eq!(code, 0, "{stderr}");
    let own: Value = serde_json::from_str(&stdout).unwrap();
    let want: Value = serde_json::from_str(
        &std::fs::read_to_string(examples_dir().join("dvt-evaluation.response.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(own, want);
    let (code, stdout, stderr) = evaluate(tmp.path(), &req, &["--hook", "patient-view"]);
    assert_eq!(code, 0, "{stderr}");
    let as_patient_view: Value = serde_json::from_str(&stdout).unwrap();
    assert_ne!(as_patient_view, own, "the draft orders must matter");

    // --hook replaces the request's hook: the same as the service of that hook given
    // the request with its hook replaced.
    let app = fixed_clock_service();
    let mut as_sign = req.clone();
    as_sign["hook"] = json!("order-sign");
    let (status, _, served) =
        post_json(&app.url("/cds-services/dvt-order-sign"), &as_sign, None).await;
    assert_eq!(status, 200, "{served}");
    let (code, stdout, stderr) = evaluate(tmp.path(), &req, &["--hook", "order-sign"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(serde_json::from_str::<Value>(&stdout).unwrap(), served);
}

/// Invalid requests: (what, the request, the service's status).
fn invalid_requests() -> Vec<(&'static str, Value, u16)> {
    let mut v = Vec::new();
    let mut r = hook_request("patient-view");
    r.as_object_mut().unwrap().remove("hookInstance");
    r["context"]["patientId"] = json!("a/b");
    v.push(("no hookInstance, a bad patientId", r, 400));
    let mut r = hook_request("encounter-start");
    r["context"].as_object_mut().unwrap().remove("encounterId");
    v.push(("encounter-start without encounterId", r, 400));
    let mut r = hook_request("order-sign");
    r["context"].as_object_mut().unwrap().remove("draftOrders");
    v.push(("order-sign without draftOrders", r, 400));
    let mut r = hook_request("order-select");
    r["context"]["draftOrders"] = json!({"resourceType": "Patient"});
    v.push(("draftOrders not a Bundle", r, 400));
    let mut r = hook_request("patient-view");
    r["fhirAuthorization"] = json!({"access_token": "t", "token_type": "Bearer"});
    v.push(("fhirAuthorization without fhirServer", r, 400));
    let mut r = hook_request("patient-view");
    r["prefetch"].as_object_mut().unwrap().remove("conditions");
    v.push(("a prefetch key missing, no fhirServer", r, 412));
    v
}

#[tokio::test]
async fn evaluate_refuses_what_the_service_refuses_in_the_same_words() {
    let app = fixed_clock_service();
    let tmp = tempfile::tempdir().unwrap();
    for (what, req, want_status) in invalid_requests() {
        let hook = req["hook"].as_str().unwrap();
        let (status, _, outcome) = post_json(
            &app.url(&format!("/cds-services/{}", service_of(hook))),
            &req,
            None,
        )
        .await;
        assert_eq!(status, want_status, "{what}: {outcome}");
        let (code, stdout, stderr) = evaluate(tmp.path(), &req, &[]);
        assert_eq!(code, 2, "{what}: evaluate accepted it: {stdout}");
        assert!(stdout.is_empty(), "{what}: {stdout}");
        let issues = outcome["issue"].as_array().expect("an OperationOutcome");
        for issue in issues {
            let said = issue["diagnostics"].as_str().unwrap();
            assert!(
                stderr.contains(said),
                "{what}: evaluate does not say {said:?}; it says {stderr}"
            );
        }
    }
}

#[test]
fn evaluate_without_a_hook_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let mut req = hook_request("patient-view");
    req.as_object_mut().unwrap().remove("hook");
    let (code, _, stderr) = evaluate(tmp.path(), &req, &[]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("hook: required") && stderr.contains("--hook"),
        "{stderr}"
    );
    // Given on the command line, it is enough.
    let (code, _, stderr) = evaluate(tmp.path(), &req, &["--hook", "patient-view"]);
    assert_eq!(code, 0, "{stderr}");

    req["hook"] = json!("medication-prescribe");
    let (code, _, stderr) = evaluate(tmp.path(), &req, &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("not a hook dvt-cds answers"), "{stderr}");
}

#[test]
fn the_fixed_clock_needs_dev() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("f.sqlite3");
    let out = run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--feedback-db",
        db.to_str().unwrap(),
        "--auth-config",
        "/nonexistent.toml",
        "--now",
        NOW,
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--now") && stderr.contains("--dev"),
        "{stderr}"
    );
}
