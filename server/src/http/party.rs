//! What a store, partner or terminal is told of what it caused: the engine's answers with no
//! resident's account, balance or available points in them. Receipts become [`PartyReceipt`]s,
//! holds [`PartyHold`]s, and a problem loses the `available` and `account` members (and an
//! `insufficient-points` detail its numbers). Done on the way out, the same way for a first
//! answer and a replay, so a retry still answers byte for byte the same.

use mykey_core::api::{HoldReceipt, PartyHold, PartyReceipt, TransactionReceipt};
use mykey_core::{Problem, ProblemKind};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::engine::Answer;

/// Members of a problem that would tell a resident's points or accounts.
const RESIDENT_MEMBERS: [&str; 2] = ["available", "account"];

/// A transaction answer as a store, partner or terminal sees it.
pub(super) fn receipt(a: Answer) -> Answer {
    convert::<TransactionReceipt, PartyReceipt>(a)
}

/// A hold answer as the shop sees it.
pub(super) fn hold(a: Answer) -> Answer {
    convert::<HoldReceipt, PartyHold>(a)
}

fn convert<Full: DeserializeOwned, Seen: From<Full> + Serialize>(a: Answer) -> Answer {
    if a.status >= 400 {
        return problem(a);
    }
    match serde_json::from_str::<Full>(&a.body) {
        Ok(full) => {
            Answer { status: a.status, body: serde_json::to_string(&Seen::from(full)).expect("answers serialise") }
        }
        // Never pass on what could not be read: it could hold anything.
        Err(e) => unreadable(&e),
    }
}

/// A refusal without a resident's points or accounts.
fn problem(a: Answer) -> Answer {
    let mut p: Problem = match serde_json::from_str(&a.body) {
        Ok(p) => p,
        Err(e) => return unreadable(&e),
    };
    if p.kind() == Some(ProblemKind::InsufficientPoints) {
        p = Problem::new(ProblemKind::InsufficientPoints, "the resident's points usable here are not enough");
    }
    for m in RESIDENT_MEMBERS {
        p.extensions.remove(m);
    }
    Answer { status: a.status, body: serde_json::to_string(&p).expect("problems serialise") }
}

fn unreadable(e: &serde_json::Error) -> Answer {
    tracing::error!(error = %e, "an engine answer did not parse as its type");
    let p = Problem::new(ProblemKind::Internal, "the server failed; send the request again with the same id");
    Answer { status: p.status, body: serde_json::to_string(&p).expect("problems serialise") }
}
