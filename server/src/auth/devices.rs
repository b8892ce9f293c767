//! Counter terminals as enrolled devices. The shop makes a pairing code (shown once, good once,
//! for [`PAIRING_CODE_LIFE`]); the terminal page makes a P-256 key it cannot export and enrols
//! its public key with the code; from then on every request it makes is signed (RFC 9421, see
//! [`mykey_core::device`]) and verified here: the body's digest, the time, the device's key, a
//! nonce never seen before. A revoked device is refused at once by this process.

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};
use std::time::Instant;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use mykey_core::api::{Device, DeviceName, EnrolmentRequest, PairingCode};
use mykey_core::device::{self as sig, SignatureError, Target, Terms};
use mykey_core::{Problem, ProblemKind};
use p256::ecdsa::VerifyingKey;
use rand::Rng;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::KEY_CACHE_TTL;
use crate::store::devices::{self as store, DeviceRow, PairingRefused};
use crate::store::Store;
use crate::time::{micros_to_datetime, Micros, SECOND};

/// How long a pairing code enrols a device.
pub const PAIRING_CODE_LIFE: Micros = 10 * 60 * SECOND;
/// The letters of a pairing code: no 0/O, 1/I/L that staff would mistake for each other.
pub const PAIRING_ALPHABET: &[u8; 31] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
/// Letters in a pairing code (shown as two groups of four): 31^8 ≈ 2^39 codes, while a client
/// address may fail [`super::FAILED_AUTH_PER_MINUTE`] times a minute.
pub const PAIRING_CODE_CHARS: usize = 8;
/// A shop's pairing codes open at once (made, not yet used, not expired): enough to set up a
/// shop's counters in one go, and a bound on what a leaked store key can fill the table with.
/// Codes that expired unused are forgotten when the shop makes the next one.
pub const PAIRING_CODES_OPEN: i64 = 20;
/// Devices a shop's list shows at most.
pub const DEVICES_LISTED: i64 = 500;
/// Nonces remembered at most: more than [`mykey_core::device::MAX_LIFETIME_SECONDS`] plus the
/// skew at 5,000 signed requests a second. Past it, signed requests are refused (503) until
/// old nonces expire: never forgotten early, so never replayable.
pub const NONCES_REMEMBERED: usize = 1_000_000;
/// Nonces one device may have remembered at once: about 110 signed requests a second over a
/// signature's life, far more than a counter makes, so that one device (a stolen key) cannot
/// fill [`NONCES_REMEMBERED`] for all the others. Past it that device is refused (429).
pub const NONCES_PER_DEVICE: usize = 10_000;
/// Devices whose keys are remembered at most (past it the cache is cleared).
const DEVICES_REMEMBERED: usize = 100_000;
/// How often a device's last-seen time is written.
pub const SEEN_EVERY: Micros = 60 * SECOND;

/// The device that signed a request: a request extension set by the HTTP layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignedBy {
    /// Its shop.
    pub shop: i64,
    /// Its id.
    pub device: Uuid,
}

impl SignedBy {
    /// Text for idempotency fingerprints and challenge scopes: this device.
    pub fn principal(&self) -> String {
        format!("device:{}", self.device)
    }

    /// Allows a device of `shop` only.
    pub fn require_shop(&self, shop: i64) -> Result<(), Problem> {
        if self.shop == shop {
            Ok(())
        } else {
            Err(Problem::new(ProblemKind::Forbidden, format!("a device of shop {} may not act for {shop}", self.shop)))
        }
    }
}

/// What a signed request brings, as the HTTP layer read it.
pub struct SignedRequest<'a> {
    /// Method, authority, path and query.
    pub target: Target<'a>,
    /// `Signature-Input`.
    pub signature_input: &'a str,
    /// `Signature`.
    pub signature: &'a str,
    /// `Content-Digest`, if sent.
    pub content_digest: Option<&'a str>,
    /// The body as received.
    pub body: &'a [u8],
}

/// A device's public key: the uncompressed P-256 point, checked to be on the curve.
#[derive(Clone, Copy)]
struct DeviceKey([u8; 65]);

