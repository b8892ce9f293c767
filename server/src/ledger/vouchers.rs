//! Point vouchers in the ledger: the open ones, indexed by number and by expiry, and what the
//! ledger is asked to do with them. The states and their one pure transition are
//! `mykey_core::voucher::VoucherState`; the ledger posts a transaction for each step (issue:
//! resident → the municipality's voucher account; redemption: → the shop; return: → back to
//! the resident, in lots that expire when the points taken would have).

use std::collections::{BTreeMap, BTreeSet};

use mykey_core::voucher::{VoucherState, VoucherStep};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::bounds::MAX_LEGS;
use super::refusal::Refusal;
use crate::time::Micros;

/// Most lots a voucher remembers (by expiry): its return is one transaction with a leg each,
/// beside the voucher account's.
pub const VOUCHER_LOTS_MAX: usize = MAX_LEGS - 1;

/// A point voucher.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Voucher {
    /// Its 13-digit number (`mykey_core::voucher::VoucherNumber`).
    pub number: u64,
    /// The issuing request's id.
    pub id: Uuid,
    /// Whose points.
    pub resident: i64,
    /// The resident's account they came from and return to.
    pub account: i64,
    /// Whose points.
    pub municipality: i64,
    /// Its value.
    pub amount: i64,
    /// What became of it.
    pub state: VoucherState,
    /// The shop that issued it.
    pub issued_by: i64,
    /// Issue time.
    pub issued_at: Micros,
    /// The end of its validity.
    pub expires_at: Micros,
    /// The points taken, as (when they would have expired, how many), earliest first; the
    /// return gives them back so.
    pub lots: Vec<(Micros, i64)>,
    /// The issue's transaction.
    pub issue_seq: i64,
    /// When it was spent or returned.
    pub settled_at: Option<Micros>,
    /// The shop that took it.
    pub settled_by: Option<i64>,
    /// The redemption's or return's transaction.
    pub settle_seq: Option<i64>,
}

/// `Ledger::issue_voucher`: turn `amount` of a resident's municipal points into voucher
/// `number` (drawn by the service), valid as `mykey_core::rules::voucher_expires_at` says from
/// the issue's time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VoucherIssue {
    /// The request's id.
    pub id: Uuid,
    /// The new voucher's number.
    pub number: u64,
    /// Whose points.
    pub resident: i64,
    /// Whose points (the issuing shop's municipality).
    pub municipality: i64,
    /// The issuing shop.
    pub shop: i64,
    /// The value, whole points.
    pub amount: i64,
}

/// `Ledger::redeem_voucher`: shop `shop` takes voucher `number` as payment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VoucherRedemption {
    /// The request's id.
    pub id: Uuid,
    /// The voucher's number.
    pub number: u64,
    /// The shop.
    pub shop: i64,
}

/// The id of the return of voucher `voucher` (its issue's id): derived, so that the return is
/// one transaction whoever runs it, and of UUID version 8, which no client may send.
pub(super) fn return_id(voucher: Uuid) -> Uuid {
    use sha2::Digest as _;
    let h = sha2::Sha256::new().chain_update(b"mykey voucher return\0").chain_update(voucher.as_bytes()).finalize();
    uuid::Builder::from_custom_bytes(h[..16].try_into().expect("16 bytes")).into_uuid()
}

/// The open vouchers.
#[derive(Debug, Default)]
pub(super) struct Book {
    open: BTreeMap<u64, Voucher>,
    by_expiry: BTreeSet<(Micros, u64)>,
    /// Open vouchers per resident.
    per_resident: BTreeMap<i64, usize>,
}

impl Book {
    /// An open voucher.
    pub(super) fn get(&self, number: u64) -> Option<&Voucher> {
        self.open.get(&number)
    }

    /// Adds an open voucher.
    pub(super) fn open(&mut self, v: Voucher) {
        assert_eq!(v.state, VoucherState::Open);
        assert!(!self.open.contains_key(&v.number), "a number is open once");
        self.by_expiry.insert((v.expires_at, v.number));
        *self.per_resident.entry(v.resident).or_default() += 1;
        self.open.insert(v.number, v);
    }

    /// How many open vouchers `resident` has.
    pub(super) fn open_of(&self, resident: i64) -> usize {
        self.per_resident.get(&resident).copied().unwrap_or(0)
    }

