//! Migrations over a database that holds data from before them.

use mykey_server::engine::EngineError;
use mykey_server::testing::TestDb;
use mykey_server::LedgerService;
use sqlx::Row;
use uuid::Uuid;

/// The first migration that keys request records by seq.
const REQUESTS_BY_SEQ: i64 = 20261127000009;

/// The first migration with counter devices, which retires terminal keys.
const DEVICES: i64 = 20261207000014;

/// The database `db` with the schema as it was before migration `version`, from copies of the
/// migrations' files.
async fn schema_before(db: &TestDb, version: i64) -> sqlx::AnyPool {
    let dir = std::env::temp_dir().join(format!("mykey-migrations-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    for f in std::fs::read_dir(&source).unwrap() {
        let f = f.unwrap();
        let name = f.file_name().into_string().unwrap();
        let v: i64 = name.split('_').next().unwrap().parse().unwrap();
        if v < version {
            std::fs::copy(f.path(), dir.join(&name)).unwrap();
        }
    }
    let url = if db.url.starts_with("sqlite:") { format!("{}?mode=rwc", db.url) } else { db.url.clone() };
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    sqlx::migrate::Migrator::new(dir.as_path()).await.unwrap().run(&pool).await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    pool
}

/// A terminal's bearer key from before devices is revoked by the migration that brings them;
/// other keys go on working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_migration_revokes_terminal_keys_and_nothing_else() {
    let db = TestDb::new().await.unwrap();
    let pool = schema_before(&db, DEVICES).await;
    let keys = [("terminal", "mk_terminal_old"), ("store", "mk_store_old")];
    for (role, key) in keys {
        sqlx::query("INSERT INTO api_keys (key_hash, role, subject, label, created_at) VALUES ($1, $2, 1, 'old', 5)")
            .bind(mykey_server::auth::hash_key(key))
            .bind(role)
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;
    let l = LedgerService::open(&db.url).await.unwrap();
    let store = l.engine.store();
    assert_eq!(store.api_key(&mykey_server::auth::hash_key("mk_terminal_old")).await.unwrap(), None);
    assert_eq!(store.api_key(&mykey_server::auth::hash_key("mk_store_old")).await.unwrap(), Some(("store".into(), 1)));
    let revoked: Option<i64> = sqlx::query("SELECT revoked_at FROM api_keys WHERE role = 'terminal'")
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get("revoked_at");
    assert_eq!(revoked, Some(5), "dated at its creation");
    l.close().await;
}

/// Request records written before `requests` was keyed by seq (migration 9) keep answering
/// their ids, in their order, below every record written after; a refusal recorded then is
/// forgotten (migration 16), so its id is judged afresh, as every later refusal's is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_records_from_before_the_seq_migration_still_answer_their_ids() {
    let db = TestDb::new().await.unwrap();
    // The schema as it was: the migrations before REQUESTS_BY_SEQ.
    let pool = schema_before(&db, REQUESTS_BY_SEQ).await;

    // Two answers given then: a refusal (an unknown resident), and an older grant.
    let principal = "municipality:1";
    let grant = mykey_server::testing::grant;
    let (refused, older) = (Uuid::new_v4(), Uuid::new_v4());
    let refusal = r#"{"type":"urn:mykey:problem:unknown-account","status":422}"#;
    for (id, amount, status, body, at) in [(refused, 70, 422, refusal, 2_000), (older, 5, 201, "{}", 1_000)] {
        sqlx::query("INSERT INTO requests (id, fingerprint, status, response, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(id.to_string())
            .bind(grant(id, amount).fingerprint(principal))
            .bind(status as i64)
            .bind(body)
            .bind(at as i64)
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;

    // Opening runs the rest of the migrations.
    let l = LedgerService::open(&db.url).await.unwrap();
    mykey_server::testing::add_municipality_and_residents(&l.engine, 1).await;
    // The older grant's id is still taken: another body under it is a conflict.
    assert_eq!(l.engine.execute(grant(older, 6), principal).await, Err(EngineError::Conflict(older)));
    // The refused id is free again: the resident exists now, so the grant is applied.
    let again = l.engine.execute(grant(refused, 70), principal).await.unwrap();
    assert_eq!(again.status, 201);
    assert_eq!(l.engine.execute(grant(refused, 71), principal).await, Err(EngineError::Conflict(refused)));
    let fresh = Uuid::new_v4();
    assert_eq!(mykey_server::testing::rendered(&l.engine.execute(grant(fresh, 30), principal).await).0, 201);
    l.engine.tables().await.unwrap();

    let rows =
        sqlx::query("SELECT id, seq FROM requests ORDER BY seq").fetch_all(l.engine.store().pool()).await.unwrap();
    let order: Vec<(String, i64)> = rows.iter().map(|r| (r.get("id"), r.get("seq"))).collect();
    assert_eq!(
        order.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(),
        [older, refused, fresh].map(|u| u.to_string())
    );
    assert_eq!(order[0].1, -2, "the older record keeps its place below every later one");
    assert!(order[1].1 > 0 && order[2].1 > order[1].1);
    assert_eq!(mykey_server::testing::municipal_balance(&l.engine, 1).await, 100);
    l.close().await;
}
