//! The virtual My Number Card: the JPKI application's file layout, the auth PIN's counter
//! and an RSA-2048 key that signs the DigestInfo it is sent (PKCS#1 v1.5), answering APDUs
//! the way the card does (`docs/card.md`), unknown commands and files included, so that
//! OpenSC's probing and the host code see a faithful card.

use std::time::SystemTime;

use anyhow::Context;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use mykey_core::card::jpki::{EF_AUTH_CERT, EF_AUTH_KEY, EF_AUTH_PIN, JPKI_AID};
use mykey_core::card::{Transport, TransportError};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use rsa::rand_core::CryptoRngCore;
use rsa::{Pkcs1v15Sign, RsaPrivateKey, RsaPublicKey};

use crate::ca::{self, DemoCa};

/// The contact ATR of a My Number Card.
pub const ATR: [u8; 9] = [0x3B, 0xE0, 0x00, 0xFF, 0x81, 0x31, 0xFE, 0x45, 0x14];
/// The auth certificate's CA certificate.
pub const EF_AUTH_CA_CERT: u16 = 0x000B;
/// Token information.
pub const EF_TOKEN_INFO: u16 = 0x0006;
/// The signing certificate, its CA, key and password: present, but this card only
/// authenticates, so they stay locked (reading the signing certificate needs the password).
const EF_SIGN_CERT: u16 = 0x0001;
const EF_SIGN_CA_CERT: u16 = 0x0002;
const EF_SIGN_KEY: u16 = 0x001A;
const EF_SIGN_PIN: u16 = 0x001B;
/// What the token-information file holds on a real card.
const TOKEN_INFO: &[u8; 32] = b"JPKIAPICCTOKEN2                 ";
/// Tries of the auth PIN.
pub const PIN_TRIES: u8 = 3;

const SW_OK: u16 = 0x9000;
const SW_WRONG_LENGTH: u16 = 0x6700;
const SW_SECURITY: u16 = 0x6982;
const SW_BLOCKED: u16 = 0x6984;
const SW_NO_EF: u16 = 0x6986;
const SW_WRONG_DATA: u16 = 0x6A80;
const SW_NOT_FOUND: u16 = 0x6A82;
const SW_WRONG_P1P2: u16 = 0x6A86;
const SW_WRONG_OFFSET: u16 = 0x6B00;
const SW_UNKNOWN_INS: u16 = 0x6D00;
const SW_UNKNOWN_CLA: u16 = 0x6E00;

/// A virtual card. Its session state (selection, PIN verified) ends at [`VirtualCard::reset`].
pub struct VirtualCard {
    key: RsaPrivateKey,
    auth_certificate: Vec<u8>,
    ca_certificate: Vec<u8>,
    pin: [u8; 4],
    tries_left: u8,
    jpki_selected: bool,
    ef: Option<u16>,
    verified: bool,
}

/// The card as the demo stores it between runs.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct CardFile {
    /// The auth key, PKCS#8 DER in base64.
    pub key_pkcs8: String,
    /// The auth certificate, DER in base64.
    pub auth_certificate: String,
    /// Its CA's certificate, DER in base64.
    pub ca_certificate: String,
    /// The auth PIN (4 digits). A demo card's PIN is not a secret.
    pub pin: String,
    /// Tries left.
    pub tries_left: u8,
}

/// A short APDU as the card reads it.
struct Apdu<'a> {
    cla: u8,
    ins: u8,
    p1: u8,
    p2: u8,
    data: &'a [u8],
    le: Option<usize>,
}

