//! A store written only from `docs/checkout.md`, as a store's engineer would: its page is the
//! doc's snippet with the placeholders filled in, its server makes the requests the doc shows,
//! and it verifies webhooks the way the doc says (HMAC-SHA256 over `t.body`, keyed with the
//! whole `whsec_…` string, within 300 s), with its own code rather than the project's. On a
//! fourth origin, in Chromium with third-party cookies blocked.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use mykey_server::demo::DemoKeys;
use mykey_server::testing::TestDb;
use mykey_tests::webdriver::Browser;
use mykey_tests::{no_violations, temp_dir, web_dist as dist, widget_state, Server};
use serde_json::{json, Value};

use crate::checkout::{grant, register};

/// The first fenced block of language `lang` after the heading `heading` in `doc`.
fn snippet(doc: &str, heading: &str, lang: &str) -> String {
    let section = &doc[doc.find(heading).unwrap_or_else(|| panic!("{heading:?} in the doc"))..];
    let fence = format!("```{lang}\n");
    let start = section.find(&fence).unwrap_or_else(|| panic!("a {lang} block under {heading:?}")) + fence.len();
    section[start..start + section[start..].find("```").expect("the block ends")].to_owned()
}

/// Fills in one placeholder the doc's snippet leaves to the store, which must be there.
fn fill(page: String, placeholder: &str, value: &str) -> String {
    assert!(page.contains(placeholder), "the doc's snippet no longer has {placeholder:?}: {page}");
    page.replace(placeholder, value)
}

/// Verifies a `Mykey-Signature` header over `body` as docs/checkout.md "Verify every event" says.
fn verify(secret: &str, header: &str, body: &str, now: i64) -> bool {
    let mut t = None;
    let mut v1 = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", x)) => t = x.parse::<i64>().ok(),
            Some(("v1", x)) => v1.push(x.to_owned()),
            _ => {}
        }
    }
    let Some(t) = t else { return false };
    if (now - t).abs() > 300 {
        return false;
    }
    let message = format!("{t}.{body}");
    // verify_slice compares in constant time.
    v1.iter().filter_map(|s| hex::decode(s).ok()).any(|s| {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(message.as_bytes());
        mac.verify_slice(&s).is_ok()
    })
}

