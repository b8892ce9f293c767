//! Coupon codes (docs/domain.md "Partner conversion", methods 2 to 4): a partner issues a batch;
//! a resident redeems a code once and the points arrive as reserved points through the
//! ledger's conversion. Codes are HMAC-SHA-256(coupon key, batch id, index), so a repeated
//! batch request returns the same codes, and only their hashes are stored. Redemption claims
//! the code in one statement, then runs the conversion under an id derived from the code: a
//! retry replays it, and two residents can never both get the points.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use mykey_core::api::{
    AssignmentRequest, BatchCode, ConversionRequest, CouponMailRequest, CouponPreview, CouponRedeemed, CouponState,
    CouponWidgetAssignment, CouponWidgetCode, CouponWidgetNonce, CouponWidgetSignIn, CouponWidgetView, PartnerEvent,
    PartnerEventType, RedemptionNotice, WidgetSignedIn,
};
use mykey_core::coupon::{CouponBatch, CouponBatchRequest, CouponCode, Delivery, RANDOM_SYMBOLS};
use mykey_core::currency::Currency;
use mykey_core::identity::{check_email, CardPurpose, NonceIssued};
use mykey_core::rules::RESERVED_WAIT_DAYS;
use mykey_core::text::Memo;
use mykey_core::{Problem, ProblemKind};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::auth::FailureCounter;
use crate::engine::{derived_id, Engine, Executed, Request};
use crate::failure;
use crate::outbox::mail;
use crate::services::coupon_sheet::{self, SheetHeading};
use crate::services::embedding::{origins_of, Embedding, GrantScope, Owner, WidgetPlace};
use crate::store::coupons as store;
use crate::store::embedding::NewEvent;
use crate::store::group_commit::Writer;
use crate::time::{self, Micros, DAY};

/// Most codes in one batch.
pub const MAX_BATCH_CODES: u32 = 10_000;
/// Failed redemptions per resident in [`REDEEM_WINDOW`].
pub const FAILED_REDEMPTIONS_PER_RESIDENT: usize = 10;
/// Failed redemptions per client address in [`REDEEM_WINDOW`].
pub const FAILED_REDEMPTIONS_PER_IP: usize = 30;
/// The window of the two limits above.
pub const REDEEM_WINDOW: Duration = Duration::from_secs(3600);
/// How long the list of municipalities the widget offers is reused before it is read again.
pub const MUNICIPALITIES_FRESH: Micros = 60 * crate::time::SECOND;
/// Coupon mails one partner may have sent per minute (the outbox is no bulk mailer).
pub const COUPON_MAILS_PER_MINUTE: u32 = 60;

/// Issues and redeems coupon codes.
pub struct Coupons {
    engine: Engine,
    /// Claims, committed in groups.
    writer: Writer,
    /// The coupon widget's sign-in and the partner's events.
    embedding: Arc<Embedding>,
    key: [u8; 32],
    /// Where `url` delivery links point (the site's origin), e.g. `https://mykey.example`.
    origin: String,
    per_resident: FailureCounter<i64>,
    per_ip: FailureCounter<IpAddr>,
    /// Coupon mails per partner ([`COUPON_MAILS_PER_MINUTE`]).
    mails: governor::DefaultKeyedRateLimiter<i64>,
    /// The municipalities offered for assignment, and when they were read.
    municipalities: std::sync::Mutex<Option<(Micros, Vec<mykey_core::api::Municipality>)>>,
}

/// Reads the coupon key (64 hex digits) from `path`, or creates one there (mode 0600). Keep it
/// secret and keep it: the codes of every batch derive from it.
pub fn key_file(path: &std::path::Path) -> anyhow::Result<[u8; 32]> {
    use anyhow::Context;
    use rand::RngCore;
    if path.exists() {
        let text = crate::secret::read_secret_file(path)?;
        let bytes = hex::decode(text.trim()).with_context(|| format!("{} is not hex", path.display()))?;
        return bytes.try_into().map_err(|_| anyhow::anyhow!("{} must hold 32 bytes", path.display()));
    }
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    crate::secret::create_secret_file(path, &format!("{}\n", hex::encode(key)))?;
    Ok(key)
}

