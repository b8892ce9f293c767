//! Card login (docs/card.md "Authentication token"): single-use nonces bound to the browser's
//! challenge cookie, and the verification of a token: the certificate's chain to a configured
//! anchor (rustls-webpki), its validity and key usage, revocation under an explicit policy,
//! and the signature over the server's own origin and the nonce.
//!
//! Signatures are checked with webpki's *ring* algorithms, so the chain and the token use the
//! same two: RS256 (today's cards, 2048 to 8192-bit keys) and ES256 over P-256 (ready for the
//! next generation). A certificate whose chain, validity, key usage and revocation were
//! checked is remembered by its hash ([`VERIFIED_REMEMBERED`]) while the CRLs in use stay the
//! same and its validity and the CRLs' last update have not passed: a repeated card then costs
//! one signature check (docs/benchmarks.md "Card login").

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use mykey_core::card::jpki::token_hash;
use mykey_core::identity::{AuthToken, CardPurpose, SigningContext, TokenAlgorithm, AUTH_TOKEN_FORMAT};
use mykey_core::{Problem, ProblemKind};
use rand::RngCore;
use rustls_pki_types::{CertificateDer, SignatureVerificationAlgorithm, TrustAnchor, UnixTime};
use sha2::{Digest, Sha256};
use webpki::{CertRevocationList, EndEntityCert, ExpirationPolicy, RevocationCheckDepth, UnknownStatusPolicy};
use x509_cert::der::{Decode, Encode};

/// How long a nonce may be used.
pub const NONCE_LIFE: Duration = Duration::from_secs(5 * 60);
/// Nonces waiting at once; past it the oldest expired ones are dropped, then new logins wait.
pub const MAX_PENDING_NONCES: usize = 100_000;
/// Largest certificate accepted in a token (a JPKI certificate is about 1.5 KB).
const MAX_CERTIFICATE: usize = 16 * 1024;
/// Largest signature accepted (RSA up to 8192 bits).
const MAX_SIGNATURE: usize = 1024;
/// Certificates remembered as verified; past it the memory starts again (each card then costs
/// one full check once more).
pub const VERIFIED_REMEMBERED: usize = 100_000;

static RS256: &dyn SignatureVerificationAlgorithm = webpki::ring::RSA_PKCS1_2048_8192_SHA256;
static ES256: &dyn SignatureVerificationAlgorithm = webpki::ring::ECDSA_P256_SHA256;
static ALGORITHMS: &[&dyn SignatureVerificationAlgorithm] = &[RS256, ES256];

/// What a full check of a certificate established, valid while the same CRLs are in use.
#[derive(Clone, Debug)]
struct Verified {
    /// The CRLs' generation it was checked against.
    crls: u64,
    /// Its validity (unix seconds).
    not_before: i64,
    not_after: i64,
    card: VerifiedCard,
}

/// What to do when a certificate's revocation status cannot be known (no CRL from its
/// issuer, or the CRL is past its next update).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum UnknownRevocation {
    /// Refuse the login.
    Deny,
    /// Accept the login (and log it).
    Allow,
}

/// The certificates a server trusts for card logins, and for which origin.
pub struct CardTrust {
    anchors: Vec<TrustAnchor<'static>>,
    /// The CRLs in use, replaced whole by [`CardTrust::reload_crls`].
    crls: std::sync::RwLock<Arc<Crls>>,
    /// Where the CRLs are read from again (none when given as bytes).
    crl_files: Vec<std::path::PathBuf>,
    unknown: UnknownRevocation,
    origin: String,
    /// Certificates fully checked, by the SHA-256 of their DER (at most [`VERIFIED_REMEMBERED`]).
    verified: Mutex<HashMap<[u8; 32], Verified>>,
}

/// A set of CRLs with the times that say how fresh they are.
struct Crls {
    /// Different for every set put in use (what [`Verified`] was checked against).
    generation: u64,
    lists: Vec<CertRevocationList<'static>>,
    /// The oldest `thisUpdate` among them (unix seconds).
    oldest_issued: Option<i64>,
    /// The earliest `nextUpdate` among them (unix seconds): past it, a CRL is stale.
    earliest_next: Option<i64>,
}

