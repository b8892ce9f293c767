//! The SDK's JavaScript-facing functions, run in headless Chromium.
#![cfg(target_arch = "wasm32")]

use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
fn checks_ids_and_points_like_the_server() {
    assert_eq!(mykey_sdk::check_mykey_id("AB12CD34").unwrap(), "AB12CD34");
    assert!(mykey_sdk::check_mykey_id("ab12cd34").is_err());
    assert_eq!(mykey_sdk::check_points("250").unwrap(), 250.0);
    assert!(mykey_sdk::check_points("2.5").is_err());
    let id = mykey_sdk::mykey_id_from_random(&[0, 1, 2, 3, 4, 5, 6, 7]).unwrap();
    assert_eq!(id, "ABCDEFGH");
}

#[wasm_bindgen_test]
fn reads_problem_bodies() {
    let body =
        r#"{"type":"urn:mykey:problem:insufficient-points","title":"t","status":422,"detail":"d","available":3}"#;
    let v = mykey_sdk::read_problem(body).unwrap();
    let v: serde_json::Value = serde_wasm_bindgen::from_value(v).unwrap();
    assert_eq!(v["slug"], "insufficient-points");
    assert_eq!(v["status"], 422);
}

#[wasm_bindgen_test]
fn verifies_receipts_and_checkpoints() {
    use mykey_core::merkle;
    use mykey_core::note::{cosign, Checkpoint, Note, SignerKey};
    let b64 = |h: &merkle::Hash| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(h)
    };
    let leaves: Vec<merkle::Hash> = (0u8..7).map(|i| merkle::leaf_hash(&[i])).collect();
    let root = merkle::root(&leaves);
    let proof: Vec<String> = merkle::inclusion_proof(3, &leaves).iter().map(b64).collect();
    assert!(mykey_sdk::verify_inclusion(3.0, 7.0, &b64(&leaves[3]), proof.clone(), &b64(&root)).is_ok());
    assert!(mykey_sdk::verify_inclusion(4.0, 7.0, &b64(&leaves[3]), proof, &b64(&root)).is_err());

    let log = SignerKey::log("mykey.example/log", [1; 32]).unwrap();
    let w1 = SignerKey::witness("w1.example", [2; 32]).unwrap();
    let w2 = SignerKey::witness("w2.example", [3; 32]).unwrap();
    let text = Checkpoint { origin: "mykey.example/log".into(), size: 7, root, extensions: vec![] }.to_text();
    let mut note = Note::sign(&text, &[&log]).unwrap();
    note.push_str(&cosign(&w1, &text, 1_800_000_000).unwrap());
    let keys = vec![w1.verifier().encode(), w2.verifier().encode()];
    assert!(mykey_sdk::verify_checkpoint(&note, &log.verifier().encode(), keys.clone(), 2).is_err(), "one of two");
    note.push_str(&cosign(&w2, &text, 1_800_000_000).unwrap());
    let v = mykey_sdk::verify_checkpoint(&note, &log.verifier().encode(), keys, 2).unwrap();
    let v: serde_json::Value = serde_wasm_bindgen::from_value(v).unwrap();
    assert_eq!(v["size"], 7);
}

#[wasm_bindgen_test]
fn reads_the_signing_context_a_page_names() {
    use mykey_core::identity::SigningContext;
    use mykey_sdk::card::signing_context;
    let js = |s: &str| js_sys::JSON::parse(s).unwrap();
    assert_eq!(signing_context(&wasm_bindgen::JsValue::UNDEFINED), Ok(SigningContext::Web));
    assert_eq!(signing_context(&js(r#"{"kind":"widget"}"#)), Ok(SigningContext::Widget));
    let device = "7c8f3a52-6a0f-4a1e-9b8e-1f0f5f0e2a11";
    assert_eq!(
        signing_context(&js(&format!(r#"{{"kind":"counter","shop":12,"device":"{device}"}}"#))),
        Ok(SigningContext::Counter { shop: 12, device: device.parse().unwrap() })
    );
    for bad in
        [r#"{"kind":"counter","shop":1.5,"device":"x"}"#, r#"{"kind":"counter","shop":3}"#, r#"{"kind":"kiosk"}"#]
    {
        assert!(signing_context(&js(bad)).is_err(), "{bad}");
    }
}
