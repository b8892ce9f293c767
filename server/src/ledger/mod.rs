//! The ledger's state and every rule that changes it.
//!
//! Plain data and plain functions: no I/O, no clock, no locks. The engine (`engine/`) owns
//! one [`Ledger`], feeds it requests one at a time, and persists the [`Changes`] each batch
//! produces. Every operation validates completely before it mutates anything, so a refused
//! request leaves the state exactly as it was. The invariants are stated once, in
//! [`Ledger::check_invariants`].

use std::collections::{BTreeMap, BTreeSet, HashMap};

use mykey_core::api::{
    AccountKind, AssignmentRequest, ConversionRequest, GrantRequest, HoldReceipt, HoldRequest, HoldState, JobsReport,
    PaymentRequest, Posting, ResidentCreated, TransactionKind, TransactionReceipt, TransactionRequest,
};
use mykey_core::rules::VOUCHERS_OPEN_PER_RESIDENT;
use mykey_core::text::Memo;
use mykey_core::voucher::{VoucherState, VoucherStep};
use mykey_core::{AmountError, Currency, Points, SignedPoints};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[cfg(not(feature = "bench-without-log"))]
use crate::log::{Log, LogLeaf};
use crate::time::{micros_to_datetime, Micros, DAY, SECOND};
use leaf::{transaction_leaf, usage_leaf, UsageEvent};

mod bounds;
pub mod leaf;
mod refusal;
mod vouchers;

pub use bounds::*;
pub use refusal::Refusal;
pub use vouchers::{Voucher, VoucherIssue, VoucherRedemption, VOUCHER_LOTS_MAX};

type Result<T> = std::result::Result<T, Refusal>;

/// An account and its balances.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Id.
    pub id: i64,
    /// What it is for.
    pub kind: AccountKind,
    /// Its unit.
    pub currency: Currency,
    /// Resident, municipality, partner or shop id.
    pub owner: i64,
    /// Event programme, for event accounts.
    pub event: Option<i64>,
    /// Shard key: the municipality this account's rows live with (0 for partners).
    pub municipality: i64,
    /// Posted balance.
    pub balance: i64,
    /// Sum of this account's active holds.
    pub held: i64,
    /// Creation time.
    pub created_at: Micros,
}

/// Points of one credit to a resident account, consumed in expiry order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lot {
    /// Id.
    pub id: i64,
    /// The resident account.
    pub account: i64,
    /// The transaction that credited it.
    pub seq: i64,
    /// Why the points arrived.
    pub source: TransactionKind,
    /// The partner whose conversion the points came from, if any.
    pub partner: Option<i64>,
    /// Points credited.
    pub amount: i64,
    /// Points left.
    pub remaining: i64,
    /// For reserved lots: when they move home; otherwise when they expire.
    pub expires_at: Micros,
    /// Credit time.
    pub created_at: Micros,
}

/// A two-phase payment's first phase.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// Id (the creating request's id).
    pub id: Uuid,
    /// Resident account.
    pub account: i64,
    /// Shop receivable account.
    pub shop_account: i64,
    /// Points held.
    pub amount: i64,
    /// State; leaves `Active` at most once.
    pub state: HoldState,
    /// Automatic release time.
    pub expires_at: Micros,
    /// The capture transaction.
    pub capture_seq: Option<i64>,
    /// Creation time.
    pub created_at: Micros,
    /// When it left `Active`.
    pub resolved_at: Option<Micros>,
}

/// One leg of a committed transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostingRow {
    /// Account.
    pub account: i64,
    /// Signed points.
    pub amount: i64,
    /// Balance right after.
    pub balance_after: i64,
}

/// A committed transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    /// Total order.
    pub seq: i64,
    /// Client id (or a fresh one for jobs).
    pub id: Uuid,
    /// Why.
    pub kind: TransactionKind,
    /// Shard key.
    pub municipality: i64,
    /// Free text.
    pub memo: Option<String>,
    /// Commit time (monotonic).
    pub created_at: Micros,
    /// Legs.
    pub postings: Vec<PostingRow>,
}

/// A municipality taking part.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Municipality {
    /// Id.
    pub id: i64,
    /// JIS prefecture code.
    pub prefecture_code: String,
    /// Prefecture name.
    pub prefecture: String,
    /// Name.
    pub name: String,
    /// `prefecture` or `municipality`.
    pub kind: String,
    /// Lifetime of its municipal points.
    pub expiry_days: i64,
    /// Issuer account.
    pub treasury: i64,
    /// Expired-points account.
    pub breakage: i64,
}

/// A partner company.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partner {
    /// Id.
    pub id: i64,
    /// Japanese name.
    pub name: String,
    /// English name.
    pub name_en: String,
    /// Its own point kind.
    pub point_kind: String,
    /// Conversion method.
    pub exchange_method: String,
    /// Clearing account (reserved currency).
    pub clearing: i64,
}

/// A shop, facility or store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shop {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Whose points it accepts.
    pub municipality: i64,
    /// Receivable account.
    pub receivable: i64,
}

/// An event programme with its own points.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Id.
    pub id: i64,
    /// Organising municipality.
    pub municipality: i64,
    /// Name.
    pub name: String,
    /// When its points expire.
    pub expires_at: Micros,
}

/// What a refund gives points back for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundOf {
    /// A store's checkout session.
    #[default]
    Checkout,
    /// A payment at a shop's counter.
    CounterPayment,
}

impl RefundOf {
    /// A checkout's refund serialises as it did before counters refunded, so that its
    /// fingerprint, and with it a retry's answer, stays the same.
    fn is_checkout(&self) -> bool {
        *self == RefundOf::Checkout
    }
}

/// A refund as the ledger posts it (`Ledger::refund`): a checkout's or a counter payment's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RefundPosting {
    /// The refund's transaction id.
    pub id: Uuid,
    /// What is refunded.
    #[serde(skip_serializing_if = "RefundOf::is_checkout")]
    pub of: RefundOf,
    /// The checkout session or counter payment refunded.
    #[serde(rename = "session")]
    pub refunded: Uuid,
    /// The store that gives the points back.
    pub shop: i64,
    /// The resident who paid.
    pub resident: i64,
    /// Whose points were paid.
    pub municipality: i64,
    /// The event programme whose points were paid, if any.
    pub event: Option<i64>,
    /// Points given back.
    pub points: i64,
}

/// A resident of the points cloud.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resident {
    /// Id.
    pub id: i64,
    /// Where reserved points go after [`RESERVED_WAIT`].
    pub home: i64,
    /// Reserved-points account.
    pub reserved: i64,
    /// Creation time.
    pub created_at: Micros,
}

/// What a notice tells the resident; the mailer sends it to those who chose its kind of
/// notice (`mykey_core::identity::Notices`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// Points granted: `{municipality, event, points, transaction}`.
    PointsGranted,
    /// Points expired: `{account, municipality, event, points, transaction}`.
    PointsExpired,
    /// Points spent at a shop (a payment or a hold's capture): `{shop, shop_name, municipality,
    /// points, transaction, memo}`.
    Payment,
    /// Points a store gave back: the same fields as a payment.
    Refund,
    /// An unspent voucher expired and its points came back: `{number, municipality, points,
    /// transaction}`.
    VoucherReturned,
}

