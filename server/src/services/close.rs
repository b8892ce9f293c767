//! A shop's daily close (docs/counter.md "Daily close"): the day's points into the shop's
//! account, in Japan's calendar, by municipality, counter device and kind of transaction. The
//! numbers are the ledger's own postings; the devices are named by the request each sent.

use chrono::{NaiveDate, TimeZone};
use mykey_core::api::{DailyClose, DailyCloseLine};
use mykey_core::{Problem, ProblemKind};

use crate::engine::Engine;
use crate::failure;
use crate::time::{self, Micros};

/// The first moment of `date` in Japan and of the day after.
pub fn day_in_japan(date: NaiveDate) -> Result<(Micros, Micros), Problem> {
    let start = |d: NaiveDate| {
        time::japan()
            .from_local_datetime(&d.and_hms_opt(0, 0, 0)?)
            .single()
            .map(|t| time::datetime_to_micros(t.with_timezone(&chrono::Utc)))
    };
    let next = date.succ_opt();
    match (start(date), next.and_then(start)) {
        (Some(from), Some(to)) => Ok((from, to)),
        _ => Err(Problem::new(ProblemKind::InvalidRequest, "the date is out of range").with("field", "date")),
    }
}

/// Today in Japan.
pub fn today_in_japan(now: Micros) -> NaiveDate {
    time::micros_to_datetime(now).with_timezone(&time::japan()).date_naive()
}

/// `shop`'s close of `date`.
pub async fn daily_close(engine: &Engine, shop: i64, date: NaiveDate) -> Result<DailyClose, Problem> {
    let (from, to) = day_in_japan(date)?;
    let tables = engine.tables().await?;
    let account = tables
        .shop(shop)
        .await
        .map_err(failure::ledger_read)?
        .ok_or_else(|| Problem::new(ProblemKind::NotFound, "no such shop"))?
        .receivable_account;
    let rows = tables.daily_close(account, from, to).await.map_err(failure::ledger_read)?;
    let lines: Vec<DailyCloseLine> = rows
        .into_iter()
        .map(|r| DailyCloseLine {
            municipality: r.municipality,
            device: r.device,
            device_name: r.device_name,
            kind: r.kind,
            count: r.count,
            points: r.points,
        })
        .collect();
    let net_points = lines.iter().map(|l| l.points).sum();
    Ok(DailyClose {
        shop,
        date,
        from: time::micros_to_datetime(from),
        to: time::micros_to_datetime(to),
        lines,
        net_points,
    })
}

/// A text cell a spreadsheet will not read as a formula (OWASP's CSV injection advice): a
/// device's name is whatever staff typed.
fn cell(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

/// The close as CSV: a header, one row per line, and the day's net total.
pub fn csv(close: &DailyClose) -> String {
    let mut w = csv::Writer::from_writer(Vec::with_capacity(128 * (close.lines.len() + 2)));
    let date = close.date.to_string();
    w.write_record(["date", "shop", "municipality", "device", "device_name", "kind", "count", "points"])
        .expect("writing to memory");
    for l in &close.lines {
        w.write_record([
            date.as_str(),
            &close.shop.to_string(),
            &l.municipality.to_string(),
            &l.device.map(|d| d.to_string()).unwrap_or_default(),
            &cell(l.device_name.as_deref().unwrap_or_default()),
            l.kind.as_str(),
            &l.count.to_string(),
            &l.points.to_string(),
        ])
        .expect("writing to memory");
    }
    let total_count: i64 = close.lines.iter().map(|l| l.count).sum();
    w.write_record([
        date.as_str(),
        &close.shop.to_string(),
        "",
        "",
        "",
        "total",
        &total_count.to_string(),
        &close.net_points.to_string(),
    ])
    .expect("writing to memory");
    String::from_utf8(w.into_inner().expect("writing to memory")).expect("CSV of UTF-8 text")
}

#[cfg(test)]
mod tests {
    use super::*;
    use mykey_core::api::TransactionKind;

    #[test]
    fn a_day_in_japan_starts_at_15_00_utc_the_day_before() {
        let (from, to) = day_in_japan(NaiveDate::from_ymd_opt(2026, 12, 7).unwrap()).unwrap();
        assert_eq!(time::micros_to_datetime(from).to_rfc3339(), "2026-12-06T15:00:00+00:00");
        assert_eq!(to - from, time::DAY);
        assert_eq!(today_in_japan(from), NaiveDate::from_ymd_opt(2026, 12, 7).unwrap());
        assert_eq!(today_in_japan(from - 1), NaiveDate::from_ymd_opt(2026, 12, 6).unwrap());
        assert!(day_in_japan(NaiveDate::MAX).is_err());
    }

    #[test]
    fn the_csv_has_a_row_per_line_a_total_and_no_formula() {
        let close = DailyClose {
            shop: 6,
            date: NaiveDate::from_ymd_opt(2026, 12, 7).unwrap(),
            from: time::micros_to_datetime(0),
            to: time::micros_to_datetime(time::DAY),
            lines: vec![
                DailyCloseLine {
                    municipality: 1,
                    device: Some(uuid::Uuid::nil()),
                    device_name: Some("=HYPERLINK(\"x\")".into()),
                    kind: TransactionKind::Payment,
                    count: 2,
                    points: 1500,
                },
                DailyCloseLine {
                    municipality: 1,
                    device: None,
                    device_name: None,
                    kind: TransactionKind::Refund,
                    count: 1,
                    points: -200,
                },
            ],
            net_points: 1300,
        };
        let text = csv(&close);
        let rows: Vec<&str> = text.lines().collect();
        assert_eq!(rows[0], "date,shop,municipality,device,device_name,kind,count,points");
        assert_eq!(
            rows[1],
            "2026-12-07,6,1,00000000-0000-0000-0000-000000000000,\"'=HYPERLINK(\"\"x\"\")\",payment,2,1500"
        );
        assert_eq!(rows[2], "2026-12-07,6,1,,,refund,1,-200");
        assert_eq!(rows[3], "2026-12-07,6,,,,total,3,1300");
    }
}
