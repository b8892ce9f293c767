//! Store checkout (docs/checkout.md). A store's server opens a session for one order with its
//! secret key; the resident signs in inside the widget (card or MyKey ID and password, no
//! cookie) and confirms; only then do points move, through the ledger's payment (automatic
//! capture) or hold (manual capture). A store key alone can open, read, capture, cancel and
//! refund its own sessions, never charge a resident.
//!
//! Each step that moves points is recorded before and after the ledger request it makes, so a
//! crash in between is finished with the same id: a confirmation is `confirming` with its
//! charge id (the record after it is written beside the resident's answer); a refund is
//! `pending` with its points reserved under the session's `refunded`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use mykey_core::api::{
    CaptureMethod, CaptureRequest, CheckoutCapture, CheckoutConfirmation, CheckoutEvent, CheckoutEventType,
    CheckoutSession, CheckoutSessionCreated, CheckoutSessionRequest, CheckoutSignedIn, CheckoutState, CheckoutView,
    HoldRequest, HoldState, LineItem, PaymentRequest, Refund, RefundRequest, UsablePoints, VoidRequest, WidgetSignIn,
    LINE_ITEMS_MAX, METADATA_ENTRIES_MAX, METADATA_KEY_MAX, METADATA_VALUE_MAX,
};
use mykey_core::identity::{CardPurpose, NonceIssued};
use mykey_core::rules::{CHECKOUT_HOLD_SECONDS, CHECKOUT_OPEN_SECONDS, CHECKOUT_OPEN_SECONDS_RANGE};
use mykey_core::text::Memo;
use mykey_core::{Points, Problem, ProblemKind};
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::engine::{derived_id, Engine, EngineError, Request};
use crate::failure;
use crate::ledger::{RefundOf, RefundPosting, Refusal, MAX_HOLD_SECONDS};
use crate::services::embedding::{check_return_url, origins_of, Embedding, GrantScope, Owner, WidgetPlace};
use crate::store::checkout as store;
use crate::store::embedding::NewEvent;
use crate::store::group_commit::Writer;
use crate::time::{self, Micros, SECOND};

const _: () = assert!(CHECKOUT_HOLD_SECONDS <= MAX_HOLD_SECONDS, "the default hold is one the ledger allows");

/// Shops whose name and municipality are remembered.
pub const SHOPS_REMEMBERED: usize = 10_000;
/// Sessions (and pending refunds) the background step handles per round.
pub const ROUND_MAX: i64 = 256;

/// A store's request about a session whose confirmation is under way waits this long, at
/// most [`COMPLETION_WAITS`] times (5 s, well inside the request time limit), for it to be
/// recorded: a loaded database can hold the group commit for a second or more.
const COMPLETION_WAIT: std::time::Duration = std::time::Duration::from_millis(5);
/// See [`COMPLETION_WAIT`].
const COMPLETION_WAITS: u32 = 1000;

/// The session's internal state while its ledger request is under way; the API shows `open`.
const CONFIRMING: &str = "confirming";

/// A charged session's outcome, to be recorded with its event.
struct Completion {
    next: store::Session,
    event: NewEvent,
}

/// Store checkout over the ledger.
pub struct Checkout {
    engine: Engine,
    /// Client secrets derive from it, so a store's retried request gets the same secret.
    key: [u8; 32],
    /// Settings, sign-in grants and events shared with partners' widgets.
    embedding: Arc<Embedding>,
    /// Sessions whose confirmation is under way in this process.
    confirming: Arc<Mutex<std::collections::HashSet<Uuid>>>,
    /// Shops looked up, at most [`SHOPS_REMEMBERED`].
    shops: Mutex<HashMap<i64, mykey_core::api::Shop>>,
    /// Session writes, committed in groups.
    writer: Writer,
}

fn invalid(detail: impl Into<String>) -> Problem {
    Problem::new(ProblemKind::InvalidRequest, detail.into())
}

fn not_found(id: Uuid) -> Problem {
    Problem::new(ProblemKind::NotFound, format!("checkout session {id} does not exist"))
}

fn state_of(s: &store::Session) -> CheckoutState {
    match s.state.as_str() {
        CONFIRMING => CheckoutState::Open,
        other => CheckoutState::parse(other).unwrap_or(CheckoutState::Open),
    }
}

fn capture_of(s: &store::Session) -> CaptureMethod {
    if s.capture_method == "manual" {
        CaptureMethod::Manual
    } else {
        CaptureMethod::Automatic
    }
}

