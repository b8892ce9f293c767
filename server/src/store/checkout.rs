//! The SQL of store checkout: a store's settings and webhook secrets, sessions with their
//! state changes (each written together with the event it causes), refunds reserved before the
//! ledger moves them, and the events' deliveries.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool, Connection, Row};
use uuid::Uuid;

use crate::time::Micros;

/// A store's checkout settings as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The store.
    pub shop: i64,
    /// Its publishable key.
    pub publishable_key: String,
    /// Its origins, as JSON text.
    pub origins: String,
    /// Where events go.
    pub webhook_url: Option<String>,
}

fn settings_row(r: &AnyRow) -> sqlx::Result<Settings> {
    Ok(Settings {
        shop: r.try_get("shop_id")?,
        publishable_key: r.try_get("publishable_key")?,
        origins: r.try_get("origins")?,
        webhook_url: r.try_get("webhook_url")?,
    })
}

/// A store's settings.
pub async fn settings(p: &AnyPool, shop: i64) -> sqlx::Result<Option<Settings>> {
    sqlx::query("SELECT * FROM checkout_settings WHERE shop_id = $1")
        .bind(shop)
        .fetch_optional(p)
        .await?
        .as_ref()
        .map(settings_row)
        .transpose()
}

/// The settings behind a publishable key.
pub async fn settings_by_publishable_key(p: &AnyPool, key: &str) -> sqlx::Result<Option<Settings>> {
    sqlx::query("SELECT * FROM checkout_settings WHERE publishable_key = $1")
        .bind(key)
        .fetch_optional(p)
        .await?
        .as_ref()
        .map(settings_row)
        .transpose()
}

/// Writes a store's origins and webhook; `new_key` becomes its publishable key if it has none.
pub async fn put_settings(
    p: &AnyPool,
    shop: i64,
    new_key: &str,
    origins: &str,
    webhook_url: Option<&str>,
    now: Micros,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO checkout_settings (shop_id, publishable_key, origins, webhook_url, updated_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (shop_id) DO UPDATE SET origins = excluded.origins, webhook_url = excluded.webhook_url, updated_at = excluded.updated_at",
    )
    .bind(shop)
    .bind(new_key)
    .bind(origins)
    .bind(webhook_url)
    .bind(now)
    .execute(p)
    .await?;
    Ok(())
}

/// Adds a signing secret and retires the store's others from `now`.
pub async fn add_webhook_secret(p: &AnyPool, shop: i64, secret: &str, now: Micros) -> sqlx::Result<()> {
    let mut c = p.acquire().await?;
    let mut tx = c.begin().await?;
    sqlx::query("UPDATE webhook_secrets SET retired_at = $1 WHERE shop_id = $2 AND retired_at IS NULL")
        .bind(now)
        .bind(shop)
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO webhook_secrets (secret, shop_id, created_at, retired_at) VALUES ($1, $2, $3, NULL)")
        .bind(secret)
        .bind(shop)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

/// The secrets that sign a store's events now: the live one and those retired after
/// `retired_after`, newest first.
pub async fn signing_secrets(p: &AnyPool, shop: i64, retired_after: Micros) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT secret FROM webhook_secrets WHERE shop_id = $1 AND (retired_at IS NULL OR retired_at > $2) \
         ORDER BY created_at DESC LIMIT 4",
    )
    .bind(shop)
    .bind(retired_after)
    .fetch_all(p)
    .await
}

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
async fn insert_session(c: &mut AnyConnection, s: &Session) -> sqlx::Result<bool> {
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

/// An event to deliver to a store's server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    /// Its id.
    pub id: Uuid,
    /// The store.
    pub shop: i64,
    /// `checkout.session.completed`, ...
    pub kind: &'static str,
    /// The JSON body, exactly as it is signed and sent.
    pub body: String,
    /// When it happened.
    pub created_at: Micros,
}

