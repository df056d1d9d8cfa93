//! Durable feedback storage behind [`FeedbackStore`], so a shared database can replace
//! the embedded SQLite ([`SqliteStore`]) when several replicas run.
//!
//! Contract of every store: `record` returns only once the entries are durable (committed),
//! and the same entry submitted twice for the same service is stored once.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use rusqlite::{Connection, params};

use crate::cds_hooks::FeedbackEntry;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("feedback database: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("feedback database file: {0}")]
    File(#[from] std::io::Error),
    #[error("feedback database did not answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    /// The verdict of a write probe less than [`WRITE_PROBE_INTERVAL`] ago.
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
    /// When we committed it (RFC 3339, UTC).
    pub received_at: String,
    #[serde(flatten)]
    pub entry: serde_json::Value,
}

pub trait FeedbackStore: Send + Sync {
    /// Store `entries` for `service_id`; resolves once committed. Returns how many were
    /// new (duplicates of stored entries are skipped).
    fn record(
        &self,
        service_id: &str,
        entries: Vec<FeedbackEntry>,
    ) -> BoxFuture<'static, Result<usize, StoreError>>;

    /// Can the store take a write now (for `/readyz`)? Cheap enough to be called on
    /// every probe: a store may answer from a recent check.
    fn check(&self) -> BoxFuture<'static, Result<(), StoreError>>;
}

/// SQLite in WAL mode with `synchronous=FULL`: a commit survives a crash of the process
/// and of the machine. One connection behind a mutex: feedback is low volume.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    /// The last write probe and its verdict; an async lock so that probes arriving
    /// together wait for one verdict instead of each taking a blocking thread.
    probe: Arc<tokio::sync::Mutex<Option<ProbeVerdict>>>,
}

/// When the last write probe ran, and what it found (the error's text).
struct ProbeVerdict {
    at: Instant,
    outcome: Result<(), String>,
}

/// `/readyz` writes to the database at most this often; calls in between get the last
/// verdict (a probe commits, and so costs an fsync).
pub const WRITE_PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// How long the write probe waits for a lock held by another connection or process.
const WRITE_PROBE_BUSY: Duration = Duration::from_millis(250);
/// Longest a `/readyz` waits for the probe (e.g. behind a feedback write that is itself
/// waiting for a lock) before it answers "not ready".
const WRITE_PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a feedback write waits for a lock held by another connection or process.
const WRITE_BUSY: Duration = Duration::from_secs(5);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS feedback (
    dedup_key TEXT PRIMARY KEY,
    service_id TEXT NOT NULL,
    card TEXT NOT NULL,
    outcome TEXT NOT NULL,
    outcome_timestamp TEXT NOT NULL,
    entry_json TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_card ON feedback(card);
CREATE TABLE IF NOT EXISTS write_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    probed_at TEXT NOT NULL
);
";

impl SqliteStore {
    /// Open (or create, readable by its owner only) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        create_owner_only(path)?;
        let conn = Connection::open(path)?;
        conn.busy_timeout(WRITE_BUSY)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            probe: Arc::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a transaction half-done (SQLite
        // rolls it back), so a poisoned lock is still safe to use.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record_blocking(
        &self,
        service_id: &str,
        entries: &[FeedbackEntry],
    ) -> Result<usize, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut new = 0;
        for e in entries {
            let json = serde_json::to_string(e).expect("feedback entries serialise");
            let key = dedup_key(service_id, &json);
            new += tx.execute(
                "INSERT OR IGNORE INTO feedback
                 (dedup_key, service_id, card, outcome, outcome_timestamp, entry_json, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    key,
                    service_id,
                    e.card.to_string(),
                    e.outcome.as_str(),
                    e.outcome_timestamp,
                    json,
                    now
                ],
            )?;
        }
        tx.commit()?;
        Ok(new)
    }

    /// Every stored entry, oldest first.
    pub fn export(&self, mut each: impl FnMut(StoredFeedback)) -> Result<(), StoreError> {
        let conn = self.lock();
        let mut stmt = conn
            .prepare("SELECT service_id, received_at, entry_json FROM feedback ORDER BY rowid")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        for row in rows {
            let (service_id, received_at, json) = row?;
            let entry = serde_json::from_str(&json).unwrap_or(serde_json::Value::String(json));
            each(StoredFeedback {
                service_id,
                received_at,
                entry,
            });
        }
        Ok(())
    }
}

