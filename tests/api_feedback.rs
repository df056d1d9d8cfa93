//! Black-box tests of `POST /cds-services/{id}/feedback`: validation, durable storage,
//! de-duplication, and `feedback export`.

mod common;

use std::sync::Arc;

use common::*;
use serde_json::{Value, json};

fn accepted(card: &str) -> Value {
    json!({"card": card, "outcome": "accepted",
        "acceptedSuggestions": [{"id": "e56e1945-20b3-4393-8503-a1a20fd73152"}],
        "outcomeTimestamp": "2021-12-11T10:05:31Z"})
}

fn overridden(card: &str) -> Value {
    json!({"card": card, "outcome": "overridden",
        "overrideReason": {"reason": {"code": "d7ecf885", "system": "https://example.com/override"},
            "userComment": "Already scanned today."},
        "outcomeTimestamp": "2020-12-11T00:00:00.52Z"})
}

fn export(app: &TestApp) -> Vec<Value> {
    let db = app.dir.path().join("feedback.sqlite3");
    let out = run(&["feedback", "export", "--feedback-db", db.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

#[tokio::test]
async fn accepted_and_overridden_feedback_is_stored_and_exported() {
    let app = TestApp::dev();
    let card_a = uuid::Uuid::new_v4().to_string();
    let card_b = uuid::Uuid::new_v4().to_string();
    let body = json!({"feedback": [accepted(&card_a), overridden(&card_b)]});
    let (status, _, resp) = post_json(
        &app.url("/cds-services/dvt-patient-view/feedback"),
        &body,
        None,
    )
    .await;
    assert_eq!(status, 200, "{resp}");
    let rows = export(&app);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0]["card"], card_a);
    assert_eq!(rows[0]["serviceId"], "dvt-patient-view");
    assert_eq!(
        rows[0]["acceptedSuggestions"][0]["id"],
        "e56e1945-20b3-4393-8503-a1a20fd73152"
    );
    assert_eq!(
        rows[1]["overrideReason"]["userComment"],
        "Already scanned today."
    );
    assert_eq!(rows[1]["outcomeTimestamp"], "2020-12-11T00:00:00.52Z");
    let metrics = client()
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "dvt_cds_feedback_total{service=\"dvt-patient-view\",outcome=\"accepted\"} 1"
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_duplicate_submission_is_stored_once() {
    let app = TestApp::dev();
    let card = uuid::Uuid::new_v4().to_string();
    let body = json!({"feedback": [overridden(&card)]});
    for _ in 0..3 {
        let (status, _, _) = post_json(
            &app.url("/cds-services/dvt-order-sign/feedback"),
            &body,
            None,
        )
        .await;
        assert_eq!(status, 200);
    }
    // A different outcome for the same card is a different event.
    let body = json!({"feedback": [accepted(&card)]});
    assert_eq!(
        post_json(
            &app.url("/cds-services/dvt-order-sign/feedback"),
            &body,
            None
        )
        .await
        .0,
        200
    );
    let rows = export(&app);
    assert_eq!(
        rows.iter().filter(|r| r["card"] == card).count(),
        2,
        "{rows:?}"
    );
}

#[tokio::test]
async fn each_invalid_feedback_entry_is_400_naming_the_field() {
    let app = TestApp::dev();
    let card = uuid::Uuid::new_v4().to_string();
    let cases: Vec<(&str, Value, &str)> = vec![
        ("no feedback array", json!({"cards": []}), "feedback"),
        ("empty feedback array", json!({"feedback": []}), "feedback"),
        (
            "card not a uuid",
            json!({"feedback": [{"card": "card-1", "outcome": "overridden", "outcomeTimestamp": "2020-12-11T00:00:00Z"}]}),
            "feedback[0].card",
        ),
        (
            "card missing",
            json!({"feedback": [{"outcome": "overridden", "outcomeTimestamp": "2020-12-11T00:00:00Z"}]}),
            "feedback[0].card",
        ),
        (
            "outcome not allowed",
            json!({"feedback": [{"card": card, "outcome": "ignored", "outcomeTimestamp": "2020-12-11T00:00:00Z"}]}),
            "feedback[0].outcome",
        ),
        (
            "accepted without acceptedSuggestions",
            json!({"feedback": [{"card": card, "outcome": "accepted", "outcomeTimestamp": "2020-12-11T00:00:00Z"}]}),
            "feedback[0].acceptedSuggestions",
        ),
        (
            "accepted suggestion id not a uuid",
            json!({"feedback": [{"card": card, "outcome": "accepted", "acceptedSuggestions": [{"id": 7}], "outcomeTimestamp": "2020-12-11T00:00:00Z"}]}),
            "feedback[0].acceptedSuggestions[0].id",
        ),
        (
            "overrideReason empty",
            json!({"feedback": [{"card": card, "outcome": "overridden", "overrideReason": {}, "outcomeTimestamp": "2020-12-11T00:00:00Z"}]}),
            "feedback[0].overrideReason",
        ),
        (
            "overrideReason.reason not a Coding",
            json!({"feedback": [{"card": card, "outcome": "overridden", "overrideReason": {"reason": "because"}, "outcomeTimestamp": "2020-12-11T00:00:00Z"}]}),
            "feedback[0].overrideReason.reason",
        ),
        (
            "outcomeTimestamp not RFC 3339",
            json!({"feedback": [{"card": card, "outcome": "overridden", "outcomeTimestamp": "11/12/2020"}]}),
            "feedback[0].outcomeTimestamp",
        ),
        (
            "outcomeTimestamp missing",
            json!({"feedback": [{"card": card, "outcome": "overridden"}]}),
            "feedback[0].outcomeTimestamp",
        ),
        (
            "second entry bad",
            json!({"feedback": [overridden(&card), {"card": card, "outcome": "nope", "outcomeTimestamp": "2020-12-11T00:00:00Z"}]}),
            "feedback[1].outcome",
        ),
    ];
    for (what, body, path) in cases {
        let (status, _, resp) = post_json(
            &app.url("/cds-services/dvt-patient-view/feedback"),
            &body,
            None,
        )
        .await;
        assert_eq!(status, 400, "{what}: {resp}");
        let text = assert_operation_outcome(&resp);
        assert!(
            resp["issue"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["expression"] == json!([path])),
            "{what}: no issue at {path}: {text}"
        );
    }
    // Nothing of a rejected body is stored, not even its valid entries.
    let db = app.dir.path().join("feedback.sqlite3");
    let out = run(&["feedback", "export", "--feedback-db", db.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test]
async fn feedback_non_json_is_415_and_too_large_is_413() {
    let app = TestApp::spawn(&["--dev", "--max-body", "1KiB"]);
    let req = client()
        .post(app.url("/cds-services/dvt-patient-view/feedback"))
        .header("content-type", "text/plain")
        .body("x");
    let (status, _, body) = send(req).await;
    assert_eq!(status, 415);
    assert_operation_outcome(&body);
    let card = uuid::Uuid::new_v4().to_string();
    let mut e = overridden(&card);
    e["overrideReason"]["userComment"] = json!("z".repeat(2000));
    let (status, _, body) = post_json(
        &app.url("/cds-services/dvt-patient-view/feedback"),
        &json!({"feedback": [e]}),
        None,
    )
    .await;
    assert_eq!(status, 413);
    assert_operation_outcome(&body);
}

/// The write is committed before the 200: SIGKILL right after it loses nothing.
#[tokio::test]
async fn feedback_survives_sigkill_right_after_the_200() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut app = TestApp::spawn_in(dir.clone(), &["--dev"]);
    let cards: Vec<String> = (0..5).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    for card in &cards {
        let body = json!({"feedback": [overridden(card)]});
        let (status, _, _) = post_json(
            &app.url("/cds-services/dvt-encounter-start/feedback"),
            &body,
            None,
        )
        .await;
        assert_eq!(status, 200);
    }
    app.kill();
    drop(app);
    let app = TestApp::spawn_in(dir, &["--dev"]);
    let rows = export(&app);
    for card in &cards {
        assert!(
            rows.iter()
                .any(|r| r["card"] == *card && r["serviceId"] == "dvt-encounter-start"),
            "{card} lost: {rows:?}"
        );
    }
}

#[test]
fn export_of_a_missing_database_fails_with_a_message() {
    let out = run(&[
        "feedback",
        "export",
        "--feedback-db",
        "/nonexistent/dir/f.sqlite3",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/dir/f.sqlite3"));
}
