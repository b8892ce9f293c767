//! The tamper-evident log: every committed ledger transaction is one leaf of an RFC 9162
//! Merkle tree. The tree is stored as the Go checksum database stores it ("stored hashes",
//! via `tlog_tiles`): writing leaf n stores its leaf hash and the hash of every subtree it
//! completes, about two hashes per leaf, so that any tree head, proof or C2SP tile is a
//! handful of indexed look-ups. The writer only keeps the right edge of the tree in memory.
//!
//! The leaves' encoding is the ledger's (`ledger::leaf`, `docs/log-format.md`); the log
//! only hashes bytes. Proofs and tiles read the stored hashes through [`LogStore`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tlog_tiles::{stored_hash_index, Hash as TlogHash, HashReader};

pub mod witness;

/// A SHA-256 value.
pub type Hash = [u8; 32];

/// Tile height of the C2SP tlog-tiles layout: 256 hashes per tile.
pub const TILE_HEIGHT: u8 = 8;

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
struct Frontier<'a>(&'a BTreeMap<u64, Hash>);

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

/// Runs `f` over the stored hashes it asks for, fetched by `fetch` in one call. tlog_tiles'
/// readers are synchronous and the database is not, so `f` runs twice: once to learn which
/// hashes it needs (it is given zeros; no result of that pass is used), once with them.
pub async fn with_stored_hashes<T, F, Fut>(
    f: impl Fn(&dyn HashReader) -> Result<T, tlog_tiles::Error>,
    fetch: F,
) -> anyhow::Result<T>
where
    F: FnOnce(Vec<u64>) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<BTreeMap<u64, Hash>>>,
{
    struct Recorder(std::cell::RefCell<Vec<u64>>);
    impl HashReader for Recorder {
        fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<TlogHash>, tlog_tiles::Error> {
            self.0.borrow_mut().extend_from_slice(indexes);
            Ok(vec![TlogHash::default(); indexes.len()])
        }
    }
    let recorder = Recorder(Default::default());
    f(&recorder).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut wanted = recorder.0.into_inner();
    wanted.sort_unstable();
    wanted.dedup();
    let hashes = fetch(wanted).await?;
    f(&Frontier(&hashes)).map_err(|e| anyhow::anyhow!("the log's stored hashes are incomplete: {e}"))
}

/// The C2SP path of a hash tile (`tile/<L>/<N>[.p/<W>]`) or an entry bundle
/// (`tile/entries/<N>[.p/<W>]`), without the `/log/` prefix.
pub fn tile_path(level: Option<u8>, n: u64, width: u32) -> String {
    let mut digits = format!("{:03}", n % 1000);
    let mut rest = n / 1000;
    while rest > 0 {
        digits = format!("x{:03}/{digits}", rest % 1000);
        rest /= 1000;
    }
    let partial = if width == 1 << TILE_HEIGHT { String::new() } else { format!(".p/{width}") };
    match level {
        Some(l) => format!("tile/{l}/{digits}{partial}"),
        None => format!("tile/entries/{digits}{partial}"),
    }
}

/// Parses a C2SP tile path: (level or None for entries, index, width).
pub fn parse_tile_path(path: &str) -> Option<(Option<u8>, u64, u32)> {
    let rest = path.strip_prefix("tile/")?;
    let (level, rest) = rest.split_once('/')?;
    let level = if level == "entries" { None } else { Some(level.parse::<u8>().ok().filter(|l| *l < 8)?) };
    let (digits, width) = match rest.split_once(".p/") {
        Some((d, w)) => (d, w.parse::<u32>().ok().filter(|w| (1..(1 << TILE_HEIGHT)).contains(w))?),
        None => (rest, 1 << TILE_HEIGHT),
    };
    let parts: Vec<&str> = digits.split('/').collect();
    let mut n: u64 = 0;
    for (i, p) in parts.iter().enumerate() {
        let last = i == parts.len() - 1;
        let d = if last { *p } else { p.strip_prefix('x')? };
        if d.len() != 3 || !d.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        n = n.checked_mul(1000)?.checked_add(d.parse().ok()?)?;
    }
    // Canonical form only: no leading zero groups.
    (tile_path(level, n, width) == path).then_some((level, n, width))
}

/// The log's identity: its origin (the checkpoint's first line and the key name) and the
/// Ed25519 key that signs its checkpoints.
pub struct LogSigner {
    key: mykey_core::note::SignerKey,
}

impl LogSigner {
    /// A signer for `origin` from a 32-byte seed.
    pub fn new(origin: &str, seed: [u8; 32]) -> anyhow::Result<LogSigner> {
        Ok(LogSigner { key: mykey_core::note::SignerKey::log(origin, seed).map_err(|e| anyhow::anyhow!("{e}"))? })
    }

    /// A fresh random key (tests, benchmarks).
    pub fn generate(origin: &str) -> LogSigner {
        use rand::RngCore;
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        Self::new(origin, seed).expect("valid origin")
    }

    /// Reads the key file (a C2SP skey), or creates it with a new key, readable by the owner
    /// only. The origin comes from the file when it exists.
    pub fn from_file(path: &std::path::Path, origin: &str) -> anyhow::Result<LogSigner> {
        let key = key_file(path, || Self::generate(origin).key)?;
        anyhow::ensure!(
            key.kind() == mykey_core::note::TYPE_ED25519,
            "{} is not a log key (type 0x01)",
            path.display()
        );
        Ok(LogSigner { key })
    }

    /// The public key as a C2SP vkey, for witnesses and clients.
    pub fn vkey(&self) -> String {
        self.key.verifier().encode()
    }

    /// The origin line.
    pub fn origin(&self) -> String {
        self.key.verifier().name().to_owned()
    }