impl DeviceKey {
    /// Whether `signature` (`r || s`) is this key's over `message`: *ring*'s P-256, about five
    /// times the pure-Rust `p256` crate's speed (docs/benchmarks.md, "Counter devices").
    fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        let key = ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, &self.0);
        key.verify(message, signature).is_ok()
    }
}

/// A device as this process remembers it; `key` none once revoked.
struct Known {
    shop: i64,
    key: Option<DeviceKey>,
    fetched: Instant,
    seen: Micros,
}

/// Nonce → the last second its signature is good, by device; and how many in all.
#[derive(Default)]
struct Nonces {
    by_device: HashMap<Uuid, HashMap<String, u64>>,
    total: usize,
}

impl Nonces {
    /// Forgets the nonces whose signatures can no longer be good at `now_s`.
    fn sweep(&mut self, now_s: u64) {
        self.by_device.retain(|_, mine| {
            mine.retain(|_, last_good| *last_good >= now_s);
            !mine.is_empty()
        });
        self.total = self.by_device.values().map(HashMap::len).sum();
    }
}

/// Enrols, lists, revokes and verifies devices.
pub struct Devices {
    known: RwLock<HashMap<Uuid, Known>>,
    /// The nonces of signatures that could still be good, by device.
    nonces: Mutex<Nonces>,
    /// When this process started (Unix seconds): the nonces of signatures made before it are
    /// not remembered, so those signatures are refused.
    started: u64,
}

impl Default for Devices {
    fn default() -> Self {
        let started = u64::try_from(crate::time::now() / SECOND).unwrap_or(0);
        Devices { known: RwLock::default(), nonces: Mutex::default(), started }
    }
}

fn unavailable(e: impl std::fmt::Display) -> Problem {
    tracing::error!(error = %e, "device store");
    Problem::new(ProblemKind::Unavailable, "the device store is not answering")
}

fn device(row: DeviceRow) -> Result<Device, Problem> {
    Ok(Device {
        id: row.id,
        shop: row.shop,
        name: DeviceName::parse(row.name).map_err(|e| unavailable(format!("a stored device name: {e}")))?,
        enrolled_at: micros_to_datetime(row.enrolled_at),
        last_seen_at: row.last_seen_at.map(micros_to_datetime),
        revoked_at: row.revoked_at.map(micros_to_datetime),
    })
}

/// The stored form of a pairing code: the SHA-256 of its letters, without the dash and in
/// upper case, so `abcd-2345` and `ABCD2345` are the same code.
pub fn hash_code(code: &str) -> Option<String> {
    let letters: String = code.chars().filter(|c| *c != '-' && *c != ' ').map(|c| c.to_ascii_uppercase()).collect();
    (letters.len() == PAIRING_CODE_CHARS && letters.bytes().all(|b| PAIRING_ALPHABET.contains(&b)))
        .then(|| hex::encode(Sha256::digest(letters.as_bytes())))
}

