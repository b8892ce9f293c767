//! Card login and MyKey IDs over real HTTP, with virtual cards from a demo CA, on the
//! database the run selects: the whole registration, logins, the candidate rules, and every
//! refusal the issue lists.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use mykey_core::card::jpki::{self, Pin};
use mykey_core::identity::{AuthToken, TokenAlgorithm, AUTH_TOKEN_FORMAT};
use mykey_server::services::identity::card::{CardTrust, UnknownRevocation};
use mykey_server::services::identity::Identity;
use mykey_server::testing::{Smtp, TestDb};
use mykey_server::LedgerService;
use mykey_virtual_card::{DemoCa, VirtualCard};
use serde_json::{json, Value};

pub(crate) struct Server {
    pub(crate) base: String,
    pub(crate) ca: DemoCa,
    /// A partner using ID linkage, and its key.
    pub(crate) partner: i64,
    pub(crate) partner_key: String,
    /// A card company converting with coupon codes, and its key.
    pub(crate) coupon_partner: i64,
    pub(crate) coupon_partner_key: String,
    /// An online shop, its store in municipality 1 and the store's key.
    pub(crate) online_service: i64,
    pub(crate) online_store: i64,
    pub(crate) online_store_key: String,
    pub(crate) municipality_key: String,
    /// A library (a facility), its store key and its counter terminal (a device).
    pub(crate) library: i64,
    pub(crate) library_key: String,
    /// The library's counter terminal, enrolled with a pairing code.
    pub(crate) terminal: mykey_server::testing::device::TestDevice,
    /// The identity service the server runs.
    pub(crate) identity: Arc<Identity>,
    /// The ledger the server runs (set-up changes, jobs at a chosen time).
    pub(crate) engine: mykey_server::engine::Engine,
    pub(crate) _db: TestDb,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) struct Options {
    /// The CA (a new one if none).
    pub(crate) ca: Option<DemoCa>,
    /// A CRL listing these serial numbers, or no CRL at all.
    pub(crate) crl_revoking: Option<Vec<Vec<u8>>>,
    pub(crate) unknown: UnknownRevocation,
    pub(crate) nonce_life: Duration,
    /// The SMTP server for e-mail notices.
    pub(crate) smtp: Option<String>,
    /// Trust read from these files (the CA's certificate, a CRL), which can be read again.
    pub(crate) trust_files: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// Webhooks to public addresses only, as in production (else loopback too: the tests'
    /// receivers listen there).
    pub(crate) production_webhooks: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            ca: None,
            crl_revoking: Some(vec![]),
            unknown: UnknownRevocation::Deny,
            nonce_life: Duration::from_secs(300),
            smtp: None,
            trust_files: None,
            production_webhooks: false,
        }
    }
}

fn new_ca() -> DemoCa {
    DemoCa::generate(&mut rand::rngs::OsRng, SystemTime::now() - Duration::from_secs(3600 * 24 * 365 * 7)).unwrap()
}

fn serial_of(card: &VirtualCard) -> Vec<u8> {
    use x509_cert::der::Decode;
    x509_cert::Certificate::from_der(card.auth_certificate()).unwrap().tbs_certificate.serial_number.as_bytes().to_vec()
}

impl Options {
    /// The defaults, with e-mail going to the SMTP server at `url`.
    pub(crate) fn with_smtp(url: String) -> Options {
        Options { smtp: Some(url), ..Options::default() }
    }
}

/// A partner converting by `method`, and a key for it.
async fn add_partner(
    engine: &mykey_server::engine::Engine,
    name: &str,
    name_en: &str,
    point_kind: &str,
    method: &str,
) -> (i64, String) {
    let change = mykey_server::engine::Change::Partner {
        name: name.into(),
        name_en: name_en.into(),
        point_kind: point_kind.into(),
        exchange_method: method.into(),
    };
    let id = match engine.apply(change).await.unwrap() {
        mykey_server::engine::ChangeResult::Id(id) => id,
        other => panic!("{other:?}"),
    };
    let key = mykey_server::auth::create_key(engine.store(), mykey_server::auth::Role::Partner, id, "t").await.unwrap();
    (id, key)
}

pub(crate) async fn server(opts: Options) -> Server {
    let ca = opts.ca.unwrap_or_else(new_ca);
    let db = TestDb::new().await.unwrap();
    let ledger = LedgerService::open(&db.url).await.unwrap();
    mykey_server::testing::add_municipality_and_residents(&ledger.engine, 0).await;
    let (partner, partner_key) = add_partner(&ledger.engine, "日本航空株式会社", "JAL", "mileage", "id_linkage").await;
    let (coupon_partner, coupon_partner_key) =
        add_partner(&ledger.engine, "三井住友カード株式会社", "SMBC Card", "card_points", "coupon_url").await;
    let catalog = mykey_server::services::catalog::Catalog::new(&ledger.engine);
    let online_service =
        catalog.add_online_service("めいぶつチョイス", "Meibutsu Choice", "online_shop").await.unwrap();
    let online_store = match ledger
        .engine
        .apply(mykey_server::engine::Change::Shop {
            name: "めいぶつチョイス（前橋市）".into(), municipality: 1
        })
        .await
        .unwrap()
    {
        mykey_server::engine::ChangeResult::Id(id) => id,
        other => panic!("{other:?}"),
    };
    catalog.set_shop_online_service(online_store, online_service).await.unwrap();
    let store = ledger.engine.store();
    let online_store_key =
        mykey_server::auth::create_key(store, mykey_server::auth::Role::Store, online_store, "t").await.unwrap();
    let municipality_key =
        mykey_server::auth::create_key(store, mykey_server::auth::Role::Municipality, 1, "t").await.unwrap();
    let library = match ledger
        .engine
        .apply(mykey_server::engine::Change::Shop { name: "前橋市立図書館".into(), municipality: 1 })
        .await
        .unwrap()
    {
        mykey_server::engine::ChangeResult::Id(id) => id,
        other => panic!("{other:?}"),
    };
    let library_key =
        mykey_server::auth::create_key(store, mykey_server::auth::Role::Store, library, "t").await.unwrap();
    let listener = mykey_server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let now = SystemTime::now();
    let crls = match &opts.crl_revoking {
        Some(serials) => vec![ca.crl(1, serials, now, now + Duration::from_secs(3600)).unwrap()],
        None => vec![],
    };
    let trust = match &opts.trust_files {
        Some((ca_file, crl_file)) => {
            CardTrust::from_files(std::slice::from_ref(ca_file), std::slice::from_ref(crl_file), opts.unknown, &base)
                .unwrap()
        }
        None => CardTrust::new(&[ca.certificate().to_vec()], &crls, opts.unknown, &base).unwrap(),
    };
    let identity =
        Arc::new(Identity::with_lives(ledger.engine.clone(), Some(trust), opts.nonce_life, Duration::from_secs(3600)));
    let mail = opts.smtp.map(|url| mykey_server::outbox::mail::MailConfig {
        smtp_url: url,
        from: "mykey <no-reply@mykey.test>".into(),
    });
    let served = identity.clone();
    let engine = ledger.engine.clone();
    let loopback_webhooks = !opts.production_webhooks;
    let task = tokio::spawn(async move {
        let engine = ledger.engine.clone();
        let _ledger = ledger;
        // Loopback is the trusted proxy: a test names the client behind it with X-Forwarded-For.
        let trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        let site = mykey_server::ServeConfig { mail, trusted_proxies, loopback_webhooks, ..Default::default() };
        mykey_server::serve_with(engine, served, site, listener, Duration::from_secs(3600)).await.unwrap();
    });
    let terminal =
        mykey_server::testing::device::TestDevice::enrol(&reqwest::Client::new(), &base, &library_key, library)
            .await
            .unwrap();
    Server {
        base,
        ca,
        partner,
        partner_key,
        coupon_partner,
        coupon_partner_key,
        online_service,
        online_store,
        online_store_key,
        municipality_key,
        library,
        library_key,
        terminal,
        identity,
        engine,
        _db: db,
        task,
    }
}