impl NoticeKind {
    /// The name in SQL.
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::PointsGranted => "points_granted",
            NoticeKind::PointsExpired => "points_expired",
            NoticeKind::Payment => "payment",
            NoticeKind::Refund => "refund",
            NoticeKind::VoucherReturned => "voucher_returned",
        }
    }

    /// Parses the name in SQL.
    pub fn parse(s: &str) -> Option<NoticeKind> {
        [
            NoticeKind::PointsGranted,
            NoticeKind::PointsExpired,
            NoticeKind::Payment,
            NoticeKind::Refund,
            NoticeKind::VoucherReturned,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// A notice for the resident, sent later by the outbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// Id.
    pub id: i64,
    /// Addressee.
    pub resident: i64,
    /// What it tells.
    pub kind: NoticeKind,
    /// JSON details.
    pub payload: String,
    /// Queue time.
    pub created_at: Micros,
}

/// Everything one batch changed, as the latest copy of each row; the storage writes it in
/// one database transaction.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Changes {
    /// New or changed accounts.
    pub accounts: BTreeMap<i64, Account>,
    /// New or changed lots.
    pub lots: BTreeMap<i64, Lot>,
    /// New or changed holds.
    pub holds: BTreeMap<Uuid, Hold>,
    /// New or changed vouchers.
    pub vouchers: BTreeMap<u64, Voucher>,
    /// New transactions, in order.
    pub transactions: Vec<Transaction>,
    /// New residents.
    pub residents: Vec<Resident>,
    /// New municipalities.
    pub municipalities: Vec<Municipality>,
    /// New partners.
    pub partners: Vec<Partner>,
    /// New shops.
    pub shops: Vec<Shop>,
    /// New events.
    pub events: Vec<Event>,
    /// Queued notices.
    pub notices: Vec<Notice>,
    /// New log leaves, in order (journaled without the bytes of transaction leaves).
    #[serde(serialize_with = "crate::ledger::leaf::serialize_without_transaction_data")]
    pub log_leaves: Vec<LogLeaf>,
    /// MyKey ID usage events logged: (event id, leaf index).
    pub usage: Vec<(Uuid, u64)>,
    /// New stored hashes of the log's tree, as (stored index, hash).
    pub log_hashes: Vec<(u64, crate::log::Hash)>,
}

impl Changes {
    /// Folds a later batch's changes into this one: the later copy of a row wins.
    pub fn merge(&mut self, later: Changes) {
        self.accounts.extend(later.accounts);
        self.lots.extend(later.lots);
        self.holds.extend(later.holds);
        self.vouchers.extend(later.vouchers);
        self.transactions.extend(later.transactions);
        self.residents.extend(later.residents);
        self.municipalities.extend(later.municipalities);
        self.partners.extend(later.partners);
        self.shops.extend(later.shops);
        self.events.extend(later.events);
        self.notices.extend(later.notices);
        self.log_leaves.extend(later.log_leaves);
        self.usage.extend(later.usage);
        self.log_hashes.extend(later.log_hashes);
    }

    /// True when the batch changed nothing.
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
            && self.lots.is_empty()
            && self.holds.is_empty()
            && self.vouchers.is_empty()
            && self.transactions.is_empty()
            && self.residents.is_empty()
            && self.municipalities.is_empty()
            && self.partners.is_empty()
            && self.shops.is_empty()
            && self.events.is_empty()
            && self.notices.is_empty()
            && self.log_leaves.is_empty()
            && self.usage.is_empty()
    }
}

/// Where a resident's non-reserved points of one kind live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Slot {
    Municipal(i64),
    Event(i64),
}

/// How a credited lot is described.
#[derive(Clone, Copy, Debug)]
struct LotSpec {
    partner: Option<i64>,
    expires_at: Option<Micros>,
}

/// One leg to post.
#[derive(Clone, Copy, Debug)]
struct Leg {
    account: i64,
    amount: i64,
    lot: LotSpec,
}

impl Leg {
    fn new(account: i64, amount: i64) -> Self {
        Leg { account, amount, lot: LotSpec { partner: None, expires_at: None } }
    }
}

/// A hash map with foldhash instead of SipHash: every payment looks up a few accounts and
/// lots by id, and those look-ups were a tenth of the runtime threads' samples in a profile
/// of the payment benchmark. Keys are the ledger's own ids and client request ids.
pub type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The whole state of the ledger.
#[derive(Debug, Default)]
pub struct Ledger {
    accounts: FastMap<i64, Account>,
    /// Open lots (remaining > 0) per resident account, sorted by (expires_at, id).
    lots: FastMap<i64, Vec<Lot>>,
    holds: FastMap<Uuid, Hold>,
    /// Active holds by release time.
    hold_expiry: BTreeSet<(Micros, Uuid)>,
    /// Open vouchers.
    vouchers: vouchers::Book,
    /// Each municipality's voucher account, once it has one.
    voucher_accounts: BTreeMap<i64, i64>,
    municipalities: BTreeMap<i64, Municipality>,
    partners: BTreeMap<i64, Partner>,
    shops: BTreeMap<i64, Shop>,
    events: BTreeMap<i64, Event>,
    residents: FastMap<i64, Resident>,
    resident_slots: FastMap<(i64, Slot), i64>,
    next_account: i64,
    next_lot: i64,
    next_seq: i64,
    next_notice: i64,
    next_resident: i64,
    last_time: Micros,
    log: Log,
}

/// The rows a ledger is rebuilt from at start-up.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// All accounts.
    pub accounts: Vec<Account>,
    /// Open lots.
    pub lots: Vec<Lot>,
    /// Active holds (resolved ones are history only).
    pub holds: Vec<Hold>,
    /// Open vouchers (settled ones are history only).
    pub vouchers: Vec<Voucher>,
    /// Municipalities.
    pub municipalities: Vec<Municipality>,
    /// Partners.
    pub partners: Vec<Partner>,
    /// Shops.
    pub shops: Vec<Shop>,
    /// Events.
    pub events: Vec<Event>,
    /// Residents.
    pub residents: Vec<Resident>,
    /// Highest ids and time used so far.
    pub max_seq: i64,
    /// Highest lot id.
    pub max_lot: i64,
    /// Highest notice id.
    pub max_notice: i64,
    /// Latest transaction time.
    pub last_time: Micros,
    /// Leaves in the log.
    pub log_size: u64,
    /// Stored hashes of the log's right edge.
    pub log_frontier: BTreeMap<u64, crate::log::Hash>,
}

