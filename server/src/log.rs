//! The tamper-evident log: every committed ledger transaction is one leaf of an RFC 9162
//! Merkle tree. The tree is stored as the Go checksum database stores it ("stored hashes",
//! via `tlog_tiles`): writing leaf n stores its leaf hash and the hash of every subtree it
//! completes, about two hashes per leaf, so that any tree head, proof or C2SP tile is a
//! handful of indexed look-ups. The writer only keeps the right edge of the tree in memory.
//!
//! Leaf encoding: `docs/log-format.md`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tlog_tiles::{stored_hash_index, Hash as TlogHash, HashReader};

use mykey_core::text::MEMO_MAX;

use crate::ledger::{Transaction, MAX_LEGS};

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

/// Serialises leaves for the batch journal without the bytes of transaction leaves (a
/// payment's leaf is some 250 bytes of JSON): they are a function of the transaction beside them, and
/// [`restore_transaction_leaves`] writes them again on reading. Reads back as `Vec<LogLeaf>`.
pub fn serialize_without_transaction_data<S: serde::Serializer>(leaves: &[LogLeaf], s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Leaf<'a> {
        index: u64,
        seq: i64,
        data: &'a [u8],
        hash: &'a Hash,
    }
    s.collect_seq(leaves.iter().map(|l| Leaf {
        index: l.index,
        seq: l.seq,
        data: if l.seq == 0 { &l.data } else { &[] },
        hash: &l.hash,
    }))
}

/// Writes the bytes of transaction leaves stored without them, given as `(seq, bytes)`, from
/// their transactions among `transactions`. A leaf whose transaction is not there is the
/// error, as its seq.
pub fn rebuild_transaction_leaves<'a>(
    leaves: impl Iterator<Item = (i64, &'a mut Vec<u8>)>,
    transactions: &[Transaction],
) -> Result<(), i64> {
    let by_seq: std::collections::HashMap<i64, &Transaction> = transactions.iter().map(|t| (t.seq, t)).collect();
    for (seq, data) in leaves.filter(|(seq, data)| *seq != 0 && data.is_empty()) {
        *data = transaction_leaf(by_seq.get(&seq).ok_or(seq)?);
    }
    Ok(())
}

/// Writes the bytes of transaction leaves read without them from the journal, from their
/// transactions, and checks each transaction leaf against its leaf hash.
pub fn restore_transaction_leaves(leaves: &mut [LogLeaf], transactions: &[Transaction]) -> anyhow::Result<()> {
    rebuild_transaction_leaves(leaves.iter_mut().map(|l| (l.seq, &mut l.data)), transactions)
        .map_err(|seq| anyhow::anyhow!("a journal leaf has no transaction {seq}"))?;
    for leaf in leaves.iter().filter(|l| l.seq != 0) {
        anyhow::ensure!(
            mykey_core::merkle::leaf_hash(&leaf.data) == leaf.hash,
            "journal leaf {} does not match transaction {}",
            leaf.index,
            leaf.seq
        );
    }
    Ok(())
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

#[derive(Serialize)]
struct PostingLeaf {
    account: i64,
    amount: i64,
    balance_after: i64,
}

#[derive(Serialize)]
struct TransactionLeaf<'a> {
    v: u8,
    r#type: &'static str,
    seq: i64,
    /// Hyphenated, as `Uuid` serialises in JSON.
    id: uuid::Uuid,
    kind: &'static str,
    municipality: i64,
    created_at: i64,
    memo: Option<&'a str>,
    postings: Vec<PostingLeaf>,
}

/// The longest transaction leaf: the fixed fields, a memo of [`MEMO_MAX`] characters of at
/// most 4 bytes each in JSON (control characters, which JSON escapes in 6, are refused), and
/// [`MAX_LEGS`] postings of three 20-digit numbers. An entry bundle gives a leaf 2 bytes of
/// length, so every leaf must fit in 65,535 bytes.
pub const MAX_TRANSACTION_LEAF: usize = 256 + 4 * MEMO_MAX + MAX_LEGS * 128;
const _: () = assert!(MAX_TRANSACTION_LEAF <= u16::MAX as usize, "a transaction leaf fits an entry bundle");

