//! The single writer. One task owns the [`Ledger`], takes requests from a bounded queue,
//! applies up to [`MAX_BATCH`] of them in memory, appends the batch to the journal (one row,
//! one sync), and only then answers (group commit). A second task, the materialiser, writes
//! the journaled batches into the tables, many per database transaction; reads wait for it
//! through [`Engine::tables`], so they see every answer already given. A batch whose journal
//! append fails is answered with an error and the memory is rebuilt from what is durable.
//!
//! Files: `request` (what is asked), `answer` (what is answered: [`Done`] or [`EngineError`]), `command` (the queue's messages), `bounds`
//! (every bound and period), `writer`, `journal`, `materializer`, `publisher` (checkpoints and
//! witnesses); this file is the handle, [`Engine`].

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use mykey_core::api::{LogWitnesses, TransactionReceipt};
use mykey_core::{Problem, ProblemKind};
use tokio::sync::{mpsc, oneshot, watch, Notify, Semaphore};
use uuid::Uuid;

use crate::store::journal::{self, Journal};
use crate::store::{Store, Tables};
use answer::Shape;
use command::{Answered, Command};
use materializer::Materializer;
use publisher::publish;
use writer::{load, Writer};

mod answer;
mod bounds;
mod command;
mod materializer;
mod publisher;
mod request;
mod writer;

pub use answer::{Done, EngineError, Executed, Receipt};
pub use bounds::*;
pub use materializer::Stall;
pub use publisher::{LogConfig, Published};
pub use request::{check_client_id, derived_id, Change, ChangeResult, Request};

/// The engine's tasks, to wait for after [`Engine::stop`].
pub struct Tasks {
    writer: tokio::task::JoinHandle<()>,
    materializer: tokio::task::JoinHandle<()>,
}

impl Tasks {
    /// Waits until the writer has stopped and the materialiser has written everything.
    pub async fn join(self) {
        let _ = self.writer.await;
        let _ = self.materializer.await;
    }
}

/// A handle to the writer; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    queue: mpsc::Sender<Command>,
    store: Store,
    /// The last batch acknowledged (durable in the journal).
    committed: Arc<AtomicI64>,
    /// The last batch whose rows are in the tables.
    materialized: watch::Receiver<i64>,
    /// Tells the materialiser that someone waits for it.
    reader_waiting: Arc<Notify>,
    /// Set while the materialiser fails to write a round.
    stall: watch::Receiver<Option<Stall>>,
    /// Since when the journal cannot be appended to because the disk is full, while it cannot.
    disk_full: watch::Receiver<Option<chrono::DateTime<chrono::Utc>>>,
    /// The latest checkpoint.
    checkpoint: watch::Receiver<Option<Arc<Published>>>,
    /// The log's public key (C2SP vkey).
    log_vkey: Arc<str>,
    /// The witnesses every published checkpoint is cosigned by, and how many.
    log_witnesses: Arc<LogWitnesses>,
}

