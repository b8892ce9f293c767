//! Helpers for the end-to-end tests: run the real `mykey-server` binary as a separate
//! process, find the address it prints, and talk HTTP to it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

pub mod usb_sim;
pub mod webdriver;

/// The server binary: `MYKEY_SERVER_BIN`, or the one cargo built beside this test.
pub fn server_bin() -> PathBuf {
    if let Ok(p) = std::env::var("MYKEY_SERVER_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test> or target/<profile>/<bin> -> target/<profile>/mykey-server
    let mut dir = exe.parent().expect("target folder");
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir = dir.parent().expect("target folder");
    }
    let bin = dir.join("mykey-server");
    assert!(bin.exists(), "{} is missing: run `cargo build -p mykey-server` first", bin.display());
    bin
}

/// A binary built beside `mykey-server` (same target folder).
pub fn sibling_bin(name: &str) -> PathBuf {
    let bin = server_bin().with_file_name(name);
    assert!(bin.exists(), "{} is missing: run `cargo build --workspace` first", bin.display());
    bin
}

/// A new folder under the system's temporary folder.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mykey-{name}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    dir
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for f in std::fs::read_dir(from)? {
        let f = f?;
        if f.file_type()?.is_dir() {
            copy_dir(&f.path(), &to.join(f.file_name()))?;
        } else {
            std::fs::copy(f.path(), to.join(f.file_name()))?;
        }
    }
    Ok(())
}

/// The test pages (`tests/web`) with the npm package's build in `pkg/` and the widget's files in `sdk/`, in `dir/web`, for a
/// server to serve at `/app/`.
pub fn test_site(dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dist = root.join("pkg/dist");
    assert!(
        dist.join("mykey_sdk.js").exists(),
        "build the npm package first (scripts/build-pkg): no {}",
        dist.display()
    );
    let web = dir.join("web");
    copy_dir(&root.join("tests/web"), &web).expect("copying the test pages");
    copy_dir(&dist, &web.join("pkg")).expect("copying the npm package");
    // The widget's files, which a web folder the server serves must have.
    copy_dir(&web_dist().join("sdk"), &web.join("sdk")).expect("copying the widget");
    web
}

