//! The embedded store: one SQLite file (the default for one machine).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use rusqlite::{Connection, params};

use super::report::ShownCard;
use super::{
    CardShown, ReportRows, Store, StoreError, StoreKind, StoredFeedback, card_feedback, dedup_key,
};
use crate::cds_hooks::FeedbackEntry;

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
CREATE TABLE IF NOT EXISTS card_log (
    card TEXT PRIMARY KEY,
    service_id TEXT NOT NULL,
    hook TEXT NOT NULL,
    category TEXT NOT NULL,
    indicator TEXT NOT NULL,
    mapping_version TEXT NOT NULL,
    issuer TEXT,
    shown_at TEXT NOT NULL,
    patient_hash TEXT
);
CREATE INDEX IF NOT EXISTS card_log_shown_at ON card_log(shown_at);
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
        let now = rfc3339(Utc::now());
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

    fn log_cards_blocking(&self, cards: &[CardShown]) -> Result<usize, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let mut new = 0;
        for c in cards {
            new += tx.execute(
                "INSERT OR IGNORE INTO card_log (card, service_id, hook, category, indicator,
                 mapping_version, issuer, shown_at, patient_hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    c.card.to_string(),
                    c.service_id,
                    c.hook,
                    c.category,
                    c.indicator,
                    c.mapping_version,
                    c.issuer,
                    rfc3339(c.shown_at),
                    c.patient_hash
                ],
            )?;
        }
        tx.commit()?;
        Ok(new)
    }

    /// Times are stored as RFC 3339 UTC with milliseconds, which sort as text.
    fn report_rows_blocking(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<ReportRows, StoreError> {
        let conn = self.lock();
        let (since, until) = (rfc3339(since), rfc3339(until));
        let mut rows = ReportRows::default();
        let mut stmt = conn.prepare(
            "SELECT card, category, indicator, shown_at FROM card_log
             WHERE shown_at >= ?1 AND shown_at < ?2",
        )?;
        let cards = stmt.query_map(params![since, until], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        for card in cards {
            let (card, category, indicator, shown_at) = card?;
            if let (Ok(card), Some(shown_at)) = (card.parse(), parse_time(&shown_at)) {
                rows.cards.push(ShownCard {
                    card,
                    category,
                    indicator,
                    shown_at,
                });
            }
        }
        let mut stmt = conn.prepare(
            "SELECT f.card, f.outcome, f.entry_json, f.received_at FROM feedback f
             JOIN card_log c ON c.card = f.card
             WHERE c.shown_at >= ?1 AND c.shown_at < ?2",
        )?;
        let feedback = stmt.query_map(params![since, until], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        for f in feedback {
            let (card, outcome, json, received_at) = f?;
            if let Some(f) =
                parse_time(&received_at).and_then(|at| card_feedback(&card, &outcome, &json, at))
            {
                rows.feedback.push(f);
            }
        }
        Ok(rows)
    }

    /// Every stored entry, oldest first.
    fn export_blocking(&self) -> Result<Vec<StoredFeedback>, StoreError> {
        let mut out = Vec::new();
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
            out.push(StoredFeedback {
                service_id,
                received_at,
                entry,
            });
        }
        Ok(out)
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
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

impl Store for SqliteStore {
    fn kind(&self) -> StoreKind {
        StoreKind::Sqlite
    }

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

    fn export(&self) -> BoxFuture<'static, Result<Vec<StoredFeedback>, StoreError>> {
        let store = self.clone();
        Box::pin(blocking(move || store.export_blocking()))
    }

    fn log_cards(&self, cards: Vec<CardShown>) -> BoxFuture<'static, Result<usize, StoreError>> {
        let store = self.clone();
        Box::pin(blocking(move || store.log_cards_blocking(&cards)))
    }

    fn report_rows(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> BoxFuture<'static, Result<ReportRows, StoreError>> {
        let store = self.clone();
        Box::pin(blocking(move || store.report_rows_blocking(since, until)))
    }
}

/// `f` on a blocking thread (SQLite calls block).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
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
        let out = store.export_blocking().unwrap();
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
