//! Point vouchers at the counter (docs/counter.md "Point vouchers"): a terminal issues one with
//! the resident's card and PIN (a `voucher` challenge naming the municipality and the amount),
//! any terminal of a shop taking that municipality's points redeems it once, in full, by its QR
//! code or its typed number; the ledger gives an unspent voucher's points back at its expiry.
//! The QR code carries the server's ECDSA P-256 signature over the voucher's fields, so a
//! terminal can tell a forged or altered voucher before it asks (`GET /v1/vouchers/key`).

use base64::Engine as _;
use mykey_core::api::{
    CounterKind, PartyReceipt, TransactionReceipt, VoucherIssueRequest, VoucherIssued, VoucherKey, VoucherRedeemed,
    VoucherRedemptionRequest, VoucherView,
};
use mykey_core::rules::VOUCHER_GUESSES_PER_MINUTE;
use mykey_core::voucher::{VoucherInput, VoucherNumber, VoucherState, VoucherTicket};
use mykey_core::{Points, Problem, ProblemKind};
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::auth::FailureCounter;
use crate::engine::{check_client_id, Done, EngineError, Request};
use crate::ledger::{Refusal, VoucherIssue, VoucherRedemption};
use crate::services::counter::Counter;
use crate::time;

/// Numbers tried for one issue before giving up: each is drawn from the request id and the
/// attempt, so a retry of the issue finds the number its first try used.
const NUMBER_ATTEMPTS: u8 = 4;
/// Settled vouchers a resident's list shows, besides every open one: those of the last
/// [`LIST_DAYS`] days, at most this many.
const LIST_MAX: i64 = 50;
/// Days of settled vouchers a resident's list shows.
const LIST_DAYS: i64 = 90;

/// The keys of vouchers: the one that signs their QR codes and the one that draws their
/// numbers; and the typed numbers each terminal got wrong.
pub struct Vouchers {
    signing: p256::ecdsa::SigningKey,
    /// The public key as `GET /v1/vouchers/key` answers it, encoded once.
    key: VoucherKey,
    numbers: [u8; 32],
    /// Typed numbers that took no voucher, per terminal and per shop.
    guesses: FailureCounter<Guesser>,
}

/// Who typed a number: a terminal, and its shop with all its terminals.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Guesser {
    Device(Uuid),
    Shop(i64),
}

impl Vouchers {
    /// The voucher keys derived from `key` (one key file serves every derived key).
    pub fn new(key: [u8; 32]) -> Vouchers {
        // A scalar from a hash; the next counter in the astronomically rare case it is not one.
        let signing = (0u8..=255)
            .find_map(|i| {
                let seed =
                    Sha256::new().chain_update(b"mykey voucher signing key\0").chain_update(key).chain_update([i]);
                p256::ecdsa::SigningKey::from_bytes(&seed.finalize()).ok()
            })
            .expect("a valid scalar within 256 tries");
        let numbers = Sha256::new().chain_update(b"mykey voucher numbers\0").chain_update(key).finalize().into();
        use p256::pkcs8::EncodePublicKey as _;
        let spki = signing.verifying_key().to_public_key_der().expect("a P-256 key encodes");
        let key = VoucherKey {
            algorithm: "ES256".into(),
            spki: base64::engine::general_purpose::STANDARD.encode(spki.as_bytes()),
        };
        Vouchers {
            signing,
            key,
            numbers,
            guesses: FailureCounter::new(VOUCHER_GUESSES_PER_MINUTE as usize, std::time::Duration::from_secs(60)),
        }
    }

    /// The public key that checks vouchers' QR codes.
    pub fn key(&self) -> &VoucherKey {
        &self.key
    }

    /// The number issue `id` tries at `attempt`.
    fn number(&self, id: Uuid, attempt: u8) -> VoucherNumber {
        let h = Sha256::new().chain_update(self.numbers).chain_update(id.as_bytes()).chain_update([attempt]).finalize();
        VoucherNumber::from_random(u64::from_be_bytes(h[..8].try_into().expect("8 bytes")))
    }

    fn ticket(&self, number: VoucherNumber, municipality: i64, points: i64, expires_at: i64) -> VoucherTicket {
        let message = VoucherTicket::signed_text(number, municipality, points, expires_at);
        let signature: p256::ecdsa::Signature = self.signing.sign(message.as_bytes());
        VoucherTicket { number, municipality, points, expires_at, signature: signature.to_bytes().to_vec() }
    }

