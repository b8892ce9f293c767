//! What moves points: payment, grant, conversion, assignment, multi-leg and hold requests,
//! and their receipts.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::text::Memo;
use crate::Currency;

api_enum! {
    /// Why a transaction happened.
    pub enum TransactionKind {
        /// Points spent at a shop, facility or store.
        Payment,
        /// Administrative or event points granted by a municipality.
        Grant,
        /// Partner points converted into reserved points.
        Conversion,
        /// Reserved points assigned to a municipality, by the resident or after
        /// [`crate::rules::RESERVED_WAIT_DAYS`].
        Assignment,
        /// Expired points moved to the municipality's breakage account.
        Expiry,
        /// A multi-leg transaction entered by an operator.
        Adjustment,
        /// Points a store gave back from a checkout's payment.
        Refund,
        /// Points turned into a printed voucher at a counter.
        VoucherIssue,
        /// A voucher taken as payment by a shop.
        VoucherRedemption,
        /// An unspent voucher's points back to its resident at its expiry.
        VoucherReturn,
    }
}

impl TransactionKind {
    /// The name used in SQL and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            TransactionKind::Payment => "payment",
            TransactionKind::Grant => "grant",
            TransactionKind::Conversion => "conversion",
            TransactionKind::Assignment => "assignment",
            TransactionKind::Expiry => "expiry",
            TransactionKind::Adjustment => "adjustment",
            TransactionKind::Refund => "refund",
            TransactionKind::VoucherIssue => "voucher_issue",
            TransactionKind::VoucherRedemption => "voucher_redemption",
            TransactionKind::VoucherReturn => "voucher_return",
        }
    }

    /// Parses the SQL and JSON name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            TransactionKind::Payment,
            TransactionKind::Grant,
            TransactionKind::Conversion,
            TransactionKind::Assignment,
            TransactionKind::Expiry,
            TransactionKind::Adjustment,
            TransactionKind::Refund,
            TransactionKind::VoucherIssue,
            TransactionKind::VoucherRedemption,
            TransactionKind::VoucherReturn,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

api_type! {
    /// Spend a resident's points at a shop (`POST /v1/payments`).
    pub struct PaymentRequest {
        /// Client-chosen idempotency id.
        pub id: Uuid,
        /// The paying resident.
        pub resident: i64,
        /// Whose points to spend.
        pub municipality: i64,
        /// Spend event points of this programme instead of municipal points.
        #[serde(default)]
        pub event: Option<i64>,
        /// The shop, facility or store receiving the points.
        pub shop: i64,
        /// Whole points, greater than zero.
        #[cfg_attr(feature = "openapi", schema(value_type = f64))]
        pub amount: Decimal,
        /// Free text shown in the history.
        #[serde(default)]
        pub memo: Option<Memo>,
    }
}

api_type! {
    /// A municipality grants administrative or event points (`POST /v1/grants`).
    pub struct GrantRequest {
        /// Client-chosen idempotency id.
        pub id: Uuid,
        /// The receiving resident.
        pub resident: i64,
        /// The granting municipality.
        pub municipality: i64,
        /// Grant event points of this programme instead of municipal points.
        #[serde(default)]
        pub event: Option<i64>,
        /// Whole points, greater than zero.
        #[cfg_attr(feature = "openapi", schema(value_type = f64))]
        pub amount: Decimal,
        /// When these points expire; defaults to the municipality's or event's rule.
        #[serde(default)]
        pub expires_at: Option<DateTime<Utc>>,
        /// Free text shown in the history (e.g. "clean-up volunteering").
        #[serde(default)]
        pub memo: Option<Memo>,
    }
}

api_type! {
    /// A partner converts its member's points into reserved points (`POST /v1/conversions`).
    pub struct ConversionRequest {
        /// Client-chosen idempotency id.
        pub id: Uuid,
        /// The converting partner.
        pub partner: i64,
        /// The receiving resident.
        pub resident: i64,
        /// Amount in the partner's own points or miles.
        #[cfg_attr(feature = "openapi", schema(value_type = f64))]
        pub partner_points: Decimal,
        /// Municipal points per partner point; the product must be whole.
        #[cfg_attr(feature = "openapi", schema(value_type = f64))]
        pub rate: Decimal,
        /// Free text shown in the history.
        #[serde(default)]
        pub memo: Option<Memo>,
    }
}

api_type! {
    /// A resident assigns reserved points to a municipality (`POST /v1/assignments`).
    pub struct AssignmentRequest {
        /// Client-chosen idempotency id.
        pub id: Uuid,
        /// The resident.
        pub resident: i64,
        /// The municipality taking part that receives the points.
        pub municipality: i64,
        /// Whole points, greater than zero.
        #[cfg_attr(feature = "openapi", schema(value_type = f64))]
        pub amount: Decimal,
    }
}

api_type! {
    /// One leg of an operator's multi-leg transaction.
    pub struct PostingRequest {
        /// The account.
        pub account: i64,
        /// Signed whole points: negative debits, positive credits.
        #[cfg_attr(feature = "openapi", schema(value_type = f64))]
        pub amount: Decimal,
    }
}

api_type! {
    /// An operator's multi-leg transaction (`POST /v1/transactions`); all legs or none.
    pub struct TransactionRequest {
        /// Client-chosen idempotency id.
        pub id: Uuid,
        /// The legs; they must sum to zero in every currency.
        pub postings: Vec<PostingRequest>,
        /// Expiry for points credited to resident accounts; defaults per account.
        #[serde(default)]
        pub expires_at: Option<DateTime<Utc>>,
        /// Free text shown in the history.
        #[serde(default)]
        pub memo: Option<Memo>,
    }
}

