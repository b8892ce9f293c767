//! Checking and repairing the history: the audit recomputes the log from the ledger's rows,
//! mirrors keep verified copies, witnesses cosign only consistent checkpoints, restore repairs
//! damaged rows from a mirror.

pub mod audit;
pub mod mirror;
pub mod restore;
pub mod witness;
