//! Tamper, then restore from a mirror: the audit fails, the restore rewrites the damaged rows
//! (transactions, log leaves, MyKey ID events) from the mirror's verified copy, the audit passes
//! and every balance is as before.

use mykey_core::api::{GrantRequest, PaymentRequest};
use mykey_core::note::VerifierKey;
use mykey_server::engine::LogConfig;
use mykey_server::engine::Request;
use mykey_server::integrity::audit::{audit, load_checkpoint};
use mykey_server::integrity::mirror::{Mirror, Source};
use mykey_server::integrity::restore::restore;
use mykey_server::log::LogSigner;
use mykey_server::store::Store;
use mykey_server::testing::TestDb;
use mykey_server::LedgerService;
use sqlx::Connection;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_ledger_is_restored_from_a_mirror() {
    let db = TestDb::new().await.unwrap();
    let signer = LogSigner::new("mykey.test/log", [3; 32]).unwrap();
    let log_key = VerifierKey::parse(&signer.vkey()).unwrap();
    let ledger = LedgerService::open_with(&db.url, LogConfig::unwitnessed(signer)).await.unwrap();
    let e = ledger.engine.clone();
    mykey_server::testing::add_municipality_and_residents(&e, 2).await;
    let shop = match e.apply(mykey_server::engine::Change::Shop { name: "s".into(), municipality: 1 }).await.unwrap() {
        mykey_server::engine::ChangeResult::Id(id) => id,
        other => panic!("{other:?}"),
    };
    let operator = mykey_server::auth::create_key(e.store(), mykey_server::auth::Role::Operator, 0, "t").await.unwrap();
    for r in 1..=2 {
        let g = GrantRequest {
            id: Uuid::new_v4(),
            resident: r,
            municipality: 1,
            event: None,
            amount: 1000.into(),
            expires_at: None,
            memo: None,
        };
        assert_eq!(e.execute(Request::Grant(g), "m").await.map(|d| d.status), Ok(201));
    }
    // Two MyKey ID events become leaves 2 and 3.
    let mut c = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    for (i, kind) in ["registered", "login_card"].iter().enumerate() {
        sqlx::query("INSERT INTO mykey_id_events (id, resident_id, mykey_id, kind, created_at) VALUES ($1, 1, 'AB2CD3EF', $2, $3)")
            .bind(Uuid::new_v4().to_string())
            .bind(kind.to_string())
            .bind(i as i64 + 1)
            .execute(&mut c)
            .await
            .unwrap();
    }
    c.close().await.unwrap();
    let identity = mykey_server::services::identity::Identity::new(e.clone(), None);
    assert_eq!(identity.log_pending().await.unwrap(), 2);
    for i in 0..28 {
        let p = PaymentRequest {
            id: Uuid::new_v4(),
            resident: 1 + i % 2,
            municipality: 1,
            event: None,
            shop,
            amount: (1 + i).into(),
            memo: None,
        };
        assert_eq!(e.execute(Request::Payment(p), "s").await.map(|d| d.status), Ok(201));
    }
    let listener = mykey_server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(mykey_server::serve(
        e.clone(),
        Default::default(),
        listener,
        std::time::Duration::from_secs(3600),
    ));
    for _ in 0..100 {
        if e.checkpoint().is_some_and(|p| p.size >= 32) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // An independent mirror, serving its copy.
    let mdb = TestDb::new().await.unwrap();
    let cfg = Source { url: base, token: Some(operator), log_key: log_key.clone(), witnesses: vec![], quorum: 0 };
    let mut mirror = Mirror::open(&mdb.url, cfg).await.unwrap();
    assert_eq!(mirror.sync().await.unwrap().to, 32);
    let ml = mykey_server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let mirror_base = format!("http://{}", ml.local_addr().unwrap());
    let router = mykey_server::integrity::mirror::router(mirror.store().clone(), Some("t".into()));
    tokio::spawn(async move { axum::serve(ml, router).await.unwrap() });

    // Stop the ledger, remember the balances, damage the rows.
    server.abort();
    drop(e);
    ledger.close().await;
    let store = Store::connect(&db.url).await.unwrap();
    let before = mykey_server::store::Tables::after_barrier(&store).all_balances().await.unwrap();
    let mut c = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    for sql in [
        "UPDATE postings SET amount = amount + 500 WHERE seq = 10 AND leg = 0",
        "DELETE FROM postings WHERE seq = 20",
        "DELETE FROM transactions WHERE seq = 20",
        "DELETE FROM log_leaves WHERE idx = 25",
        "UPDATE log_leaves SET hash = (SELECT hash FROM log_leaves WHERE idx = 1) WHERE idx = 2",
        "UPDATE mykey_id_events SET kind = 'revoked' WHERE leaf_index = 2",
        "DELETE FROM mykey_id_events WHERE leaf_index = 3",
    ] {
        sqlx::query(sql).execute(&mut c).await.unwrap();
    }
    c.close().await.unwrap();
    let cp = load_checkpoint(&store, None, &log_key).await.unwrap();
    let broken = audit(&store, &cp, |_| {}).await.unwrap();
    assert_eq!(broken.findings[0].leaf, 2, "the first damage: {broken:?}");

    let from =
        Source { url: mirror_base, token: Some("t".into()), log_key: log_key.clone(), witnesses: vec![], quorum: 0 };
    let done = restore(&store, &from).await.unwrap();
    assert_eq!((done.checked, done.transactions, done.leaves, done.usage), (32, 2, 2, 2), "{done:?}");
    let report = audit(&store, &cp, |_| {}).await.unwrap();
    assert!(report.clean(), "{:?}", report.findings);
    assert_eq!(
        mykey_server::store::Tables::after_barrier(&store).all_balances().await.unwrap(),
        before,
        "balances are as before the damage"
    );

    // The ledger opens again (its invariants are checked on load) and keeps working.
    let reopened = LedgerService::open(&db.url).await.unwrap();
    reopened.engine.check_invariants().await;
    reopened.close().await;
}
