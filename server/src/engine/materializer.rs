//! The materialiser: writes journaled batches into the tables, many per transaction, and
//! says so when the database refuses a round.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch, Notify, OwnedSemaphorePermit};

use super::bounds::*;
use crate::store::journal::{self, Batch, Journal};
use crate::store::Store;

/// How often a materialiser that keeps failing logs the failure again (it retries every second).
const STALL_LOG_EVERY: Duration = Duration::from_secs(60);

/// The materialiser cannot write journaled batches into the tables. Acknowledged writes are
/// safe in the journal, but reads wait in `Engine::tables` and answer `unavailable` until
/// it succeeds (docs/operations.md, "The materialiser is stuck").
#[derive(Clone, Debug)]
pub struct Stall {
    /// The first and last journaled batch of the round that fails.
    pub batches: (i64, i64),
    /// Failed attempts so far.
    pub attempts: u64,
    /// When the first attempt failed.
    pub since: chrono::DateTime<chrono::Utc>,
    /// The last attempt failed because the disk is full.
    pub disk_full: bool,
}

impl Stall {
    /// A sentence for operators; the database's error itself is only in the server's log,
    /// since it may quote a request's data.
    pub fn describe(&self) -> String {
        if self.disk_full {
            return format!(
                "the disk is full: the materialiser cannot write journaled batches {} to {} into the tables \
                 ({} attempts since {}); make room and it goes on by itself (docs/operations.md, \"The disk is full\")",
                self.batches.0,
                self.batches.1,
                self.attempts,
                self.since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            );
        }
        format!(
            "the materialiser cannot write journaled batches {} to {} into the tables ({} attempts since {}); \
             the server's log has the cause (docs/operations.md, \"The materialiser is stuck\")",
            self.batches.0,
            self.batches.1,
            self.attempts,
            self.since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        )
    }
}

/// Writes journaled batches into the tables, as many per transaction as are waiting.
pub(super) struct Materializer {
    pub(super) store: Store,
    pub(super) journal: Journal,
    pub(super) conn: crate::store::WriterConnection,
    /// Journaled batches, each with its share of [`MATERIALIZE_MAX_REQUESTS`].
    pub(super) batches: mpsc::Receiver<(Batch, OwnedSemaphorePermit)>,
    pub(super) done: Arc<watch::Sender<i64>>,
    /// Someone waits for the tables: materialise now instead of after [`MATERIALIZE_EVERY`].
    pub(super) reader_waiting: Arc<Notify>,
    /// Leaves in the log's tables, for the checkpoint publisher.
    pub(super) log_size: watch::Sender<u64>,
    /// Set while a round fails.
    pub(super) stall: watch::Sender<Option<Stall>>,
}

impl Materializer {
    pub(super) async fn run(mut self) {
        let mut waiting = Vec::new();
        let mut permits = Vec::new();
        let mut last_round = Instant::now();
        let mut round_cap = MATERIALIZE_ROUND;
        // The last round was cut at round_cap: the next starts at once.
        let mut behind = false;
        while let Some((first, permit)) = self.batches.recv().await {
            let mut requests = first.requests.len();
            waiting.push(first);
            permits.push(permit);
            // The writer wakes this early once the queue is half full, so it does not wait.
            if !behind {
                tokio::select! {
                    _ = tokio::time::sleep_until((last_round + MATERIALIZE_EVERY).into()) => {}
                    _ = self.reader_waiting.notified() => {}
                }
            }
            // Bounded by round_cap (at most MATERIALIZE_ROUND) requests and MATERIALIZE_QUEUE batches.
            while requests < round_cap && waiting.len() < MATERIALIZE_QUEUE {
                match self.batches.try_recv() {
                    Ok((b, permit)) => {
                        requests += b.requests.len();
                        waiting.push(b);
                        permits.push(permit);
                    }
                    Err(_) => break,
                }
            }
            let started = Instant::now();
            last_round = started;
            let round_requests = requests;
            behind = requests >= round_cap;
            let n = waiting.len();
            let first_batch = waiting.first().map_or(0, |b| b.seq);
            let through = waiting.last().map_or(0, |b| b.seq);
            let (changes, requests) = journal::merge(std::mem::take(&mut waiting));
            // A batch is never dropped: retry until the database takes it. Bounded only by
            // the database coming back; meanwhile the writer waits on the full queue, reads
            // answer `unavailable`, and /healthz, the metrics and the log say why.
            let mut logged: Option<Instant> = None;
            while let Err(e) = self.store.materialize(&mut self.conn, &changes, &requests, through).await {
                metrics::counter!("mykey_materialize_failures_total").increment(1);
                let disk_full = crate::failure::is_disk_full(e.as_ref());
                let stall = self.stall.borrow().clone().map_or_else(
                    || Stall { batches: (first_batch, through), attempts: 1, since: chrono::Utc::now(), disk_full },
                    |s| Stall { attempts: s.attempts + 1, disk_full, ..s },
                );
                if logged.is_none_or(|at| at.elapsed() >= STALL_LOG_EVERY) {
                    logged = Some(Instant::now());
                    tracing::error!(error = format!("{e:#}"), "{}; retrying every second", stall.describe());
                }
                self.stall.send_replace(Some(stall));
                tokio::time::sleep(Duration::from_secs(1)).await;
                if let Ok(c) = self.store.writer_connection().await {
                    self.conn = c;
                }
            }
            if let Some(s) = self.stall.send_replace(None) {
                tracing::warn!(attempts = s.attempts, through, "the materialiser wrote the batches it was stuck on");
            }
            // A failed truncation is caught up by the next one (it deletes everything up to
            // its round), on a new connection in case this one is gone.
            if let Err(e) = self.journal.truncate(through).await {
                tracing::warn!(error = format!("{e:#}"), "truncating the journal; reconnecting");
                match Journal::open(&self.store).await {
                    Ok(j) => self.journal = j,
                    Err(e) => tracing::warn!(error = format!("{e:#}"), "reopening the journal"),
                }
            }
            metrics::histogram!("mykey_materialize_seconds").record(started.elapsed().as_secs_f64());
            metrics::histogram!("mykey_materialize_batches").record(n as f64);
            self.done.send_replace(through);
            permits.clear();
            let per_request = started.elapsed().as_secs_f64() / round_requests.max(1) as f64;
            round_cap = ((MATERIALIZE_ROUND_TIME.as_secs_f64() / per_request.max(1e-9)) as usize)
                .clamp(MATERIALIZE_ROUND_MIN, MATERIALIZE_ROUND);
            if let Some(leaf) = changes.log_leaves.last() {
                self.log_size.send_replace(leaf.index + 1);
            }
        }
    }
}
