//! Paying at a shop's counter terminal: only what the resident's card signed (with the PIN),
//! for exactly those terms, once; a terminal's key alone moves nothing.

use mykey_core::card::jpki::{self, Pin};
use mykey_core::identity::{AuthToken, SigningContext};
use mykey_virtual_card::VirtualCard;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::checkout::grant;
use crate::identity::{card, registered, server, Browser, Options, Server};
use mykey_server::testing::device::TestDevice;

/// The library's counter terminal (a device that signs its requests, no cookies), or another
/// caller with a key at its routes.
struct Terminal<'a> {
    s: &'a Server,
    by: By<'a>,
    http: reqwest::Client,
}

/// Who sends a [`Terminal`]'s requests.
enum By<'a> {
    Device(&'a TestDevice),
    Key(&'a str),
}

impl<'a> Terminal<'a> {
    /// The library's enrolled terminal.
    fn library(s: &'a Server) -> Self {
        Terminal { s, by: By::Device(&s.terminal), http: reqwest::Client::new() }
    }

    /// A caller with `key` at the terminal's routes.
    fn with_key(s: &'a Server, key: &'a str) -> Self {
        Terminal { s, by: By::Key(key), http: reqwest::Client::new() }
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let url = format!("{}{path}", self.s.base);
        let req = match self.by {
            By::Device(d) => d.request(&self.http, reqwest::Method::POST, &url, Some(&body)),
            By::Key(k) => self.http.post(&url).bearer_auth(k).json(&body),
        };
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap())
    }

    /// A challenge for `kind` of `amount` points of municipality 1 at `shop`: a payment with
    /// [`MEMO`], a hold for 600 seconds (as [`Terminal::pay`] and the holds below ask).
    async fn challenge(&self, shop: i64, kind: &str, amount: i64) -> (u16, Value) {
        let extra = if kind == "hold" { json!({"timeout_seconds": 600}) } else { json!({"memo": MEMO}) };
        self.challenge_for(shop, kind, amount, extra).await
    }

    /// A challenge with `extra` terms (`timeout_seconds`, `memo`).
    async fn challenge_for(&self, shop: i64, kind: &str, amount: i64, extra: Value) -> (u16, Value) {
        let mut body = json!({"kind": kind, "municipality": 1, "amount": amount});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        self.post(&format!("/v1/shops/{shop}/counter-challenges"), body).await
    }

    /// The library's challenge, signed by `card` for `origin` in this terminal's context (a
    /// key's: the library's first terminal): the body's `nonce` and `token`.
    async fn signed(&self, card: &mut VirtualCard, origin: &str, kind: &str, amount: i64) -> Value {
        let extra = if kind == "hold" { json!({"timeout_seconds": 600}) } else { json!({"memo": MEMO}) };
        self.signed_for(card, origin, kind, amount, extra).await
    }

    /// [`Terminal::signed`] with `extra` terms.
    async fn signed_for(&self, card: &mut VirtualCard, origin: &str, kind: &str, amount: i64, extra: Value) -> Value {
        let (st, v) = self.challenge_for(self.s.library, kind, amount, extra).await;
        assert_eq!(st, 200, "{v}");
        let nonce = v["nonce"].as_str().unwrap().to_owned();
        let cert = jpki::read_auth_certificate(card).await.unwrap();
        let at = self.context().signed_origin(origin);
        let sig = jpki::authenticate(card, &at, &nonce, &Pin::parse("1234").unwrap()).await.unwrap();
        json!({"nonce": nonce, "token": AuthToken::rs256(&cert, &sig)})
    }

    /// Where the card signs at this terminal.
    fn context(&self) -> SigningContext {
        let device = match self.by {
            By::Device(d) => d.id,
            By::Key(_) => self.s.terminal.id,
        };
        SigningContext::Counter { shop: self.s.library, device }
    }

    async fn pay(&self, id: Uuid, amount: i64, consent: &Value) -> (u16, Value) {
        let mut body = json!({"id": id, "municipality": 1, "amount": amount, "memo": MEMO});
        body["nonce"] = consent["nonce"].clone();
        body["token"] = consent["token"].clone();
        self.post(&format!("/v1/shops/{}/counter-payments", self.s.library), body).await
    }
}

impl Terminal<'_> {
    /// A refund of `payment` for `amount`, signed by `card` at this terminal: the refund's body.
    async fn refund_signed(&self, card: &mut VirtualCard, payment: &Value, amount: i64) -> Value {
        let challenge = json!({"payment": payment, "amount": amount});
        let (st, v) = self.post(&format!("/v1/shops/{}/refund-challenges", self.s.library), challenge).await;
        assert_eq!(st, 200, "{v}");
        let nonce = v["nonce"].as_str().unwrap().to_owned();
        let cert = jpki::read_auth_certificate(card).await.unwrap();
        let at = self.context().signed_origin(&self.s.base);
        let sig = jpki::authenticate(card, &at, &nonce, &Pin::parse("1234").unwrap()).await.unwrap();
        json!({"payment": payment, "amount": amount, "nonce": nonce, "token": AuthToken::rs256(&cert, &sig)})
    }

    async fn refund(&self, body: Value) -> (u16, Value) {
        self.post(&format!("/v1/shops/{}/counter-refunds", self.s.library), body).await
    }
}

