//! `mykey-server restore --from-mirror URL`: repair the ledger's rows from a mirror. The
//! mirror's copy is trusted only after it hashes to a checkpoint signed by the log (and
//! cosigned by a quorum of witnesses when given); then every transaction whose rows differ
//! from its leaf is rewritten from the leaf, the log's own tables are rewritten where they
//! differ, and account balances are recomputed from the postings. Run it with the server
//! stopped (it takes the writer lock); the audit runs again afterwards.

use anyhow::{ensure, Context};
use mykey_core::api::TransactionKind;
use mykey_core::merkle::{leaf_hash, RootBuilder};
use mykey_core::note::{Checkpoint, Note, VerifierKey};
use serde::Deserialize;
use sqlx::{Connection, Row};
use uuid::Uuid;

use crate::ledger::{Changes, PostingRow, Transaction};
use crate::log::{tile_path, transaction_leaf, Log, TILE_HEIGHT};
use crate::store::Store;

/// Where to restore from and whom to trust.
pub struct RestoreFrom {
    /// The mirror's base URL.
    pub mirror: String,
    /// The mirror's token for entry bundles.
    pub token: Option<String>,
    /// The log's key.
    pub log_key: VerifierKey,
    /// Witnesses whose cosignatures count.
    pub witnesses: Vec<VerifierKey>,
    /// Cosignatures required (0: the log's signature alone).
    pub quorum: usize,
}

/// What a restore changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Restored {
    /// Leaves checked.
    pub checked: u64,
    /// Transactions rewritten from their leaves.
    pub transactions: u64,
    /// Log leaves rewritten.
    pub leaves: u64,
}

#[derive(Deserialize)]
struct LeafPosting {
    account: i64,
    amount: i64,
    balance_after: i64,
}

#[derive(Deserialize)]
struct LeafBody {
    seq: i64,
    id: String,
    kind: String,
    municipality: i64,
    created_at: i64,
    memo: Option<String>,
    postings: Vec<LeafPosting>,
}

fn transaction_of(leaf: &LeafBody) -> anyhow::Result<Transaction> {
    Ok(Transaction {
        seq: leaf.seq,
        id: Uuid::parse_str(&leaf.id).context("a leaf's id")?,
        kind: TransactionKind::parse(&leaf.kind).context("a leaf's kind")?,
        municipality: leaf.municipality,
        memo: leaf.memo.clone(),
        created_at: leaf.created_at,
        postings: leaf
            .postings
            .iter()
            .map(|p| PostingRow { account: p.account, amount: p.amount, balance_after: p.balance_after })
            .collect(),
    })
}

async fn fetch(client: &reqwest::Client, url: &str, token: Option<&str>) -> anyhow::Result<Vec<u8>> {
    let mut req = client.get(url).timeout(std::time::Duration::from_secs(30));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.with_context(|| format!("fetching {url}"))?;
    let status = res.status();
    let body = res.bytes().await?;
    ensure!(status.is_success(), "{url} answered {status}: {}", String::from_utf8_lossy(&body).trim());
    Ok(body.to_vec())
}

/// Fetches the mirror's verified leaves: all of them, checked against the signed tree head.
async fn verified_leaves(from: &RestoreFrom) -> anyhow::Result<(Checkpoint, Vec<Vec<u8>>)> {
    let client = reqwest::Client::new();
    let note = String::from_utf8(fetch(&client, &format!("{}/log/checkpoint", from.mirror), None).await?)?;
    let note = Note::parse(&note).map_err(|e| anyhow::anyhow!("the mirror's checkpoint: {e}"))?;
    let cp = if from.quorum > 0 {
        note.verify_witnessed(&from.log_key, &from.witnesses, from.quorum)
    } else {
        note.verify(&from.log_key).and_then(|()| Checkpoint::parse(&note.text))
    }
    .map_err(|e| anyhow::anyhow!("the mirror's checkpoint does not verify: {e}"))?;
    let mut leaves = Vec::with_capacity(cp.size as usize);
    let mut root = RootBuilder::default();
    if cp.size > 0 {
        // Bounded by the entry bundles of the checkpoint.
        for tile in 0..=((cp.size - 1) >> TILE_HEIGHT) {
            let width = (cp.size - (tile << TILE_HEIGHT)).min(1 << TILE_HEIGHT) as u32;
            let url = format!("{}/log/{}", from.mirror, tile_path(None, tile, width));
            let bundle = fetch(&client, &url, from.token.as_deref()).await?;
            for data in crate::log::parse_entry_bundle(&bundle).with_context(|| format!("entry bundle {tile}"))? {
                root.push(leaf_hash(data));
                leaves.push(data.to_vec());
            }
        }
    }
    ensure!(
        leaves.len() as u64 == cp.size,
        "the mirror served {} leaves for a checkpoint of {}",
        leaves.len(),
        cp.size
    );
    ensure!(root.root() == cp.root, "the mirror's leaves do not hash to the signed tree head; it cannot be trusted");
    Ok((cp, leaves))
}

