//! The leaves of the log as the ledger writes them (log format v1: `docs/log-format.md`): one
//! per committed transaction and one per MyKey ID usage event, and how the journal carries
//! transaction leaves without their bytes.

use mykey_core::text::MEMO_MAX;
use serde::{Deserialize, Serialize};

use super::{PostingRow, Transaction, MAX_LEGS};
use crate::log::{Hash, LogLeaf};

/// Serialises leaves for the batch journal without the bytes of transaction leaves (a
/// payment's leaf is some 250 bytes of JSON): they are a function of the transaction beside them, and
/// [`restore_transaction_leaves`] writes them again on reading. Reads back as `Vec<LogLeaf>`.
pub fn serialize_without_transaction_data<S: serde::Serializer>(leaves: &[LogLeaf], s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Leaf<'a> {
        index: u64,
        seq: i64,
        data: &'a [u8],
        hash: &'a Hash,
    }
    s.collect_seq(leaves.iter().map(|l| Leaf {
        index: l.index,
        seq: l.seq,
        data: if l.seq == 0 { &l.data } else { &[] },
        hash: &l.hash,
    }))
}

/// Writes the bytes of transaction leaves stored without them, given as `(seq, bytes)`, from
/// their transactions among `transactions`. A leaf whose transaction is not there is the
/// error, as its seq.
pub fn rebuild_transaction_leaves<'a>(
    leaves: impl Iterator<Item = (i64, &'a mut Vec<u8>)>,
    transactions: &[Transaction],
) -> Result<(), i64> {
    let by_seq: std::collections::HashMap<i64, &Transaction> = transactions.iter().map(|t| (t.seq, t)).collect();
    for (seq, data) in leaves.filter(|(seq, data)| *seq != 0 && data.is_empty()) {
        *data = transaction_leaf(by_seq.get(&seq).ok_or(seq)?);
    }
    Ok(())
}

/// Writes the bytes of transaction leaves read without them from the journal, from their
/// transactions, and checks each transaction leaf against its leaf hash.
pub fn restore_transaction_leaves(leaves: &mut [LogLeaf], transactions: &[Transaction]) -> anyhow::Result<()> {
    rebuild_transaction_leaves(leaves.iter_mut().map(|l| (l.seq, &mut l.data)), transactions)
        .map_err(|seq| anyhow::anyhow!("a journal leaf has no transaction {seq}"))?;
    for leaf in leaves.iter().filter(|l| l.seq != 0) {
        anyhow::ensure!(
            mykey_core::merkle::leaf_hash(&leaf.data) == leaf.hash,
            "journal leaf {} does not match transaction {}",
            leaf.index,
            leaf.seq
        );
    }
    Ok(())
}

#[derive(Serialize)]
struct PostingLeaf {
    account: i64,
    amount: i64,
    balance_after: i64,
}

#[derive(Serialize)]
struct TransactionLeaf<'a> {
    v: u8,
    r#type: &'static str,
    seq: i64,
    /// Hyphenated, as `Uuid` serialises in JSON.
    id: uuid::Uuid,
    kind: &'static str,
    municipality: i64,
    created_at: i64,
    memo: Option<&'a str>,
    postings: Vec<PostingLeaf>,
}

/// The longest transaction leaf: the fixed fields, a memo of [`MEMO_MAX`] characters of at
/// most 4 bytes each in JSON (control characters, which JSON escapes in 6, are refused), and
/// [`MAX_LEGS`] postings of three 20-digit numbers. An entry bundle gives a leaf 2 bytes of
/// length, so every leaf must fit in 65,535 bytes.
pub const MAX_TRANSACTION_LEAF: usize = 256 + 4 * MEMO_MAX + MAX_LEGS * 128;
const _: () = assert!(MAX_TRANSACTION_LEAF <= u16::MAX as usize, "a transaction leaf fits an entry bundle");

/// The leaf bytes of a committed transaction (log format v1: `docs/log-format.md`).
pub fn transaction_leaf(tx: &Transaction) -> Vec<u8> {
    let leaf = TransactionLeaf {
        v: 1,
        r#type: "transaction",
        seq: tx.seq,
        id: tx.id,
        kind: tx.kind.as_str(),
        municipality: tx.municipality,
        created_at: tx.created_at,
        memo: tx.memo.as_deref(),
        postings: tx
            .postings
            .iter()
            .map(|p| PostingLeaf { account: p.account, amount: p.amount, balance_after: p.balance_after })
            .collect(),
    };
    // A payment's leaf is about 250 bytes: one allocation instead of a few doublings.
    let mut out = Vec::with_capacity(320);
    serde_json::to_writer(&mut out, &leaf).expect("leaves serialise");
    assert!(out.len() <= MAX_TRANSACTION_LEAF, "memos and legs are bounded before they reach the ledger");
    out
}

#[derive(serde::Deserialize)]
struct PostingLeafIn {
    account: i64,
    amount: i64,
    balance_after: i64,
}

