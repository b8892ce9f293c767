//! The SQL of embedding (docs/checkout.md, docs/partners.md): a store's or a partner's
//! origins, publishable key and webhook URL, its signing secrets, and the events waiting for
//! (or past) delivery to its server.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool, Connection, Row};
use uuid::Uuid;

use super::uuid_column;

use crate::time::Micros;

/// Who embeds a widget and receives its events: a store (checkout, its member links) or a
/// partner (coupon redemption, member links).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Owner {
    /// A shop's or online store's server.
    Store(i64),
    /// A partner company's server.
    Partner(i64),
}

impl Owner {
    /// The key in SQL: `shop:<id>` or `partner:<id>`.
    pub fn key(self) -> String {
        match self {
            Owner::Store(s) => format!("shop:{s}"),
            Owner::Partner(p) => format!("partner:{p}"),
        }
    }

    /// Parses [`Owner::key`].
    pub fn parse(key: &str) -> Option<Owner> {
        let (kind, id) = key.split_once(':')?;
        let id: i64 = id.parse().ok()?;
        match kind {
            "shop" => Some(Owner::Store(id)),
            "partner" => Some(Owner::Partner(id)),
            _ => None,
        }
    }

    /// The path of its API (`/v1/shops/{id}` or `/v1/partners/{id}`), for messages.
    pub fn path(self) -> String {
        match self {
            Owner::Store(s) => format!("/v1/shops/{s}"),
            Owner::Partner(p) => format!("/v1/partners/{p}"),
        }
    }

    /// Where the owner registers its origins and webhook URL.
    pub fn settings_path(self) -> String {
        match self {
            Owner::Store(_) => format!("{}/checkout", self.path()),
            Owner::Partner(_) => format!("{}/embedding", self.path()),
        }
    }
}

fn owner_column(r: &AnyRow) -> sqlx::Result<Owner> {
    let key: String = r.try_get("owner")?;
    Owner::parse(&key).ok_or_else(|| sqlx::Error::Decode(format!("not an owner: {key}").into()))
}

/// An owner's embedding settings as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The store or partner.
    pub owner: Owner,
    /// Its publishable key.
    pub publishable_key: String,
    /// Its origins, as JSON text.
    pub origins: String,
    /// Where events go.
    pub webhook_url: Option<String>,
}

fn settings_row(r: &AnyRow) -> sqlx::Result<Settings> {
    Ok(Settings {
        owner: owner_column(r)?,
        publishable_key: r.try_get("publishable_key")?,
        origins: r.try_get("origins")?,
        webhook_url: r.try_get("webhook_url")?,
    })
}

/// An owner's settings.
pub async fn settings(p: &AnyPool, owner: Owner) -> sqlx::Result<Option<Settings>> {
    sqlx::query("SELECT * FROM embed_settings WHERE owner = $1")
        .bind(owner.key())
        .fetch_optional(p)
        .await?
        .as_ref()
        .map(settings_row)
        .transpose()
}

/// The settings behind a publishable key.
pub async fn settings_by_publishable_key(p: &AnyPool, key: &str) -> sqlx::Result<Option<Settings>> {
    sqlx::query("SELECT * FROM embed_settings WHERE publishable_key = $1")
        .bind(key)
        .fetch_optional(p)
        .await?
        .as_ref()
        .map(settings_row)
        .transpose()
}

/// Writes an owner's origins and webhook; `new_key` becomes its publishable key if it has none.
pub async fn put_settings(
    p: &AnyPool,
    owner: Owner,
    new_key: &str,
    origins: &str,
    webhook_url: Option<&str>,
    now: Micros,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO embed_settings (owner, publishable_key, origins, webhook_url, updated_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (owner) DO UPDATE SET origins = excluded.origins, webhook_url = excluded.webhook_url, updated_at = excluded.updated_at",
    )
    .bind(owner.key())
    .bind(new_key)
    .bind(origins)
    .bind(webhook_url)
    .bind(now)
    .execute(p)
    .await?;
    Ok(())
}

/// Adds a signing secret and retires the owner's others from `now`.
pub async fn add_webhook_secret(p: &AnyPool, owner: Owner, secret: &str, now: Micros) -> sqlx::Result<()> {
    let mut c = p.acquire().await?;
    let mut tx = c.begin().await?;
    sqlx::query("UPDATE webhook_secrets SET retired_at = $1 WHERE owner = $2 AND retired_at IS NULL")
        .bind(now)
        .bind(owner.key())
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO webhook_secrets (secret, owner, created_at, retired_at) VALUES ($1, $2, $3, NULL)")
        .bind(secret)
        .bind(owner.key())
        .bind(now)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

/// The secrets that sign an owner's events now: the live one and those retired after
/// `retired_after`, newest first.
pub async fn signing_secrets(p: &AnyPool, owner: Owner, retired_after: Micros) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT secret FROM webhook_secrets WHERE owner = $1 AND (retired_at IS NULL OR retired_at > $2) \
         ORDER BY created_at DESC LIMIT 4",
    )
    .bind(owner.key())
    .bind(retired_after)
    .fetch_all(p)
    .await
}

