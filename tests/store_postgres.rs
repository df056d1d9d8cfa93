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
use dvt_cds::store::report::{ReportFormat, render, summarise};
use dvt_cds::store::{CardShown, Claim, PgSettings, ReplayLedger, StoreConfig, StoreKind};
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
    json!({"feedback": [feedback_entry(card, outcome)]})
}

/// An entry; an `accepted` one names the suggestion taken (the spec requires it).
fn feedback_entry(card: &str, outcome: &str) -> Value {
    let mut e = json!({"card": card, "outcome": outcome,
        "outcomeTimestamp": "2026-12-01T12:00:00Z"});
    if outcome == "accepted" {
        e["acceptedSuggestions"] = json!([{"id": "1f0c8e9a-5a55-4b64-9e3c-8a6c2b1d0e77"}]);
    }
    e
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

const CATEGORIES: [(&str, &str); 3] = [
    ("dvt-likely", "warning"),
    ("dvt-evaluation", "info"),
    ("pe-warning", "critical"),
];
const REASONS: [&str; 3] = [
    "already-assessed",
    "alternative-diagnosis",
    "patient-declined",
];

/// The report's figures on both stores equal an independent count over the same inputs:
/// 60 cards over three categories, shown 10 s apart (some outside the period), with
/// feedback on most of them (some twice, one about a card never logged).
#[tokio::test]
async fn the_report_equals_an_independent_count_on_both_stores() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().unwrap();
    let configs = [
        StoreConfig::Sqlite(dir.path().join("f.sqlite3")),
        StoreConfig::Postgres(settings(&pg.create_database("report"))),
    ];
    let start = chrono::Utc::now() - chrono::Duration::hours(1);
    let cards: Vec<CardShown> = (0..60u32)
        .map(|i| {
            let (category, indicator) = CATEGORIES[i as usize % 3];
            CardShown {
                card: uuid::Uuid::from_u128(0xdead_0000 + u128::from(i)),
                service_id: "dvt-encounter-start".into(),
                hook: "encounter-start".into(),
                category: category.into(),
                indicator: indicator.into(),
                mapping_version: "2.0.0".into(),
                issuer: Some("https://ehr.test".into()),
                shown_at: start + chrono::Duration::seconds(10 * i64::from(i)),
                patient_hash: None,
            }
        })
        .collect();
    // The period: cards 5..=54.
    let since = start + chrono::Duration::seconds(50);
    let until = start + chrono::Duration::seconds(550);
    // Card i: i % 4 == 0 no feedback; 1 accepted; 2 overridden with a reason; 3
    // overridden without one, then again with a reason.
    let mut bodies = Vec::new();
    for (i, c) in cards.iter().enumerate() {
        let entry = |outcome: &str, reason: Option<&str>, ts: &str| {
            let mut e = feedback_entry(&c.card.to_string(), outcome);
            e["outcomeTimestamp"] = json!(ts);
            if let Some(r) = reason {
                e["overrideReason"] = json!({"reason": {"code": r,
                    "system": "https://dvt-cds.example.org/fhir/CodeSystem/override-reason"}});
            }
            e
        };
        match i % 4 {
            0 => {}
            1 => bodies.push(entry("accepted", None, "2026-12-01T12:00:00Z")),
            2 => bodies.push(entry(
                "overridden",
                Some(REASONS[i % 3]),
                "2026-12-01T12:00:00Z",
            )),
            _ => {
                bodies.push(entry("overridden", None, "2026-12-01T12:00:00Z"));
                bodies.push(entry(
                    "overridden",
                    Some(REASONS[i % 3]),
                    "2026-12-01T12:00:01Z",
                ));
            }
        }
    }
    bodies.push(feedback_entry(
        &uuid::Uuid::from_u128(7).to_string(),
        "accepted",
    ));

    for config in configs {
        let store = config.open().await.unwrap().store;
        let kind = store.kind();
        assert_eq!(
            store.log_cards(cards.clone()).await.unwrap(),
            60,
            "{kind:?}"
        );
        // Logged once per card uuid.
        assert_eq!(
            store.log_cards(cards[..10].to_vec()).await.unwrap(),
            0,
            "{kind:?}"
        );
        for b in &bodies {
            let entries = parse_feedback(&json!({"feedback": [b]})).unwrap();
            store.record("dvt-encounter-start", entries).await.unwrap();
        }
        let rows = store.report_rows(since, until).await.unwrap();
        let report = summarise(&rows.cards, &rows.feedback);
        let stored = store.export().await.unwrap();
        let expected = independent_count(&cards, since, until, &stored);
        let mut got: Vec<Value> = report
            .iter()
            .map(|r| serde_json::to_value(r).unwrap())
            .collect();
        // PostgreSQL keeps microseconds, export prints milliseconds: medians agree to
        // within 2 ms; every other figure exactly.
        let mut expected = expected;
        for (g, e) in got.iter_mut().zip(expected.iter_mut()) {
            let key = "median_seconds_to_feedback";
            let (gm, em) = (g[key].as_f64().unwrap(), e[key].as_f64().unwrap());
            assert!((gm - em).abs() < 0.002, "{kind:?}: median {gm} vs {em}");
            g[key] = Value::Null;
            e[key] = Value::Null;
        }
        assert_eq!(got, expected, "{kind:?}");
        // Every format renders every row.
        for format in [ReportFormat::Text, ReportFormat::Csv, ReportFormat::Json] {
            let text = render(&report, format);
            for (category, _) in CATEGORIES {
                assert!(text.contains(category), "{kind:?} {format:?}: {text}");
            }
        }
    }
}

