//! Storage: every SQL statement of the server lives here, one file per domain
//! (`scripts/check-layers` refuses one elsewhere). One schema and one set of queries
//! for SQLite and PostgreSQL through sqlx's `Any` driver (`$n` placeholders work on both);
//! the single writer's bulk writes and the audit's big reads use each database's own driver.

use std::path::PathBuf;
use std::str::FromStr;

use anyhow::{bail, Context};
use mykey_core::api::{
    AccountKind, AccountView, BalanceAsOf, Expiry, HistoryEntry, HistoryPage, HoldState,
    Municipality as MunicipalityView, Partner as PartnerView, ResidentBalances, Shop as ShopView, TransactionKind,
};
use mykey_core::Currency;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{AnyConnection, AnyPool, Connection, Executor, Row};
use uuid::Uuid;

use crate::ledger::{Account, Changes, Event, Hold, Lot, Municipality, Partner, Resident, Shop, Snapshot};
use crate::time::{micros_to_datetime, Micros};

pub mod catalog;
pub mod checkout;
pub mod close;
pub mod coupons;
pub mod devices;
pub mod embedding;
pub mod group_commit;
pub mod identity;
pub mod journal;
pub mod links;
pub mod lock;
pub mod mandates;
pub mod outbox;
pub mod repair;
pub mod vouchers;
pub mod witness;

/// Embedded migrations, the same for both databases.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Most bound parameters in one statement (SQLite's limit is 32766).
const MAX_PARAMS: usize = 30_000;

/// Every SQLite connection's settings, in order.
const SQLITE_PRAGMAS: [(&str, &str); 6] = [
    // WAL lets readers run beside the writer; FULL syncs the WAL on every commit, so an
    // acknowledged batch survives power loss.
    ("journal_mode", "WAL"),
    ("synchronous", "FULL"),
    ("busy_timeout", "10000"),
    // 256 MiB of page cache per connection: the writer's hot pages stay in memory instead of
    // being read back through the kernel per round.
    ("cache_size", "-262144"),
    // Multi-row upserts need statement journals; keep them off the disk.
    ("temp_store", "MEMORY"),
    // Hot pages (the hot shop, the tail of postings) are rewritten by every round; a longer
    // WAL copies each back once per checkpoint.
    ("wal_autocheckpoint", "10000"),
];

/// A connection of the database's own sqlx driver, for long reads ([`Store::native_connection`]).
pub enum NativeConnection {
    /// SQLite.
    Sqlite(sqlx::SqliteConnection),
    /// PostgreSQL.
    Postgres(sqlx::PgConnection),
}

/// Which database is behind the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// The database.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    url: String,
    upper_hashes: std::sync::Arc<UpperHashes>,
}

/// The log's stored hashes of level [`UPPER_LEVEL`] and above, kept once read. A stored hash
/// never changes once written (the tree only grows), and every inclusion proof needs the same
/// few upper hashes, so proofs read only their lowest levels from the database. 10 million
/// leaves have about 39,000 such hashes (1.3 MB); [`UPPER_HASHES_MAX`] bounds the memory.
#[derive(Debug, Default)]
struct UpperHashes(std::sync::RwLock<std::collections::HashMap<u64, crate::log::Hash>>);

/// The lowest cached level: each hash there covers 256 leaves (one level-0 tile).
pub const UPPER_LEVEL: u8 = 8;
/// At most this many cached hashes (32 MiB of hashes; 268 million leaves at [`UPPER_LEVEL`]).
pub const UPPER_HASHES_MAX: usize = 1 << 20;

/// A stored answer to an idempotent request.
#[derive(Clone, Debug)]
pub struct StoredResponse {
    /// SHA-256 of what was asked, hex.
    pub fingerprint: String,
    /// HTTP status given.
    pub status: u16,
    /// JSON body given.
    pub body: String,
}

/// A request record written with its batch.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct RequestRecord {
    /// Position among all requests ([`crate::store::journal::request_seq`]); not journaled, since it
    /// follows from the batch and the record's place in it.
    #[serde(skip)]
    pub seq: i64,
    /// Client id.
    pub id: Uuid,
    /// SHA-256 of what was asked, hex.
    pub fingerprint: String,
    /// HTTP status given.
    pub status: u16,
    /// JSON body given.
    pub body: String,
    /// When.
    pub created_at: Micros,
}

/// A value bound into a generated statement.
enum V {
    I(i64),
    T(String),
}

/// `($1,$2),($3,$4)` for PostgreSQL; `(?,?),(?,?)` for SQLite, whose lookup of numbered
/// parameter names is linear per parameter and so quadratic over a large batch.
fn placeholders(backend: Backend, rows: usize, cols: usize, first: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            s.push(',');
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push(',');
            }
            match backend {
                Backend::Sqlite => s.push('?'),
                Backend::Postgres => {
                    s.push('$');
                    s.push_str(&(first + r * cols + c).to_string());
                }
            }
        }
        s.push(')');
    }
    s
}

/// Runs `head VALUES (...),(...) tail` for `rows`, in chunks within the parameter limit.
async fn insert_many(
    backend: Backend,
    conn: &mut AnyConnection,
    head: &str,
    tail: &str,
    cols: usize,
    rows: Vec<Vec<V>>,
) -> anyhow::Result<()> {
    let per = (MAX_PARAMS / cols).max(1);
    for chunk in rows.chunks(per) {
        let sql = format!("{head} VALUES {} {tail}", placeholders(backend, chunk.len(), cols, 1));
        let mut q = sqlx::query(&sql);
        for row in chunk {
            debug_assert_eq!(row.len(), cols);
            for v in row {
                q = match v {
                    V::I(x) => q.bind(*x),
                    V::T(x) => q.bind(x.clone()),
                };
            }
        }
        q.execute(&mut *conn).await.with_context(|| format!("writing {head}"))?;
    }
    Ok(())
}

