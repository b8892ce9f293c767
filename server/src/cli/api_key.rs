//! `mykey-server api-key`: create an API key and print it (it is shown only once).

use anyhow::Context;
use mykey_server::auth::{create_key, Role};
use mykey_server::store;

use super::options::Globals;

/// The options of `api-key`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// operator, municipality, partner, store, terminal, resident or mirror (reads the log's
    /// entry bundles only).
    #[arg(long)]
    role: String,
    /// The municipality, partner, shop or resident id the key acts for (0 for operator and mirror).
    #[arg(long, default_value_t = 0)]
    subject: i64,
    /// A note for whoever reads the key table.
    #[arg(long, default_value = "")]
    label: String,
}

/// Runs `api-key`.
pub(crate) async fn run(g: &Globals, a: Args) -> anyhow::Result<()> {
    let Args { role, subject, label } = a;
    let role = Role::parse(&role).with_context(|| format!("unknown role {role:?}"))?;
    let s = store::Store::connect(&g.database_url).await?;
    s.migrate().await?;
    let key = create_key(&s, role, subject, &label).await?;
    println!("{key}");
    eprintln!("key id (to revoke it): {}", mykey_server::auth::hash_key(&key));
    Ok(())
}