async fn insert_event(c: &mut sqlx::AnyConnection, session: Uuid, e: &NewEvent) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO webhook_events (id, shop_id, session_id, kind, body, created_at, attempts, retry_from, \
         next_attempt_at, delivered_at, failed_at, last_error) VALUES ($1, $2, $3, $4, $5, $6, 0, $6, $6, NULL, NULL, NULL)",
    )
    .bind(e.id.to_string())
    .bind(e.shop)
    .bind(session.to_string())
    .bind(e.kind)
    .bind(&e.body)
    .bind(e.created_at)
    .execute(c)
    .await?;
    Ok(())
}

/// Records an event that changes no session (a failed confirmation).
pub async fn add_event(p: &AnyPool, session: Uuid, e: &NewEvent) -> sqlx::Result<()> {
    let mut c = p.acquire().await?;
    insert_event(&mut c, session, e).await
}

/// Moves a session from state `from` to `next`'s state and columns, with its event if any;
/// false (and nothing written) when the session was not in `from` any more.
async fn transition(c: &mut AnyConnection, from: &str, next: &Session, event: Option<&NewEvent>) -> sqlx::Result<bool> {
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
        insert_event(c, next.id, event).await?;
    }
    Ok(true)
}

/// A session write that [`Writer`] commits together with others.
#[derive(Debug)]
enum Write {
    Insert(Box<Session>),
    Transition { from: String, next: Box<Session>, event: Option<NewEvent> },
}

type Job = (Write, tokio::sync::oneshot::Sender<Result<bool, String>>);

/// Writes waiting for the writer at most; past it, callers wait to queue (back-pressure).
pub const WRITES_QUEUED: usize = 4096;
/// Writes committed in one transaction at most.
pub const WRITES_PER_COMMIT: usize = 256;

/// Group commit of session writes: one task takes what is queued (up to
/// [`WRITES_PER_COMMIT`]) and commits it in one transaction, each write under its own
/// savepoint (a write that fails is undone alone), so many confirmations share one sync.
#[derive(Clone)]
pub struct Writer {
    queue: tokio::sync::mpsc::Sender<Job>,
    /// Told after each commit, so that the webhook deliverer need not wait for its next round.
    pub committed: std::sync::Arc<tokio::sync::Notify>,
}

impl Writer {
    /// Starts the writer over `pool`.
    pub fn start(pool: AnyPool) -> Writer {
        let (queue, mut rx) = tokio::sync::mpsc::channel::<Job>(WRITES_QUEUED);
        let committed = std::sync::Arc::new(tokio::sync::Notify::new());
        let tell = committed.clone();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut jobs = vec![first];
                while jobs.len() < WRITES_PER_COMMIT {
                    match rx.try_recv() {
                        Ok(j) => jobs.push(j),
                        Err(_) => break,
                    }
                }
                let outcomes = commit(&pool, &jobs).await;
                tell.notify_one();
                for ((_, reply), outcome) in jobs.into_iter().zip(outcomes) {
                    let _ = reply.send(outcome);
                }
            }
        });
        Writer { queue, committed }
    }

    async fn write(&self, w: Write) -> anyhow::Result<bool> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.queue.send((w, reply)).await.map_err(|_| anyhow::anyhow!("the checkout writer has stopped"))?;
        answer
            .await
            .map_err(|_| anyhow::anyhow!("the checkout writer stopped before answering"))?
            .map_err(|e| anyhow::anyhow!(e))
    }

    /// Stores a new session; false when the store already used `s.request_id`.
    pub async fn insert_session(&self, s: Session) -> anyhow::Result<bool> {
        self.write(Write::Insert(Box::new(s))).await
    }

    /// Moves a session from state `from` to `next`, with its event if any; false (nothing
    /// written) when the session was not in `from` any more.
    pub async fn transition(&self, from: &str, next: Session, event: Option<NewEvent>) -> anyhow::Result<bool> {
        self.write(Write::Transition { from: from.to_owned(), next: Box::new(next), event }).await
    }
}

