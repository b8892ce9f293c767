//! API keys per role. A key is 32 random bytes shown once; only its SHA-256 is stored (a
//! 256-bit random secret needs no slow hash, unlike a password). Keys look like
//! `mk_<role>_<64 hex>` so a leaked key says what it is.

use std::collections::HashMap;
use std::sync::RwLock;

use mykey_core::{Problem, ProblemKind};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::store::Store;

pub mod devices;
pub mod policy;

/// Who may do what.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Runs the platform: everything.
    Operator,
    /// One municipality's staff.
    Municipality,
    /// One partner company.
    Partner,
    /// One shop's or online store's backend.
    Store,
    /// One shop's counter terminal: an enrolled device that signs its requests
    /// ([`devices`]); no key has this role any more.
    Terminal,
    /// One resident's session.
    Resident,
    /// A mirror of the log: reads entry bundles, nothing else.
    Mirror,
}

impl Role {
    /// The name in keys and SQL.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Municipality => "municipality",
            Role::Partner => "partner",
            Role::Store => "store",
            Role::Terminal => "terminal",
            Role::Resident => "resident",
            Role::Mirror => "mirror",
        }
    }

    /// Parses the name.
    pub fn parse(s: &str) -> Option<Role> {
        [Role::Operator, Role::Municipality, Role::Partner, Role::Store, Role::Terminal, Role::Resident, Role::Mirror]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// An authenticated caller: a role and the entity it acts for (0 for the operator).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    /// Role.
    pub role: Role,
    /// Municipality, partner, shop or resident id.
    pub subject: i64,
}

impl Caller {
    /// Stable text for idempotency fingerprints.
    pub fn principal(&self) -> String {
        format!("{}:{}", self.role.as_str(), self.subject)
    }

    /// Allows the operator, or `role` acting for `subject`.
    pub fn require(&self, allowed: &[Role], subject: i64) -> Result<(), Problem> {
        if self.role == Role::Operator || (allowed.contains(&self.role) && self.subject == subject) {
            Ok(())
        } else {
            Err(Problem::new(
                ProblemKind::Forbidden,
                format!("a {} key for {} may not act for {subject} here", self.role.as_str(), self.subject),
            ))
        }
    }

    /// Allows only the operator.
    pub fn require_operator(&self) -> Result<(), Problem> {
        if self.role == Role::Operator {
            Ok(())
        } else {
            Err(Problem::new(
                ProblemKind::Forbidden,
                format!("only the operator may do that, not a {} key", self.role.as_str()),
            ))
        }
    }

    /// Allows the operator and `role`, whatever it acts for (a mirror acts for no one).
    pub fn require_role(&self, role: Role) -> Result<(), Problem> {
        if self.role == Role::Operator || self.role == role {
            Ok(())
        } else {
            Err(Problem::new(ProblemKind::Forbidden, format!("a {} key may not do that", self.role.as_str())))
        }
    }
}

/// Makes a new key for `role`.
pub fn new_key(role: Role) -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!("mk_{}_{}", role.as_str(), hex::encode(b))
}

/// The stored form of a key, which is also its id (`key_id`): the SHA-256 of the key, which
/// names the key without revealing it.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Creates and stores a key; returns the key, which is never stored.
pub async fn create_key(store: &Store, role: Role, subject: i64, label: &str) -> anyhow::Result<String> {
    anyhow::ensure!(role != Role::Terminal, "terminals are enrolled devices now, with a pairing code, not keys");
    let key = new_key(role);
    store.insert_api_key(&hash_key(&key), role.as_str(), subject, label, crate::time::now()).await?;
    Ok(key)
}

/// How long a resolved key is remembered. A key revoked through the API is forgotten at once;
/// one revoked by another process (`mykey-server revoke-api-key`) stops working within this.
pub const KEY_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(10);

/// Resolves keys, remembering the ones seen for [`KEY_CACHE_TTL`]. Bounded: past the limit
/// the cache is cleared.
#[derive(Default)]
pub struct KeyCache {
    known: RwLock<HashMap<String, (Caller, std::time::Instant)>>,
}

const KEY_CACHE_LIMIT: usize = 100_000;

