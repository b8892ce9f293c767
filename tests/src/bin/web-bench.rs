//! `web-bench`: time until the web app's first page is usable, on loopback in headless
//! Chromium, with a cold browser (a new profile) each run: from navigation start to the
//! app's `mykey-usable` performance mark (the municipality list is rendered). Needs release
//! binaries and the built app: `cargo build --release -p mykey-server -p mykey-tests --bins &&
//! scripts/build-web`, then `$CARGO_TARGET_DIR/release/web-bench [RUNS]`.

use std::time::Duration;

use mykey_tests::webdriver::Browser;
use mykey_tests::{temp_dir, Server};

fn main() -> anyhow::Result<()> {
    let runs: usize = std::env::args().nth(1).map(|a| a.parse()).transpose()?.unwrap_or(10);
    let dir = temp_dir("web-bench");
    let dist = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../web-app/dist").canonicalize()?;
    let db = format!("sqlite:{}", dir.join("bench.db").display());
    let server = Server::demo_with(&db, &dir, &dir.join("ca.json"), &dist)?;
    let mut usable = Vec::new();
    for run in 0..runs {
        let browser = Browser::start(&[format!("--user-data-dir={}", dir.join(format!("profile-{run}")).display())])?;
        browser.goto(&format!("{}/app/", server.base))?;
        let ms = browser.wait_for(
            "const m = performance.getEntriesByName('mykey-usable')[0]; return m ? m.startTime : null;",
            Duration::from_secs(30),
        )?;
        usable.push(ms.as_f64().unwrap_or(f64::NAN));
    }
    usable.sort_by(f64::total_cmp);
    let at = |p: f64| usable[((usable.len() - 1) as f64 * p).round() as usize];
    println!("first page usable (cold browser, loopback), {runs} runs: p50 {:.0} ms, max {:.0} ms", at(0.5), at(1.0));
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