/// Feedback is clinical data: a new database file is created `0600` before SQLite opens
/// it. SQLite gives its `-wal` and `-shm` files the mode of the database file, so they
/// are `0600` too. An existing file keeps its mode (the operator's choice), with a
/// warning when others may read it.
fn create_owner_only(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        // An empty file is an empty SQLite database.
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            #[cfg(unix)]
            if let Ok(meta) = std::fs::metadata(path) {
                let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777;
                if mode & 0o077 != 0 {
                    tracing::warn!(
                        path = %path.display(),
                        mode = format!("{mode:o}"),
                        "the feedback database is open to other users: chmod 600 it"
                    );
                }
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// One committed write to the `write_probe` row. A rolled-back write never reaches the
/// disk, so it could not see a full or read-only file system; a commit does (and also a
/// lock that another process holds on the file, waited for at most [`WRITE_PROBE_BUSY`]).
fn probe_write(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(WRITE_PROBE_BUSY)?;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let written = conn.execute(
        "INSERT INTO write_probe (id, probed_at) VALUES (1, ?1)
         ON CONFLICT (id) DO UPDATE SET probed_at = excluded.probed_at",
        params![now],
    );
    conn.busy_timeout(WRITE_BUSY)?;
    written?;
    Ok(())
}

/// The same entry (same canonical JSON) for the same service gets the same key.
fn dedup_key(service_id: &str, canonical_json: &str) -> String {
    let name = format!("{service_id}\n{canonical_json}");
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, name.as_bytes()).to_string()
}

impl FeedbackStore for SqliteStore {
    fn record(
        &self,
        service_id: &str,
        entries: Vec<FeedbackEntry>,
    ) -> BoxFuture<'static, Result<usize, StoreError>> {
        let store = self.clone();
        let service_id = service_id.to_string();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || store.record_blocking(&service_id, &entries))
                .await
                .map_err(|e| StoreError::Task(e.to_string()))?
        })
    }

    /// A real write (see [`probe_write`]), at most once per [`WRITE_PROBE_INTERVAL`].
    fn check(&self) -> BoxFuture<'static, Result<(), StoreError>> {
        let store = self.clone();
        Box::pin(async move {
            let mut last = store.probe.lock().await;
            if let Some(last) = last.as_ref()
                && last.at.elapsed() < WRITE_PROBE_INTERVAL
            {
                return last.outcome.clone().map_err(StoreError::RecentProbe);
            }
            let prober = store.clone();
            let probe = tokio::task::spawn_blocking(move || probe_write(&prober.lock()));
            let verdict = match tokio::time::timeout(WRITE_PROBE_TIMEOUT, probe).await {
                Ok(Ok(r)) => r,
                Ok(Err(join)) => Err(StoreError::Task(join.to_string())),
                Err(_) => Err(StoreError::Timeout(WRITE_PROBE_TIMEOUT)),
            };
            *last = Some(ProbeVerdict {
                at: Instant::now(),
                outcome: verdict.as_ref().map(|_| ()).map_err(|e| e.to_string()),
            });
            verdict
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cds_hooks::parse_feedback;

    #[test]
    fn duplicate_is_stored_once_and_export_returns_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("f.sqlite3")).unwrap();
        let body = serde_json::json!({"feedback": [{"card": "f6b95768-b1c8-40dc-8385-bf3504b82ffb",
            "outcome": "overridden", "outcomeTimestamp": "2020-12-11T00:00:00Z"}]});
        let entries = parse_feedback(&body).unwrap();
        assert_eq!(
            store.record_blocking("dvt-patient-view", &entries).unwrap(),
            1
        );
        assert_eq!(
            store.record_blocking("dvt-patient-view", &entries).unwrap(),
            0
        );
        assert_eq!(
            store.record_blocking("dvt-order-sign", &entries).unwrap(),
            1
        );
        let mut out = Vec::new();
        store.export(|f| out.push(f)).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].entry["card"], "f6b95768-b1c8-40dc-8385-bf3504b82ffb");
    }

    #[cfg(unix)]
    #[test]
    fn a_new_database_and_its_wal_and_shm_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.sqlite3");
        let store = SqliteStore::open(&path).unwrap();
        let body = serde_json::json!({"feedback": [{"card": "f6b95768-b1c8-40dc-8385-bf3504b82ffb",
            "outcome": "overridden", "outcomeTimestamp": "2020-12-11T00:00:00Z"}]});
        store
            .record_blocking("dvt-patient-view", &parse_feedback(&body).unwrap())
            .unwrap();
        for suffix in ["", "-wal", "-shm"] {
            let file = dir.path().join(format!("f.sqlite3{suffix}"));
            let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{} has mode {mode:o}", file.display());
        }
    }

    /// Another connection holding the write lock (as a second replica or a `sqlite3`
    /// shell would) makes the probe fail; its verdict is kept for a second; once the lock
    /// is gone the next probe passes.
    #[tokio::test]
    async fn the_write_probe_fails_while_the_database_is_locked_and_recovers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.sqlite3");
        let store = SqliteStore::open(&path).unwrap();
        store.check().await.unwrap();

        let holder = Connection::open(&path).unwrap();
        holder.execute_batch("BEGIN IMMEDIATE").unwrap();
        // Within the interval the last verdict stands: no write was tried.
        store.check().await.unwrap();
        tokio::time::sleep(WRITE_PROBE_INTERVAL).await;
        let err = store.check().await.unwrap_err().to_string();
        assert!(err.contains("locked"), "{err}");
        let again = store.check().await.unwrap_err();
        assert!(matches!(again, StoreError::RecentProbe(_)), "{again}");

        holder.execute_batch("ROLLBACK").unwrap();
        tokio::time::sleep(WRITE_PROBE_INTERVAL).await;
        store.check().await.unwrap();
    }
}