    /// A signed checkpoint note for a tree of `size` leaves with head `root`.
    pub fn checkpoint(&self, size: u64, root: Hash) -> String {
        let cp = mykey_core::note::Checkpoint { origin: self.origin(), size, root, extensions: Vec::new() };
        mykey_core::note::Note::sign(&cp.to_text(), &[&self.key]).expect("checkpoint text is a valid note text")
    }
}

/// Reads a C2SP skey file, or creates it with `new()` readable by the owner only.
pub fn key_file(
    path: &std::path::Path,
    new: impl FnOnce() -> mykey_core::note::SignerKey,
) -> anyhow::Result<mykey_core::note::SignerKey> {
    use anyhow::Context;
    if path.exists() {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        return mykey_core::note::SignerKey::parse(text.trim()).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()));
    }
    let key = new();
    crate::secret::create_secret_file(path, &format!("{}\n", key.encode()))?;
    Ok(key)
}

/// Where proofs, tiles and entry bundles read the log: its stored hashes and its leaves'
/// bytes (the store implements it).
pub trait LogStore: Sync {
    /// The stored hashes at `indexes` (level 0 being the leaf hashes).
    fn stored_hashes(
        &self,
        indexes: &[u64],
    ) -> impl std::future::Future<Output = anyhow::Result<BTreeMap<u64, Hash>>> + Send;
    /// The bytes of leaves `from..to`, in order.
    fn log_leaves(&self, from: u64, to: u64) -> impl std::future::Future<Output = anyhow::Result<Vec<Vec<u8>>>> + Send;
}

/// The tree head of the first `size` leaves, from the stored hashes.
pub async fn tree_head(store: &impl LogStore, size: u64) -> anyhow::Result<Hash> {
    with_stored_hashes(
        |r| tlog_tiles::tree_hash(size, &ReaderRef(r)).map(|h| h.0),
        |idx| async move { store.stored_hashes(&idx).await },
    )
    .await
}

/// The inclusion proof of leaf `index` in the tree of `size`.
pub async fn inclusion_proof(store: &impl LogStore, index: u64, size: u64) -> anyhow::Result<Vec<Hash>> {
    with_stored_hashes(
        |r| tlog_tiles::prove_record(size, index, &ReaderRef(r)).map(|p| p.iter().map(|h| h.0).collect()),
        |idx| async move { store.stored_hashes(&idx).await },
    )
    .await
}

/// The consistency proof from the tree of `first` leaves to the tree of `second`.
pub async fn consistency_proof(store: &impl LogStore, first: u64, second: u64) -> anyhow::Result<Vec<Hash>> {
    if first == 0 || first == second {
        return Ok(Vec::new());
    }
    with_stored_hashes(
        |r| tlog_tiles::prove_tree(second, first, &ReaderRef(r)).map(|p| p.iter().map(|h| h.0).collect()),
        |idx| async move { store.stored_hashes(&idx).await },
    )
    .await
}

/// The hashes of a C2SP hash tile at `level`, index `n`, `width` hashes wide.
pub async fn hash_tile(store: &impl LogStore, level: u8, n: u64, width: u32) -> anyhow::Result<Vec<u8>> {
    let tile = tlog_tiles::Tile::new(TILE_HEIGHT, level, n, width, false);
    with_stored_hashes(|r| tile.read_data(&ReaderRef(r)), |idx| async move { store.stored_hashes(&idx).await }).await
}

/// A C2SP entry bundle: each leaf as a big-endian u16 length and its bytes.
pub async fn entry_bundle(store: &impl LogStore, n: u64, width: u32) -> anyhow::Result<Vec<u8>> {
    let from = n << TILE_HEIGHT;
    let leaves = store.log_leaves(from, from + u64::from(width)).await?;
    anyhow::ensure!(leaves.len() == width as usize, "entries {from}..{} are not all stored", from + u64::from(width));
    let mut out = Vec::new();
    for leaf in leaves {
        let len = u16::try_from(leaf.len()).map_err(|_| anyhow::anyhow!("a leaf longer than 65535 bytes"))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&leaf);
    }
    Ok(out)
}

/// Splits a C2SP entry bundle into its leaves; refuses a bundle cut short.
pub fn parse_entry_bundle(bundle: &[u8]) -> anyhow::Result<Vec<&[u8]>> {
    let mut leaves = Vec::new();
    let mut rest = bundle;
    // Bounded by the bundle's length: every round consumes at least two bytes.
    while !rest.is_empty() {
        anyhow::ensure!(rest.len() >= 2, "an entry bundle is cut short");
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        anyhow::ensure!(rest.len() >= 2 + len, "an entry bundle is cut short");
        leaves.push(&rest[2..2 + len]);
        rest = &rest[2 + len..];
    }
    Ok(leaves)
}

/// Lets a `&dyn HashReader` be passed where tlog_tiles wants a sized reader.
struct ReaderRef<'a>(&'a dyn HashReader);

impl HashReader for ReaderRef<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<TlogHash>, tlog_tiles::Error> {
        self.0.read_hashes(indexes)
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

    #[test]
    fn tile_paths_round_trip() {
        assert_eq!(tile_path(Some(0), 1_234_067, 256), "tile/0/x001/x234/067");
        assert_eq!(tile_path(None, 5, 17), "tile/entries/005.p/17");
        for (l, n, w) in [(Some(0), 0, 256), (Some(3), 1_234_067, 1), (None, 999, 255), (None, 1000, 256)] {
            assert_eq!(parse_tile_path(&tile_path(l, n, w)), Some((l, n, w)));
        }
        assert_eq!(parse_tile_path("tile/0/x000/001"), None, "not canonical");
        assert_eq!(parse_tile_path("tile/0/001.p/256"), None);
        assert_eq!(parse_tile_path("tile/9/001"), None);
    }
}