impl Ledger {
    /// Rebuilds the state from stored rows.
    pub fn from_snapshot(s: Snapshot) -> Self {
        let mut l = Ledger {
            next_account: s.accounts.iter().map(|a| a.id).max().unwrap_or(0) + 1,
            next_lot: s.max_lot + 1,
            next_seq: s.max_seq + 1,
            next_notice: s.max_notice + 1,
            next_resident: s.residents.iter().map(|r| r.id).max().unwrap_or(0) + 1,
            last_time: s.last_time,
            log: Log::new(s.log_size, s.log_frontier),
            ..Ledger::default()
        };
        for a in s.accounts {
            if a.kind.is_resident() && a.kind != AccountKind::Reserved {
                let slot = match a.event {
                    Some(e) => Slot::Event(e),
                    None => Slot::Municipal(a.currency.municipality().unwrap_or(0)),
                };
                l.resident_slots.insert((a.owner, slot), a.id);
            }
            if a.kind == AccountKind::Voucher {
                l.voucher_accounts.insert(a.owner, a.id);
            }
            l.accounts.insert(a.id, a);
        }
        for v in s.vouchers {
            l.vouchers.open(v);
        }
        for lot in s.lots {
            l.lots.entry(lot.account).or_default().push(lot);
        }
        for lots in l.lots.values_mut() {
            lots.sort_by_key(|x| (x.expires_at, x.id));
        }
        for h in s.holds {
            l.hold_expiry.insert((h.expires_at, h.id));
            l.holds.insert(h.id, h);
        }
        l.municipalities = s.municipalities.into_iter().map(|m| (m.id, m)).collect();
        l.partners = s.partners.into_iter().map(|p| (p.id, p)).collect();
        l.shops = s.shops.into_iter().map(|p| (p.id, p)).collect();
        l.events = s.events.into_iter().map(|p| (p.id, p)).collect();
        l.residents = s.residents.into_iter().map(|p| (p.id, p)).collect();
        l
    }

    /// An account by id.
    pub fn account(&self, id: i64) -> Option<&Account> {
        self.accounts.get(&id)
    }

    /// All accounts, for invariant checks and replay comparisons.
    pub fn accounts(&self) -> impl Iterator<Item = &Account> {
        self.accounts.values()
    }

    /// A municipality.
    pub fn municipality(&self, id: i64) -> Option<&Municipality> {
        self.municipalities.get(&id)
    }

    /// A resident.
    pub fn resident(&self, id: i64) -> Option<&Resident> {
        self.residents.get(&id)
    }

    /// A shop.
    pub fn shop(&self, id: i64) -> Option<&Shop> {
        self.shops.get(&id)
    }

    /// A partner.
    pub fn partner(&self, id: i64) -> Option<&Partner> {
        self.partners.get(&id)
    }

    /// A hold.
    pub fn find_hold(&self, id: Uuid) -> Option<&Hold> {
        self.holds.get(&id)
    }

    /// The resident's municipal account for `municipality`, if it exists.
    pub fn municipal_account(&self, resident: i64, municipality: i64) -> Option<i64> {
        self.resident_slots.get(&(resident, Slot::Municipal(municipality))).copied()
    }

    /// Open lots of an account, in consumption order.
    pub fn open_lots(&self, account: i64) -> &[Lot] {
        self.lots.get(&account).map(Vec::as_slice).unwrap_or(&[])
    }

    fn tick(&mut self, now: Micros) -> Micros {
        // Transaction times never go backwards, so "balance as of" can follow seq order.
        self.last_time = self.last_time.max(now);
        self.last_time
    }

    #[allow(clippy::too_many_arguments)] // each is one column of the new account
    fn new_account(
        &mut self,
        ch: &mut Changes,
        kind: AccountKind,
        currency: Currency,
        owner: i64,
        event: Option<i64>,
        municipality: i64,
        now: Micros,
    ) -> i64 {
        let id = self.next_account;
        self.next_account += 1;
        let a = Account { id, kind, currency, owner, event, municipality, balance: 0, held: 0, created_at: now };
        ch.accounts.insert(id, a.clone());
        self.accounts.insert(id, a);
        id
    }

    // ----- set-up -----

    /// Adds a municipality with its treasury and breakage accounts.
    #[allow(clippy::too_many_arguments)]
    pub fn add_municipality(
        &mut self,
        ch: &mut Changes,
        id: i64,
        prefecture_code: &str,
        prefecture: &str,
        name: &str,
        kind: &str,
        expiry_days: i64,
        now: Micros,
    ) -> Result<()> {
        if id <= 0 || self.municipalities.contains_key(&id) {
            return Err(Refusal::MunicipalityExists(id));
        }
        let cur = Currency::Municipal(id);
        let treasury = self.new_account(ch, AccountKind::Treasury, cur, id, None, id, now);
        let breakage = self.new_account(ch, AccountKind::Breakage, cur, id, None, id, now);
        let m = Municipality {
            id,
            prefecture_code: prefecture_code.into(),
            prefecture: prefecture.into(),
            name: name.into(),
            kind: kind.into(),
            expiry_days,
            treasury,
            breakage,
        };
        ch.municipalities.push(m.clone());
        self.municipalities.insert(id, m);
        Ok(())
    }

    /// Adds a partner company with its clearing account.
    pub fn add_partner(
        &mut self,
        ch: &mut Changes,
        name: &str,
        name_en: &str,
        point_kind: &str,
        exchange_method: &str,
        now: Micros,
    ) -> i64 {
        let id = self.partners.keys().next_back().copied().unwrap_or(0) + 1;
        let clearing = self.new_account(ch, AccountKind::Clearing, Currency::Reserved, id, None, 0, now);
        let p = Partner {
            id,
            name: name.into(),
            name_en: name_en.into(),
            point_kind: point_kind.into(),
            exchange_method: exchange_method.into(),
            clearing,
        };
        ch.partners.push(p.clone());
        self.partners.insert(id, p);
        id
    }

    /// Adds a shop accepting `municipality`'s points.
    pub fn add_shop(&mut self, ch: &mut Changes, name: &str, municipality: i64, now: Micros) -> Result<i64> {
        self.known_municipality(municipality)?;
        let id = self.shops.keys().next_back().copied().unwrap_or(0) + 1;
        let receivable = self.new_account(
            ch,
            AccountKind::Receivable,
            Currency::Municipal(municipality),
            id,
            None,
            municipality,
            now,
        );
        let s = Shop { id, name: name.into(), municipality, receivable };
        ch.shops.push(s.clone());
        self.shops.insert(id, s);
        Ok(id)
    }

    /// Adds an event programme of `municipality`.
    pub fn add_event(&mut self, ch: &mut Changes, municipality: i64, name: &str, expires_at: Micros) -> Result<i64> {
        self.known_municipality(municipality)?;
        let id = self.events.keys().next_back().copied().unwrap_or(0) + 1;
        let e = Event { id, municipality, name: name.into(), expires_at };
        ch.events.push(e.clone());
        self.events.insert(id, e);
        Ok(id)
    }

    /// Adds a resident with a reserved account.
    pub fn add_resident(&mut self, ch: &mut Changes, home: i64, now: Micros) -> Result<ResidentCreated> {
        self.known_municipality(home)?;
        let id = self.next_resident;
        self.next_resident += 1;
        let reserved = self.new_account(ch, AccountKind::Reserved, Currency::Reserved, id, None, home, now);
        let r = Resident { id, home, reserved, created_at: now };
        ch.residents.push(r.clone());
        self.residents.insert(id, r);
        Ok(ResidentCreated { resident: id, reserved_account: reserved, home_municipality: home })
    }

    // ----- look-ups that refuse -----

    fn known_municipality(&self, id: i64) -> Result<&Municipality> {
        self.municipalities.get(&id).ok_or(Refusal::UnknownMunicipality(id))
    }

    fn known_resident(&self, id: i64) -> Result<&Resident> {
        self.residents.get(&id).ok_or(Refusal::UnknownResident(id))
    }

    fn known_shop(&self, id: i64) -> Result<&Shop> {
        self.shops.get(&id).ok_or(Refusal::UnknownShop(id))
    }

