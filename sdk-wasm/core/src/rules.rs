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
