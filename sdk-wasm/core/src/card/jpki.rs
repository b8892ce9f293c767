//! The JPKI application of the My Number Card: read the user-authentication certificate,
//! count PIN tries without spending one, and sign the authentication token's digest.
//!
//! The only signing entry point is [`authenticate`], which builds the digest itself from the
//! origin and the server's nonce (Web eID's token design, `docs/card.md`): nothing here signs
//! a hash a caller chose with the auth key.

use sha2::{Digest, Sha256};

use super::apdu::{Command, Response};
use super::{Transport, TransportError};

/// The JPKI application's AID.
pub const JPKI_AID: [u8; 10] = [0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01];
/// The user-authentication certificate (DER).
pub const EF_AUTH_CERT: u16 = 0x000A;
/// The user-authentication private key.
pub const EF_AUTH_KEY: u16 = 0x0017;
/// The user-authentication PIN (4 digits, 3 tries).
pub const EF_AUTH_PIN: u16 = 0x0018;
/// Wrong authentication-PIN tries after which the card locks the PIN (only the municipal
/// office resets it).
pub const AUTH_PIN_TRIES: u8 = 3;
/// DER prefix of a SHA-256 DigestInfo (PKCS#1 v1.5).
pub const SHA256_DIGEST_INFO: [u8; 19] =
    [0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20];
/// Largest certificate read (bounds the read loop).
pub const MAX_CERTIFICATE: usize = 16 * 1024;

/// What went wrong, in terms a resident can act on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JpkiError {
    /// No JPKI application: another card.
    #[error("this card is not a My Number Card")]
    NotMyNumberCard,
    /// Wrong PIN, with the tries left.
    #[error("wrong PIN: {tries_left} tries left before the PIN is blocked")]
    WrongPin {
        /// Tries left.
        tries_left: u8,
    },
    /// Three wrong tries: only the municipal office can reset it.
    #[error("the PIN is blocked after 3 wrong tries; the municipal office can reset it")]
    PinBlocked,
    /// Not four digits.
    #[error("the PIN is 4 digits")]
    BadPin,
    /// The certificate does not start with a DER SEQUENCE of a sane length.
    #[error("the certificate on the card is unreadable")]
    MalformedCertificate,
    /// A status word this code does not expect.
    #[error("the card answered {sw:04X} to {what}")]
    Status {
        /// The status word.
        sw: u16,
        /// The command.
        what: &'static str,
    },
    /// Below the application.
    #[error(transparent)]
    Transport(#[from] TransportError),
}

/// A 4-digit PIN. Its `Debug` never shows the digits.
#[derive(Clone, PartialEq, Eq)]
pub struct Pin([u8; 4]);

impl Pin {
    /// Checks a typed PIN.
    pub fn parse(s: &str) -> Result<Pin, JpkiError> {
        let b: [u8; 4] = s.as_bytes().try_into().map_err(|_| JpkiError::BadPin)?;
        if !b.iter().all(u8::is_ascii_digit) {
            return Err(JpkiError::BadPin);
        }
        Ok(Pin(b))
    }
}

impl std::fmt::Debug for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pin(****)")
    }
}

/// Where the PIN stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinStatus {
    /// Tries left (1 to 3).
    TriesLeft(u8),
    /// No tries left.
    Blocked,
    /// Already verified in this card session (the count is not told).
    Verified,
}

/// One exchange; follows `61 xx` (more data) with GET RESPONSE, a bounded number of times.
async fn exchange<T: Transport>(t: &mut T, cmd: Command) -> Result<Response, JpkiError> {
    let raw = t.transmit(&cmd.to_bytes()).await?;
    let mut r =
        Response::parse(&raw).ok_or_else(|| TransportError::Reader("a response without a status word".into()))?;
    for _ in 0..16 {
        if r.sw >> 8 != 0x61 {
            break;
        }
        let more = Command::new(0x00, 0xC0, 0x00, 0x00).le(match r.sw & 0xFF {
            0 => 256,
            n => n,
        });
        let raw = t.transmit(&more.to_bytes()).await?;
        let next =
            Response::parse(&raw).ok_or_else(|| TransportError::Reader("a response without a status word".into()))?;
        r = Response { data: [r.data, next.data].concat(), sw: next.sw };
    }
    Ok(r)
}