/// The last day a code expiring at `expires_at` is accepted, in Japan's calendar.
fn last_day(expires_at: Micros) -> String {
    time::micros_to_datetime(expires_at - 1).with_timezone(&time::japan()).format("%Y-%m-%d").to_string()
}

fn code_hash(code: &CouponCode) -> String {
    hex::encode(Sha256::digest(code.canonical().as_bytes()))
}

impl Coupons {
    /// Coupons over `engine`'s database, with the secret `key` that codes derive from.
    pub fn new(engine: Engine, key: [u8; 32], origin: &str, embedding: Arc<Embedding>, writer: Writer) -> Coupons {
        Coupons {
            engine,
            writer,
            embedding,
            key,
            origin: origin.trim_end_matches('/').to_owned(),
            per_resident: FailureCounter::new(FAILED_REDEMPTIONS_PER_RESIDENT, REDEEM_WINDOW),
            per_ip: FailureCounter::new(FAILED_REDEMPTIONS_PER_IP, REDEEM_WINDOW),
            municipalities: std::sync::Mutex::new(None),
            mails: governor::RateLimiter::keyed(governor::Quota::per_minute(
                std::num::NonZeroU32::new(COUPON_MAILS_PER_MINUTE).expect("non-zero"),
            )),
        }
    }

    /// Code `index` of batch `batch`.
    fn code(&self, batch: Uuid, index: u32) -> CouponCode {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(batch.as_bytes());
        mac.update(&index.to_be_bytes());
        let out = mac.finalize().into_bytes();
        let random: [u8; RANDOM_SYMBOLS] = out[..RANDOM_SYMBOLS].try_into().expect("32 bytes");
        CouponCode::from_random(&random)
    }

    fn pool(&self) -> &sqlx::AnyPool {
        self.engine.store().pool()
    }

    /// Issues a batch for `partner` (or gives the same batch again for the same request).
    pub async fn issue(&self, partner: i64, r: &CouponBatchRequest) -> Result<CouponBatch, Problem> {
        if r.count == 0 || r.count > MAX_BATCH_CODES {
            return Err(Problem::new(ProblemKind::InvalidRequest, format!("a batch has 1 to {MAX_BATCH_CODES} codes")));
        }
        let points = mykey_core::points::convert(r.partner_points, r.rate)?.get();
        let expires_at = time::datetime_to_micros(r.expires_at);
        if expires_at <= time::now() {
            return Err(Problem::new(ProblemKind::InvalidRequest, "expires_at is in the past"));
        }
        // Any partner may issue codes (its members without a proven link get one); the
        // exchange method is what it offers first.
        if self.engine.tables().await?.exchange_method(partner).await.map_err(failure::coupons)?.is_none() {
            return Err(Problem::new(ProblemKind::UnknownReference, format!("partner {partner} does not exist")));
        }
        let fingerprint = {
            let mut h = Sha256::new();
            h.update(partner.to_be_bytes());
            h.update(serde_json::to_vec(r).expect("serialisable"));
            hex::encode(h.finalize())
        };
        let codes: Vec<CouponCode> = (0..r.count).map(|i| self.code(r.id, i)).collect();
        let existing = store::batch_fingerprint(self.pool(), r.id).await.map_err(failure::coupons)?;
        match existing {
            Some(f) if f != fingerprint => {
                return Err(Problem::new(
                    ProblemKind::IdempotencyConflict,
                    format!("batch {} was issued with another request", r.id),
                ))
            }
            Some(_) => {}
            None => self.store_batch(partner, r, points, expires_at, &fingerprint, &codes).await?,
        }
        let urls = match r.delivery {
            Delivery::Url => codes.iter().map(|c| self.url(c)).collect(),
            _ => vec![],
        };
        Ok(CouponBatch {
            id: r.id,
            points,
            expires_at: r.expires_at,
            delivery: r.delivery,
            codes: codes.iter().map(ToString::to_string).collect(),
            urls,
        })
    }

