//! The shared store: PostgreSQL through a `deadpool-postgres` pool (`--store
//! postgres://...`), for replicas.
//!
//! A database outage must not become a service outage: a background monitor asks the
//! database every [`HEALTH_INTERVAL`]; while it does not answer, the replay ledger says so
//! at once (the caller falls back to its own cache) instead of each call waiting for a
//! connection. Feedback writes still try (and fail with an error the EHR can retry).

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use futures::future::BoxFuture;
use tokio_postgres::NoTls;

use super::report::ShownCard;
use super::{
    CardShown, Claim, ReplayLedger, ReportRows, Store, StoreError, StoreKind, StoredFeedback,
    card_feedback, dedup_key,
};
use crate::cds_hooks::FeedbackEntry;

/// How often the monitor asks the database whether it answers.
pub const HEALTH_INTERVAL: Duration = Duration::from_secs(1);
/// How often dead entries of the replay ledger are deleted.
pub const REPLAY_CLEANUP_INTERVAL: Duration = Duration::from_secs(60);

/// `--store` and the `--store-*` flags.
#[derive(Clone)]
pub struct PgSettings {
    /// `postgres://user:password@host:port/db?...`: holds a secret, never logged (see
    /// [`PgSettings::redacted`]).
    pub url: String,
    /// Most connections this process holds (`--store-pool-size`).
    pub pool_size: usize,
    /// Longest wait to connect, or for a free pooled connection (`--store-connect-timeout`).
    pub connect_timeout: Duration,
    /// The server cancels a statement running longer (`--store-statement-timeout`).
    pub statement_timeout: Duration,
    /// Longest a token check waits for the ledger before falling back to this process's
    /// cache (`--store-replay-timeout`): it is on every authenticated call's path.
    pub replay_timeout: Duration,
}

impl std::fmt::Debug for PgSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgSettings")
            .field("url", &self.redacted())
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("replay_timeout", &self.replay_timeout)
            .finish()
    }
}

impl PgSettings {
    /// The URL without user info or query (which may hold a password), for logs.
    pub fn redacted(&self) -> String {
        match url::Url::parse(&self.url) {
            Ok(u) => format!(
                "{}://{}{}{}",
                u.scheme(),
                u.host_str().unwrap_or(""),
                u.port().map(|p| format!(":{p}")).unwrap_or_default(),
                u.path()
            ),
            Err(_) => "(unparsable URL)".into(),
        }
    }

    /// The connection settings; errors never quote the URL.
    fn pg_config(&self) -> Result<tokio_postgres::Config, String> {
        if !(self.url.starts_with("postgres://") || self.url.starts_with("postgresql://")) {
            return Err("expected a postgres://user:password@host:port/database URL".into());
        }
        let mut config = tokio_postgres::Config::from_str(&self.url)
            .map_err(|e| format!("{} is not a valid PostgreSQL URL: {e}", self.redacted()))?;
        config
            .connect_timeout(self.connect_timeout)
            .application_name("dvt-cds")
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30))
            .options(format!(
                "-c statement_timeout={}",
                self.statement_timeout.as_millis().max(1)
            ));
        Ok(config)
    }
}

/// Versioned migrations, applied in order at startup under an advisory lock (replicas
/// starting together apply each once), each recorded in `schema_migrations`. Never edit
/// a shipped entry: add one.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "feedback and the token replay ledger",
        "CREATE TABLE feedback (
         seq BIGSERIAL UNIQUE,
         dedup_key TEXT PRIMARY KEY,
         service_id TEXT NOT NULL,
         card TEXT NOT NULL,
         outcome TEXT NOT NULL,
         outcome_timestamp TEXT NOT NULL,
         entry_json TEXT NOT NULL,
         received_at TIMESTAMPTZ NOT NULL DEFAULT now()
     );
     CREATE INDEX feedback_card ON feedback (card);
     CREATE TABLE token_replay (
         issuer TEXT NOT NULL,
         jti TEXT NOT NULL,
         dead_after BIGINT NOT NULL,
         PRIMARY KEY (issuer, jti)
     );
     CREATE INDEX token_replay_dead_after ON token_replay (dead_after);",
    ),
    (
        2,
        "card log",
        "CREATE TABLE card_log (
             card TEXT PRIMARY KEY,
             service_id TEXT NOT NULL,
             hook TEXT NOT NULL,
             category TEXT NOT NULL,
             indicator TEXT NOT NULL,
             mapping_version TEXT NOT NULL,
             issuer TEXT,
             shown_at TIMESTAMPTZ NOT NULL,
             patient_hash TEXT
         );
         CREATE INDEX card_log_shown_at ON card_log (shown_at);",
    ),
];

