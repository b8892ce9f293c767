//! What a resident can spend at a shop: the points of the shop's municipality and of its event
//! programmes (reserved points are not spendable anywhere until they move to a municipality).

use mykey_core::api::{AccountKind, UsablePoints};
use mykey_core::{Problem, ProblemKind};

use crate::engine::Engine;
use crate::failure;
use crate::time;

/// The resident's points usable at `shop` whose municipality is `municipality`, each with its
/// event programme's name (none for the municipality's own points).
pub async fn usable_at(engine: &Engine, municipality: i64, resident: i64) -> Result<Vec<UsablePoints>, Problem> {
    let tables = engine.tables().await?;
    let balances = tables.resident_balances(resident, time::now()).await.map_err(failure::ledger_read)?;
    let mut out = Vec::new();
    for a in balances.map(|b| b.accounts).unwrap_or_default() {
        if a.currency.municipality() != Some(municipality) || a.kind == AccountKind::Reserved {
            continue;
        }
        let name = match a.event {
            Some(e) => tables.event_name(e).await.map_err(failure::ledger_read)?.unwrap_or_default(),
            None => String::new(),
        };
        out.push(UsablePoints { event: a.event, name, available: a.available });
    }
    Ok(out)
}

/// The municipality whose points `shop` takes.
pub async fn shop_municipality(engine: &Engine, shop: i64) -> Result<i64, Problem> {
    Ok(engine
        .tables()
        .await?
        .shop(shop)
        .await
        .map_err(failure::ledger_read)?
        .ok_or_else(|| Problem::new(ProblemKind::UnknownReference, format!("shop {shop} does not exist")))?
        .municipality)
}