/// A process killed on drop.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs a command to completion; its stdout, or an error with stderr.
pub fn run(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    anyhow::ensure!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A virtual My Number Card in pcscd's first vpcd reader (pcscd with vsmartcard-vpcd must
/// run; `.ci/run` starts it). Waits until PC/SC sees the card.
pub fn insert_virtual_card(card_file: &Path) -> anyhow::Result<Process> {
    // The previous test's card may still be leaving the reader: pcscd then lists it as present
    // for a moment, and a client talking to the reader meanwhile sees a half-gone card.
    wait_for_reader(false, Duration::from_secs(10))?;
    let child = Command::new(sibling_bin("mykey-virtual-card"))
        .arg("--card")
        .arg(card_file)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting mykey-virtual-card")?;
    let card = Process(child);
    wait_for_reader(true, Duration::from_secs(15))?;
    Ok(card)
}

/// Waits (bounded) until vpcd's first reader holds a card (`present`) or is empty.
fn wait_for_reader(present: bool, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    let want = if present { "Yes" } else { "No" };
    while Instant::now() < deadline {
        let listed = Command::new("opensc-tool").arg("-l").output().context("opensc-tool (Debian package opensc)")?;
        if String::from_utf8_lossy(&listed.stdout).lines().any(|l| {
            let mut fields = l.split_whitespace().skip(1);
            fields.next() == Some(want) && l.contains("Virtual PCD 00 00")
        }) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    if present {
        bail!("pcscd did not show the virtual card in {within:?}: is pcscd running with vsmartcard-vpcd (scripts/pcscd-start)?")
    }
    bail!("the previous virtual card did not leave the reader in {within:?}")
}

/// A running server process; killed on drop.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Server {
    /// `mykey-server demo` on a fresh ephemeral port; API keys go to `dir/keys.json`, the
    /// log's signing key to `dir/log.key`.
    pub fn demo(database_url: &str, dir: &Path) -> anyhow::Result<Server> {
        let mut cmd = Command::new(server_bin());
        cmd.args(["--database-url", database_url, "--log-key-file"]).arg(dir.join("log.key"));
        cmd.arg("--coupon-key-file").arg(dir.join("coupon.key"));
        cmd.args(["demo", "--bind", "127.0.0.1:0", "--keys-file"]).arg(dir.join("keys.json"));
        cmd.arg("--witness-dir").arg(dir.join("witnesses"));
        Self::spawn(cmd, "mykey demo: ")
    }

    /// `mykey-server demo` with every default, run as `./mykey-server` from `dir` (a copy of
    /// the binary there): a release copied to another machine, with no repository around it.
    pub fn demo_standalone(dir: &Path) -> anyhow::Result<Server> {
        let bin = dir.join("mykey-server");
        std::fs::copy(server_bin(), &bin).context("copying mykey-server")?;
        let mut cmd = Command::new(&bin);
        cmd.current_dir(dir)
            .args(["demo", "--bind", "127.0.0.1:0"])
            .env_remove("MYKEY_DATA_DIR")
            .env_remove("DATABASE_URL");
        Self::spawn(cmd, "mykey demo: ")
    }

    /// `mykey-server demo` with a given demo CA file and pages served from `web_dir` at `/app/`.
    pub fn demo_with(database_url: &str, dir: &Path, demo_ca: &Path, web_dir: &Path) -> anyhow::Result<Server> {
        Self::demo_mailing(database_url, dir, demo_ca, web_dir, None)
    }

    /// [`Server::demo_with`], sending e-mail notices to `smtp_url` when given.
    pub fn demo_mailing(
        database_url: &str,
        dir: &Path,
        demo_ca: &Path,
        web_dir: &Path,
        smtp_url: Option<&str>,
    ) -> anyhow::Result<Server> {
        let mut cmd = Command::new(server_bin());
        cmd.args(["--database-url", database_url, "--log-key-file"]).arg(dir.join("log.key"));
        cmd.arg("--coupon-key-file").arg(dir.join("coupon.key"));
        cmd.args(["demo", "--bind", "127.0.0.1:0", "--keys-file"]).arg(dir.join("keys.json"));
        cmd.arg("--witness-dir").arg(dir.join("witnesses"));
        cmd.arg("--demo-ca-file").arg(demo_ca).arg("--web-dir").arg(web_dir);
        if let Some(url) = smtp_url {
            cmd.args(["--smtp-url", url]);
        }
        Self::spawn(cmd, "mykey demo: ")
    }

    /// `mykey-server serve` on a fresh ephemeral port with the log key in `dir/log.key`.
    pub fn serve(database_url: &str, dir: &Path) -> anyhow::Result<Server> {
        let mut cmd = Command::new(server_bin());
        cmd.args(["--database-url", database_url, "--log-key-file"]).arg(dir.join("log.key"));
        cmd.arg("--coupon-key-file").arg(dir.join("coupon.key"));
        cmd.args(["serve", "--bind", "127.0.0.1:0"]);
        Self::spawn(cmd, "mykey-server listening on ")
    }

    fn spawn(mut cmd: Command, marker: &str) -> anyhow::Result<Server> {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).env("RUST_LOG", "warn");
        let mut child = cmd.spawn().context("starting mykey-server")?;
        // The marker is on stdout for `demo` and on stderr for `serve`: read both.
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        for stream in [
            Box::new(child.stdout.take().expect("piped")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("piped")),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    if let Some(rest) = line.split(marker).nth(1) {
                        let base = rest.split_whitespace().next().unwrap_or("").trim_end_matches('/').to_owned();
                        return Ok(Server { child, base });
                    }
                    seen.push(line);
                }
                Err(_) => {
                    if let Some(status) = child.try_wait()? {
                        bail!("mykey-server exited with {status}: {}", seen.join("\n"));
                    }
                }
            }
        }
        let _ = child.kill();
        bail!("mykey-server did not print {marker:?} within 60 s: {}", seen.join("\n"))
    }

    /// SIGKILL, no chance to flush anything.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The web build (`scripts/build-pkg`, then `scripts/build-web`): the app, and the SDK and
