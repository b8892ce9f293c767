//! The checkpoint publisher: signs what the tables hold and collects the witnesses'
//! cosignatures.

use std::sync::Arc;

use tokio::sync::watch;

use super::bounds::*;
use crate::log::witness::{self, WitnessClient};
use crate::log::{self, LogSigner};
use crate::store::Store;

/// Where the log's checkpoints get their cosignatures.
pub struct LogConfig {
    /// Signs checkpoints.
    pub signer: LogSigner,
    /// Witnesses asked to cosign each checkpoint.
    pub witnesses: Vec<WitnessClient>,
    /// Cosignatures needed before a checkpoint is published (0 without witnesses).
    pub quorum: usize,
}

impl LogConfig {
    /// Checkpoints signed by the log alone.
    pub fn unwitnessed(signer: LogSigner) -> LogConfig {
        LogConfig { signer, witnesses: Vec::new(), quorum: 0 }
    }
}

/// A signed checkpoint of the log, as published.
#[derive(Debug)]
pub struct Published {
    /// Leaves covered.
    pub size: u64,
    /// Tree head.
    pub root: log::Hash,
    /// The signed note (C2SP tlog-checkpoint), with the witnesses' cosignatures.
    pub note: String,
    /// Valid cosignatures it carries.
    pub cosignatures: usize,
}

/// Signs a checkpoint of what the tables hold whenever the log has grown, at most once per
/// [`PUBLISH_EVERY`]; the first one at start-up. With witnesses configured, a checkpoint is
/// published only once a quorum of them has cosigned it.
pub(super) async fn publish(
    store: Store,
    config: LogConfig,
    mut sizes: watch::Receiver<u64>,
    out: watch::Sender<Option<Arc<Published>>>,
) {
    // Fails only when the TLS roots cannot be loaded, which `net::trust_extra_cas` checked.
    let client = crate::net::plain_client().expect("the witnesses' HTTP client builds");
    // The size each witness last cosigned, as far as the log knows (0: ask it).
    let mut cosigned: Vec<u64> = vec![0; config.witnesses.len()];
    let mut last = None;
    loop {
        let size = *sizes.borrow_and_update();
        if last != Some(size) {
            match log::tree_head(&store, size).await {
                Ok(root) => {
                    let note = config.signer.checkpoint(size, root);
                    let (lines, got) =
                        collect_cosignatures(&store, &client, &config.witnesses, &mut cosigned, size, &note).await;
                    if got >= config.quorum {
                        let note = format!("{note}{lines}");
                        if let Err(e) = store.insert_checkpoint(size, &note, got, crate::time::now()).await {
                            tracing::warn!(error = format!("{e:#}"), "recording a checkpoint");
                        }
                        out.send_replace(Some(Arc::new(Published { size, root, note, cosignatures: got })));
                        last = Some(size);
                        metrics::gauge!("mykey_log_size").set(size as f64);
                    } else {
                        tracing::warn!(
                            size,
                            got,
                            quorum = config.quorum,
                            "too few witnesses cosigned; the checkpoint is not published"
                        );
                    }
                }
                Err(e) => tracing::error!(error = format!("{e:#}"), "computing a tree head"),
            }
        }
        tokio::time::sleep(PUBLISH_EVERY).await;
        if last == Some(*sizes.borrow()) && sizes.changed().await.is_err() {
            return;
        }
    }
}

/// Asks every witness (at once) to cosign `note`; returns the valid cosignature lines.
async fn collect_cosignatures(
    store: &Store,
    client: &reqwest::Client,
    witnesses: &[WitnessClient],
    cosigned: &mut [u64],
    size: u64,
    note: &str,
) -> (String, usize) {
    let asks = witnesses.iter().zip(cosigned.iter().copied()).map(|(w, old)| async move {
        let mut old = old;
        // Two rounds: a witness that knows another size says so (409), then gets a proof from there.
        for _ in 0..2 {
            if old > size {
                tracing::error!(
                    witness = w.key.name(),
                    old,
                    size,
                    "a witness has cosigned a larger tree than the log has"
                );
                return None;
            }
            let proof = match log::consistency_proof(store, old, size).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "building a consistency proof");
                    return None;
                }
            };
            match witness::submit(client, w, old, &proof, note).await {
                Ok(witness::Answer::Cosigned(line)) => return Some((line, size)),
                Ok(witness::Answer::Conflict(known)) => old = known,
                Err(e) => {
                    tracing::warn!(error = format!("{e:#}"), "asking a witness");
                    return None;
                }
            }
        }
        None
    });
    let answers = futures_util::future::join_all(asks).await;
    let mut lines = String::new();
    let mut got = 0;
    for (i, a) in answers.into_iter().enumerate() {
        if let Some((line, at)) = a {
            lines.push_str(&line);
            cosigned[i] = at;
            got += 1;
        }
    }
    (lines, got)
}