fn expect_ok(r: &Response, what: &'static str) -> Result<(), JpkiError> {
    if r.ok() {
        Ok(())
    } else {
        Err(JpkiError::Status { sw: r.sw, what })
    }
}

/// Selects the JPKI application.
pub async fn select_jpki<T: Transport>(t: &mut T) -> Result<(), JpkiError> {
    let r = exchange(t, Command::new(0x00, 0xA4, 0x04, 0x0C).data(&JPKI_AID)).await?;
    match r.sw {
        0x9000 => Ok(()),
        0x6A82 | 0x6A86 | 0x6D00 | 0x6E00 => Err(JpkiError::NotMyNumberCard),
        sw => Err(JpkiError::Status { sw, what: "select the JPKI application" }),
    }
}

async fn select_ef<T: Transport>(t: &mut T, ef: u16) -> Result<(), JpkiError> {
    let r = exchange(t, Command::new(0x00, 0xA4, 0x02, 0x0C).data(&ef.to_be_bytes())).await?;
    expect_ok(&r, "select a file")
}

async fn read<T: Transport>(t: &mut T, offset: usize, len: u16) -> Result<Vec<u8>, JpkiError> {
    let [hi, lo] = (offset as u16).to_be_bytes();
    let r = exchange(t, Command::new(0x00, 0xB0, hi, lo).le(len)).await?;
    expect_ok(&r, "read the certificate")?;
    Ok(r.data)
}

/// The total length of a DER element from its first bytes.
fn der_length(head: &[u8]) -> Option<usize> {
    match head {
        [0x30, 0x82, a, b, ..] => Some(4 + usize::from(u16::from_be_bytes([*a, *b]))),
        [0x30, 0x81, a, ..] => Some(3 + usize::from(*a)),
        [0x30, n, ..] if *n < 0x80 => Some(2 + usize::from(*n)),
        _ => None,
    }
}

/// Reads the user-authentication certificate (DER).
pub async fn read_auth_certificate<T: Transport>(t: &mut T) -> Result<Vec<u8>, JpkiError> {
    select_jpki(t).await?;
    select_ef(t, EF_AUTH_CERT).await?;
    let head = read(t, 0, 4).await?;
    let total =
        der_length(&head).filter(|n| (5..=MAX_CERTIFICATE).contains(n)).ok_or(JpkiError::MalformedCertificate)?;
    let mut cert = head;
    cert.truncate(total);
    // Bounded: at most MAX_CERTIFICATE / 256 reads.
    while cert.len() < total {
        let chunk = (total - cert.len()).min(256) as u16;
        let part = read(t, cert.len(), chunk).await?;
        if part.is_empty() {
            return Err(JpkiError::MalformedCertificate);
        }
        cert.extend_from_slice(&part);
    }
    cert.truncate(total);
    Ok(cert)
}

/// Counts the PIN tries left without spending one.
pub async fn pin_tries_left<T: Transport>(t: &mut T) -> Result<PinStatus, JpkiError> {
    select_jpki(t).await?;
    select_ef(t, EF_AUTH_PIN).await?;
    let r = exchange(t, Command::new(0x00, 0x20, 0x00, 0x80)).await?;
    match r.sw {
        0x9000 => Ok(PinStatus::Verified),
        0x63C0 | 0x6984 => Ok(PinStatus::Blocked),
        sw if sw & 0xFFF0 == 0x63C0 => Ok(PinStatus::TriesLeft((sw & 0x0F) as u8)),
        sw => Err(JpkiError::Status { sw, what: "count the PIN tries" }),
    }
}

/// The digest the card signs for a login: SHA-256(SHA-256(origin) || SHA-256(nonce)), where
/// the nonce is the server's base64 text.
pub fn token_hash(origin: &str, nonce: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(Sha256::digest(origin.as_bytes()));
    h.update(Sha256::digest(nonce.as_bytes()));
    h.finalize().into()
}

