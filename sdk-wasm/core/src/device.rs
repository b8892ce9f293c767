//! What a counter device signs: RFC 9421 HTTP Message Signatures with `ecdsa-p256-sha256`,
//! built here once so the terminal in the browser and the server that verifies cannot
//! disagree. The signature base of this one fixed shape is a few lines, written here so the
//! browser does not carry a structured-field parser; reading a request's signature headers
//! (feature `httpsig`, the server's) uses the `httpsig` crate, and a test checks that crate
//! builds the same base and parameters.
//!
//! A device signs, with the P-256 key it made when it was enrolled, the request's method,
//! authority, path and query and the RFC 9530 `Content-Digest` of its body, with `created`, a
//! short `expires`, a `nonce` and its `keyid` (the device's id). The server recomputes the
//! digest from the body it received, so the signature covers the body too.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// The label of a device's signature in `Signature-Input` and `Signature`.
pub const LABEL: &str = "device";
/// The one algorithm a device signs with (WebCrypto ECDSA P-256 with SHA-256, `r || s`).
pub const ALGORITHM: &str = "ecdsa-p256-sha256";
/// What every device signature covers, in this order.
pub const COVERED: [&str; 5] = ["@method", "@authority", "@path", "@query", "content-digest"];
/// The longest a signature may live (`expires - created`), in seconds: enough for a slow
/// network, short enough that the server remembers every nonce still alive.
pub const MAX_LIFETIME_SECONDS: u64 = 60;
/// How far a device's clock may be from the server's, in seconds.
pub const CLOCK_SKEW_SECONDS: u64 = 30;
/// Shortest nonce (base64url characters): 96 random bits.
pub const NONCE_MIN_CHARS: usize = 16;
/// Longest nonce (base64url characters).
pub const NONCE_MAX_CHARS: usize = 64;
/// Length of a raw `ecdsa-p256-sha256` signature (`r || s`).
pub const SIGNATURE_BYTES: usize = 64;

/// The request a signature is for, as the server sees it.
#[derive(Clone, Copy, Debug)]
pub struct Target<'a> {
    /// `POST`, `GET`, ….
    pub method: &'a str,
    /// Host and port the request was sent to (`Host`), as the device's page addressed it.
    pub authority: &'a str,
    /// The path, `/` when empty.
    pub path: &'a str,
    /// The query without `?`, if any.
    pub query: Option<&'a str>,
}

/// The parameters of one signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Terms {
    /// When it was made (Unix seconds, the device's clock).
    pub created: u64,
    /// When it stops being good (Unix seconds).
    pub expires: u64,
    /// Random, never used twice by a device within a signature's life.
    pub nonce: String,
    /// The device's id.
    pub keyid: String,
}

/// Why a signature is not one a device may send.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The headers do not parse as RFC 9421 signature headers.
    #[error("`Signature-Input` and `Signature` are not RFC 9421 signature headers: {0}")]
    Malformed(String),
    /// Not exactly one signature, labelled [`LABEL`].
    #[error("send exactly one signature, labelled `device`")]
    Label,
    /// The signature covers something other than [`COVERED`].
    #[error(
        "a device's signature covers \"@method\" \"@authority\" \"@path\" \"@query\" \"content-digest\", in that order"
    )]
    Coverage,
    /// Another algorithm, or none named.
    #[error("a device signs with alg=\"ecdsa-p256-sha256\"")]
    Algorithm,
    /// `created`, `expires`, `nonce` or `keyid` missing, or a `tag` given.
    #[error("a device's signature has created, expires, nonce and keyid, and no tag")]
    Parameters,
    /// The nonce is not 16 to 64 base64url characters.
    #[error("the nonce is 16 to 64 characters of base64url")]
    Nonce,
    /// The key id is not a device id.
    #[error("keyid names the device: its id as given at enrolment")]
    KeyId,
    /// `expires` not after `created`, or too long after it.
    #[error("a signature lives at most {MAX_LIFETIME_SECONDS} seconds (expires after created)")]
    Lifetime,
    /// A value that cannot be put on one line of the signature base.
    #[error(
        "the request's method, authority, path, query or Content-Digest has characters a signature base cannot hold"
    )]
    Value,
    /// The signature is not 64 bytes.
    #[error("an ecdsa-p256-sha256 signature is 64 bytes (r || s)")]
    Length,
    /// Made too far in the future by the server's clock.
    #[error("the signature was made {0} seconds in the future by the server's clock; set the device's clock")]
    FromTheFuture(u64),
    /// Expired.
    #[error("the signature expired {0} seconds ago")]
    Expired(u64),
}