impl Crls {
    fn parse(ders: &[Vec<u8>]) -> anyhow::Result<Crls> {
        use x509_cert::der::Decode as _;
        let mut lists = Vec::with_capacity(ders.len());
        let (mut oldest_issued, mut earliest_next) = (None::<i64>, None::<i64>);
        for der in ders {
            let crl = webpki::BorrowedCertRevocationList::from_der(der).context("a CRL")?.to_owned()?;
            lists.push(CertRevocationList::from(crl));
            let parsed = x509_cert::crl::CertificateList::from_der(der).context("a CRL's times")?;
            let secs = |t: x509_cert::time::Time| i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX);
            let issued = secs(parsed.tbs_cert_list.this_update);
            oldest_issued = Some(oldest_issued.map_or(issued, |o| o.min(issued)));
            if let Some(next) = parsed.tbs_cert_list.next_update.map(secs) {
                earliest_next = Some(earliest_next.map_or(next, |e| e.min(next)));
            }
        }
        static GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let generation = GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Crls { generation, lists, oldest_issued, earliest_next })
    }
}

/// How fresh the card CRLs are, for the metrics and the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrlFreshness {
    /// How many CRLs are in use.
    pub count: usize,
    /// Seconds since the oldest was issued (`thisUpdate`).
    pub age_seconds: Option<i64>,
    /// Seconds until the first one goes stale (`nextUpdate`); negative once it has.
    pub stale_in_seconds: Option<i64>,
}

pub use crate::store::identity::VerifiedCard;

/// Reads one or more certificates or CRLs from PEM text, or a single DER object.
fn pem_or_der(bytes: &[u8], label: &str) -> anyhow::Result<Vec<Vec<u8>>> {
    let Ok(text) = std::str::from_utf8(bytes) else { return Ok(vec![bytes.to_vec()]) };
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut out = vec![];
    let mut rest = text;
    while let Some(start) = rest.find(&begin) {
        let body = &rest[start + begin.len()..];
        let stop = body.find(&end).with_context(|| format!("no {end}"))?;
        let b64: String = body[..stop].chars().filter(|c| !c.is_whitespace()).collect();
        out.push(B64.decode(b64).with_context(|| format!("bad base64 in a {label}"))?);
        rest = &body[stop + end.len()..];
    }
    anyhow::ensure!(!out.is_empty(), "no {begin} found");
    Ok(out)
}

/// Every certificate or CRL in `paths` (PEM or DER).
fn read_pem_or_der(paths: &[std::path::PathBuf], label: &str) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut out = vec![];
    for p in paths {
        let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
        out.extend(pem_or_der(&bytes, label).with_context(|| format!("reading {}", p.display()))?);
    }
    Ok(out)
}

