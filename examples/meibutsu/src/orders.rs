//! The store's orders in its own SQLite database, and the webhook events applied to them,
//! each event id once.

use anyhow::Context;
use mykey_core::api::{CheckoutEvent, CheckoutState};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
use sqlx::Row;
use uuid::Uuid;

/// An order.
#[derive(Clone, Debug)]
pub struct Order {
    /// Its id (also the checkout session's idempotency id).
    pub id: Uuid,
    /// What the customer sees: `MC-` and a number.
    pub reference: String,
    /// Lines: (product name, quantity, unit price), as JSON.
    pub lines: Vec<(String, u32, i64)>,
    /// Yen.
    pub amount: i64,
    /// The checkout session and its client secret.
    pub session: Uuid,
    /// For the widget on the order's payment page.
    pub client_secret: String,
    /// `awaiting payment`, `completed`, `authorized`, `cancelled`, `expired`.
    pub state: String,
    /// Points used, captured by the store, refunded.
    pub points: i64,
    /// Points refunded.
    pub refunded: i64,
}

/// The orders.
pub struct Orders {
    pool: SqlitePool,
}

fn order_row(r: &sqlx::sqlite::SqliteRow) -> anyhow::Result<Order> {
    Ok(Order {
        id: r.try_get::<String, _>("id")?.parse()?,
        reference: r.try_get("reference")?,
        lines: serde_json::from_str(&r.try_get::<String, _>("lines")?)?,
        amount: r.try_get("amount")?,
        session: r.try_get::<String, _>("session")?.parse()?,
        client_secret: r.try_get("client_secret")?,
        state: r.try_get("state")?,
        points: r.try_get("points")?,
        refunded: r.try_get("refunded")?,
    })
}

impl Orders {
    /// Opens (creating) the database.
    pub async fn open(url: &str) -> anyhow::Result<Orders> {
        let opts: SqliteConnectOptions = url.parse::<SqliteConnectOptions>()?.create_if_missing(true);
        let pool = SqlitePool::connect_with(opts).await.with_context(|| format!("opening {url}"))?;
        for ddl in [
            "CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, number INTEGER NOT NULL UNIQUE, reference TEXT NOT NULL, \
             lines TEXT NOT NULL, amount INTEGER NOT NULL, session TEXT NOT NULL, client_secret TEXT NOT NULL, \
             state TEXT NOT NULL, points INTEGER NOT NULL, refunded INTEGER NOT NULL)",
            "CREATE TABLE IF NOT EXISTS applied_events (id TEXT PRIMARY KEY, kind TEXT NOT NULL, order_id TEXT NOT NULL)",
        ] {
            sqlx::query(ddl).execute(&pool).await?;
        }
        Ok(Orders { pool })
    }