/// A UUID stored as text in `column` of `r`.
fn uuid_column(r: &AnyRow, column: &str) -> sqlx::Result<Uuid> {
    Uuid::parse_str(&r.try_get::<String, _>(column)?).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn currency(s: &str) -> anyhow::Result<Currency> {
    Currency::from_str(s).map_err(|e| anyhow::anyhow!("stored currency: {e}"))
}

fn account_kind(s: &str) -> anyhow::Result<AccountKind> {
    AccountKind::parse(s).with_context(|| format!("stored account kind {s:?}"))
}

fn tx_kind(s: &str) -> anyhow::Result<TransactionKind> {
    TransactionKind::parse(s).with_context(|| format!("stored transaction kind {s:?}"))
}

/// Who and what an account is ([`Tables::account_parties`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountParties {
    /// Its kind.
    pub kind: AccountKind,
    /// The resident, shop, partner or municipality it belongs to.
    pub owner: i64,
    /// Whose points it holds.
    pub municipality: i64,
    /// The event programme, for event points.
    pub event: Option<i64>,
}

fn event_id(e: Option<i64>) -> i64 {
    e.unwrap_or(0)
}

/// The single writer's connection, on the database's own sqlx driver: a round of the
/// materialiser binds hundreds of thousands of values, and `Any` copies each one more time.
pub enum WriterConnection {
    /// SQLite.
    Sqlite(sqlx::SqliteConnection),
    /// PostgreSQL.
    Postgres(sqlx::PgConnection),
}

/// mykey_core::identity::Notices as stored: a comma-separated list of kinds.
pub fn notices_to_text(n: &mykey_core::identity::Notices) -> String {
    let kinds = [
        (n.points_granted, "points_granted"),
        (n.points_expired, "points_expired"),
        (n.settings_changed, "settings_changed"),
        (n.mykey_id_changed, "mykey_id_changed"),
        (n.payments, "payments"),
    ];
    kinds.iter().filter(|(on, _)| *on).map(|(_, k)| *k).collect::<Vec<_>>().join(",")
}

/// mykey_core::identity::Notices from their stored form.
pub fn notices_from_text(s: &str) -> mykey_core::identity::Notices {
    let has = |k: &str| s.split(',').any(|x| x == k);
    mykey_core::identity::Notices {
        points_granted: has("points_granted"),
        points_expired: has("points_expired"),
        settings_changed: has("settings_changed"),
        mykey_id_changed: has("mykey_id_changed"),
        payments: has("payments"),
    }
}

/// The ledger's tables once they hold every write acknowledged so far: the one way to the
/// reads of what the writer wrote. Only `engine::Engine::tables` makes one, right after
/// waiting at its barrier (`scripts/check-layers` refuses a call to
/// [`Tables::after_barrier`] anywhere else), so a client always sees its own answered writes.
#[derive(Clone, Copy)]
pub struct Tables<'a> {
    store: &'a Store,
}

impl<'a> Tables<'a> {
    /// The tables, for the engine once its barrier has passed.
    pub fn after_barrier(store: &'a Store) -> Tables<'a> {
        Tables { store }
    }

    /// The stored answer of the request record `seq` (the engine knows each id's seq).
    pub async fn stored_response(&self, seq: i64) -> anyhow::Result<Option<StoredResponse>> {
        let row = sqlx::query("SELECT fingerprint, status, response FROM requests WHERE seq = $1")
            .bind(seq)
            .fetch_optional(&self.store.pool)
            .await?;
        row.map(|r| {
            Ok(StoredResponse {
                fingerprint: r.try_get("fingerprint")?,
                status: u16::try_from(r.try_get::<i64, _>("status")?)?,
                body: r.try_get("response")?,
            })
        })
        .transpose()
    }

    /// Settlement lines of `[from, to)`: every partner share returned to a partner's clearing
    /// account by an assignment (a resident's, or the move home after `ledger::RESERVED_WAIT`), per partner and the
    /// municipality the points went to; optionally one partner or municipality only.
    pub async fn settlement(
        &self,
        from: Micros,
        to: Micros,
        partner: Option<i64>,
        municipality: Option<i64>,
    ) -> anyhow::Result<Vec<mykey_core::api::SettlementLine>> {
        let rows = sqlx::query(
            "SELECT a.owner_id AS partner, pa.name AS partner_name, t.municipality_id AS municipality, \
             m.name AS municipality_name, CAST(SUM(p.amount) AS BIGINT) AS points, COUNT(*) AS assignments \
             FROM postings p JOIN accounts a ON a.id = p.account_id JOIN transactions t ON t.seq = p.seq \
             JOIN partners pa ON pa.id = a.owner_id JOIN municipalities m ON m.id = t.municipality_id \
             WHERE a.kind = 'clearing' AND t.kind = 'assignment' AND p.amount > 0 \
             AND t.created_at >= $1 AND t.created_at < $2 AND ($3 = 0 OR a.owner_id = $3) AND ($4 = 0 OR t.municipality_id = $4) \
             GROUP BY a.owner_id, pa.name, t.municipality_id, m.name ORDER BY a.owner_id, t.municipality_id",
        )
        .bind(from)
        .bind(to)
        .bind(partner.unwrap_or(0))
        .bind(municipality.unwrap_or(0))
        .fetch_all(&self.store.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let points: i64 = r.try_get("points")?;
                Ok(mykey_core::api::SettlementLine {
                    partner: r.try_get("partner")?,
                    partner_name: r.try_get("partner_name")?,
                    municipality: r.try_get("municipality")?,
                    municipality_name: r.try_get("municipality_name")?,
                    points,
                    yen: rust_decimal::Decimal::from(points),
                    assignments: r.try_get("assignments")?,
                })
            })
            .collect()
    }

    /// A resident's home municipality, `None` for an unknown resident.
    pub async fn resident_home(&self, resident: i64) -> anyhow::Result<Option<i64>> {
        let row: Option<(i64,)> = sqlx::query_as("SELECT municipality_id FROM residents WHERE id = $1")
            .bind(resident)
            .fetch_optional(&self.store.pool)
            .await?;
        Ok(row.map(|r| r.0))
    }

