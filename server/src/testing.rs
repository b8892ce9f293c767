//! Helpers for tests and benchmarks: a fresh database of the kind the test run asks for.
//!
//! With `MYKEY_TEST_POSTGRES_URL` set (an admin URL such as
//! `postgres://mykey:mykey@127.0.0.1:55432/postgres`), every call creates a new PostgreSQL
//! database; otherwise a new SQLite file in a temporary folder.

use anyhow::Context;
use sqlx::Connection;

/// A database for one test; the SQLite folder is removed on drop.
pub struct TestDb {
    /// The URL to open.
    pub url: String,
    _dir: Option<TempDir>,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// True when the run targets PostgreSQL.
pub fn postgres() -> bool {
    std::env::var("MYKEY_TEST_POSTGRES_URL").is_ok_and(|u| !u.is_empty())
}

impl TestDb {
    /// A new, empty database.
    pub async fn new() -> anyhow::Result<TestDb> {
        sqlx::any::install_default_drivers();
        let name = format!("mykey_t_{}", uuid::Uuid::new_v4().simple());
        match std::env::var("MYKEY_TEST_POSTGRES_URL") {
            Ok(admin) if !admin.is_empty() => {
                let mut c =
                    sqlx::AnyConnection::connect(&admin).await.context("connecting to MYKEY_TEST_POSTGRES_URL")?;
                sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut c).await?;
                c.close().await?;
                let base = admin.rsplit_once('/').map(|(b, _)| b).context("the admin URL names a database")?;
                Ok(TestDb { url: format!("{base}/{name}"), _dir: None })
            }
            _ => {
                let dir = std::env::temp_dir().join(&name);
                std::fs::create_dir_all(&dir)?;
                Ok(TestDb { url: format!("sqlite:{}", dir.join("ledger.db").display()), _dir: Some(TempDir(dir)) })
            }
        }
    }
}

/// Adds municipality 1 (前橋市) and `residents` residents living there (ids from 1).
pub async fn add_municipality_and_residents(engine: &crate::engine::Engine, residents: usize) {
    use crate::engine::Admin;
    engine
        .admin(Admin::Municipality {
            id: 1,
            prefecture_code: "10".into(),
            prefecture: "群馬県".into(),
            name: "前橋市".into(),
            kind: "municipality".into(),
        })
        .await
        .expect("a new municipality");
    if residents > 0 {
        engine.admin(Admin::Residents { home: 1, count: residents }).await.expect("new residents");
    }
}
