//! kill -9 the server while clients spend; restart; every acknowledged payment is there
//! exactly once, no unacknowledged one is half there, and the invariants hold (the server
//! checks them when it loads the ledger and refuses to start otherwise).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mykey_server::demo::DemoKeys;
use mykey_server::testing::TestDb;
use mykey_tests::Server;
use serde_json::{json, Value};
use uuid::Uuid;

/// A request, what became of it, and the answer when there was one.
type Sent = (Value, Outcome, Option<Value>);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Outcome {
    Acked,
    Refused,
    Unknown,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_payments_survive_kill_9() {
    let db = TestDb::new().await.unwrap();
    let dir = std::env::temp_dir().join(format!("mykey-crash-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let keys_file = dir.join("keys.json");
    let mut server = Server::demo(&db.url, &dir).unwrap();
    let keys: DemoKeys = serde_json::from_slice(&std::fs::read(&keys_file).unwrap()).unwrap();
    let client = reqwest::Client::new();
    let (resident, shop, municipality) = (keys.ids.resident, keys.ids.shop, keys.ids.municipality);

    let grant = json!({"id": Uuid::new_v4(), "resident": resident, "municipality": municipality, "amount": 1_000_000});
    let res = client
        .post(format!("{}/v1/grants", server.base))
        .bearer_auth(&keys.municipality)
        .json(&grant)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);

    let account = account_of(&client, &server.base, &keys.resident, resident).await;
    let baseline = full_history(&client, &server.base, &keys.resident, account).await.len();

    let sent: Arc<Mutex<Vec<Sent>>> = Arc::default();
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (c, base, key, sent) = (client.clone(), server.base.clone(), keys.operator.clone(), sent.clone());
        clients.spawn(async move {
            // Bounded: at most 5,000 requests per client; the kill ends it sooner.
            for _ in 0..5_000 {
                let body = json!({"id": Uuid::new_v4(), "resident": resident, "municipality": municipality, "shop": shop, "amount": 1});
                let r = c.post(format!("{base}/v1/payments")).bearer_auth(&key).json(&body).timeout(Duration::from_secs(5)).send().await;
                let (outcome, answer) = match r {
                    Ok(r) if r.status().as_u16() == 201 => match r.json::<Value>().await {
                        Ok(v) => (Outcome::Acked, Some(v)),
                        Err(_) => (Outcome::Unknown, None),
                    },
                    Ok(_) => (Outcome::Refused, None),
                    Err(_) => (Outcome::Unknown, None),
                };
                let stop = outcome == Outcome::Unknown;
                sent.lock().unwrap().push((body, outcome, answer));
                if stop {
                    break;
                }
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill9();
    clients.join_all().await;
    let sent = std::mem::take(&mut *sent.lock().unwrap());
    let acked = sent.iter().filter(|s| s.1 == Outcome::Acked).count();
    assert!(acked > 50, "clients got going before the kill ({acked} acknowledged)");
    assert!(sent.iter().all(|s| s.1 != Outcome::Refused), "no refusals expected");

    let server = Server::serve(&db.url, &dir).unwrap();
    // Everything in the account's history, by transaction id.
    let history = full_history(&client, &server.base, &keys.resident, account).await;
    let balance: Value = client
        .get(format!("{}/v1/accounts/{account}", server.base))
        .bearer_auth(&keys.resident)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut count: HashMap<String, usize> = HashMap::new();
    let mut sum = 0;
    for e in &history {
        *count.entry(e["transaction"].as_str().unwrap().to_owned()).or_default() += 1;
        sum += e["amount"].as_i64().unwrap();
    }
    assert!(count.values().all(|n| *n == 1), "no transaction twice");
    assert_eq!(sum, balance["balance"].as_i64().unwrap(), "history adds up to the balance");
    let present: HashSet<String> = count.into_keys().collect();
    for (body, outcome, answer) in &sent {
        let id = body["id"].as_str().unwrap();
        if *outcome == Outcome::Acked {
            assert!(present.contains(id), "acknowledged payment {id} lost");
            // The replay returns the very receipt that was acknowledged.
            let again: Value = client
                .post(format!("{}/v1/payments", server.base))
                .bearer_auth(&keys.operator)
                .json(body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(Some(&again), answer.as_ref());
        }
    }
    let unknown_present =
        sent.iter().filter(|s| s.1 == Outcome::Unknown && present.contains(s.0["id"].as_str().unwrap())).count();
    assert_eq!(
        present.len(),
        baseline + acked + unknown_present,
        "what was there, every acknowledged payment, and whole unacknowledged ones only"
    );
    eprintln!("acknowledged {acked}, unacknowledged {} of which committed {unknown_present}", sent.len() - acked);
    let _ = std::fs::remove_dir_all(&dir);
}

async fn full_history(client: &reqwest::Client, base: &str, key: &str, account: i64) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    // Bounded by the number of requests the test can have sent.
    for _ in 0..1_000 {
        let page: Value = client
            .get(format!("{base}/v1/accounts/{account}/history?limit=1000{cursor}"))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        out.extend(page["entries"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return out,
        }
    }
    panic!("history did not end");
}

async fn account_of(client: &reqwest::Client, base: &str, key: &str, resident: i64) -> i64 {
    let balances: Value = client
        .get(format!("{base}/v1/residents/{resident}/balances"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    balances["accounts"].as_array().unwrap().iter().find(|a| a["kind"] == "municipal").unwrap()["id"].as_i64().unwrap()
}
