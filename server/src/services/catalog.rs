//! Point-navi's directory: which services each municipality has set up (library card, online
//! shop, shops and facilities), the online shop's products, the online services residents
//! link, and the free-word search over municipalities, shops and products. Not ledger state:
//! plain rows beside it, written by the demo loader and read by the public pages.

use mykey_core::api::{Directory, MunicipalityServices, OnlineService, SearchResults, SEARCH_QUERY_MAX};
use mykey_core::{Problem, ProblemKind};
use rust_decimal::Decimal;
use sqlx::AnyPool;

use crate::engine::Engine;
use crate::failure;
use crate::store::catalog as store;

/// Most words a search combines (each must match).
pub const SEARCH_WORDS_MAX: usize = 4;

/// The directory's rows.
#[derive(Clone)]
pub struct Catalog {
    engine: Engine,
    pool: AnyPool,
}

/// Splits a query into at most [`SEARCH_WORDS_MAX`] lower-case words; full-width spaces
/// separate words too (Japanese keyboards type them).
pub fn query_words(q: &str) -> Result<Vec<String>, Problem> {
    let q = q.trim();
    if q.is_empty() {
        return Err(Problem::new(ProblemKind::InvalidRequest, "type a word to search for").with("field", "q"));
    }
    if q.chars().count() > SEARCH_QUERY_MAX {
        return Err(Problem::new(
            ProblemKind::InvalidRequest,
            format!("a search is at most {SEARCH_QUERY_MAX} characters"),
        )
        .with("field", "q"));
    }
    // PostgreSQL refuses NUL in text, and nothing searchable has a control character.
    if q.chars().any(|c| c.is_control() && !c.is_whitespace()) {
        return Err(Problem::new(ProblemKind::InvalidRequest, "a search has no control characters").with("field", "q"));
    }
    let words: Vec<String> = q.split_whitespace().map(str::to_lowercase).collect();
    if words.len() > SEARCH_WORDS_MAX {
        return Err(Problem::new(
            ProblemKind::InvalidRequest,
            format!("a search combines at most {SEARCH_WORDS_MAX} words"),
        )
        .with("field", "q"));
    }
    Ok(words)
}

impl Catalog {
    /// Beside the engine's ledger.
    pub fn new(engine: &Engine) -> Catalog {
        Catalog { engine: engine.clone(), pool: engine.store().pool().clone() }
    }

    /// Records what a municipality has set up (replacing what was recorded).
    pub async fn set_services(&self, s: &MunicipalityServices) -> anyhow::Result<()> {
        Ok(store::set_services(&self.pool, s).await?)
    }

    /// Adds a product of the online shop; returns its id.
    pub async fn add_product(
        &self,
        municipality: i64,
        name: &str,
        price_yen: Decimal,
        section: &str,
    ) -> anyhow::Result<i64> {
        anyhow::ensure!(price_yen > Decimal::ZERO, "a product's price must be positive");
        Ok(store::add_product(&self.pool, municipality, name, price_yen, section).await?)
    }

    /// Adds an online service (`online_shop` or `crowdfunding`); returns its id.
    pub async fn add_online_service(&self, name: &str, name_en: &str, kind: &str) -> anyhow::Result<i64> {
        anyhow::ensure!(matches!(kind, "online_shop" | "crowdfunding"), "unknown online service kind {kind:?}");
        Ok(store::add_online_service(&self.pool, name, name_en, kind).await?)
    }

    /// Makes a store part of an online service, so the service charges linked members there.
    pub async fn set_shop_online_service(&self, shop: i64, online_service: i64) -> anyhow::Result<()> {
        // The shop's row is written by the engine's materialiser, shortly after it answered.
        let tables = self.engine.tables().await.map_err(|p| anyhow::anyhow!("{}", p.detail))?;
        anyhow::ensure!(tables.set_shop_online_service(shop, online_service).await?, "shop {shop} does not exist");
        Ok(())
    }

    /// One online service.
    pub async fn online_service(&self, id: i64) -> anyhow::Result<Option<OnlineService>> {
        store::online_service(&self.pool, id).await
    }

    /// Everything point-navi's pages list.
    pub async fn directory(&self) -> anyhow::Result<Directory> {
        store::directory(&self.pool).await
    }

    /// Municipalities, shops and products matching every word of `q` (in the name, the
    /// municipality's name or its prefecture), at most [`SEARCH_LIMIT`] of each.
    pub async fn search(&self, q: &str) -> Result<SearchResults, Problem> {
        let words = query_words(q)?;
        // Municipalities and shops are the ledger's rows: wait for the ones already added.
        self.engine.tables().await?.search(&words).await.map_err(failure::directory)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_split_on_any_space_and_lower_cased() {
        assert_eq!(query_words(" 前橋\u{3000}JAL ").unwrap(), vec!["前橋", "jal"]);
    }

    #[test]
    fn empty_long_and_many_word_queries_are_refused() {
        assert!(query_words("  ").is_err());
        assert!(query_words(&"あ".repeat(SEARCH_QUERY_MAX + 1)).is_err());
        assert!(query_words("a b c d e").is_err());
        assert!(query_words(&"あ".repeat(SEARCH_QUERY_MAX)).is_ok());
        assert!(query_words("\u{F3A71}\u{ED}7\u{B4}\u{1D}n\0").is_err(), "control characters (schemathesis found NUL)");
        assert!(query_words("前橋\t市").is_ok(), "a tab is a space between words");
    }
}
