//! Shared state behind one trait, [`Store`], with two implementations: the embedded
//! SQLite file ([`SqliteStore`], the default for one machine) and PostgreSQL
//! ([`PgStore`], `--store postgres://...`, for replicas).
//!
//! Contract of every store: `record` returns only once the entries are durable (committed),
//! and the same entry submitted twice for the same service is stored once.
//!
//! PostgreSQL also keeps the token replay ledger ([`ReplayLedger`]), so that a token used
//! on one replica is refused by every other; on SQLite the replay cache stays in the
//! process (`http::auth::replay`).
//!
//! - [`sqlite`]: the embedded file (WAL, `synchronous=FULL`).
//! - [`postgres`]: a connection pool, versioned migrations, the replay ledger and a
//!   health monitor that keeps database outages out of hook calls.

pub mod card_log;
pub mod postgres;
pub mod report;
pub mod sqlite;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

use crate::cds_hooks::FeedbackEntry;
pub use card_log::{CardLog, CardShown};
pub use postgres::{PgSettings, PgStore};
use report::{CardFeedback, ShownCard};
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("feedback database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("feedback database file: {0}")]
    File(#[from] std::io::Error),
    /// The server's message; never the connection URL (it may hold a password).
    #[error("PostgreSQL: {0}")]
    Postgres(String),
    /// The health monitor's last verdict: the database did not answer.
    #[error("PostgreSQL unreachable: {0}")]
    Unavailable(String),
    #[error("feedback database did not answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    /// The verdict of a write probe less than [`sqlite::WRITE_PROBE_INTERVAL`] ago.
    #[error("{0}")]
    RecentProbe(String),
    #[error("feedback store task failed: {0}")]
    Task(String),
}

/// One stored entry, as `feedback export` prints it.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredFeedback {
    pub service_id: String,
    /// When we committed it (RFC 3339, UTC, milliseconds).
    pub received_at: String,
    #[serde(flatten)]
    pub entry: serde_json::Value,
}

/// Which implementation a store is (for `/healthz/store`, the metric and `/readyz`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Sqlite,
    Postgres,
}

impl StoreKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StoreKind::Sqlite => "sqlite",
            StoreKind::Postgres => "postgres",
        }
    }
}

pub trait Store: Send + Sync {
    fn kind(&self) -> StoreKind;

    /// Store `entries` for `service_id`; resolves once committed. Returns how many were
    /// new (duplicates of stored entries are skipped).
    fn record(
        &self,
        service_id: &str,
        entries: Vec<FeedbackEntry>,
    ) -> BoxFuture<'static, Result<usize, StoreError>>;

    /// Can the store take a write now? Cheap enough to be called on every probe: a
    /// store may answer from a recent check.
    fn check(&self) -> BoxFuture<'static, Result<(), StoreError>>;

    /// Every stored entry, oldest first (`feedback export`; feedback is low volume).
    fn export(&self) -> BoxFuture<'static, Result<Vec<StoredFeedback>, StoreError>>;

    /// Add `cards` to the card log in one transaction; a card uuid already logged is
    /// skipped. Returns how many were new.
    fn log_cards(&self, cards: Vec<CardShown>) -> BoxFuture<'static, Result<usize, StoreError>>;

    /// The cards shown in `[since, until)` and every feedback entry about them (the
    /// rows `dvt-cds report` summarises).
    fn report_rows(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> BoxFuture<'static, Result<ReportRows, StoreError>>;
}

/// What [`Store::report_rows`] returns.
#[derive(Debug, Default)]
pub struct ReportRows {
    pub cards: Vec<ShownCard>,
    pub feedback: Vec<CardFeedback>,
}

/// A feedback row as both stores read it for the report: the override reason's code is
/// read from the stored entry.
pub(crate) fn card_feedback(
    card: &str,
    outcome: &str,
    entry_json: &str,
    received_at: DateTime<Utc>,
) -> Option<CardFeedback> {
    let entry: FeedbackEntry = serde_json::from_str(entry_json).ok()?;
    let outcome = match outcome {
        "accepted" => crate::cds_hooks::Outcome::Accepted,
        "overridden" => crate::cds_hooks::Outcome::Overridden,
        _ => return None,
    };
    let reason = entry
        .override_reason
        .and_then(|r| r.reason)
        .and_then(|c| c.get("code").and_then(|v| v.as_str()).map(str::to_string));
    Some(CardFeedback {
        card: card.parse().ok()?,
        outcome,
        reason,
        received_at,
    })
}

/// Was a token id new to the ledger, or seen before?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    New,
    Replayed,
}

/// A replay ledger shared by every replica: `claim` is atomic across them.
pub trait ReplayLedger: Send + Sync {
    /// Record `(iss, jti)` until `dead_after` (unix s), or learn it was recorded before.
    /// An error means the ledger could not answer (the caller falls back to its own
    /// cache).
    fn claim(
        &self,
        iss: &str,
        jti: &str,
        dead_after: u64,
    ) -> BoxFuture<'static, Result<Claim, StoreError>>;
}

/// Where shared state lives: `--feedback-db FILE` (default) or `--store postgres://...`.
#[derive(Debug, Clone)]
pub enum StoreConfig {
    Sqlite(PathBuf),
    Postgres(PgSettings),
}

/// An open store, and its replay ledger when it has one.
pub struct Opened {
    pub store: Arc<dyn Store>,
    pub ledger: Option<Arc<dyn ReplayLedger>>,
}

impl StoreConfig {
    /// Open the store (and, for PostgreSQL, start its pool, migrations and health
    /// monitor; needs a Tokio runtime). Errors name the flag.
    pub async fn open(&self) -> Result<Opened, String> {
        match self {
            StoreConfig::Sqlite(path) => {
                let store = SqliteStore::open(path)
                    .map_err(|e| format!("--feedback-db {}: {e}", path.display()))?;
                Ok(Opened {
                    store: Arc::new(store),
                    ledger: None,
                })
            }
            StoreConfig::Postgres(settings) => {
                let store = PgStore::start(settings.clone())
                    .await
                    .map_err(|e| format!("--store: {e}"))?;
                Ok(Opened {
                    store: Arc::new(store.clone()),
                    ledger: Some(Arc::new(store)),
                })
            }
        }
    }

    /// For the startup log: the file, or the database without its password.
    pub fn describe(&self) -> String {
        match self {
            StoreConfig::Sqlite(path) => format!("sqlite {}", path.display()),
            StoreConfig::Postgres(s) => format!("postgres {}", s.redacted()),
        }
    }
}

/// The same entry (same canonical JSON) for the same service gets the same key, on
/// every store (so a database can be moved from one to the other).
pub(crate) fn dedup_key(service_id: &str, canonical_json: &str) -> String {
    let name = format!("{service_id}\n{canonical_json}");
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, name.as_bytes()).to_string()
}

/// `dvt_cds_store_up`: 1 when the store takes writes (its [`Store::check`]), else 0.
pub async fn render_metrics(store: &dyn Store, text: &mut String) {
    use std::fmt::Write;
    let up = u8::from(store.check().await.is_ok());
    let _ = write!(
        text,
        "# HELP dvt_cds_store_up Whether the store (feedback, and on PostgreSQL the replay ledger) takes writes.\n\
         # TYPE dvt_cds_store_up gauge\n\
         dvt_cds_store_up{{store=\"{}\"}} {up}\n",
        store.kind().as_str()
    );
}
