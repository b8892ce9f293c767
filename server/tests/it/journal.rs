//! Recovery from the batch journal: a batch that was acknowledged (journaled) but not yet
//! written to the tables is applied when the ledger opens, and applying it twice is harmless.

use mykey_core::api::GrantRequest;
use mykey_server::engine::Request;
use mykey_server::ledger::{Changes, Ledger};
use mykey_server::store::journal::{Batch, Journal};
use mykey_server::store::{RequestRecord, Store};
use mykey_server::testing::TestDb;
use mykey_server::{time, LedgerService};
use rust_decimal::Decimal;
use uuid::Uuid;

/// A database with one resident, and the changes of a grant of `amount` to it that the
/// writer has not journaled yet (the ledger applied it in memory only).
async fn journaled_grant(
    db: &TestDb,
    amount: i64,
) -> (Store, GrantRequest, Changes, mykey_core::api::TransactionReceipt) {
    let l = LedgerService::open(&db.url).await.unwrap();
    mykey_server::testing::add_municipality_and_residents(&l.engine, 1).await;
    l.close().await;
    let store = Store::connect(&db.url).await.unwrap();
    let mut ledger = Ledger::from_snapshot(store.load_snapshot().await.unwrap());
    let grant = GrantRequest {
        id: Uuid::new_v4(),
        resident: 1,
        municipality: 1,
        event: None,
        amount: Decimal::from(amount),
        expires_at: None,
        memo: None,
    };
    let mut changes = Changes::default();
    let receipt = ledger.grant(&mut changes, &grant, time::now()).unwrap();
    (store, grant, changes, receipt)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journaled_batches_are_applied_on_open_and_twice_is_harmless() {
    let db = TestDb::new().await.unwrap();
    // A batch as the writer would have journaled it just before a crash.
    let (store, grant, changes, receipt) = journaled_grant(&db, 70).await;
    let body = serde_json::to_string(&receipt).unwrap();
    let fingerprint = Request::Grant(grant.clone()).fingerprint("municipality:1");
    let through = store.materialized_through().await.unwrap();
    let batch = Batch {
        seq: through + 1,
        changes,
        requests: vec![RequestRecord {
            seq: mykey_server::store::journal::request_seq(through + 1, 0),
            id: grant.id,
            fingerprint,
            status: 201,
            body: body.clone(),
            created_at: time::now(),
        }],
    };
    // The entry carries the transaction but not its leaf's bytes; reading rebuilds them.
    let encoded = batch.encode();
    let leaf = &batch.changes.log_leaves[0];
    assert!(!encoded.windows(leaf.data.len()).any(|w| w == leaf.data.as_slice()), "no leaf bytes in the journal");
    assert_eq!(Batch::decode(&encoded).unwrap().changes.log_leaves, batch.changes.log_leaves);
    // A transaction that does not match its leaf hash is refused, not logged differently.
    let mut forged = Batch::decode(&encoded).unwrap();
    forged.changes.transactions[0].postings[0].amount += 1;
    assert!(Batch::decode(&forged.encode()).is_err());
    Journal::open(&store).await.unwrap().append(batch.seq, batch.encode()).await.unwrap();

    // Materialising the same rows twice leaves them as they are.
    let (ch, reqs) = mykey_server::store::journal::merge(vec![Batch::decode(&batch.encode()).unwrap()]);
    let mut conn = store.writer_connection().await.unwrap();
    store.materialize(&mut conn, &ch, &reqs, through).await.unwrap();
    // No writer serves this database: its tables are as committed.
    let tables = mykey_server::store::Tables::after_barrier(&store);
    let once = tables.all_balances().await.unwrap();
    store.materialize(&mut conn, &ch, &reqs, through).await.unwrap();
    assert_eq!(once, tables.all_balances().await.unwrap());
    drop(conn);

    // Opening applies the journal: the grant is there and its id answers as before.
    let l = LedgerService::open(&db.url).await.unwrap();
    let again = l.engine.execute(Request::Grant(grant), "municipality:1").await.unwrap();
    assert_eq!((again.status, again.body), (201, body));
    l.engine.tables().await.unwrap();
    let balances = l.engine.tables().await.unwrap().resident_balances(1, time::now()).await.unwrap().unwrap();
    let municipal = balances.accounts.iter().find(|a| a.kind == mykey_core::api::AccountKind::Municipal).unwrap();
    assert_eq!(municipal.balance, 70);
    assert_eq!(l.engine.store().materialized_through().await.unwrap(), through + 1);
    l.engine.check_invariants().await;
    l.close().await;
}

/// Copies of one request that reach the writer in the same batch, in the next one while the
/// first is being journaled, or later, all get the first copy's answer: never a second
/// application or a missing answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_of_a_request_spread_over_batches_are_applied_once() {
    let db = TestDb::new().await.unwrap();
    let l = LedgerService::open(&db.url).await.unwrap();
    mykey_server::testing::add_municipality_and_residents(&l.engine, 1).await;
    // Bounded: 30 rounds of 16 copies each.
    for round in 0..30 {
        let grant = GrantRequest {
            id: Uuid::new_v4(),
            resident: 1,
            municipality: 1,
            event: None,
            amount: Decimal::from(1),
            expires_at: None,
            memo: None,
        };
        let mut set = tokio::task::JoinSet::new();
        for copy in 0..16 {
            let (engine, grant) = (l.engine.clone(), grant.clone());
            set.spawn(async move {
                // Spread the copies over consecutive batches.
                tokio::time::sleep(std::time::Duration::from_micros(copy * 150)).await;
                mykey_server::testing::rendered(&engine.execute(Request::Grant(grant), "municipality:1").await)
            });
        }
        let answers = set.join_all().await;
        assert!(answers.iter().all(|a| a == &answers[0]), "round {round}: {answers:?}");
        assert_eq!(answers[0].0, 201, "{answers:?}");
    }
    l.engine.tables().await.unwrap();
    let balances = l.engine.tables().await.unwrap().resident_balances(1, time::now()).await.unwrap().unwrap();
    let municipal = balances.accounts.iter().find(|a| a.kind == mykey_core::api::AccountKind::Municipal).unwrap();
    assert_eq!(municipal.balance, 30, "each grant applied once");
    l.engine.check_invariants().await;
    l.close().await;
}