/// The store's view of a stored session.
fn view(s: &store::Session) -> CheckoutSession {
    CheckoutSession {
        id: s.id,
        shop: s.shop,
        state: state_of(s),
        amount: s.amount,
        points: if s.state == CONFIRMING { 0 } else { s.points },
        amount_due: s.amount - if s.state == CONFIRMING { 0 } else { s.points },
        captured: s.captured,
        refunded: s.refunded,
        order_reference: s.order_reference.clone(),
        line_items: serde_json::from_str(&s.line_items).unwrap_or_default(),
        partial_points: s.partial_points,
        capture: capture_of(s),
        return_url: s.return_url.clone(),
        metadata: serde_json::from_str(&s.metadata).unwrap_or_default(),
        created_at: time::micros_to_datetime(s.created_at),
        expires_at: time::micros_to_datetime(s.expires_at),
        confirmed_at: s.confirmed_at.filter(|_| s.state != CONFIRMING).map(time::micros_to_datetime),
    }
}

fn event(s: &store::Session, kind: CheckoutEventType, failure: Option<String>, now: Micros) -> NewEvent {
    let e = CheckoutEvent {
        id: Uuid::new_v4(),
        kind,
        created_at: time::micros_to_datetime(now),
        session: view(s),
        failure,
    };
    NewEvent {
        id: e.id,
        owner: Owner::Store(s.shop),
        subject: s.id,
        kind: kind.as_str(),
        body: serde_json::to_string(&e).expect("events serialise"),
        created_at: now,
    }
}

fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Checks a request's fields and gives the order's total; the line items must add up to it.
fn check_request(r: &CheckoutSessionRequest) -> Result<i64, Problem> {
    let amount = Points::from_decimal(r.amount)?.get();
    if r.line_items.len() > LINE_ITEMS_MAX {
        return Err(invalid(format!("a session has at most {LINE_ITEMS_MAX} line items")));
    }
    if !r.line_items.is_empty() {
        let mut sum: i64 = 0;
        for item in &r.line_items {
            if !(1..=999).contains(&item.quantity) {
                return Err(invalid(format!("the quantity of {} must be 1 to 999", item.name.as_str())));
            }
            let unit = Points::from_decimal(item.unit_amount)?.get();
            sum = sum.saturating_add(unit.saturating_mul(i64::from(item.quantity)));
        }
        if sum != amount {
            return Err(invalid(format!("the line items add up to {sum} yen, the amount is {amount}")));
        }
    }
    if r.metadata.len() > METADATA_ENTRIES_MAX {
        return Err(invalid(format!("metadata has at most {METADATA_ENTRIES_MAX} entries")));
    }
    for (k, v) in &r.metadata {
        mykey_core::text::check(k, METADATA_KEY_MAX).map_err(|e| invalid(format!("metadata key: {e}")))?;
        if v.chars().count() > METADATA_VALUE_MAX || v.chars().any(char::is_control) {
            return Err(invalid(format!(
                "metadata value of {k}: at most {METADATA_VALUE_MAX} characters, no control characters"
            )));
        }
    }
    if let Some(s) = r.expires_in_seconds {
        if !CHECKOUT_OPEN_SECONDS_RANGE.contains(&s) {
            return Err(invalid(format!(
                "expires_in_seconds must be {} to {}",
                CHECKOUT_OPEN_SECONDS_RANGE.start(),
                CHECKOUT_OPEN_SECONDS_RANGE.end()
            )));
        }
    }
    if let Some(s) = r.hold_seconds {
        if !(60..=MAX_HOLD_SECONDS).contains(&s) {
            return Err(invalid(format!("hold_seconds must be 60 to {MAX_HOLD_SECONDS}")));
        }
    }
    Ok(amount)
}

impl Checkout {
    /// Checkout over `engine`, signing residents in through `embedding`, writing sessions
    /// through `writer`; client secrets derive from `key`.
    pub fn new(engine: Engine, embedding: Arc<Embedding>, writer: Writer, key: [u8; 32]) -> Checkout {
        Checkout { engine, key, embedding, confirming: Default::default(), shops: Mutex::new(HashMap::new()), writer }
    }

    fn pool(&self) -> &sqlx::AnyPool {
        self.engine.store().pool()
    }

