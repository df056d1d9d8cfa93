//! Durable feedback storage behind [`FeedbackStore`], so a shared database can replace
//! the embedded SQLite ([`SqliteStore`]) when several replicas run.
//!
//! Contract of every store: `record` returns only once the entries are durable (committed),
//! and the same entry submitted twice for the same service is stored once.

use std::path::Path;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use rusqlite::{Connection, params};

use crate::cds_hooks::FeedbackEntry;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("feedback database: {0}")]
    Database(#[from] rusqlite::Error),
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

    /// Is the store usable (for `/readyz`)?
    fn check(&self) -> BoxFuture<'static, Result<(), StoreError>>;
}

/// SQLite in WAL mode with `synchronous=FULL`: a commit survives a crash of the process
/// and of the machine. One connection behind a mutex: feedback is low volume.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

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
";

impl SqliteStore {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
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

    fn check(&self) -> BoxFuture<'static, Result<(), StoreError>> {
        let store = self.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                store.lock().query_row("SELECT 1", [], |_| Ok(()))?;
                Ok(())
            })
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
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
}
