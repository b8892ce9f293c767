//! Paying at a shop's counter terminal (docs/card.md "Paying at a counter"): the terminal asks
//! for a challenge naming the terms (kind, shop, points, amount), bound to its key; the
//! resident's card signs it with the PIN; the payment or hold reaches the ledger only with that
//! signature, for exactly those terms, once. A terminal's key alone moves no points.

use mykey_core::api::{
    balance_terms, challenge_names, challenge_of, refund_terms, AccountKind, CounterBalances, CounterChallengeRequest,
    CounterHoldRequest, CounterKind, CounterPaymentRequest, CounterRefundChallengeRequest, CounterRefundRequest,
    CounterTerms, HoldRequest, PaymentRequest, TransactionKind,
};
use mykey_core::identity::{AuthToken, CardPurpose, NonceIssued, SigningContext};
use mykey_core::text::Memo;
use mykey_core::{Points, Problem, ProblemKind};
use uuid::Uuid;

use crate::auth::devices::SignedBy;
use crate::engine::{check_client_id, derived_id, Engine, Executed, Request};
use crate::ledger::{RefundOf, RefundPosting};
use crate::services::identity::Identity;
use crate::time;

/// A shop's counter terminal: an enrolled device, acting for its shop.
pub struct Counter<'a> {
    identity: &'a Identity,
    /// Where the device of each request is noted, many at a time.
    notes: &'a crate::store::group_commit::Writer,
    pub(super) engine: &'a Engine,
    pub(super) principal: String,
    pub(super) shop: i64,
    /// The device, which the daily close names each request by.
    pub(super) device: Uuid,
    /// Where the resident's card signs: this shop's counter and this device.
    context: SigningContext,
}

