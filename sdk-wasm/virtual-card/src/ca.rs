//! The demo CA: a self-signed RSA-2048 root shaped like J-LIS's user-authentication CA
//! (same name layout, key usages and basic constraints), but named as a demo so nobody can
//! mistake it. It issues virtual cards' authentication certificates and CRLs. A server trusts
//! it only in demo mode.

use std::str::FromStr;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use rsa::rand_core::CryptoRngCore;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha2::Sha256;
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::der::asn1::{OctetString, Uint};
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::pkix::CrlNumber;
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{DynSignatureAlgorithmIdentifier, SubjectPublicKeyInfoOwned};
use x509_cert::time::{Time, Validity};
use x509_cert::Certificate;

/// The demo CA's name: J-LIS's layout (C, O, two OUs), the last OU saying what it is.
pub const DEMO_CA_NAME: &str =
    "OU=mykey demo CA (not J-LIS; demo mode only),OU=JPKI for user authentication,O=JPKI,C=JP";
/// How long an authentication certificate lasts on a real card (about five years).
pub const CARD_VALIDITY: Duration = Duration::from_secs(5 * 365 * 24 * 3600);

/// A serial number as the certificate carries it: unsigned big-endian, without leading zeros.
pub type Serial = Vec<u8>;

/// The demo CA with its private key.
pub struct DemoCa {
    key: RsaPrivateKey,
    certificate: Vec<u8>,
    name: Name,
}

/// What `DemoCa::to_json` writes: the key as PKCS#8 and the certificate, both DER in base64.
#[derive(serde::Serialize, serde::Deserialize)]
struct CaFile {
    key_pkcs8: String,
    certificate: String,
}

impl DemoCa {
    /// A new CA with a fresh RSA-2048 key, valid for ten years from `not_before`.
    pub fn generate(rng: &mut impl CryptoRngCore, not_before: SystemTime) -> anyhow::Result<DemoCa> {
        let key = new_key(rng)?;
        Self::self_signed(key, not_before)
    }

    fn self_signed(key: RsaPrivateKey, not_before: SystemTime) -> anyhow::Result<DemoCa> {
        let name = Name::from_str(DEMO_CA_NAME).context("the demo CA's name")?;
        let spki = spki_of(&RsaPublicKey::from(&key))?;
        let signer = SigningKey::<Sha256>::new(key.clone());
        let validity = validity(not_before, Duration::from_secs(10 * 365 * 24 * 3600))?;
        let builder = CertificateBuilder::new(Profile::Root, serial(&[0x01])?, validity, name.clone(), spki, &signer)
            .context("building the demo CA certificate")?;
        let certificate = builder.build::<rsa::pkcs1v15::Signature>()?.to_der()?;
        Ok(DemoCa { key, certificate, name })
    }

    /// The CA certificate (DER): the trust anchor a demo server is configured with.
    pub fn certificate(&self) -> &[u8] {
        &self.certificate
    }

    /// Saves the CA (key included) as JSON; the demo keeps it in its data folder.
    pub fn to_json(&self) -> anyhow::Result<String> {
        let file = CaFile {
            key_pkcs8: B64.encode(self.key.to_pkcs8_der()?.as_bytes()),
            certificate: B64.encode(&self.certificate),
        };
        Ok(serde_json::to_string_pretty(&file)?)
    }

    /// Loads a CA saved with [`DemoCa::to_json`].
    pub fn from_json(json: &str) -> anyhow::Result<DemoCa> {
        let file: CaFile = serde_json::from_str(json).context("reading the demo CA file")?;
        let key = RsaPrivateKey::from_pkcs8_der(&B64.decode(file.key_pkcs8)?).context("the demo CA's key")?;
        let certificate = B64.decode(file.certificate)?;
        let name = Certificate::from_der(&certificate).context("the demo CA's certificate")?.tbs_certificate.subject;
        Ok(DemoCa { key, certificate, name })
    }

