//! The SQL of point-navi's directory: municipalities' services, the online shop's products,
//! online services, and the free-word search over municipalities, shops and products.

use mykey_core::api::{Directory, MunicipalityServices, OnlineService, Product, SearchResults, SEARCH_LIMIT};
use rust_decimal::Decimal;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use super::{municipality_from_row, shop_from_row, Tables};

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

/// `select` (whose first table's rows are wanted) where `hay` holds each of `words` words
/// (`$1`, `$2`, ...), in id order, at most [`SEARCH_LIMIT`] rows.
fn search_sql(select: &str, hay: &str, words: usize) -> String {
    let table = select.split_whitespace().nth(1).and_then(|c| c.split('.').next()).unwrap_or_default();
    let conditions: String = (1..=words).map(|i| format!(" AND lower({hay}) LIKE ${i} ESCAPE '!'")).collect();
    format!("{select} WHERE 1 = 1{conditions} ORDER BY {table}.id LIMIT {SEARCH_LIMIT}")
}

/// Replaces a municipality's services.
pub async fn set_services(pool: &AnyPool, s: &MunicipalityServices) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
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
    tx.commit().await
}

/// Adds a product under the next id.
pub async fn add_product(
    pool: &AnyPool,
    municipality: i64,
    name: &str,
    price_yen: Decimal,
    section: &str,
) -> sqlx::Result<i64> {
    // One statement: a read-then-write transaction could not wait for SQLite's lock.
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO products (id, municipality_id, name, price_yen, section) \
         SELECT COALESCE(MAX(id), 0) + 1, $1, $2, $3, $4 FROM products RETURNING id",
    )
    .bind(municipality)
    .bind(name.to_owned())
    .bind(price_yen.to_string())
    .bind(section.to_owned())
    .fetch_one(pool)
    .await?;
    Ok(id)
}

/// Adds an online service under the next id.
pub async fn add_online_service(pool: &AnyPool, name: &str, name_en: &str, kind: &str) -> sqlx::Result<i64> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO online_services (id, name, name_en, kind) \
         SELECT COALESCE(MAX(id), 0) + 1, $1, $2, $3 FROM online_services RETURNING id",
    )
    .bind(name.to_owned())
    .bind(name_en.to_owned())
    .bind(kind.to_owned())
    .fetch_one(pool)
    .await?;
    Ok(id)
}

/// One online service.
pub async fn online_service(pool: &AnyPool, id: i64) -> anyhow::Result<Option<OnlineService>> {
    let row = sqlx::query("SELECT * FROM online_services WHERE id = $1").bind(id).fetch_optional(pool).await?;
    row.as_ref().map(online_service_from_row).transpose()
}

/// The directory's rows.
pub async fn directory(pool: &AnyPool) -> anyhow::Result<Directory> {
    let services = sqlx::query("SELECT * FROM municipality_services ORDER BY municipality_id")
        .fetch_all(pool)
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
        .fetch_all(pool)
        .await?
        .iter()
        .map(product_from_row)
        .collect::<anyhow::Result<_>>()?;
    let online_services = sqlx::query("SELECT * FROM online_services ORDER BY id")
        .fetch_all(pool)
        .await?
        .iter()
        .map(online_service_from_row)
        .collect::<anyhow::Result<_>>()?;
    Ok(Directory { services, products, online_services })
}

/// Runs a search statement with one LIKE pattern per word.
async fn fetch_matching(pool: &AnyPool, sql: String, patterns: &[String]) -> Result<Vec<AnyRow>, sqlx::Error> {
    let mut query = sqlx::query(&sql);
    for p in patterns {
        query = query.bind(p.clone());
    }
    query.fetch_all(pool).await
}

impl Tables<'_> {
    /// Ties a shop to an online service; false for an unknown shop. The shop's row is the
    /// materialiser's, hence the tables.
    pub async fn set_shop_online_service(&self, shop: i64, online_service: i64) -> sqlx::Result<bool> {
        let done = sqlx::query("UPDATE shops SET online_service_id = $1 WHERE id = $2")
            .bind(online_service)
            .bind(shop)
            .execute(&self.store.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Municipalities, shops and products whose texts hold every one of `words` (lower-cased),
    /// ignoring case, each in id order and at most [`SEARCH_LIMIT`].
    pub async fn search(&self, words: &[String]) -> anyhow::Result<SearchResults> {
        let patterns = like_patterns(words);
        let n = patterns.len();
        let pool = &self.store.pool;
        let run = |select: &str, hay: &str| fetch_matching(pool, search_sql(select, hay, n), &patterns);
        let municipalities = run("SELECT m.* FROM municipalities m", "m.prefecture || ' ' || m.name").await?;
        let shops = run(
            "SELECT s.* FROM shops s JOIN municipalities m ON m.id = s.municipality_id",
            "s.name || ' ' || m.prefecture || ' ' || m.name",
        )
        .await?;
        let products = run(
            "SELECT p.* FROM products p JOIN municipalities m ON m.id = p.municipality_id",
            "p.name || ' ' || m.prefecture || ' ' || m.name",
        )
        .await?;
        Ok(SearchResults {
            query: words.join(" "),
            municipalities: municipalities.iter().map(municipality_from_row).collect::<Result<_, _>>()?,
            shops: shops.iter().map(shop_from_row).collect::<Result<_, _>>()?,
            products: products.iter().map(product_from_row).collect::<Result<_, _>>()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