    /// A shop's name and municipality, which never change once it exists: remembered, so
    /// that a checkout does not wait for the tables to catch up with the ledger.
    async fn shop(&self, shop: i64) -> Result<mykey_core::api::Shop, Problem> {
        if let Some(s) = self.shops.lock().expect("not poisoned").get(&shop) {
            return Ok(s.clone());
        }
        let s = self
            .engine
            .tables()
            .await?
            .shop(shop)
            .await
            .map_err(failure::ledger_read)?
            .ok_or_else(|| Problem::new(ProblemKind::UnknownReference, format!("shop {shop} does not exist")))?;
        let mut known = self.shops.lock().expect("not poisoned");
        if known.len() >= SHOPS_REMEMBERED {
            known.clear();
        }
        known.insert(shop, s.clone());
        Ok(s)
    }

    /// The origins that may frame the widget for `session` with publishable key `key`: the
    /// key's store's, when the session is that store's.
    pub async fn frame_origins(&self, key: &str, session: Uuid) -> Result<Vec<String>, Problem> {
        let unknown = || Problem::new(ProblemKind::NotFound, "no such publishable key and session");
        let s = self.embedding.publishable(key).await.map_err(|_| unknown())?;
        let owner =
            store::session(self.pool(), session).await.map_err(failure::checkout)?.map(|x| Owner::Store(x.shop));
        if owner != Some(s.owner) {
            return Err(unknown());
        }
        Ok(origins_of(&s))
    }

    // ----- sessions, the store's side -----

    /// Opens a session for `shop` (or gives the one the same request opened).
    pub async fn create(&self, r: &CheckoutSessionRequest) -> Result<CheckoutSessionCreated, Problem> {
        let amount = check_request(r)?;
        let settings =
            self.embedding.stored(Owner::Store(r.shop)).await?.ok_or_else(|| {
                invalid(format!("shop {} has no checkout settings: register its origins first", r.shop))
            })?;
        if let Some(u) = &r.return_url {
            check_return_url(&settings, u)?;
        }
        let fingerprint = hex::encode(Sha256::digest(serde_json::to_vec(r).expect("serialisable")));
        if let Some(s) = store::session_by_request(self.pool(), r.shop, r.id).await.map_err(failure::checkout)? {
            return self.replay_creation(s, &fingerprint);
        }
        let now = time::now();
        let id = Uuid::new_v4();
        let secret = self.client_secret(id);
        let capture = r.capture.unwrap_or(CaptureMethod::Automatic);
        let s = store::Session {
            id,
            shop: r.shop,
            request_id: r.id,
            fingerprint: fingerprint.clone(),
            secret_hash: secret_hash(&secret),
            state: CheckoutState::Open.as_str().to_owned(),
            amount,
            points: 0,
            captured: 0,
            refunded: 0,
            order_reference: r.order_reference.as_str().to_owned(),
            line_items: serde_json::to_string(&r.line_items).expect("serialisable"),
            partial_points: r.partial_points,
            capture_method: if capture == CaptureMethod::Manual { "manual" } else { "automatic" }.to_owned(),
            hold_seconds: i64::from(r.hold_seconds.unwrap_or(CHECKOUT_HOLD_SECONDS)),
            return_url: r.return_url.clone(),
            metadata: serde_json::to_string(&r.metadata).expect("serialisable"),
            charge_id: None,
            resident: None,
            event: None,
            created_at: now,
            expires_at: now + i64::from(r.expires_in_seconds.unwrap_or(CHECKOUT_OPEN_SECONDS)) * SECOND,
            confirmed_at: None,
        };
        self.shop(r.shop).await?;
        if !self.writer.insert_session(s.clone()).await.map_err(failure::checkout)? {
            // The same request raced in and won.
            let s = store::session_by_request(self.pool(), r.shop, r.id)
                .await
                .map_err(failure::checkout)?
                .ok_or_else(|| failure::checkout(anyhow::anyhow!("a session vanished")))?;
            return self.replay_creation(s, &fingerprint);
        }
        Ok(CheckoutSessionCreated { session: view(&s), client_secret: secret })
    }

    /// `<id>_secret_<HMAC-SHA-256(key, id)>`: only its hash is stored, and a retry can give it again.
    fn client_secret(&self, id: Uuid) -> String {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(b"mykey checkout client secret\0");
        mac.update(id.as_bytes());
        format!("{id}_secret_{}", hex::encode(mac.finalize().into_bytes()))
    }

