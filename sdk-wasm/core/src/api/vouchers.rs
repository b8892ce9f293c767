//! Point vouchers at the counter: issued with the resident's card (the challenge's kind
//! `voucher`), redeemed by any shop of the same municipality by QR code or typed number, and
//! listed on the resident's my page. See `crate::voucher` for the number and the ticket.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::identity::AuthToken;
use crate::voucher::VoucherState;

api_type! {
    /// `POST /v1/shops/{shop}/vouchers`: issue a voucher of the points the card holder agreed to
    /// (a `voucher` counter challenge naming this municipality and amount).
    pub struct VoucherIssueRequest {
        /// Client-chosen idempotency id.
        pub id: Uuid,
        /// Whose points, as in the challenge (this shop's municipality).
        pub municipality: i64,
        /// The voucher's value, as in the challenge.
        #[cfg_attr(feature = "openapi", schema(value_type = f64))]
        pub amount: Decimal,
        /// The challenge from `…/counter-challenges`.
        pub nonce: String,
        /// The card's signature over it.
        pub token: AuthToken,
    }
}

api_type! {
    /// A voucher as it is printed, and as the terminal that issued it is told (no balance).
    pub struct VoucherIssued {
        /// The 13-digit number, in groups as printed (`1423 4567 89013`).
        pub number: String,
        /// Whose points.
        pub municipality: i64,
        /// The municipality's name.
        pub municipality_name: String,
        /// Its value.
        pub points: i64,
        /// Issue time.
        pub issued_at: DateTime<Utc>,
        /// The end of its validity (midnight in Japan after its last day).
        pub expires_at: DateTime<Utc>,
        /// What its QR code carries (`mykey-voucher:1:…`, signed by the server).
        pub ticket: String,
        /// The issue's transaction (its receipt, without the resident's account).
        pub receipt: crate::api::PartyReceipt,
    }
}

api_type! {
    /// `POST /v1/shops/{shop}/voucher-redemptions`: take a voucher as payment, in full.
    pub struct VoucherRedemptionRequest {
        /// Client-chosen idempotency id.
        pub id: Uuid,
        /// The QR code's text as scanned, or the 13-digit number as typed.
        pub voucher: String,
    }
}

api_type! {
    /// A voucher taken as payment.
    pub struct VoucherRedeemed {
        /// The number, in groups.
        pub number: String,
        /// Whose points.
        pub municipality: i64,
        /// Its value, now the shop's.
        pub points: i64,
        /// The redemption's transaction.
        pub receipt: crate::api::PartyReceipt,
    }
}

api_type! {
    /// A voucher as its resident sees it on my page.
    pub struct VoucherView {
        /// The number, in groups.
        pub number: String,
        /// Whose points.
        pub municipality: i64,
        /// The municipality's name.
        pub municipality_name: String,
        /// Its value.
        pub points: i64,
        /// What became of it.
        pub state: VoucherState,
        /// Issue time.
        pub issued_at: DateTime<Utc>,
        /// The end of its validity.
        pub expires_at: DateTime<Utc>,
        /// The shop that issued it.
        pub issued_at_shop: String,
        /// When it was spent or its points came back.
        pub settled_at: Option<DateTime<Utc>>,
        /// The shop where it was spent.
        pub redeemed_at_shop: Option<String>,
    }
}

api_type! {
    /// `GET /v1/vouchers/key`: the key that signs vouchers' QR codes, for terminals to check a
    /// voucher before they ask the server.
    pub struct VoucherKey {
        /// Always `ES256` (ECDSA over P-256 with SHA-256; signatures are r‖s, 64 bytes).
        pub algorithm: String,
        /// The public key, SubjectPublicKeyInfo DER, base64.
        pub spki: String,
    }
}
