//! RFC 9457 problem details: one stable `type` URI per kind of refusal, shared by the server
//! (which writes them) and the SDK (which turns them into messages).

use serde::{Deserialize, Serialize};

/// Prefix of every problem `type`; the slug after it is stable API.
pub const PROBLEM_TYPE_PREFIX: &str = "urn:mykey:problem:";

macro_rules! problem_kinds {
    ($($variant:ident => ($slug:literal, $status:literal, $title:literal),)*) => {
        /// Every kind of problem the API reports.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ProblemKind { $(#[doc = $title] $variant,)* }

        impl ProblemKind {
            /// All kinds, for documentation and tests.
            pub const ALL: &'static [ProblemKind] = &[$(ProblemKind::$variant,)*];

            /// The stable slug, the last part of the `type` URI.
            pub fn slug(self) -> &'static str {
                match self { $(ProblemKind::$variant => $slug,)* }
            }

            /// The HTTP status the API answers with.
            pub fn status(self) -> u16 {
                match self { $(ProblemKind::$variant => $status,)* }
            }

            /// A short, fixed, human-readable summary.
            pub fn title(self) -> &'static str {
                match self { $(ProblemKind::$variant => $title,)* }
            }

            /// Finds the kind from a `type` URI.
            pub fn from_type_uri(uri: &str) -> Option<Self> {
                match uri.strip_prefix(PROBLEM_TYPE_PREFIX)? {
                    $($slug => Some(ProblemKind::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

problem_kinds! {
    InvalidRequest => ("invalid-request", 400, "The request is malformed"),
    BodyTooLarge => ("body-too-large", 413, "The request body is too large"),
    Unauthenticated => ("unauthenticated", 401, "An API key is required"),
    Forbidden => ("forbidden", 403, "This key may not do that"),
    NotFound => ("not-found", 404, "No such resource"),
    IdempotencyConflict => ("idempotency-conflict", 409, "The id was already used with a different request"),
    HoldNotActive => ("hold-not-active", 409, "The hold is already captured, voided or expired"),
    FractionalPoints => ("fractional-points", 422, "Points are whole numbers"),
    NonPositiveAmount => ("non-positive-amount", 422, "The amount must be greater than zero"),
    AmountTooLarge => ("amount-too-large", 422, "The amount is above the limit"),
    UnknownAccount => ("unknown-account", 422, "The account does not exist"),
    UnknownReference => ("unknown-reference", 422, "A resident, municipality, partner, shop or event named in the request does not exist"),
    CurrencyMismatch => ("currency-mismatch", 422, "Points of one municipality cannot move into an account of another"),
    UnbalancedTransaction => ("unbalanced-transaction", 422, "The postings do not sum to zero in every currency"),
    InsufficientPoints => ("insufficient-points", 422, "Not enough available points"),
    CaptureExceedsHold => ("capture-exceeds-hold", 422, "The capture is larger than the hold"),
    CheckoutNotOpen => ("checkout-not-open", 409, "The checkout session was already confirmed, cancelled or has expired"),
    RefundExceedsCapture => ("refund-exceeds-capture", 422, "The refund is larger than what was captured and not yet refunded"),
    OriginNotAllowed => ("origin-not-allowed", 403, "The page's origin is not registered for this store or partner"),
    LinkNotOpen => ("link-not-open", 409, "The link session was already confirmed, cancelled or has expired"),
    CardRejected => ("card-rejected", 401, "The card's certificate or login signature was not accepted"),
    NonceInvalid => ("nonce-invalid", 401, "The login challenge is unknown, already used or expired; ask for a new one"),
    LoginFailed => ("login-failed", 401, "The MyKey ID or the password is wrong"),
    MykeyIdTaken => ("mykey-id-taken", 409, "That MyKey ID is already in use"),
    CardAlreadyBound => ("card-already-bound", 409, "This card already has a live MyKey ID"),
    CandidatesUsedUp => ("candidates-used-up", 409, "The MyKey ID candidate is final; no more candidates"),
    InvalidMykeyId => ("invalid-mykey-id", 422, "A MyKey ID is 8 half-width upper-case letters and digits"),
    PasswordRules => ("password-rules", 422, "The password breaks the password rules"),
    ConfirmationMismatch => ("confirmation-mismatch", 422, "A value typed twice differs"),
    InvalidEmail => ("invalid-email", 422, "The e-mail address is not valid"),
    CouponInvalid => ("coupon-invalid", 422, "The coupon code has a typo or was never issued"),
    CouponExpired => ("coupon-expired", 422, "The coupon code has expired"),
    CouponUsed => ("coupon-used", 409, "The coupon code was already redeemed by someone else"),
    CouponElsewhere => ("coupon-elsewhere", 422, "The coupon code is another partner's; redeem it on my page or that partner's site"),
    ServiceIdNotLinked => ("service-id-not-linked", 422, "No live MyKey ID has linked that service ID"),
    ServiceIdTaken => ("service-id-taken", 409, "That service ID is already linked to a MyKey ID"),
    MandateNotFound => ("mandate-not-found", 404, "This store holds no mandate with that id"),
    MandateInactive => ("mandate-inactive", 409, "The mandate was revoked or has ended"),
    MandateLimit => ("mandate-limit", 422, "The charge is outside the mandate's terms"),
    SignatureInvalid => ("signature-invalid", 401, "The device's request signature is missing, malformed or does not verify"),
    SignatureExpired => ("signature-expired", 401, "The request signature is outside its time; check the device's clock"),
    SignatureReplayed => ("signature-replayed", 401, "A request with this signature's nonce was already received"),
    DigestMismatch => ("digest-mismatch", 400, "The Content-Digest header does not match the body"),
    DeviceRevoked => ("device-revoked", 401, "The device is revoked or unknown; enrol it with a new pairing code"),
    PairingCodeInvalid => ("pairing-code-invalid", 422, "The pairing code is unknown, used or expired; ask the shop for a new one"),
    CardNotPayer => ("card-not-payer", 403, "A counter refund needs the card of the resident who paid"),
    PaymentRefunded => ("payment-refunded", 409, "The payment was already refunded; a payment is refunded once"),
    VoucherInvalid => ("voucher-invalid", 422, "The voucher is forged or altered, or its number has a typo"),
    VoucherSpent => ("voucher-spent", 409, "The voucher was already used"),
    VoucherExpired => ("voucher-expired", 409, "The voucher has expired; its points go back to the resident"),
    VoucherLimit => ("voucher-limit", 409, "The resident has the most open vouchers one may have"),
    VoucherNotAccepted => ("voucher-not-accepted", 422, "The voucher is for another municipality's points, which this shop does not take"),
    RateLimited => ("rate-limited", 429, "Too many requests; try again later"),
    Internal => ("internal", 500, "The server failed"),
    Unavailable => ("unavailable", 503, "The server cannot answer right now; try again"),
}

impl ProblemKind {
    /// The full `type` URI.
    pub fn type_uri(self) -> String {
        format!("{PROBLEM_TYPE_PREFIX}{}", self.slug())
    }
}

/// An RFC 9457 problem details object (`application/problem+json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Problem {
    /// `urn:mykey:problem:<slug>`.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// Fixed summary of the kind.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// What went wrong with this request, for a developer.
    pub detail: String,
    /// Extension members, e.g. `available` for insufficient points.
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub extensions: serde_json::Map<String, serde_json::Value>,
}

impl Problem {
    /// A problem of `kind` with a request-specific detail.
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Self {
            type_uri: kind.type_uri(),
            title: kind.title().to_owned(),
            status: kind.status(),
            detail: detail.into(),
            extensions: serde_json::Map::new(),
        }
    }

    /// Adds an extension member.
    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.extensions.insert(key.to_owned(), value.into());
        self
    }

    /// The kind, when the type URI is one of ours.
    pub fn kind(&self) -> Option<ProblemKind> {
        ProblemKind::from_type_uri(&self.type_uri)
    }
}

impl From<crate::AmountError> for Problem {
    fn from(e: crate::AmountError) -> Self {
        let kind = match e {
            crate::AmountError::Fractional(_) => ProblemKind::FractionalPoints,
            crate::AmountError::NotPositive(_) | crate::AmountError::Zero => ProblemKind::NonPositiveAmount,
            crate::AmountError::TooLarge(_) => ProblemKind::AmountTooLarge,
        };
        Problem::new(kind, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn slugs_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for k in ProblemKind::ALL {
            assert!(seen.insert(k.slug()), "duplicate slug {}", k.slug());
            assert_eq!(ProblemKind::from_type_uri(&k.type_uri()), Some(*k));
        }
    }

    #[test]
    fn serialises_as_rfc9457_with_extensions() {
        let p = Problem::new(ProblemKind::InsufficientPoints, "resident 7 has 40 points").with("available", 40);
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["type"], "urn:mykey:problem:insufficient-points");
        assert_eq!(v["status"], 422);
        assert_eq!(v["available"], 40);
        let back: Problem = serde_json::from_value(v).unwrap();
        assert_eq!(back.kind(), Some(ProblemKind::InsufficientPoints));
    }
}
