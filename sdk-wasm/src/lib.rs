//! The mykey browser SDK. This crate is the JavaScript face of [`mykey_core`]: the checks a
//! page runs before it talks to the server, with exactly the rules the server applies.

pub mod card;
pub mod receipt;
// WebUSB exists only in the browser (and web-sys builds it only for wasm32 with the flag in
// .cargo/config.toml).
#[cfg(target_arch = "wasm32")]
pub mod webusb;

use std::str::FromStr;

use mykey_core::merkle;
use mykey_core::note::{Note, VerifierKey};
use mykey_core::{MykeyId, Points, Problem};
use rust_decimal::Decimal;
use serde::Serialize as _;
use wasm_bindgen::prelude::*;

/// Checks a typed MyKey ID candidate; returns it unchanged or throws a readable message.
#[wasm_bindgen(js_name = checkMykeyId)]
pub fn check_mykey_id(candidate: &str) -> Result<String, JsError> {
    MykeyId::parse(candidate).map(|id| id.to_string()).map_err(|e| JsError::new(&e.to_string()))
}

/// Builds a generated MyKey ID from 8 random bytes (from `crypto.getRandomValues`).
#[wasm_bindgen(js_name = mykeyIdFromRandom)]
pub fn mykey_id_from_random(random: &[u8]) -> Result<String, JsError> {
    let bytes: [u8; 8] = random.try_into().map_err(|_| JsError::new("exactly 8 random bytes are needed"))?;
    Ok(MykeyId::generate_from(bytes).to_string())
}

/// Checks a typed coupon code before it is sent (its check symbol catches a typo): returns it
/// as `XXXX-XXXX-XXXX-XXXX`, or throws an error whose message is `length`, `character` or
/// `check` (for a page to say in its own language).
#[wasm_bindgen(js_name = checkCouponCode)]
pub fn check_coupon_code(typed: &str) -> Result<String, JsError> {
    use mykey_core::coupon::{CouponCode, CouponError};
    CouponCode::parse(typed).map(|c| c.to_string()).map_err(|e| {
        JsError::new(match e {
            CouponError::Length(_) => "length",
            CouponError::Character(_) => "character",
            CouponError::Check => "check",
        })
    })
}

/// Checks a point amount typed by a user ("100", "1.5"); returns whole points or throws.
#[wasm_bindgen(js_name = checkPoints)]
pub fn check_points(amount: &str) -> Result<f64, JsError> {
    let d = Decimal::from_str(amount.trim()).map_err(|_| JsError::new(&format!("{amount:?} is not a number")))?;
    Points::from_decimal(d).map(|p| p.get() as f64).map_err(|e| JsError::new(&e.to_string()))
}

/// Reads an `application/problem+json` body and returns `{ slug, status, detail }`, where
/// `slug` is the stable problem name (e.g. `insufficient-points`) or `null` if unknown.
#[wasm_bindgen(js_name = readProblem)]
pub fn read_problem(body: &str) -> Result<JsValue, JsError> {
    let p: Problem = serde_json::from_str(body).map_err(|e| JsError::new(&format!("not a problem+json body: {e}")))?;
    let out = serde_json::json!({
        "slug": p.kind().map(|k| k.slug()),
        "status": p.status,
        "detail": p.detail,
    });
    out.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).map_err(|e| JsError::new(&e.to_string()))
}

fn hash32(b64: &str, what: &str) -> Result<merkle::Hash, JsError> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| JsError::new(&format!("{what} is not a base64 SHA-256 hash")))
}

/// Checks a receipt: the leaf hash (base64) is at `index` in the tree of `size` whose root
/// hash (base64) a checkpoint gave; `proof` is the list of base64 hashes the log served.
#[wasm_bindgen(js_name = verifyInclusion)]
pub fn verify_inclusion(index: f64, size: f64, leaf_hash: &str, proof: Vec<String>, root: &str) -> Result<(), JsError> {
    let leaf = hash32(leaf_hash, "the leaf hash")?;
    let root = hash32(root, "the root hash")?;
    let proof = proof.iter().map(|p| hash32(p, "a proof hash")).collect::<Result<Vec<_>, _>>()?;
    merkle::verify_inclusion(index as u64, size as u64, &leaf, &proof, &root).map_err(|e| JsError::new(&e.to_string()))
}

