//! `widget-bench`: time from `mountCheckout(...)` on a store's page to the widget's `ready`
//! event, in headless Chromium on loopback: the demo points cloud on 127.0.0.1 serving the
//! widget, the store's page on 127.0.0.2 (another site) importing the loader from it. Each
//! mount is a fresh iframe (the browser's cache warm after the first). Needs release binaries
//! and the web build: `scripts/build-pkg && scripts/build-web && cargo build --release
//! --workspace --bins`, then `$CARGO_TARGET_DIR/release/widget-bench [N]`.

use std::time::Duration;

use mykey_tests::webdriver::Browser;
use mykey_tests::{temp_dir, Server};
use serde_json::{json, Value};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args().nth(1).map(|a| a.parse()).transpose()?.unwrap_or(50);
    let dir = temp_dir("widget-bench");
    let web = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../web-app/dist");
    anyhow::ensure!(
        web.join("sdk/frame.html").exists(),
        "build the web app first: scripts/build-pkg && scripts/build-web"
    );
    let db_url = format!("sqlite:{}", dir.join("bench.db").display());
    let server = Server::demo_with(&db_url, &dir, &dir.join("ca.json"), &web)?;
    let keys: Value = serde_json::from_slice(&std::fs::read(dir.join("keys.json"))?)?;
    let (key, shop) =
        (keys["online_store"].as_str().unwrap_or_default(), keys["ids"]["online_store"].as_i64().unwrap_or(0));

    // The store's page, on another site.
    let listener = std::net::TcpListener::bind("127.0.0.2:0")?;
    let store = format!("http://{}", listener.local_addr()?);
    let http = reqwest::blocking::Client::new();
    let settings: Value = http
        .put(format!("{}/v1/shops/{shop}/checkout", server.base))
        .bearer_auth(key)
        .json(&json!({"origins": [store]}))
        .send()?
        .json()?;
    let pk = settings["publishable_key"].as_str().unwrap_or_default().to_owned();
    let created: Value = http
        .post(format!("{}/v1/checkout/sessions", server.base))
        .bearer_auth(key)
        .json(&json!({"id": uuid::Uuid::new_v4(), "shop": shop, "amount": 1200, "order_reference": "bench"}))
        .send()?
        .json()?;
    let secret = created["client_secret"].as_str().unwrap_or_default().to_owned();
    let page = format!(
        "<!doctype html><html lang=\"en\"><title>bench</title><div id=\"pay\"></div><p id=\"result\"></p><script type=\"module\">\
         const {{ mountCheckout }} = await import('{cloud}/app/sdk/checkout.js');\
         const times = [];\
         for (let i = 0; i < {n}; i++) {{\
           const t = performance.now();\
           await new Promise((ready) => {{ const c = mountCheckout(document.getElementById('pay'), {{ publishableKey: '{pk}', clientSecret: '{secret}', onReady: () => {{ times.push(performance.now() - t); c.unmount(); ready(); }} }}); }});\
         }}\
         document.getElementById('result').textContent = JSON.stringify(times);\
         </script>",
        cloud = server.base
    );
    listener.set_nonblocking(true)?;
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().expect("a runtime");
        rt.block_on(async move {
            let app =
                axum::Router::new().route("/", axum::routing::get(move || async move { axum::response::Html(page) }));
            let l = tokio::net::TcpListener::from_std(listener).expect("a listener");
            axum::serve(l, app).await.expect("serving");
        });
    });
    let browser = Browser::start(&[format!("--user-data-dir={}", dir.join("profile").display())])?;
    browser.goto(&format!("{store}/"))?;
    let times = browser.page_result()?;
    let mut ms: Vec<f64> = times.as_array().into_iter().flatten().filter_map(Value::as_f64).collect();
    anyhow::ensure!(ms.len() == n, "{} of {n} mounts were ready", ms.len());
    let first = ms[0];
    ms.sort_by(f64::total_cmp);
    println!(
        "mount to ready over {n} mounts: first {first:.0} ms, p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        percentile(&ms, 0.5),
        percentile(&ms, 0.99),
        ms[ms.len() - 1]
    );
    std::thread::sleep(Duration::from_millis(100));
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