    /// The next order number.
    pub async fn next_number(&self) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar::<_, i64>("SELECT COALESCE(MAX(number), 1000) + 1 FROM orders")
            .fetch_one(&self.pool)
            .await?)
    }

    /// Stores a new order awaiting payment.
    pub async fn insert(&self, number: i64, o: &Order) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO orders (id, number, reference, lines, amount, session, client_secret, state, points, refunded) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, 0)",
        )
        .bind(o.id.to_string())
        .bind(number)
        .bind(&o.reference)
        .bind(serde_json::to_string(&o.lines)?)
        .bind(o.amount)
        .bind(o.session.to_string())
        .bind(&o.client_secret)
        .bind(&o.state)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// An order.
    pub async fn get(&self, id: Uuid) -> anyhow::Result<Option<Order>> {
        let row =
            sqlx::query("SELECT * FROM orders WHERE id = ?").bind(id.to_string()).fetch_optional(&self.pool).await?;
        row.as_ref().map(order_row).transpose()
    }

    /// Every order, newest first.
    pub async fn all(&self) -> anyhow::Result<Vec<Order>> {
        let rows = sqlx::query("SELECT * FROM orders ORDER BY number DESC LIMIT 200").fetch_all(&self.pool).await?;
        rows.iter().map(order_row).collect()
    }

    /// Applies a verified event to its order, once per event id: false when it was applied before.
    pub async fn apply(&self, e: &CheckoutEvent) -> anyhow::Result<bool> {
        let order: Uuid = e.session.metadata.get("order").context("an event without the store's order id")?.parse()?;
        let mut tx = self.pool.begin().await?;
        let fresh =
            sqlx::query("INSERT INTO applied_events (id, kind, order_id) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING")
                .bind(e.id.to_string())
                .bind(e.kind.as_str())
                .bind(order.to_string())
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
        if fresh {
            // The session as the event shows it; events may arrive out of order, so a final
            // state stays, a state never goes back to `awaiting payment`, and refunds only grow.
            let state = match e.session.state {
                CheckoutState::Open => None,
                other => Some(other.as_str()),
            };
            sqlx::query(
                "UPDATE orders SET state = CASE WHEN state IN ('completed', 'cancelled', 'expired') THEN state ELSE COALESCE(?, state) END, \
                 points = MAX(points, ?), refunded = MAX(refunded, ?) WHERE id = ?",
            )
            .bind(state)
            .bind(e.session.points)
            .bind(e.session.refunded)
            .bind(order.to_string())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(fresh)
    }

    /// How many events were applied (the e2e test checks each once).
    pub async fn applied(&self, order: Uuid) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM applied_events WHERE order_id = ?")
            .bind(order.to_string())
            .fetch_one(&self.pool)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mykey_core::api::{CaptureMethod, CheckoutEventType, CheckoutSession};

    fn event(id: Uuid, order: Uuid, state: CheckoutState, points: i64, refunded: i64) -> CheckoutEvent {
        let now = chrono::Utc::now();
        CheckoutEvent {
            id,
            kind: CheckoutEventType::Completed,
            created_at: now,
            session: CheckoutSession {
                id: Uuid::new_v4(),
                shop: 1,
                state,
                amount: 1000,
                points,
                amount_due: 1000 - points,
                captured: points,
                refunded,
                order_reference: "MC-1".into(),
                line_items: vec![],
                partial_points: true,
                capture: CaptureMethod::Automatic,
                return_url: None,
                metadata: [("order".to_owned(), order.to_string())].into(),
                created_at: now,
                expires_at: now,
                confirmed_at: Some(now),
            },
            failure: None,
        }
    }

    #[tokio::test]
    async fn each_event_is_applied_once_and_a_late_one_does_not_go_back() {
        let orders = Orders::open("sqlite::memory:").await.unwrap();
        let id = Uuid::new_v4();
        let order = Order {
            id,
            reference: "MC-1".into(),
            lines: vec![("焼きまんじゅう".into(), 1, 1000)],
            amount: 1000,
            session: Uuid::new_v4(),
            client_secret: "s".into(),
            state: "awaiting payment".into(),
            points: 0,
            refunded: 0,
        };
        orders.insert(1001, &order).await.unwrap();
        let paid = event(Uuid::new_v4(), id, CheckoutState::Completed, 600, 0);
        assert!(orders.apply(&paid).await.unwrap());
        assert!(!orders.apply(&paid).await.unwrap(), "the same event id again changes nothing");
        let refund = event(Uuid::new_v4(), id, CheckoutState::Completed, 600, 200);
        assert!(orders.apply(&refund).await.unwrap());
        // Older events delivered late (retries) undo neither the refund nor the payment.
        assert!(orders.apply(&event(Uuid::new_v4(), id, CheckoutState::Completed, 600, 0)).await.unwrap());
        assert!(orders.apply(&event(Uuid::new_v4(), id, CheckoutState::Authorized, 600, 0)).await.unwrap());
        let o = orders.get(id).await.unwrap().unwrap();
        assert_eq!((o.state.as_str(), o.points, o.refunded), ("completed", 600, 200));
        assert_eq!(orders.applied(id).await.unwrap(), 4);
    }
}