    fn replay_creation(&self, s: store::Session, fingerprint: &str) -> Result<CheckoutSessionCreated, Problem> {
        if s.fingerprint != fingerprint {
            return Err(Problem::new(
                ProblemKind::IdempotencyConflict,
                format!("id {} opened another session; a changed cart is a new session with a new id", s.request_id),
            ));
        }
        Ok(CheckoutSessionCreated { session: view(&s), client_secret: self.client_secret(s.id) })
    }

    /// A session of `shop` (the store reads its own only).
    pub async fn session(&self, shop: Option<i64>, id: Uuid) -> Result<CheckoutSession, Problem> {
        Ok(view(&self.owned(shop, id).await?))
    }

    async fn owned(&self, shop: Option<i64>, id: Uuid) -> Result<store::Session, Problem> {
        // A confirmation answered a moment ago may still be writing its completion: the store
        // (which may act on the widget's `success` at once) sees the session as it is then.
        for _ in 0..COMPLETION_WAITS {
            if !self.confirming.lock().expect("not poisoned").contains(&id) {
                break;
            }
            tokio::time::sleep(COMPLETION_WAIT).await;
        }
        let s = store::session(self.pool(), id).await.map_err(failure::checkout)?.ok_or_else(|| not_found(id))?;
        if shop.is_some_and(|shop| shop != s.shop) {
            return Err(not_found(id));
        }
        Ok(s)
    }

    // ----- the widget's side -----

    /// The session behind a client secret, for the widget (compared in constant time).
    async fn by_secret(&self, id: Uuid, secret: &str) -> Result<store::Session, Problem> {
        let s = store::session(self.pool(), id).await.map_err(failure::checkout)?;
        let refused = || Problem::new(ProblemKind::Unauthenticated, "the client secret does not open this session");
        let s = s.ok_or_else(refused)?;
        if !crate::secret::same_secret(secret_hash(secret).as_bytes(), s.secret_hash.as_bytes()) {
            return Err(refused());
        }
        Ok(s)
    }

    /// What the widget shows.
    pub async fn client_view(&self, id: Uuid, secret: &str) -> Result<CheckoutView, Problem> {
        let s = self.by_secret(id, secret).await?;
        self.view_of(&s).await
    }

    /// The widget's view of `s`.
    async fn view_of(&self, s: &store::Session) -> Result<CheckoutView, Problem> {
        let shop = self.shop(s.shop).await?;
        let settings = self.embedding.stored(Owner::Store(s.shop)).await?;
        let state = if state_of(s) == CheckoutState::Open && s.expires_at <= time::now() {
            CheckoutState::Expired
        } else {
            state_of(s)
        };
        Ok(CheckoutView {
            id: s.id,
            shop_name: shop.name,
            municipality: shop.municipality,
            state,
            amount: s.amount,
            points: if s.state == CONFIRMING { 0 } else { s.points },
            line_items: serde_json::from_str::<Vec<LineItem>>(&s.line_items).unwrap_or_default(),
            partial_points: s.partial_points,
            expires_at: time::micros_to_datetime(s.expires_at),
            return_url: s.return_url.clone(),
            origins: settings.as_ref().map(origins_of).unwrap_or_default(),
        })
    }

    fn open(s: &store::Session) -> Result<(), Problem> {
        let state = state_of(s);
        if state != CheckoutState::Open || s.state == CONFIRMING {
            return Err(Problem::new(
                ProblemKind::CheckoutNotOpen,
                format!("checkout session {} is {}", s.id, state.as_str()),
            )
            .with("state", state.as_str()));
        }
        if s.expires_at <= time::now() {
            return Err(Problem::new(ProblemKind::CheckoutNotOpen, format!("checkout session {} has expired", s.id))
                .with("state", CheckoutState::Expired.as_str()));
        }
        Ok(())
    }

    /// A card challenge for this session's widget (bound to the session, not to a cookie).
    pub async fn nonce(&self, id: Uuid, secret: &str, ip: IpAddr) -> Result<NonceIssued, Problem> {
        let s = self.by_secret(id, secret).await?;
        Self::open(&s)?;
        self.embedding.nonce(WidgetPlace::Session(id), CardPurpose::Checkout, ip)
    }

    /// Signs the resident in for this session: a grant to confirm it, and the points usable.
    pub async fn sign_in(&self, id: Uuid, r: &WidgetSignIn, ip: IpAddr) -> Result<CheckoutSignedIn, Problem> {
        let s = self.by_secret(id, &r.client_secret).await?;
        Self::open(&s)?;
        let (grant, resident, profile) = self
            .embedding
            .sign_in(WidgetPlace::Session(id), CardPurpose::Checkout, r.password.as_ref(), r.card.as_ref(), ip)
            .await?;
        Ok(CheckoutSignedIn {
            grant,
            mykey_id: profile.mykey_id.to_string(),
            usable: self.usable(s.shop, resident).await?,
        })
    }