impl<'a> Apdu<'a> {
    /// ISO 7816-4 cases 1 to 4, short lengths only (as the JPKI commands use).
    fn parse(b: &'a [u8]) -> Option<Apdu<'a>> {
        let (&[cla, ins, p1, p2], body) = (b.first_chunk::<4>()?, &b[4..]);
        let le_of = |x: u8| if x == 0 { 256 } else { usize::from(x) };
        let (data, le) = match body {
            [] => (&body[..0], None),
            [le] => (&body[..0], Some(le_of(*le))),
            [lc, rest @ ..] if *lc != 0 && rest.len() == usize::from(*lc) => (rest, None),
            [lc, rest @ ..] if *lc != 0 && rest.len() == usize::from(*lc) + 1 => {
                (&rest[..usize::from(*lc)], Some(le_of(rest[usize::from(*lc)])))
            }
            _ => return None,
        };
        Some(Apdu { cla, ins, p1, p2, data, le })
    }
}

fn sw(v: u16) -> Vec<u8> {
    v.to_be_bytes().to_vec()
}

impl VirtualCard {
    /// A new card: a fresh RSA-2048 key, its certificate from `ca` valid from `not_before`
    /// for [`ca::CARD_VALIDITY`], and the given PIN.
    pub fn issue(ca: &DemoCa, rng: &mut impl CryptoRngCore, pin: &str, not_before: SystemTime) -> anyhow::Result<Self> {
        let key = ca::new_key(rng)?;
        let serial = ca::random_serial(rng);
        let auth_certificate =
            ca.issue(ca::spki_of(&RsaPublicKey::from(&key))?, &serial, not_before, ca::CARD_VALIDITY)?;
        Self::new(key, auth_certificate, ca.certificate().to_vec(), pin)
    }

    /// A card from its parts.
    pub fn new(
        key: RsaPrivateKey,
        auth_certificate: Vec<u8>,
        ca_certificate: Vec<u8>,
        pin: &str,
    ) -> anyhow::Result<Self> {
        let pin: [u8; 4] = pin
            .as_bytes()
            .try_into()
            .ok()
            .filter(|p: &[u8; 4]| p.iter().all(u8::is_ascii_digit))
            .context("a PIN is 4 digits")?;
        anyhow::ensure!(auth_certificate.len() <= mykey_core::card::jpki::MAX_CERTIFICATE, "certificate too long");
        Ok(VirtualCard {
            key,
            auth_certificate,
            ca_certificate,
            pin,
            tries_left: PIN_TRIES,
            jpki_selected: false,
            ef: None,
            verified: false,
        })
    }

    /// Loads a card saved with [`VirtualCard::to_file`].
    pub fn from_file(file: &CardFile) -> anyhow::Result<Self> {
        let key = RsaPrivateKey::from_pkcs8_der(&B64.decode(&file.key_pkcs8)?).context("the card's key")?;
        let mut card =
            Self::new(key, B64.decode(&file.auth_certificate)?, B64.decode(&file.ca_certificate)?, &file.pin)?;
        anyhow::ensure!(file.tries_left <= PIN_TRIES, "tries left above {PIN_TRIES}");
        card.tries_left = file.tries_left;
        Ok(card)
    }

    /// The card as a file, PIN counter included.
    pub fn to_file(&self) -> anyhow::Result<CardFile> {
        Ok(CardFile {
            key_pkcs8: B64.encode(self.key.to_pkcs8_der()?.as_bytes()),
            auth_certificate: B64.encode(&self.auth_certificate),
            ca_certificate: B64.encode(&self.ca_certificate),
            pin: String::from_utf8_lossy(&self.pin).into_owned(),
            tries_left: self.tries_left,
        })
    }

    /// The authentication certificate (DER).
    pub fn auth_certificate(&self) -> &[u8] {
        &self.auth_certificate
    }

    /// Tries left on the auth PIN.
    pub fn tries_left(&self) -> u8 {
        self.tries_left
    }

    /// Power off and on: ends the session (selection and PIN verification), keeps the counter.
    pub fn reset(&mut self) {
        self.jpki_selected = false;
        self.ef = None;
        self.verified = false;
    }

    /// Answers one command APDU with data and status word.
    pub fn handle(&mut self, command: &[u8]) -> Vec<u8> {
        let Some(c) = Apdu::parse(command) else {
            return sw(SW_WRONG_LENGTH);
        };
        if c.cla & 0x7F != 0x00 && !(c.cla == 0x80 && c.ins == 0x2A) {
            return sw(if c.cla == 0x80 { SW_UNKNOWN_INS } else { SW_UNKNOWN_CLA });
        }
        match c.ins {
            0xA4 => self.select(&c),
            0xB0 => self.read_binary(&c),
            0x20 => self.verify(&c),
            0x2A if c.cla == 0x80 => self.sign(&c),
            _ => sw(SW_UNKNOWN_INS),
        }
    }

