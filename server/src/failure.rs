//! What failed on the server's side, as one type: each variant names the thing that could not
//! be read or stored, and [`Failure`] becomes a problem in one place (`From<Failure> for
//! Problem`), which logs the whole error chain there and keeps it out of the answer.

use mykey_core::{Problem, ProblemKind};

/// The error underneath: a database or I/O error, with its chain.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A failure of the server, not of the request.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Reading the ledger's tables (balances, histories, holds, settlements, the log).
    #[error("the server failed to read the ledger")]
    LedgerRead(#[source] Cause),
    /// Storing a MyKey ID, its session, settings or usage event.
    #[error("the server failed to store the MyKey ID; nothing was changed")]
    MykeyId(#[source] Cause),
    /// Storing or reading a partner's or online service's member-ID link.
    #[error("the server failed to store the service link; nothing was changed")]
    ServiceLink(#[source] Cause),
    /// Storing or reading a facility's card service or patron link.
    #[error("the server failed to store the facility's patron link; nothing was changed")]
    PatronLink(#[source] Cause),
    /// Storing or reading coupon codes.
    #[error("the server failed to store the coupons; nothing was changed")]
    Coupons(#[source] Cause),
    /// Reading point-navi's directory or search.
    #[error("the server failed to read the directory")]
    Directory(#[source] Cause),
    /// Storing or reading a checkout session or its refunds.
    #[error("the server failed to store the checkout; send the request again")]
    Checkout(#[source] Cause),
    /// Storing or reading a store's or partner's embedding settings, secrets or events.
    #[error("the server failed to store the embedding settings or events; send the request again")]
    Embedding(#[source] Cause),
    /// Noting which counter device sent a request failed; the ledger was not asked.
    #[error("the server failed to note the counter's request; nothing was charged; send it again")]
    Counter(#[source] Cause),
}

impl Failure {
    /// The underlying error, whole.
    fn chain(&self) -> String {
        let mut text = String::new();
        let mut next = std::error::Error::source(self);
        while let Some(e) = next {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&e.to_string());
            next = e.source();
        }
        text
    }
}

impl From<Failure> for Problem {
    fn from(f: Failure) -> Problem {
        tracing::error!(error = f.chain(), "{f}");
        if std::error::Error::source(&f).is_some_and(is_disk_full) {
            return disk_full();
        }
        Problem::new(ProblemKind::Internal, f.to_string())
    }
}

/// The answer to a write refused because the database's disk is full: nothing was stored,
/// and the same request (same id) may be sent again once the operator has made room.
pub fn disk_full() -> Problem {
    Problem::new(
        ProblemKind::Unavailable,
        "the server's disk is full: nothing was stored; send the request again (with the same id) later",
    )
}

/// Whether `e` or one of its causes says the disk is full: SQLite's `SQLITE_FULL` (13),
/// PostgreSQL's `disk_full` (53100), or the operating system's `ENOSPC`.
pub fn is_disk_full(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(sqlx::Error::Database(db)) = e.downcast_ref::<sqlx::Error>() {
            if matches!(db.code().as_deref(), Some("13" | "53100")) {
                return true;
            }
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::StorageFull || io.raw_os_error() == Some(28) {
                return true;
            }
        }
        let text = e.to_string();
        if text.contains("database or disk is full") || text.contains("No space left on device") {
            return true;
        }
        next = e.source();
    }
    false
}

/// The problem of [`Failure::MykeyId`] of `e`, and so on: for `map_err`.
macro_rules! makers {
    ($($fn_name:ident => $variant:ident,)*) => {
        $(
            #[doc = concat!("The problem of [`Failure::", stringify!($variant), "`] of `e`.")]
            pub fn $fn_name(e: impl Into<anyhow::Error>) -> Problem {
                Failure::$variant(e.into().into()).into()
            }
        )*
    };
}

makers! {
    ledger_read => LedgerRead,
    mykey_id => MykeyId,
    service_link => ServiceLink,
    patron_link => PatronLink,
    coupons => Coupons,
    directory => Directory,
    checkout => Checkout,
    embedding => Embedding,
    counter => Counter,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_says_what_failed_and_becomes_an_internal_problem() {
        let e = anyhow::anyhow!("disk I/O error").context("writing service_links");
        let f = Failure::ServiceLink(e.into());
        assert_eq!(f.chain(), "writing service_links: disk I/O error");
        let p = Problem::from(f);
        assert_eq!(p.kind(), Some(ProblemKind::Internal));
        assert!(p.detail.contains("service link"), "{}", p.detail);
        assert!(!p.detail.contains("disk"), "the cause stays in the log: {}", p.detail);
        assert!(directory(anyhow::anyhow!("x")).detail.contains("directory"));
    }

    #[test]
    fn a_full_disk_is_told_apart_and_answered_unavailable() {
        let full = std::io::Error::from_raw_os_error(28);
        let e = anyhow::Error::new(full).context("appending to the batch journal");
        assert!(is_disk_full(e.as_ref()));
        let p = checkout(anyhow::Error::new(std::io::Error::from_raw_os_error(28)));
        assert_eq!((p.kind(), p.status), (Some(ProblemKind::Unavailable), 503));
        assert!(p.detail.contains("disk is full"), "{}", p.detail);
        assert!(!is_disk_full(anyhow::anyhow!("disk I/O error").as_ref()));
    }
}
