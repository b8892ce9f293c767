//! The SQL of store checkout: sessions with their state changes (each written together with
//! the event it causes) and refunds reserved before the ledger moves them. Settings, secrets
//! and events are the embedding's (`store::embedding`).

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool, Connection, Row};
use uuid::Uuid;

use super::embedding::{insert_event, NewEvent};
use crate::time::Micros;

/// A checkout session as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// Its id.
    pub id: Uuid,
    /// The store.
    pub shop: i64,
    /// The store's idempotency id.
    pub request_id: Uuid,
    /// Hash of the store's request.
    pub fingerprint: String,
    /// SHA-256 of the client secret, hex.
    pub secret_hash: String,
    /// `open`, `authorized`, `completed`, `cancelled` or `expired`.
    pub state: String,
    /// The order's total in yen.
    pub amount: i64,
    /// Points the resident used.
    pub points: i64,
    /// Points moved to the store.
    pub captured: i64,
    /// Points refunded (pending refunds included).
    pub refunded: i64,
    /// The store's order number.
    pub order_reference: String,
    /// Line items, JSON.
    pub line_items: String,
    /// May points pay part?
    pub partial_points: bool,
    /// `automatic` or `manual`.
    pub capture_method: String,
    /// Seconds a manual capture's hold lasts.
    pub hold_seconds: i64,
    /// Where the widget sends the resident afterwards.
    pub return_url: Option<String>,
    /// Metadata, JSON.
    pub metadata: String,
    /// The ledger request that charges or holds the points, from confirmation on.
    pub charge_id: Option<Uuid>,
    /// The resident who confirmed.
    pub resident: Option<i64>,
    /// The event programme whose points were used.
    pub event: Option<i64>,
    /// Opened at.
    pub created_at: Micros,
    /// When an open session or an authorised hold expires.
    pub expires_at: Micros,
    /// When the resident confirmed.
    pub confirmed_at: Option<Micros>,
}

fn session_row(r: &AnyRow) -> sqlx::Result<Session> {
    let uuid = |c: &str| -> sqlx::Result<Uuid> {
        Uuid::parse_str(&r.try_get::<String, _>(c)?).map_err(|e| sqlx::Error::Decode(Box::new(e)))
    };
    Ok(Session {
        id: uuid("id")?,
        shop: r.try_get("shop_id")?,
        request_id: uuid("request_id")?,
        fingerprint: r.try_get("fingerprint")?,
        secret_hash: r.try_get("secret_hash")?,
        state: r.try_get("state")?,
        amount: r.try_get("amount")?,
        points: r.try_get("points")?,
        captured: r.try_get("captured")?,
        refunded: r.try_get("refunded")?,
        order_reference: r.try_get("order_reference")?,
        line_items: r.try_get("line_items")?,
        partial_points: r.try_get::<i64, _>("partial_points")? != 0,
        capture_method: r.try_get("capture_method")?,
        hold_seconds: r.try_get("hold_seconds")?,
        return_url: r.try_get("return_url")?,
        metadata: r.try_get("metadata")?,
        charge_id: r
            .try_get::<Option<String>, _>("charge_id")?
            .map(|t| Uuid::parse_str(&t))
            .transpose()
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        resident: r.try_get("resident_id")?,
        event: r.try_get("event_id")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        confirmed_at: r.try_get("confirmed_at")?,
    })
}

/// Stores a new session; false when the store already used `s.request_id`.
pub(super) async fn insert_session(c: &mut AnyConnection, s: &Session) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO checkout_sessions (id, shop_id, request_id, fingerprint, secret_hash, state, amount, points, captured, \
         refunded, order_reference, line_items, partial_points, capture_method, hold_seconds, return_url, metadata, \
         charge_id, resident_id, event_id, created_at, expires_at, confirmed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23) \
         ON CONFLICT (shop_id, request_id) DO NOTHING",
    )
    .bind(s.id.to_string())
    .bind(s.shop)
    .bind(s.request_id.to_string())
    .bind(&s.fingerprint)
    .bind(&s.secret_hash)
    .bind(&s.state)
    .bind(s.amount)
    .bind(s.points)
    .bind(s.captured)
    .bind(s.refunded)
    .bind(&s.order_reference)
    .bind(&s.line_items)
    .bind(i64::from(s.partial_points))
    .bind(&s.capture_method)
    .bind(s.hold_seconds)
    .bind(s.return_url.as_deref())
    .bind(&s.metadata)
    .bind(s.charge_id.map(|u| u.to_string()))
    .bind(s.resident)
    .bind(s.event)
    .bind(s.created_at)
    .bind(s.expires_at)
    .bind(s.confirmed_at)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A session by its id.