    /// The resident's points that the store takes: its municipality's and those of its events.
    async fn usable(&self, shop: i64, resident: i64) -> Result<Vec<UsablePoints>, Problem> {
        let shop = self.shop(shop).await?;
        crate::services::usable::usable_at(&self.engine, shop.municipality, resident).await
    }

    /// The resident confirms: the points move (or are held), once.
    pub async fn confirm(&self, id: Uuid, r: &CheckoutConfirmation) -> Result<CheckoutView, Problem> {
        let s = self.by_secret(id, &r.client_secret).await?;
        let resident = self.embedding.resident(GrantScope::Session(id), &r.grant)?;
        Self::open(&s)?;
        let points = Points::from_decimal(r.points)?.get();
        if points > s.amount || (!s.partial_points && points != s.amount) {
            return Err(invalid(if s.partial_points {
                format!("use 1 to {} points for this order", s.amount)
            } else {
                format!("this store takes points for the whole order only: {} points", s.amount)
            }));
        }
        if !self.confirming.lock().expect("not poisoned").insert(id) {
            return Err(
                Problem::new(ProblemKind::CheckoutNotOpen, "this checkout is being confirmed").with("state", "open")
            );
        }
        match self.charge(s, resident, points, r.event).await {
            Ok(done) => {
                // Paid (or held): the sign-in has nothing more to do here.
                self.embedding.end_session(id);
                let view = self.view_of(&done.next).await;
                self.complete_later(done);
                view
            }
            Err(p) => {
                self.confirming.lock().expect("not poisoned").remove(&id);
                Err(p)
            }
        }
    }

    /// Records a charged session's outcome and event beside the answer: the points moved
    /// durably in the ledger, and should this write be lost, the background round finishes
    /// the session from its `confirming` row with the same charge id. The session stays in
    /// `confirming` (in memory too, so nobody confirms it again) until the write is committed.
    fn complete_later(&self, done: Completion) {
        let (writer, confirming) = (self.writer.clone(), self.confirming.clone());
        tokio::spawn(async move {
            let id = done.next.id;
            if let Err(e) = writer.transition(CONFIRMING, done.next, Some(done.event)).await {
                tracing::warn!(session = %id, error = format!("{e:#}"), "recording a confirmation failed; the background round finishes it");
            }
            confirming.lock().expect("not poisoned").remove(&id);
        });
    }

    async fn charge(
        &self,
        s: store::Session,
        resident: i64,
        points: i64,
        event: Option<i64>,
    ) -> Result<Completion, Problem> {
        let now = time::now();
        let attempt = store::Session {
            state: CONFIRMING.to_owned(),
            // A fresh id per attempt: a refused attempt (too few points) must not answer
            // every later one.
            charge_id: Some(Uuid::new_v4()),
            resident: Some(resident),
            event,
            points,
            confirmed_at: Some(now),
            ..s.clone()
        };
        if !self
            .writer
            .transition(CheckoutState::Open.as_str(), attempt.clone(), None)
            .await
            .map_err(failure::checkout)?
        {
            return Err(
                Problem::new(ProblemKind::CheckoutNotOpen, "this checkout is no longer open").with("state", "open")
            );
        }
        self.charged(attempt).await
    }

    /// The ledger request of a `confirming` session, made from what the session recorded.
    async fn charge_request(&self, s: &store::Session) -> Result<Request, Problem> {
        let municipality = self.shop(s.shop).await?.municipality;
        let resident = s.resident.expect("a confirming session has its resident");
        let id = s.charge_id.expect("a confirming session has its charge id");
        let amount = Decimal::from(s.points);
        Ok(match capture_of(s) {
            CaptureMethod::Automatic => Request::Payment(PaymentRequest {
                id,
                resident,
                municipality,
                event: s.event,
                shop: s.shop,
                amount,
                memo: Some(memo(s)),
            }),
            CaptureMethod::Manual => Request::Hold(HoldRequest {
                id,
                resident,
                municipality,
                event: s.event,
                shop: s.shop,
                amount,
                timeout_seconds: u32::try_from(s.hold_seconds).unwrap_or(MAX_HOLD_SECONDS),
            }),
        })
    }

