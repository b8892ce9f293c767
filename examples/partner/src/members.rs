//! The member site's own SQLite database: members (card points, an argon2 password hash),
//! signed-in sessions (only a token's hash), exchanges, the link each member proved, and the
//! webhook events received, each id once.

use anyhow::Context;
use mykey_core::api::{PartnerEvent, PartnerEventType};
use sha2::{Digest, Sha256};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
use sqlx::Row;
use uuid::Uuid;

/// Hours a member stays signed in.
pub const SESSION_HOURS: i64 = 8;

/// A member.
#[derive(Clone, Debug)]
pub struct Member {
    /// The member number, which is the service ID the points cloud links.
    pub number: String,
    /// The name.
    pub name: String,
    /// Card points left.
    pub card_points: i64,
    /// Whether a `link.confirmed` arrived for the number (and no `link.revoked` since).
    pub linked: bool,
}

/// An exchange of card points.
#[derive(Clone, Debug)]
pub struct Exchange {
    /// Its id (the coupon batch's or the conversion's reference).
    pub id: Uuid,
    /// The member.
    pub member: String,
    /// Card points given.
    pub card_points: i64,
    /// The coupon code, when one was issued (not linked).
    pub code: Option<String>,
}

/// A webhook event as received.
#[derive(Clone, Debug)]
pub struct Received {
    /// `coupon.redeemed`, `link.confirmed`, ...
    pub kind: String,
    /// The body.
    pub body: String,
    /// When it arrived (RFC 3339).
    pub at: String,
}

/// The site's database.
pub struct Members {
    pool: SqlitePool,
}

fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn hash_password(password: &str) -> anyhow::Result<String> {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut OsRng);
    Ok(argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .to_string())
}