/// Commits `jobs` in one transaction: each one's outcome, all failed if the commit fails.
async fn commit(pool: &AnyPool, jobs: &[Job]) -> Vec<Result<bool, String>> {
    let run = async {
        let mut c = pool.acquire().await?;
        let mut tx = c.begin().await?;
        let mut outcomes = Vec::with_capacity(jobs.len());
        for (w, _) in jobs {
            sqlx::query("SAVEPOINT w").execute(&mut *tx).await?;
            let done = match w {
                Write::Insert(s) => insert_session(&mut tx, s).await,
                Write::Transition { from, next, event } => transition(&mut tx, from, next, event.as_ref()).await,
            };
            match done {
                Ok(b) => {
                    sqlx::query("RELEASE SAVEPOINT w").execute(&mut *tx).await?;
                    outcomes.push(Ok(b));
                }
                Err(e) => {
                    sqlx::query("ROLLBACK TO SAVEPOINT w").execute(&mut *tx).await?;
                    sqlx::query("RELEASE SAVEPOINT w").execute(&mut *tx).await?;
                    outcomes.push(Err(e.to_string()));
                }
            }
        }
        tx.commit().await?;
        Ok::<_, sqlx::Error>(outcomes)
    };
    match run.await {
        Ok(o) => o,
        Err(e) => jobs.iter().map(|_| Err(format!("committing checkout writes: {e}"))).collect(),
    }
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

/// Reserves `points` of a completed session's captured points for a refund, in one
/// transaction: false (nothing written) when fewer are left to refund.
pub async fn reserve_refund(
    p: &AnyPool,
    session: Uuid,
    request_id: Uuid,
    points: i64,
    now: Micros,
) -> sqlx::Result<bool> {
    let mut c = p.acquire().await?;
    let mut tx = c.begin().await?;
    let done = sqlx::query(
        "UPDATE checkout_sessions SET refunded = refunded + $1 WHERE id = $2 AND state = 'completed' AND refunded + $1 <= captured",
    )
    .bind(points)
    .bind(session.to_string())
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    sqlx::query("INSERT INTO checkout_refunds (session_id, request_id, points, state, created_at) VALUES ($1, $2, $3, 'pending', $4)")
        .bind(session.to_string())
        .bind(request_id.to_string())
        .bind(points)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
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
        insert_event(&mut tx, session, event).await?;
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

/// An event with its delivery state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    /// Its id.
    pub id: Uuid,
    /// The store.
    pub shop: i64,
    /// The session it is about.
    pub session: Uuid,
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
    /// When the store's server took it.
    pub delivered_at: Option<Micros>,
    /// When tries stopped.
    pub failed_at: Option<Micros>,
    /// What the last failed try saw.
    pub last_error: Option<String>,
}

fn event_row(r: &AnyRow) -> sqlx::Result<StoredEvent> {
    Ok(StoredEvent {
        id: Uuid::parse_str(&r.try_get::<String, _>("id")?).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        shop: r.try_get("shop_id")?,
        session: Uuid::parse_str(&r.try_get::<String, _>("session_id")?)
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
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
    /// Whether the store's server took it.
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

/// A store's events, newest first, created before `before`, at most `limit`.
pub async fn events(p: &AnyPool, shop: i64, before: Micros, limit: i64) -> sqlx::Result<Vec<StoredEvent>> {
    let rows = sqlx::query(
        "SELECT * FROM webhook_events WHERE shop_id = $1 AND created_at < $2 ORDER BY created_at DESC, id DESC LIMIT $3",
    )
    .bind(shop)
    .bind(before)
    .bind(limit)
    .fetch_all(p)
    .await?;
    rows.iter().map(event_row).collect()
}

/// Queues a store's event for another delivery now; false when it has no such event.
pub async fn resend(p: &AnyPool, shop: i64, id: Uuid, now: Micros) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE webhook_events SET attempts = 0, retry_from = $1, next_attempt_at = $1, delivered_at = NULL, failed_at = NULL \
         WHERE id = $2 AND shop_id = $3",
    )
    .bind(now)
    .bind(id.to_string())
    .bind(shop)
    .execute(p)
    .await?;
    Ok(done.rows_affected() == 1)
}
