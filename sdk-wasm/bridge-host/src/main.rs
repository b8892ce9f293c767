//! `mykey-bridge-host`: started by the browser for the mykey extension (native messaging), or
//! `mykey-bridge-host install --extension-id ID` to register it with Chromium.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use mykey_bridge_host::messaging::{read_message, write_message};
use mykey_core::card::bridge::{ErrorCode, Failure, Outcome, Request, Response, HOST_NAME};

#[derive(Parser)]
#[command(name = "mykey-bridge-host", version, about = "The mykey extension's native host (PC/SC)")]
struct Cli {
    #[command(subcommand)]
    command: Option<Install>,
    /// What the browser passes (the caller's origin); not used.
    #[arg(hide = true)]
    browser_args: Vec<String>,
}

#[derive(Subcommand)]
enum Install {
    /// Write the native-messaging host manifest so that the browser can start this host.
    Install {
        /// The extension's id (32 letters a-p).
        #[arg(long)]
        extension_id: String,
        /// Folder of host manifests; default: Chromium's for this user.
        #[arg(long)]
        manifest_dir: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Install::Install { extension_id, manifest_dir }) = cli.command {
        return install(&extension_id, manifest_dir);
    }
    serve()
}

fn install(extension_id: &str, dir: Option<PathBuf>) -> anyhow::Result<()> {
    anyhow::ensure!(
        extension_id.len() == 32 && extension_id.bytes().all(|b| (b'a'..=b'p').contains(&b)),
        "an extension id is 32 letters a-p, not {extension_id:?}"
    );
    let dir = match dir {
        Some(d) => d,
        None => PathBuf::from(std::env::var("HOME").context("HOME is not set")?)
            .join(".config/chromium/NativeMessagingHosts"),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let exe = std::env::current_exe()?.canonicalize()?;
    let manifest = serde_json::json!({
        "name": HOST_NAME,
        "description": "mykey: the My Number Card through PC/SC",
        "path": exe,
        "type": "stdio",
        "allowed_origins": [format!("chrome-extension://{extension_id}/")],
    });
    let path = dir.join(format!("{HOST_NAME}.json"));
    std::fs::write(&path, serde_json::to_string_pretty(&manifest)?)?;
    println!("wrote {}", path.display());
    Ok(())
}

fn serve() -> anyhow::Result<()> {
    let (mut stdin, mut stdout) = (std::io::stdin().lock(), std::io::stdout().lock());
    // One request at a time, until the browser closes the port.
    while let Some(msg) = read_message(&mut stdin)? {
        let response = match serde_json::from_slice::<Request>(&msg) {
            Ok(request) => match mykey_bridge_host::pcsc_card::Pcsc::establish() {
                Ok(pcsc) => mykey_bridge_host::handle(&pcsc, &request),
                Err(f) => Response { id: request.id, result: Outcome::Error(f) },
            },
            Err(e) => Response {
                id: serde_json::from_slice::<serde_json::Value>(&msg).ok().and_then(|v| v["id"].as_u64()).unwrap_or(0),
                result: Outcome::Error(Failure {
                    code: ErrorCode::BadRequest,
                    message: e.to_string(),
                    tries_left: None,
                }),
            },
        };
        write_message(&mut stdout, &serde_json::to_vec(&response)?)?;
    }
    Ok(())
}
