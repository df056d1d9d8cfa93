//! Client authentication with real ES384 and RS384 key pairs (contract.md "Security",
//! spec "Trusting CDS Clients"): a valid token passes; every forgery and misuse is a 401
//! with no reason given, and the log names the failed check without the token.

mod common;

use std::sync::Arc;

use common::jwt::{self, KeyPair, PUBLIC_URL};
use common::*;
use serde_json::{Value, json};

struct AuthApp {
    app: TestApp,
    es: KeyPair,
    rs: KeyPair,
}

/// An app trusting issuer `jwt::ISS` with an ES384 and an RS384 key in a JWKS file.
fn auth_app(jku_allowed: &[&str], extra: &[&str]) -> AuthApp {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let es = jwt::es384("ehr-es384");
    let rs = jwt::rs384("ehr-rs384");
    let config = jwt::write_auth_config(dir.path(), &[&es, &rs], jku_allowed);
    let mut args = vec![
        "--auth-config",
        config.to_str().unwrap(),
        "--public-url",
        PUBLIC_URL,
    ];
    args.extend_from_slice(extra);
    let app = TestApp::spawn_in(dir, &args);
    AuthApp { app, es, rs }
}

async fn discovery_status(a: &AuthApp, token: &str) -> (u16, Value) {
    let (status, _, body) = get(&a.app.url("/cds-services"), Some(token)).await;
    (status, body)
}

/// A 401 that says nothing about why.
fn assert_plain_401(status: u16, body: &Value) {
    assert_eq!(status, 401, "{body}");
    let text = assert_operation_outcome(body);
    for leak in [
        "exp",
        "nbf",
        "kid",
        "jku",
        "signature",
        "replay",
        "issuer not",
        "aud ",
    ] {
        assert!(
            !text.contains(&format!("check={leak}")),
            "401 body gives a reason: {text}"
        );
    }
}

