//! Webhooks: checkout events, written to `webhook_events` in the same transaction as the
//! session change that caused them, are posted to the store's server, signed
//! (`mykey_core::webhook`), until it answers 2xx; failures are tried again with exponential
//! back-off for [`WEBHOOK_RETRY_DAYS`] from the event (or its last resend), then marked failed.

use std::time::Duration;

use futures_util::StreamExt;
use mykey_core::rules::{WEBHOOK_RETRY_DAYS, WEBHOOK_SECRET_OVERLAP_HOURS};
use mykey_core::webhook::{sign, SIGNATURE_HEADER};
use sqlx::AnyPool;

use crate::store::checkout::{self as store, StoredEvent};
use crate::time::{self, Micros, DAY, SECOND};

/// Events tried per round.
pub const PER_ROUND: i64 = 64;
/// Stores delivered to at once.
pub const AT_ONCE: usize = 8;
/// A store's server has this long to answer.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// The first retry waits this long; each next one twice as long, up to [`LONGEST_WAIT`].
pub const FIRST_WAIT: Micros = 10 * SECOND;
/// The longest wait between tries.
pub const LONGEST_WAIT: Micros = 3600 * SECOND;
/// Rounds run this often.
pub const EVERY: Duration = Duration::from_millis(250);

/// When to try again after `attempts` failed tries of an event whose retries count from
/// `retry_from`; none once the retry window is over.
pub fn next_attempt(retry_from: Micros, attempts: i64, now: Micros) -> Option<Micros> {
    let shift = u32::try_from(attempts.clamp(0, 20)).expect("clamped");
    let wait = FIRST_WAIT.saturating_mul(1i64 << shift).min(LONGEST_WAIT);
    let at = now + wait;
    (at <= retry_from + WEBHOOK_RETRY_DAYS * DAY).then_some(at)
}

/// Posts due events to stores' servers.
pub struct Deliverer {
    pool: AnyPool,
    client: reqwest::Client,
}

impl Deliverer {
    /// A deliverer over `pool`'s events.
    pub fn new(pool: AnyPool) -> anyhow::Result<Deliverer> {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            // A store's server answers where it is; a redirect could send the event elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Deliverer { pool, client })
    }

    /// One round: tries the due events; returns how many were delivered.
    pub async fn run_once(&self) -> anyhow::Result<usize> {
        let now = time::now();
        let due = store::due_events(&self.pool, now, PER_ROUND).await?;
        // One store's events go one after another, in the order they happened; stores in
        // parallel.
        let mut per_store: std::collections::BTreeMap<i64, Vec<StoredEvent>> = Default::default();
        for e in due {
            per_store.entry(e.shop).or_default().push(e);
        }
        let outcomes: Vec<anyhow::Result<usize>> = futures_util::stream::iter(per_store.into_values())
            .map(|events| async move {
                let mut delivered = 0;
                for e in events {
                    if self.deliver(e).await? {
                        delivered += 1;
                    }
                }
                Ok(delivered)
            })
            .buffer_unordered(AT_ONCE)
            .collect()
            .await;
        let mut delivered = 0;
        for o in outcomes {
            delivered += o?;
        }
        Ok(delivered)
    }

    async fn deliver(&self, e: StoredEvent) -> anyhow::Result<bool> {
        let now = time::now();
        let settings = store::settings(&self.pool, e.shop).await?;
        let secrets =
            store::signing_secrets(&self.pool, e.shop, now - WEBHOOK_SECRET_OVERLAP_HOURS * 3600 * SECOND).await?;
        let outcome = match (settings.and_then(|s| s.webhook_url), secrets.is_empty()) {
            (None, _) => Err("the store has no webhook URL".to_owned()),
            (Some(_), true) => {
                Err("the store has no webhook secret (POST /v1/shops/{shop}/webhook-secrets)".to_owned())
            }
            (Some(url), false) => {
                let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
                let header = sign(&secrets, now / SECOND, e.body.as_bytes());
                let sent = self
                    .client
                    .post(&url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header(SIGNATURE_HEADER, header)
                    .body(e.body.clone())
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().is_success() => Ok(()),
                    Ok(r) => Err(format!("the store's server answered {}", r.status())),
                    Err(err) => Err(format!("posting failed: {}", chain(&err))),
                }
            }
        };
        let delivered = outcome.is_ok();
        let next = if delivered { None } else { next_attempt(e.retry_from, e.attempts, now) };
        // Bounded: it is stored and shown to the store.
        let error = outcome.err().map(|t| t.chars().take(500).collect::<String>());
        if let Some(err) = &error {
            tracing::info!(event = %e.id, shop = e.shop, attempts = e.attempts + 1, error = err.as_str(), "webhook not delivered");
        }
        store::record_attempt(&self.pool, e.id, now, delivered, next, error.as_deref()).await?;
        Ok(delivered)
    }

    /// Runs rounds every [`EVERY`].
    pub async fn run(self) {
        let mut tick = tokio::time::interval(EVERY);
        loop {
            tick.tick().await;
            if let Err(e) = self.run_once().await {
                tracing::warn!(error = format!("{e:#}"), "the webhook round failed");
            }
        }
    }
}

/// An error with its causes, on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(c) = next {
        text.push_str(": ");
        text.push_str(&c.to_string());
        next = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_and_stop_after_the_window() {
        let start = 1_000 * DAY;
        assert_eq!(next_attempt(start, 0, start), Some(start + FIRST_WAIT));
        assert_eq!(next_attempt(start, 1, start), Some(start + 2 * FIRST_WAIT));
        assert_eq!(next_attempt(start, 40, start), Some(start + LONGEST_WAIT));
        let late = start + WEBHOOK_RETRY_DAYS * DAY - LONGEST_WAIT / 2;
        assert_eq!(next_attempt(start, 40, late), None);
    }
}
