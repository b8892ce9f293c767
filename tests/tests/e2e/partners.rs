//! Partners end to end: the demo points cloud on 127.0.0.1 and the example card company's
//! member site on 127.0.0.3 (another site), in headless Chromium with third-party cookies
//! blocked. A member exchanges card points, gets a coupon code and redeems it at once in the
//! embedded coupon widget, assigns the reserved points; then links the member number to the
//! MyKey ID in the link widget, and the next exchange arrives as a pushed conversion. The
//! partner's webhook log shows the verified events. A batch's printable sheet renders with
//! Japanese glyphs and every QR code on it decodes to its coupon's URL.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use mykey_server::demo::DemoKeys;
use mykey_server::testing::TestDb;
use mykey_tests::webdriver::Browser;
use mykey_tests::{no_violations, sibling_bin, temp_dir, web_dist as dist, widget_state, Process, Server};
use serde_json::{json, Value};

use crate::checkout::{register, serve_once_on};

/// The example member site on 127.0.0.3, against `base`; its address.
pub(crate) fn start_partner(base: &str, dir: &Path) -> (Process, String) {
    let mut child = Process(
        Command::new(sibling_bin("partner-site"))
            .args(["--points", base, "--bind", "127.0.0.3:0", "--member-password", "member-test"])
            .args(["--admin-password", "admin-test", "--keys"])
            .arg(dir.join("keys.json"))
            .arg("--database-url")
            .arg(format!("sqlite:{}", dir.join("partner.db").display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let out = BufReader::new(child.0.stdout.take().unwrap());
    for line in out.lines() {
        if let Some(url) = line.unwrap().strip_prefix("partner site: ") {
            return (child, url.trim_end_matches('/').to_owned());
        }
    }
    panic!("the partner site did not start");
}

pub(crate) fn reserved(base: &str, keys: &DemoKeys, resident: i64) -> i64 {
    crate::checkout::balance_of(base, keys, resident, "reserved")
}

/// The partner's webhook log, once it shows `want`.
fn webhook_log(site: &str, want: &str) -> String {
    let http = reqwest::blocking::Client::new();
    let mut page = String::new();
    for _ in 0..100 {
        page = http
            .get(format!("{site}/admin/events"))
            .basic_auth("admin", Some("admin-test"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        if page.contains(want) {
            return page;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the webhook log never showed {want}: {page}");
}

#[test]
fn a_member_redeems_in_the_partners_widget_and_links_the_member_number() {
    let dir = temp_dir("partners");
    let db = tokio::runtime::Runtime::new().unwrap().block_on(TestDb::new()).unwrap();
    let server = Server::demo_with(&db.url, &dir, &dir.join("ca.json"), &dist()).unwrap();
    let keys: DemoKeys = serde_json::from_slice(&std::fs::read(dir.join("keys.json")).unwrap()).unwrap();
    let (mykey_id, resident) = register(&server.base, &dir);
    let (_site, site) = start_partner(&server.base, &dir);
    let b =
        Browser::start_blocking_third_party_cookies(&[format!("--user-data-dir={}", dir.join("profile").display())])
            .unwrap();

    // The member signs in on the partner's site and exchanges 1,000 card points: not linked,
    // so the partner's server issues a code and the page mounts the coupon widget with it.
    b.goto(&format!("{site}/")).unwrap();
    no_violations(&b, "the member site's sign-in");
    b.type_text("#number", "M0001").unwrap();
    b.type_text("#password", "member-test").unwrap();
    b.click("main form button[type=submit]").unwrap();
    b.wait_text("#card-points", "12000").unwrap();
    no_violations(&b, "the member page");
    b.type_text("#card-points-input", "1000").unwrap();
    b.click("#exchange").unwrap();
    let code = b.wait_text("#code", "-").unwrap();
    b.wait_for("return document.querySelector('#widget iframe') ? true : null;", Duration::from_secs(20)).unwrap();
    no_violations(&b, "the exchange page");

    // Inside the widget: the code is filled in and checked as it is typed.
    b.enter_frame("#widget iframe").unwrap();
    b.wait_text("h1", "クーポン").unwrap();
    assert_eq!(b.eval("return document.cookie;").unwrap(), "", "the widget keeps nothing in cookies");
    assert_eq!(b.eval("return document.getElementById('code').value;").unwrap(), code.trim());
    b.wait_text("#code-hint", "正しい").unwrap();
    widget_state(&b, "widget-coupon-code");
    let mut typo: Vec<char> = code.trim().chars().collect();
    typo[0] = if typo[0] == '2' { '3' } else { '2' };
    b.eval(
        "const i = document.getElementById('code'); i.value = ''; i.dispatchEvent(new Event('input')); return true;",
    )
    .unwrap();
    b.type_text("#code", &typo.iter().collect::<String>()).unwrap();
    b.wait_text("#code-hint", "入力ミス").unwrap();
    b.eval(
        "const i = document.getElementById('code'); i.value = ''; i.dispatchEvent(new Event('input')); return true;",
    )
    .unwrap();
    b.type_text("#code", code.trim()).unwrap();
    b.wait_text("#code-hint", "正しい").unwrap();
    b.click("form button.primary").unwrap();
    // Signing in, then what the code gives before anything moves.
    b.wait_text("h2", "サインイン").unwrap();
    widget_state(&b, "widget-coupon-sign-in");
    b.widget_password("#widget iframe", &mykey_id, "abc123!x").unwrap();
    b.wait_text("main", "500ポイント").unwrap();
    widget_state(&b, "widget-coupon-preview");
    assert_eq!(reserved(&server.base, &keys, resident), 0, "nothing moved before the resident redeemed");
    b.click("form button.primary").unwrap();
    b.wait_text("[role=status]", "受け取りました").unwrap();
    widget_state(&b, "widget-coupon-redeemed");
    assert_eq!(reserved(&server.base, &keys, resident), 500);
    // Assign them to a municipality now.
    b.click("#assign-title ~ button, form[aria-labelledby=assign-title] button.primary").unwrap();
    b.wait_text("main", "ポイントにしました").unwrap();
    b.leave_frames().unwrap();
    b.wait_text("#widget-status", "自治体ポイントにしました").unwrap();
    assert_eq!(reserved(&server.base, &keys, resident), 0, "assigned out of the reserved points");
    let log = webhook_log(&site, "coupon.redeemed");
    assert!(log.contains(code.trim()), "{log}");

    // The link: the partner's server opens a link session for M0001; the resident confirms it.
    b.goto(&format!("{site}/")).unwrap();
    b.wait_text("#link-state", "連携していません").unwrap();
    b.click("#link").unwrap();
    b.wait_for("return document.querySelector('#widget iframe') ? true : null;", Duration::from_secs(20)).unwrap();
    no_violations(&b, "the link page");
    b.enter_frame("#widget iframe").unwrap();
    b.wait_text("main", "M0001").unwrap();
    widget_state(&b, "widget-link");
    b.widget_password("#widget iframe", &mykey_id, "abc123!x").unwrap();
    b.wait_text("main", &format!("{mykey_id} と連携")).unwrap();
    b.click("form button.primary").unwrap();
    b.wait_text("[role=status]", "連携しました").unwrap();
    widget_state(&b, "widget-link-done");
    b.leave_frames().unwrap();
    webhook_log(&site, "link.confirmed");
    b.goto(&format!("{site}/")).unwrap();
    b.wait_text("#link-state", "連携済み").unwrap();
    // Now an exchange is pushed straight to the MyKey ID.
    b.type_text("#card-points-input", "2000").unwrap();
    b.click("#exchange").unwrap();
    b.wait_text("#exchanged", "留保ポイントとして届いています").unwrap();
    assert_eq!(reserved(&server.base, &keys, resident), 1000);
    b.goto(&format!("{site}/")).unwrap();
    b.wait_text("#card-points", "9000").unwrap();

    // The widget's frame refuses a page the partner did not register.
    let settings: Value = reqwest::blocking::Client::new()
        .get(format!("{}/v1/partners/{}/embedding", server.base, keys.ids.coupon_partner))
        .bearer_auth(&keys.coupon_partner)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let pk = settings["publishable_key"].as_str().unwrap();
    let elsewhere = reqwest::blocking::Client::new()
        .get(format!("{}/widget/frame?kind=coupon&pk={pk}", server.base))
        .header("referer", "http://127.0.0.9:1/")
        .send()
        .unwrap();
    assert_eq!(elsewhere.status(), 403);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_printed_batch_renders_in_japanese_and_every_qr_code_decodes_to_its_coupon() {
    let dir = temp_dir("sheet");
    let db = tokio::runtime::Runtime::new().unwrap().block_on(TestDb::new()).unwrap();
    let server = Server::demo_with(&db.url, &dir, &dir.join("ca.json"), &dist()).unwrap();
    let keys: DemoKeys = serde_json::from_slice(&std::fs::read(dir.join("keys.json")).unwrap()).unwrap();
    let http = reqwest::blocking::Client::new();
    let partner = keys.ids.coupon_partner;
    let batch = uuid::Uuid::new_v4();
    let expires = (chrono::Utc::now() + chrono::Duration::days(60)).to_rfc3339();
    let res = http
        .post(format!("{}/v1/partners/{partner}/coupons", server.base))
        .bearer_auth(&keys.coupon_partner)
        .json(&json!({"id": batch, "count": 4, "partner_points": "1000", "rate": "0.5", "expires_at": expires, "delivery": "paper"}))
        .send()
        .unwrap();
    assert_eq!(res.status(), 201);
    let codes: Value = http
        .get(format!("{}/v1/partners/{partner}/coupon-batches/{batch}/codes", server.base))
        .bearer_auth(&keys.coupon_partner)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let mut urls: Vec<String> =
        codes.as_array().unwrap().iter().map(|c| c["url"].as_str().unwrap().to_owned()).collect();
    urls.sort();
    let sheet = http
        .get(format!("{}/v1/partners/{partner}/coupon-batches/{batch}/sheet", server.base))
        .bearer_auth(&keys.coupon_partner)
        .send()
        .unwrap();
    assert_eq!(sheet.status(), 200);
    let html = sheet.text().unwrap();
    let csv = http
        .get(format!("{}/v1/partners/{partner}/coupon-batches/{batch}/codes.csv", server.base))
        .bearer_auth(&keys.coupon_partner)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(csv.lines().count(), 5, "a header and one row per coupon: {csv}");

    // The partner opens the downloaded sheet in a browser (served from its own machine here).
    let b = Browser::start(&[]).unwrap();
    b.resize(1100, 1400).unwrap();
    b.goto(&serve_once_on("127.0.0.3:0", html)).unwrap();
    b.wait_text("main", "自治体ポイント交換クーポン").unwrap();
    // Japanese glyphs come from a CJK font, not from boxes: the text's width is that of real
    // glyphs in a font that has them.
    let cjk = b
        .eval("return document.fonts.check('12px \"Noto Sans CJK JP\"') || document.fonts.check('12px \"Noto Serif CJK JP\"');")
        .unwrap();
    assert_eq!(cjk, true, "a Japanese font is available to the sheet");
    no_violations(&b, "the printable sheet");
    let png = b.screenshot().unwrap();
    if let Ok(out) = std::env::var("MYKEY_SCREENSHOTS") {
        std::fs::write(Path::new(&out).join("coupon-sheet.png"), &png).unwrap();
    }
    let image = image::load_from_memory(&png).unwrap().to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(image);
    let mut decoded: Vec<String> = prepared.detect_grids().iter().map(|g| g.decode().unwrap().1).collect();
    decoded.sort();
    assert_eq!(decoded, urls, "every QR code on the sheet opens its own coupon");
    let _ = std::fs::remove_dir_all(&dir);
}
