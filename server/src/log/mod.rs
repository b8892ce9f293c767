//! The tamper-evident log: every committed ledger transaction is one leaf of an RFC 9162
//! Merkle tree. The tree is stored as the Go checksum database stores it ("stored hashes",
//! via `tlog_tiles`): writing leaf n stores its leaf hash and the hash of every subtree it
//! completes, about two hashes per leaf, so that any tree head, proof or C2SP tile is a
//! handful of indexed look-ups. The writer only keeps the right edge of the tree in memory.
//!
//! The leaves' encoding is the ledger's (`ledger::leaf`, `docs/log-format.md`); the log
//! only hashes bytes. Proofs and tiles read the stored hashes through [`LogStore`].

pub mod proofs;
pub mod signer;
pub mod tiles;
pub mod tree;
pub mod witness;

pub use proofs::{
    consistency_proof, entry_bundle, hash_tile, inclusion_proof, tree_head, with_stored_hashes, LogStore,
};
pub use signer::{key_file, LogSigner};
pub use tiles::{parse_entry_bundle, parse_tile_path, tile_path, TILE_HEIGHT};
pub use tree::{Hash, Log, LogLeaf};