impl KeyCache {
    /// The caller behind an `Authorization: Bearer` key.
    pub async fn resolve(&self, store: &Store, key: &str) -> Result<Caller, Problem> {
        let unauth = || {
            Problem::new(
                ProblemKind::Unauthenticated,
                "send an API key as `Authorization: Bearer mk_...`; this one is not known or was revoked",
            )
        };
        if !key.starts_with("mk_") || key.len() > 128 {
            return Err(unauth());
        }
        let h = hash_key(key);
        if let Some((c, at)) = self.known.read().expect("not poisoned").get(&h) {
            if at.elapsed() < KEY_CACHE_TTL {
                return Ok(*c);
            }
        }
        let found = store.api_key(&h).await.map_err(|e| {
            tracing::error!(error = %e, "reading api keys");
            Problem::new(ProblemKind::Unavailable, "the key store is not answering")
        })?;
        let Some((role, subject)) = found else {
            self.forget(&h);
            return Err(unauth());
        };
        let role = Role::parse(&role).ok_or_else(unauth)?;
        if role == Role::Terminal {
            return Err(Problem::new(
                ProblemKind::Unauthenticated,
                "terminal keys are retired: enrol the terminal as a device with a pairing code from its shop and \
                 sign its requests (docs/counter.md)",
            ));
        }
        let c = Caller { role, subject };
        let mut known = self.known.write().expect("not poisoned");
        if known.len() >= KEY_CACHE_LIMIT {
            known.clear();
        }
        known.insert(h, (c, std::time::Instant::now()));
        Ok(c)
    }

    /// Forgets the key with id `key_id` (after its revocation).
    pub fn forget(&self, key_id: &str) {
        self.known.write().expect("not poisoned").remove(key_id);
    }
}

/// Revokes the key with id `key_id` (see [`hash_key`]) and forgets it in `cache`; false when
/// no live key has that id.
pub async fn revoke_key(store: &Store, cache: &KeyCache, key_id: &str) -> anyhow::Result<bool> {
    let done = store.revoke_api_key(key_id, crate::time::now()).await?;
    cache.forget(key_id);
    Ok(done)
}

/// What guessing is counted by: the client's address, or for IPv6 its /64 (one subscriber's
/// network, which holds more addresses than a guesser could use up).
pub fn guesser(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            std::net::IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        other => other,
    }
}

/// Failed key look-ups allowed per client address and minute; past it the answer is 429, so
/// guessing keys is hopeless even before the 2^256 key space is counted.
pub const FAILED_AUTH_PER_MINUTE: u32 = 30;

/// Counts failed authentications per client address.
pub struct GuessLimiter {
    limiter: governor::DefaultKeyedRateLimiter<std::net::IpAddr>,
}

impl Default for GuessLimiter {
    fn default() -> Self {
        let quota = governor::Quota::per_minute(std::num::NonZeroU32::new(FAILED_AUTH_PER_MINUTE).expect("non-zero"));
        GuessLimiter { limiter: governor::RateLimiter::keyed(quota) }
    }
}

impl GuessLimiter {
    /// Records a failure from `ip`; turns it into `rate-limited` once over the quota.
    pub fn failed(&self, ip: std::net::IpAddr, problem: Problem) -> Problem {
        // Bounded memory: forget addresses whose quota has refilled.
        if self.limiter.len() > 100_000 {
            self.limiter.retain_recent();
        }
        match self.limiter.check_key(&guesser(ip)) {
            Ok(()) => problem,
            Err(_) => Problem::new(
                ProblemKind::RateLimited,
                format!("too many failed API keys from this address; at most {FAILED_AUTH_PER_MINUTE} a minute"),
            ),
        }
    }
}

/// Keys tracked by a [`FailureCounter`] at most.
pub const MAX_TRACKED_FAILURES: usize = 100_000;

/// Failures per key (a client address, a MyKey ID) in a sliding window. A key with `max`
/// failures in the window is blocked until the oldest leaves it; it is asked before a guess
/// is checked, so a blocked guesser learns nothing, right or wrong.
pub struct FailureCounter<K> {
    max: usize,
    window: std::time::Duration,
    failures: std::sync::Mutex<HashMap<K, std::collections::VecDeque<std::time::Instant>>>,
}

impl<K: std::hash::Hash + Eq + Clone> FailureCounter<K> {
    /// At most `max` failures per `window`.
    pub fn new(max: usize, window: std::time::Duration) -> Self {
        assert!(max > 0);
        FailureCounter { max, window, failures: std::sync::Mutex::new(HashMap::new()) }
    }

    fn recent(&self, q: &mut std::collections::VecDeque<std::time::Instant>, now: std::time::Instant) {
        while q.front().is_some_and(|t| now.duration_since(*t) >= self.window) {
            q.pop_front();
        }
    }

    /// True while `key` has `max` failures in the window. When the table is full of keys
    /// with recent failures, unknown keys count as blocked too (fail closed).
    pub fn blocked(&self, key: &K) -> bool {
        let now = std::time::Instant::now();
        let mut f = self.failures.lock().expect("not poisoned");
        match f.get_mut(key) {
            Some(q) => {
                self.recent(q, now);
                q.len() >= self.max
            }
            None => f.len() >= MAX_TRACKED_FAILURES,
        }
    }

