//! `mykey-server witness`: a witness (C2SP tlog-witness) that cosigns checkpoints of the
//! given logs consistent with the last one it cosigned.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use mykey_server::integrity::witness::Witness;

use super::keys::new_witness_key;
use super::options::Globals;

/// The options of `witness`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8181")]
    bind: SocketAddr,
    /// The witness's name (key name of its cosignatures).
    #[arg(long, default_value = "witness.local/w1")]
    name: String,
    /// The witness's key (C2SP skey, type 0x04); created if missing.
    #[arg(long, default_value = "mykey-witness.key")]
    key_file: PathBuf,
    /// Where the witness keeps the last checkpoint of each log.
    #[arg(long, default_value = "sqlite:mykey-witness.db")]
    state: String,
    /// A log to follow, as its vkey (repeat for each).
    #[arg(long = "log", required = true)]
    logs: Vec<String>,
}

/// Runs `witness`.
pub(crate) async fn run(_g: &Globals, a: Args) -> anyhow::Result<()> {
    let Args { bind, name, key_file, state, logs } = a;
    let key = mykey_server::log::key_file(&key_file, || new_witness_key(&name))?;
    anyhow::ensure!(
        key.kind() == mykey_core::note::TYPE_COSIGNATURE_V1,
        "{} is not a witness key (type 0x04)",
        key_file.display()
    );
    let logs = logs
        .iter()
        .map(|l| mykey_core::note::VerifierKey::parse(l).map_err(|e| anyhow::anyhow!("--log {l}: {e}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let witness = std::sync::Arc::new(Witness::open(&state, key, logs).await?);
    let listener = mykey_server::bind(bind).await?;
    println!("witness {} listening on http://{} (vkey {})", name, listener.local_addr()?, witness.vkey());
    axum::serve(listener, witness.router()).await.context("serving the witness")
}
