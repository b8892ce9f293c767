//! The operator's side: the scheduled jobs' report and settlement statements.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

api_type! {
    /// Result of one run of the scheduled jobs.
    pub struct JobsReport {
        /// Lots moved to breakage.
        pub expired_points: i64,
        /// Expiry transactions written.
        pub expiry_transactions: i64,
        /// Reserved points moved to home municipalities.
        pub moved_reserved_points: i64,
        /// Assignment transactions written.
        pub assignment_transactions: i64,
        /// Holds released at their timeout.
        pub expired_holds: i64,
        /// Vouchers unspent at their expiry whose points went back to their residents.
        pub returned_vouchers: i64,
        /// Notices queued.
        pub notices_queued: i64,
    }
}

api_type! {
    /// What a partner owes a municipality for points its members' conversions brought there
    /// (docs/domain.md "Partner conversion": the partner buys those points at 1 yen each).
    pub struct SettlementLine {
        /// The partner.
        pub partner: i64,
        /// Its name.
        pub partner_name: String,
        /// The municipality the points went to.
        pub municipality: i64,
        /// Its name.
        pub municipality_name: String,
        /// Points assigned there (from reserved points the partner's conversions gave).
        pub points: i64,
        /// What the partner pays the municipality, in yen (1 point = 1 yen).
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        pub yen: Decimal,
        /// Assignments counted.
        pub assignments: i64,
    }
}

api_type! {
    /// `GET /v1/settlements`: a period's statement, per partner and municipality.
    pub struct SettlementStatement {
        /// Start of the period (inclusive).
        pub from: DateTime<Utc>,
        /// End of the period (exclusive).
        pub to: DateTime<Utc>,
        /// One line per partner and municipality with something to settle.
        pub lines: Vec<SettlementLine>,
        /// Sum of the lines, in yen.
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        pub total_yen: Decimal,
    }
}