/// Any 64-bit number of our own: the advisory lock migrations run under.
const MIGRATION_LOCK: i64 = 0x6476_742d_6364_7301;

/// Cheap to clone: the futures the trait returns own a clone.
#[derive(Clone)]
pub struct PgStore(Arc<Inner>);

impl std::ops::Deref for PgStore {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// The pool and the monitor's verdict, shared by every clone of a [`PgStore`].
pub struct Inner {
    pool: Pool,
    settings: PgSettings,
    /// The monitor's verdict: does the database answer?
    up: AtomicBool,
    /// Why not, when it does not (the server's or the pool's message); `None` with `up`
    /// false: not checked yet.
    last_error: Mutex<Option<String>>,
    /// Set once the migrations are applied (retried by the monitor until then).
    migrated: tokio::sync::OnceCell<()>,
}

impl PgStore {
    /// Build the pool, try the migrations once (an unreachable database is logged and
    /// retried in the background, not fatal: replicas restarting during an outage still
    /// serve cards), and start the health monitor.
    pub async fn start(settings: PgSettings) -> Result<Self, String> {
        let config = settings.pg_config()?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(settings.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(settings.connect_timeout))
            .create_timeout(Some(settings.connect_timeout))
            .recycle_timeout(Some(settings.connect_timeout))
            .build()
            .map_err(|e| format!("connection pool: {e}"))?;
        let store = PgStore(Arc::new(Inner {
            pool,
            settings,
            up: AtomicBool::new(false),
            last_error: Mutex::new(None),
            migrated: tokio::sync::OnceCell::new(),
        }));
        store.probe().await;
        if let Some(e) = store.last_error() {
            tracing::warn!(error = %e, "PostgreSQL store unreachable at startup: serving anyway, retrying in the background");
        }
        tokio::spawn(monitor(Arc::downgrade(&store.0)));
        Ok(store)
    }
}

impl Inner {
    /// Is the database answering (the monitor's last verdict)?
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// One health check: migrations (until applied once), then `SELECT 1`; records the
    /// verdict and logs when it changes.
    async fn probe(&self) {
        let verdict = tokio::time::timeout(self.settings.connect_timeout * 2, async {
            self.ensure_schema().await?;
            let client = self.client().await?;
            client.simple_query("SELECT 1").await.map_err(pg_error)?;
            Ok::<(), StoreError>(())
        })
        .await
        .unwrap_or(Err(StoreError::Timeout(self.settings.connect_timeout * 2)));
        let was_up = self.up.swap(verdict.is_ok(), Ordering::Relaxed);
        let mut last = self.last_error.lock().unwrap_or_else(|p| p.into_inner());
        match verdict {
            Ok(()) => {
                if !was_up && last.is_some() {
                    tracing::info!(
                        "PostgreSQL store answers again: the replay ledger is shared across replicas"
                    );
                }
                *last = None;
            }
            Err(e) => {
                if was_up {
                    tracing::warn!(error = %e, "PostgreSQL store unreachable: tokens are checked against this replica's cache only until it returns");
                }
                *last = Some(e.to_string());
            }
        }
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::Unavailable(with_causes(&e)))
    }

