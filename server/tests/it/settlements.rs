//! Settlement statements over HTTP: what a partner pays each municipality its members'
//! converted points went to, per period, and who may see which lines.

use crate::common::App;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_pays_each_municipality_for_the_points_assigned_there() {
    let app = App::start().await;
    let from = chrono::Utc::now() - chrono::Duration::hours(1);
    let r1 = app.residents[0];
    let (s, v) = app
        .post(
            "/v1/conversions",
            &app.keys.operator,
            json!({"id": uuid::Uuid::new_v4(), "partner": app.partner, "resident": r1, "partner_points": "1000", "rate": "0.5"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    for (m, amount) in [(1, 300), (2, 100)] {
        let body = json!({"id": uuid::Uuid::new_v4(), "resident": r1, "municipality": m, "amount": amount});
        let (s, v) = app.post("/v1/assignments", &app.keys.resident1, body).await;
        assert_eq!(s, 201, "{v}");
    }
    let to = chrono::Utc::now() + chrono::Duration::hours(1);
    let period = |extra: &str| {
        format!("/v1/settlements?from={}&to={}{extra}", urlencode(&from.to_rfc3339()), urlencode(&to.to_rfc3339()))
    };

    let (s, v) = app.get(&period(""), &app.keys.operator).await;
    assert_eq!(s, 200, "{v}");
    let lines = v["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2, "{v}");
    assert_eq!((lines[0]["municipality"].as_i64(), lines[0]["points"].as_i64()), (Some(1), Some(300)));
    assert_eq!((lines[1]["municipality"].as_i64(), lines[1]["points"].as_i64()), (Some(2), Some(100)));
    assert_eq!(lines[0]["partner"], app.partner);
    assert_eq!(lines[0]["yen"], "300");
    assert_eq!(v["total_yen"], "400");

    // The partner sees its own lines; a municipality only its own; others nothing.
    let (s, v) = app.get(&period(""), &app.keys.partner).await;
    assert_eq!((s, v["lines"].as_array().unwrap().len()), (200, 2));
    let (s, v) = app.get(&period(""), &app.keys.municipality1).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["lines"].as_array().unwrap().len(), 1);
    assert_eq!(v["lines"][0]["municipality"], 1);
    let (s, _) = app.get(&period("&municipality=2"), &app.keys.municipality1).await;
    assert_eq!(s, 403);
    let (s, _) = app.get(&period(""), &app.keys.store1).await;
    assert_eq!(s, 403);

    // Another period has nothing to settle.
    let later = format!(
        "/v1/settlements?from={}&to={}",
        urlencode(&to.to_rfc3339()),
        urlencode(&(to + chrono::Duration::hours(1)).to_rfc3339())
    );
    let (s, v) = app.get(&later, &app.keys.operator).await;
    assert_eq!((s, v["lines"].as_array().unwrap().len()), (200, 0));
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}
