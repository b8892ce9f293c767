//! `mykey-server audit`: recompute the log from the ledger's own rows and compare it with the
//! stored log and with a signed checkpoint. Any edited, deleted, inserted or reordered row of
//! `transactions` or `postings` changes a recomputed leaf; a rewritten log (or a database
//! rolled back and written again) no longer matches a checkpoint signed earlier.

use anyhow::Context;
use futures_util::TryStreamExt;
use mykey_core::api::TransactionKind;
use mykey_core::merkle::{leaf_hash, RootBuilder};
use mykey_core::note::{Checkpoint, Note, VerifierKey};
use sqlx::any::AnyRow;
use sqlx::Row;
use uuid::Uuid;

use crate::ledger::{PostingRow, Transaction};
use crate::log::transaction_leaf;
use crate::store::Store;

/// Findings reported at most; the first is the one to act on.
pub const MAX_FINDINGS: usize = 20;

/// Something that does not match.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// The log position where the difference starts.
    pub leaf: u64,
    /// The ledger transaction at that position, if any.
    pub seq: Option<i64>,
    /// Its id.
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

struct Ordered {
    tx: Transaction,
    accounts: Vec<i64>,
}

/// Audits the first `checkpoint.size` leaves; `progress` is told how many are done.
pub async fn audit(store: &Store, checkpoint: &Checkpoint, progress: impl Fn(u64)) -> anyhow::Result<AuditReport> {
    let size = checkpoint.size;
    let mut report = AuditReport { checkpoint_size: size, checked: 0, findings: Vec::new() };
    let mut from_ledger = RootBuilder::default();
    let mut from_log = RootBuilder::default();
    let pool = store.pool();

    // The ledger's transactions with their postings, in commit order.
    let mut rows = sqlx::query(
        "SELECT t.seq, t.id, t.municipality_id, t.kind, t.memo, t.created_at, p.account_id, p.amount, p.balance_after \
         FROM transactions t LEFT JOIN postings p ON p.seq = t.seq ORDER BY t.seq, p.leg",
    )
    .fetch(pool);
    // The stored log, in order.
    let mut leaves = sqlx::query("SELECT idx, seq, hash FROM log_leaves ORDER BY idx").fetch(pool);

    let mut peeked: Option<AnyRow> = None;
    let mut index: u64 = 0;
    // Bounded by the rows of the database.
    loop {
        let next = next_transaction(&mut rows, &mut peeked).await?;
        let stored = leaves.try_next().await?;
        if next.is_none() && stored.is_none() {
            break;
        }
        if index >= size {
            // Beyond the checkpoint: newer than what was signed; not audited here.
            break;
        }
        let stored = stored
            .map(|r| -> anyhow::Result<(i64, [u8; 32])> {
                let hash: Vec<u8> = r.try_get("hash")?;
                Ok((
                    r.try_get("seq")?,
                    hash.try_into().map_err(|_| anyhow::anyhow!("a stored leaf hash is not 32 bytes"))?,
                ))
            })
            .transpose()?;
        if let Some((_, h)) = stored {
            from_log.push(h);
        }
        match (&next, stored) {
            (Some(o), Some((stored_seq, stored_hash))) => {
                let recomputed = leaf_hash(&transaction_leaf(&o.tx));
                from_ledger.push(recomputed);
                if stored_seq != o.tx.seq {
                    report.findings.push(finding(index, o, format!(
                        "log leaf {index} records transaction {stored_seq}, but the ledger's transaction at that position is {}: a transaction was deleted, inserted or reordered",
                        o.tx.seq
                    )));
                } else if recomputed != stored_hash {
                    report.findings.push(finding(index, o, format!(
                        "transaction {} no longer matches log leaf {index}: its row or its postings were edited",
                        o.tx.seq
                    )));
                }
            }
            (None, Some((stored_seq, _))) => report.findings.push(Finding {
                leaf: index,
                seq: Some(stored_seq),
                transaction: None,
                accounts: Vec::new(),
                what: format!("log leaf {index} records transaction {stored_seq}, which the ledger no longer has: rows were deleted"),
            }),
            (Some(o), None) => {
                from_ledger.push(leaf_hash(&transaction_leaf(&o.tx)));
                report.findings.push(finding(index, o, format!("transaction {} has no log leaf: a row was inserted, or the log was cut short", o.tx.seq)));
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

/// The next transaction with its postings, from rows ordered by (seq, leg).
async fn next_transaction<S>(rows: &mut S, peeked: &mut Option<AnyRow>) -> anyhow::Result<Option<Ordered>>
where
    S: futures_util::Stream<Item = Result<AnyRow, sqlx::Error>> + Unpin,
{
    let first = match peeked.take() {
        Some(r) => r,
        None => match rows.try_next().await? {
            Some(r) => r,
            None => return Ok(None),
        },
    };
    let seq: i64 = first.try_get("seq")?;
    let mut o = Ordered {
        tx: Transaction {
            seq,
            id: Uuid::parse_str(&first.try_get::<String, _>("id")?).unwrap_or_default(),
            kind: TransactionKind::parse(&first.try_get::<String, _>("kind")?).unwrap_or(TransactionKind::Adjustment),
            municipality: first.try_get("municipality_id")?,
            memo: first.try_get("memo")?,
            created_at: first.try_get("created_at")?,
            postings: Vec::new(),
        },
        accounts: Vec::new(),
    };
    let add = |r: &AnyRow, o: &mut Ordered| -> anyhow::Result<()> {
        if let Some(account) = r.try_get::<Option<i64>, _>("account_id")? {
            o.tx.postings.push(PostingRow {
                account,
                amount: r.try_get("amount")?,
                balance_after: r.try_get("balance_after")?,
            });
            o.accounts.push(account);
        }
        Ok(())
    };
    add(&first, &mut o)?;
    // Bounded by the legs of one transaction.
    while let Some(r) = rows.try_next().await? {
        if r.try_get::<i64, _>("seq")? != seq {
            *peeked = Some(r);
            break;
        }
        add(&r, &mut o)?;
    }
    Ok(Some(o))
}

fn finding(leaf: u64, o: &Ordered, what: String) -> Finding {
    Finding { leaf, seq: Some(o.tx.seq), transaction: Some(o.tx.id), accounts: o.accounts.clone(), what }
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