#[tokio::test]
async fn a_counter_payment_is_refunded_once_and_only_with_the_card_that_paid() {
    let s = server(Options::default()).await;
    let b = Browser::new(&s);
    let mut payer = card(&s);
    let (_, resident) = registered(&b, &mut payer).await;
    grant(&s, resident, 1000).await;
    let other_browser = Browser::new(&s);
    let mut other = card(&s);
    registered(&other_browser, &mut other).await;
    let t = Terminal::library(&s);
    let consent = t.signed(&mut payer, &s.base, "payment", 300).await;
    let (st, paid) = t.pay(Uuid::new_v4(), 300, &consent).await;
    assert_eq!(st, 201, "{paid}");
    let payment = paid["id"].clone();
    assert_eq!(available(&b, resident).await, 700);

    // The challenge names the shop, the payment and the amount.
    let (st, v) =
        t.post(&format!("/v1/shops/{}/refund-challenges", s.library), json!({"payment": payment, "amount": 100})).await;
    assert_eq!(st, 200, "{v}");
    let terms = format!("payment:refund,shop={},payment={},amount=100:", s.library, payment.as_str().unwrap());
    assert!(v["nonce"].as_str().unwrap().starts_with(&terms), "{v}");

    // What cannot be refunded is refused before the card signs: more than was paid (saying
    // how much can be), no such payment of this shop's counter (none, or a grant's id).
    let challenges = format!("/v1/shops/{}/refund-challenges", s.library);
    let refund_challenge =
        |amount: i64, payment: Value| t.post(&challenges, json!({"payment": payment, "amount": amount}));
    let (st, v) = refund_challenge(301, payment.clone()).await;
    assert_eq!((st, slug(&v), v["refundable"].as_i64()), (422, "refund-exceeds-capture", Some(300)), "{v}");
    let (st, v) = refund_challenge(10, json!(Uuid::new_v4())).await;
    assert_eq!((st, slug(&v)), (404, "not-found"), "{v}");
    let (st, v) = t.post(&challenges, json!({"payment": payment, "amount": 1.5})).await;
    assert_eq!((st, slug(&v)), (422, "fractional-points"), "{v}");
    // Another shop's routes: this device acts for its own shop only.
    let elsewhere = format!("/v1/shops/{}/refund-challenges", s.online_store);
    let (st, v) = t.post(&elsewhere, json!({"payment": payment, "amount": 1})).await;
    assert_eq!((st, slug(&v)), (403, "forbidden"), "{v}");
    // Another resident's card gives nothing back, to anyone.
    let (st, v) = t.refund(t.refund_signed(&mut other, &payment, 100).await).await;
    assert_eq!((st, slug(&v)), (403, "card-not-payer"), "{v}");
    // A refund's signature pays nothing, and a payment's refunds nothing.
    let mut as_payment = t.refund_signed(&mut payer, &payment, 10).await;
    as_payment["id"] = json!(Uuid::new_v4());
    as_payment["municipality"] = json!(1);
    as_payment.as_object_mut().unwrap().remove("payment");
    let (st, v) = t.post(&format!("/v1/shops/{}/counter-payments", s.library), as_payment).await;
    assert_eq!((st, slug(&v)), (401, "nonce-invalid"), "{v}");
    let consent = t.signed(&mut payer, &s.base, "payment", 10).await;
    let mut as_refund = json!({"payment": payment, "amount": 10});
    as_refund["nonce"] = consent["nonce"].clone();
    as_refund["token"] = consent["token"].clone();
    assert_eq!(slug(&t.refund(as_refund).await.1), "nonce-invalid");
    // A signed refund for more than was paid is refused too (the challenge could not be had).
    let mut too_much = t.refund_signed(&mut payer, &payment, 100).await;
    too_much["amount"] = json!(301);
    assert_eq!(slug(&t.refund(too_much).await.1), "nonce-invalid", "the card signed 100");
    assert_eq!(available(&b, resident).await, 700, "nothing moved");

    // The payer's card: 100 points back, once; a retry is answered the same.
    let body = t.refund_signed(&mut payer, &payment, 100).await;
    let (st, refund) = t.refund(body.clone()).await;
    assert_eq!((st, refund["kind"].as_str(), refund["points"].as_i64()), (201, Some("refund"), Some(100)), "{refund}");
    assert!(
        refund.get("postings").is_none() && refund.get("balance_after").is_none(),
        "no balance for the terminal: {refund}"
    );
    assert_eq!(t.refund(body).await, (201, refund.clone()), "a retry replays");
    assert_eq!(available(&b, resident).await, 800);
    // A second refund of the same payment: refused, saying what was refunded.
    let (st, v) = refund_challenge(50, payment.clone()).await;
    assert_eq!((st, slug(&v), v["refunded"].as_i64()), (409, "payment-refunded", Some(100)), "{v}");
    assert_eq!(available(&b, resident).await, 800);
    // Only the shop's devices: the store's key is no terminal.
    let store = Terminal::with_key(&s, &s.library_key);
    let (st, _) = store
        .post(&format!("/v1/shops/{}/refund-challenges", s.library), json!({"payment": payment, "amount": 1}))
        .await;
    assert_eq!(st, 401);
    assert_eq!(available(&b, resident).await, 800);

    // The shop's day from the ledger: the payment and the refund, named by the device that
    // sent them; the same for the shop's key, its device, and as CSV.
    let http = reqwest::Client::new();
    let path = format!("{}/v1/shops/{}/daily-close", s.base, s.library);
    let by_key = |url: String, key: String| {
        let http = http.clone();
        async move {
            let res = http.get(url).bearer_auth(key).send().await.unwrap();
            let status = res.status().as_u16();
            (status, res.text().await.unwrap())
        }
    };
    let (st, body) = by_key(path.clone(), s.library_key.clone()).await;
    assert_eq!(st, 200, "{body}");
    let close: Value = serde_json::from_str(&body).unwrap();
    let device = s.terminal.id.to_string();
    assert_eq!(
        close["lines"],
        json!([
            {"municipality": 1, "device": device, "device_name": "レジ1", "kind": "payment", "count": 1, "points": 300},
            {"municipality": 1, "device": device, "device_name": "レジ1", "kind": "refund", "count": 1, "points": -100},
        ]),
        "{close}"
    );
    assert_eq!(close["net_points"], 200);
    let res = s.terminal.request(&http, reqwest::Method::GET, &path, None).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap(), close, "the device reads the same close");
    let (st, csv) = by_key(format!("{path}.csv"), s.library_key.clone()).await;
    assert_eq!(st, 200, "{csv}");
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], "date,shop,municipality,device,device_name,kind,count,points");
    assert!(rows[1].ends_with(&format!(",{},1,{device},レジ1,payment,1,300", s.library)), "{csv}");
    assert!(rows[2].ends_with(",refund,1,-100") && rows[3].ends_with(",total,2,200"), "{csv}");
    // Another day has nothing; a date that is no date is refused; another shop reads nothing.
    let (st, body) = by_key(format!("{path}?date=2020-01-01"), s.library_key.clone()).await;
    let other_day: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((st, other_day["lines"].clone(), other_day["net_points"].clone()), (200, json!([]), json!(0)));
    assert_eq!(other_day["from"], "2019-12-31T15:00:00Z", "a day in Japan");
    let (st, body) = by_key(format!("{path}?date=2026-13-01"), s.library_key.clone()).await;
    assert_eq!((st, serde_json::from_str::<Value>(&body).unwrap()["field"].as_str()), (400, Some("date")), "{body}");
    assert_eq!(by_key(path.clone(), s.online_store_key.clone()).await.0, 403);
    assert_eq!(http.get(&path).send().await.unwrap().status(), 401, "no key, no close");
}