    fn known_partner(&self, id: i64) -> Result<&Partner> {
        self.partners.get(&id).ok_or(Refusal::UnknownPartner(id))
    }

    fn event_of(&self, event: i64, municipality: i64) -> Result<&Event> {
        let e = self.events.get(&event).ok_or(Refusal::UnknownEvent(event))?;
        if e.municipality != municipality {
            return Err(Refusal::EventOfAnother { event, owner: e.municipality, asked: municipality });
        }
        Ok(e)
    }

    /// The spending account of a resident for a municipality or event, if it exists.
    fn spending_account(&self, resident: i64, municipality: i64, event: Option<i64>) -> Result<Option<i64>> {
        self.known_resident(resident)?;
        self.known_municipality(municipality)?;
        let slot = match event {
            Some(e) => {
                self.event_of(e, municipality)?;
                Slot::Event(e)
            }
            None => Slot::Municipal(municipality),
        };
        Ok(self.resident_slots.get(&(resident, slot)).copied())
    }

    fn spending_account_or_create(
        &mut self,
        ch: &mut Changes,
        resident: i64,
        municipality: i64,
        event: Option<i64>,
        now: Micros,
    ) -> Result<i64> {
        if let Some(id) = self.spending_account(resident, municipality, event)? {
            return Ok(id);
        }
        let (kind, slot) = match event {
            Some(e) => (AccountKind::Event, Slot::Event(e)),
            None => (AccountKind::Municipal, Slot::Municipal(municipality)),
        };
        let id = self.new_account(ch, kind, Currency::Municipal(municipality), resident, event, municipality, now);
        self.resident_slots.insert((resident, slot), id);
        Ok(id)
    }

    fn shop_accepts(&self, shop: &Shop, municipality: i64) -> Result<()> {
        if shop.municipality != municipality {
            return Err(Refusal::ShopTakesOther { shop: shop.id, accepts: shop.municipality, asked: municipality });
        }
        Ok(())
    }

    fn insufficient(&self, account: i64, wanted: i64) -> Refusal {
        let available = self.accounts.get(&account).map_or(0, |a| a.balance - a.held);
        Refusal::Insufficient { account, available, wanted }
    }

    // ----- the one way points move -----

    /// Posts a balanced transaction. Validates everything first; mutates only on success.
    #[allow(clippy::too_many_arguments)] // the transaction's header fields and its legs
    fn post(
        &mut self,
        ch: &mut Changes,
        id: Uuid,
        kind: TransactionKind,
        municipality: i64,
        memo: Option<String>,
        legs: &[Leg],
        now: Micros,
    ) -> Result<TransactionReceipt> {
        assert!(legs.len() >= 2 && legs.len() <= MAX_LEGS, "callers bound the legs");
        // Requests carry a `Memo`, checked at parse time; the ledger's own memos are constants.
        assert!(
            memo.as_deref().is_none_or(|m| mykey_core::text::check(m, mykey_core::text::MEMO_MAX).is_ok()),
            "a memo the tables and the log can hold"
        );
        let mut per_currency: BTreeMap<Currency, i64> = BTreeMap::new();
        // Per account: (net, credits). Legs are at most MAX_POINTS each and MAX_LEGS in all,
        // so these sums cannot overflow; balances can, over enough transactions.
        let mut per_account: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
        for leg in legs {
            assert!(leg.amount != 0, "callers refuse zero legs");
            assert!(leg.amount.abs() <= mykey_core::points::MAX_POINTS, "callers bound amounts");
            let a = self.accounts.get(&leg.account).ok_or(Refusal::UnknownAccount(leg.account))?;
            *per_currency.entry(a.currency).or_default() += leg.amount;
            let (net, credits) = per_account.entry(leg.account).or_default();
            *net += leg.amount;
            *credits += leg.amount.max(0);
        }
        if let Some((&currency, &sum)) = per_currency.iter().find(|(_, s)| **s != 0) {
            let total: i64 = per_currency.values().sum();
            return Err(if total == 0 {
                Refusal::CurrenciesCross { currency, sum }
            } else {
                Refusal::Unbalanced { currency, sum }
            });
        }
        for (account, &(net, credits)) in &per_account {
            let a = &self.accounts[account];
            // Credits are applied before debits: the balance passes through `balance + credits`.
            if a.balance.checked_add(credits).is_none() || a.balance.checked_add(net).is_none() {
                return Err(Refusal::BalanceOutOfRange(*account));
            }
            if a.kind.is_resident() && a.balance - a.held + net < 0 {
                return Err(self.insufficient(*account, -net));
            }
        }

        // Valid: apply.
        let created_at = self.tick(now);
        let seq = self.next_seq;
        self.next_seq += 1;
        let mut postings = vec![PostingRow { account: 0, amount: 0, balance_after: 0 }; legs.len()];
        // Credits first: an account that is both debited and credited never dips below zero
        // on the way, and its lots always cover the debit. Postings keep the request's order.
        let mut order: Vec<usize> = (0..legs.len()).collect();
        order.sort_by_key(|&i| legs[i].amount < 0);
        for i in order {
            let leg = &legs[i];
            let expires_default = self.default_expiry(leg.account, created_at);
            let a = self.accounts.get_mut(&leg.account).expect("validated above");
            a.balance = a.balance.checked_add(leg.amount).expect("checked above");
            let balance_after = a.balance;
            let resident_account = a.kind.is_resident();
            ch.accounts.insert(a.id, a.clone());
            postings[i] = PostingRow { account: leg.account, amount: leg.amount, balance_after };
            if !resident_account {
                continue;
            }
            if leg.amount < 0 {
                self.consume_lots(ch, leg.account, -leg.amount);
            } else {
                let lot = Lot {
                    id: self.next_lot,
                    account: leg.account,
                    seq,
                    source: kind,
                    partner: leg.lot.partner,
                    amount: leg.amount,
                    remaining: leg.amount,
                    expires_at: leg.lot.expires_at.unwrap_or(expires_default),
                    created_at,
                };
                self.next_lot += 1;
                ch.lots.insert(lot.id, lot.clone());
                let lots = self.lots.entry(leg.account).or_default();
                let at = lots.partition_point(|x| (x.expires_at, x.id) <= (lot.expires_at, lot.id));
                lots.insert(at, lot);
            }
        }
        let tx = Transaction { seq, id, kind, municipality, memo, created_at, postings };
        // `bench-without-log` prices the log for the ledger benchmark (issue 3's budget): no
        // leaf is encoded, hashed or stored. Only `mykey-bench` builds with it.
        #[cfg(feature = "bench-without-log")]
        let receipt = self.receipt(&tx, &LogLeaf { index: 0, seq, data: Vec::new(), hash: [0; 32] });
        #[cfg(not(feature = "bench-without-log"))]
        let receipt = {
            let (leaf, stored) = self.log.append(seq, transaction_leaf(&tx));
            let receipt = self.receipt(&tx, &leaf);
            ch.log_leaves.push(leaf);
            ch.log_hashes.extend(stored);
            receipt
        };
        ch.transactions.push(tx);
        Ok(receipt)
    }

