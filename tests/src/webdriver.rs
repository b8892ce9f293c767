//! Just enough of the W3C WebDriver protocol to drive Debian's Chromium through chromedriver:
//! a session with options, navigation, and running a script.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::Process;

/// chromedriver and one browser session; both end on drop.
pub struct Browser {
    http: reqwest::blocking::Client,
    base: String,
    session: String,
    _driver: Process,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with `args` added to the usual ones.
    pub fn start(args: &[String]) -> anyhow::Result<Browser> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting chromedriver (Debian package chromium-driver)")?;
        let driver = Process(driver);
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(120)).build()?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while http.get(format!("{base}/status")).send().is_err() {
            if Instant::now() > deadline {
                bail!("chromedriver did not start");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // The wrapper /usr/bin/chromium adds flags (an empty --load-extension among them), so
        // the binary itself runs. Background networking is off: this machine has no internet.
        let mut all = vec![
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        all.extend_from_slice(args);
        let binary =
            ["/usr/lib/chromium/chromium", "/usr/bin/chromium"].into_iter().find(|p| std::path::Path::new(p).exists());
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": binary, "args": all}
        }}});
        let v: Value = http.post(format!("{base}/session")).json(&caps).send()?.json()?;
        let session = v["value"]["sessionId"].as_str().with_context(|| format!("no session: {v}"))?.to_owned();
        Ok(Browser { http, base, session, _driver: driver })
    }

    /// Opens `url`.
    pub fn goto(&self, url: &str) -> anyhow::Result<()> {
        let v: Value = self
            .http
            .post(format!("{}/session/{}/url", self.base, self.session))
            .json(&json!({"url": url}))
            .send()?
            .json()?;
        anyhow::ensure!(v["value"].is_null(), "navigation failed: {v}");
        Ok(())
    }

    /// Runs `script` (a function body) in the page; its return value.
    pub fn eval(&self, script: &str) -> anyhow::Result<Value> {
        let v: Value = self
            .http
            .post(format!("{}/session/{}/execute/sync", self.base, self.session))
            .json(&json!({"script": script, "args": []}))
            .send()?
            .json()?;
        if v["value"].get("error").is_some() {
            bail!("script failed: {v}");
        }
        Ok(v["value"].clone())
    }

    /// Waits until `script` returns something other than null (or `timeout`).
    pub fn wait_for(&self, script: &str, timeout: Duration) -> anyhow::Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.eval(script)?;
            if !v.is_null() {
                return Ok(v);
            }
            if Instant::now() > deadline {
                bail!("nothing from {script:?} within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.http.delete(format!("{}/session/{}", self.base, self.session)).send();
    }
}