#[tokio::test]
async fn valid_es384_and_rs384_tokens_pass_on_every_route() {
    let a = auth_app(&[], &[]);
    let token = jwt::sign(&a.es, &jwt::claims("/cds-services"), None);
    let (status, body) = discovery_status(&a, &token).await;
    assert_eq!(status, 200, "{body}\n{}", a.app.logs());

    let token = jwt::sign(&a.rs, &jwt::claims("/cds-services/dvt-patient-view"), None);
    let (status, _, body) = post_json(
        &a.app.url("/cds-services/dvt-patient-view"),
        &hook_request("patient-view"),
        Some(&token),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // aud as an array (RFC 7519 allows both forms).
    let mut c = jwt::claims("/cds-services/dvt-order-sign/feedback");
    c["aud"] = json!([format!("{PUBLIC_URL}/cds-services/dvt-order-sign/feedback")]);
    let token = jwt::sign(&a.es, &c, None);
    let fb = json!({"feedback": [{"card": uuid::Uuid::new_v4().to_string(), "outcome": "overridden",
        "outcomeTimestamp": "2020-12-11T00:00:00Z"}]});
    let (status, _, body) = post_json(
        &a.app.url("/cds-services/dvt-order-sign/feedback"),
        &fb,
        Some(&token),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn missing_or_non_bearer_authorization_is_401_on_every_route() {
    let a = auth_app(&[], &[]);
    let (status, headers, body) = get(&a.app.url("/cds-services"), None).await;
    assert_plain_401(status, &body);
    assert_eq!(headers["www-authenticate"], "Bearer");
    let (status, _, body) = post_json(
        &a.app.url("/cds-services/dvt-order-select"),
        &hook_request("order-select"),
        None,
    )
    .await;
    assert_plain_401(status, &body);
    let (status, _, body) = post_json(
        &a.app.url("/cds-services/dvt-order-select/feedback"),
        &json!({"feedback": []}),
        None,
    )
    .await;
    assert_plain_401(status, &body);
    let req = client()
        .get(a.app.url("/cds-services"))
        .header("authorization", "Basic dXNlcjpwYXNz");
    let (status, _, body) = send(req).await;
    assert_plain_401(status, &body);
    // Operations endpoints are for the deployment, not the EHR: no token.
    assert_eq!(get(&a.app.url("/healthz"), None).await.0, 200);
}

#[tokio::test]
async fn each_forged_or_misused_token_is_401() {
    let a = auth_app(&[], &[]);
    let route = "/cds-services";
    let stranger = jwt::es384("ehr-es384"); // same kid, different key
    let unknown_kid = jwt::es384("not-in-jwks");
    let mut cases: Vec<(&str, String)> =
        vec![("alg none", jwt::unsigned(&a.es.kid, &jwt::claims(route)))];
    cases.push((
        "HMAC with the RSA public key as secret",
        jwt::hmac_with_public_key(&a.rs, &jwt::claims(route)),
    ));
    cases.push((
        "HMAC with the EC public key as secret",
        jwt::hmac_with_public_key(&a.es, &jwt::claims(route)),
    ));
    cases.push((
        "signed by another key under a known kid",
        jwt::sign(&stranger, &jwt::claims(route), None),
    ));
    let mut c = jwt::claims(route);
    c["iss"] = json!("https://evil.test");
    cases.push(("unknown issuer", jwt::sign(&a.es, &c, None)));
    let mut c = jwt::claims(route);
    c["aud"] = json!(format!("{PUBLIC_URL}/cds-services/dvt-patient-view"));
    cases.push(("aud of another route", jwt::sign(&a.es, &c, None)));
    let mut c = jwt::claims(route);
    c["aud"] = json!("https://other-service.test/cds-services");
    cases.push(("aud of another service", jwt::sign(&a.es, &c, None)));
    let mut c = jwt::claims(route);
    c["exp"] = json!(jwt::now() - 61 - 60);
    cases.push(("expired beyond the leeway", jwt::sign(&a.es, &c, None)));
    let mut c = jwt::claims(route);
    c["nbf"] = json!(jwt::now() + 600);
    cases.push(("nbf in the future", jwt::sign(&a.es, &c, None)));
    cases.push((
        "unknown kid",
        jwt::sign(&unknown_kid, &jwt::claims(route), None),
    ));
    let mut c = jwt::claims(route);
    c.as_object_mut().unwrap().remove("jti");
    cases.push(("no jti", jwt::sign(&a.es, &c, None)));
    let mut c = jwt::claims(route);
    c.as_object_mut().unwrap().remove("exp");
    cases.push(("no exp", jwt::sign(&a.es, &c, None)));
    // RS384 header on the EC key: the key type must match the algorithm.
    let mut es_as_rs = jwt::rs384("ehr-es384");
    es_as_rs.kid = a.es.kid.clone();
    cases.push((
        "RSA signature under an EC kid",
        jwt::sign(&es_as_rs, &jwt::claims(route), None),
    ));
    cases.push(("garbage", "not.a.jwt".to_string()));

    for (what, token) in &cases {
        let (status, body) = discovery_status(&a, token).await;
        assert_eq!(status, 401, "{what} was accepted: {body}");
        assert_plain_401(status, &body);
    }
    let logs = a.app.wait_for_log("check=kid unknown");
    for (what, token) in &cases {
        assert!(!logs.contains(token.as_str()), "{what}: token in the logs");
    }
    for check in [
        "check=header",
        "check=iss not allowed",
        "check=aud",
        "check=exp",
        "check=nbf",
        "check=kid unknown",
        "check=jti missing",
        "check=signature",
    ] {
        assert!(logs.contains(check), "log does not name {check}:\n{logs}");
    }
}

#[tokio::test]
async fn expiry_within_the_leeway_is_accepted() {
    let a = auth_app(&[], &[]);
    let mut c = jwt::claims("/cds-services");
    c["exp"] = json!(jwt::now() - 30);
    let (status, body) = discovery_status(&a, &jwt::sign(&a.es, &c, None)).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_replayed_jti_is_401_and_logged_with_its_jti() {
    let a = auth_app(&[], &[]);
    let c = jwt::claims("/cds-services");
    let token = jwt::sign(&a.es, &c, None);
    assert_eq!(discovery_status(&a, &token).await.0, 200);
    let (status, body) = discovery_status(&a, &token).await;
    assert_plain_401(status, &body);
    // Same jti, freshly signed: still a replay.
    let (status, _) = discovery_status(&a, &jwt::sign(&a.rs, &c, None)).await;
    assert_eq!(status, 401);
    let jti = c["jti"].as_str().unwrap();
    let logs = a.app.wait_for_log("check=jti replayed");
    let line = logs
        .lines()
        .find(|l| l.contains("check=jti replayed"))
        .expect("replay logged");
    assert!(
        line.contains(jti) && line.contains(jwt::ISS) && line.contains("ehr-"),
        "{line}"
    );
    assert!(!logs.contains(&token), "token in logs");
}

#[tokio::test]
async fn an_unlisted_jku_is_refused_without_any_request_to_it() {
    let trap = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    trap.set_nonblocking(true).unwrap();
    let trap_url = format!("http://{}/jwks", trap.local_addr().unwrap());
    let a = auth_app(&["https://ehr.test/jwks"], &[]);
    let other = jwt::es384("jku-key");
    let token = jwt::sign(&other, &jwt::claims("/cds-services"), Some(&trap_url));
    let (status, body) = discovery_status(&a, &token).await;
    assert_plain_401(status, &body);
    // Also with a kid the configured JWKS knows: the jku is still not followed.
    let token = jwt::sign(&a.es, &jwt::claims("/cds-services"), Some(&trap_url));
    assert_eq!(discovery_status(&a, &token).await.0, 401);
    std::thread::sleep(std::time::Duration::from_millis(200));
    match trap.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the service connected to an unlisted jku: {other:?}"),
    }
    assert!(
        a.app
            .wait_for_log("check=jku not allowed")
            .contains("check=jku not allowed")
    );
}

#[tokio::test]
async fn a_listed_jku_is_followed_for_its_keys() {
    let jku_key = jwt::es384("rotated-key");
    let jwks = jwt::jwks(&[&jku_key]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let jku = format!("http://{}/jwks", listener.local_addr().unwrap());
    let server = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || async move { axum::Json(jwks) }),
    );
    tokio::spawn(async move { axum::serve(listener, server).await.unwrap() });

    let a = auth_app(&[&jku], &[]);
    let token = jwt::sign(&jku_key, &jwt::claims("/cds-services"), Some(&jku));
    let (status, body) = discovery_status(&a, &token).await;
    assert_eq!(status, 200, "{body}\n{}", a.app.logs());
    // The jku's keys are not the issuer's configured keys: without the jku header, 401.
    let token = jwt::sign(&jku_key, &jwt::claims("/cds-services"), None);
    assert_eq!(discovery_status(&a, &token).await.0, 401);
}

#[tokio::test]
async fn an_unknown_kid_triggers_one_refetch_of_the_jwks() {
    let a = auth_app(&[], &[]);
    // The EHR rotates: the new key appears in its JWKS after we started.
    let rotated = jwt::es384("rotated-2");
    let jwks = jwt::jwks(&[&a.es, &a.rs, &rotated]);
    std::fs::write(a.app.dir.path().join("ehr-jwks.json"), jwks.to_string()).unwrap();
    let token = jwt::sign(&rotated, &jwt::claims("/cds-services"), None);
    let (status, body) = discovery_status(&a, &token).await;
    assert_eq!(status, 200, "{body}\n{}", a.app.logs());
}

#[tokio::test]
async fn cors_outside_dev_allows_only_the_configured_origins() {
    let a = auth_app(
        &[],
        &[
            "--cors-origin",
            "https://sandbox.test",
            "--cors-origin",
            "https://ehr-ui.test",
        ],
    );
    for (origin, allowed) in [
        ("https://sandbox.test", true),
        ("https://ehr-ui.test", true),
        ("https://evil.test", false),
    ] {
        let req = client()
            .request(
                reqwest::Method::OPTIONS,
                a.app.url("/cds-services/dvt-patient-view"),
            )
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            );
        let (status, headers, _) = send(req).await;
        assert!(status < 300, "preflight needs no token: {status}");
        let echoed = headers
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap().to_string());
        if allowed {
            assert_eq!(echoed.as_deref(), Some(origin));
        } else {
            assert_eq!(echoed, None, "{origin} must not be allowed");
        }
    }
}

#[test]
fn a_bad_auth_config_stops_startup_with_a_message_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("auth.toml");
    std::fs::write(
        &cfg,
        "[[issuer]]\niss = \"https://ehr.test\"\njwks_file = \"missing.json\"\n",
    )
    .unwrap();
    let out = run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--auth-config",
        cfg.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("auth.toml") && err.contains("missing.json"),
        "{err}"
    );
}
