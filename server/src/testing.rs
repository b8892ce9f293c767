//! Helpers for tests and benchmarks: a fresh database of the kind the test run asks for.
//!
//! With `MYKEY_TEST_POSTGRES_URL` set (an admin URL such as
//! `postgres://mykey:mykey@127.0.0.1:55432/postgres`), every call creates a new PostgreSQL
//! database; otherwise a new SQLite file in a temporary folder.

use anyhow::Context;

pub mod device;

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
                let url = crate::store::create_postgres_database(&admin, &name)
                    .await
                    .context("creating a database with MYKEY_TEST_POSTGRES_URL")?;
                Ok(TestDb { url, _dir: None })
            }
            _ => {
                let dir = std::env::temp_dir().join(&name);
                std::fs::create_dir_all(&dir)?;
                Ok(TestDb { url: format!("sqlite:{}", dir.join("ledger.db").display()), _dir: Some(TempDir(dir)) })
            }
        }
    }
}

impl TestDb {
    /// A new SQLite database in `dir` (created, and removed with the value), whatever
    /// `MYKEY_TEST_POSTGRES_URL` says: for tests of the file system under the database.
    pub fn sqlite_in(dir: std::path::PathBuf) -> anyhow::Result<TestDb> {
        sqlx::any::install_default_drivers();
        std::fs::create_dir_all(&dir)?;
        Ok(TestDb { url: format!("sqlite:{}", dir.join("ledger.db").display()), _dir: Some(TempDir(dir)) })
    }
}

impl TestDb {
    /// A new PostgreSQL database on the server of admin URL `admin`, whatever
    /// `MYKEY_TEST_POSTGRES_URL` says: for tests of the file system under a server of their own.
    pub async fn postgres_at(admin: &str) -> anyhow::Result<TestDb> {
        sqlx::any::install_default_drivers();
        let name = format!("mykey_t_{}", uuid::Uuid::new_v4().simple());
        let url = crate::store::create_postgres_database(admin, &name).await.context("creating a database")?;
        Ok(TestDb { url, _dir: None })
    }
}

/// The municipalities a seed adds, in id order from 1: JIS prefecture code, prefecture, name.
pub const SEED_MUNICIPALITIES: [(&str, &str, &str); 2] = [("10", "群馬県", "前橋市"), ("45", "宮崎県", "都城市")];

/// What a test or a benchmark starts from: the one seeder of the tests, the fixtures and
/// `mykey-bench` (the demo seeds from `data/` instead).
#[derive(Clone, Debug, Default)]
pub struct Seed {
    /// Municipalities 1..=n, from [`SEED_MUNICIPALITIES`].
    pub municipalities: usize,
    /// One shop per entry, in the municipality the entry names.
    pub shops: Vec<i64>,
    /// Residents living in municipality 1 (ids from 1).
    pub residents: usize,
    /// Also an ID-linkage partner (JAL) and a coupon partner (by URL).
    pub partners: bool,
}

/// What [`seed`] made.
#[derive(Clone, Debug, Default)]
pub struct Seeded {
    /// The shops' ids, in [`Seed::shops`]' order.
    pub shops: Vec<i64>,
    /// The residents' ids.
    pub residents: Vec<i64>,
    /// The ID-linkage partner and the coupon partner, when asked for.
    pub partners: Option<(i64, i64)>,
}

/// Adds what `seed` asks for through the engine, as an operator would.
pub async fn seed(engine: &crate::engine::Engine, seed: &Seed) -> anyhow::Result<Seeded> {
    use crate::engine::{Change, ChangeResult};
    let fail = |p: mykey_core::Problem| anyhow::anyhow!(p.detail);
    let id = |r: ChangeResult| match r {
        ChangeResult::Id(i) => Ok(i),
        other => Err(anyhow::anyhow!("expected an id, got {other:?}")),
    };
    anyhow::ensure!(
        seed.municipalities <= SEED_MUNICIPALITIES.len(),
        "at most {} municipalities",
        SEED_MUNICIPALITIES.len()
    );
    for (i, (code, prefecture, name)) in SEED_MUNICIPALITIES.iter().take(seed.municipalities).enumerate() {
        let change = Change::Municipality {
            id: i as i64 + 1,
            prefecture_code: (*code).into(),
            prefecture: (*prefecture).into(),
            name: (*name).into(),
            kind: "municipality".into(),
        };
        engine.apply(change).await.map_err(fail)?;
    }
    let mut out = Seeded::default();
    if seed.partners {
        let partner = |name: &str, name_en: &str, point_kind: &str, exchange_method: &str| Change::Partner {
            name: name.into(),
            name_en: name_en.into(),
            point_kind: point_kind.into(),
            exchange_method: exchange_method.into(),
        };
        let jal = id(engine.apply(partner("日本航空株式会社", "JAL", "mileage", "id_linkage")).await.map_err(fail)?)?;
        let card = partner("三井住友カード株式会社", "Sumitomo Mitsui Card", "card points", "coupon_url");
        let card = id(engine.apply(card).await.map_err(fail)?)?;
        out.partners = Some((jal, card));
    }
    for (i, &municipality) in seed.shops.iter().enumerate() {
        let shop = Change::Shop { name: format!("shop {}", i + 1), municipality };
        out.shops.push(id(engine.apply(shop).await.map_err(fail)?)?);
    }
    // Bounded batches of residents: one change adds at most this many.
    const RESIDENTS_PER_CHANGE: usize = 2000;
    while out.residents.len() < seed.residents {
        let count = (seed.residents - out.residents.len()).min(RESIDENTS_PER_CHANGE);
        match engine.apply(Change::Residents { home: 1, count }).await.map_err(fail)? {
            ChangeResult::Residents(r) => out.residents.extend(r.into_iter().map(|r| r.resident)),
            other => anyhow::bail!("expected residents, got {other:?}"),
        }
    }
    Ok(out)
}

