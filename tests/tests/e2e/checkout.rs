//! Store checkout end to end: the demo points cloud on 127.0.0.1 and the めいぶつチョイス example
//! store on 127.0.0.2 (another site), in headless Chromium with third-party cookies blocked.
//! A resident buys two products, pays part of the order with points in the embedded widget,
//! the signed webhook turns the order paid, the balance fell, the store's admin refunds part;
//! the widget refuses other origins; axe-core finds no violations on the store's pages or in
//! the widget.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use mykey_core::card::jpki::{self, Pin};
use mykey_core::identity::AuthToken;
use mykey_server::demo::DemoKeys;
use mykey_server::testing::TestDb;
use mykey_tests::webdriver::Browser;
use mykey_tests::{
    csp_violations, no_placeholders, no_violations, run, server_bin, shoot, sibling_bin, temp_dir, web_dist as dist,
    widget_state, Process, Server,
};
use serde_json::{json, Value};

/// A resident with a MyKey ID and the password `abc123!x`, registered over the API with the
/// virtual card in `dir/card.json` (issued by the demo CA in `dir/ca.json` when missing):
/// (MyKey ID, resident).
pub(crate) fn register(base: &str, dir: &Path) -> (String, i64) {
    let file = dir.join("card.json");
    if !file.exists() {
        run(Command::new(server_bin())
            .arg("virtual-card")
            .arg("--demo-ca-file")
            .arg(dir.join("ca.json"))
            .arg("--out")
            .arg(&file))
        .unwrap();
    }
    let mut card =
        mykey_virtual_card::VirtualCard::from_file(&serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap())
            .unwrap();
    let http = reqwest::blocking::Client::builder().cookie_store(true).build().unwrap();
    let post = |path: &str, body: Value| -> Value {
        let res = http.post(format!("{base}{path}")).header("origin", base).json(&body).send().unwrap();
        assert!(res.status().is_success(), "{path}: {}", res.status());
        res.json().unwrap()
    };
    let nonce = post("/v1/auth/nonce", json!({"purpose": "login"}))["nonce"].as_str().unwrap().to_owned();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let token = rt.block_on(async {
        let cert = jpki::read_auth_certificate(&mut card).await.unwrap();
        let sig = jpki::authenticate(&mut card, base, &nonce, &Pin::parse("1234").unwrap()).await.unwrap();
        AuthToken::rs256(&cert, &sig)
    });
    post("/v1/auth/card", json!({"nonce": nonce, "token": token}));
    let candidate =
        post("/v1/registration/candidates", json!({"action": "generate"}))["candidate"].as_str().unwrap().to_owned();
    let done = post(
        "/v1/mykey-ids",
        json!({"candidate": candidate, "password": "abc123!x", "password_confirmation": "abc123!x",
               "email": "hanako@example.jp", "email_confirmation": "hanako@example.jp",
               "notices": {"points_granted": false, "points_expired": false, "settings_changed": false, "mykey_id_changed": false},
               "home_municipality": 1}),
    );
    (candidate, done["resident"].as_i64().unwrap())
}