    /// Whether `t` carries this server's signature over its fields.
    fn genuine(&self, t: &VoucherTicket) -> bool {
        p256::ecdsa::Signature::from_slice(&t.signature)
            .is_ok_and(|s| self.signing.verifying_key().verify(t.message().as_bytes(), &s).is_ok())
    }
}

impl Counter<'_> {
    /// Issues a voucher of the points the card holder agreed to at this counter: the ledger
    /// moves them into the municipality's voucher account; the answer is what is printed.
    pub async fn issue_voucher(&self, keys: &Vouchers, r: VoucherIssueRequest) -> Result<VoucherIssued, Problem> {
        check_client_id(r.id)?;
        let amount = Points::from_decimal(r.amount)?;
        let terms = self.terms(CounterKind::Voucher, r.municipality, None, r.amount, None, None)?;
        let resident = self.consent(r.id, &terms, &r.nonce, &r.token).await?;
        for attempt in 0..NUMBER_ATTEMPTS {
            let number = keys.number(r.id, attempt);
            // A number of an earlier voucher is not drawn again (the ledger knows open ones only).
            let earlier = self.engine.tables().await?.voucher(number.get()).await.map_err(crate::failure::counter)?;
            if earlier.is_some_and(|v| v.id != r.id) {
                continue;
            }
            let issue = VoucherIssue {
                id: r.id,
                number: number.get(),
                resident,
                municipality: r.municipality,
                shop: self.shop,
                amount: amount.get(),
            };
            match self.engine.execute(Request::VoucherIssue(issue), &self.principal).await {
                Ok(done) => return self.issued(keys, number, r.municipality, amount.get(), &done).await,
                Err(EngineError::Refused(Refusal::VoucherNumberTaken(_))) => continue,
                Err(e) => return Err(e.party_problem()),
            }
        }
        Err(Problem::new(ProblemKind::Unavailable, "no free voucher number was found; try again"))
    }

    async fn issued(
        &self,
        keys: &Vouchers,
        number: VoucherNumber,
        municipality: i64,
        points: i64,
        done: &Done,
    ) -> Result<VoucherIssued, Problem> {
        let receipt = transaction(done)?;
        // The validity the ledger gave it: the rule's, or earlier when the points it took
        // expire earlier.
        let tables = self.engine.tables().await?;
        let stored = tables.voucher(number.get()).await.map_err(crate::failure::counter)?;
        let v = stored
            .filter(|v| v.id == receipt.id)
            .ok_or_else(|| crate::failure::counter(anyhow::anyhow!("issued voucher {number} is not in the tables")))?;
        let expires_at = time::micros_to_datetime(v.expires_at);
        let ticket = keys.ticket(number, municipality, points, expires_at.timestamp());
        let municipalities = tables.municipalities().await.map_err(crate::failure::counter)?;
        Ok(VoucherIssued {
            number: number.to_string(),
            municipality,
            municipality_name: municipalities
                .into_iter()
                .find(|m| m.id == municipality)
                .map(|m| m.name)
                .unwrap_or_default(),
            points,
            issued_at: time::micros_to_datetime(v.issued_at),
            expires_at,
            ticket: ticket.text(),
            receipt: PartyReceipt::from(receipt.clone()),
        })
    }

    /// Takes a voucher, scanned or typed, as payment at this shop, in full. A scanned code is
    /// checked against the server's signature first. A typed number counts as a guess against
    /// this terminal and its shop before it is looked up, in one step with the check (numbers
    /// sent at once cannot all pass), and is forgiven only when the voucher is taken: whatever
    /// else is answered (no such number, another municipality's, spent) tells a guesser
    /// something.
    pub async fn redeem_voucher(
        &self,
        keys: &Vouchers,
        r: VoucherRedemptionRequest,
    ) -> Result<VoucherRedeemed, Problem> {
        check_client_id(r.id)?;
        if r.voucher.len() > mykey_core::voucher::TICKET_MAX {
            return Err(Problem::new(ProblemKind::VoucherInvalid, "this is not a point voucher's code or number")
                .with("field", "voucher"));
        }
        let input = VoucherInput::parse(&r.voucher).map_err(|why| Problem::new(ProblemKind::VoucherInvalid, why))?;
        let guessers = [Guesser::Device(self.device), Guesser::Shop(self.shop)];
        let typed = matches!(input, VoucherInput::Number(_));
        if typed {
            for (i, g) in guessers.iter().enumerate() {
                if !keys.guesses.reserve(g) {
                    guessers[..i].iter().for_each(|g| keys.guesses.forgive(g));
                    return Err(Problem::new(
                        ProblemKind::RateLimited,
                        format!(
                            "this terminal or its shop typed {VOUCHER_GUESSES_PER_MINUTE} voucher numbers within a \
                             minute that took no voucher; wait a minute"
                        ),
                    ));
                }
            }
        }
        let taken = self.take(keys, &input, r.id).await;
        if typed && taken.is_ok() {
            guessers.iter().for_each(|g| keys.guesses.forgive(g));
        }
        taken
    }

    /// Redeems the voucher `input` names under request `id`.
    async fn take(&self, keys: &Vouchers, input: &VoucherInput, id: Uuid) -> Result<VoucherRedeemed, Problem> {
        if let VoucherInput::Ticket(t) = input {
            if !keys.genuine(t) {
                return Err(Problem::new(
                    ProblemKind::VoucherInvalid,
                    "this voucher's QR code was not signed by the points cloud: it is forged or altered",
                ));
            }
        }
        let number = input.number();
        self.note(id).await?;
        let redemption = VoucherRedemption { id, number: number.get(), shop: self.shop };
        match self.engine.execute(Request::VoucherRedemption(redemption), &self.principal).await {
            Ok(done) => {
                let receipt = transaction(&done)?;
                let points = receipt.postings.iter().map(|p| p.amount).filter(|a| *a > 0).sum();
                // The ledger took it: the voucher is of this shop's municipality's points.
                let municipality = crate::services::usable::shop_municipality(self.engine, self.shop).await?;
                Ok(VoucherRedeemed {
                    number: number.to_string(),
                    municipality,
                    points,
                    receipt: PartyReceipt::from(receipt.clone()),
                })
            }
            Err(EngineError::Refused(Refusal::UnknownVoucher(_))) => Err(self.not_open(number).await?),
            Err(e) => Err(e.party_problem()),
        }
    }

    /// Why no open voucher has `number`, from the tables.
    async fn not_open(&self, number: VoucherNumber) -> Result<Problem, Problem> {
        let found = self.engine.tables().await?.voucher(number.get()).await.map_err(crate::failure::counter)?;
        Ok(match found.map(|v| (v.state, v.settled_at)) {
            Some((VoucherState::Redeemed, at)) => {
                let at = at.map(|t| time::micros_to_datetime(t).with_timezone(&time::japan()).format("%Y-%m-%d %H:%M"));
                Problem::new(
                    ProblemKind::VoucherSpent,
                    format!("voucher {number} was already used ({})", at.map(|t| t.to_string()).unwrap_or_default()),
                )
            }
            Some((VoucherState::Returned, _)) => Problem::new(
                ProblemKind::VoucherExpired,
                format!("voucher {number} has expired; its points went back to the resident"),
            ),
            // Left open by a moment's race with its return or redemption: asked again, it is clear.
            Some((VoucherState::Open, _)) => {
                Problem::new(ProblemKind::Unavailable, "the voucher changed just now; try again")
            }
            None => Problem::new(
                ProblemKind::NotFound,
                format!("no voucher has the number {number}; check the number printed on it"),
            ),
        })
    }
}