    fn select(&mut self, c: &Apdu) -> Vec<u8> {
        match (c.p1, c.p2) {
            (0x04, 0x0C) => {
                // Selecting another application leaves the JPKI one (and its PIN state).
                self.reset();
                self.jpki_selected = c.data == JPKI_AID;
                sw(if self.jpki_selected { SW_OK } else { SW_NOT_FOUND })
            }
            (0x02, 0x0C) if self.jpki_selected => {
                let Ok(id) = <[u8; 2]>::try_from(c.data) else {
                    return sw(SW_WRONG_LENGTH);
                };
                let id = u16::from_be_bytes(id);
                let known = [
                    EF_AUTH_CERT,
                    EF_AUTH_CA_CERT,
                    EF_AUTH_KEY,
                    EF_AUTH_PIN,
                    EF_TOKEN_INFO,
                    EF_SIGN_CERT,
                    EF_SIGN_CA_CERT,
                    EF_SIGN_KEY,
                    EF_SIGN_PIN,
                ];
                if known.contains(&id) {
                    self.ef = Some(id);
                    sw(SW_OK)
                } else {
                    sw(SW_NOT_FOUND)
                }
            }
            (0x02, 0x0C) | (0x04, _) | (0x00 | 0x01 | 0x08 | 0x09, _) => sw(SW_NOT_FOUND),
            _ => sw(SW_WRONG_P1P2),
        }
    }

    fn read_binary(&mut self, c: &Apdu) -> Vec<u8> {
        if c.p1 & 0x80 != 0 {
            return sw(SW_WRONG_P1P2); // short EF addressing: not on this card
        }
        let file: &[u8] = match self.ef {
            Some(EF_AUTH_CERT) => &self.auth_certificate,
            Some(EF_AUTH_CA_CERT) => &self.ca_certificate,
            Some(EF_TOKEN_INFO) => TOKEN_INFO,
            Some(EF_SIGN_CERT | EF_SIGN_CA_CERT) => return sw(SW_SECURITY),
            Some(_) => return sw(0x6981), // command incompatible with the file
            None => return sw(SW_NO_EF),
        };
        let offset = usize::from(u16::from_be_bytes([c.p1, c.p2]));
        if offset > file.len() {
            return sw(SW_WRONG_OFFSET);
        }
        let end = (offset + c.le.unwrap_or(256)).min(file.len());
        [&file[offset..end], &SW_OK.to_be_bytes()[..]].concat()
    }

    fn verify(&mut self, c: &Apdu) -> Vec<u8> {
        if (c.p1, c.p2) != (0x00, 0x80) {
            return sw(SW_WRONG_P1P2);
        }
        match self.ef {
            Some(EF_AUTH_PIN) => {}
            // The signing password is never given to this card.
            Some(EF_SIGN_PIN) if c.data.is_empty() => return sw(0x63C5),
            Some(EF_SIGN_PIN) => return sw(SW_SECURITY),
            _ => return sw(SW_NO_EF),
        }
        if c.data.is_empty() {
            // Ask the count without spending a try.
            return sw(if self.verified {
                SW_OK
            } else if self.tries_left == 0 {
                SW_BLOCKED
            } else {
                0x63C0 | u16::from(self.tries_left)
            });
        }
        if self.tries_left == 0 {
            return sw(SW_BLOCKED);
        }
        if c.data == self.pin {
            self.tries_left = PIN_TRIES;
            self.verified = true;
            sw(SW_OK)
        } else {
            self.tries_left -= 1;
            self.verified = false;
            sw(0x63C0 | u16::from(self.tries_left))
        }
    }

    fn sign(&mut self, c: &Apdu) -> Vec<u8> {
        if (c.p1, c.p2) != (0x00, 0x80) {
            return sw(SW_WRONG_P1P2);
        }
        match self.ef {
            Some(EF_AUTH_KEY) => {}
            Some(EF_SIGN_KEY) => return sw(SW_SECURITY),
            _ => return sw(SW_NO_EF),
        }
        if !self.verified {
            return sw(SW_SECURITY);
        }
        // The host sends a DigestInfo; the card only pads and signs (PKCS#1 v1.5, RSA-2048:
        // at most 245 bytes fit).
        if c.data.is_empty() || c.data.len() > 245 {
            return sw(SW_WRONG_DATA);
        }
        match self.key.sign(Pkcs1v15Sign::new_unprefixed(), c.data) {
            Ok(signature) => [signature, SW_OK.to_be_bytes().to_vec()].concat(),
            Err(_) => sw(SW_WRONG_DATA),
        }
    }
}

impl Transport for VirtualCard {
    async fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        Ok(self.handle(command))
    }
}