    /// Apply the migrations once per process (retried on the next call after a failure).
    async fn ensure_schema(&self) -> Result<(), StoreError> {
        self.migrated
            .get_or_try_init(|| async {
                let mut client = self.client().await?;
                migrate(&mut client).await
            })
            .await
            .map(|_| ())
    }

    async fn record_async(
        &self,
        service_id: &str,
        entries: &[FeedbackEntry],
    ) -> Result<usize, StoreError> {
        self.ensure_schema().await?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let insert = tx
            .prepare_cached(
                "INSERT INTO feedback
                 (dedup_key, service_id, card, outcome, outcome_timestamp, entry_json)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (dedup_key) DO NOTHING",
            )
            .await
            .map_err(pg_error)?;
        let mut new = 0;
        for e in entries {
            let json = serde_json::to_string(e).expect("feedback entries serialise");
            let key = dedup_key(service_id, &json);
            let card = e.card.to_string();
            new += tx
                .execute(
                    &insert,
                    &[
                        &key,
                        &service_id,
                        &card,
                        &e.outcome.as_str(),
                        &e.outcome_timestamp,
                        &json,
                    ],
                )
                .await
                .map_err(pg_error)?;
        }
        // A synchronous commit (PostgreSQL's default): durable once this returns.
        tx.commit().await.map_err(pg_error)?;
        Ok(usize::try_from(new).unwrap_or(usize::MAX))
    }

    async fn export_async(&self) -> Result<Vec<StoredFeedback>, StoreError> {
        self.ensure_schema().await?;
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT service_id, received_at, entry_json FROM feedback ORDER BY seq",
                &[],
            )
            .await
            .map_err(pg_error)?;
        Ok(rows
            .iter()
            .map(|r| {
                let at: chrono::DateTime<chrono::Utc> = r.get(1);
                let json: String = r.get(2);
                StoredFeedback {
                    service_id: r.get(0),
                    received_at: at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    entry: serde_json::from_str(&json).unwrap_or(serde_json::Value::String(json)),
                }
            })
            .collect())
    }

    /// One statement per batch (`UNNEST` of one array per column): one round trip
    /// however many cards, so the queue drains faster than hook calls fill it.
    async fn log_cards_async(&self, cards: &[CardShown]) -> Result<usize, StoreError> {
        self.ensure_schema().await?;
        let client = self.client().await?;
        let insert = client
            .prepare_cached(
                "INSERT INTO card_log (card, service_id, hook, category, indicator,
                 mapping_version, issuer, shown_at, patient_hash)
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[],
                     $5::text[], $6::text[], $7::text[], $8::timestamptz[], $9::text[])
                 ON CONFLICT (card) DO NOTHING",
            )
            .await
            .map_err(pg_error)?;
        let column = |f: fn(&CardShown) -> String| cards.iter().map(f).collect::<Vec<_>>();
        let new = client
            .execute(
                &insert,
                &[
                    &column(|c| c.card.to_string()),
                    &column(|c| c.service_id.clone()),
                    &column(|c| c.hook.clone()),
                    &column(|c| c.category.clone()),
                    &column(|c| c.indicator.clone()),
                    &column(|c| c.mapping_version.clone()),
                    &cards.iter().map(|c| c.issuer.clone()).collect::<Vec<_>>(),
                    &cards.iter().map(|c| c.shown_at).collect::<Vec<_>>(),
                    &cards
                        .iter()
                        .map(|c| c.patient_hash.clone())
                        .collect::<Vec<_>>(),
                ],
            )
            .await
            .map_err(pg_error)?;
        Ok(usize::try_from(new).unwrap_or(usize::MAX))
    }

    async fn report_rows_async(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<ReportRows, StoreError> {
        self.ensure_schema().await?;
        let client = self.client().await?;
        let cards = client
            .query(
                "SELECT card, category, indicator, shown_at FROM card_log
                 WHERE shown_at >= $1 AND shown_at < $2",
                &[&since, &until],
            )
            .await
            .map_err(pg_error)?;
        let feedback = client
            .query(
                "SELECT f.card, f.outcome, f.entry_json, f.received_at FROM feedback f
                 JOIN card_log c ON c.card = f.card
                 WHERE c.shown_at >= $1 AND c.shown_at < $2",
                &[&since, &until],
            )
            .await
            .map_err(pg_error)?;
        Ok(ReportRows {
            cards: cards
                .iter()
                .filter_map(|r| {
                    Some(ShownCard {
                        card: r.get::<_, String>(0).parse().ok()?,
                        category: r.get(1),
                        indicator: r.get(2),
                        shown_at: r.get(3),
                    })
                })
                .collect(),
            feedback: feedback
                .iter()
                .filter_map(|r| {
                    let card: String = r.get(0);
                    let outcome: String = r.get(1);
                    let json: String = r.get(2);
                    card_feedback(&card, &outcome, &json, r.get(3))
                })
                .collect(),
        })
    }

    /// `INSERT ... ON CONFLICT DO NOTHING` on `(issuer, jti)`: of replicas racing with
    /// the same token, exactly one inserts the row. A row outlives its token until the
    /// next clean-up (at most [`REPLAY_CLEANUP_INTERVAL`]): a `jti` reused within that
    /// time is refused, which errs on the safe side.
    async fn claim_async(
        &self,
        iss: &str,
        jti: &str,
        dead_after: u64,
    ) -> Result<Claim, StoreError> {
        let client = self.client().await?;
        let insert = client
            .prepare_cached(
                "INSERT INTO token_replay (issuer, jti, dead_after) VALUES ($1, $2, $3)
                 ON CONFLICT (issuer, jti) DO NOTHING",
            )
            .await
            .map_err(pg_error)?;
        let dead_after = i64::try_from(dead_after).unwrap_or(i64::MAX);
        let inserted = client
            .execute(&insert, &[&iss, &jti, &dead_after])
            .await
            .map_err(pg_error)?;
        Ok(if inserted == 1 {
            Claim::New
        } else {
            Claim::Replayed
        })
    }

    /// Delete the ledger's dead entries.
    async fn clean_replay(&self) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let now = i64::try_from(jsonwebtoken::get_current_timestamp()).unwrap_or(i64::MAX);
        client
            .execute("DELETE FROM token_replay WHERE dead_after < $1", &[&now])
            .await
            .map_err(pg_error)
    }
}

