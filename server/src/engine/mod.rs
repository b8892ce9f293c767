//! The single writer. One task owns the [`Ledger`], takes requests from a bounded queue,
//! applies up to [`MAX_BATCH`] of them in memory, appends the batch to the journal (one row,
//! one sync), and only then answers (group commit). A second task, the materialiser, writes
//! the journaled batches into the tables, many per database transaction; reads wait for it
//! with [`Engine::barrier`], so they see every answer already given. A batch whose journal
//! append fails is answered with an error and the memory is rebuilt from what is durable.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use mykey_core::api::{
    AssignmentRequest, CaptureRequest, ConversionRequest, GrantRequest, HoldRequest, JobsReport, PaymentRequest,
    ResidentCreated, TransactionRequest, VoidRequest,
};
use mykey_core::{Problem, ProblemKind};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot, watch, Notify, OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use crate::ledger::{Changes, FastMap, Ledger};
use crate::log::witness::{self, WitnessClient};
use crate::log::{self, LogSigner};
use crate::store::{RequestRecord, Store, Tables};
use crate::time::{self, Micros};
use journal::{Batch, Journal};

pub mod journal;

/// Most commands applied per database transaction.
pub const MAX_BATCH: usize = 2048;
/// Queue length; a full queue makes callers wait (back-pressure), never grows memory.
pub const QUEUE: usize = 8192;
/// Journaled batches the materialiser may be behind before the writer waits for it; a round
/// takes every batch waiting. Few clients make batches of one or two requests, so this
/// bounds the channel, and [`MATERIALIZE_MAX_REQUESTS`] bounds the memory.
pub const MATERIALIZE_QUEUE: usize = 4096;
/// Requests whose rows may wait for the materialiser (about 1 KiB each in memory) before the
/// writer waits for it. Large rounds are what make the materialiser fast: the pages random
/// payments touch (resident accounts, lots, the request ids' index) are written once per
/// round, so a round of 30,000 payments writes far fewer pages per payment than one of 500
/// (docs/benchmarks.md).
pub const MATERIALIZE_MAX_REQUESTS: usize = 65_536;
/// Most requests one round takes.
pub const MATERIALIZE_ROUND: usize = MATERIALIZE_MAX_REQUESTS / 2;
/// How long a round should take at most. Checkpoints are published after rounds, which run
/// back to back under full load: a round of 32,768 requests took 1.5 to 2.2 s on PostgreSQL
/// here, so the round's size follows the last round's time per request.
pub const MATERIALIZE_ROUND_TIME: Duration = Duration::from_millis(600);
/// Fewest requests a round may be cut to (a round's fixed cost makes small rounds look slow).
const MATERIALIZE_ROUND_MIN: usize = 4096;
const _: () = assert!(MAX_BATCH <= MATERIALIZE_MAX_REQUESTS, "a full batch must fit the materialiser's bound");
const _: () = assert!(MAX_BATCH as i64 <= journal::SEQS_PER_BATCH, "a batch's request records must fit its seqs");
/// Longest the materialiser lets journaled batches wait while nobody reads, so that each of
/// its rounds (one database transaction) merges many batches. A read waiting at
/// [`Engine::barrier`], or a queue half full, starts the round at once. A round at least
/// every 500 ms (plus its own time) keeps checkpoints coming about once a second.
pub const MATERIALIZE_EVERY: Duration = Duration::from_millis(500);
/// Longest a read waits for the materialiser before it answers `unavailable`.
pub const BARRIER_TIMEOUT: Duration = Duration::from_secs(10);
/// Least time between two checkpoints; a new one follows new leaves within this time.
pub const PUBLISH_EVERY: Duration = Duration::from_millis(500);

/// How often a materialiser that keeps failing logs the failure again (it retries every second).
const STALL_LOG_EVERY: Duration = Duration::from_secs(60);

