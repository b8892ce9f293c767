//! Tamper tests: edit, delete, insert and swap rows, and roll the database back and write
//! again (a fork). The audit finds each, naming the first bad leaf; a witness that cosigned
//! the real history refuses the fork. Runs on the database the run selects.

use mykey_core::api::GrantRequest;
use mykey_core::note::{SignerKey, VerifierKey};
use mykey_server::engine::LogConfig;
use mykey_server::engine::Request;
use mykey_server::integrity::audit::{audit, load_checkpoint, AuditReport};
use mykey_server::integrity::witness::Witness;
use mykey_server::log::witness::request_body;
use mykey_server::log::LogSigner;
use mykey_server::store::Store;
use mykey_server::testing::{postgres, TestDb};
use mykey_server::LedgerService;
use sqlx::Connection;
use uuid::Uuid;

const SEED: [u8; 32] = [42; 32];

fn signer() -> LogSigner {
    LogSigner::new("mykey.test/log", SEED).unwrap()
}

fn vkey() -> VerifierKey {
    VerifierKey::parse(&signer().vkey()).unwrap()
}

/// Adds `n` grants (each one transaction, one leaf) and waits until a checkpoint covers them.
async fn grow(url: &str, n: usize, first_setup: bool, amount: i64) -> String {
    let l = LedgerService::open_with(url, LogConfig::unwitnessed(signer())).await.unwrap();
    if first_setup {
        mykey_server::testing::add_municipality_and_residents(&l.engine, 3).await;
    }
    let mut last = None;
    for i in 0..n {
        let g = GrantRequest {
            id: Uuid::new_v4(),
            resident: 1 + (i as i64 % 3),
            municipality: 1,
            event: None,
            amount: (amount + i as i64).into(),
            expires_at: None,
            memo: None,
        };
        let a = l.engine.execute(Request::Grant(g), "municipality:1").await.unwrap();
        last = a.transaction().map(|t| t.leaf_index);
    }
    let want = last.map_or(0, |i| i + 1);
    // Bounded wait for the checkpoint that covers everything.
    for _ in 0..100 {
        if let Some(p) = l.engine.checkpoint().filter(|p| p.size >= want) {
            let note = p.note.clone();
            l.close().await;
            return note;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no checkpoint of size {want}");
}

async fn run_audit(url: &str, checkpoint_note: Option<&str>) -> AuditReport {
    let store = Store::connect(url).await.unwrap();
    let file = checkpoint_note.map(|n| {
        let f = std::env::temp_dir().join(format!("cp-{}.txt", Uuid::new_v4().simple()));
        std::fs::write(&f, n).unwrap();
        f
    });
    let cp = load_checkpoint(&store, file.as_deref(), &vkey()).await.unwrap();
    if let Some(f) = file {
        let _ = std::fs::remove_file(f);
    }
    audit(&store, &cp, |_| {}).await.unwrap()
}

async fn exec(url: &str, sqls: &[&str]) {
    let mut c = sqlx::AnyConnection::connect(url).await.unwrap();
    for sql in sqls {
        sqlx::query(sql).execute(&mut c).await.unwrap();
    }
    c.close().await.unwrap();
}

async fn fresh(n: usize) -> TestDb {
    let db = TestDb::new().await.unwrap();
    grow(&db.url, n, true, 100).await;
    db
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untouched_ledger_audits_clean() {
    let db = fresh(40).await;
    let r = run_audit(&db.url, None).await;
    assert!(r.clean(), "{:?}", r.findings);
    assert_eq!(r.checked, 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_amount_is_found_at_its_leaf() {
    let db = fresh(40).await;
    exec(&db.url, &["UPDATE postings SET amount = amount + 1 WHERE seq = 10 AND leg = 1"]).await;
    let r = run_audit(&db.url, None).await;
    let f = &r.findings[0];
    assert_eq!((f.leaf, f.seq), (9, Some(10)), "{r:?}");
    assert!(f.what.contains("edited"), "{}", f.what);
    assert_eq!(f.accounts.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_transaction_is_found() {
    let db = fresh(40).await;
    exec(&db.url, &["DELETE FROM postings WHERE seq = 20", "DELETE FROM transactions WHERE seq = 20"]).await;
    let r = run_audit(&db.url, None).await;
    assert_eq!(r.findings[0].leaf, 19, "{r:?}");
    assert!(r.findings[0].what.contains("deleted"), "{}", r.findings[0].what);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inserted_row_is_found() {
    let db = fresh(40).await;
    exec(
        &db.url,
        &["INSERT INTO postings (seq, leg, account_id, amount, balance_after, created_at) VALUES (5, 7, 1, 1, 1, 1)"],
    )
    .await;
    let r = run_audit(&db.url, None).await;
    assert_eq!((r.findings[0].leaf, r.findings[0].seq), (4, Some(5)), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapped_rows_are_found() {
    let db = fresh(40).await;
    exec(
        &db.url,
        &[
            "UPDATE transactions SET seq = -30 WHERE seq = 30",
            "UPDATE transactions SET seq = 30 WHERE seq = 31",
            "UPDATE transactions SET seq = 31 WHERE seq = -30",
            "UPDATE postings SET seq = -30 WHERE seq = 30",
            "UPDATE postings SET seq = 30 WHERE seq = 31",
            "UPDATE postings SET seq = 31 WHERE seq = -30",
        ],
    )
    .await;
    let r = run_audit(&db.url, None).await;
    assert_eq!((r.findings[0].leaf, r.findings[0].seq), (29, Some(30)), "{r:?}");
}

/// A copy of the database as it is now.
async fn snapshot(db: &TestDb) -> TestDb {
    let copy = TestDb::new().await.unwrap();
    if postgres() {
        let (base, name) = db.url.rsplit_once('/').unwrap();
        let (_, copy_name) = copy.url.rsplit_once('/').unwrap();
        let mut c = sqlx::AnyConnection::connect(&format!("{base}/postgres")).await.unwrap();
        sqlx::query(&format!("DROP DATABASE {copy_name}")).execute(&mut c).await.unwrap();
        // A template must have no sessions: end the ones this test left (pools close lazily).
        for attempt in 0..10 {
            sqlx::query(&format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"))
                .execute(&mut c)
                .await
                .unwrap();
            match sqlx::query(&format!("CREATE DATABASE {copy_name} TEMPLATE {name}")).execute(&mut c).await {
                Ok(_) => break,
                Err(e) if attempt < 9 => {
                    let _ = e;
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
                Err(e) => panic!("{e}"),
            }
        }
    } else {
        let path = copy.url.trim_start_matches("sqlite:").to_owned();
        exec(&db.url, &[&format!("VACUUM INTO '{path}'")]).await;
    }
    copy
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_database_that_keeps_writing_is_a_fork_the_audit_and_the_witness_catch() {
    let live = TestDb::new().await.unwrap();
    let c20 = grow(&live.url, 20, true, 100).await;
    let old = snapshot(&live).await;
    let c30 = grow(&live.url, 10, false, 100).await;

    // A witness that followed the real log up to 30.
    let state = TestDb::new().await.unwrap();
    let witness =
        Witness::open(&state.url, SignerKey::witness("w.test/1", [1; 32]).unwrap(), vec![vkey()]).await.unwrap();
    witness.add_checkpoint(&request_body(0, &[], &c20)).await.unwrap();
    let store = Store::connect(&live.url).await.unwrap();
    let proof = mykey_server::log::consistency_proof(&store, 20, 30).await.unwrap();
    witness.add_checkpoint(&request_body(20, &proof, &c30)).await.unwrap();
    store.pool().close().await;

    // Someone restores the old copy and keeps writing: a different history.
    let forked = grow(&old.url, 15, false, 7).await;
    let r = run_audit(&old.url, Some(&c30)).await;
    assert!(!r.clean());
    assert!(r.findings[0].what.contains("fork") || r.findings[0].what.contains("rewritten"), "{r:?}");
    // Rolled back without new writes, the database is short of the checkpoint.
    let short = snapshot(&live).await;
    exec(
        &short.url,
        &[
            "DELETE FROM log_leaves WHERE idx >= 25",
            "DELETE FROM postings WHERE seq > 25",
            "DELETE FROM transactions WHERE seq > 25",
        ],
    )
    .await;
    let r = run_audit(&short.url, Some(&c30)).await;
    assert!(r.findings[0].what.contains("rolled back"), "{r:?}");

    // The witness refuses the fork's checkpoint: it is not consistent with size 30.
    let fork_store = Store::connect(&old.url).await.unwrap();
    let fork_proof = mykey_server::log::consistency_proof(&fork_store, 30, 35).await.unwrap();
    let refused = witness.add_checkpoint(&request_body(30, &fork_proof, &forked)).await;
    assert!(refused.is_err(), "the witness cosigned a fork");
    // And the real log still audits clean against its own checkpoint.
    assert!(run_audit(&live.url, Some(&c30)).await.clean());
}

/// MyKey ID usage events are leaves of the same log: rows written first (the outbox), then
/// appended; the audit recomputes them from their rows, so an edited or deleted event is found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mykey_id_events_are_leaves_and_tampering_with_them_is_found() {
    let db = fresh(3).await;
    let l = LedgerService::open_with(&db.url, LogConfig::unwitnessed(signer())).await.unwrap();
    // Two events committed but not yet logged, as after a crash between commit and append.
    exec(
        &db.url,
        &[
            "INSERT INTO mykey_id_events (id, resident_id, mykey_id, kind, created_at) VALUES ('00000000-0000-4000-8000-000000000001', 1, 'AB2CD3EF', 'registered', 10)",
            "INSERT INTO mykey_id_events (id, resident_id, mykey_id, kind, created_at) VALUES ('00000000-0000-4000-8000-000000000002', 1, 'AB2CD3EF', 'login_card', 20)",
        ],
    )
    .await;
    let identity = mykey_server::services::identity::Identity::new(l.engine.clone(), None);
    assert_eq!(identity.log_pending().await.unwrap(), 2);
    assert_eq!(identity.log_pending().await.unwrap(), 0, "logged once");
    l.close().await;
    grow(&db.url, 2, false, 7).await;

    let r = run_audit(&db.url, None).await;
    assert!(r.clean(), "{:?}", r.findings);
    assert_eq!(r.checked, 7);
    let store = Store::connect(&db.url).await.unwrap();
    let leaves = store.log_leaves(3, 5).await.unwrap();
    for (leaf, kind) in leaves.iter().zip(["registered", "login_card"]) {
        match mykey_server::ledger::leaf::parse_leaf(leaf).unwrap() {
            mykey_server::ledger::leaf::Leaf::Usage(e) => {
                assert_eq!((e.kind.as_str(), e.mykey_id.as_str()), (kind, "AB2CD3EF"))
            }
            other => panic!("{other:?}"),
        }
    }

    exec(&db.url, &["UPDATE mykey_id_events SET kind = 'revoked' WHERE leaf_index = 3"]).await;
    let r = run_audit(&db.url, None).await;
    assert_eq!(r.findings[0].leaf, 3, "{r:?}");
    assert!(
        r.findings[0].what.contains("MyKey ID event") && r.findings[0].what.contains("edited"),
        "{}",
        r.findings[0].what
    );

    exec(
        &db.url,
        &[
            "UPDATE mykey_id_events SET kind = 'registered' WHERE leaf_index = 3",
            "DELETE FROM mykey_id_events WHERE leaf_index = 4",
        ],
    )
    .await;
    let r = run_audit(&db.url, None).await;
    assert_eq!(r.findings[0].leaf, 4, "{r:?}");
    assert!(r.findings[0].what.contains("MyKey ID event"), "{}", r.findings[0].what);
}
