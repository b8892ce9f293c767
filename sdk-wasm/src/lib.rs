//! The mykey browser SDK. This crate is the JavaScript face of [`mykey_core`]: the checks a
//! page runs before it talks to the server, with exactly the rules the server applies.

use std::str::FromStr;

use mykey_core::{MykeyId, Points, Problem};
use rust_decimal::Decimal;
use serde::Serialize as _;
use wasm_bindgen::prelude::*;

/// Checks a typed MyKey ID candidate; returns it unchanged or throws a readable message.
#[wasm_bindgen(js_name = checkMykeyId)]
pub fn check_mykey_id(candidate: &str) -> Result<String, JsError> {
    MykeyId::parse(candidate)
        .map(|id| id.to_string())
        .map_err(|e| JsError::new(&e.to_string()))
}

/// Builds a generated MyKey ID from 8 random bytes (from `crypto.getRandomValues`).
#[wasm_bindgen(js_name = mykeyIdFromRandom)]
pub fn mykey_id_from_random(random: &[u8]) -> Result<String, JsError> {
    let bytes: [u8; 8] = random
        .try_into()
        .map_err(|_| JsError::new("exactly 8 random bytes are needed"))?;
    Ok(MykeyId::generate_from(bytes).to_string())
}

/// Checks a point amount typed by a user ("100", "1.5"); returns whole points or throws.
#[wasm_bindgen(js_name = checkPoints)]
pub fn check_points(amount: &str) -> Result<f64, JsError> {
    let d = Decimal::from_str(amount.trim())
        .map_err(|_| JsError::new(&format!("{amount:?} is not a number")))?;
    Points::from_decimal(d)
        .map(|p| p.get() as f64)
        .map_err(|e| JsError::new(&e.to_string()))
}

/// Reads an `application/problem+json` body and returns `{ slug, status, detail }`, where
/// `slug` is the stable problem name (e.g. `insufficient-points`) or `null` if unknown.
#[wasm_bindgen(js_name = readProblem)]
pub fn read_problem(body: &str) -> Result<JsValue, JsError> {
    let p: Problem = serde_json::from_str(body)
        .map_err(|e| JsError::new(&format!("not a problem+json body: {e}")))?;
    let out = serde_json::json!({
        "slug": p.kind().map(|k| k.slug()),
        "status": p.status,
        "detail": p.detail,
    });
    out.serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| JsError::new(&e.to_string()))
}
