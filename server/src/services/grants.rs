//! Widget sign-in grants, in memory (one serving process): what a resident's sign-in inside a
//! checkout, link or coupon widget gives, good in that one place for `WIDGET_GRANT_MINUTES`.
//! A session's grants end as soon as the session is done (confirmed, cancelled), a resident
//! holds at most [`PER_RESIDENT`] at once, and the table holds at most [`MAX`].

use std::collections::HashMap;

use mykey_core::{Problem, ProblemKind};
use uuid::Uuid;

use crate::time::Micros;

/// Grants kept at once: 1,100 sign-ins a second for a grant's whole 15 minutes, above what
/// sign-ins can reach (a card sign-in is one token verification, about 1,000 a second per core;
/// a password one is an argon2 hash, `HASHES_AT_ONCE` at a time: docs/benchmarks.md). About
/// 100 bytes each, so at most ~100 MB; past it, new sign-ins are refused (503) until grants end.
pub const MAX: usize = 1_000_000;
/// Live grants per resident: a resident signing in again and again in many widgets (or someone
/// with their password) cannot crowd out the table.
pub const PER_RESIDENT: usize = 20;

/// Where a widget's sign-in works: one session (checkout, link), or one partner's coupon widget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantScope {
    /// A checkout or link session.
    Session(Uuid),
    /// A partner's coupon widget.
    Partner(i64),
}

/// A resident's sign-in inside one widget.
#[derive(Clone, Copy, Debug)]
struct Grant {
    scope: GrantScope,
    resident: i64,
    expires_at: Micros,
}

/// The live grants, by the SHA-256 of the grant, with the keys of each session's and each
/// resident's grants.
#[derive(Default)]
pub struct Grants {
    by_key: HashMap<[u8; 32], Grant>,
    by_session: HashMap<Uuid, Vec<[u8; 32]>>,
    by_resident: HashMap<i64, Vec<[u8; 32]>>,
}

impl Grants {
    /// Adds grant `key` for `resident` in `scope` until `expires_at`, or why not.
    pub fn issue(
        &mut self,
        key: [u8; 32],
        scope: GrantScope,
        resident: i64,
        now: Micros,
        expires_at: Micros,
    ) -> Result<(), Problem> {
        self.remove(&key);
        self.forget_ended(resident, now);
        if self.by_resident.get(&resident).is_some_and(|k| k.len() >= PER_RESIDENT) {
            return Err(Problem::new(
                ProblemKind::RateLimited,
                "too many sign-ins of this MyKey ID at once; finish or cancel one, or wait a few minutes",
            ));
        }
        if self.by_key.len() >= MAX {
            let ended: Vec<[u8; 32]> =
                self.by_key.iter().filter(|(_, g)| g.expires_at <= now).map(|(k, _)| *k).collect();
            for k in ended {
                self.remove(&k);
            }
        }
        if self.by_key.len() >= MAX {
            return Err(Problem::new(ProblemKind::Unavailable, "too many sign-ins at once; try again in a minute"));
        }
        self.by_key.insert(key, Grant { scope, resident, expires_at });
        if let GrantScope::Session(s) = scope {
            self.by_session.entry(s).or_default().push(key);
        }
        self.by_resident.entry(resident).or_default().push(key);
        debug_assert!(self.by_key.len() <= MAX);
        Ok(())
    }

    /// The resident grant `key` signed in for `scope`, while it lasts.
    pub fn resident(&self, key: &[u8; 32], scope: GrantScope, now: Micros) -> Option<i64> {
        self.by_key.get(key).filter(|g| g.scope == scope && g.expires_at > now).map(|g| g.resident)
    }

    /// Ends every grant of `session` (it was confirmed or cancelled: nothing more to do there).
    pub fn end_session(&mut self, session: Uuid) {
        for k in self.by_session.remove(&session).unwrap_or_default() {
            self.remove(&k);
        }
    }

    /// Forgets `resident`'s grants that ran out.
    fn forget_ended(&mut self, resident: i64, now: Micros) {
        let ended: Vec<[u8; 32]> = self
            .by_resident
            .get(&resident)
            .into_iter()
            .flatten()
            .filter(|k| self.by_key.get(*k).is_none_or(|g| g.expires_at <= now))
            .copied()
            .collect();
        for k in ended {
            self.remove(&k);
        }
    }

    fn remove(&mut self, key: &[u8; 32]) {
        let Some(g) = self.by_key.remove(key) else { return };
        if let GrantScope::Session(s) = g.scope {
            if let Some(v) = self.by_session.get_mut(&s) {
                v.retain(|k| k != key);
                if v.is_empty() {
                    self.by_session.remove(&s);
                }
            }
        }
        if let Some(v) = self.by_resident.get_mut(&g.resident) {
            v.retain(|k| k != key);
            if v.is_empty() {
                self.by_resident.remove(&g.resident);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MIN: Micros = 60_000_000;

    #[test]
    fn a_sessions_grants_end_with_it_and_a_resident_holds_a_bounded_number() {
        let mut g = Grants::default();
        let (s1, s2) = (Uuid::new_v4(), Uuid::new_v4());
        g.issue([1; 32], GrantScope::Session(s1), 7, 0, 15 * MIN).unwrap();
        g.issue([2; 32], GrantScope::Session(s2), 7, 0, 15 * MIN).unwrap();
        assert_eq!(g.resident(&[1; 32], GrantScope::Session(s1), MIN), Some(7));
        assert_eq!(g.resident(&[1; 32], GrantScope::Session(s2), MIN), None, "another session");
        g.end_session(s1);
        assert_eq!(g.resident(&[1; 32], GrantScope::Session(s1), MIN), None, "ended with its session");
        assert_eq!(g.resident(&[2; 32], GrantScope::Session(s2), MIN), Some(7));
        for i in 0..PER_RESIDENT - 1 {
            g.issue([10 + i as u8; 32], GrantScope::Partner(3), 7, 0, 15 * MIN).unwrap();
        }
        let e = g.issue([200; 32], GrantScope::Partner(3), 7, 0, 15 * MIN).unwrap_err();
        assert_eq!(e.kind(), Some(ProblemKind::RateLimited));
        g.issue([201; 32], GrantScope::Partner(3), 8, 0, 15 * MIN).unwrap();
        // Once they ran out, the resident signs in again.
        g.issue([202; 32], GrantScope::Partner(3), 7, 16 * MIN, 31 * MIN).unwrap();
        assert_eq!(g.resident(&[202; 32], GrantScope::Partner(3), 17 * MIN), Some(7));
        assert_eq!(g.by_key.len(), 2);
    }

    proptest! {
        /// Whatever is issued and ended, the indexes name exactly the live keys.
        #[test]
        fn the_indexes_agree_with_the_grants(ops in proptest::collection::vec((0u8..40, 0u8..4, 0i64..3, any::<bool>()), 1..200)) {
            let mut g = Grants::default();
            let sessions: Vec<Uuid> = (0..4).map(|i| Uuid::from_u128(i + 1)).collect();
            for (key, session, resident, end) in ops {
                if end {
                    g.end_session(sessions[session as usize]);
                } else {
                    let _ = g.issue([key; 32], GrantScope::Session(sessions[session as usize]), resident, 0, MIN);
                }
                let indexed: usize = g.by_resident.values().map(Vec::len).sum();
                prop_assert_eq!(indexed, g.by_key.len());
                let in_sessions: usize = g.by_session.values().map(Vec::len).sum();
                prop_assert_eq!(in_sessions, g.by_key.len());
                prop_assert!(g.by_resident.values().all(|v| v.len() <= PER_RESIDENT));
            }
        }
    }
}
