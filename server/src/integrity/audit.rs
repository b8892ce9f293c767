//! `mykey-server audit`: recompute the log from the ledger's own rows and compare it with the
//! stored log and with a signed checkpoint. Any edited, deleted, inserted or reordered row of
//! `transactions`, `postings` or `mykey_id_events` changes a recomputed leaf; a rewritten log (or a database
//! rolled back and written again) no longer matches a checkpoint signed earlier.

use anyhow::Context;
use mykey_core::merkle::{leaf_hash, RootBuilder};
use mykey_core::note::{Checkpoint, Note, VerifierKey};

use crate::ledger::leaf::{transaction_leaf, usage_leaf, UsageEvent};
use crate::ledger::Transaction;
use crate::store::{repair, NativeConnection, Store};
use uuid::Uuid;

/// Findings reported at most; the first is the one to act on.
pub const MAX_FINDINGS: usize = 20;

/// Something that does not match.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// The log position where the difference starts.
    pub leaf: u64,
    /// The ledger transaction at that position, if any.
    pub seq: Option<i64>,
    /// Its id (or the MyKey ID event's).
    pub transaction: Option<Uuid>,
    /// The accounts it touches.
    pub accounts: Vec<i64>,
    /// What differs.
    pub what: String,
}

/// The result of an audit.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AuditReport {
    /// The checkpoint audited against.
    pub checkpoint_size: u64,
    /// Transactions recomputed.
    pub checked: u64,
    /// Differences, first first.
    pub findings: Vec<Finding>,
}

impl AuditReport {
    /// True when the ledger, the log and the checkpoint agree.
    pub fn clean(&self) -> bool {
        self.findings.is_empty()
    }
}

/// Reads a signed checkpoint and checks the log's signature on it.
pub fn verified_checkpoint(note: &str, log_key: &VerifierKey) -> anyhow::Result<Checkpoint> {
    let note = Note::parse(note).map_err(|e| anyhow::anyhow!("the checkpoint: {e}"))?;
    note.verify(log_key).map_err(|e| anyhow::anyhow!("the checkpoint: {e}"))?;
    Checkpoint::parse(&note.text).map_err(|e| anyhow::anyhow!("the checkpoint: {e}"))
}

