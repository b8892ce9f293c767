//! Partners over real HTTP: a member's service ID is linked only when the partner's server
//! opened a link session for it and a resident confirmed it in the widget; the coupon widget
//! redeems a partner's codes for a signed-in resident; the partner's server gets signed events
//! and lists a batch's codes with their state.

use serde_json::{json, Value};
use uuid::Uuid;

use crate::checkout::{resident_with, Receiver, Store};
use crate::identity::{server, Browser, Options, Server};

pub(crate) const PARTNER_ORIGIN: &str = "http://127.0.0.3:8100";
/// A coupon widget frame's id, as the frame makes one.
const FRAME: &str = "3f2c1a9e-0b7d-4c55-9a8e-5b1f5c2a9d10";

/// Registers the partner's (or store's) member-site origin and webhook; its signing secret.
pub(crate) async fn set_up(api: &Store<'_>, path: &str, webhook: Option<&str>) -> (String, String) {
    let (st, v) = api.put(path, json!({"origins": [PARTNER_ORIGIN], "webhook_url": webhook})).await;
    assert_eq!(st, 200, "{v}");
    let pk = v["publishable_key"].as_str().unwrap().to_owned();
    let secret_path = path.replace("/embedding", "/webhook-secrets").replace("/checkout", "/webhook-secrets");
    let (st, v) = api.post(&secret_path, json!({})).await;
    assert_eq!(st, 201, "{v}");
    (pk, v["secret"].as_str().unwrap().to_owned())
}

/// The opener's server opens a link session naming `target` (`{"partner": p}` or
/// `{"online_service": o}`) and `service_id`: its id and client secret.
async fn open_link(api: &Store<'_>, target: Value, service_id: &str) -> (String, String) {
    let mut body =
        json!({"id": Uuid::new_v4(), "service_id": service_id, "return_url": format!("{PARTNER_ORIGIN}/linked")});
    body.as_object_mut().unwrap().extend(target.as_object().unwrap().clone());
    let (st, v) = api.post("/v1/link-sessions", body).await;
    assert_eq!(st, 201, "{v}");
    (v["session"]["id"].as_str().unwrap().to_owned(), v["client_secret"].as_str().unwrap().to_owned())
}

/// The resident signs in inside the link widget with the password (as the points cloud's
/// own page does) and confirms: the answer of the confirmation.
pub(crate) async fn confirm_link(b: &Browser, id: &str, secret: &str, mykey_id: &str) -> (u16, Value) {
    let (st, v) = b
        .post(
            &format!("/v1/link-sessions/{id}/sign-in"),
            json!({"client_secret": secret, "password": {"mykey_id": mykey_id, "password": "abc123!x"}}),
        )
        .await;
    if st != 200 {
        return (st, v);
    }
    b.post(&format!("/v1/link-sessions/{id}/confirm"), json!({"client_secret": secret, "grant": v["grant"]})).await
}

/// A proven link of `service_id` for the resident signed in as `mykey_id` in `b`, made through
/// `api`'s link session: the link's id.
pub(crate) async fn proven_link(
    api: &Store<'_>,
    b: &Browser,
    mykey_id: &str,
    target: Value,
    service_id: &str,
) -> String {
    let path = match (target.get("partner"), target.get("online_service")) {
        (Some(p), _) => format!("/v1/partners/{p}/embedding"),
        _ => format!("/v1/shops/{}/checkout", api.subject()),
    };
    let (st, _) = api.get(&path).await;
    if st == 404 {
        let (st, v) = api.put(&path, json!({"origins": [PARTNER_ORIGIN]})).await;
        assert_eq!(st, 200, "{v}");
    }
    let (id, secret) = open_link(api, target, service_id).await;
    let (st, v) = confirm_link(b, &id, &secret, mykey_id).await;
    assert_eq!((st, v["state"].as_str()), (200, Some("linked")), "{v}");
    let (_, session) = api.get(&format!("/v1/link-sessions/{id}")).await;
    session["link"].as_str().unwrap().to_owned()
}