    /// Runs a `confirming` session's ledger request (again, after a crash: same id, same answer)
    /// and records the outcome with its event.
    async fn finish_charge(&self, s: store::Session) -> Result<(), Problem> {
        let done = self.charged(s).await?;
        self.writer.transition(CONFIRMING, done.next, Some(done.event)).await.map_err(failure::checkout)?;
        Ok(())
    }

    /// Runs a `confirming` session's ledger request: the session as it is once the points
    /// moved (or were held), with its event, to be recorded; a refusal is recorded here (the
    /// session open again, a `failed` event) and returned.
    async fn charged(&self, s: store::Session) -> Result<Completion, Problem> {
        let request = self.charge_request(&s).await?;
        let answer = self.engine.execute(request, &format!("checkout:{}", s.id)).await;
        let now = time::now();
        let done = match answer {
            Ok(done) => done,
            // Left `confirming`: the background step tries again with the same id.
            Err(e) if e.is_transient() => return Err(e.into()),
            Err(e) => return Err(self.charge_refused(s, e, now).await?),
        };
        let (state, kind, captured, expires_at) = match capture_of(&s) {
            CaptureMethod::Automatic => {
                (CheckoutState::Completed, CheckoutEventType::Completed, s.points, s.expires_at)
            }
            CaptureMethod::Manual => {
                let hold = done
                    .hold()
                    .ok_or_else(|| failure::checkout(anyhow::anyhow!("a checkout's hold answered without its hold")))?;
                (CheckoutState::Authorized, CheckoutEventType::Authorized, 0, hold.expires_at.timestamp_micros())
            }
        };
        let next = store::Session { state: state.as_str().to_owned(), captured, expires_at, ..s.clone() };
        let event = event(&next, kind, None, now);
        Ok(Completion { next, event })
    }

    /// Records a charge the ledger refused: the session open again, with a `failed` event;
    /// returns the refusal, to be answered.
    async fn charge_refused(&self, s: store::Session, e: EngineError, now: Micros) -> Result<Problem, Problem> {
        let problem = Problem::from(e);
        let back = store::Session {
            state: CheckoutState::Open.as_str().to_owned(),
            charge_id: None,
            resident: None,
            event: None,
            points: 0,
            confirmed_at: None,
            ..s
        };
        let slug = problem.kind().map(|k| k.slug().to_owned());
        let e = event(&back, CheckoutEventType::Failed, slug, now);
        self.writer.transition(CONFIRMING, back, Some(e)).await.map_err(failure::checkout)?;
        Ok(problem)
    }

    // ----- after confirmation, the store's side -----

    /// Captures an authorised session's held points (all, or fewer).
    pub async fn capture(&self, shop: Option<i64>, id: Uuid, r: &CheckoutCapture) -> Result<CheckoutSession, Problem> {
        let s = self.owned(shop, id).await?;
        if state_of(&s) != CheckoutState::Authorized {
            return Err(not_open_for(&s, "captured"));
        }
        let hold = s.charge_id.expect("an authorised session has its hold");
        // One id per amount: a retry replays, and a capture refused for its amount does not
        // answer a corrected one.
        let amount = r.points.map(|p| p.normalize().to_string()).unwrap_or_default();
        let body = CaptureRequest { id: derived_id(&[b"capture", id.as_bytes(), amount.as_bytes()]), amount: r.points };
        let done = self.engine.execute(Request::Capture { hold, body }, &format!("checkout:{id}")).await?;
        let receipt =
            done.hold().ok_or_else(|| failure::checkout(anyhow::anyhow!("a capture answered without its hold")))?;
        let captured = receipt.capture.as_ref().and_then(|t| t.postings.iter().map(|p| p.amount).max()).unwrap_or(0);
        let done = store::Session { state: CheckoutState::Completed.as_str().to_owned(), captured, ..s.clone() };
        let e = event(&done, CheckoutEventType::Captured, None, time::now());
        self.writer
            .transition(CheckoutState::Authorized.as_str(), done.clone(), Some(e))
            .await
            .map_err(failure::checkout)?;
        Ok(view(&self.owned(shop, id).await?))
    }

