//! `mykey-server audit`: recompute the log from the ledger's rows and compare it with the
//! stored log and a signed checkpoint; exits 1 when anything differs.

use std::path::PathBuf;

use mykey_server::store;

use super::options::Globals;

/// The options of `audit`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// A signed checkpoint kept outside this database (by a monitor or a witness
    /// operator); without it, the latest one the database recorded.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// The log's public key (vkey); without it, the one of --log-key-file.
    #[arg(long)]
    log_vkey: Option<String>,
}

/// Runs `audit`.
pub(crate) async fn run(g: &Globals, a: Args) -> anyhow::Result<()> {
    let Args { checkpoint, log_vkey } = a;
    let vkey = match log_vkey {
        Some(v) => v,
        None => g.signer()?.vkey(),
    };
    let key = mykey_core::note::VerifierKey::parse(&vkey).map_err(|e| anyhow::anyhow!("the log key: {e}"))?;
    let s = store::Store::connect(&g.database_url).await?;
    let cp = mykey_server::integrity::audit::load_checkpoint(&s, checkpoint.as_deref(), &key).await?;
    let bar = indicatif::ProgressBar::new(cp.size);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} leaves {per_sec} {eta}").expect("template"),
    );
    let report = mykey_server::integrity::audit::audit(&s, &cp, |n| bar.set_position(n)).await?;
    bar.finish_and_clear();
    if report.clean() {
        println!(
            "audit clean: {} transactions match the log and the checkpoint of size {} ({})",
            report.checked, cp.size, cp.origin
        );
        return Ok(());
    }
    eprintln!("audit FAILED against the checkpoint of size {} ({}):", cp.size, cp.origin);
    for f in &report.findings {
        eprintln!("  leaf {}: {}", f.leaf, f.what);
        if let Some(id) = f.transaction {
            eprintln!("    transaction {id} (seq {}), accounts {:?}", f.seq.unwrap_or_default(), f.accounts);
        }
    }
    std::process::exit(1);
}