/// An event to deliver to its owner's server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    /// Its id.
    pub id: Uuid,
    /// Whose server it goes to.
    pub owner: Owner,
    /// What it is about: one subject's events are delivered in order.
    pub subject: Uuid,
    /// `checkout.session.completed`, `coupon.redeemed`, ...
    pub kind: &'static str,
    /// The JSON body, exactly as it is signed and sent.
    pub body: String,
    /// When it happened.
    pub created_at: Micros,
}

/// Writes `e` inside the caller's transaction (with the change it reports).
pub async fn insert_event(c: &mut AnyConnection, e: &NewEvent) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO webhook_events (id, owner, subject_id, kind, body, created_at, attempts, retry_from, \
         next_attempt_at, delivered_at, failed_at, last_error) VALUES ($1, $2, $3, $4, $5, $6, 0, $6, $6, NULL, NULL, NULL)",
    )
    .bind(e.id.to_string())
    .bind(e.owner.key())
    .bind(e.subject.to_string())
    .bind(e.kind)
    .bind(&e.body)
    .bind(e.created_at)
    .execute(c)
    .await?;
    Ok(())
}

/// Records an event that changes nothing else (a failed confirmation).
pub async fn add_event(p: &AnyPool, e: &NewEvent) -> sqlx::Result<()> {
    let mut c = p.acquire().await?;
    insert_event(&mut c, e).await
}

/// An event with its delivery state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    /// Its id.
    pub id: Uuid,
    /// Whose server it goes to.
    pub owner: Owner,
    /// What it is about.
    pub subject: Uuid,
    /// The signed body.
    pub body: String,
    /// When it happened.
    pub created_at: Micros,
    /// Tries so far.
    pub attempts: i64,
    /// Retries last from here.
    pub retry_from: Micros,
    /// The next try, while pending.
    pub next_attempt_at: Option<Micros>,
    /// When the owner's server took it.
    pub delivered_at: Option<Micros>,
    /// When tries stopped.
    pub failed_at: Option<Micros>,
    /// What the last failed try saw.
    pub last_error: Option<String>,
}

fn event_row(r: &AnyRow) -> sqlx::Result<StoredEvent> {
    Ok(StoredEvent {
        id: uuid_column(r, "id")?,
        owner: owner_column(r)?,
        subject: uuid_column(r, "subject_id")?,
        body: r.try_get("body")?,
        created_at: r.try_get("created_at")?,
        attempts: r.try_get("attempts")?,
        retry_from: r.try_get("retry_from")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        delivered_at: r.try_get("delivered_at")?,
        failed_at: r.try_get("failed_at")?,
        last_error: r.try_get("last_error")?,
    })
}

/// Events due for a try at `now`, oldest first, at most `limit`.
pub async fn due_events(p: &AnyPool, now: Micros, limit: i64) -> sqlx::Result<Vec<StoredEvent>> {
    let rows = sqlx::query(
        "SELECT * FROM webhook_events WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $1 \
         ORDER BY next_attempt_at, created_at, id LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(p)
    .await?;
    rows.iter().map(event_row).collect()
}

/// One try of an event: delivered, to be retried at `next`, or failed for good (neither).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// The event.
    pub id: Uuid,
    /// When it was tried.
    pub at: Micros,
    /// Whether the owner's server took it.
    pub delivered: bool,
    /// The next try, if any.
    pub next: Option<Micros>,
    /// What went wrong.
    pub error: Option<String>,
}

/// Records a round's tries in one transaction.
pub async fn record_attempts(p: &AnyPool, attempts: &[Attempt]) -> sqlx::Result<()> {
    let mut c = p.acquire().await?;
    let mut tx = c.begin().await?;
    for a in attempts {
        sqlx::query(
            "UPDATE webhook_events SET attempts = attempts + 1, delivered_at = $1, next_attempt_at = $2, failed_at = $3, \
             last_error = $4 WHERE id = $5",
        )
        .bind(a.delivered.then_some(a.at))
        .bind(a.next)
        .bind((!a.delivered && a.next.is_none()).then_some(a.at))
        .bind(a.error.as_deref())
        .bind(a.id.to_string())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

/// An owner's events, newest first, created before `before`, at most `limit`.
pub async fn events(p: &AnyPool, owner: Owner, before: Micros, limit: i64) -> sqlx::Result<Vec<StoredEvent>> {
    let rows = sqlx::query(
        "SELECT * FROM webhook_events WHERE owner = $1 AND created_at < $2 ORDER BY created_at DESC, id DESC LIMIT $3",
    )
    .bind(owner.key())
    .bind(before)
    .bind(limit)
    .fetch_all(p)
    .await?;
    rows.iter().map(event_row).collect()
}

/// Queues an owner's event for another delivery now; false when it has no such event.
pub async fn resend(p: &AnyPool, owner: Owner, id: Uuid, now: Micros) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE webhook_events SET attempts = 0, retry_from = $1, next_attempt_at = $1, delivered_at = NULL, failed_at = NULL \
         WHERE id = $2 AND owner = $3",
    )
    .bind(now)
    .bind(id.to_string())
    .bind(owner.key())
    .execute(p)
    .await?;
    Ok(done.rows_affected() == 1)
}
