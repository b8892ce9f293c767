//! The witness protocol (C2SP `tlog-witness`) as the log speaks it: the add-checkpoint
//! request and the client that collects cosignatures. The witness server is
//! `crate::integrity::witness`.

use anyhow::Context;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use mykey_core::merkle::Hash;
use mykey_core::note::{Note, VerifierKey};

/// Most consistency proof lines a request may carry (C2SP).
pub const MAX_PROOF_LINES: usize = 63;

/// A witness as the log sees it: where to reach it and its key.
#[derive(Clone, Debug)]
pub struct WitnessClient {
    /// The submission prefix (`http://host:port`).
    pub url: String,
    /// Its cosignature key.
    pub key: VerifierKey,
}

impl WitnessClient {
    /// Parses `URL=VKEY`.
    pub fn parse(spec: &str) -> anyhow::Result<WitnessClient> {
        let (url, vkey) = spec.split_once('=').context("a witness is URL=VKEY")?;
        Ok(WitnessClient {
            url: url.trim_end_matches('/').to_owned(),
            key: VerifierKey::parse(vkey).map_err(|e| anyhow::anyhow!("{e}"))?,
        })
    }
}

/// The body of an add-checkpoint request.
pub fn request_body(old: u64, proof: &[Hash], note: &str) -> String {
    let mut s = format!("old {old}\n");
    for h in proof {
        s.push_str(&B64.encode(h));
        s.push('\n');
    }
    s.push('\n');
    s.push_str(note);
    s
}

/// What a witness answered.
pub enum Answer {
    /// Its cosignature line, verified.
    Cosigned(String),
    /// It knows the log at another size (409 with a size).
    Conflict(u64),
}

/// Sends a checkpoint to a witness; the cosignature is checked before it is returned.
pub async fn submit(
    client: &reqwest::Client,
    w: &WitnessClient,
    old: u64,
    proof: &[Hash],
    note: &str,
) -> anyhow::Result<Answer> {
    let res = client
        .post(format!("{}/add-checkpoint", w.url))
        .body(request_body(old, proof, note))
        .timeout(std::time::Duration::from_secs(5))
        .send()
        .await
        .with_context(|| format!("reaching witness {}", w.key.name()))?;
    let status = res.status();
    let body = res.text().await?;
    if status == reqwest::StatusCode::CONFLICT {
        if let Ok(size) = body.trim().parse() {
            return Ok(Answer::Conflict(size));
        }
    }
    anyhow::ensure!(status.is_success(), "witness {} answered {status}: {}", w.key.name(), body.trim());
    let cosigned = Note::parse(&format!("{note}{body}")).map_err(|e| anyhow::anyhow!("{e}"))?;
    cosigned.verify_cosignature(&w.key).map_err(|e| anyhow::anyhow!("witness {}: {e}", w.key.name()))?;
    let line = body
        .lines()
        .find(|l| l.starts_with(&format!("\u{2014} {} ", w.key.name())))
        .context("no line of the witness's name")?;
    Ok(Answer::Cosigned(format!("{line}\n")))
}
