//! Paying at a shop's counter terminal with the resident's card: the terminal asks for a
//! challenge naming the terms, the resident's card signs it (with the PIN), and the terminal
//! sends the payment or hold with that signature. A terminal's key alone moves no points.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::identity::{AuthToken, CardPurpose};
use crate::text::Memo;
use crate::Points;

api_enum! {
    /// What the resident agrees to at the counter.
    pub enum CounterKind {
        /// Spend the points now (`…/counter-payments`).
        Payment,
        /// Set the points aside for the shop to capture later (`…/counter-holds`).
        Hold,
        /// Turn the points into a printed voucher (`…/vouchers`).
        Voucher,
    }
}

impl CounterKind {
    /// Its word in a challenge's terms (its serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            CounterKind::Payment => "payment",
            CounterKind::Hold => "hold",
            CounterKind::Voucher => "voucher",
        }
    }
}

api_type! {
    /// `POST /v1/shops/{shop}/counter-challenges`: the terms the resident's card will sign.
    pub struct CounterChallengeRequest {
        /// A payment now or a hold.
        pub kind: CounterKind,
        /// Whose points.
        pub municipality: i64,
        /// Event points of this programme instead of municipal points.
        #[serde(default)]
        pub event: Option<i64>,
        /// Whole points, greater than zero.
        #[cfg_attr(feature = "openapi", schema(value_type = f64))]
        pub amount: Decimal,
        /// A hold's life in seconds, as the hold will ask (a hold only).
        #[serde(default)]
        pub timeout_seconds: Option<u32>,
        /// A payment's memo, as the payment will carry it (a payment only).
        #[serde(default)]
        pub memo: Option<Memo>,
    }
}

api_type! {
    /// `POST /v1/shops/{shop}/counter-payments`: spend the points the card holder agreed to.
    pub struct CounterPaymentRequest {
        /// Client-chosen idempotency id.
        pub id: Uuid,
        /// Whose points to spend, as in the challenge.
        pub municipality: i64,
        /// Event points, as in the challenge.
        #[serde(default)]
        pub event: Option<i64>,
        /// The amount, as in the challenge.
        #[cfg_attr(feature = "openapi", schema(value_type = f64))]
        pub amount: Decimal,
        /// Free text shown in the history.
        #[serde(default)]
        pub memo: Option<Memo>,
        /// The challenge from `…/counter-challenges`.
        pub nonce: String,
        /// The card's signature over it.
        pub token: AuthToken,
    }
}

api_type! {
    /// `POST /v1/shops/{shop}/counter-holds`: set aside the points the card holder agreed to.
    pub struct CounterHoldRequest {
        /// Client-chosen idempotency id; it is also the hold's id.
        pub id: Uuid,
        /// Whose points to hold, as in the challenge.
        pub municipality: i64,
        /// Event points, as in the challenge.
        #[serde(default)]
        pub event: Option<i64>,
        /// The amount, as in the challenge.
        #[cfg_attr(feature = "openapi", schema(value_type = f64))]
        pub amount: Decimal,
        /// Seconds until the hold expires and releases the points (1 to 604800).
        pub timeout_seconds: u32,
        /// The challenge from `…/counter-challenges`.
        pub nonce: String,
        /// The card's signature over it.
        pub token: AuthToken,
    }
}

/// What the resident agrees to at a counter: everything the card's signature covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CounterTerms<'a> {
    /// A payment or a hold.
    pub kind: CounterKind,
    /// The shop.
    pub shop: i64,
    /// Whose points.
    pub municipality: i64,
    /// Event points of this programme.
    pub event: Option<i64>,
    /// How many.
    pub amount: Points,
    /// A hold's life in seconds (holds only).
    pub timeout_seconds: Option<u32>,
    /// A payment's memo (payments only).
    pub memo: Option<&'a str>,
}

impl CounterTerms<'_> {
    /// The text a counter challenge names between its purpose and its random part:
    /// `<kind>,shop=<shop>,municipality=<municipality>[,event=<event>],amount=<points>`, then
    /// `,timeout=<seconds>` for a hold and `,memo=<SHA-256 of the memo, hex>` for a payment
    /// with one (the memo itself may hold any character; its hash keeps the text plain).
    pub fn text(&self) -> String {
        use sha2::Digest as _;
        let event = self.event.map(|e| format!(",event={e}")).unwrap_or_default();
        let timeout = self.timeout_seconds.map(|t| format!(",timeout={t}")).unwrap_or_default();
        let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let memo = self.memo.map(|m| format!(",memo={}", hex(&sha2::Sha256::digest(m.as_bytes())))).unwrap_or_default();
        format!(
            "{},shop={},municipality={}{event},amount={}{timeout}{memo}",
            self.kind.as_str(),
            self.shop,
            self.municipality,
            self.amount.get()
        )
    }
}

