//! The SQL of standing mandates (`mandates`) and the charges made under them
//! (`mandate_charges`); a link session's requested terms live on `link_sessions`.

use mykey_core::api::{MandateChargeLine, MandateTerms};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool, Row};
use uuid::Uuid;

use super::uuid_column;

use crate::time::{micros_to_datetime, Micros};

/// A mandate as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MandateRow {
    /// Its opaque id.
    pub id: Uuid,
    /// The store that may charge.
    pub shop: i64,
    /// Whose points.
    pub resident: i64,
    /// The store's municipality: whose points are charged.
    pub municipality: i64,
    /// The link it was granted with.
    pub link: Uuid,
    /// The link session that asked for it.
    pub session: Uuid,
    /// The limits.
    pub terms: MandateTerms,
    /// The first moment no charge may be made.
    pub ends_at: Micros,
    /// Revoked (by the resident, or with its link), or not.
    pub revoked_at: Option<Micros>,
    /// Granted at.
    pub granted_at: Micros,
}

fn date_column(r: &AnyRow, column: &str) -> sqlx::Result<chrono::NaiveDate> {
    r.try_get::<String, _>(column)?.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn mandate_row(r: &AnyRow) -> sqlx::Result<MandateRow> {
    let state: String = r.try_get("state")?;
    let revoked_at: Option<Micros> = r.try_get("revoked_at")?;
    // The CHECK constraint allows these two only; a revoked row always has its time.
    if (state == "revoked") != revoked_at.is_some() {
        return Err(sqlx::Error::Decode(format!("mandate state {state:?} and its revocation time disagree").into()));
    }
    Ok(MandateRow {
        id: uuid_column(r, "id")?,
        shop: r.try_get("shop_id")?,
        resident: r.try_get("resident_id")?,
        municipality: r.try_get("municipality_id")?,
        link: uuid_column(r, "link_id")?,
        session: uuid_column(r, "session_id")?,
        terms: MandateTerms {
            max_per_charge: r.try_get("max_per_charge")?,
            max_per_month: r.try_get("max_per_month")?,
            ends_on: date_column(r, "ends_on")?,
        },
        ends_at: r.try_get("ends_at")?,
        revoked_at,
        granted_at: r.try_get("granted_at")?,
    })
}

/// Inside `tx`: records a granted mandate.
pub async fn insert_mandate(tx: &mut AnyConnection, m: &MandateRow) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO mandates (id, shop_id, resident_id, municipality_id, link_id, session_id, max_per_charge, \
         max_per_month, ends_on, ends_at, state, granted_at, revoked_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'active', $11, NULL)",
    )
    .bind(m.id.to_string())
    .bind(m.shop)
    .bind(m.resident)
    .bind(m.municipality)
    .bind(m.link.to_string())
    .bind(m.session.to_string())
    .bind(m.terms.max_per_charge)
    .bind(m.terms.max_per_month)
    .bind(m.terms.ends_on.to_string())
    .bind(m.ends_at)
    .bind(m.granted_at)
    .execute(tx)
    .await?;
    Ok(())
}

/// A mandate by its id.
pub async fn mandate(pool: &AnyPool, id: Uuid) -> sqlx::Result<Option<MandateRow>> {
    sqlx::query("SELECT * FROM mandates WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(pool)
        .await?
        .as_ref()
        .map(mandate_row)
        .transpose()
}

/// The id of the mandate granted through link session `session`, if one was.
pub async fn of_session(pool: &AnyPool, session: Uuid) -> sqlx::Result<Option<Uuid>> {
    sqlx::query("SELECT id FROM mandates WHERE session_id = $1")
        .bind(session.to_string())
        .fetch_optional(pool)
        .await?
        .map(|r| uuid_column(&r, "id"))
        .transpose()
}

/// The resident's mandates, newest first, at most `limit`.
pub async fn mandates_of(pool: &AnyPool, resident: i64, limit: i64) -> sqlx::Result<Vec<MandateRow>> {
    sqlx::query("SELECT * FROM mandates WHERE resident_id = $1 ORDER BY granted_at DESC, id LIMIT $2")
        .bind(resident)
        .bind(limit)
        .fetch_all(pool)
        .await?
        .iter()
        .map(mandate_row)
        .collect()
}

/// Inside `tx`: revokes the resident's active mandate `id`; the row as it now stands, or none
/// when there was no such active mandate.
pub async fn revoke(tx: &mut AnyConnection, id: Uuid, resident: i64, now: Micros) -> sqlx::Result<Option<MandateRow>> {
    let done = sqlx::query(
        "UPDATE mandates SET state = 'revoked', revoked_at = $1 WHERE id = $2 AND resident_id = $3 AND state = 'active'",
    )
    .bind(now)
    .bind(id.to_string())
    .bind(resident)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(None);
    }
    sqlx::query("SELECT * FROM mandates WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .as_ref()
        .map(mandate_row)
        .transpose()
}

/// Inside `tx`: the active mandates granted with link `link` (revoked with it).
pub async fn active_of_link(tx: &mut AnyConnection, link: Uuid) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query("SELECT id FROM mandates WHERE link_id = $1 AND state = 'active'")
        .bind(link.to_string())
        .fetch_all(tx)
        .await?
        .iter()
        .map(|r| uuid_column(r, "id"))
        .collect()
}