pub async fn session(p: &AnyPool, id: Uuid) -> sqlx::Result<Option<Session>> {
    sqlx::query("SELECT * FROM checkout_sessions WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(p)
        .await?
        .as_ref()
        .map(session_row)
        .transpose()
}

/// The session a store opened under its idempotency id.
pub async fn session_by_request(p: &AnyPool, shop: i64, request_id: Uuid) -> sqlx::Result<Option<Session>> {
    sqlx::query("SELECT * FROM checkout_sessions WHERE shop_id = $1 AND request_id = $2")
        .bind(shop)
        .bind(request_id.to_string())
        .fetch_optional(p)
        .await?
        .as_ref()
        .map(session_row)
        .transpose()
}

/// Open or authorised sessions whose time ran out by `now`, at most `limit`.
pub async fn due_sessions(p: &AnyPool, now: Micros, limit: i64) -> sqlx::Result<Vec<Session>> {
    let rows = sqlx::query(
        "SELECT * FROM checkout_sessions WHERE state IN ('open', 'authorized') AND expires_at <= $1 ORDER BY expires_at LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(p)
    .await?;
    rows.iter().map(session_row).collect()
}

/// Sessions whose confirmation was cut short (the ledger's answer not yet recorded), at most
/// `limit`.
pub async fn confirming_sessions(p: &AnyPool, limit: i64) -> sqlx::Result<Vec<Session>> {
    let rows = sqlx::query("SELECT * FROM checkout_sessions WHERE state = 'confirming' ORDER BY confirmed_at LIMIT $1")
        .bind(limit)
        .fetch_all(p)
        .await?;
    rows.iter().map(session_row).collect()
}

/// Moves a session from state `from` to `next`'s state and columns, with its event if any;
/// false (and nothing written) when the session was not in `from` any more.
pub(super) async fn transition(
    c: &mut AnyConnection,
    from: &str,
    next: &Session,
    event: Option<&NewEvent>,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE checkout_sessions SET state = $1, points = $2, captured = $3, charge_id = $4, resident_id = $5, \
         event_id = $6, expires_at = $7, confirmed_at = $8 WHERE id = $9 AND state = $10",
    )
    .bind(&next.state)
    .bind(next.points)
    .bind(next.captured)
    .bind(next.charge_id.map(|u| u.to_string()))
    .bind(next.resident)
    .bind(next.event)
    .bind(next.expires_at)
    .bind(next.confirmed_at)
    .bind(next.id.to_string())
    .bind(from)
    .execute(&mut *c)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    if let Some(event) = event {
        insert_event(c, event).await?;
    }
    Ok(true)
}

/// A refund as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRefund {
    /// Points.
    pub points: i64,
    /// `pending` or `done`.
    pub state: String,
    /// When it was asked for.
    pub created_at: Micros,
}

/// A refund by the store's id for it.
pub async fn refund(p: &AnyPool, session: Uuid, request_id: Uuid) -> sqlx::Result<Option<StoredRefund>> {
    let row =
        sqlx::query("SELECT points, state, created_at FROM checkout_refunds WHERE session_id = $1 AND request_id = $2")
            .bind(session.to_string())
            .bind(request_id.to_string())
            .fetch_optional(p)
            .await?;
    row.map(|r| Ok(StoredRefund { points: r.try_get(0)?, state: r.try_get(1)?, created_at: r.try_get(2)? })).transpose()
}

/// What [`reserve_refund`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reservation {
    /// The refund is reserved: its points count as refunded.
    Reserved,
    /// The session has not that much captured and unrefunded.
    Exceeds,
    /// A refund with this request id exists already (a concurrent or earlier request).
    Exists,
}

/// Reserves a refund of `points` under `request_id`, in one transaction: the refund's row
/// first (a second request with the same id finds it, even one sent at the same moment), then
/// the session's refunded total, within what was captured.
pub async fn reserve_refund(
    p: &AnyPool,
    session: Uuid,
    request_id: Uuid,
    points: i64,
    now: Micros,
) -> sqlx::Result<Reservation> {
    let mut c = p.acquire().await?;
    let mut tx = c.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO checkout_refunds (session_id, request_id, points, state, created_at) VALUES ($1, $2, $3, 'pending', $4) \
         ON CONFLICT (session_id, request_id) DO NOTHING",
    )
    .bind(session.to_string())
    .bind(request_id.to_string())
    .bind(points)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() != 1 {
        return Ok(Reservation::Exists);
    }
    let done = sqlx::query(
        "UPDATE checkout_sessions SET refunded = refunded + $1 WHERE id = $2 AND state = 'completed' AND refunded + $1 <= captured",
    )
    .bind(points)
    .bind(session.to_string())
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(Reservation::Exceeds);
    }
    tx.commit().await?;
    Ok(Reservation::Reserved)
}

/// Marks a refund done after the ledger moved its points, with its event.
pub async fn finish_refund(p: &AnyPool, session: Uuid, request_id: Uuid, event: &NewEvent) -> sqlx::Result<()> {
    let mut c = p.acquire().await?;
    let mut tx = c.begin().await?;
    let done = sqlx::query(
        "UPDATE checkout_refunds SET state = 'done' WHERE session_id = $1 AND request_id = $2 AND state = 'pending'",
    )
    .bind(session.to_string())
    .bind(request_id.to_string())
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 1 {
        insert_event(&mut tx, event).await?;
    }
    tx.commit().await
}

/// Refunds reserved but not yet finished (a crash between the two), oldest first.
pub async fn pending_refunds(p: &AnyPool, limit: i64) -> sqlx::Result<Vec<(Uuid, Uuid)>> {
    let rows = sqlx::query(
        "SELECT session_id, request_id FROM checkout_refunds WHERE state = 'pending' ORDER BY created_at LIMIT $1",
    )
    .bind(limit)
    .fetch_all(p)
    .await?;
    rows.iter()
        .map(|r| {
            let id = |i: usize| -> sqlx::Result<Uuid> {
                Uuid::parse_str(&r.try_get::<String, _>(i)?).map_err(|e| sqlx::Error::Decode(Box::new(e)))
            };
            Ok((id(0)?, id(1)?))
        })
        .collect()
}