/// The leaf bytes of a committed transaction (log format v1: `docs/log-format.md`).
pub fn transaction_leaf(tx: &Transaction) -> Vec<u8> {
    let leaf = TransactionLeaf {
        v: 1,
        r#type: "transaction",
        seq: tx.seq,
        id: tx.id,
        kind: tx.kind.as_str(),
        municipality: tx.municipality,
        created_at: tx.created_at,
        memo: tx.memo.as_deref(),
        postings: tx
            .postings
            .iter()
            .map(|p| PostingLeaf { account: p.account, amount: p.amount, balance_after: p.balance_after })
            .collect(),
    };
    // A payment's leaf is about 250 bytes: one allocation instead of a few doublings.
    let mut out = Vec::with_capacity(320);
    serde_json::to_writer(&mut out, &leaf).expect("leaves serialise");
    assert!(out.len() <= MAX_TRANSACTION_LEAF, "memos and legs are bounded before they reach the ledger");
    out
}

#[derive(serde::Deserialize)]
struct PostingLeafIn {
    account: i64,
    amount: i64,
    balance_after: i64,
}

#[derive(serde::Deserialize)]
struct TransactionLeafIn {
    v: u8,
    r#type: String,
    seq: i64,
    id: String,
    kind: String,
    municipality: i64,
    created_at: i64,
    memo: Option<String>,
    postings: Vec<PostingLeafIn>,
}

/// Reads a transaction leaf back (the inverse of [`transaction_leaf`]).
fn parse_transaction_leaf(data: &[u8]) -> anyhow::Result<Transaction> {
    use anyhow::Context;
    let leaf: TransactionLeafIn = serde_json::from_slice(data).context("not a v1 transaction leaf")?;
    anyhow::ensure!(
        leaf.v == 1 && leaf.r#type == "transaction",
        "leaf format {} {:?} is not v1 transaction",
        leaf.v,
        leaf.r#type
    );
    Ok(Transaction {
        seq: leaf.seq,
        id: uuid::Uuid::parse_str(&leaf.id).context("a leaf's id")?,
        kind: mykey_core::api::TransactionKind::parse(&leaf.kind).context("a leaf's kind")?,
        municipality: leaf.municipality,
        memo: leaf.memo,
        created_at: leaf.created_at,
        postings: leaf
            .postings
            .into_iter()
            .map(|p| crate::ledger::PostingRow { account: p.account, amount: p.amount, balance_after: p.balance_after })
            .collect(),
    })
}

/// A MyKey ID usage event as the log records it (the row is `mykey_id_events`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageEvent {
    /// The event's id.
    pub id: uuid::Uuid,
    /// The resident behind the MyKey ID.
    pub resident: i64,
    /// The MyKey ID at the time.
    pub mykey_id: String,
    /// What happened (`mykey_core::identity::UsageEvent::kind`).
    pub kind: String,
    /// When, microseconds since the epoch.
    pub created_at: i64,
}

#[derive(Serialize, serde::Deserialize)]
struct UsageLeaf<'a> {
    v: u8,
    r#type: std::borrow::Cow<'a, str>,
    id: String,
    resident: i64,
    mykey_id: std::borrow::Cow<'a, str>,
    kind: std::borrow::Cow<'a, str>,
    created_at: i64,
}

/// The `type` of a usage leaf.
pub const USAGE_LEAF_TYPE: &str = "mykey_id_event";

/// The leaf bytes of a MyKey ID usage event (log format v1: `docs/log-format.md`).
pub fn usage_leaf(e: &UsageEvent) -> Vec<u8> {
    let leaf = UsageLeaf {
        v: 1,
        r#type: USAGE_LEAF_TYPE.into(),
        id: e.id.to_string(),
        resident: e.resident,
        mykey_id: e.mykey_id.as_str().into(),
        kind: e.kind.as_str().into(),
        created_at: e.created_at,
    };
    serde_json::to_vec(&leaf).expect("leaves serialise")
}

/// A leaf read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Leaf {
    /// A committed ledger transaction.
    Transaction(Transaction),
    /// A MyKey ID usage event.
    Usage(UsageEvent),
}