    /// One account.
    pub async fn account(&self, id: i64, now: Micros) -> anyhow::Result<Option<AccountView>> {
        let rows = sqlx::query("SELECT * FROM accounts WHERE id = $1").bind(id).fetch_all(&self.store.pool).await?;
        Ok(self.store.account_views(rows, now).await?.into_iter().next())
    }

    /// Every account of a resident, with the home municipality and the next move home.
    pub async fn resident_balances(&self, resident: i64, now: Micros) -> anyhow::Result<Option<ResidentBalances>> {
        let Some(r) = sqlx::query("SELECT municipality_id, reserved_account FROM residents WHERE id = $1")
            .bind(resident)
            .fetch_optional(&self.store.pool)
            .await?
        else {
            return Ok(None);
        };
        let home: i64 = r.try_get("municipality_id")?;
        let reserved: i64 = r.try_get("reserved_account")?;
        let rows = sqlx::query(
            "SELECT * FROM accounts WHERE owner_id = $1 AND kind IN ('reserved', 'municipal', 'event') ORDER BY id",
        )
        .bind(resident)
        .fetch_all(&self.store.pool)
        .await?;
        let accounts = self.store.account_views(rows, now).await?;
        let moves: Option<i64> =
            sqlx::query("SELECT MIN(expires_at) AS m FROM lots WHERE account_id = $1 AND remaining > 0")
                .bind(reserved)
                .fetch_one(&self.store.pool)
                .await?
                .try_get("m")?;
        Ok(Some(ResidentBalances {
            resident,
            home_municipality: home,
            reserved_moves_home_at: moves.map(micros_to_datetime),
            accounts,
        }))
    }

    /// History of an account, newest first, `limit` entries before `before_seq`.
    pub async fn history(
        &self,
        account: i64,
        before_seq: Option<i64>,
        limit: u32,
        filter: &HistoryFilter,
    ) -> anyhow::Result<HistoryPage> {
        assert!(limit > 0 && limit <= 1000, "callers bound the page size");
        let rows = sqlx::query(
            "SELECT p.seq, p.amount, p.balance_after, p.created_at, t.id, t.kind, t.memo \
             FROM postings p JOIN transactions t ON t.seq = p.seq \
             WHERE p.account_id = $1 AND p.seq < $2 AND ($4 = '' OR t.kind = $4) \
             AND p.created_at >= $5 AND p.created_at < $6 ORDER BY p.seq DESC, p.leg DESC LIMIT $3",
        )
        .bind(account)
        .bind(before_seq.unwrap_or(i64::MAX))
        .bind(i64::from(limit) + 1)
        .bind(filter.kind.map(|k| k.as_str()).unwrap_or_default())
        .bind(filter.from.unwrap_or(i64::MIN))
        .bind(filter.to.unwrap_or(i64::MAX))
        .fetch_all(&self.store.pool)
        .await?;
        let mut entries = Vec::with_capacity(rows.len());
        for r in &rows {
            entries.push(HistoryEntry {
                seq: r.try_get("seq")?,
                transaction: Uuid::parse_str(&r.try_get::<String, _>("id")?)?,
                kind: tx_kind(&r.try_get::<String, _>("kind")?)?,
                amount: r.try_get("amount")?,
                balance_after: r.try_get("balance_after")?,
                created_at: micros_to_datetime(r.try_get("created_at")?),
                memo: r.try_get("memo")?,
            });
        }
        // One transaction may post to an account more than once (assignments from several
        // partners); a page never splits a transaction, so the cursor stays a plain seq.
        let mut next_cursor = None;
        if entries.len() > limit as usize {
            let cut_seq = entries[limit as usize].seq;
            let mut keep = limit as usize;
            while keep > 0 && entries[keep - 1].seq == cut_seq {
                keep -= 1;
            }
            if keep == 0 {
                keep = entries.iter().take_while(|e| e.seq == cut_seq).count();
            }
            entries.truncate(keep);
            next_cursor = entries.last().map(|e| e.seq.to_string());
        }
        Ok(HistoryPage { entries, next_cursor })
    }

    /// The posted balance of an account at a past moment.
    pub async fn balance_as_of(&self, account: i64, as_of: Micros) -> anyhow::Result<BalanceAsOf> {
        let balance: Option<i64> = sqlx::query(
            "SELECT balance_after FROM postings WHERE account_id = $1 AND created_at <= $2 \
             ORDER BY seq DESC, leg DESC LIMIT 1",
        )
        .bind(account)
        .bind(as_of)
        .fetch_optional(&self.store.pool)
        .await?
        .map(|r| r.try_get("balance_after"))
        .transpose()?;
        Ok(BalanceAsOf { account, as_of: micros_to_datetime(as_of), balance: balance.unwrap_or(0) })
    }

    /// Municipalities taking part.
    pub async fn municipalities(&self) -> anyhow::Result<Vec<MunicipalityView>> {
        let rows = sqlx::query("SELECT * FROM municipalities ORDER BY id").fetch_all(&self.store.pool).await?;
        rows.iter().map(municipality_from_row).collect()
    }

