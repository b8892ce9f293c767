//! The tamper-evident log over HTTP: every payment's receipt is included in a signed
//! checkpoint, checkpoints are consistent with each other, and the tiles recompute the root.

use crate::common::{payment, App};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use mykey_core::merkle::{self, Hash};
use mykey_core::note::{Checkpoint, Note, VerifierKey};
use serde_json::{json, Value};

fn h(b64: &str) -> Hash {
    B64.decode(b64).unwrap().try_into().unwrap()
}

async fn text(app: &App, path: &str) -> (u16, String) {
    let r = app.client.get(format!("{}{path}", app.base)).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Waits (bounded) for a checkpoint of at least `size` leaves; returns it verified.
async fn checkpoint_at_least(app: &App, key: &VerifierKey, size: u64) -> Checkpoint {
    for _ in 0..50 {
        let (s, body) = text(app, "/log/checkpoint").await;
        if s == 200 {
            let note = Note::parse(&body).unwrap();
            note.verify(key).unwrap();
            let cp = Checkpoint::parse(&note.text).unwrap();
            if cp.size >= size {
                return cp;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no checkpoint of {size} leaves within 5 s");
}

async fn proof(app: &App, path: &str) -> Vec<Hash> {
    let (s, v) = app.get(path, "").await;
    assert_eq!(s, 200, "{v}");
    v["proof"].as_array().unwrap().iter().map(|p| h(p.as_str().unwrap())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_are_in_signed_checkpoints_and_the_log_only_grows() {
    let app = App::start().await;
    let key = VerifierKey::parse(text(&app, "/log/key").await.1.trim()).unwrap();
    // This log has no witnesses: its checkpoints carry the log's signature alone.
    let (s, w) = app.get("/log/witnesses", "").await;
    assert_eq!((s, w), (200, json!({"quorum": 0, "witnesses": []})));
    // A partner's page reads the public answers from its own origin; not the leaves.
    for (path, shared) in [("/log/key", true), ("/log/witnesses", true), ("/log/tile/entries/000", false)] {
        let res = app
            .client
            .get(format!("{}{path}", app.base))
            .header("origin", "https://partner.example")
            .send()
            .await
            .unwrap();
        let allowed = res.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(allowed.as_deref(), shared.then_some("*"), "{path}");
    }
    let r = app.residents[0];
    let mut receipts: Vec<Value> = vec![app.grant(r, 10_000).await];
    for i in 1..=20 {
        let (s, v) = app.post("/v1/payments", &app.keys.operator, payment(r, app.shops[0], 1, json!(i))).await;
        assert_eq!(s, 201);
        receipts.push(v);
    }
    let indexes: Vec<u64> = receipts.iter().map(|v| v["leaf_index"].as_u64().unwrap()).collect();
    assert!(indexes.windows(2).all(|w| w[1] == w[0] + 1), "one leaf per transaction, in order: {indexes:?}");
    let first = checkpoint_at_least(&app, &key, indexes[10] + 1).await;

    for (i, v) in receipts.iter().enumerate().filter(|(_, v)| v["leaf_index"].as_u64().unwrap() < first.size) {
        let index = v["leaf_index"].as_u64().unwrap();
        let p = proof(&app, &format!("/v1/log/inclusion?index={index}&size={}", first.size)).await;
        merkle::verify_inclusion(index, first.size, &h(v["leaf_hash"].as_str().unwrap()), &p, &first.root)
            .unwrap_or_else(|e| panic!("receipt {i}: {e}"));
    }

    for i in 21..=30 {
        app.post("/v1/payments", &app.keys.operator, payment(r, app.shops[0], 1, json!(i))).await;
    }
    let later = checkpoint_at_least(&app, &key, first.size + 10).await;
    let p = proof(&app, &format!("/v1/log/consistency?first={}&second={}", first.size, later.size)).await;
    merkle::verify_consistency(first.size, later.size, &p, &first.root, &later.root).unwrap();
    // A forged older root does not pass.
    let mut forged = first.root;
    forged[5] ^= 1;
    assert!(merkle::verify_consistency(first.size, later.size, &p, &forged, &later.root).is_err());

    // The level-0 tile holds the leaf hashes; they recompute the checkpoint's root.
    let size = later.size;
    let path = mykey_server::log::tile_path(Some(0), 0, size as u32);
    let r = app.client.get(format!("{}/log/{path}", app.base)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "{path}");
    let tile = r.bytes().await.unwrap();
    let leaves: Vec<Hash> = tile.chunks(32).map(|c| c.try_into().unwrap()).collect();
    assert_eq!(merkle::root(&leaves), later.root);
    // Entry bundles hold the leaves themselves: the operator only.
    let entries = format!("{}/log/{}", app.base, mykey_server::log::tile_path(None, 0, size as u32));
    assert_eq!(app.client.get(&entries).send().await.unwrap().status().as_u16(), 401);
    let bundle = app.client.get(&entries).bearer_auth(&app.keys.operator).send().await.unwrap().bytes().await.unwrap();
    let mut from_entries = Vec::new();
    for leaf in mykey_server::log::parse_entry_bundle(&bundle).unwrap() {
        let parsed: Value = serde_json::from_slice(leaf).unwrap();
        assert_eq!(parsed["v"], 1);
        from_entries.push(merkle::leaf_hash(leaf));
    }
    assert_eq!(from_entries, leaves);
    // Those bytes were rebuilt from the transactions: the log's rows keep only their hashes.
    let (with_bytes,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM log_leaves WHERE seq <> 0 AND LENGTH(data) > 0")
        .fetch_one(app.engine.store().pool())
        .await
        .unwrap();
    assert_eq!(with_bytes, 0);
    // Nothing beyond the checkpoint, and no malformed paths.
    let beyond = mykey_server::log::tile_path(Some(0), 0, size as u32 + 1);
    assert_eq!(text(&app, &format!("/log/{beyond}")).await.0, 404);
    assert_eq!(text(&app, "/log/tile/0/x000/001").await.0, 404);
    let (s, _) = app.get(&format!("/v1/log/inclusion?index=0&size={}", size + 1000), "").await;
    assert_eq!(s, 400);
}