/// The RFC 9530 `Content-Digest` of `body` (`sha-256=:…:`).
pub fn content_digest(body: &[u8]) -> String {
    format!("sha-256=:{}:", STANDARD.encode(Sha256::digest(body)))
}

fn checked(terms: &Terms) -> Result<(), SignatureError> {
    let base64url = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if !(NONCE_MIN_CHARS..=NONCE_MAX_CHARS).contains(&terms.nonce.len()) || !terms.nonce.chars().all(base64url) {
        return Err(SignatureError::Nonce);
    }
    if uuid::Uuid::try_parse(&terms.keyid).map(|u| u.hyphenated().to_string()) != Ok(terms.keyid.clone()) {
        return Err(SignatureError::KeyId);
    }
    if terms.expires <= terms.created || terms.expires - terms.created > MAX_LIFETIME_SECONDS {
        return Err(SignatureError::Lifetime);
    }
    Ok(())
}

/// The signature parameters (RFC 9421 §2.3) for `terms`: the `@signature-params` line's
/// value, and `Signature-Input`'s after the label.
fn params(terms: &Terms) -> Result<String, SignatureError> {
    checked(terms)?;
    let covered = COVERED.map(|c| format!("\"{c}\"")).join(" ");
    Ok(format!(
        "({covered});created={};expires={};nonce=\"{}\";alg=\"{ALGORITHM}\";keyid=\"{}\"",
        terms.created, terms.expires, terms.nonce, terms.keyid
    ))
}

/// The signature base (RFC 9421 §2.5) the device signs and the server verifies: one line per
/// covered component (the method in upper case and the authority in lower case, as §2.2
/// derives them), then `@signature-params`.
pub fn signature_base(target: &Target<'_>, content_digest: &str, terms: &Terms) -> Result<String, SignatureError> {
    let params = params(terms)?;
    let path = if target.path.is_empty() { "/" } else { target.path };
    let query = format!("?{}", target.query.unwrap_or(""));
    let values =
        [&target.method.to_ascii_uppercase(), &target.authority.to_ascii_lowercase(), path, &query, content_digest];
    // One line each: visible ASCII only (a line break would forge another component).
    if values.iter().any(|v| v.is_empty() || !v.bytes().all(|b| b.is_ascii_graphic())) {
        return Err(SignatureError::Value);
    }
    let mut base = String::new();
    for (component, value) in COVERED.iter().zip(values) {
        base.push_str(&format!("\"{component}\": {value}\n"));
    }
    base.push_str(&format!("\"@signature-params\": {params}"));
    Ok(base)
}

/// The `Signature-Input` header's value for `terms`.
pub fn signature_input(terms: &Terms) -> Result<String, SignatureError> {
    Ok(format!("{LABEL}={}", params(terms)?))
}

/// The `Signature` header's value for a raw signature.
pub fn signature_header(signature: &[u8]) -> String {
    format!("{LABEL}=:{}:", STANDARD.encode(signature))
}

