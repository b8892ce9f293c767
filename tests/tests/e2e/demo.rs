//! The README's demo: `mykey-server demo` loads the demo data compiled into it and serves it.

use mykey_server::demo::DemoKeys;
use mykey_server::testing::TestDb;
use mykey_tests::Server;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_loads_the_council_partners_shops_and_residents() {
    let db = TestDb::new().await.unwrap();
    let dir = std::env::temp_dir().join(format!("mykey-demo-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let keys_file = dir.join("keys.json");
    let server = Server::demo(&db.url, &dir).unwrap();
    let keys: DemoKeys = serde_json::from_slice(&std::fs::read(&keys_file).unwrap()).unwrap();
    let c = reqwest::Client::new();
    let get = |path: &str, key: &str| {
        let req = c.get(format!("{}{path}", server.base)).bearer_auth(key);
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let municipalities = get("/v1/municipalities", "").await;
    assert_eq!(municipalities.as_array().unwrap().len(), 228);
    let partners = get("/v1/partners", "").await;
    assert_eq!(partners.as_array().unwrap().len(), 12);
    assert_eq!(partners[0]["name_en"], "Japan Airlines (JAL)");
    assert!(!get("/v1/shops", "").await.as_array().unwrap().is_empty());
    let balances = get(&format!("/v1/residents/{}/balances", keys.ids.resident), &keys.resident).await;
    let accounts = balances["accounts"].as_array().unwrap();
    assert!(accounts.iter().any(|a| a["kind"] == "reserved" && a["balance"] == 500), "{balances}");
    assert!(accounts.iter().any(|a| a["kind"] == "municipal" && a["balance"] == 80), "{balances}");

    // The integrator example runs against it as documented.
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/store-payment.sh");
    let out = std::process::Command::new("bash").arg(&script).arg(&server.base).arg(&keys_file).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains(&format!("\"shop\":{}", keys.ids.shop)) && stdout.contains("\"code\":\""),
        "a pairing code: {stdout}"
    );
    assert_eq!(stdout.matches("\"client_secret\":\"").count(), 2, "a session and its replay: {stdout}");
    assert!(stdout.contains("\"publishable_key\":\"pk_"), "{stdout}");
    assert_eq!(
        stdout.matches("urn:mykey:problem:forbidden").count(),
        1,
        "a store's key alone charges nobody: {stdout}"
    );
    assert!(stdout.contains("urn:mykey:problem:signature-invalid"), "nor its key at the counter: {stdout}");
    assert!(stdout.contains("urn:mykey:problem:fractional-points"), "{stdout}");
    let home = c.get(format!("{}/", server.base)).send().await.unwrap().text().await.unwrap();
    assert!(home.contains("/openapi.json"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The binary alone, copied into an empty folder and started with every default, loads its
/// compiled-in data and writes its files beside itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_from_an_empty_folder_with_no_repository_around_it() {
    let dir = mykey_tests::temp_dir("standalone");
    let server = Server::demo_standalone(&dir).unwrap();
    let c = reqwest::Client::new();
    let municipalities: Value =
        c.get(format!("{}/v1/municipalities", server.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(municipalities.as_array().unwrap().len(), 228);
    let search: Value = c.get(format!("{}/v1/search?q=前橋", server.base)).send().await.unwrap().json().await.unwrap();
    assert!(!search["products"].as_array().unwrap().is_empty(), "{search}");
    for file in ["mykey.db", "mykey-demo-keys.json", "mykey-log.key", "mykey-demo-ca.json"] {
        assert!(dir.join(file).exists(), "{file} beside the binary");
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `serve` off loopback needs the site's origin, which cookie writes are checked against; a
/// malformed one is refused at start.
#[test]
fn serve_off_loopback_needs_the_sites_origin() {
    let dir = mykey_tests::temp_dir("serve-origin");
    let serve = |extra: &[&str]| {
        let out = std::process::Command::new(mykey_tests::server_bin())
            .arg("--database-url")
            .arg(format!("sqlite:{}", dir.join("m.db").display()))
            .arg("--log-key-file")
            .arg(dir.join("log.key"))
            .arg("--coupon-key-file")
            .arg(dir.join("coupon.key"))
            .args(["serve", "--bind", "0.0.0.0:0"])
            .args(extra)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert!(serve(&[]).contains("serve needs --origin"));
    assert!(serve(&["--origin", "http://mykey.example"]).contains("must use https"));
    assert!(serve(&["--origin", "https://mykey.example/app"]).contains("is not an origin"));
    let _ = std::fs::remove_dir_all(&dir);
}