/// The memo of the terminal's payments.
const MEMO: &str = "前橋市立図書館 コピー代";

fn slug(v: &Value) -> &str {
    v["type"].as_str().unwrap_or("").strip_prefix("urn:mykey:problem:").unwrap_or("")
}

async fn available(b: &Browser, resident: i64) -> i64 {
    let (_, v) = b.get(&format!("/v1/residents/{resident}/balances")).await;
    v["accounts"].as_array().unwrap().iter().find(|a| a["kind"] == "municipal").unwrap()["available"].as_i64().unwrap()
}

#[tokio::test]
async fn a_terminal_charges_only_what_the_residents_card_signed() {
    let s = server(Options::default()).await;
    let b = Browser::new(&s);
    let mut card1 = card(&s);
    let (_, resident) = registered(&b, &mut card1).await;
    grant(&s, resident, 1000).await;
    let t = Terminal::library(&s);

    // The challenge names what the card signs.
    let (st, v) = t.challenge(s.library, "payment", 300).await;
    assert_eq!((st, v["purpose"].as_str()), (200, Some("payment")), "{v}");
    let prefix = format!("payment:payment,shop={},municipality=1,amount=300,memo=", s.library);
    assert!(v["nonce"].as_str().unwrap().starts_with(&prefix), "{v}");

    // The card signs 300; the terminal charges 300, once, and a retry gets the same answer
    // without the card (the challenge is spent).
    let consent = t.signed(&mut card1, &s.base, "payment", 300).await;
    let id = Uuid::new_v4();
    let (st, receipt) = t.pay(id, 300, &consent).await;
    assert_eq!((st, receipt["kind"].as_str()), (201, Some("payment")), "{receipt}");
    assert_eq!(t.pay(id, 300, &consent).await, (201, receipt.clone()), "a retry replays");
    assert_eq!(available(&b, resident).await, 700);
    // The same signature for a new request: the challenge was used.
    let (st, v) = t.pay(Uuid::new_v4(), 300, &consent).await;
    assert_eq!((st, slug(&v)), (401, "nonce-invalid"), "{v}");
    assert_eq!(available(&b, resident).await, 700, "nothing moved twice");

    // Other terms than the card signed: refused, and the challenge stays good for its own.
    let consent = t.signed(&mut card1, &s.base, "payment", 100).await;
    let (st, v) = t.pay(Uuid::new_v4(), 1000, &consent).await;
    assert_eq!((st, slug(&v)), (401, "nonce-invalid"), "{v}");
    assert!(v["detail"].as_str().unwrap().contains("other terms"), "{v}");
    assert_eq!(t.pay(Uuid::new_v4(), 100, &consent).await.0, 201);
    assert_eq!(available(&b, resident).await, 600);

    // A signature for another site, or a payment challenge from a browser: refused.
    let consent = t.signed(&mut card1, "https://evil.example", "payment", 50).await;
    let (st, v) = t.pay(Uuid::new_v4(), 50, &consent).await;
    assert_eq!((st, v["reason"].as_str()), (401, Some("bad-signature")), "{v}");
    let (st, v) = b.post("/v1/auth/nonce", json!({"purpose": "payment"})).await;
    assert_eq!((st, v["field"].as_str()), (400, Some("purpose")), "{v}");

    // More than the balance: the ledger's refusal; nothing moves.
    let consent = t.signed(&mut card1, &s.base, "payment", 601).await;
    let (st, v) = t.pay(Uuid::new_v4(), 601, &consent).await;
    assert_eq!((st, slug(&v)), (422, "insufficient-points"), "{v}");

    // A card without a MyKey ID pays nothing.
    let mut stranger = card(&s);
    let consent = t.signed(&mut stranger, &s.base, "payment", 10).await;
    assert_eq!(t.pay(Uuid::new_v4(), 10, &consent).await.0, 404);

    // A hold: its own kind of challenge; the terminal captures part of it.
    let consent = t.signed(&mut card1, &s.base, "hold", 200).await;
    let hold = Uuid::new_v4();
    let mut body = json!({"id": hold, "municipality": 1, "amount": 200, "timeout_seconds": 600});
    body["nonce"] = consent["nonce"].clone();
    body["token"] = consent["token"].clone();
    let holds = format!("/v1/shops/{}/counter-holds", s.library);
    let (st, v) = t.post(&holds, body.clone()).await;
    assert_eq!((st, v["state"].as_str()), (201, Some("active")), "{v}");
    assert_eq!(available(&b, resident).await, 400);
    let (st, v) = t.post(&format!("/v1/holds/{hold}/capture"), json!({"id": Uuid::new_v4(), "amount": 150})).await;
    assert_eq!((st, v["state"].as_str()), (200, Some("captured")), "{v}");
    assert_eq!(available(&b, resident).await, 450);
    // A payment's signature does not make a hold.
    let consent = t.signed(&mut card1, &s.base, "payment", 10).await;
    body["id"] = json!(Uuid::new_v4());
    body["amount"] = json!(10);
    body["nonce"] = consent["nonce"].clone();
    body["token"] = consent["token"].clone();
    assert_eq!(t.post(&holds, body.clone()).await.0, 401);
    // A hold's life and a payment's memo are what the card signed too: a longer hold, another
    // memo or a payment without it are other terms; a hold's challenge must name its life.
    let consent = t.signed(&mut card1, &s.base, "hold", 10).await;
    body["nonce"] = consent["nonce"].clone();
    body["token"] = consent["token"].clone();
    body["timeout_seconds"] = json!(604_800);
    let (st, v) = t.post(&holds, body).await;
    assert_eq!((st, slug(&v)), (401, "nonce-invalid"), "{v}");
    let consent = t.signed(&mut card1, &s.base, "payment", 10).await;
    let mut other = json!({"id": Uuid::new_v4(), "municipality": 1, "amount": 10, "memo": "コピー代 ×100"});
    other["nonce"] = consent["nonce"].clone();
    other["token"] = consent["token"].clone();
    let payments = format!("/v1/shops/{}/counter-payments", s.library);
    assert_eq!(slug(&t.post(&payments, other.clone()).await.1), "nonce-invalid");
    other.as_object_mut().unwrap().remove("memo");
    assert_eq!(slug(&t.post(&payments, other).await.1), "nonce-invalid");
    let (st, v) = t.challenge_for(s.library, "hold", 10, json!({})).await;
    assert_eq!((st, v["field"].as_str()), (400, Some("timeout_seconds")), "{v}");
    let (st, v) = t.challenge_for(s.library, "payment", 10, json!({"timeout_seconds": 60})).await;
    assert_eq!((st, v["field"].as_str()), (400, Some("timeout_seconds")), "{v}");

    // Only the shop's terminal asks and charges; the device alone charges nothing.
    let store = Terminal::with_key(&s, &s.library_key);
    assert_eq!(store.challenge(s.library, "payment", 1).await.0, 401);
    assert_eq!(t.challenge(s.online_store, "payment", 1).await.0, 403);
    let bare = json!({"id": Uuid::new_v4(), "resident": resident, "municipality": 1, "shop": s.library, "amount": 1});
    let (st, v) = t.post("/v1/payments", bare).await;
    assert_eq!((st, slug(&v)), (403, "forbidden"), "{v}");
    // Fractional or missing amounts are the usual problems.
    let (st, v) = t
        .post(
            &format!("/v1/shops/{}/counter-challenges", s.library),
            json!({"kind": "payment", "municipality": 1, "amount": 1.5}),
        )
        .await;
    assert_eq!((st, slug(&v)), (422, "fractional-points"), "{v}");
    assert_eq!(available(&b, resident).await, 450);
}

