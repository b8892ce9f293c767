//! Standing mandates (docs/checkout.md "Charging a linked member"): a resident who linked
//! their member ID at an online store may allow that one store to charge later without them
//! present, within limits they saw and confirmed: the most per charge, the most per calendar
//! month and an end date. The store charges by the mandate's opaque id, never by the member
//! number; the resident sees every charge (e-mail, my page) and revokes at once.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::points::MAX_POINTS;
use crate::rules::{MANDATE_LONGEST_DAYS, MANDATE_MONTH_UTC_OFFSET_HOURS};
use crate::text::{Memo, Reference};

api_type! {
    /// The limits a store asks for in a link session (`mandate` of `POST /v1/link-sessions`)
    /// and the resident confirms in the widget.
    #[derive(Copy, Eq)]
    pub struct MandateTerms {
        /// The most points one charge may take.
        pub max_per_charge: i64,
        /// The most points all charges of one calendar month (Japan time) may take together.
        pub max_per_month: i64,
        /// The last day (Japan time) charges may be made.
        #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
        pub ends_on: NaiveDate,
    }
}

impl MandateTerms {
    /// Whether these terms may be asked for on `today` (Japan time), or why not.
    pub fn check(&self, today: NaiveDate) -> Result<(), &'static str> {
        if self.max_per_charge < 1 || self.max_per_charge > MAX_POINTS {
            return Err("max_per_charge must be a whole number of points, at least 1");
        }
        if self.max_per_month < self.max_per_charge || self.max_per_month > MAX_POINTS {
            return Err("max_per_month must be at least max_per_charge");
        }
        if self.ends_on < today {
            return Err("ends_on is in the past");
        }
        if (self.ends_on - today).num_days() > MANDATE_LONGEST_DAYS {
            return Err("ends_on is further away than a mandate may last (rules::MANDATE_LONGEST_DAYS)");
        }
        Ok(())
    }

    /// The first moment no charge may be made: the start of the day after `ends_on`, Japan time.
    pub fn ends_at(&self) -> DateTime<Utc> {
        let next = self.ends_on.succ_opt().unwrap_or(self.ends_on);
        let midnight = next.and_hms_opt(0, 0, 0).expect("midnight exists");
        midnight.and_utc() - chrono::Duration::hours(i64::from(MANDATE_MONTH_UTC_OFFSET_HOURS))
    }
}

/// The calendar month (Japan time) of `at`, as `YYYY-MM`: a mandate's monthly limit counts
/// the charges of one such month.
pub fn mandate_month(at: DateTime<Utc>) -> String {
    at.with_timezone(&japan()).format("%Y-%m").to_string()
}

/// Japan's date of `at`.
pub fn japan_date(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&japan()).date_naive()
}

/// Japan's time zone (no daylight saving).
fn japan() -> chrono::FixedOffset {
    chrono::FixedOffset::east_opt(MANDATE_MONTH_UTC_OFFSET_HOURS * 3600).expect("a valid offset")
}

api_enum! {
    /// Where a mandate stands. `active` leaves at most once, to `revoked` or `ended`.
    pub enum MandateState {
        /// The store may charge within the terms.
        Active,
        /// The resident revoked it (or cut the link it came with).
        Revoked,
        /// Its end date passed.
        Ended,
    }
}

impl MandateState {
    /// The name in SQL and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            MandateState::Active => "active",
            MandateState::Revoked => "revoked",
            MandateState::Ended => "ended",
        }
    }

    /// Parses [`MandateState::as_str`].
    pub fn parse(s: &str) -> Option<MandateState> {
        [MandateState::Active, MandateState::Revoked, MandateState::Ended].into_iter().find(|x| x.as_str() == s)
    }
}

api_type! {
    /// A mandate as the store it was granted to sees it (in `link.confirmed` and
    /// `mandate.revoked` events).
    pub struct Mandate {
        /// Charge with this id (`POST /v1/shops/{shop}/mandate-charges`).
        pub id: Uuid,
        /// The store that may charge.
        pub shop: i64,
        /// The limits.
        pub terms: MandateTerms,
        /// Where it stands.
        pub state: MandateState,
        /// When the resident granted it.
        pub granted_at: DateTime<Utc>,
        /// When the resident revoked it.
        pub revoked_at: Option<DateTime<Utc>>,
    }
}