    /// Partner companies.
    pub async fn partners(&self) -> anyhow::Result<Vec<PartnerView>> {
        let rows = sqlx::query("SELECT * FROM partners ORDER BY id").fetch_all(&self.store.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(PartnerView {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    name_en: r.try_get("name_en")?,
                    point_kind: r.try_get("point_kind")?,
                    exchange_method: r.try_get("exchange_method")?,
                    clearing_account: r.try_get("clearing_account")?,
                })
            })
            .collect()
    }

    /// Shops, optionally of one municipality.
    pub async fn shops(&self, municipality: Option<i64>) -> anyhow::Result<Vec<ShopView>> {
        let rows = sqlx::query("SELECT * FROM shops WHERE $1 = 0 OR municipality_id = $1 ORDER BY id")
            .bind(municipality.unwrap_or(0))
            .fetch_all(&self.store.pool)
            .await?;
        rows.iter().map(shop_from_row).collect()
    }

    /// One shop; none for an unknown one.
    pub async fn shop(&self, id: i64) -> anyhow::Result<Option<ShopView>> {
        let row = sqlx::query("SELECT * FROM shops WHERE id = $1").bind(id).fetch_optional(&self.store.pool).await?;
        row.as_ref().map(shop_from_row).transpose()
    }

    /// An event programme's name; none for an unknown one.
    pub async fn event_name(&self, id: i64) -> anyhow::Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT name FROM events WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.store.pool)
            .await?)
    }

    /// How a partner converts (`id_linkage`, `coupon_url`, ...); none for an unknown partner.
    pub async fn exchange_method(&self, partner: i64) -> anyhow::Result<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as("SELECT exchange_method FROM partners WHERE id = $1")
            .bind(partner)
            .fetch_optional(&self.store.pool)
            .await?;
        Ok(row.map(|(m,)| m))
    }

    /// A partner's name; none for an unknown partner.
    pub async fn partner_name(&self, partner: i64) -> anyhow::Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT name FROM partners WHERE id = $1")
            .bind(partner)
            .fetch_optional(&self.store.pool)
            .await?)
    }

    /// A shop's municipality and online service (0 when it belongs to none); none for an
    /// unknown shop.
    pub async fn shop_ties(&self, shop: i64) -> anyhow::Result<Option<(i64, i64)>> {
        Ok(sqlx::query_as("SELECT municipality_id, online_service_id FROM shops WHERE id = $1")
            .bind(shop)
            .fetch_optional(&self.store.pool)
            .await?)
    }

    /// The shop a hold pays; none for an unknown hold.
    pub async fn hold_shop(&self, hold: Uuid) -> anyhow::Result<Option<i64>> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT s.id FROM holds h JOIN shops s ON s.receivable_account = h.shop_account WHERE h.id = $1",
        )
        .bind(hold.to_string())
        .fetch_optional(&self.store.pool)
        .await?;
        Ok(row.map(|(s,)| s))
    }

    /// Owner and kind of an account, for authorisation of reads.
    pub async fn account_owner(&self, id: i64) -> anyhow::Result<Option<(AccountKind, i64, i64)>> {
        let row = sqlx::query("SELECT kind, owner_id, municipality_id FROM accounts WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.store.pool)
            .await?;
        row.map(|r| {
            Ok((account_kind(&r.try_get::<String, _>("kind")?)?, r.try_get("owner_id")?, r.try_get("municipality_id")?))
        })
        .transpose()
    }

    /// Who and what an account is: its kind, owner, municipality and event programme.
    pub async fn account_parties(&self, id: i64) -> anyhow::Result<Option<AccountParties>> {
        let row = sqlx::query("SELECT kind, owner_id, municipality_id, event_id FROM accounts WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.store.pool)
            .await?;
        row.map(|r| {
            let event: i64 = r.try_get("event_id")?;
            Ok(AccountParties {
                kind: account_kind(&r.try_get::<String, _>("kind")?)?,
                owner: r.try_get("owner_id")?,
                municipality: r.try_get("municipality_id")?,
                event: (event != 0).then_some(event),
            })
        })
        .transpose()
    }

    /// Every account's (id, balance, held), for audits and tests.
    pub async fn all_balances(&self) -> anyhow::Result<Vec<(i64, i64, i64)>> {
        let rows =
            sqlx::query("SELECT id, balance, held FROM accounts ORDER BY id").fetch_all(&self.store.pool).await?;
        rows.iter().map(|r| Ok((r.try_get("id")?, r.try_get("balance")?, r.try_get("held")?))).collect()
    }
}

impl crate::log::LogStore for Store {
    async fn stored_hashes(
        &self,
        indexes: &[u64],
    ) -> anyhow::Result<std::collections::BTreeMap<u64, crate::log::Hash>> {
        Store::stored_hashes(self, indexes).await
    }

    async fn log_leaves(&self, from: u64, to: u64) -> anyhow::Result<Vec<Vec<u8>>> {
        Store::log_leaves(self, from, to).await
    }
}

/// A memo as the tables can hold it: unchanged without control characters (every memo
/// acknowledged since `mykey_core::text`), else with each replaced by U+FFFD.
fn storable_memo(memo: &str) -> std::borrow::Cow<'_, str> {
    if !memo.chars().any(char::is_control) {
        std::borrow::Cow::Borrowed(memo)
    } else {
        std::borrow::Cow::Owned(memo.chars().map(|c| if c.is_control() { '\u{FFFD}' } else { c }).collect())
    }
}

/// Text ids of `ids`, formatted once into one buffer so that rows can bind them by reference.
fn uuid_texts(ids: impl Iterator<Item = Uuid>) -> Vec<[u8; uuid::fmt::Hyphenated::LENGTH]> {
    ids.map(|id| {
        let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        id.hyphenated().encode_lower(&mut buf);
        buf
    })
    .collect()
}

/// A formatted id as text (always ASCII).
fn uuid_str(buf: &[u8; uuid::fmt::Hyphenated::LENGTH]) -> &str {
    std::str::from_utf8(buf).expect("a formatted UUID is ASCII")
}

/// A voucher row.
fn voucher_from_row(r: &sqlx::any::AnyRow) -> anyhow::Result<crate::ledger::Voucher> {
    let state: String = r.try_get("state")?;
    let lots: String = r.try_get("lots")?;
    Ok(crate::ledger::Voucher {
        number: u64::try_from(r.try_get::<i64, _>("number")?)?,
        id: Uuid::parse_str(&r.try_get::<String, _>("id")?)?,
        resident: r.try_get("resident_id")?,
        account: r.try_get("account_id")?,
        municipality: r.try_get("municipality_id")?,
        amount: r.try_get("amount")?,
        state: mykey_core::voucher::VoucherState::parse(&state)
            .with_context(|| format!("a voucher in state {state:?}"))?,
        issued_by: r.try_get("issued_by")?,
        issued_at: r.try_get("issued_at")?,
        expires_at: r.try_get("expires_at")?,
        lots: serde_json::from_str(&lots).context("a voucher's lots")?,
        issue_seq: r.try_get("issue_seq")?,
        settled_at: r.try_get("settled_at")?,
        settled_by: r.try_get("settled_by")?,
        settle_seq: r.try_get("settle_seq")?,
    })
}

