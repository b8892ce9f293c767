//! The SQL of MyKey IDs, registration drafts, sessions and the usage history
//! (`server/migrations/20261127000002_identity.sql`).

use mykey_core::identity::Notices;
use sqlx::{AnyPool, Row};

use crate::ledger::leaf::UsageEvent;
use crate::store::{notices_from_text, notices_to_text};
use crate::time::Micros;

/// A card whose token verified: what a MyKey ID binds to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedCard {
    /// The issuer's name, DER in hex (stable across encodings of the same CA).
    pub issuer: String,
    /// The serial number, hex.
    pub serial: String,
    /// End of the certificate's validity.
    pub not_after: Micros,
}

/// A live (or ended) MyKey ID row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MykeyIdRow {
    /// The ID.
    pub id: String,
    /// Its resident.
    pub resident: i64,
    /// live | changed | revoked.
    pub status: String,
    /// Bound certificate's issuer (DER hex).
    pub cert_issuer: String,
    /// Bound certificate's serial (hex).
    pub cert_serial: String,
    /// Bound certificate's end of validity.
    pub cert_not_after: Micros,
    /// argon2id PHC string.
    pub password_hash: String,
    /// E-mail for notices.
    pub email: Option<String>,
    /// Notices chosen.
    pub notices: Notices,
    /// Home municipality.
    pub home_municipality: i64,
    /// Registered at (of this ID).
    pub created_at: Micros,
}

/// The candidate dialogue of one card.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Draft {
    /// Candidates generated so far.
    pub generated: u8,
    /// Duplicate checks that found the ID taken.
    pub failed_checks: u8,
    /// Duplicate checks in all.
    pub checks: u8,
    /// The candidate on offer.
    pub candidate: Option<String>,
    /// The candidate is the last generation and must be used.
    pub candidate_final: bool,
}

/// A browser session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// The resident, once there is a MyKey ID.
    pub resident: Option<i64>,
    /// `card` or `password`.
    pub method: String,
    /// The card that logged in (card sessions).
    pub card: Option<VerifiedCard>,
    /// When it ends.
    pub expires_at: Micros,
}

const MYKEY_ID_COLUMNS: &str = "id, resident_id, status, cert_issuer, cert_serial, cert_not_after, password_hash, \
     email, notices, home_municipality, created_at";

fn mykey_id_row(r: &sqlx::any::AnyRow) -> sqlx::Result<MykeyIdRow> {
    Ok(MykeyIdRow {
        id: r.try_get("id")?,
        resident: r.try_get("resident_id")?,
        status: r.try_get("status")?,
        cert_issuer: r.try_get("cert_issuer")?,
        cert_serial: r.try_get("cert_serial")?,
        cert_not_after: r.try_get("cert_not_after")?,
        password_hash: r.try_get("password_hash")?,
        email: r.try_get("email")?,
        notices: notices_from_text(&r.try_get::<String, _>("notices")?),
        home_municipality: r.try_get("home_municipality")?,
        created_at: r.try_get("created_at")?,
    })
}

/// True when a MyKey ID was ever issued (IDs are never issued twice).
pub async fn id_exists(pool: &AnyPool, id: &str) -> sqlx::Result<bool> {
    let row = sqlx::query("SELECT 1 FROM mykey_ids WHERE id = $1").bind(id.to_owned()).fetch_optional(pool).await?;
    Ok(row.is_some())
}

/// The live MyKey ID named `id`.
pub async fn live_by_id(pool: &AnyPool, id: &str) -> sqlx::Result<Option<MykeyIdRow>> {
    let sql = format!("SELECT {MYKEY_ID_COLUMNS} FROM mykey_ids WHERE id = $1 AND status = 'live'");
    sqlx::query(&sql).bind(id.to_owned()).fetch_optional(pool).await?.as_ref().map(mykey_id_row).transpose()
}

/// The live MyKey ID bound to a card.
pub async fn live_by_card(pool: &AnyPool, issuer: &str, serial: &str) -> sqlx::Result<Option<MykeyIdRow>> {
    let sql = format!(
        "SELECT {MYKEY_ID_COLUMNS} FROM mykey_ids WHERE cert_issuer = $1 AND cert_serial = $2 AND status = 'live'"
    );
    sqlx::query(&sql)
        .bind(issuer.to_owned())
        .bind(serial.to_owned())
        .fetch_optional(pool)
        .await?
        .as_ref()
        .map(mykey_id_row)
        .transpose()
}

/// The live MyKey ID of a resident.
pub async fn live_by_resident(pool: &AnyPool, resident: i64) -> sqlx::Result<Option<MykeyIdRow>> {
    let sql = format!("SELECT {MYKEY_ID_COLUMNS} FROM mykey_ids WHERE resident_id = $1 AND status = 'live'");
    sqlx::query(&sql).bind(resident).fetch_optional(pool).await?.as_ref().map(mykey_id_row).transpose()
}