api_type! {
    /// `POST /v1/shops/{shop}/mandate-charges`: a store charges a resident under a mandate they
    /// granted it.
    pub struct MandateChargeRequest {
        /// The store's own reference (an order number): the same reference gives the same
        /// answer again, one charge per reference.
        pub reference: Reference,
        /// The mandate's id, from the `link.confirmed` event.
        pub mandate: Uuid,
        /// Points to charge (the store's municipality's points), within the mandate's terms.
        #[cfg_attr(feature = "openapi", schema(value_type = f64))]
        pub amount: Decimal,
        /// What was bought, shown in the resident's history and notice.
        #[serde(default)]
        pub memo: Option<Memo>,
    }
}

api_type! {
    /// One charge under a mandate, on the resident's my page.
    pub struct MandateChargeLine {
        /// When.
        pub at: DateTime<Utc>,
        /// Points charged.
        pub points: i64,
        /// The store's reference.
        pub reference: String,
    }
}

api_type! {
    /// A mandate on the resident's my page (`GET /v1/me/mandates`).
    pub struct ResidentMandate {
        /// The mandate.
        pub id: Uuid,
        /// The store that may charge.
        pub shop: i64,
        /// Its name.
        pub shop_name: String,
        /// The limits.
        pub terms: MandateTerms,
        /// Where it stands.
        pub state: MandateState,
        /// When it was granted.
        pub granted_at: DateTime<Utc>,
        /// When it was revoked.
        pub revoked_at: Option<DateTime<Utc>>,
        /// Points charged this calendar month.
        pub charged_this_month: i64,
        /// The latest charges, newest first (at most `MANDATE_CHARGES_SHOWN`).
        pub charges: Vec<MandateChargeLine>,
    }
}

/// Charges listed per mandate on my page.
pub const MANDATE_CHARGES_SHOWN: usize = 20;

api_type! {
    /// What the link widget shows of the mandate the store asks for.
    pub struct MandateOffer {
        /// The store that would charge (one shop, not the whole online service).
        pub shop_name: String,
        /// The limits.
        pub terms: MandateTerms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn terms_are_checked() {
        let today = day("2026-12-07");
        let t = |c, m, e| MandateTerms { max_per_charge: c, max_per_month: m, ends_on: day(e) };
        assert!(t(3000, 10000, "2027-06-30").check(today).is_ok());
        assert!(t(3000, 3000, "2026-12-07").check(today).is_ok(), "the same day, one charge's worth");
        assert!(t(0, 10000, "2027-06-30").check(today).is_err());
        assert!(t(3000, 2999, "2027-06-30").check(today).is_err());
        assert!(t(3000, 10000, "2026-12-06").check(today).is_err());
        assert!(t(3000, 10000, "2027-12-09").check(today).is_err(), "past the longest mandate");
        assert!(t(MAX_POINTS + 1, MAX_POINTS + 1, "2027-01-01").check(today).is_err());
    }

    #[test]
    fn a_mandate_ends_at_midnight_japan_time_after_its_last_day() {
        let t = MandateTerms { max_per_charge: 1, max_per_month: 1, ends_on: day("2026-12-31") };
        assert_eq!(t.ends_at().to_rfc3339(), "2026-12-31T15:00:00+00:00");
        assert_eq!(mandate_month("2026-12-31T14:59:59Z".parse().unwrap()), "2026-12");
        assert_eq!(mandate_month("2026-12-31T15:00:00Z".parse().unwrap()), "2027-01");
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn the_end_is_in_the_month_after_or_of_the_last_day(secs in 0i64..4_000_000_000) {
            let at = DateTime::<Utc>::from_timestamp(secs, 0).unwrap();
            let d = japan_date(at);
            let t = MandateTerms { max_per_charge: 1, max_per_month: 1, ends_on: d };
            // Any moment of the last day is before the end; the end is on the next day.
            prop_assert!(at < t.ends_at());
            prop_assert_eq!(japan_date(t.ends_at()), d.succ_opt().unwrap());
            prop_assert!(mandate_month(at).starts_with(&d.format("%Y-%m").to_string()));
        }
    }
}