/// Repairs `store` from the mirror. Returns what changed.
pub async fn restore(store: &Store, from: &RestoreFrom) -> anyhow::Result<Restored> {
    let (_, leaves) = verified_leaves(from).await?;
    let mut out = Restored::default();
    let mut conn = store.writer_connection().await?;
    let mut tx = conn.begin().await?;
    let mut log = Log::default();
    let mut ch = Changes::default();
    for (i, data) in leaves.into_iter().enumerate() {
        let i = i as u64;
        let body: LeafBody = serde_json::from_slice(&data).with_context(|| format!("leaf {i}"))?;
        let want = transaction_of(&body)?;
        // The ledger's own rows for this transaction.
        let rows = sqlx::query(
            "SELECT t.id, t.municipality_id, t.kind, t.memo, t.created_at, p.account_id, p.amount, p.balance_after \
             FROM transactions t LEFT JOIN postings p ON p.seq = t.seq WHERE t.seq = $1 ORDER BY p.leg",
        )
        .bind(want.seq)
        .fetch_all(&mut *tx)
        .await?;
        let have = rows.first().map(|r| -> anyhow::Result<Transaction> {
            Ok(Transaction {
                seq: want.seq,
                id: Uuid::parse_str(&r.try_get::<String, _>("id")?).unwrap_or_default(),
                kind: TransactionKind::parse(&r.try_get::<String, _>("kind")?).unwrap_or(TransactionKind::Adjustment),
                municipality: r.try_get("municipality_id")?,
                memo: r.try_get("memo")?,
                created_at: r.try_get("created_at")?,
                postings: rows
                    .iter()
                    .filter_map(|r| {
                        let account: Option<i64> = r.try_get("account_id").ok().flatten();
                        account.map(|account| PostingRow {
                            account,
                            amount: r.try_get("amount").unwrap_or_default(),
                            balance_after: r.try_get("balance_after").unwrap_or_default(),
                        })
                    })
                    .collect(),
            })
        });
        let have = have.transpose()?;
        if have.as_ref().map(transaction_leaf) != Some(data.clone()) {
            sqlx::query("DELETE FROM postings WHERE seq = $1").bind(want.seq).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM transactions WHERE seq = $1").bind(want.seq).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO transactions (seq, id, municipality_id, kind, memo, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(want.seq)
                .bind(want.id.to_string())
                .bind(want.municipality)
                .bind(want.kind.as_str().to_owned())
                .bind(want.memo.clone())
                .bind(want.created_at)
                .execute(&mut *tx)
                .await?;
            for (leg, p) in want.postings.iter().enumerate() {
                sqlx::query("INSERT INTO postings (seq, leg, account_id, amount, balance_after, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
                    .bind(want.seq)
                    .bind(leg as i64)
                    .bind(p.account)
                    .bind(p.amount)
                    .bind(p.balance_after)
                    .bind(want.created_at)
                    .execute(&mut *tx)
                    .await?;
            }
            out.transactions += 1;
        }
        // The leaf's row is right only if both its bytes and its hash are.
        let stored: Option<(Vec<u8>, Vec<u8>)> = sqlx::query("SELECT data, hash FROM log_leaves WHERE idx = $1")
            .bind(i as i64)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| -> anyhow::Result<(Vec<u8>, Vec<u8>)> { Ok((r.try_get("data")?, r.try_get("hash")?)) })
            .transpose()?;
        if stored != Some((data.clone(), leaf_hash(&data).to_vec())) {
            sqlx::query("DELETE FROM log_leaves WHERE idx = $1").bind(i as i64).execute(&mut *tx).await?;
            out.leaves += 1;
        }
        // Rebuild every stored hash from the verified leaves (written below, idempotently).
        let (leaf, stored_hashes) = log.append(want.seq, data);
        ch.log_leaves.push(leaf);
        ch.log_hashes.extend(stored_hashes);
        out.checked = i + 1;
    }
    // Leaves newer than the mirror's checkpoint stay; their stored hashes depend on the
    // restored ones, so they are rebuilt too.
    let newer = sqlx::query("SELECT seq, data FROM log_leaves WHERE idx >= $1 ORDER BY idx")
        .bind(out.checked as i64)
        .fetch_all(&mut *tx)
        .await?;
    for r in newer {
        let (leaf, stored_hashes) = log.append(r.try_get("seq")?, r.try_get("data")?);
        ch.log_leaves.push(leaf);
        ch.log_hashes.extend(stored_hashes);
    }
    sqlx::query("DELETE FROM log_hashes").execute(&mut *tx).await?;
    tx.commit().await?;
    store.materialize(&mut conn, &ch, &[], store.materialized_through().await?).await?;
    // Balances follow from the postings; held amounts from the active holds.
    sqlx::query("UPDATE accounts SET balance = (SELECT COALESCE(SUM(p.amount), 0) FROM postings p WHERE p.account_id = accounts.id)")
        .execute(store.pool())
        .await?;
    Ok(out)
}