/// The server's message (`tokio_postgres::Error`'s `Display` alone says only "db error").
fn pg_error(e: tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(db) => StoreError::Postgres(format!("{}: {}", db.code().code(), db.message())),
        None => StoreError::Postgres(with_causes(&e)),
    }
}

/// `e` and its causes ("error connecting to server: Connection refused"): the pool's and
/// the driver's own messages leave the cause out.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        cause = c.source();
    }
    text
}

/// Apply the migrations this database lacks, in one transaction under an advisory lock.
async fn migrate(client: &mut deadpool_postgres::Object) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(pg_error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg_error)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version INTEGER PRIMARY KEY,
             description TEXT NOT NULL,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )
    .await
    .map_err(pg_error)?;
    let row = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            &[],
        )
        .await
        .map_err(pg_error)?;
    let current: i32 = row.get(0);
    let ours = MIGRATIONS.last().map_or(0, |m| m.0);
    if current > ours {
        // A newer release migrated this database (a rolling upgrade): its migrations are
        // additive, so this one keeps working.
        tracing::warn!(
            database = current,
            binary = ours,
            "the database schema is newer than this binary's"
        );
    }
    for (version, description, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        tx.batch_execute(sql).await.map_err(pg_error)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, description) VALUES ($1, $2)",
            &[version, description],
        )
        .await
        .map_err(pg_error)?;
        tracing::info!(version, description, "PostgreSQL migration applied");
    }
    tx.commit().await.map_err(pg_error)
}

