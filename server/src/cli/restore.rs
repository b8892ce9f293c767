//! `mykey-server restore`: repair the ledger's rows from a mirror verified against the log's
//! signed checkpoint, then audit again. Stop the server first.

use mykey_server::store;

use super::options::Globals;

/// The options of `restore`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The mirror's base URL.
    #[arg(long)]
    from_mirror: String,
    /// The mirror's token for entry bundles.
    #[arg(long, env = "MYKEY_MIRROR_TOKEN")]
    token: Option<String>,
    /// The log's public key (vkey); without it, the one of --log-key-file.
    #[arg(long)]
    log_vkey: Option<String>,
    /// A witness whose cosignatures count (vkey; repeat for each).
    #[arg(long = "witness")]
    witnesses: Vec<String>,
    /// Cosignatures required (default: 2, or fewer witnesses).
    #[arg(long)]
    quorum: Option<usize>,
}

/// Runs `restore`.
pub(crate) async fn run(g: &Globals, a: Args) -> anyhow::Result<()> {
    let Args { from_mirror, token, log_vkey, witnesses, quorum } = a;
    let parse = |k: &str| mykey_core::note::VerifierKey::parse(k.trim()).map_err(|e| anyhow::anyhow!("{k:?}: {e}"));
    let log_key = parse(&match log_vkey {
        Some(v) => v,
        None => g.signer()?.vkey(),
    })?;
    let witnesses = witnesses.iter().map(|w| parse(w)).collect::<anyhow::Result<Vec<_>>>()?;
    let quorum = quorum.unwrap_or(witnesses.len().min(2));
    let s = store::Store::connect(&g.database_url).await?;
    s.migrate().await?;
    let _lock = mykey_server::store::lock::WriterLock::acquire(&s).await?;
    mykey_server::store::journal::recover(&s).await?;
    let from = mykey_server::integrity::mirror::Source {
        url: from_mirror.trim_end_matches('/').to_owned(),
        token,
        log_key: log_key.clone(),
        witnesses,
        quorum,
    };
    let done = mykey_server::integrity::restore::restore(&s, &from).await?;
    println!(
        "restored from {from_mirror}: {} leaves checked, {} transactions and {} log leaves rewritten; auditing again",
        done.checked, done.transactions, done.leaves
    );
    let cp = mykey_server::integrity::audit::load_checkpoint(&s, None, &log_key).await?;
    let report = mykey_server::integrity::audit::audit(&s, &cp, |_| {}).await?;
    if !report.clean() {
        eprintln!("the audit still fails after the restore: {}", report.findings[0].what);
        std::process::exit(1);
    }
    println!("audit clean: {} transactions", report.checked);
    Ok(())
}
