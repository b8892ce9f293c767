//! What the writer is asked to do: a client's idempotent request, or a change that is not
//! one; and the answer, exactly as first given.

use mykey_core::api::{
    AssignmentRequest, CaptureRequest, ConversionRequest, GrantRequest, HoldRequest, JobsReport, PaymentRequest,
    ResidentCreated, TransactionRequest, VoidRequest,
};
use mykey_core::{Problem, ProblemKind};
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::answer::{Done, Receipt, Shape};
use crate::ledger::{Changes, Ledger, RefundPosting, Refusal, VoucherIssue, VoucherRedemption};
use crate::time::Micros;

/// A write that moves points, identified by its client id.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// `POST /v1/payments`.
    Payment(PaymentRequest),
    /// `POST /v1/grants`.
    Grant(GrantRequest),
    /// `POST /v1/conversions`.
    Conversion(ConversionRequest),
    /// `POST /v1/assignments`.
    Assignment(AssignmentRequest),
    /// `POST /v1/transactions`.
    Transaction(TransactionRequest),
    /// `POST /v1/holds`.
    Hold(HoldRequest),
    /// `POST /v1/holds/{hold}/capture`.
    Capture {
        /// The hold.
        hold: Uuid,
        /// The body.
        body: CaptureRequest,
    },
    /// `POST /v1/holds/{hold}/void`.
    Void {
        /// The hold.
        hold: Uuid,
        /// The body.
        body: VoidRequest,
    },
    /// A checkout's refund (`POST /v1/checkout/sessions/{id}/refunds`) or a counter payment's
    /// (`POST /v1/shops/{shop}/counter-refunds`).
    Refund(RefundPosting),
    /// `POST /v1/shops/{shop}/vouchers`.
    VoucherIssue(VoucherIssue),
    /// `POST /v1/shops/{shop}/voucher-redemptions`.
    VoucherRedemption(VoucherRedemption),
}

impl Request {
    /// The client's idempotency id.
    pub fn id(&self) -> Uuid {
        match self {
            Request::Payment(r) => r.id,
            Request::Grant(r) => r.id,
            Request::Conversion(r) => r.id,
            Request::Assignment(r) => r.id,
            Request::Transaction(r) => r.id,
            Request::Hold(r) => r.id,
            Request::Capture { body, .. } => body.id,
            Request::Void { body, .. } => body.id,
            Request::Refund(r) => r.id,
            Request::VoucherIssue(r) => r.id,
            Request::VoucherRedemption(r) => r.id,
        }
    }

    /// SHA-256 over who asked and exactly what: the same id with another body, or from
    /// another caller, is a conflict.
    pub fn fingerprint(&self, principal: &str) -> String {
        let mut h = Sha256::new();
        h.update(principal.as_bytes());
        h.update([0]);
        h.update(serde_json::to_vec(self).expect("requests serialise"));
        hex::encode(h.finalize())
    }

    /// Which receipt this request answers with.
    pub(super) fn shape(&self) -> Shape {
        match self {
            Request::Hold(_) | Request::Capture { .. } | Request::Void { .. } => Shape::Hold,
            Request::Payment(_)
            | Request::Grant(_)
            | Request::Conversion(_)
            | Request::Assignment(_)
            | Request::Transaction(_)
            | Request::Refund(_)
            | Request::VoucherIssue(_)
            | Request::VoucherRedemption(_) => Shape::Transaction,
        }
    }

    pub(super) fn apply(&self, l: &mut Ledger, ch: &mut Changes, now: Micros) -> Result<Done, Refusal> {
        use Receipt::{Hold, Transaction};
        let (status, receipt) = match self {
            Request::Payment(r) => (201, Transaction(l.payment(ch, r, now)?)),
            Request::Grant(r) => (201, Transaction(l.grant(ch, r, now)?)),
            Request::Conversion(r) => (201, Transaction(l.conversion(ch, r, now)?)),
            Request::Assignment(r) => (201, Transaction(l.assignment(ch, r, now)?)),
            Request::Transaction(r) => (201, Transaction(l.transaction(ch, r, now)?)),
            Request::Hold(r) => (201, Hold(l.hold(ch, r, now)?)),
            Request::Capture { hold, body } => (200, Hold(l.capture(ch, *hold, body.id, body.amount, now)?)),
            Request::Void { hold, .. } => (200, Hold(l.void(ch, *hold, now)?)),
            Request::Refund(r) => (201, Transaction(l.refund(ch, r, now)?)),
            Request::VoucherIssue(r) => (201, Transaction(l.issue_voucher(ch, r, now)?)),
            Request::VoucherRedemption(r) => (201, Transaction(l.redeem_voucher(ch, r, now)?)),
        };
        Ok(Done::new(status, receipt))
    }
}

/// The id of a request the server makes on a caller's behalf (a checkout's capture, void or
/// refund, a coupon's conversion, a partner's linked conversion): derived from `parts`, so a
/// retry finds its first answer, and of UUID version 8, which no client may send
/// ([`check_client_id`]), so no caller can take it first and block the real request.
pub fn derived_id(parts: &[&[u8]]) -> Uuid {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    uuid::Builder::from_custom_bytes(h.finalize()[..16].try_into().expect("16 bytes")).into_uuid()
}

/// Refuses a client's request id of the form kept for [`derived_id`].
pub fn check_client_id(id: Uuid) -> Result<(), Problem> {
    if id.get_version_num() == 8 {
        return Err(Problem::new(
            ProblemKind::InvalidRequest,
            "request ids of UUID version 8 are kept for ids the server derives; send a random (version 4) or \
             time-ordered (version 7) UUID",
        )
        .with("field", "id"));
    }
    Ok(())
}

/// A change that is not a client's idempotent request: set-up (municipalities, partners,
/// shops, events, residents; the CLI, the demo and operators), the scheduled jobs, and MyKey ID
/// usage events for the log.
#[derive(Clone, Debug)]
pub enum Change {
    /// Add a municipality.
    Municipality {
        /// Id.
        id: i64,
        /// JIS prefecture code.
        prefecture_code: String,
        /// Prefecture.
        prefecture: String,
        /// Name.
        name: String,
        /// `prefecture` or `municipality`.
        kind: String,
    },
    /// Add a partner.
    Partner {
        /// Japanese name.
        name: String,
        /// English name.
        name_en: String,
        /// Its points.
        point_kind: String,
        /// Conversion method.
        exchange_method: String,
    },
    /// Add a shop.
    Shop {
        /// Name.
        name: String,
        /// Whose points it accepts.
        municipality: i64,
    },
    /// Add an event programme.
    Event {
        /// Organiser.
        municipality: i64,
        /// Name.
        name: String,
        /// When its points expire.
        expires_at: Micros,
    },
    /// Add residents.
    Residents {
        /// Home municipality.
        home: i64,
        /// How many (bounded by [`MAX_BATCH`]).
        count: usize,
    },
    /// Append MyKey ID usage events to the log (bounded by [`MAX_BATCH`]).
    LogUsage {
        /// The events, in the order they happened.
        events: Vec<crate::ledger::leaf::UsageEvent>,
    },
    /// Run the scheduled jobs as of `now`.
    Jobs {
        /// The clock the jobs use (tests move it forward).
        now: Micros,
    },
}

/// What a set-up operation returned.
#[derive(Clone, Debug)]
pub enum ChangeResult {
    /// The new entity's id.
    Id(i64),
    /// New residents.
    Residents(Vec<ResidentCreated>),
    /// The jobs' report.
    Jobs(JobsReport),
    /// Leaf indexes of logged events.
    Leaves(Vec<u64>),
}