impl<'a> Counter<'a> {
    /// The device `by`, at its shop.
    pub fn new(
        identity: &'a Identity,
        engine: &'a Engine,
        notes: &'a crate::store::group_commit::Writer,
        by: SignedBy,
    ) -> Counter<'a> {
        let context = SigningContext::Counter { shop: by.shop, device: by.device };
        Counter { identity, notes, engine, principal: by.principal(), shop: by.shop, device: by.device, context }
    }

    /// A challenge for the resident's card naming `r`'s terms, good for this device only, once,
    /// within `card::NONCE_LIFE`.
    pub fn challenge(&self, r: &CounterChallengeRequest) -> Result<NonceIssued, Problem> {
        // A hold's life is part of what the resident agrees to; a payment has none.
        match (r.kind, r.timeout_seconds, &r.memo) {
            (CounterKind::Hold, None, _) => {
                return Err(Problem::new(ProblemKind::InvalidRequest, "a hold's challenge names its timeout_seconds")
                    .with("field", "timeout_seconds"))
            }
            (CounterKind::Payment, Some(_), _) => {
                return Err(Problem::new(ProblemKind::InvalidRequest, "a payment has no timeout_seconds")
                    .with("field", "timeout_seconds"))
            }
            (CounterKind::Hold, _, Some(_)) => {
                return Err(Problem::new(ProblemKind::InvalidRequest, "a hold carries no memo").with("field", "memo"))
            }
            (CounterKind::Voucher, Some(_), _) | (CounterKind::Voucher, _, Some(_)) => {
                return Err(Problem::new(ProblemKind::InvalidRequest, "a voucher has no timeout_seconds or memo"))
            }
            (CounterKind::Voucher, ..) if r.event.is_some() => {
                return Err(Problem::new(
                    ProblemKind::InvalidRequest,
                    "vouchers are of municipal points, not event points",
                )
                .with("field", "event"))
            }
            _ => {}
        }
        let terms = self.terms(r.kind, r.municipality, r.event, r.amount, r.timeout_seconds, r.memo.as_ref())?;
        self.issue(CardPurpose::Payment, &terms)
    }

    /// A challenge for the resident's card to show the points usable at this shop on the
    /// terminal's screen: good for this device only, once.
    pub fn balance_challenge(&self) -> Result<NonceIssued, Problem> {
        self.issue(CardPurpose::CounterBalance, &balance_terms(self.shop))
    }

    fn issue(&self, purpose: CardPurpose, terms: &str) -> Result<NonceIssued, Problem> {
        let (nonce, life) = self.identity.counter_nonce(&self.principal, purpose, terms)?;
        let expires_at = time::micros_to_datetime(time::now() + i64::try_from(life.as_micros()).unwrap_or(i64::MAX));
        Ok(NonceIssued { nonce, purpose, expires_at })
    }

    /// The points usable at this shop of the resident whose card signed this terminal's
    /// balance challenge: what the counter's screen shows, and only after that signature.
    pub async fn balances(&self, nonce: &str, token: &AuthToken) -> Result<CounterBalances, Problem> {
        if !challenge_of(CardPurpose::CounterBalance, nonce, &balance_terms(self.shop)) {
            return Err(Problem::new(
                ProblemKind::NonceInvalid,
                "the card signed no balance challenge of this shop; ask /v1/shops/{shop}/balance-challenges",
            ));
        }
        let card =
            self.identity.verify_card(nonce, &self.principal, CardPurpose::CounterBalance, &self.context, token)?;
        let resident = self.identity.card_holder(&card).await?.resident;
        let municipality = crate::services::usable::shop_municipality(self.engine, self.shop).await?;
        let usable = crate::services::usable::usable_at(self.engine, municipality, resident).await?;
        Ok(CounterBalances { municipality, usable })
    }

    /// Spends the points the card's holder agreed to.
    pub async fn pay(&self, r: CounterPaymentRequest) -> Result<Executed, Problem> {
        check_client_id(r.id)?;
        let terms = self.terms(CounterKind::Payment, r.municipality, r.event, r.amount, None, r.memo.as_ref())?;
        let resident = self.consent(r.id, &terms, &r.nonce, &r.token).await?;
        let payment = PaymentRequest {
            id: r.id,
            resident,
            municipality: r.municipality,
            event: r.event,
            shop: self.shop,
            amount: r.amount,
            memo: r.memo,
        };
        self.note(payment.id).await?;
        Ok(self.engine.execute(Request::Payment(payment), &self.principal).await)
    }

    /// Sets aside the points the card's holder agreed to, for this shop to capture.
    pub async fn hold(&self, r: CounterHoldRequest) -> Result<Executed, Problem> {
        check_client_id(r.id)?;
        let terms = self.terms(CounterKind::Hold, r.municipality, r.event, r.amount, Some(r.timeout_seconds), None)?;
        let resident = self.consent(r.id, &terms, &r.nonce, &r.token).await?;
        let hold = HoldRequest {
            id: r.id,
            resident,
            municipality: r.municipality,
            event: r.event,
            shop: self.shop,
            amount: r.amount,
            timeout_seconds: r.timeout_seconds,
        };
        self.note(hold.id).await?;
        Ok(self.engine.execute(Request::Hold(hold), &self.principal).await)
    }

    /// A challenge for the card of the resident who paid, naming the refund's terms: good for
    /// this device only, once.
    /// The payment, the amount and an earlier refund are checked first, so that the resident
    /// signs only a refund that can be made (whose card paid is checked once it has signed).
    pub async fn refund_challenge(&self, r: &CounterRefundChallengeRequest) -> Result<NonceIssued, Problem> {
        let amount = Points::from_decimal(r.amount)?;
        self.refundable(r.payment, amount).await?;
        self.issue(CardPurpose::Payment, &refund_terms(self.shop, r.payment, amount))
    }

    /// The counter payment `payment` of this shop, if `amount` of it can be refunded: not more
    /// than was paid, and not refunded before (a retry of the same refund can).
    async fn refundable(&self, payment: Uuid, amount: Points) -> Result<Paid, Problem> {
        let paid = self.paid_here(payment).await?;
        if let Some(before) = self.engine.committed_transaction(refund_id(payment)).await? {
            let refunded: i64 = before.postings.iter().map(|p| p.amount).filter(|a| *a > 0).sum();
            if refunded != amount.get() {
                return Err(Problem::new(
                    ProblemKind::PaymentRefunded,
                    format!("this payment was already refunded ({refunded} points); a payment is refunded once"),
                )
                .with("refunded", refunded));
            }
        }
        if amount.get() > paid.points {
            return Err(Problem::new(
                ProblemKind::RefundExceedsCapture,
                format!("{} points were paid; a refund gives back at most that", paid.points),
            )
            .with("refundable", paid.points));
        }
        Ok(paid)
    }

    /// Gives back points of a payment made at this shop, once the card of the resident who
    /// paid signed this refund's terms. A payment is refunded once: the refund's id is derived
    /// from the payment's, so the single writer refuses a second one and answers a retry the
    /// same.
    pub async fn refund(&self, r: CounterRefundRequest) -> Result<Executed, Problem> {
        let amount = Points::from_decimal(r.amount)?;
        let id = refund_id(r.payment);
        let resident = self.consent(id, &refund_terms(self.shop, r.payment, amount), &r.nonce, &r.token).await?;
        let paid = self.refundable(r.payment, amount).await?;
        if paid.resident != resident {
            return Err(Problem::new(
                ProblemKind::CardNotPayer,
                "this card is not that of the resident who paid; the refund needs the payer's card",
            ));
        }
        let posting = RefundPosting {
            id,
            of: RefundOf::CounterPayment,
            refunded: r.payment,
            shop: self.shop,
            resident,
            municipality: paid.municipality,
            event: paid.event,
            points: amount.get(),
        };
        self.note(posting.id).await?;
        Ok(self.engine.execute(Request::Refund(posting), &self.principal).await)
    }

    /// Notes that this device sends request `id`, before the ledger applies it, so that the
    /// daily close names the device of every counter transaction.
    pub(super) async fn note(&self, id: Uuid) -> Result<(), Problem> {
        // Many terminals' notes share one commit and one sync (SQLite has one write lock).
        self.notes.counter_request(id, self.shop, self.device, time::now()).await.map_err(crate::failure::counter)
    }

    /// The payment `payment` a counter device of this shop took: who paid how many of which
    /// points. Another shop's payment, a checkout's or a mandate's charge (refunded through
    /// their own routes, so never twice), or no payment, is not found.
    async fn paid_here(&self, payment: uuid::Uuid) -> Result<Paid, Problem> {
        let not_found =
            || Problem::new(ProblemKind::NotFound, "no counter device of this shop took a payment with that id");
        let by = crate::store::close::request_shop(self.engine.store().pool(), payment)
            .await
            .map_err(crate::failure::counter)?;
        if by != Some(self.shop) {
            return Err(not_found());
        }
        let receipt = self.engine.committed_transaction(payment).await?.ok_or_else(not_found)?;
        if receipt.kind != TransactionKind::Payment {
            return Err(not_found());
        }
        let (Some(debit), Some(credit)) =
            (receipt.postings.iter().find(|p| p.amount < 0), receipt.postings.iter().find(|p| p.amount > 0))
        else {
            return Err(not_found());
        };
        let tables = self.engine.tables().await?;
        let parties = |account: i64| async move {
            tables.account_parties(account).await.map_err(|e| {
                tracing::error!(error = %e, "reading a payment's accounts");
                Problem::new(ProblemKind::Unavailable, "the ledger database is not answering")
            })
        };
        let shop = parties(credit.account).await?.ok_or_else(not_found)?;
        if shop.kind != AccountKind::Receivable || shop.owner != self.shop {
            return Err(not_found());
        }
        let payer = parties(debit.account).await?.ok_or_else(not_found)?;
        Ok(Paid { resident: payer.owner, municipality: payer.municipality, event: payer.event, points: credit.amount })
    }

    /// The text of the terms the card signs at this shop (`CounterTerms::text`).
    pub(super) fn terms(
        &self,
        kind: CounterKind,
        municipality: i64,
        event: Option<i64>,
        amount: rust_decimal::Decimal,
        timeout_seconds: Option<u32>,
        memo: Option<&Memo>,
    ) -> Result<String, Problem> {
        let amount = Points::from_decimal(amount)?;
        let memo = memo.map(|m| m.as_str());
        Ok(CounterTerms { kind, shop: self.shop, municipality, event, amount, timeout_seconds, memo }.text())
    }

    /// The resident whose card signed a challenge of this terminal for exactly `terms`. A
    /// request id the ledger already applied is a retry: its challenge was used by the first
    /// try, so only the signature is checked again, and the ledger answers what it answered
    /// (or 409 for another body); nothing new can move.
    pub(super) async fn consent(&self, id: Uuid, terms: &str, nonce: &str, token: &AuthToken) -> Result<i64, Problem> {
        if !challenge_names(nonce, terms) {
            return Err(Problem::new(
                ProblemKind::NonceInvalid,
                "the card signed other terms (kind, shop, points, amount, a hold's timeout or a payment's memo); \
                 ask for a challenge for this one",
            ));
        }
        let card = if self.engine.is_committed(id).await? {
            self.identity.verify_card_again(nonce, &self.context, token)?
        } else {
            self.identity.verify_card(nonce, &self.principal, CardPurpose::Payment, &self.context, token)?
        };
        Ok(self.identity.card_holder(&card).await?.resident)
    }
}

/// A payment taken at a shop's counter, as a refund of it needs it.
struct Paid {
    resident: i64,
    municipality: i64,
    event: Option<i64>,
    points: i64,
}

/// The id of the one refund a counter payment can have.
fn refund_id(payment: uuid::Uuid) -> uuid::Uuid {
    derived_id(&[b"counter-refund", payment.as_bytes()])
}