    async fn store_batch(
        &self,
        partner: i64,
        r: &CouponBatchRequest,
        points: i64,
        expires_at: Micros,
        fingerprint: &str,
        codes: &[CouponCode],
    ) -> Result<(), Problem> {
        use sqlx::Connection;
        let mut c = self.pool().acquire().await.map_err(failure::coupons)?;
        let mut tx = c.begin().await.map_err(failure::coupons)?;
        let batch = store::NewBatch {
            id: r.id,
            partner,
            fingerprint,
            count: r.count,
            partner_points: r.partner_points,
            rate: r.rate,
            points,
            delivery: r.delivery,
            expires_at,
            created_at: time::now(),
        };
        let hashes = codes.iter().map(code_hash).collect();
        self.engine.store().insert_coupon_batch(&mut tx, &batch, hashes).await.map_err(failure::coupons)?;
        tx.commit().await.map_err(failure::coupons)
    }

    /// The redemption URL of `code`: my page with the code filled in.
    pub fn url(&self, code: &CouponCode) -> String {
        format!("{}/app/mypage/coupons?coupon={}", self.origin, code.canonical())
    }

    /// Redeems `typed` for `resident`: the conversion's answer (the same on a retry).
    pub async fn redeem(&self, resident: i64, typed: &str, ip: IpAddr) -> Result<Executed, Problem> {
        Ok(self.redeem_checked(resident, typed, ip, None).await?.1)
    }

    /// The code `typed` as it is issued, or why not (each refusal counts against the
    /// resident and the address; `only` refuses another partner's code).
    async fn look_up(
        &self,
        resident: i64,
        typed: &str,
        ip: IpAddr,
        only: Option<i64>,
    ) -> Result<(CouponCode, String, store::IssuedCoupon), Problem> {
        if self.per_resident.blocked(&resident) || self.per_ip.blocked(&ip) {
            return Err(Problem::new(ProblemKind::RateLimited, "too many wrong coupon codes; try again in an hour"));
        }
        let fail = |p: Problem| {
            self.per_resident.failed(&resident);
            self.per_ip.failed(&ip);
            p
        };
        let code =
            CouponCode::parse(typed).map_err(|e| fail(Problem::new(ProblemKind::CouponInvalid, e.to_string())))?;
        let hash = code_hash(&code);
        let coupon = store::issued(self.pool(), &hash)
            .await
            .map_err(failure::coupons)?
            .ok_or_else(|| fail(Problem::new(ProblemKind::CouponInvalid, "this coupon code was never issued")))?;
        if only.is_some_and(|p| p != coupon.partner) {
            return Err(fail(Problem::new(
                ProblemKind::CouponElsewhere,
                "this coupon code is another partner's; redeem it on my page",
            )));
        }
        Ok((code, hash, coupon))
    }

    /// Redeems `typed` for `resident` (only `only`'s codes, when given): the code's batch and
    /// points, and the conversion's answer.
    async fn redeem_checked(
        &self,
        resident: i64,
        typed: &str,
        ip: IpAddr,
        only: Option<i64>,
    ) -> Result<(store::IssuedCoupon, Executed), Problem> {
        let (code, hash, coupon) = self.look_up(resident, typed, ip, only).await?;
        let fail = |p: Problem| {
            self.per_resident.failed(&resident);
            self.per_ip.failed(&ip);
            p
        };
        let store::IssuedCoupon { partner, redeemed_by, partner_points, rate, expires_at, .. } = coupon.clone();
        match redeemed_by {
            Some(r) if r != resident => {
                return Err(fail(Problem::new(ProblemKind::CouponUsed, "this coupon code was already redeemed")))
            }
            Some(_) => {}
            None => {
                if time::now() > expires_at {
                    return Err(Problem::new(ProblemKind::CouponExpired, "this coupon code has expired")
                        .with("expired_at", time::micros_to_datetime(expires_at).to_rfc3339()));
                }
                let now = time::now();
                let event = self.redemption_event(&code, &coupon, now).await?;
                let claimed = self.writer.claim(&hash, resident, now, event).await.map_err(failure::coupons)?;
                if !claimed {
                    // Someone claimed it between the read and the claim.
                    let again = store::redeemed_by(self.pool(), &hash).await.map_err(failure::coupons)?;
                    if again != Some(resident) {
                        return Err(Problem::new(ProblemKind::CouponUsed, "this coupon code was already redeemed"));
                    }
                }
            }
        }
        // One conversion per code, whoever asks how often.
        let id = derived_id(&[b"coupon", hash.as_bytes()]);
        let request = ConversionRequest {
            id,
            partner,
            resident,
            partner_points,
            rate,
            memo: Some(Memo::parse("coupon").expect("a constant memo")),
        };
        Ok((coupon, self.engine.execute(Request::Conversion(request), &format!("partner:{partner}")).await))
    }

