//! `mykey-server migrate`: apply the database migrations and exit.

use mykey_server::store;

use super::options::Globals;

/// Runs `migrate`.
pub(crate) async fn run(g: &Globals) -> anyhow::Result<()> {
    let s = store::Store::connect(&g.database_url).await?;
    s.migrate().await?;
    eprintln!("migrations applied to {}", store::redact(&g.database_url));
    Ok(())
}
