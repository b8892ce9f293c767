//! `bridge-bench`: time from `authenticate(nonce, pin)` in a page to the token, over the
//! native-messaging path (page, extension, `mykey-bridge-host`, pcscd, vpcd, virtual card),
//! minus the virtual card's own RSA signing time, measured separately. Needs what the card
//! tests need (pcscd with vpcd running, Chromium, the npm package built) and release binaries:
//! `cargo build --release --workspace --bins && scripts/build-pkg && scripts/pcscd-start`,
//! then `$CARGO_TARGET_DIR/release/bridge-bench [N]`.

use std::process::Command;
use std::time::{Duration, Instant};

use mykey_core::card::jpki::{self, Pin};
use mykey_tests::webdriver::Browser;
use mykey_tests::{insert_virtual_card, run, server_bin, sibling_bin, temp_dir, test_site, Server};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args().nth(1).map(|a| a.parse()).transpose()?.unwrap_or(30);
    let dir = temp_dir("bridge-bench");
    let (ca, card_file) = (dir.join("ca.json"), dir.join("card.json"));
    run(Command::new(server_bin()).arg("virtual-card").arg("--demo-ca-file").arg(&ca).arg("--out").arg(&card_file))?;

    // The card's own signing time, in this process, same key.
    let mut card = mykey_virtual_card::VirtualCard::from_file(&serde_json::from_slice(&std::fs::read(&card_file)?)?)?;
    let pin = Pin::parse("1234").map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut rsa = Vec::new();
    for i in 0..n {
        let started = Instant::now();
        pollster::block_on(jpki::authenticate(&mut card, "https://x", &format!("n{i}"), &pin))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        rsa.push(started.elapsed().as_secs_f64() * 1000.0);
        card.reset();
    }
    rsa.sort_by(f64::total_cmp);

    let _card = insert_virtual_card(&card_file)?;
    let web = test_site(&dir);
    let db_url = format!("sqlite:{}", dir.join("bench.db").display());
    let server = Server::demo_with(&db_url, &dir, &ca, &web)?;
    let profile = dir.join("profile");
    run(Command::new(sibling_bin("mykey-bridge-host"))
        .args(["install", "--extension-id", "poidifdoelgogolidnenodicnjkfhicm", "--manifest-dir"])
        .arg(profile.join("NativeMessagingHosts")))?;
    let extension = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk-wasm/extension").canonicalize()?;
    let browser = Browser::start(&[
        format!("--user-data-dir={}", profile.display()),
        format!("--load-extension={}", extension.display()),
        format!("--disable-extensions-except={}", extension.display()),
    ])?;
    browser.goto(&format!("{}/app/bridge-bench.html?n={n}", server.base))?;
    let result = browser.wait_for(
        "const t = document.getElementById('result').textContent; return t ? t : null;",
        Duration::from_secs(600),
    )?;
    let out: serde_json::Value = serde_json::from_str(result.as_str().unwrap_or("{}"))?;
    anyhow::ensure!(out.get("error").is_none(), "the page failed: {out}");
    let mut ms: Vec<f64> = out["ms"].as_array().into_iter().flatten().filter_map(|v| v.as_f64()).collect();
    ms.sort_by(f64::total_cmp);
    let card_rsa = percentile(&rsa, 0.5);
    println!("authenticate -> token over native messaging, {n} runs:");
    println!("  whole path: p50 {:.1} ms, p95 {:.1} ms", percentile(&ms, 0.5), percentile(&ms, 0.95));
    println!("  virtual card's RSA signing alone: p50 {card_rsa:.1} ms");
    println!(
        "  path without the card's RSA: p50 {:.1} ms, p95 {:.1} ms",
        percentile(&ms, 0.5) - card_rsa,
        percentile(&ms, 0.95) - card_rsa
    );
    drop(browser);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