    /// The `coupon.redeemed` event for the partner's server, when it registered a webhook.
    async fn redemption_event(
        &self,
        code: &CouponCode,
        coupon: &store::IssuedCoupon,
        now: Micros,
    ) -> Result<Option<NewEvent>, Problem> {
        let owner = Owner::Partner(coupon.partner);
        if self.embedding.stored(owner).await?.is_none_or(|s| s.webhook_url.is_none()) {
            return Ok(None);
        }
        let e = PartnerEvent {
            id: Uuid::new_v4(),
            kind: PartnerEventType::CouponRedeemed,
            created_at: time::micros_to_datetime(now),
            redemption: Some(RedemptionNotice {
                batch: coupon.batch,
                code: code.to_string(),
                points: coupon.points,
                redeemed_at: time::micros_to_datetime(now),
            }),
            link: None,
            mandate: None,
        };
        Ok(Some(NewEvent {
            id: e.id,
            owner,
            subject: coupon.batch,
            kind: PartnerEventType::CouponRedeemed.as_str(),
            body: serde_json::to_string(&e).expect("events serialise"),
            created_at: now,
        }))
    }

    // ----- the partner's coupon widget -----

    /// The partner behind a publishable key; not-found for a store's or an unknown key.
    async fn widget_partner(&self, key: &str) -> Result<i64, Problem> {
        match self.embedding.publishable(key).await?.owner {
            Owner::Partner(p) => Ok(p),
            Owner::Store(_) => Err(Problem::new(ProblemKind::NotFound, "no such publishable key")),
        }
    }

    /// What the partner's widget shows first: its name and origins.
    pub async fn widget_view(&self, key: &str) -> Result<CouponWidgetView, Problem> {
        let settings = self.embedding.publishable(key).await?;
        let Owner::Partner(partner) = settings.owner else {
            return Err(Problem::new(ProblemKind::NotFound, "no such publishable key"));
        };
        let partner_name = self.engine.tables().await?.partner_name(partner).await.map_err(failure::coupons)?;
        Ok(CouponWidgetView { partner_name: partner_name.unwrap_or_default(), origins: origins_of(&settings) })
    }

    /// A card challenge for one frame of the partner's widget.
    pub async fn widget_nonce(&self, r: &CouponWidgetNonce, ip: IpAddr) -> Result<NonceIssued, Problem> {
        let instance = widget_instance(&r.instance)?;
        let partner = self.widget_partner(&r.publishable_key).await?;
        self.embedding.nonce(WidgetPlace::Frame { partner, instance }, CardPurpose::Coupon, ip)
    }

    /// Signs the resident in inside the partner's widget.
    pub async fn widget_sign_in(&self, r: &CouponWidgetSignIn, ip: IpAddr) -> Result<WidgetSignedIn, Problem> {
        let instance = widget_instance(&r.instance)?;
        let partner = self.widget_partner(&r.publishable_key).await?;
        let place = WidgetPlace::Frame { partner, instance };
        let (grant, _, profile) =
            self.embedding.sign_in(place, CardPurpose::Coupon, r.password.as_ref(), r.card.as_ref(), ip).await?;
        Ok(WidgetSignedIn { grant, mykey_id: profile.mykey_id.to_string() })
    }

    async fn widget_resident(&self, key: &str, grant: &str) -> Result<(i64, i64), Problem> {
        let partner = self.widget_partner(key).await?;
        Ok((partner, self.embedding.resident(GrantScope::Partner(partner), grant)?))
    }