/// The example store on 127.0.0.2, against `base`; its address.
pub(crate) fn start_store(base: &str, dir: &Path) -> (Process, String) {
    let mut child = Process(
        Command::new(sibling_bin("meibutsu"))
            .args(["--points", base, "--bind", "127.0.0.2:0", "--admin-password", "admin-test"])
            .arg("--keys")
            .arg(dir.join("keys.json"))
            .arg("--database-url")
            .arg(format!("sqlite:{}", dir.join("meibutsu.db").display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let out = BufReader::new(child.0.stdout.take().unwrap());
    for line in out.lines() {
        let line = line.unwrap();
        if let Some(url) = line.strip_prefix("meibutsu store: ") {
            return (child, url.trim_end_matches('/').to_owned());
        }
    }
    panic!("the store did not start");
}

/// `amount` of the demo municipality's points for `resident`, granted with its key.
pub(crate) fn grant(base: &str, keys: &DemoKeys, resident: i64, amount: i64) {
    let body = json!({"id": uuid::Uuid::new_v4(), "resident": resident, "municipality": keys.ids.municipality, "amount": amount});
    let res = reqwest::blocking::Client::new()
        .post(format!("{base}/v1/grants"))
        .bearer_auth(&keys.municipality)
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(res.status(), 201);
}

/// The resident's municipal points (the operator's view).
pub(crate) fn balance(base: &str, keys: &DemoKeys, resident: i64) -> i64 {
    balance_of(base, keys, resident, "municipal")
}

/// The resident's points in accounts of `kind` (`municipal`, `reserved`).
pub(crate) fn balance_of(base: &str, keys: &DemoKeys, resident: i64, kind: &str) -> i64 {
    let v: Value = reqwest::blocking::Client::new()
        .get(format!("{base}/v1/residents/{resident}/balances"))
        .bearer_auth(&keys.operator)
        .send()
        .unwrap()
        .json()
        .unwrap();
    v["accounts"].as_array().unwrap().iter().filter(|a| a["kind"] == kind).map(|a| a["balance"].as_i64().unwrap()).sum()
}

#[test]
fn a_resident_pays_an_online_store_in_the_embedded_widget() {
    let dir = temp_dir("checkout");
    let db = tokio::runtime::Runtime::new().unwrap().block_on(TestDb::new()).unwrap();
    let server = Server::demo_with(&db.url, &dir, &dir.join("ca.json"), &dist()).unwrap();
    let keys: DemoKeys = serde_json::from_slice(&std::fs::read(dir.join("keys.json")).unwrap()).unwrap();
    let (mykey_id, resident) = register(&server.base, &dir);
    grant(&server.base, &keys, resident, 5000);
    let (_store, store) = start_store(&server.base, &dir);

    let b =
        Browser::start_blocking_third_party_cookies(&[format!("--user-data-dir={}", dir.join("profile").display())])
            .unwrap();
    // Two products into the cart.
    b.goto(&format!("{store}/")).unwrap();
    no_violations(&b, "the store's catalog");
    b.goto(&format!("{store}/?q=前橋市")).unwrap();
    b.wait_text("main", "前橋市").unwrap();
    for product in [0, 1] {
        b.goto(&format!("{store}/products/{product}")).unwrap();
        if product == 0 {
            no_violations(&b, "a product page");
        }
        b.click("#add-to-cart").unwrap();
        b.wait_text("h1", "カート").unwrap();
    }
    no_violations(&b, "the cart");
    b.click("#to-checkout").unwrap();
    b.wait_for("return document.querySelector('#pay iframe') ? true : null;", Duration::from_secs(20)).unwrap();
    let pay_page = b.eval("return location.href;").unwrap().as_str().unwrap().to_owned();
    // A message from anywhere but the widget's frame is ignored: no navigation follows it.
    b.eval("window.postMessage({mykey: 'checkout', type: 'success', detail: {}}, '*'); return true;").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(b.eval("return location.href;").unwrap(), pay_page.as_str());
    no_violations(&b, "the payment page");

    // Inside the widget: the points cloud's origin, no cookie.
    b.enter_frame("#pay iframe").unwrap();
    b.wait_text("h1", "ポイントで支払う").unwrap();
    assert_eq!(b.eval("return document.cookie;").unwrap(), "", "the widget keeps nothing in cookies");
    widget_state(&b, "widget-checkout-sign-in");
    // The password is never typed inside the store's page: the frame has no field for it and
    // opens a window of the points cloud's own, which hands the sign-in back.
    b.click("#tab-password").unwrap();
    b.wait_text("#panel-password", "別のウィンドウ").unwrap();
    assert_eq!(b.eval("return document.querySelectorAll('input[type=password]').length;").unwrap(), 0);
    widget_state(&b, "widget-checkout-password");
    let home = b.open_password_window().unwrap();
    assert_eq!(b.eval("return window.top === window && location.pathname;").unwrap(), "/widget/sign-in");
    b.wait_text("main", "へのお支払いのためにサインインします").unwrap();
    b.wait_text(".address", &server.base).unwrap();
    no_violations(&b, "the password window");
    no_placeholders(&b, "the password window");
    shoot(&b, "widget-password-window");
    b.type_text("#mykey-id", &mykey_id).unwrap();
    b.type_text("#password", "wrong-password").unwrap();
    b.click("#password-sign-in button[type=submit]").unwrap();
    b.wait_text("[role=alert]", "パスワードが違います").unwrap();
    no_violations(&b, "the password window's refusal");
    shoot(&b, "widget-password-window-refused");
    b.password_sign_in(&home, "#pay iframe", &mykey_id, "abc123!x").unwrap();
    // Signed in by password: the SDK's wasm (for the card) was never fetched.
    let fetched = b.eval("return performance.getEntriesByType('resource').map((e) => e.name).join(' ');").unwrap();
    assert!(!fetched.as_str().unwrap().contains("mykey_sdk"), "the SDK loads only for the card: {fetched}");
    if let Err(e) = b.wait_text("main", &mykey_id) {
        panic!("{e}: the widget shows {}", b.eval("return document.querySelector('main').textContent;").unwrap());
    }
    widget_state(&b, "widget-checkout-points");
    // The order is over the balance: points pay part, the store collects the rest.
    b.type_text("#points", "3000").unwrap();
    // The frame took its content's height (the widget posts it) instead of the first 320 px.
    b.leave_frames().unwrap();
    let height = b.eval("return document.querySelector('#pay iframe').style.height;").unwrap();
    assert_ne!(height.as_str(), Some("320px"), "the frame follows its content");
    b.enter_frame("#pay iframe").unwrap();
    b.click("form button.primary").unwrap();
    b.leave_frames().unwrap();
    let paid = b.wait_for(
        "const e = document.getElementById('order-state'); return e && e.dataset.state === 'completed' ? e.textContent : null;",
        Duration::from_secs(30),
    );
    if let Err(e) = paid {
        let events = reqwest::blocking::Client::new()
            .get(format!("{}/v1/shops/{}/events", server.base, keys.ids.online_store))
            .bearer_auth(&keys.online_store)
            .send()
            .unwrap()
            .text()
            .unwrap();
        panic!(
            "{e}: {} shows {}; events: {events}",
            b.eval("return location.href;").unwrap(),
            b.eval("return document.body.textContent;").unwrap()
        );
    }
    b.wait_text("#order-state", "残り").unwrap();
    no_violations(&b, "the paid order");
    assert_eq!(balance(&server.base, &keys, resident), 2000, "the balance fell by the points used");

    // The store's admin refunds part: the points come back and the event reaches the order.
    let order = pay_page.trim_end_matches("/pay").rsplit('/').next().unwrap().to_owned();
    let http = reqwest::blocking::Client::new();
    let refund = http
        .post(format!("{store}/admin/orders/{order}/refund"))
        .basic_auth("admin", Some("admin-test"))
        .header("origin", &store)
        .form(&[("refund_id", uuid::Uuid::new_v4().to_string()), ("points", "1000".into())])
        .send()
        .unwrap();
    assert!(refund.status().is_success() || refund.status().is_redirection(), "{}", refund.status());
    assert_eq!(balance(&server.base, &keys, resident), 3000);
    let mut page = String::new();
    for _ in 0..100 {
        page = http.get(format!("{store}/orders/{order}")).send().unwrap().text().unwrap();
        if page.contains("返金済みポイント：1000") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(page.contains("返金済みポイント：1000"), "the refund's event reached the order: {page}");
    // A forged webhook is refused by the store's verifier.
    let forged =
        http.post(format!("{store}/webhooks")).header("mykey-signature", "t=1,v1=00").body("{}").send().unwrap();
    assert_eq!(forged.status(), 400);

    // The widget's page names the store's origin as the only one that may frame it, and
    // refuses a page elsewhere outright.
    let settings: Value = http
        .get(format!("{}/v1/shops/{}/checkout", server.base, keys.ids.online_store))
        .bearer_auth(&keys.online_store)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let pk = settings["publishable_key"].as_str().unwrap().to_owned();
    // Every event reaches the store's server (the refund's moments after it was made).
    let mut session = Value::Null;
    for _ in 0..100 {
        session = http
            .get(format!("{}/v1/shops/{}/events", server.base, keys.ids.online_store))
            .bearer_auth(&keys.online_store)
            .send()
            .unwrap()
            .json()
            .unwrap();
        if session.as_array().unwrap().iter().all(|e| e["state"] == "delivered") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let session_id = session[0]["event"]["session"]["id"].as_str().unwrap().to_owned();
    assert!(session.as_array().unwrap().iter().all(|e| e["state"] == "delivered"), "{session:#}");
    let frame = http.get(format!("{}/widget/frame?pk={pk}&session={session_id}", server.base)).send().unwrap();
    let csp = frame.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains(&format!("frame-ancestors {store};")), "{csp}");
    let elsewhere = http
        .get(format!("{}/widget/frame?pk={pk}&session={session_id}", server.base))
        .header("referer", "http://127.0.0.3:9999/shop")
        .send()
        .unwrap();
    assert_eq!(elsewhere.status(), 403);
    // The page is the web build's, naming its script by content hash.
    let page = frame.text().unwrap();
    assert!(page.contains("/app/sdk/frame.") && !page.contains("/app/sdk/frame.js"), "{page}");
    // The password window is never framed, and opened by anything but a widget's frame (here
    // straight from the address bar) it asks for nothing.
    let window = http.get(format!("{}/widget/sign-in?kind=checkout", server.base)).send().unwrap();
    let csp = window.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(window.headers()["cache-control"], "no-store");
    assert_eq!(window.headers()["x-frame-options"], "DENY");
    b.goto(&format!("{}/widget/sign-in?kind=checkout", server.base)).unwrap();
    b.wait_text("[role=alert]", "つながっていません").unwrap();
    assert_eq!(b.eval("return document.querySelectorAll('input').length;").unwrap(), 0);
    no_violations(&b, "the password window opened directly");
    shoot(&b, "widget-password-window-alone");

    // In the browser: a page on another origin mounting the widget with the store's keys gets
    // no widget (the frame is refused), so nothing is ever ready there.
    let open: Value = http
        .post(format!("{}/v1/checkout/sessions", server.base))
        .bearer_auth(&keys.online_store)
        .json(&json!({"id": uuid::Uuid::new_v4(), "shop": keys.ids.online_store, "amount": 100, "order_reference": "MC-X"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let secret = open["client_secret"].as_str().unwrap();
    let evil = format!(
        "<!doctype html><html lang=\"en\"><title>elsewhere</title><div id=\"pay\"></div><p id=\"result\"></p><script type=\"module\">\
         const {{ mountCheckout }} = await import('{}/app/sdk/checkout.js');\
         mountCheckout(document.getElementById('pay'), {{ publishableKey: '{pk}', clientSecret: '{secret}', \
           onReady: () => {{ document.getElementById('result').textContent = '\"ready\"'; }}, \
           onError: (e) => {{ document.getElementById('result').textContent = JSON.stringify(e.code); }} }});\
         setTimeout(() => {{ const r = document.getElementById('result'); if (!r.textContent) r.textContent = document.querySelector('#pay iframe') ? '\"not ready\"' : '\"not mounted\"'; }}, 6000);\
         </script>",
        server.base
    );
    let elsewhere = serve_once_on("127.0.0.3:0", evil);
    b.goto(&elsewhere).unwrap();
    assert_eq!(
        b.page_result().unwrap(),
        "frame_refused",
        "the widget does not run on a page the store did not register, and the page is told"
    );
    assert_eq!(csp_violations(&server.base), 0, "the widget's own pages kept their policy");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Serves `html` at `/` on `addr` (another site) in the background; its address.
pub(crate) fn serve_once_on(addr: &str, html: String) -> String {
    let listener = std::net::TcpListener::bind(addr).unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let app =
                axum::Router::new().route("/", axum::routing::get(move || async move { axum::response::Html(html) }));
            axum::serve(tokio::net::TcpListener::from_std(listener).unwrap(), app).await.unwrap();
        });
    });
    url
}