/// Probe every [`HEALTH_INTERVAL`], clean the replay ledger every
/// [`REPLAY_CLEANUP_INTERVAL`]; ends when the store is dropped.
async fn monitor(store: Weak<Inner>) {
    let mut tick = tokio::time::interval(HEALTH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_cleanup = tokio::time::Instant::now();
    loop {
        tick.tick().await;
        let Some(store) = store.upgrade() else { return };
        store.probe().await;
        if store.is_up() && last_cleanup.elapsed() >= REPLAY_CLEANUP_INTERVAL {
            last_cleanup = tokio::time::Instant::now();
            match store.clean_replay().await {
                Ok(n) => tracing::debug!(deleted = n, "replay ledger cleaned"),
                Err(e) => tracing::warn!(error = %e, "replay ledger clean-up failed"),
            }
        }
    }
}

impl Store for PgStore {
    fn kind(&self) -> StoreKind {
        StoreKind::Postgres
    }

    fn record(
        &self,
        service_id: &str,
        entries: Vec<FeedbackEntry>,
    ) -> BoxFuture<'static, Result<usize, StoreError>> {
        let store = self.clone();
        let service_id = service_id.to_string();
        Box::pin(async move { store.record_async(&service_id, &entries).await })
    }

    /// The monitor's last verdict (no round trip).
    fn check(&self) -> BoxFuture<'static, Result<(), StoreError>> {
        let verdict = match self.last_error() {
            None if self.is_up() => Ok(()),
            None => Err(StoreError::Unavailable("not checked yet".into())),
            Some(e) => Err(StoreError::Unavailable(e)),
        };
        Box::pin(async move { verdict })
    }

    fn export(&self) -> BoxFuture<'static, Result<Vec<StoredFeedback>, StoreError>> {
        let store = self.clone();
        Box::pin(async move { store.export_async().await })
    }

    fn log_cards(&self, cards: Vec<CardShown>) -> BoxFuture<'static, Result<usize, StoreError>> {
        let store = self.clone();
        Box::pin(async move { store.log_cards_async(&cards).await })
    }

    fn report_rows(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> BoxFuture<'static, Result<ReportRows, StoreError>> {
        let store = self.clone();
        Box::pin(async move { store.report_rows_async(since, until).await })
    }
}

impl ReplayLedger for PgStore {
    /// Refused at once while the monitor finds the database down; otherwise bounded by
    /// `--store-replay-timeout`.
    fn claim(
        &self,
        iss: &str,
        jti: &str,
        dead_after: u64,
    ) -> BoxFuture<'static, Result<Claim, StoreError>> {
        if !self.is_up() {
            let why = self.last_error().unwrap_or_default();
            return Box::pin(async move { Err(StoreError::Unavailable(why)) });
        }
        let store = self.clone();
        let (iss, jti) = (iss.to_string(), jti.to_string());
        let timeout = self.settings.replay_timeout;
        Box::pin(async move {
            tokio::time::timeout(timeout, store.claim_async(&iss, &jti, dead_after))
                .await
                .unwrap_or(Err(StoreError::Timeout(timeout)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str) -> PgSettings {
        PgSettings {
            url: url.into(),
            pool_size: 1,
            connect_timeout: Duration::from_secs(1),
            statement_timeout: Duration::from_secs(1),
            replay_timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn the_url_is_logged_without_its_password_or_query() {
        let s = settings("postgres://dvt:s3cret@db.example.org:5432/dvt_cds?password=other");
        assert_eq!(s.redacted(), "postgres://db.example.org:5432/dvt_cds");
        let debug = format!("{s:?}");
        assert!(
            !debug.contains("s3cret") && !debug.contains("other"),
            "{debug}"
        );
        for bad in ["mysql://u:s3cret@h/db", "postgres://u:s3cret@h:port/db"] {
            let err = settings(bad).pg_config().unwrap_err();
            assert!(!err.contains("s3cret"), "{err}");
        }
    }
}