api_type! {
    /// `POST /v1/shops/{shop}/counter-balances`: what the terminal's screen may show once the
    /// resident's card signed a balance challenge for this shop.
    pub struct CounterBalances {
        /// The shop's municipality: whose points a payment here spends.
        pub municipality: i64,
        /// The points usable at this shop: its municipality's and its event programmes'.
        pub usable: Vec<crate::api::UsablePoints>,
    }
}

api_type! {
    /// `POST /v1/shops/{shop}/refund-challenges`: the refund the card of the resident who paid
    /// will sign.
    pub struct CounterRefundChallengeRequest {
        /// The payment made at this shop (its receipt's `id`).
        pub payment: Uuid,
        /// Whole points to give back, at most what was paid.
        #[cfg_attr(feature = "openapi", schema(value_type = f64))]
        pub amount: Decimal,
    }
}

api_type! {
    /// `POST /v1/shops/{shop}/counter-refunds`: give back points of a payment made at this
    /// shop, with the card of the resident who paid. A payment is refunded once, in full or in
    /// part; the refund's id is derived from the payment's, so a retry is answered the same.
    pub struct CounterRefundRequest {
        /// The payment, as in the challenge.
        pub payment: Uuid,
        /// The amount, as in the challenge.
        #[cfg_attr(feature = "openapi", schema(value_type = f64))]
        pub amount: Decimal,
        /// The challenge from `…/refund-challenges`.
        pub nonce: String,
        /// The card's signature over it.
        pub token: AuthToken,
    }
}

/// The terms a counter refund's challenge names: `refund,shop=<shop>,payment=<payment>,amount=<points>`
/// (signed for [`CardPurpose::Payment`], like the payment it takes back).
pub fn refund_terms(shop: i64, payment: Uuid, amount: Points) -> String {
    format!("refund,shop={shop},payment={payment},amount={}", amount.get())
}

api_type! {
    /// One line of a shop's daily close: the transactions of one kind, of one municipality's
    /// points, sent by one device.
    pub struct DailyCloseLine {
        /// Whose points.
        pub municipality: i64,
        /// The counter device that sent them; none for what no device sent (an online store's
        /// checkout, a hold captured with the store's key).
        pub device: Option<Uuid>,
        /// What staff call that device.
        pub device_name: Option<String>,
        /// Payment, refund, ….
        pub kind: crate::api::TransactionKind,
        /// How many transactions.
        pub count: i64,
        /// Points into the shop's account: a payment's positive, a refund's negative.
        pub points: i64,
    }
}

api_type! {
    /// `GET /v1/shops/{shop}/daily-close`: a shop's day (in Japan), from the ledger's own
    /// postings to its account, by municipality, device and kind.
    pub struct DailyClose {
        /// The shop.
        pub shop: i64,
        /// The day, in Japan.
        #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
        pub date: chrono::NaiveDate,
        /// The day's first moment.
        pub from: chrono::DateTime<chrono::Utc>,
        /// The next day's first moment.
        pub to: chrono::DateTime<chrono::Utc>,
        /// The lines, by municipality, device and kind.
        pub lines: Vec<DailyCloseLine>,
        /// The day's points into the shop's account, refunds taken off.
        pub net_points: i64,
    }
}

/// The terms a facility's patron link or look-up challenge names: `facility,shop=<shop>`.
pub fn facility_terms(shop: i64) -> String {
    format!("facility,shop={shop}")
}

/// The terms a balance challenge names: `balance,shop=<shop>`.
pub fn balance_terms(shop: i64) -> String {
    format!("balance,shop={shop}")
}

/// Whether `nonce` is a payment challenge for exactly `terms`: `payment:<terms>:<random>`.
pub fn challenge_names(nonce: &str, terms: &str) -> bool {
    challenge_of(CardPurpose::Payment, nonce, terms)
}