/// Verifies the PIN and signs the login token's digest for `origin` and `nonce`; returns the
/// RSA signature (256 bytes on today's cards).
pub async fn authenticate<T: Transport>(t: &mut T, origin: &str, nonce: &str, pin: &Pin) -> Result<Vec<u8>, JpkiError> {
    select_jpki(t).await?;
    select_ef(t, EF_AUTH_PIN).await?;
    let r = exchange(t, Command::new(0x00, 0x20, 0x00, 0x80).data(&pin.0)).await?;
    match r.sw {
        0x9000 => {}
        0x63C0 | 0x6984 => return Err(JpkiError::PinBlocked),
        sw if sw & 0xFFF0 == 0x63C0 => return Err(JpkiError::WrongPin { tries_left: (sw & 0x0F) as u8 }),
        sw => return Err(JpkiError::Status { sw, what: "verify the PIN" }),
    }
    select_ef(t, EF_AUTH_KEY).await?;
    let mut digest_info = SHA256_DIGEST_INFO.to_vec();
    digest_info.extend_from_slice(&token_hash(origin, nonce));
    let r = exchange(t, Command::new(0x80, 0x2A, 0x00, 0x80).data(&digest_info).le(256)).await?;
    expect_ok(&r, "sign")?;
    Ok(r.data)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::super::sim::{run, JpkiCard as Card};

    #[test]
    fn reads_the_certificate_by_its_der_length_in_chunks() {
        let mut card = Card::new();
        let cert = run(read_auth_certificate(&mut card)).unwrap();
        assert_eq!(cert, card.cert);
        // select AP, select EF, head, then 0x2BC bytes in chunks of 256: 3 reads.
        assert_eq!(card.exchanges, 6);
    }

    #[test]
    fn counts_tries_without_spending_one_and_reports_wrong_pins() {
        let mut card = Card::new();
        assert_eq!(run(pin_tries_left(&mut card)).unwrap(), PinStatus::TriesLeft(3));
        assert_eq!(run(pin_tries_left(&mut card)).unwrap(), PinStatus::TriesLeft(3));
        let wrong = Pin::parse("0000").unwrap();
        assert_eq!(run(authenticate(&mut card, "https://a", "n", &wrong)), Err(JpkiError::WrongPin { tries_left: 2 }));
        assert_eq!(run(authenticate(&mut card, "https://a", "n", &wrong)), Err(JpkiError::WrongPin { tries_left: 1 }));
        assert_eq!(run(pin_tries_left(&mut card)).unwrap(), PinStatus::TriesLeft(1));
        // The third wrong PIN blocks it: the card answers 63 C0.
        assert_eq!(run(authenticate(&mut card, "https://a", "n", &wrong)), Err(JpkiError::PinBlocked));
        assert_eq!(run(pin_tries_left(&mut card)).unwrap(), PinStatus::Blocked);
        let right = Pin::parse("1234").unwrap();
        assert_eq!(run(authenticate(&mut card, "https://a", "n", &right)), Err(JpkiError::PinBlocked));
    }

    #[test]
    fn signs_only_the_login_digest_for_origin_and_nonce() {
        let mut card = Card::new();
        let pin = Pin::parse("1234").unwrap();
        let sig = run(authenticate(&mut card, "https://mykey.example", "bm9uY2U=", &pin)).unwrap();
        assert_eq!(sig.len(), 256);
        let mut want = SHA256_DIGEST_INFO.to_vec();
        want.extend_from_slice(&token_hash("https://mykey.example", "bm9uY2U="));
        assert_eq!(card.signed, vec![want]);
        assert_eq!(run(pin_tries_left(&mut card)).unwrap(), PinStatus::Verified);
    }

    #[test]
    fn other_cards_and_bad_pins_are_named() {
        let mut card = Card { jpki: false, ..Card::new() };
        assert_eq!(run(read_auth_certificate(&mut card)), Err(JpkiError::NotMyNumberCard));
        assert_eq!(Pin::parse("123"), Err(JpkiError::BadPin));
        assert_eq!(Pin::parse("12a4"), Err(JpkiError::BadPin));
        assert_eq!(format!("{:?}", Pin::parse("1234").unwrap()), "Pin(****)");
        let mut bad = Card::new();
        bad.cert = vec![0x04, 0x02, 0, 0];
        assert_eq!(run(read_auth_certificate(&mut bad)), Err(JpkiError::MalformedCertificate));
    }
}