fn convert(s: &Server, reference: &str, service_id: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .post(format!("{}/v1/partners/{}/linked-conversions", s.base, s.partner))
        .bearer_auth(&s.partner_key)
        .json(&json!({"reference": reference, "service_id": service_id, "partner_points": "800", "rate": "1"}))
}

#[tokio::test]
async fn a_member_id_is_linked_only_by_the_partners_session_and_the_residents_confirmation() {
    let s = server(Options::default()).await;
    let partner = Store::with_key(&s, &s.partner_key);
    let hooks = Receiver::default();
    let (pk, secret) =
        set_up(&partner, &format!("/v1/partners/{}/embedding", s.partner), Some(&hooks.start().await)).await;
    let (b, mykey_id, resident) = resident_with(&s, 0).await;

    // Typing a number on my page links nothing any more, and nobody receives its conversions.
    let (st, _) = b.post("/v1/me/service-links", json!({"partner": s.partner, "service_id": "JAL-1234567"})).await;
    assert_eq!(st, 405);
    assert_eq!(convert(&s, "jal-1", "JAL-1234567").send().await.unwrap().status(), 422);

    let (id, client_secret) = open_link(&partner, json!({"partner": s.partner}), "JAL-1234567").await;
    // The widget's view needs the client secret; confirming needs a sign-in for this session.
    let (st, _) = b.post(&format!("/v1/link-sessions/{id}/view"), json!({"client_secret": "x"})).await;
    assert_eq!(st, 401);
    let (st, view) = b.post(&format!("/v1/link-sessions/{id}/view"), json!({"client_secret": client_secret})).await;
    assert_eq!(
        (st, view["state"].as_str(), view["service_name"].as_str()),
        (200, Some("open"), Some("日本航空株式会社"))
    );
    let (st, _) = b
        .post(
            &format!("/v1/link-sessions/{id}/confirm"),
            json!({"client_secret": client_secret, "grant": "f".repeat(64)}),
        )
        .await;
    assert_eq!(st, 401);
    // The widget's frame: only the partner's registered origin may embed it.
    let frame = |referer: &str| {
        reqwest::Client::new()
            .get(format!("{}/widget/frame?kind=link&pk={pk}&session={id}", s.base))
            .header("referer", referer)
            .send()
    };
    assert_eq!(frame("https://evil.example/x").await.unwrap().status(), 403);
    let res = frame(&format!("{PARTNER_ORIGIN}/member")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains(&format!("frame-ancestors {PARTNER_ORIGIN}")));

    let (st, v) = confirm_link(&b, &id, &client_secret, &mykey_id).await;
    assert_eq!((st, v["state"].as_str()), (200, Some("linked")), "{v}");
    let res = convert(&s, "jal-1", "JAL-1234567").send().await.unwrap();
    assert_eq!(res.status(), 201);
    let (_, links) = b.get("/v1/me/service-links").await;
    assert_eq!((links[0]["service_id"].as_str(), links[0]["proven"].as_bool()), (Some("JAL-1234567"), Some(true)));
    let (_, session) = partner.get(&format!("/v1/link-sessions/{id}")).await;
    assert_eq!(
        (session["state"].as_str(), session["link"].clone(), session["confirmed_at"].is_string()),
        (Some("linked"), links[0]["id"].clone(), true)
    );
    let events = hooks.events(1, &secret).await;
    assert_eq!(
        (events[0]["type"].as_str(), events[0]["link"]["service_id"].as_str()),
        (Some("link.confirmed"), Some("JAL-1234567"))
    );

    // Once confirmed, the session is spent: nobody else signs in or confirms on it.
    let (other, other_id, _) = resident_with(&s, 0).await;
    let (st, v) = confirm_link(&other, &id, &client_secret, &other_id).await;
    assert_eq!((st, v["type"].as_str()), (409, Some("urn:mykey:problem:link-not-open")), "{v}");
    // A new session for an ID someone already holds cannot move it to another MyKey ID.
    let (id2, secret2) = open_link(&partner, json!({"partner": s.partner}), "JAL-1234567").await;
    let (st, v) = confirm_link(&other, &id2, &secret2, &other_id).await;
    assert_eq!((st, v["type"].as_str()), (409, Some("urn:mykey:problem:service-id-taken")), "{v}");

    // Cutting asks for the password again; the partner hears of it; conversions stop.
    let link = links[0]["id"].as_str().unwrap();
    let (st, _) = b.post(&format!("/v1/me/service-links/{link}/revoke"), json!({"password": "wrong123"})).await;
    assert_eq!(st, 401);
    let (st, _) = b.post(&format!("/v1/me/service-links/{link}/revoke"), json!({"password": "abc123!x"})).await;
    assert_eq!(st, 204);
    let events = hooks.events(2, &secret).await;
    assert_eq!(events[1]["type"].as_str(), Some("link.revoked"));
    assert_eq!(convert(&s, "jal-2", "JAL-1234567").send().await.unwrap().status(), 422);
    let (_, balances) = b.get(&format!("/v1/residents/{resident}/balances")).await;
    let reserved = balances["accounts"].as_array().unwrap().iter().find(|a| a["kind"] == "reserved").unwrap().clone();
    assert_eq!(reserved["balance"], 800, "{balances}");
}