#[derive(serde::Deserialize)]
struct TransactionLeafIn {
    v: u8,
    r#type: String,
    seq: i64,
    id: String,
    kind: String,
    municipality: i64,
    created_at: i64,
    memo: Option<String>,
    postings: Vec<PostingLeafIn>,
}

/// Reads a transaction leaf back (the inverse of [`transaction_leaf`]).
fn parse_transaction_leaf(data: &[u8]) -> anyhow::Result<Transaction> {
    use anyhow::Context;
    let leaf: TransactionLeafIn = serde_json::from_slice(data).context("not a v1 transaction leaf")?;
    anyhow::ensure!(
        leaf.v == 1 && leaf.r#type == "transaction",
        "leaf format {} {:?} is not v1 transaction",
        leaf.v,
        leaf.r#type
    );
    Ok(Transaction {
        seq: leaf.seq,
        id: uuid::Uuid::parse_str(&leaf.id).context("a leaf's id")?,
        kind: mykey_core::api::TransactionKind::parse(&leaf.kind).context("a leaf's kind")?,
        municipality: leaf.municipality,
        memo: leaf.memo,
        created_at: leaf.created_at,
        postings: leaf
            .postings
            .into_iter()
            .map(|p| PostingRow { account: p.account, amount: p.amount, balance_after: p.balance_after })
            .collect(),
    })
}

/// A MyKey ID usage event as the log records it (the row is `mykey_id_events`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageEvent {
    /// The event's id.
    pub id: uuid::Uuid,
    /// The resident behind the MyKey ID.
    pub resident: i64,
    /// The MyKey ID at the time.
    pub mykey_id: String,
    /// What happened (`mykey_core::identity::UsageEvent::kind`).
    pub kind: String,
    /// When, microseconds since the epoch.
    pub created_at: i64,
}

#[derive(Serialize, serde::Deserialize)]
struct UsageLeaf<'a> {
    v: u8,
    r#type: std::borrow::Cow<'a, str>,
    id: String,
    resident: i64,
    mykey_id: std::borrow::Cow<'a, str>,
    kind: std::borrow::Cow<'a, str>,
    created_at: i64,
}

/// The `type` of a usage leaf.
pub const USAGE_LEAF_TYPE: &str = "mykey_id_event";

/// The leaf bytes of a MyKey ID usage event (log format v1: `docs/log-format.md`).
pub fn usage_leaf(e: &UsageEvent) -> Vec<u8> {
    let leaf = UsageLeaf {
        v: 1,
        r#type: USAGE_LEAF_TYPE.into(),
        id: e.id.to_string(),
        resident: e.resident,
        mykey_id: e.mykey_id.as_str().into(),
        kind: e.kind.as_str().into(),
        created_at: e.created_at,
    };
    serde_json::to_vec(&leaf).expect("leaves serialise")
}

/// A leaf read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Leaf {
    /// A committed ledger transaction.
    Transaction(Transaction),
    /// A MyKey ID usage event.
    Usage(UsageEvent),
}

/// Reads any v1 leaf back (the inverse of [`transaction_leaf`] and [`usage_leaf`]).
pub fn parse_leaf(data: &[u8]) -> anyhow::Result<Leaf> {
    use anyhow::Context;
    #[derive(serde::Deserialize)]
    struct Head<'a> {
        v: u8,
        #[serde(borrow)]
        r#type: std::borrow::Cow<'a, str>,
    }
    let head: Head = serde_json::from_slice(data).context("not a v1 leaf")?;
    match (head.v, head.r#type.as_ref()) {
        (1, "transaction") => parse_transaction_leaf(data).map(Leaf::Transaction),
        (1, USAGE_LEAF_TYPE) => {
            let l: UsageLeaf = serde_json::from_slice(data).context("not a v1 usage leaf")?;
            Ok(Leaf::Usage(UsageEvent {
                id: uuid::Uuid::parse_str(&l.id).context("a leaf's id")?,
                resident: l.resident,
                mykey_id: l.mykey_id.into_owned(),
                kind: l.kind.into_owned(),
                created_at: l.created_at,
            }))
        }
        (v, t) => anyhow::bail!("leaf format {v} {t:?} is not known"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_leaves_read_back_as_written() {
        let tx = Transaction {
            seq: 7,
            id: uuid::Uuid::new_v4(),
            kind: mykey_core::api::TransactionKind::Payment,
            municipality: 26,
            memo: Some("野菜".into()),
            created_at: 1_795_777_967_479_627,
            postings: vec![
                PostingRow { account: 1, amount: -5, balance_after: 10 },
                PostingRow { account: 2, amount: 5, balance_after: 5 },
            ],
        };
        let leaf = transaction_leaf(&tx);
        assert_eq!(parse_transaction_leaf(&leaf).unwrap(), tx);
        assert!(parse_transaction_leaf(b"{}").is_err());
    }
}