impl Engine {
    /// Loads the ledger from the database, checks its invariants and starts the writer.
    pub async fn start(store: Store, log_config: LogConfig) -> anyhow::Result<(Engine, Tasks)> {
        let started = Instant::now();
        let last = journal::recover(&store).await.context("applying the batch journal")?;
        let (ledger, ids) = load(&store, last).await?;
        tracing::info!(
            accounts = ledger.accounts().count(),
            requests = ids.len(),
            batch = last,
            ms = started.elapsed().as_millis() as u64,
            "ledger loaded"
        );
        let (queue, rx) = mpsc::channel(QUEUE);
        let (to_materializer, batches) = mpsc::channel(MATERIALIZE_QUEUE);
        let unmaterialized = Arc::new(Semaphore::new(MATERIALIZE_MAX_REQUESTS));
        let (materialized_tx, materialized) = watch::channel(last);
        let materialized_tx = Arc::new(materialized_tx);
        let reader_waiting = Arc::new(Notify::new());
        let committed = Arc::new(AtomicI64::new(last));
        let (log_size_tx, log_size) = watch::channel(ledger.log_size());
        let (checkpoint_tx, checkpoint) = watch::channel(None);
        let (stall_tx, stall) = watch::channel(None);
        let (disk_full_tx, disk_full) = watch::channel(None);
        let log_vkey: Arc<str> = log_config.signer.vkey().into();
        let log_witnesses = Arc::new(LogWitnesses {
            quorum: u32::try_from(log_config.quorum).context("a witness quorum beyond u32")?,
            witnesses: log_config.witnesses.iter().map(|w| w.key.encode()).collect(),
        });
        tokio::spawn(publish(store.clone(), log_config, log_size, checkpoint_tx));
        let m = Materializer {
            store: store.clone(),
            journal: Journal::open(&store).await?,
            conn: store.writer_connection().await?,
            batches,
            done: materialized_tx.clone(),
            reader_waiting: reader_waiting.clone(),
            log_size: log_size_tx,
            stall: stall_tx,
        };
        let materializer = tokio::spawn(m.run());
        let writer = Writer {
            ledger,
            ids,
            store: store.clone(),
            journal: Journal::open(&store).await?,
            next_batch: last + 1,
            to_materializer,
            unmaterialized,
            committed: committed.clone(),
            materialized: materialized_tx,
            reader_waiting: reader_waiting.clone(),
            rx,
            disk_full: None,
            disk_full_tx,
        };
        let writer = tokio::spawn(writer.run());
        Ok((
            Engine {
                queue,
                store,
                committed,
                materialized,
                reader_waiting,
                stall,
                disk_full,
                checkpoint,
                log_vkey,
                log_witnesses,
            },
            Tasks { writer, materializer },
        ))
    }

    /// Since when writes are refused because the disk is full, while they are (cleared by
    /// the first append that succeeds; one is tried every `DISK_FULL_RETRY`).
    pub fn disk_full(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        *self.disk_full.borrow()
    }

    /// Why the tables are not catching up with the journal, while they are not.
    pub fn stall(&self) -> Option<Stall> {
        self.stall.borrow().clone()
    }

    /// The latest signed checkpoint, once the first is made.
    pub fn checkpoint(&self) -> Option<Arc<Published>> {
        self.checkpoint.borrow().clone()
    }

    /// The log's public key as a C2SP vkey.
    pub fn log_vkey(&self) -> &str {
        &self.log_vkey
    }

    /// The witnesses a published checkpoint carries cosignatures of.
    pub fn log_witnesses(&self) -> &LogWitnesses {
        &self.log_witnesses
    }

