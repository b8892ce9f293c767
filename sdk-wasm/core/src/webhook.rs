//! Webhook signatures: the points cloud signs each event body it posts to a store's server
//! with HMAC-SHA256 over `timestamp.body`, in one header, `Mykey-Signature: t=<unix
//! seconds>,v1=<hex>[,v1=<hex>...]`, one `v1` per live secret, so that a store can rotate its
//! secret with both valid for a while. The store verifies with [`verify`].

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header's name.
pub const SIGNATURE_HEADER: &str = "Mykey-Signature";

fn mac(secret: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m
}

/// The header's value for `body` sent at `timestamp` (unix seconds), signed with each secret.
pub fn sign(secrets: &[&str], timestamp: i64, body: &[u8]) -> String {
    let mut header = format!("t={timestamp}");
    for s in secrets {
        header.push_str(",v1=");
        header.push_str(&hex(&mac(s, timestamp, body).finalize().into_bytes()));
    }
    header
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a webhook was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The header is not `t=...,v1=...`.
    #[error("the signature header is malformed")]
    Malformed,
    /// The timestamp is further from now than the tolerance (a replay, or a wrong clock).
    #[error("the signature's timestamp is {0} s away from now")]
    Stale(i64),
    /// No `v1` matches the body with the secret.
    #[error("no signature matches the body")]
    Mismatch,
}

/// Checks `header` over `body` with the store's `secret`, at `now` (unix seconds), accepting
/// timestamps up to `tolerance` seconds away ([`crate::rules::WEBHOOK_TOLERANCE_SECONDS`]).
/// Compares in constant time.
pub fn verify(secret: &str, header: &str, body: &[u8], now: i64, tolerance: i64) -> Result<(), VerifyError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',').take(16) {
        match part.trim().split_once('=') {
            Some(("t", v)) => timestamp = Some(v.parse::<i64>().map_err(|_| VerifyError::Malformed)?),
            Some(("v1", v)) => signatures.push(v),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(VerifyError::Malformed)?;
    if signatures.is_empty() {
        return Err(VerifyError::Malformed);
    }
    let away = now.saturating_sub(timestamp).saturating_abs();
    if away > tolerance {
        return Err(VerifyError::Stale(away));
    }
    for s in signatures {
        let Some(bytes) = unhex(s) else { continue };
        if mac(secret, timestamp, body).verify_slice(&bytes).is_ok() {
            return Ok(());
        }
    }
    Err(VerifyError::Mismatch)
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn a_signature_verifies_with_either_secret_during_rotation() {
        let h = sign(&["whsec_new", "whsec_old"], 1_700_000_000, b"{\"a\":1}");
        assert!(verify("whsec_new", &h, b"{\"a\":1}", 1_700_000_010, 300).is_ok());
        assert!(verify("whsec_old", &h, b"{\"a\":1}", 1_700_000_010, 300).is_ok());
        assert_eq!(verify("whsec_other", &h, b"{\"a\":1}", 1_700_000_010, 300), Err(VerifyError::Mismatch));
    }

    #[test]
    fn a_changed_body_a_stale_timestamp_and_garbage_are_refused() {
        let h = sign(&["s"], 1_700_000_000, b"body");
        assert_eq!(verify("s", &h, b"bodY", 1_700_000_000, 300), Err(VerifyError::Mismatch));
        assert_eq!(verify("s", &h, b"body", 1_700_000_301, 300), Err(VerifyError::Stale(301)));
        assert_eq!(verify("s", &h, b"body", 1_699_999_000, 300), Err(VerifyError::Stale(1000)));
        assert_eq!(verify("s", "v1=00", b"body", 1_700_000_000, 300), Err(VerifyError::Malformed));
        assert_eq!(verify("s", "t=x,v1=00", b"body", 1_700_000_000, 300), Err(VerifyError::Malformed));
        // A signature made for another timestamp does not verify under this one.
        let moved = h.replace("t=1700000000", "t=1700000001");
        assert_eq!(verify("s", &moved, b"body", 1_700_000_000, 300), Err(VerifyError::Mismatch));
    }
}