    /// What a code of this partner gives, before the signed-in resident redeems it.
    pub async fn preview(&self, r: &CouponWidgetCode, ip: IpAddr) -> Result<CouponPreview, Problem> {
        let (partner, resident) = self.widget_resident(&r.publishable_key, &r.grant).await?;
        let (code, _, coupon) = self.look_up(resident, &r.code, ip, Some(partner)).await?;
        let state = match coupon.redeemed_by {
            Some(_) => CouponState::Redeemed,
            None if time::now() > coupon.expires_at => CouponState::Expired,
            None => CouponState::Issued,
        };
        let partner_name = self.engine.tables().await?.partner_name(partner).await.map_err(failure::coupons)?;
        Ok(CouponPreview {
            code: code.to_string(),
            partner_name: partner_name.unwrap_or_default(),
            points: coupon.points,
            expires_at: time::micros_to_datetime(coupon.expires_at),
            state,
        })
    }

    /// The signed-in resident redeems a code of this partner: the reserved points, when they
    /// move home, and where they may be assigned now.
    pub async fn widget_redeem(&self, r: &CouponWidgetCode, ip: IpAddr) -> Result<CouponRedeemed, Problem> {
        let (partner, resident) = self.widget_resident(&r.publishable_key, &r.grant).await?;
        let (coupon, answer) = self.redeem_checked(resident, &r.code, ip, Some(partner)).await?;
        let done = answer?;
        let receipt = done
            .transaction()
            .ok_or_else(|| failure::coupons(anyhow::anyhow!("a conversion answered without its transaction")))?;
        // The receipt's credit leg is the resident's reserved account, with its balance after:
        // no read (which would wait for the tables to catch up with the ledger).
        let reserved = receipt
            .postings
            .iter()
            .find(|p| p.amount > 0 && p.currency == Currency::Reserved)
            .map_or(0, |p| p.balance_after);
        let now = time::now();
        let municipalities = self.municipalities().await?;
        Ok(CouponRedeemed {
            code: CouponCode::parse(&r.code).map(|c| c.to_string()).unwrap_or_default(),
            points: coupon.points,
            reserved,
            moves_home_at: time::micros_to_datetime(now + RESERVED_WAIT_DAYS * DAY),
            municipalities,
        })
    }

    /// The municipalities taking part, read at most every [`MUNICIPALITIES_FRESH`].
    async fn municipalities(&self) -> Result<Vec<mykey_core::api::Municipality>, Problem> {
        let now = time::now();
        if let Some((at, list)) = &*self.municipalities.lock().expect("not poisoned") {
            if now - at < MUNICIPALITIES_FRESH {
                return Ok(list.clone());
            }
        }
        let list = self.engine.tables().await?.municipalities().await.map_err(failure::ledger_read)?;
        *self.municipalities.lock().expect("not poisoned") = Some((now, list.clone()));
        Ok(list)
    }

    /// The signed-in resident assigns reserved points to a municipality now.
    pub async fn widget_assign(&self, r: &CouponWidgetAssignment) -> Result<Executed, Problem> {
        let (_, resident) = self.widget_resident(&r.publishable_key, &r.grant).await?;
        let body = AssignmentRequest { id: r.id, resident, municipality: r.municipality, amount: r.amount };
        Ok(self.engine.execute(Request::Assignment(body), &format!("resident:{resident}")).await)
    }

    // ----- a batch's codes -----

