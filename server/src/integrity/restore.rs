//! `mykey-server restore --from-mirror URL`: repair the ledger's rows from a mirror. The
//! mirror's copy is trusted only after it hashes to a checkpoint signed by the log (and
//! cosigned by a quorum of witnesses when given); then every transaction whose rows differ
//! from its leaf is rewritten from the leaf (and every MyKey ID usage event), the log's own tables are rewritten where they
//! differ, and account balances are recomputed from the postings. Run it with the server
//! stopped (it takes the writer lock); the audit runs again afterwards.

use anyhow::{ensure, Context};
use mykey_core::merkle::{leaf_hash, RootBuilder};
use sqlx::Row;

use crate::integrity::mirror::Source;
use crate::ledger::leaf::{transaction_leaf, usage_leaf, UsageEvent};
use crate::ledger::{Changes, Transaction};
use crate::log::{Log, TILE_HEIGHT};
use crate::store::Store;

/// What a restore changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Restored {
    /// Leaves checked.
    pub checked: u64,
    /// Transactions rewritten from their leaves.
    pub transactions: u64,
    /// Log leaves rewritten.
    pub leaves: u64,
    /// MyKey ID usage events rewritten from their leaves.
    pub usage: u64,
}

/// The leaf's row is right only if both its bytes and its hash are (a transaction's leaf
/// stored without bytes takes them from the transaction's rows, which are restored beside
/// it); a wrong one is removed (and written again with the rebuilt log).
async fn restore_leaf_row(
    tx: &mut sqlx::AnyConnection,
    i: u64,
    seq: i64,
    data: &[u8],
    out: &mut Restored,
) -> anyhow::Result<()> {
    let stored: Option<(Vec<u8>, Vec<u8>)> = sqlx::query("SELECT data, hash FROM log_leaves WHERE idx = $1")
        .bind(i as i64)
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| -> anyhow::Result<(Vec<u8>, Vec<u8>)> { Ok((r.try_get("data")?, r.try_get("hash")?)) })
        .transpose()?;
    let right =
        stored.is_some_and(|(d, h)| h == leaf_hash(data).as_slice() && (d == data || (seq != 0 && d.is_empty())));
    if !right {
        sqlx::query("DELETE FROM log_leaves WHERE idx = $1").bind(i as i64).execute(&mut *tx).await?;
        out.leaves += 1;
    }
    Ok(())
}

/// Rewrites the usage-history row of leaf `i` when it differs from the leaf; 1 if it did.
async fn restore_usage(tx: &mut sqlx::AnyConnection, i: u64, e: &UsageEvent, data: &[u8]) -> anyhow::Result<u64> {
    let row =
        sqlx::query("SELECT id, resident_id, mykey_id, kind, created_at FROM mykey_id_events WHERE leaf_index = $1")
            .bind(i as i64)
            .fetch_optional(&mut *tx)
            .await?;
    let have = row
        .map(|r| -> anyhow::Result<UsageEvent> {
            Ok(UsageEvent {
                id: uuid::Uuid::parse_str(&r.try_get::<String, _>("id")?)?,
                resident: r.try_get("resident_id")?,
                mykey_id: r.try_get("mykey_id")?,
                kind: r.try_get("kind")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .transpose()?;
    if have.as_ref().map(usage_leaf).as_deref() == Some(data) {
        return Ok(0);
    }
    sqlx::query("DELETE FROM mykey_id_events WHERE leaf_index = $1 OR id = $2")
        .bind(i as i64)
        .bind(e.id.to_string())
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO mykey_id_events (id, resident_id, mykey_id, kind, created_at, leaf_index) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(e.id.to_string())
    .bind(e.resident)
    .bind(e.mykey_id.clone())
    .bind(e.kind.clone())
    .bind(e.created_at)
    .bind(i as i64)
    .execute(&mut *tx)
    .await?;
    Ok(1)
}

/// Ledger transactions read per query.
const CHUNK: i64 = 10_000;

/// Fetches the mirror's verified leaves: all of them, checked against the signed tree head.
async fn verified_leaves(from: &Source) -> anyhow::Result<Vec<Vec<u8>>> {
    let client = reqwest::Client::new();
    let (_, cp) = from.checkpoint(&client).await?;
    let mut leaves = Vec::with_capacity(cp.size as usize);
    let mut root = RootBuilder::default();
    if cp.size > 0 {
        // Bounded by the entry bundles of the checkpoint.
        for tile in 0..=((cp.size - 1) >> TILE_HEIGHT) {
            for data in from.entries(&client, tile, cp.size).await? {
                root.push(leaf_hash(&data));
                leaves.push(data);
            }
        }
    }
    ensure!(root.root() == cp.root, "the mirror's leaves do not hash to the signed tree head; it cannot be trusted");
    Ok(leaves)
}

/// Repairs `store` from the mirror. Returns what changed.
pub async fn restore(store: &Store, from: &Source) -> anyhow::Result<Restored> {
    let leaves = verified_leaves(from).await?;
    let mut out = Restored::default();
    let mut tx = store.pool().begin().await?;
    let mut log = Log::default();
    let mut ch = Changes::default();
    let mut ledger: std::collections::HashMap<i64, Transaction> = Default::default();
    let mut loaded_to = i64::MIN;
    for (i, data) in leaves.into_iter().enumerate() {
        let i = i as u64;
        let want = match crate::ledger::leaf::parse_leaf(&data).with_context(|| format!("leaf {i}"))? {
            crate::ledger::leaf::Leaf::Transaction(t) => t,
            crate::ledger::leaf::Leaf::Usage(e) => {
                out.usage += restore_usage(&mut tx, i, &e, &data).await?;
                restore_leaf_row(&mut tx, i, 0, &data, &mut out).await?;
                let (leaf, stored_hashes) = log.append(0, data);
                ch.log_leaves.push(leaf);
                ch.log_hashes.extend(stored_hashes);
                out.checked = i + 1;
                continue;
            }
        };
        // The ledger's own rows, read a chunk of transactions at a time.
        if want.seq > loaded_to {
            let chunk = Store::transactions_after(&mut tx, want.seq - 1, CHUNK).await?;
            loaded_to = if (chunk.len() as i64) < CHUNK { i64::MAX } else { chunk.last().map_or(i64::MAX, |t| t.seq) };
            ledger = chunk.into_iter().map(|t| (t.seq, t)).collect();
        }
        let have = ledger.get(&want.seq);
        if have.map(transaction_leaf) != Some(data.clone()) {
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
        restore_leaf_row(&mut tx, i, want.seq, &data, &mut out).await?;
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
    let mut newer =
        newer.iter().map(|r| Ok((r.try_get("seq")?, r.try_get("data")?))).collect::<anyhow::Result<Vec<_>>>()?;
    // Their transactions are past the mirror's checkpoint, untouched by this restore.
    store.leaf_bytes(&mut newer).await?;
    for (seq, data) in newer {
        let (leaf, stored_hashes) = log.append(seq, data);
        ch.log_leaves.push(leaf);
        ch.log_hashes.extend(stored_hashes);
    }
    sqlx::query("DELETE FROM log_hashes").execute(&mut *tx).await?;
    tx.commit().await?;
    let mut conn = store.writer_connection().await?;
    store.materialize(&mut conn, &ch, &[], store.materialized_through().await?).await?;
    // Balances follow from the postings; held amounts from the active holds.
    sqlx::query("UPDATE accounts SET balance = (SELECT COALESCE(SUM(p.amount), 0) FROM postings p WHERE p.account_id = accounts.id)")
        .execute(store.pool())
        .await?;
    Ok(out)
}