/// Audits the first `checkpoint.size` leaves; `progress` is told how many are done.
pub async fn audit(store: &Store, checkpoint: &Checkpoint, progress: impl Fn(u64)) -> anyhow::Result<AuditReport> {
    let size = checkpoint.size;
    let mut report = AuditReport { checkpoint_size: size, checked: 0, findings: Vec::new() };
    let mut from_ledger = RootBuilder::default();
    let mut from_log = RootBuilder::default();

    // Both sides are read in chunks: a bounded buffer, and far fewer hand-offs to the database
    // driver's thread than row by row. The ledger's side in log order: a usage event sits at
    // the leaf index recorded with it; transactions fill the other positions in seq order.
    // Each side is read by its own task, a few chunks ahead, so that reading the database and
    // hashing overlap (two cores: SQLite's reads on one, recomputing leaves on the other).
    let mut txs = Feed::start(
        {
            let conn = native(store);
            move |after| {
                let conn = conn.clone();
                async move {
                    let mut conn = connected(&conn).await?;
                    let txs = Store::transactions_after_native(conn.as_mut().expect("connected"), after, CHUNK).await?;
                    // Recomputed here, beside the main loop, on the other core.
                    Ok(txs.into_iter().map(|t| (leaf_hash(&transaction_leaf(&t)), t)).collect())
                }
            }
        },
        |(_, t): &([u8; 32], Transaction)| t.seq,
    );
    let mut events = Feed::start(
        {
            let store = store.clone();
            move |after| {
                let store = store.clone();
                async move { read_usage(&store, after).await }
            }
        },
        |e: &(i64, UsageEvent)| e.0,
    );
    let mut leaves = Feed::start(
        {
            let conn = native(store);
            move |after| {
                let conn = conn.clone();
                async move { read_leaves(connected(&conn).await?.as_mut().expect("connected"), after).await }
            }
        },
        |l: &(i64, i64, [u8; 32])| l.0,
    );
    let mut index: u64 = 0;
    // Bounded by the rows of the database.
    loop {
        txs.refill().await?;
        events.refill().await?;
        leaves.refill().await?;
        let next_event_at = events.buf.front().map(|(at, _)| *at as u64);
        let here = match next_event_at {
            Some(at) if at == index => events.buf.pop_front().map(|(_, e)| Item::Usage(e)),
            Some(at) if at < index => {
                // A usage row whose position was already taken: inserted or moved.
                let (_, e) = events.buf.pop_front().expect("looked at above");
                report.findings.push(usage_finding(index, &e, format!(
                    "MyKey ID event {} claims log leaf {at}, which holds something else: a row was inserted or its position edited",
                    e.id
                )));
                continue;
            }
            _ => txs.buf.pop_front().map(|(h, t)| Item::Transaction(t, h)),
        };
        let stored = leaves.buf.pop_front().map(|(_, seq, hash)| (seq, hash));
        if here.is_none() && stored.is_none() {
            break;
        }
        if index >= size {
            // Beyond the checkpoint: newer than what was signed; not audited here.
            break;
        }
        if let Some((_, h)) = stored {
            from_log.push(h);
        }
        match (&here, stored) {
            (Some(Item::Transaction(o, recomputed)), Some((stored_seq, stored_hash))) => {
                let recomputed = *recomputed;
                from_ledger.push(recomputed);
                if stored_seq == 0 {
                    report.findings.push(finding(index, o, format!(
                        "log leaf {index} records a MyKey ID event, but the ledger has no event at that position: its row was deleted or moved"
                    )));
                } else if stored_seq != o.seq {
                    report.findings.push(finding(index, o, format!(
                        "log leaf {index} records transaction {stored_seq}, but the ledger's transaction at that position is {}: a transaction was deleted, inserted or reordered",
                        o.seq
                    )));
                } else if recomputed != stored_hash {
                    report.findings.push(finding(index, o, format!(
                        "transaction {} no longer matches log leaf {index}: its rows were edited, or the stored leaf was",
                        o.seq
                    )));
                }
            }
            (Some(Item::Usage(e)), Some((stored_seq, stored_hash))) => {
                let recomputed = leaf_hash(&usage_leaf(e));
                from_ledger.push(recomputed);
                if stored_seq != 0 {
                    report.findings.push(usage_finding(index, e, format!(
                        "MyKey ID event {} claims log leaf {index}, which records transaction {stored_seq}: the row's position was edited",
                        e.id
                    )));
                } else if recomputed != stored_hash {
                    report.findings.push(usage_finding(index, e, format!(
                        "MyKey ID event {} ({} of {}) no longer matches log leaf {index}: its row was edited, or the stored leaf was",
                        e.id, e.kind, e.mykey_id
                    )));
                }
            }
            (None, Some((stored_seq, _))) => report.findings.push(Finding {
                leaf: index,
                seq: (stored_seq != 0).then_some(stored_seq),
                transaction: None,
                accounts: Vec::new(),
                what: if stored_seq == 0 {
                    format!("log leaf {index} records a MyKey ID event the database no longer has: its row was deleted")
                } else {
                    format!("log leaf {index} records transaction {stored_seq}, which the ledger no longer has: rows were deleted")
                },
            }),
            (Some(Item::Transaction(o, recomputed)), None) => {
                from_ledger.push(*recomputed);
                report.findings.push(finding(index, o, format!("transaction {} has no log leaf: a row was inserted, or the log was cut short", o.seq)));
            }
            (Some(Item::Usage(e)), None) => {
                from_ledger.push(leaf_hash(&usage_leaf(e)));
                report.findings.push(usage_finding(index, e, format!("MyKey ID event {} has no log leaf: a row was inserted, or the log was cut short", e.id)));
            }
            (None, None) => unreachable!("checked above"),
        }
        index += 1;
        report.checked = index;
        if index % 10_000 == 0 {
            progress(index);
        }
        if report.findings.len() >= MAX_FINDINGS {
            break;
        }
    }
    progress(report.checked);
    if report.findings.is_empty() {
        if index < size {
            report.findings.push(Finding {
                leaf: index,
                seq: None,
                transaction: None,
                accounts: Vec::new(),
                what: format!("the checkpoint covers {size} leaves but the database has only {index}: the database was rolled back or cut short"),
            });
        } else if from_log.root() != checkpoint.root {
            report.findings.push(Finding {
                leaf: 0,
                seq: None,
                transaction: None,
                accounts: Vec::new(),
                what: format!("the stored log does not match the checkpoint signed at size {size}: the log was rewritten (or the database is a fork)"),
            });
        } else if from_ledger.root() != checkpoint.root {
            report.findings.push(Finding {
                leaf: 0,
                seq: None,
                transaction: None,
                accounts: Vec::new(),
                what: "the ledger's rows do not hash to the signed checkpoint".to_owned(),
            });
        }
    }
    Ok(report)
}