    /// Has the outbox mail one code of `partner`'s batch to its member, once per code.
    pub async fn mail(&self, partner: i64, batch: Uuid, r: &CouponMailRequest) -> Result<(), Problem> {
        use sqlx::Connection;
        if !check_email(&r.to) {
            return Err(Problem::new(ProblemKind::InvalidEmail, "the member's address is not an e-mail address")
                .with("field", "to"));
        }
        if self.mails.check_key(&partner).is_err() {
            return Err(Problem::new(
                ProblemKind::RateLimited,
                format!("at most {COUPON_MAILS_PER_MINUTE} coupon mails a minute; try again shortly"),
            ));
        }
        let code = CouponCode::parse(&r.code)
            .map_err(|e| Problem::new(ProblemKind::CouponInvalid, e.to_string()).with("field", "code"))?;
        let hash = code_hash(&code);
        let coupon = store::issued(self.pool(), &hash)
            .await
            .map_err(failure::coupons)?
            .filter(|c| c.batch == batch && c.partner == partner)
            .ok_or_else(|| Problem::new(ProblemKind::NotFound, format!("batch {batch} has no such code")))?;
        if coupon.redeemed_by.is_some() {
            return Err(Problem::new(ProblemKind::CouponUsed, "this coupon code was already redeemed"));
        }
        let now = time::now();
        if now > coupon.expires_at {
            return Err(Problem::new(ProblemKind::CouponExpired, "this coupon code has expired"));
        }
        let name =
            self.engine.tables().await?.partner_name(partner).await.map_err(failure::coupons)?.unwrap_or_default();
        let (subject, body) = mail::render_coupon(
            &name,
            &code.to_string(),
            coupon.points,
            &last_day(coupon.expires_at),
            &self.url(&code),
        );
        let mut c = self.pool().acquire().await.map_err(failure::coupons)?;
        let mut tx = c.begin().await.map_err(failure::coupons)?;
        if !store::mark_mailed(&mut tx, &hash, now).await.map_err(failure::coupons)? {
            return Err(Problem::new(
                ProblemKind::IdempotencyConflict,
                "this code was mailed already; each code is mailed once",
            ));
        }
        // Resident 0: the member may have no MyKey ID yet.
        crate::store::outbox::insert_mail(&mut tx, 0, mail::PARTNER_COUPON, &r.to, &subject, &body, now)
            .await
            .map_err(failure::coupons)?;
        tx.commit().await.map_err(failure::coupons)
    }

    /// `partner`'s batch on paper (`csv` false: the print-ready sheet) or as CSV.
    pub async fn batch_paper(&self, partner: i64, batch: Uuid, csv: bool) -> Result<String, Problem> {
        let codes = self.batch_codes(partner, batch).await?;
        let (_, points, expires_at) = store::batch(self.pool(), partner, batch)
            .await
            .map_err(failure::coupons)?
            .ok_or_else(|| Problem::new(ProblemKind::NotFound, format!("partner {partner} has no batch {batch}")))?;
        let name =
            self.engine.tables().await?.partner_name(partner).await.map_err(failure::coupons)?.unwrap_or_default();
        let last = last_day(expires_at);
        let heading = SheetHeading { partner: &name, points, expires_on: &last };
        Ok(if csv { coupon_sheet::csv(&heading, &codes) } else { coupon_sheet::sheet(&heading, &codes) })
    }

    /// The codes of `partner`'s batch with their state.
    pub async fn batch_codes(&self, partner: i64, batch: Uuid) -> Result<Vec<BatchCode>, Problem> {
        let (count, _, expires_at) = store::batch(self.pool(), partner, batch)
            .await
            .map_err(failure::coupons)?
            .ok_or_else(|| Problem::new(ProblemKind::NotFound, format!("partner {partner} has no batch {batch}")))?;
        let redeemed: std::collections::HashMap<String, Micros> =
            store::redeemed_in_batch(self.pool(), batch).await.map_err(failure::coupons)?.into_iter().collect();
        let now = time::now();
        Ok((0..count)
            .map(|i| {
                let code = self.code(batch, i);
                let at = redeemed.get(&code_hash(&code)).copied();
                let state = match at {
                    Some(_) => CouponState::Redeemed,
                    None if now > expires_at => CouponState::Expired,
                    None => CouponState::Issued,
                };
                BatchCode {
                    code: code.to_string(),
                    url: self.url(&code),
                    state,
                    redeemed_at: at.map(time::micros_to_datetime),
                }
            })
            .collect())
    }
}

/// A frame's id as sent, or the refusal.
fn widget_instance(s: &str) -> Result<&str, Problem> {
    if mykey_core::api::check_widget_instance(s) {
        Ok(s)
    } else {
        Err(Problem::new(ProblemKind::InvalidRequest, "instance is 16 to 64 letters, digits, - or _")
            .with("field", "instance"))
    }
}