/// The card's signature says where it was made: a terminal that had the PIN typed once
/// cannot turn the card's signature into a point-navi session, a signature for the web login
/// pays nothing at the counter, and one made at another counter or device pays nothing here.
#[tokio::test]
async fn a_counter_signature_opens_no_web_session_and_pays_only_at_its_own_counter() {
    let s = server(Options::default()).await;
    let b = Browser::new(&s);
    let mut card1 = card(&s);
    let (_, resident) = registered(&b, &mut card1).await;
    grant(&s, resident, 1000).await;
    let t = Terminal::library(&s);
    let pin = Pin::parse("1234").unwrap();
    let cert = jpki::read_auth_certificate(&mut card1).await.unwrap();

    // The terminal fetches a web-login challenge and has the card sign it at the counter.
    let thief = Browser::new(&s);
    let (st, n) = thief.post("/v1/auth/nonce", json!({"purpose": "login"})).await;
    assert_eq!(st, 200, "{n}");
    let nonce = n["nonce"].as_str().unwrap();
    let at_counter = t.context().signed_origin(&s.base);
    let sig = jpki::authenticate(&mut card1, &at_counter, nonce, &pin).await.unwrap();
    let (st, v) = thief.post("/v1/auth/card", json!({"nonce": nonce, "token": AuthToken::rs256(&cert, &sig)})).await;
    assert_eq!((st, slug(&v)), (401, "card-rejected"), "{v}");
    assert_eq!(thief.get("/v1/me").await.0, 401, "no session");

    // A payment challenge signed as for the web login, or at another device's counter.
    let pay = |nonce: &str, sig: &[u8]| {
        json!({"id": Uuid::new_v4(), "municipality": 1, "amount": 5, "memo": MEMO,
               "nonce": nonce, "token": AuthToken::rs256(&cert, sig)})
    };
    let payments = format!("/v1/shops/{}/counter-payments", s.library);
    let other_device = SigningContext::Counter { shop: s.library, device: Uuid::new_v4() };
    let other_shop = SigningContext::Counter { shop: s.online_store, device: s.terminal.id };
    for elsewhere in [
        SigningContext::Web.signed_origin(&s.base),
        other_device.signed_origin(&s.base),
        other_shop.signed_origin(&s.base),
    ] {
        let (_, ch) = t.challenge(s.library, "payment", 5).await;
        let nonce = ch["nonce"].as_str().unwrap();
        let sig = jpki::authenticate(&mut card1, &elsewhere, nonce, &pin).await.unwrap();
        let (st, v) = t.post(&payments, pay(nonce, &sig)).await;
        assert_eq!((st, slug(&v)), (401, "card-rejected"), "{elsewhere}: {v}");
    }
    // Signed here: paid.
    let (_, ch) = t.challenge(s.library, "payment", 5).await;
    let nonce = ch["nonce"].as_str().unwrap();
    let sig = jpki::authenticate(&mut card1, &at_counter, nonce, &pin).await.unwrap();
    assert_eq!(t.post(&payments, pay(nonce, &sig)).await.0, 201);
    assert_eq!(available(&b, resident).await, 995);
}