    /// Cancels an open session, or releases an authorised one's hold.
    pub async fn cancel(&self, shop: Option<i64>, id: Uuid) -> Result<CheckoutSession, Problem> {
        let s = self.owned(shop, id).await?;
        let from = match state_of(&s) {
            CheckoutState::Open if s.state != CONFIRMING => CheckoutState::Open,
            CheckoutState::Authorized => {
                let hold = s.charge_id.expect("an authorised session has its hold");
                let body = VoidRequest { id: derived_id(&[b"void", id.as_bytes()]) };
                self.engine.execute(Request::Void { hold, body }, &format!("checkout:{id}")).await?;
                CheckoutState::Authorized
            }
            _ => return Err(not_open_for(&s, "cancelled")),
        };
        let done = store::Session { state: CheckoutState::Cancelled.as_str().to_owned(), ..s.clone() };
        let e = event(&done, CheckoutEventType::Cancelled, None, time::now());
        if !self.writer.transition(from.as_str(), done.clone(), Some(e)).await.map_err(failure::checkout)? {
            return Err(Problem::new(ProblemKind::CheckoutNotOpen, "the session changed meanwhile; read it again"));
        }
        self.embedding.end_session(id);
        Ok(view(&done))
    }

    /// Refunds captured points, once per refund id; at most what is captured and not refunded.
    pub async fn refund(&self, shop: Option<i64>, id: Uuid, r: &RefundRequest) -> Result<Refund, Problem> {
        let points = Points::from_decimal(r.points)?.get();
        let s = self.owned(shop, id).await?;
        let mut known = store::refund(self.pool(), id, r.id).await.map_err(failure::checkout)?;
        if known.is_none() {
            if state_of(&s) != CheckoutState::Completed {
                return Err(not_open_for(&s, "refunded"));
            }
            match store::reserve_refund(self.pool(), id, r.id, points, time::now()).await.map_err(failure::checkout)? {
                store::Reservation::Reserved => {}
                store::Reservation::Exceeds => {
                    let now = self.owned(shop, id).await?;
                    let refundable = now.captured - now.refunded;
                    return Err(Problem::new(
                        ProblemKind::RefundExceedsCapture,
                        format!("{refundable} points of this session can still be refunded, not {points}"),
                    )
                    .with("refundable", refundable));
                }
                // The same id sent at the same moment: answered as the retry it is.
                store::Reservation::Exists => {
                    known = store::refund(self.pool(), id, r.id).await.map_err(failure::checkout)?;
                }
            }
        }
        if let Some(done) = known.filter(|d| d.points != points) {
            return Err(Problem::new(
                ProblemKind::IdempotencyConflict,
                format!("refund {} of this session was for {} points", r.id, done.points),
            ));
        }
        self.finish_refund(id, r.id).await
    }

    /// Moves a reserved refund's points (again, after a crash: same id, same answer) and marks it
    /// done with its event.
    async fn finish_refund(&self, id: Uuid, request_id: Uuid) -> Result<Refund, Problem> {
        let s = self.owned(None, id).await?;
        let stored = store::refund(self.pool(), id, request_id)
            .await
            .map_err(failure::checkout)?
            .ok_or_else(|| failure::checkout(anyhow::anyhow!("refund {request_id} vanished")))?;
        let posting = RefundPosting {
            id: derived_id(&[b"refund", id.as_bytes(), request_id.as_bytes()]),
            of: RefundOf::Checkout,
            refunded: id,
            shop: s.shop,
            resident: s.resident.expect("a completed session has its resident"),
            municipality: self.shop(s.shop).await?.municipality,
            event: s.event,
            points: stored.points,
        };
        // Refused or unanswered, it stays pending, its points reserved: the background step
        // retries the same id.
        self.engine.execute(Request::Refund(posting), &format!("checkout:{id}")).await?;
        let e = event(&s, CheckoutEventType::Refunded, None, time::now());
        store::finish_refund(self.pool(), id, request_id, &e).await.map_err(failure::checkout)?;
        Ok(Refund {
            id: request_id,
            session: id,
            points: stored.points,
            created_at: time::micros_to_datetime(stored.created_at),
            refunded_total: s.refunded,
        })
    }

    // ----- in the background -----