/// [`Store::materialize`] on SQLite's own driver.
mod sqlite_materializer {
    use super::*;
    type DB = sqlx::Sqlite;
    include!("materialize.rs");
}

/// [`Store::materialize`] on PostgreSQL's own driver.
mod postgres_materializer {
    use super::*;
    type DB = sqlx::Postgres;
    include!("materialize.rs");
}

/// Transactions after a seq with their postings (one row per posting), in commit order.
const TRANSACTIONS_AFTER: &str =
    "SELECT t.seq, t.id, t.municipality_id, t.kind, t.memo, t.created_at, p.account_id, p.amount, p.balance_after \
     FROM transactions t LEFT JOIN postings p ON p.seq = t.seq \
     WHERE t.seq IN (SELECT seq FROM transactions WHERE seq > $1 ORDER BY seq LIMIT $2) ORDER BY t.seq, p.leg";

/// Transactions from the rows of [`TRANSACTIONS_AFTER`], on either driver.
fn transactions_from_rows<R>(rows: &[R]) -> anyhow::Result<Vec<crate::ledger::Transaction>>
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    use crate::ledger::{PostingRow, Transaction};
    let mut out: Vec<Transaction> = Vec::new();
    for r in rows {
        let seq: i64 = r.try_get(0)?;
        if out.last().is_none_or(|t| t.seq != seq) {
            out.push(Transaction {
                seq,
                // An edited id or kind must still be read, to be reported: keep what parses.
                id: Uuid::parse_str(&r.try_get::<String, _>(1)?).unwrap_or_default(),
                kind: TransactionKind::parse(&r.try_get::<String, _>(3)?).unwrap_or(TransactionKind::Adjustment),
                municipality: r.try_get(2)?,
                memo: r.try_get(4)?,
                created_at: r.try_get(5)?,
                postings: Vec::new(),
            });
        }
        if let Some(account) = r.try_get::<Option<i64>, _>(6)? {
            let t = out.last_mut().expect("pushed above");
            t.postings.push(PostingRow { account, amount: r.try_get(7)?, balance_after: r.try_get(8)? });
        }
    }
    Ok(out)
}

/// Which lines of an account's history to show.
#[derive(Clone, Copy, Debug, Default)]
pub struct HistoryFilter {
    /// One kind of transaction only.
    pub kind: Option<TransactionKind>,
    /// From this moment (inclusive).
    pub from: Option<Micros>,
    /// Until this moment (exclusive).
    pub to: Option<Micros>,
}

/// A `municipalities` row as the API shows it.
pub(crate) fn municipality_from_row(r: &AnyRow) -> anyhow::Result<MunicipalityView> {
    Ok(MunicipalityView {
        id: r.try_get("id")?,
        prefecture_code: r.try_get("prefecture_code")?,
        prefecture: r.try_get("prefecture")?,
        name: r.try_get("name")?,
        kind: r.try_get("kind")?,
        treasury_account: r.try_get("treasury_account")?,
        breakage_account: r.try_get("breakage_account")?,
    })
}

/// A `shops` row as the API shows it.
pub(crate) fn shop_from_row(r: &AnyRow) -> anyhow::Result<ShopView> {
    let online: i64 = r.try_get("online_service_id")?;
    Ok(ShopView {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        municipality: r.try_get("municipality_id")?,
        receivable_account: r.try_get("receivable_account")?,
        online_service: (online != 0).then_some(online),
    })
}

fn account_from_row(r: &AnyRow) -> anyhow::Result<Account> {
    let event: i64 = r.try_get("event_id")?;
    Ok(Account {
        id: r.try_get("id")?,
        kind: account_kind(&r.try_get::<String, _>("kind")?)?,
        currency: currency(&r.try_get::<String, _>("currency")?)?,
        owner: r.try_get("owner_id")?,
        event: (event != 0).then_some(event),
        municipality: r.try_get("municipality_id")?,
        balance: r.try_get("balance")?,
        held: r.try_get("held")?,
        created_at: r.try_get("created_at")?,
    })
}

