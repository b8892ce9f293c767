//! Standing mandates end to end (issue 23): an online store's page on another site mounts the
//! link widget for a session asking for a mandate; in headless Chromium with third-party
//! cookies blocked the resident sees the store, the limits and the end date, signs in and
//! grants it; the store then charges within the terms by the mandate's id and is refused
//! outside them. Every widget state passes axe; `MYKEY_SCREENSHOTS` keeps their pictures.

use mykey_server::demo::DemoKeys;
use mykey_server::testing::TestDb;
use mykey_tests::webdriver::Browser;
use mykey_tests::{no_placeholders, no_violations, shoot, temp_dir, web_dist as dist, Server};
use serde_json::{json, Value};

use crate::checkout::{grant, register, serve_once_on};

/// A store's subscription page: mounts the link widget with the keys in its address's fragment.
const STORE_PAGE: &str = r#"<!doctype html><html lang="ja"><head><meta charset="utf-8">
<title>めいぶつチョイス 定期便のお申し込み</title></head><body><main>
<h1>定期便のお申し込み</h1><p>会員ID MC-TEIKI-1 をマイキーIDと連携し、毎月のお支払いを許可してください。</p>
<div id="link"></div><p id="status" role="status"></p></main>
<script type="module">
const p = new URLSearchParams(location.hash.slice(1));
const { mountLink } = await import(p.get('cloud') + '/app/sdk/checkout.js');
// Colours that would hide the text and the button: the widget keeps its own.
const appearance = { colorText: '#fefefe', colorBackground: '#ffffff', colorPrimary: '#ffff66' };
const w = mountLink(document.getElementById('link'), { publishableKey: p.get('pk'), clientSecret: p.get('cs'), appearance });
w.on('success', (e) => { document.getElementById('status').textContent = 'linked: ' + e.state; });
</script></body></html>"#;