/// The mandate under which ledger request `request` was asked for, if it was.
pub async fn charged_under(pool: &AnyPool, request: Uuid) -> sqlx::Result<Option<Uuid>> {
    let row = sqlx::query("SELECT mandate_id FROM mandate_charges WHERE request_id = $1")
        .bind(request.to_string())
        .fetch_optional(pool)
        .await?;
    row.map(|r| uuid_column(&r, "mandate_id")).transpose()
}

/// Reserves a charge of `amount` in `month` if the mandate's charges of that month (pending
/// ones included) leave room under `max_per_month`; false when they do not. The caller holds
/// the mandate's lock, so no other charge of it is reserved meanwhile.
#[allow(clippy::too_many_arguments)]
pub async fn reserve_charge(
    pool: &AnyPool,
    request: Uuid,
    mandate: Uuid,
    month: &str,
    amount: i64,
    max_per_month: i64,
    reference: &str,
    now: Micros,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO mandate_charges (request_id, mandate_id, month, amount, reference, state, created_at) \
         SELECT $1, $2, $3, $4, $5, 'pending', $6 \
         WHERE (SELECT COALESCE(SUM(amount), 0) FROM mandate_charges WHERE mandate_id = $2 AND month = $3) + $4 <= $7",
    )
    .bind(request.to_string())
    .bind(mandate.to_string())
    .bind(month.to_owned())
    .bind(amount)
    .bind(reference.to_owned())
    .bind(now)
    .bind(max_per_month)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Forgets a pending charge the ledger refused.
pub async fn drop_pending(pool: &AnyPool, request: Uuid) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM mandate_charges WHERE request_id = $1 AND state = 'pending'")
        .bind(request.to_string())
        .execute(pool)
        .await?;
    Ok(())
}

/// Inside `tx`: marks a pending charge charged; false when it already was (told once).
pub async fn mark_charged(tx: &mut AnyConnection, request: Uuid) -> sqlx::Result<bool> {
    let done = sqlx::query("UPDATE mandate_charges SET state = 'charged' WHERE request_id = $1 AND state = 'pending'")
        .bind(request.to_string())
        .execute(tx)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Points charged (pending included) under `mandate` in `month`.
pub async fn charged_in(pool: &AnyPool, mandate: Uuid, month: &str) -> sqlx::Result<i64> {
    // PostgreSQL sums BIGINTs as NUMERIC: cast back.
    let r = sqlx::query(
        "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) AS total FROM mandate_charges WHERE mandate_id = $1 AND month = $2",
    )
        .bind(mandate.to_string())
        .bind(month.to_owned())
        .fetch_one(pool)
        .await?;
    r.try_get("total")
}

/// The latest committed charges under `mandate`, newest first, at most `limit`.
pub async fn charges_of(pool: &AnyPool, mandate: Uuid, limit: i64) -> sqlx::Result<Vec<MandateChargeLine>> {
    sqlx::query(
        "SELECT created_at, amount, reference FROM mandate_charges WHERE mandate_id = $1 AND state = 'charged' \
         ORDER BY created_at DESC LIMIT $2",
    )
    .bind(mandate.to_string())
    .bind(limit)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| {
        Ok(MandateChargeLine {
            at: micros_to_datetime(r.try_get("created_at")?),
            points: r.try_get("amount")?,
            reference: r.try_get("reference")?,
        })
    })
    .collect()
}