/// The terms and the raw signature of a device's request, from its headers; refuses anything
/// but one [`LABEL`] signature of [`ALGORITHM`] over [`COVERED`].
#[cfg(feature = "httpsig")]
pub fn parse(signature_input: &str, signature: &str) -> Result<(Terms, Vec<u8>), SignatureError> {
    let all = httpsig::prelude::HttpSignatureHeaders::try_parse(signature, signature_input)
        .map_err(|e| SignatureError::Malformed(e.to_string()))?;
    let (Some(one), 1) = (all.get(LABEL), all.len()) else {
        return Err(SignatureError::Label);
    };
    let p = one.signature_params();
    let covered = p.covered_components.iter().map(ToString::to_string).collect::<Vec<_>>();
    if covered.len() != COVERED.len() || covered.iter().zip(COVERED).any(|(c, want)| *c != format!("\"{want}\"")) {
        return Err(SignatureError::Coverage);
    }
    if p.alg.as_deref() != Some(ALGORITHM) {
        return Err(SignatureError::Algorithm);
    }
    let (Some(created), Some(expires), Some(nonce), Some(keyid), None) =
        (p.created, p.expires, p.nonce.clone(), p.keyid.clone(), p.tag.as_ref())
    else {
        return Err(SignatureError::Parameters);
    };
    let terms = Terms { created, expires, nonce, keyid };
    checked(&terms)?;
    let raw = STANDARD.decode(one.signature().to_string()).map_err(|e| SignatureError::Malformed(e.to_string()))?;
    if raw.len() != SIGNATURE_BYTES {
        return Err(SignatureError::Length);
    }
    Ok((terms, raw))
}

/// Whether `terms` are good at `now` (Unix seconds, the server's clock), allowing
/// [`CLOCK_SKEW_SECONDS`] either way.
pub fn check_time(terms: &Terms, now: u64) -> Result<(), SignatureError> {
    if terms.created > now + CLOCK_SKEW_SECONDS {
        return Err(SignatureError::FromTheFuture(terms.created - now));
    }
    if now > terms.expires + CLOCK_SKEW_SECONDS {
        return Err(SignatureError::Expired(now - terms.expires));
    }
    Ok(())
}

