//! Point vouchers (ポイント券): the 13-digit number printed on each, what can happen to a
//! voucher ([`VoucherState::transition`]), and the signed text its QR code carries.
//!
//! The number is a random body behind a prefix of `1` and `4`–`9` (GS1 prefixes 140–199,
//! which GS1 has given to no member organisation, so no product or coupon code starts so and a
//! shop's scanner reads none as one) and a Damm check digit (every single wrong digit and
//! every swap of two neighbours is caught). Its body is random: a number is a bearer secret,
//! and 60,000,000,000 bodies keep guessing one among the open vouchers hopeless at the
//! guessing limits the server sets.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// Digits in a voucher number.
pub const NUMBER_DIGITS: usize = 13;
/// Random digits in a voucher number (between the prefix and the check digit).
const BODY_DIGITS: u32 = 10;
/// The longest ticket text a QR code carries (the server refuses longer ones unread).
pub const TICKET_MAX: usize = 200;
/// The first word of a ticket's text.
pub const TICKET_PREFIX: &str = "mykey-voucher:1:";

/// A voucher's 13-digit number: prefix `1` + `4`–`9`, ten random digits, a Damm check digit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VoucherNumber(u64);

/// Why a typed voucher number is not one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VoucherNumberError {
    /// Not 13 digits (spaces and hyphens aside).
    #[error("a voucher number has 13 digits")]
    Length,
    /// Not a voucher's prefix (140–199).
    #[error("this is not a point voucher's number (they start with 14 to 19)")]
    Prefix,
    /// The check digit does not match: a digit was mistyped.
    #[error("the voucher number has a typo (its check digit does not match)")]
    Check,
}

/// The Damm algorithm's quasigroup of order 10 (Damm 2004): the check digit makes the
/// running interim digit 0.
const DAMM: [[u8; 10]; 10] = [
    [0, 3, 1, 7, 5, 9, 8, 6, 4, 2],
    [7, 0, 9, 2, 1, 5, 4, 8, 6, 3],
    [4, 2, 0, 6, 8, 7, 1, 3, 5, 9],
    [1, 7, 5, 0, 9, 8, 3, 4, 2, 6],
    [6, 1, 2, 3, 0, 4, 5, 9, 7, 8],
    [3, 6, 7, 4, 2, 0, 9, 5, 8, 1],
    [5, 8, 6, 9, 7, 2, 0, 1, 3, 4],
    [8, 9, 4, 5, 3, 6, 2, 0, 1, 7],
    [9, 4, 3, 8, 6, 1, 7, 2, 0, 5],
    [2, 5, 8, 1, 4, 3, 6, 7, 9, 0],
];

fn damm(digits: impl Iterator<Item = u8>) -> u8 {
    digits.fold(0, |interim, d| DAMM[usize::from(interim)][usize::from(d)])
}

impl VoucherNumber {
    /// A number from a random value (any `u64`; the server draws one from the OS).
    pub fn from_random(r: u64) -> VoucherNumber {
        let prefix = 14 + r % 6;
        let body = (r / 6) % 10u64.pow(BODY_DIGITS);
        let first12 = prefix * 10u64.pow(BODY_DIGITS) + body;
        let check = damm(digits_of(first12, 12));
        VoucherNumber(first12 * 10 + u64::from(check))
    }

    /// Parses a typed or scanned number; spaces and hyphens between digits are ignored.
    pub fn parse(s: &str) -> Result<VoucherNumber, VoucherNumberError> {
        let mut digits = Vec::with_capacity(NUMBER_DIGITS);
        for c in s.trim().chars() {
            match c {
                '0'..='9' if digits.len() < NUMBER_DIGITS => digits.push(c as u8 - b'0'),
                ' ' | '-' => {}
                _ => return Err(VoucherNumberError::Length),
            }
        }
        if digits.len() != NUMBER_DIGITS {
            return Err(VoucherNumberError::Length);
        }
        if digits[0] != 1 || digits[1] < 4 {
            return Err(VoucherNumberError::Prefix);
        }
        if damm(digits.iter().copied()) != 0 {
            return Err(VoucherNumberError::Check);
        }
        Ok(VoucherNumber(digits.iter().fold(0, |n, d| n * 10 + u64::from(*d))))
    }