/// The report's figures counted another way: straight from the cards sent and the
/// feedback as the store exported it, one category at a time.
fn independent_count(
    cards: &[CardShown],
    since: chrono::DateTime<chrono::Utc>,
    until: chrono::DateTime<chrono::Utc>,
    stored: &[dvt_cds::store::StoredFeedback],
) -> Vec<Value> {
    let mut out = Vec::new();
    let mut categories: Vec<(&str, &str)> = CATEGORIES.to_vec();
    categories.sort();
    for (category, indicator) in categories {
        let shown: Vec<&CardShown> = cards
            .iter()
            .filter(|c| c.category == category && c.shown_at >= since && c.shown_at < until)
            .collect();
        let about = |c: &CardShown| -> Vec<&dvt_cds::store::StoredFeedback> {
            stored
                .iter()
                .filter(|f| f.entry["card"] == c.card.to_string())
                .collect()
        };
        let with = |outcome: &str| {
            shown
                .iter()
                .filter(|c| about(c).iter().any(|f| f.entry["outcome"] == outcome))
                .count()
        };
        let mut reasons = serde_json::Map::new();
        let mut delays = Vec::new();
        for c in &shown {
            let entries = about(c);
            for f in entries
                .iter()
                .filter(|f| f.entry["outcome"] == "overridden")
            {
                let code = f.entry["overrideReason"]["reason"]["code"]
                    .as_str()
                    .unwrap_or("(none)");
                let n = reasons.get(code).and_then(Value::as_u64).unwrap_or(0);
                reasons.insert(code.to_string(), json!(n + 1));
            }
            let first = entries
                .iter()
                .map(|f| chrono::DateTime::parse_from_rfc3339(&f.received_at).unwrap())
                .min();
            if let Some(first) = first {
                delays.push(
                    (first.timestamp_millis() - c.shown_at.timestamp_millis()) as f64 / 1000.0,
                );
            }
        }
        delays.sort_by(f64::total_cmp);
        let median = match delays.len() {
            0 => Value::Null,
            n if n % 2 == 1 => json!(delays[n / 2]),
            n => json!((delays[n / 2 - 1] + delays[n / 2]) / 2.0),
        };
        out.push(json!({
            "category": category,
            "indicator": indicator,
            "shown": shown.len(),
            "accepted": with("accepted"),
            "overridden": with("overridden"),
            "override_reasons": reasons,
            "median_seconds_to_feedback": median,
        }));
    }
    out
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

    // A card shown by one replica (twice: the EHR retried on another), overridden
    // through a third: `report` against the shared database counts it once.
    let request: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/cds-hooks/examples/dvt-likely.request.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let route = "/cds-services/dvt-encounter-start";
    let mut card = Value::Null;
    for replica in [0, 1] {
        let (status, _, body) =
            post_json(&r.apps[replica].url(route), &request, Some(&r.token(route))).await;
        assert_eq!(status, 200, "{body}");
        card = body["cards"][0].clone();
    }
    let uuid = &card["uuid"];
    let route = "/cds-services/dvt-encounter-start/feedback";
    let feedback = json!({"feedback": [{"card": uuid, "outcome": "overridden",
        "overrideReason": {"reason": {"code": "already-assessed",
            "system": "https://dvt-cds.example.org/fhir/CodeSystem/override-reason"}},
        "outcomeTimestamp": "2026-12-01T12:00:00Z"}]});
    let (status, _, _) = post_json(&r.apps[2].url(route), &feedback, Some(&r.token(route))).await;
    assert_eq!(status, 200);
    let since = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let until = Instant::now() + Duration::from_secs(10);
    let report = loop {
        // The card log is written from a queue: wait for it.
        let out = run(&[
            "report", "--since", &since, "--format", "json", "--store", &store,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        if report.as_array().is_some_and(|a| !a.is_empty()) || Instant::now() > until {
            break report;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(report.as_array().unwrap().len(), 1, "{report}");
    let row = &report[0];
    assert_eq!(
        row["category"], card["extension"]["dvt-assessment"]["category"],
        "{report}"
    );
    assert_eq!(row["indicator"], card["indicator"], "{report}");
    assert_eq!(
        (row["shown"].as_u64(), row["overridden"].as_u64()),
        (Some(1), Some(1)),
        "{report}"
    );
    assert_eq!(
        row["override_reasons"],
        json!({"already-assessed": 1}),
        "{report}"
    );
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

/// The value of an unlabelled metric.
async fn metric(app: &TestApp, name: &str) -> String {
    let (_, _, body) = get(&app.url("/metrics"), None).await;
    let text = body.as_str().unwrap_or_default().to_string();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ').map(str::to_string))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
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
    assert!(text.contains("cannot be written"), "{text}");
    let logs = r.apps[0].wait_for_log("postgres store: PostgreSQL unreachable");
    assert!(
        logs.contains("postgres store: PostgreSQL unreachable"),
        "{logs}"
    );
    assert_eq!(
        store_up_metric(&r.apps[0]).await,
        "dvt_cds_store_up{store=\"postgres\"} 0"
    );
    // The process stays ready, and hook calls answer without waiting for the database.
    assert_eq!(get(&r.apps[0].url("/readyz"), None).await.0, 200);
    let local_only = "dvt_cds_replay_local_only_total";
    assert_eq!(metric(&r.apps[0], local_only).await, "0");
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
    // The one token accepted on replica 0's cache alone is counted (the replay refused
    // by that cache is not).
    assert_eq!(metric(&r.apps[0], local_only).await, "1");
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

/// `kill -9` of a replica under a feedback load loses no acknowledged entry: every entry
/// answered `200` (by the killed replica or the other one) is in the database. Prints
/// the acknowledged writes per second (`--nocapture`).
#[tokio::test]
async fn kill_9_of_a_replica_under_feedback_load_loses_no_acknowledged_entry() {
    let pg = Postgres::start();
    let store = pg.create_database("kill");
    let mut r = replicas(2, &store);
    let route = "/cds-services/dvt-patient-view/feedback";
    let urls: Vec<String> = r.apps.iter().map(|a| a.url(route)).collect();
    let tokens: Vec<String> = (0..3000).map(|_| r.token(route)).collect();
    let tokens = Arc::new(tokens);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    // 8 clients, half on each replica; the first replica is killed mid-load.
    let clients = (0..8).map(|client| {
        let (urls, tokens, next) = (urls.clone(), tokens.clone(), next.clone());
        tokio::spawn(async move {
            let mut acked = Vec::new();
            // The longest a refused or cut-off call took: what a client retrying on the
            // other replica loses.
            let mut longest_failure = Duration::ZERO;
            let http = reqwest::Client::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= tokens.len() || started.elapsed() > Duration::from_secs(4) {
                    return (acked, longest_failure);
                }
                let sent_at = Instant::now();
                let card = uuid::Uuid::from_u128(0xfeed_0000 + i as u128).to_string();
                let body = feedback_body(&card, "accepted");
                let url = &urls[client % 2];
                let sent = http
                    .post(url)
                    .bearer_auth(&tokens[i])
                    .json(&body)
                    .send()
                    .await;
                // Refused or cut off by the kill: not acknowledged, so no promise.
                if let Ok(resp) = sent
                    && resp.status() == 200
                {
                    acked.push(card);
                } else {
                    longest_failure = longest_failure.max(sent_at.elapsed());
                }
            }
        })
    });
    let clients: Vec<_> = clients.collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    r.apps[0].kill();
    let mut acked = Vec::new();
    let mut longest_failure = Duration::ZERO;
    for c in clients {
        let (a, longest) = c.await.unwrap();
        acked.extend(a);
        longest_failure = longest_failure.max(longest);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let stored: std::collections::HashSet<String> = export(&store)
        .into_iter()
        .map(|e| e["card"].as_str().unwrap().to_string())
        .collect();
    let lost: Vec<&String> = acked.iter().filter(|c| !stored.contains(*c)).collect();
    assert!(lost.is_empty(), "acknowledged but not stored: {lost:?}");
    assert!(acked.len() > 50, "only {} acknowledged", acked.len());
    println!(
        "feedback on PostgreSQL: {} acknowledged in {elapsed:.1} s ({:.0}/s, 8 clients, 2 replicas, one killed at 1.5 s)",
        acked.len(),
        acked.len() as f64 / elapsed
    );
    println!(
        "a call refused or cut off by the kill took at most {longest_failure:?} before the client could retry elsewhere"
    );
}