/// The last moment (Unix seconds) a signature with `terms` is accepted: how long the server
/// must remember its nonce.
pub fn last_good(terms: &Terms) -> u64 {
    terms.expires + CLOCK_SKEW_SECONDS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms() -> Terms {
        Terms {
            created: 1_765_000_000,
            expires: 1_765_000_030,
            nonce: "bm9uY2Utbm9uY2Utbm9uY2U".into(),
            keyid: "7c8f3a52-6a0f-4a1e-9b8e-1f0f5f0e2a11".into(),
        }
    }

    const TARGET: Target<'static> =
        Target { method: "post", authority: "Cloud.Example:8443", path: "/v1/shops/3/counter-payments", query: None };

    #[test]
    fn the_base_is_rfc_9421s_with_every_covered_component_and_the_parameters() {
        let digest = content_digest(b"{\"hello\": \"world\"}");
        assert_eq!(digest, "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:", "RFC 9530's example");
        let base = signature_base(&TARGET, &digest, &terms()).unwrap();
        assert_eq!(
            base,
            "\"@method\": POST\n\"@authority\": cloud.example:8443\n\"@path\": /v1/shops/3/counter-payments\n\
             \"@query\": ?\n\"content-digest\": sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:\n\
             \"@signature-params\": (\"@method\" \"@authority\" \"@path\" \"@query\" \"content-digest\")\
             ;created=1765000000;expires=1765000030;nonce=\"bm9uY2Utbm9uY2Utbm9uY2U\";alg=\"ecdsa-p256-sha256\"\
             ;keyid=\"7c8f3a52-6a0f-4a1e-9b8e-1f0f5f0e2a11\""
        );
        let with_query = Target { query: Some("day=2026-12-07"), ..TARGET };
        assert!(signature_base(&with_query, &digest, &terms()).unwrap().contains("\"@query\": ?day=2026-12-07\n"));
    }

    /// The `httpsig` crate, given the same components and parameters, builds the same base
    /// and the same parameters: this code and the crate that reads the headers agree.
    #[cfg(feature = "httpsig")]
    #[test]
    fn the_httpsig_crate_builds_the_same_base() {
        use httpsig::prelude::message_component::{HttpMessageComponent, HttpMessageComponentId};
        use httpsig::prelude::{HttpSignatureBase, HttpSignatureParams};
        let digest = content_digest(b"{}");
        for target in [TARGET, Target { query: Some("day=2026-12-07&x=1"), path: "", ..TARGET }] {
            let ids: Vec<_> = COVERED.iter().map(|c| HttpMessageComponentId::try_from(*c).unwrap()).collect();
            let t = terms();
            let params = HttpSignatureParams {
                created: Some(t.created),
                expires: Some(t.expires),
                nonce: Some(t.nonce.clone()),
                alg: Some(ALGORITHM.to_owned()),
                keyid: Some(t.keyid.clone()),
                tag: None,
                covered_components: ids.clone(),
            };
            let path = if target.path.is_empty() { "/" } else { target.path };
            let query = format!("?{}", target.query.unwrap_or(""));
            let values = [target.method, target.authority, path, &query, &digest];
            let lines: Vec<_> = ids
                .iter()
                .zip(values)
                .map(|(id, v)| HttpMessageComponent::try_from((id, &[v.to_owned()][..])).unwrap())
                .collect();
            let theirs = HttpSignatureBase::try_new(&lines, &params).unwrap().to_string();
            assert_eq!(signature_base(&target, &digest, &t).unwrap(), theirs);
            assert_eq!(signature_input(&t).unwrap(), format!("{LABEL}={params}"));
        }
    }

    #[cfg(feature = "httpsig")]
    #[test]
    fn headers_round_trip_and_only_a_devices_signature_parses() {
        let input = signature_input(&terms()).unwrap();
        let sig = signature_header(&[7u8; 64]);
        assert_eq!(parse(&input, &sig).unwrap(), (terms(), vec![7u8; 64]));
        let other = input.replacen("device=", "sig1=", 1);
        assert_eq!(parse(&other, &sig.replacen("device=", "sig1=", 1)), Err(SignatureError::Label));
        let two = format!("{input}, {}", other);
        assert_eq!(parse(&two, &format!("{sig}, {}", sig.replacen("device=", "sig1=", 1))), Err(SignatureError::Label));
        let fewer = input.replace(" \"content-digest\"", "");
        assert_eq!(parse(&fewer, &sig), Err(SignatureError::Coverage));
        let rsa = input.replace("ecdsa-p256-sha256", "rsa-pss-sha512");
        assert_eq!(parse(&rsa, &sig), Err(SignatureError::Algorithm));
        let no_nonce = input.replace(";nonce=\"bm9uY2Utbm9uY2Utbm9uY2U\"", "");
        assert_eq!(parse(&no_nonce, &sig), Err(SignatureError::Parameters));
        let long = input.replace("expires=1765000030", "expires=1765086400");
        assert_eq!(parse(&long, &sig), Err(SignatureError::Lifetime));
        assert_eq!(parse(&input, &signature_header(&[7u8; 65])), Err(SignatureError::Length));
        assert!(matches!(parse("device=nonsense(", &sig), Err(SignatureError::Malformed(_))));
    }

    #[test]
    fn nothing_that_could_break_a_line_or_a_quote_gets_into_the_base() {
        let digest = content_digest(b"");
        let mut t = terms();
        t.nonce = "short".into();
        assert_eq!(signature_base(&TARGET, &digest, &t), Err(SignatureError::Nonce));
        t = terms();
        t.keyid = "\";alg=\"none".into();
        assert_eq!(signature_base(&TARGET, &digest, &t), Err(SignatureError::KeyId));
        let sly = Target { path: "/a\n\"@method\": GET", ..TARGET };
        assert_eq!(signature_base(&sly, &digest, &terms()), Err(SignatureError::Value));
    }

    #[test]
    fn time_allows_the_skew_and_no_more() {
        let t = terms();
        assert!(check_time(&t, t.created).is_ok());
        assert!(check_time(&t, t.created - CLOCK_SKEW_SECONDS).is_ok());
        assert_eq!(check_time(&t, t.created - CLOCK_SKEW_SECONDS - 1), Err(SignatureError::FromTheFuture(31)));
        assert!(check_time(&t, last_good(&t)).is_ok());
        assert_eq!(check_time(&t, last_good(&t) + 1), Err(SignatureError::Expired(31)));
    }
}
