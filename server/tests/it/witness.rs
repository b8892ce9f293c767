//! Witnesses over real HTTP: the C2SP tlog-witness refusals, and a log that publishes a
//! checkpoint only with a quorum of cosignatures.

use std::sync::Arc;

use mykey_core::merkle::{self, Hash};
use mykey_core::note::{Checkpoint, Note, SignerKey, VerifierKey};
use mykey_server::engine::LogConfig;
use mykey_server::integrity::witness::Witness;
use mykey_server::log::witness::{request_body, WitnessClient};
use mykey_server::log::LogSigner;
use mykey_server::testing::TestDb;
use mykey_server::LedgerService;

async fn start_witness(
    name: &str,
    seed: u8,
    logs: Vec<VerifierKey>,
) -> (WitnessClient, tokio::task::JoinHandle<()>, TestDb) {
    let db = TestDb::new().await.unwrap();
    let w = Arc::new(Witness::open(&db.url, SignerKey::witness(name, [seed; 32]).unwrap(), logs).await.unwrap());
    let listener = mykey_server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let client = WitnessClient::parse(&format!("http://{}={}", listener.local_addr().unwrap(), w.vkey())).unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, w.router()).await.unwrap();
    });
    (client, task, db)
}

fn tree(n: usize, salt: u8) -> Vec<Hash> {
    (0..n).map(|i| merkle::leaf_hash(&[salt, i as u8])).collect()
}

