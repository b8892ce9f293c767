//! The SQL of a shop's daily close: which device sent each counter request
//! (`counter_requests`), and the day's postings to the shop's receivable account, named by it.

use sqlx::{AnyPool, Row};
use uuid::Uuid;

use super::{tx_kind, Tables};
use crate::time::Micros;
use mykey_core::api::TransactionKind;

/// Notes that `device` of `shop` sent counter request `id` (before the ledger applies it); a
/// retry keeps the first device.
pub async fn record_request(
    c: impl sqlx::Executor<'_, Database = sqlx::Any>,
    id: Uuid,
    shop: i64,
    device: Uuid,
    now: Micros,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO counter_requests (id, shop_id, device_id, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(id.to_string())
    .bind(shop)
    .bind(device.to_string())
    .bind(now)
    .execute(c)
    .await?;
    Ok(())
}

/// The shop whose counter device sent request `id`, if a counter device did.
pub async fn request_shop(pool: &AnyPool, id: Uuid) -> sqlx::Result<Option<i64>> {
    let row = sqlx::query("SELECT shop_id FROM counter_requests WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(pool)
        .await?;
    row.map(|r| r.try_get("shop_id")).transpose()
}

/// One group of a day's postings to a shop's receivable account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseRow {
    /// Whose points.
    pub municipality: i64,
    /// The device that sent them; none for what no device sent (a hold captured by the store).
    pub device: Option<Uuid>,
    /// What staff call that device.
    pub device_name: Option<String>,
    /// Payment, refund, ….
    pub kind: TransactionKind,
    /// Transactions.
    pub count: i64,
    /// Points into the shop's account (a refund's are negative).
    pub points: i64,
}

impl Tables<'_> {
    /// The postings to `account` made in `[from, to)`, by municipality, device and kind.
    pub async fn daily_close(&self, account: i64, from: Micros, to: Micros) -> anyhow::Result<Vec<CloseRow>> {
        let rows = sqlx::query(
            "SELECT t.municipality_id, c.device_id, d.name, t.kind, COUNT(*) AS n, CAST(SUM(p.amount) AS BIGINT) AS points \
             FROM postings p JOIN transactions t ON t.seq = p.seq \
             LEFT JOIN counter_requests c ON c.id = t.id \
             LEFT JOIN devices d ON d.id = c.device_id \
             WHERE p.account_id = $1 AND p.created_at >= $2 AND p.created_at < $3 \
             GROUP BY t.municipality_id, c.device_id, d.name, t.kind \
             ORDER BY t.municipality_id, d.name, c.device_id, t.kind",
        )
        .bind(account)
        .bind(from)
        .bind(to)
        .fetch_all(&self.store.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let device: Option<String> = r.try_get("device_id")?;
                Ok(CloseRow {
                    municipality: r.try_get("municipality_id")?,
                    device: device.map(|d| Uuid::parse_str(&d)).transpose()?,
                    device_name: r.try_get("name")?,
                    kind: tx_kind(&r.try_get::<String, _>("kind")?)?,
                    count: r.try_get("n")?,
                    points: r.try_get("points")?,
                })
            })
            .collect()
    }
}