/// Whether `nonce` is a challenge for `purpose` naming exactly `terms`:
/// `<purpose>:<terms>:<random>`.
pub fn challenge_of(purpose: CardPurpose, nonce: &str, terms: &str) -> bool {
    nonce
        .strip_prefix(purpose.as_str())
        .and_then(|r| r.strip_prefix(':'))
        .and_then(|r| r.strip_prefix(terms))
        .and_then(|r| r.strip_prefix(':'))
        .is_some_and(|random| !random.is_empty() && !random.contains(':'))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn pts(v: i64) -> Points {
        Points::new(v).unwrap()
    }

    fn counter_terms(kind: CounterKind, shop: i64, municipality: i64, event: Option<i64>, amount: Points) -> String {
        CounterTerms { kind, shop, municipality, event, amount, timeout_seconds: None, memo: None }.text()
    }

    #[test]
    fn a_holds_life_and_a_payments_memo_are_part_of_the_terms() {
        let base = CounterTerms {
            kind: CounterKind::Hold,
            shop: 12,
            municipality: 1,
            event: None,
            amount: pts(500),
            timeout_seconds: Some(600),
            memo: None,
        };
        assert_eq!(base.text(), "hold,shop=12,municipality=1,amount=500,timeout=600");
        let longer = CounterTerms { timeout_seconds: Some(604_800), ..base };
        assert!(!challenge_names(&format!("payment:{}:AAAA", base.text()), &longer.text()));
        let paid =
            CounterTerms { kind: CounterKind::Payment, timeout_seconds: None, memo: Some("野菜: 3,200円"), ..base };
        let other = CounterTerms { memo: Some("野菜: 3,300円"), ..paid };
        assert!(paid.text().starts_with("payment,shop=12,municipality=1,amount=500,memo="), "{}", paid.text());
        assert!(paid.text().is_ascii() && !paid.text()[8..].contains(':'));
        assert!(!challenge_names(&format!("payment:{}:AAAA", paid.text()), &other.text()));
        let none = CounterTerms { memo: None, ..paid };
        assert!(!challenge_names(&format!("payment:{}:AAAA", paid.text()), &none.text()));
    }

    #[test]
    fn a_refund_challenge_names_its_shop_payment_and_amount_and_is_no_payment() {
        let payment = Uuid::from_u128(7);
        let terms = refund_terms(12, payment, pts(300));
        assert_eq!(terms, format!("refund,shop=12,payment={payment},amount=300"));
        let nonce = format!("payment:{terms}:q83vEjRWeJA=");
        assert!(challenge_names(&nonce, &terms));
        for other in [
            refund_terms(12, payment, pts(301)),
            refund_terms(13, payment, pts(300)),
            refund_terms(12, Uuid::from_u128(8), pts(300)),
        ] {
            assert!(!challenge_names(&nonce, &other), "{other}");
        }
        // Nothing a payment's challenge names reads as a refund's, or the other way round.
        assert!(!challenge_names(&nonce, &counter_terms(CounterKind::Payment, 12, 1, None, pts(300))));
    }

    #[test]
    fn a_challenge_names_exactly_its_terms() {
        let terms = counter_terms(CounterKind::Payment, 12, 1, None, pts(1200));
        assert_eq!(terms, "payment,shop=12,municipality=1,amount=1200");
        let nonce = format!("payment:{terms}:q83vEjRWeJA=");
        assert!(challenge_names(&nonce, &terms));
        // Another amount, shop, kind or event is not the same challenge, even as a prefix.
        for other in [
            counter_terms(CounterKind::Payment, 12, 1, None, pts(120)),
            counter_terms(CounterKind::Payment, 1, 1, None, pts(1200)),
            counter_terms(CounterKind::Hold, 12, 1, None, pts(1200)),
            counter_terms(CounterKind::Payment, 12, 1, Some(3), pts(1200)),
        ] {
            assert!(!challenge_names(&nonce, &other), "{other}");
        }
        assert!(!challenge_names(&format!("login:{terms}:q83v"), &terms), "another purpose");
        let balance = balance_terms(12);
        assert!(challenge_of(CardPurpose::CounterBalance, &format!("counter_balance:{balance}:q83v"), &balance));
        assert!(!challenge_of(
            CardPurpose::CounterBalance,
            &format!("counter_balance:{}:q83v", balance_terms(1)),
            &balance
        ));
        assert!(!challenge_names(&format!("counter_balance:{balance}:q83v"), &balance), "not a payment");
        assert!(!challenge_names(&format!("payment:{terms}:"), &terms), "no random part");
        assert!(!challenge_names(&format!("payment:{terms}0:q83v"), &terms), "amount=12000");
        assert_eq!(
            counter_terms(CounterKind::Hold, 12, 1, Some(3), pts(5)),
            "hold,shop=12,municipality=1,event=3,amount=5"
        );
    }

    #[cfg(not(target_arch = "wasm32"))]
    proptest::proptest! {
        /// Two different sets of terms never accept each other's challenges.
        #[test]
        fn terms_are_never_confused(a in (0..2u8, 1..1000i64, 1..50i64, proptest::option::of(1..50i64), 1..100_000i64, proptest::option::of(1..1000u32), proptest::option::of("[a-z:,=]{0,6}")),
                                    b in (0..2u8, 1..1000i64, 1..50i64, proptest::option::of(1..50i64), 1..100_000i64, proptest::option::of(1..1000u32), proptest::option::of("[a-z:,=]{0,6}"))) {
            let t = |(k, s, m, e, p, timeout, memo): &(u8, i64, i64, Option<i64>, i64, Option<u32>, Option<String>)| {
                let kind = if *k == 0 { CounterKind::Payment } else { CounterKind::Hold };
                CounterTerms { kind, shop: *s, municipality: *m, event: *e, amount: pts(*p), timeout_seconds: *timeout, memo: memo.as_deref() }.text()
            };
            let (a, b) = (&a, &b);
            let (ta, tb) = (t(a), t(b));
            let nonce = format!("payment:{ta}:AAAA");
            proptest::prop_assert_eq!(challenge_names(&nonce, &tb), a == b);
        }
    }
}
