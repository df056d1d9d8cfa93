//! The card log: every card returned, recorded for governance reports (`dvt-cds
//! report`), through a bounded queue drained by one task, so that a slow or unreachable
//! store never delays a hook call.
//!
//! What a crash can lose: the cards still in the queue (at most [`CARD_LOG_QUEUE`]),
//! never a card of a call that has not been answered yet. On SIGTERM the queue is
//! drained (within [`DRAIN_WITHIN`]). A full queue (the store down for long) drops new
//! cards and counts them (`dvt_cds_card_log_dropped_total`). A card's uuid is logged
//! once: a retried call's repeated card is stored once.
//!
//! No patient identifier or name: at most a keyed hash of the patient id (the same
//! HMAC-SHA256 as `audit`'s pseudonyms, with the site's `--id-secret`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use super::Store;
use crate::audit::pseudonym::{IdSecret, pseudonym};

/// Cards waiting to be written, at most.
pub const CARD_LOG_QUEUE: usize = 10_000;
/// Cards written in one transaction, at most.
const BATCH: usize = 256;
/// How long shutdown waits for the queue to be written.
pub const DRAIN_WITHIN: Duration = Duration::from_secs(5);

/// One card shown: the fields of the card log.
#[derive(Debug, Clone, PartialEq)]
pub struct CardShown {
    pub card: uuid::Uuid,
    pub service_id: String,
    pub hook: String,
    pub category: String,
    pub indicator: String,
    /// The mapping set's version that produced the card.
    pub mapping_version: String,
    /// The verified client (`None` in dev mode without authentication).
    pub issuer: Option<String>,
    pub shown_at: DateTime<Utc>,
    /// HMAC-SHA256 of the patient id with the site secret; `None` without a secret.
    pub patient_hash: Option<String>,
}

pub struct CardLog {
    /// `None` once closed for shutdown.
    tx: Mutex<Option<mpsc::Sender<CardShown>>>,
    drainer: Mutex<Option<tokio::task::JoinHandle<()>>>,
    secret: Option<IdSecret>,
    counts: Arc<Counts>,
}

#[derive(Default)]
struct Counts {
    written: AtomicU64,
    dropped: AtomicU64,
}

impl CardLog {
    /// Start the drainer (needs a Tokio runtime). `secret`: the site's `--id-secret`,
    /// for the patient hash.
    pub fn start(store: Arc<dyn Store>, secret: Option<IdSecret>) -> CardLog {
        let (tx, rx) = mpsc::channel(CARD_LOG_QUEUE);
        let counts = Arc::new(Counts::default());
        let drainer = tokio::spawn(drain(store, rx, counts.clone()));
        CardLog {
            tx: Mutex::new(Some(tx)),
            drainer: Mutex::new(Some(drainer)),
            secret,
            counts,
        }
    }

    /// The keyed hash of `patient_id` (`None` without a site secret).
    pub fn patient_hash(&self, patient_id: &str) -> Option<String> {
        self.secret.as_ref().map(|s| pseudonym(s, patient_id))
    }

    /// Queue `card` for the log; never waits. A full (or closed) queue drops it, counted.
    pub fn log(&self, card: CardShown) {
        let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        let queued = tx.as_ref().is_some_and(|tx| tx.try_send(card).is_ok());
        if !queued {
            self.counts.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Close the queue and wait (at most `within`) for what it holds to be written.
    pub async fn drain(&self, within: Duration) {
        drop(self.tx.lock().unwrap_or_else(|p| p.into_inner()).take());
        let drainer = self
            .drainer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(d) = drainer
            && tokio::time::timeout(within, d).await.is_err()
        {
            tracing::warn!(
                within_ms = within.as_millis() as u64,
                "card log not drained in time: the cards still queued are lost"
            );
        }
    }

    /// `dvt_cds_card_log_written_total`, `dvt_cds_card_log_dropped_total`.
    pub fn render_metrics(&self, text: &mut String) {
        use std::fmt::Write;
        let _ = write!(
            text,
            "# HELP dvt_cds_card_log_written_total Cards written to the card log.\n\
             # TYPE dvt_cds_card_log_written_total counter\n\
             dvt_cds_card_log_written_total {}\n\
             # HELP dvt_cds_card_log_dropped_total Cards not logged: the queue was full (the store slow or down).\n\
             # TYPE dvt_cds_card_log_dropped_total counter\n\
             dvt_cds_card_log_dropped_total {}\n",
            self.counts.written.load(Ordering::Relaxed),
            self.counts.dropped.load(Ordering::Relaxed),
        );
    }
}

/// Write batches until the queue is closed and empty. A failed batch is retried with
/// backoff (the queue fills meanwhile; past its bound new cards are dropped and counted).
async fn drain(store: Arc<dyn Store>, mut rx: mpsc::Receiver<CardShown>, counts: Arc<Counts>) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let mut backoff = Duration::from_millis(100);
        loop {
            match store.log_cards(batch.clone()).await {
                Ok(_) => {
                    counts
                        .written
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, cards = batch.len(), "card log write failed: retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        batch.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;

    fn card(n: u128, shown_at: DateTime<Utc>) -> CardShown {
        CardShown {
            card: uuid::Uuid::from_u128(n),
            service_id: "dvt-patient-view".into(),
            hook: "patient-view".into(),
            category: "dvt-likely".into(),
            indicator: "warning".into(),
            mapping_version: "2.0.0".into(),
            issuer: None,
            shown_at,
            patient_hash: None,
        }
    }

    /// Queued cards are written by the time `drain` returns, a repeated uuid once; a
    /// card logged after the queue closed is counted as dropped.
    #[tokio::test]
    async fn drain_writes_what_was_queued_and_later_cards_are_counted_as_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("f")).unwrap());
        let secret = IdSecret::from_text("site").unwrap();
        let log = CardLog::start(store.clone(), Some(secret));
        let hash = log.patient_hash("patient-1").unwrap();
        assert_eq!(hash.len(), 32);
        assert!(!hash.contains("patient"));
        let now = Utc::now();
        for n in [1, 2, 1] {
            log.log(card(n, now));
        }
        log.drain(DRAIN_WITHIN).await;
        let rows = store
            .report_rows(
                now - chrono::Duration::seconds(1),
                now + chrono::Duration::seconds(1),
            )
            .await
            .unwrap();
        assert_eq!(rows.cards.len(), 2);
        log.log(card(3, now));
        let mut text = String::new();
        log.render_metrics(&mut text);
        assert!(
            text.contains("dvt_cds_card_log_written_total 3\n"),
            "{text}"
        );
        assert!(
            text.contains("dvt_cds_card_log_dropped_total 1\n"),
            "{text}"
        );
    }
}