    /// Appends MyKey ID usage events to the log, in order; returns their leaf indexes.
    pub fn log_usage(&mut self, ch: &mut Changes, events: &[UsageEvent]) -> Vec<u64> {
        events
            .iter()
            .map(|e| {
                let (leaf, stored) = self.log.append(0, usage_leaf(e));
                let index = leaf.index;
                ch.usage.push((e.id, index));
                ch.log_leaves.push(leaf);
                ch.log_hashes.extend(stored);
                index
            })
            .collect()
    }

    fn default_expiry(&self, account: i64, now: Micros) -> Micros {
        let Some(a) = self.accounts.get(&account) else { return now };
        match (a.kind, a.event) {
            (AccountKind::Reserved, _) => now + RESERVED_WAIT,
            (_, Some(e)) => self.events.get(&e).map_or(now, |e| e.expires_at),
            _ => {
                let days = a
                    .currency
                    .municipality()
                    .and_then(|m| self.municipalities.get(&m))
                    .map_or(DEFAULT_EXPIRY_DAYS, |m| m.expiry_days);
                now + days * DAY
            }
        }
    }

    /// Takes `amount` from the account's lots, those expiring first first. Returns what was
    /// taken from each lot's partner, in order.
    fn consume_lots(&mut self, ch: &mut Changes, account: i64, mut amount: i64) -> Vec<(Option<i64>, i64)> {
        let lots = self.lots.entry(account).or_default();
        let mut taken = Vec::new();
        let mut used = 0;
        for lot in lots.iter_mut() {
            if amount == 0 {
                break;
            }
            let t = lot.remaining.min(amount);
            lot.remaining -= t;
            amount -= t;
            taken.push((lot.partner, t));
            ch.lots.insert(lot.id, lot.clone());
            if lot.remaining == 0 {
                used += 1;
            }
        }
        assert_eq!(amount, 0, "lots of account {account} do not cover its balance");
        lots.drain(..used);
        taken
    }

    /// Leaves in the log so far.
    pub fn log_size(&self) -> u64 {
        self.log.size()
    }

    fn receipt(&self, tx: &Transaction, leaf: &LogLeaf) -> TransactionReceipt {
        use base64::Engine as _;
        TransactionReceipt {
            leaf_index: leaf.index,
            leaf_hash: base64::engine::general_purpose::STANDARD.encode(leaf.hash),
            id: tx.id,
            seq: tx.seq,
            kind: tx.kind,
            created_at: micros_to_datetime(tx.created_at),
            memo: tx.memo.clone(),
            postings: tx
                .postings
                .iter()
                .map(|p| Posting {
                    account: p.account,
                    currency: self.accounts[&p.account].currency,
                    amount: p.amount,
                    balance_after: p.balance_after,
                })
                .collect(),
        }
    }

    // ----- requests -----

    /// Spends a resident's points at a shop.
    pub fn payment(&mut self, ch: &mut Changes, r: &PaymentRequest, now: Micros) -> Result<TransactionReceipt> {
        let amount = Points::from_decimal(r.amount)?.get();
        let shop = self.known_shop(r.shop)?.clone();
        let from = self.spending_account(r.resident, r.municipality, r.event)?;
        self.shop_accepts(&shop, r.municipality)?;
        let from = from.ok_or(Refusal::NoPoints { resident: r.resident, municipality: r.municipality })?;
        let legs = [Leg::new(from, -amount), Leg::new(shop.receivable, amount)];
        let memo = r.memo.clone().map(Memo::into_string);
        let receipt = self.post(ch, r.id, TransactionKind::Payment, r.municipality, memo.clone(), &legs, now)?;
        self.notify_shop(ch, NoticeKind::Payment, r.resident, &shop, amount, &receipt, memo.as_deref());
        Ok(receipt)
    }

    /// Tells the resident of points spent at or given back by `shop` (every one: residents
    /// see each movement of their points, whoever asked for it).
    #[allow(clippy::too_many_arguments)]
    fn notify_shop(
        &mut self,
        ch: &mut Changes,
        kind: NoticeKind,
        resident: i64,
        shop: &Shop,
        points: i64,
        receipt: &TransactionReceipt,
        memo: Option<&str>,
    ) {
        let payload = serde_json::json!({
            "shop": shop.id, "shop_name": shop.name, "municipality": shop.municipality, "points": points,
            "transaction": receipt.id, "memo": memo,
        });
        self.notify(ch, kind, resident, payload, receipt.created_at.timestamp_micros());
    }

    /// Queues a notice for `resident`; the mailer decides whether and where it goes.
    fn notify(&mut self, ch: &mut Changes, kind: NoticeKind, resident: i64, payload: serde_json::Value, at: Micros) {
        ch.notices.push(Notice { id: self.next_notice, resident, kind, payload: payload.to_string(), created_at: at });
        self.next_notice += 1;
    }

    /// Gives points back from a store's receivable to the resident (a checkout's or a counter
    /// payment's refund; how many the service decides, against what was captured or paid). The rule for where they land:
    /// the account they were paid from, as a new lot with that account's full validity from
    /// today; event points whose programme has ended come back as the municipality's points.
    pub fn refund(&mut self, ch: &mut Changes, r: &RefundPosting, now: Micros) -> Result<TransactionReceipt> {
        let amount = Points::new(r.points).ok_or(Refusal::Amount(AmountError::NotPositive(r.points.into())))?.get();
        let shop = self.known_shop(r.shop)?.clone();
        self.shop_accepts(&shop, r.municipality)?;
        let event = r.event.filter(|e| self.events.get(e).is_some_and(|e| e.expires_at > now));
        // Validate before an account is created.
        self.spending_account(r.resident, r.municipality, event)?;
        let to = self.spending_account_or_create(ch, r.resident, r.municipality, event, now)?;
        let legs = [Leg::new(shop.receivable, -amount), Leg::new(to, amount)];
        let memo = match r.of {
            RefundOf::Checkout => format!("refund of checkout {}", r.refunded),
            RefundOf::CounterPayment => format!("refund of counter payment {}", r.refunded),
        };
        let receipt = self.post(ch, r.id, TransactionKind::Refund, r.municipality, Some(memo), &legs, now)?;
        self.notify_shop(ch, NoticeKind::Refund, r.resident, &shop, amount, &receipt, None);
        Ok(receipt)
    }

    /// Grants municipal or event points from the municipality's treasury.
    pub fn grant(&mut self, ch: &mut Changes, r: &GrantRequest, now: Micros) -> Result<TransactionReceipt> {
        let amount = Points::from_decimal(r.amount)?.get();
        let treasury = self.known_municipality(r.municipality)?.treasury;
        // Validate the resident and event before creating an account for them.
        self.spending_account(r.resident, r.municipality, r.event)?;
        if let Some(at) = r.expires_at.map(crate::time::datetime_to_micros) {
            if at <= now {
                return Err(Refusal::ExpiresInPast);
            }
        }
        let to = self.spending_account_or_create(ch, r.resident, r.municipality, r.event, now)?;
        let mut credit = Leg::new(to, amount);
        credit.lot.expires_at = r.expires_at.map(crate::time::datetime_to_micros);
        let legs = [Leg::new(treasury, -amount), credit];
        let receipt = self.post(
            ch,
            r.id,
            TransactionKind::Grant,
            r.municipality,
            r.memo.clone().map(Memo::into_string),
            &legs,
            now,
        )?;
        let payload = serde_json::json!({
            "municipality": r.municipality, "event": r.event, "points": amount, "transaction": receipt.id,
        });
        self.notify(ch, NoticeKind::PointsGranted, r.resident, payload, receipt.created_at.timestamp_micros());
        Ok(receipt)
    }