    /// The number as stored (13 digits, no spaces).
    pub fn get(self) -> u64 {
        self.0
    }

    /// A stored number, checked as a typed one is.
    pub fn from_stored(n: u64) -> Result<VoucherNumber, VoucherNumberError> {
        VoucherNumber::parse(&format!("{n:013}"))
    }

    /// The 13 digits without spaces, as a ticket carries them.
    pub fn digits(self) -> String {
        format!("{:013}", self.0)
    }
}

/// Printed in groups, `1423 4567 89013`, as staff read it aloud and type it.
impl std::fmt::Display for VoucherNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = self.digits();
        write!(f, "{} {} {}", &d[..4], &d[4..8], &d[8..])
    }
}

fn digits_of(n: u64, count: u32) -> impl Iterator<Item = u8> {
    (0..count).rev().map(move |i| ((n / 10u64.pow(i)) % 10) as u8)
}

crate::api::api_enum! {
    /// What became of a voucher. Issued `open`; leaves it once.
    pub enum VoucherState {
        /// Its points wait for a shop.
        Open,
        /// Spent at a shop, in full.
        Redeemed,
        /// Unspent when it expired: its points went back to the resident.
        Returned,
    }
}

impl VoucherState {
    /// The name in SQL and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            VoucherState::Open => "open",
            VoucherState::Redeemed => "redeemed",
            VoucherState::Returned => "returned",
        }
    }

    /// Parses the name in SQL.
    pub fn parse(s: &str) -> Option<VoucherState> {
        [VoucherState::Open, VoucherState::Redeemed, VoucherState::Returned].into_iter().find(|v| v.as_str() == s)
    }

    /// The state after `step` at time `now` (microseconds, like `expires_at`), or why the
    /// step cannot be taken. A voucher is spent only while open and before it expires, and
    /// given back only while open and once it has expired: never both, never twice.
    pub fn transition(self, step: VoucherStep, now: i64, expires_at: i64) -> Result<VoucherState, VoucherRefusal> {
        match (self, step) {
            (VoucherState::Open, VoucherStep::Redeem) if now < expires_at => Ok(VoucherState::Redeemed),
            (VoucherState::Open, VoucherStep::Redeem) => Err(VoucherRefusal::Expired),
            (VoucherState::Open, VoucherStep::Return) if now >= expires_at => Ok(VoucherState::Returned),
            (VoucherState::Open, VoucherStep::Return) => Err(VoucherRefusal::NotYetExpired),
            (VoucherState::Redeemed, _) => Err(VoucherRefusal::Spent),
            (VoucherState::Returned, _) => Err(VoucherRefusal::Expired),
        }
    }
}

/// What can be done to a voucher.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoucherStep {
    /// A shop takes it as payment.
    Redeem,
    /// Its points go back to the resident at its expiry.
    Return,
}

/// Why a voucher step cannot be taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VoucherRefusal {
    /// Spent already.
    #[error("this voucher was already used")]
    Spent,
    /// Past its validity (its points went, or go, back to the resident).
    #[error("this voucher has expired; its points go back to the resident")]
    Expired,
    /// Still valid: nothing to give back yet.
    #[error("this voucher is still valid")]
    NotYetExpired,
}

/// What a voucher's QR code says: the number, whose points, how many, until when, and the
/// server's signature over them, so that a terminal can tell a forged or altered voucher
/// before it asks the server. Text: `mykey-voucher:1:<13 digits>:<municipality>:<points>:<expiry,
/// Unix seconds>:<ECDSA P-256 SHA-256 signature, r‖s, base64url>`; the signature covers the
/// text before its last `:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoucherTicket {
    /// The number.
    pub number: VoucherNumber,
    /// Whose points.
    pub municipality: i64,
    /// How many (whole points, greater than zero).
    pub points: i64,
    /// The end of its validity, Unix seconds.
    pub expires_at: i64,
    /// The signature, 64 bytes r‖s.
    pub signature: Vec<u8>,
}