/// Inserts a MyKey ID row inside `tx`.
pub async fn insert_mykey_id(tx: &mut sqlx::AnyConnection, row: &MykeyIdRow) -> sqlx::Result<()> {
    sqlx::query(&format!(
        "INSERT INTO mykey_ids ({MYKEY_ID_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    ))
    .bind(row.id.clone())
    .bind(row.resident)
    .bind(row.status.clone())
    .bind(row.cert_issuer.clone())
    .bind(row.cert_serial.clone())
    .bind(row.cert_not_after)
    .bind(row.password_hash.clone())
    .bind(row.email.clone())
    .bind(notices_to_text(&row.notices))
    .bind(row.home_municipality)
    .bind(row.created_at)
    .execute(tx)
    .await?;
    Ok(())
}

/// Ends a live ID (`changed` or `revoked`) inside `tx`; false if it was not live.
pub async fn end_mykey_id(tx: &mut sqlx::AnyConnection, id: &str, status: &str, now: Micros) -> sqlx::Result<bool> {
    let r = sqlx::query("UPDATE mykey_ids SET status = $1, ended_at = $2 WHERE id = $3 AND status = 'live'")
        .bind(status.to_owned())
        .bind(now)
        .bind(id.to_owned())
        .execute(tx)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Replaces the password hash of a live ID.
pub async fn set_password(tx: &mut sqlx::AnyConnection, id: &str, hash: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE mykey_ids SET password_hash = $1 WHERE id = $2 AND status = 'live'")
        .bind(hash.to_owned())
        .bind(id.to_owned())
        .execute(tx)
        .await?;
    Ok(())
}

/// Replaces e-mail and notices of a live ID.
pub async fn set_settings(
    tx: &mut sqlx::AnyConnection,
    id: &str,
    email: Option<&str>,
    notices: &Notices,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE mykey_ids SET email = $1, notices = $2 WHERE id = $3 AND status = 'live'")
        .bind(email.map(str::to_owned))
        .bind(notices_to_text(notices))
        .bind(id.to_owned())
        .execute(tx)
        .await?;
    Ok(())
}

/// Binds a live ID to another card.
pub async fn set_card(tx: &mut sqlx::AnyConnection, id: &str, card: &VerifiedCard) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE mykey_ids SET cert_issuer = $1, cert_serial = $2, cert_not_after = $3 WHERE id = $4 AND status = 'live'",
    )
    .bind(card.issuer.clone())
    .bind(card.serial.clone())
    .bind(card.not_after)
    .bind(id.to_owned())
    .execute(tx)
    .await?;
    Ok(())
}

/// The draft of a card (empty if none).
pub async fn draft(pool: &AnyPool, issuer: &str, serial: &str) -> sqlx::Result<Draft> {
    let row = sqlx::query(
        "SELECT generated, failed_checks, checks, candidate, candidate_final FROM mykey_id_drafts \
         WHERE cert_issuer = $1 AND cert_serial = $2",
    )
    .bind(issuer.to_owned())
    .bind(serial.to_owned())
    .fetch_optional(pool)
    .await?;
    let Some(r) = row else { return Ok(Draft::default()) };
    let small = |v: i64| u8::try_from(v).unwrap_or(u8::MAX);
    Ok(Draft {
        generated: small(r.try_get("generated")?),
        failed_checks: small(r.try_get("failed_checks")?),
        checks: small(r.try_get("checks")?),
        candidate: r.try_get("candidate")?,
        candidate_final: r.try_get::<i64, _>("candidate_final")? != 0,
    })
}

/// Saves a card's draft.
pub async fn save_draft(pool: &AnyPool, issuer: &str, serial: &str, d: &Draft, now: Micros) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO mykey_id_drafts (cert_issuer, cert_serial, generated, failed_checks, checks, candidate, \
         candidate_final, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (cert_issuer, cert_serial) DO UPDATE SET generated = excluded.generated, \
         failed_checks = excluded.failed_checks, checks = excluded.checks, candidate = excluded.candidate, \
         candidate_final = excluded.candidate_final",
    )
    .bind(issuer.to_owned())
    .bind(serial.to_owned())
    .bind(i64::from(d.generated))
    .bind(i64::from(d.failed_checks))
    .bind(i64::from(d.checks))
    .bind(d.candidate.clone())
    .bind(i64::from(d.candidate_final))
    .bind(now)
    .execute(pool)
    .await?;
    Ok(())
}

/// Removes a card's draft inside `tx`.
pub async fn delete_draft(tx: &mut sqlx::AnyConnection, issuer: &str, serial: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM mykey_id_drafts WHERE cert_issuer = $1 AND cert_serial = $2")
        .bind(issuer.to_owned())
        .bind(serial.to_owned())
        .execute(tx)
        .await?;
    Ok(())
}