#[test]
fn a_store_built_from_the_checkout_docs_alone_takes_a_payment() {
    let dir = temp_dir("docs-store");
    let db = tokio::runtime::Runtime::new().unwrap().block_on(TestDb::new()).unwrap();
    let server = Server::demo_with(&db.url, &dir, &dir.join("ca.json"), &dist()).unwrap();
    let keys: DemoKeys = serde_json::from_slice(&std::fs::read(dir.join("keys.json")).unwrap()).unwrap();
    let (mykey_id, resident) = register(&server.base, &dir);
    grant(&server.base, &keys, resident, 5000);
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/checkout.md")).unwrap();

    // The store's own server on a fourth address: its pages and its webhook receiver.
    let listener = std::net::TcpListener::bind("127.0.0.4:0").unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let page: Arc<Mutex<String>> = Arc::default();
    let received: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    {
        let (page, received) = (page.clone(), received.clone());
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            tokio::runtime::Runtime::new().unwrap().block_on(async move {
                use axum::routing::{get, post};
                let coop = page.clone();
                let app = axum::Router::new()
                    .route("/pay", get(move || async move { axum::response::Html(page.lock().unwrap().clone()) }))
                    // The same page isolating itself from the windows it opens (COOP same-origin).
                    .route(
                        "/pay-isolated",
                        get(move || async move {
                            (
                                [("cross-origin-opener-policy", "same-origin")],
                                axum::response::Html(coop.lock().unwrap().clone()),
                            )
                        }),
                    )
                    .route(
                        "/orders/MC-DOCS-1",
                        get(|| async { axum::response::Html("<!doctype html><html lang=\"ja\"><title>ご注文</title><h1>ご注文ありがとうございました</h1></html>") }),
                    )
                    .route(
                        "/webhooks",
                        post(move |headers: axum::http::HeaderMap, body: String| async move {
                            let sig = headers.get("mykey-signature").and_then(|v| v.to_str().ok()).unwrap_or_default();
                            received.lock().unwrap().push((sig.to_owned(), body));
                            axum::http::StatusCode::NO_CONTENT
                        }),
                    );
                axum::serve(tokio::net::TcpListener::from_std(listener).unwrap(), app).await.unwrap();
            });
        });
    }

    // 2. Register the origin and the webhook, then make the signing secret.
    let http = reqwest::blocking::Client::new();
    let shop = keys.ids.online_store;
    let call = |req: reqwest::blocking::RequestBuilder| -> (u16, Value) {
        let res = req.bearer_auth(&keys.online_store).send().unwrap();
        (res.status().as_u16(), res.json().unwrap_or(Value::Null))
    };
    let (st, settings) = call(http.put(format!("{}/v1/shops/{shop}/checkout", server.base)).json(&json!({
        "origins": [origin], "webhook_url": format!("{origin}/webhooks"),
    })));
    assert_eq!(st, 200, "{settings}");
    let pk = settings["publishable_key"].as_str().unwrap().to_owned();
    let (st, secret) = call(http.post(format!("{}/v1/shops/{shop}/webhook-secrets", server.base)));
    assert_eq!(st, 201, "{secret}");
    let secret = secret["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));

    // 3. A session for the order.
    let (st, opened) = call(http.post(format!("{}/v1/checkout/sessions", server.base)).json(&json!({
        "id": uuid::Uuid::new_v4(), "shop": shop, "amount": 1200, "order_reference": "MC-DOCS-1",
        "line_items": [{"name": "上州地鶏", "quantity": 1, "unit_amount": 1200}],
        "capture": "automatic", "return_url": format!("{origin}/orders/MC-DOCS-1"),
    })));
    assert_eq!(st, 201, "{opened}");
    let client_secret = opened["client_secret"].as_str().unwrap();

    // 4. The page: the doc's snippet, its placeholders filled in, nothing else added.
    let store_page = |client_secret: &str| {
        let mut html = snippet(&doc, "## 4. Mount the widget", "html");
        html = fill(html, "https://points.example", &server.base);
        html = fill(html, "'pk_…'", &format!("'{pk}'"));
        html = fill(html, "clientSecret: '…'", &format!("clientSecret: '{client_secret}'"));
        html = fill(html, "'/orders/…'", "'/orders/MC-DOCS-1'");
        format!(
            "<!doctype html><html lang=\"ja\"><head><meta charset=\"utf-8\"><title>お支払い</title></head><body><main><h1>お支払い</h1>{html}</main></body></html>"
        )
    };
    *page.lock().unwrap() = store_page(client_secret);

    let b =
        Browser::start_blocking_third_party_cookies(&[format!("--user-data-dir={}", dir.join("profile").display())])
            .unwrap();
    b.goto(&format!("{origin}/pay")).unwrap();
    b.wait_for("return document.querySelector('#pay iframe') ? true : null;", Duration::from_secs(20)).unwrap();
    no_violations(&b, "the docs' store page");
    b.enter_frame("#pay iframe").unwrap();
    b.wait_text("h1", "ポイントで支払う").unwrap();
    widget_state(&b, "docs-store-sign-in");
    b.widget_password("#pay iframe", &mykey_id, "abc123!x").unwrap();
    b.wait_text("main", &mykey_id).unwrap();
    b.wait_confirmable().unwrap();
    b.click("form button.primary").unwrap();
    b.leave_frames().unwrap();
    // onSuccess as the doc writes it: to the order's page.
    b.wait_for("return location.pathname === '/orders/MC-DOCS-1' ? true : null;", Duration::from_secs(30)).unwrap();

    // The webhook, verified by the store's own reading of the doc.
    let mut event = None;
    for _ in 0..200 {
        event = received.lock().unwrap().iter().find(|(_, body)| body.contains("checkout.session.completed")).cloned();
        if event.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let (sig, body) = event.expect("checkout.session.completed reached the store");
    let now = chrono::Utc::now().timestamp();
    assert!(verify(&secret, &sig, &body, now), "the doc's scheme verifies the event: {sig}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (v["session"]["order_reference"].as_str(), v["session"]["state"].as_str()),
        (Some("MC-DOCS-1"), Some("completed"))
    );
    // And it refuses what it should: an altered body, a stale timestamp, another secret.
    assert!(!verify(&secret, &sig, &body.replace("MC-DOCS-1", "MC-DOCS-2"), now));
    assert!(!verify(&secret, &sig, &body, now + 301));
    assert!(!verify("whsec_other", &sig, &body, now));

    // A page that cuts itself off from the windows it opens (COOP same-origin, which the doc
    // warns of): the widget gets no handle to the password window, and says what to do.
    let (st, opened) = call(http.post(format!("{}/v1/checkout/sessions", server.base)).json(&json!({
        "id": uuid::Uuid::new_v4(), "shop": shop, "amount": 100, "order_reference": "MC-DOCS-2",
    })));
    assert_eq!(st, 201, "{opened}");
    *page.lock().unwrap() = store_page(opened["client_secret"].as_str().unwrap());
    b.goto(&format!("{origin}/pay-isolated")).unwrap();
    b.wait_for("return document.querySelector('#pay iframe') ? true : null;", Duration::from_secs(20)).unwrap();
    b.enter_frame("#pay iframe").unwrap();
    b.wait_text("h1", "ポイントで支払う").unwrap();
    b.click("#tab-password").unwrap();
    b.click("#open-sign-in").unwrap();
    b.wait_text("[role=alert]", "連絡できません").unwrap();
    widget_state(&b, "widget-password-window-cut-off");
}