api_type! {
    /// Authorise points for a later capture (`POST /v1/holds`).
    pub struct HoldRequest {
        /// Client-chosen idempotency id; it is also the hold's id.
        pub id: Uuid,
        /// The paying resident.
        pub resident: i64,
        /// Whose points to hold.
        pub municipality: i64,
        /// Hold event points of this programme instead of municipal points.
        #[serde(default)]
        pub event: Option<i64>,
        /// The shop that may capture.
        pub shop: i64,
        /// Whole points, greater than zero.
        #[cfg_attr(feature = "openapi", schema(value_type = f64))]
        pub amount: Decimal,
        /// Seconds until the hold expires and releases the points (1 to 604800).
        pub timeout_seconds: u32,
    }
}

api_type! {
    /// Capture all or part of a hold (`POST /v1/holds/{hold}/capture`).
    pub struct CaptureRequest {
        /// Client-chosen idempotency id.
        pub id: Uuid,
        /// Points to capture; the whole hold when absent.
        #[serde(default)]
        #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
        pub amount: Option<Decimal>,
    }
}

api_type! {
    /// Release a hold without capturing (`POST /v1/holds/{hold}/void`).
    pub struct VoidRequest {
        /// Client-chosen idempotency id.
        pub id: Uuid,
    }
}

api_type! {
    /// One leg of a committed transaction.
    pub struct Posting {
        /// The account.
        pub account: i64,
        /// Its currency.
        pub currency: Currency,
        /// Signed points.
        pub amount: i64,
        /// The account's balance right after this leg.
        pub balance_after: i64,
    }
}

api_type! {
    /// A committed transaction: the answer to every write that moves points.
    pub struct TransactionReceipt {
        /// The client's id.
        pub id: Uuid,
        /// Position in the ledger's total order.
        pub seq: i64,
        /// Why it happened.
        pub kind: TransactionKind,
        /// Commit time.
        pub created_at: DateTime<Utc>,
        /// Free text.
        pub memo: Option<String>,
        /// The legs, summing to zero per currency.
        pub postings: Vec<Posting>,
        /// Position of this transaction's leaf in the tamper-evident log.
        pub leaf_index: u64,
        /// The leaf's hash, base64 (`SHA-256(0x00 || leaf)`); check it against a checkpoint
        /// with an inclusion proof from `/v1/log/inclusion`.
        pub leaf_hash: String,
    }
}

api_enum! {
    /// Where a hold stands. Each hold leaves `active` at most once.
    pub enum HoldState {
        /// Points are held.
        Active,
        /// Captured (in full or part); the rest released.
        Captured,
        /// Released by the shop.
        Voided,
        /// Released at its timeout.
        Expired,
    }
}

impl HoldState {
    /// The name used in SQL and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            HoldState::Active => "active",
            HoldState::Captured => "captured",
            HoldState::Voided => "voided",
            HoldState::Expired => "expired",
        }
    }

    /// Parses the SQL and JSON name.
    pub fn parse(s: &str) -> Option<Self> {
        [HoldState::Active, HoldState::Captured, HoldState::Voided, HoldState::Expired]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

api_type! {
    /// A hold and where it stands.
    pub struct HoldReceipt {
        /// The hold's id (the id of the request that created it).
        pub hold: Uuid,
        /// The resident account the points are held in.
        pub account: i64,
        /// The shop's receivable account.
        pub shop_account: i64,
        /// Points held.
        pub amount: i64,
        /// Current state.
        pub state: HoldState,
        /// When an active hold releases by itself.
        pub expires_at: DateTime<Utc>,
        /// The capture transaction, once captured.
        pub capture: Option<TransactionReceipt>,
    }
}

api_type! {
    /// What a store, partner or terminal is told of a transaction it caused: which one, how
    /// many points moved and where it is in the log; never a resident's account or balance.
    pub struct PartyReceipt {
        /// The request's id.
        pub id: Uuid,
        /// Position in the ledger's total order.
        pub seq: i64,
        /// Why it happened.
        pub kind: TransactionKind,
        /// Commit time.
        pub created_at: DateTime<Utc>,
        /// Free text.
        pub memo: Option<String>,
        /// Points moved (the credited legs' sum).
        pub points: i64,
        /// Position of this transaction's leaf in the tamper-evident log.
        pub leaf_index: u64,
        /// The leaf's hash, base64 (`SHA-256(0x00 || leaf)`); check it against a checkpoint
        /// with an inclusion proof from `/v1/log/inclusion`.
        pub leaf_hash: String,
    }
}

impl From<TransactionReceipt> for PartyReceipt {
    fn from(r: TransactionReceipt) -> Self {
        PartyReceipt {
            id: r.id,
            seq: r.seq,
            kind: r.kind,
            created_at: r.created_at,
            memo: r.memo,
            points: r.postings.iter().map(|p| p.amount).filter(|a| *a > 0).sum(),
            leaf_index: r.leaf_index,
            leaf_hash: r.leaf_hash,
        }
    }
}

api_type! {
    /// A hold as the shop that may capture it sees it: no resident's account or balance.
    pub struct PartyHold {
        /// The hold's id (the id of the request that created it).
        pub hold: Uuid,
        /// Points held.
        pub amount: i64,
        /// Current state.
        pub state: HoldState,
        /// When an active hold releases by itself.
        pub expires_at: DateTime<Utc>,
        /// The capture transaction, once captured.
        pub capture: Option<PartyReceipt>,
    }
}

impl From<HoldReceipt> for PartyHold {
    fn from(h: HoldReceipt) -> Self {
        PartyHold {
            hold: h.hold,
            amount: h.amount,
            state: h.state,
            expires_at: h.expires_at,
            capture: h.capture.map(PartyReceipt::from),
        }
    }
}
