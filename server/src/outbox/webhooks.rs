//! Webhooks: a store's checkout events and a partner's redemption and link events, written to
//! `webhook_events` in the same transaction as the change that caused them, are posted to the
//! owner's server, signed
//! (`mykey_core::webhook`), until it answers 2xx; failures are tried again with exponential
//! back-off for [`WEBHOOK_RETRY_DAYS`] from the event (or its last resend), then marked failed.

use std::time::Duration;

use futures_util::StreamExt;
use mykey_core::rules::{WEBHOOK_RETRY_DAYS, WEBHOOK_SECRET_OVERLAP_HOURS};
use mykey_core::webhook::{sign, SIGNATURE_HEADER};
use sqlx::AnyPool;

use std::collections::HashMap;

use super::address::{NotPublic, Resolver, Targets};
use crate::store::embedding::{self as store, Attempt, Owner, StoredEvent};
use crate::time::{self, Micros, DAY, SECOND};

/// Events tried per round.
pub const PER_ROUND: i64 = 512;
/// Deliveries under way at once.
pub const AT_ONCE: usize = 32;
/// An owner's server has this long to answer.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// The first retry waits this long; each next one twice as long, up to [`LONGEST_WAIT`].
pub const FIRST_WAIT: Micros = 10 * SECOND;
/// The longest wait between tries.
pub const LONGEST_WAIT: Micros = 3600 * SECOND;
/// Tried events whose outcome is still being recorded, at most; past it, rounds wait.
pub const UNRECORDED_MAX: usize = 8 * PER_ROUND as usize;
/// Rounds run this often while fewer than a full round are due.
pub const EVERY: Duration = Duration::from_millis(500);

/// When to try again after `attempts` failed tries of an event whose retries count from
/// `retry_from`; none once the retry window is over.
pub fn next_attempt(retry_from: Micros, attempts: i64, now: Micros) -> Option<Micros> {
    let shift = u32::try_from(attempts.clamp(0, 20)).expect("clamped");
    let wait = FIRST_WAIT.saturating_mul(1i64 << shift).min(LONGEST_WAIT);
    let at = now + wait;
    (at <= retry_from + WEBHOOK_RETRY_DAYS * DAY).then_some(at)
}

/// Posts due events to stores' and partners' servers.
pub struct Deliverer {
    pool: AnyPool,
    client: reqwest::Client,
    /// Where webhooks may go.
    targets: Targets,
    /// Events tried whose outcome is not recorded yet: not tried again meanwhile. Recording
    /// runs beside the next rounds, so a database busy with other writers (SQLite has one
    /// write lock) does not hold deliveries up.
    unrecorded: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<uuid::Uuid>>>,
}

impl Deliverer {
    /// A deliverer over `pool`'s events, to addresses of `targets`.
    pub fn new(pool: AnyPool, targets: Targets) -> anyhow::Result<Deliverer> {
        let client = crate::net::client()
            .timeout(TIMEOUT)
            // An owner's server answers where it is; a redirect could send the event elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            // Names are resolved to allowed addresses only, on every connection.
            .dns_resolver(std::sync::Arc::new(Resolver { targets }))
            .build()?;
        Ok(Deliverer { pool, client, targets, unrecorded: Default::default() })
    }

