//! Accounts as their owners read them: kinds, balances, expiry, history, residents.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::TransactionKind;
use crate::Currency;

api_enum! {
    /// What an account is for (docs/domain.md glossary).
    pub enum AccountKind {
        /// A resident's reserved points, not yet assigned to a municipality.
        Reserved,
        /// A resident's points of one municipality.
        Municipal,
        /// A resident's points of one event programme.
        Event,
        /// A municipality's issuer account: points it grants or sells come from here.
        Treasury,
        /// A municipality's account for expired points.
        Breakage,
        /// A partner's clearing account: converted points come from here.
        Clearing,
        /// A shop's or store's receivable account: points spent there arrive here.
        Receivable,
        /// A municipality's account of its vouchers: points issued as vouchers wait here until
        /// a shop takes the voucher or its points go back to the resident.
        Voucher,
    }
}

impl AccountKind {
    /// Resident accounts may never go negative; issuer accounts may.
    pub fn is_resident(self) -> bool {
        matches!(self, AccountKind::Reserved | AccountKind::Municipal | AccountKind::Event)
    }

    /// The name used in SQL and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::Reserved => "reserved",
            AccountKind::Municipal => "municipal",
            AccountKind::Event => "event",
            AccountKind::Treasury => "treasury",
            AccountKind::Breakage => "breakage",
            AccountKind::Clearing => "clearing",
            AccountKind::Receivable => "receivable",
            AccountKind::Voucher => "voucher",
        }
    }

    /// Parses the SQL and JSON name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            AccountKind::Reserved,
            AccountKind::Municipal,
            AccountKind::Event,
            AccountKind::Treasury,
            AccountKind::Breakage,
            AccountKind::Clearing,
            AccountKind::Receivable,
            AccountKind::Voucher,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

api_type! {
    /// Points of one credit that expire together.
    pub struct Expiry {
        /// When they expire.
        pub at: DateTime<Utc>,
        /// How many.
        pub points: i64,
    }
}

api_type! {
    /// An account and its balance.
    pub struct AccountView {
        /// Account id.
        pub id: i64,
        /// What it is for.
        pub kind: AccountKind,
        /// Its currency.
        pub currency: Currency,
        /// Resident, municipality, partner or shop owning it.
        pub owner: i64,
        /// Event programme, for event accounts.
        pub event: Option<i64>,
        /// Posted balance.
        pub balance: i64,
        /// Points under active holds.
        pub held: i64,
        /// `balance - held`: what can be spent now.
        pub available: i64,
        /// The next points to expire, for resident accounts.
        pub next_expiry: Option<Expiry>,
    }
}

api_type! {
    /// All of a resident's accounts at once (`GET /v1/residents/{id}/balances`).
    pub struct ResidentBalances {
        /// The resident.
        pub resident: i64,
        /// Where unassigned reserved points go.
        pub home_municipality: i64,
        /// When the oldest reserved points move to the home municipality, if any are waiting.
        pub reserved_moves_home_at: Option<DateTime<Utc>>,
        /// Reserved, municipal and event accounts.
        pub accounts: Vec<AccountView>,
    }
}

api_type! {
    /// Create a resident (`POST /v1/residents`). Card login and MyKey IDs come later.
    pub struct ResidentRequest {
        /// The home municipality (must take part).
        pub home_municipality: i64,
    }
}

api_type! {
    /// A created resident.
    pub struct ResidentCreated {
        /// Resident id.
        pub resident: i64,
        /// The reserved-points account.
        pub reserved_account: i64,
        /// The home municipality.
        pub home_municipality: i64,
    }
}

api_type! {
    /// One line of an account's history.
    pub struct HistoryEntry {
        /// Ledger order of the transaction.
        pub seq: i64,
        /// The transaction's id.
        pub transaction: Uuid,
        /// Why it happened.
        pub kind: TransactionKind,
        /// Signed points for this account.
        pub amount: i64,
        /// Balance right after.
        pub balance_after: i64,
        /// Commit time.
        pub created_at: DateTime<Utc>,
        /// Free text.
        pub memo: Option<String>,
    }
}

api_type! {
    /// A page of history, newest first.
    pub struct HistoryPage {
        /// The entries.
        pub entries: Vec<HistoryEntry>,
        /// Pass as `cursor` for the next (older) page; absent on the last page.
        pub next_cursor: Option<String>,
    }
}

api_type! {
    /// An account's balance at a past moment (`GET /v1/accounts/{id}/balance?as_of=`).
    pub struct BalanceAsOf {
        /// The account.
        pub account: i64,
        /// The moment asked for.
        pub as_of: DateTime<Utc>,
        /// Posted balance at that moment.
        pub balance: i64,
    }
}
