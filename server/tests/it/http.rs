//! The API over real HTTP against a real database (SQLite, or PostgreSQL when
//! `MYKEY_TEST_POSTGRES_URL` is set).

use crate::common::{payment, slug, App};
use serde_json::json;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_amounts_and_references_are_problems_with_stable_types() {
    let app = App::start().await;
    let r = app.residents[0];
    app.grant(r, 500).await;
    let k = &app.keys.operator;
    let cases = [
        (payment(r, app.shops[0], 1, json!(1.5)), 422, "fractional-points"),
        (payment(r, app.shops[0], 1, json!(0)), 422, "non-positive-amount"),
        (payment(r, app.shops[0], 1, json!(-10)), 422, "non-positive-amount"),
        (payment(r, app.shops[0], 1, json!(1e15)), 422, "amount-too-large"),
        (payment(r, app.shops[0], 2, json!(10)), 422, "currency-mismatch"),
        (payment(9999, app.shops[0], 1, json!(10)), 422, "unknown-reference"),
        (payment(r, app.shops[0], 1, json!(501)), 422, "insufficient-points"),
    ];
    for (body, status, want) in cases {
        let (s, v) = app.post("/v1/payments", k, body.clone()).await;
        assert_eq!((s, slug(&v)), (status, want), "{body} -> {v}");
        assert!(!v["detail"].as_str().unwrap().is_empty());
    }
    let (s, v) = app.post("/v1/payments", k, payment(r, app.shops[0], 1, json!(501))).await;
    assert_eq!(v["available"], 500, "{s} {v}");

    // Unknown account and currency mismatch in an operator's transaction.
    let op = &app.keys.operator;
    let (s, v) = app
        .post(
            "/v1/transactions",
            op,
            json!({"id": Uuid::new_v4(), "postings": [{"account": 99999, "amount": -1}, {"account": 1, "amount": 1}]}),
        )
        .await;
    assert_eq!((s, slug(&v)), (422, "unknown-account"));
    let (s, v) = app
        .post(
            "/v1/transactions",
            op,
            json!({"id": Uuid::new_v4(), "postings": [{"account": 1, "amount": -1}, {"account": 3, "amount": 1}]}),
        )
        .await;
    assert_eq!((s, slug(&v)), (422, "currency-mismatch"), "{v}");

    // Malformed bodies.
    let (s, v) = app.post("/v1/payments", k, json!({"id": "not-a-uuid"})).await;
    assert_eq!((s, slug(&v)), (400, "invalid-request"));
    let res = app
        .client
        .post(format!("{}/v1/payments", app.base))
        .bearer_auth(k)
        .body("{")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_is_authorised_by_role() {
    let app = App::start().await;
    let r = app.residents[0];
    let body = payment(r, app.shops[0], 1, json!(1));
    let res = app.client.post(format!("{}/v1/payments", app.base)).json(&body).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 401);
    let (s, v) = app.post("/v1/payments", "mk_store_0000", body.clone()).await;
    assert_eq!((s, slug(&v)), (401, "unauthenticated"));
    // No key but the operator's charges a resident alone: a store's key (only a checkout the
    // resident confirmed does), nor a terminal's, even at its own shop (only with the resident's
    // card: tests of `counter-payments`); a partner may not grant; a resident may not pay.
    assert_eq!(app.post("/v1/payments", &app.keys.store1, body.clone()).await.0, 403);
    let (s, v) = app.signed_post(&app.devices[0], "/v1/payments", body.clone()).await;
    assert_eq!(s, 403);
    assert!(v["detail"].as_str().unwrap().contains("counter-payments"), "{v}");
    let hold = json!({"id": Uuid::new_v4(), "resident": r, "municipality": 1, "shop": app.shops[0], "amount": 1, "timeout_seconds": 60});
    assert_eq!(app.signed_post(&app.devices[0], "/v1/holds", hold).await.0, 403);
    assert_eq!(app.signed_post(&app.devices[1], "/v1/payments", body.clone()).await.0, 403);
    assert_eq!(app.post("/v1/payments", &app.keys.resident1, body).await.0, 403);
    let grant = json!({"id": Uuid::new_v4(), "resident": r, "municipality": 1, "amount": 5});
    assert_eq!(app.post("/v1/grants", &app.keys.partner, grant.clone()).await.0, 403);
    assert_eq!(app.post("/v1/grants", &app.keys.municipality2, grant.clone()).await.0, 403);
    assert_eq!(app.post("/v1/grants", &app.keys.municipality1, grant).await.0, 201);
    // Reads: a resident sees only their own balances.
    assert_eq!(app.get(&format!("/v1/residents/{r}/balances"), &app.keys.resident1).await.0, 200);
    assert_eq!(app.get(&format!("/v1/residents/{}/balances", app.residents[1]), &app.keys.resident1).await.0, 403);
    assert_eq!(app.post("/v1/jobs/run", &app.keys.municipality1, json!({})).await.0, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_keys_is_rate_limited() {
    let app = App::start().await;
    let body = payment(app.residents[0], app.shops[0], 1, json!(1));
    let mut statuses = Vec::new();
    for i in 0..40 {
        let (s, _) = app.post("/v1/payments", &format!("mk_store_{i:064x}"), body.clone()).await;
        statuses.push(s);
    }
    let limit = mykey_server::auth::FAILED_AUTH_PER_MINUTE as usize;
    assert!(statuses[..limit].iter().all(|s| *s == 401), "{statuses:?}");
    assert!(statuses[limit..].iter().all(|s| *s == 429), "{statuses:?}");
    // A valid key still works from the same address.
    let (s, _) = app
        .post(
            "/v1/grants",
            &app.keys.municipality1,
            json!({"id": Uuid::new_v4(), "resident": app.residents[0], "municipality": 1, "amount": 5}),
        )
        .await;
    assert_eq!(s, 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_id_returns_the_same_answer_and_another_body_conflicts() {
    let app = App::start().await;
    let r = app.residents[0];
    app.grant(r, 300).await;
    let k = &app.keys.operator;
    let body = payment(r, app.shops[0], 1, json!(100));
    let first = app.post("/v1/payments", k, body.clone()).await;
    assert_eq!(first.0, 201);
    for _ in 0..3 {
        assert_eq!(app.post("/v1/payments", k, body.clone()).await, first, "a replay returns the original answer");
    }
    assert_eq!(app.available(r).await, 200, "a replay moves nothing");
    // A refusal is answered and not remembered: it costs no row, and the same id goes through
    // once the points are there (it applied nothing the first time).
    let rows = || async {
        app.engine.tables().await.unwrap();
        let pool = app.engine.store().pool();
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM requests").fetch_one(pool).await.unwrap()
    };
    let too_much = payment(r, app.shops[0], 1, json!(250));
    let before = rows().await;
    let failed = app.post("/v1/payments", k, too_much.clone()).await;
    assert_eq!(failed.0, 422);
    assert_eq!(app.post("/v1/payments", k, too_much.clone()).await, failed, "still refused, and again not kept");
    assert_eq!(rows().await, before, "refusals leave no request record");
    app.grant(r, 100).await;
    let (s, v) = app.post("/v1/payments", k, too_much.clone()).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(app.post("/v1/payments", k, too_much).await, (s, v), "and that answer is kept");
    // Same id, different body.
    let mut other = body.clone();
    other["amount"] = json!(101);
    let (s, v) = app.post("/v1/payments", k, other).await;
    assert_eq!((s, slug(&v)), (409, "idempotency-conflict"));
    // Same id and body from another caller is a different request: conflict, not a leak.
    let grant = json!({"id": Uuid::new_v4(), "resident": r, "municipality": 1, "amount": 1});
    assert_eq!(app.post("/v1/grants", &app.keys.municipality1, grant.clone()).await.0, 201);
    let (s, _) = app.post("/v1/grants", &app.keys.operator, grant).await;
    assert_eq!(s, 409);
    // Concurrent duplicates inside one batch answer alike and apply once.
    let dup = payment(r, app.shops[0], 1, json!(7));
    let answers = futures_join(&app, k, dup, 20).await;
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    assert_eq!(app.available(r).await, 300 - 100 + 100 + 1 - 250 - 7);
}

async fn futures_join(app: &App, key: &str, body: serde_json::Value, n: usize) -> Vec<(u16, serde_json::Value)> {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (c, url, key, body) =
            (app.client.clone(), format!("{}/v1/payments", app.base), key.to_owned(), body.clone());
        set.spawn(async move {
            let res = c.post(url).bearer_auth(key).json(&body).send().await.unwrap();
            (res.status().as_u16(), res.json::<serde_json::Value>().await.unwrap())
        });
    }
    set.join_all().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_spends_of_a_hundred_against_ten_thousand() {
    let app = App::start().await;
    let r = app.residents[0];
    app.grant(r, 10_000).await;
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let (c, url, key) = (app.client.clone(), format!("{}/v1/payments", app.base), app.keys.operator.clone());
        let body = payment(r, app.shops[0], 1, json!(100));
        set.spawn(async move {
            let res = c.post(url).bearer_auth(key).json(&body).send().await.unwrap();
            (res.status().as_u16(), res.json::<serde_json::Value>().await.unwrap())
        });
    }
    let answers = set.join_all().await;
    let ok = answers.iter().filter(|(s, _)| *s == 201).count();
    let refused = answers.iter().filter(|(s, v)| *s == 422 && slug(v) == "insufficient-points").count();
    assert_eq!((ok, refused), (100, 100), "{answers:?}");
    assert_eq!(app.available(r).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_capture_void_and_expire() {
    let app = App::start().await;
    let r = app.residents[0];
    app.grant(r, 100).await;
    // The operator holds (a terminal holds with the resident's card); the shop's terminal
    // captures and voids.
    let (op, k) = (&app.keys.operator, &app.devices[0]);
    let hold = Uuid::new_v4();
    let (s, v) = app
        .post("/v1/holds", op, json!({"id": hold, "resident": r, "municipality": 1, "shop": app.shops[0], "amount": 80, "timeout_seconds": 600}))
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["state"], "active");
    assert_eq!(app.available(r).await, 20);
    // Another shop may not capture it.
    assert_eq!(
        app.signed_post(&app.devices[1], &format!("/v1/holds/{hold}/capture"), json!({"id": Uuid::new_v4()})).await.0,
        403
    );
    let (s, v) =
        app.signed_post(k, &format!("/v1/holds/{hold}/capture"), json!({"id": Uuid::new_v4(), "amount": 81})).await;
    assert_eq!((s, slug(&v)), (422, "capture-exceeds-hold"));
    let (s, v) =
        app.signed_post(k, &format!("/v1/holds/{hold}/capture"), json!({"id": Uuid::new_v4(), "amount": 50})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "captured");
    assert_eq!(v["capture"]["points"], 50);
    assert!(v.get("account").is_none() && v["capture"].get("postings").is_none(), "the shop sees no account: {v}");
    assert_eq!(app.available(r).await, 50);
    let (s, v) = app.signed_post(k, &format!("/v1/holds/{hold}/void"), json!({"id": Uuid::new_v4()})).await;
    assert_eq!((s, slug(&v)), (409, "hold-not-active"));

    // A hold that nobody resolves releases its points at the timeout.
    let short = Uuid::new_v4();
    let (s, _) = app
        .post("/v1/holds", op, json!({"id": short, "resident": r, "municipality": 1, "shop": app.shops[0], "amount": 50, "timeout_seconds": 1}))
        .await;
    assert_eq!(s, 201);
    assert_eq!(app.available(r).await, 0);
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    assert_eq!(app.available(r).await, 50, "the writer released the hold by itself");
    let (s, v) = app.signed_post(k, &format!("/v1/holds/{short}/capture"), json!({"id": Uuid::new_v4()})).await;
    assert_eq!((s, slug(&v)), (409, "hold-not-active"));
    assert_eq!(v["state"], "expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_pages_with_a_cursor_and_balances_answer_as_of_a_past_time() {
    let app = App::start().await;
    let r = app.residents[0];
    app.grant(r, 1000).await;
    let after_grant = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    for i in 1..=25 {
        let (s, _) = app.post("/v1/payments", &app.keys.operator, payment(r, app.shops[0], 1, json!(i))).await;
        assert_eq!(s, 201);
    }
    let (_, b) = app.get(&format!("/v1/residents/{r}/balances"), &app.keys.resident1).await;
    let account =
        b["accounts"].as_array().unwrap().iter().find(|a| a["kind"] == "municipal").unwrap()["id"].as_i64().unwrap();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = cursor.as_ref().map(|c| format!("&cursor={c}")).unwrap_or_default();
        let (s, page) = app.get(&format!("/v1/accounts/{account}/history?limit=10{q}"), &app.keys.resident1).await;
        assert_eq!(s, 200, "{page}");
        for e in page["entries"].as_array().unwrap() {
            seen.push(e["amount"].as_i64().unwrap());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let mut want: Vec<i64> = (1..=25).rev().map(|i| -i).collect();
    want.push(1000);
    assert_eq!(seen, want, "newest first, each entry once");
    let (s, v) = app
        .get(
            &format!(
                "/v1/accounts/{account}/balance?as_of={}",
                after_grant.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            ),
            &app.keys.resident1,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["balance"], 1000);
    let (s, v) =
        app.get(&format!("/v1/accounts/{account}/balance?as_of=2000-01-01T00:00:00Z"), &app.keys.resident1).await;
    assert_eq!((s, v["balance"].as_i64()), (200, Some(0)));
    let (s, _) = app.get(&format!("/v1/accounts/{account}/history?cursor=abc"), &app.keys.resident1).await;
    assert_eq!(s, 400);

    // Filters: one kind, one period; a cursor keeps them.
    let app = &app;
    let history = |q: String| {
        let path = format!("/v1/accounts/{account}/history?{q}");
        async move { app.get(&path, &app.keys.resident1).await }
    };
    let (_, v) = history("kind=grant".into()).await;
    let amounts: Vec<i64> = v["entries"].as_array().unwrap().iter().map(|e| e["amount"].as_i64().unwrap()).collect();
    assert_eq!(amounts, vec![1000]);
    let t = after_grant.to_rfc3339_opts(chrono::SecondsFormat::Micros, true).replace('+', "%2B");
    let (_, v) = history(format!("to={t}")).await;
    assert_eq!(v["entries"].as_array().unwrap().len(), 1, "only the grant came before: {v}");
    let (_, v) = history(format!("from={t}&kind=payment&limit=20")).await;
    assert_eq!(v["entries"].as_array().unwrap().len(), 20);
    let c = v["next_cursor"].as_str().unwrap().to_owned();
    let (_, v) = history(format!("from={t}&kind=payment&limit=20&cursor={c}")).await;
    assert_eq!((v["entries"].as_array().unwrap().len(), v["next_cursor"].as_str()), (5, None));
    let (s, v) = history("kind=bonus".into()).await;
    assert_eq!((s, v["field"].as_str()), (400, Some("kind")), "{v}");
    let (s, v) = history(format!("from={t}&to={t}")).await;
    assert_eq!((s, v["field"].as_str()), (400, Some("to")), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversions_wait_as_reserved_points_then_move_home_and_expire() {
    let app = App::start().await;
    let r = app.residents[0];
    let conv =
        json!({"id": Uuid::new_v4(), "partner": app.partner, "resident": r, "partner_points": 1001, "rate": "0.5"});
    // A partner's key alone may not credit a resident it names (only linked members, coupons).
    let (s, v) = app.post("/v1/conversions", &app.keys.partner, conv.clone()).await;
    assert_eq!((s, slug(&v)), (403, "forbidden"), "{v}");
    assert_eq!(v["detail"], "only the operator may do that, not a partner key");
    let (s, v) = app.post("/v1/conversions", &app.keys.operator, conv).await;
    assert_eq!((s, slug(&v)), (422, "fractional-points"), "500.5 points cannot be credited");
    let conv =
        json!({"id": Uuid::new_v4(), "partner": app.partner, "resident": r, "partner_points": 1000, "rate": "0.5"});
    let (s, v) = app.post("/v1/conversions", &app.keys.operator, conv).await;
    assert_eq!(s, 201, "{v}");
    // The resident assigns 100 to municipality 2 before the 14 days are up.
    let (s, v) = app
        .post(
            "/v1/assignments",
            &app.keys.resident1,
            json!({"id": Uuid::new_v4(), "resident": r, "municipality": 2, "amount": 100}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (_, b) = app.get(&format!("/v1/residents/{r}/balances"), &app.keys.resident1).await;
    assert!(b["reserved_moves_home_at"].is_string());
    let later = (chrono::Utc::now() + chrono::Duration::days(15)).to_rfc3339();
    let (s, report) = app.post("/v1/jobs/run", &app.keys.operator, json!({"now": later})).await;
    assert_eq!(s, 200, "{report}");
    assert_eq!(report["moved_reserved_points"], 400);
    assert_eq!(app.available(r).await, 400, "the rest went to the home municipality");
    // Three years on, everything has expired into breakage and a notice is queued.
    let much_later = (chrono::Utc::now() + chrono::Duration::days(3 * 365)).to_rfc3339();
    let (_, report) = app.post("/v1/jobs/run", &app.keys.operator, json!({"now": much_later})).await;
    assert_eq!(report["expired_points"], 500, "{report}");
    assert_eq!(report["notices_queued"], 2);
    let (_, m) = app.get("/v1/municipalities", "").await;
    let breakage = m[0]["breakage_account"].as_i64().unwrap();
    let (_, acc) = app.get(&format!("/v1/accounts/{breakage}"), &app.keys.municipality1).await;
    assert_eq!(acc["balance"], 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_transactions_are_all_or_nothing() {
    let app = App::start().await;
    let (a, b) = (app.residents[0], app.residents[1]);
    app.grant(a, 100).await;
    app.grant(b, 10).await;
    let acct = |v: serde_json::Value| v["postings"][1]["account"].as_i64().unwrap();
    let acc_a = acct(app.grant(a, 1).await);
    let acc_b = acct(app.grant(b, 1).await);
    let (_, shops) = app.get("/v1/shops?municipality=1", "").await;
    let receivable = shops[0]["receivable_account"].as_i64().unwrap();
    let (s, v) = app
        .post(
            "/v1/transactions",
            &app.keys.operator,
            json!({"id": Uuid::new_v4(), "postings": [
                {"account": acc_a, "amount": -50}, {"account": receivable, "amount": 70}, {"account": acc_b, "amount": -20}]}),
        )
        .await;
    assert_eq!((s, slug(&v)), (422, "insufficient-points"));
    assert_eq!(app.available(a).await, 101);
    assert_eq!(app.available(b).await, 11);
    let (s, v) = app
        .post(
            "/v1/transactions",
            &app.keys.operator,
            json!({"id": Uuid::new_v4(), "postings": [
                {"account": acc_a, "amount": -50}, {"account": receivable, "amount": 60}, {"account": acc_b, "amount": -10}]}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(app.available(a).await, 51);
    assert_eq!(app.available(b).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_metrics_and_openapi_are_served() {
    let app = App::start().await;
    let res = app.client.get(format!("{}/healthz", app.base)).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    app.grant(app.residents[0], 1).await;
    let metrics = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("mykey_http_requests_total"), "{metrics}");
    let (s, doc) = app.get("/openapi.json", "").await;
    assert_eq!(s, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/v1/payments",
        "/v1/holds/{hold}/capture",
        "/v1/accounts/{account}/history",
        "/v1/residents/{resident}/balances",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} documented");
    }
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    let (s, v) = app.get("/nope", "").await;
    assert_eq!((s, slug(&v)), (404, "not-found"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_are_remembered_across_restarts() {
    use mykey_server::engine::Request;
    let db = mykey_server::testing::TestDb::new().await.unwrap();
    let body = mykey_core::api::GrantRequest {
        id: Uuid::new_v4(),
        resident: 1,
        municipality: 1,
        event: None,
        amount: 5.into(),
        expires_at: None,
        memo: None,
    };
    let first = {
        let l = mykey_server::LedgerService::open(&db.url).await.unwrap();
        mykey_server::testing::add_municipality_and_residents(&l.engine, 1).await;
        let a = l.engine.execute(Request::Grant(body.clone()), "municipality:1").await;
        l.close().await;
        a
    };
    assert_eq!(first.as_ref().unwrap().status, 201);
    let l = mykey_server::LedgerService::open(&db.url).await.unwrap();
    assert_eq!(l.engine.execute(Request::Grant(body.clone()), "municipality:1").await, first);
    let mut other = body;
    other.amount = 6.into();
    let id = other.id;
    let conflict = l.engine.execute(Request::Grant(other), "municipality:1").await;
    assert_eq!(conflict, Err(mykey_server::engine::EngineError::Conflict(id)));
    l.engine.check_invariants().await;
}

/// A NUL in a memo once was acknowledged and then stopped PostgreSQL's materialiser for
/// good; a memo of 100,000 characters broke the entry bundle of its tile. Both are refused
/// at parse time now, the id stays free, and the tables and the log keep up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn free_texts_the_tables_or_the_log_cannot_hold_are_refused_before_anything_is_stored() {
    use mykey_core::text::MEMO_MAX;
    let app = App::start().await;
    let r = app.residents[0];
    let m = &app.keys.municipality1;
    let id = Uuid::new_v4();
    let grant = |memo: &str| json!({"id": id, "resident": r, "municipality": 1, "amount": 10, "memo": memo});
    let too_long = "x".repeat(MEMO_MAX + 1);
    for memo in ["a\u{0}b", "line\nbreak", "tab\there", "\u{85}", "\u{7f}", "", too_long.as_str()] {
        let (s, v) = app.post("/v1/grants", m, grant(memo)).await;
        assert_eq!((s, slug(&v)), (400, "invalid-request"), "{memo:?}: {v}");
    }
    let (s, v) = app
        .post(
            "/v1/conversions",
            &app.keys.operator,
            json!({"id": Uuid::new_v4(), "partner": app.partner, "resident": r, "partner_points": 10, "rate": 1, "memo": "a\u{0}"}),
        )
        .await;
    assert_eq!((s, slug(&v)), (400, "invalid-request"), "{v}");
    let (s, v) = app
        .post(
            "/v1/transactions",
            &app.keys.operator,
            json!({"id": Uuid::new_v4(), "postings": [{"account": 1, "amount": -1}, {"account": 1, "amount": 1}], "memo": "\u{0}"}),
        )
        .await;
    assert_eq!((s, slug(&v)), (400, "invalid-request"), "{v}");

    // A body over the limit is refused before it is parsed.
    let huge = "x".repeat(mykey_server::http::MAX_BODY_BYTES);
    let (s, v) = app.post("/v1/grants", m, grant(&huge)).await;
    assert_eq!((s, slug(&v)), (413, "body-too-large"), "{v}");

    // The refused id is still free; the longest memo of four-byte characters is taken and its
    // leaf is served in its tile's entry bundle.
    let longest = "😀".repeat(MEMO_MAX);
    let (s, v) = app.post("/v1/grants", m, grant(&longest)).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["memo"], longest.as_str());
    assert_eq!(app.available(r).await, 10);
    // A partial tile is named with its width: take the leaf count from a checkpoint.
    let index = v["leaf_index"].as_u64().unwrap();
    let mut served = None;
    for _ in 0..50 {
        let res = app.client.get(format!("{}/log/checkpoint", app.base)).send().await.unwrap();
        if res.status() == 200 {
            let note = res.text().await.unwrap();
            let size: u64 = note.lines().nth(1).unwrap().parse().unwrap();
            if size > index {
                let path = if size >= 256 { "000".to_owned() } else { format!("000.p/{size}") };
                let url = format!("{}/log/tile/entries/{path}", app.base);
                let res = app.client.get(url).bearer_auth(&app.keys.operator).send().await.unwrap();
                served = Some((res.status().as_u16(), res.bytes().await.unwrap().len()));
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (status, len) = served.expect("a checkpoint covers the grant");
    assert_eq!(status, 200);
    assert!(len > 4 * MEMO_MAX, "the entry bundle holds the long leaf: {len} bytes");
    let res = app.client.get(format!("{}/healthz", app.base)).send().await.unwrap();
    assert_eq!(res.status(), 200);
}

/// A round the tables refuse is retried, and meanwhile /healthz, the metrics and reads say
/// so; once the database takes it again everything catches up. The refusal here is a rule
/// added to the real database behind the server's back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_materialiser_that_cannot_write_is_visible_and_catches_up_when_it_can() {
    use mykey_server::store::Backend;
    let app = App::start().await;
    let r = app.residents[0];
    let pool = app.engine.store().pool().clone();
    let (refuse, allow) = match app.engine.store().backend() {
        Backend::Sqlite => (
            "CREATE TRIGGER refuse_stall BEFORE INSERT ON transactions WHEN NEW.memo = 'stall' \
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
            "DROP TRIGGER refuse_stall",
        ),
        Backend::Postgres => (
            "ALTER TABLE transactions ADD CONSTRAINT refuse_stall CHECK (memo IS DISTINCT FROM 'stall') NOT VALID",
            "ALTER TABLE transactions DROP CONSTRAINT refuse_stall",
        ),
    };
    sqlx::query(refuse).execute(&pool).await.unwrap();
    let (s, v) = app
        .post(
            "/v1/grants",
            &app.keys.municipality1,
            json!({"id": Uuid::new_v4(), "resident": r, "municipality": 1, "amount": 7, "memo": "stall"}),
        )
        .await;
    assert_eq!(s, 201, "acknowledged once durable in the journal: {v}");
    let health = || async {
        let res = app.client.get(format!("{}/healthz", app.base)).send().await.unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    };
    let mut seen = None;
    for _ in 0..100 {
        let (status, body) = health().await;
        if status == 503 {
            seen = Some(body);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let body = seen.expect("/healthz reports the stalled materialiser");
    let problem: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(slug(&problem), "unavailable");
    assert!(problem["detail"].as_str().unwrap().contains("materialiser"), "{problem}");
    let metrics = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.lines().any(|l| l == "mykey_materialize_stalled 1"), "{metrics}");
    assert!(metrics.contains("mykey_materialize_failures_total"), "{metrics}");
    let stall = app.engine.stall().expect("the engine knows");
    assert!(stall.attempts >= 1);

    sqlx::query(allow).execute(&pool).await.unwrap();
    let mut healthy = false;
    for _ in 0..100 {
        if health().await.0 == 200 {
            healthy = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(healthy, "the materialiser catches up once the database takes the round");
    assert_eq!(app.available(r).await, 7);
    let metrics = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.lines().any(|l| l == "mykey_materialize_stalled 0"), "{metrics}");
}

/// Each free text is described with its own limit: a memo, a reference and a service name
/// are different components of the OpenAPI document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_gives_each_free_text_its_own_limit() {
    use mykey_core::text::{MEMO_MAX, REFERENCE_MAX};
    let app = App::start().await;
    let (s, doc) = app.get("/openapi.json", "").await;
    assert_eq!(s, 200);
    let schemas = &doc["components"]["schemas"];
    let limit_of = |schema: &str, field: &str| {
        let prop = &schemas[schema]["properties"][field];
        let reference = prop["$ref"].as_str().or_else(|| prop["oneOf"][1]["$ref"].as_str()).unwrap();
        let name = reference.strip_prefix("#/components/schemas/").unwrap();
        schemas[name]["maxLength"].as_u64().unwrap() as usize
    };
    assert_eq!(limit_of("GrantRequest", "memo"), MEMO_MAX);
    assert_eq!(limit_of("MandateChargeRequest", "reference"), REFERENCE_MAX);
    assert_eq!(limit_of("FacilityServiceRequest", "name"), mykey_core::identity::FACILITY_SERVICE_NAME_MAX);
    assert!(doc["paths"]["/v1/grants"]["post"]["responses"]["413"].is_object());
}

/// A revoked key stops working at the next request; a mirror key reads the log's entry
/// bundles and nothing else. Without revocation the key keeps working (the cache held it
/// until restart); without the mirror role a mirror needed the operator's key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_revoked_at_once_and_a_mirror_key_only_reads_entry_bundles() {
    use mykey_server::auth::{create_key, hash_key, Role};
    let app = &App::start().await;
    let r = app.residents[0];
    let grant = |key: String| {
        let body = json!({"id": Uuid::new_v4(), "resident": r, "municipality": 1, "amount": 5});
        async move { app.post("/v1/grants", &key, body).await }
    };
    let key = create_key(app.engine.store(), Role::Municipality, 1, "staff laptop").await.unwrap();
    assert_eq!(grant(key.clone()).await.0, 201);
    let id = hash_key(&key);

    // Only the operator revokes; a malformed id is a problem, an unknown one 404.
    let path = format!("/v1/api-keys/{id}/revoke");
    let (s, v) = app.post(&path, &app.keys.municipality1, json!({})).await;
    assert_eq!((s, slug(&v)), (403, "forbidden"), "{v}");
    let (s, v) = app.post("/v1/api-keys/xyz/revoke", &app.keys.operator, json!({})).await;
    assert_eq!((s, slug(&v)), (400, "invalid-request"), "{v}");
    let res = app.client.post(format!("{}{path}", app.base)).bearer_auth(&app.keys.operator).send().await.unwrap();
    assert_eq!(res.status(), 204);
    let (s, v) = grant(key.clone()).await;
    assert_eq!((s, slug(&v)), (401, "unauthenticated"), "revoked at once: {v}");
    let (s, v) = app.post(&path, &app.keys.operator, json!({})).await;
    assert_eq!((s, slug(&v)), (404, "not-found"), "already revoked: {v}");
    assert_eq!(grant(app.keys.municipality1.clone()).await.0, 201, "other keys keep working");

    // A mirror key: entry bundles yes; balances, grants and settlements no.
    let mirror = create_key(app.engine.store(), Role::Mirror, 0, "mirror").await.unwrap();
    let mut bundle = None;
    for _ in 0..50 {
        let note = app.client.get(format!("{}/log/checkpoint", app.base)).send().await.unwrap();
        if note.status() == 200 {
            let size: u64 = note.text().await.unwrap().lines().nth(1).unwrap().parse().unwrap();
            if size > 0 {
                let url = format!("{}/log/tile/entries/000.p/{}", app.base, size.min(255));
                bundle = Some(app.client.get(url).bearer_auth(&mirror).send().await.unwrap().status().as_u16());
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(bundle, Some(200), "a mirror reads entry bundles");
    assert_eq!(app.get(&format!("/v1/residents/{r}/balances"), &mirror).await.0, 403);
    assert_eq!(grant(mirror.clone()).await.0, 403);
    assert_eq!(app.get("/v1/settlements?from=2026-01-01T00:00:00Z&to=2027-01-01T00:00:00Z", &mirror).await.0, 403);
}

/// The framework's own refusals (unparsable path and query parameters, a wrong method) are
/// problems like every other refusal; axum answers them as plain text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unparsable_parameters_and_wrong_methods_are_problems() {
    let app = App::start().await;
    let k = &app.keys.operator;
    for (method, path, status) in [
        ("GET", "/v1/accounts/abc", 400),
        ("GET", "/v1/accounts/1/balance?as_of=yesterday", 400),
        ("GET", "/v1/accounts/1/balance", 400),
        ("GET", "/v1/shops?municipality=68719476736000000000", 400),
        ("DELETE", "/v1/grants", 405),
    ] {
        let req = app.client.request(method.parse().unwrap(), format!("{}{path}", app.base)).bearer_auth(k);
        let res = req.send().await.unwrap();
        assert_eq!(res.status().as_u16(), status, "{method} {path}");
        assert_eq!(res.headers()["content-type"], "application/problem+json", "{method} {path}");
        let v: serde_json::Value = res.json().await.unwrap();
        assert!(!v["detail"].as_str().unwrap().is_empty(), "{method} {path}: {v}");
    }
}

/// The web app's files go out precompressed (brotli or gzip, as the browser takes them), its
/// pages with their Content-Security-Policy, everything with nosniff; JSON answers over 1 KiB
/// are compressed for clients that accept it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_app_is_served_precompressed_with_security_headers() {
    use std::io::Write as _;
    let db = mykey_server::testing::TestDb::new().await.unwrap();
    let ledger = mykey_server::LedgerService::open(&db.url).await.unwrap();
    mykey_server::testing::add_municipality_and_residents(&ledger.engine, 0).await;
    let web = std::env::temp_dir().join(format!("mykey-web-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&web).unwrap();
    let wasm = vec![7u8; 50_000];
    std::fs::write(web.join("app.wasm"), &wasm).unwrap();
    let mut br = Vec::new();
    brotli_like_gzip(&wasm, &mut br);
    std::fs::write(web.join("app.wasm.gz"), &br).unwrap();
    std::fs::write(web.join("index.html"), "<!doctype html><title>app</title>").unwrap();
    // A web build without the widget's page, or whose page names a file it lacks, is refused.
    let listener = mykey_server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let site = mykey_server::ServeConfig { web_dir: Some(web.clone()), ..Default::default() };
    let e = mykey_server::serve(ledger.engine.clone(), site, listener, std::time::Duration::from_secs(3600))
        .await
        .unwrap_err();
    assert!(format!("{e:#}").contains("scripts/build-web"), "{e:#}");
    std::fs::create_dir_all(web.join("sdk")).unwrap();
    std::fs::write(
        web.join("sdk/frame.html"),
        r#"<script type="module" src="/app/sdk/frame.0123456789abcdef.js"></script>"#,
    )
    .unwrap();
    let listener = mykey_server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let site = mykey_server::ServeConfig { web_dir: Some(web.clone()), ..Default::default() };
    let e = mykey_server::serve(ledger.engine.clone(), site, listener, std::time::Duration::from_secs(3600))
        .await
        .unwrap_err();
    assert!(format!("{e:#}").contains("/app/sdk/frame.0123456789abcdef.js"), "{e:#}");
    std::fs::write(web.join("sdk/frame.0123456789abcdef.js"), "// the widget").unwrap();
    let listener = mykey_server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let site = mykey_server::ServeConfig { web_dir: Some(web.clone()), ..Default::default() };
    let engine = ledger.engine.clone();
    let server = tokio::spawn(async move {
        let _ledger = ledger;
        mykey_server::serve(engine, site, listener, std::time::Duration::from_secs(3600)).await.unwrap();
    });
    // reqwest is built without decompression: it shows the bytes as sent.
    let plain = reqwest::Client::new();

    // The precompressed copy, for a browser that takes gzip; the file itself otherwise.
    let res = plain.get(format!("{base}/app/app.wasm")).header("accept-encoding", "gzip").send().await.unwrap();
    assert_eq!(res.headers()["content-encoding"], "gzip");
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert_eq!(res.headers()["cache-control"], "no-cache");
    assert_eq!(res.bytes().await.unwrap().len(), br.len());
    let res = plain.get(format!("{base}/app/app.wasm")).send().await.unwrap();
    assert!(res.headers().get("content-encoding").is_none());
    assert_eq!(res.bytes().await.unwrap().len(), wasm.len());

    // A page of the app carries the app's policy; an API answer forbids framing.
    let res = plain.get(format!("{base}/app/mypage/coupons")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let csp = res.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert_eq!(csp, mykey_server::http::APP_CSP);
    assert!(csp.contains("script-src 'self' 'wasm-unsafe-eval'") && csp.contains("frame-ancestors 'none'"));
    let res = plain.get(format!("{base}/v1/municipalities")).header("accept-encoding", "gzip").send().await.unwrap();
    assert_eq!(res.headers()["content-security-policy"], "frame-ancestors 'none'");
    assert_eq!(res.headers()["referrer-policy"], "same-origin");
    // The directory of 1 municipality is small; the OpenAPI document is not.
    assert!(res.headers().get("content-encoding").is_none(), "answers under 1 KiB stay as they are");
    let res = plain.get(format!("{base}/openapi.json")).header("accept-encoding", "br").send().await.unwrap();
    assert_eq!(res.headers()["content-encoding"], "br");
    // The icon browsers ask for at the root is the app's.
    let stay = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let res = stay.get(format!("{base}/favicon.ico")).send().await.unwrap();
    assert_eq!((res.status().as_u16(), &res.headers()["location"]), (308, &"/app/favicon.svg".parse().unwrap()));
    server.abort();
    let _ = std::fs::remove_dir_all(&web);

    fn brotli_like_gzip(data: &[u8], out: &mut Vec<u8>) {
        let mut e = flate2::write::GzEncoder::new(out, flate2::Compression::best());
        e.write_all(data).unwrap();
        e.finish().unwrap();
    }
}

/// Behind a trusted proxy the limits count the clients the proxy names, not the proxy (before,
/// one client's guesses locked out everyone behind it); from anyone else `X-Forwarded-For`
/// is ignored, so a client cannot escape its limit by naming another address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_count_the_client_behind_a_trusted_proxy_and_ignore_forged_addresses() {
    let limit = mykey_server::auth::FAILED_AUTH_PER_MINUTE as usize;
    for (trusted, forwarded_counts) in [(vec!["127.0.0.1/32".parse().unwrap()], true), (vec![], false)] {
        let db = mykey_server::testing::TestDb::new().await.unwrap();
        let ledger = mykey_server::LedgerService::open(&db.url).await.unwrap();
        let listener = mykey_server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let site = mykey_server::ServeConfig { trusted_proxies: trusted, ..Default::default() };
        let engine = ledger.engine.clone();
        let server = tokio::spawn(async move {
            let _ledger = ledger;
            mykey_server::serve(engine, site, listener, std::time::Duration::from_secs(3600)).await.unwrap();
        });
        let c = reqwest::Client::new();
        let guess = |from: &'static str, i: usize| {
            c.get(format!("{base}/v1/residents/1/balances"))
                .bearer_auth(format!("mk_store_{i:064x}"))
                .header("x-forwarded-for", format!("{from}, 127.0.0.1"))
                .send()
        };
        let mut statuses = Vec::new();
        for i in 0..=limit {
            statuses.push(guess("203.0.113.7", i).await.unwrap().status().as_u16());
        }
        assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
        // Another client behind the proxy, or the same one naming another address.
        let other = guess("198.51.100.9", 0).await.unwrap().status().as_u16();
        if forwarded_counts {
            assert_eq!(other, 401, "another client behind the trusted proxy has its own limit");
        } else {
            assert_eq!(other, 429, "a forged X-Forwarded-For does not escape the limit");
        }
        server.abort();
    }
}

/// Anyone may report a CSP violation (browsers send no credentials); what is not a report is
/// refused and not counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csp_reports_are_counted_and_anything_else_is_refused() {
    let app = App::start().await;
    let post = |body: &'static str| {
        app.client
            .post(format!("{}/csp-reports", app.base))
            .header("content-type", "application/csp-report")
            .body(body)
            .send()
    };
    let count = || async {
        let text = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap();
        text.lines().find_map(|l| l.strip_prefix("mykey_csp_violations_total ")).map_or(0.0, |n| n.parse().unwrap())
    };
    let before: f64 = count().await;
    for bad in ["", "{}", "not json", "{\"csp-report\": 3}"] {
        let res = post(bad).await.unwrap();
        assert_eq!(res.status(), 400, "{bad:?}");
        assert_eq!(res.headers()["content-type"], "application/problem+json");
    }
    assert_eq!(count().await, before, "refusals are not counted");
    let res =
        post("{\"csp-report\": {\"violated-directive\": \"style-src-attr\", \"document-uri\": \"http://x/app/\"}}")
            .await
            .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(count().await, before + 1.0);
    // One address cannot run the count up: past the quota, refused and not counted.
    let report = "{\"csp-report\": {\"violated-directive\": \"script-src\"}}";
    let mut limited = 0;
    for _ in 0..mykey_server::http::CSP_REPORTS_PER_MINUTE + 5 {
        if post(report).await.unwrap().status() == 429 {
            limited += 1;
        }
    }
    assert!(limited >= 5, "{limited} refused");
    assert!(count().await <= before + f64::from(mykey_server::http::CSP_REPORTS_PER_MINUTE));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_mail_round_catches_up_with_a_burst_of_payment_notices() {
    use mykey_server::outbox::mail::{MailConfig, Mailer, PER_ROUND};
    let app = App::start().await;
    let r = app.residents[0];
    // More payments than one batch takes: each queues a notice (this resident has no MyKey ID,
    // so nobody is mailed and the round only has to get through them).
    let burst = 2 * PER_ROUND as usize + 100;
    app.grant(r, burst as i64).await;
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..burst {
        let (c, url, key) = (app.client.clone(), format!("{}/v1/payments", app.base), app.keys.operator.clone());
        let body = payment(r, app.shops[0], 1, json!(1));
        set.spawn(async move { c.post(url).bearer_auth(key).json(&body).send().await.unwrap().status().as_u16() });
    }
    assert!(set.join_all().await.iter().all(|s| *s == 201));
    app.engine.tables().await.unwrap();
    let smtp = mykey_server::testing::Smtp::start().unwrap();
    let config = MailConfig { smtp_url: smtp.url(), from: "mykey <no-reply@mykey.example>".into() };
    let mailer = Mailer::new(app.engine.store().pool().clone(), &config).unwrap();
    let round = mailer.run_once().await.unwrap();
    // The grant's notice and one per payment, all in one round; the next finds nothing.
    assert_eq!(round.notices, burst + 1, "{round:?}");
    assert_eq!(mailer.run_once().await.unwrap().notices, 0);
}