#[test]
fn a_resident_grants_a_store_a_mandate_in_the_widget_and_the_store_charges_within_it() {
    let dir = temp_dir("mandates");
    let db = tokio::runtime::Runtime::new().unwrap().block_on(TestDb::new()).unwrap();
    let server = Server::demo_with(&db.url, &dir, &dir.join("ca.json"), &dist()).unwrap();
    let keys: DemoKeys = serde_json::from_slice(&std::fs::read(dir.join("keys.json")).unwrap()).unwrap();
    let (mykey_id, resident) = register(&server.base, &dir);
    grant(&server.base, &keys, resident, 2000);
    let page = serve_once_on("127.0.0.2:0", STORE_PAGE.to_owned());
    let origin = page.trim_end_matches('/').to_owned();
    let http = reqwest::blocking::Client::new();
    let shop = keys.ids.online_store;
    let store = |req: reqwest::blocking::RequestBuilder| -> (u16, Value) {
        let res = req.bearer_auth(&keys.online_store).send().unwrap();
        (res.status().as_u16(), res.json().unwrap_or(Value::Null))
    };

    // The store registers its page's origin and opens a session asking for a mandate.
    let (st, settings) =
        store(http.put(format!("{}/v1/shops/{shop}/checkout", server.base)).json(&json!({"origins": [origin]})));
    assert_eq!(st, 200, "{settings}");
    let ends_on = (chrono::Utc::now() + chrono::Duration::days(90)).format("%Y-%m-%d").to_string();
    let terms = json!({"max_per_charge": 500, "max_per_month": 800, "ends_on": ends_on});
    let (st, opened) = store(http.post(format!("{}/v1/link-sessions", server.base)).json(&json!({
        "id": uuid::Uuid::new_v4(), "online_service": keys.ids.online_shop, "service_id": "MC-TEIKI-1", "mandate": terms,
    })));
    assert_eq!(st, 201, "{opened}");
    let session = opened["session"]["id"].as_str().unwrap().to_owned();
    let fragment = format!(
        "cloud={}&pk={}&cs={}",
        server.base,
        settings["publishable_key"].as_str().unwrap(),
        opened["client_secret"].as_str().unwrap()
    );

    let b =
        Browser::start_blocking_third_party_cookies(&[format!("--user-data-dir={}", dir.join("profile").display())])
            .unwrap();
    b.goto(&format!("{page}#{fragment}")).unwrap();
    b.wait_for("return document.querySelector('#link iframe') ? true : null;", std::time::Duration::from_secs(20))
        .unwrap();
    no_violations(&b, "the store's subscription page");
    b.enter_frame("#link iframe").unwrap();
    // The terms: the store (one shop), the most per charge and per month, the end date.
    b.wait_text(".mandate h2", "継続支払いの許可").unwrap();
    b.wait_text(".mandate", "めいぶつチョイス（前橋市）").unwrap();
    b.wait_text(".mandate", "500ポイント").unwrap();
    b.wait_text(".mandate", "800ポイント").unwrap();
    no_placeholders(&b, "the link widget asking for a mandate");
    let colours = b
        .eval(
            "return getComputedStyle(document.body).color + ' on ' + getComputedStyle(document.body).backgroundColor;",
        )
        .unwrap();
    assert_eq!(colours, "rgb(26, 26, 26) on rgb(255, 255, 255)", "unreadable colours are not taken");
    no_violations(&b, "the link widget asking for a mandate");
    shoot(&b, "widget-mandate-terms");
    b.widget_password("#link iframe", &mykey_id, "abc123!x").unwrap();
    b.wait_text("button.primary", "連携して支払いを許可する").unwrap();
    let button = b.eval("return getComputedStyle(document.querySelector('button.primary')).backgroundColor;").unwrap();
    assert_eq!(button, "rgb(11, 83, 148)", "a confirm button white text cannot be read on is not taken");
    no_violations(&b, "the mandate's confirmation");
    no_placeholders(&b, "the mandate's confirmation");
    shoot(&b, "widget-mandate-confirm");
    // A page that makes the frame see-through (to lay a decoy under it) confirms nothing.
    b.leave_frames().unwrap();
    b.eval("document.querySelector('#link iframe').style.opacity = '0.3'; return true;").unwrap();
    b.enter_frame("#link iframe").unwrap();
    b.wait_for("return document.body.dataset.confirmable ? null : true;", std::time::Duration::from_secs(10)).unwrap();
    b.click("form button.primary").unwrap();
    b.wait_text("[role=alert]", "透けている").unwrap();
    no_violations(&b, "the mandate refused while the frame is see-through");
    shoot(&b, "widget-mandate-hidden");
    b.leave_frames().unwrap();
    b.eval("document.querySelector('#link iframe').style.opacity = '1'; return true;").unwrap();
    b.enter_frame("#link iframe").unwrap();
    b.wait_confirmable().unwrap();
    b.click("form button.primary").unwrap();
    b.wait_text("[role=status]", "継続支払いを許可しました").unwrap();
    no_violations(&b, "the mandate granted");
    no_placeholders(&b, "the mandate granted");
    shoot(&b, "widget-mandate-granted");
    b.leave_frames().unwrap();
    b.wait_text("#status", "linked").unwrap();
    assert_eq!(b.eval("return document.getElementById('status').textContent;").unwrap(), "linked: linked", "once");

    // The store charges by the mandate's id: within the terms, and refused outside them.
    let (_, s) = store(http.get(format!("{}/v1/link-sessions/{session}", server.base)));
    let mandate = s["mandate_id"].as_str().unwrap().to_owned();
    let charge = |reference: &str, amount: i64| {
        store(
            http.post(format!("{}/v1/shops/{shop}/mandate-charges", server.base))
                .json(&json!({"reference": reference, "mandate": mandate, "amount": amount, "memo": "定期便 12月分"})),
        )
    };
    let (st, paid) = charge("teiki-2026-12", 500);
    assert_eq!((st, paid["points"].as_i64()), (201, Some(500)), "{paid}");
    assert!(paid.get("postings").is_none(), "the store sees no account: {paid}");
    let (st, v) = charge("teiki-extra", 501);
    assert_eq!((st, v["type"].as_str()), (422, Some("urn:mykey:problem:mandate-limit")), "{v}");
    let (st, v) = charge("teiki-extra", 400);
    assert_eq!((st, v["max_per_month"].as_i64()), (422, Some(800)), "the month's limit: {v}");
    assert_eq!(crate::checkout::balance_of(&server.base, &keys, resident, "municipal"), 1500);
    let _ = std::fs::remove_dir_all(&dir);
}