/// The materialiser cannot write journaled batches into the tables. Acknowledged writes are
/// safe in the journal, but reads wait at [`Engine::barrier`] and answer `unavailable` until
/// it succeeds (docs/operations.md, "The materialiser is stuck").
#[derive(Clone, Debug)]
pub struct Stall {
    /// The first and last journaled batch of the round that fails.
    pub batches: (i64, i64),
    /// Failed attempts so far.
    pub attempts: u64,
    /// When the first attempt failed.
    pub since: chrono::DateTime<chrono::Utc>,
}

impl Stall {
    /// A sentence for operators; the database's error itself is only in the server's log,
    /// since it may quote a request's data.
    pub fn describe(&self) -> String {
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

/// Where the log's checkpoints get their cosignatures.
pub struct LogConfig {
    /// Signs checkpoints.
    pub signer: LogSigner,
    /// Witnesses asked to cosign each checkpoint.
    pub witnesses: Vec<WitnessClient>,
    /// Cosignatures needed before a checkpoint is published (0 without witnesses).
    pub quorum: usize,
}

impl LogConfig {
    /// Checkpoints signed by the log alone.
    pub fn unwitnessed(signer: LogSigner) -> LogConfig {
        LogConfig { signer, witnesses: Vec::new(), quorum: 0 }
    }
}

/// A signed checkpoint of the log, as published.
#[derive(Debug)]
pub struct Published {
    /// Leaves covered.
    pub size: u64,
    /// Tree head.
    pub root: log::Hash,
    /// The signed note (C2SP tlog-checkpoint), with the witnesses' cosignatures.
    pub note: String,
    /// Valid cosignatures it carries.
    pub cosignatures: usize,
}

/// A write that moves points, identified by its client id.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// `POST /v1/payments`.
    Payment(PaymentRequest),
    /// `POST /v1/grants`.
    Grant(GrantRequest),
    /// `POST /v1/conversions`.
    Conversion(ConversionRequest),
    /// `POST /v1/assignments`.
    Assignment(AssignmentRequest),
    /// `POST /v1/transactions`.
    Transaction(TransactionRequest),
    /// `POST /v1/holds`.
    Hold(HoldRequest),
    /// `POST /v1/holds/{hold}/capture`.
    Capture {
        /// The hold.
        hold: Uuid,
        /// The body.
        body: CaptureRequest,
    },
    /// `POST /v1/holds/{hold}/void`.
    Void {
        /// The hold.
        hold: Uuid,
        /// The body.
        body: VoidRequest,
    },
}

impl Request {
    /// The client's idempotency id.
    pub fn id(&self) -> Uuid {
        match self {
            Request::Payment(r) => r.id,
            Request::Grant(r) => r.id,
            Request::Conversion(r) => r.id,
            Request::Assignment(r) => r.id,
            Request::Transaction(r) => r.id,
            Request::Hold(r) => r.id,
            Request::Capture { body, .. } => body.id,
            Request::Void { body, .. } => body.id,
        }
    }

    /// SHA-256 over who asked and exactly what: the same id with another body, or from
    /// another caller, is a conflict.
    pub fn fingerprint(&self, principal: &str) -> String {
        let mut h = Sha256::new();
        h.update(principal.as_bytes());
        h.update([0]);
        h.update(serde_json::to_vec(self).expect("requests serialise"));
        hex::encode(h.finalize())
    }