/// checkout widget under `sdk/`.
pub fn web_dist() -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web-app/dist");
    assert!(
        d.join("index.html").exists() && d.join("sdk/frame.html").exists(),
        "build the SDK and the web app first: scripts/build-pkg, scripts/build-web"
    );
    d
}

/// axe-core finds no WCAG A/AA violation on the page `b` shows (`page` names it in the failure).
pub fn no_violations(b: &webdriver::Browser, page: &str) {
    let v = b.axe_violations().unwrap();
    assert!(v.is_empty(), "axe-core on {page}: {v:#?}");
}

/// The page `b` shows (inside the frame it entered) has no stray `null`, `undefined` or `NaN`
/// where a value was missing (`page` names it in the failure).
pub fn no_placeholders(b: &webdriver::Browser, page: &str) {
    let text = b.eval("return document.body.innerText;").unwrap();
    let text = text.as_str().unwrap_or_default();
    for word in ["null", "undefined", "NaN", "[object Object]"] {
        assert!(!text.contains(word), "{page} shows {word:?}: {text}");
    }
}

/// The window sizes screenshots and layout checks use: a phone's and a desktop's.
const SIZES: [(&str, u32, u32); 2] = [("phone", 390, 844), ("desktop", 1280, 900)];

/// Saves what `b` shows as `<name>-phone.png` and `<name>-desktop.png` in the folder
/// `MYKEY_SCREENSHOTS` names (nothing without it). Leaves the window desktop sized.
pub fn shoot(b: &webdriver::Browser, name: &str) {
    let Ok(dir) = std::env::var("MYKEY_SCREENSHOTS") else { return };
    for (label, w, h) in SIZES {
        b.resize(w, h).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        std::fs::write(Path::new(&dir).join(format!("{name}-{label}.png")), b.screenshot().unwrap()).unwrap();
    }
}

/// Inside a widget's frame, the state `name` as a person sees it: axe finds nothing, no
/// placeholder shows, and at a phone's and a desktop's width nothing is clipped (the frame
/// takes its content's height, so nothing scrolls inside it). Screenshots as [`shoot`].
pub fn widget_state(b: &webdriver::Browser, name: &str) {
    no_violations(b, name);
    no_placeholders(b, name);
    let dir = std::env::var("MYKEY_SCREENSHOTS").ok();
    for (label, w, h) in SIZES {
        b.resize(w, h).unwrap();
        let fits = "return document.documentElement.scrollHeight <= window.innerHeight + 1 ? true : null;";
        if b.wait_for(fits, Duration::from_secs(5)).is_err() {
            let sizes = b.eval("return [document.documentElement.scrollHeight, window.innerHeight];").unwrap();
            panic!("{name} ({label}): the frame clips its content (content, frame height: {sizes})");
        }
        if let Some(dir) = &dir {
            std::fs::write(Path::new(dir).join(format!("{name}-{label}.png")), b.screenshot().unwrap()).unwrap();
        }
    }
    // Resizing may have moved the frame out of view and back: confirming waits again.
    b.wait_confirmable().unwrap();
}

/// What the points cloud's pages' Content-Security-Policy blocked so far (the browsers'
/// reports, counted in the server's metrics).
pub fn csp_violations(base: &str) -> u64 {
    let text = reqwest::blocking::get(format!("{base}/metrics")).unwrap().text().unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("mykey_csp_violations_total "))
        .map_or(0, |n| n.trim().parse::<f64>().unwrap() as u64)
}
