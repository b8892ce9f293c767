//! Counter devices: enrolled with a pairing code that works once and briefly, listed with
//! when they were last seen, revoked at once; every request signed (RFC 9421), and every way
//! a signed request can be wrong refused with its own problem.

use mykey_core::device::{Terms, CLOCK_SKEW_SECONDS};
use mykey_server::testing::device::{new_key, nonce, TestDevice};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::identity::{server, Options, Server};

fn slug(v: &Value) -> &str {
    v["type"].as_str().unwrap_or("").strip_prefix("urn:mykey:problem:").unwrap_or("")
}

/// The identity fixture (a library with its store key and an enrolled terminal, an online
/// store with its key), with a device of the online store too.
struct App {
    s: Server,
    base: String,
    client: reqwest::Client,
    shops: [i64; 2],
    devices: [TestDevice; 2],
    store1: String,
    store2: String,
    partner: String,
}

impl App {
    async fn start() -> App {
        let s = server(Options::default()).await;
        let client = reqwest::Client::new();
        let other = TestDevice::enrol(&client, &s.base, &s.online_store_key, s.online_store).await.unwrap();
        let terminal = s.terminal.clone();
        App {
            base: s.base.clone(),
            shops: [s.library, s.online_store],
            devices: [terminal, other],
            store1: s.library_key.clone(),
            store2: s.online_store_key.clone(),
            partner: s.partner_key.clone(),
            client,
            s,
        }
    }

    async fn post(&self, path: &str, key: &str, body: Value) -> (u16, Value) {
        let res = self.client.post(format!("{}{path}", self.base)).bearer_auth(key).json(&body).send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() })
    }

    async fn get(&self, path: &str, key: &str) -> (u16, Value) {
        let res = self.client.get(format!("{}{path}", self.base)).bearer_auth(key).send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap())
    }

    async fn signed_post(&self, device: &TestDevice, path: &str, body: Value) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let res = device.request(&self.client, reqwest::Method::POST, &url, Some(&body)).send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap())
    }
}

/// A pairing code of the library, made with its store key.
async fn pairing_code(app: &App) -> String {
    let (st, v) = app.post(&format!("/v1/shops/{}/pairing-codes", app.shops[0]), &app.store1, json!({})).await;
    assert_eq!(st, 201, "{v}");
    v["code"].as_str().unwrap().to_owned()
}

/// Lets every unused pairing code expire (as if ten minutes had passed); the database, for more.
async fn expire_open_codes(app: &App) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&app.s._db.url).await.unwrap();
    sqlx::query("UPDATE pairing_codes SET expires_at = created_at + 1 WHERE used_at IS NULL")
        .execute(&pool)
        .await
        .unwrap();
    pool
}