impl CardTrust {
    /// Trust `anchors` (DER certificates) for logins to `origin` (e.g. `https://mykey.example`),
    /// checking revocation against `crls` (DER) under `unknown`.
    pub fn new(
        anchors: &[Vec<u8>],
        crls: &[Vec<u8>],
        unknown: UnknownRevocation,
        origin: &str,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(!anchors.is_empty(), "card login needs at least one trusted CA");
        anyhow::ensure!(
            origin.starts_with("https://")
                || origin.starts_with("http://127.0.0.1")
                || origin.starts_with("http://localhost"),
            "the login origin must be https (or http on loopback for development), not {origin}"
        );
        let anchors = anchors
            .iter()
            .map(|der| {
                let cert = CertificateDer::from(der.as_slice());
                Ok(webpki::anchor_from_trusted_cert(&cert).context("a trusted CA certificate")?.to_owned())
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let crls = std::sync::RwLock::new(Arc::new(Crls::parse(crls)?));
        Ok(CardTrust {
            anchors,
            crls,
            crl_files: Vec::new(),
            unknown,
            origin: origin.trim_end_matches('/').to_owned(),
            verified: Mutex::default(),
        })
    }

    /// Reads the CRL files again and puts them in use; on any failure the CRLs in use stay (and
    /// grow older, which the metrics show). Returns how fresh the CRLs in use are.
    pub fn reload_crls(&self) -> anyhow::Result<CrlFreshness> {
        if !self.crl_files.is_empty() {
            let ders = read_pem_or_der(&self.crl_files, "X509 CRL")?;
            let fresh = Crls::parse(&ders)?;
            *self.crls.write().expect("not poisoned") = Arc::new(fresh);
        }
        Ok(self.crl_freshness(SystemTime::now()))
    }

    /// Whether a CRL in use lists the certificate of `issuer` (hex of its DER name) and
    /// `serial` (hex), as [`VerifiedCard`] keeps them.
    pub fn is_revoked(&self, issuer: &str, serial: &str) -> bool {
        use x509_cert::der::Decode as _;
        let (Ok(issuer), Ok(serial)) = (hex::decode(issuer), hex::decode(serial)) else { return false };
        // webpki names a CRL's issuer by the contents of its Name, without the SEQUENCE header.
        let Ok(name) = x509_cert::der::asn1::AnyRef::from_der(&issuer) else { return false };
        let crls = self.crls.read().expect("not poisoned").clone();
        crls.lists.iter().any(|crl| crl.issuer() == name.value() && matches!(crl.find_serial(&serial), Ok(Some(_))))
    }

    /// How fresh the CRLs in use are at `now`.
    pub fn crl_freshness(&self, now: SystemTime) -> CrlFreshness {
        let now = i64::try_from(now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs()).unwrap_or(0);
        let crls = self.crls.read().expect("not poisoned").clone();
        CrlFreshness {
            count: crls.lists.len(),
            age_seconds: crls.oldest_issued.map(|t| now - t),
            stale_in_seconds: crls.earliest_next.map(|t| t - now),
        }
    }

    /// Loads anchors and CRLs from files (PEM or DER).
    pub fn from_files(
        anchors: &[std::path::PathBuf],
        crls: &[std::path::PathBuf],
        unknown: UnknownRevocation,
        origin: &str,
    ) -> anyhow::Result<Self> {
        let mut trust =
            Self::new(&read_pem_or_der(anchors, "CERTIFICATE")?, &read_pem_or_der(crls, "X509 CRL")?, unknown, origin)?;
        trust.crl_files = crls.to_vec();
        Ok(trust)
    }

    /// The origin tokens must be signed for.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Verifies a token for `nonce` (already taken from [`Nonces`]) made in `context` at `now`:
    /// a signature made in another context (the web, a widget, another counter) fails.
    pub fn verify(
        &self,
        token: &AuthToken,
        nonce: &str,
        context: &SigningContext,
        now: SystemTime,
    ) -> Result<VerifiedCard, Problem> {
        let reject = |reason: &'static str, detail: &str| {
            Problem::new(ProblemKind::CardRejected, detail.to_owned()).with("reason", reason)
        };
        if token.format != AUTH_TOKEN_FORMAT {
            return Err(reject("format", &format!("the token format must be {AUTH_TOKEN_FORMAT}")));
        }
        let cert_der = B64
            .decode(&token.certificate)
            .ok()
            .filter(|c| c.len() <= MAX_CERTIFICATE)
            .ok_or_else(|| reject("format", "the certificate is not base64 DER of a sane size"))?;
        let signature = B64
            .decode(&token.signature)
            .ok()
            .filter(|s| s.len() <= MAX_SIGNATURE)
            .ok_or_else(|| reject("format", "the signature is not base64 of a sane size"))?;

        let cert_der = CertificateDer::from(cert_der);
        let ee = EndEntityCert::try_from(&cert_der)
            .map_err(|_| reject("bad-certificate", "the certificate does not parse"))?;
        let crls = self.crls.read().expect("not poisoned").clone();
        let unix = i64::try_from(now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs()).unwrap_or(0);
        let hash: [u8; 32] = Sha256::digest(cert_der.as_ref()).into();
        let remembered = self.verified.lock().expect("not poisoned").get(&hash).cloned().filter(|v| {
            // Only while nothing it rested on changed: the same CRLs, not past their next
            // update, and the certificate inside its validity.
            v.crls == crls.generation
                && crls.earliest_next.is_none_or(|next| unix < next)
                && (v.not_before..v.not_after).contains(&unix)
        });
        let card = match remembered {
            Some(v) => v.card,
            None => {
                let v = self.check_certificate(&ee, &cert_der, &crls, now)?;
                let mut verified = self.verified.lock().expect("not poisoned");
                if verified.len() >= VERIFIED_REMEMBERED {
                    verified.clear();
                }
                verified.insert(hash, v.clone());
                v.card
            }
        };

        let message = signed_message(&context.signed_origin(&self.origin), nonce);
        let checked = match token.algorithm {
            TokenAlgorithm::RS256 => ee.verify_signature(RS256, &message, &signature),
            TokenAlgorithm::ES256 => p256::ecdsa::Signature::from_slice(&signature)
                .map_err(|_| webpki::Error::InvalidSignatureForPublicKey)
                .and_then(|s| ee.verify_signature(ES256, &message, s.to_der().as_bytes())),
        };
        checked
            .map_err(|_| reject("bad-signature", "the login signature does not verify for this site and challenge"))?;
        Ok(card)
    }

    /// The full check of a card's certificate at `now`: its chain to an anchor, its validity,
    /// revocation under the policy, and that it signs.
    fn check_certificate(
        &self,
        ee: &EndEntityCert<'_>,
        cert_der: &CertificateDer<'_>,
        crls: &Crls,
        now: SystemTime,
    ) -> Result<Verified, Problem> {
        let reject = |reason: &'static str, detail: &str| {
            Problem::new(ProblemKind::CardRejected, detail.to_owned()).with("reason", reason)
        };
        let time = UnixTime::since_unix_epoch(now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default());
        let crl_refs: Vec<&CertRevocationList<'_>> = crls.lists.iter().collect();
        let revocation = match (crl_refs.is_empty(), self.unknown) {
            (true, UnknownRevocation::Allow) => None,
            (true, UnknownRevocation::Deny) => {
                return Err(reject(
                    "revocation-unknown",
                    "no revocation list is configured and the policy refuses unknown revocation status",
                ))
            }
            (false, policy) => Some(
                webpki::RevocationOptionsBuilder::new(&crl_refs)
                    .expect("CRLs present")
                    .with_depth(RevocationCheckDepth::EndEntity)
                    .with_status_policy(match policy {
                        UnknownRevocation::Deny => UnknownStatusPolicy::Deny,
                        UnknownRevocation::Allow => UnknownStatusPolicy::Allow,
                    })
                    .with_expiration_policy(match policy {
                        UnknownRevocation::Deny => ExpirationPolicy::Enforce,
                        UnknownRevocation::Allow => ExpirationPolicy::Ignore,
                    })
                    .build(),
            ),
        };
        ee.verify_for_usage(ALGORITHMS, &self.anchors, &[], time, webpki::KeyUsage::client_auth(), revocation, None)
            .map_err(|e| {
                use webpki::Error as E;
                match e {
                    E::CertExpired { .. } => reject("expired", "the card's certificate has expired; renew the card"),
                    E::CertNotValidYet { .. } => reject("not-yet-valid", "the card's certificate is not valid yet"),
                    // A certificate naming a trusted CA but not signed by it is from another CA.
                    E::UnknownIssuer | E::InvalidSignatureForPublicKey => {
                        reject("unknown-ca", "the card's certificate is not from a trusted CA")
                    }
                    E::CertRevoked => reject("revoked", "the card's certificate has been revoked"),
                    E::UnknownRevocationStatus | E::CrlExpired { .. } => reject(
                        "revocation-unknown",
                        "the card's revocation status is unknown and the policy refuses it",
                    ),
                    other => reject("bad-certificate", &format!("the card's certificate is not acceptable: {other}")),
                }
            })?;

        let parsed = x509_cert::Certificate::from_der(cert_der)
            .map_err(|_| reject("bad-certificate", "the certificate does not parse"))?;
        if !has_digital_signature(&parsed) {
            return Err(reject("bad-certificate", "the certificate is not for digital signatures"));
        }
        let tbs = &parsed.tbs_certificate;
        let secs = |t: x509_cert::time::Time| i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX);
        let not_after = tbs.validity.not_after.to_unix_duration();
        Ok(Verified {
            crls: crls.generation,
            not_before: secs(tbs.validity.not_before),
            not_after: secs(tbs.validity.not_after),
            card: VerifiedCard {
                issuer: hex::encode(tbs.issuer.to_der().map_err(|_| reject("bad-certificate", "issuer name"))?),
                serial: hex::encode(tbs.serial_number.as_bytes()),
                not_after: i64::try_from(not_after.as_micros()).unwrap_or(i64::MAX),
            },
        })
    }
}

