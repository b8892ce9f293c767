//! The SQL of checking and repairing: the audit's reads of the log's rows and the usage
//! history, a mirror's reads and rollbacks of its copy, and a restore's rewrites of rows that
//! differ from their leaves.

use futures_util::stream::BoxStream;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool, Row};

use super::{NativeConnection, Store};
use crate::ledger::leaf::UsageEvent;
use crate::ledger::Transaction;

/// A usage-history row as an event.
pub(super) fn usage_event_from_row(r: &AnyRow) -> sqlx::Result<UsageEvent> {
    let id: String = r.try_get("id")?;
    Ok(UsageEvent {
        id: uuid::Uuid::parse_str(&id).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        resident: r.try_get("resident_id")?,
        mykey_id: r.try_get("mykey_id")?,
        kind: r.try_get("kind")?,
        created_at: r.try_get("created_at")?,
    })
}

/// The next `limit` logged usage events after leaf index `after`: (leaf index, event).
pub async fn usage_after(pool: &AnyPool, after: i64, limit: i64) -> sqlx::Result<Vec<(i64, UsageEvent)>> {
    sqlx::query(
        "SELECT leaf_index, id, resident_id, mykey_id, kind, created_at FROM mykey_id_events \
         WHERE leaf_index > $1 ORDER BY leaf_index LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| Ok((r.try_get("leaf_index")?, usage_event_from_row(r)?)))
    .collect()
}

/// The next `limit` stored leaves after index `after`: (index, seq, hash), on the database's
/// own driver (the audit reads them all).
pub async fn leaves_after(
    conn: &mut NativeConnection,
    after: i64,
    limit: i64,
) -> anyhow::Result<Vec<(i64, i64, [u8; 32])>> {
    const SQL: &str = "SELECT idx, seq, hash FROM log_leaves WHERE idx > $1 ORDER BY idx LIMIT $2";
    let rows: Vec<(i64, i64, Vec<u8>)> = match conn {
        NativeConnection::Sqlite(c) => sqlx::query_as(SQL).bind(after).bind(limit).fetch_all(c).await?,
        NativeConnection::Postgres(c) => sqlx::query_as(SQL).bind(after).bind(limit).fetch_all(c).await?,
    };
    rows.into_iter()
        .map(|(idx, seq, hash)| {
            let hash: [u8; 32] = hash.try_into().map_err(|_| anyhow::anyhow!("a stored leaf hash is not 32 bytes"))?;
            Ok((idx, seq, hash))
        })
        .collect()
}

/// The stored row of leaf `i`: (data, hash).
pub async fn leaf_row(tx: &mut AnyConnection, i: i64) -> sqlx::Result<Option<(Vec<u8>, Vec<u8>)>> {
    sqlx::query_as("SELECT data, hash FROM log_leaves WHERE idx = $1").bind(i).fetch_optional(tx).await
}

/// Removes the stored row of leaf `i` (the rebuilt log writes it again).
pub async fn delete_leaf_row(tx: &mut AnyConnection, i: i64) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM log_leaves WHERE idx = $1").bind(i).execute(tx).await?;
    Ok(())
}

/// The usage-history row logged at leaf `i`.
pub async fn usage_at(tx: &mut AnyConnection, i: i64) -> sqlx::Result<Option<UsageEvent>> {
    sqlx::query("SELECT id, resident_id, mykey_id, kind, created_at FROM mykey_id_events WHERE leaf_index = $1")
        .bind(i)
        .fetch_optional(tx)
        .await?
        .as_ref()
        .map(usage_event_from_row)
        .transpose()
}

/// Writes `e` as the usage-history row of leaf `i`, replacing that leaf's row and any row of
/// the same event.
pub async fn replace_usage(tx: &mut AnyConnection, i: i64, e: &UsageEvent) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM mykey_id_events WHERE leaf_index = $1 OR id = $2")
        .bind(i)
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
    .bind(i)
    .execute(tx)
    .await?;
    Ok(())
}

/// Writes `t`'s transaction and posting rows, replacing those of its seq.
pub async fn replace_transaction(tx: &mut AnyConnection, t: &Transaction) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM postings WHERE seq = $1").bind(t.seq).execute(&mut *tx).await?;
    sqlx::query("DELETE FROM transactions WHERE seq = $1").bind(t.seq).execute(&mut *tx).await?;
    sqlx::query(
        "INSERT INTO transactions (seq, id, municipality_id, kind, memo, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(t.seq)
    .bind(t.id.to_string())
    .bind(t.municipality)
    .bind(t.kind.as_str().to_owned())
    .bind(t.memo.clone())
    .bind(t.created_at)
    .execute(&mut *tx)
    .await?;
    for (leg, p) in t.postings.iter().enumerate() {
        sqlx::query(
            "INSERT INTO postings (seq, leg, account_id, amount, balance_after, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(t.seq)
        .bind(leg as i64)
        .bind(p.account)
        .bind(p.amount)
        .bind(p.balance_after)
        .bind(t.created_at)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// The stored leaves from index `from` on: (seq, data).
pub async fn leaves_from(tx: &mut AnyConnection, from: i64) -> sqlx::Result<Vec<(i64, Vec<u8>)>> {
    sqlx::query_as("SELECT seq, data FROM log_leaves WHERE idx >= $1 ORDER BY idx").bind(from).fetch_all(tx).await
}

/// Removes every stored hash of the log (a restore writes them all again).
pub async fn delete_log_hashes(tx: &mut AnyConnection) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM log_hashes").execute(tx).await?;
    Ok(())
}

impl Store {
    /// Every stored leaf in order: (data, hash).
    pub fn all_leaves(&self) -> BoxStream<'_, sqlx::Result<(Vec<u8>, Vec<u8>)>> {
        sqlx::query_as("SELECT data, hash FROM log_leaves ORDER BY idx").fetch(&self.pool)
    }

    /// Removes the log's rows from leaf `from` and stored hash `first_hash` on.
    pub async fn truncate_log(&self, from: i64, first_hash: i64) -> sqlx::Result<()> {
        sqlx::query("DELETE FROM log_leaves WHERE idx >= $1").bind(from).execute(&self.pool).await?;
        sqlx::query("DELETE FROM log_hashes WHERE idx >= $1").bind(first_hash).execute(&self.pool).await?;
        Ok(())
    }

    /// Sets every account's balance to the sum of its postings.
    pub async fn recompute_balances(&self) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE accounts SET balance = \
             (SELECT COALESCE(SUM(p.amount), 0) FROM postings p WHERE p.account_id = accounts.id)",
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
