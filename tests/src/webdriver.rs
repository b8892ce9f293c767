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
        Self::start_with(args, json!({}))
    }

    /// As [`Browser::start`], blocking third-party cookies as strict browsers do.
    pub fn start_blocking_third_party_cookies(args: &[String]) -> anyhow::Result<Browser> {
        Self::start_with(args, json!({"profile.cookie_controls_mode": 1, "profile.block_third_party_cookies": true}))
    }

    fn start_with(args: &[String], prefs: Value) -> anyhow::Result<Browser> {
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
            // Since ChromeDriver 136 an extension's own pages are window handles only when asked.
            "goog:chromeOptions": {"binary": binary, "args": all, "prefs": prefs, "enableExtensionTargets": true}
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
        self.execute("sync", script)
    }

    /// Runs `script` with a callback as its last argument; the value it is called with.
    pub fn eval_async(&self, script: &str) -> anyhow::Result<Value> {
        self.execute("async", script)
    }

    fn execute(&self, mode: &str, script: &str) -> anyhow::Result<Value> {
        let v: Value = self
            .http
            .post(format!("{}/session/{}/execute/{mode}", self.base, self.session))
            .json(&json!({"script": script, "args": []}))
            .send()?
            .json()?;
        if v["value"].get("error").is_some() {
            bail!("script failed: {v}");
        }
        Ok(v["value"].clone())
    }

    /// The element `css` selects, waiting up to 20 s for it to appear.
    fn element(&self, css: &str) -> anyhow::Result<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let v: Value = self
                .http
                .post(format!("{}/session/{}/element", self.base, self.session))
                .json(&json!({"using": "css selector", "value": css}))
                .send()?
                .json()?;
            // The W3C WebDriver element reference key.
            if let Some(id) = v["value"]["element-6066-11e4-a52e-4f735466cecf"].as_str() {
                return Ok(id.to_owned());
            }
            if Instant::now() > deadline {
                bail!("no element {css:?}: {v}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn element_call(&self, css: &str, what: &str, body: Value) -> anyhow::Result<Value> {
        // The app may re-render the element between finding and using it: find it again.
        for _ in 0..5 {
            let id = self.element(css)?;
            let v: Value = self
                .http
                .post(format!("{}/session/{}/element/{id}/{what}", self.base, self.session))
                .json(&body)
                .send()?
                .json()?;
            match v["value"]["error"].as_str() {
                None => return Ok(v),
                Some("stale element reference" | "element not interactable") => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Some(_) => bail!("{what} on {css:?} failed: {v}"),
            }
        }
        bail!("{what} on {css:?}: the element kept changing")
    }

    /// Runs the next commands inside the iframe `css` selects.
    pub fn enter_frame(&self, css: &str) -> anyhow::Result<()> {
        let id = self.element(css)?;
        let v: Value = self
            .http
            .post(format!("{}/session/{}/frame", self.base, self.session))
            .json(&json!({"id": {"element-6066-11e4-a52e-4f735466cecf": id}}))
            .send()?
            .json()?;
        anyhow::ensure!(v["value"].is_null(), "entering the frame failed: {v}");
        Ok(())
    }

    /// Runs the next commands in the top-level page again.
    pub fn leave_frames(&self) -> anyhow::Result<()> {
        let v: Value = self
            .http
            .post(format!("{}/session/{}/frame", self.base, self.session))
            .json(&json!({"id": null}))
            .send()?
            .json()?;
        anyhow::ensure!(v["value"].is_null(), "leaving the frame failed: {v}");
        Ok(())
    }

    /// Clicks the element `css` selects, as a user would.
    pub fn click(&self, css: &str) -> anyhow::Result<()> {
        self.element_call(css, "click", json!({})).map(drop)
    }

    /// Types `text` into the element `css` selects, as a keyboard would (after clearing it).
    pub fn type_text(&self, css: &str, text: &str) -> anyhow::Result<()> {
        self.element_call(css, "clear", json!({}))?;
        self.element_call(css, "value", json!({ "text": text })).map(drop)
    }

    /// Inside a widget's frame: waits until a confirmation would go ahead (the frame has been
    /// visible long enough; after another window covered it, for instance).
    pub fn wait_confirmable(&self) -> anyhow::Result<()> {
        self.wait_for("return document.body.dataset.confirmable === 'true' ? true : null;", Duration::from_secs(10))?;
        Ok(())
    }

    /// Waits until the text of `css` contains `want`; returns the text.
    pub fn wait_text(&self, css: &str, want: &str) -> anyhow::Result<String> {
        let script = format!(
            "const e = document.querySelector({css:?}); return e && e.textContent.includes({want:?}) ? e.textContent : null;"
        );
        let v = self.wait_for(&script, Duration::from_secs(30))?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    /// The handles of the open windows.
    fn windows(&self) -> anyhow::Result<Vec<String>> {
        let v: Value =
            self.http.get(format!("{}/session/{}/window/handles", self.base, self.session)).send()?.json()?;
        Ok(v["value"]
            .as_array()
            .context("window handles")?
            .iter()
            .filter_map(|h| h.as_str().map(str::to_owned))
            .collect())
    }

    fn switch_to(&self, handle: &str) -> anyhow::Result<()> {
        let v: Value = self
            .http
            .post(format!("{}/session/{}/window", self.base, self.session))
            .json(&json!({"handle": handle}))
            .send()?
            .json()?;
        anyhow::ensure!(v["value"].is_null(), "switching windows failed: {v}");
        Ok(())
    }

    /// The handle of the window the commands go to.
    fn current_window(&self) -> anyhow::Result<String> {
        let v: Value = self.http.get(format!("{}/session/{}/window", self.base, self.session)).send()?.json()?;
        Ok(v["value"].as_str().context("current window")?.to_owned())
    }

    /// Inside a widget's frame: chooses the password, opens the password window as the resident
    /// would and goes to it once its form shows. Returns the window to come back to.
    pub fn open_password_window(&self) -> anyhow::Result<String> {
        let home = self.current_window()?;
        self.click("#tab-password")?;
        self.click("#open-sign-in")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(h) = self.windows()?.into_iter().find(|h| *h != home) {
                self.switch_to(&h)?;
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "no password window opened within 10 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        self.wait_for("return document.querySelector('#mykey-id') ? true : null;", Duration::from_secs(10))?;
        Ok(home)
    }

    /// In the password window: signs in, waits for the window to close itself (or says what it
    /// showed instead) and goes back into the frame `frame` of the window `home`.
    pub fn password_sign_in(&self, home: &str, frame: &str, mykey_id: &str, password: &str) -> anyhow::Result<()> {
        let window = self.current_window()?;
        self.type_text("#mykey-id", mykey_id)?;
        self.type_text("#password", password)?;
        self.click("#password-sign-in button[type=submit]")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.windows()?.contains(&window) {
            if Instant::now() > deadline {
                let shown = self.eval("return document.body.innerText;")?;
                bail!("the password window stayed open, showing {shown}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.switch_to(home)?;
        self.enter_frame(frame)
    }

    /// Inside a widget's frame: signs in with the MyKey ID and password in the password window.
    pub fn widget_password(&self, frame: &str, mykey_id: &str, password: &str) -> anyhow::Result<()> {
        let home = self.open_password_window()?;
        self.password_sign_in(&home, frame, mykey_id, password)
    }

    /// Waits (30 s at most) for a window of an extension's own page to open, clicks `button`
    /// in it as the user would, and comes back to the top of the page this session was on.
    /// Returns the text the window showed.
    pub fn answer_extension_window(&self, button: &str) -> anyhow::Result<String> {
        let v: Value = self.http.get(format!("{}/session/{}/window", self.base, self.session)).send()?.json()?;
        let home = v["value"].as_str().context("current window")?.to_owned();
        let deadline = Instant::now() + Duration::from_secs(30);
        let prompt = loop {
            let mut found = None;
            for h in self.windows()?.into_iter().filter(|h| *h != home) {
                self.switch_to(&h)?;
                if self.eval("return location.protocol;")?.as_str() == Some("chrome-extension:") {
                    found = Some(h);
                    break;
                }
            }
            if let Some(h) = found {
                break h;
            }
            self.switch_to(&home)?;
            if Instant::now() > deadline {
                let targets: Value = self
                    .http
                    .post(format!("{}/session/{}/goog/cdp/execute", self.base, self.session))
                    .json(&json!({"cmd": "Target.getTargets", "params": {}}))
                    .send()?
                    .json()?;
                bail!("no extension window opened within 30 s; the browser's targets: {targets}");
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        let text = self.wait_for(
            "const s = document.querySelector('section:not([hidden])'); return s ? s.innerText : null;",
            Duration::from_secs(10),
        )?;
        self.click(button)?;
        // The window closes itself once the extension has the answer.
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.windows()?.contains(&prompt) {
            anyhow::ensure!(Instant::now() < deadline, "the extension window stayed open after {button}");
            std::thread::sleep(Duration::from_millis(100));
        }
        self.switch_to(&home)?;
        Ok(text.as_str().unwrap_or_default().to_owned())
    }

    /// Sets the window size (CSS pixels).
    pub fn resize(&self, width: u32, height: u32) -> anyhow::Result<()> {
        let v: Value = self
            .http
            .post(format!("{}/session/{}/window/rect", self.base, self.session))
            .json(&json!({"width": width, "height": height}))
            .send()?
            .json()?;
        anyhow::ensure!(v["value"].get("error").is_none(), "resize failed: {v}");
        Ok(())
    }

    /// The page as Chromium prints it (print CSS applied), as a PDF, on paper `width_cm` wide
    /// and `height_cm` long, without margins of its own (the page's `@page` sets them).
    pub fn print_pdf(&self, width_cm: f64, height_cm: f64) -> anyhow::Result<Vec<u8>> {
        use base64::Engine as _;
        let v: Value = self
            .http
            .post(format!("{}/session/{}/print", self.base, self.session))
            .json(&json!({"page": {"width": width_cm, "height": height_cm}, "background": true, "shrinkToFit": false,
                          "margin": {"top": 0, "bottom": 0, "left": 0, "right": 0}}))
            .send()?
            .json()?;
        let b64 = v["value"].as_str().with_context(|| format!("printing failed: {v}"))?;
        Ok(base64::engine::general_purpose::STANDARD.decode(b64)?)
    }

    /// A PNG screenshot of the viewport.
    pub fn screenshot(&self) -> anyhow::Result<Vec<u8>> {
        use base64::Engine as _;
        let v: Value = self.http.get(format!("{}/session/{}/screenshot", self.base, self.session)).send()?.json()?;
        let b64 = v["value"].as_str().context("no screenshot")?;
        Ok(base64::engine::general_purpose::STANDARD.decode(b64)?)
    }

    /// Runs axe-core (from the tools folder scripts/install-deps fills) on the page; the
    /// WCAG 2 A and AA violations it reports, as `rule: nodes`.
    pub fn axe_violations(&self) -> anyhow::Result<Vec<String>> {
        let tools = std::env::var("MYKEY_TOOLS").map(std::path::PathBuf::from).unwrap_or_else(|_| {
            std::path::PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/mykey/tools")
        });
        let axe = tools.join("node_modules/axe-core/axe.min.js");
        let source =
            std::fs::read_to_string(&axe).with_context(|| format!("{} (run scripts/install-deps)", axe.display()))?;
        self.eval(&format!("{source}\nreturn true;"))?;
        let v = self.eval_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, { runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] })
               .then(r => done(r.violations.map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))))
               .catch(e => done(['axe failed: ' + e]));",
        )?;
        Ok(v.as_array().into_iter().flatten().filter_map(|x| x.as_str().map(str::to_owned)).collect())
    }

    /// The JSON a test page writes into its `#result` element once done (90 s at most).
    pub fn page_result(&self) -> anyhow::Result<Value> {
        let text = self.wait_for(
            "const t = document.getElementById('result').textContent; return t ? t : null;",
            Duration::from_secs(90),
        )?;
        Ok(serde_json::from_str(text.as_str().context("#result holds text")?)?)
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