/// Why a ticket text is not one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    /// Not a voucher's text at all, or cut short.
    #[error("this is not a point voucher's code")]
    NotATicket,
    /// A voucher's text whose fields do not read.
    #[error("the voucher's code is damaged")]
    Damaged,
}

impl VoucherTicket {
    /// The text the signature covers.
    pub fn signed_text(number: VoucherNumber, municipality: i64, points: i64, expires_at: i64) -> String {
        format!("{TICKET_PREFIX}{}:{municipality}:{points}:{expires_at}", number.digits())
    }

    /// The QR code's text.
    pub fn text(&self) -> String {
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&self.signature);
        format!("{}:{sig}", Self::signed_text(self.number, self.municipality, self.points, self.expires_at))
    }

    /// Reads a scanned text; the signature is checked by whoever holds the server's key.
    pub fn parse(text: &str) -> Result<VoucherTicket, TicketError> {
        let text = text.trim();
        if text.len() > TICKET_MAX {
            return Err(TicketError::NotATicket);
        }
        let rest = text.strip_prefix(TICKET_PREFIX).ok_or(TicketError::NotATicket)?;
        let parts: Vec<&str> = rest.split(':').collect();
        let [number, municipality, points, expires_at, signature] = parts[..] else {
            return Err(TicketError::Damaged);
        };
        let number = VoucherNumber::parse(number).map_err(|_| TicketError::Damaged)?;
        let int = |s: &str| s.parse::<i64>().ok().filter(|v| *v > 0 && s.bytes().all(|b| b.is_ascii_digit()));
        let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(signature)
            .ok()
            .filter(|s| s.len() == 64)
            .ok_or(TicketError::Damaged)?;
        Ok(VoucherTicket {
            number,
            municipality: int(municipality).ok_or(TicketError::Damaged)?,
            points: int(points).ok_or(TicketError::Damaged)?,
            expires_at: int(expires_at).ok_or(TicketError::Damaged)?,
            signature,
        })
    }

    /// The text this ticket's signature must cover.
    pub fn message(&self) -> String {
        Self::signed_text(self.number, self.municipality, self.points, self.expires_at)
    }
}

/// What a scanner or a keyboard gave the terminal: a ticket's text or a typed number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VoucherInput {
    /// The QR code's text.
    Ticket(VoucherTicket),
    /// The printed number, typed.
    Number(VoucherNumber),
}

impl VoucherInput {
    /// Reads what was scanned or typed, with a sentence for staff when it is neither.
    pub fn parse(s: &str) -> Result<VoucherInput, String> {
        if s.trim().starts_with(TICKET_PREFIX) {
            return VoucherTicket::parse(s).map(VoucherInput::Ticket).map_err(|e| e.to_string());
        }
        VoucherNumber::parse(s).map(VoucherInput::Number).map_err(|e| e.to_string())
    }

