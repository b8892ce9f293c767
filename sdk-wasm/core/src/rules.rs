//! The domain's rules that the server enforces and the pages explain, one constant each
//! (docs/domain.md): texts and stored data derive from these and never restate the number.

/// Days reserved points wait for the resident to assign them before they move to the home
/// municipality.
pub const RESERVED_WAIT_DAYS: i64 = 14;

/// Days ahead that municipal and event points about to expire are announced (to residents who
/// chose expiry notices).
pub const EXPIRY_WARNING_DAYS: i64 = 30;

pub use crate::card::jpki::AUTH_PIN_TRIES;
pub use crate::identity::{MAX_FAILED_CHECKS, MAX_GENERATIONS};

/// Checkout: seconds an unconfirmed session stays open unless the store asks otherwise.
pub const CHECKOUT_OPEN_SECONDS: u32 = 30 * 60;
/// Checkout: the shortest and longest time a store may leave a session open, in seconds.
pub const CHECKOUT_OPEN_SECONDS_RANGE: std::ops::RangeInclusive<u32> = 60..=24 * 3600;
/// Checkout with manual capture: seconds confirmed points stay held unless the store asks
/// otherwise; at most the ledger's longest hold.
pub const CHECKOUT_HOLD_SECONDS: u32 = 7 * 24 * 3600;
/// Minutes a resident's sign-in inside a widget (checkout, link, coupon) lasts.
pub const WIDGET_GRANT_MINUTES: i64 = 15;
/// Member links: seconds an unconfirmed link session stays open unless its creator asks
/// otherwise.
pub const LINK_OPEN_SECONDS: u32 = 30 * 60;
/// Member links: the shortest and longest time a link session may stay open, in seconds.
pub const LINK_OPEN_SECONDS_RANGE: std::ops::RangeInclusive<u32> = 60..=24 * 3600;
/// Hours a rotated webhook secret keeps signing beside the new one.
pub const WEBHOOK_SECRET_OVERLAP_HOURS: i64 = 24;
/// Days a webhook delivery is retried, with exponential back-off, before it is marked failed.
pub const WEBHOOK_RETRY_DAYS: i64 = 3;
/// Seconds a store's webhook verifier accepts a signature's timestamp either side of its clock.
pub const WEBHOOK_TOLERANCE_SECONDS: i64 = 300;
/// Standing mandates: the latest end date a resident may grant, in days from the grant.
pub const MANDATE_LONGEST_DAYS: i64 = 366;
/// Standing mandates: a store's charges naming a mandate id it does not hold, per minute, before
/// its further charges are refused for the rest of the minute (ids are guessed, not typed).
pub const MANDATE_GUESSES_PER_MINUTE: u32 = 10;
/// Japan's offset from UTC in hours (no daylight saving): the calendar residents and shops read.
pub const JAPAN_UTC_OFFSET_HOURS: i32 = 9;
/// Standing mandates: a calendar month is Japan's, as residents read their statements.
pub const MANDATE_MONTH_UTC_OFFSET_HOURS: i32 = JAPAN_UTC_OFFSET_HOURS;

/// Japan's time zone.
pub fn japan() -> chrono::FixedOffset {
    chrono::FixedOffset::east_opt(JAPAN_UTC_OFFSET_HOURS * 3600).expect("a valid offset")
}

/// Point vouchers: calendar days in Japan a voucher is valid, its issue day included (the seed's
/// voucher issued 2017/12/15 is valid 12/15 to 12/17).
pub const VOUCHER_VALID_DAYS: i64 = 3;

/// Point vouchers: when a voucher issued at `issued` stops being valid: midnight in Japan after
/// its last day.
pub fn voucher_expires_at(issued: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    let japan = japan();
    let first_day = issued.with_timezone(&japan).date_naive();
    let end = (first_day + chrono::Days::new(VOUCHER_VALID_DAYS as u64)).and_time(chrono::NaiveTime::MIN);
    end.and_local_timezone(japan).single().expect("a fixed offset has one local time").with_timezone(&chrono::Utc)
}

/// Point vouchers: the most open (unspent, unexpired) vouchers one resident may have.
pub const VOUCHERS_OPEN_PER_RESIDENT: usize = 10;

/// Point vouchers: typed voucher numbers that take no voucher, per terminal and per shop per
/// minute, before further typed numbers are refused for the rest of the minute (a number is a
/// bearer secret).
pub const VOUCHER_GUESSES_PER_MINUTE: u32 = 10;

#[cfg(test)]
mod voucher_tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn the_seeds_voucher_is_valid_through_its_third_day_in_japan() {
        use chrono::TimeZone as _;
        // 2017/12/15 10:00 in Japan.
        let issued = chrono::Utc.with_ymd_and_hms(2017, 12, 15, 1, 0, 0).unwrap();
        // Valid through 12/17: until 12/18 00:00 in Japan, 12/17 15:00 UTC.
        assert_eq!(voucher_expires_at(issued), chrono::Utc.with_ymd_and_hms(2017, 12, 17, 15, 0, 0).unwrap());
        // Issued at 23:59 in Japan, the same day counts as the first.
        let late = chrono::Utc.with_ymd_and_hms(2017, 12, 15, 14, 59, 0).unwrap();
        assert_eq!(voucher_expires_at(late), voucher_expires_at(issued));
    }
}