/// Adds municipality 1 (前橋市) and `residents` residents living there (ids from 1).
pub async fn add_municipality_and_residents(engine: &crate::engine::Engine, residents: usize) {
    seed(engine, &Seed { municipalities: 1, residents, ..Seed::default() }).await.expect("a seeded ledger");
}

/// A grant of `amount` points of municipality 1 to resident 1 (as made by
/// [`add_municipality_and_residents`]) under the client id `id`.
pub fn grant(id: uuid::Uuid, amount: i64) -> crate::engine::Request {
    crate::engine::Request::Grant(mykey_core::api::GrantRequest {
        id,
        resident: 1,
        municipality: 1,
        event: None,
        amount: rust_decimal::Decimal::from(amount),
        expires_at: None,
        memo: None,
    })
}

/// An engine answer as the HTTP edge sends it to a resident or municipality: status and body.
pub fn rendered(a: &crate::engine::Executed) -> (u16, String) {
    match a {
        Ok(done) => (done.status, done.body.clone()),
        Err(e) => {
            let p = mykey_core::Problem::from(e.clone());
            (p.status, serde_json::to_string(&p).expect("problems serialise"))
        }
    }
}

/// Resident `resident`'s balance in municipality 1's points, as the tables hold it.
pub async fn municipal_balance(engine: &crate::engine::Engine, resident: i64) -> i64 {
    let tables = engine.tables().await.expect("the tables catch up");
    let balances = tables.resident_balances(resident, crate::time::now()).await.unwrap().unwrap();
    balances.accounts.iter().find(|a| a.kind == mykey_core::api::AccountKind::Municipal).map_or(0, |a| a.balance)
}

/// aiosmtpd (a real SMTP server, from PyPI; `scripts/install-deps` puts it in the tools folder)
/// on a free loopback port, storing what arrives in a Maildir. Killed on drop.
pub struct Smtp {
    child: std::process::Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Where the mails go (`new/`).
    pub maildir: std::path::PathBuf,
}

impl Drop for Smtp {
    #[allow(clippy::zombie_processes)]
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.maildir);
    }
}

impl Smtp {
    /// Starts one and waits until it takes connections.
    pub fn start() -> anyhow::Result<Smtp> {
        let tools = std::env::var("MYKEY_TOOLS").map(std::path::PathBuf::from).unwrap_or_else(|_| {
            std::path::PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/mykey/tools")
        });
        let python = tools.join("py/bin/python");
        anyhow::ensure!(python.exists(), "{} is missing: run scripts/install-deps", python.display());
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let maildir = std::env::temp_dir().join(format!("mykey-maildir-{}", uuid::Uuid::new_v4().simple()));
        #[allow(clippy::zombie_processes)] // Drop kills and waits for it.
        let child = std::process::Command::new(python)
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .spawn()?;
        let smtp = Smtp { child, port, maildir };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(smtp);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        anyhow::bail!("aiosmtpd did not start")
    }

    /// `smtp://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// (to, subject, body) of every message that arrived, decoded.
    pub fn arrived(&self) -> Vec<(String, String, String)> {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let Ok(entries) = std::fs::read_dir(self.maildir.join("new")) else { return vec![] };
        let decode_words = |s: &str| -> String {
            s.split_whitespace()
                .map(|w| match w.strip_prefix("=?utf-8?b?").and_then(|w| w.strip_suffix("?=")) {
                    Some(word) => b64.decode(word).ok().and_then(|b| String::from_utf8(b).ok()).unwrap_or_default(),
                    None => w.to_owned(),
                })
                .collect()
        };
        entries
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
            .filter_map(|text| {
                let text = text.replace("\r\n", "\n");
                let (head, body) = text.split_once("\n\n")?;
                let head = head.replace("\n ", " ").replace("\n\t", " ");
                let field = |name: &str| {
                    head.lines().find_map(|l| l.strip_prefix(&format!("{name}: "))).unwrap_or_default().to_owned()
                };
                let body: String = body.lines().filter(|l| !l.is_empty()).collect();
                let body = String::from_utf8(b64.decode(body.trim()).unwrap_or_default()).unwrap_or_default();
                Some((field("To"), decode_words(&field("Subject")), body))
            })
            .collect()
    }
}
