//! The batch journal: the durable record of every committed batch, one row per batch.
//!
//! The writer acknowledges a batch once its journal row is committed (SQLite WAL with
//! synchronous=FULL, PostgreSQL synchronous_commit=on): one sequential insert and one sync
//! per batch, however many requests it holds. The tables are brought up to date afterwards
//! by the materialiser, many batches per database transaction, and the journal rows it has
//! applied are deleted. On start-up, rows past the tables' watermark are applied first.
//!
//! For SQLite the journal is a second file (`<database>.batches`), so that materialising
//! never holds the lock the writer needs; for PostgreSQL it is the `batches` table.

use std::str::FromStr;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sqlx::any::AnyConnectOptions;
use sqlx::{AnyConnection, ConnectOptions, Executor, Row};

use super::{Backend, RequestRecord, Store};
use crate::ledger::Changes;

/// Most batches recovery reads and materialises in one database transaction.
pub const RECOVERY_BATCHES: usize = 512;

/// Request record numbers each batch owns: a batch holds at most
/// [`crate::engine::MAX_BATCH`] requests.
pub const SEQS_PER_BATCH: i64 = 4096;

/// The seq of the request record at `place` in batch `batch`: increasing with the order of
/// answers, and the same whenever the batch is read again (recovery writes it once).
pub fn request_seq(batch: i64, place: usize) -> i64 {
    assert!((place as i64) < SEQS_PER_BATCH, "a batch holds at most MAX_BATCH requests");
    batch * SEQS_PER_BATCH + place as i64
}

/// `application_name` of the journal's PostgreSQL connection.
pub const JOURNAL_APPLICATION_NAME: &str = "mykey-journal";

/// One committed batch: what it changed and what it answered.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Batch {
    /// Position in the journal, from 1.
    pub seq: i64,
    /// Row images.
    pub changes: Changes,
    /// Idempotency records.
    pub requests: Vec<RequestRecord>,
}

impl Batch {
    /// Compact binary encoding (postcard) of the journal row.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("batches serialise")
    }

    /// Reads a journal row back.
    pub fn decode(bytes: &[u8]) -> anyhow::Result<Batch> {
        let mut b: Batch = postcard::from_bytes(bytes).context("decoding a journaled batch")?;
        crate::ledger::leaf::restore_transaction_leaves(&mut b.changes.log_leaves, &b.changes.transactions)?;
        for (place, r) in b.requests.iter_mut().enumerate() {
            r.seq = request_seq(b.seq, place);
        }
        Ok(b)
    }
}

/// A connection to the journal.
pub struct Journal {
    conn: AnyConnection,
}

impl Journal {
    /// Opens (and creates) the journal beside `store`.
    pub async fn open(store: &Store) -> anyhow::Result<Journal> {
        let url = match store.backend() {
            Backend::Sqlite => {
                let path = store.sqlite_path().context("the SQLite ledger needs a file, not :memory:")?;
                format!("sqlite:{}.batches?mode=rwc", path.display())
            }
            // Named so that operators (and the failure test) can tell it in pg_stat_activity.
            Backend::Postgres => {
                let url = store.url();
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}application_name={JOURNAL_APPLICATION_NAME}")
            }
        };
        let mut conn = AnyConnectOptions::from_str(&url)?.connect().await.context("opening the batch journal")?;
        if store.backend() == Backend::Sqlite {
            conn.execute("PRAGMA journal_mode = WAL").await?;
            conn.execute("PRAGMA synchronous = FULL").await?;
            conn.execute("PRAGMA busy_timeout = 10000").await?;
        }
        conn.execute("CREATE TABLE IF NOT EXISTS batches (seq BIGINT PRIMARY KEY, payload BYTEA NOT NULL)").await?;
        Ok(Journal { conn })
    }

    /// Appends a batch; durable when this returns.
    pub async fn append(&mut self, seq: i64, payload: Vec<u8>) -> anyhow::Result<()> {
        sqlx::query("INSERT INTO batches (seq, payload) VALUES ($1, $2)")
            .bind(seq)
            .bind(payload)
            .execute(&mut self.conn)
            .await
            .context("appending to the batch journal")?;
        Ok(())
    }

    /// Up to `limit` batches after `seq`, in order.
    pub async fn after(&mut self, seq: i64, limit: usize) -> anyhow::Result<Vec<Batch>> {
        let rows = sqlx::query("SELECT payload FROM batches WHERE seq > $1 ORDER BY seq LIMIT $2")
            .bind(seq)
            .bind(limit as i64)
            .fetch_all(&mut self.conn)
            .await?;
        rows.iter().map(|r| Batch::decode(&r.try_get::<Vec<u8>, _>("payload")?)).collect()
    }

    /// The last batch in the journal, 0 when empty.
    pub async fn last_seq(&mut self) -> anyhow::Result<i64> {
        Ok(sqlx::query("SELECT COALESCE(MAX(seq), 0) AS s FROM batches")
            .fetch_one(&mut self.conn)
            .await?
            .try_get("s")?)
    }

    /// Forgets batches up to `seq` (their rows are in the tables).
    pub async fn truncate(&mut self, seq: i64) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM batches WHERE seq <= $1").bind(seq).execute(&mut self.conn).await?;
        Ok(())
    }
}

/// Folds batches (in order) into one set of rows, later images winning.
pub fn merge(batches: Vec<Batch>) -> (Changes, Vec<RequestRecord>) {
    let mut changes = Changes::default();
    let mut requests = Vec::new();
    for b in batches {
        changes.merge(b.changes);
        requests.extend(b.requests);
    }
    (changes, requests)
}

/// Brings the tables up to the journal: applies every batch past the watermark, then
/// truncates. Returns the last batch sequence number in use.
pub async fn recover(store: &Store) -> anyhow::Result<i64> {
    let mut journal = Journal::open(store).await?;
    let mut conn = store.writer_connection().await?;
    let mut through = store.materialized_through().await?;
    // Bounded by the journal's length: each round consumes up to RECOVERY_BATCHES.
    loop {
        let batches = journal.after(through, RECOVERY_BATCHES).await?;
        if batches.is_empty() {
            break;
        }
        let n = batches.len();
        let last = batches.last().map_or(through, |b| b.seq);
        let (changes, requests) = merge(batches);
        store.materialize(&mut conn, &changes, &requests, last).await?;
        through = last;
        tracing::info!(batches = n, through, "recovered journaled batches");
    }
    journal.truncate(through).await?;
    Ok(through.max(journal.last_seq().await?))
}
