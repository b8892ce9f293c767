//! What travels on the writer's queue.

use mykey_core::Problem;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::request::{Answer, Change, ChangeResult, Request};

/// A command for the writer.
pub(super) enum Command {
    Execute {
        request: Request,
        fingerprint: String,
        reply: oneshot::Sender<Result<Answer, StoredAnswer>>,
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

/// The id was committed in an earlier batch; the stored answer (this record) must be read.
pub(super) struct StoredAnswer(pub(super) i64);
