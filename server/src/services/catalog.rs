//! Point-navi's directory: which services each municipality has set up (library card, online
//! shop, shops and facilities), the online shop's products, the online services residents
//! link, and the free-word search over municipalities, shops and products. Not ledger state:
//! plain rows beside it, written by the demo loader and read by the public pages.

use mykey_core::api::{
    Directory, MunicipalityServices, OnlineService, Product, SearchResults, SEARCH_LIMIT, SEARCH_QUERY_MAX,
};
use mykey_core::{Problem, ProblemKind};
use rust_decimal::Decimal;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use crate::engine::Engine;
use crate::failure;
use crate::store::{municipality_from_row, shop_from_row};

/// Most words a search combines (each must match).
pub const SEARCH_WORDS_MAX: usize = 4;

/// The directory's rows.
#[derive(Clone)]
pub struct Catalog {
    engine: Engine,
    pool: AnyPool,
}

fn product_from_row(r: &AnyRow) -> anyhow::Result<Product> {
    let price: String = r.try_get("price_yen")?;
    Ok(Product {
        id: r.try_get("id")?,
        municipality: r.try_get("municipality_id")?,
        name: r.try_get("name")?,
        price_yen: price.parse()?,
        section: r.try_get("section")?,
    })
}

fn online_service_from_row(r: &AnyRow) -> anyhow::Result<OnlineService> {
    Ok(OnlineService {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        name_en: r.try_get("name_en")?,
        kind: r.try_get("kind")?,
    })
}

