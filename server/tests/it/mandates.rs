//! Standing mandates over real HTTP (issue 23): a linked member ID alone lets a store charge
//! nothing; a store charges only under a mandate the resident granted in the link widget, by
//! its opaque id, within its terms, once per reference; every answer to the store is free of
//! the resident's balances and accounts; the resident gets a notice for each charge, sees them
//! on my page and revokes the mandate at once (or with the link).

use std::time::Duration;

use mykey_core::api::japan_date;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::checkout::{grant, resident_with, Receiver, Store};
use crate::identity::{server, wait_for_mail, Options};
use crate::partners::{confirm_link, set_up, PARTNER_ORIGIN};

/// A date `days` from today, Japan time.
fn in_days(days: i64) -> String {
    (japan_date(chrono::Utc::now()) + chrono::Duration::days(days)).to_string()
}

/// Members of an answer that would tell a resident's points or accounts.
fn assert_tells_no_balance(v: &Value) {
    let text = v.to_string();
    for member in ["balance_after", "\"available\"", "\"account\"", "postings"] {
        assert!(!text.contains(member), "{member} in {v}");
    }
}

#[tokio::test]
async fn a_store_charges_a_linked_member_only_within_the_mandate_they_granted() {
    let mail = mykey_server::testing::Smtp::start().unwrap();
    let s = server(Options::with_smtp(mail.url())).await;
    let (b, mykey_id, resident) = resident_with(&s, 0).await;
    grant(&s, resident, 4000).await;
    let shop = s.online_store;
    let store = Store::with_key(&s, &s.online_store_key);
    let hooks = Receiver::default();
    let (_, secret) = set_up(&store, &format!("/v1/shops/{shop}/checkout"), Some(&hooks.start().await)).await;
    let http = reqwest::Client::new();
    let charge = |key: &str, at: i64, body: Value| {
        http.post(format!("{}/v1/shops/{at}/mandate-charges", s.base)).bearer_auth(key).json(&body)
    };
    let send = |req: reqwest::RequestBuilder| async move {
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json::<Value>().await.unwrap_or(Value::Null))
    };

    // The link alone: no charge by member number exists any more.
    let old = http
        .post(format!("{}/v1/shops/{shop}/linked-payments", s.base))
        .bearer_auth(&s.online_store_key)
        .json(&json!({"reference": "o-1", "service_id": "MC-0001", "amount": "10"}))
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), 404);

    // Terms a store may not ask for, and a partner asking for a mandate at all.
    let open = |service_id: &str, mandate: Value| {
        json!({"id": Uuid::new_v4(), "online_service": s.online_service, "service_id": service_id,
               "return_url": format!("{PARTNER_ORIGIN}/linked"), "mandate": mandate})
    };
    for bad in [
        json!({"max_per_charge": 0, "max_per_month": 100, "ends_on": in_days(30)}),
        json!({"max_per_charge": 3000, "max_per_month": 2999, "ends_on": in_days(30)}),
        json!({"max_per_charge": 3000, "max_per_month": 5000, "ends_on": in_days(-1)}),
        json!({"max_per_charge": 3000, "max_per_month": 5000, "ends_on": in_days(400)}),
    ] {
        let (st, v) = store.post("/v1/link-sessions", open("MC-0001", bad.clone())).await;
        assert_eq!((st, v["field"].as_str()), (400, Some("mandate")), "{bad}: {v}");
    }
    let airline = Store::with_key(&s, &s.partner_key);
    set_up(&airline, &format!("/v1/partners/{}/embedding", s.partner), None).await;
    let terms = json!({"max_per_charge": 3000, "max_per_month": 5000, "ends_on": in_days(30)});
    let (st, v) = airline
        .post(
            "/v1/link-sessions",
            json!({"id": Uuid::new_v4(), "partner": s.partner, "service_id": "JAL-1", "mandate": terms}),
        )
        .await;
    assert_eq!((st, v["field"].as_str()), (400, Some("mandate")), "{v}");

    // The store asks; the widget shows the store (one shop) and the terms; the resident grants.
    let (st, v) = store.post("/v1/link-sessions", open("MC-0001", terms.clone())).await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["session"]["mandate"], terms);
    let (id, cs) = (v["session"]["id"].as_str().unwrap().to_owned(), v["client_secret"].as_str().unwrap().to_owned());
    let (st, view) = b.post(&format!("/v1/link-sessions/{id}/view"), json!({"client_secret": cs})).await;
    assert_eq!(st, 200, "{view}");
    assert_eq!(view["mandate"]["shop_name"], "めいぶつチョイス（前橋市）");
    assert_eq!(view["mandate"]["terms"], terms);
    let (st, v) = confirm_link(&b, &id, &cs, &mykey_id).await;
    assert_eq!((st, v["state"].as_str()), (200, Some("linked")), "{v}");
    let events = hooks.events(1, &secret).await;
    assert_eq!(events[0]["type"], "link.confirmed");
    let (_, session) = store.get(&format!("/v1/link-sessions/{id}")).await;
    let mandate = events[0]["link"]["mandate"].clone();
    assert_eq!((mandate["shop"].as_i64(), mandate["state"].as_str()), (Some(shop), Some("active")), "{mandate}");
    assert_eq!(mandate["terms"], terms);
    let mandate_id = mandate["id"].as_str().unwrap().to_owned();
    assert_eq!(session["mandate_id"].as_str(), Some(mandate_id.as_str()), "the session names it too: {session}");
    let body = |reference: &str, amount: i64| json!({"reference": reference, "mandate": mandate_id, "amount": amount, "memo": "定期便 上州地鶏"});

    // Within the terms; the answer tells no balance; the same reference replays, another body
    // under it is a conflict.
    let (st, v) = send(charge(&s.online_store_key, shop, body("A", 3001))).await;
    assert_eq!((st, v["type"].as_str()), (422, Some("urn:mykey:problem:mandate-limit")), "{v}");
    let (st, first) = send(charge(&s.online_store_key, shop, body("A", 3000))).await;
    assert_eq!((st, first["points"].as_i64(), first["kind"].as_str()), (201, Some(3000), Some("payment")), "{first}");
    assert_tells_no_balance(&first);
    assert_eq!(send(charge(&s.online_store_key, shop, body("A", 3000))).await, (201, first.clone()));
    assert_eq!(send(charge(&s.online_store_key, shop, body("A", 2000))).await.0, 409);
    // Not enough points: refused without saying how many there are, and nothing reserved.
    let (st, v) = send(charge(&s.online_store_key, shop, body("B", 2000))).await;
    assert_eq!((st, v["type"].as_str()), (422, Some("urn:mykey:problem:insufficient-points")), "{v}");
    assert_tells_no_balance(&v);
    assert!(!v["detail"].as_str().unwrap().contains("1000"), "{v}");
    grant(&s, resident, 2000).await;
    let (st, v) = send(charge(&s.online_store_key, shop, body("B", 2000))).await;
    assert_eq!(st, 201, "{v}");
    // The month's limit is reached.
    let (st, v) = send(charge(&s.online_store_key, shop, body("C", 1))).await;
    assert_eq!((st, v["type"].as_str()), (422, Some("urn:mykey:problem:mandate-limit")), "{v}");
    assert_eq!(v["max_per_month"], 5000);
    assert_tells_no_balance(&v);

    // Another store's key, or an id nobody granted: the same refusal; guessing is limited.
    let (st, foreign) = send(charge(&s.library_key, s.library, body("X", 1))).await;
    let (_, unknown) =
        send(charge(&s.online_store_key, shop, json!({"reference": "X", "mandate": Uuid::new_v4(), "amount": 1})))
            .await;
    assert_eq!((st, foreign["type"].as_str()), (404, Some("urn:mykey:problem:mandate-not-found")), "{foreign}");
    assert_eq!(
        (foreign["type"].clone(), foreign["detail"].clone()),
        (unknown["type"].clone(), unknown["detail"].clone())
    );
    let mut limited = false;
    for i in 0..mykey_core::rules::MANDATE_GUESSES_PER_MINUTE {
        let (st, _) = send(charge(&s.library_key, s.library, body(&format!("G{i}"), 1))).await;
        limited |= st == 429;
    }
    assert!(limited, "guesses are limited per store");
    // Only the store's own key charges at its address: a partner's or another store's is 403.
    assert_eq!(send(charge(&s.partner_key, shop, body("P", 1))).await.0, 403);
    assert_eq!(send(charge(&s.library_key, shop, body("P", 1))).await.0, 403);
    // A resident's mandates are the resident's: another resident neither sees nor revokes them,
    // and without a session there is nothing to see.
    let (other, _, _) = resident_with(&s, 0).await;
    let (st, theirs) = other.get("/v1/me/mandates").await;
    assert_eq!((st, theirs.as_array().map(Vec::len)), (200, Some(0)), "{theirs}");
    let (st, v) = other.post(&format!("/v1/me/mandates/{mandate_id}/revoke"), json!({})).await;
    assert_eq!((st, v["type"].as_str()), (404, Some("urn:mykey:problem:not-found")), "{v}");
    let anonymous = http.get(format!("{}/v1/me/mandates", s.base)).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    // A store's key alone never reaches a resident's balances.
    let (st, _) =
        send(http.get(format!("{}/v1/residents/{resident}/balances", s.base)).bearer_auth(&s.online_store_key)).await;
    assert_eq!(st, 403);

    // My page lists the mandate with its charges; the usage history and the mail tell of each.
    let (st, list) = b.get("/v1/me/mandates").await;
    assert_eq!(st, 200, "{list}");
    let m = &list[0];
    assert_eq!(
        (m["id"].as_str(), m["state"].as_str(), m["charged_this_month"].as_i64()),
        (Some(mandate_id.as_str()), Some("active"), Some(5000)),
        "{m}"
    );
    assert_eq!(m["shop_name"], "めいぶつチョイス（前橋市）");
    assert_eq!(m["charges"].as_array().unwrap().len(), 2, "{m}");
    let (_, h) = b.get("/v1/me/history").await;
    let kinds: Vec<&str> = h.as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "mandate_charged").count(), 2, "{kinds:?}");
    assert!(kinds.contains(&"mandate_granted"), "{kinds:?}");
    // Two kinds of mail: the link with its grant, and one payment notice per charge (the
    // ledger's, as for every payment), naming the store, the points and the store's memo.
    let (mut links, mut charges) = (Vec::new(), Vec::new());
    for _ in 0..100 {
        let all = wait_for_mail(&mail, 1).await;
        links = all.iter().filter(|m| m.1.contains("連携とお支払いのお知らせ")).cloned().collect::<Vec<_>>();
        charges = all.into_iter().filter(|m| m.1.contains("ポイントでお支払いしました")).collect::<Vec<_>>();
        if !links.is_empty() && charges.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!((links.len(), charges.len()), (1, 2), "the link with its grant, and two charges: {links:?} {charges:?}");
    assert!(links[0].2.contains("MC-0001 をマイキーIDと連携しました"), "{links:?}");
    assert!(links[0].2.contains("継続して支払うことを許可しました") && links[0].2.contains("5000ポイントまで"));
    assert!(
        charges.iter().any(|m| m.2.contains("めいぶつチョイス（前橋市）で")
            && m.2.contains("3000ポイントを使いました")
            && m.2.contains("定期便 上州地鶏")),
        "{charges:?}"
    );

    // Revoked at once: nothing more is charged, the store hears of it, a past charge replays.
    let (st, _) = b.post(&format!("/v1/me/mandates/{mandate_id}/revoke"), json!({})).await;
    assert_eq!(st, 204);
    assert_eq!(b.post(&format!("/v1/me/mandates/{mandate_id}/revoke"), json!({})).await.0, 404);
    let (st, v) = send(charge(&s.online_store_key, shop, body("D", 1))).await;
    assert_eq!((st, v["state"].as_str()), (409, Some("revoked")), "{v}");
    assert_eq!(send(charge(&s.online_store_key, shop, body("A", 3000))).await, (201, first));
    let events = hooks.events(2, &secret).await;
    assert_eq!(events[1]["type"], "mandate.revoked");
    assert_eq!(events[1]["mandate"]["state"], "revoked");

    // A mandate granted with another link goes with that link.
    let (_, v) = store.post("/v1/link-sessions", open("MC-0002", terms.clone())).await;
    let (id, cs) = (v["session"]["id"].as_str().unwrap().to_owned(), v["client_secret"].as_str().unwrap().to_owned());
    assert_eq!(confirm_link(&b, &id, &cs, &mykey_id).await.0, 200);
    let events = hooks.events(3, &secret).await;
    let second = events[2]["link"]["mandate"]["id"].as_str().unwrap().to_owned();
    let link = events[2]["link"]["link"].as_str().unwrap().to_owned();
    let (st, _) = b.post(&format!("/v1/me/service-links/{link}/revoke"), json!({"password": "abc123!x"})).await;
    assert_eq!(st, 204);
    let again = json!({"reference": "E", "mandate": second, "amount": 1});
    let (st, v) = send(charge(&s.online_store_key, shop, again)).await;
    assert_eq!((st, v["type"].as_str()), (409, Some("urn:mykey:problem:mandate-inactive")), "{v}");
    let events = hooks.events(5, &secret).await;
    let kinds: Vec<&str> = events[3..].iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"link.revoked") && kinds.contains(&"mandate.revoked"), "{kinds:?}");
}
