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
    let body = r#"{"type":"urn:mykey:problem:insufficient-points","title":"t","status":422,"detail":"d","available":3}"#;
    let v = mykey_sdk::read_problem(body).unwrap();
    let v: serde_json::Value = serde_wasm_bindgen::from_value(v).unwrap();
    assert_eq!(v["slug"], "insufficient-points");
    assert_eq!(v["status"], 422);
}
