//! `mykey-server mirror`: copy a log, verify it against its signed (and witnessed)
//! checkpoints, replay its balances, and serve its tiles.

use std::future::IntoFuture as _;
use std::net::SocketAddr;
use std::time::Duration;

use super::options::Globals;

/// The options of `mirror`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The log's base URL.
    #[arg(long)]
    from: String,
    /// The log's `mirror` key (`api-key --role mirror`), which reads entry bundles only.
    #[arg(long, env = "MYKEY_MIRROR_SOURCE_KEY")]
    source_key: Option<String>,
    /// The log's public key (vkey).
    #[arg(long)]
    log_vkey: String,
    /// A witness whose cosignatures count (vkey; repeat for each).
    #[arg(long = "witness")]
    witnesses: Vec<String>,
    /// Cosignatures required (default: 2, or fewer witnesses).
    #[arg(long)]
    quorum: Option<usize>,
    /// The mirror's own database.
    #[arg(long, default_value = "sqlite:mykey-mirror.db")]
    mirror_database: String,
    /// Address to serve the mirrored tiles on.
    #[arg(long, default_value = "127.0.0.1:8282")]
    bind: SocketAddr,
    /// Token readers of the mirror's entry bundles must send.
    #[arg(long, env = "MYKEY_MIRROR_TOKEN")]
    token: Option<String>,
    /// Seconds between syncs.
    #[arg(long, default_value_t = 5)]
    every: u64,
}

/// Runs `mirror`.
pub(crate) async fn run(_g: &Globals, a: Args) -> anyhow::Result<()> {
    let Args { from, source_key, log_vkey, witnesses, quorum, mirror_database, bind, token, every } = a;
    let parse = |k: &str| mykey_core::note::VerifierKey::parse(k.trim()).map_err(|e| anyhow::anyhow!("{k:?}: {e}"));
    let witnesses = witnesses.iter().map(|w| parse(w)).collect::<anyhow::Result<Vec<_>>>()?;
    let quorum = quorum.unwrap_or(witnesses.len().min(2));
    anyhow::ensure!(quorum <= witnesses.len(), "a quorum of {quorum} needs at least {quorum} witnesses");
    let config = mykey_server::integrity::mirror::Source {
        url: from.trim_end_matches('/').to_owned(),
        token: source_key,
        log_key: parse(&log_vkey)?,
        witnesses,
        quorum,
    };
    let mut mirror = mykey_server::integrity::mirror::Mirror::open(&mirror_database, config).await?;
    let listener = mykey_server::bind(bind).await?;
    println!("mirror of {from} serving on http://{}", listener.local_addr()?);
    tokio::spawn(
        axum::serve(listener, mykey_server::integrity::mirror::router(mirror.store().clone(), token)).into_future(),
    );
    let mut tick = tokio::time::interval(Duration::from_secs(every.max(1)));
    loop {
        tick.tick().await;
        match mirror.sync().await {
            Ok(s) if s.to > s.from => tracing::info!(from = s.from, to = s.to, "mirrored"),
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "the log could not be verified; nothing new was kept")
            }
        }
    }
}