/// What the card signs, before hashing: SHA-256(origin) || SHA-256(nonce). RS256 and ES256
/// hash it once more, so the card's DigestInfo carries `token_hash(origin, nonce)`.
fn signed_message(origin: &str, nonce: &str) -> Vec<u8> {
    let mut m = Sha256::digest(origin.as_bytes()).to_vec();
    m.extend_from_slice(&Sha256::digest(nonce.as_bytes()));
    debug_assert_eq!(<[u8; 32]>::from(Sha256::digest(&m)), token_hash(origin, nonce));
    m
}

fn has_digital_signature(cert: &x509_cert::Certificate) -> bool {
    use x509_cert::ext::pkix::{KeyUsage, KeyUsages};
    let Some(exts) = &cert.tbs_certificate.extensions else { return false };
    exts.iter()
        .find(|e| e.extn_id == x509_cert::der::oid::db::rfc5280::ID_CE_KEY_USAGE)
        .and_then(|e| KeyUsage::from_der(e.extn_value.as_bytes()).ok())
        .is_some_and(|ku| ku.0.contains(KeyUsages::DigitalSignature))
}

/// Nonces waiting to be signed, each bound to the hash of the challenge cookie of the browser
/// that asked for it. Kept in memory: a restart only makes logins in progress ask again.
pub struct Nonces {
    pending: Mutex<HashMap<String, Pending>>,
    life: Duration,
}

