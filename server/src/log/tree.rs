//! The tree: leaves and the stored hashes their appends produce ("stored hashes", as the Go
//! checksum database keeps them), with only the right edge in memory.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tlog_tiles::{stored_hash_index, Hash as TlogHash, HashReader};

/// A SHA-256 value.
pub type Hash = [u8; 32];

/// A leaf and the stored hashes its append produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLeaf {
    /// Position in the log, from 0.
    pub index: u64,
    /// The ledger transaction it records; 0 for a MyKey ID usage event.
    pub seq: i64,
    /// The leaf bytes (`docs/log-format.md`).
    pub data: Vec<u8>,
    /// `SHA-256(0x00 || data)`.
    pub hash: Hash,
}

/// Stored hashes by stored index, as `tlog_tiles` reads them.
pub(super) struct Frontier<'a>(pub(super) &'a BTreeMap<u64, Hash>);

impl HashReader for Frontier<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<TlogHash>, tlog_tiles::Error> {
        indexes.iter().map(|i| self.0.get(i).map(|h| TlogHash(*h)).ok_or(tlog_tiles::Error::IndexesNotInTree)).collect()
    }
}

/// The right edge of the tree: what the next append needs.
#[derive(Clone, Debug)]
pub struct Log {
    size: u64,
    /// `edge[l]`: the hash of the complete subtree of 2^l leaves on the right edge, valid
    /// where bit `l` of `size` is set.
    edge: [Hash; 64],
}

impl Default for Log {
    fn default() -> Log {
        Log { size: 0, edge: [[0; 32]; 64] }
    }
}

impl Log {
    /// The stored-hash indexes of the right edge of a tree of `size` leaves.
    pub fn frontier_indexes(size: u64) -> Vec<u64> {
        (0..64u8).filter(|l| size >> l & 1 == 1).map(|l| stored_hash_index(l, (size >> l) - 1)).collect()
    }

    /// Rebuilds from the stored size and the right-edge hashes (by stored index).
    pub fn new(size: u64, frontier: BTreeMap<u64, Hash>) -> Log {
        let mut log = Log { size, ..Log::default() };
        for l in (0..64u8).filter(|l| size >> l & 1 == 1) {
            let i = stored_hash_index(l, (size >> l) - 1);
            log.edge[usize::from(l)] = *frontier.get(&i).expect("the log's right edge is stored");
        }
        log
    }

    /// Leaves so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf; returns it and the stored hashes to write, as (stored index, hash): the
    /// complete subtrees it closes, lowest first. Its own level-0 stored hash is the leaf
    /// hash, kept once in `log_leaves` (about half of all stored hashes; `Store::stored_hashes`
    /// reads it there).
    pub fn append(&mut self, seq: i64, data: Vec<u8>) -> (LogLeaf, Vec<(u64, Hash)>) {
        let n = self.size;
        let leaf_hash = mykey_core::merkle::leaf_hash(&data);
        // Each set low bit of n is a complete subtree the new leaf's subtree joins.
        let closes = n.trailing_ones() as usize;
        assert!(closes < 64, "a log of 2^64 leaves");
        let mut stored = Vec::with_capacity(closes);
        let mut h = leaf_hash;
        for l in 0..closes {
            h = mykey_core::merkle::node_hash(&self.edge[l], &h);
            let level = l as u8 + 1;
            stored.push((stored_hash_index(level, n >> level), h));
        }
        self.edge[closes] = h;
        self.size += 1;
        (LogLeaf { index: n, seq, data, hash: leaf_hash }, stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mykey_core::merkle;

    #[test]
    fn appends_reproduce_rfc9162_roots_with_only_the_right_edge_in_memory() {
        let mut log = Log::default();
        let mut all: BTreeMap<u64, Hash> = BTreeMap::new();
        let mut leaves = Vec::new();
        for i in 0..300u32 {
            // The reference: the Go checksum database's stored hashes for this record.
            let want = tlog_tiles::stored_hashes_for_record_hash(
                u64::from(i),
                TlogHash(merkle::leaf_hash(&i.to_be_bytes())),
                &Frontier(&all),
            )
            .unwrap();
            let (leaf, stored) = log.append(i64::from(i), i.to_be_bytes().to_vec());
            assert_eq!(leaf.index, u64::from(i));
            let first = stored_hash_index(0, leaf.index);
            let want: Vec<(u64, Hash)> =
                want.iter().enumerate().skip(1).map(|(k, h)| (first + k as u64, h.0)).collect();
            assert_eq!(stored, want, "leaf {i}");
            leaves.push(leaf.hash);
            assert!(stored.iter().all(|(s, _)| tlog_tiles::split_stored_hash_index(*s).0 > 0), "level 0 is the leaf");
            // As `Store::stored_hashes` reads them: level 0 from the leaves, the rest as stored.
            all.insert(stored_hash_index(0, leaf.index), leaf.hash);
            all.extend(stored);
            let size = log.size();
            let root = tlog_tiles::tree_hash(size, &Frontier(&all)).unwrap();
            assert_eq!(root.0, merkle::root(&leaves), "size {size}");
        }
        // Proofs from the stored hashes verify with the shared verifier.
        for (i, leaf) in leaves.iter().enumerate().step_by(37) {
            let p = tlog_tiles::prove_record(300, i as u64, &Frontier(&all)).unwrap();
            let p: Vec<Hash> = p.iter().map(|h| h.0).collect();
            merkle::verify_inclusion(i as u64, 300, leaf, &p, &merkle::root(&leaves)).unwrap();
        }
    }
}
