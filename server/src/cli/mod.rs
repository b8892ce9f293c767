//! `mykey-server`'s command line: the options every subcommand takes, and one file per
//! subcommand with its options and what it does.

use clap::{Parser, Subcommand};
use options::{Globals, LogFormat};

mod api_key;
mod audit;
#[cfg(feature = "demo")]
mod demo;
mod jobs;
mod keys;
mod migrate;
mod mirror;
mod options;
mod restore;
mod revoke_api_key;
mod serve;
#[cfg(feature = "demo")]
mod virtual_card;
mod witness;

/// The command line: the global options and a subcommand.
#[derive(Parser)]
#[command(name = "mykey-server", version, about = "The MyKey Platform's municipal points cloud")]
pub(crate) struct Cli {
    #[command(flatten)]
    globals: Globals,
    #[command(subcommand)]
    command: Command,
}

/// The subcommands, each in its own file.
#[derive(Subcommand)]
enum Command {
    /// Serve the API.
    Serve(serve::Args),
    /// Run a witness (C2SP tlog-witness): cosign checkpoints of the given logs that are
    /// consistent with the last one it cosigned.
    Witness(witness::Args),
    /// Run a mirror: copy a log, verify it against its signed (and witnessed) checkpoints,
    /// replay its balances, and serve its tiles.
    Mirror(mirror::Args),
    /// Repair the ledger's rows from a mirror verified against the log's signed checkpoint,
    /// then audit again. Stop the server first.
    Restore(restore::Args),
    /// Apply the database migrations and exit.
    Migrate,
    /// Recompute the log from the ledger's rows and compare it with the stored log and a
    /// signed checkpoint; exits 1 when anything differs.
    Audit(audit::Args),
    /// Load the demo data (if the database is empty) and serve.
    #[cfg(feature = "demo")]
    Demo(demo::Args),
    /// Issue a virtual My Number Card from the demo CA (demo and tests only).
    #[cfg(feature = "demo")]
    VirtualCard(virtual_card::Args),
    /// Run the scheduled jobs once: on this database, or through a running server.
    Jobs(jobs::Args),
    /// Create an API key and print it (it is shown only once).
    ApiKey(api_key::Args),
    /// Revoke an API key (by the key or its id).
    RevokeApiKey(revoke_api_key::Args),
}

/// Logs to stderr in `format`, filtered by `RUST_LOG`.
fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    // Colours only for a person at a terminal, not in a file or a journal.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Parses the command line and runs the subcommand.
pub(crate) async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logs(cli.globals.log_format);
    let g = &cli.globals;
    if let Some(path) = &g.extra_ca_file {
        let n = mykey_server::net::trust_extra_ca_file(path)?;
        tracing::info!(certificates = n, file = %path.display(), "extra CAs trusted for outbound HTTPS");
    }
    match cli.command {
        Command::Serve(a) => serve::run(g, a).await,
        Command::Witness(a) => witness::run(g, a).await,
        Command::Mirror(a) => mirror::run(g, a).await,
        Command::Restore(a) => restore::run(g, a).await,
        Command::Migrate => migrate::run(g).await,
        Command::Audit(a) => audit::run(g, a).await,
        #[cfg(feature = "demo")]
        Command::Demo(a) => demo::run(g, a).await,
        #[cfg(feature = "demo")]
        Command::VirtualCard(a) => virtual_card::run(g, a).await,
        Command::Jobs(a) => jobs::run(g, a).await,
        Command::ApiKey(a) => api_key::run(g, a).await,
        Command::RevokeApiKey(a) => revoke_api_key::run(g, a).await,
    }
}
