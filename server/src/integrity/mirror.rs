//! `mykey-server mirror`: an independent copy of the log. It fetches the log's checkpoint and
//! checks the log's signature and the witnesses' quorum, fetches every new entry bundle,
//! recomputes the tree and accepts the new entries only if the tree head equals the signed
//! one, replays the entries' postings into balances that must agree with every
//! `balance_after` the log recorded, and serves the same tiles back.

use std::collections::HashMap;

use anyhow::{bail, ensure, Context};
use futures_util::TryStreamExt;
use mykey_core::merkle::RootBuilder;
use mykey_core::note::{Checkpoint, Note, VerifierKey};

use crate::ledger::Changes;
use crate::log::{tile_path, Log, TILE_HEIGHT};
use crate::store::Store;

/// Leaves written to the mirror's tables per database transaction.
const LEAVES_PER_WRITE: usize = 16 * 256;

/// A copy of a log to read (the log itself, or a mirror) and whom to trust about it.
pub struct Source {
    /// Its base URL (`http://host:port`).
    pub url: String,
    /// A key allowed to read entry bundles there.
    pub token: Option<String>,
    /// The log's key.
    pub log_key: VerifierKey,
    /// Witnesses whose cosignatures count.
    pub witnesses: Vec<VerifierKey>,
    /// Cosignatures required (0: the log's signature alone).
    pub quorum: usize,
}

impl Source {
    /// GETs `path` (below the base URL), with the token when `authorised`.
    pub async fn get(&self, client: &reqwest::Client, path: &str, authorised: bool) -> anyhow::Result<Vec<u8>> {
        let url = format!("{}{path}", self.url);
        let mut req = client.get(&url).timeout(std::time::Duration::from_secs(30));
        if let (true, Some(t)) = (authorised, &self.token) {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.with_context(|| format!("fetching {url}"))?;
        let status = res.status();
        let body = res.bytes().await?;
        if !status.is_success() {
            bail!("{url} answered {status}: {}", String::from_utf8_lossy(&body).trim());
        }
        Ok(body.to_vec())
    }

    /// Fetches the latest checkpoint and checks the log's signature, the witness quorum and
    /// the origin; returns the note as served and the checkpoint.
    pub async fn checkpoint(&self, client: &reqwest::Client) -> anyhow::Result<(String, Checkpoint)> {
        let text = String::from_utf8(self.get(client, "/log/checkpoint", false).await?)
            .context("the checkpoint is not UTF-8")?;
        let note = Note::parse(&text).map_err(|e| anyhow::anyhow!("the checkpoint: {e}"))?;
        let cp = if self.quorum > 0 {
            note.verify_witnessed(&self.log_key, &self.witnesses, self.quorum)
        } else {
            note.verify(&self.log_key).and_then(|()| Checkpoint::parse(&note.text))
        }
        .map_err(|e| anyhow::anyhow!("the log's checkpoint does not verify: {e}"))?;
        ensure!(
            cp.origin == self.log_key.name(),
            "the checkpoint is of log {}, not {}",
            cp.origin,
            self.log_key.name()
        );
        Ok((text, cp))
    }

    /// The leaves of entry bundle `tile` in a tree of `size` leaves.
    pub async fn entries(&self, client: &reqwest::Client, tile: u64, size: u64) -> anyhow::Result<Vec<Vec<u8>>> {
        let width = (size - (tile << TILE_HEIGHT)).min(1 << TILE_HEIGHT) as u32;
        let bundle = self.get(client, &format!("/log/{}", tile_path(None, tile, width)), true).await?;
        let leaves = crate::log::parse_entry_bundle(&bundle).with_context(|| format!("entry bundle {tile}"))?;
        ensure!(leaves.len() == width as usize, "entry bundle {tile} holds {} entries, not {width}", leaves.len());
        Ok(leaves.into_iter().map(<[u8]>::to_vec).collect())
    }
}

/// A mirror's copy: its own database with the log's tables.
pub struct Mirror {
    store: Store,
    config: Source,
    log: Log,
    root: RootBuilder,
    balances: HashMap<i64, i64>,
    checkpoint: Option<String>,
    client: reqwest::Client,
}

/// What one sync did.
#[derive(Debug, PartialEq, Eq)]
pub struct Synced {
    /// Leaves before.
    pub from: u64,
    /// Leaves after (the checkpoint's size).
    pub to: u64,
}

impl Mirror {
    /// Opens (and creates) the mirror's database and rebuilds its state from what it holds.
    pub async fn open(database_url: &str, config: Source) -> anyhow::Result<Mirror> {
        let store = Store::connect(database_url).await?;
        store.migrate().await?;
        let size = store.log_size().await?;
        let frontier = store.stored_hashes(&Log::frontier_indexes(size)).await?;
        let mut m = Mirror {
            log: Log::new(size, frontier),
            store,
            config,
            root: RootBuilder::default(),
            balances: HashMap::new(),
            checkpoint: None,
            client: crate::net::plain_client()?,
        };
        // Bounded by the leaves already mirrored.
        let mut rows = m.store.all_leaves();
        let mut n = 0u64;
        while let Some((data, hash)) = rows.try_next().await? {
            m.root.push(hash.try_into().map_err(|_| anyhow::anyhow!("a stored leaf hash is not 32 bytes"))?);
            replay(&mut m.balances, n, &data)?;
            n += 1;
        }
        drop(rows);
        m.checkpoint = m.store.latest_checkpoint().await?;
        Ok(m)
    }

