//! Coupon codes over HTTP on the database the run selects: a partner issues a batch, a
//! resident redeems a code once (its points arrive as reserved points), retries replay,
//! typos and guesses are refused and limited, expired and used codes are refused.

use crate::common::App;
use mykey_server::auth::{create_key, Role};
use serde_json::{json, Value};

fn batch(count: u32, expires_in_s: i64) -> Value {
    json!({
        "id": uuid::Uuid::new_v4(),
        "count": count,
        "partner_points": "1000",
        "rate": "0.5",
        "expires_at": (chrono::Utc::now() + chrono::Duration::seconds(expires_in_s)).to_rfc3339(),
        "delivery": "url"
    })
}

async fn reserved(app: &App, resident: i64) -> i64 {
    let (s, v) = app.get(&format!("/v1/residents/{resident}/balances"), &app.keys.operator).await;
    assert_eq!(s, 200, "{v}");
    v["accounts"].as_array().unwrap().iter().find(|a| a["kind"] == "reserved").unwrap()["balance"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partners_code_gives_reserved_points_once() {
    let app = App::start().await;
    let path = format!("/v1/partners/{}/coupons", app.coupon_partner);
    let body = batch(3, 3600);
    let (s, issued) = app.post(&path, &app.keys.coupon_partner, body.clone()).await;
    assert_eq!(s, 201, "{issued}");
    assert_eq!(issued["points"], 500);
    let codes: Vec<String> =
        issued["codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    assert_eq!(codes.len(), 3);
    assert!(issued["urls"][0].as_str().unwrap().ends_with(&codes[0].replace('-', "")));
    // The same request gives the same codes; another body with the same id is a conflict.
    let (s, again) = app.post(&path, &app.keys.coupon_partner, body.clone()).await;
    assert_eq!((s, &again["codes"]), (201, &issued["codes"]));
    let mut other = body.clone();
    other["count"] = json!(4);
    let (s, v) = app.post(&path, &app.keys.coupon_partner, other).await;
    assert_eq!((s, v["type"].as_str().unwrap()), (409, "urn:mykey:problem:idempotency-conflict"));
    // Only the partner itself may issue (a partner offering ID linkage first may issue codes
    // too, for its members without a proven link); an unknown partner is refused.
    let (s, _) = app.post(&path, &app.keys.store1, batch(1, 3600)).await;
    assert_eq!(s, 403);
    let linkage = format!("/v1/partners/{}/coupons", app.partner);
    let (s, v) = app.post(&linkage, &app.keys.partner, batch(1, 3600)).await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = app.post("/v1/partners/999/coupons", &app.keys.operator, batch(1, 3600)).await;
    assert_eq!((s, v["type"].as_str().unwrap()), (422, "urn:mykey:problem:unknown-reference"), "{v}");

    let r1 = app.residents[0];
    let before = reserved(&app, r1).await;
    let redeem = |code: &str, resident: i64| json!({ "code": code.to_lowercase(), "resident": resident });
    let (s, receipt) = app.post("/v1/coupons/redeem", &app.keys.resident1, redeem(&codes[0], r1)).await;
    assert_eq!(s, 201, "{receipt}");
    assert_eq!(receipt["kind"], "conversion");
    assert_eq!(reserved(&app, r1).await, before + 500);
    // A retry replays the receipt and gives nothing more.
    let (s, replay) = app.post("/v1/coupons/redeem", &app.keys.resident1, redeem(&codes[0], r1)).await;
    assert_eq!((s, &replay["seq"]), (201, &receipt["seq"]));
    assert_eq!(reserved(&app, r1).await, before + 500);
    // Another resident cannot have it.
    let r2 = app.residents[1];
    let store = mykey_server::store::Store::connect(&app.db.url).await.unwrap();
    let key2 = create_key(&store, Role::Resident, r2, "t").await.unwrap();
    let (s, v) = app.post("/v1/coupons/redeem", &key2, redeem(&codes[0], r2)).await;
    assert_eq!((s, v["type"].as_str().unwrap()), (409, "urn:mykey:problem:coupon-used"));
    // Nor may a resident redeem for someone else.
    let (s, _) = app.post("/v1/coupons/redeem", &app.keys.resident1, redeem(&codes[1], r2)).await;
    assert_eq!(s, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typos_guesses_and_expired_codes_are_refused_and_guessing_is_limited() {
    let app = App::start().await;
    let path = format!("/v1/partners/{}/coupons", app.coupon_partner);
    let (_, issued) = app.post(&path, &app.keys.coupon_partner, batch(1, 1)).await;
    let code = issued["codes"][0].as_str().unwrap().to_owned();
    let r1 = app.residents[0];
    let redeem = |code: &str| json!({ "code": code, "resident": r1 });

    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (s, v) = app.post("/v1/coupons/redeem", &app.keys.resident1, redeem(&code)).await;
    assert_eq!((s, v["type"].as_str().unwrap()), (422, "urn:mykey:problem:coupon-expired"), "{v}");

    // A typo is caught by the check symbol; a well-formed code that was never issued too.
    let mut typo: Vec<char> = code.chars().collect();
    typo[0] = if typo[0] == 'A' { 'B' } else { 'A' };
    let typo: String = typo.into_iter().collect();
    let (s, v) = app.post("/v1/coupons/redeem", &app.keys.resident1, redeem(&typo)).await;
    assert_eq!((s, v["type"].as_str().unwrap()), (422, "urn:mykey:problem:coupon-invalid"));
    assert!(v["detail"].as_str().unwrap().contains("typo"), "{v}");
    let stranger = mykey_core::coupon::CouponCode::from_random(&[9; 15]).to_string();
    for _ in 1..mykey_server::services::coupons::FAILED_REDEMPTIONS_PER_RESIDENT {
        let (s, v) = app.post("/v1/coupons/redeem", &app.keys.resident1, redeem(&stranger)).await;
        assert_eq!((s, v["type"].as_str().unwrap()), (422, "urn:mykey:problem:coupon-invalid"));
    }
    let (s, v) = app.post("/v1/coupons/redeem", &app.keys.resident1, redeem(&code)).await;
    assert_eq!((s, v["type"].as_str().unwrap()), (429, "urn:mykey:problem:rate-limited"));
}
