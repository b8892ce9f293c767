//! The SQL of point vouchers: the rows the materialiser writes (`materialize.rs`), read back
//! for the ledger at start-up, for a redemption's refusal and for the resident's my page.

use anyhow::Context;
use sqlx::Row;

use super::{voucher_from_row as from_row, Tables};
use crate::ledger::Voucher;
use crate::time::Micros;

/// A voucher as its resident's list shows it: the voucher and the names of its places.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedVoucher {
    /// The voucher.
    pub voucher: Voucher,
    /// The municipality's name.
    pub municipality_name: String,
    /// The issuing shop's name.
    pub issued_by_name: String,
    /// The name of the shop that took it.
    pub settled_by_name: Option<String>,
}

impl Tables<'_> {
    /// Voucher `number`, whatever became of it.
    pub async fn voucher(&self, number: u64) -> anyhow::Result<Option<Voucher>> {
        let number = i64::try_from(number).context("a voucher number beyond the column")?;
        let row = sqlx::query("SELECT * FROM vouchers WHERE number = $1")
            .bind(number)
            .fetch_optional(&self.store.pool)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// The resident's vouchers, open ones first, then the latest settled, at most `limit`.
    pub async fn resident_vouchers(
        &self,
        resident: i64,
        since: Micros,
        limit: i64,
    ) -> anyhow::Result<Vec<ListedVoucher>> {
        let rows = sqlx::query(
            "SELECT v.*, m.name AS municipality_name, i.name AS issued_by_name, s.name AS settled_by_name \
             FROM vouchers v JOIN municipalities m ON m.id = v.municipality_id JOIN shops i ON i.id = v.issued_by \
             LEFT JOIN shops s ON s.id = v.settled_by \
             WHERE v.resident_id = $1 AND (v.state = 'open' OR v.issued_at >= $2) \
             ORDER BY CASE WHEN v.state = 'open' THEN 0 ELSE 1 END, v.issued_at DESC LIMIT $3",
        )
        .bind(resident)
        .bind(since)
        .bind(limit)
        .fetch_all(&self.store.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ListedVoucher {
                    voucher: from_row(r)?,
                    municipality_name: r.try_get("municipality_name")?,
                    issued_by_name: r.try_get("issued_by_name")?,
                    settled_by_name: r.try_get("settled_by_name")?,
                })
            })
            .collect()
    }
}
