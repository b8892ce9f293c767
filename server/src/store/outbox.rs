//! The SQL of the mail outbox: queued mail with its attempts, the ledger's notices waiting to
//! become mail, and the lots whose expiry was announced.

use mykey_core::identity::Notices;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool, Row};

use super::notices_from_text;
use crate::time::Micros;

/// A mail to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueuedMail {
    /// Its id.
    pub id: String,
    /// The address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain text.
    pub body: String,
    /// Tries so far.
    pub attempts: i64,
}

/// A resident's live MyKey ID with its address and notice choices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    /// The MyKey ID, which the mail greets.
    pub mykey_id: String,
    /// Where the mail goes.
    pub email: String,
    /// What the resident chose to hear about.
    pub notices: Notices,
}

/// A ledger notice not yet turned into mail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsentNotice {
    /// Its id (notices are read and marked in id order).
    pub id: i64,
    /// The resident it is for.
    pub resident: i64,
    /// What it tells: a [`crate::ledger::NoticeKind`]'s name (kept as stored, so that a
    /// kind this build does not know is passed over, not a failure of the whole batch).
    pub kind: String,
    /// JSON with the points and the municipality.
    pub payload: String,
    /// Where it goes; none for a resident without a live MyKey ID and an address.
    pub to: Option<Recipient>,
}

/// A lot of municipal or event points expiring soon, not yet announced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpiringLot {
    /// The lot.
    pub id: i64,
    /// Points left in it.
    pub remaining: i64,
    /// When they expire.
    pub expires_at: Micros,
    /// The resident holding it.
    pub resident: i64,
    /// The account's currency (`municipal:<id>`, ...).
    pub currency: String,
    /// Where the announcement goes; none as for [`UnsentNotice::to`].
    pub to: Option<Recipient>,
}

fn recipient(r: &AnyRow) -> sqlx::Result<Option<Recipient>> {
    Ok(
        match (
            r.try_get::<Option<String>, _>("mykey_id")?,
            r.try_get::<Option<String>, _>("email")?,
            r.try_get::<Option<String>, _>("notices")?,
        ) {
            (Some(mykey_id), Some(email), Some(notices)) => {
                Some(Recipient { mykey_id, email, notices: notices_from_text(&notices) })
            }
            _ => None,
        },
    )
}

/// Queues a mail inside the caller's transaction, due at once.
pub async fn insert_mail(
    c: &mut AnyConnection,
    resident: i64,
    kind: &str,
    to: &str,
    subject: &str,
    body: &str,
    now: Micros,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO mail_outbox (id, resident_id, kind, to_address, subject, body, created_at, attempts, next_attempt_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $7)",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(resident)
    .bind(kind.to_owned())
    .bind(to.to_owned())
    .bind(subject.to_owned())
    .bind(body.to_owned())
    .bind(now)
    .execute(c)
    .await?;
    Ok(())
}

/// Unsent mail due by `now` with fewer than `max_attempts` tries, oldest due first, at most `limit`.
pub async fn due_mail(pool: &AnyPool, now: Micros, max_attempts: i64, limit: i64) -> sqlx::Result<Vec<QueuedMail>> {
    sqlx::query(
        "SELECT id, to_address, subject, body, attempts FROM mail_outbox \
         WHERE sent_at IS NULL AND next_attempt_at <= $1 AND attempts < $2 ORDER BY next_attempt_at LIMIT $3",
    )
    .bind(now)
    .bind(max_attempts)
    .bind(limit)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| {
        Ok(QueuedMail {
            id: r.try_get("id")?,
            to: r.try_get("to_address")?,
            subject: r.try_get("subject")?,
            body: r.try_get("body")?,
            attempts: r.try_get("attempts")?,
        })
    })
    .collect()
}

/// Records that `mail` went out.
pub async fn mail_sent(pool: &AnyPool, mail: &QueuedMail, now: Micros) -> sqlx::Result<()> {
    sqlx::query("UPDATE mail_outbox SET sent_at = $1, attempts = $2 WHERE id = $3")
        .bind(now)
        .bind(mail.attempts + 1)
        .bind(mail.id.clone())
        .execute(pool)
        .await?;
    Ok(())
}