/// The transaction a voucher request answered with.
fn transaction(done: &Done) -> Result<&TransactionReceipt, Problem> {
    done.transaction()
        .ok_or_else(|| crate::failure::counter(anyhow::anyhow!("a voucher request answered without its transaction")))
}

/// The resident's vouchers for my page: every open one, and those settled lately.
pub async fn of_resident(engine: &crate::engine::Engine, resident: i64) -> Result<Vec<VoucherView>, Problem> {
    let since = time::now() - LIST_DAYS * time::DAY;
    let rows = engine
        .tables()
        .await?
        .resident_vouchers(resident, since, LIST_MAX)
        .await
        .map_err(crate::failure::ledger_read)?;
    Ok(rows
        .into_iter()
        .map(|l| VoucherView {
            number: VoucherNumber::from_stored(l.voucher.number).map(|n| n.to_string()).unwrap_or_default(),
            municipality: l.voucher.municipality,
            municipality_name: l.municipality_name,
            points: l.voucher.amount,
            state: l.voucher.state,
            issued_at: time::micros_to_datetime(l.voucher.issued_at),
            expires_at: time::micros_to_datetime(l.voucher.expires_at),
            issued_at_shop: l.issued_by_name,
            settled_at: l.voucher.settled_at.map(time::micros_to_datetime),
            redeemed_at_shop: l.settled_by_name,
        })
        .collect())
}