    /// One round: expire what ran out, finish confirmations and refunds cut short. Returns
    /// how many sessions and refunds it handled.
    pub async fn run_once(&self) -> Result<usize, Problem> {
        let now = time::now();
        let mut handled = 0;
        for s in store::due_sessions(self.pool(), now, ROUND_MAX).await.map_err(failure::checkout)? {
            let from = s.state.clone();
            if from == CheckoutState::Authorized.as_str() {
                // The ledger is the judge: a hold captured just now stays captured.
                let hold = s.charge_id.expect("an authorised session has its hold");
                let body = VoidRequest { id: derived_id(&[b"void", s.id.as_bytes()]) };
                let answer = self.engine.execute(Request::Void { hold, body }, &format!("checkout:{}", s.id)).await;
                match answer {
                    Err(EngineError::Refused(Refusal::HoldNotActive { state: HoldState::Captured, .. })) => continue,
                    Err(e) if e.is_transient() => continue,
                    _ => {}
                }
            }
            let done = store::Session { state: CheckoutState::Expired.as_str().to_owned(), ..s };
            let e = event(&done, CheckoutEventType::Expired, None, now);
            self.writer.transition(&from, done.clone(), Some(e)).await.map_err(failure::checkout)?;
            handled += 1;
        }
        for s in store::confirming_sessions(self.pool(), ROUND_MAX).await.map_err(failure::checkout)? {
            if self.confirming.lock().expect("not poisoned").contains(&s.id) {
                continue;
            }
            let id = s.id;
            // One session's failure must not stop the others; it is tried again next round.
            if let Err(p) = self.finish_charge(s).await {
                tracing::warn!(session = %id, problem = ?p, "a confirmation cut short could not be finished yet");
            }
            handled += 1;
        }
        for (session, request) in store::pending_refunds(self.pool(), ROUND_MAX).await.map_err(failure::checkout)? {
            if let Err(p) = self.finish_refund(session, request).await {
                tracing::warn!(%session, problem = ?p, "a refund cut short could not be finished yet");
            }
            handled += 1;
        }
        Ok(handled)
    }

    /// Runs [`Checkout::run_once`] every second.
    pub async fn run(self: Arc<Self>) {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tick.tick().await;
            if let Err(p) = self.run_once().await {
                tracing::warn!(problem = ?p, "the checkout round failed");
            }
        }
    }
}

fn memo(s: &store::Session) -> Memo {
    // A reference stored under older, looser rules is cleaned rather than refused.
    let text: String = format!("order {}", s.order_reference)
        .chars()
        .filter(|&c| mykey_core::text::allowed(c))
        .take(mykey_core::text::MEMO_MAX)
        .collect();
    Memo::parse(text).expect("\"order \" and allowed characters, cut to the memo's limit")
}

fn not_open_for(s: &store::Session, what: &str) -> Problem {
    let state = state_of(s);
    Problem::new(
        ProblemKind::CheckoutNotOpen,
        format!("checkout session {} is {} and cannot be {what}", s.id, state.as_str()),
    )
    .with("state", state.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(amount: i64, items: &[(u32, i64)]) -> CheckoutSessionRequest {
        CheckoutSessionRequest {
            id: Uuid::nil(),
            shop: 1,
            amount: Decimal::from(amount),
            order_reference: mykey_core::text::Reference::parse("A-1").unwrap(),
            line_items: items
                .iter()
                .map(|(q, u)| LineItem {
                    name: mykey_core::api::LineItemName::parse("item").unwrap(),
                    quantity: *q,
                    unit_amount: Decimal::from(*u),
                })
                .collect(),
            partial_points: false,
            capture: None,
            return_url: None,
            metadata: Default::default(),
            expires_in_seconds: None,
            hold_seconds: None,
        }
    }

    #[test]
    fn line_items_add_up_to_the_amount_and_every_field_is_bounded() {
        assert_eq!(check_request(&request(1200, &[(2, 250), (1, 700)])).unwrap(), 1200);
        assert!(check_request(&request(1200, &[(2, 250)])).is_err());
        assert!(check_request(&request(1200, &[(0, 1200)])).is_err());
        assert!(check_request(&request(0, &[])).is_err());
        let mut r = request(100, &[]);
        r.expires_in_seconds = Some(CHECKOUT_OPEN_SECONDS_RANGE.end() + 1);
        assert!(check_request(&r).is_err());
        let mut r = request(100, &[]);
        r.hold_seconds = Some(MAX_HOLD_SECONDS + 1);
        assert!(check_request(&r).is_err());
        let mut r = request(100, &[]);
        r.metadata = (0..=METADATA_ENTRIES_MAX).map(|i| (format!("k{i}"), "v".into())).collect();
        assert!(check_request(&r).is_err());
        let mut r = request(100, &[]);
        r.metadata.insert("k".into(), "line\nbreak".into());
        assert!(check_request(&r).is_err());
        let r = request(100, &[(1, 100); LINE_ITEMS_MAX + 1]);
        assert!(check_request(&r).is_err());
    }
}
