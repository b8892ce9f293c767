//! The ledger's numbers: how long points live and wait, and the bounds of one request.

use crate::time::{Micros, DAY};

/// How long reserved points wait before they move to the home municipality.
pub const RESERVED_WAIT: Micros = mykey_core::rules::RESERVED_WAIT_DAYS * DAY;
/// Default lifetime of municipal points (docs/domain.md, assumed: 2 years).
pub const DEFAULT_EXPIRY_DAYS: i64 = 730;
/// Longest hold a shop may place: one week.
pub const MAX_HOLD_SECONDS: u32 = 7 * 24 * 3600;
/// Most legs one transaction may have; bounds the work of one request.
pub const MAX_LEGS: usize = 64;
/// Most transactions one jobs run writes; a later run continues.
pub const MAX_JOB_TRANSACTIONS: usize = 100_000;
/// Most vouchers one batch gives back at their expiry (those of one day expire at the same
/// midnight); the writer's next batch, at once, returns the rest.
pub const VOUCHER_RETURNS_PER_BATCH: usize = 1_000;