    /// The voucher's number.
    pub fn number(&self) -> VoucherNumber {
        match self {
            VoucherInput::Ticket(t) => t.number,
            VoucherInput::Number(n) => *n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn a_number_reads_back_and_shows_in_groups() {
        let n = VoucherNumber::from_random(0);
        assert_eq!(n.digits().len(), 13);
        assert!(n.digits().starts_with("14"));
        assert_eq!(VoucherNumber::parse(&n.to_string()), Ok(n));
        assert_eq!(VoucherNumber::parse(&n.digits()), Ok(n));
        assert_eq!(n.to_string().len(), 15);
        assert_eq!(VoucherNumber::parse("4901234567894"), Err(VoucherNumberError::Prefix), "a Japanese product code");
        assert_eq!(VoucherNumber::parse("978-4-10-109205-8"), Err(VoucherNumberError::Prefix), "an ISBN");
        assert_eq!(VoucherNumber::parse("2000000000008"), Err(VoucherNumberError::Prefix), "an in-store code");
        assert_eq!(VoucherNumber::parse("14"), Err(VoucherNumberError::Length));
        assert_eq!(VoucherNumber::parse("1400000000000x"), Err(VoucherNumberError::Length));
    }

    #[test]
    fn a_state_leaves_open_once() {
        use VoucherState::*;
        use VoucherStep::*;
        assert_eq!(Open.transition(Redeem, 9, 10), Ok(Redeemed));
        assert_eq!(Open.transition(Redeem, 10, 10), Err(VoucherRefusal::Expired));
        assert_eq!(Open.transition(Return, 9, 10), Err(VoucherRefusal::NotYetExpired));
        assert_eq!(Open.transition(Return, 10, 10), Ok(Returned));
        assert_eq!(Redeemed.transition(Redeem, 0, 10), Err(VoucherRefusal::Spent));
        assert_eq!(Redeemed.transition(Return, 20, 10), Err(VoucherRefusal::Spent));
        assert_eq!(Returned.transition(Redeem, 0, 10), Err(VoucherRefusal::Expired));
        for s in [Open, Redeemed, Returned] {
            assert_eq!(VoucherState::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn a_ticket_reads_back_and_refuses_what_is_not_one() {
        let t = VoucherTicket {
            number: VoucherNumber::from_random(77),
            municipality: 1,
            points: 1000,
            expires_at: 1_800_000_000,
            signature: vec![7; 64],
        };
        assert_eq!(VoucherTicket::parse(&t.text()), Ok(t.clone()));
        assert!(t.text().len() <= TICKET_MAX);
        assert_eq!(VoucherTicket::parse("https://example.jp/"), Err(TicketError::NotATicket));
        let short = t.text().rsplit_once(':').unwrap().0.to_owned();
        assert_eq!(VoucherTicket::parse(&short), Err(TicketError::Damaged));
        let negative = t.text().replace(":1000:", ":-1000:");
        assert_eq!(VoucherTicket::parse(&negative), Err(TicketError::Damaged));
        assert_eq!(VoucherInput::parse(&t.text()), Ok(VoucherInput::Ticket(t.clone())));
        assert_eq!(VoucherInput::parse(&t.number.to_string()), Ok(VoucherInput::Number(t.number)));
        assert!(VoucherInput::parse("1234").unwrap_err().contains("13 digits"));
    }

    #[cfg(not(target_arch = "wasm32"))]
    proptest::proptest! {
        /// Every number drawn reads back as itself, and is a voucher's, not a product's.
        #[test]
        fn every_drawn_number_reads_back(r in proptest::prelude::any::<u64>()) {
            let n = VoucherNumber::from_random(r);
            proptest::prop_assert_eq!(VoucherNumber::parse(&n.to_string()), Ok(n));
            proptest::prop_assert!((140..200).contains(&(n.get() / 10u64.pow(10))));
        }

        /// One wrong digit, or two neighbours swapped, is caught by the check digit.
        #[test]
        fn a_typo_is_caught(r in proptest::prelude::any::<u64>(), at in 0usize..13, to in 0u8..10, swap in 0usize..12) {
            let digits: Vec<u8> = VoucherNumber::from_random(r).digits().bytes().map(|b| b - b'0').collect();
            let text = |d: &[u8]| d.iter().map(|x| char::from(b'0' + x)).collect::<String>();
            let mut typo = digits.clone();
            typo[at] = to;
            if typo != digits {
                proptest::prop_assert!(VoucherNumber::parse(&text(&typo)).is_err());
            }
            let mut swapped = digits.clone();
            swapped.swap(swap, swap + 1);
            if swapped != digits {
                proptest::prop_assert!(VoucherNumber::parse(&text(&swapped)).is_err());
            }
        }

        /// From any state, at any time, at most one step succeeds; a voucher that left open
        /// never moves again.
        #[test]
        fn no_voucher_is_both_spent_and_given_back(now in 0i64..100, expires in 0i64..100) {
            let open = VoucherState::Open;
            let redeemed = open.transition(VoucherStep::Redeem, now, expires).is_ok();
            let returned = open.transition(VoucherStep::Return, now, expires).is_ok();
            proptest::prop_assert!(redeemed != returned);
            for s in [VoucherState::Redeemed, VoucherState::Returned] {
                for step in [VoucherStep::Redeem, VoucherStep::Return] {
                    proptest::prop_assert!(s.transition(step, now, expires).is_err());
                }
            }
        }
    }
}