    fn apply(&self, l: &mut Ledger, ch: &mut Changes, now: Micros) -> (u16, String) {
        fn render<T: Serialize>(ok: u16, r: Result<T, Problem>) -> (u16, String) {
            match r {
                Ok(v) => (ok, serde_json::to_string(&v).expect("responses serialise")),
                Err(p) => (p.status, serde_json::to_string(&p).expect("problems serialise")),
            }
        }
        match self {
            Request::Payment(r) => render(201, l.payment(ch, r, now)),
            Request::Grant(r) => render(201, l.grant(ch, r, now)),
            Request::Conversion(r) => render(201, l.conversion(ch, r, now)),
            Request::Assignment(r) => render(201, l.assignment(ch, r, now)),
            Request::Transaction(r) => render(201, l.transaction(ch, r, now)),
            Request::Hold(r) => render(201, l.hold(ch, r, now)),
            Request::Capture { hold, body } => render(200, l.capture(ch, *hold, body.id, body.amount, now)),
            Request::Void { hold, .. } => render(200, l.void(ch, *hold, now)),
        }
    }
}

/// The answer to a request: status and JSON body, exactly as first given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// JSON body (a result or a problem).
    pub body: String,
}

impl Answer {
    fn problem(p: Problem) -> Self {
        Answer { status: p.status, body: serde_json::to_string(&p).expect("problems serialise") }
    }
}

/// A change that is not a client's idempotent request: set-up (municipalities, partners,
/// shops, events, residents; the CLI, the demo and operators), the scheduled jobs, and MyKey ID
/// usage events for the log.
#[derive(Clone, Debug)]
pub enum Change {
    /// Add a municipality.
    Municipality {
        /// Id.
        id: i64,
        /// JIS prefecture code.
        prefecture_code: String,
        /// Prefecture.
        prefecture: String,
        /// Name.
        name: String,
        /// `prefecture` or `municipality`.
        kind: String,
    },
    /// Add a partner.
    Partner {
        /// Japanese name.
        name: String,
        /// English name.
        name_en: String,
        /// Its points.
        point_kind: String,
        /// Conversion method.
        exchange_method: String,
    },
    /// Add a shop.
    Shop {
        /// Name.
        name: String,
        /// Whose points it accepts.
        municipality: i64,
    },
    /// Add an event programme.
    Event {
        /// Organiser.
        municipality: i64,
        /// Name.
        name: String,
        /// When its points expire.
        expires_at: Micros,
    },
    /// Add residents.
    Residents {
        /// Home municipality.
        home: i64,
        /// How many (bounded by [`MAX_BATCH`]).
        count: usize,
    },
    /// Append MyKey ID usage events to the log (bounded by [`MAX_BATCH`]).
    LogUsage {
        /// The events, in the order they happened.
        events: Vec<crate::ledger::leaf::UsageEvent>,
    },
    /// Run the scheduled jobs as of `now`.
    Jobs {
        /// The clock the jobs use (tests move it forward).
        now: Micros,
    },
}

/// What a set-up operation returned.
#[derive(Clone, Debug)]
pub enum ChangeResult {
    /// The new entity's id.
    Id(i64),
    /// New residents.
    Residents(Vec<ResidentCreated>),
    /// The jobs' report.
    Jobs(JobsReport),
    /// Leaf indexes of logged events.
    Leaves(Vec<u64>),
}

enum Command {
    Execute {
        request: Request,
        fingerprint: String,
        reply: oneshot::Sender<Result<Answer, StoredAnswer>>,
    },
    Change {
        op: Change,
        reply: oneshot::Sender<Result<ChangeResult, Problem>>,
    },
    Check {
        reply: oneshot::Sender<()>,
    },
    /// The seq of a committed request id's record.
    Lookup {
        id: Uuid,
        reply: oneshot::Sender<Option<i64>>,
    },
    Stop,
}