/// The journal's database: a file beside SQLite's, PostgreSQL's own.
fn journal_url(db: &TestDb) -> String {
    match db.url.strip_prefix("sqlite:") {
        Some(path) => format!("sqlite:{path}.batches"),
        None => db.url.clone(),
    }
}

/// Batches left in the journal.
async fn journal_length(db: &TestDb) -> i64 {
    use sqlx::{Connection, Row};
    let mut c = sqlx::AnyConnection::connect(&journal_url(db)).await.unwrap();
    sqlx::query("SELECT COUNT(*) AS n FROM batches").fetch_one(&mut c).await.unwrap().get("n")
}

/// Makes the journal's next append fail for real, and returns what undoes it. SQLite: a
/// second connection holds the journal file's write lock until the writer's busy timeout
/// (10 s) runs out. PostgreSQL: the journal's server processes are terminated (the writer's
/// and the materialiser's, as when the database restarts).
async fn break_the_journal(db: &TestDb) -> Option<sqlx::AnyConnection> {
    use sqlx::{Connection, Executor, Row};
    if mykey_server::testing::postgres() {
        let mut c = sqlx::AnyConnection::connect(&db.url).await.unwrap();
        let terminated: i64 = sqlx::query(&format!(
            "SELECT COUNT(*) AS n FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = '{}') t",
            mykey_server::store::journal::JOURNAL_APPLICATION_NAME
        ))
        .fetch_one(&mut c)
        .await
        .unwrap()
        .get("n");
        assert_eq!(terminated, 2, "the writer's and the materialiser's journal connections");
        None
    } else {
        let mut c = sqlx::AnyConnection::connect(&journal_url(db)).await.unwrap();
        c.execute("BEGIN IMMEDIATE").await.unwrap();
        Some(c)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_journal_append_answers_a_problem_and_the_retry_applies_once() {
    use sqlx::Executor;
    let db = TestDb::new().await.unwrap();
    let l = LedgerService::open(&db.url).await.unwrap();
    mykey_server::testing::add_municipality_and_residents(&l.engine, 1).await;
    let grant = |amount: i64| mykey_server::testing::grant(Uuid::new_v4(), amount);
    let principal = "municipality:1";
    assert_eq!(mykey_server::testing::rendered(&l.engine.execute(grant(70), principal).await).0, 201);

    let lock = break_the_journal(&db).await;
    let failing = grant(30);
    let (status, body) = mykey_server::testing::rendered(&l.engine.execute(failing.clone(), principal).await);
    assert_eq!(status, 500, "{body}");
    let problem: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(problem["type"].as_str().unwrap().ends_with(":internal"), "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("same id"), "{problem}");
    if let Some(mut c) = lock {
        c.execute("ROLLBACK").await.unwrap();
    }

    // The writer rebuilt its memory from what is durable: the failed grant is not counted, and
    // sending it again applies it exactly once; new requests go through as before.
    let retried = l.engine.execute(failing.clone(), principal).await.unwrap();
    assert_eq!(retried.status, 201);
    let again = l.engine.execute(failing, principal).await.unwrap();
    assert_eq!(again, retried, "a retry answers as the first");
    assert_eq!(mykey_server::testing::rendered(&l.engine.execute(grant(5), principal).await).0, 201);
    assert_eq!(mykey_server::testing::municipal_balance(&l.engine, 1).await, 105);
    l.engine.check_invariants().await;
    // The materialiser truncates the journal again (on PostgreSQL over a new connection).
    assert_eq!(journal_length(&db).await, 0);
    l.close().await;

    // And so does the database after a restart.
    let l = LedgerService::open(&db.url).await.unwrap();
    assert_eq!(mykey_server::testing::municipal_balance(&l.engine, 1).await, 105);
    l.engine.check_invariants().await;
    l.close().await;
}

/// A batch watermark set back below the stored request records stops the start-up: new
/// records would take seqs already used and be skipped as written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watermark_behind_the_request_records_stops_the_start() {
    use sqlx::Connection;
    let db = TestDb::new().await.unwrap();
    let l = LedgerService::open(&db.url).await.unwrap();
    mykey_server::testing::add_municipality_and_residents(&l.engine, 1).await;
    let grant = mykey_server::testing::grant(Uuid::new_v4(), 10);
    assert_eq!(mykey_server::testing::rendered(&l.engine.execute(grant, "municipality:1").await).0, 201);
    l.close().await;
    assert_eq!(journal_length(&db).await, 0);
    let mut c = sqlx::AnyConnection::connect(&db.url).await.unwrap();
    sqlx::query("UPDATE materialized SET through_batch = 0").execute(&mut c).await.unwrap();
    c.close().await.unwrap();
    let Err(e) = LedgerService::open(&db.url).await else { panic!("the ledger opened") };
    assert!(format!("{e:#}").contains("watermark"), "{e:#}");
}

/// A version before `mykey_core::text` acknowledged memos with a NUL, which PostgreSQL's
/// tables refuse: such a journaled batch stopped the materialiser and then the start-up. Now
/// the row gets the memo with U+FFFD in place of each control character, while the leaf keeps
/// the original bytes (the log and mirrors are unchanged; the audit names the transaction).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journaled_memo_the_tables_refuse_is_stored_replaced_and_its_leaf_keeps_the_original() {
    use sqlx::Row;
    let db = TestDb::new().await.unwrap();
    let (store, _, mut changes, _) = journaled_grant(&db, 5).await;
    // What the old version journaled: the memo as sent, in the transaction and its leaf.
    let tx = &mut changes.transactions[0];
    tx.memo = Some("a\u{0}b".to_owned());
    let leaf = &mut changes.log_leaves[0];
    leaf.data = mykey_server::ledger::leaf::transaction_leaf(tx);
    leaf.hash = mykey_core::merkle::leaf_hash(&leaf.data);
    let (seq, index, original) = (tx.seq, leaf.index, leaf.data.clone());
    let through = store.materialized_through().await.unwrap();
    let batch = Batch { seq: through + 1, changes, requests: vec![] };
    Journal::open(&store).await.unwrap().append(batch.seq, batch.encode()).await.unwrap();

    let l = LedgerService::open(&db.url).await.expect("the start-up applies the journal");
    let store = l.engine.store();
    let row =
        sqlx::query("SELECT memo FROM transactions WHERE seq = $1").bind(seq).fetch_one(store.pool()).await.unwrap();
    assert_eq!(row.try_get::<String, _>("memo").unwrap(), "a\u{FFFD}b");
    assert_eq!(store.log_leaves(index, index + 1).await.unwrap(), vec![original]);
    assert_eq!(store.materialized_through().await.unwrap(), through + 1);
    l.close().await;
}