fn password_ok(password: &str, hash: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(hash).is_ok_and(|h| argon2::Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

impl Members {
    /// Opens (creating) the database; the two demo members get `password` (and their card
    /// points) the first time.
    pub async fn open(url: &str, password: &str) -> anyhow::Result<Members> {
        let opts: SqliteConnectOptions = url.parse::<SqliteConnectOptions>()?.create_if_missing(true);
        let pool = SqlitePool::connect_with(opts).await.with_context(|| format!("opening {url}"))?;
        for ddl in [
            "CREATE TABLE IF NOT EXISTS members (number TEXT PRIMARY KEY, name TEXT NOT NULL, password_hash TEXT NOT NULL, \
             card_points INTEGER NOT NULL CHECK (card_points >= 0), linked INTEGER NOT NULL DEFAULT 0)",
            "CREATE TABLE IF NOT EXISTS sessions (token_hash TEXT PRIMARY KEY, member TEXT NOT NULL, expires_at INTEGER NOT NULL)",
            "CREATE TABLE IF NOT EXISTS exchanges (id TEXT PRIMARY KEY, member TEXT NOT NULL, card_points INTEGER NOT NULL, \
             code TEXT, created_at TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS events (id TEXT PRIMARY KEY, kind TEXT NOT NULL, body TEXT NOT NULL, received_at TEXT NOT NULL)",
        ] {
            sqlx::query(ddl).execute(&pool).await?;
        }
        let hash = hash_password(password)?;
        for (number, name, points) in [("M0001", "山田 花子", 12_000), ("M0002", "佐藤 太郎", 5_000)] {
            sqlx::query(
                "INSERT INTO members (number, name, password_hash, card_points) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (number) DO UPDATE SET password_hash = excluded.password_hash",
            )
            .bind(number)
            .bind(name)
            .bind(&hash)
            .bind(points)
            .execute(&pool)
            .await?;
        }
        Ok(Members { pool })
    }

    /// Signs a member in: a new session token, or none for a wrong number or password.
    pub async fn sign_in(&self, number: &str, password: &str) -> anyhow::Result<Option<String>> {
        let hash: Option<String> = sqlx::query_scalar("SELECT password_hash FROM members WHERE number = $1")
            .bind(number)
            .fetch_optional(&self.pool)
            .await?;
        if !hash.is_some_and(|h| password_ok(password, &h)) {
            return Ok(None);
        }
        let token = {
            use rand::RngCore;
            let mut b = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut b);
            hex::encode(b)
        };
        let expires = chrono::Utc::now().timestamp() + SESSION_HOURS * 3600;
        sqlx::query("INSERT INTO sessions (token_hash, member, expires_at) VALUES ($1, $2, $3)")
            .bind(hash_token(&token))
            .bind(number)
            .bind(expires)
            .execute(&self.pool)
            .await?;
        Ok(Some(token))
    }

    /// Ends a session.
    pub async fn sign_out(&self, token: &str) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(hash_token(token)).execute(&self.pool).await?;
        Ok(())
    }

    /// The member signed in with `token`.
    pub async fn by_session(&self, token: &str) -> anyhow::Result<Option<Member>> {
        let row = sqlx::query(
            "SELECT m.number, m.name, m.card_points, m.linked FROM sessions s JOIN members m ON m.number = s.member \
             WHERE s.token_hash = $1 AND s.expires_at > $2",
        )
        .bind(hash_token(token))
        .bind(chrono::Utc::now().timestamp())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(Member {
                number: r.try_get("number")?,
                name: r.try_get("name")?,
                card_points: r.try_get("card_points")?,
                linked: r.try_get::<i64, _>("linked")? != 0,
            })
        })
        .transpose()
    }

    /// Takes `points` card points from `member` for exchange `id`; false when too few are left.
    pub async fn take(&self, id: Uuid, member: &str, points: i64) -> anyhow::Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done =
            sqlx::query("UPDATE members SET card_points = card_points - $1 WHERE number = $2 AND card_points >= $1")
                .bind(points)
                .bind(member)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query("INSERT INTO exchanges (id, member, card_points, code, created_at) VALUES ($1, $2, $3, NULL, $4)")
            .bind(id.to_string())
            .bind(member)
            .bind(points)
            .bind(chrono::Utc::now().to_rfc3339())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Gives exchange `id`'s card points back (the points cloud refused it).
    pub async fn give_back(&self, id: Uuid) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        let row: Option<(String, i64)> =
            sqlx::query_as("DELETE FROM exchanges WHERE id = $1 RETURNING member, card_points")
                .bind(id.to_string())
                .fetch_optional(&mut *tx)
                .await?;
        if let Some((member, points)) = row {
            sqlx::query("UPDATE members SET card_points = card_points + $1 WHERE number = $2")
                .bind(points)
                .bind(member)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records the code issued for exchange `id`.
    pub async fn set_code(&self, id: Uuid, code: &str) -> anyhow::Result<()> {
        sqlx::query("UPDATE exchanges SET code = $1 WHERE id = $2")
            .bind(code)
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Exchange `id` of `member`.
    pub async fn exchange(&self, id: Uuid, member: &str) -> anyhow::Result<Option<Exchange>> {
        let row = sqlx::query("SELECT id, member, card_points, code FROM exchanges WHERE id = $1 AND member = $2")
            .bind(id.to_string())
            .bind(member)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(Exchange {
                id: r.try_get::<String, _>("id")?.parse()?,
                member: r.try_get("member")?,
                card_points: r.try_get("card_points")?,
                code: r.try_get("code")?,
            })
        })
        .transpose()
    }

    /// Applies a verified event once: links follow `link.*`; every event is kept for the log.
    /// False when it was applied before.
    pub async fn apply(&self, e: &PartnerEvent, body: &str) -> anyhow::Result<bool> {
        let mut tx = self.pool.begin().await?;
        let new = sqlx::query(
            "INSERT INTO events (id, kind, body, received_at) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
        )
        .bind(e.id.to_string())
        .bind(e.kind.as_str())
        .bind(body)
        .bind(chrono::Utc::now().to_rfc3339())
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if new {
            if let Some(link) = &e.link {
                let linked = i64::from(e.kind == PartnerEventType::LinkConfirmed);
                sqlx::query("UPDATE members SET linked = $1 WHERE number = $2")
                    .bind(linked)
                    .bind(&link.service_id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(new)
    }

    /// The events received, newest first, at most `limit`.
    pub async fn events(&self, limit: i64) -> anyhow::Result<Vec<Received>> {
        let rows = sqlx::query("SELECT kind, body, received_at FROM events ORDER BY received_at DESC LIMIT $1")
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok(Received { kind: r.try_get("kind")?, body: r.try_get("body")?, at: r.try_get("received_at")? }))
            .collect()
    }
}
