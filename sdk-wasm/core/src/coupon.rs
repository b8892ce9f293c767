//! Coupon codes of partner conversions (docs/domain.md "Partner conversion"): 15 random symbols of
//! Crockford's base 32 (75 bits, so guessing is hopeless) and a Luhn mod 32 check symbol, so
//! that any one mistyped symbol, and two swapped neighbours (but "0" and "Z"), are caught
//! before anything is sent.
//! Shown as `XXXX-XXXX-XXXX-XXXX`; typing is forgiving: lower case, spaces and hyphens, and
//! the look-alikes O (for 0) and I, L (for 1) are accepted.

use std::fmt;

/// Crockford's base-32 alphabet (no I, L, O, U).
pub const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Random symbols in a code.
pub const RANDOM_SYMBOLS: usize = 15;
/// Symbols in a code, the check symbol included.
pub const CODE_LEN: usize = RANDOM_SYMBOLS + 1;

/// A well-formed coupon code (its check symbol is right). Whether it was issued is the
/// server's business.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CouponCode(String);

/// Why typed text is not a coupon code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CouponError {
    /// Wrong number of symbols.
    #[error("a coupon code has {CODE_LEN} characters, this one has {0}")]
    Length(usize),
    /// A character that is not in a code.
    #[error("{0:?} is not in coupon codes (they use 0-9 and A-Z without I, L, O and U)")]
    Character(char),
    /// The check symbol does not match: a typo.
    #[error("this coupon code has a typo: check it against the coupon")]
    Check,
}

fn value(c: u8) -> Option<u32> {
    ALPHABET.iter().position(|a| *a == c).map(|p| p as u32)
}

/// The Luhn mod 32 check symbol of `symbols`.
fn check_symbol(symbols: &[u8]) -> u8 {
    let n = 32u32;
    let mut sum = 0;
    // From the right, every second value (starting with the rightmost) is doubled.
    for (i, s) in symbols.iter().rev().enumerate() {
        let mut v = value(*s).expect("symbols are from the alphabet");
        if i % 2 == 0 {
            v *= 2;
            v = v / n + v % n;
        }
        sum += v;
    }
    ALPHABET[((n - sum % n) % n) as usize]
}

impl CouponCode {
    /// Reads a typed code.
    pub fn parse(typed: &str) -> Result<CouponCode, CouponError> {
        let mut symbols = Vec::with_capacity(CODE_LEN);
        for c in typed.chars() {
            let c = match c.to_ascii_uppercase() {
                ' ' | '-' | '\u{3000}' | '\u{30FC}' | '\u{2010}'..='\u{2015}' => continue,
                'O' => '0',
                'I' | 'L' => '1',
                c => c,
            };
            if !c.is_ascii() || value(c as u8).is_none() {
                return Err(CouponError::Character(c));
            }
            symbols.push(c as u8);
        }
        if symbols.len() != CODE_LEN {
            return Err(CouponError::Length(symbols.len()));
        }
        if check_symbol(&symbols[..RANDOM_SYMBOLS]) != symbols[RANDOM_SYMBOLS] {
            return Err(CouponError::Check);
        }
        Ok(CouponCode(String::from_utf8(symbols).expect("ASCII")))
    }

    /// A code from 15 random values (each taken mod 32; the caller supplies the randomness).
    pub fn from_random(random: &[u8; RANDOM_SYMBOLS]) -> CouponCode {
        let mut symbols: Vec<u8> = random.iter().map(|b| ALPHABET[usize::from(*b) % 32]).collect();
        symbols.push(check_symbol(&symbols));
        CouponCode(String::from_utf8(symbols).expect("ASCII"))
    }

    /// The 16 symbols, no separators: what is hashed and stored.
    pub fn canonical(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CouponCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.0;
        write!(f, "{}-{}-{}-{}", &s[0..4], &s[4..8], &s[8..12], &s[12..16])
    }
}