#[tokio::test]
async fn link_sessions_refuse_what_they_should() {
    let s = server(Options::default()).await;
    let partner = Store::with_key(&s, &s.partner_key);
    let store = Store::with_key(&s, &s.online_store_key);
    let body = |target: Value| {
        let mut b = json!({"id": Uuid::new_v4(), "service_id": "M-1"});
        b.as_object_mut().unwrap().extend(target.as_object().unwrap().clone());
        b
    };
    // Origins first.
    let (st, v) = partner.post("/v1/link-sessions", body(json!({"partner": s.partner}))).await;
    assert_eq!((st, v["type"].as_str()), (400, Some("urn:mykey:problem:invalid-request")), "{v}");
    set_up(&partner, &format!("/v1/partners/{}/embedding", s.partner), None).await;
    set_up(&store, &format!("/v1/shops/{}/checkout", s.online_store), None).await;
    // A partner opens sessions for its own members only; a store for its own online service.
    let (st, _) = partner.post("/v1/link-sessions", body(json!({"partner": s.coupon_partner}))).await;
    assert_eq!(st, 403);
    let (st, _) = partner.post("/v1/link-sessions", body(json!({"online_service": s.online_service}))).await;
    assert_eq!(st, 403);
    let (st, _) = store.post("/v1/link-sessions", body(json!({"online_service": s.online_service + 1}))).await;
    assert_eq!(st, 403);
    let (st, v) = store.post("/v1/link-sessions", body(json!({"online_service": s.online_service}))).await;
    assert_eq!(st, 201, "{v}");
    // Neither or both targets, a bad service ID, a foreign return URL, a reused id.
    let (st, _) = partner.post("/v1/link-sessions", json!({"id": Uuid::new_v4(), "service_id": "M-1"})).await;
    assert_eq!(st, 400);
    let (st, _) =
        partner.post("/v1/link-sessions", body(json!({"partner": s.partner, "service_id": "a b\u{0}"}))).await;
    assert_eq!(st, 400);
    let (st, v) = partner
        .post("/v1/link-sessions", body(json!({"partner": s.partner, "return_url": "https://evil.example/x"})))
        .await;
    assert_eq!((st, v["type"].as_str()), (403, Some("urn:mykey:problem:origin-not-allowed")), "{v}");
    let once = body(json!({"partner": s.partner}));
    let (_, first) = partner.post("/v1/link-sessions", once.clone()).await;
    let (st, again) = partner.post("/v1/link-sessions", once.clone()).await;
    assert_eq!((st, &again["client_secret"]), (201, &first["client_secret"]));
    let mut changed = once.clone();
    changed["service_id"] = json!("M-2");
    let (st, _) = partner.post("/v1/link-sessions", changed).await;
    assert_eq!(st, 409);
    // Another opener cannot read or cancel it; its opener cancels it once.
    let id = first["session"]["id"].as_str().unwrap();
    let (st, _) = store.get(&format!("/v1/link-sessions/{id}")).await;
    assert_eq!(st, 404);
    let (st, v) = partner.post(&format!("/v1/link-sessions/{id}/cancel"), json!({})).await;
    assert_eq!((st, v["state"].as_str()), (200, Some("cancelled")));
    let (st, _) = partner.post(&format!("/v1/link-sessions/{id}/cancel"), json!({})).await;
    assert_eq!(st, 409);
    // A counter terminal opens nothing.
    let url = format!("{}/v1/link-sessions", s.base);
    let by_terminal = s.terminal.request(
        &reqwest::Client::new(),
        reqwest::Method::POST,
        &url,
        Some(&body(json!({"partner": s.partner}))),
    );
    assert_eq!(by_terminal.send().await.unwrap().status(), 403);
}