/// A browser: its own cookie jar.
pub(crate) struct Browser {
    pub(crate) base: String,
    http: reqwest::Client,
}

impl Browser {
    pub(crate) fn new(s: &Server) -> Browser {
        Browser { base: s.base.clone(), http: reqwest::Client::builder().cookie_store(true).build().unwrap() }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        // As a browser does on every write: the page's origin.
        let res = req.header("origin", &self.base).send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() })
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(self.http.post(format!("{}{path}", self.base)).json(&body)).await
    }

    async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(self.http.put(format!("{}{path}", self.base)).json(&body)).await
    }

    pub(crate) async fn get(&self, path: &str) -> (u16, Value) {
        self.send(self.http.get(format!("{}{path}", self.base))).await
    }

    async fn nonce(&self, purpose: &str) -> String {
        let (s, v) = self.post("/v1/auth/nonce", json!({"purpose": purpose})).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["purpose"], purpose);
        v["nonce"].as_str().unwrap().to_owned()
    }

    /// Reads the card, signs for `origin` and a nonce for `purpose`, and returns the body.
    async fn signed_for(&self, card: &mut VirtualCard, origin: &str, purpose: &str) -> Value {
        let nonce = self.nonce(purpose).await;
        let cert = jpki::read_auth_certificate(card).await.unwrap();
        let sig = jpki::authenticate(card, origin, &nonce, &Pin::parse("1234").unwrap()).await.unwrap();
        json!({"nonce": nonce, "token": AuthToken::rs256(&cert, &sig)})
    }

    async fn card_login(&self, card: &mut VirtualCard) -> (u16, Value) {
        let body = self.signed(card, &self.base.clone()).await;
        self.post("/v1/auth/card", body).await
    }

    /// [`Self::signed_for`] a login.
    async fn signed(&self, card: &mut VirtualCard, origin: &str) -> Value {
        self.signed_for(card, origin, "login").await
    }
}

pub(crate) fn card(s: &Server) -> VirtualCard {
    VirtualCard::issue(&s.ca, &mut rand::rngs::OsRng, "1234", SystemTime::now() - Duration::from_secs(60)).unwrap()
}

fn reason(v: &Value) -> &str {
    v["reason"].as_str().unwrap_or("")
}

fn registration_form(candidate: &str) -> Value {
    json!({
        "candidate": candidate,
        "password": "abc123!x",
        "password_confirmation": "abc123!x",
        "email": "hanako@example.jp",
        "email_confirmation": "hanako@example.jp",
        "notices": {"points_granted": true, "points_expired": true, "settings_changed": false, "mykey_id_changed": true, "payments": true},
        "home_municipality": 1
    })
}

