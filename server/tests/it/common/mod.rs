//! A real server on an ephemeral loopback port, over the database the run selects
//! (`MYKEY_TEST_POSTGRES_URL` or SQLite), seeded with two municipalities, an ID-linkage partner and a coupon partner, a shop
//! in each municipality, three residents and one key per role.
#![allow(dead_code)]

use mykey_server::auth::{create_key, Role};
use mykey_server::testing::device::TestDevice;
use mykey_server::testing::{seed, Seed, TestDb};
use mykey_server::LedgerService;
use serde_json::{json, Value};

pub struct Keys {
    pub operator: String,
    pub municipality1: String,
    pub municipality2: String,
    pub partner: String,
    pub coupon_partner: String,
    pub store1: String,
    pub store2: String,
    pub resident1: String,
}

pub struct App {
    pub base: String,
    pub client: reqwest::Client,
    pub keys: Keys,
    /// A counter device of each shop, enrolled with a pairing code.
    pub devices: Vec<TestDevice>,
    pub residents: Vec<i64>,
    pub shops: Vec<i64>,
    pub partner: i64,
    pub coupon_partner: i64,
    pub engine: mykey_server::engine::Engine,
    pub db: TestDb,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for App {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl App {
    pub async fn start() -> App {
        Self::start_on(TestDb::new().await.unwrap()).await
    }

    /// [`App::start`] on the database `db`.
    pub async fn start_on(db: TestDb) -> App {
        let ledger = LedgerService::open(&db.url).await.unwrap();
        let e = &ledger.engine;
        let seeded =
            seed(e, &Seed { municipalities: 2, shops: vec![1, 2], residents: 3, partners: true }).await.unwrap();
        let (partner, coupon_partner) = seeded.partners.unwrap();
        let (shops, residents) = (seeded.shops, seeded.residents);
        let s = e.store();
        let keys = Keys {
            operator: create_key(s, Role::Operator, 0, "t").await.unwrap(),
            municipality1: create_key(s, Role::Municipality, 1, "t").await.unwrap(),
            municipality2: create_key(s, Role::Municipality, 2, "t").await.unwrap(),
            partner: create_key(s, Role::Partner, partner, "t").await.unwrap(),
            coupon_partner: create_key(s, Role::Partner, coupon_partner, "t").await.unwrap(),
            store1: create_key(s, Role::Store, shops[0], "t").await.unwrap(),
            store2: create_key(s, Role::Store, shops[1], "t").await.unwrap(),
            resident1: create_key(s, Role::Resident, residents[0], "t").await.unwrap(),
        };
        let engine = ledger.engine.clone();
        let listener = mykey_server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let engine = ledger.engine.clone();
            let _lock = ledger;
            // The tests' webhook receivers listen on loopback.
            let site = mykey_server::ServeConfig { loopback_webhooks: true, ..Default::default() };
            mykey_server::serve(engine, site, listener, std::time::Duration::from_secs(3600)).await.unwrap();
        });
        let client = reqwest::Client::builder().pool_max_idle_per_host(256).build().unwrap();
        let devices = vec![
            TestDevice::enrol(&client, &base, &keys.store1, shops[0]).await.unwrap(),
            TestDevice::enrol(&client, &base, &keys.store2, shops[1]).await.unwrap(),
        ];
        App { base, client, keys, devices, residents, shops, partner, coupon_partner, engine, db, server }
    }

    pub async fn post(&self, path: &str, key: &str, body: Value) -> (u16, Value) {
        let res = self.client.post(format!("{}{path}", self.base)).bearer_auth(key).json(&body).send().await.unwrap();
        let status = res.status().as_u16();
        let ct = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        let v: Value = res.json().await.unwrap();
        if status >= 400 {
            assert_eq!(ct, "application/problem+json", "problems are problem+json: {v}");
        }
        (status, v)
    }

    /// A POST signed by `device`.
    pub async fn signed_post(&self, device: &TestDevice, path: &str, body: Value) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let res = device.request(&self.client, reqwest::Method::POST, &url, Some(&body)).send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap())
    }

    pub async fn get(&self, path: &str, key: &str) -> (u16, Value) {
        let res = self.client.get(format!("{}{path}", self.base)).bearer_auth(key).send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap())
    }

    /// Grants `amount` municipal points of municipality 1 to `resident`.
    pub async fn grant(&self, resident: i64, amount: i64) -> Value {
        let (s, v) = self
            .post(
                "/v1/grants",
                &self.keys.municipality1,
                json!({"id": uuid::Uuid::new_v4(), "resident": resident, "municipality": 1, "amount": amount}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        v
    }

    /// The resident's available points of municipality 1.
    pub async fn available(&self, resident: i64) -> i64 {
        let (s, v) = self.get(&format!("/v1/residents/{resident}/balances"), &self.keys.operator).await;
        assert_eq!(s, 200, "{v}");
        v["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["currency"] == "municipal:1" && a["kind"] == "municipal")
            .map_or(0, |a| a["available"].as_i64().unwrap())
    }
}

pub fn slug(v: &Value) -> &str {
    v["type"].as_str().unwrap().strip_prefix("urn:mykey:problem:").unwrap()
}

pub fn payment(resident: i64, shop: i64, municipality: i64, amount: Value) -> Value {
    json!({"id": uuid::Uuid::new_v4(), "resident": resident, "municipality": municipality, "shop": shop, "amount": amount})
}
