//! Helpers for the end-to-end tests: run the real `mykey-server` binary as a separate
//! process, find the address it prints, and talk HTTP to it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// The server binary: `MYKEY_SERVER_BIN`, or the one cargo built beside this test.
pub fn server_bin() -> PathBuf {
    if let Ok(p) = std::env::var("MYKEY_SERVER_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test> -> target/<profile>/mykey-server
    let bin = exe.parent().and_then(Path::parent).expect("target folder").join("mykey-server");
    assert!(bin.exists(), "{} is missing: run `cargo build -p mykey-server` first", bin.display());
    bin
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
        cmd.args(["demo", "--bind", "127.0.0.1:0", "--keys-file"]).arg(dir.join("keys.json"));
        cmd.arg("--witness-dir").arg(dir.join("witnesses"));
        Self::spawn(cmd, "mykey demo: ")
    }

    /// `mykey-server serve` on a fresh ephemeral port with the log key in `dir/log.key`.
    pub fn serve(database_url: &str, dir: &Path) -> anyhow::Result<Server> {
        let mut cmd = Command::new(server_bin());
        cmd.args(["--database-url", database_url, "--log-key-file"]).arg(dir.join("log.key"));
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