/// The refusals left: the same id with another body, a store's key at the payment, and the
/// shop's limit on challenges.
#[tokio::test]
async fn counter_refusals_conflicts_and_the_limit_on_challenges() {
    let s = server(Options::default()).await;
    let b = Browser::new(&s);
    let mut card1 = card(&s);
    let (_, resident) = registered(&b, &mut card1).await;
    grant(&s, resident, 1000).await;
    let t = Terminal::library(&s);
    let id = Uuid::new_v4();
    let consent = t.signed(&mut card1, &s.base, "payment", 10).await;
    assert_eq!(t.pay(id, 10, &consent).await.0, 201);
    // The same id with another memo (signed for): a conflict, not a second payment.
    let consent = t.signed_for(&mut card1, &s.base, "payment", 10, json!({"memo": "another"})).await;
    let mut body = json!({"id": id, "municipality": 1, "amount": 10, "memo": "another"});
    body["nonce"] = consent["nonce"].clone();
    body["token"] = consent["token"].clone();
    let payments = format!("/v1/shops/{}/counter-payments", s.library);
    let (st, v) = t.post(&payments, body.clone()).await;
    assert_eq!((st, slug(&v)), (409, "idempotency-conflict"), "{v}");
    // A store's key does not pay at the counter, even with the card's signature: only a device.
    let store = Terminal::with_key(&s, &s.library_key);
    body["id"] = json!(Uuid::new_v4());
    let (st, v) = store.post(&payments, body).await;
    assert_eq!((st, slug(&v)), (401, "signature-invalid"), "{v}");
    assert_eq!(available(&b, resident).await, 990);
    // A challenge is the device's that asked for it: another terminal of the same shop cannot
    // spend the card's signature over it.
    let http = reqwest::Client::new();
    let second = TestDevice::enrol(&http, &s.base, &s.library_key, s.library).await.unwrap();
    let other_till = Terminal { s: &s, by: By::Device(&second), http };
    let consent = t.signed(&mut card1, &s.base, "payment", 10).await;
    let (st, v) = other_till.pay(Uuid::new_v4(), 10, &consent).await;
    assert_eq!((st, slug(&v)), (401, "nonce-invalid"), "{v}");
    assert_eq!(t.pay(Uuid::new_v4(), 10, &consent).await.0, 401, "any attempt spends a challenge");
    assert_eq!(available(&b, resident).await, 990);
    // At most COUNTER_CHALLENGES_PER_MINUTE challenges a minute for the shop (three used above).
    let limit = mykey_server::services::identity::COUNTER_CHALLENGES_PER_MINUTE as usize;
    // (The limit refills two a second, so a few more may pass while the loop runs.)
    let mut granted = 0;
    let started = std::time::Instant::now();
    loop {
        let (st, v) = t.challenge(s.library, "payment", 1).await;
        if st == 429 {
            assert_eq!(slug(&v), "rate-limited", "{v}");
            break;
        }
        assert_eq!(st, 200, "{v}");
        granted += 1;
        // What refilled while the loop ran (a busy machine runs it slowly) passes too.
        let refilled = (started.elapsed().as_secs_f64() * limit as f64 / 60.0).ceil() as usize;
        assert!(granted <= limit + refilled, "the limit never came");
    }
    assert!(granted >= limit - 3, "{granted} challenges before the limit");
}