    /// Issues an end-entity authentication certificate for `public_key` (an RSA or P-256
    /// SubjectPublicKeyInfo): key usage digitalSignature, not a CA, `validity` from
    /// `not_before`. The subject carries no name or address, as on a real card.
    pub fn issue(
        &self,
        public_key: SubjectPublicKeyInfoOwned,
        serial_number: &[u8],
        not_before: SystemTime,
        lifetime: Duration,
    ) -> anyhow::Result<Vec<u8>> {
        let subject = Name::from_str(&format!("CN=DEMO{},C=JP", hex(serial_number)))?;
        let profile =
            Profile::Leaf { issuer: self.name.clone(), enable_key_agreement: false, enable_key_encipherment: false };
        let signer = SigningKey::<Sha256>::new(self.key.clone());
        let builder = CertificateBuilder::new(
            profile,
            serial(serial_number)?,
            validity(not_before, lifetime)?,
            subject,
            public_key,
            &signer,
        )
        .context("building a card certificate")?;
        Ok(builder.build::<rsa::pkcs1v15::Signature>()?.to_der()?)
    }

    /// A CRL (v2, with a CRL number) listing `revoked` serial numbers, valid until `next_update`.
    pub fn crl(
        &self,
        number: u64,
        revoked: &[Serial],
        this_update: SystemTime,
        next_update: SystemTime,
    ) -> anyhow::Result<Vec<u8>> {
        let signer = SigningKey::<Sha256>::new(self.key.clone());
        let revocation_date = Time::try_from(this_update)?;
        let revoked_certificates = revoked
            .iter()
            .map(|s| Ok(RevokedCert { serial_number: serial(s)?, revocation_date, crl_entry_extensions: None }))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let crl_number = CrlNumber(Uint::new(&number.to_be_bytes())?);
        let tbs = TbsCertList {
            version: x509_cert::Version::V2,
            signature: signer.signature_algorithm_identifier()?,
            issuer: self.name.clone(),
            this_update: revocation_date,
            next_update: Some(Time::try_from(next_update)?),
            revoked_certificates: (!revoked_certificates.is_empty()).then_some(revoked_certificates),
            crl_extensions: Some(vec![Extension {
                extn_id: const_oid_crl_number(),
                critical: false,
                extn_value: OctetString::new(crl_number.to_der()?)?,
            }]),
        };
        let signature = signer.sign(&tbs.to_der()?).to_vec();
        let crl = CertificateList {
            tbs_cert_list: tbs,
            signature_algorithm: signer.signature_algorithm_identifier()?,
            signature: x509_cert::der::asn1::BitString::from_bytes(&signature)?,
        };
        Ok(crl.to_der()?)
    }
}

fn const_oid_crl_number() -> x509_cert::der::oid::ObjectIdentifier {
    x509_cert::der::oid::db::rfc5280::ID_CE_CRL_NUMBER
}

/// A fresh RSA-2048 key (e = 65537), as on today's cards.
pub fn new_key(rng: &mut impl CryptoRngCore) -> anyhow::Result<RsaPrivateKey> {
    RsaPrivateKey::new(rng, 2048).context("generating an RSA-2048 key")
}

/// The SubjectPublicKeyInfo of an RSA public key.
pub fn spki_of(key: &RsaPublicKey) -> anyhow::Result<SubjectPublicKeyInfoOwned> {
    Ok(SubjectPublicKeyInfoOwned::from_der(key.to_public_key_der()?.as_bytes())?)
}

/// A random positive serial number of 8 bytes.
pub fn random_serial(rng: &mut impl CryptoRngCore) -> Serial {
    let mut s = [0u8; 8];
    rng.fill_bytes(&mut s);
    s[0] = (s[0] & 0x7F) | 0x01;
    s.to_vec()
}

fn serial(bytes: &[u8]) -> anyhow::Result<SerialNumber> {
    Ok(SerialNumber::new(bytes)?)
}

fn validity(not_before: SystemTime, lifetime: Duration) -> anyhow::Result<Validity> {
    Ok(Validity { not_before: Time::try_from(not_before)?, not_after: Time::try_from(not_before + lifetime)? })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}
