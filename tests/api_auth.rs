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

    // An http:// jku (a local test server) is accepted only with --dev.
    let a = auth_app(&[&jku], &["--dev"]);
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

/// `serve` with an auth config of `text` (outside `--dev`): it must refuse to start;
/// returns what it said on stderr.
fn refused_startup(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("auth.toml");
    std::fs::write(&cfg, text).unwrap();
    let out = run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--auth-config",
        cfg.to_str().unwrap(),
    ]);
    assert!(!out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_bad_auth_config_stops_startup_with_a_message_naming_it() {
    let err =
        refused_startup("[[issuer]]\niss = \"https://ehr.test\"\njwks_file = \"missing.json\"\n");
    assert!(
        err.contains("auth.toml") && err.contains("missing.json"),
        "{err}"
    );
}

// ---------------------------------------------------------------- key sources (issue 10)

/// Start the binary with `toml` as its auth config (files from `files` beside it) and
/// `args` (e.g. `--dev` for http:// JWKS URLs on loopback).
fn app_with_config(toml: &str, files: &[(&str, Value)], args: &[&str]) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    for (name, v) in files {
        std::fs::write(dir.path().join(name), v.to_string()).unwrap();
    }
    let cfg = dir.path().join("auth.toml");
    std::fs::write(&cfg, toml).unwrap();
    let mut all = vec!["--auth-config", cfg.to_str().unwrap()];
    all.extend_from_slice(args);
    TestApp::spawn_in(dir, &all)
}

/// A JWKS served over loopback HTTP: the document can be changed while it runs, and each
/// answer carries `cache_control`.
struct JwksServer {
    url: String,
    doc: Arc<std::sync::Mutex<Value>>,
    hits: Arc<std::sync::atomic::AtomicUsize>,
}

