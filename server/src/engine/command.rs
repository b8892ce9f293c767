//! What travels on the writer's queue.

use mykey_core::Problem;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::answer::{Done, EngineError};
use super::request::{Change, ChangeResult, Request};

/// A command for the writer.
pub(super) enum Command {
    Execute {
        request: Request,
        fingerprint: String,
        reply: oneshot::Sender<Answered>,
    },
    Change {
        op: Change,
        reply: oneshot::Sender<Result<ChangeResult, Problem>>,
    },
    Check {
        reply: oneshot::Sender<()>,
    },
    /// The seq of a committed request id's record.
    Lookup {
        id: Uuid,
        reply: oneshot::Sender<Option<i64>>,
    },
    Stop,
}

/// The writer's reply to an execute command.
pub(super) enum Answered {
    /// Applied or refused in this batch (or found in it).
    Now(Result<Done, EngineError>),
    /// Committed in an earlier batch: the stored answer (the record of this seq) must be read.
    Stored(i64),
}
