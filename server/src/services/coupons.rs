//! Coupon codes (docs/domain.md "Partner conversion", methods 2 to 4): a partner issues a batch;
//! a resident redeems a code once and the points arrive as reserved points through the
//! ledger's conversion. Codes are HMAC-SHA-256(coupon key, batch id, index), so a repeated
//! batch request returns the same codes, and only their hashes are stored. Redemption claims
//! the code in one statement, then runs the conversion under an id derived from the code: a
//! retry replays it, and two residents can never both get the points.

use std::net::IpAddr;
use std::time::Duration;

use hmac::{Hmac, Mac};
use mykey_core::api::ConversionRequest;
use mykey_core::coupon::{CouponBatch, CouponBatchRequest, CouponCode, Delivery, RANDOM_SYMBOLS};
use mykey_core::text::Memo;
use mykey_core::{Problem, ProblemKind};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::auth::FailureCounter;
use crate::engine::{Answer, Engine, Request};
use crate::failure;
use crate::store::coupons as store;
use crate::time::{self, Micros};

/// Most codes in one batch.
pub const MAX_BATCH_CODES: u32 = 10_000;
/// Failed redemptions per resident in [`REDEEM_WINDOW`].
pub const FAILED_REDEMPTIONS_PER_RESIDENT: usize = 10;
/// Failed redemptions per client address in [`REDEEM_WINDOW`].
pub const FAILED_REDEMPTIONS_PER_IP: usize = 30;
/// The window of the two limits above.
pub const REDEEM_WINDOW: Duration = Duration::from_secs(3600);

/// Issues and redeems coupon codes.
pub struct Coupons {
    engine: Engine,
    key: [u8; 32],
    /// Where `url` delivery links point (the site's origin), e.g. `https://mykey.example`.
    origin: String,
    per_resident: FailureCounter<i64>,
    per_ip: FailureCounter<IpAddr>,
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

fn code_hash(code: &CouponCode) -> String {
    hex::encode(Sha256::digest(code.canonical().as_bytes()))
}

impl Coupons {
    /// Coupons over `engine`'s database, with the secret `key` that codes derive from.
    pub fn new(engine: Engine, key: [u8; 32], origin: &str) -> Coupons {
        Coupons {
            engine,
            key,
            origin: origin.trim_end_matches('/').to_owned(),
            per_resident: FailureCounter::new(FAILED_REDEMPTIONS_PER_RESIDENT, REDEEM_WINDOW),
            per_ip: FailureCounter::new(FAILED_REDEMPTIONS_PER_IP, REDEEM_WINDOW),
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
        match self.engine.tables().await?.exchange_method(partner).await.map_err(failure::coupons)? {
            None => {
                return Err(Problem::new(ProblemKind::UnknownReference, format!("partner {partner} does not exist")))
            }
            // An ID-linkage partner pushes conversions for linked members; a code nobody
            // linked would bypass that agreement.
            Some(m) if !m.starts_with("coupon_") => {
                return Err(Problem::new(
                    ProblemKind::InvalidRequest,
                    format!("partner {partner} converts by {m}, not with coupon codes"),
                ))
            }
            Some(_) => {}
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
            Delivery::Url => {
                codes.iter().map(|c| format!("{}/app/mypage/coupons?coupon={}", self.origin, c.canonical())).collect()
            }
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

    /// Redeems `typed` for `resident`: the conversion's answer (the same on a retry).
    pub async fn redeem(&self, resident: i64, typed: &str, ip: IpAddr) -> Result<Answer, Problem> {
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
        let store::IssuedCoupon { partner, redeemed_by, partner_points, rate, expires_at } = coupon;
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
                let claimed =
                    store::claim(self.pool(), &hash, resident, time::now()).await.map_err(failure::coupons)?;
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
        let id = uuid::Builder::from_random_bytes(
            Sha256::digest(format!("coupon:{hash}").as_bytes())[..16].try_into().expect("16 bytes"),
        )
        .into_uuid();
        let request = ConversionRequest {
            id,
            partner,
            resident,
            partner_points,
            rate,
            memo: Some(Memo::parse("coupon").expect("a constant memo")),
        };
        Ok(self.engine.execute(Request::Conversion(request), &format!("partner:{partner}")).await)
    }
}