/// Stores a session under the hash of its cookie.
pub async fn insert_session(pool: &AnyPool, token_hash: &str, s: &Session, now: Micros) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO sessions (token_hash, resident_id, method, cert_issuer, cert_serial, cert_not_after, created_at, \
         expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(token_hash.to_owned())
    .bind(s.resident)
    .bind(s.method.clone())
    .bind(s.card.as_ref().map(|c| c.issuer.clone()))
    .bind(s.card.as_ref().map(|c| c.serial.clone()))
    .bind(s.card.as_ref().map(|c| c.not_after))
    .bind(now)
    .bind(s.expires_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// The unexpired session behind a cookie hash.
pub async fn session(pool: &AnyPool, token_hash: &str, now: Micros) -> sqlx::Result<Option<Session>> {
    let row = sqlx::query(
        "SELECT resident_id, method, cert_issuer, cert_serial, cert_not_after, expires_at FROM sessions \
         WHERE token_hash = $1 AND expires_at > $2",
    )
    .bind(token_hash.to_owned())
    .bind(now)
    .fetch_optional(pool)
    .await?;
    let Some(r) = row else { return Ok(None) };
    let issuer: Option<String> = r.try_get("cert_issuer")?;
    let serial: Option<String> = r.try_get("cert_serial")?;
    let not_after: Option<i64> = r.try_get("cert_not_after")?;
    let card = match (issuer, serial, not_after) {
        (Some(issuer), Some(serial), Some(not_after)) => Some(VerifiedCard { issuer, serial, not_after }),
        _ => None,
    };
    Ok(Some(Session {
        resident: r.try_get("resident_id")?,
        method: r.try_get("method")?,
        card,
        expires_at: r.try_get("expires_at")?,
    }))
}

/// Gives a registration session its new resident, inside `tx`.
pub async fn attach_resident(tx: &mut sqlx::AnyConnection, token_hash: &str, resident: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE sessions SET resident_id = $1 WHERE token_hash = $2")
        .bind(resident)
        .bind(token_hash.to_owned())
        .execute(tx)
        .await?;
    Ok(())
}

/// Ends one session.
pub async fn delete_session(pool: &AnyPool, token_hash: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(token_hash.to_owned()).execute(pool).await?;
    Ok(())
}

/// Ends every session of a resident but `keep`, inside `tx`.
pub async fn delete_sessions_of(tx: &mut sqlx::AnyConnection, resident: i64, keep: Option<&str>) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM sessions WHERE resident_id = $1 AND token_hash <> $2")
        .bind(resident)
        .bind(keep.unwrap_or("").to_owned())
        .execute(tx)
        .await?;
    Ok(())
}

/// Removes expired sessions; returns how many.
pub async fn delete_expired_sessions(pool: &AnyPool, now: Micros) -> sqlx::Result<u64> {
    Ok(sqlx::query("DELETE FROM sessions WHERE expires_at <= $1").bind(now).execute(pool).await?.rows_affected())
}

/// Removes drafts started before `before`; returns how many.
pub async fn delete_drafts_before(pool: &AnyPool, before: Micros) -> sqlx::Result<u64> {
    Ok(sqlx::query("DELETE FROM mykey_id_drafts WHERE created_at < $1")
        .bind(before)
        .execute(pool)
        .await?
        .rows_affected())
}

/// Appends to the usage history inside `tx` (not yet logged: `leaf_index` is null).
pub async fn insert_event(
    tx: &mut sqlx::AnyConnection,
    resident: i64,
    mykey_id: &str,
    kind: &str,
    now: Micros,
) -> sqlx::Result<UsageEvent> {
    let e = UsageEvent {
        id: uuid::Uuid::new_v4(),
        resident,
        mykey_id: mykey_id.to_owned(),
        kind: kind.to_owned(),
        created_at: now,
    };
    sqlx::query(
        "INSERT INTO mykey_id_events (id, resident_id, mykey_id, kind, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(e.id.to_string())
    .bind(resident)
    .bind(e.mykey_id.clone())
    .bind(e.kind.clone())
    .bind(now)
    .execute(tx)
    .await?;
    Ok(e)
}

/// Usage events not yet in the log, oldest first, at most `limit`.
pub async fn unlogged_events(pool: &AnyPool, limit: i64) -> sqlx::Result<Vec<UsageEvent>> {
    let rows = sqlx::query(
        "SELECT id, resident_id, mykey_id, kind, created_at FROM mykey_id_events WHERE leaf_index IS NULL \
         ORDER BY created_at, id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(super::repair::usage_event_from_row).collect()
}

/// A resident's usage history, newest first, at most `limit` events.
pub async fn events(pool: &AnyPool, resident: i64, limit: i64) -> sqlx::Result<Vec<(String, String, Micros)>> {
    let rows = sqlx::query(
        "SELECT mykey_id, kind, created_at FROM mykey_id_events WHERE resident_id = $1 \
         ORDER BY created_at DESC LIMIT $2",
    )
    .bind(resident)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(|r| Ok((r.try_get("mykey_id")?, r.try_get("kind")?, r.try_get("created_at")?))).collect()
}