    /// The mirror's database.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The checkpoint the mirror holds, as verified.
    pub fn checkpoint(&self) -> Option<&str> {
        self.checkpoint.as_deref()
    }

    /// The balance of an account after every mirrored entry.
    pub fn balance(&self, account: i64) -> Option<i64> {
        self.balances.get(&account).copied()
    }

    /// Fetches the log's latest checkpoint and every entry it adds; keeps them only if they
    /// hash to the signed tree head.
    pub async fn sync(&mut self) -> anyhow::Result<Synced> {
        let (note_text, cp) = self.config.checkpoint(&self.client).await?;
        let from = self.log.size();
        ensure!(
            cp.size >= from,
            "the log now shows {} leaves, fewer than the {from} mirrored: a rollback or a fork",
            cp.size
        );
        if cp.size == from {
            ensure!(
                self.root.root() == cp.root,
                "the log signed another tree head for the {from} leaves mirrored: a fork"
            );
            self.keep(&note_text, cp.size).await?;
            return Ok(Synced { from, to: from });
        }
        // Fetch and write provisionally; undone unless the tree head matches.
        let (saved_log, saved_root, saved_balances) = (self.log.clone(), self.root.clone(), self.balances.clone());
        let result = self.fetch(from, cp.size).await;
        let verified = match result {
            Ok(()) if self.root.root() == cp.root => Ok(()),
            Ok(()) => {
                Err(anyhow::anyhow!("the entries from {from} to {} do not hash to the signed tree head", cp.size))
            }
            Err(e) => Err(e),
        };
        if let Err(e) = verified {
            self.undo(from).await?;
            (self.log, self.root, self.balances) = (saved_log, saved_root, saved_balances);
            return Err(e);
        }
        self.keep(&note_text, cp.size).await?;
        Ok(Synced { from, to: cp.size })
    }

    async fn keep(&mut self, note: &str, size: u64) -> anyhow::Result<()> {
        self.store.insert_checkpoint(size, note, 0, crate::time::now()).await?;
        self.checkpoint = Some(note.to_owned());
        Ok(())
    }

    async fn fetch(&mut self, from: u64, to: u64) -> anyhow::Result<()> {
        let mut conn = self.store.writer_connection().await?;
        let mut ch = Changes::default();
        let mut next = from;
        // Bounded by the entry bundles between the two sizes.
        for tile in (from >> TILE_HEIGHT)..=((to - 1) >> TILE_HEIGHT) {
            let entries = self.config.entries(&self.client, tile, to).await?;
            for (index, data) in (tile << TILE_HEIGHT..).zip(entries) {
                if index >= next {
                    let seq = replay(&mut self.balances, index, &data)?;
                    let (leaf, stored) = self.log.append(seq, data);
                    self.root.push(leaf.hash);
                    ch.log_leaves.push(leaf);
                    ch.log_hashes.extend(stored);
                    next += 1;
                }
            }
            if ch.log_leaves.len() >= LEAVES_PER_WRITE {
                self.store.materialize(&mut conn, &std::mem::take(&mut ch), &[], 0).await?;
            }
        }
        self.store.materialize(&mut conn, &ch, &[], 0).await?;
        Ok(())
    }

