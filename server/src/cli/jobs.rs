//! `mykey-server jobs`: run the scheduled jobs once, on this database or through a running
//! server.

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use mykey_server::engine::LogConfig;
use mykey_server::engine::{Change, ChangeResult};
use mykey_server::{time, LedgerService};

use super::options::Globals;

/// The options of `jobs`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// A running server's URL; without it the database is opened directly.
    #[arg(long)]
    server: Option<String>,
    /// Operator key for `--server`.
    #[arg(long, env = "MYKEY_OPERATOR_KEY")]
    key: Option<String>,
    /// Run as of this RFC 3339 time instead of now.
    #[arg(long)]
    now: Option<DateTime<Utc>>,
}

/// Runs `jobs`.
pub(crate) async fn run(g: &Globals, a: Args) -> anyhow::Result<()> {
    let Args { server, key, now } = a;
    let now_json = serde_json::json!({ "now": now });
    let report = match server {
        Some(base) => {
            let key = key.context("--server needs --key (or MYKEY_OPERATOR_KEY) with an operator key")?;
            let res = mykey_server::net::plain_client()?
                .post(format!("{}/v1/jobs/run", base.trim_end_matches('/')))
                .bearer_auth(key)
                .json(&now_json)
                .send()
                .await
                .with_context(|| format!("reaching {base}"))?;
            let status = res.status();
            let body = res.text().await?;
            if !status.is_success() {
                bail!("the server refused: {status} {body}");
            }
            body
        }
        None => {
            let ledger = LedgerService::open_with(&g.database_url, LogConfig::unwitnessed(g.signer()?)).await?;
            let at = now.map(time::datetime_to_micros).unwrap_or_else(time::now);
            let report =
                match ledger.engine.apply(Change::Jobs { now: at }).await.map_err(|p| anyhow::anyhow!(p.detail))? {
                    ChangeResult::Jobs(r) => serde_json::to_string(&r)?,
                    _ => unreachable!("jobs answer with a report"),
                };
            // Leave the tables up to date, not just the journal.
            ledger.close().await;
            report
        }
    };
    println!("{report}");
    Ok(())
}
