//! The SQL of counter devices (`devices`) and the pairing codes that enrol them
//! (`pairing_codes`).

use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};
use uuid::Uuid;

use super::uuid_column;
use crate::time::Micros;

/// A device as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceRow {
    /// Its id, the `keyid` of its signatures.
    pub id: Uuid,
    /// Its shop.
    pub shop: i64,
    /// What staff call it.
    pub name: String,
    /// The uncompressed P-256 point, base64url.
    pub public_key: String,
    /// Enrolled at.
    pub enrolled_at: Micros,
    /// Last signed request, to the minute.
    pub last_seen_at: Option<Micros>,
    /// Revoked at.
    pub revoked_at: Option<Micros>,
}

fn device_row(r: &AnyRow) -> sqlx::Result<DeviceRow> {
    Ok(DeviceRow {
        id: uuid_column(r, "id")?,
        shop: r.try_get("shop_id")?,
        name: r.try_get("name")?,
        public_key: r.try_get("public_key")?,
        enrolled_at: r.try_get("enrolled_at")?,
        last_seen_at: r.try_get("last_seen_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

/// Records a pairing code (its hash) for `shop` unless `open_max` of its codes are still open
/// (unused and unexpired); first forgets the shop's codes that expired unused. Whether it was
/// recorded.
pub async fn insert_pairing_code(
    pool: &AnyPool,
    code_hash: &str,
    shop: i64,
    now: Micros,
    expires_at: Micros,
    open_max: i64,
) -> sqlx::Result<bool> {
    let mut tx = pool.begin().await?;
    // A write first, so that SQLite takes its write lock before the count (see `enrol`).
    sqlx::query("DELETE FROM pairing_codes WHERE shop_id = $1 AND used_at IS NULL AND expires_at <= $2")
        .bind(shop)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    let open: i64 = sqlx::query("SELECT COUNT(*) AS n FROM pairing_codes WHERE shop_id = $1 AND used_at IS NULL")
        .bind(shop)
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
    if open >= open_max {
        return Ok(false);
    }
    sqlx::query("INSERT INTO pairing_codes (code_hash, shop_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
        .bind(code_hash)
        .bind(shop)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

/// Why a pairing code enrolled nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PairingRefused {
    /// No such code.
    Unknown,
    /// It enrolled a device already.
    Used,
    /// Its time ran out.
    Expired,
    /// The public key is another device's.
    KeyTaken,
}

/// In one transaction: uses the pairing code `code_hash` (once, before it expires) to enrol
/// `device` in the code's shop; the device as stored.
pub async fn enrol(
    pool: &AnyPool,
    code_hash: &str,
    id: Uuid,
    name: &str,
    public_key: &str,
    now: Micros,
) -> sqlx::Result<Result<DeviceRow, PairingRefused>> {
    let mut tx = pool.begin().await?;
    // The write comes first: SQLite takes its write lock here, waiting out another writer,
    // where a read first would leave a snapshot that another writer's commit makes impossible
    // to upgrade (SQLITE_BUSY at once). Used once: a second enrolment changes nothing.
    let used = sqlx::query(
        "UPDATE pairing_codes SET used_at = $1, device_id = $2 \
         WHERE code_hash = $3 AND used_at IS NULL AND expires_at > $1",
    )
    .bind(now)
    .bind(id.to_string())
    .bind(code_hash)
    .execute(&mut *tx)
    .await?;
    let code = sqlx::query("SELECT shop_id, expires_at, device_id FROM pairing_codes WHERE code_hash = $1")
        .bind(code_hash)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(code) = code else { return Ok(Err(PairingRefused::Unknown)) };
    let (shop, expires_at, used_by): (i64, Micros, Option<String>) =
        (code.try_get("shop_id")?, code.try_get("expires_at")?, code.try_get("device_id")?);
    if used.rows_affected() != 1 {
        // Why not, for the answer (the transaction is rolled back when dropped).
        return Ok(Err(if used_by.is_some() || now < expires_at {
            PairingRefused::Used
        } else {
            PairingRefused::Expired
        }));
    }
    let taken = sqlx::query("SELECT 1 AS one FROM devices WHERE public_key = $1")
        .bind(public_key)
        .fetch_optional(&mut *tx)
        .await?;
    if taken.is_some() {
        return Ok(Err(PairingRefused::KeyTaken));
    }
    sqlx::query(
        "INSERT INTO devices (id, shop_id, name, public_key, enrolled_at, last_seen_at, revoked_at) \
         VALUES ($1, $2, $3, $4, $5, NULL, NULL)",
    )
    .bind(id.to_string())
    .bind(shop)
    .bind(name)
    .bind(public_key)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Ok(DeviceRow {
        id,
        shop,
        name: name.to_owned(),
        public_key: public_key.to_owned(),
        enrolled_at: now,
        last_seen_at: None,
        revoked_at: None,
    }))
}

/// A device by its id.
pub async fn device(pool: &AnyPool, id: Uuid) -> sqlx::Result<Option<DeviceRow>> {
    sqlx::query("SELECT * FROM devices WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(pool)
        .await?
        .as_ref()
        .map(device_row)
        .transpose()
}

/// A shop's devices, newest first, at most `limit`.
pub async fn devices_of(pool: &AnyPool, shop: i64, limit: i64) -> sqlx::Result<Vec<DeviceRow>> {
    sqlx::query("SELECT * FROM devices WHERE shop_id = $1 ORDER BY enrolled_at DESC, id LIMIT $2")
        .bind(shop)
        .bind(limit)
        .fetch_all(pool)
        .await?
        .iter()
        .map(device_row)
        .collect()
}

/// Revokes `shop`'s live device `id`; false when there is none.
pub async fn revoke(pool: &AnyPool, shop: i64, id: Uuid, now: Micros) -> sqlx::Result<bool> {
    let done = sqlx::query("UPDATE devices SET revoked_at = $1 WHERE id = $2 AND shop_id = $3 AND revoked_at IS NULL")
        .bind(now)
        .bind(id.to_string())
        .bind(shop)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Records that device `id` made a signed request at `at`.
pub async fn seen(pool: &AnyPool, id: Uuid, at: Micros) -> sqlx::Result<()> {
    sqlx::query("UPDATE devices SET last_seen_at = $1 WHERE id = $2")
        .bind(at)
        .bind(id.to_string())
        .execute(pool)
        .await?;
    Ok(())
}
