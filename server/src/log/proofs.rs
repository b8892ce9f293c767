//! Tree heads, proofs, hash tiles and entry bundles, read through [`LogStore`] (the store
//! implements it).

use std::collections::BTreeMap;

use tlog_tiles::{Hash as TlogHash, HashReader};

use super::tiles::TILE_HEIGHT;
use super::tree::{Frontier, Hash};

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

/// Lets a `&dyn HashReader` be passed where tlog_tiles wants a sized reader.
struct ReaderRef<'a>(&'a dyn HashReader);

impl HashReader for ReaderRef<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<TlogHash>, tlog_tiles::Error> {
        self.0.read_hashes(indexes)
    }
}
