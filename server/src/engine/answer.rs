//! The engine's answer to a request, typed for the services: a [`Done`] with its receipt, or
//! an [`EngineError`]. A `Done` keeps the JSON first given, which the journal stores and the
//! HTTP edge sends, so a replay answers byte for byte the same.

use mykey_core::api::{HoldReceipt, TransactionReceipt};
use mykey_core::{Problem, ProblemKind};
use serde::Serialize;
use uuid::Uuid;

use crate::ledger::Refusal;

/// The engine's answer to a request.
pub type Executed = Result<Done, EngineError>;

/// What a request did to the ledger.
#[derive(Clone, Debug, PartialEq)]
pub enum Receipt {
    /// Points moved.
    Transaction(TransactionReceipt),
    /// A hold was placed, captured or released.
    Hold(HoldReceipt),
}

/// Which receipt a request answers with (known before it is sent, to read a stored answer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Shape {
    Transaction,
    Hold,
}

impl Shape {
    /// Reads a stored answer back as the receipt it was.
    pub(super) fn read(self, body: &str) -> serde_json::Result<Receipt> {
        Ok(match self {
            Shape::Transaction => Receipt::Transaction(serde_json::from_str(body)?),
            Shape::Hold => Receipt::Hold(serde_json::from_str(body)?),
        })
    }
}

/// A request the ledger applied, now or before (a replay).
#[derive(Clone, Debug, PartialEq)]
pub struct Done {
    /// What it did.
    pub receipt: Receipt,
    /// The HTTP status first given.
    pub status: u16,
    /// The JSON first given.
    pub body: String,
}

impl Done {
    /// A fresh answer, rendered once for the journal and the caller.
    pub(super) fn new(status: u16, receipt: Receipt) -> Done {
        fn json<T: Serialize>(v: &T) -> String {
            serde_json::to_string(v).expect("receipts serialise")
        }
        let body = match &receipt {
            Receipt::Transaction(t) => json(t),
            Receipt::Hold(h) => json(h),
        };
        Done { receipt, status, body }
    }

    /// The transaction, for a request that moves points.
    pub fn transaction(&self) -> Option<&TransactionReceipt> {
        match &self.receipt {
            Receipt::Transaction(t) => Some(t),
            Receipt::Hold(_) => None,
        }
    }

    /// The hold, for a request on a hold.
    pub fn hold(&self) -> Option<&HoldReceipt> {
        match &self.receipt {
            Receipt::Hold(h) => Some(h),
            Receipt::Transaction(_) => None,
        }
    }
}

/// Why a request was not applied.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum EngineError {
    /// The ledger refused it; nothing changed, and the same id may be sent again.
    #[error("{0}")]
    Refused(Refusal),
    /// The id was used before with another request or by another caller.
    #[error("id {0} was already used with a different request")]
    Conflict(Uuid),
    /// No answer could be given (the writer stopped, the journal or the database failed, the
    /// disk is full): whether it was applied is learnt by sending the same id again.
    #[error("{}", .0.detail)]
    Unanswered(Problem),
}

impl EngineError {
    /// Whether sending the same id again may succeed without changing anything else.
    pub fn is_transient(&self) -> bool {
        matches!(self, EngineError::Unanswered(_))
    }

    /// The problem a store, partner or terminal is answered with (nothing of a resident's
    /// points).
    pub fn party_problem(self) -> Problem {
        match self {
            EngineError::Refused(r) => r.party_problem(),
            e => e.into(),
        }
    }
}

impl From<Refusal> for EngineError {
    fn from(r: Refusal) -> Self {
        EngineError::Refused(r)
    }
}

impl From<EngineError> for Problem {
    fn from(e: EngineError) -> Problem {
        match e {
            EngineError::Refused(r) => r.problem(),
            EngineError::Conflict(id) => Problem::new(
                ProblemKind::IdempotencyConflict,
                format!("id {id} was already used with a different request; use a new id for a new request"),
            ),
            EngineError::Unanswered(p) => p,
        }
    }
}
