//! The single writer: applies batches in memory, journals each, then answers.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use mykey_core::{Problem, ProblemKind};
use tokio::sync::{mpsc, oneshot, watch, Notify, OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use super::answer::{Done, EngineError};
use super::bounds::*;
use super::command::{Answered, Command};
use super::request::{Change, ChangeResult};
use crate::ledger::{Changes, FastMap, Ledger, Refusal};
use crate::store::journal::{self, Batch, Journal};
use crate::store::{RequestRecord, Store};
use crate::time::{self, Micros};

/// Every committed request id with its record's seq (looked up once per request). Refusals
/// are not kept (ids refused before this rule came in still are).
pub(super) type Ids = FastMap<Uuid, i64>;

/// The ledger and the ids of every request ever answered, as the tables hold them.
/// `last` is the last batch in use: the next batch's request records must come after every
/// stored one, or inserting them would skip them as already written.
pub(super) async fn load(store: &Store, last: i64) -> anyhow::Result<(Ledger, Ids)> {
    let snapshot = store.load_snapshot().await.context("loading the ledger")?;
    let ledger = Ledger::from_snapshot(snapshot);
    ledger.check_invariants();
    let ids: Ids = store.request_ids().await?.into_iter().collect();
    if let Some(&max) = ids.values().max() {
        anyhow::ensure!(
            max < journal::request_seq(last + 1, 0),
            "request records reach seq {max}, beyond batch {last}: the batch watermark \
             (materialized.through_batch) went back; restore it before serving"
        );
    }
    Ok((ledger, ids))
}

pub(super) struct Writer {
    pub(super) ledger: Ledger,
    pub(super) ids: Ids,
    pub(super) store: Store,
    pub(super) journal: Journal,
    pub(super) next_batch: i64,
    pub(super) to_materializer: mpsc::Sender<(Batch, OwnedSemaphorePermit)>,
    /// Bounds the requests queued for the materialiser.
    pub(super) unmaterialized: Arc<Semaphore>,
    pub(super) committed: Arc<AtomicI64>,
    pub(super) materialized: Arc<watch::Sender<i64>>,
    pub(super) reader_waiting: Arc<Notify>,
    pub(super) rx: mpsc::Receiver<Command>,
    /// Since when appends fail because the disk is full, and when the last try was.
    pub(super) disk_full: Option<(chrono::DateTime<chrono::Utc>, Instant)>,
    pub(super) disk_full_tx: watch::Sender<Option<chrono::DateTime<chrono::Utc>>>,
}

/// A caller waiting for its answer until the batch is durable.
pub(super) enum Waiter {
    Execute(oneshot::Sender<Answered>, Result<Done, EngineError>),
    Change(oneshot::Sender<Result<ChangeResult, Problem>>, Result<ChangeResult, Problem>),
    Check(oneshot::Sender<()>),
}

impl Writer {
    pub(super) async fn run(mut self) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        loop {
            // Sleep until a command arrives or the next hold is due.
            let wait = self
                .ledger
                .next_due()
                .map(|at| Duration::from_micros((at - time::now()).clamp(0, 60 * time::SECOND) as u64));
            let first = match wait {
                Some(d) => match tokio::time::timeout(d, self.rx.recv()).await {
                    Ok(c) => c,
                    Err(_) => {
                        self.batch(Vec::new()).await;
                        continue;
                    }
                },
                None => self.rx.recv().await,
            };
            let Some(first) = first else { return };
            // Let the callers just answered run first: each one that sends its next request
            // now joins this batch and its sync instead of waiting a whole batch for the next
            // (two clients in-process: 7,555 payments/s instead of 4,205; docs/benchmarks.md).
            tokio::task::yield_now().await;
            let mut stop = matches!(first, Command::Stop);
            if !stop {
                batch.push(first);
            }
            while !stop && batch.len() < MAX_BATCH {
                match self.rx.try_recv() {
                    Ok(Command::Stop) => stop = true,
                    Ok(c) => batch.push(c),
                    Err(_) => break,
                }
            }
            self.batch(std::mem::take(&mut batch)).await;
            if stop {
                return;
            }
        }
    }

    async fn batch(&mut self, commands: Vec<Command>) {
        if self.disk_full.is_some_and(|(_, tried)| tried.elapsed() < DISK_FULL_RETRY) {
            refuse_for_full_disk(commands, &self.ids);
            return;
        }
        let now = time::now();
        let mut ch = Changes::default();
        self.ledger.expire_holds(&mut ch, now);
        self.ledger.return_vouchers(&mut ch, now);
        let mut records: Vec<RequestRecord> = Vec::new();
        // Requests applied in this batch: where each one's record is, and its answer.
        let mut pending: FastMap<Uuid, (usize, Done)> = Default::default();
        let mut replies = Vec::with_capacity(commands.len());
        for c in commands {
            match c {
                Command::Execute { request, fingerprint, reply } => {
                    let id = request.id();
                    if let Some((i, done)) = pending.get(&id) {
                        let answer = if records[*i].fingerprint == fingerprint {
                            Ok(done.clone())
                        } else {
                            Err(EngineError::Conflict(id))
                        };
                        replies.push(Waiter::Execute(reply, answer));
                    } else if let Some(&seq) = self.ids.get(&id) {
                        // Committed already: answer at once, the caller reads the store.
                        let _ = reply.send(Answered::Stored(seq));
                    } else {
                        let done = match request.apply(&mut self.ledger, &mut ch, now) {
                            Ok(done) => done,
                            Err(refusal) => {
                                // A refusal changed nothing: it is answered, not remembered, so
                                // refused requests cost no memory or rows, and the same id may
                                // be sent again (corrected, or once the points are there).
                                let status = refusal.kind().status().to_string();
                                metrics::counter!("mykey_requests_total", "status" => status).increment(1);
                                replies.push(Waiter::Execute(reply, Err(refusal.into())));
                                continue;
                            }
                        };
                        metrics::counter!("mykey_requests_total", "status" => done.status.to_string()).increment(1);
                        let seq = journal::request_seq(self.next_batch, records.len());
                        records.push(RequestRecord {
                            seq,
                            id,
                            fingerprint,
                            status: done.status,
                            body: done.body.clone(),
                            created_at: now,
                        });
                        pending.insert(id, (records.len() - 1, done.clone()));
                        replies.push(Waiter::Execute(reply, Ok(done)));
                    }
                }
                Command::Change { op, reply } => {
                    let r = self.apply_change(&mut ch, op, now);
                    replies.push(Waiter::Change(reply, r));
                }
                Command::Check { reply } => {
                    self.ledger.check_invariants();
                    replies.push(Waiter::Check(reply));
                }
                Command::Lookup { id, reply } => drop(reply.send(self.ids.get(&id).copied())),
                Command::Stop => unreachable!("the run loop takes Stop out"),
            }
        }
        if !ch.is_empty() || !records.is_empty() {
            let started = Instant::now();
            let batch = Batch { seq: self.next_batch, changes: ch, requests: records };
            let appended = self.journal.append(batch.seq, batch.encode()).await;
            metrics::histogram!("mykey_commit_seconds").record(started.elapsed().as_secs_f64());
            metrics::histogram!("mykey_batch_requests").record(batch.requests.len() as f64);
            if let Err(e) = appended {
                let full = crate::failure::is_disk_full(e.as_ref());
                tracing::error!(
                    error = format!("{e:#}"),
                    disk_full = full,
                    "a batch failed to reach the journal; rebuilding the ledger from what is durable"
                );
                if full {
                    let since = self.disk_full.map_or_else(chrono::Utc::now, |(since, _)| since);
                    self.disk_full = Some((since, Instant::now()));
                    self.disk_full_tx.send_replace(Some(since));
                    metrics::gauge!("mykey_disk_full").set(1.0);
                }
                let failed = || {
                    EngineError::Unanswered(if full {
                        crate::failure::disk_full()
                    } else {
                        Problem::new(
                            ProblemKind::Internal,
                            "the ledger could not confirm that this request was stored; send it again with the same \
                             id to learn whether it was applied",
                        )
                    })
                };
                for r in replies {
                    match r {
                        Waiter::Execute(tx, _) => drop(tx.send(Answered::Now(Err(failed())))),
                        Waiter::Change(tx, _) => {
                            drop(tx.send(Err(Problem::new(ProblemKind::Internal, "the change could not be stored"))))
                        }
                        Waiter::Check(tx) => drop(tx.send(())),
                    }
                }
                self.recover().await;
                return;
            }
            if let Some((since, _)) = self.disk_full.take() {
                tracing::info!(since = %since, "the disk has room again: writes are accepted");
                self.disk_full_tx.send_replace(None);
                metrics::gauge!("mykey_disk_full").set(0.0);
            }
            self.next_batch += 1;
            self.committed.store(batch.seq, Ordering::Release);
            self.ids.extend(batch.requests.iter().map(|r| (r.id, r.seq)));
            send(replies);
            // Back-pressure: waits while the materialiser is MATERIALIZE_QUEUE batches or
            // MATERIALIZE_MAX_REQUESTS requests behind.
            let share = batch.requests.len().clamp(1, MAX_BATCH) as u32;
            let permit =
                self.unmaterialized.clone().acquire_many_owned(share).await.expect("the semaphore is never closed");
            if self.to_materializer.send((batch, permit)).await.is_err() {
                tracing::error!("the materialiser stopped; reads will report the ledger unavailable");
            }
            // Half full: small batches (few clients) would otherwise fill the queue before
            // MATERIALIZE_EVERY and make the writer wait.
            if self.to_materializer.capacity() < MATERIALIZE_QUEUE / 2
                || self.unmaterialized.available_permits() < MATERIALIZE_MAX_REQUESTS - MATERIALIZE_ROUND
            {
                self.reader_waiting.notify_one();
            }
            return;
        }
        send(replies);
    }

    /// After a failed append: let the materialiser finish what it was given, apply whatever
    /// the journal holds beyond it (an append can fail after it became durable), and reload.
    async fn recover(&mut self) {
        let target = self.committed.load(Ordering::Acquire);
        self.reader_waiting.notify_one();
        let _ = self.materialized.subscribe().wait_for(|m| *m >= target).await;
        loop {
            let reloaded = async {
                let last = journal::recover(&self.store).await?;
                let (ledger, ids) = load(&self.store, last).await?;
                let journal = Journal::open(&self.store).await?;
                anyhow::Ok((last, ledger, ids, journal))
            };
            match reloaded.await {
                Ok((last, ledger, ids, journal)) => {
                    (self.ledger, self.ids, self.journal) = (ledger, ids, journal);
                    self.next_batch = last + 1;
                    self.committed.store(last, Ordering::Release);
                    self.materialized.send_replace(last);
                    return;
                }
                Err(e) => tracing::error!(error = format!("{e:#}"), "recovering the ledger"),
            }
            // Answering from a memory that disagrees with the database would be worse than
            // waiting for it.
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    fn apply_change(&mut self, ch: &mut Changes, op: Change, now: Micros) -> Result<ChangeResult, Problem> {
        let l = &mut self.ledger;
        let applied = match op {
            Change::Municipality { id, prefecture_code, prefecture, name, kind } => l
                .add_municipality(
                    ch,
                    id,
                    &prefecture_code,
                    &prefecture,
                    &name,
                    &kind,
                    crate::ledger::DEFAULT_EXPIRY_DAYS,
                    now,
                )
                .map(|()| ChangeResult::Id(id)),
            Change::Partner { name, name_en, point_kind, exchange_method } => {
                Ok(ChangeResult::Id(l.add_partner(ch, &name, &name_en, &point_kind, &exchange_method, now)))
            }
            Change::Shop { name, municipality } => l.add_shop(ch, &name, municipality, now).map(ChangeResult::Id),
            Change::Event { municipality, name, expires_at } => {
                l.add_event(ch, municipality, &name, expires_at).map(ChangeResult::Id)
            }
            Change::Residents { home, count } => {
                if count == 0 || count > MAX_BATCH {
                    return Err(Problem::new(
                        ProblemKind::InvalidRequest,
                        format!("create 1 to {MAX_BATCH} residents at once"),
                    ));
                }
                (0..count)
                    .map(|_| l.add_resident(ch, home, now))
                    .collect::<Result<Vec<_>, _>>()
                    .map(ChangeResult::Residents)
            }
            Change::LogUsage { events } => {
                if events.len() > MAX_BATCH {
                    return Err(Problem::new(
                        ProblemKind::InvalidRequest,
                        format!("log at most {MAX_BATCH} events at once"),
                    ));
                }
                Ok(ChangeResult::Leaves(l.log_usage(ch, &events)))
            }
            Change::Jobs { now } => Ok(ChangeResult::Jobs(l.run_jobs(ch, now))),
        };
        applied.map_err(Refusal::problem)
    }
}

/// While the disk is full: every new write is refused at once (it changed nothing); a request
/// committed before is still answered from the store, and look-ups and checks as usual.
fn refuse_for_full_disk(commands: Vec<Command>, ids: &Ids) {
    for c in commands {
        match c {
            Command::Execute { request, reply, .. } => drop(reply.send(match ids.get(&request.id()) {
                Some(&seq) => Answered::Stored(seq),
                None => Answered::Now(Err(EngineError::Unanswered(crate::failure::disk_full()))),
            })),
            Command::Change { reply, .. } => drop(reply.send(Err(crate::failure::disk_full()))),
            Command::Check { reply } => drop(reply.send(())),
            Command::Lookup { id, reply } => drop(reply.send(ids.get(&id).copied())),
            Command::Stop => unreachable!("the run loop takes Stop out"),
        }
    }
}

/// Hands each waiter its answer.
pub(super) fn send(replies: Vec<Waiter>) {
    for r in replies {
        match r {
            Waiter::Execute(tx, a) => drop(tx.send(Answered::Now(a))),
            Waiter::Change(tx, a) => drop(tx.send(a)),
            Waiter::Check(tx) => drop(tx.send(())),
        }
    }
}
