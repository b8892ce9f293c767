//! What a store, partner or terminal is told of what it caused: the engine's answers with no
//! resident's account, balance or available points in them. Receipts become [`PartyReceipt`]s,
//! holds [`PartyHold`]s, and a refusal is told without the resident's numbers
//! ([`EngineError::party_problem`]). Done on the way out from the typed answer, the same way
//! for a first answer and a replay, so a retry still answers byte for byte the same.

use axum::response::{IntoResponse, Response};
use mykey_core::api::{PartyHold, PartyReceipt};
use mykey_core::{Problem, ProblemKind};
use serde::Serialize;

use super::error::{raw, ApiError};
use crate::engine::{Done, EngineError};

/// A transaction answer as a store, partner or terminal sees it.
pub(super) fn receipt(a: Result<Done, EngineError>) -> Result<Response, ApiError> {
    let done = a.map_err(|e| ApiError(e.party_problem()))?;
    let t = done.transaction().cloned().ok_or_else(|| mismatch(&done))?;
    Ok(json(done.status, &PartyReceipt::from(t)))
}

/// A hold answer as the shop sees it.
pub(super) fn hold(a: Result<Done, EngineError>) -> Result<Response, ApiError> {
    let done = a.map_err(|e| ApiError(e.party_problem()))?;
    let h = done.hold().cloned().ok_or_else(|| mismatch(&done))?;
    Ok(json(done.status, &PartyHold::from(h)))
}

fn json<T: Serialize>(status: u16, v: &T) -> Response {
    raw(status, serde_json::to_string(v).expect("answers serialise")).into_response()
}

/// A request answered with the other kind of receipt: a server bug, never passed on.
fn mismatch(done: &Done) -> ApiError {
    tracing::error!(receipt = ?done.receipt, "an engine answer is not the receipt its route gives");
    ApiError(Problem::new(ProblemKind::Internal, "the server failed; send the request again with the same id"))
}