    /// One round: tries the due events; returns how many it tried. One subject's events (a
    /// session's, a redemption's) go one after another, in the order they happened, subjects
    /// in parallel; a retried event may arrive after later ones, so receivers read the state
    /// from the object in the event.
    /// The round's tries are recorded in one transaction, beside the next rounds.
    pub async fn run_once(&self) -> anyhow::Result<usize> {
        let now = time::now();
        // Taken before the query: an event whose record commits while the query runs may still
        // look due in its answer, and must still count as in flight here (else it is sent twice).
        let unrecorded = self.unrecorded.lock().expect("not poisoned").clone();
        if unrecorded.len() >= UNRECORDED_MAX {
            return Ok(0);
        }
        let due = store::due_events(&self.pool, now, PER_ROUND + unrecorded.len() as i64).await?;
        let due: Vec<StoredEvent> =
            due.into_iter().filter(|e| !unrecorded.contains(&e.id)).take(PER_ROUND as usize).collect();
        let mut targets: HashMap<Owner, Option<(String, Vec<String>)>> = HashMap::new();
        for owner in due.iter().map(|e| e.owner) {
            if let std::collections::hash_map::Entry::Vacant(v) = targets.entry(owner) {
                let url = store::settings(&self.pool, owner).await?.and_then(|s| s.webhook_url);
                let retired_after = now - WEBHOOK_SECRET_OVERLAP_HOURS * 3600 * SECOND;
                let secrets = store::signing_secrets(&self.pool, owner, retired_after).await?;
                v.insert(url.map(|u| (u, secrets)));
            }
        }
        let mut per_subject: Vec<Vec<StoredEvent>> = Vec::new();
        let mut place: HashMap<uuid::Uuid, usize> = HashMap::new();
        for e in due {
            let i = *place.entry(e.subject).or_insert_with(|| {
                per_subject.push(Vec::new());
                per_subject.len() - 1
            });
            per_subject[i].push(e);
        }
        let targets = &targets;
        let attempts: Vec<Attempt> = futures_util::stream::iter(per_subject)
            .map(|events| async move {
                let mut tried = Vec::new();
                for e in events {
                    tried.push(self.deliver(&e, targets.get(&e.owner).and_then(Option::as_ref)).await);
                }
                tried
            })
            .buffer_unordered(AT_ONCE)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .flatten()
            .collect();
        let tried = attempts.len();
        self.unrecorded.lock().expect("not poisoned").extend(attempts.iter().map(|a| a.id));
        let (pool, unrecorded) = (self.pool.clone(), self.unrecorded.clone());
        tokio::spawn(async move {
            // Retried until it is recorded: until then these events are not tried again.
            let mut wait = Duration::from_millis(100);
            while let Err(e) = store::record_attempts(&pool, &attempts).await {
                tracing::warn!(error = format!("{e:#}"), "recording webhook deliveries failed; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(10));
            }
            let mut u = unrecorded.lock().expect("not poisoned");
            for a in &attempts {
                u.remove(&a.id);
            }
        });
        Ok(tried)
    }

    async fn deliver(&self, e: &StoredEvent, target: Option<&(String, Vec<String>)>) -> Attempt {
        let now = time::now();
        let outcome = match target {
            None => Err("no webhook URL is registered".to_owned()),
            Some((_, secrets)) if secrets.is_empty() => {
                Err(format!("no webhook secret was made (POST {}/webhook-secrets)", e.owner.path()))
            }
            Some((url, _)) if !self.may_post_to(url) => {
                Err("the webhook URL points into a private network or at this machine; register another".to_owned())
            }
            Some((url, secrets)) => {
                let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
                let header = sign(&secrets, now / SECOND, e.body.as_bytes());
                let sent = self
                    .client
                    .post(url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header(SIGNATURE_HEADER, header)
                    .body(e.body.clone())
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().is_success() => Ok(()),
                    Ok(r) => Err(format!("the server answered {}", r.status())),
                    Err(err) => Err(failure_text(&err)),
                }
            }
        };
        let delivered = outcome.is_ok();
        // Bounded: it is stored and shown to the owner.
        let error = outcome.err().map(|t| t.chars().take(500).collect::<String>());
        if let Some(err) = &error {
            tracing::info!(event = %e.id, owner = e.owner.key(), attempts = e.attempts + 1, error = err.as_str(), "webhook not delivered");
        }
        Attempt {
            id: e.id,
            at: now,
            delivered,
            next: if delivered { None } else { next_attempt(e.retry_from, e.attempts, now) },
            error,
        }
    }

    /// Runs rounds every [`EVERY`], or as soon as `written` says new events were committed; a
    /// full round is followed by the next at once.
    pub async fn run(self, written: std::sync::Arc<tokio::sync::Notify>) {
        loop {
            match self.run_once().await {
                Ok(tried) if tried as i64 >= PER_ROUND => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = format!("{e:#}"), "the webhook round failed"),
            }
            let _ = tokio::time::timeout(EVERY, written.notified()).await;
        }
    }
}

impl Deliverer {
    /// Whether `url`'s host, when it is an address literal, is one webhooks may go to: settings
    /// stored before a tighter rule (or under the development option) are checked again here;
    /// names are checked by the resolver on every connection.
    fn may_post_to(&self, url: &str) -> bool {
        match url::Url::parse(url).ok().and_then(|u| u.host().map(|h| h.to_owned())) {
            Some(url::Host::Ipv4(ip)) => self.targets.may_receive(ip.into()),
            Some(url::Host::Ipv6(ip)) => self.targets.may_receive(ip.into()),
            Some(url::Host::Domain(_)) => true,
            None => false,
        }
    }
}

/// What the owner is told of a failed post: what went wrong at its own endpoint (its host
/// resolving nowhere allowed, no connection, TLS, no answer in time), never an address its
/// name resolved to nor anything of the operator's network.
fn failure_text(err: &reqwest::Error) -> String {
    // The causes, with what an io::Error wraps (tokio-rustls reports a TLS failure as an
    // io::Error around the rustls error, which `source` skips).
    let mut causes: Vec<&(dyn std::error::Error + 'static)> = vec![err];
    let (mut refused, mut tls, mut io) = (None, None, None);
    while let Some(c) = causes.pop() {
        if let Some(n) = c.downcast_ref::<NotPublic>() {
            refused = Some(n.to_string());
        }
        if let Some(t) = c.downcast_ref::<rustls::Error>() {
            tls = Some(t.to_string());
        }
        if let Some(e) = c.downcast_ref::<std::io::Error>() {
            io.get_or_insert(e.kind());
            if let Some(inner) = e.get_ref() {
                causes.push(inner);
            }
        }
        if let Some(next) = c.source() {
            causes.push(next);
        }
    }
    if let Some(r) = refused {
        r
    } else if let Some(t) = tls {
        format!("the TLS handshake with the webhook URL's host failed: {t}")
    } else if err.is_timeout() {
        format!("no answer within {} s", TIMEOUT.as_secs())
    } else if err.is_connect() {
        match io {
            Some(kind) => format!("could not connect to the webhook URL's host ({kind})"),
            None => "could not connect to the webhook URL's host".to_owned(),
        }
    } else {
        "the connection to the webhook URL's host failed before an answer".to_owned()
    }
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