impl Store {
    /// Connects; for SQLite creates the file and sets WAL with fsync on every commit.
    pub async fn connect(url: &str) -> anyhow::Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            bail!("DATABASE_URL must start with sqlite: or postgres:, got {url:?}");
        };
        let url = if backend == Backend::Sqlite && !url.contains("mode=") {
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}mode=rwc")
        } else {
            url.to_owned()
        };
        let options = AnyConnectOptions::from_str(&url).context("parsing DATABASE_URL")?;
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 8 } else { 16 })
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        for (name, value) in SQLITE_PRAGMAS {
                            conn.execute(format!("PRAGMA {name} = {value}").as_str()).await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .with_context(|| format!("connecting to {}", redact(&url)))?;
        Ok(Store { pool, backend, url, upper_hashes: Default::default() })
    }

    /// Answers when the database does (health checks).
    pub async fn ping(&self) -> sqlx::Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies the embedded migrations.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        MIGRATOR.run(&self.pool).await.context("running migrations")
    }

    /// A connection outside the pool on the database's own driver, for the single writer
    /// (the materialiser, recovery, restore and the mirror's copy).
    pub async fn writer_connection(&self) -> anyhow::Result<WriterConnection> {
        Ok(match self.backend {
            Backend::Sqlite => {
                // Not through the pool, so not through its `after_connect`: the same settings.
                let options = SQLITE_PRAGMAS
                    .iter()
                    .fold(sqlx::sqlite::SqliteConnectOptions::from_str(&self.url)?, |o, (name, value)| {
                        o.pragma(*name, *value)
                    });
                WriterConnection::Sqlite(sqlx::SqliteConnection::connect_with(&options).await?)
            }
            Backend::Postgres => WriterConnection::Postgres(sqlx::PgConnection::connect(&self.url).await?),
        })
    }

    /// The pool, for health checks.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Where the SQLite file is, for the writer lock.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        if self.backend != Backend::Sqlite {
            return None;
        }
        let rest = self.url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
        let path = rest.split('?').next().unwrap_or(rest);
        (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
    }

    /// Reads everything the in-memory ledger is rebuilt from.
    pub async fn load_snapshot(&self) -> anyhow::Result<Snapshot> {
        let p = &self.pool;
        let mut s = Snapshot::default();
        for r in sqlx::query("SELECT * FROM accounts").fetch_all(p).await? {
            s.accounts.push(account_from_row(&r)?);
        }
        for r in sqlx::query("SELECT * FROM lots WHERE remaining > 0").fetch_all(p).await? {
            s.lots.push(Lot {
                id: r.try_get("id")?,
                account: r.try_get("account_id")?,
                seq: r.try_get("seq")?,
                source: tx_kind(&r.try_get::<String, _>("source")?)?,
                partner: r.try_get("partner_id")?,
                amount: r.try_get("amount")?,
                remaining: r.try_get("remaining")?,
                expires_at: r.try_get("expires_at")?,
                created_at: r.try_get("created_at")?,
            });
        }
        for r in sqlx::query("SELECT * FROM holds WHERE state = 'active'").fetch_all(p).await? {
            s.holds.push(Hold {
                id: Uuid::parse_str(&r.try_get::<String, _>("id")?)?,
                account: r.try_get("account_id")?,
                shop_account: r.try_get("shop_account")?,
                amount: r.try_get("amount")?,
                state: HoldState::Active,
                expires_at: r.try_get("expires_at")?,
                capture_seq: r.try_get("capture_seq")?,
                created_at: r.try_get("created_at")?,
                resolved_at: r.try_get("resolved_at")?,
            });
        }
        for r in sqlx::query("SELECT * FROM vouchers WHERE state = 'open'").fetch_all(p).await? {
            s.vouchers.push(voucher_from_row(&r)?);
        }
        for r in sqlx::query("SELECT * FROM municipalities").fetch_all(p).await? {
            s.municipalities.push(Municipality {
                id: r.try_get("id")?,
                prefecture_code: r.try_get("prefecture_code")?,
                prefecture: r.try_get("prefecture")?,
                name: r.try_get("name")?,
                kind: r.try_get("kind")?,
                expiry_days: r.try_get("expiry_days")?,
                treasury: r.try_get("treasury_account")?,
                breakage: r.try_get("breakage_account")?,
            });
        }
        for r in sqlx::query("SELECT * FROM partners").fetch_all(p).await? {
            s.partners.push(Partner {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                name_en: r.try_get("name_en")?,
                point_kind: r.try_get("point_kind")?,
                exchange_method: r.try_get("exchange_method")?,
                clearing: r.try_get("clearing_account")?,
            });
        }
        for r in sqlx::query("SELECT * FROM shops").fetch_all(p).await? {
            s.shops.push(Shop {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                municipality: r.try_get("municipality_id")?,
                receivable: r.try_get("receivable_account")?,
            });
        }
        for r in sqlx::query("SELECT * FROM events").fetch_all(p).await? {
            s.events.push(Event {
                id: r.try_get("id")?,
                municipality: r.try_get("municipality_id")?,
                name: r.try_get("name")?,
                expires_at: r.try_get("expires_at")?,
            });
        }
        for r in sqlx::query("SELECT * FROM residents").fetch_all(p).await? {
            s.residents.push(Resident {
                id: r.try_get("id")?,
                home: r.try_get("municipality_id")?,
                reserved: r.try_get("reserved_account")?,
                created_at: r.try_get("created_at")?,
            });
        }
        let r = sqlx::query(
            "SELECT (SELECT COALESCE(MAX(seq), 0) FROM transactions) AS s, \
                    (SELECT COALESCE(MAX(id), 0) FROM lots) AS l, \
                    (SELECT COALESCE(MAX(id), 0) FROM notices) AS n, \
                    (SELECT COALESCE(MAX(created_at), 0) FROM transactions) AS t",
        )
        .fetch_one(p)
        .await?;
        s.log_size = sqlx::query("SELECT COALESCE(MAX(idx) + 1, 0) AS n FROM log_leaves")
            .fetch_one(p)
            .await?
            .try_get::<i64, _>("n")? as u64;
        s.log_frontier = self.stored_hashes(&crate::log::Log::frontier_indexes(s.log_size)).await?;
        s.max_seq = r.try_get("s")?;
        s.max_lot = r.try_get("l")?;
        s.max_notice = r.try_get("n")?;
        s.last_time = r.try_get("t")?;
        Ok(s)
    }

    /// `(idx, hash)` of the rows of `table` (`log_leaves` or `log_hashes`) with these `idx`.
    async fn hashes_by_idx(&self, table: &str, ids: &[u64]) -> anyhow::Result<Vec<(u64, crate::log::Hash)>> {
        let list: Vec<String> = ids.iter().map(u64::to_string).collect();
        let sql = format!("SELECT idx, hash FROM {table} WHERE idx IN ({})", list.join(","));
        let mut out = Vec::with_capacity(ids.len());
        for r in sqlx::query(&sql).fetch_all(&self.pool).await? {
            let idx: i64 = r.try_get("idx")?;
            let hash: Vec<u8> = r.try_get("hash")?;
            let hash = hash.try_into().map_err(|_| anyhow::anyhow!("{table} hash {idx} is not 32 bytes"))?;
            out.push((idx as u64, hash));
        }
        Ok(out)
    }

    /// When each checkpoint recorded at or after `from` was made, in order of size.
    pub async fn checkpoint_times(&self, from: Micros) -> anyhow::Result<Vec<Micros>> {
        let rows: Vec<(i64,)> =
            sqlx::query_as("SELECT created_at FROM checkpoints WHERE created_at >= $1 ORDER BY size")
                .bind(from)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(t,)| t).collect())
    }

    /// Stored hashes of the log's tree by stored index; an index not stored is left out.
    pub async fn stored_hashes(
        &self,
        indexes: &[u64],
    ) -> anyhow::Result<std::collections::BTreeMap<u64, crate::log::Hash>> {
        let mut out = std::collections::BTreeMap::new();
        let mut missing = Vec::with_capacity(indexes.len());
        {
            let cached = self.upper_hashes.0.read().expect("the cache lock is never poisoned");
            for &i in indexes {
                match cached.get(&i) {
                    Some(h) => {
                        out.insert(i, *h);
                    }
                    None => missing.push(i),
                }
            }
        }
        let indexes = missing;
        // Level 0 is the leaves' own hashes, stored once in `log_leaves` (see `Log::append`).
        let (leaves, inner): (Vec<u64>, Vec<u64>) =
            indexes.iter().partition(|&&i| tlog_tiles::split_stored_hash_index(i).0 == 0);
        // Bounded statements: a tile needs 256 hashes, a proof about 2 log2(n).
        for chunk in leaves.chunks(500) {
            let ids: Vec<u64> = chunk.iter().map(|&i| tlog_tiles::split_stored_hash_index(i).1).collect();
            for (leaf, hash) in self.hashes_by_idx("log_leaves", &ids).await? {
                out.insert(tlog_tiles::stored_hash_index(0, leaf), hash);
            }
        }
        for chunk in inner.chunks(500) {
            out.extend(self.hashes_by_idx("log_hashes", chunk).await?);
        }
        let upper: Vec<(u64, crate::log::Hash)> = indexes
            .iter()
            .filter(|&&i| tlog_tiles::split_stored_hash_index(i).0 >= UPPER_LEVEL)
            .filter_map(|i| out.get(i).map(|h| (*i, *h)))
            .collect();
        if !upper.is_empty() {
            let mut cached = self.upper_hashes.0.write().expect("the cache lock is never poisoned");
            for (i, h) in upper {
                if cached.len() >= UPPER_HASHES_MAX {
                    break;
                }
                cached.insert(i, h);
            }
        }
        Ok(out)
    }

    /// Log leaves `from..to` (their bytes), in order.
    pub async fn log_leaves(&self, from: u64, to: u64) -> anyhow::Result<Vec<Vec<u8>>> {
        let rows = sqlx::query("SELECT seq, data FROM log_leaves WHERE idx >= $1 AND idx < $2 ORDER BY idx")
            .bind(from as i64)
            .bind(to as i64)
            .fetch_all(&self.pool)
            .await?;
        let mut leaves =
            rows.iter().map(|r| Ok((r.try_get("seq")?, r.try_get("data")?))).collect::<anyhow::Result<Vec<_>>>()?;
        self.leaf_bytes(&mut leaves).await?;
        Ok(leaves.into_iter().map(|(_, data)| data).collect())
    }

    /// Fills in the bytes of transaction leaves among `leaves` (as `(seq, data)` rows of
    /// `log_leaves`): the log stores a transaction's leaf without its bytes, which are
    /// [`crate::ledger::leaf::transaction_leaf`] of the transaction's rows. Rows with bytes (MyKey ID
    /// events, and transaction leaves written before this) stay as read. A transaction whose
    /// rows are gone is an error: the audit names it.
    pub async fn leaf_bytes(&self, leaves: &mut [(i64, Vec<u8>)]) -> anyhow::Result<()> {
        let missing = || leaves.iter().filter(|(seq, data)| *seq != 0 && data.is_empty()).map(|l| l.0);
        let (Some(lo), Some(hi)) = (missing().min(), missing().max()) else { return Ok(()) };
        let mut conn = self.pool.acquire().await?;
        let txs = Store::transactions_after(&mut conn, lo - 1, hi - lo + 1).await?;
        crate::ledger::leaf::rebuild_transaction_leaves(leaves.iter_mut().map(|(seq, data)| (*seq, data)), &txs)
            .map_err(|seq| {
                anyhow::anyhow!(
                    "the log's leaf of transaction {seq} keeps only its hash, and the transaction's rows are \
                     missing; `mykey-server audit` names what changed"
                )
            })?;
        Ok(())
    }

    /// Records a published checkpoint (a later note for the same size replaces it).
    pub async fn insert_checkpoint(
        &self,
        size: u64,
        note: &str,
        cosignatures: usize,
        now: Micros,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO checkpoints (size, note, cosignatures, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (size) DO UPDATE SET note = excluded.note, cosignatures = excluded.cosignatures",
        )
        .bind(size as i64)
        .bind(note.to_owned())
        .bind(cosignatures as i64)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The checkpoint of the largest size the log published, if any.
    pub async fn latest_checkpoint(&self) -> anyhow::Result<Option<String>> {
        let row =
            sqlx::query("SELECT note FROM checkpoints ORDER BY size DESC LIMIT 1").fetch_optional(&self.pool).await?;
        row.map(|r| Ok(r.try_get("note")?)).transpose()
    }

    /// Up to `limit` transactions after `after` (by seq), with their postings, in commit
    /// order: the ledger's own rows, as audits and restores read them.
    pub async fn transactions_after(
        conn: &mut AnyConnection,
        after: i64,
        limit: i64,
    ) -> anyhow::Result<Vec<crate::ledger::Transaction>> {
        let rows = sqlx::query(TRANSACTIONS_AFTER).bind(after).bind(limit).fetch_all(&mut *conn).await?;
        transactions_from_rows(&rows)
    }

    /// A connection of the database's own driver, for the audit's long reads: the `Any`
    /// driver would copy every value once more. Opened once per reader, not per chunk (a
    /// PostgreSQL connection starts a server process).
    pub async fn native_connection(&self) -> anyhow::Result<NativeConnection> {
        Ok(match self.backend {
            Backend::Sqlite => NativeConnection::Sqlite(sqlx::SqliteConnection::connect(&self.url).await?),
            Backend::Postgres => NativeConnection::Postgres(sqlx::PgConnection::connect(&self.url).await?),
        })
    }

    /// [`Store::transactions_after`] on a connection of the database's own driver.
    pub async fn transactions_after_native(
        conn: &mut NativeConnection,
        after: i64,
        limit: i64,
    ) -> anyhow::Result<Vec<crate::ledger::Transaction>> {
        match conn {
            NativeConnection::Sqlite(c) => {
                transactions_from_rows(&sqlx::query(TRANSACTIONS_AFTER).bind(after).bind(limit).fetch_all(c).await?)
            }
            NativeConnection::Postgres(c) => {
                transactions_from_rows(&sqlx::query(TRANSACTIONS_AFTER).bind(after).bind(limit).fetch_all(c).await?)
            }
        }
    }

    /// Leaves in the log's tables.
    pub async fn log_size(&self) -> anyhow::Result<u64> {
        let n: i64 = sqlx::query("SELECT COALESCE(MAX(idx) + 1, 0) AS n FROM log_leaves")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        Ok(n as u64)
    }

    /// All request ids ever used with their records' seq, for the engine's duplicate check.
    pub async fn request_ids(&self) -> anyhow::Result<Vec<(Uuid, i64)>> {
        let rows = sqlx::query("SELECT id, seq FROM requests").fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok((Uuid::parse_str(&r.try_get::<String, _>("id")?)?, r.try_get("seq")?))).collect()
    }

    /// Writes the rows of one or more journaled batches (merged, later rows winning) and
    /// moves the watermark to `through`, in one database transaction. Idempotent: inserts
    /// skip rows already there and upserts write the same images, so recovery may apply a
    /// batch again. `conn` is the materialiser's own connection.
    pub async fn materialize(
        &self,
        conn: &mut WriterConnection,
        ch: &Changes,
        requests: &[RequestRecord],
        through: i64,
    ) -> anyhow::Result<()> {
        match conn {
            WriterConnection::Sqlite(c) => sqlite_materializer::materialize(c, ch, requests, through).await,
            WriterConnection::Postgres(c) => postgres_materializer::materialize(c, ch, requests, through).await,
        }
    }

    /// The last batch whose rows are in the tables.
    pub async fn materialized_through(&self) -> anyhow::Result<i64> {
        Ok(sqlx::query("SELECT through_batch FROM materialized WHERE id = 1")
            .fetch_one(&self.pool)
            .await?
            .try_get("through_batch")?)
    }

    /// True when no municipality was ever added: read before a writer starts, to tell a new
    /// database from one in use.
    pub async fn is_new(&self) -> anyhow::Result<bool> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM municipalities").fetch_one(&self.pool).await?;
        Ok(n == 0)
    }

    /// The database URL (with its password), for opening the journal beside it.
    pub fn url(&self) -> &str {
        &self.url
    }

    // ----- queries (read committed state; never the engine's memory) -----

    async fn account_views(&self, rows: Vec<AnyRow>, now: Micros) -> anyhow::Result<Vec<AccountView>> {
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let a = account_from_row(&r)?;
            let next_expiry = if a.kind.is_resident() {
                sqlx::query(
                    "SELECT expires_at, CAST(SUM(remaining) AS BIGINT) AS points FROM lots \
                     WHERE account_id = $1 AND remaining > 0 AND expires_at = \
                       (SELECT MIN(expires_at) FROM lots WHERE account_id = $1 AND remaining > 0 AND expires_at > $2) \
                     GROUP BY expires_at",
                )
                .bind(a.id)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?
                .map(|r| -> anyhow::Result<Expiry> {
                    Ok(Expiry { at: micros_to_datetime(r.try_get("expires_at")?), points: r.try_get("points")? })
                })
                .transpose()?
            } else {
                None
            };
            out.push(AccountView {
                id: a.id,
                kind: a.kind,
                currency: a.currency,
                owner: a.owner,
                event: a.event,
                balance: a.balance,
                held: a.held,
                available: a.balance - a.held,
                next_expiry,
            });
        }
        Ok(out)
    }

    /// Stores an API key's hash.
    pub async fn insert_api_key(
        &self,
        key_hash: &str,
        role: &str,
        subject: i64,
        label: &str,
        now: Micros,
    ) -> anyhow::Result<()> {
        sqlx::query("INSERT INTO api_keys (key_hash, role, subject, label, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(key_hash.to_owned())
            .bind(role.to_owned())
            .bind(subject)
            .bind(label.to_owned())
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Revokes the live key with hash `key_hash`; false when there is none.
    pub async fn revoke_api_key(&self, key_hash: &str, now: Micros) -> anyhow::Result<bool> {
        let done = sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE key_hash = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(key_hash.to_owned())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Finds a live (not revoked) API key by hash: (role, subject).
    pub async fn api_key(&self, key_hash: &str) -> anyhow::Result<Option<(String, i64)>> {
        let row = sqlx::query("SELECT role, subject FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL")
            .bind(key_hash.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((r.try_get("role")?, r.try_get("subject")?))).transpose()
    }
}

/// Creates the empty PostgreSQL database `name` on the server of `admin` (a URL of any
/// database there) and returns its URL; for tests and benchmarks. `name` is a plain identifier.
pub async fn create_postgres_database(admin: &str, name: &str) -> anyhow::Result<String> {
    anyhow::ensure!(
        !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
        "a database name is lower-case letters, digits and underscores"
    );
    sqlx::any::install_default_drivers();
    let mut c = AnyConnection::connect(admin).await.context("connecting to the PostgreSQL admin URL")?;
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut c).await?;
    c.close().await?;
    let base = admin.rsplit_once('/').map(|(b, _)| b).context("the admin URL names a database")?;
    Ok(format!("{base}/{name}"))
}

/// Hides the password in a database URL for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_rows_then_columns() {
        assert_eq!(placeholders(Backend::Postgres, 2, 3, 1), "($1,$2,$3),($4,$5,$6)");
        assert_eq!(placeholders(Backend::Sqlite, 2, 2, 1), "(?,?),(?,?)");
    }

    #[test]
    fn redact_hides_passwords_only() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("sqlite:/tmp/x.db"), "sqlite:/tmp/x.db");
    }
}
