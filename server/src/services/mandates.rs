//! A store charges a resident under a standing mandate (issue 23, docs/checkout.md "Charging
//! a linked member"): by the mandate's opaque id, within its terms, one charge per store
//! reference. An id the store does not hold answers exactly as an unknown one, and such
//! guesses are limited per store. The charge is reserved against the month's limit before the
//! ledger is asked, so concurrent or crashed charges never take more than the resident allowed.

use mykey_core::api::{mandate_month, MandateChargeRequest, MandateState, PaymentRequest};
use mykey_core::rules::MANDATE_GUESSES_PER_MINUTE;
use mykey_core::{Points, Problem, ProblemKind};
use uuid::Uuid;

use crate::auth::FailureCounter;
use crate::engine::{derived_id, Engine, EngineError, Executed, Request};
use crate::failure;
use crate::services::identity::mandates::state_of;
use crate::services::identity::Identity;
use crate::store::mandates::{self as store, MandateRow};
use crate::time;

/// Charges under mandates are made one at a time per mandate, through this many locks.
const LOCKS: usize = 64;

/// Standing mandates, the store's side.
pub struct Mandates {
    engine: Engine,
    identity: std::sync::Arc<Identity>,
    /// Charges naming a mandate the store does not hold, per store.
    guesses: FailureCounter<i64>,
    /// A mandate's month is read and reserved under its lock (one serving process per database).
    locks: Vec<tokio::sync::Mutex<()>>,
}

fn not_found() -> Problem {
    Problem::new(ProblemKind::MandateNotFound, "this store holds no mandate with that id")
}

impl Mandates {
    /// Mandates over `engine`, with notices through `identity`.
    pub fn new(engine: Engine, identity: std::sync::Arc<Identity>) -> Mandates {
        Mandates {
            engine,
            identity,
            guesses: FailureCounter::new(MANDATE_GUESSES_PER_MINUTE as usize, std::time::Duration::from_secs(60)),
            locks: (0..LOCKS).map(|_| tokio::sync::Mutex::new(())).collect(),
        }
    }

    fn pool(&self) -> &sqlx::AnyPool {
        self.engine.store().pool()
    }

    fn lock_of(&self, mandate: Uuid) -> &tokio::sync::Mutex<()> {
        &self.locks[(mandate.as_u128() % LOCKS as u128) as usize]
    }

    /// The store's mandate `id`, counted as a guess until it is found to be the store's.
    async fn held(&self, shop: i64, id: Uuid) -> Result<MandateRow, Problem> {
        if !self.guesses.reserve(&shop) {
            return Err(Problem::new(
                ProblemKind::RateLimited,
                "too many charges naming mandates this store does not hold; wait a minute",
            ));
        }
        let found = store::mandate(self.pool(), id).await.map_err(failure::service_link)?;
        match found.filter(|m| m.shop == shop) {
            Some(m) => {
                self.guesses.forgive(&shop);
                Ok(m)
            }
            None => Err(not_found()),
        }
    }

    /// Charges `r.amount` under mandate `r.mandate` for store `shop`; a retry with the same
    /// reference answers the same (even after the mandate was revoked).
    pub async fn charge(&self, shop: i64, r: &MandateChargeRequest) -> Result<Executed, Problem> {
        let amount = Points::from_decimal(r.amount)?.get();
        let id = derived_id(&[format!("mandate-charge:{shop}").as_bytes(), r.reference.as_str().as_bytes()]);
        let m = self.held(shop, r.mandate).await?;
        let principal = format!("store:{shop}");
        let payment = Request::Payment(PaymentRequest {
            id,
            resident: m.resident,
            municipality: m.municipality,
            event: None,
            shop,
            amount: r.amount,
            memo: r.memo.clone(),
        });
        let _one = self.lock_of(m.id).lock().await;
        match store::charged_under(self.pool(), id).await.map_err(failure::service_link)? {
            // Asked before: the ledger answers again (the same answer, or 409 for another body).
            Some(mandate) if mandate == m.id => return self.execute(&m, payment, &principal).await,
            Some(_) => {
                return Err(Problem::new(
                    ProblemKind::IdempotencyConflict,
                    "this reference was charged under another mandate; use a new reference",
                ))
            }
            None => {}
        }
        let now = time::now();
        match state_of(&m, now) {
            MandateState::Active => {}
            state => {
                return Err(Problem::new(
                    ProblemKind::MandateInactive,
                    format!("the mandate is {}; ask the resident to pay through checkout", state.as_str()),
                )
                .with("state", state.as_str()))
            }
        }
        // A revoked MyKey ID charges nothing, whatever it allowed before.
        self.identity.live(m.resident).await.map_err(|_| {
            Problem::new(ProblemKind::MandateInactive, "the resident's MyKey ID was revoked").with("state", "revoked")
        })?;
        if amount > m.terms.max_per_charge {
            return Err(Problem::new(
                ProblemKind::MandateLimit,
                format!("the mandate allows at most {} points per charge", m.terms.max_per_charge),
            )
            .with("max_per_charge", m.terms.max_per_charge));
        }
        let month = mandate_month(time::micros_to_datetime(now));
        let reserved = store::reserve_charge(
            self.pool(),
            id,
            m.id,
            &month,
            amount,
            m.terms.max_per_month,
            r.reference.as_str(),
            now,
        )
        .await
        .map_err(failure::service_link)?;
        if !reserved {
            return Err(Problem::new(
                ProblemKind::MandateLimit,
                format!("this charge would pass the mandate's {} points for this month", m.terms.max_per_month),
            )
            .with("max_per_month", m.terms.max_per_month));
        }
        self.execute(&m, payment, &principal).await
    }

    /// Asks the ledger for a reserved charge, then records the outcome: committed, the charge
    /// (the ledger queues the resident's notice); refused, the reservation is dropped; failed, it stays
    /// (counted against the month) for the store's retry.
    async fn execute(&self, m: &MandateRow, payment: Request, principal: &str) -> Result<Executed, Problem> {
        let id = payment.id();
        let answer = self.engine.execute(payment, principal).await;
        match &answer {
            Ok(_) => self.identity.record_mandate_charge(m, id).await?,
            // The ledger refuses only ids it has not committed: nothing of this charge exists.
            Err(EngineError::Refused(_)) => {
                store::drop_pending(self.pool(), id).await.map_err(failure::service_link)?;
            }
            // Another body for a committed id, or no answer: the reservation stays.
            Err(EngineError::Conflict(_) | EngineError::Unanswered(_)) => {}
        }
        Ok(answer)
    }
}
