//! `mykey-server restore --from-mirror URL`: repair the ledger's rows from a mirror. The
//! mirror's copy is trusted only after it hashes to a checkpoint signed by the log (and
//! cosigned by a quorum of witnesses when given); then every transaction whose rows differ
//! from its leaf is rewritten from the leaf (and every MyKey ID usage event), the log's own tables are rewritten where they
//! differ, and account balances are recomputed from the postings. Run it with the server
//! stopped (it takes the writer lock); the audit runs again afterwards.

use anyhow::{ensure, Context};
use mykey_core::merkle::{leaf_hash, RootBuilder};

use crate::integrity::mirror::Source;
use crate::ledger::leaf::{transaction_leaf, usage_leaf, UsageEvent};
use crate::ledger::{Changes, Transaction};
use crate::log::{Log, TILE_HEIGHT};
use crate::store::{repair, Store};

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
    let stored = repair::leaf_row(tx, i as i64).await?;
    let right =
        stored.is_some_and(|(d, h)| h == leaf_hash(data).as_slice() && (d == data || (seq != 0 && d.is_empty())));
    if !right {
        repair::delete_leaf_row(tx, i as i64).await?;
        out.leaves += 1;
    }
    Ok(())
}

/// Rewrites the usage-history row of leaf `i` when it differs from the leaf; 1 if it did.
async fn restore_usage(tx: &mut sqlx::AnyConnection, i: u64, e: &UsageEvent, data: &[u8]) -> anyhow::Result<u64> {
    let have = repair::usage_at(tx, i as i64).await?;
    if have.as_ref().map(usage_leaf).as_deref() == Some(data) {
        return Ok(0);
    }
    repair::replace_usage(tx, i as i64, e).await?;
    Ok(1)
}

/// Ledger transactions read per query.
const CHUNK: i64 = 10_000;

/// Fetches the mirror's verified leaves: all of them, checked against the signed tree head.
async fn verified_leaves(from: &Source) -> anyhow::Result<Vec<Vec<u8>>> {
    let client = crate::net::plain_client()?;
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
            repair::replace_transaction(&mut tx, &want).await?;
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
    let mut newer = repair::leaves_from(&mut tx, out.checked as i64).await?;
    // Their transactions are past the mirror's checkpoint, untouched by this restore.
    store.leaf_bytes(&mut newer).await?;
    for (seq, data) in newer {
        let (leaf, stored_hashes) = log.append(seq, data);
        ch.log_leaves.push(leaf);
        ch.log_hashes.extend(stored_hashes);
    }
    repair::delete_log_hashes(&mut tx).await?;
    tx.commit().await?;
    let mut conn = store.writer_connection().await?;
    store.materialize(&mut conn, &ch, &[], store.materialized_through().await?).await?;
    // Balances follow from the postings; held amounts from the active holds.
    store.recompute_balances().await?;
    Ok(out)
}
