//! Time as integer microseconds since the Unix epoch (UTC): the same column type on SQLite
//! and PostgreSQL, exact, and ordered.

use chrono::{DateTime, TimeZone, Utc};

/// Microseconds since 1970-01-01T00:00:00Z.
pub type Micros = i64;
/// One second.
pub const SECOND: Micros = 1_000_000;
/// One day.
pub const DAY: Micros = 86_400 * SECOND;

/// Japan's time zone (no daylight saving): the calendar of dates residents and shops read.
pub fn japan() -> chrono::FixedOffset {
    mykey_core::rules::japan()
}

/// The current time.
pub fn now() -> Micros {
    Utc::now().timestamp_micros()
}

/// Converts for the API.
pub fn micros_to_datetime(m: Micros) -> DateTime<Utc> {
    Utc.timestamp_micros(m).single().expect("stored times are in range")
}

/// Converts from the API.
pub fn datetime_to_micros(d: DateTime<Utc>) -> Micros {
    d.timestamp_micros()
}