async fn enrol(app: &App, code: &str, public_key: &str) -> (u16, Value) {
    let body = json!({"code": code, "name": "レジ2", "public_key": public_key});
    let res = app.client.post(format!("{}/v1/devices", app.base)).json(&body).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

fn now_s() -> u64 {
    u64::try_from(mykey_server::time::now() / mykey_server::time::SECOND).unwrap()
}

#[tokio::test]
async fn a_pairing_code_enrols_one_device_once_and_briefly_and_the_shop_lists_and_revokes_it() {
    let app = App::start().await;
    let shop = app.shops[0];
    let code = pairing_code(&app).await;
    assert!(code.len() == 9 && code.as_bytes()[4] == b'-', "XXXX-XXXX: {code}");
    let (_, public) = new_key();
    let (st, device) = enrol(&app, &code.to_lowercase().replace('-', ""), &public).await;
    assert_eq!((st, device["shop"].as_i64()), (201, Some(shop)), "typed in lower case without the dash: {device}");
    assert!(device["last_seen_at"].is_null() && device["revoked_at"].is_null(), "{device}");
    // Once only; a used code, an unknown one, a malformed one and an expired one say so.
    let (_, other) = new_key();
    let (st, v) = enrol(&app, &code, &other).await;
    assert_eq!((st, slug(&v)), (422, "pairing-code-invalid"), "{v}");
    assert!(v["detail"].as_str().unwrap().contains("already"), "{v}");
    let (st, v) = enrol(&app, "2345-6789", &other).await;
    assert_eq!((st, slug(&v)), (422, "pairing-code-invalid"), "{v}");
    let (st, v) = enrol(&app, "0000-OOOO", &other).await;
    assert_eq!((st, slug(&v)), (422, "pairing-code-invalid"), "{v}");
    let late = pairing_code(&app).await;
    let pool = expire_open_codes(&app).await;
    let (st, v) = enrol(&app, &late, &other).await;
    assert_eq!((st, slug(&v)), (422, "pairing-code-invalid"), "{v}");
    assert!(v["detail"].as_str().unwrap().contains("expired"), "{v}");
    // A key that is not an uncompressed P-256 point; a key another device has.
    let fresh = pairing_code(&app).await;
    let (st, v) = enrol(&app, &fresh, "BAAA").await;
    assert_eq!((st, slug(&v)), (400, "invalid-request"), "{v}");
    let (st, v) = enrol(&app, &fresh, &public).await;
    assert_eq!((st, slug(&v)), (400, "invalid-request"), "{v}");
    assert_eq!(enrol(&app, &fresh, &other).await.0, 201, "the code was not spent by the refusals");

    // Only the shop's store key makes codes and lists and revokes its devices.
    let codes = format!("/v1/shops/{shop}/pairing-codes");
    assert_eq!(app.post(&codes, &app.store2, json!({})).await.0, 403);
    assert_eq!(app.post(&codes, &app.partner, json!({})).await.0, 403);
    assert_eq!(app.signed_post(&app.devices[0], &codes, json!({})).await.0, 403, "a device enrols no other");
    assert_eq!(app.get(&format!("/v1/shops/{shop}/devices"), &app.store2).await.0, 403);

    // A signed request marks the device seen; the shop's list says when.
    let t = &app.devices[0];
    let challenges = format!("/v1/shops/{shop}/balance-challenges");
    assert_eq!(app.signed_post(t, &challenges, json!({})).await.0, 200);
    let mut listed = Value::Null;
    for _ in 0..100 {
        listed = app.get(&format!("/v1/shops/{shop}/devices"), &app.store1).await.1;
        let mine = listed.as_array().unwrap().iter().find(|d| d["id"] == t.id.to_string()).cloned();
        if mine.is_some_and(|d| d["last_seen_at"].is_string()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let devices = listed.as_array().unwrap();
    assert_eq!(devices.len(), 3, "the fixture's and the two enrolled here: {listed}");
    assert!(devices.iter().any(|d| d["id"] == t.id.to_string() && d["last_seen_at"].is_string()), "{listed}");

    // Revoked at once: the next request is refused, and revoking again finds nothing.
    let revoke = format!("/v1/shops/{shop}/devices/{}/revoke", t.id);
    assert_eq!(app.post(&revoke, &app.store2, json!({})).await.0, 403);
    let res = app.client.post(format!("{}{revoke}", app.base)).bearer_auth(&app.store1).send().await.unwrap();
    assert_eq!(res.status(), 204);
    let (st, v) = app.signed_post(t, &challenges, json!({})).await;
    assert_eq!((st, slug(&v)), (401, "device-revoked"), "{v}");
    assert_eq!(app.post(&revoke, &app.store1, json!({})).await.0, 404);
    // Revoked for good in this process: a look-up that read the row before the revocation
    // (here: the row as it was, written back) does not bring the device back.
    sqlx::query("UPDATE devices SET revoked_at = NULL WHERE id = $1")
        .bind(t.id.to_string())
        .execute(&pool)
        .await
        .unwrap();
    let (st, v) = app.signed_post(t, &challenges, json!({})).await;
    assert_eq!((st, slug(&v)), (401, "device-revoked"), "{v}");
    sqlx::query("UPDATE devices SET revoked_at = 1 WHERE id = $1").bind(t.id.to_string()).execute(&pool).await.unwrap();
    let listed = app.get(&format!("/v1/shops/{shop}/devices"), &app.store1).await.1;
    assert!(listed.as_array().unwrap().iter().any(|d| d["id"] == t.id.to_string() && d["revoked_at"].is_string()));
}

#[tokio::test]
async fn unsigned_forged_replayed_stale_and_altered_requests_are_each_refused() {
    let app = App::start().await;
    let shop = app.shops[0];
    let t = &app.devices[0];
    let path = format!("/v1/shops/{shop}/balance-challenges");
    let url = format!("{}{path}", app.base);
    let send = |h: mykey_server::testing::device::SignedHeaders, url: String, body: &'static str| {
        let req = app
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("content-digest", h.content_digest)
            .header("signature-input", h.signature_input)
            .header("signature", h.signature)
            .body(body);
        async move {
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap())
        }
    };
    let terms = |created: u64| Terms { created, expires: created + 30, nonce: nonce(), keyid: t.id.to_string() };

    // Signed: accepted. The same headers again: a replay.
    let h = t.sign_with("POST", &url, b"{}", &terms(now_s()));
    let again = mykey_server::testing::device::SignedHeaders {
        content_digest: h.content_digest.clone(),
        signature_input: h.signature_input.clone(),
        signature: h.signature.clone(),
    };
    assert_eq!(send(h, url.clone(), "{}").await.0, 200);
    let (st, v) = send(again, url.clone(), "{}").await;
    assert_eq!((st, slug(&v)), (401, "signature-replayed"), "{v}");

    // Unsigned: the counter's routes say what they need.
    let res = app.client.post(&url).json(&json!({})).send().await.unwrap();
    let (st, v) = (res.status().as_u16(), res.json::<Value>().await.unwrap());
    assert_eq!((st, slug(&v)), (401, "signature-invalid"), "{v}");
    assert!(v["detail"].as_str().unwrap().contains("enrolled counter device"), "{v}");

    // Another key under this device's id.
    let forger = TestDevice::from_parts(t.id, shop, new_key().0);
    let (st, v) = send(forger.sign("POST", &url, b"{}"), url.clone(), "{}").await;
    assert_eq!((st, slug(&v)), (401, "signature-invalid"), "{v}");
    // An id no shop enrolled.
    let stranger = TestDevice::from_parts(Uuid::new_v4(), shop, new_key().0);
    let (st, v) = send(stranger.sign("POST", &url, b"{}"), url.clone(), "{}").await;
    assert_eq!((st, slug(&v)), (401, "device-revoked"), "{v}");

    // Too old, or from too far in the future.
    let old = now_s() - 30 - CLOCK_SKEW_SECONDS - 5;
    let (st, v) = send(t.sign_with("POST", &url, b"{}", &terms(old)), url.clone(), "{}").await;
    assert_eq!((st, slug(&v)), (401, "signature-expired"), "{v}");
    let ahead = now_s() + CLOCK_SKEW_SECONDS + 5;
    let (st, v) = send(t.sign_with("POST", &url, b"{}", &terms(ahead)), url.clone(), "{}").await;
    assert_eq!((st, slug(&v)), (401, "signature-expired"), "{v}");
    assert!(v["detail"].as_str().unwrap().contains("clock"), "{v}");

    // Still good by its time, but made before the server started: where its nonce was used
    // no one remembers, so it is refused.
    let (st, v) = send(t.sign_with("POST", &url, b"{}", &terms(now_s() - 40)), url.clone(), "{}").await;
    assert_eq!((st, slug(&v)), (401, "signature-expired"), "{v}");
    assert!(v["detail"].as_str().unwrap().contains("before the server started"), "{v}");
    // Another body than the one signed: its digest does not match.
    let (st, v) = send(t.sign("POST", &url, b"{}"), url.clone(), "{\"more\": 1}").await;
    assert_eq!((st, slug(&v)), (400, "digest-mismatch"), "{v}");
    // A digest made for the new body, under the old signature.
    let mut h = t.sign("POST", &url, b"{}");
    h.content_digest = mykey_core::device::content_digest(b"{\"more\": 1}");
    let (st, v) = send(h, url.clone(), "{\"more\": 1}").await;
    assert_eq!((st, slug(&v)), (401, "signature-invalid"), "{v}");
    // Signed for one path, sent to another; signed for another query.
    let elsewhere = format!("{}/v1/shops/{shop}/counter-challenges", app.base);
    let (st, v) = send(t.sign("POST", &elsewhere, b"{}"), url.clone(), "{}").await;
    assert_eq!((st, slug(&v)), (401, "signature-invalid"), "{v}");
    let (st, v) = send(t.sign("POST", &format!("{url}?x=1"), b"{}"), url.clone(), "{}").await;
    assert_eq!((st, slug(&v)), (401, "signature-invalid"), "{v}");
    // A signature covering less than a device's must.
    let mut h = t.sign("POST", &url, b"{}");
    h.signature_input = h.signature_input.replace(" \"content-digest\"", "");
    let (st, v) = send(h, url.clone(), "{}").await;
    assert_eq!((st, slug(&v)), (401, "signature-invalid"), "{v}");
    assert!(v["detail"].as_str().unwrap().contains("content-digest"), "{v}");
    // A signature and a key at once.
    let h = t.sign("POST", &url, b"{}");
    let res = app
        .client
        .post(&url)
        .bearer_auth(&app.store1)
        .header("content-digest", h.content_digest)
        .header("signature-input", h.signature_input)
        .header("signature", h.signature)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    // Routing comes first: an unknown method or path with signature headers is 405 or 404.
    for (method, to, status) in [("DELETE", url.clone(), 405), ("POST", format!("{}/v1/nowhere", app.base), 404)] {
        let h = t.sign(method, &to, b"");
        let res = app
            .client
            .request(method.parse().unwrap(), &to)
            .bearer_auth(&app.store1)
            .header("content-digest", h.content_digest)
            .header("signature-input", h.signature_input)
            .header("signature", h.signature)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), status, "{method} {to}");
    }
    // Another shop's device at this shop's counter.
    let (st, v) = app.signed_post(&app.devices[1], &path, json!({})).await;
    assert_eq!((st, slug(&v)), (403, "forbidden"), "{v}");
    // After all that, the device still works.
    assert_eq!(app.signed_post(t, &path, json!({})).await.0, 200);
}

