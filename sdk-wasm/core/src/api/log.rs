//! The tamper-evident log's public answers.

use serde::{Deserialize, Serialize};

api_type! {
    /// An RFC 9162 proof (inclusion or consistency).
    pub struct LogProof {
        /// The proof's hashes, base64, in RFC 9162 order.
        pub proof: Vec<String>,
    }
}

api_type! {
    /// The witnesses whose cosignatures a published checkpoint carries: with the log's key
    /// (`/log/key`), what a client checks a checkpoint against. A client that can pin these
    /// keys itself should; this answer is for one that cannot.
    pub struct LogWitnesses {
        /// Cosignatures every published checkpoint carries (0: the log's signature alone).
        pub quorum: u32,
        /// The witnesses' cosignature keys (C2SP vkeys).
        pub witnesses: Vec<String>,
    }
}
