//! Replays the fuzz corpora (`fuzz/corpus/<target>/`) and any saved crash inputs
//! (`fuzz/artifacts/<target>/`) through the same per-input code the fuzz targets run
//! (`fuzz/src/harness.rs`), on the stable toolchain: no panic, and the harness's own
//! checks hold (for `jwt`, no corpus token verifies). See fuzz/README.md.

#[path = "../fuzz/src/harness.rs"]
mod harness;
#[path = "../fuzz/src/typed.rs"]
mod typed;

use std::path::Path;

/// Run `f` on every file of the target's corpus and artifacts; fail naming each file
/// that panics. Returns how many corpus files there were.
fn replay(target: &str, f: fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut corpus = 0;
    let mut failed = Vec::new();
    for dir in ["corpus", "artifacts"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        let mut paths: Vec<_> = entries.map(|e| e.expect("dir entry").path()).collect();
        paths.sort();
        for p in paths {
            let data = std::fs::read(&p).expect("read corpus file");
            if dir == "corpus" {
                corpus += 1;
            }
            if std::panic::catch_unwind(|| f(&data)).is_err() {
                failed.push(p.display().to_string());
            }
        }
    }
    assert!(failed.is_empty(), "{target}: panicked on {failed:#?}");
    corpus
}

#[test]
fn hook_request_corpus_parses_without_panic() {
    assert!(replay("hook_request", harness::hook_request) > 0);
}

#[test]
fn feedback_corpus_parses_without_panic() {
    assert!(replay("feedback", harness::feedback) > 0);
}

#[test]
fn no_jwt_corpus_token_verifies() {
    assert!(replay("jwt", harness::jwt) > 0);
}

#[test]
fn jwt_structured_corpus_meets_the_oracle() {
    assert!(replay("jwt_structured", harness::jwt_structured) > 0);
}

#[test]
fn assessment_json_corpus_assesses_without_panic() {
    assert!(replay("assessment_json", harness::assessment_json) > 0);
}

#[test]
fn assessment_structured_corpus_assesses_without_panic() {
    assert!(replay("assessment_structured", harness::assessment_structured) > 0);
}

#[test]
fn typed_resource_corpus_meets_the_oracle() {
    assert!(replay("typed_resource", typed::typed_resource) > 0);
}

/// The harness's checks can fail: a token genuinely signed by the fuzz key for the
/// right audience verifies, so `jwt` (which asserts nothing verifies) panics on it.
#[test]
fn the_jwt_target_would_notice_a_verifying_token() {
    // iat now: a token issued in 1970 would be refused for its lifetime (exp - iat).
    let now = jsonwebtoken::get_current_timestamp();
    let claims = serde_json::json!({"iss": harness::ISS, "aud": harness::AUD,
        "exp": now + 300, "iat": now, "jti": "regression-check"});
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("ec-256".into());
    let key = jsonwebtoken::EncodingKey::from_ec_pem(include_bytes!("../fuzz/keys/ec-256.pem"))
        .expect("fuzz key");
    let token = jsonwebtoken::encode(&header, &claims, &key).expect("sign");
    assert!(std::panic::catch_unwind(|| harness::jwt(token.as_bytes())).is_err());
}

/// Found by the `feedback` target: a number in a kept override reason changed its last
/// digit between the stored entry and its export (serde_json parses floats exactly
/// only with `float_roundtrip`, now enabled in Cargo.toml).
#[test]
fn a_long_number_in_an_override_reason_round_trips() {
    let body = serde_json::json!({"feedback": [{"card": "5487d37b-283f-44a0-93ea-547cebab93ed",
        "outcome": "overridden", "outcomeTimestamp": "2018-12-11T00:00:00+05:30",
        "overrideReason": {"reason": {"code": "c"}, "userComment": "x"}}]})
    .to_string()
    .replace(
        r#"{"code":"c"}"#,
        r#"{"code":"c","n":66666666668669551615.0333E33}"#,
    );
    assert!(body.contains("E33"));
    harness::feedback(body.as_bytes());
}
