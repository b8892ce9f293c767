//! Outbound HTTPS (issue 23): webhooks, witnesses and mirrors reached over TLS with a CA of
//! the tests' own, trusted as `--extra-ca-file` trusts one; a receiver whose certificate no
//! trusted CA signed is told as a TLS failure; in production, loopback and private targets are
//! refused at registration.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use mykey_core::note::{Note, SignerKey, VerifierKey};
use mykey_server::engine::LogConfig;
use mykey_server::integrity::witness::Witness;
use mykey_server::log::witness::WitnessClient;
use mykey_server::log::LogSigner;
use mykey_server::testing::TestDb;
use mykey_server::LedgerService;
use serde_json::json;

use crate::checkout::{events_when, resident_with, Receiver, Store};
use crate::identity::{server, Options};

/// A CA and a certificate it signed for `localhost`.
struct TestPki {
    ca_pem: String,
    leaf_der: Vec<u8>,
    key_der: Vec<u8>,
}

impl TestPki {
    fn new(name: &str) -> TestPki {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name.push(rcgen::DnType::CommonName, name);
        ca.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key).unwrap();
        TestPki { ca_pem: ca_cert.pem(), leaf_der: leaf_cert.der().to_vec(), key_der: leaf_key.serialize_der() }
    }

    /// The CA the server trusts (once per process, as the CLI's `--extra-ca-file` does).
    fn trusted() -> &'static TestPki {
        static PKI: OnceLock<TestPki> = OnceLock::new();
        PKI.get_or_init(|| {
            let pki = TestPki::new("mykey test CA");
            assert_eq!(mykey_server::net::trust_extra_cas(pki.ca_pem.as_bytes()).unwrap(), 1);
            pki
        })
    }

    /// Terminates TLS on a loopback port with the `localhost` certificate and passes each
    /// connection on to `plain` (a server speaking HTTP); returns the port.
    async fn front(&self, plain: std::net::SocketAddr) -> u16 {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(self.leaf_der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone())),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                    let Ok(mut inner) = tokio::net::TcpStream::connect(plain).await else { return };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut inner).await;
                });
            }
        });
        port
    }
}

