//! The engine's bounds and periods: every queue, batch and round is bounded here.

use std::time::Duration;

use crate::store::journal;

/// Most commands applied per database transaction.
pub const MAX_BATCH: usize = 2048;
/// Queue length; a full queue makes callers wait (back-pressure), never grows memory.
pub const QUEUE: usize = 8192;
/// Journaled batches the materialiser may be behind before the writer waits for it; a round
/// takes every batch waiting. Few clients make batches of one or two requests, so this
/// bounds the channel, and [`MATERIALIZE_MAX_REQUESTS`] bounds the memory.
pub const MATERIALIZE_QUEUE: usize = 4096;
/// Requests whose rows may wait for the materialiser (about 1 KiB each in memory) before the
/// writer waits for it. Large rounds are what make the materialiser fast: the pages random
/// payments touch (resident accounts, lots, the request ids' index) are written once per
/// round, so a round of 30,000 payments writes far fewer pages per payment than one of 500
/// (docs/benchmarks.md).
pub const MATERIALIZE_MAX_REQUESTS: usize = 65_536;
/// Most requests one round takes.
pub const MATERIALIZE_ROUND: usize = MATERIALIZE_MAX_REQUESTS / 2;
/// How long a round should take at most. Checkpoints are published after rounds, which run
/// back to back under full load: a round of 32,768 requests took 1.5 to 2.2 s on PostgreSQL
/// here, so the round's size follows the last round's time per request.
pub const MATERIALIZE_ROUND_TIME: Duration = Duration::from_millis(600);
/// Fewest requests a round may be cut to (a round's fixed cost makes small rounds look slow).
pub(super) const MATERIALIZE_ROUND_MIN: usize = 4096;
const _: () = assert!(MAX_BATCH <= MATERIALIZE_MAX_REQUESTS, "a full batch must fit the materialiser's bound");
const _: () = assert!(MAX_BATCH as i64 <= journal::SEQS_PER_BATCH, "a batch's request records must fit its seqs");
/// Longest the materialiser lets journaled batches wait while nobody reads, so that each of
/// its rounds (one database transaction) merges many batches. A read waiting at
/// a read (`Engine::tables`), or a queue half full, starts the round at once. A round at least
/// every 500 ms (plus its own time) keeps checkpoints coming about once a second.
pub const MATERIALIZE_EVERY: Duration = Duration::from_millis(500);
/// Longest a read waits for the materialiser before it answers `unavailable`.
pub const BARRIER_TIMEOUT: Duration = Duration::from_secs(10);
/// Least time between two checkpoints; a new one follows new leaves within this time.
pub const PUBLISH_EVERY: Duration = Duration::from_millis(500);
/// While the disk is full, writes are refused at once (no work, no reload) except one try this
/// often, which finds out whether the operator has made room.
pub const DISK_FULL_RETRY: Duration = Duration::from_secs(1);