/// Card login, three generations (the third is final), registration, then both logins.
#[tokio::test]
async fn a_card_registers_a_mykey_id_and_logs_in_with_card_or_password() {
    let s = server(Options::default()).await;
    let b = Browser::new(&s);
    let mut card = card(&s);
    let (st, v) = b.card_login(&mut card).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["mykey_id"], Value::Null);
    assert_eq!(v["registration"]["generations_left"], 3);

    // Registration needs a candidate on offer first.
    let (st, v) = b.post("/v1/mykey-ids", registration_form("AB2CD3EF")).await;
    assert_eq!(st, 400, "{v}");

    let mut last = Value::Null;
    for left in [2, 1, 0] {
        let (st, v) = b.post("/v1/registration/candidates", json!({"action": "generate"})).await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["generations_left"], left);
        assert_eq!(v["candidate_final"], left == 0);
        let id = v["candidate"].as_str().unwrap();
        assert!(mykey_core::MykeyId::parse(id).is_ok() && !id.contains(['I', 'O', '0', '1']));
        last = v;
    }
    let (st, v) = b.post("/v1/registration/candidates", json!({"action": "generate"})).await;
    assert_eq!((st, v["type"].as_str().unwrap()), (409, "urn:mykey:problem:candidates-used-up"));
    let (st, v) = b.post("/v1/registration/candidates", json!({"action": "check", "candidate": "ZZ2ZZ3ZZ"})).await;
    assert_eq!(st, 409, "{v}");

    // Starting again from a new browser does not reset the counts: they belong to the card.
    let b2 = Browser::new(&s);
    let (_, v) = b2.card_login(&mut card).await;
    assert_eq!(v["registration"]["generations_left"], 0);
    assert_eq!(v["registration"]["candidate"], last["candidate"]);

    let final_id = last["candidate"].as_str().unwrap().to_owned();
    let (st, v) = b.post("/v1/mykey-ids", registration_form(&final_id)).await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["mykey_id"], final_id.as_str());
    assert_eq!(v["home_municipality"], 1);
    assert_eq!(v["notices"]["points_granted"], true);
    let resident = v["resident"].as_i64().unwrap();

    let (st, me) = b.get("/v1/me").await;
    assert_eq!((st, me["mykey_id"].as_str().unwrap()), (200, final_id.as_str()));
    // The session is the resident's key to its own balances, and to nobody else's.
    let (st, bal) = b.get(&format!("/v1/residents/{resident}/balances")).await;
    assert_eq!(st, 200, "{bal}");
    let (st, _) = b.get(&format!("/v1/residents/{}/balances", resident + 1000)).await;
    assert_eq!(st, 403);

    let (st, _) = b.post("/v1/auth/logout", json!({})).await;
    assert_eq!(st, 204);
    let (st, _) = b.get("/v1/me").await;
    assert_eq!(st, 401);

    // The card now logs straight into its MyKey ID.
    let (st, v) = b.card_login(&mut card).await;
    assert_eq!((st, v["mykey_id"].as_str().unwrap()), (200, final_id.as_str()));
    let p = Browser::new(&s);
    let (st, v) = p.post("/v1/auth/password", json!({"mykey_id": final_id, "password": "abc123!x"})).await;
    assert_eq!(st, 200, "{v}");
    let (st, h) = p.get("/v1/me/history").await;
    assert_eq!(st, 200);
    let kinds: Vec<&str> = h.as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["login_password", "login_card", "registered"]);

    // Each event is a leaf of the tamper-evident log (linked once the writer's batch is in
    // the tables).
    let store = mykey_server::store::Store::connect(&s._db.url).await.unwrap();
    let mut logged = vec![];
    for _ in 0..100 {
        let rows: Vec<(String, Option<i64>)> =
            sqlx::query_as("SELECT kind, leaf_index FROM mykey_id_events ORDER BY created_at")
                .fetch_all(store.pool())
                .await
                .unwrap();
        if rows.iter().all(|r| r.1.is_some()) {
            logged = rows;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(logged.len(), 3, "every event got a leaf");
    for (kind, index) in logged {
        let leaf = store.log_leaves(index.unwrap() as u64, index.unwrap() as u64 + 1).await.unwrap().remove(0);
        match mykey_server::ledger::leaf::parse_leaf(&leaf).unwrap() {
            mykey_server::ledger::leaf::Leaf::Usage(e) => assert_eq!((e.kind, e.resident), (kind, resident)),
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn own_choice_is_checked_and_three_failures_bring_a_generated_candidate() {
    let s = server(Options::default()).await;
    let (a, b) = (Browser::new(&s), Browser::new(&s));
    let (mut card_a, mut card_b) = (card(&s), card(&s));
    a.card_login(&mut card_a).await;
    let (st, v) = a.post("/v1/registration/candidates", json!({"action": "check", "candidate": "HANAKO22"})).await;
    assert_eq!((st, v["candidate"].as_str().unwrap()), (200, "HANAKO22"));
    let (st, v) = a.post("/v1/mykey-ids", registration_form("HANAKO22")).await;
    assert_eq!(st, 201, "{v}");

    b.card_login(&mut card_b).await;
    let (st, v) = b.post("/v1/registration/candidates", json!({"action": "check", "candidate": "hanako22"})).await;
    assert_eq!((st, v["type"].as_str().unwrap()), (422, "urn:mykey:problem:invalid-mykey-id"));
    for n in 1..=3 {
        let (st, v) = b.post("/v1/registration/candidates", json!({"action": "check", "candidate": "HANAKO22"})).await;
        assert_eq!((st, v["type"].as_str().unwrap()), (409, "urn:mykey:problem:mykey-id-taken"));
        assert_eq!(v["registration"]["failed_checks"], n);
        assert_eq!(v["registration"]["candidate"].is_string(), n == 3, "{v}");
    }
    // A stale page cannot register the taken ID either.
    let (st, _) = b.post("/v1/mykey-ids", registration_form("HANAKO22")).await;
    assert_eq!(st, 400);
}

#[tokio::test]
async fn the_registration_form_is_checked_field_by_field() {
    let s = server(Options::default()).await;
    let b = Browser::new(&s);
    let mut card = card(&s);
    b.card_login(&mut card).await;
    let (_, v) = b.post("/v1/registration/candidates", json!({"action": "generate"})).await;
    let id = v["candidate"].as_str().unwrap().to_owned();
    let cases = [
        (json!({"password": "abc12", "password_confirmation": "abc12"}), "password-rules", "password"),
        (json!({"password": "パスワード12", "password_confirmation": "パスワード12"}), "password-rules", "password"),
        (json!({"password_confirmation": "abc123!y"}), "confirmation-mismatch", "password_confirmation"),
        (json!({"email": "hanako", "email_confirmation": "hanako"}), "invalid-email", "email"),
        (json!({"email_confirmation": "hanako@example.com"}), "confirmation-mismatch", "email_confirmation"),
        (json!({"email": null, "email_confirmation": null}), "invalid-email", "email"),
    ];
    for (change, slug, field) in cases {
        let mut form = registration_form(&id);
        for (k, v) in change.as_object().unwrap() {
            form[k] = v.clone();
        }
        let (st, v) = b.post("/v1/mykey-ids", form).await;
        assert_eq!((st, v["type"].as_str().unwrap()), (422, format!("urn:mykey:problem:{slug}").as_str()), "{v}");
        assert_eq!(v["field"], field);
    }
    let mut form = registration_form(&id);
    form["home_municipality"] = json!(999);
    let (st, v) = b.post("/v1/mykey-ids", form).await;
    assert_eq!((st, v["type"].as_str().unwrap()), (422, "urn:mykey:problem:unknown-reference"));
    // Nothing was half-written: the same form with a real municipality still registers.
    let (st, v) = b.post("/v1/mykey-ids", registration_form(&id)).await;
    assert_eq!(st, 201, "{v}");
}

#[tokio::test]
async fn one_certificate_binds_to_one_live_mykey_id() {
    let s = server(Options::default()).await;
    let (a, b) = (Browser::new(&s), Browser::new(&s));
    let mut card = card(&s);
    a.card_login(&mut card).await;
    b.card_login(&mut card).await;
    let (_, v) = a.post("/v1/registration/candidates", json!({"action": "generate"})).await;
    let id = v["candidate"].as_str().unwrap().to_owned();
    let (st, _) = a.post("/v1/mykey-ids", registration_form(&id)).await;
    assert_eq!(st, 201);
    // The second browser's registration session of the same card cannot make a second one.
    let (st, v) = b.post("/v1/mykey-ids", registration_form(&id)).await;
    assert_eq!((st, v["type"].as_str().unwrap()), (409, "urn:mykey:problem:card-already-bound"), "{v}");
}

#[tokio::test]
async fn certificates_that_are_expired_or_from_another_ca_are_refused() {
    let s = server(Options::default()).await;
    let b = Browser::new(&s);
    let mut expired = VirtualCard::issue(
        &s.ca,
        &mut rand::rngs::OsRng,
        "1234",
        SystemTime::now() - Duration::from_secs(6 * 365 * 86400),
    )
    .unwrap();
    let (st, v) = b.card_login(&mut expired).await;
    assert_eq!((st, reason(&v)), (401, "expired"), "{v}");
    assert_eq!(v["type"], "urn:mykey:problem:card-rejected");

    let mut stranger = VirtualCard::issue(&new_ca(), &mut rand::rngs::OsRng, "1234", SystemTime::now()).unwrap();
    let (st, v) = b.card_login(&mut stranger).await;
    assert_eq!((st, reason(&v)), (401, "unknown-ca"), "{v}");
}

#[tokio::test]
async fn a_revoked_certificate_is_refused_and_unknown_status_follows_the_policy() {
    let ca = new_ca();
    let mut revoked = VirtualCard::issue(&ca, &mut rand::rngs::OsRng, "1234", SystemTime::now()).unwrap();
    let mut fine = VirtualCard::issue(&ca, &mut rand::rngs::OsRng, "1234", SystemTime::now()).unwrap();
    let ca_json = ca.to_json().unwrap();
    let s = server(Options { ca: Some(ca), crl_revoking: Some(vec![serial_of(&revoked)]), ..Options::default() }).await;
    let b = Browser::new(&s);
    let (st, v) = b.card_login(&mut revoked).await;
    assert_eq!((st, reason(&v)), (401, "revoked"), "{v}");
    let (st, v) = b.card_login(&mut fine).await;
    assert_eq!(st, 200, "{v}");

    // No CRL: "unknown" is refused under deny and accepted under allow.
    let deny =
        server(Options { ca: Some(DemoCa::from_json(&ca_json).unwrap()), crl_revoking: None, ..Options::default() })
            .await;
    let (st, v) = Browser::new(&deny).card_login(&mut fine).await;
    assert_eq!((st, reason(&v)), (401, "revocation-unknown"), "{v}");
    let allow = server(Options {
        ca: Some(DemoCa::from_json(&ca_json).unwrap()),
        crl_revoking: None,
        unknown: UnknownRevocation::Allow,
        ..Options::default()
    })
    .await;
    let (st, v) = Browser::new(&allow).card_login(&mut fine).await;
    assert_eq!(st, 200, "{v}");
}

#[tokio::test]
async fn nonces_are_single_use_short_lived_and_bound_to_the_browser() {
    let s = server(Options { nonce_life: Duration::from_millis(400), ..Options::default() }).await;
    let b = Browser::new(&s);
    let mut card = card(&s);
    let body = b.signed(&mut card, &s.base).await;
    let (st, v) = b.post("/v1/auth/card", body.clone()).await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = b.post("/v1/auth/card", body).await;
    assert_eq!((st, v["type"].as_str().unwrap()), (401, "urn:mykey:problem:nonce-invalid"), "replayed: {v}");

    let body = b.signed(&mut card, &s.base).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (st, v) = b.post("/v1/auth/card", body).await;
    assert_eq!(st, 401, "expired: {v}");
    assert!(v["detail"].as_str().unwrap().contains("expired"), "{v}");

    // A token signed in one browser is refused in another (the challenge cookie differs).
    let body = b.signed(&mut card, &s.base).await;
    let other = Browser::new(&s);
    other.nonce("login").await;
    let (st, v) = other.post("/v1/auth/card", body).await;
    assert_eq!((st, v["type"].as_str().unwrap()), (401, "urn:mykey:problem:nonce-invalid"), "{v}");
}

/// A challenge is issued for one purpose, its text starts with it (so the card signs it), and
/// only that purpose's endpoint takes it: a re-binding's signature opens no web session.
#[tokio::test]
async fn a_card_challenge_is_good_for_its_purpose_only() {
    let s = server(Options::default()).await;
    let b = Browser::new(&s);
    let (st, v) = b.post("/v1/auth/nonce", json!({})).await;
    assert_eq!((st, v["type"].as_str().unwrap()), (400, "urn:mykey:problem:invalid-request"), "{v}");
    // The counter's purposes are never a browser's: a shop's enrolled device asks for them.
    for purpose in ["payment", "counter_balance", "patron_link", "patron_lookup"] {
        let (st, v) = b.post("/v1/auth/nonce", json!({"purpose": purpose})).await;
        assert_eq!((st, v["field"].as_str()), (400, Some("purpose")), "{purpose}: {v}");
    }
    let nonce = b.nonce("rebind").await;
    assert!(nonce.starts_with("rebind:"), "{nonce}");

    let mut card = card(&s);
    let body = b.signed_for(&mut card, &s.base, "rebind").await;
    let (st, v) = b.post("/v1/auth/card", body).await;
    assert_eq!((st, v["type"].as_str().unwrap()), (401, "urn:mykey:problem:nonce-invalid"), "{v}");
    assert!(v["detail"].as_str().unwrap().contains("rebind, not for login"), "{v}");
    // Changing the word in front names no challenge the server issued.
    let mut body = b.signed_for(&mut card, &s.base, "rebind").await;
    let renamed = body["nonce"].as_str().unwrap().replacen("rebind:", "login:", 1);
    body["nonce"] = json!(renamed);
    let (st, v) = b.post("/v1/auth/card", body).await;
    assert_eq!((st, v["type"].as_str().unwrap()), (401, "urn:mykey:problem:nonce-invalid"), "{v}");
    // The right purpose logs in.
    let (st, v) = b.card_login(&mut card).await;
    assert_eq!(st, 200, "{v}");
}

#[tokio::test]
async fn a_token_for_another_origin_or_with_a_tampered_signature_is_refused() {
    let s = server(Options::default()).await;
    let b = Browser::new(&s);
    let mut card = card(&s);
    let body = b.signed(&mut card, "https://evil.example").await;
    let (st, v) = b.post("/v1/auth/card", body).await;
    assert_eq!((st, reason(&v)), (401, "bad-signature"), "{v}");

    let mut body = b.signed(&mut card, &s.base).await;
    let mut sig = B64.decode(body["token"]["signature"].as_str().unwrap()).unwrap();
    sig[100] ^= 1;
    body["token"]["signature"] = json!(B64.encode(sig));
    let (st, v) = b.post("/v1/auth/card", body).await;
    assert_eq!((st, reason(&v)), (401, "bad-signature"), "{v}");

    // Claiming ES256 for an RSA signature does not help either.
    let mut body = b.signed(&mut card, &s.base).await;
    body["token"]["algorithm"] = json!("ES256");
    let (st, v) = b.post("/v1/auth/card", body).await;
    assert_eq!((st, reason(&v)), (401, "bad-signature"), "{v}");
}

/// The next card generation may sign with ECDSA P-256: such a token logs in.
#[tokio::test]
async fn an_es256_card_logs_in() {
    use p256::ecdsa::signature::Signer;
    use p256::pkcs8::EncodePublicKey;
    use x509_cert::der::Decode;
    let s = server(Options::default()).await;
    let key = p256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
    let spki_der = key.verifying_key().to_public_key_der().unwrap();
    let spki = x509_cert::spki::SubjectPublicKeyInfoOwned::from_der(spki_der.as_bytes()).unwrap();
    let cert =
        s.ca.issue(spki, &[0x42, 0x01], SystemTime::now() - Duration::from_secs(60), Duration::from_secs(86400))
            .unwrap();
    let b = Browser::new(&s);
    let nonce = b.nonce("login").await;
    let mut message = <sha2::Sha256 as sha2::Digest>::digest(s.base.as_bytes()).to_vec();
    message.extend_from_slice(&<sha2::Sha256 as sha2::Digest>::digest(nonce.as_bytes()));
    let sig: p256::ecdsa::Signature = key.sign(&message);
    let token = AuthToken {
        format: AUTH_TOKEN_FORMAT.into(),
        algorithm: TokenAlgorithm::ES256,
        certificate: B64.encode(&cert),
        signature: B64.encode(sig.to_bytes()),
    };
    let (st, v) = b.post("/v1/auth/card", json!({"nonce": nonce, "token": token})).await;
    assert_eq!(st, 200, "{v}");
    assert!(v["registration"].is_object());
}

pub(crate) async fn registered(b: &Browser, card: &mut VirtualCard) -> (String, i64) {
    b.card_login(card).await;
    let (_, v) = b.post("/v1/registration/candidates", json!({"action": "generate"})).await;
    let id = v["candidate"].as_str().unwrap().to_owned();
    let (st, v) = b.post("/v1/mykey-ids", registration_form(&id)).await;
    assert_eq!(st, 201, "{v}");
    (id, v["resident"].as_i64().unwrap())
}

#[tokio::test]
async fn password_guessing_is_rate_limited_per_mykey_id() {
    let s = server(Options::default()).await;
    let b = Browser::new(&s);
    let mut card = card(&s);
    let (id, _) = registered(&b, &mut card).await;
    let g = Browser::new(&s);
    for _ in 0..mykey_server::services::identity::FAILED_LOGINS_PER_ID {
        let (st, v) = g.post("/v1/auth/password", json!({"mykey_id": id, "password": "guess123"})).await;
        assert_eq!((st, v["type"].as_str().unwrap()), (401, "urn:mykey:problem:login-failed"));
    }
    // Blocked: even the right password is not checked now.
    let (st, v) = g.post("/v1/auth/password", json!({"mykey_id": id, "password": "abc123!x"})).await;
    assert_eq!((st, v["type"].as_str().unwrap()), (429, "urn:mykey:problem:rate-limited"));
    // The card still works.
    let (st, v) = Browser::new(&s).card_login(&mut card).await;
    assert_eq!((st, v["mykey_id"].as_str().unwrap()), (200, id.as_str()));
}

#[tokio::test]
async fn settings_password_id_change_rebinding_and_revocation() {
    let s = server(Options::default()).await;
    let b = Browser::new(&s);
    let mut card_v1 = card(&s);
    let (old_id, resident) = registered(&b, &mut card_v1).await;

    let (st, v) = b
        .put("/v1/me/settings", json!({"password": "abc123!x", "email": null, "notices": {"points_granted": false, "points_expired": false, "settings_changed": false, "mykey_id_changed": false}}))
        .await;
    assert_eq!((st, v["email"].clone()), (200, Value::Null), "{v}");

    // Another session ends when the password changes.
    let other = Browser::new(&s);
    other.post("/v1/auth/password", json!({"mykey_id": old_id, "password": "abc123!x"})).await;
    let (st, v) = b
        .post(
            "/v1/me/password",
            json!({"current_password": "wrong!!1", "password": "new-pass1", "password_confirmation": "new-pass1"}),
        )
        .await;
    assert_eq!((st, v["type"].as_str().unwrap()), (401, "urn:mykey:problem:login-failed"));
    let (st, v) = b
        .post(
            "/v1/me/password",
            json!({"current_password": "abc123!x", "password": "new-pass1", "password_confirmation": "new-pass1"}),
        )
        .await;
    assert_eq!(st, 204, "{v}");
    assert_eq!(other.get("/v1/me").await.0, 401);
    assert_eq!(b.get("/v1/me").await.0, 200);

    // Change the ID: candidate first, then the change; the old ID never comes back.
    let (st, v) = b.post("/v1/me/candidates", json!({"action": "check", "candidate": "NEWID234"})).await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = b.post("/v1/me/mykey-id", json!({"candidate": "NEWID234", "password": "new-pass1"})).await;
    assert_eq!((st, v["mykey_id"].as_str().unwrap()), (200, "NEWID234"), "{v}");
    let (st, _) = other.post("/v1/auth/password", json!({"mykey_id": old_id, "password": "new-pass1"})).await;
    assert_eq!(st, 401);
    let (st, v) = other.post("/v1/auth/password", json!({"mykey_id": "NEWID234", "password": "new-pass1"})).await;
    assert_eq!((st, v["resident"].as_i64().unwrap()), (200, resident));

    // A renewed card: log in with the password, read the new card; the old card no longer
    // finds the ID, the new one does.
    let mut card_v2 = card(&s);
    let mut body = other.signed_for(&mut card_v2, &s.base, "rebind").await;
    // Not without the password: a session left open cannot hand the ID to another card.
    body["password"] = json!("wrong-pass1");
    let (st, v) = other.post("/v1/me/card", body.clone()).await;
    assert_eq!((st, v["type"].as_str().unwrap()), (401, "urn:mykey:problem:login-failed"), "{v}");
    body["password"] = json!("new-pass1");
    let (st, v) = other.post("/v1/me/card", body).await;
    assert_eq!(st, 200, "{v}");
    let (_, v) = Browser::new(&s).card_login(&mut card_v2).await;
    assert_eq!(v["mykey_id"], "NEWID234");
    let (_, v) = Browser::new(&s).card_login(&mut card_v1).await;
    assert_eq!(v["mykey_id"], Value::Null);

    // Writes with the session from another site are refused.
    let (st, _) = b
        .send(
            b.http
                .post(format!("{}/v1/me/revoke", s.base))
                .header("Origin", "https://evil.example")
                .json(&json!({"password": "new-pass1"})),
        )
        .await;
    assert_eq!(st, 403);

    let (st, _) = b.post("/v1/me/revoke", json!({"password": "new-pass1"})).await;
    assert_eq!(st, 204);
    assert_eq!(other.get("/v1/me").await.0, 401);
    let (st, _) = other.post("/v1/auth/password", json!({"mykey_id": "NEWID234", "password": "new-pass1"})).await;
    assert_eq!(st, 401);
    // The card may register a new MyKey ID; a revoked ID is never issued again.
    let n = Browser::new(&s);
    let (_, v) = n.card_login(&mut card_v2).await;
    assert_eq!(v["mykey_id"], Value::Null);
    let (st, v) = n.post("/v1/registration/candidates", json!({"action": "check", "candidate": "NEWID234"})).await;
    assert_eq!((st, v["type"].as_str().unwrap()), (409, "urn:mykey:problem:mykey-id-taken"));
}

pub(crate) async fn wait_for_mail(mail: &Smtp, n: usize) -> Vec<(String, String, String)> {
    for _ in 0..100 {
        let got = mail.arrived();
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{n} mails did not arrive: {:?}", mail.arrived());
}

/// The notices a resident chose arrive by e-mail through a real SMTP server, in Japanese; the
/// ones not chosen do not.
#[tokio::test]
async fn chosen_notices_arrive_by_e_mail() {
    let mail = Smtp::start().unwrap();
    let s = server(Options { smtp: Some(mail.url()), ..Options::default() }).await;
    let b = Browser::new(&s);
    let mut card = card(&s);
    let (id, resident) = registered(&b, &mut card).await;
    let got = wait_for_mail(&mail, 1).await;
    assert_eq!(got[0].0, "hanako@example.jp");
    assert!(got[0].1.contains("マイキーIDのお知らせ"), "{got:?}");
    assert!(got[0].2.contains(&format!("マイキーID {id} 様")) && got[0].2.contains("登録されました"), "{got:?}");

    // Points granted (chosen): the ledger's notice becomes mail.
    let store = mykey_server::store::Store::connect(&s._db.url).await.unwrap();
    let key = mykey_server::auth::create_key(&store, mykey_server::auth::Role::Municipality, 1, "t").await.unwrap();
    let grant = json!({"id": uuid::Uuid::new_v4(), "resident": resident, "municipality": 1, "amount": 300});
    let res = reqwest::Client::new()
        .post(format!("{}/v1/grants", s.base))
        .bearer_auth(key)
        .json(&grant)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let got = wait_for_mail(&mail, 2).await;
    assert!(
        got.iter()
            .any(|m| m.1.contains("ポイントが付与されました") && m.2.contains("前橋市の自治体ポイント 300ポイント")),
        "{got:?}"
    );

    // A password change is not mailed (settings_changed was not chosen) ...
    let (st, _) = b
        .post(
            "/v1/me/password",
            json!({"current_password": "abc123!x", "password": "new-pass1", "password_confirmation": "new-pass1"}),
        )
        .await;
    assert_eq!(st, 204);
    // ... choosing it is (to the new settings).
    let notices =
        json!({"points_granted": true, "points_expired": true, "settings_changed": true, "mykey_id_changed": true});
    let (st, v) = b
        .put(
            "/v1/me/settings",
            json!({"password": "new-pass1", "email": "taro@example.jp", "email_confirmation": "taro@example.jp", "notices": notices}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    // The new address hears of the change (chosen), the address left behind too (always).
    let got = wait_for_mail(&mail, 4).await;
    assert_eq!(got.len(), 4, "no mail for the password change: {got:?}");
    assert!(got.iter().any(|m| m.0 == "taro@example.jp" && m.1.contains("設定が変更されました")), "{got:?}");
    assert!(got.iter().any(|m| m.0 == "hanako@example.jp" && m.2.contains("今後お知らせが届きません")), "{got:?}");

    // Points expiring within 30 days are announced once (expiry notices are chosen now).
    let soon = (chrono::Utc::now() + chrono::Duration::days(10)).to_rfc3339();
    let grant =
        json!({"id": uuid::Uuid::new_v4(), "resident": resident, "municipality": 1, "amount": 50, "expires_at": soon});
    let key = mykey_server::auth::create_key(&store, mykey_server::auth::Role::Municipality, 1, "t").await.unwrap();
    let res = reqwest::Client::new().post(format!("{}/v1/grants", s.base)).bearer_auth(key).json(&grant).send().await;
    assert_eq!(res.unwrap().status(), 201);
    let got = wait_for_mail(&mail, 6).await;
    let warnings: Vec<_> = got.iter().filter(|m| m.1.contains("まもなく有効期限")).collect();
    assert_eq!(warnings.len(), 1, "{got:?}");
    assert!(warnings[0].2.contains("群馬県前橋市の自治体ポイント 50ポイント"), "{got:?}");
    assert!(!warnings[0].2.contains("300ポイント"), "points far from expiry are not announced: {got:?}");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(mail.arrived().len(), 6, "announced once, not every round");
}

/// ID linkage: a resident links a partner's service ID (proven by the partner's link
/// session); the partner's conversions for it arrive as reserved points, once per reference;
/// unlinked or unknown IDs are refused.
#[tokio::test]
async fn a_linked_service_id_receives_the_partners_conversions() {
    let s = server(Options::default()).await;
    let b = Browser::new(&s);
    let mut card1 = card(&s);
    let (mykey_id, resident) = registered(&b, &mut card1).await;
    let airline = crate::checkout::Store::with_key(&s, &s.partner_key);
    let link =
        crate::partners::proven_link(&airline, &b, &mykey_id, json!({"partner": s.partner}), "JAL-1234567").await;
    let (st, v) = b.get("/v1/me/service-links").await;
    assert_eq!((st, v.as_array().unwrap().len()), (200, 1));

    let partner = reqwest::Client::new();
    let convert = |reference: &str, service_id: &str, miles: &str| {
        partner
            .post(format!("{}/v1/partners/{}/linked-conversions", s.base, s.partner))
            .bearer_auth(&s.partner_key)
            .json(&json!({"reference": reference, "service_id": service_id, "partner_points": miles, "rate": "1"}))
    };
    // Nobody can take the id a reference maps to before the partner sends it (the resident's
    // session writes to the ledger too): the ids the server derives are of a UUID version no
    // client may send.
    let taken = mykey_server::engine::derived_id(&[format!("linked:{}", s.partner).as_bytes(), b"jal-0001"]);
    let (st, v) =
        b.post("/v1/assignments", json!({"id": taken, "resident": resident, "municipality": 1, "amount": 1})).await;
    assert_eq!((st, v["field"].as_str()), (400, Some("id")), "{v}");
    let res = convert("jal-0001", "JAL-1234567", "800").send().await.unwrap();
    assert_eq!(res.status(), 201);
    let receipt: Value = res.json().await.unwrap();
    // The same reference replays; another body under it is a conflict.
    let again: Value = convert("jal-0001", "JAL-1234567", "800").send().await.unwrap().json().await.unwrap();
    assert_eq!(again["seq"], receipt["seq"]);
    assert_eq!(convert("jal-0001", "JAL-1234567", "900").send().await.unwrap().status(), 409);
    let (_, balances) = b.get(&format!("/v1/residents/{resident}/balances")).await;
    let reserved = balances["accounts"].as_array().unwrap().iter().find(|a| a["kind"] == "reserved").unwrap().clone();
    assert_eq!(reserved["balance"], 800, "{balances}");

    // Unknown and unlinked service IDs are refused.
    let res = convert("jal-0002", "JAL-0000000", "100").send().await.unwrap();
    assert_eq!(res.status(), 422);
    let (st, _) = b.post(&format!("/v1/me/service-links/{link}/revoke"), json!({"password": "abc123!x"})).await;
    assert_eq!(st, 204);
    let res = convert("jal-0003", "JAL-1234567", "100").send().await.unwrap();
    assert_eq!(res.status(), 422);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["type"], "urn:mykey:problem:service-id-not-linked");
    // A conversion answered before the unlink still replays; another body is still a conflict.
    let replayed: Value = convert("jal-0001", "JAL-1234567", "800").send().await.unwrap().json().await.unwrap();
    assert_eq!(replayed, receipt);
    assert_eq!(convert("jal-0001", "JAL-1234567", "900").send().await.unwrap().status(), 409);
    let (_, h) = b.get("/v1/me/history").await;
    let kinds: Vec<&str> = h.as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"service_linked") && kinds.contains(&"service_unlinked"), "{kinds:?}");
}

/// A challenge of the library's enrolled terminal for `purpose`, signed by `card` for
/// `origin` (the counter's context): the body's `nonce` and `token`.
async fn facility_signed(s: &Server, terminal: &Browser, card: &mut VirtualCard, origin: &str, purpose: &str) -> Value {
    let url = format!("{}/v1/facilities/{}/challenges", s.base, s.library);
    let req = s.terminal.request(&terminal.http, reqwest::Method::POST, &url, Some(&json!({"purpose": purpose})));
    let (st, v) = terminal.send(req).await;
    assert_eq!(st, 200, "{v}");
    let nonce = v["nonce"].as_str().unwrap().to_owned();
    assert!(nonce.starts_with(&format!("{purpose}:facility,shop={}:", s.library)), "{nonce}");
    let cert = jpki::read_auth_certificate(card).await.unwrap();
    let sig = jpki::authenticate(card, origin, &nonce, &Pin::parse("1234").unwrap()).await.unwrap();
    json!({"nonce": nonce, "token": AuthToken::rs256(&cert, &sig)})
}

/// One card: a library registers its card service; at its counter terminal a resident's card
/// (with PIN) links their MyKey ID to the library's patron number; afterwards a card read
/// there returns that number and nothing else; the resident can cut the link; every step is a
/// usage event.
#[tokio::test]
async fn a_facility_finds_its_patron_number_from_the_card_and_nothing_else() {
    let s = server(Options::default()).await;
    let b = Browser::new(&s);
    let mut card1 = card(&s);
    registered(&b, &mut card1).await;
    // The counter terminal is a browser too (its nonces are bound to its cookie), with the
    // terminal's key.
    let terminal = Browser::new(&s);
    // The card signs in the counter's context: this facility and its enrolled terminal.
    let counter =
        mykey_core::identity::SigningContext::Counter { shop: s.library, device: s.terminal.id }.signed_origin(&s.base);
    let at_counter = |path: &str, body: Value| {
        let url = format!("{}/v1/facilities/{}/{path}", s.base, s.library);
        s.terminal.request(&terminal.http, reqwest::Method::POST, &url, Some(&body))
    };
    let with_key = |path: &str, key: &str, body: Value| {
        terminal.http.post(format!("{}/v1/facilities/{}/{path}", s.base, s.library)).bearer_auth(key).json(&body)
    };
    let with_number = |mut body: Value, number: &str| {
        body["patron_number"] = json!(number);
        body
    };

    // No service registered yet.
    let body = with_number(facility_signed(&s, &terminal, &mut card1, &counter, "patron_link").await, "L-0001");
    let (st, v) = terminal.send(at_counter("patrons", body)).await;
    assert_eq!(
        (st, v["type"].as_str().unwrap(), v["reason"].as_str()),
        (404, "urn:mykey:problem:not-found", Some("no-service")),
        "{v}"
    );
    let service = |key: &str, kind: &str| {
        terminal
            .http
            .put(format!("{}/v1/facilities/{}/service", s.base, s.library))
            .bearer_auth(key)
            .json(&json!({"name": "前橋市立図書館 利用者カード", "kind": kind}))
    };
    let (st, v) = terminal.send(service(&s.library_key, "casino")).await;
    assert_eq!((st, v["field"].as_str()), (400, Some("kind")), "{v}");
    let url = format!("{}/v1/facilities/{}/service", s.base, s.library);
    let by_terminal = json!({"name": "前橋市立図書館 利用者カード", "kind": "library"});
    let by_terminal = s.terminal.request(&terminal.http, reqwest::Method::PUT, &url, Some(&by_terminal));
    assert_eq!(terminal.send(by_terminal).await.0, 403, "a terminal does not register");
    let (st, v) = terminal.send(service(&s.library_key, "library")).await;
    assert_eq!((st, v["facility"].as_i64()), (200, Some(s.library)), "{v}");

    // Linking: the card signs at the counter; staff type the number.
    let body = with_number(facility_signed(&s, &terminal, &mut card1, &counter, "patron_link").await, "L-0001");
    let (st, link) = terminal.send(at_counter("patrons", body.clone())).await;
    assert_eq!(st, 201, "{link}");
    assert_eq!(link["service"], "前橋市立図書館 利用者カード");
    let (st, v) = terminal.send(at_counter("patrons", body)).await;
    assert_eq!((st, v["type"].as_str().unwrap()), (401, "urn:mykey:problem:nonce-invalid"), "a nonce is single use");
    let body = with_number(facility_signed(&s, &terminal, &mut card1, &counter, "patron_link").await, "L-0001");
    let (st, again) = terminal.send(at_counter("patrons", body)).await;
    assert_eq!((st, &again["id"]), (201, &link["id"]), "linking the same number again changes nothing");

    // A card read: the number, nothing else.
    let body = facility_signed(&s, &terminal, &mut card1, &counter, "patron_lookup").await;
    let (st, v) = terminal.send(at_counter("lookups", body)).await;
    assert_eq!((st, &v), (200, &json!({"patron_number": "L-0001"})));
    // Only the facility's terminal may read; the store's key is not a terminal.
    let body = facility_signed(&s, &terminal, &mut card1, &counter, "patron_lookup").await;
    assert_eq!(terminal.send(with_key("lookups", &s.library_key, body)).await.0, 401, "only a device");

    // Another resident: not linked here; cannot take the same number.
    let other = Browser::new(&s);
    let mut card2 = card(&s);
    registered(&other, &mut card2).await;
    let body = facility_signed(&s, &terminal, &mut card2, &counter, "patron_lookup").await;
    let (st, v) = terminal.send(at_counter("lookups", body)).await;
    assert_eq!((st, v["reason"].as_str()), (404, Some("not-linked")), "{v}");
    let body = with_number(facility_signed(&s, &terminal, &mut card2, &counter, "patron_link").await, "L-0001");
    let (st, v) = terminal.send(at_counter("patrons", body)).await;
    assert_eq!((st, v["type"].as_str().unwrap()), (409, "urn:mykey:problem:service-id-taken"), "{v}");
    // A card without a MyKey ID.
    let mut card3 = card(&s);
    let body = facility_signed(&s, &terminal, &mut card3, &counter, "patron_lookup").await;
    let (st, v) = terminal.send(at_counter("lookups", body)).await;
    assert_eq!((st, v["reason"].as_str()), (404, Some("no-mykey-id")), "{v}");

    // The resident sees the link and cuts it; the card no longer finds the number.
    let (st, v) = b.get("/v1/me/patron-links").await;
    assert_eq!((st, v.as_array().unwrap().len()), (200, 1), "{v}");
    let (st, _) = b.post(&format!("/v1/me/patron-links/{}/revoke", link["id"].as_str().unwrap()), json!({})).await;
    assert_eq!(st, 204);
    let body = facility_signed(&s, &terminal, &mut card1, &counter, "patron_lookup").await;
    assert_eq!(terminal.send(at_counter("lookups", body)).await.0, 404);
    let (_, h) = b.get("/v1/me/history").await;
    let kinds: Vec<&str> = h.as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    for k in ["facility_linked", "facility_lookup", "facility_unlinked"] {
        assert!(kinds.contains(&k), "{k} in {kinds:?}");
    }
}

#[tokio::test]
async fn ended_sessions_and_old_drafts_are_removed() {
    use mykey_server::services::identity::{CleanedUp, DRAFT_LIFE, SESSION_LIFE};
    let s = server(Options::default()).await;
    let b = Browser::new(&s);
    let mut c = card(&s);
    registered(&b, &mut c).await;
    let pool = sqlx::AnyPool::connect(&s._db.url).await.unwrap();
    // A dialogue left unfinished long ago, and one just begun.
    let now = mykey_server::time::now();
    let old = now - i64::try_from(DRAFT_LIFE.as_micros()).unwrap() - 1;
    let draft = mykey_server::store::identity::Draft::default();
    mykey_server::store::identity::save_draft(&pool, "issuer", "old", &draft, old).await.unwrap();
    mykey_server::store::identity::save_draft(&pool, "issuer", "new", &draft, now).await.unwrap();

    // Nothing has ended yet: the live session stays.
    assert_eq!(s.identity.clean_up(now).await.unwrap(), CleanedUp { sessions: 0, drafts: 1 });
    assert_eq!(b.get("/v1/me").await.0, 200);
    // The server's sessions last an hour here (`with_lives`), shorter than SESSION_LIFE.
    let later = now + i64::try_from(SESSION_LIFE.as_micros()).unwrap() + 1;
    assert_eq!(s.identity.clean_up(later).await.unwrap(), CleanedUp { sessions: 1, drafts: 0 });
    assert_eq!(b.get("/v1/me").await.0, 401, "the removed session no longer logs in");
    let left: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM mykey_id_drafts").fetch_one(&pool).await.unwrap();
    assert_eq!(left.0, 1, "the new draft stays");
}

/// A page elsewhere cannot use a resident's session: a cookie write must name this site's
/// origin, or be marked same-origin by the browser; before, a write without `Origin` passed.
#[tokio::test]
async fn session_writes_must_come_from_this_site() {
    let s = server(Options::default()).await;
    let b = Browser::new(&s);
    let mut c = card(&s);
    registered(&b, &mut c).await;
    let body = json!({"password": "abc123!x", "email": null, "notices": {"points_granted": false, "points_expired": false, "settings_changed": false, "mykey_id_changed": false}});
    let put = || b.http.put(format!("{}/v1/me/settings", s.base)).json(&body);
    let status = |r: reqwest::Response| r.status().as_u16();
    assert_eq!(status(put().send().await.unwrap()), 403, "no Origin");
    assert_eq!(status(put().header("origin", "https://evil.example").send().await.unwrap()), 403, "another origin");
    assert_eq!(status(put().header("sec-fetch-site", "cross-site").send().await.unwrap()), 403, "cross-site");
    assert_eq!(status(put().header("sec-fetch-site", "same-origin").send().await.unwrap()), 200, "the site's own");
    assert_eq!(status(put().header("origin", &s.base).send().await.unwrap()), 200, "the site's origin");
    // Reads need no Origin.
    assert_eq!(status(b.http.get(format!("{}/v1/me", s.base)).send().await.unwrap()), 200);
}

/// Nobody can fill the table of pending login challenges: a browser gets
/// `NONCES_PER_BROWSER_PER_MINUTE` a minute, an address `NONCES_PER_MINUTE`.
#[tokio::test]
async fn login_challenges_are_rate_limited_per_browser_and_per_address() {
    use mykey_server::services::identity::{NONCES_PER_BROWSER_PER_MINUTE, NONCES_PER_MINUTE};
    let s = server(Options::default()).await;
    let ask = |b: &Browser| {
        b.http
            .post(format!("{}/v1/auth/nonce", s.base))
            .header("origin", &s.base)
            .json(&json!({"purpose": "login"}))
            .send()
    };
    let b = Browser::new(&s);
    for _ in 0..NONCES_PER_BROWSER_PER_MINUTE {
        assert_eq!(ask(&b).await.unwrap().status(), 200);
    }
    let res = ask(&b).await.unwrap();
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    // New browsers (new challenge cookies) from the same address, up to the address's limit.
    let mut granted = NONCES_PER_BROWSER_PER_MINUTE;
    let mut refused = false;
    for _ in 0..NONCES_PER_MINUTE {
        let fresh = Browser::new(&s);
        match ask(&fresh).await.unwrap().status().as_u16() {
            200 => granted += 1,
            429 => {
                refused = true;
                break;
            }
            other => panic!("{other}"),
        }
    }
    assert!(refused, "the address was limited");
    assert_eq!(granted, NONCES_PER_MINUTE, "the address's limit counts every browser");
}

/// Concurrent guesses cannot all pass the limit before a failure is counted: each guess is
/// counted before its password is checked (before, all of a burst were checked).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_concurrent_guesses_gets_no_more_tries_than_the_limit() {
    use mykey_server::services::identity::FAILED_LOGINS_PER_ID;
    let s = server(Options::default()).await;
    let b = Browser::new(&s);
    let mut c = card(&s);
    let (id, _) = registered(&b, &mut c).await;
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..FAILED_LOGINS_PER_ID * 3 {
        let (http, base, id) = (reqwest::Client::new(), s.base.clone(), id.clone());
        burst.spawn(async move {
            let res = http
                .post(format!("{base}/v1/auth/password"))
                .header("origin", &base)
                .json(&json!({"mykey_id": id, "password": "guess123"}))
                .send()
                .await
                .unwrap();
            res.status().as_u16()
        });
    }
    let statuses: Vec<u16> = burst.join_all().await;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    assert_eq!(checked, FAILED_LOGINS_PER_ID, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 401 || *s == 429), "{statuses:?}");
}

/// Notices cannot be redirected from a session left open: the password is asked for, and the
/// address being left is told (before, neither).
#[tokio::test]
async fn changing_the_address_asks_for_the_password_and_tells_the_old_address() {
    let mail = Smtp::start().unwrap();
    let s = server(Options { smtp: Some(mail.url()), ..Options::default() }).await;
    let b = Browser::new(&s);
    let mut c = card(&s);
    registered(&b, &mut c).await;
    assert_eq!(wait_for_mail(&mail, 1).await[0].0, "hanako@example.jp");
    let notices =
        json!({"points_granted": true, "points_expired": true, "settings_changed": true, "mykey_id_changed": true});
    let change = |password: &str| json!({"password": password, "email": "jiro@example.jp", "email_confirmation": "jiro@example.jp", "notices": notices});
    let (st, v) = b.put("/v1/me/settings", change("wrong-pass1")).await;
    assert_eq!((st, v["type"].as_str()), (401, Some("urn:mykey:problem:login-failed")), "{v}");
    let (st, v) = b.get("/v1/me").await;
    assert_eq!((st, v["email"].as_str()), (200, Some("hanako@example.jp")), "nothing changed: {v}");
    let (st, v) = b.put("/v1/me/settings", change("abc123!x")).await;
    assert_eq!((st, v["email"].as_str()), (200, Some("jiro@example.jp")), "{v}");
    let got = wait_for_mail(&mail, 3).await;
    assert!(
        got.iter().any(|m| m.0 == "hanako@example.jp" && m.2.contains("今後お知らせが届きません")),
        "the former address is told: {got:?}"
    );
    assert!(got.iter().any(|m| m.0 == "jiro@example.jp" && m.1.contains("設定が変更されました")), "{got:?}");
}

/// The CRL files are read again while the server runs: a card revoked in a newer CRL is refused
/// from then on, and how fresh the CRLs are is known (for the metrics).
#[tokio::test]
async fn crl_files_are_read_again_and_their_age_is_known() {
    use base64::Engine as _;
    let ca = new_ca();
    let dir = std::env::temp_dir().join(format!("mykey-crl-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let pem =
        |label: &str, der: &[u8]| format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", B64.encode(der));
    let (ca_file, crl_file) = (dir.join("ca.pem"), dir.join("crl.pem"));
    std::fs::write(&ca_file, pem("CERTIFICATE", ca.certificate())).unwrap();
    let now = SystemTime::now();
    let hour = Duration::from_secs(3600);
    std::fs::write(&crl_file, pem("X509 CRL", &ca.crl(1, &[], now - hour, now + hour).unwrap())).unwrap();
    let origin = "https://mykey.example";
    let trust =
        CardTrust::from_files(&[ca_file], std::slice::from_ref(&crl_file), UnknownRevocation::Deny, origin).unwrap();
    let mut c = VirtualCard::issue(&ca, &mut rand::rngs::OsRng, "1234", now - Duration::from_secs(60)).unwrap();
    let cert = jpki::read_auth_certificate(&mut c).await.unwrap();
    let sig = jpki::authenticate(&mut c, origin, "n-1", &Pin::parse("1234").unwrap()).await.unwrap();
    let token = AuthToken::rs256(&cert, &sig);
    trust.verify(&token, "n-1", &mykey_core::identity::SigningContext::Web, SystemTime::now()).unwrap();
    // Remembered as verified, the certificate still needs its signature over this challenge,
    // and stays bound to its validity.
    assert_eq!(
        trust
            .verify(&token, "n-2", &mykey_core::identity::SigningContext::Web, SystemTime::now())
            .unwrap_err()
            .extensions["reason"],
        "bad-signature"
    );
    let decades = SystemTime::now() + Duration::from_secs(40 * 365 * 86_400);
    assert_eq!(
        trust.verify(&token, "n-1", &mykey_core::identity::SigningContext::Web, decades).unwrap_err().extensions
            ["reason"],
        "expired"
    );
    trust.verify(&token, "n-1", &mykey_core::identity::SigningContext::Web, SystemTime::now()).unwrap();
    let fresh = trust.crl_freshness(SystemTime::now());
    assert_eq!(fresh.count, 1);
    assert!((3590..=3610).contains(&fresh.age_seconds.unwrap()), "{fresh:?}");
    assert!((3590..=3610).contains(&fresh.stale_in_seconds.unwrap()), "{fresh:?}");

    // A newer CRL revokes the card: refused once the file was read again.
    std::fs::write(&crl_file, pem("X509 CRL", &ca.crl(2, &[serial_of(&c)], now, now + hour).unwrap())).unwrap();
    trust.verify(&token, "n-1", &mykey_core::identity::SigningContext::Web, SystemTime::now()).unwrap();
    let fresh = trust.reload_crls().unwrap();
    assert!(fresh.age_seconds.unwrap() < 60, "{fresh:?}");
    let e = trust.verify(&token, "n-1", &mykey_core::identity::SigningContext::Web, SystemTime::now()).unwrap_err();
    assert_eq!(e.extensions["reason"], "revoked");

    // A broken file leaves the CRLs in use; a stale one shows as negative time left.
    std::fs::write(&crl_file, "not a CRL").unwrap();
    assert!(trust.reload_crls().is_err());
    assert_eq!(
        trust
            .verify(&token, "n-1", &mykey_core::identity::SigningContext::Web, SystemTime::now())
            .unwrap_err()
            .extensions["reason"],
        "revoked"
    );
    std::fs::write(&crl_file, pem("X509 CRL", &ca.crl(3, &[], now - 2 * hour, now - hour).unwrap())).unwrap();
    assert!(trust.reload_crls().unwrap().stale_in_seconds.unwrap() < 0);
    let e = trust.verify(&token, "n-1", &mykey_core::identity::SigningContext::Web, SystemTime::now()).unwrap_err();
    assert_eq!(e.extensions["reason"], "revocation-unknown", "a stale CRL under the deny policy");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A card revoked after its MyKey ID was made: card login is refused; password login still
/// works (a renewal must not lock the resident away from their points) and the profile says the
/// card is revoked, so my page asks for the renewed card.
#[tokio::test]
async fn password_login_tells_of_a_revoked_card() {
    use base64::Engine as _;
    let ca = new_ca();
    let dir = std::env::temp_dir().join(format!("mykey-revoked-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let pem =
        |label: &str, der: &[u8]| format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", B64.encode(der));
    let (ca_file, crl_file) = (dir.join("ca.pem"), dir.join("crl.pem"));
    let now = SystemTime::now();
    let hour = Duration::from_secs(3600);
    std::fs::write(&ca_file, pem("CERTIFICATE", ca.certificate())).unwrap();
    std::fs::write(&crl_file, pem("X509 CRL", &ca.crl(1, &[], now - hour, now + hour).unwrap())).unwrap();
    let s =
        server(Options { ca: Some(ca), trust_files: Some((ca_file, crl_file.clone())), ..Default::default() }).await;
    let b = Browser::new(&s);
    let mut c = card(&s);
    let (id, _) = registered(&b, &mut c).await;
    let (_, me) = b.get("/v1/me").await;
    assert_eq!(me["card_state"], "valid", "{me}");

    std::fs::write(&crl_file, pem("X509 CRL", &s.ca.crl(2, &[serial_of(&c)], now, now + hour).unwrap())).unwrap();
    s.identity.reload_crls().unwrap();
    let (st, v) = Browser::new(&s).card_login(&mut c).await;
    assert_eq!((st, reason(&v)), (401, "revoked"));
    let other = Browser::new(&s);
    let (st, v) = other.post("/v1/auth/password", json!({"mykey_id": id, "password": "abc123!x"})).await;
    assert_eq!((st, v["card_state"].as_str()), (200, Some("revoked")), "{v}");
    let _ = std::fs::remove_dir_all(&dir);
}