/// The counter's screen: the points usable at this shop, only after the resident's card signed
/// a balance challenge of this shop, once; a payment's signature shows nothing, nor does a
/// store's key or another shop's terminal.
#[tokio::test]
async fn the_counter_shows_usable_points_only_after_the_card_signed_for_them() {
    let s = server(Options::default()).await;
    let b = Browser::new(&s);
    let mut card1 = card(&s);
    let (_, resident) = registered(&b, &mut card1).await;
    grant(&s, resident, 1000).await;
    let t = Terminal::library(&s);
    let challenges = format!("/v1/shops/{}/balance-challenges", s.library);
    let balances = format!("/v1/shops/{}/counter-balances", s.library);

    let (st, ch) = t.post(&challenges, json!({})).await;
    assert_eq!((st, ch["purpose"].as_str()), (200, Some("counter_balance")), "{ch}");
    let nonce = ch["nonce"].as_str().unwrap().to_owned();
    assert!(nonce.starts_with(&format!("counter_balance:balance,shop={}:", s.library)), "{nonce}");
    let cert = jpki::read_auth_certificate(&mut card1).await.unwrap();
    let sig = jpki::authenticate(&mut card1, &t.context().signed_origin(&s.base), &nonce, &Pin::parse("1234").unwrap())
        .await
        .unwrap();
    let signed = json!({"nonce": nonce, "token": AuthToken::rs256(&cert, &sig)});
    let (st, v) = t.post(&balances, signed.clone()).await;
    assert_eq!(st, 200, "{v}");
    let usable = v["usable"].as_array().unwrap();
    assert_eq!((usable.len(), usable[0]["available"].as_i64()), (1, Some(1000)), "{v}");
    assert!(v.get("account").is_none() && usable[0].get("account").is_none(), "{v}");
    // Once only.
    let (st, v) = t.post(&balances, signed).await;
    assert_eq!((st, slug(&v)), (401, "nonce-invalid"), "{v}");
    // A payment's signature is not a balance read.
    let consent = t.signed(&mut card1, &s.base, "payment", 10).await;
    let (st, v) = t.post(&balances, consent).await;
    assert_eq!((st, slug(&v)), (401, "nonce-invalid"), "{v}");
    // A card without a MyKey ID shows nothing; a body without the card's token is refused.
    let mut stranger = card(&s);
    let (_, ch) = t.post(&challenges, json!({})).await;
    let nonce = ch["nonce"].as_str().unwrap().to_owned();
    let cert = jpki::read_auth_certificate(&mut stranger).await.unwrap();
    let at = t.context().signed_origin(&s.base);
    let sig = jpki::authenticate(&mut stranger, &at, &nonce, &Pin::parse("1234").unwrap()).await.unwrap();
    let strangers = json!({"nonce": nonce, "token": AuthToken::rs256(&cert, &sig)});
    let (st, v) = t.post(&balances, strangers.clone()).await;
    assert_eq!(st, 404, "{v}");
    assert_eq!(t.post(&balances, json!({"nonce": "counter_balance:x"})).await.0, 400);
    // A store's key asks nothing; a terminal asks only at its own shop.
    let store = Terminal::with_key(&s, &s.library_key);
    assert_eq!(store.post(&challenges, json!({})).await.0, 401);
    assert_eq!(store.post(&balances, strangers).await.0, 401);
    assert_eq!(t.post(&format!("/v1/shops/{}/balance-challenges", s.online_store), json!({})).await.0, 403);
    // Nothing moved.
    assert_eq!(available(&b, resident).await, 1000);
}

impl Terminal<'_> {
    /// A voucher of `amount` points issued at this terminal with `card`: (status, answer).
    async fn voucher(&self, card: &mut VirtualCard, id: Uuid, amount: i64) -> (u16, Value) {
        let consent = self.signed_for(card, &self.s.base, "voucher", amount, json!({})).await;
        let body = json!({"id": id, "municipality": 1, "amount": amount, "nonce": consent["nonce"], "token": consent["token"]});
        self.post(&format!("/v1/shops/{}/vouchers", self.s.library), body).await
    }

    /// `text` (scanned or typed) redeemed at `shop`.
    async fn redeem_at(&self, shop: i64, text: &str) -> (u16, Value) {
        let body = json!({"id": Uuid::new_v4(), "voucher": text});
        self.post(&format!("/v1/shops/{shop}/voucher-redemptions"), body).await
    }
}