/// The id was committed in an earlier batch; the stored answer (this record) must be read.
struct StoredAnswer(i64);

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
    /// The latest checkpoint.
    checkpoint: watch::Receiver<Option<Arc<Published>>>,
    /// The log's public key (C2SP vkey).
    log_vkey: Arc<str>,
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
        let log_vkey: Arc<str> = log_config.signer.vkey().into();
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
        };
        let writer = tokio::spawn(writer.run());
        Ok((
            Engine { queue, store, committed, materialized, reader_waiting, stall, checkpoint, log_vkey },
            Tasks { writer, materializer },
        ))
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

    /// The tables once they hold every batch acknowledged so far, so that a read sees every
    /// answer already given: the one way to read what the writer wrote.
    pub async fn tables(&self) -> Result<Tables<'_>, Problem> {
        self.barrier().await?;
        Ok(Tables::after_barrier(&self.store))
    }

    /// Waits until the tables hold every batch acknowledged so far.
    async fn barrier(&self) -> Result<(), Problem> {
        let target = self.committed.load(Ordering::Acquire);
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

    /// Applies an idempotent request for `principal` and returns its answer, which is the
    /// same for every repetition of the same request.
    pub async fn execute(&self, request: Request, principal: &str) -> Answer {
        let id = request.id();
        let fingerprint = request.fingerprint(principal);
        let (reply, rx) = oneshot::channel();
        let sent = self.queue.send(Command::Execute { request, fingerprint: fingerprint.clone(), reply }).await;
        if sent.is_err() {
            return Answer::problem(Problem::new(ProblemKind::Unavailable, "the ledger writer has stopped"));
        }
        match rx.await {
            Ok(Ok(answer)) => answer,
            Ok(Err(StoredAnswer(seq))) => self.replayed(id, seq, &fingerprint).await,
            Err(_) => {
                Answer::problem(Problem::new(ProblemKind::Unavailable, "the ledger writer stopped before answering"))
            }
        }
    }

    async fn replayed(&self, id: Uuid, seq: i64, fingerprint: &str) -> Answer {
        match self.stored_at(seq).await {
            Ok(Some(s)) if s.fingerprint == fingerprint => Answer { status: s.status, body: s.body },
            Ok(Some(_)) => Answer::problem(conflict(id)),
            Ok(None) => {
                Answer::problem(Problem::new(ProblemKind::Internal, "a committed request id has no stored answer"))
            }
            Err(p) => Answer::problem(p),
        }
    }

    /// The stored answer of request record `seq`, once the tables hold every acknowledged batch.
    async fn stored_at(&self, seq: i64) -> Result<Option<crate::store::StoredResponse>, Problem> {
        self.tables().await?.stored_response(seq).await.map_err(|e| {
            tracing::error!(error = %e, "reading a stored answer");
            Problem::new(ProblemKind::Unavailable, "the ledger database is not answering")
        })
    }

    /// The stored answer of a committed request id, `None` for an id never committed.
    pub async fn stored_response(&self, id: Uuid) -> Result<Option<crate::store::StoredResponse>, Problem> {
        let (reply, rx) = oneshot::channel();
        let stopped = || Problem::new(ProblemKind::Unavailable, "the ledger writer has stopped");
        self.queue.send(Command::Lookup { id, reply }).await.map_err(|_| stopped())?;
        let Some(seq) = rx.await.map_err(|_| stopped())? else { return Ok(None) };
        self.stored_at(seq).await
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

fn send(replies: Vec<Waiter>) {
    for r in replies {
        match r {
            Waiter::Execute(tx, a) => drop(tx.send(a)),
            Waiter::Change(tx, a) => drop(tx.send(a)),
            Waiter::Check(tx) => drop(tx.send(())),
        }
    }
}

/// Writes journaled batches into the tables, as many per transaction as are waiting.
struct Materializer {
    store: Store,
    journal: Journal,
    conn: crate::store::WriterConnection,
    /// Journaled batches, each with its share of [`MATERIALIZE_MAX_REQUESTS`].
    batches: mpsc::Receiver<(Batch, OwnedSemaphorePermit)>,
    done: Arc<watch::Sender<i64>>,
    /// Someone waits for the tables: materialise now instead of after [`MATERIALIZE_EVERY`].
    reader_waiting: Arc<Notify>,
    /// Leaves in the log's tables, for the checkpoint publisher.
    log_size: watch::Sender<u64>,
    /// Set while a round fails.
    stall: watch::Sender<Option<Stall>>,
}

impl Materializer {
    async fn run(mut self) {
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
                metrics::gauge!("mykey_materialize_stalled").set(1.0);
                let stall = self.stall.borrow().clone().map_or_else(
                    || Stall { batches: (first_batch, through), attempts: 1, since: chrono::Utc::now() },
                    |s| Stall { attempts: s.attempts + 1, ..s },
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
                metrics::gauge!("mykey_materialize_stalled").set(0.0);
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

/// Signs a checkpoint of what the tables hold whenever the log has grown, at most once per
/// [`PUBLISH_EVERY`]; the first one at start-up. With witnesses configured, a checkpoint is
/// published only once a quorum of them has cosigned it.
async fn publish(
    store: Store,
    config: LogConfig,
    mut sizes: watch::Receiver<u64>,
    out: watch::Sender<Option<Arc<Published>>>,
) {
    let client = reqwest::Client::new();
    // The size each witness last cosigned, as far as the log knows (0: ask it).
    let mut cosigned: Vec<u64> = vec![0; config.witnesses.len()];
    let mut last = None;
    loop {
        let size = *sizes.borrow_and_update();
        if last != Some(size) {
            match log::tree_head(&store, size).await {
                Ok(root) => {
                    let note = config.signer.checkpoint(size, root);
                    let (lines, got) =
                        collect_cosignatures(&store, &client, &config.witnesses, &mut cosigned, size, &note).await;
                    if got >= config.quorum {
                        let note = format!("{note}{lines}");
                        if let Err(e) = store.insert_checkpoint(size, &note, got, crate::time::now()).await {
                            tracing::warn!(error = format!("{e:#}"), "recording a checkpoint");
                        }
                        out.send_replace(Some(Arc::new(Published { size, root, note, cosignatures: got })));
                        last = Some(size);
                        metrics::gauge!("mykey_log_size").set(size as f64);
                    } else {
                        tracing::warn!(
                            size,
                            got,
                            quorum = config.quorum,
                            "too few witnesses cosigned; the checkpoint is not published"
                        );
                    }
                }
                Err(e) => tracing::error!(error = format!("{e:#}"), "computing a tree head"),
            }
        }
        tokio::time::sleep(PUBLISH_EVERY).await;
        if last == Some(*sizes.borrow()) && sizes.changed().await.is_err() {
            return;
        }
    }
}

/// Asks every witness (at once) to cosign `note`; returns the valid cosignature lines.
async fn collect_cosignatures(
    store: &Store,
    client: &reqwest::Client,
    witnesses: &[WitnessClient],
    cosigned: &mut [u64],
    size: u64,
    note: &str,
) -> (String, usize) {
    let asks = witnesses.iter().zip(cosigned.iter().copied()).map(|(w, old)| async move {
        let mut old = old;
        // Two rounds: a witness that knows another size says so (409), then gets a proof from there.
        for _ in 0..2 {
            if old > size {
                tracing::error!(
                    witness = w.key.name(),
                    old,
                    size,
                    "a witness has cosigned a larger tree than the log has"
                );
                return None;
            }
            let proof = match log::consistency_proof(store, old, size).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "building a consistency proof");
                    return None;
                }
            };
            match witness::submit(client, w, old, &proof, note).await {
                Ok(witness::Answer::Cosigned(line)) => return Some((line, size)),
                Ok(witness::Answer::Conflict(known)) => old = known,
                Err(e) => {
                    tracing::warn!(error = format!("{e:#}"), "asking a witness");
                    return None;
                }
            }
        }
        None
    });
    let answers = futures_util::future::join_all(asks).await;
    let mut lines = String::new();
    let mut got = 0;
    for (i, a) in answers.into_iter().enumerate() {
        if let Some((line, at)) = a {
            lines.push_str(&line);
            cosigned[i] = at;
            got += 1;
        }
    }
    (lines, got)
}

fn conflict(id: Uuid) -> Problem {
    Problem::new(
        ProblemKind::IdempotencyConflict,
        format!("id {id} was already used with a different request; use a new id for a new request"),
    )
}

/// Every committed request id with its record's seq (looked up once per request).
type Ids = FastMap<Uuid, i64>;

/// The ledger and the ids of every request ever answered, as the tables hold them.
/// `last` is the last batch in use: the next batch's request records must come after every
/// stored one, or inserting them would skip them as already written.
async fn load(store: &Store, last: i64) -> anyhow::Result<(Ledger, Ids)> {
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

struct Writer {
    ledger: Ledger,
    ids: Ids,
    store: Store,
    journal: Journal,
    next_batch: i64,
    to_materializer: mpsc::Sender<(Batch, OwnedSemaphorePermit)>,
    /// Bounds the requests queued for the materialiser.
    unmaterialized: Arc<Semaphore>,
    committed: Arc<AtomicI64>,
    materialized: Arc<watch::Sender<i64>>,
    reader_waiting: Arc<Notify>,
    rx: mpsc::Receiver<Command>,
}

enum Waiter {
    Execute(oneshot::Sender<Result<Answer, StoredAnswer>>, Result<Answer, StoredAnswer>),
    Change(oneshot::Sender<Result<ChangeResult, Problem>>, Result<ChangeResult, Problem>),
    Check(oneshot::Sender<()>),
}

impl Writer {
    async fn run(mut self) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        loop {
            // Sleep until a command arrives or the next hold is due.
            let wait = self
                .ledger
                .next_hold_expiry()
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
        let now = time::now();
        let mut ch = Changes::default();
        self.ledger.expire_holds(&mut ch, now);
        let mut records: Vec<RequestRecord> = Vec::new();
        let mut pending: FastMap<Uuid, usize> = Default::default();
        let mut replies = Vec::with_capacity(commands.len());
        for c in commands {
            match c {
                Command::Execute { request, fingerprint, reply } => {
                    let id = request.id();
                    if let Some(&i) = pending.get(&id) {
                        let r: &RequestRecord = &records[i];
                        let answer = if r.fingerprint == fingerprint {
                            Answer { status: r.status, body: r.body.clone() }
                        } else {
                            Answer::problem(conflict(id))
                        };
                        replies.push(Waiter::Execute(reply, Ok(answer)));
                    } else if let Some(&seq) = self.ids.get(&id) {
                        // Committed already: answer at once, the caller reads the store.
                        let _ = reply.send(Err(StoredAnswer(seq)));
                    } else {
                        let (status, body) = request.apply(&mut self.ledger, &mut ch, now);
                        metrics::counter!("mykey_requests_total", "status" => status.to_string()).increment(1);
                        pending.insert(id, records.len());
                        let seq = journal::request_seq(self.next_batch, records.len());
                        records.push(RequestRecord {
                            seq,
                            id,
                            fingerprint,
                            status,
                            body: body.clone(),
                            created_at: now,
                        });
                        replies.push(Waiter::Execute(reply, Ok(Answer { status, body })));
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
                tracing::error!(
                    error = format!("{e:#}"),
                    "a batch failed to reach the journal; rebuilding the ledger from what is durable"
                );
                let failed = || {
                    Answer::problem(Problem::new(
                        ProblemKind::Internal,
                        "the ledger could not confirm that this request was stored; send it again with the same id \
                         to learn whether it was applied",
                    ))
                };
                for r in replies {
                    match r {
                        Waiter::Execute(tx, _) => drop(tx.send(Ok(failed()))),
                        Waiter::Change(tx, _) => {
                            drop(tx.send(Err(Problem::new(ProblemKind::Internal, "the change could not be stored"))))
                        }
                        Waiter::Check(tx) => drop(tx.send(())),
                    }
                }
                self.recover().await;
                return;
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
        match op {
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
        }
    }
}
