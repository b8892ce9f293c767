//! Why the ledger refused a request: a small `Copy` value the services match on. It is turned
//! into problem+json in one place, [`Refusal::problem`] (and [`Refusal::party_problem`] for a
//! store, partner or terminal); the ledger knows nothing of HTTP.

use mykey_core::api::HoldState;
use mykey_core::voucher::VoucherRefusal;
use mykey_core::{AmountError, Currency, Problem, ProblemKind};
use uuid::Uuid;

use super::bounds::{MAX_HOLD_SECONDS, MAX_LEGS};

/// A request the ledger refused; nothing changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not a whole, positive number of points within the limit.
    #[error("{0}")]
    Amount(AmountError),
    /// A municipality added twice, or with an id that is not positive.
    #[error("municipality {0} exists or is not a positive id")]
    MunicipalityExists(i64),
    /// No such municipality takes part.
    #[error("municipality {0} does not take part")]
    UnknownMunicipality(i64),
    /// No such resident.
    #[error("resident {0} does not exist")]
    UnknownResident(i64),
    /// No such shop.
    #[error("shop {0} does not exist")]
    UnknownShop(i64),
    /// No such partner.
    #[error("partner {0} does not exist")]
    UnknownPartner(i64),
    /// No such event programme.
    #[error("event {0} does not exist")]
    UnknownEvent(i64),
    /// No such account.
    #[error("account {0} does not exist")]
    UnknownAccount(i64),
    /// No such hold.
    #[error("hold {0} does not exist")]
    UnknownHold(Uuid),
    /// An event programme named with another municipality's points.
    #[error("event {event} belongs to municipality {owner}, not {asked}")]
    EventOfAnother {
        /// The event.
        event: i64,
        /// Its municipality.
        owner: i64,
        /// The municipality the request named.
        asked: i64,
    },
    /// A shop asked to take points it does not accept.
    #[error("shop {shop} accepts points of municipality {accepts}, not of municipality {asked}")]
    ShopTakesOther {
        /// The shop.
        shop: i64,
        /// Whose points it accepts.
        accepts: i64,
        /// Whose points the request named.
        asked: i64,
    },
    /// The resident has never had points of this municipality (or event).
    #[error("resident {resident} has no points of municipality {municipality}")]
    NoPoints {
        /// The resident.
        resident: i64,
        /// The municipality.
        municipality: i64,
    },
    /// Fewer points available than the request moves.
    #[error("account {account} has {available} points available, {wanted} are needed")]
    Insufficient {
        /// The resident's account.
        account: i64,
        /// Its balance less what is held.
        available: i64,
        /// What the request would take from it.
        wanted: i64,
    },
    /// Postings that balance overall but move points from one currency into another.
    #[error("points of one currency would move into an account of another ({currency}: {sum})")]
    CurrenciesCross {
        /// The first currency that does not balance.
        currency: Currency,
        /// Its sum.
        sum: i64,
    },
    /// Postings that do not sum to zero.
    #[error("the postings do not sum to zero ({currency}: {sum})")]
    Unbalanced {
        /// The first currency that does not balance.
        currency: Currency,
        /// Its sum.
        sum: i64,
    },
    /// A balance would leave the range the ledger counts in.
    #[error("account {0}'s balance would leave the range the ledger can count")]
    BalanceOutOfRange(i64),
    /// An expiry date that has passed.
    #[error("expires_at is in the past")]
    ExpiresInPast,
    /// An assignment drawing on more partners than one transaction has legs for.
    #[error("assign fewer points at once: they come from too many partners")]
    TooManyPartners,
    /// A transaction with fewer than two or more than the most legs.
    #[error("a transaction has 2 to {max} postings, this one has {0}", max = MAX_LEGS)]
    PostingCount(usize),
    /// A transaction touching reserved points, which only conversions and assignments move.
    #[error("account {0} holds reserved points, which move only by conversion and assignment")]
    ReservedAccount(i64),
    /// A transaction touching a voucher account, which only vouchers' issue, redemption and
    /// return move.
    #[error("account {0} holds vouchers' points, which move only when vouchers are issued, redeemed or returned")]
    VoucherAccount(i64),
    /// A hold's timeout outside the range.
    #[error("timeout_seconds must be 1 to {max}, not {0}", max = MAX_HOLD_SECONDS)]
    HoldTimeout(u32),
    /// A hold that is no longer active.
    #[error("hold {hold} is {}", state.as_str())]
    HoldNotActive {
        /// The hold.
        hold: Uuid,
        /// What became of it.
        state: HoldState,
    },
    /// A capture of more than is held.
    #[error("hold {hold} is for {held} points, {asked} cannot be captured")]
    CaptureExceedsHold {
        /// The hold.
        hold: Uuid,
        /// What it holds.
        held: i64,
        /// What the capture asked for.
        asked: i64,
    },
    /// A hold whose shop account belongs to no shop (a broken ledger; never expected).
    #[error("hold {0} is for an account of no shop")]
    HoldWithoutShop(Uuid),
    /// No open voucher has this number (spent, returned or never issued: the tables say which).
    #[error("no open voucher has the number {0:013}")]
    UnknownVoucher(u64),
    /// A new voucher's number is an open voucher's (the service draws another).
    #[error("voucher number {0:013} is in use")]
    VoucherNumberTaken(u64),
    /// The voucher cannot take this step.
    #[error("{0}")]
    Voucher(VoucherRefusal),
    /// A resident with the most open vouchers asks for another.
    #[error("resident {0} has {max} open vouchers, the most one may have; spend one first", max = mykey_core::rules::VOUCHERS_OPEN_PER_RESIDENT)]
    TooManyVouchers(i64),
    /// A voucher would take points that have reached their expiry (not yet moved to breakage).
    #[error("the points of account {0} that a voucher would take first have expired")]
    PointsExpiring(i64),
    /// A voucher of points the shop does not take.
    #[error(
        "voucher {number:013} is of municipality {municipality}'s points; shop {shop} takes municipality {accepts}'s"
    )]
    VoucherElsewhere {
        /// The voucher.
        number: u64,
        /// Whose points it is.
        municipality: i64,
        /// The shop.
        shop: i64,
        /// Whose points the shop takes.
        accepts: i64,
    },
}

