//! Shared state on a real PostgreSQL (started by the test, see `pg_support`): the storage
//! contract on both stores, three replicas of the real binary on one database (a token
//! replayed to another replica is refused, feedback is stored once and seen by all), and
//! a database outage that shows in `/healthz/store` while hook calls still answer.

mod common;
mod pg_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::jwt::{self, KeyPair, PUBLIC_URL};
use common::*;
use dvt_cds::cds_hooks::parse_feedback;
use dvt_cds::store::{Claim, PgSettings, ReplayLedger, Store, StoreConfig, StoreKind};
use pg_support::Postgres;
use serde_json::{Value, json};

fn settings(url: &str) -> PgSettings {
    PgSettings {
        url: url.to_string(),
        pool_size: 8,
        connect_timeout: Duration::from_secs(2),
        statement_timeout: Duration::from_secs(5),
        replay_timeout: Duration::from_millis(500),
    }
}

fn feedback_body(card: &str, outcome: &str) -> Value {
    json!({"feedback": [{"card": card, "outcome": outcome,
        "outcomeTimestamp": "2026-12-01T12:00:00Z"}]})
}

/// The same contract on both stores: a duplicate is stored once per service, export
/// returns what was committed, oldest first, and the store says it takes writes.
#[tokio::test]
async fn the_storage_contract_holds_on_sqlite_and_postgres() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let configs = [
        StoreConfig::Sqlite(dir.path().join("f.sqlite3")),
        StoreConfig::Postgres(settings(&pg.create_database("contract"))),
    ];
    for config in configs {
        let opened = config.open().await.unwrap();
        let store = opened.store;
        let kind = store.kind();
        store
            .check()
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        let card_a = "f6b95768-b1c8-40dc-8385-bf3504b82ffb";
        let card_b = "0c5d3f5e-3c55-4a57-9f8a-2b1c1b7f3e11";
        let a = parse_feedback(&feedback_body(card_a, "overridden")).unwrap();
        let b = parse_feedback(&feedback_body(card_b, "accepted")).unwrap();
        assert_eq!(
            store.record("dvt-patient-view", a.clone()).await.unwrap(),
            1,
            "{kind:?}"
        );
        assert_eq!(
            store.record("dvt-patient-view", a.clone()).await.unwrap(),
            0,
            "{kind:?}"
        );
        assert_eq!(
            store.record("dvt-order-sign", a).await.unwrap(),
            1,
            "{kind:?}"
        );
        assert_eq!(
            store.record("dvt-order-sign", b).await.unwrap(),
            1,
            "{kind:?}"
        );
        let out = store.export().await.unwrap();
        let seen: Vec<(String, String)> = out
            .iter()
            .map(|f| {
                (
                    f.service_id.clone(),
                    f.entry["card"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("dvt-patient-view".to_string(), card_a.to_string()),
                ("dvt-order-sign".to_string(), card_a.to_string()),
                ("dvt-order-sign".to_string(), card_b.to_string()),
            ],
            "{kind:?}"
        );
        for f in &out {
            assert!(
                chrono::DateTime::parse_from_rfc3339(&f.received_at).is_ok(),
                "{kind:?}: {}",
                f.received_at
            );
        }
        match kind {
            StoreKind::Sqlite => assert!(opened.ledger.is_none(), "SQLite keeps replay in memory"),
            StoreKind::Postgres => {
                let ledger = opened.ledger.expect("PostgreSQL has a replay ledger");
                claims_race_with_one_winner(ledger).await;
            }
        }
    }
}

/// 32 replicas' worth of concurrent claims of one token: exactly one wins.
async fn claims_race_with_one_winner(ledger: Arc<dyn ReplayLedger>) {
    let dead_after = u64::try_from(jwt::now() + 300).unwrap();
    let claims = (0..32).map(|_| ledger.claim("https://ehr.test", "same-jti", dead_after));
    let results = futures::future::join_all(claims).await;
    let new = results
        .iter()
        .filter(|r| matches!(r, Ok(Claim::New)))
        .count();
    let replayed = results
        .iter()
        .filter(|r| matches!(r, Ok(Claim::Replayed)))
        .count();
    assert_eq!((new, replayed), (1, 31), "{results:?}");
    // Another issuer's token with the same jti is another token.
    let other = ledger
        .claim("https://other.test", "same-jti", dead_after)
        .await;
    assert!(matches!(other, Ok(Claim::New)), "{other:?}");
}

struct Replicas {
    apps: Vec<TestApp>,
    key: KeyPair,
}

/// `n` authenticated replicas (issuer `jwt::ISS`, one ES384 key) on `store`.
fn replicas(n: usize, store: &str) -> Replicas {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let key = jwt::es384("ehr-es384");
    let config = jwt::write_auth_config(dir.path(), &[&key], &[]);
    let args = [
        "--auth-config",
        config.to_str().unwrap(),
        "--public-url",
        PUBLIC_URL,
    ];
    let apps = (0..n)
        .map(|_| TestApp::spawn_on_store(dir.clone(), store, &args))
        .collect();
    Replicas { apps, key }
}

impl Replicas {
    fn token(&self, route: &str) -> String {
        jwt::sign(&self.key, &jwt::claims(route), None)
    }

    async fn hook_call(&self, replica: usize, token: &str) -> (u16, Value) {
        let route = "/cds-services/dvt-patient-view";
        let (status, _, body) = post_json(
            &self.apps[replica].url(route),
            &hook_request("patient-view"),
            Some(token),
        )
        .await;
        (status, body)
    }

    async fn feedback(&self, replica: usize, body: &Value) -> u16 {
        let route = "/cds-services/dvt-patient-view/feedback";
        let token = self.token(route);
        post_json(&self.apps[replica].url(route), body, Some(&token))
            .await
            .0
    }
}

fn export(store: &str) -> Vec<Value> {
    let out = run(&["feedback", "export", "--store", store]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn three_replicas_share_the_replay_ledger_and_feedback() {
    let pg = Postgres::start();
    let store = pg.create_database("replicas");
    let r = replicas(3, &store);

    // A token used on one replica is refused by each of the others.
    let token = r.token("/cds-services/dvt-patient-view");
    let (status, body) = r.hook_call(0, &token).await;
    assert_eq!(status, 200, "{body}\n{}", r.apps[0].logs());
    for replica in [1, 2, 0] {
        let (status, body) = r.hook_call(replica, &token).await;
        assert_eq!(status, 401, "replica {replica}: {body}");
    }
    let logs = r.apps[1].wait_for_log("jti replayed");
    assert!(logs.contains("check=jti replayed"), "{logs}");

    // Feedback sent to one replica, then the same entry to the others (an EHR
    // retrying elsewhere): stored once, and every replica's database holds it.
    let card = "f6b95768-b1c8-40dc-8385-bf3504b82ffb";
    let body = feedback_body(card, "overridden");
    for replica in 0..3 {
        assert_eq!(r.feedback(replica, &body).await, 200, "replica {replica}");
    }
    let stored = export(&store);
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0]["card"], card);
    assert_eq!(stored[0]["serviceId"], "dvt-patient-view");
}

/// Poll `url` until its status is `want` (or panic after `within`).
async fn wait_status(url: &str, want: u16, within: Duration) -> Value {
    let until = Instant::now() + within;
    loop {
        let (status, _, body) = get(url, None).await;
        if status == want {
            return body;
        }
        assert!(
            Instant::now() < until,
            "{url}: {status} (waiting for {want}): {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn store_up_metric(app: &TestApp) -> String {
    let (_, _, body) = get(&app.url("/metrics"), None).await;
    let text = body.as_str().unwrap_or_default().to_string();
    text.lines()
        .find(|l| l.starts_with("dvt_cds_store_up{"))
        .unwrap_or_else(|| panic!("no dvt_cds_store_up in {text}"))
        .to_string()
}

#[tokio::test]
async fn a_database_outage_shows_in_healthz_store_while_hook_calls_answer() {
    let mut pg = Postgres::start();
    let store = pg.create_database("outage");
    let r = replicas(2, &store);
    let health = r.apps[0].url("/healthz/store");
    let body = wait_status(&health, 200, Duration::from_secs(10)).await;
    assert_eq!(body, json!({"status": "ok", "store": "postgres"}));
    assert_eq!(
        store_up_metric(&r.apps[0]).await,
        "dvt_cds_store_up{store=\"postgres\"} 1"
    );

    pg.stop();
    let body = wait_status(&health, 503, Duration::from_secs(10)).await;
    let text = assert_operation_outcome(&body);
    assert!(text.contains("postgres store"), "{text}");
    assert_eq!(
        store_up_metric(&r.apps[0]).await,
        "dvt_cds_store_up{store=\"postgres\"} 0"
    );
    // The process stays ready, and hook calls answer without waiting for the database.
    assert_eq!(get(&r.apps[0].url("/readyz"), None).await.0, 200);
    for replica in 0..2 {
        let token = r.token("/cds-services/dvt-patient-view");
        let started = Instant::now();
        let (status, body) = r.hook_call(replica, &token).await;
        assert_eq!(status, 200, "replica {replica}: {body}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "a hook call took {:?} during the outage",
            started.elapsed()
        );
        // This replica's own cache still refuses its own replays.
        assert_eq!(r.hook_call(replica, &token).await.0, 401);
    }
    // Feedback cannot be made durable: an error the EHR can retry, not a lost entry.
    let body = feedback_body("0c5d3f5e-3c55-4a57-9f8a-2b1c1b7f3e11", "accepted");
    let status = r.feedback(0, &body).await;
    assert!(status >= 500, "feedback during the outage: {status}");

    pg.start_server();
    wait_status(&health, 200, Duration::from_secs(15)).await;
    wait_status(
        &r.apps[1].url("/healthz/store"),
        200,
        Duration::from_secs(15),
    )
    .await;
    // Shared again: a token used on one replica is refused by the other.
    let token = r.token("/cds-services/dvt-patient-view");
    assert_eq!(r.hook_call(0, &token).await.0, 200);
    assert_eq!(r.hook_call(1, &token).await.0, 401);
    assert_eq!(r.feedback(1, &body).await, 200);
    assert_eq!(export(&store).len(), 1);
}

#[test]
fn store_and_feedback_db_together_are_refused() {
    let out = run(&[
        "serve",
        "--dev",
        "--store",
        "postgres://u:secret@127.0.0.1:1/db",
        "--feedback-db",
        "f.sqlite3",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--store") && err.contains("--feedback-db"),
        "{err}"
    );
    assert!(!err.contains("secret"), "the password is printed: {err}");

    // The same through the environment.
    let out = command()
        .args(["serve", "--dev", "--feedback-db", "f.sqlite3"])
        .env("DVT_CDS_STORE", "postgres://u:secret@127.0.0.1:1/db")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--store") && err.contains("--feedback-db"),
        "{err}"
    );
}
