//! Witnesses (C2SP `tlog-witness`), the server side (`mykey-server witness`): a witness
//! cosigns a log's checkpoint only if it is consistent with the last checkpoint it cosigned
//! for that log, so that no log can show two histories to two audiences. The log's side of
//! the protocol is `crate::log::witness`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use mykey_core::merkle::{self, Hash};
use mykey_core::note::{cosign, Checkpoint, Note, SignerKey, VerifierKey};
use tokio::sync::Mutex;

use crate::log::witness::MAX_PROOF_LINES;
use crate::store::witness::WitnessState;

/// Largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;

/// A witness: its cosigning key, the logs it follows, and its state.
pub struct Witness {
    key: SignerKey,
    logs: HashMap<String, VerifierKey>,
    /// The state database; the mutex makes check-and-update atomic (C2SP requires it).
    state: Mutex<WitnessState>,
}

/// A refusal, with the status the protocol prescribes.
#[derive(Debug)]
pub struct Refusal {
    status: StatusCode,
    body: String,
    size_body: bool,
}

impl Refusal {
    fn new(status: StatusCode, body: impl Into<String>) -> Self {
        Refusal { status, body: body.into(), size_body: false }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let ct = if self.size_body { "text/x.tlog.size" } else { "text/plain; charset=utf-8" };
        (self.status, [(header::CONTENT_TYPE, ct)], self.body).into_response()
    }
}

impl Witness {
    /// Opens the state database (created when missing) for a witness following `logs`.
    pub async fn open(state_url: &str, key: SignerKey, logs: Vec<VerifierKey>) -> anyhow::Result<Witness> {
        let state = WitnessState::open(state_url).await?;
        let logs = logs.into_iter().map(|k| (k.name().to_owned(), k)).collect();
        Ok(Witness { key, logs, state: Mutex::new(state) })
    }

    /// The witness's public key (C2SP vkey, type 0x04).
    pub fn vkey(&self) -> String {
        self.key.verifier().encode()
    }

    /// Handles an `add-checkpoint` body: returns the cosignature line.
    pub async fn add_checkpoint(&self, body: &str) -> Result<String, Refusal> {
        let bad = |m: &str| Refusal::new(StatusCode::BAD_REQUEST, format!("{m}\n"));
        let (head, note) = body
            .split_once("\n\n")
            .ok_or_else(|| bad("expected an old size line, proof lines, a blank line and a checkpoint"))?;
        let mut lines = head.split('\n');
        let old = lines
            .next()
            .and_then(|l| l.strip_prefix("old "))
            .filter(|n| *n == "0" || (!n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit())))
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| bad("the first line is `old <size>`"))?;
        let proof: Vec<Hash> = lines
            .map(|l| B64.decode(l).ok().and_then(|v| Hash::try_from(v).ok()))
            .collect::<Option<_>>()
            .ok_or_else(|| bad("proof lines are base64 SHA-256 hashes"))?;
        if proof.len() > MAX_PROOF_LINES {
            return Err(bad(&format!("at most {MAX_PROOF_LINES} proof lines")));
        }
        let note = Note::parse(note).map_err(|e| bad(&e.to_string()))?;
        let checkpoint = Checkpoint::parse(&note.text).map_err(|e| bad(&e.to_string()))?;
        let log = self
            .logs
            .get(&checkpoint.origin)
            .ok_or_else(|| Refusal::new(StatusCode::NOT_FOUND, format!("unknown log {}\n", checkpoint.origin)))?;
        note.verify(log).map_err(|_| Refusal::new(StatusCode::FORBIDDEN, "no valid signature by the log's key\n"))?;
        if old > checkpoint.size {
            return Err(bad("the old size is larger than the checkpoint's"));
        }

        let mut state = self.state.lock().await;
        let known = state.get(&checkpoint.origin).await.map_err(internal)?;
        let (known_size, known_root) = match known {
            Some((size, root)) => (size, Some(root)),
            None => (0, None),
        };
        if old != known_size {
            return Err(Refusal { status: StatusCode::CONFLICT, body: format!("{known_size}\n"), size_body: true });
        }
        let consistent = match known_root {
            None => proof.is_empty(),
            Some(root) if old == checkpoint.size => proof.is_empty() && root == checkpoint.root,
            Some(root) => merkle::verify_consistency(old, checkpoint.size, &proof, &root, &checkpoint.root).is_ok(),
        };
        if !consistent {
            if old == checkpoint.size {
                return Err(Refusal { status: StatusCode::CONFLICT, body: format!("{known_size}\n"), size_body: true });
            }
            tracing::warn!(
                origin = checkpoint.origin,
                old,
                size = checkpoint.size,
                "refused an inconsistent checkpoint"
            );
            return Err(Refusal::new(StatusCode::UNPROCESSABLE_ENTITY, "the consistency proof does not verify\n"));
        }
        state.set(&checkpoint.origin, checkpoint.size, &checkpoint.root).await.map_err(internal)?;
        drop(state);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        cosign(&self.key, &note.text, now).map_err(internal)
    }

    /// The witness's HTTP interface: `POST /add-checkpoint`.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new().route("/add-checkpoint", post(add_checkpoint)).with_state(self)
    }
}

fn internal(e: impl std::fmt::Display) -> Refusal {
    tracing::error!(error = %e, "witness state");
    Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "the witness could not read or write its state\n")
}

async fn add_checkpoint(State(w): State<Arc<Witness>>, body: Bytes) -> Result<String, Refusal> {
    if body.len() > MAX_BODY {
        return Err(Refusal::new(StatusCode::PAYLOAD_TOO_LARGE, "request too large\n"));
    }
    let body =
        std::str::from_utf8(&body).map_err(|_| Refusal::new(StatusCode::BAD_REQUEST, "the body is UTF-8 text\n"))?;
    w.add_checkpoint(body).await
}
