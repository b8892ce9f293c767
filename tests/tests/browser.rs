//! The SDK from `pkg/` in headless Chromium against the real demo server: the demo's
//! "try without a card" bridge runs the card protocol in the page, APDU by APDU, against a
//! virtual card the demo server issued, then logs in and registers a MyKey ID.

use std::time::Duration;

use mykey_server::testing::TestDb;
use mykey_tests::webdriver::Browser;
use mykey_tests::{temp_dir, test_site, Server};
use serde_json::Value;

#[test]
fn the_virtual_card_bridge_logs_in_and_registers_in_chromium() {
    let dir = temp_dir("virtual-bridge");
    let web = test_site(&dir);
    let db = tokio::runtime::Runtime::new().unwrap().block_on(TestDb::new()).unwrap();
    let server = Server::demo_with(&db.url, &dir, &dir.join("ca.json"), &web).unwrap();
    let browser = Browser::start(&[format!("--user-data-dir={}", dir.join("profile").display())]).unwrap();
    browser.goto(&format!("{}/app/card-login.html?bridge=virtual&pin=1234", server.base)).unwrap();
    let result = browser
        .wait_for(
            "const t = document.getElementById('result').textContent; return t ? t : null;",
            Duration::from_secs(90),
        )
        .unwrap();
    let out: Value = serde_json::from_str(result.as_str().unwrap()).unwrap();
    assert!(out.get("error").is_none(), "{out:#}");
    // Without the extension, only the virtual card is available.
    assert_eq!(out["bridges"][0]["available"], false, "{out:#}");
    assert_eq!(out["bridges"][1]["kind"], "virtual");
    assert_eq!(out["kind"], "virtual");
    assert!(out["certificate"].as_str().unwrap().starts_with("MII"), "{out:#}");
    assert_eq!(out["triesBefore"]["left"], 3);
    assert_eq!((out["wrongPin"]["code"].as_str(), out["wrongPin"]["triesLeft"].as_u64()), (Some("wrong_pin"), Some(2)));
    assert_eq!(out["login"]["status"], 200, "{out:#}");
    assert_eq!(out["registered"]["status"], 201, "{out:#}");
    assert_eq!(out["me"]["mykey_id"], out["registered"]["body"]["mykey_id"]);
    let _ = std::fs::remove_dir_all(&dir);
}