/// Transactions and log leaves read per query.
const CHUNK: i64 = 20_000;

/// Chunks read ahead per side (bounds the memory: 3 sides × (2 + 1) × [`CHUNK`] rows).
const AHEAD: usize = 2;

/// One side of the comparison, in key order: a task reads chunks ahead into a bounded
/// channel; the audit takes them from a buffer.
struct Feed<T> {
    buf: std::collections::VecDeque<T>,
    rx: tokio::sync::mpsc::Receiver<anyhow::Result<Vec<T>>>,
    done: bool,
}

impl<T: Send + 'static> Feed<T> {
    /// Starts the reader: `read(after)` gives the next chunk after key `after`; `key` is the
    /// key of an item. The task ends after a short chunk, an error, or when the audit stops.
    fn start<F, Fut>(read: F, key: fn(&T) -> i64) -> Feed<T>
    where
        F: Fn(i64) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = anyhow::Result<Vec<T>>> + Send,
    {
        let (tx, rx) = tokio::sync::mpsc::channel(AHEAD);
        tokio::spawn(async move {
            let mut after = -1;
            // Bounded by the rows of the database: each round moves `after` forward.
            loop {
                let chunk = read(after).await;
                let last = match &chunk {
                    Ok(items) if (items.len() as i64) == CHUNK => items.last().map(key),
                    _ => None,
                };
                if tx.send(chunk).await.is_err() {
                    return;
                }
                match last {
                    Some(k) => after = k,
                    None => return,
                }
            }
        });
        Feed { buf: Default::default(), rx, done: false }
    }

    /// Takes the next chunk when the buffer is empty.
    async fn refill(&mut self) -> anyhow::Result<()> {
        if self.buf.is_empty() && !self.done {
            match self.rx.recv().await {
                Some(chunk) => self.buf.extend(chunk?),
                None => self.done = true,
            }
        }
        Ok(())
    }
}

/// What the database says sits at one log position.
enum Item {
    /// A transaction and its recomputed leaf hash.
    Transaction(Transaction, [u8; 32]),
    Usage(UsageEvent),
}

/// The next `CHUNK` logged usage events after leaf index `after`: (leaf index, event).
async fn read_usage(store: &Store, after: i64) -> anyhow::Result<Vec<(i64, UsageEvent)>> {
    Ok(repair::usage_after(store.pool(), after, CHUNK).await?)
}

fn usage_finding(leaf: u64, e: &UsageEvent, what: String) -> Finding {
    Finding { leaf, seq: None, transaction: Some(e.id), accounts: Vec::new(), what }
}

/// A reader's connection, opened at its first chunk and kept for the rest.
type Native = (Store, std::sync::Arc<tokio::sync::Mutex<Option<NativeConnection>>>);

fn native(store: &Store) -> Native {
    (store.clone(), Default::default())
}

/// The reader's connection, opened on first use. Its reads are one after another, so the
/// lock is never contended.
async fn connected(conn: &Native) -> anyhow::Result<tokio::sync::MutexGuard<'_, Option<NativeConnection>>> {
    let mut c = conn.1.lock().await;
    if c.is_none() {
        *c = Some(conn.0.native_connection().await?);
    }
    Ok(c)
}

/// The next `CHUNK` stored leaves after index `after`: (index, seq, hash).
async fn read_leaves(conn: &mut NativeConnection, after: i64) -> anyhow::Result<Vec<(i64, i64, [u8; 32])>> {
    repair::leaves_after(conn, after, CHUNK).await
}

fn finding(leaf: u64, t: &Transaction, what: String) -> Finding {
    Finding {
        leaf,
        seq: Some(t.seq),
        transaction: Some(t.id),
        accounts: t.postings.iter().map(|p| p.account).collect(),
        what,
    }
}

/// The checkpoint to audit against: a file a monitor or witness kept, or the latest one the
/// log recorded.
pub async fn load_checkpoint(
    store: &Store,
    file: Option<&std::path::Path>,
    log_key: &VerifierKey,
) -> anyhow::Result<Checkpoint> {
    let note = match file {
        Some(f) => std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?,
        None => {
            store.latest_checkpoint().await?.context("the database holds no checkpoint; give one with --checkpoint")?
        }
    };
    verified_checkpoint(&note, log_key)
}
