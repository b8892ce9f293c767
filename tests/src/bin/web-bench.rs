//! `web-bench`: time until the web app's first page is usable, on loopback in headless
//! Chromium, with a cold browser (a new profile) each run: from navigation start to the
//! app's `mykey-usable` performance mark (the municipality list is rendered). Then the
//! free-word search: from the input event to the results of that query on the page
//! (`#search-results[data-query]`), over the demo data, 100 queries. Needs release
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
    let at = |v: &[f64], p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    println!(
        "first page usable (cold browser, loopback), {runs} runs: p50 {:.0} ms, max {:.0} ms",
        at(&usable, 0.5),
        at(&usable, 1.0)
    );

    let browser = Browser::start(&[format!("--user-data-dir={}", dir.join("profile-search").display())])?;
    browser.goto(&format!("{}/app/search", server.base))?;
    browser.wait_for("return document.getElementById('free-word') ? true : null;", Duration::from_secs(30))?;
    // Words as the server echoes them (lower case, one space), so the page can be matched.
    let queries =
        ["前橋", "和牛", "都城 和牛", "めいぶつ", "商店街", "北海道", "ミュージアム", "群馬県", "小国町", "ぶどう"];
    let mut search = Vec::new();
    for i in 0..100 {
        let q = queries[i % queries.len()];
        // Another query first, so the page changes each time.
        for q in ["x", q] {
            let ms = browser.eval_async(&format!(
                "const done = arguments[arguments.length - 1]; const q = {q:?};
                 const input = document.getElementById('free-word');
                 const seen = () => document.getElementById('search-results')?.dataset.query === q;
                 const t0 = performance.now();
                 const obs = new MutationObserver(() => {{ if (seen()) {{ obs.disconnect(); done(performance.now() - t0); }} }});
                 obs.observe(document.querySelector('main'), {{ subtree: true, childList: true, attributes: true }});
                 input.value = q; input.dispatchEvent(new Event('input', {{ bubbles: true }}));"
            ))?;
            if q != "x" {
                search.push(ms.as_f64().unwrap_or(f64::NAN));
            }
        }
    }
    search.sort_by(f64::total_cmp);
    println!(
        "free-word search, input to results shown, {} queries: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        search.len(),
        at(&search, 0.5),
        at(&search, 0.99),
        at(&search, 1.0)
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