/// The coupon widget: a signed-in resident previews and redeems the partner's code, assigns the
/// reserved points, and the partner's server hears of the redemption and lists the batch.
#[tokio::test]
async fn the_coupon_widget_redeems_the_partners_codes_for_a_signed_in_resident() {
    let s = server(Options::default()).await;
    let card_co = Store::with_key(&s, &s.coupon_partner_key);
    let hooks = Receiver::default();
    let (pk, secret) =
        set_up(&card_co, &format!("/v1/partners/{}/embedding", s.coupon_partner), Some(&hooks.start().await)).await;
    let batch = Uuid::new_v4();
    let expires = (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339();
    let (st, issued) = card_co
        .post(
            &format!("/v1/partners/{}/coupons", s.coupon_partner),
            json!({"id": batch, "count": 3, "partner_points": "1000", "rate": "0.5", "expires_at": expires, "delivery": "url"}),
        )
        .await;
    assert_eq!(st, 201, "{issued}");
    let code = issued["codes"][0].as_str().unwrap().to_owned();
    let (b, mykey_id, resident) = resident_with(&s, 0).await;

    // Signing in needs the partner's key; the grant works in this partner's widget only.
    let sign_in = |key: String| {
        let b = &b;
        let mykey_id = mykey_id.clone();
        async move {
            b.post(
                "/v1/coupon-widget/sign-in",
                json!({"publishable_key": key, "instance": FRAME, "password": {"mykey_id": mykey_id, "password": "abc123!x"}}),
            )
            .await
        }
    };
    let (st, _) = sign_in(format!("pk_{}", "0".repeat(64))).await;
    assert_eq!(st, 404);
    let (st, signed) = sign_in(pk.clone()).await;
    assert_eq!(st, 200, "{signed}");
    let grant = signed["grant"].as_str().unwrap().to_owned();
    let ask = |path: &'static str, code: &str| {
        let body = json!({"publishable_key": pk, "grant": grant, "code": code});
        b.post(path, body)
    };
    let (st, preview) = ask("/v1/coupon-widget/preview", &code.to_lowercase().replace('-', "")).await;
    assert_eq!(st, 200, "{preview}");
    assert_eq!(
        (preview["points"].as_i64(), preview["state"].as_str(), preview["partner_name"].as_str()),
        (Some(500), Some("issued"), Some("三井住友カード株式会社"))
    );
    let mut typo = code.clone().into_bytes();
    typo[0] = if typo[0] == b'2' { b'3' } else { b'2' };
    let (st, v) = ask("/v1/coupon-widget/preview", std::str::from_utf8(&typo).unwrap()).await;
    assert_eq!((st, v["type"].as_str()), (422, Some("urn:mykey:problem:coupon-invalid")), "{v}");

    let (st, redeemed) = ask("/v1/coupon-widget/redeem", &code).await;
    assert_eq!(st, 200, "{redeemed}");
    assert_eq!((redeemed["points"].as_i64(), redeemed["reserved"].as_i64()), (Some(500), Some(500)));
    assert!(!redeemed["municipalities"].as_array().unwrap().is_empty());
    let (st, again) = ask("/v1/coupon-widget/preview", &code).await;
    assert_eq!((st, again["state"].as_str()), (200, Some("redeemed")));
    let events = hooks.events(1, &secret).await;
    assert_eq!(
        (
            events[0]["type"].as_str(),
            events[0]["redemption"]["batch"].as_str(),
            events[0]["redemption"]["code"].as_str()
        ),
        (Some("coupon.redeemed"), Some(batch.to_string().as_str()), Some(code.as_str()))
    );
    let (st, codes) = card_co.get(&format!("/v1/partners/{}/coupon-batches/{batch}/codes", s.coupon_partner)).await;
    assert_eq!(st, 200, "{codes}");
    let states: Vec<&str> = codes.as_array().unwrap().iter().map(|c| c["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["redeemed", "issued", "issued"]);
    assert!(codes[1]["url"].as_str().unwrap().contains("/app/mypage/coupons?coupon="), "{codes}");

    // The reserved points go to a municipality now, from the widget.
    let municipality = redeemed["municipalities"][0]["id"].as_i64().unwrap();
    let (st, v) = b
        .post(
            "/v1/coupon-widget/assign",
            json!({"publishable_key": pk, "grant": grant, "id": Uuid::new_v4(), "municipality": municipality, "amount": 500}),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let (_, balances) = b.get(&format!("/v1/residents/{resident}/balances")).await;
    let reserved: i64 = balances["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "reserved")
        .map(|a| a["balance"].as_i64().unwrap())
        .sum();
    assert_eq!(reserved, 0, "{balances}");

    // Another resident cannot redeem the used code; another partner's widget refuses it; another
    // partner's grant does not work here; the partner lists only its own batches.
    let (other, other_id, _) = resident_with(&s, 0).await;
    let (_, other_signed) = other
        .post(
            "/v1/coupon-widget/sign-in",
            json!({"publishable_key": pk, "instance": FRAME, "password": {"mykey_id": other_id, "password": "abc123!x"}}),
        )
        .await;
    let (st, v) = other
        .post("/v1/coupon-widget/redeem", json!({"publishable_key": pk, "grant": other_signed["grant"], "code": code}))
        .await;
    assert_eq!((st, v["type"].as_str()), (409, Some("urn:mykey:problem:coupon-used")), "{v}");
    let airline = Store::with_key(&s, &s.partner_key);
    let (airline_pk, _) = set_up(&airline, &format!("/v1/partners/{}/embedding", s.partner), None).await;
    let (_, airline_signed) = b
        .post(
            "/v1/coupon-widget/sign-in",
            json!({"publishable_key": airline_pk, "instance": FRAME, "password": {"mykey_id": mykey_id, "password": "abc123!x"}}),
        )
        .await;
    let code2 = issued["codes"][1].as_str().unwrap();
    let (st, v) = b
        .post(
            "/v1/coupon-widget/redeem",
            json!({"publishable_key": airline_pk, "grant": airline_signed["grant"], "code": code2}),
        )
        .await;
    assert_eq!((st, v["type"].as_str()), (422, Some("urn:mykey:problem:coupon-elsewhere")), "{v}");
    let (st, _) = b
        .post(
            "/v1/coupon-widget/redeem",
            json!({"publishable_key": pk, "grant": airline_signed["grant"], "code": code2}),
        )
        .await;
    assert_eq!(st, 401);
    let (st, _) = airline.get(&format!("/v1/partners/{}/coupon-batches/{batch}/codes", s.partner)).await;
    assert_eq!(st, 404);
    let (st, _) = airline.get(&format!("/v1/partners/{}/coupon-batches/{batch}/codes", s.coupon_partner)).await;
    assert_eq!(st, 403);
    // The coupon widget's frame: the partner's origins only; a store's key is no coupon widget.
    let frame = |key: &str, referer: &str| {
        reqwest::Client::new()
            .get(format!("{}/widget/frame?kind=coupon&pk={key}", s.base))
            .header("referer", referer)
            .send()
    };
    assert_eq!(frame(&pk, &format!("{PARTNER_ORIGIN}/m")).await.unwrap().status(), 200);
    assert_eq!(frame(&pk, "https://evil.example/").await.unwrap().status(), 403);
    let store = Store::with_key(&s, &s.online_store_key);
    let (store_pk, _) = set_up(&store, &format!("/v1/shops/{}/checkout", s.online_store), None).await;
    assert_eq!(frame(&store_pk, &format!("{PARTNER_ORIGIN}/m")).await.unwrap().status(), 404);
    let (st, v) = b.post("/v1/coupon-widget/view", json!({"publishable_key": pk})).await;
    assert_eq!(
        (st, v["partner_name"].as_str(), v["origins"].clone()),
        (200, Some("三井住友カード株式会社"), json!([PARTNER_ORIGIN]))
    );
}

/// A partner has the outbox mail a code to its member (Japanese, with the redemption URL),
/// once per code.
#[tokio::test]
async fn a_partner_mails_a_code_to_its_member_once() {
    let mail = mykey_server::testing::Smtp::start().unwrap();
    let s = server(Options::with_smtp(mail.url())).await;
    let card_co = Store::with_key(&s, &s.coupon_partner_key);
    let batch = Uuid::new_v4();
    let expires = (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339();
    let path = format!("/v1/partners/{}/coupons", s.coupon_partner);
    let (st, issued) = card_co
        .post(&path, json!({"id": batch, "count": 2, "partner_points": "1000", "rate": "0.5", "expires_at": expires, "delivery": "email"}))
        .await;
    assert_eq!(st, 201, "{issued}");
    let code = issued["codes"][0].as_str().unwrap();
    let mail_path = format!("/v1/partners/{}/coupon-batches/{batch}/mail", s.coupon_partner);
    let (st, v) = card_co.post(&mail_path, json!({"code": code, "to": "not-an-address"})).await;
    assert_eq!((st, v["type"].as_str()), (422, Some("urn:mykey:problem:invalid-email")), "{v}");
    let (st, v) = card_co.post(&mail_path, json!({"code": code, "to": "member@example.jp"})).await;
    assert_eq!(st, 202, "{v}");
    let got = crate::identity::wait_for_mail(&mail, 1).await;
    assert_eq!(got[0].0, "member@example.jp");
    assert!(got[0].1.contains("自治体ポイント交換クーポン"), "{got:?}");
    assert!(got[0].2.contains(code) && got[0].2.contains("500ポイント"), "{got:?}");
    assert!(got[0].2.contains(&format!("coupon={}", code.replace('-', ""))), "the redemption URL: {got:?}");
    // Once per code; only the batch's own codes; only the partner itself.
    let (st, _) = card_co.post(&mail_path, json!({"code": code, "to": "member@example.jp"})).await;
    assert_eq!(st, 409);
    let (st, _) = card_co
        .post(
            &format!("/v1/partners/{}/coupon-batches/{}/mail", s.coupon_partner, Uuid::new_v4()),
            json!({"code": issued["codes"][1], "to": "m@example.jp"}),
        )
        .await;
    assert_eq!(st, 404);
    let (st, _) = Store::with_key(&s, &s.partner_key)
        .post(&mail_path, json!({"code": issued["codes"][1], "to": "m@example.jp"}))
        .await;
    assert_eq!(st, 403);
    let (st, v) = card_co.post(&mail_path, json!({"code": "0000-0000-0000-0001", "to": "m@example.jp"})).await;
    assert_eq!((st, v["type"].as_str()), (422, Some("urn:mykey:problem:coupon-invalid")), "{v}");
}

/// Guessing codes in the coupon widget is limited per resident and per client address, the
/// address being the client a trusted proxy names (so one client's guesses lock out neither
/// the other clients behind the proxy nor the resident elsewhere).
#[tokio::test]
async fn guessing_codes_in_the_widget_is_limited_per_resident_and_per_address_behind_a_proxy() {
    use mykey_server::services::coupons::{FAILED_REDEMPTIONS_PER_IP, FAILED_REDEMPTIONS_PER_RESIDENT};
    let s = server(Options::default()).await;
    let card_co = Store::with_key(&s, &s.coupon_partner_key);
    let (pk, _) = set_up(&card_co, &format!("/v1/partners/{}/embedding", s.coupon_partner), None).await;
    let expires = (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339();
    let (_, issued) = card_co
        .post(
            &format!("/v1/partners/{}/coupons", s.coupon_partner),
            json!({"id": Uuid::new_v4(), "count": 1, "partner_points": "1000", "rate": "0.5", "expires_at": expires, "delivery": "url"}),
        )
        .await;
    let good = issued["codes"][0].as_str().unwrap().to_owned();
    let stranger = mykey_core::coupon::CouponCode::from_random(&[9; 15]).to_string();
    let residents = FAILED_REDEMPTIONS_PER_IP.div_ceil(FAILED_REDEMPTIONS_PER_RESIDENT) + 1;
    let mut grants = Vec::new();
    for _ in 0..residents {
        let (b, mykey_id, _) = resident_with(&s, 0).await;
        let (st, v) = b
            .post(
                "/v1/coupon-widget/sign-in",
                json!({"publishable_key": pk, "instance": FRAME, "password": {"mykey_id": mykey_id, "password": "abc123!x"}}),
            )
            .await;
        assert_eq!(st, 200, "{v}");
        grants.push(v["grant"].as_str().unwrap().to_owned());
    }
    let http = reqwest::Client::new();
    let preview = |grant: &str, code: &str, from: &str| {
        http.post(format!("{}/v1/coupon-widget/preview", s.base))
            .header("origin", &s.base)
            .header("x-forwarded-for", from)
            .json(&json!({"publishable_key": pk, "grant": grant, "code": code}))
            .send()
    };
    // The first residents guess from one client until the address is spent.
    let mut failures = 0;
    'guessing: for grant in &grants[..residents - 1] {
        for _ in 0..FAILED_REDEMPTIONS_PER_RESIDENT {
            assert_eq!(preview(grant, &stranger, "203.0.113.7").await.unwrap().status(), 422);
            failures += 1;
            if failures == FAILED_REDEMPTIONS_PER_IP {
                break 'guessing;
            }
        }
        // This resident is spent, wherever it tries from.
        assert_eq!(preview(grant, &good, "198.51.100.9").await.unwrap().status(), 429);
    }
    // The address is spent for a resident who never guessed; another client behind the same
    // proxy is not.
    let fresh = &grants[residents - 1];
    assert_eq!(preview(fresh, &good, "203.0.113.7").await.unwrap().status(), 429);
    let res = preview(fresh, &good, "198.51.100.9").await.unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
}

/// The partner routes no other test reaches refuse what they should: unknown keys, another
/// partner's key, a grant from elsewhere, unknown batches and events.
#[tokio::test]
async fn the_partner_routes_refuse_what_they_should() {
    let s = server(Options::default()).await;
    let card_co = Store::with_key(&s, &s.coupon_partner_key);
    let airline = Store::with_key(&s, &s.partner_key);
    let (pk, _) = set_up(&card_co, &format!("/v1/partners/{}/embedding", s.coupon_partner), None).await;
    let unknown = format!("pk_{}", "0".repeat(64));
    let (b, mykey_id, _) = resident_with(&s, 0).await;
    for (path, body) in [
        ("/v1/coupon-widget/view", json!({"publishable_key": unknown})),
        ("/v1/coupon-widget/nonce", json!({"publishable_key": unknown, "instance": FRAME})),
    ] {
        let (st, v) = b.post(path, body).await;
        assert_eq!((st, v["type"].as_str()), (404, Some("urn:mykey:problem:not-found")), "{path}: {v}");
    }
    // A grant of one partner's widget assigns nothing in another's; a made-up grant nothing.
    let (airline_pk, _) = set_up(&airline, &format!("/v1/partners/{}/embedding", s.partner), None).await;
    let (_, signed) = b
        .post(
            "/v1/coupon-widget/sign-in",
            json!({"publishable_key": airline_pk, "instance": FRAME, "password": {"mykey_id": mykey_id, "password": "abc123!x"}}),
        )
        .await;
    for grant in [signed["grant"].clone(), json!("f".repeat(64))] {
        let body = json!({"publishable_key": pk, "grant": grant, "id": Uuid::new_v4(), "municipality": 1, "amount": 1});
        let (st, v) = b.post("/v1/coupon-widget/assign", body).await;
        assert_eq!((st, v["type"].as_str()), (401, Some("urn:mykey:problem:unauthenticated")), "{v}");
    }
    // Sign-in and redemption must come from the points cloud's own pages.
    let res = reqwest::Client::new()
        .post(format!("{}/v1/coupon-widget/sign-in", s.base))
        .header("origin", "https://evil.example")
        .json(&json!({"publishable_key": pk, "instance": FRAME, "password": {"mykey_id": mykey_id, "password": "abc123!x"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // Another partner's settings, events, batches; unknown ones.
    let mine = format!("/v1/partners/{}", s.coupon_partner);
    let (st, _) = airline.put(&format!("{mine}/embedding"), json!({"origins": [PARTNER_ORIGIN]})).await;
    assert_eq!(st, 403);
    let (st, v) = card_co.put(&format!("{mine}/embedding"), json!({"origins": ["ftp://x.example"]})).await;
    assert_eq!((st, v["type"].as_str()), (400, Some("urn:mykey:problem:invalid-request")), "{v}");
    for path in ["events", "embedding"] {
        let (st, _) = airline.get(&format!("{mine}/{path}")).await;
        assert_eq!(st, 403, "{path}");
    }
    let (st, _) = card_co.post(&format!("{mine}/events/{}/resend", Uuid::new_v4()), json!({})).await;
    assert_eq!(st, 404);
    let batch = Uuid::new_v4();
    for path in ["codes", "codes.csv", "sheet"] {
        let (st, _) = airline.get(&format!("{mine}/coupon-batches/{batch}/{path}")).await;
        assert_eq!(st, 403, "{path}");
        let (st, v) = card_co.get(&format!("{mine}/coupon-batches/{batch}/{path}")).await;
        assert_eq!((st, v["type"].as_str()), (404, Some("urn:mykey:problem:not-found")), "{path}: {v}");
    }
}

/// The coupon widget's card challenges are limited per frame and per address, not per partner:
/// a page asking too often blocks itself, and the partner's other residents still sign in with
/// their cards.
#[tokio::test]
async fn coupon_widget_challenges_are_limited_per_frame_and_address_not_per_partner() {
    use mykey_server::services::identity::NONCES_PER_BROWSER_PER_MINUTE;
    let s = server(Options::default()).await;
    let card_co = Store::with_key(&s, &s.coupon_partner_key);
    let (pk, _) = set_up(&card_co, &format!("/v1/partners/{}/embedding", s.coupon_partner), None).await;
    let http = reqwest::Client::new();
    let nonce = |instance: &str, from: &str| {
        http.post(format!("{}/v1/coupon-widget/nonce", s.base))
            .header("x-forwarded-for", from)
            .json(&json!({"publishable_key": pk, "instance": instance}))
            .send()
    };
    let noisy = "a0000000-0000-4000-8000-000000000001";
    for _ in 0..NONCES_PER_BROWSER_PER_MINUTE {
        assert_eq!(nonce(noisy, "203.0.113.5").await.unwrap().status(), 200);
    }
    assert_eq!(nonce(noisy, "203.0.113.5").await.unwrap().status(), 429, "that frame is blocked");
    let other = nonce("b0000000-0000-4000-8000-000000000002", "203.0.113.6").await.unwrap();
    assert_eq!(other.status(), 200, "another resident's frame is not");
    for bad in ["short", "has spaces in it here!", &"x".repeat(65)] {
        assert_eq!(nonce(bad, "203.0.113.7").await.unwrap().status(), 400, "{bad}");
    }
}