    /// The tables once they hold every batch acknowledged so far, so that a read sees every
    /// answer already given: the one way to read what the writer wrote.
    pub async fn tables(&self) -> Result<Tables<'_>, Problem> {
        self.barrier(self.committed.load(Ordering::Acquire)).await?;
        Ok(Tables::after_barrier(&self.store))
    }

    /// Waits until the tables hold every batch up to `target`.
    async fn barrier(&self, target: i64) -> Result<(), Problem> {
        let mut rx = self.materialized.clone();
        if *rx.borrow() < target {
            self.reader_waiting.notify_one();
        }
        let reached =
            tokio::time::timeout(BARRIER_TIMEOUT, rx.wait_for(|m| *m >= target)).await.is_ok_and(|r| r.is_ok());
        if reached {
            Ok(())
        } else if self.stall().is_some() {
            Err(Problem::new(
                ProblemKind::Unavailable,
                "the ledger's tables cannot catch up with its journal; the operator has been alerted (see /healthz)",
            ))
        } else {
            Err(Problem::new(ProblemKind::Unavailable, "the ledger's tables are behind its journal; try again shortly"))
        }
    }

    /// The database behind the engine.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Applies an idempotent request for `principal`: what it did, the same for every
    /// repetition of the same request, or why it was not applied.
    pub async fn execute(&self, request: Request, principal: &str) -> Executed {
        let id = request.id();
        let shape = request.shape();
        let fingerprint = request.fingerprint(principal);
        let (reply, rx) = oneshot::channel();
        let sent = self.queue.send(Command::Execute { request, fingerprint: fingerprint.clone(), reply }).await;
        let stopped = |what| EngineError::Unanswered(Problem::new(ProblemKind::Unavailable, what));
        if sent.is_err() {
            return Err(stopped("the ledger writer has stopped"));
        }
        match rx.await {
            Ok(Answered::Now(answer)) => answer,
            Ok(Answered::Stored(seq)) => self.replayed(id, shape, seq, &fingerprint).await,
            Err(_) => Err(stopped("the ledger writer stopped before answering")),
        }
    }

    /// The first answer to a committed request, read back as the receipt it was.
    async fn replayed(&self, id: Uuid, shape: Shape, seq: i64, fingerprint: &str) -> Result<Done, EngineError> {
        let internal = |what: &str| EngineError::Unanswered(Problem::new(ProblemKind::Internal, what));
        match self.stored_at(seq).await {
            Ok(Some(s)) if s.fingerprint == fingerprint => match shape.read(&s.body) {
                Ok(receipt) => Ok(Done { receipt, status: s.status, body: s.body }),
                Err(e) => {
                    tracing::error!(%id, seq, error = %e, "a stored answer does not read as its receipt");
                    Err(internal("the stored answer of this request could not be read"))
                }
            },
            Ok(Some(_)) => Err(EngineError::Conflict(id)),
            Ok(None) => Err(internal("a committed request id has no stored answer")),
            Err(p) => Err(EngineError::Unanswered(p)),
        }
    }

    /// The stored answer of request record `seq`, once the tables hold its batch (not every
    /// batch since: a replay of an old request is answered while the materialiser is behind,
    /// as when the disk is full).
    async fn stored_at(&self, seq: i64) -> Result<Option<crate::store::StoredResponse>, Problem> {
        self.barrier(seq.div_euclid(journal::SEQS_PER_BATCH)).await?;
        Tables::after_barrier(&self.store).stored_response(seq).await.map_err(|e| {
            tracing::error!(error = %e, "reading a stored answer");
            Problem::new(ProblemKind::Unavailable, "the ledger database is not answering")
        })
    }

    /// The fingerprint of a committed request id (who asked and exactly what), `None` for an
    /// id never committed.
    pub async fn committed_fingerprint(&self, id: Uuid) -> Result<Option<String>, Problem> {
        let Some(seq) = self.committed_seq(id).await? else { return Ok(None) };
        Ok(self.stored_at(seq).await?.map(|s| s.fingerprint))
    }

    /// What a committed request id that moved points did; `None` for an id never committed or
    /// one that placed or settled a hold.
    pub async fn committed_transaction(&self, id: Uuid) -> Result<Option<TransactionReceipt>, Problem> {
        let Some(seq) = self.committed_seq(id).await? else { return Ok(None) };
        Ok(self.stored_at(seq).await?.and_then(|s| match Shape::Transaction.read(&s.body) {
            Ok(Receipt::Transaction(t)) => Some(t),
            _ => None,
        }))
    }

    /// Whether request id `id` was committed (from the writer's memory; nothing is read).
    pub async fn is_committed(&self, id: Uuid) -> Result<bool, Problem> {
        Ok(self.committed_seq(id).await?.is_some())
    }

    /// The request record `seq` of a committed id, as the writer remembers it.
    async fn committed_seq(&self, id: Uuid) -> Result<Option<i64>, Problem> {
        let (reply, rx) = oneshot::channel();
        let stopped = || Problem::new(ProblemKind::Unavailable, "the ledger writer has stopped");
        self.queue.send(Command::Lookup { id, reply }).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())
    }

    /// Applies a change that is not a client's request.
    pub async fn apply(&self, op: Change) -> Result<ChangeResult, Problem> {
        let (reply, rx) = oneshot::channel();
        self.queue
            .send(Command::Change { op, reply })
            .await
            .map_err(|_| Problem::new(ProblemKind::Unavailable, "the ledger writer has stopped"))?;
        rx.await.map_err(|_| Problem::new(ProblemKind::Unavailable, "the ledger writer stopped before answering"))?
    }

    /// Asks the writer to stop after what is queued before this call; the materialiser then
    /// writes what is left and stops too (see [`Tasks::join`]).
    pub async fn stop(&self) {
        let _ = self.queue.send(Command::Stop).await;
    }

    /// Checks the in-memory invariants (panics the writer if broken); for tests.
    pub async fn check_invariants(&self) {
        let (reply, rx) = oneshot::channel();
        if self.queue.send(Command::Check { reply }).await.is_ok() {
            let _ = rx.await;
        }
    }
}
