//! The products: the repository's `meibutsu-products.csv` (prefecture, municipality, product,
//! price in yen with shipping), compiled in.

use anyhow::Context;

const CSV: &str = include_str!("../../../data/meibutsu-products.csv");

/// One product.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct Product {
    /// Its prefecture.
    pub prefecture: String,
    /// Its municipality.
    pub municipality: String,
    /// Its name.
    #[serde(rename = "product")]
    pub name: String,
    /// Yen, shipping included.
    #[serde(rename = "price_yen_incl_shipping")]
    pub price: i64,
}

/// Every product, numbered from 0 in file order.
pub struct Catalog {
    products: Vec<Product>,
}

impl Catalog {
    /// Reads the compiled-in file.
    pub fn load() -> anyhow::Result<Catalog> {
        let mut r = csv::Reader::from_reader(CSV.as_bytes());
        let products = r.deserialize().collect::<Result<Vec<Product>, _>>().context("reading meibutsu-products.csv")?;
        Ok(Catalog { products })
    }

    /// A product by its number.
    pub fn get(&self, id: usize) -> Option<&Product> {
        self.products.get(id)
    }

    /// Products whose name, municipality or prefecture contains every word of `query`, with
    /// their numbers, grouped by prefecture then municipality in file order.
    pub fn search(&self, query: &str) -> Vec<(usize, &Product)> {
        let words: Vec<&str> = query.split_whitespace().take(8).collect();
        let mut found: Vec<(usize, &Product)> = self
            .products
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                words.iter().all(|w| p.name.contains(w) || p.municipality.contains(w) || p.prefecture.contains(w))
            })
            .collect();
        found.sort_by(|a, b| (&a.1.prefecture, &a.1.municipality, a.0).cmp(&(&b.1.prefecture, &b.1.municipality, b.0)));
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_loads_and_search_matches_every_word() {
        let c = Catalog::load().unwrap();
        assert!(c.search("").len() >= 10);
        let maebashi = c.search("前橋市");
        assert!(!maebashi.is_empty() && maebashi.iter().all(|(_, p)| p.municipality == "前橋市"));
        assert!(c.search("前橋市 存在しない").is_empty());
    }
}
