//! The SQL of coupon batches and their codes (stored as hashes, never as codes).

use mykey_core::coupon::Delivery;
use rust_decimal::Decimal;
use sqlx::{AnyConnection, AnyPool, Row};
use uuid::Uuid;

use super::{insert_many, Store, V};
use crate::time::Micros;

/// A batch as it is stored.
#[derive(Clone, Debug)]
pub struct NewBatch<'a> {
    /// The partner's request id, which is the batch's id.
    pub id: Uuid,
    /// The issuing partner.
    pub partner: i64,
    /// Hash of the request, to tell a retry from a different batch under the same id.
    pub fingerprint: &'a str,
    /// Codes in the batch.
    pub count: u32,
    /// Partner points each code stands for.
    pub partner_points: Decimal,
    /// Municipal points per partner point.
    pub rate: Decimal,
    /// Municipal points each code gives.
    pub points: i64,
    /// How the partner hands the codes out.
    pub delivery: Delivery,
    /// When the codes expire.
    pub expires_at: Micros,
    /// Issued at.
    pub created_at: Micros,
}

/// An issued code with what its batch gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedCoupon {
    /// Its batch.
    pub batch: Uuid,
    /// The issuing partner.
    pub partner: i64,
    /// Reserved points it gives.
    pub points: i64,
    /// The resident who redeemed it, if anyone did.
    pub redeemed_by: Option<i64>,
    /// Partner points the code stands for.
    pub partner_points: Decimal,
    /// Municipal points per partner point.
    pub rate: Decimal,
    /// When the code expires.
    pub expires_at: Micros,
}

fn delivery_name(d: Delivery) -> &'static str {
    match d {
        Delivery::Paper => "paper",
        Delivery::Email => "email",
        Delivery::Url => "url",
    }
}

fn decimal(r: &sqlx::any::AnyRow, column: &str) -> sqlx::Result<Decimal> {
    r.try_get::<String, _>(column)?.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// The fingerprint of batch `id`, if it was issued.
pub async fn batch_fingerprint(pool: &AnyPool, id: Uuid) -> sqlx::Result<Option<String>> {
    let row: Option<(String,)> = sqlx::query_as("SELECT fingerprint FROM coupon_batches WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|(f,)| f))
}

/// The issued code whose hash is `code_hash`.
pub async fn issued(pool: &AnyPool, code_hash: &str) -> sqlx::Result<Option<IssuedCoupon>> {
    let row = sqlx::query(
        "SELECT c.batch_id, c.partner_id, c.redeemed_by, b.points, b.partner_points, b.rate, b.expires_at \
         FROM coupons c JOIN coupon_batches b ON b.id = c.batch_id WHERE c.code_hash = $1",
    )
    .bind(code_hash.to_owned())
    .fetch_optional(pool)
    .await?;
    row.map(|r| {
        Ok(IssuedCoupon {
            batch: Uuid::parse_str(&r.try_get::<String, _>("batch_id")?)
                .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
            partner: r.try_get("partner_id")?,
            points: r.try_get("points")?,
            redeemed_by: r.try_get("redeemed_by")?,
            partner_points: decimal(&r, "partner_points")?,
            rate: decimal(&r, "rate")?,
            expires_at: r.try_get("expires_at")?,
        })
    })
    .transpose()
}

/// Inside `tx`: marks an issued code redeemed by `resident`, with the partner's event if any;
/// false (nothing written) when it was no longer issued.
pub async fn claim(
    tx: &mut AnyConnection,
    code_hash: &str,
    resident: i64,
    now: Micros,
    event: Option<&super::embedding::NewEvent>,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE coupons SET state = 'redeemed', redeemed_by = $1, redeemed_at = $2 \
         WHERE code_hash = $3 AND state = 'issued'",
    )
    .bind(resident)
    .bind(now)
    .bind(code_hash.to_owned())
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    if let Some(e) = event {
        super::embedding::insert_event(tx, e).await?;
    }
    Ok(true)
}

/// Inside `tx`: marks an issued code mailed; false when it was mailed already (or redeemed).
pub async fn mark_mailed(tx: &mut AnyConnection, code_hash: &str, now: Micros) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE coupons SET mailed_at = $1 WHERE code_hash = $2 AND mailed_at IS NULL AND state = 'issued'",
    )
    .bind(now)
    .bind(code_hash.to_owned())
    .execute(tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A batch of `partner` as stored: its count, points and expiry; none for another's.
pub async fn batch(pool: &AnyPool, partner: i64, id: Uuid) -> sqlx::Result<Option<(u32, i64, Micros)>> {
    let row: Option<(i64, i64, i64)> =
        sqlx::query_as("SELECT count, points, expires_at FROM coupon_batches WHERE id = $1 AND partner_id = $2")
            .bind(id.to_string())
            .bind(partner)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|(n, p, e)| (u32::try_from(n).unwrap_or(0), p, e)))
}

/// The redeemed codes of a batch: hash and when.
pub async fn redeemed_in_batch(pool: &AnyPool, batch: Uuid) -> sqlx::Result<Vec<(String, Micros)>> {
    sqlx::query_as("SELECT code_hash, redeemed_at FROM coupons WHERE batch_id = $1 AND state = 'redeemed'")
        .bind(batch.to_string())
        .fetch_all(pool)
        .await
}

/// Who redeemed the code, if anyone did.
pub async fn redeemed_by(pool: &AnyPool, code_hash: &str) -> sqlx::Result<Option<i64>> {
    let row: Option<(Option<i64>,)> = sqlx::query_as("SELECT redeemed_by FROM coupons WHERE code_hash = $1")
        .bind(code_hash.to_owned())
        .fetch_optional(pool)
        .await?;
    Ok(row.and_then(|(r,)| r))
}

impl Store {
    /// Inserts a batch and its codes' hashes inside `conn`'s transaction.
    pub async fn insert_coupon_batch(
        &self,
        conn: &mut AnyConnection,
        batch: &NewBatch<'_>,
        hashes: Vec<String>,
    ) -> anyhow::Result<()> {
        debug_assert_eq!(hashes.len(), batch.count as usize, "one hash per code");
        sqlx::query(
            "INSERT INTO coupon_batches (id, partner_id, fingerprint, count, partner_points, rate, points, delivery, \
             expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(batch.id.to_string())
        .bind(batch.partner)
        .bind(batch.fingerprint.to_owned())
        .bind(i64::from(batch.count))
        .bind(batch.partner_points.to_string())
        .bind(batch.rate.to_string())
        .bind(batch.points)
        .bind(delivery_name(batch.delivery))
        .bind(batch.expires_at)
        .bind(batch.created_at)
        .execute(&mut *conn)
        .await?;
        let id = batch.id.to_string();
        let rows = hashes
            .into_iter()
            .map(|h| vec![V::T(h), V::T(id.clone()), V::I(batch.partner), V::T("issued".into())])
            .collect();
        insert_many(self.backend, conn, "INSERT INTO coupons (code_hash, batch_id, partner_id, state)", "", 4, rows)
            .await
    }
}