    /// Converts a partner member's points into reserved points.
    pub fn conversion(&mut self, ch: &mut Changes, r: &ConversionRequest, now: Micros) -> Result<TransactionReceipt> {
        let amount = mykey_core::points::convert(r.partner_points, r.rate)?.get();
        let clearing = self.known_partner(r.partner)?.clearing;
        let resident = self.known_resident(r.resident)?.clone();
        let mut credit = Leg::new(resident.reserved, amount);
        credit.lot.partner = Some(r.partner);
        let legs = [Leg::new(clearing, -amount), credit];
        self.post(
            ch,
            r.id,
            TransactionKind::Conversion,
            resident.home,
            r.memo.clone().map(Memo::into_string),
            &legs,
            now,
        )
    }

    /// Assigns reserved points to a municipality: the oldest first, each partner's share
    /// returned to its clearing account and issued from the municipality's treasury.
    pub fn assignment(&mut self, ch: &mut Changes, r: &AssignmentRequest, now: Micros) -> Result<TransactionReceipt> {
        let amount = Points::from_decimal(r.amount)?.get();
        let reserved = self.known_resident(r.resident)?.reserved;
        self.known_municipality(r.municipality)?;
        let available = self.accounts[&reserved].balance;
        if available < amount {
            return Err(self.insufficient(reserved, amount));
        }
        let to = self.spending_account_or_create(ch, r.resident, r.municipality, None, now)?;
        self.assign(ch, r.id, reserved, to, r.municipality, amount, None, now)
    }

    #[allow(clippy::too_many_arguments)]
    fn assign(
        &mut self,
        ch: &mut Changes,
        id: Uuid,
        reserved: i64,
        to: i64,
        municipality: i64,
        amount: i64,
        memo: Option<String>,
        now: Micros,
    ) -> Result<TransactionReceipt> {
        let treasury = self.known_municipality(municipality)?.treasury;
        // Share per partner of the lots that will be consumed, oldest first.
        let mut shares: Vec<(i64, i64)> = Vec::new();
        let mut left = amount;
        for lot in self.open_lots(reserved) {
            if left == 0 {
                break;
            }
            let t = lot.remaining.min(left);
            left -= t;
            let partner = lot.partner.expect("reserved lots always come from a partner");
            match shares.iter_mut().find(|(p, _)| *p == partner) {
                Some((_, s)) => *s += t,
                None => shares.push((partner, t)),
            }
        }
        assert_eq!(left, 0, "reserved lots cover the reserved balance");
        if shares.len() * 2 + 2 > MAX_LEGS {
            return Err(Refusal::TooManyPartners);
        }
        let mut legs = vec![Leg::new(reserved, -amount), Leg::new(treasury, -amount)];
        for (partner, share) in shares {
            legs.push(Leg::new(self.partners[&partner].clearing, share));
            let mut credit = Leg::new(to, share);
            credit.lot.partner = Some(partner);
            legs.push(credit);
        }
        self.post(ch, id, TransactionKind::Assignment, municipality, memo, &legs, now)
    }

    /// An operator's multi-leg transaction. Reserved accounts are out of reach: they move
    /// only by conversion and assignment, which keep track of partners.
    pub fn transaction(&mut self, ch: &mut Changes, r: &TransactionRequest, now: Micros) -> Result<TransactionReceipt> {
        if r.postings.len() < 2 || r.postings.len() > MAX_LEGS {
            return Err(Refusal::PostingCount(r.postings.len()));
        }
        let expires_at = r.expires_at.map(crate::time::datetime_to_micros);
        let mut legs = Vec::with_capacity(r.postings.len());
        for p in &r.postings {
            let amount = SignedPoints::from_decimal(p.amount)?.get();
            let a = self.accounts.get(&p.account).ok_or(Refusal::UnknownAccount(p.account))?;
            if a.kind == AccountKind::Reserved {
                return Err(Refusal::ReservedAccount(p.account));
            }
            if a.kind == AccountKind::Voucher {
                return Err(Refusal::VoucherAccount(p.account));
            }
            let mut leg = Leg::new(p.account, amount);
            leg.lot.expires_at = expires_at;
            legs.push(leg);
        }
        let municipality = legs.iter().find_map(|l| self.accounts[&l.account].currency.municipality()).unwrap_or(0);
        self.post(
            ch,
            r.id,
            TransactionKind::Adjustment,
            municipality,
            r.memo.clone().map(Memo::into_string),
            &legs,
            now,
        )
    }

    /// Authorises points for a later capture.
    pub fn hold(&mut self, ch: &mut Changes, r: &HoldRequest, now: Micros) -> Result<HoldReceipt> {
        let amount = Points::from_decimal(r.amount)?.get();
        if !(1..=MAX_HOLD_SECONDS).contains(&r.timeout_seconds) {
            return Err(Refusal::HoldTimeout(r.timeout_seconds));
        }
        let shop = self.known_shop(r.shop)?.clone();
        let from = self.spending_account(r.resident, r.municipality, r.event)?;
        self.shop_accepts(&shop, r.municipality)?;
        let from = from.ok_or(Refusal::NoPoints { resident: r.resident, municipality: r.municipality })?;
        let a = &self.accounts[&from];
        if a.balance - a.held < amount {
            return Err(self.insufficient(from, amount));
        }
        let now = self.tick(now);
        let hold = Hold {
            id: r.id,
            account: from,
            shop_account: shop.receivable,
            amount,
            state: HoldState::Active,
            expires_at: now + i64::from(r.timeout_seconds) * SECOND,
            capture_seq: None,
            created_at: now,
            resolved_at: None,
        };
        let a = self.accounts.get_mut(&from).expect("checked");
        a.held += amount;
        ch.accounts.insert(from, a.clone());
        self.hold_expiry.insert((hold.expires_at, hold.id));
        ch.holds.insert(hold.id, hold.clone());
        self.holds.insert(hold.id, hold.clone());
        Ok(self.hold_receipt(&hold, None))
    }

    fn hold_receipt(&self, h: &Hold, capture: Option<TransactionReceipt>) -> HoldReceipt {
        HoldReceipt {
            hold: h.id,
            account: h.account,
            shop_account: h.shop_account,
            amount: h.amount,
            state: h.state,
            expires_at: micros_to_datetime(h.expires_at),
            capture,
        }
    }

    fn active_hold(&mut self, ch: &mut Changes, hold: Uuid, now: Micros) -> Result<Hold> {
        let h = self.holds.get(&hold).ok_or(Refusal::UnknownHold(hold))?.clone();
        if h.state == HoldState::Active && h.expires_at <= now {
            self.release(ch, hold, HoldState::Expired, now);
        }
        let h = self.holds[&hold].clone();
        if h.state != HoldState::Active {
            return Err(Refusal::HoldNotActive { hold, state: h.state });
        }
        Ok(h)
    }

