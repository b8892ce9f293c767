//! Store checkout over real HTTP on the database the run selects: a store's key alone charges
//! and reads nobody; a session the resident confirmed in the widget (password or card) moves
//! the points once; manual capture, partial points, refunds, and signed webhooks that a store's
//! server verifies, including one that was down and came back.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use mykey_core::card::jpki::{self, Pin};
use mykey_core::identity::AuthToken;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::identity::{card, registered, server, Browser, Options, Server};

pub(crate) const STORE_ORIGIN: &str = "http://127.0.0.2:8080";

/// A store's server receiving webhooks: what arrived, and whether it answers 2xx.
#[derive(Clone, Default)]
pub(crate) struct Receiver {
    got: Arc<Mutex<Vec<(String, String)>>>,
    down: Arc<std::sync::atomic::AtomicBool>,
}

impl Receiver {
    pub(crate) async fn start(&self) -> String {
        let me = self.clone();
        let app = axum::Router::new().route(
            "/hooks",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                let me = me.clone();
                async move {
                    if me.down.load(std::sync::atomic::Ordering::SeqCst) {
                        return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                    }
                    let sig =
                        headers.get("mykey-signature").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
                    me.got.lock().unwrap().push((sig, body));
                    axum::http::StatusCode::NO_CONTENT
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    /// Waits for `n` events; each verifies with `secret`.
    pub(crate) async fn events(&self, n: usize, secret: &str) -> Vec<Value> {
        for _ in 0..200 {
            let got = self.got.lock().unwrap().clone();
            if got.len() >= n {
                let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64;
                return got
                    .iter()
                    .map(|(sig, body)| {
                        mykey_core::webhook::verify(secret, sig, body.as_bytes(), now, 300)
                            .expect("signed by the store's secret");
                        serde_json::from_str(body).unwrap()
                    })
                    .collect();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{n} webhooks did not arrive: {:?}", self.got.lock().unwrap());
    }
}

/// A store's (or, `with_key`, a partner's) server calling the API with its secret key.
pub(crate) struct Store<'a> {
    s: &'a Server,
    http: reqwest::Client,
    key: String,
}

impl<'a> Store<'a> {
    fn new(s: &'a Server) -> Store<'a> {
        Store::with_key(s, &s.online_store_key)
    }

    pub(crate) fn with_key(s: &'a Server, key: &str) -> Store<'a> {
        Store { s, http: reqwest::Client::new(), key: key.to_owned() }
    }

    /// The shop a store key acts for (the online store, unless another key was given).
    pub(crate) fn subject(&self) -> i64 {
        self.s.online_store
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        let res = req.bearer_auth(&self.key).send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() })
    }
    pub(crate) async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(self.http.post(format!("{}{path}", self.s.base)).json(&body)).await
    }
    pub(crate) async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(self.http.put(format!("{}{path}", self.s.base)).json(&body)).await
    }
    pub(crate) async fn get(&self, path: &str) -> (u16, Value) {
        self.send(self.http.get(format!("{}{path}", self.s.base))).await
    }

    /// Registers the store's origin and webhook; returns its signing secret.
    pub(crate) async fn set_up(&self, webhook: &str) -> String {
        let shop = self.s.online_store;
        let (st, v) = self
            .put(&format!("/v1/shops/{shop}/checkout"), json!({"origins": [STORE_ORIGIN], "webhook_url": webhook}))
            .await;
        assert_eq!(st, 200, "{v}");
        assert!(v["publishable_key"].as_str().unwrap().starts_with("pk_"));
        let (st, v) = self.post(&format!("/v1/shops/{shop}/webhook-secrets"), json!({})).await;
        assert_eq!(st, 201, "{v}");
        v["secret"].as_str().unwrap().to_owned()
    }

    pub(crate) async fn open(&self, body: Value) -> (String, String) {
        let (st, v) = self.post("/v1/checkout/sessions", body).await;
        assert_eq!(st, 201, "{v}");
        (v["session"]["id"].as_str().unwrap().to_owned(), v["client_secret"].as_str().unwrap().to_owned())
    }
}

/// The store's event list once its first event is as `done` says.
pub(crate) async fn events_when(store: &Store<'_>, shop: i64, done: impl Fn(&Value) -> bool) -> Value {
    let mut listed = Value::Null;
    for _ in 0..200 {
        listed = store.get(&format!("/v1/shops/{shop}/events")).await.1;
        if done(&listed[0]) {
            return listed;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the event did not get there: {listed}");
}

pub(crate) fn order(shop: i64, amount: i64) -> Value {
    json!({
        "id": Uuid::new_v4(), "shop": shop, "amount": amount, "order_reference": "MC-1001",
        "line_items": [{"name": "上州地鶏の炭火焼", "quantity": 1, "unit_amount": amount - 500},
                       {"name": "焼きまんじゅう", "quantity": 2, "unit_amount": 250}],
        "return_url": format!("{STORE_ORIGIN}/orders/MC-1001"), "metadata": {"cart": "c-77"}
    })
}

pub(crate) async fn grant(s: &Server, resident: i64, amount: i64) {
    let grant = json!({"id": Uuid::new_v4(), "resident": resident, "municipality": 1, "amount": amount});
    let res = reqwest::Client::new()
        .post(format!("{}/v1/grants", s.base))
        .bearer_auth(&s.municipality_key)
        .json(&grant)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
}

/// A resident with a MyKey ID (password `abc123!x`) and `points` of municipality 1, signed in
/// in a browser of their own.
pub(crate) async fn resident_with(s: &Server, points: i64) -> (Browser, String, i64) {
    let b = Browser::new(s);
    let (mykey_id, resident) = registered(&b, &mut card(s)).await;
    if points > 0 {
        grant(s, resident, points).await;
    }
    (b, mykey_id, resident)
}

async fn municipal_balance(b: &Browser, resident: i64) -> (i64, i64) {
    let (_, v) = b.get(&format!("/v1/residents/{resident}/balances")).await;
    let a = v["accounts"].as_array().unwrap().iter().find(|a| a["kind"] == "municipal").unwrap().clone();
    (a["balance"].as_i64().unwrap(), a["available"].as_i64().unwrap())
}

/// The widget's two steps: the resident signs in with the password and confirms `points`.
pub(crate) async fn pays(b: &Browser, id: &str, secret: &str, mykey_id: &str, points: i64) -> (u16, Value) {
    let (st, signed) = sign_in(b, id, secret, mykey_id).await;
    assert_eq!(st, 200, "{signed}");
    let body = json!({"client_secret": secret, "grant": signed["grant"], "points": points});
    b.post(&format!("/v1/checkout/sessions/{id}/confirm"), body).await
}

/// The widget's password sign-in (sent as the points cloud's own page does).
async fn sign_in(b: &Browser, id: &str, secret: &str, mykey_id: &str) -> (u16, Value) {
    b.post(
        &format!("/v1/checkout/sessions/{id}/sign-in"),
        json!({"client_secret": secret, "password": {"mykey_id": mykey_id, "password": "abc123!x"}}),
    )
    .await
}

#[tokio::test]
async fn a_store_charges_only_through_a_session_the_resident_confirmed() {
    let s = server(Options::default()).await;
    let b = Browser::new(&s);
    let mut card1 = card(&s);
    let (mykey_id, resident) = registered(&b, &mut card1).await;
    grant(&s, resident, 2000).await;
    let store = Store::new(&s);

    // The old hole: a store's key alone charging or reading a resident.
    let bare =
        json!({"id": Uuid::new_v4(), "resident": resident, "municipality": 1, "shop": s.online_store, "amount": 1});
    let (st, v) = store.post("/v1/payments", bare.clone()).await;
    assert_eq!(st, 403, "{v}");
    let (st, _) = store.post("/v1/holds", json!({"id": Uuid::new_v4(), "resident": resident, "municipality": 1, "shop": s.online_store, "amount": 1, "timeout_seconds": 60})).await;
    assert_eq!(st, 403);
    assert_eq!(store.get(&format!("/v1/residents/{resident}/balances")).await.0, 403);

    // A session needs the store's origins first.
    let (st, v) = store.post("/v1/checkout/sessions", order(s.online_store, 1200)).await;
    assert_eq!(st, 400, "{v}");
    let receiver = Receiver::default();
    let secret = store.set_up(&receiver.start().await).await;

    let body = order(s.online_store, 1200);
    let (id, client_secret) = store.open(body.clone()).await;
    let (st, again) = store.post("/v1/checkout/sessions", body.clone()).await;
    assert_eq!(
        (st, again["session"]["id"].as_str(), again["client_secret"].as_str()),
        (201, Some(id.as_str()), Some(client_secret.as_str())),
        "a retry gives the same session"
    );
    let mut changed = body.clone();
    changed["amount"] = json!(1300);
    changed["line_items"] = json!([]);
    assert_eq!(store.post("/v1/checkout/sessions", changed).await.0, 409, "a changed cart under the same id");
    // Refusals at creation: lines that do not add up, a return URL elsewhere, another store.
    let mut bad = order(s.online_store, 1200);
    bad["amount"] = json!(1100);
    assert_eq!(store.post("/v1/checkout/sessions", bad).await.0, 400);
    let mut elsewhere = order(s.online_store, 1200);
    elsewhere["return_url"] = json!("https://evil.example/thanks");
    let (st, v) = store.post("/v1/checkout/sessions", elsewhere).await;
    assert_eq!((st, v["type"].as_str().unwrap()), (403, "urn:mykey:problem:origin-not-allowed"));
    assert_eq!(store.post("/v1/checkout/sessions", order(s.library, 1200)).await.0, 403);

    // The widget: the client secret shows this session only.
    let (st, _) = b
        .post(
            &format!("/v1/checkout/sessions/{id}/view"),
            json!({"client_secret": format!("{id}_secret_{}", "0".repeat(64))}),
        )
        .await;
    assert_eq!(st, 401);
    let (st, view) = b.post(&format!("/v1/checkout/sessions/{id}/view"), json!({"client_secret": client_secret})).await;
    assert_eq!(st, 200, "{view}");
    assert_eq!((view["amount"].as_i64(), view["state"].as_str()), (Some(1200), Some("open")));
    assert_eq!(view["origins"], json!([STORE_ORIGIN]));

    // Confirming needs the resident's sign-in; a grant is for its own session only.
    let confirm = |grant: &str, points: i64| json!({"client_secret": client_secret, "grant": grant, "points": points});
    let (st, _) = b.post(&format!("/v1/checkout/sessions/{id}/confirm"), confirm("f".repeat(64).as_str(), 1200)).await;
    assert_eq!(st, 401);
    let (st, signed) = sign_in(&b, &id, &client_secret, &mykey_id).await;
    assert_eq!(st, 200, "{signed}");
    assert_eq!(signed["usable"], json!([{"event": null, "name": "", "available": 2000}]));
    let grant = signed["grant"].as_str().unwrap().to_owned();
    let (other_id, other_secret) = store.open(order(s.online_store, 900)).await;
    let (st, _) = b
        .post(
            &format!("/v1/checkout/sessions/{other_id}/confirm"),
            json!({"client_secret": other_secret, "grant": grant, "points": 900}),
        )
        .await;
    assert_eq!(st, 401, "a grant confirms only the session it was signed in for");
    // The whole order only, unless the store allows part.
    let (st, v) = b.post(&format!("/v1/checkout/sessions/{id}/confirm"), confirm(&grant, 1000)).await;
    assert_eq!(st, 400, "{v}");
    let (st, v) = b.post(&format!("/v1/checkout/sessions/{id}/confirm"), confirm(&grant, 1200)).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["state"], "completed");
    // The charge is refunded through its session only: the store's counter device, given the
    // transaction id from the resident's history, gets no refund challenge for it.
    let (_, balances) = b.get(&format!("/v1/residents/{resident}/balances")).await;
    let account =
        balances["accounts"].as_array().unwrap().iter().find(|a| a["kind"] == "municipal").unwrap()["id"].clone();
    let (_, history) = b.get(&format!("/v1/accounts/{account}/history?kind=payment")).await;
    let charge = history["entries"][0]["transaction"].clone();
    let http = reqwest::Client::new();
    let device = mykey_server::testing::device::TestDevice::enrol(&http, &s.base, &s.online_store_key, s.online_store)
        .await
        .unwrap();
    let url = format!("{}/v1/shops/{}/refund-challenges", s.base, s.online_store);
    let res =
        device.request(&http, reqwest::Method::POST, &url, Some(&json!({"payment": charge, "amount": 1}))).send().await;
    assert_eq!(res.unwrap().status(), 404, "a checkout's charge is no counter payment");
    let (st, _) = b.post(&format!("/v1/checkout/sessions/{id}/confirm"), confirm(&grant, 1200)).await;
    assert_eq!(st, 401, "the sign-in ended with the payment");
    assert_eq!(municipal_balance(&b, resident).await, (800, 800));
    let (st, v) = sign_in(&b, &id, &client_secret, &mykey_id).await;
    assert_eq!((st, v["type"].as_str().unwrap()), (409, "urn:mykey:problem:checkout-not-open"), "once");

    let (st, session) = store.get(&format!("/v1/checkout/sessions/{id}")).await;
    assert_eq!(st, 200);
    assert_eq!(
        (session["state"].as_str(), session["captured"].as_i64(), session["amount_due"].as_i64()),
        (Some("completed"), Some(1200), Some(0))
    );
    assert_eq!(session["metadata"], json!({"cart": "c-77"}));
    let events = receiver.events(1, &secret).await;
    assert_eq!(events[0]["type"], "checkout.session.completed");
    assert_eq!(events[0]["session"]["id"], id.as_str());

    // Refunds: partial, repeated, never past what was captured.
    let r1 = json!({"id": Uuid::new_v4(), "points": 500});
    let (st, v) = store.post(&format!("/v1/checkout/sessions/{id}/refunds"), r1.clone()).await;
    assert_eq!((st, v["refunded_total"].as_i64()), (201, Some(500)), "{v}");
    let (st, _) = store.post(&format!("/v1/checkout/sessions/{id}/refunds"), r1.clone()).await;
    assert_eq!(st, 201, "a retried refund");
    assert_eq!(municipal_balance(&b, resident).await, (1300, 1300), "a retry gave nothing twice");
    let (st, v) =
        store.post(&format!("/v1/checkout/sessions/{id}/refunds"), json!({"id": Uuid::new_v4(), "points": 800})).await;
    assert_eq!(
        (st, v["type"].as_str().unwrap(), v["refundable"].as_i64()),
        (422, "urn:mykey:problem:refund-exceeds-capture", Some(700))
    );
    // The same refund sent several times at the same moment: one refund, the same answer each time.
    let r2 = json!({"id": Uuid::new_v4(), "points": 700});
    let path = format!("/v1/checkout/sessions/{id}/refunds");
    let answers = futures_util::future::join_all((0..8).map(|_| store.post(&path, r2.clone()))).await;
    for (st, v) in &answers {
        assert_eq!((*st, v["refunded_total"].as_i64()), (201, Some(1200)), "{v}");
    }
    assert_eq!(municipal_balance(&b, resident).await, (2000, 2000));
    let events = receiver.events(3, &secret).await;
    assert_eq!(events.iter().filter(|e| e["type"] == "checkout.session.refunded").count(), 2);

    // Another store reads none of it; a terminal's key is no store's.
    let res = reqwest::Client::new()
        .get(format!("{}/v1/checkout/sessions/{id}", s.base))
        .bearer_auth(&s.library_key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let http = reqwest::Client::new();
    let url = format!("{}/v1/checkout/sessions/{id}", s.base);
    let res = s.terminal.request(&http, reqwest::Method::GET, &url, None).send().await.unwrap();
    assert_eq!(res.status(), 403);

    // The card signs in inside the widget too, in the widget's context: its nonce is bound to
    // the session. A signature made for the web login's context is refused there.
    let (st, n) =
        b.post(&format!("/v1/checkout/sessions/{other_id}/nonce"), json!({"client_secret": other_secret})).await;
    assert_eq!(st, 200, "{n}");
    let nonce = n["nonce"].as_str().unwrap();
    let cert = jpki::read_auth_certificate(&mut card1).await.unwrap();
    let web = jpki::authenticate(&mut card1, &s.base, nonce, &Pin::parse("1234").unwrap()).await.unwrap();
    let (st, v) = b
        .post(
            &format!("/v1/checkout/sessions/{other_id}/sign-in"),
            json!({"client_secret": other_secret, "card": {"nonce": nonce, "token": AuthToken::rs256(&cert, &web)}}),
        )
        .await;
    assert_eq!((st, v["type"].as_str()), (401, Some("urn:mykey:problem:card-rejected")), "{v}");
    let (st, n) =
        b.post(&format!("/v1/checkout/sessions/{other_id}/nonce"), json!({"client_secret": other_secret})).await;
    assert_eq!(st, 200, "{n}");
    let nonce = n["nonce"].as_str().unwrap();
    let widget = mykey_core::identity::SigningContext::Widget.signed_origin(&s.base);
    let sig = jpki::authenticate(&mut card1, &widget, nonce, &Pin::parse("1234").unwrap()).await.unwrap();
    let token = AuthToken::rs256(&cert, &sig);
    let (st, _) = b
        .post(
            &format!("/v1/checkout/sessions/{id}/sign-in"),
            json!({"client_secret": client_secret, "card": {"nonce": nonce, "token": token}}),
        )
        .await;
    assert_eq!(st, 409, "the first session is no longer open");
    let (st, v) = b
        .post(
            &format!("/v1/checkout/sessions/{other_id}/sign-in"),
            json!({"client_secret": other_secret, "card": {"nonce": nonce, "token": token}}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["mykey_id"], mykey_id.as_str());
    let (st, v) = b
        .post(
            &format!("/v1/checkout/sessions/{other_id}/confirm"),
            json!({"client_secret": other_secret, "grant": v["grant"], "points": 900}),
        )
        .await;
    assert_eq!((st, v["state"].as_str()), (200, Some("completed")), "{v}");
    assert_eq!(municipal_balance(&b, resident).await, (1100, 1100));
}

#[tokio::test]
async fn manual_capture_partial_points_cancel_and_refusals_of_the_ledger() {
    let s = server(Options::default()).await;
    let (b, mykey_id, resident) = resident_with(&s, 2000).await;
    let store = Store::new(&s);
    let receiver = Receiver::default();
    let secret = store.set_up(&receiver.start().await).await;

    let mut body = order(s.online_store, 3000);
    body["partial_points"] = json!(true);
    body["capture"] = json!("manual");
    let (id, cs) = store.open(body).await;
    let (_, signed) = sign_in(&b, &id, &cs, &mykey_id).await;
    let grant = signed["grant"].as_str().unwrap().to_owned();
    // More than the resident has: refused by the ledger, the session stays open, the store hears.
    let (st, v) = b
        .post(
            &format!("/v1/checkout/sessions/{id}/confirm"),
            json!({"client_secret": cs, "grant": grant, "points": 2500}),
        )
        .await;
    assert_eq!((st, v["type"].as_str().unwrap()), (422, "urn:mykey:problem:insufficient-points"));
    let (st, v) = b
        .post(
            &format!("/v1/checkout/sessions/{id}/confirm"),
            json!({"client_secret": cs, "grant": grant, "points": 500}),
        )
        .await;
    assert_eq!((st, v["state"].as_str(), v["points"].as_i64()), (200, Some("authorized"), Some(500)), "{v}");
    assert_eq!(municipal_balance(&b, resident).await, (2000, 1500), "held, not yet moved");
    let (_, session) = store.get(&format!("/v1/checkout/sessions/{id}")).await;
    assert_eq!((session["amount_due"].as_i64(), session["captured"].as_i64()), (Some(2500), Some(0)));
    // Refunds wait for a capture; a capture is at most what was held.
    assert_eq!(
        store.post(&format!("/v1/checkout/sessions/{id}/refunds"), json!({"id": Uuid::new_v4(), "points": 1})).await.0,
        409
    );
    assert_eq!(store.post(&format!("/v1/checkout/sessions/{id}/capture"), json!({"points": 501})).await.0, 422);
    let (st, v) = store.post(&format!("/v1/checkout/sessions/{id}/capture"), json!({"points": 400})).await;
    assert_eq!((st, v["state"].as_str(), v["captured"].as_i64()), (200, Some("completed"), Some(400)), "{v}");
    assert_eq!(municipal_balance(&b, resident).await, (1600, 1600), "the rest of the hold was released");
    let kinds: Vec<String> =
        receiver.events(3, &secret).await.iter().map(|e| e["type"].as_str().unwrap().to_owned()).collect();
    assert_eq!(kinds, ["checkout.session.failed", "checkout.session.authorized", "checkout.session.captured"]);

    // Cancelling: an open session, then an authorised one (its points come back).
    let (open_id, _) = store.open(order(s.online_store, 700)).await;
    let (st, v) = store.post(&format!("/v1/checkout/sessions/{open_id}/cancel"), json!({})).await;
    assert_eq!((st, v["state"].as_str()), (200, Some("cancelled")));
    let mut manual = order(s.online_store, 700);
    manual["capture"] = json!("manual");
    let (held_id, held_cs) = store.open(manual).await;
    let (st, _) = pays(&b, &held_id, &held_cs, &mykey_id, 700).await;
    assert_eq!(st, 200);
    assert_eq!(municipal_balance(&b, resident).await, (1600, 900));
    let (st, v) = store.post(&format!("/v1/checkout/sessions/{held_id}/cancel"), json!({})).await;
    assert_eq!((st, v["state"].as_str()), (200, Some("cancelled")), "{v}");
    assert_eq!(municipal_balance(&b, resident).await, (1600, 1600));
    assert_eq!(store.post(&format!("/v1/checkout/sessions/{held_id}/capture"), json!({})).await.0, 409);
}

#[tokio::test]
async fn a_webhook_to_a_server_that_is_down_is_kept_listed_and_resent() {
    let s = server(Options::default()).await;
    let (b, mykey_id, _resident) = resident_with(&s, 1000).await;
    let store = Store::new(&s);
    let receiver = Receiver::default();
    receiver.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let secret = store.set_up(&receiver.start().await).await;
    let (id, cs) = store.open(order(s.online_store, 600)).await;
    let (st, _) = pays(&b, &id, &cs, &mykey_id, 600).await;
    assert_eq!(st, 200);

    let shop = s.online_store;
    let listed = events_when(&store, shop, |e| e["attempts"].as_i64() >= Some(1)).await;
    assert_eq!((listed[0]["state"].as_str(), listed[0]["attempts"].as_i64()), (Some("pending"), Some(1)), "{listed}");
    assert!(listed[0]["last_error"].as_str().unwrap().contains("503"), "{listed}");
    assert!(listed[0]["next_attempt_at"].is_string());
    let event = listed[0]["event"]["id"].as_str().unwrap().to_owned();

    // Back up: the store resends instead of waiting for the back-off.
    receiver.down.store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(store.post(&format!("/v1/shops/{shop}/events/{event}/resend"), json!({})).await.0, 204);
    let got = receiver.events(1, &secret).await;
    assert_eq!(got[0]["id"], event.as_str(), "the same event id, so the store applies it once");
    // The receiver answers before the deliverer records the answer: wait for the record.
    events_when(&store, shop, |e| e["state"] == "delivered").await;
    assert_eq!(store.post(&format!("/v1/shops/{shop}/events/{}/resend", Uuid::new_v4()), json!({})).await.0, 404);
    // Another store's key sees none of this.
    let res = reqwest::Client::new()
        .get(format!("{}/v1/shops/{shop}/events", s.base))
        .bearer_auth(&s.library_key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}

/// Moves a session's deadline into the past, as if its time had run out.
async fn run_out(s: &Server, id: &str) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&s._db.url).await.unwrap();
    let past = mykey_server::time::now() - 1_000_000;
    sqlx::query("UPDATE checkout_sessions SET expires_at = $1 WHERE id = $2")
        .bind(past)
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
}

async fn state_becomes(store: &Store<'_>, id: &str, want: &str) -> Value {
    for _ in 0..100 {
        let (_, v) = store.get(&format!("/v1/checkout/sessions/{id}")).await;
        if v["state"] == want {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("session {id} did not become {want}");
}

#[tokio::test]
async fn sessions_and_held_points_expire_and_the_store_hears() {
    let s = server(Options::default()).await;
    let (b, mykey_id, resident) = resident_with(&s, 1000).await;
    let store = Store::new(&s);
    let receiver = Receiver::default();
    let secret = store.set_up(&receiver.start().await).await;

    // An open session nobody confirmed.
    let (id, cs) = store.open(order(s.online_store, 600)).await;
    run_out(&s, &id).await;
    state_becomes(&store, &id, "expired").await;
    let (st, v) = b.post(&format!("/v1/checkout/sessions/{id}/view"), json!({"client_secret": cs})).await;
    assert_eq!((st, v["state"].as_str()), (200, Some("expired")));
    let (st, v) = sign_in(&b, &id, &cs, &mykey_id).await;
    assert_eq!((st, v["type"].as_str().unwrap()), (409, "urn:mykey:problem:checkout-not-open"));

    // Held points the store never captured come back when the hold runs out.
    let mut manual = order(s.online_store, 700);
    manual["capture"] = json!("manual");
    let (held, held_cs) = store.open(manual).await;
    let (st, _) = pays(&b, &held, &held_cs, &mykey_id, 700).await;
    assert_eq!(st, 200);
    assert_eq!(municipal_balance(&b, resident).await, (1000, 300));
    run_out(&s, &held).await;
    state_becomes(&store, &held, "expired").await;
    assert_eq!(municipal_balance(&b, resident).await, (1000, 1000));
    let (st, _) = store.post(&format!("/v1/checkout/sessions/{held}/capture"), json!({})).await;
    assert_eq!(st, 409, "an expired hold is not captured");
    let kinds: Vec<String> =
        receiver.events(3, &secret).await.iter().map(|e| e["type"].as_str().unwrap().to_owned()).collect();
    assert_eq!(kinds, ["checkout.session.expired", "checkout.session.authorized", "checkout.session.expired"]);
}

#[tokio::test]
async fn two_confirmations_at_once_charge_once() {
    let s = server(Options::default()).await;
    let (b, mykey_id, resident) = resident_with(&s, 1000).await;
    let store = Store::new(&s);
    store.set_up(&Receiver::default().start().await).await;
    let (id, cs) = store.open(order(s.online_store, 600)).await;
    let (_, signed) = sign_in(&b, &id, &cs, &mykey_id).await;
    let body = json!({"client_secret": cs, "grant": signed["grant"], "points": 600});
    let path = format!("/v1/checkout/sessions/{id}/confirm");
    let answers = futures_util::future::join_all((0..8).map(|_| b.post(&path, body.clone()))).await;
    let ok = answers.iter().filter(|(st, _)| *st == 200).count();
    assert_eq!(ok, 1, "{answers:?}");
    // The others are refused: the session is being confirmed (409), or the sign-in already
    // ended with the payment (401).
    assert!(answers.iter().all(|(st, _)| [200, 401, 409].contains(st)), "{answers:?}");
    assert_eq!(municipal_balance(&b, resident).await, (400, 400));
}

/// A confirmation and a refund cut short by a crash (their ledger request not yet answered)
/// are finished by the background round with the ids they were recorded with.
#[tokio::test]
async fn a_confirmation_and_a_refund_cut_short_are_finished_once() {
    let s = server(Options::default()).await;
    let (b, _, resident) = resident_with(&s, 1000).await;
    let store = Store::new(&s);
    store.set_up(&Receiver::default().start().await).await;
    let (id, _) = store.open(order(s.online_store, 600)).await;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&s._db.url).await.unwrap();
    // As `charge` leaves it just before the ledger answers.
    sqlx::query(
        "UPDATE checkout_sessions SET state = 'confirming', charge_id = $1, resident_id = $2, points = 600, confirmed_at = $3 WHERE id = $4",
    )
    .bind(Uuid::new_v4().to_string())
    .bind(resident)
    .bind(mykey_server::time::now())
    .bind(&id)
    .execute(&pool)
    .await
    .unwrap();
    state_becomes(&store, &id, "completed").await;
    assert_eq!(municipal_balance(&b, resident).await, (400, 400));
    // As `refund` leaves it after reserving, before the ledger answers.
    let refund = Uuid::new_v4();
    sqlx::query("UPDATE checkout_sessions SET refunded = 200 WHERE id = $1").bind(&id).execute(&pool).await.unwrap();
    sqlx::query("INSERT INTO checkout_refunds (session_id, request_id, points, state, created_at) VALUES ($1, $2, 200, 'pending', $3)")
        .bind(&id)
        .bind(refund.to_string())
        .bind(mykey_server::time::now())
        .execute(&pool)
        .await
        .unwrap();
    for _ in 0..100 {
        if municipal_balance(&b, resident).await == (600, 600) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(municipal_balance(&b, resident).await, (600, 600));
    // The store's retry of that refund answers the same and gives nothing twice.
    let (st, v) =
        store.post(&format!("/v1/checkout/sessions/{id}/refunds"), json!({"id": refund, "points": 200})).await;
    assert_eq!((st, v["points"].as_i64()), (201, Some(200)), "{v}");
    assert_eq!(municipal_balance(&b, resident).await, (600, 600));
}

/// Every refusal of the store's and the widget's routes that the tests above do not reach.
#[tokio::test]
async fn the_checkout_routes_refuse_what_they_should() {
    let s = server(Options::default()).await;
    let (b, mykey_id, _) = resident_with(&s, 1000).await;
    let store = Store::new(&s);
    let shop = s.online_store;
    let other = |req: reqwest::RequestBuilder, key: &str| {
        let req = req.bearer_auth(key);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    let http = reqwest::Client::new();
    let settings = format!("{}/v1/shops/{shop}/checkout", s.base);

    // Settings: none yet; another store's key; origins and webhook URLs that are not one.
    assert_eq!(store.get(&format!("/v1/shops/{shop}/checkout")).await.0, 404);
    assert_eq!(store.post(&format!("/v1/shops/{shop}/webhook-secrets"), json!({})).await.0, 404);
    assert_eq!(other(http.get(&settings), &s.library_key).await, 403);
    assert_eq!(other(http.put(&settings).json(&json!({"origins": [STORE_ORIGIN]})), &s.library_key).await, 403);
    for bad in [
        json!({"origins": []}),
        json!({"origins": ["http://store.example"]}),
        json!({"origins": ["https://store.example/shop"]}),
        json!({"origins": [STORE_ORIGIN], "webhook_url": "javascript:alert(1)"}),
        json!({"origins": [STORE_ORIGIN], "webhook_url": "https://user:pw@store.example/hooks"}),
        // Not into the operator's own network (names are checked when the deliverer connects).
        json!({"origins": [STORE_ORIGIN], "webhook_url": "https://10.0.0.8/hooks"}),
        json!({"origins": [STORE_ORIGIN], "webhook_url": "https://[fd00::8]/hooks"}),
        json!({"origins": [STORE_ORIGIN], "webhook_url": "https://100.100.100.200/latest/meta-data"}),
    ] {
        let (st, v) = store.put(&format!("/v1/shops/{shop}/checkout"), bad.clone()).await;
        assert_eq!((st, v["type"].as_str().unwrap()), (400, "urn:mykey:problem:invalid-request"), "{bad}");
    }
    store.set_up(&Receiver::default().start().await).await;
    for limit in [0, 101] {
        assert_eq!(store.get(&format!("/v1/shops/{shop}/events?limit={limit}")).await.0, 400);
    }
    // Only a store's key opens a session, for its own shop.
    let open = format!("{}/v1/checkout/sessions", s.base);
    let by_terminal = s.terminal.request(&http, reqwest::Method::POST, &open, Some(&order(shop, 100)));
    assert_eq!(by_terminal.send().await.unwrap().status(), 403);
    assert_eq!(other(http.post(&open).json(&order(shop, 100)), &s.partner_key).await, 403);

    // The widget's routes: a wrong secret, an unknown session, a sign-in naming no way in or
    // sent from another site.
    let (id, cs) = store.open(order(shop, 600)).await;
    let wrong = format!("{id}_secret_{}", "0".repeat(64));
    assert_eq!(b.post(&format!("/v1/checkout/sessions/{id}/nonce"), json!({"client_secret": wrong})).await.0, 401);
    let unknown = uuid::Uuid::new_v4();
    assert_eq!(b.post(&format!("/v1/checkout/sessions/{unknown}/view"), json!({"client_secret": cs})).await.0, 401);
    let (st, _) = b.post(&format!("/v1/checkout/sessions/{id}/sign-in"), json!({"client_secret": cs})).await;
    assert_eq!(st, 400);
    let elsewhere = http
        .post(format!("{}/v1/checkout/sessions/{id}/sign-in", s.base))
        .header("origin", STORE_ORIGIN)
        .json(&json!({"client_secret": cs, "password": {"mykey_id": mykey_id, "password": "abc123!x"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), 403, "the store's page may not send the resident's password itself");

    // The store's steps out of order: capturing what was not held, cancelling what is paid.
    assert_eq!(store.post(&format!("/v1/checkout/sessions/{id}/capture"), json!({})).await.0, 409);
    assert_eq!(pays(&b, &id, &cs, &mykey_id, 600).await.0, 200);
    let (st, v) = store.post(&format!("/v1/checkout/sessions/{id}/cancel"), json!({})).await;
    assert_eq!((st, v["type"].as_str().unwrap()), (409, "urn:mykey:problem:checkout-not-open"));
    assert_eq!(store.post(&format!("/v1/checkout/sessions/{unknown}/cancel"), json!({})).await.0, 404);

    // The widget's page: an unknown key, or the key with another store's session.
    let (_, pk) = store.get(&format!("/v1/shops/{shop}/checkout")).await;
    let pk = pk["publishable_key"].as_str().unwrap();
    let frame = |pk: &str, session: &str| http.get(format!("{}/widget/frame?pk={pk}&session={session}", s.base)).send();
    assert_eq!(frame(&format!("pk_{}", "0".repeat(64)), &id).await.unwrap().status(), 404);
    assert_eq!(frame(pk, &unknown.to_string()).await.unwrap().status(), 404);
    let page = frame(pk, &id).await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["referrer-policy"], "no-referrer", "the frame's own policy is kept");
}