/// The words of a query, lower-cased, each as a LIKE pattern (`!` escapes `%`, `_`, `!`).
fn like_patterns(words: &[String]) -> Vec<String> {
    words
        .iter()
        .map(|w| {
            let mut p = String::from("%");
            for c in w.chars() {
                if matches!(c, '%' | '_' | '!') {
                    p.push('!');
                }
                p.push(c);
            }
            p.push('%');
            p
        })
        .collect()
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

/// `select` (whose first table's rows are wanted) where `hay` holds each of `words` words
/// (`$1`, `$2`, ...), in id order, at most [`SEARCH_LIMIT`] rows.
fn search_sql(select: &str, hay: &str, words: usize) -> String {
    let table = select.split_whitespace().nth(1).and_then(|c| c.split('.').next()).unwrap_or_default();
    let conditions: String = (1..=words).map(|i| format!(" AND lower({hay}) LIKE ${i} ESCAPE '!'")).collect();
    format!("{select} WHERE 1 = 1{conditions} ORDER BY {table}.id LIMIT {SEARCH_LIMIT}")
}

impl Catalog {
    /// Beside the engine's ledger.
    pub fn new(engine: &Engine) -> Catalog {
        Catalog { engine: engine.clone(), pool: engine.store().pool().clone() }
    }

    /// Records what a municipality has set up (replacing what was recorded).
    pub async fn set_services(&self, s: &MunicipalityServices) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM municipality_services WHERE municipality_id = $1")
            .bind(s.municipality)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO municipality_services (municipality_id, library, meibutsu_choice, shops, note) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(s.municipality)
        .bind(i64::from(s.library))
        .bind(i64::from(s.meibutsu_choice))
        .bind(i64::from(s.shops))
        .bind(s.note.clone())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
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
        // One statement: a read-then-write transaction could not wait for SQLite's lock.
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO products (id, municipality_id, name, price_yen, section) \
             SELECT COALESCE(MAX(id), 0) + 1, $1, $2, $3, $4 FROM products RETURNING id",
        )
        .bind(municipality)
        .bind(name.to_owned())
        .bind(price_yen.to_string())
        .bind(section.to_owned())
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }

    /// Adds an online service (`online_shop` or `crowdfunding`); returns its id.
    pub async fn add_online_service(&self, name: &str, name_en: &str, kind: &str) -> anyhow::Result<i64> {
        anyhow::ensure!(matches!(kind, "online_shop" | "crowdfunding"), "unknown online service kind {kind:?}");
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO online_services (id, name, name_en, kind) \
             SELECT COALESCE(MAX(id), 0) + 1, $1, $2, $3 FROM online_services RETURNING id",
        )
        .bind(name.to_owned())
        .bind(name_en.to_owned())
        .bind(kind.to_owned())
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }

    /// Makes a store part of an online service, so the service charges linked members there.
    pub async fn set_shop_online_service(&self, shop: i64, online_service: i64) -> anyhow::Result<()> {
        // The shop's row is written by the engine's materialiser, shortly after it answered.
        let tables = self.engine.tables().await.map_err(|p| anyhow::anyhow!("{}", p.detail))?;
        let done = sqlx::query("UPDATE shops SET online_service_id = $1 WHERE id = $2")
            .bind(online_service)
            .bind(shop)
            .execute(tables.pool())
            .await?;
        anyhow::ensure!(done.rows_affected() == 1, "shop {shop} does not exist");
        Ok(())
    }

    /// One online service.
    pub async fn online_service(&self, id: i64) -> anyhow::Result<Option<OnlineService>> {
        let row =
            sqlx::query("SELECT * FROM online_services WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(online_service_from_row).transpose()
    }

    /// Everything point-navi's pages list.
    pub async fn directory(&self) -> anyhow::Result<Directory> {
        let services = sqlx::query("SELECT * FROM municipality_services ORDER BY municipality_id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(MunicipalityServices {
                    municipality: r.try_get("municipality_id")?,
                    library: r.try_get::<i64, _>("library")? != 0,
                    meibutsu_choice: r.try_get::<i64, _>("meibutsu_choice")? != 0,
                    shops: r.try_get::<i64, _>("shops")? != 0,
                    note: r.try_get("note")?,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        let products = sqlx::query("SELECT * FROM products ORDER BY id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(product_from_row)
            .collect::<anyhow::Result<_>>()?;
        let online_services = sqlx::query("SELECT * FROM online_services ORDER BY id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(online_service_from_row)
            .collect::<anyhow::Result<_>>()?;
        Ok(Directory { services, products, online_services })
    }

    /// Municipalities, shops and products matching every word of `q` (in the name, the
    /// municipality's name or its prefecture), at most [`SEARCH_LIMIT`] of each.
    pub async fn search(&self, q: &str) -> Result<SearchResults, Problem> {
        let words = query_words(q)?;
        // Municipalities and shops are the ledger's rows: wait for the ones already added.
        let tables = self.engine.tables().await?;
        let patterns = like_patterns(&words);
        let n = patterns.len();
        let run = |select: &str, hay: &str| fetch_matching(tables.pool(), search_sql(select, hay, n), &patterns);
        let municipalities = run("SELECT m.* FROM municipalities m", "m.prefecture || ' ' || m.name")
            .await
            .map_err(failure::directory)?;
        let shops = run(
            "SELECT s.* FROM shops s JOIN municipalities m ON m.id = s.municipality_id",
            "s.name || ' ' || m.prefecture || ' ' || m.name",
        )
        .await
        .map_err(failure::directory)?;
        let products = run(
            "SELECT p.* FROM products p JOIN municipalities m ON m.id = p.municipality_id",
            "p.name || ' ' || m.prefecture || ' ' || m.name",
        )
        .await
        .map_err(failure::directory)?;
        Ok(SearchResults {
            query: words.join(" "),
            municipalities: municipalities
                .iter()
                .map(municipality_from_row)
                .collect::<Result<_, _>>()
                .map_err(failure::directory)?,
            shops: shops.iter().map(shop_from_row).collect::<Result<_, _>>().map_err(failure::directory)?,
            products: products.iter().map(product_from_row).collect::<Result<_, _>>().map_err(failure::directory)?,
        })
    }
}

/// Runs a search statement with one LIKE pattern per word.
async fn fetch_matching(pool: &AnyPool, sql: String, patterns: &[String]) -> Result<Vec<AnyRow>, sqlx::Error> {
    let mut query = sqlx::query(&sql);
    for p in patterns {
        query = query.bind(p.clone());
    }
    query.fetch_all(pool).await
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
    }

    #[test]
    fn search_statements_bind_one_pattern_per_word_and_keep_id_order() {
        let sql = search_sql("SELECT m.* FROM municipalities m", "m.name", 2);
        assert!(sql.contains("lower(m.name) LIKE $1 ESCAPE '!' AND lower(m.name) LIKE $2"), "{sql}");
        assert!(sql.ends_with(&format!("ORDER BY m.id LIMIT {SEARCH_LIMIT}")), "{sql}");
    }

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(like_patterns(&["50%_off!".into()]), vec!["%50!%!_off!!%"]);
    }
}