/// `url`'s host and port (`http://127.0.0.1:PORT/hooks`).
fn addr_of(url: &str) -> std::net::SocketAddr {
    url.trim_start_matches("http://").split('/').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_webhook_reaches_an_https_receiver_and_a_certificate_nobody_trusts_is_reported() {
    let trusted = TestPki::trusted();
    let s = server(Options::default()).await;
    let (b, mykey_id, _) = resident_with(&s, 1000).await;
    let store = Store::with_key(&s, &s.online_store_key);
    let shop = s.online_store;
    let receiver = Receiver::default();
    let plain = addr_of(&receiver.start().await);

    // First at a receiver whose certificate comes from a CA nobody trusts.
    let stranger = TestPki::new("a CA nobody trusts");
    let untrusted = format!("https://localhost:{}/hooks", stranger.front(plain).await);
    let secret = store.set_up(&untrusted).await;
    let (id, cs) = store.open(crate::checkout::order(shop, 600)).await;
    assert_eq!(crate::checkout::pays(&b, &id, &cs, &mykey_id, 600).await.0, 200);
    let listed = events_when(&store, shop, |e| e["attempts"].as_i64() >= Some(1)).await;
    let error = listed[0]["last_error"].as_str().unwrap();
    assert!(error.starts_with("the TLS handshake with the webhook URL's host failed"), "{error}");
    assert!(error.contains("UnknownIssuer"), "{error}");
    assert_eq!(listed[0]["state"], "pending");

    // Then at the one the server trusts: the resent event arrives signed, and is delivered.
    let good = format!("https://localhost:{}/hooks", trusted.front(plain).await);
    let (st, v) = store
        .put(
            &format!("/v1/shops/{shop}/checkout"),
            json!({"origins": [crate::checkout::STORE_ORIGIN], "webhook_url": good}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let event = listed[0]["event"]["id"].as_str().unwrap().to_owned();
    assert_eq!(store.post(&format!("/v1/shops/{shop}/events/{event}/resend"), json!({})).await.0, 204);
    let got = receiver.events(1, &secret).await;
    assert_eq!(got[0]["id"], event.as_str());
    assert_eq!(got[0]["type"], "checkout.session.completed");
    events_when(&store, shop, |e| e["state"] == "delivered").await;
}

#[tokio::test]
async fn in_production_webhooks_to_this_machine_or_private_networks_are_refused() {
    let s = server(Options { production_webhooks: true, ..Options::default() }).await;
    let store = Store::with_key(&s, &s.online_store_key);
    let shop = s.online_store;
    let origin = crate::checkout::STORE_ORIGIN;
    for bad in [
        "http://127.0.0.1:8080/hooks",
        "https://127.0.0.1/hooks",
        "https://localhost/hooks",
        "http://LOCALHOST:9000/hooks",
        "https://[::1]/hooks",
        "https://[::ffff:127.0.0.1]/hooks",
        "https://[::ffff:10.0.0.1]/hooks",
        "https://[::10.0.0.1]/hooks",
        "https://[64:ff9b::a9fe:a9fe]/hooks",
        "https://[64:ff9b:1::a00:1]/hooks",
        "https://[2002:a9fe:a9fe::1]/hooks",
        "https://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/hooks",
        "https://[fec0::1]/hooks",
        "https://169.254.169.254/latest/meta-data",
    ] {
        let (st, v) =
            store.put(&format!("/v1/shops/{shop}/checkout"), json!({"origins": [origin], "webhook_url": bad})).await;
        assert_eq!((st, v["type"].as_str()), (400, Some("urn:mykey:problem:invalid-request")), "{bad}: {v}");
        let detail = v["detail"].as_str().unwrap();
        assert!(detail.contains("may not point"), "{bad}: {detail}");
    }
    // A public name is taken (it is checked again at every connection).
    let (st, v) = store
        .put(
            &format!("/v1/shops/{shop}/checkout"),
            json!({"origins": [origin], "webhook_url": "https://hooks.store.example/mykey"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_witness_reached_over_https_cosigns() {
    let pki = TestPki::trusted();
    let signer = LogSigner::new("mykey.test/log", [5; 32]).unwrap();
    let log_key = VerifierKey::parse(&signer.vkey()).unwrap();
    let wdb = TestDb::new().await.unwrap();
    let w = Arc::new(
        Witness::open(&wdb.url, SignerKey::witness("w.test/tls", [3; 32]).unwrap(), vec![log_key.clone()])
            .await
            .unwrap(),
    );
    let vkey = w.vkey();
    let listener = mykey_server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let plain = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, w.router()).await });
    let port = pki.front(plain).await;
    let client = WitnessClient::parse(&format!("https://localhost:{port}={vkey}")).unwrap();
    let witness_key = client.key.clone();

    let db = TestDb::new().await.unwrap();
    let ledger =
        LedgerService::open_with(&db.url, LogConfig { signer, witnesses: vec![client], quorum: 1 }).await.unwrap();
    let e = ledger.engine.clone();
    mykey_server::testing::add_municipality_and_residents(&e, 1).await;
    let grant = mykey_server::engine::Request::Grant(mykey_core::api::GrantRequest {
        id: uuid::Uuid::new_v4(),
        resident: 1,
        municipality: 1,
        event: None,
        amount: 5.into(),
        expires_at: None,
        memo: None,
    });
    assert_eq!(e.execute(grant, "t").await.map(|d| d.status), Ok(201));
    let mut published = None;
    for _ in 0..100 {
        if let Some(p) = e.checkpoint().filter(|p| p.size >= 1) {
            published = Some(p);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let p = published.expect("a checkpoint cosigned over HTTPS");
    assert_eq!(p.cosignatures, 1);
    Note::parse(&p.note).unwrap().verify_witnessed(&log_key, &[witness_key], 1).unwrap();
}

/// A mirror copies and verifies the log from a points cloud reached over HTTPS (the outbound
/// client webhooks and witnesses use, trusting the tests' CA as `--extra-ca-file` would); from
/// a cloud whose certificate nobody trusts it copies nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_copies_the_log_over_https() {
    use mykey_server::integrity::mirror::{Mirror, Source};
    let trusted = TestPki::trusted();
    let app = crate::common::App::start().await;
    app.grant(app.residents[0], 100_000).await;
    crate::mirror::pay(&app, 20).await;
    crate::mirror::wait_for_size(&app, 21).await;
    let key = crate::mirror::log_key(&app).await;
    let plain = addr_of(&app.base);
    let source = |url: String| Source {
        url,
        token: Some(app.keys.operator.clone()),
        log_key: key.clone(),
        witnesses: vec![],
        quorum: 0,
    };
    let stranger = TestPki::new("a CA nobody trusts");
    let untrusted = format!("https://localhost:{}", stranger.front(plain).await);
    let db = TestDb::new().await.unwrap();
    let mut refused = Mirror::open(&db.url, source(untrusted)).await.unwrap();
    let e = refused.sync().await.unwrap_err();
    assert!(format!("{e:#}").contains("UnknownIssuer"), "{e:#}");
    drop(refused);
    let good = format!("https://localhost:{}", trusted.front(plain).await);
    let mut mirror = Mirror::open(&db.url, source(good)).await.unwrap();
    let synced = mirror.sync().await.unwrap();
    assert!(synced.to >= 21, "{synced:?}");
}
