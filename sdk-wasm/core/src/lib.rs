//! Platform-free definitions shared by the mykey server, the browser SDK and the tests.
//!
//! Nothing here touches the network, a clock or a database, so the same code compiles
//! natively (server, tests) and to `wasm32-unknown-unknown` (browser SDK).

pub mod api;
pub mod card;
pub mod coupon;
pub mod currency;
pub mod device;
pub mod identity;
pub mod merkle;
pub mod mykey_id;
pub mod note;
pub mod points;
pub mod problem;
#[cfg(feature = "qr")]
pub mod qr;
pub mod receipt;
pub mod rules;
pub mod text;
pub mod voucher;
pub mod webhook;

pub use currency::{Currency, CurrencyParseError};
pub use mykey_id::{MykeyId, MykeyIdError};
pub use points::{AmountError, Points, SignedPoints};
pub use problem::{Problem, ProblemKind};

#[cfg(all(test, target_arch = "wasm32"))]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);