#[wasm_bindgen(typescript_custom_section)]
const RECEIPT_TYPES: &str = r#"
/** A receipt the log holds: its transaction, its leaf's position, the checkpoint it was checked against. */
export interface ReceiptChecked { transaction: string; leafIndex: number; origin: string; size: number; quorum: number; }
/** What checkReceipt rejects with. */
export interface ReceiptError extends Error { slug: "not-a-receipt" | "key" | "unreachable" | "checkpoint" | "not-yet" | "not-in-log"; }
"#;

/// Checks a printed receipt (its text, or the address its QR code carries) against the log at
/// `server`: fetches the latest checkpoint, checks the log's signature (`logKey`, a vkey) and
/// at least `quorum` cosignatures of `witnessKeys`, then the leaf's inclusion proof. Resolves
/// to `{ transaction, leafIndex, origin, size, quorum }`; rejects with an Error whose `slug`
/// says why (`not-a-receipt`, `key`, `unreachable`, `checkpoint`, `not-yet`, `not-in-log`).
#[wasm_bindgen(js_name = checkReceipt, unchecked_return_type = "ReceiptChecked")]
pub async fn check_receipt(
    server: String,
    text: String,
    #[wasm_bindgen(js_name = logKey)] log_key: String,
    #[wasm_bindgen(js_name = witnessKeys)] witness_keys: Vec<String>,
    quorum: usize,
) -> Result<JsValue, JsValue> {
    match receipt::check_receipt(&server, &text, &log_key, &witness_keys, quorum).await {
        Ok(checked) => checked
            .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
            .map_err(|e| JsError::new(&e.to_string()).into()),
        Err(e) => {
            let error = js_sys::Error::new(&e.to_string());
            // Setting a property on a fresh Error object cannot fail.
            let _ = js_sys::Reflect::set(&error, &"slug".into(), &e.slug().into());
            Err(error.into())
        }
    }
}

/// Checks that the log at `second` (root base64) extends the log at `first`.
#[wasm_bindgen(js_name = verifyConsistency)]
pub fn verify_consistency(
    first: f64,
    second: f64,
    proof: Vec<String>,
    first_root: &str,
    second_root: &str,
) -> Result<(), JsError> {
    let (a, b) = (hash32(first_root, "the first root")?, hash32(second_root, "the second root")?);
    let proof = proof.iter().map(|p| hash32(p, "a proof hash")).collect::<Result<Vec<_>, _>>()?;
    merkle::verify_consistency(first as u64, second as u64, &proof, &a, &b).map_err(|e| JsError::new(&e.to_string()))
}

/// Checks a signed checkpoint: the log's signature and a quorum of witness cosignatures.
/// Keys are vkeys (`name+id+base64`). Returns `{ origin, size, root }` (root in base64).
#[wasm_bindgen(js_name = verifyCheckpoint)]
pub fn verify_checkpoint(
    note: &str,
    log_key: &str,
    witness_keys: Vec<String>,
    quorum: usize,
) -> Result<JsValue, JsError> {
    use base64::Engine as _;
    let err = |e: mykey_core::note::NoteError| JsError::new(&e.to_string());
    let log = VerifierKey::parse(log_key).map_err(err)?;
    let witnesses = witness_keys.iter().map(|k| VerifierKey::parse(k)).collect::<Result<Vec<_>, _>>().map_err(err)?;
    let cp = Note::parse(note).and_then(|n| n.verify_witnessed(&log, &witnesses, quorum)).map_err(err)?;
    let out = serde_json::json!({
        "origin": cp.origin,
        "size": cp.size,
        "root": base64::engine::general_purpose::STANDARD.encode(cp.root),
    });
    out.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).map_err(|e| JsError::new(&e.to_string()))
}