/// A voucher is issued with the card and PIN, printed with a signed code, spent once in full at
/// another shop of the municipality (by its code or its number), never at another
/// municipality's, never forged, altered or mistyped; unspent, its points come back at expiry.
#[tokio::test]
async fn a_voucher_is_issued_with_the_card_and_spent_once_elsewhere() {
    use mykey_core::voucher::{VoucherNumber, VoucherTicket};
    use mykey_server::engine::{Change, ChangeResult};
    let s = server(Options::default()).await;
    let b = Browser::new(&s);
    let mut holder = card(&s);
    let (_, resident) = registered(&b, &mut holder).await;
    grant(&s, resident, 1000).await;
    let http = reqwest::Client::new();
    let library = Terminal::library(&s);
    // Another shop of municipality 1 (the online store's counter), and a shop of municipality 2.
    let store_device = TestDevice::enrol(&http, &s.base, &s.online_store_key, s.online_store).await.unwrap();
    let store = Terminal { s: &s, by: By::Device(&store_device), http: http.clone() };
    let change = Change::Municipality {
        id: 2,
        prefecture_code: "10".into(),
        prefecture: "群馬県".into(),
        name: "高崎市".into(),
        kind: "municipality".into(),
    };
    s.engine.apply(change).await.unwrap();
    let ChangeResult::Id(takasaki) =
        s.engine.apply(Change::Shop { name: "高崎の店".into(), municipality: 2 }).await.unwrap()
    else {
        panic!("a shop id")
    };
    let takasaki_key =
        mykey_server::auth::create_key(s.engine.store(), mykey_server::auth::Role::Store, takasaki, "t").await.unwrap();
    let takasaki_device = TestDevice::enrol(&http, &s.base, &takasaki_key, takasaki).await.unwrap();
    let elsewhere = Terminal { s: &s, by: By::Device(&takasaki_device), http: http.clone() };

    // Issued: the points leave the resident's account; the answer is the printed voucher, with
    // no balance; a retry answers the same voucher.
    let id = Uuid::new_v4();
    let (st, v) = library.voucher(&mut holder, id, 300).await;
    assert_eq!(st, 201, "{v}");
    assert_eq!((v["points"].as_i64(), v["municipality_name"].as_str()), (Some(300), Some("前橋市")), "{v}");
    assert_eq!(v["receipt"]["kind"], "voucher_issue");
    assert!(v.get("postings").is_none() && v["receipt"].get("postings").is_none(), "no balance: {v}");
    assert_eq!(available(&b, resident).await, 700);
    assert_eq!(library.voucher(&mut holder, id, 300).await, (201, v.clone()), "a retry answers the same voucher");
    assert_eq!(available(&b, resident).await, 700);
    let number = VoucherNumber::parse(v["number"].as_str().unwrap()).unwrap();
    let ticket = v["ticket"].as_str().unwrap().to_owned();
    let parsed = VoucherTicket::parse(&ticket).unwrap();
    assert_eq!((parsed.number, parsed.points, parsed.municipality), (number, 300, 1));
    // Valid through the third day in Japan, midnight after it.
    let expires: chrono::DateTime<chrono::Utc> = v["expires_at"].as_str().unwrap().parse().unwrap();
    let issued: chrono::DateTime<chrono::Utc> = v["issued_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(expires, mykey_core::rules::voucher_expires_at(issued));
    assert_eq!(parsed.expires_at, expires.timestamp());
    // The key checks the signature (as a terminal does before asking).
    let key: Value = http.get(format!("{}/v1/vouchers/key", s.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(key["algorithm"], "ES256");
    {
        use base64::Engine as _;
        use p256::ecdsa::signature::Verifier as _;
        use p256::pkcs8::DecodePublicKey as _;
        let der = base64::engine::general_purpose::STANDARD.decode(key["spki"].as_str().unwrap()).unwrap();
        let vk = p256::ecdsa::VerifyingKey::from_public_key_der(&der).unwrap();
        let sig = p256::ecdsa::Signature::from_slice(&parsed.signature).unwrap();
        assert!(vk.verify(parsed.message().as_bytes(), &sig).is_ok());
    }
    // The resident sees it on my page, open.
    let mine: Value = b.get("/v1/me/vouchers").await.1;
    assert_eq!((mine[0]["number"].as_str(), mine[0]["state"].as_str()), (v["number"].as_str(), Some("open")), "{mine}");

    // Refused, each with its reason, and nothing moves: an altered amount (the signature no
    // longer matches), a forged signature, a typo, a number that is no voucher's, not a
    // voucher at all, another municipality's shop.
    let altered = ticket.replace(":300:", ":3000:");
    assert_eq!(slug(&store.redeem_at(s.online_store, &altered).await.1), "voucher-invalid");
    let mut forged = parsed.clone();
    forged.signature = vec![1; 64];
    assert_eq!(slug(&store.redeem_at(s.online_store, &forged.text()).await.1), "voucher-invalid");
    let mut typo = number.digits().into_bytes();
    typo[7] = if typo[7] == b'0' { b'1' } else { b'0' };
    let (st, e) = store.redeem_at(s.online_store, std::str::from_utf8(&typo).unwrap()).await;
    assert_eq!((st, slug(&e)), (422, "voucher-invalid"), "{e}");
    assert!(e["detail"].as_str().unwrap().contains("typo"), "{e}");
    let stranger = VoucherNumber::from_random(u64::MAX / 3);
    let (st, e) = store.redeem_at(s.online_store, &stranger.to_string()).await;
    assert_eq!((st, slug(&e)), (404, "not-found"), "{e}");
    assert_eq!(slug(&store.redeem_at(s.online_store, "4901234567894").await.1), "voucher-invalid", "a product code");
    let (st, e) = elsewhere.redeem_at(takasaki, &ticket).await;
    assert_eq!((st, slug(&e)), (422, "voucher-not-accepted"), "{e}");
    // Only this shop's devices, for their own shop.
    assert_eq!(store.redeem_at(s.library, &ticket).await.0, 403);

    // Spent at the online store's counter by its code: the store's receivable gets the points.
    let (st, paid) = store.redeem_at(s.online_store, &ticket).await;
    assert_eq!(st, 201, "{paid}");
    assert_eq!((paid["points"].as_i64(), paid["receipt"]["kind"].as_str()), (Some(300), Some("voucher_redemption")));
    assert_eq!(paid["number"], v["number"]);
    // Once: by its code or its number again, anywhere.
    let (st, e) = store.redeem_at(s.online_store, &ticket).await;
    assert_eq!((st, slug(&e)), (409, "voucher-spent"), "{e}");
    assert_eq!(slug(&library.redeem_at(s.library, &number.to_string()).await.1), "voucher-spent");
    assert_eq!(available(&b, resident).await, 700, "spent, not given back");
    let mine: Value = b.get("/v1/me/vouchers").await.1;
    assert_eq!(
        (mine[0]["state"].as_str(), mine[0]["redeemed_at_shop"].is_string()),
        (Some("redeemed"), true),
        "{mine}"
    );

    // A second voucher, redeemed by its typed number at the library.
    let (st, second) = library.voucher(&mut holder, Uuid::new_v4(), 100).await;
    assert_eq!(st, 201, "{second}");
    let (st, paid) = library.redeem_at(s.library, second["number"].as_str().unwrap()).await;
    assert_eq!((st, paid["points"].as_i64()), (201, Some(100)), "{paid}");
    assert_eq!(available(&b, resident).await, 600);

    // A third, left unspent: at its expiry (jobs run as of then) its points come back, once.
    let (st, third) = library.voucher(&mut holder, Uuid::new_v4(), 50).await;
    assert_eq!(st, 201, "{third}");
    assert_eq!(available(&b, resident).await, 550);
    let expires: chrono::DateTime<chrono::Utc> = third["expires_at"].as_str().unwrap().parse().unwrap();
    let before = s.engine.apply(Change::Jobs { now: expires.timestamp_micros() - 1 }).await.unwrap();
    assert!(matches!(before, ChangeResult::Jobs(ref r) if r.returned_vouchers == 0), "{before:?}");
    let at = s.engine.apply(Change::Jobs { now: expires.timestamp_micros() }).await.unwrap();
    assert!(matches!(at, ChangeResult::Jobs(ref r) if r.returned_vouchers == 1), "{at:?}");
    assert_eq!(available(&b, resident).await, 600, "the unspent 50 came back");
    let (st, e) = library.redeem_at(s.library, third["ticket"].as_str().unwrap()).await;
    assert_eq!((st, slug(&e)), (409, "voucher-expired"), "{e}");
    let again = s.engine.apply(Change::Jobs { now: expires.timestamp_micros() + 1 }).await.unwrap();
    assert!(matches!(again, ChangeResult::Jobs(ref r) if r.returned_vouchers == 0), "once: {again:?}");
    let mine: Value = b.get("/v1/me/vouchers").await.1;
    let states: Vec<&str> = mine.as_array().unwrap().iter().map(|v| v["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["returned", "redeemed", "redeemed"], "{mine}");

    // Guessing numbers at a terminal is limited.
    let mut last = 0;
    for i in 0..12u64 {
        last = store.redeem_at(s.online_store, &VoucherNumber::from_random(i * 7919).to_string()).await.0;
    }
    assert_eq!(last, 429);
    // Sent at once, numbers are counted before any is looked up: never more pass than the limit.
    let guesses = (0..25u64).map(|i| VoucherNumber::from_random(i * 104_729 + 3).to_string()).collect::<Vec<_>>();
    let answers = futures_util::future::join_all(guesses.iter().map(|g| elsewhere.redeem_at(takasaki, g))).await;
    let looked_up = answers.iter().filter(|(st, _)| *st != 429).count();
    assert!(
        looked_up <= mykey_core::rules::VOUCHER_GUESSES_PER_MINUTE as usize,
        "{looked_up} of 25 concurrent guesses were looked up"
    );
    // A voucher is nothing without the card: the terminal's key alone issues nothing.
    let consent = library.signed_for(&mut holder, &s.base, "payment", 10, json!({"memo": MEMO})).await;
    let body = json!({"id": Uuid::new_v4(), "municipality": 1, "amount": 10, "nonce": consent["nonce"], "token": consent["token"]});
    let (st, e) = library.post(&format!("/v1/shops/{}/vouchers", s.library), body).await;
    assert_eq!((st, slug(&e)), (401, "nonce-invalid"), "a payment's signature issues no voucher: {e}");
    assert_eq!(available(&b, resident).await, 600);
}