    async fn undo(&self, from: u64) -> anyhow::Result<()> {
        let first = tlog_tiles::stored_hash_index(0, from) as i64;
        Ok(self.store.truncate_log(from as i64, first).await?)
    }
}

/// Applies one leaf's postings to `balances`; every `balance_after` must agree. Returns the
/// transaction's seq (0 for a MyKey ID usage event, which moves no points).
fn replay(balances: &mut HashMap<i64, i64>, index: u64, data: &[u8]) -> anyhow::Result<i64> {
    let leaf = match crate::ledger::leaf::parse_leaf(data).with_context(|| format!("leaf {index}"))? {
        crate::ledger::leaf::Leaf::Transaction(t) => t,
        crate::ledger::leaf::Leaf::Usage(_) => return Ok(0),
    };
    let mut sum = 0i64;
    for p in &leaf.postings {
        let b = balances.entry(p.account).or_default();
        *b += p.amount;
        sum += p.amount;
        ensure!(
            *b == p.balance_after,
            "leaf {index} (transaction {}) says account {} holds {} after it, the entries before it add up to {}",
            leaf.seq,
            p.account,
            p.balance_after,
            b
        );
    }
    // Per currency the sum is zero; across currencies, legs of assignments sum to zero too.
    ensure!(sum == 0, "leaf {index} (transaction {}) does not balance", leaf.seq);
    Ok(leaf.seq)
}

/// The mirror's HTTP interface: the checkpoint it verified and the same tiles as the log,
/// entry bundles only for `token`.
pub fn router(store: Store, token: Option<String>) -> axum::Router {
    use axum::extract::{Path, State};
    use axum::http::{header, HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::routing::get;

    #[derive(Clone)]
    struct S {
        store: Store,
        token: Option<String>,
    }
    async fn checkpoint(State(s): State<S>) -> Response {
        match s.store.latest_checkpoint().await {
            Ok(Some(note)) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], note).into_response(),
            Ok(None) => (StatusCode::SERVICE_UNAVAILABLE, "nothing mirrored yet\n").into_response(),
            Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "the mirror's database failed\n").into_response(),
        }
    }
    async fn tile(State(s): State<S>, headers: HeaderMap, Path(path): Path<String>) -> Response {
        let Some((level, n, width)) = crate::log::parse_tile_path(&path) else {
            return (StatusCode::NOT_FOUND, "no such tile\n").into_response();
        };
        let size = match s.store.latest_checkpoint().await {
            Ok(Some(note)) => {
                Note::parse(&note).ok().and_then(|n| Checkpoint::parse(&n.text).ok()).map_or(0, |c| c.size)
            }
            _ => 0,
        };
        let available = size >> (u32::from(TILE_HEIGHT) * u32::from(level.unwrap_or(0)));
        if (n << TILE_HEIGHT) + u64::from(width) > available {
            return (StatusCode::NOT_FOUND, "beyond the mirrored checkpoint\n").into_response();
        }
        let body = match level {
            Some(l) => crate::log::hash_tile(&s.store, l, n, width).await,
            None => {
                let sent = headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "));
                let allowed = match (&s.token, sent) {
                    (Some(token), Some(sent)) => crate::secret::same_secret(token.as_bytes(), sent.as_bytes()),
                    _ => false,
                };
                if !allowed {
                    return (StatusCode::UNAUTHORIZED, "entry bundles need the mirror's token\n").into_response();
                }
                crate::log::entry_bundle(&s.store, n, width).await
            }
        };
        match body {
            Ok(b) => ([(header::CONTENT_TYPE, "application/octet-stream")], b).into_response(),
            Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "the mirror's database failed\n").into_response(),
        }
    }
    axum::Router::new()
        .route("/log/checkpoint", get(checkpoint))
        .route("/log/{*tile}", get(tile))
        .with_state(S { store, token })
}
