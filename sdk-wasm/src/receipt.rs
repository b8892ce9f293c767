//! Checking a printed receipt against the tamper-evident log: the receipt's QR code names a
//! transaction, its leaf's position and hash (`mykey_core::receipt`); the log's signed
//! checkpoint, cosigned by its witnesses, and an inclusion proof show that the leaf is in the
//! history everyone else sees too.

use mykey_core::merkle::{self, Hash};
use mykey_core::note::{Note, VerifierKey};
use mykey_core::receipt::{LogReceipt, ReceiptError};
use serde::Serialize;

/// A receipt the log holds.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptChecked {
    /// The transaction.
    pub transaction: String,
    /// Its leaf's position.
    pub leaf_index: u64,
    /// The log's origin (its key's name).
    pub origin: String,
    /// Leaves in the checkpoint the proof was checked against.
    pub size: u64,
    /// Witness cosignatures the checkpoint was required to carry.
    pub quorum: usize,
}

/// Why a receipt was not shown to be in the log.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// The text is not a receipt.
    #[error("{0}")]
    Receipt(#[from] ReceiptError),
    /// A key given to check with is not a vkey.
    #[error("the log's or a witness's key is not a vkey: {0}")]
    Key(String),
    /// The log could not be reached, or answered something else.
    #[error("the log could not be asked: {0}")]
    Unreachable(String),
    /// The checkpoint is not signed by the log or lacks the witnesses' cosignatures.
    #[error("the log's checkpoint does not verify: {0}")]
    Checkpoint(String),
    /// The latest checkpoint does not cover the receipt's leaf yet.
    #[error("the log's latest checkpoint covers {size} entries, not yet this one; try again in a few seconds")]
    NotYet {
        /// Leaves the checkpoint covers.
        size: u64,
    },
    /// The inclusion proof does not lead from the receipt's leaf to the checkpoint's root: the
    /// log does not hold this transaction as printed.
    #[error("the log does not hold this receipt as printed: {0}")]
    NotInLog(String),
}

impl CheckError {
    /// A stable name for a page to say it in its own language.
    pub fn slug(&self) -> &'static str {
        match self {
            CheckError::Receipt(_) => "not-a-receipt",
            CheckError::Key(_) => "key",
            CheckError::Unreachable(_) => "unreachable",
            CheckError::Checkpoint(_) => "checkpoint",
            CheckError::NotYet { .. } => "not-yet",
            CheckError::NotInLog(_) => "not-in-log",
        }
    }
}

/// Checks the receipt `text` (or the address its QR code carries) against the log at `server`
/// (`https://host`), whose checkpoints `log_key` signs and at least `quorum` of `witnesses`
/// cosign.
pub async fn check_receipt(
    server: &str,
    text: &str,
    log_key: &str,
    witnesses: &[String],
    quorum: usize,
) -> Result<ReceiptChecked, CheckError> {
    let receipt = LogReceipt::parse(text)?;
    let log = VerifierKey::parse(log_key.trim()).map_err(|e| CheckError::Key(e.to_string()))?;
    let witnesses = witnesses
        .iter()
        .map(|w| VerifierKey::parse(w.trim()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CheckError::Key(e.to_string()))?;
    let server = server.trim_end_matches('/');
    let note = get_text(&format!("{server}/log/checkpoint")).await?;
    let checkpoint = Note::parse(&note)
        .and_then(|n| n.verify_witnessed(&log, &witnesses, quorum))
        .map_err(|e| CheckError::Checkpoint(e.to_string()))?;
    if receipt.leaf_index >= checkpoint.size {
        return Err(CheckError::NotYet { size: checkpoint.size });
    }
    let url = format!("{server}/v1/log/inclusion?index={}&size={}", receipt.leaf_index, checkpoint.size);
    let body: mykey_core::api::LogProof =
        serde_json::from_str(&get_text(&url).await?).map_err(|e| CheckError::Unreachable(e.to_string()))?;
    let proof = body.proof.iter().map(|p| hash(p)).collect::<Result<Vec<_>, _>>()?;
    merkle::verify_inclusion(receipt.leaf_index, checkpoint.size, &receipt.leaf_hash, &proof, &checkpoint.root)
        .map_err(|e| CheckError::NotInLog(e.to_string()))?;
    Ok(ReceiptChecked {
        transaction: receipt.transaction.to_string(),
        leaf_index: receipt.leaf_index,
        origin: checkpoint.origin,
        size: checkpoint.size,
        quorum,
    })
}

fn hash(b64: &str) -> Result<Hash, CheckError> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| CheckError::Unreachable("a proof hash is not base64 SHA-256".into()))
}

async fn get_text(url: &str) -> Result<String, CheckError> {
    let res = gloo_net::http::Request::get(url).send().await.map_err(|e| CheckError::Unreachable(e.to_string()))?;
    let status = res.status();
    let body = res.text().await.map_err(|e| CheckError::Unreachable(e.to_string()))?;
    if status != 200 {
        let detail = serde_json::from_str::<mykey_core::Problem>(&body).map(|p| p.detail).unwrap_or_default();
        return Err(CheckError::Unreachable(format!("{url} answered {status} {detail}")));
    }
    Ok(body)
}
