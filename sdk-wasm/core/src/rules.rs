//! The domain's rules that the server enforces and the pages explain, one constant each
//! (docs/domain.md): texts and stored data derive from these and never restate the number.

/// Days reserved points wait for the resident to assign them before they move to the home
/// municipality.
pub const RESERVED_WAIT_DAYS: i64 = 14;

pub use crate::card::jpki::AUTH_PIN_TRIES;
pub use crate::identity::{MAX_FAILED_CHECKS, MAX_GENERATIONS};
