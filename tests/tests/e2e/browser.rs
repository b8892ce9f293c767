//! The SDK from `pkg/` in headless Chromium against the real demo server: the demo's
//! "try without a card" bridge runs the card protocol in the page, APDU by APDU, against a
//! virtual card the demo server issued; the WebUSB bridge drives stand-in PaSoRis. Each logs in
//! and registers a MyKey ID.

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
    let out = browser.page_result().unwrap();
    assert!(out.get("error").is_none(), "{out:#}");
    // Without the extension, native messaging is not available; Chromium has WebUSB.
    assert_eq!(out["bridges"][0]["available"], false, "{out:#}");
    assert_eq!(
        (&out["bridges"][1]["kind"], &out["bridges"][1]["available"]),
        (&Value::from("webusb"), &Value::from(true))
    );
    assert_eq!(out["bridges"][2]["kind"], "virtual");
    assert_eq!(out["kind"], "virtual");
    assert!(out["certificate"].as_str().unwrap().starts_with("MII"), "{out:#}");
    assert_eq!(out["triesBefore"]["left"], 3);
    assert_eq!((out["wrongPin"]["code"].as_str(), out["wrongPin"]["triesLeft"].as_u64()), (Some("wrong_pin"), Some(2)));
    assert_eq!(out["login"]["status"], 200, "{out:#}");
    assert_eq!(out["registered"]["status"], 201, "{out:#}");
    assert_eq!(out["me"]["mykey_id"], out["registered"]["body"]["mykey_id"]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The WebUSB bridge in Chromium: the SDK's web-sys code opens a stand-in PaSoRi whose
/// transfers reach a simulated reader with a virtual card; RC-S380 (Port-100) and RC-S300
/// (escape messages; its CCID interface is protected and skipped). Each logs in and registers.
#[test]
fn the_webusb_bridge_logs_in_through_stand_in_pasoris_in_chromium() {
    use mykey_tests::usb_sim::{self, Model};
    use mykey_tests::{run, server_bin};
    use std::process::Command;

    let dir = temp_dir("webusb");
    let web = test_site(&dir);
    let ca = dir.join("ca.json");
    let mut sims = Vec::new();
    for (i, model) in [Model::Rcs380, Model::Rcs300].into_iter().enumerate() {
        let file = dir.join(format!("card{i}.json"));
        run(Command::new(server_bin()).arg("virtual-card").arg("--demo-ca-file").arg(&ca).arg("--out").arg(&file))
            .unwrap();
        let card = mykey_virtual_card::VirtualCard::from_file(
            &serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap(),
        )
        .unwrap();
        sims.push((model, usb_sim::start(model, card).unwrap()));
    }
    let db = tokio::runtime::Runtime::new().unwrap().block_on(TestDb::new()).unwrap();
    let server = Server::demo_with(&db.url, &dir, &ca, &web).unwrap();
    let browser = Browser::start(&[format!("--user-data-dir={}", dir.join("profile").display())]).unwrap();
    for (model, sim) in &sims {
        let product = match model {
            Model::Rcs380 => 0x06C3,
            Model::Rcs300 => 0x0DC9,
        };
        browser
            .goto(&format!(
                "{}/app/card-login.html?bridge=webusb&pin=1234&sim={}&product={product}",
                server.base, sim.base
            ))
            .unwrap();
        let out = browser.page_result().unwrap();
        assert!(out.get("error").is_none(), "{model:?}: {out:#}");
        assert_eq!(out["kind"], "webusb");
        let filters = &out["usb"]["requested"][0]["filters"];
        assert!(filters.as_array().unwrap().iter().all(|f| f["vendorId"] == 0x054C), "{out:#}");
        assert_eq!(out["triesBefore"]["left"], 3, "{model:?}: {out:#}");
        assert_eq!(out["wrongPin"]["triesLeft"], 2, "{model:?}: {out:#}");
        assert_eq!(out["login"]["status"], 200, "{model:?}: {out:#}");
        assert_eq!(out["registered"]["status"], 201, "{model:?}: {out:#}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