    /// Records a failure of `key`.
    pub fn failed(&self, key: &K) {
        let now = std::time::Instant::now();
        let mut f = self.failures.lock().expect("not poisoned");
        if f.len() >= MAX_TRACKED_FAILURES && !f.contains_key(key) {
            f.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < self.window));
            if f.len() >= MAX_TRACKED_FAILURES {
                return;
            }
        }
        let q = f.entry(key.clone()).or_default();
        self.recent(q, now);
        q.push_back(now);
        // Bounded: only the last `max` failures matter.
        while q.len() > self.max {
            q.pop_front();
        }
    }

    /// Forgets `key`'s failures (after a success).
    pub fn clear(&self, key: &K) {
        self.failures.lock().expect("not poisoned").remove(key);
    }

    /// Counts an attempt of `key` as a failure before it is checked, in one step with the
    /// check: false (nothing counted) when `key` is already blocked. Concurrent attempts thus
    /// cannot all pass before any failure is recorded; a success takes its count back with
    /// [`FailureCounter::forgive`].
    pub fn reserve(&self, key: &K) -> bool {
        let now = std::time::Instant::now();
        let mut f = self.failures.lock().expect("not poisoned");
        if let Some(q) = f.get_mut(key) {
            self.recent(q, now);
            if q.len() >= self.max {
                return false;
            }
        } else if f.len() >= MAX_TRACKED_FAILURES {
            f.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < self.window));
            if f.len() >= MAX_TRACKED_FAILURES {
                // Full of recent failures: fail closed.
                return false;
            }
        }
        f.entry(key.clone()).or_default().push_back(now);
        true
    }

    /// Takes back one reserved failure of `key` (the attempt succeeded).
    pub fn forgive(&self, key: &K) {
        let mut f = self.failures.lock().expect("not poisoned");
        if let Some(q) = f.get_mut(key) {
            q.pop_back();
            if q.is_empty() {
                f.remove(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_count_before_the_check_and_a_success_takes_its_back() {
        let c = FailureCounter::new(3, std::time::Duration::from_secs(60));
        assert!(c.reserve(&"id") && c.reserve(&"id") && c.reserve(&"id"));
        assert!(!c.reserve(&"id"), "the fourth attempt waits, though none was checked yet");
        assert!(c.blocked(&"id"));
        c.forgive(&"id");
        assert!(!c.blocked(&"id") && c.reserve(&"id"));
        assert!(c.reserve(&"other"), "keys count apart");
    }

    #[test]
    fn an_ipv6_guesser_is_counted_by_its_64_and_ipv4_by_its_address() {
        let a: std::net::IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: std::net::IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: std::net::IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(guesser(a), guesser(b));
        assert_ne!(guesser(a), guesser(other));
        let v4: std::net::IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(guesser(v4), v4);
        let mapped: std::net::IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(guesser(mapped), mapped, "a mapped IPv4 address stays itself");
    }

    #[test]
    fn keys_are_random_and_hash_stably() {
        let a = new_key(Role::Store);
        let b = new_key(Role::Store);
        assert_ne!(a, b);
        assert!(a.starts_with("mk_store_") && a.len() == 9 + 64);
        assert_eq!(hash_key(&a), hash_key(&a));
        assert_ne!(hash_key(&a), hash_key(&b));
    }

    #[test]
    fn only_the_operator_or_the_subject_passes() {
        let shop7 = Caller { role: Role::Store, subject: 7 };
        assert!(shop7.require(&[Role::Store, Role::Terminal], 7).is_ok());
        assert!(shop7.require(&[Role::Store], 8).is_err());
        assert!(shop7.require(&[Role::Partner], 7).is_err());
        assert!(shop7.require_operator().is_err());
        assert!(Caller { role: Role::Operator, subject: 0 }.require_operator().is_ok());
    }

    #[test]
    fn failures_block_a_key_until_they_leave_the_window() {
        let c = FailureCounter::new(3, std::time::Duration::from_millis(200));
        for _ in 0..2 {
            c.failed(&"AB2CD3EF");
            assert!(!c.blocked(&"AB2CD3EF"));
        }
        c.failed(&"AB2CD3EF");
        assert!(c.blocked(&"AB2CD3EF"));
        assert!(!c.blocked(&"ZZ2CD3EF"));
        std::thread::sleep(std::time::Duration::from_millis(250));
        assert!(!c.blocked(&"AB2CD3EF"));
        c.failed(&"AB2CD3EF");
        c.clear(&"AB2CD3EF");
        assert!(!c.blocked(&"AB2CD3EF"));
    }
}