impl fmt::Debug for CouponCode {
    // A code is a bearer secret: debug output never shows it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CouponCode({}…)", &self.0[..2])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn sample() -> CouponCode {
        CouponCode::from_random(&[7, 200, 31, 0, 64, 99, 5, 18, 250, 33, 1, 2, 3, 4, 5])
    }

    #[test]
    fn codes_round_trip_through_their_display_form() {
        let c = sample();
        assert_eq!(c.canonical().len(), CODE_LEN);
        assert_eq!(CouponCode::parse(&c.to_string()).unwrap(), c);
        assert_eq!(CouponCode::parse(&c.canonical().to_lowercase()).unwrap(), c);
        let spaced: String = c.canonical().chars().flat_map(|ch| [ch, ' ']).collect();
        assert_eq!(CouponCode::parse(&spaced).unwrap(), c);
        assert!(!format!("{c:?}").contains(c.canonical()));
    }

    #[test]
    fn every_single_typo_and_most_neighbour_swaps_are_caught() {
        let c = sample();
        let s = c.canonical().as_bytes().to_vec();
        for i in 0..CODE_LEN {
            for &a in ALPHABET {
                if a == s[i] {
                    continue;
                }
                let mut t = s.clone();
                t[i] = a;
                assert_eq!(CouponCode::parse(std::str::from_utf8(&t).unwrap()), Err(CouponError::Check), "{i} {a}");
            }
        }
        // Luhn mod 32 misses only swapping the symbols worth 0 and 31 ("0" and "Z").
        for i in 0..CODE_LEN - 1 {
            if s[i] == s[i + 1] || [s[i], s[i + 1]] == *b"0Z" || [s[i], s[i + 1]] == *b"Z0" {
                continue;
            }
            let mut t = s.clone();
            t.swap(i, i + 1);
            assert!(CouponCode::parse(std::str::from_utf8(&t).unwrap()).is_err(), "swap at {i}");
        }
    }

    #[test]
    fn look_alikes_are_read_and_strangers_refused() {
        let c = CouponCode::from_random(&[0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0]);
        let typed = c.canonical().replace('0', "O").replacen('1', "I", 3).replace('1', "l");
        assert_eq!(CouponCode::parse(&typed).unwrap(), c);
        assert_eq!(CouponCode::parse("ABC"), Err(CouponError::Length(3)));
        assert_eq!(CouponCode::parse("UUUUUUUUUUUUUUUU"), Err(CouponError::Character('U')));
    }
}

pub use api::*;

/// The coupon API's bodies.
mod api {
    use chrono::{DateTime, Utc};
    use rust_decimal::Decimal;
    use serde::{Deserialize, Serialize};
    use uuid::Uuid;

    use crate::api::{api_enum, api_type};

    api_enum! {
        /// How the partner hands the codes to its members (seed: paper, e-mail, URL).
        pub enum Delivery {
            /// Printed on paper, sent by post.
            Paper,
            /// In an e-mail.
            Email,
            /// A link that opens my page with the code filled in.
            Url,
        }
    }

    api_type! {
        /// `POST /v1/partners/{partner}/coupons`: a batch of codes.
        pub struct CouponBatchRequest {
            /// Client-chosen idempotency id: the same id gives the same codes again.
            pub id: Uuid,
            /// Codes in the batch (1 to 10,000).
            pub count: u32,
            /// The partner's own points or miles each code stands for.
            #[cfg_attr(feature = "openapi", schema(value_type = f64))]
            pub partner_points: Decimal,
            /// Municipal points per partner point; the product must be whole.
            #[cfg_attr(feature = "openapi", schema(value_type = f64))]
            pub rate: Decimal,
            /// After this, the codes are refused.
            pub expires_at: DateTime<Utc>,
            /// How they are delivered.
            pub delivery: Delivery,
        }
    }

    api_type! {
        /// The issued batch: the codes are shown here only (the server keeps their hashes).
        pub struct CouponBatch {
            /// The batch (the request's id).
            pub id: Uuid,
            /// Reserved points each code gives.
            pub points: i64,
            /// When the codes expire.
            pub expires_at: DateTime<Utc>,
            /// How they are delivered.
            pub delivery: Delivery,
            /// The codes, `XXXX-XXXX-XXXX-XXXX`.
            pub codes: Vec<String>,
            /// For `url` delivery: the link of each code, in the same order.
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            pub urls: Vec<String>,
        }
    }

    api_type! {
        /// `POST /v1/coupons/redeem`.
        pub struct CouponRedemption {
            /// The code as typed (separators and look-alikes are fine).
            pub code: String,
            /// The resident redeeming (a resident session or key must act for it).
            pub resident: i64,
        }
    }
}