/// The public key of an enrolment: an uncompressed P-256 point, base64url.
fn public_key(text: &str) -> Result<DeviceKey, Problem> {
    let bad = || {
        Problem::new(
            ProblemKind::InvalidRequest,
            "public_key is the uncompressed P-256 point (65 bytes, WebCrypto's raw export) in base64url",
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| bad())?;
    if bytes.len() != 65 || bytes[0] != 4 {
        return Err(bad());
    }
    VerifyingKey::from_sec1_bytes(&bytes).map_err(|_| bad())?;
    Ok(DeviceKey(bytes.try_into().map_err(|_| bad())?))
}

fn signature_problem(e: SignatureError) -> Problem {
    let kind = match e {
        SignatureError::FromTheFuture(_) | SignatureError::Expired(_) => ProblemKind::SignatureExpired,
        _ => ProblemKind::SignatureInvalid,
    };
    Problem::new(kind, e.to_string())
}

impl Devices {
    /// A new pairing code for `shop`, shown once.
    pub async fn pairing_code(&self, db: &Store, shop: i64) -> Result<PairingCode, Problem> {
        let letters: String = {
            let mut rng = rand::rngs::OsRng;
            (0..PAIRING_CODE_CHARS)
                .map(|_| PAIRING_ALPHABET[rng.gen_range(0..PAIRING_ALPHABET.len())] as char)
                .collect()
        };
        let now = crate::time::now();
        let expires_at = now + PAIRING_CODE_LIFE;
        let hash = hash_code(&letters).expect("made from the alphabet");
        if !store::insert_pairing_code(db.pool(), &hash, shop, now, expires_at, PAIRING_CODES_OPEN)
            .await
            .map_err(unavailable)?
        {
            return Err(Problem::new(
                ProblemKind::RateLimited,
                format!(
                    "{PAIRING_CODES_OPEN} pairing codes of this shop are still open; enrol a device with one, \
                     or wait until they expire"
                ),
            ));
        }
        Ok(PairingCode {
            code: format!("{}-{}", &letters[..4], &letters[4..]),
            shop,
            expires_at: micros_to_datetime(expires_at),
        })
    }

    /// Enrols a device with a pairing code and its public key.
    pub async fn enrol(&self, db: &Store, r: &EnrolmentRequest) -> Result<Device, Problem> {
        let refused = |why: &str| Problem::new(ProblemKind::PairingCodeInvalid, why.to_owned());
        let hash = hash_code(&r.code).ok_or_else(|| {
            refused("a pairing code is 8 letters and digits (XXXX-XXXX) as the shop's console or API showed it")
        })?;
        public_key(&r.public_key)?;
        let id = Uuid::new_v4();
        let row = store::enrol(db.pool(), &hash, id, r.name.as_str(), &r.public_key, crate::time::now())
            .await
            .map_err(unavailable)?
            .map_err(|why| match why {
                PairingRefused::Unknown => refused("no shop made this pairing code; check the letters"),
                PairingRefused::Used => refused("this pairing code enrolled a device already; ask for a new one"),
                PairingRefused::Expired => refused("this pairing code expired; ask for a new one"),
                PairingRefused::KeyTaken => {
                    Problem::new(ProblemKind::InvalidRequest, "this public key is another device's; make a new key")
                }
            })?;
        device(row)
    }

    /// A shop's devices, newest first.
    pub async fn list(&self, db: &Store, shop: i64) -> Result<Vec<Device>, Problem> {
        store::devices_of(db.pool(), shop, DEVICES_LISTED).await.map_err(unavailable)?.into_iter().map(device).collect()
    }

    /// Revokes a device of `shop` at once.
    pub async fn revoke(&self, db: &Store, shop: i64, id: Uuid) -> Result<(), Problem> {
        let done = store::revoke(db.pool(), shop, id, crate::time::now()).await.map_err(unavailable)?;
        // Remembered as revoked, not forgotten: a look-up that read the row before the
        // revocation cannot then put the device back as live (see `key`).
        let fetched = Instant::now();
        self.known.write().expect("not poisoned").insert(id, Known { shop, key: None, fetched, seen: 0 });
        if done {
            Ok(())
        } else {
            Err(Problem::new(ProblemKind::NotFound, format!("shop {shop} has no live device {id}")))
        }
    }

    /// Verifies a device's signed request at `now` (Unix microseconds): the digest of the
    /// body, the signature's time, the device's key and that the nonce is new.
    pub async fn verify(&self, db: &Store, r: &SignedRequest<'_>, now: Micros) -> Result<SignedBy, Problem> {
        let (terms, raw) = sig::parse(r.signature_input, r.signature).map_err(signature_problem)?;
        let now_s = u64::try_from(now / SECOND).unwrap_or(0);
        sig::check_time(&terms, now_s).map_err(signature_problem)?;
        if terms.created < self.started {
            // Its nonce may have been used before this process started, where no one remembers.
            return Err(Problem::new(
                ProblemKind::SignatureExpired,
                "the signature was made before the server started; sign the request again (if the device's clock \
                 is behind, set it)",
            ));
        }
        let digest = sig::content_digest(r.body);
        match r.content_digest {
            Some(sent) if sent == digest => {}
            Some(_) => {
                return Err(Problem::new(
                    ProblemKind::DigestMismatch,
                    "Content-Digest is not sha-256=:<base64 of the SHA-256 of the body>: for the body received",
                ))
            }
            None => {
                return Err(Problem::new(
                    ProblemKind::SignatureInvalid,
                    "a device's request carries Content-Digest (RFC 9530, sha-256), even with an empty body",
                ))
            }
        }
        let id: Uuid = terms.keyid.parse().map_err(|_| signature_problem(SignatureError::KeyId))?;
        let (shop, key) = self.key(db, id).await?;
        let base = sig::signature_base(&r.target, &digest, &terms).map_err(signature_problem)?;
        if !key.verifies(base.as_bytes(), &raw) {
            return Err(Problem::new(
                ProblemKind::SignatureInvalid,
                "the signature does not verify with the device's key over this request (method, host, path, query, \
                 Content-Digest and the parameters)",
            ));
        }
        self.first_use(id, &terms, now_s)?;
        self.seen(db, id, now);
        Ok(SignedBy { shop, device: id })
    }

    /// The device's shop and key; refused when unknown or revoked.
    async fn key(&self, db: &Store, id: Uuid) -> Result<(i64, DeviceKey), Problem> {
        let gone = || {
            Problem::new(
                ProblemKind::DeviceRevoked,
                format!("device {id} is revoked or was never enrolled; enrol the terminal with a new pairing code"),
            )
        };
        if let Some(k) = self.known.read().expect("not poisoned").get(&id) {
            // Revoked here: for good, whatever the cache's age.
            match k.key {
                None => return Err(gone()),
                Some(key) if k.fetched.elapsed() < KEY_CACHE_TTL => return Ok((k.shop, key)),
                Some(_) => {}
            }
        }
        let row = store::device(db.pool(), id).await.map_err(unavailable)?.ok_or_else(gone)?;
        let key = match row.revoked_at {
            Some(_) => None,
            None => Some(public_key(&row.public_key).map_err(|_| unavailable("a stored device key does not parse"))?),
        };
        let mut known = self.known.write().expect("not poisoned");
        if known.len() >= DEVICES_REMEMBERED {
            known.clear();
        }
        if known.get(&id).is_some_and(|k| k.key.is_none()) {
            // Revoked while the row was being read: the revocation stands.
            return Err(gone());
        }
        let seen = row.last_seen_at.unwrap_or(0).max(known.get(&id).map_or(0, |k| k.seen));
        known.insert(id, Known { shop: row.shop, key, fetched: Instant::now(), seen });
        key.map(|key| (row.shop, key)).ok_or_else(gone)
    }

    /// Records the nonce; refused if this device used it while its signature could be good.
    fn first_use(&self, id: Uuid, terms: &Terms, now_s: u64) -> Result<(), Problem> {
        let mut nonces = self.nonces.lock().expect("not poisoned");
        if nonces.total >= NONCES_REMEMBERED {
            nonces.sweep(now_s);
            if nonces.total >= NONCES_REMEMBERED {
                return Err(Problem::new(
                    ProblemKind::Unavailable,
                    "too many signed requests at once to remember their nonces; try again in a minute",
                ));
            }
        }
        let Nonces { by_device, total } = &mut *nonces;
        let mine = by_device.entry(id).or_default();
        if mine.len() >= NONCES_PER_DEVICE {
            let before = mine.len();
            mine.retain(|_, last_good| *last_good >= now_s);
            *total -= before - mine.len();
            if mine.len() >= NONCES_PER_DEVICE {
                return Err(Problem::new(
                    ProblemKind::RateLimited,
                    "this device sent more signed requests in the last minute than a counter makes; try again shortly",
                ));
            }
        }
        match mine.entry(terms.nonce.clone()) {
            std::collections::hash_map::Entry::Occupied(mut e) if *e.get() < now_s => {
                // Its earlier use can no longer be replayed; this is a new signature.
                e.insert(sig::last_good(terms));
                Ok(())
            }
            std::collections::hash_map::Entry::Occupied(_) => Err(Problem::new(
                ProblemKind::SignatureReplayed,
                "this device already sent a request with this nonce; sign every request with a new one",
            )),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(sig::last_good(terms));
                *total += 1;
                Ok(())
            }
        }
    }

    /// Writes the device's last-seen time at most every [`SEEN_EVERY`], off the request's path.
    fn seen(&self, db: &Store, id: Uuid, now: Micros) {
        let mut known = self.known.write().expect("not poisoned");
        let Some(k) = known.get_mut(&id) else { return };
        if now - k.seen < SEEN_EVERY {
            return;
        }
        k.seen = now;
        let pool = db.pool().clone();
        tokio::spawn(async move {
            if let Err(e) = store::seen(&pool, id, now).await {
                tracing::warn!(error = %e, device = %id, "recording when a device was last seen");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairing_codes_read_the_same_however_typed_and_only_from_the_alphabet() {
        let h = hash_code("ABCD-2345").unwrap();
        assert_eq!(hash_code("abcd2345"), Some(h.clone()));
        assert_eq!(hash_code(" abcd 2345"), Some(h));
        assert_eq!(hash_code("ABCD-234"), None, "too short");
        assert_eq!(hash_code("ABCD-0345"), None, "0 is not in the alphabet");
        assert_eq!(hash_code("ABCD-I345"), None, "nor I");
    }

    #[test]
    fn only_an_uncompressed_p256_point_is_a_devices_key() {
        let key = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
        let point = key.verifying_key().to_encoded_point(false);
        assert!(public_key(&URL_SAFE_NO_PAD.encode(point.as_bytes())).is_ok());
        let compressed = key.verifying_key().to_encoded_point(true);
        assert!(public_key(&URL_SAFE_NO_PAD.encode(compressed.as_bytes())).is_err());
        assert!(public_key(&URL_SAFE_NO_PAD.encode([4u8; 65])).is_err(), "not on the curve");
        assert!(public_key("not base64!").is_err());
    }

    #[test]
    fn a_nonce_is_refused_while_its_first_signature_could_still_be_good() {
        let d = Devices::default();
        let id = Uuid::new_v4();
        let terms = Terms { created: 1000, expires: 1030, nonce: "n".repeat(22), keyid: id.to_string() };
        assert!(d.first_use(id, &terms, 1000).is_ok());
        let again = d.first_use(id, &terms, 1059).unwrap_err();
        assert_eq!(again.kind(), Some(ProblemKind::SignatureReplayed));
        assert!(d.first_use(Uuid::new_v4(), &terms, 1000).is_ok(), "nonces are per device");
        assert!(d.first_use(id, &terms, sig::last_good(&terms) + 1).is_ok(), "remembered only while it could be good");
    }

    #[test]
    fn one_device_cannot_fill_the_nonces_of_all() {
        let d = Devices::default();
        let (busy, other) = (Uuid::new_v4(), Uuid::new_v4());
        let terms = |i: usize, id: Uuid| Terms {
            created: 1000,
            expires: 1030,
            nonce: format!("{i:022}"),
            keyid: id.to_string(),
        };
        for i in 0..NONCES_PER_DEVICE {
            d.first_use(busy, &terms(i, busy), 1000).unwrap();
        }
        let refused = d.first_use(busy, &terms(NONCES_PER_DEVICE, busy), 1000).unwrap_err();
        assert_eq!(refused.kind(), Some(ProblemKind::RateLimited));
        assert!(d.first_use(other, &terms(0, other), 1000).is_ok(), "another device is not held up");
        // Once the busy device's signatures can no longer be good, it may sign again.
        let later = sig::last_good(&terms(0, busy)) + 1;
        assert!(d.first_use(busy, &terms(NONCES_PER_DEVICE, busy), later).is_ok());
        let n = d.nonces.lock().unwrap();
        assert_eq!(n.total, n.by_device.values().map(HashMap::len).sum::<usize>(), "the count is kept exact");
    }
}