impl From<AmountError> for Refusal {
    fn from(e: AmountError) -> Self {
        Refusal::Amount(e)
    }
}

impl Refusal {
    /// The kind of problem this is.
    pub fn kind(self) -> ProblemKind {
        use Refusal::*;
        match self {
            Amount(e) => Problem::from(e).kind().unwrap_or(ProblemKind::InvalidRequest),
            MunicipalityExists(_)
            | BalanceOutOfRange(_)
            | ExpiresInPast
            | TooManyPartners
            | PostingCount(_)
            | ReservedAccount(_)
            | VoucherAccount(_)
            | HoldTimeout(_) => ProblemKind::InvalidRequest,
            UnknownMunicipality(_) | UnknownResident(_) | UnknownShop(_) | UnknownPartner(_) | UnknownEvent(_) => {
                ProblemKind::UnknownReference
            }
            HoldWithoutShop(_) => ProblemKind::UnknownReference,
            UnknownAccount(_) => ProblemKind::UnknownAccount,
            UnknownHold(_) => ProblemKind::NotFound,
            EventOfAnother { .. } | ShopTakesOther { .. } | CurrenciesCross { .. } => ProblemKind::CurrencyMismatch,
            NoPoints { .. } | Insufficient { .. } => ProblemKind::InsufficientPoints,
            Unbalanced { .. } => ProblemKind::UnbalancedTransaction,
            HoldNotActive { .. } => ProblemKind::HoldNotActive,
            UnknownVoucher(_) => ProblemKind::NotFound,
            VoucherNumberTaken(_) => ProblemKind::IdempotencyConflict,
            Voucher(VoucherRefusal::Spent) => ProblemKind::VoucherSpent,
            Voucher(VoucherRefusal::Expired) => ProblemKind::VoucherExpired,
            Voucher(VoucherRefusal::NotYetExpired) => ProblemKind::InvalidRequest,
            VoucherElsewhere { .. } => ProblemKind::VoucherNotAccepted,
            TooManyVouchers(_) => ProblemKind::VoucherLimit,
            PointsExpiring(_) => ProblemKind::InsufficientPoints,
            CaptureExceedsHold { .. } => ProblemKind::CaptureExceedsHold,
        }
    }

    /// The problem a resident or a municipality is answered with.
    pub fn problem(self) -> Problem {
        let p = Problem::new(self.kind(), self.to_string());
        match self {
            Refusal::Insufficient { account, available, .. } => p.with("available", available).with("account", account),
            Refusal::NoPoints { .. } => p.with("available", 0),
            Refusal::HoldNotActive { state, .. } => p.with("state", state.as_str()),
            _ => p,
        }
    }

    /// The problem a store, partner or terminal is answered with: nothing of a resident's
    /// points or accounts.
    pub fn party_problem(self) -> Problem {
        match self.kind() {
            ProblemKind::InsufficientPoints => {
                Problem::new(ProblemKind::InsufficientPoints, "the resident's points usable here are not enough")
            }
            _ => self.problem(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn insufficient_points_tell_the_resident_but_not_a_party() {
        let r = Refusal::Insufficient { account: 7, available: 3, wanted: 10 };
        let p = r.problem();
        assert_eq!(p.status, 422);
        assert_eq!(p.extensions["available"], 3);
        assert_eq!(p.extensions["account"], 7);
        let party = r.party_problem();
        assert_eq!(party.kind(), Some(ProblemKind::InsufficientPoints));
        assert!(party.extensions.is_empty());
        assert!(!party.detail.contains('3') && !party.detail.contains('7'), "{}", party.detail);
        let none = Refusal::NoPoints { resident: 4, municipality: 1 }.party_problem();
        assert!(none.extensions.is_empty() && !none.detail.contains('4'), "{none:?}");
    }

    #[test]
    fn a_hold_no_longer_active_says_what_became_of_it() {
        let p = Refusal::HoldNotActive { hold: Uuid::nil(), state: HoldState::Captured }.problem();
        assert_eq!(p.kind(), Some(ProblemKind::HoldNotActive));
        assert_eq!(p.extensions["state"], "captured");
    }

    proptest! {
        /// Whatever the numbers, a party's problem carries none of a resident's.
        #[test]
        fn a_party_never_sees_a_residents_numbers(account in 1i64..1_000_000, available in 0i64..1_000_000,
                                                    wanted in 1i64..1_000_000) {
            let p = Refusal::Insufficient { account, available, wanted }.party_problem();
            let body = serde_json::to_string(&p).unwrap();
            let (points, named) = (format!("{available} points"), format!("account {account}"));
            prop_assert!(!body.contains(&points));
            prop_assert!(!body.contains(&named));
            prop_assert!(p.extensions.is_empty());
        }
    }
}
