//! The SQL of a witness's state: the size and root it last cosigned for each log. The witness
//! runs apart from the ledger, with its own database (SQLite or PostgreSQL).

use anyhow::Context;
use mykey_core::merkle::Hash;
use sqlx::{AnyConnection, Connection, Executor};

/// One connection to a witness's state database.
pub struct WitnessState(AnyConnection);

impl WitnessState {
    /// Opens the state database at `url`, creating it and its table when missing.
    pub async fn open(url: &str) -> anyhow::Result<WitnessState> {
        sqlx::any::install_default_drivers();
        let full = if url.starts_with("sqlite:") && !url.contains("mode=") {
            format!("{url}?mode=rwc")
        } else {
            url.to_owned()
        };
        let mut conn =
            AnyConnection::connect(&full).await.with_context(|| format!("opening the witness state {url}"))?;
        if full.starts_with("sqlite:") {
            conn.execute("PRAGMA journal_mode = WAL").await?;
            conn.execute("PRAGMA synchronous = FULL").await?;
        }
        conn.execute(
            "CREATE TABLE IF NOT EXISTS witness_state (origin TEXT PRIMARY KEY, size BIGINT NOT NULL, root BYTEA NOT NULL)",
        )
        .await?;
        Ok(WitnessState(conn))
    }

    /// The size and root last cosigned for the log `origin`.
    pub async fn get(&mut self, origin: &str) -> anyhow::Result<Option<(u64, Hash)>> {
        let row: Option<(i64, Vec<u8>)> = sqlx::query_as("SELECT size, root FROM witness_state WHERE origin = $1")
            .bind(origin.to_owned())
            .fetch_optional(&mut self.0)
            .await?;
        row.map(|(size, root)| {
            let root = Hash::try_from(root).map_err(|_| anyhow::anyhow!("a stored root is not 32 bytes"))?;
            Ok((u64::try_from(size)?, root))
        })
        .transpose()
    }

    /// Records the size and root cosigned for the log `origin`.
    pub async fn set(&mut self, origin: &str, size: u64, root: &Hash) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO witness_state (origin, size, root) VALUES ($1, $2, $3) \
             ON CONFLICT (origin) DO UPDATE SET size = excluded.size, root = excluded.root",
        )
        .bind(origin.to_owned())
        .bind(i64::try_from(size)?)
        .bind(root.to_vec())
        .execute(&mut self.0)
        .await?;
        Ok(())
    }
}
