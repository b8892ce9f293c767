//! One writer per database. The engine keeps the ledger in memory, so a second process
//! writing the same database would be answered from a stale memory; this lock refuses it.

use std::fs::File;

use anyhow::{bail, Context};
use fs2::FileExt;
use sqlx::{Connection, Row};

use crate::store::{Backend, Store};

/// PostgreSQL advisory-lock key of the ledger writer ("mykey" in ASCII, as a number).
const PG_LOCK_KEY: i64 = 0x6d_79_6b_65_79;

/// Held for as long as the engine runs.
pub enum WriterLock {
    /// An exclusive `flock` on `<database>.writer-lock`.
    File(File),
    /// A session advisory lock on a dedicated connection.
    Postgres(Box<sqlx::AnyConnection>),
    /// An in-memory SQLite database has no other writers.
    None,
}

impl WriterLock {
    /// Takes the lock or explains who holds it.
    pub async fn acquire(store: &Store) -> anyhow::Result<WriterLock> {
        match store.backend() {
            Backend::Sqlite => {
                let Some(path) = store.sqlite_path() else { return Ok(WriterLock::None) };
                let lock_path = path.with_extension("writer-lock");
                let f = File::create(&lock_path).with_context(|| format!("creating {}", lock_path.display()))?;
                if f.try_lock_exclusive().is_err() {
                    bail!(
                        "another mykey-server process is writing {} (lock {}); stop it, or use `jobs --server URL` to talk to it",
                        path.display(),
                        lock_path.display()
                    );
                }
                Ok(WriterLock::File(f))
            }
            Backend::Postgres => {
                let mut conn = store.pool().acquire().await?.detach();
                let got: bool = sqlx::query("SELECT pg_try_advisory_lock($1) AS got")
                    .bind(PG_LOCK_KEY)
                    .fetch_one(&mut conn)
                    .await?
                    .try_get("got")?;
                if !got {
                    let _ = conn.close().await;
                    bail!("another mykey-server process is writing this PostgreSQL database; stop it, or use `jobs --server URL`");
                }
                Ok(WriterLock::Postgres(Box::new(conn)))
            }
        }
    }
}