async fn post(c: &reqwest::Client, w: &WitnessClient, body: String) -> (u16, String, String) {
    let r = c.post(format!("{}/add-checkpoint", w.url)).body(body).send().await.unwrap();
    let status = r.status().as_u16();
    let ct = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, ct, r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_witness_cosigns_only_consistent_checkpoints() {
    let log = LogSigner::new("mykey.test/log", [9; 32]).unwrap();
    let log_key = VerifierKey::parse(&log.vkey()).unwrap();
    let (w, _task, _db) = start_witness("w.test/1", 1, vec![log_key]).await;
    let c = reqwest::Client::new();
    let leaves = tree(7, 0);
    let note3 = log.checkpoint(3, merkle::root(&leaves[..3]));
    let note7 = log.checkpoint(7, merkle::root(&leaves));

    // First contact: old 0, any size.
    let (s, _, body) = post(&c, &w, request_body(0, &[], &note3)).await;
    assert_eq!(s, 200, "{body}");
    let cosigned = Note::parse(&format!("{note3}{body}")).unwrap();
    cosigned.verify_cosignature(&w.key).unwrap();
    // The witness now knows size 3: old 0 is a conflict that tells the size.
    let (s, ct, body) = post(&c, &w, request_body(0, &[], &note7)).await;
    assert_eq!((s, ct.as_str(), body.as_str()), (409, "text/x.tlog.size", "3\n"));
    // A bad proof is 422, a good one is cosigned.
    let good = merkle::consistency_proof(3, &leaves);
    let mut bad = good.clone();
    bad[0][0] ^= 1;
    assert_eq!(post(&c, &w, request_body(3, &bad, &note7)).await.0, 422);
    assert_eq!(post(&c, &w, request_body(3, &good, &note7)).await.0, 200);
    // A fork: another tree of the same size.
    let forked = log.checkpoint(7, merkle::root(&tree(7, 1)));
    assert_eq!(post(&c, &w, request_body(7, &[], &forked)).await.0, 409);
    // A fork that grows: not consistent with what the witness cosigned.
    let other = tree(9, 1);
    let note9 = log.checkpoint(9, merkle::root(&other));
    assert_eq!(post(&c, &w, request_body(7, &merkle::consistency_proof(7, &other), &note9)).await.0, 422);
    // Signed by someone else, unknown log, nonsense, old > size.
    let impostor = LogSigner::new("mykey.test/log", [8; 32]).unwrap();
    assert_eq!(post(&c, &w, request_body(7, &[], &impostor.checkpoint(7, merkle::root(&leaves)))).await.0, 403);
    let stranger = LogSigner::new("other.test/log", [9; 32]).unwrap();
    assert_eq!(post(&c, &w, request_body(0, &[], &stranger.checkpoint(1, merkle::root(&leaves[..1])))).await.0, 404);
    assert_eq!(post(&c, &w, "hello".into()).await.0, 400);
    assert_eq!(post(&c, &w, request_body(8, &[], &note7)).await.0, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_publishes_only_with_a_quorum_of_cosignatures() {
    let signer = LogSigner::new("mykey.test/log", [7; 32]).unwrap();
    let log_key = VerifierKey::parse(&signer.vkey()).unwrap();
    let mut witnesses = Vec::new();
    let mut tasks = Vec::new();
    let mut dbs = Vec::new();
    for i in 1..=3u8 {
        let (w, t, db) = start_witness(&format!("w.test/{i}"), i, vec![log_key.clone()]).await;
        witnesses.push(w);
        tasks.push(t);
        dbs.push(db);
    }
    let keys: Vec<VerifierKey> = witnesses.iter().map(|w| w.key.clone()).collect();
    let db = TestDb::new().await.unwrap();
    let ledger = LedgerService::open_with(&db.url, LogConfig { signer, witnesses, quorum: 2 }).await.unwrap();
    let e = ledger.engine.clone();
    // What `/log/witnesses` tells clients to check a checkpoint against.
    let published = mykey_core::api::LogWitnesses { quorum: 2, witnesses: keys.iter().map(|k| k.encode()).collect() };
    assert_eq!(*e.log_witnesses(), published);
    mykey_server::testing::add_municipality_and_residents(&e, 1).await;
    let grant = |amount: i64| {
        mykey_server::engine::Request::Grant(mykey_core::api::GrantRequest {
            id: uuid::Uuid::new_v4(),
            resident: 1,
            municipality: 1,
            event: None,
            amount: amount.into(),
            expires_at: None,
            memo: None,
        })
    };
    assert_eq!(mykey_server::testing::rendered(&e.execute(grant(5), "t").await).0, 201);

    let wait_for = |size: u64| {
        let e = e.clone();
        async move {
            for _ in 0..50 {
                if let Some(p) = e.checkpoint().filter(|p| p.size >= size) {
                    return Some(p);
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            None
        }
    };
    let p = wait_for(1).await.expect("a witnessed checkpoint");
    assert!(p.cosignatures >= 2);
    let cp: Checkpoint = Note::parse(&p.note).unwrap().verify_witnessed(&log_key, &keys, 2).unwrap();
    assert_eq!(cp.size, p.size);

    // One witness down: two of three still make a quorum.
    tasks[0].abort();
    assert_eq!(mykey_server::testing::rendered(&e.execute(grant(6), "t").await).0, 201);
    let p = wait_for(2).await.expect("published with two witnesses");
    Note::parse(&p.note).unwrap().verify_witnessed(&log_key, &keys, 2).unwrap();

    // Two down: nothing new is published as witnessed.
    tasks[1].abort();
    assert_eq!(mykey_server::testing::rendered(&e.execute(grant(7), "t").await).0, 201);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(e.checkpoint().unwrap().size, 2, "no quorum, no new checkpoint");
    drop(dbs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_view_is_caught_when_witnesses_compare_notes() {
    // A log signs two different trees of the same size and shows one to each witness.
    let log = LogSigner::new("mykey.test/log", [5; 32]).unwrap();
    let log_key = VerifierKey::parse(&log.vkey()).unwrap();
    let (w1, _t1, _d1) = start_witness("w.test/1", 1, vec![log_key.clone()]).await;
    let (w2, _t2, _d2) = start_witness("w.test/2", 2, vec![log_key.clone()]).await;
    let c = reqwest::Client::new();
    let honest = log.checkpoint(6, merkle::root(&tree(6, 0)));
    let other = log.checkpoint(6, merkle::root(&tree(6, 1)));
    let (s1, _, cosig1) = post(&c, &w1, request_body(0, &[], &honest)).await;
    let (s2, _, cosig2) = post(&c, &w2, request_body(0, &[], &other)).await;
    assert_eq!((s1, s2), (200, 200), "each witness alone cannot tell");
    // Each witness keeps its view: the other checkpoint of the same size is refused.
    assert_eq!(post(&c, &w1, request_body(6, &[], &other)).await.0, 409);
    assert_eq!(post(&c, &w2, request_body(6, &[], &honest)).await.0, 409);
    // Comparing their cosigned notes proves the log signed two histories.
    let a = Note::parse(&format!("{honest}{cosig1}")).unwrap();
    let b = Note::parse(&format!("{other}{cosig2}")).unwrap();
    a.verify_cosignature(&w1.key).unwrap();
    b.verify_cosignature(&w2.key).unwrap();
    let evidence = mykey_core::note::split_view(&a, &b, &log_key).expect("a split view");
    assert_eq!(evidence.size, 6);
    assert_ne!(evidence.first_root, evidence.second_root);
}