async fn jwks_server(doc: Value, cache_control: &'static str) -> JwksServer {
    let doc = Arc::new(std::sync::Mutex::new(doc));
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (d, h) = (doc.clone(), hits.clone());
    let app = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            let (d, h) = (d.clone(), h.clone());
            async move {
                h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let body = d.lock().unwrap().to_string();
                ([("cache-control", cache_control)], body)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    JwksServer { url, doc, hits }
}

fn claims_for(iss: &str, route: &str) -> Value {
    let mut c = jwt::claims(route);
    c["iss"] = json!(iss);
    c
}

/// Issue 10: with one global lock held across JWKS fetches, an issuer whose `jwks_url`
/// hangs made another issuer's call wait (19.6 s seen). Each source now has its own lock.
#[tokio::test]
async fn a_hanging_jwks_url_of_one_issuer_does_not_delay_another() {
    // The kernel completes the handshake; nobody ever reads the request or answers.
    let hang = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hang_url = format!("http://{}/jwks", hang.local_addr().unwrap());
    let a_key = jwt::es384("a-key");
    let b_key = jwt::es384("b-key");
    let toml = format!(
        "[[issuer]]\niss = \"https://a.test\"\njwks_url = \"{hang_url}\"\n\n\
         [[issuer]]\niss = \"{}\"\njwks_file = \"b.json\"\n",
        jwt::ISS
    );
    let app = app_with_config(
        &toml,
        &[("b.json", jwt::jwks(&[&b_key]))],
        &["--dev", "--public-url", PUBLIC_URL],
    );
    let patient = client_with_timeout(60);
    // Issuer A calls; each needs A's keys, which never come.
    let a_calls: Vec<_> = (0..4)
        .map(|_| {
            let token = jwt::sign(&a_key, &claims_for("https://a.test", "/cds-services"), None);
            let req = patient.get(app.url("/cds-services")).bearer_auth(token);
            tokio::spawn(async move { req.send().await.map(|r| r.status().as_u16()) })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let token = jwt::sign(&b_key, &jwt::claims("/cds-services"), None);
    let started = std::time::Instant::now();
    let (status, _, body) = send(patient.get(app.url("/cds-services")).bearer_auth(token)).await;
    let took = started.elapsed();
    eprintln!("issuer B's call took {took:?} while issuer A's jwks_url hangs");
    assert_eq!(status, 200, "{body}\n{}", app.logs());
    assert!(
        took < std::time::Duration::from_secs(1),
        "issuer B waited {took:?} for issuer A's hanging JWKS"
    );
    // A's calls end (401) once A's one fetch times out; none waits for more than that.
    for c in a_calls {
        let status = tokio::time::timeout(std::time::Duration::from_secs(8), c)
            .await
            .expect("A's call ended within the JWKS timeout")
            .unwrap()
            .unwrap();
        assert_eq!(status, 401);
    }
    drop(hang);
}

fn client_with_timeout(secs: u64) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(secs))
        .build()
        .unwrap()
}

/// Keys expire: a key removed from the JWKS stops verifying once the cached copy's
/// lifetime (`Cache-Control: max-age`, at least 5 s) is over.
#[tokio::test]
async fn a_removed_key_stops_verifying_after_its_ttl() {
    let old = jwt::es384("old");
    let new = jwt::es384("new");
    let server = jwks_server(jwt::jwks(&[&old, &new]), "max-age=1").await;
    let toml = format!(
        "[[issuer]]\niss = \"{}\"\njwks_url = \"{}\"\n",
        jwt::ISS,
        server.url
    );
    let app = app_with_config(&toml, &[], &["--dev", "--public-url", PUBLIC_URL]);
    let status = |key: &jwt::KeyPair| {
        let token = jwt::sign(key, &jwt::claims("/cds-services"), None);
        let url = app.url("/cds-services");
        async move { get(&url, Some(&token)).await.0 }
    };
    assert_eq!(status(&old).await, 200, "{}", app.logs());
    // The EHR retires the old key.
    *server.doc.lock().unwrap() = jwt::jwks(&[&new]);
    let removed = std::time::Instant::now();
    let until = removed + std::time::Duration::from_secs(12);
    let mut last = 200;
    while std::time::Instant::now() < until {
        last = status(&old).await;
        if last == 401 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    eprintln!(
        "the removed key stopped verifying after {:?}",
        removed.elapsed()
    );
    assert_eq!(last, 401, "the removed key still verifies\n{}", app.logs());
    // The 5 s floor: at most ~5 s of cache plus one background refresh.
    assert!(removed.elapsed() < std::time::Duration::from_secs(8));
    assert_eq!(status(&new).await, 200);
    // Refreshed in the background, not once per call: a handful of fetches.
    let hits = server.hits.load(std::sync::atomic::Ordering::SeqCst);
    assert!(hits <= 6, "{hits} fetches");
}

/// One key we cannot use (X25519 for encryption, a secp256k1 key) no longer makes the
/// whole JWKS unreadable: the others still verify, and the log counts the skipped ones.
#[tokio::test]
async fn a_jwks_with_unsupported_keys_still_verifies_its_es384_key() {
    let key = jwt::es384("ehr-es384");
    let mut doc = jwt::jwks(&[&key]);
    let keys = doc["keys"].as_array_mut().unwrap();
    keys.insert(
        0,
        json!({"kty": "OKP", "crv": "X25519", "use": "enc", "kid": "enc-1",
            "x": "hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"}),
    );
    keys.insert(
        1,
        json!({"kty": "EC", "crv": "secp256k1", "kid": "k1",
            "x": "WfjOrWF3GAYrkHLyDmDSLlHDH7LLnhbs6jBNtVcENAM",
            "y": "vVJGg0-F1DDMxZzT7KoTrsE5PO6nnz9tpMZ2Dd27YP0"}),
    );
    // Over HTTP (jwks_url) and from a file (jwks_file).
    let server = jwks_server(doc.clone(), "max-age=600").await;
    let by_url = app_with_config(
        &format!(
            "[[issuer]]\niss = \"{}\"\njwks_url = \"{}\"\n",
            jwt::ISS,
            server.url
        ),
        &[],
        &["--dev", "--public-url", PUBLIC_URL],
    );
    let by_file = app_with_config(
        &format!(
            "[[issuer]]\niss = \"{}\"\njwks_file = \"jwks.json\"\n",
            jwt::ISS
        ),
        &[("jwks.json", doc)],
        &["--public-url", PUBLIC_URL],
    );
    for app in [&by_url, &by_file] {
        let token = jwt::sign(&key, &jwt::claims("/cds-services"), None);
        let (status, _, body) = get(&app.url("/cds-services"), Some(&token)).await;
        assert_eq!(status, 200, "{body}\n{}", app.logs());
        let logs = app.wait_for_log("skipped=2");
        assert!(logs.contains("skipped=2"), "{logs}");
        assert!(
            !logs.contains("hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"),
            "key material logged"
        );
    }
}

/// `iat` required, numeric, not in the future; `exp - iat` at most
/// `--max-token-lifetime` (5 min) plus the 60 s leeway.
#[tokio::test]
async fn iat_and_token_lifetime_are_checked() {
    let a = auth_app(&[], &[]);
    let now = jwt::now();
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = jwt::claims("/cds-services");
        f(&mut c);
        jwt::sign(&a.es, &c, None)
    };
    let refused = [
        (
            "iat missing",
            "check=iat missing",
            with(&|c| {
                c.as_object_mut().unwrap().remove("iat");
            }),
        ),
        (
            "iat a string",
            "check=iat not a number",
            with(&|c| c["iat"] = json!(now.to_string())),
        ),
        (
            "iat a year ahead",
            "check=iat in the future",
            with(&|c| {
                c["iat"] = json!(now + 365 * 86_400);
                c["exp"] = json!(now + 365 * 86_400 + 300);
            }),
        ),
        (
            "valid for 10 years",
            "check=token lifetime too long",
            with(&|c| c["exp"] = json!(now + 10 * 365 * 86_400)),
        ),
    ];
    for (what, _, token) in &refused {
        let (status, body) = discovery_status(&a, token).await;
        assert_eq!(status, 401, "{what} was accepted: {body}");
    }
    let logs = a.app.wait_for_log("check=token lifetime too long");
    for (what, check, _) in &refused {
        assert!(logs.contains(check), "{what}: log lacks {check}:\n{logs}");
    }
    // The CDS Hooks sandbox's tokens live 301 s; a float iat is a number too.
    let sandbox_like = with(&|c| {
        c["iat"] = json!(now);
        c["exp"] = json!(now + 301);
    });
    assert_eq!(discovery_status(&a, &sandbox_like).await.0, 200);
    let float_iat = with(&|c| c["iat"] = json!(now as f64 + 0.25));
    assert_eq!(discovery_status(&a, &float_iat).await.0, 200);
    // A site may allow longer tokens.
    let long = auth_app(&[], &["--max-token-lifetime", "1h"]);
    let mut c = jwt::claims("/cds-services");
    c["exp"] = json!(now + 3600);
    let (status, _) = discovery_status(&long, &jwt::sign(&long.es, &c, None)).await;
    assert_eq!(status, 200);
}

/// A token shaped exactly as the CDS Hooks sandbox signs it (ES384, `kid`, `jku` header
/// of the sandbox, `iss` the sandbox, `aud` the discovery URL as the user typed it with
/// `localhost`, 301 s, `jti`), signed with a locally made P-384 key, against the
/// README's configuration with the key saved in a `jwks_file`: 200, and the sandbox is
/// never contacted (nothing could be reached from here: a fetch would fail or time out).
#[tokio::test]
async fn a_sandbox_shaped_token_verifies_end_to_end_without_a_fetch() {
    const SANDBOX: &str = "https://sandbox.cds-hooks.org";
    const SANDBOX_JKU: &str = "https://sandbox.cds-hooks.org/.well-known/jwks.json";
    let key = jwt::es384("sandbox-shaped-kid");
    let toml = format!(
        "[[issuer]]\niss = \"{SANDBOX}\"\njwks_file = \"sandbox-jwks.json\"\njku = [\"{SANDBOX_JKU}\"]\n\
         fhir_servers = [\"https://launch.smarthealthit.org/v/r4/fhir\"]\n"
    );
    // No --dev, no --public-url: the public URL is http://127.0.0.1:PORT.
    let app = app_with_config(
        &toml,
        &[("sandbox-jwks.json", jwt::jwks(&[&key]))],
        &["--fhir-allow-anonymous"],
    );
    let typed = format!("http://localhost:{}", app.port());
    for route in ["/cds-services", "/cds-services/dvt-patient-view"] {
        let now = jwt::now();
        let claims = json!({
            "iss": SANDBOX,
            "aud": format!("{typed}{route}"),
            "exp": now + 301,
            "iat": now,
            "jti": uuid::Uuid::new_v4().to_string(),
        });
        let token = jwt::sign(&key, &claims, Some(SANDBOX_JKU));
        let started = std::time::Instant::now();
        let (status, _, body) = if route == "/cds-services" {
            get(&app.url(route), Some(&token)).await
        } else {
            post_json(&app.url(route), &hook_request("patient-view"), Some(&token)).await
        };
        let took = started.elapsed();
        assert_eq!(status, 200, "{route}: {body}\n{}", app.logs());
        assert!(
            took < std::time::Duration::from_secs(1),
            "{route} took {took:?}"
        );
    }
    let logs = app.logs();
    assert!(!logs.contains("JWKS fetch failed"), "{logs}");
    assert!(
        !logs.contains("sandbox.cds-hooks.org/.well-known"),
        "the jku was fetched:\n{logs}"
    );
}

#[test]
fn an_http_jwks_url_outside_dev_stops_startup_naming_the_issuer_and_url() {
    let err = refused_startup(
        "[[issuer]]\niss = \"https://ehr.test\"\njwks_url = \"http://ehr.test/jwks\"\n",
    );
    assert!(
        err.contains("https://ehr.test")
            && err.contains("http://ehr.test/jwks")
            && err.contains("--dev"),
        "{err}"
    );
}

/// A `jwks_url` that is down at startup is logged and retried, not fatal; its keys
/// verify once it is up.
#[tokio::test]
async fn a_jwks_url_down_at_startup_is_retried_not_fatal() {
    let key = jwt::es384("late");
    // A port with nothing behind it yet.
    let spare = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = spare.local_addr().unwrap();
    drop(spare);
    let toml = format!(
        "[[issuer]]\niss = \"{}\"\njwks_url = \"http://{addr}/jwks\"\n",
        jwt::ISS
    );
    let app = app_with_config(&toml, &[], &["--dev", "--public-url", PUBLIC_URL]);
    let logs = app.wait_for_log("JWKS fetch failed");
    assert!(
        logs.contains("JWKS fetch failed") && logs.contains("retry_in_s=5"),
        "{logs}"
    );
    // Up now: the background retry (after 5 s) loads it.
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let doc = jwt::jwks(&[&key]);
    let server = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || async move { axum::Json(doc) }),
    );
    tokio::spawn(async move { axum::serve(listener, server).await.unwrap() });
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut last = 0;
    while std::time::Instant::now() < until {
        let token = jwt::sign(&key, &jwt::claims("/cds-services"), None);
        last = get(&app.url("/cds-services"), Some(&token)).await.0;
        if last == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert_eq!(last, 200, "{}", app.logs());
}