/// Reads any v1 leaf back (the inverse of [`transaction_leaf`] and [`usage_leaf`]).
pub fn parse_leaf(data: &[u8]) -> anyhow::Result<Leaf> {
    use anyhow::Context;
    #[derive(serde::Deserialize)]
    struct Head<'a> {
        v: u8,
        #[serde(borrow)]
        r#type: std::borrow::Cow<'a, str>,
    }
    let head: Head = serde_json::from_slice(data).context("not a v1 leaf")?;
    match (head.v, head.r#type.as_ref()) {
        (1, "transaction") => parse_transaction_leaf(data).map(Leaf::Transaction),
        (1, USAGE_LEAF_TYPE) => {
            let l: UsageLeaf = serde_json::from_slice(data).context("not a v1 usage leaf")?;
            Ok(Leaf::Usage(UsageEvent {
                id: uuid::Uuid::parse_str(&l.id).context("a leaf's id")?,
                resident: l.resident,
                mykey_id: l.mykey_id.into_owned(),
                kind: l.kind.into_owned(),
                created_at: l.created_at,
            }))
        }
        (v, t) => anyhow::bail!("leaf format {v} {t:?} is not known"),
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
    crate::create_secret_file(path, &format!("{}\n", key.encode()))?;
    Ok(key)
}

/// Where the log's checkpoints get their cosignatures.
pub struct LogConfig {
    /// Signs checkpoints.
    pub signer: LogSigner,
    /// Witnesses asked to cosign each checkpoint.
    pub witnesses: Vec<crate::witness::WitnessClient>,
    /// Cosignatures needed before a checkpoint is published (0 without witnesses).
    pub quorum: usize,
}

impl LogConfig {
    /// Checkpoints signed by the log alone.
    pub fn unwitnessed(signer: LogSigner) -> LogConfig {
        LogConfig { signer, witnesses: Vec::new(), quorum: 0 }
    }
}

/// The tree head of the first `size` leaves, from the stored hashes.
pub async fn tree_head(store: &crate::store::Store, size: u64) -> anyhow::Result<Hash> {
    with_stored_hashes(
        |r| tlog_tiles::tree_hash(size, &ReaderRef(r)).map(|h| h.0),
        |idx| async move { store.stored_hashes(&idx).await },
    )
    .await
}

/// The inclusion proof of leaf `index` in the tree of `size`.
pub async fn inclusion_proof(store: &crate::store::Store, index: u64, size: u64) -> anyhow::Result<Vec<Hash>> {
    with_stored_hashes(
        |r| tlog_tiles::prove_record(size, index, &ReaderRef(r)).map(|p| p.iter().map(|h| h.0).collect()),
        |idx| async move { store.stored_hashes(&idx).await },
    )
    .await
}

/// The consistency proof from the tree of `first` leaves to the tree of `second`.
pub async fn consistency_proof(store: &crate::store::Store, first: u64, second: u64) -> anyhow::Result<Vec<Hash>> {
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
pub async fn hash_tile(store: &crate::store::Store, level: u8, n: u64, width: u32) -> anyhow::Result<Vec<u8>> {
    let tile = tlog_tiles::Tile::new(TILE_HEIGHT, level, n, width, false);
    with_stored_hashes(|r| tile.read_data(&ReaderRef(r)), |idx| async move { store.stored_hashes(&idx).await }).await
}

/// A C2SP entry bundle: each leaf as a big-endian u16 length and its bytes.
pub async fn entry_bundle(store: &crate::store::Store, n: u64, width: u32) -> anyhow::Result<Vec<u8>> {
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
    fn transaction_leaves_read_back_as_written() {
        let tx = Transaction {
            seq: 7,
            id: uuid::Uuid::new_v4(),
            kind: mykey_core::api::TransactionKind::Payment,
            municipality: 26,
            memo: Some("野菜".into()),
            created_at: 1_795_777_967_479_627,
            postings: vec![
                crate::ledger::PostingRow { account: 1, amount: -5, balance_after: 10 },
                crate::ledger::PostingRow { account: 2, amount: 5, balance_after: 5 },
            ],
        };
        let leaf = transaction_leaf(&tx);
        assert_eq!(parse_transaction_leaf(&leaf).unwrap(), tx);
        assert!(parse_transaction_leaf(b"{}").is_err());
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