/// Terminal keys are retired: none can be made, and one left in the table opens nothing.
#[tokio::test]
async fn terminal_keys_are_retired() {
    let app = App::start().await;
    let store = &mykey_server::store::Store::connect(&app.s._db.url).await.unwrap();
    let made = mykey_server::auth::create_key(store, mykey_server::auth::Role::Terminal, app.shops[0], "t").await;
    assert!(made.is_err(), "no terminal key is made");
    let key = mykey_server::auth::new_key(mykey_server::auth::Role::Terminal);
    store.insert_api_key(&mykey_server::auth::hash_key(&key), "terminal", app.shops[0], "left over", 1).await.unwrap();
    let (st, v) = app.post(&format!("/v1/shops/{}/balance-challenges", app.shops[0]), &key, json!({})).await;
    assert_eq!((st, slug(&v)), (401, "signature-invalid"), "a counter route wants a device: {v}");
    let (st, v) = app.post(&format!("/v1/holds/{}/void", Uuid::new_v4()), &key, json!({"id": Uuid::new_v4()})).await;
    assert_eq!((st, slug(&v)), (401, "unauthenticated"), "{v}");
    assert!(v["detail"].as_str().unwrap().contains("retired"), "{v}");
}

#[tokio::test]
async fn a_shop_has_few_open_pairing_codes_and_wrong_codes_are_limited_per_address() {
    let app = App::start().await;
    let codes = format!("/v1/shops/{}/pairing-codes", app.shops[0]);
    let open = mykey_server::auth::devices::PAIRING_CODES_OPEN;
    for _ in 0..open {
        pairing_code(&app).await;
    }
    let (st, v) = app.post(&codes, &app.store1, json!({})).await;
    assert_eq!((st, slug(&v)), (429, "rate-limited"), "{v}");
    // Codes that expired unused are forgotten when the next is made.
    let pool = expire_open_codes(&app).await;
    pairing_code(&app).await;
    let (unused,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM pairing_codes WHERE used_at IS NULL").fetch_one(&pool).await.unwrap();
    assert_eq!(unused, 1, "the expired ones are gone");

    // Guessing codes: each wrong one counts against the address; past the limit, 429.
    let (_, public) = new_key();
    let limit = mykey_server::auth::FAILED_AUTH_PER_MINUTE;
    for _ in 0..limit {
        let (st, v) = enrol(&app, "2345-6789", &public).await;
        assert_eq!((st, slug(&v)), (422, "pairing-code-invalid"), "{v}");
    }
    let (st, v) = enrol(&app, "2345-6789", &public).await;
    assert_eq!((st, slug(&v)), (429, "rate-limited"), "{v}");
}