struct Pending {
    binding: [u8; 32],
    purpose: CardPurpose,
    expires: Instant,
}

impl Nonces {
    /// Nonces that live `life` (the API uses [`NONCE_LIFE`]).
    pub fn new(life: Duration) -> Nonces {
        Nonces { pending: Mutex::new(HashMap::new()), life }
    }

    /// A new nonce for `purpose` in the browser holding challenge cookie `binding` (or for the
    /// terminal key `binding`). Its text starts with the purpose and then `terms`, if any, so
    /// the card's signature covers them.
    pub fn issue(
        &self,
        binding: &str,
        purpose: CardPurpose,
        terms: Option<&str>,
    ) -> Result<(String, Duration), Problem> {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let terms = terms.map(|t| format!("{t}:")).unwrap_or_default();
        let nonce = format!("{}:{terms}{}", purpose.as_str(), B64.encode(bytes));
        let now = Instant::now();
        let mut pending = self.pending.lock().expect("not poisoned");
        if pending.len() >= MAX_PENDING_NONCES {
            pending.retain(|_, p| p.expires > now);
        }
        if pending.len() >= MAX_PENDING_NONCES {
            return Err(Problem::new(
                ProblemKind::Unavailable,
                "too many card logins in progress; try again in a minute",
            ));
        }
        pending.insert(
            nonce.clone(),
            Pending { binding: Sha256::digest(binding.as_bytes()).into(), purpose, expires: now + self.life },
        );
        Ok((nonce, self.life))
    }

    /// Takes a nonce: it must exist, be unused, unexpired, issued to this browser and for
    /// `purpose`. It is gone afterwards whatever the outcome, so a token is good for one try.
    pub fn take(&self, nonce: &str, binding: &str, purpose: CardPurpose) -> Result<(), Problem> {
        let p = self.pending.lock().expect("not poisoned").remove(nonce);
        let invalid = |why: &str| Problem::new(ProblemKind::NonceInvalid, why.to_owned());
        let p = p.ok_or_else(|| invalid("this login challenge is unknown or was already used; ask for a new one"))?;
        if p.expires <= Instant::now() {
            return Err(invalid("this login challenge expired; ask for a new one"));
        }
        if p.binding != <[u8; 32]>::from(Sha256::digest(binding.as_bytes())) {
            return Err(invalid("this login challenge was issued to another browser session"));
        }
        if p.purpose != purpose {
            return Err(Problem::new(
                ProblemKind::NonceInvalid,
                format!("this card challenge was issued for {}, not for {}", p.purpose.as_str(), purpose.as_str()),
            ));
        }
        Ok(())
    }
}