    fn release(&mut self, ch: &mut Changes, hold: Uuid, state: HoldState, now: Micros) {
        let h = self.holds.get_mut(&hold).expect("caller checked");
        assert_eq!(h.state, HoldState::Active, "a hold resolves at most once");
        h.state = state;
        h.resolved_at = Some(now);
        self.hold_expiry.remove(&(h.expires_at, h.id));
        let a = self.accounts.get_mut(&h.account).expect("hold account exists");
        a.held -= h.amount;
        assert!(a.held >= 0);
        ch.accounts.insert(a.id, a.clone());
        ch.holds.insert(hold, h.clone());
    }

    /// Captures all or part of an active hold; the rest is released.
    pub fn capture(
        &mut self,
        ch: &mut Changes,
        hold: Uuid,
        id: Uuid,
        amount: Option<rust_decimal::Decimal>,
        now: Micros,
    ) -> Result<HoldReceipt> {
        let amount = amount.map(Points::from_decimal).transpose()?.map(Points::get);
        let h = self.active_hold(ch, hold, now)?;
        let amount = amount.unwrap_or(h.amount);
        if amount > h.amount {
            return Err(Refusal::CaptureExceedsHold { hold, held: h.amount, asked: amount });
        }
        let municipality = self.accounts[&h.account].currency.municipality().unwrap_or(0);
        // A hold's shop account is its shop's receivable (`hold`), whose owner is the shop
        // (`add_shop`): looked up before anything changes, so that nothing half-done follows.
        let shop = self
            .accounts
            .get(&h.shop_account)
            .and_then(|a| self.shops.get(&a.owner))
            .cloned()
            .ok_or(Refusal::HoldWithoutShop(hold))?;
        let resident = self.accounts[&h.account].owner;
        self.release(ch, hold, HoldState::Captured, now);
        let legs = [Leg::new(h.account, -amount), Leg::new(h.shop_account, amount)];
        let receipt = self
            .post(ch, id, TransactionKind::Payment, municipality, Some(format!("capture of hold {hold}")), &legs, now)
            .expect("the held points were available");
        let hm = self.holds.get_mut(&hold).expect("exists");
        hm.capture_seq = Some(receipt.seq);
        ch.holds.insert(hold, hm.clone());
        let h = hm.clone();
        self.notify_shop(ch, NoticeKind::Payment, resident, &shop, amount, &receipt, None);
        Ok(self.hold_receipt(&h, Some(receipt)))
    }

    /// Voids an active hold.
    pub fn void(&mut self, ch: &mut Changes, hold: Uuid, now: Micros) -> Result<HoldReceipt> {
        self.active_hold(ch, hold, now)?;
        self.release(ch, hold, HoldState::Voided, now);
        Ok(self.hold_receipt(&self.holds[&hold].clone(), None))
    }

    // ----- point vouchers -----

    /// An open voucher.
    pub fn open_voucher(&self, number: u64) -> Option<&Voucher> {
        self.vouchers.get(number)
    }

    /// Turns a resident's municipal points into an open voucher: a transaction from their
    /// account into the municipality's voucher account. The voucher remembers when the points
    /// it took would have expired, to give them back so.
    pub fn issue_voucher(&mut self, ch: &mut Changes, r: &VoucherIssue, now: Micros) -> Result<TransactionReceipt> {
        let amount = Points::new(r.amount).ok_or(Refusal::Amount(AmountError::NotPositive(r.amount.into())))?.get();
        if self.vouchers.get(r.number).is_some() {
            return Err(Refusal::VoucherNumberTaken(r.number));
        }
        if self.vouchers.open_of(r.resident) >= VOUCHERS_OPEN_PER_RESIDENT {
            return Err(Refusal::TooManyVouchers(r.resident));
        }
        let shop = self.known_shop(r.shop)?.clone();
        self.shop_accepts(&shop, r.municipality)?;
        let from = self
            .spending_account(r.resident, r.municipality, None)?
            .ok_or(Refusal::NoPoints { resident: r.resident, municipality: r.municipality })?;
        let a = &self.accounts[&from];
        if a.balance - a.held < amount {
            return Err(self.insufficient(from, amount));
        }
        let lots = vouchers::taken_lots(self.open_lots(from).iter().map(|l| (l.expires_at, l.remaining)), amount);
        // A voucher never outlives the points it takes (lots are taken earliest first).
        let earliest = lots.first().map_or(Micros::MAX, |(at, _)| *at);
        if earliest <= now {
            return Err(Refusal::PointsExpiring(from));
        }
        let to = self.voucher_account_or_create(ch, r.municipality, now);
        let legs = [Leg::new(from, -amount), Leg::new(to, amount)];
        let memo = Some(VOUCHER_MEMO.to_owned());
        let receipt = self.post(ch, r.id, TransactionKind::VoucherIssue, r.municipality, memo, &legs, now)?;
        let issued_at = receipt.created_at.timestamp_micros();
        let expires_at = mykey_core::rules::voucher_expires_at(receipt.created_at).timestamp_micros().min(earliest);
        let v = Voucher {
            number: r.number,
            id: r.id,
            resident: r.resident,
            account: from,
            municipality: r.municipality,
            amount,
            state: VoucherState::Open,
            issued_by: shop.id,
            issued_at,
            expires_at,
            lots,
            issue_seq: receipt.seq,
            settled_at: None,
            settled_by: None,
            settle_seq: None,
        };
        ch.vouchers.insert(v.number, v.clone());
        self.vouchers.open(v);
        Ok(receipt)
    }

    /// A shop takes an open, unexpired voucher of its municipality's points as payment, in
    /// full: a transaction from the voucher account into the shop's receivable, with the
    /// resident's usual payment notice.
    pub fn redeem_voucher(
        &mut self,
        ch: &mut Changes,
        r: &VoucherRedemption,
        now: Micros,
    ) -> Result<TransactionReceipt> {
        let shop = self.known_shop(r.shop)?.clone();
        let v = self.vouchers.get(r.number).ok_or(Refusal::UnknownVoucher(r.number))?;
        if shop.municipality != v.municipality {
            return Err(Refusal::VoucherElsewhere {
                number: v.number,
                municipality: v.municipality,
                shop: shop.id,
                accepts: shop.municipality,
            });
        }
        // Checked before anything moves; the transition itself follows the posting.
        v.state.transition(VoucherStep::Redeem, now, v.expires_at).map_err(Refusal::Voucher)?;
        let (amount, municipality, resident) = (v.amount, v.municipality, v.resident);
        let from = self.voucher_accounts[&municipality];
        let legs = [Leg::new(from, -amount), Leg::new(shop.receivable, amount)];
        let memo = VOUCHER_MEMO.to_owned();
        let receipt =
            self.post(ch, r.id, TransactionKind::VoucherRedemption, municipality, Some(memo.clone()), &legs, now)?;
        let mut v = self.vouchers.settle(r.number, VoucherStep::Redeem, now).expect("checked above");
        (v.settled_by, v.settle_seq) = (Some(shop.id), Some(receipt.seq));
        ch.vouchers.insert(v.number, v);
        self.notify_shop(ch, NoticeKind::Payment, resident, &shop, amount, &receipt, Some(&memo));
        Ok(receipt)
    }

