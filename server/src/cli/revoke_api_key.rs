//! `mykey-server revoke-api-key`: revoke an API key by the key or its id. A running server
//! stops accepting it within `auth::KEY_CACHE_TTL` (`POST /v1/api-keys/{key_id}/revoke` on
//! the server itself: at once).

use mykey_server::auth::{hash_key, KeyCache};
use mykey_server::store;

use super::options::Globals;

/// The options of `revoke-api-key`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The key (`mk_...`) or its id (64 hex digits, printed when it was created).
    #[arg(long)]
    key: String,
}

/// Runs `revoke-api-key`.
pub(crate) async fn run(g: &Globals, a: Args) -> anyhow::Result<()> {
    let id = if a.key.starts_with("mk_") { hash_key(&a.key) } else { a.key.trim().to_lowercase() };
    let s = store::Store::connect(&g.database_url).await?;
    s.migrate().await?;
    anyhow::ensure!(
        mykey_server::auth::revoke_key(&s, &KeyCache::default(), &id).await?,
        "no live API key has the id {id}"
    );
    println!("revoked the API key {id}");
    Ok(())
}
