//! Request and response bodies of the `/v1` API. Amounts in requests are decimals so that a
//! fraction reaches the ledger and is refused as `fractional-points`; amounts in responses are
//! whole points.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::text::Memo;
use crate::Currency;

macro_rules! api_type {
    ($(#[$m:meta])* pub struct $name:ident { $($body:tt)* }) => {
        $(#[$m])*
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(deny_unknown_fields)]
        pub struct $name { $($body)* }
    };
}

macro_rules! api_enum {
    ($(#[$m:meta])* pub enum $name:ident { $($body:tt)* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($body)* }
    };
}

pub(crate) use {api_enum, api_type};

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
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

api_enum! {
    /// Why a transaction happened.
    pub enum TransactionKind {
        /// Points spent at a shop, facility or store.
        Payment,
        /// Administrative or event points granted by a municipality.
        Grant,
        /// Partner points converted into reserved points.
        Conversion,
        /// Reserved points assigned to a municipality, by the resident or after
        /// [`crate::rules::RESERVED_WAIT_DAYS`].
        Assignment,
        /// Expired points moved to the municipality's breakage account.
        Expiry,
        /// A multi-leg transaction entered by an operator.
        Adjustment,
    }
}

impl TransactionKind {
    /// The name used in SQL and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            TransactionKind::Payment => "payment",
            TransactionKind::Grant => "grant",
            TransactionKind::Conversion => "conversion",
            TransactionKind::Assignment => "assignment",
            TransactionKind::Expiry => "expiry",
            TransactionKind::Adjustment => "adjustment",
        }
    }

    /// Parses the SQL and JSON name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            TransactionKind::Payment,
            TransactionKind::Grant,
            TransactionKind::Conversion,
            TransactionKind::Assignment,
            TransactionKind::Expiry,
            TransactionKind::Adjustment,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

api_type! {
    /// Spend a resident's points at a shop (`POST /v1/payments`).
    pub struct PaymentRequest {
        /// Client-chosen idempotency id.
        pub id: Uuid,
        /// The paying resident.
        pub resident: i64,
        /// Whose points to spend.
        pub municipality: i64,
        /// Spend event points of this programme instead of municipal points.
        #[serde(default)]
        pub event: Option<i64>,
        /// The shop, facility or store receiving the points.
        pub shop: i64,
        /// Whole points, greater than zero.
        #[cfg_attr(feature = "openapi", schema(value_type = f64))]
        pub amount: Decimal,
        /// Free text shown in the history.
        #[serde(default)]
        pub memo: Option<Memo>,
    }
}

api_type! {
    /// A municipality grants administrative or event points (`POST /v1/grants`).
    pub struct GrantRequest {
        /// Client-chosen idempotency id.
        pub id: Uuid,
        /// The receiving resident.
        pub resident: i64,
        /// The granting municipality.
        pub municipality: i64,
        /// Grant event points of this programme instead of municipal points.
        #[serde(default)]
        pub event: Option<i64>,
        /// Whole points, greater than zero.
        #[cfg_attr(feature = "openapi", schema(value_type = f64))]
        pub amount: Decimal,
        /// When these points expire; defaults to the municipality's or event's rule.
        #[serde(default)]
        pub expires_at: Option<DateTime<Utc>>,
        /// Free text shown in the history (e.g. "clean-up volunteering").
        #[serde(default)]
        pub memo: Option<Memo>,
    }
}

api_type! {
    /// A partner converts its member's points into reserved points (`POST /v1/conversions`).
    pub struct ConversionRequest {
        /// Client-chosen idempotency id.
        pub id: Uuid,
        /// The converting partner.
        pub partner: i64,
        /// The receiving resident.
        pub resident: i64,
        /// Amount in the partner's own points or miles.
        #[cfg_attr(feature = "openapi", schema(value_type = f64))]
        pub partner_points: Decimal,
        /// Municipal points per partner point; the product must be whole.
        #[cfg_attr(feature = "openapi", schema(value_type = f64))]
        pub rate: Decimal,
        /// Free text shown in the history.
        #[serde(default)]
        pub memo: Option<Memo>,
    }
}

api_type! {
    /// A resident assigns reserved points to a municipality (`POST /v1/assignments`).
    pub struct AssignmentRequest {
        /// Client-chosen idempotency id.
        pub id: Uuid,
        /// The resident.
        pub resident: i64,
        /// The municipality taking part that receives the points.
        pub municipality: i64,
        /// Whole points, greater than zero.
        #[cfg_attr(feature = "openapi", schema(value_type = f64))]
        pub amount: Decimal,
    }
}

api_type! {
    /// One leg of an operator's multi-leg transaction.
    pub struct PostingRequest {
        /// The account.
        pub account: i64,
        /// Signed whole points: negative debits, positive credits.
        #[cfg_attr(feature = "openapi", schema(value_type = f64))]
        pub amount: Decimal,
    }
}

api_type! {
    /// An operator's multi-leg transaction (`POST /v1/transactions`); all legs or none.
    pub struct TransactionRequest {
        /// Client-chosen idempotency id.
        pub id: Uuid,
        /// The legs; they must sum to zero in every currency.
        pub postings: Vec<PostingRequest>,
        /// Expiry for points credited to resident accounts; defaults per account.
        #[serde(default)]
        pub expires_at: Option<DateTime<Utc>>,
        /// Free text shown in the history.
        #[serde(default)]
        pub memo: Option<Memo>,
    }
}

api_type! {
    /// Authorise points for a later capture (`POST /v1/holds`).
    pub struct HoldRequest {
        /// Client-chosen idempotency id; it is also the hold's id.
        pub id: Uuid,
        /// The paying resident.
        pub resident: i64,
        /// Whose points to hold.
        pub municipality: i64,
        /// Hold event points of this programme instead of municipal points.
        #[serde(default)]
        pub event: Option<i64>,
        /// The shop that may capture.
        pub shop: i64,
        /// Whole points, greater than zero.
        #[cfg_attr(feature = "openapi", schema(value_type = f64))]
        pub amount: Decimal,
        /// Seconds until the hold expires and releases the points (1 to 604800).
        pub timeout_seconds: u32,
    }
}

api_type! {
    /// Capture all or part of a hold (`POST /v1/holds/{hold}/capture`).
    pub struct CaptureRequest {
        /// Client-chosen idempotency id.
        pub id: Uuid,
        /// Points to capture; the whole hold when absent.
        #[serde(default)]
        #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
        pub amount: Option<Decimal>,
    }
}

api_type! {
    /// Release a hold without capturing (`POST /v1/holds/{hold}/void`).
    pub struct VoidRequest {
        /// Client-chosen idempotency id.
        pub id: Uuid,
    }
}

api_type! {
    /// One leg of a committed transaction.
    pub struct Posting {
        /// The account.
        pub account: i64,
        /// Its currency.
        pub currency: Currency,
        /// Signed points.
        pub amount: i64,
        /// The account's balance right after this leg.
        pub balance_after: i64,
    }
}

api_type! {
    /// A committed transaction: the answer to every write that moves points.
    pub struct TransactionReceipt {
        /// The client's id.
        pub id: Uuid,
        /// Position in the ledger's total order.
        pub seq: i64,
        /// Why it happened.
        pub kind: TransactionKind,
        /// Commit time.
        pub created_at: DateTime<Utc>,
        /// Free text.
        pub memo: Option<String>,
        /// The legs, summing to zero per currency.
        pub postings: Vec<Posting>,
        /// Position of this transaction's leaf in the tamper-evident log.
        pub leaf_index: u64,
        /// The leaf's hash, base64 (`SHA-256(0x00 || leaf)`); check it against a checkpoint
        /// with an inclusion proof from `/v1/log/inclusion`.
        pub leaf_hash: String,
    }
}

api_enum! {
    /// Where a hold stands. Each hold leaves `active` at most once.
    pub enum HoldState {
        /// Points are held.
        Active,
        /// Captured (in full or part); the rest released.
        Captured,
        /// Released by the shop.
        Voided,
        /// Released at its timeout.
        Expired,
    }
}

impl HoldState {
    /// The name used in SQL and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            HoldState::Active => "active",
            HoldState::Captured => "captured",
            HoldState::Voided => "voided",
            HoldState::Expired => "expired",
        }
    }

    /// Parses the SQL and JSON name.
    pub fn parse(s: &str) -> Option<Self> {
        [HoldState::Active, HoldState::Captured, HoldState::Voided, HoldState::Expired]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

api_type! {
    /// A hold and where it stands.
    pub struct HoldReceipt {
        /// The hold's id (the id of the request that created it).
        pub hold: Uuid,
        /// The resident account the points are held in.
        pub account: i64,
        /// The shop's receivable account.
        pub shop_account: i64,
        /// Points held.
        pub amount: i64,
        /// Current state.
        pub state: HoldState,
        /// When an active hold releases by itself.
        pub expires_at: DateTime<Utc>,
        /// The capture transaction, once captured.
        pub capture: Option<TransactionReceipt>,
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

api_type! {
    /// A municipality taking part.
    pub struct Municipality {
        /// Id used everywhere in the API.
        pub id: i64,
        /// JIS prefecture code, two digits.
        pub prefecture_code: String,
        /// Prefecture name.
        pub prefecture: String,
        /// Name.
        pub name: String,
        /// `prefecture` or `municipality`.
        pub kind: String,
        /// Issuer account.
        pub treasury_account: i64,
        /// Expired-points account.
        pub breakage_account: i64,
    }
}

api_type! {
    /// A partner company.
    pub struct Partner {
        /// Id used everywhere in the API.
        pub id: i64,
        /// Japanese name.
        pub name: String,
        /// English name.
        pub name_en: String,
        /// Partner's point kind (miles, card points...).
        pub point_kind: String,
        /// `id_linkage`, `coupon_paper_mail`, `coupon_email` or `coupon_url`.
        pub exchange_method: String,
        /// Clearing account.
        pub clearing_account: i64,
    }
}

api_type! {
    /// A shop, facility or online store accepting one municipality's points.
    pub struct Shop {
        /// Id used everywhere in the API.
        pub id: i64,
        /// Name.
        pub name: String,
        /// The municipality whose points it accepts.
        pub municipality: i64,
        /// Receivable account.
        pub receivable_account: i64,
        /// The online service (online shop, crowdfunding) it belongs to, if any.
        pub online_service: Option<i64>,
    }
}

api_type! {
    /// What a municipality has set up (`GET /v1/directory`): where its points and the card work.
    pub struct MunicipalityServices {
        /// The municipality.
        pub municipality: i64,
        /// The My Number Card works as a library card.
        pub library: bool,
        /// Its points buy its products at the online shop (めいぶつチョイス).
        pub meibutsu_choice: bool,
        /// Its points are taken at shops and facilities.
        pub shops: bool,
        /// When the services start, as the municipality announced.
        pub note: String,
    }
}

api_type! {
    /// A product of the online shop, bought with its municipality's points.
    pub struct Product {
        /// Id.
        pub id: i64,
        /// The municipality whose product (and points) it is.
        pub municipality: i64,
        /// Name.
        pub name: String,
        /// Price in yen, shipping included.
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        pub price_yen: Decimal,
        /// `recommended` or `popular`.
        pub section: String,
    }
}

api_type! {
    /// An online shop or crowdfunding site that takes points by a member ID the resident links.
    pub struct OnlineService {
        /// Id.
        pub id: i64,
        /// Japanese name.
        pub name: String,
        /// English name.
        pub name_en: String,
        /// `online_shop` or `crowdfunding`.
        pub kind: String,
    }
}

api_type! {
    /// Point-navi's directory (`GET /v1/directory`, public).
    #[derive(Default)]
    pub struct Directory {
        /// Municipalities with at least one service set up.
        pub services: Vec<MunicipalityServices>,
        /// The online shop's products.
        pub products: Vec<Product>,
        /// Online services residents can link.
        pub online_services: Vec<OnlineService>,
    }
}

api_type! {
    /// Free-word search over municipalities, shops and products (`GET /v1/search?q=`).
    pub struct SearchResults {
        /// The words searched for, as the server read them.
        pub query: String,
        /// Municipalities whose name or prefecture matches.
        pub municipalities: Vec<Municipality>,
        /// Shops, facilities and online stores whose name or municipality matches.
        pub shops: Vec<Shop>,
        /// Products whose name or municipality matches.
        pub products: Vec<Product>,
    }
}

/// The most results of one kind a search returns.
pub const SEARCH_LIMIT: usize = 50;

/// The longest search query, in characters.
pub const SEARCH_QUERY_MAX: usize = 64;

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
        /// Notices queued.
        pub notices_queued: i64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn payment_request_keeps_fractional_amounts_for_the_ledger_to_refuse() {
        let r: PaymentRequest = serde_json::from_str(
            r#"{"id":"7b0c8f6e-9a43-4c55-8a8e-5b1f5c2a9d10","resident":1,"municipality":2,"shop":3,"amount":1.5}"#,
        )
        .unwrap();
        assert!(crate::Points::from_decimal(r.amount).is_err());
    }

    #[test]
    fn unknown_fields_are_refused() {
        let e = serde_json::from_str::<VoidRequest>(r#"{"id":"7b0c8f6e-9a43-4c55-8a8e-5b1f5c2a9d10","amount":3}"#);
        assert!(e.is_err());
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for k in [AccountKind::Reserved, AccountKind::Receivable, AccountKind::Clearing] {
            assert_eq!(AccountKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(TransactionKind::parse("expiry"), Some(TransactionKind::Expiry));
        assert_eq!(HoldState::parse("voided"), Some(HoldState::Voided));
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