    /// Gives the points of open vouchers expired at `now` back to their residents, each a
    /// transaction, in lots that expire when the points taken would have, with a notice; at
    /// most [`VOUCHER_RETURNS_PER_BATCH`] (the writer's next batch returns the rest at once).
    pub fn return_vouchers(&mut self, ch: &mut Changes, now: Micros) -> i64 {
        let due = self.vouchers.due(now, VOUCHER_RETURNS_PER_BATCH);
        for number in &due {
            let v = self.vouchers.get(*number).expect("due vouchers are open").clone();
            let mut legs = vec![Leg::new(self.voucher_accounts[&v.municipality], -v.amount)];
            legs.extend(v.lots.iter().map(|&(expires_at, points)| {
                let mut leg = Leg::new(v.account, points);
                leg.lot.expires_at = Some(expires_at);
                leg
            }));
            let id = vouchers::return_id(v.id);
            let memo = Some(VOUCHER_MEMO.to_owned());
            let receipt = self
                .post(ch, id, TransactionKind::VoucherReturn, v.municipality, memo, &legs, now)
                .expect("a voucher's points go back to the account they came from");
            let mut v = self.vouchers.settle(*number, VoucherStep::Return, now).expect("due");
            v.settle_seq = Some(receipt.seq);
            let payload = serde_json::json!({
                "number": v.number, "municipality": v.municipality, "points": v.amount, "transaction": receipt.id,
            });
            self.notify(ch, NoticeKind::VoucherReturned, v.resident, payload, receipt.created_at.timestamp_micros());
            ch.vouchers.insert(v.number, v);
        }
        due.len() as i64
    }

    fn voucher_account_or_create(&mut self, ch: &mut Changes, municipality: i64, now: Micros) -> i64 {
        if let Some(&a) = self.voucher_accounts.get(&municipality) {
            return a;
        }
        let cur = Currency::Municipal(municipality);
        let a = self.new_account(ch, AccountKind::Voucher, cur, municipality, None, municipality, now);
        self.voucher_accounts.insert(municipality, a);
        a
    }

    /// Releases every active hold whose time has come. Bounded by the number of holds.
    pub fn expire_holds(&mut self, ch: &mut Changes, now: Micros) -> i64 {
        let due: Vec<Uuid> = self.hold_expiry.range(..(now + 1, Uuid::nil())).map(|(_, id)| *id).collect();
        for id in &due {
            self.release(ch, *id, HoldState::Expired, now);
        }
        due.len() as i64
    }

    /// When the next active hold expires.
    pub fn next_due(&self) -> Option<Micros> {
        let hold = self.hold_expiry.first().map(|(at, _)| *at);
        hold.into_iter().chain(self.vouchers.next_expiry()).min()
    }

    /// The scheduled jobs: release due holds, expire lots into breakage, move reserved
    /// points older than [`RESERVED_WAIT`] to the home municipality.
    pub fn run_jobs(&mut self, ch: &mut Changes, now: Micros) -> JobsReport {
        let mut report = JobsReport {
            expired_points: 0,
            expiry_transactions: 0,
            moved_reserved_points: 0,
            assignment_transactions: 0,
            expired_holds: self.expire_holds(ch, now),
            // Before the lots expire: points a voucher held that have expired since go to
            // breakage in this same run, as if the voucher had never been issued.
            returned_vouchers: self.return_vouchers(ch, now),
            notices_queued: 0,
        };
        let mut due: Vec<(i64, i64)> = self
            .lots
            .iter()
            .filter_map(|(account, lots)| {
                let n: i64 = lots.iter().take_while(|l| l.expires_at <= now).map(|l| l.remaining).sum();
                (n > 0).then_some((*account, n))
            })
            .collect();
        due.sort_unstable();
        due.truncate(MAX_JOB_TRANSACTIONS);
        for (account, due_points) in due {
            let a = self.accounts[&account].clone();
            if a.kind == AccountKind::Reserved {
                let home = self.residents[&a.owner].home;
                let Ok(to) = self.spending_account_or_create(ch, a.owner, home, None, now) else { continue };
                let memo = Some("reserved points moved to the home municipality".to_owned());
                if self.assign(ch, Uuid::new_v4(), account, to, home, due_points, memo, now).is_ok() {
                    report.moved_reserved_points += due_points;
                    report.assignment_transactions += 1;
                }
                continue;
            }
            // Held points stay until their hold resolves; a later run expires them.
            let points = due_points.min(a.balance - a.held);
            if points <= 0 {
                continue;
            }
            let municipality = a.currency.municipality().expect("resident non-reserved accounts are municipal");
            let breakage = self.municipalities[&municipality].breakage;
            let legs = [Leg::new(account, -points), Leg::new(breakage, points)];
            let memo = Some("points expired".to_owned());
            let receipt = self
                .post(ch, Uuid::new_v4(), TransactionKind::Expiry, municipality, memo, &legs, now)
                .expect("expiry stays within the available balance");
            report.expired_points += points;
            report.expiry_transactions += 1;
            let payload = serde_json::json!({
                "account": account, "municipality": municipality, "event": a.event,
                "points": points, "transaction": receipt.id,
            });
            self.notify(ch, NoticeKind::PointsExpired, a.owner, payload, receipt.created_at.timestamp_micros());
            report.notices_queued += 1;
        }
        report
    }

    /// The ledger's invariants; panics with the first one broken. Cheap enough for tests
    /// and start-up, too slow for every request.
    pub fn check_invariants(&self) {
        let mut per_currency: BTreeMap<Currency, i64> = BTreeMap::new();
        let mut held: HashMap<i64, i64> = HashMap::new();
        for h in self.holds.values().filter(|h| h.state == HoldState::Active) {
            *held.entry(h.account).or_default() += h.amount;
            assert!(self.hold_expiry.contains(&(h.expires_at, h.id)), "active hold {} indexed", h.id);
        }
        for a in self.accounts.values() {
            *per_currency.entry(a.currency).or_default() += a.balance;
            assert_eq!(a.held, held.get(&a.id).copied().unwrap_or(0), "held of account {} matches its holds", a.id);
            if a.kind.is_resident() {
                assert!(a.held >= 0 && a.balance - a.held >= 0, "resident account {} never negative: {a:?}", a.id);
                let lots = self.open_lots(a.id);
                let sum: i64 = lots.iter().map(|l| l.remaining).sum();
                assert_eq!(sum, a.balance, "lots of account {} cover its balance", a.id);
                assert!(lots.iter().all(|l| l.remaining > 0), "open lots have points");
                assert!(
                    lots.windows(2).all(|w| (w[0].expires_at, w[0].id) < (w[1].expires_at, w[1].id)),
                    "lots of account {} in expiry order",
                    a.id
                );
            } else {
                assert_eq!(a.held, 0, "only resident accounts are held");
            }
        }
        for (c, sum) in per_currency {
            assert_eq!(sum, 0, "balances of {c} sum to zero");
        }
        let open = self.vouchers.check();
        for (m, account) in &self.voucher_accounts {
            let a = &self.accounts[account];
            assert_eq!(a.kind, AccountKind::Voucher);
            assert_eq!(a.balance, open.get(m).copied().unwrap_or(0), "voucher account of {m} holds its open vouchers");
        }
        assert!(open.keys().all(|m| self.voucher_accounts.contains_key(m)), "open vouchers have their account");
    }
}

/// The memo of a voucher's transactions. Never its number: the log and the voucher account's
/// history are read by others, and an open voucher's number is a bearer secret.
const VOUCHER_MEMO: &str = "point voucher";

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
