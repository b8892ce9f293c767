//! Group commit of the small writes beside the ledger: checkout sessions and their state
//! changes, and coupon claims, each with the event it causes. Many residents' confirmations and
//! redemptions share one transaction and so one sync (SQLite has one write lock; each commit
//! waits for the disk).

use sqlx::{AnyPool, Connection};

use super::checkout::{self, Session};
use super::coupons;
use super::embedding::NewEvent;
use crate::time::Micros;

/// A write that [`Writer`] commits together with others.
#[derive(Debug)]
enum Write {
    /// A new checkout session.
    Insert(Box<Session>),
    /// A checkout session's state change and its event.
    Transition { from: String, next: Box<Session>, event: Option<NewEvent> },
    /// A coupon code claimed for a resident, and the partner's event.
    Claim { code_hash: String, resident: i64, at: Micros, event: Option<NewEvent> },
    /// Which counter device sends request `id` (`close::record_request`).
    CounterRequest { id: uuid::Uuid, shop: i64, device: uuid::Uuid, at: Micros },
}

type Job = (Write, tokio::sync::oneshot::Sender<Result<bool, String>>);

/// Writes waiting for the writer at most; past it, callers wait to queue (back-pressure).
pub const WRITES_QUEUED: usize = 4096;
/// Writes committed in one transaction at most.
pub const WRITES_PER_COMMIT: usize = 256;

/// Group commit: one task takes what is queued (up to [`WRITES_PER_COMMIT`]) and commits it
/// in one transaction, each write under its own savepoint (a write that fails is undone
/// alone), so that many confirmations and redemptions share one sync.
#[derive(Clone)]
pub struct Writer {
    queue: tokio::sync::mpsc::Sender<Job>,
    /// Told after each commit, so that the webhook deliverer need not wait for its next round.
    pub committed: std::sync::Arc<tokio::sync::Notify>,
}

impl Writer {
    /// Starts the writer over `pool`; `committed` hears of each commit.
    pub fn start(pool: AnyPool, committed: std::sync::Arc<tokio::sync::Notify>) -> Writer {
        let (queue, mut rx) = tokio::sync::mpsc::channel::<Job>(WRITES_QUEUED);
        let tell = committed.clone();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut jobs = vec![first];
                while jobs.len() < WRITES_PER_COMMIT {
                    match rx.try_recv() {
                        Ok(j) => jobs.push(j),
                        Err(_) => break,
                    }
                }
                let outcomes = commit(&pool, &jobs).await;
                tell.notify_one();
                for ((_, reply), outcome) in jobs.into_iter().zip(outcomes) {
                    let _ = reply.send(outcome);
                }
            }
        });
        Writer { queue, committed }
    }

    async fn write(&self, w: Write) -> anyhow::Result<bool> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.queue.send((w, reply)).await.map_err(|_| anyhow::anyhow!("the group-commit writer has stopped"))?;
        answer
            .await
            .map_err(|_| anyhow::anyhow!("the group-commit writer stopped before answering"))?
            .map_err(|e| anyhow::anyhow!(e))
    }

    /// Stores a new session; false when the store already used `s.request_id`.
    pub async fn insert_session(&self, s: Session) -> anyhow::Result<bool> {
        self.write(Write::Insert(Box::new(s))).await
    }

    /// Moves a session from state `from` to `next`, with its event if any; false (nothing
    /// written) when the session was not in `from` any more.
    pub async fn transition(&self, from: &str, next: Session, event: Option<NewEvent>) -> anyhow::Result<bool> {
        self.write(Write::Transition { from: from.to_owned(), next: Box::new(next), event }).await
    }

    /// Notes that `device` of `shop` sends counter request `id` (before the ledger applies it);
    /// a retry keeps the first device.
    pub async fn counter_request(
        &self,
        id: uuid::Uuid,
        shop: i64,
        device: uuid::Uuid,
        at: Micros,
    ) -> anyhow::Result<()> {
        self.write(Write::CounterRequest { id, shop, device, at }).await.map(drop)
    }

    /// Claims an issued coupon code for `resident`, with the partner's event if any; false
    /// (nothing written) when it was no longer issued.
    pub async fn claim(
        &self,
        code_hash: &str,
        resident: i64,
        at: Micros,
        event: Option<NewEvent>,
    ) -> anyhow::Result<bool> {
        self.write(Write::Claim { code_hash: code_hash.to_owned(), resident, at, event }).await
    }
}

/// Commits `jobs` in one transaction: each one's outcome, all failed if the commit fails.
async fn commit(pool: &AnyPool, jobs: &[Job]) -> Vec<Result<bool, String>> {
    let run = async {
        let mut c = pool.acquire().await?;
        let mut tx = c.begin().await?;
        let mut outcomes = Vec::with_capacity(jobs.len());
        for (w, _) in jobs {
            sqlx::query("SAVEPOINT w").execute(&mut *tx).await?;
            let done = match w {
                Write::Insert(s) => checkout::insert_session(&mut tx, s).await,
                Write::Transition { from, next, event } => {
                    checkout::transition(&mut tx, from, next, event.as_ref()).await
                }
                Write::Claim { code_hash, resident, at, event } => {
                    coupons::claim(&mut tx, code_hash, *resident, *at, event.as_ref()).await
                }
                Write::CounterRequest { id, shop, device, at } => {
                    super::close::record_request(&mut *tx, *id, *shop, *device, *at).await.map(|()| true)
                }
            };
            match done {
                Ok(b) => {
                    sqlx::query("RELEASE SAVEPOINT w").execute(&mut *tx).await?;
                    outcomes.push(Ok(b));
                }
                Err(e) => {
                    sqlx::query("ROLLBACK TO SAVEPOINT w").execute(&mut *tx).await?;
                    sqlx::query("RELEASE SAVEPOINT w").execute(&mut *tx).await?;
                    outcomes.push(Err(e.to_string()));
                }
            }
        }
        tx.commit().await?;
        Ok::<_, sqlx::Error>(outcomes)
    };
    match run.await {
        Ok(o) => o,
        Err(e) => jobs.iter().map(|_| Err(format!("committing grouped writes: {e}"))).collect(),
    }
}