    /// Takes voucher `number` out of the open ones for `step` at `now`: the voucher as it is
    /// after the step, or why it cannot be taken (it stays open then).
    pub(super) fn settle(&mut self, number: u64, step: VoucherStep, now: Micros) -> Result<Voucher, Refusal> {
        let v = self.open.get(&number).ok_or(Refusal::UnknownVoucher(number))?;
        let state = v.state.transition(step, now, v.expires_at).map_err(Refusal::Voucher)?;
        let mut v = self.open.remove(&number).expect("found above");
        self.by_expiry.remove(&(v.expires_at, number));
        match self.per_resident.get_mut(&v.resident) {
            Some(n) if *n > 1 => *n -= 1,
            _ => drop(self.per_resident.remove(&v.resident)),
        }
        v.state = state;
        v.settled_at = Some(now);
        Ok(v)
    }

    /// The numbers of at most `max` open vouchers expired at `now`, earliest first.
    pub(super) fn due(&self, now: Micros, max: usize) -> Vec<u64> {
        self.by_expiry.range(..(now + 1, 0)).take(max).map(|(_, n)| *n).collect()
    }

    /// When the next open voucher expires.
    pub(super) fn next_expiry(&self) -> Option<Micros> {
        self.by_expiry.first().map(|(at, _)| *at)
    }

    /// Points in open vouchers per municipality; checks the index and each voucher.
    pub(super) fn check(&self) -> BTreeMap<i64, i64> {
        assert_eq!(self.open.len(), self.by_expiry.len(), "every open voucher indexed once");
        let mut per_municipality = BTreeMap::new();
        let mut per_resident: BTreeMap<i64, usize> = BTreeMap::new();
        for v in self.open.values() {
            *per_resident.entry(v.resident).or_default() += 1;
            assert_eq!(v.state, VoucherState::Open);
            assert!(self.by_expiry.contains(&(v.expires_at, v.number)));
            assert!(v.amount > 0 && v.lots.len() <= VOUCHER_LOTS_MAX);
            assert_eq!(v.lots.iter().map(|(_, p)| p).sum::<i64>(), v.amount, "voucher {} lots", v.number);
            *per_municipality.entry(v.municipality).or_default() += v.amount;
        }
        assert_eq!(per_resident, self.per_resident, "open vouchers counted per resident");
        per_municipality
    }
}

/// The lots `amount` points taken from `lots` (in consumption order) came from, as (expiry,
/// points), at most [`VOUCHER_LOTS_MAX`] of them: beyond that, the rest join the last group,
/// which expires earlier than they would have (never later).
pub(super) fn taken_lots(lots: impl Iterator<Item = (Micros, i64)>, mut amount: i64) -> Vec<(Micros, i64)> {
    let mut taken: Vec<(Micros, i64)> = Vec::new();
    for (expires_at, remaining) in lots {
        if amount == 0 {
            break;
        }
        let t = remaining.min(amount);
        amount -= t;
        let full = taken.len() == VOUCHER_LOTS_MAX;
        match taken.last_mut() {
            Some((at, p)) if *at == expires_at => *p += t,
            // Past the bound, later points join the last group: it expires earlier.
            Some((_, p)) if full => *p += t,
            _ => taken.push((expires_at, t)),
        }
    }
    taken
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The lots taken add up to the amount, never expire later than the points did, and
        /// stay within the bound.
        #[test]
        fn taken_lots_keep_the_points_and_never_extend_them(
            lots in proptest::collection::vec((0i64..50, 1i64..20), 1..200), want in 1i64..500
        ) {
            let mut lots = lots;
            lots.sort();
            let total: i64 = lots.iter().map(|(_, p)| p).sum();
            let amount = want.min(total);
            let taken = taken_lots(lots.iter().copied(), amount);
            prop_assert_eq!(taken.iter().map(|(_, p)| p).sum::<i64>(), amount);
            prop_assert!(taken.len() <= VOUCHER_LOTS_MAX);
            prop_assert!(taken.windows(2).all(|w| w[0].0 < w[1].0));
            // Point by point, in order, each taken point expires no later than it would have.
            let mut original = lots.iter().flat_map(|(at, p)| std::iter::repeat_n(*at, *p as usize));
            for (at, p) in &taken {
                for _ in 0..*p {
                    prop_assert!(*at <= original.next().unwrap());
                }
            }
        }
    }
}