/// Records a failed try of `mail` and when to try again.
pub async fn mail_failed(pool: &AnyPool, mail: &QueuedMail, next_attempt_at: Micros, error: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE mail_outbox SET attempts = $1, next_attempt_at = $2, last_error = $3 WHERE id = $4")
        .bind(mail.attempts + 1)
        .bind(next_attempt_at)
        .bind(error.to_owned())
        .bind(mail.id.clone())
        .execute(pool)
        .await?;
    Ok(())
}

/// The first `limit` unsent notices by id, with their residents' recipients.
pub async fn unsent_notices(pool: &AnyPool, limit: i64) -> sqlx::Result<Vec<UnsentNotice>> {
    sqlx::query(
        "SELECT n.id, n.resident_id, n.kind, n.payload, m.id AS mykey_id, m.email, m.notices \
         FROM notices n LEFT JOIN mykey_ids m ON m.resident_id = n.resident_id AND m.status = 'live' \
         WHERE n.sent_at IS NULL ORDER BY n.id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| {
        Ok(UnsentNotice {
            id: r.try_get("id")?,
            resident: r.try_get("resident_id")?,
            kind: r.try_get("kind")?,
            payload: r.try_get("payload")?,
            to: recipient(r)?,
        })
    })
    .collect()
}

/// Marks every unsent notice up to `through` (by id) sent, inside `tx`.
pub async fn mark_notices_sent(tx: &mut AnyConnection, through: i64, now: Micros) -> sqlx::Result<()> {
    sqlx::query("UPDATE notices SET sent_at = $1 WHERE sent_at IS NULL AND id <= $2")
        .bind(now)
        .bind(through)
        .execute(tx)
        .await?;
    Ok(())
}

/// Unannounced lots of municipal and event points with points left that expire after `now`
/// and by `until`, by resident, at most `limit`.
pub async fn expiring_lots(pool: &AnyPool, now: Micros, until: Micros, limit: i64) -> sqlx::Result<Vec<ExpiringLot>> {
    sqlx::query(
        "SELECT l.id, l.remaining, l.expires_at, a.owner_id, a.currency, m.id AS mykey_id, m.email, m.notices \
         FROM lots l JOIN accounts a ON a.id = l.account_id \
         LEFT JOIN mykey_ids m ON m.resident_id = a.owner_id AND m.status = 'live' \
         WHERE l.remaining > 0 AND l.expires_at > $1 AND l.expires_at <= $2 AND a.kind IN ('municipal', 'event') \
         AND NOT EXISTS (SELECT 1 FROM expiry_warnings w WHERE w.lot_id = l.id) \
         ORDER BY a.owner_id, l.expires_at LIMIT $3",
    )
    .bind(now)
    .bind(until)
    .bind(limit)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| {
        Ok(ExpiringLot {
            id: r.try_get("id")?,
            remaining: r.try_get("remaining")?,
            expires_at: r.try_get("expires_at")?,
            resident: r.try_get("owner_id")?,
            currency: r.try_get("currency")?,
            to: recipient(r)?,
        })
    })
    .collect()
}

/// Records, inside `tx`, that a lot's expiry was announced.
pub async fn expiry_announced(tx: &mut AnyConnection, lot: i64, now: Micros) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO expiry_warnings (lot_id, created_at) VALUES ($1, $2)")
        .bind(lot)
        .bind(now)
        .execute(tx)
        .await?;
    Ok(())
}

/// "群馬県前橋市" for a municipality id; empty for an unknown one.
pub async fn place_name(tx: &mut AnyConnection, municipality: i64) -> sqlx::Result<String> {
    let p: Option<(String, String)> = sqlx::query_as("SELECT prefecture, name FROM municipalities WHERE id = $1")
        .bind(municipality)
        .fetch_optional(tx)
        .await?;
    Ok(p.map(|(prefecture, name)| format!("{prefecture}{name}")).unwrap_or_default())
}
