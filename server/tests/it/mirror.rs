//! A mirror copies the log over HTTP, verifies it against the signed checkpoint, replays the
//! balances, follows the log as it grows, and serves the same tiles back.

use crate::common::{payment, App};
use mykey_core::note::VerifierKey;
use mykey_server::integrity::mirror::{Mirror, Source};
use mykey_server::testing::TestDb;
use serde_json::json;

pub(crate) async fn log_key(app: &App) -> VerifierKey {
    let k = app.client.get(format!("{}/log/key", app.base)).send().await.unwrap().text().await.unwrap();
    VerifierKey::parse(k.trim()).unwrap()
}

pub(crate) async fn wait_for_size(app: &App, size: u64) {
    for _ in 0..100 {
        let note = app.client.get(format!("{}/log/checkpoint", app.base)).send().await.unwrap().text().await.unwrap();
        if note.lines().nth(1).and_then(|l| l.parse::<u64>().ok()).is_some_and(|s| s >= size) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no checkpoint of {size}");
}

pub(crate) async fn pay(app: &App, n: usize) {
    for i in 0..n {
        let (s, v) = app
            .post("/v1/payments", &app.keys.operator, payment(app.residents[0], app.shops[0], 1, json!(1 + i % 5)))
            .await;
        assert_eq!(s, 201, "{v}");
    }
}

fn config(app: &App, key: VerifierKey, token: &str) -> Source {
    Source { url: app.base.clone(), token: Some(token.to_owned()), log_key: key, witnesses: vec![], quorum: 0 }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_copies_verifies_replays_and_serves_the_log() {
    let app = App::start().await;
    let grant = app.grant(app.residents[0], 100_000).await;
    let account = grant["postings"][1]["account"].as_i64().unwrap();
    pay(&app, 299).await;
    wait_for_size(&app, 300).await;

    let key = log_key(&app).await;
    let db = TestDb::new().await.unwrap();
    let mut mirror = Mirror::open(&db.url, config(&app, key.clone(), &app.keys.operator)).await.unwrap();
    let synced = mirror.sync().await.unwrap();
    assert_eq!(synced.from, 0);
    assert!(synced.to >= 300);
    let (_, acc) = app.get(&format!("/v1/accounts/{account}"), &app.keys.operator).await;
    assert_eq!(mirror.balance(account), acc["balance"].as_i64(), "replayed balances match the log's");

    // It follows the log as it grows.
    pay(&app, 20).await;
    wait_for_size(&app, synced.to + 20).await;
    let again = mirror.sync().await.unwrap();
    assert_eq!(again.from, synced.to);
    assert!(again.to >= synced.to + 20);

    // It serves the same tiles back.
    let listener = mykey_server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let mirror_base = format!("http://{}", listener.local_addr().unwrap());
    let router = mykey_server::integrity::mirror::router(mirror.store().clone(), Some("secret".into()));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let full = mykey_server::log::tile_path(Some(0), 0, 256);
    let from_log = app.client.get(format!("{}/log/{full}", app.base)).send().await.unwrap().bytes().await.unwrap();
    let from_mirror = app.client.get(format!("{mirror_base}/log/{full}")).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(from_log, from_mirror);
    let entries = mykey_server::log::tile_path(None, 0, 256);
    let r = app.client.get(format!("{mirror_base}/log/{entries}")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let mirrored = app
        .client
        .get(format!("{mirror_base}/log/{entries}"))
        .bearer_auth("secret")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let original = app
        .client
        .get(format!("{}/log/{entries}", app.base))
        .bearer_auth(&app.keys.operator)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(mirrored, original);
    let cp = app.client.get(format!("{mirror_base}/log/checkpoint")).send().await.unwrap().text().await.unwrap();
    assert_eq!(Some(cp.as_str()), mirror.checkpoint());

    // Reopened, it carries on from where it was.
    drop(mirror);
    let mut reopened = Mirror::open(&db.url, config(&app, key, &app.keys.operator)).await.unwrap();
    assert_eq!(reopened.sync().await.unwrap().from, again.to);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_refuses_what_it_cannot_verify() {
    let app = App::start().await;
    app.grant(app.residents[0], 10).await;
    wait_for_size(&app, 1).await;
    // Another log's key: the checkpoint does not verify.
    let stranger = VerifierKey::parse(&mykey_server::log::LogSigner::generate("mykey.local/log").vkey()).unwrap();
    let db = TestDb::new().await.unwrap();
    let mut m = Mirror::open(&db.url, config(&app, stranger, &app.keys.operator)).await.unwrap();
    assert!(m.sync().await.unwrap_err().to_string().contains("does not verify"));
    // No key for the entries: nothing is kept.
    let db = TestDb::new().await.unwrap();
    let mut m = Mirror::open(&db.url, config(&app, log_key(&app).await, "mk_operator_nope")).await.unwrap();
    assert!(m.sync().await.is_err());
    assert_eq!(m.store().log_size().await.unwrap(), 0);
    // A quorum of witnesses the log does not have.
    let w = VerifierKey::parse(&mykey_core::note::SignerKey::witness("w.test/1", [1; 32]).unwrap().verifier().encode())
        .unwrap();
    let db = TestDb::new().await.unwrap();
    let cfg = Source { witnesses: vec![w], quorum: 1, ..config(&app, log_key(&app).await, &app.keys.operator) };
    let mut m = Mirror::open(&db.url, cfg).await.unwrap();
    assert!(m.sync().await.is_err());
}
