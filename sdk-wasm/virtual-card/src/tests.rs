use std::time::SystemTime;

use mykey_core::card::jpki::{self, JpkiError, Pin, PinStatus};
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use sha2::Sha256;
use x509_cert::der::Decode;
use x509_cert::Certificate;

use crate::{DemoCa, VirtualCard};

fn card() -> (DemoCa, VirtualCard) {
    let mut rng = rand::rngs::OsRng;
    let ca = DemoCa::generate(&mut rng, SystemTime::now()).unwrap();
    let card = VirtualCard::issue(&ca, &mut rng, "1234", SystemTime::now()).unwrap();
    (ca, card)
}

fn public_key(cert: &[u8]) -> RsaPublicKey {
    let cert = Certificate::from_der(cert).unwrap();
    RsaPublicKey::from_pkcs1_der(cert.tbs_certificate.subject_public_key_info.subject_public_key.raw_bytes()).unwrap()
}

#[tokio::test]
async fn the_host_reads_the_certificate_and_gets_a_login_signature_that_verifies() {
    let (ca, mut card) = card();
    let cert = jpki::read_auth_certificate(&mut card).await.unwrap();
    assert_eq!(cert, card.auth_certificate());
    let parsed = Certificate::from_der(&cert).unwrap();
    assert_eq!(parsed.tbs_certificate.issuer, Certificate::from_der(ca.certificate()).unwrap().tbs_certificate.subject);
    assert_eq!(jpki::pin_tries_left(&mut card).await.unwrap(), PinStatus::TriesLeft(3));

    let sig =
        jpki::authenticate(&mut card, "https://mykey.example", "bm9uY2U=", &Pin::parse("1234").unwrap()).await.unwrap();
    assert_eq!(sig.len(), 256);
    let digest = jpki::token_hash("https://mykey.example", "bm9uY2U=");
    public_key(&cert).verify(Pkcs1v15Sign::new::<Sha256>(), &digest, &sig).unwrap();
    let other = jpki::token_hash("https://evil.example", "bm9uY2U=");
    assert!(public_key(&cert).verify(Pkcs1v15Sign::new::<Sha256>(), &other, &sig).is_err());
}

#[tokio::test]
async fn wrong_pins_count_down_block_and_survive_a_reset_and_a_save() {
    let (_ca, mut card) = card();
    let wrong = Pin::parse("0000").unwrap();
    let err = jpki::authenticate(&mut card, "https://a", "n", &wrong).await;
    assert_eq!(err, Err(JpkiError::WrongPin { tries_left: 2 }));
    card.reset();
    let mut card = VirtualCard::from_file(&card.to_file().unwrap()).unwrap();
    assert_eq!(jpki::pin_tries_left(&mut card).await.unwrap(), PinStatus::TriesLeft(2));
    // A right PIN resets the counter.
    jpki::authenticate(&mut card, "https://a", "n", &Pin::parse("1234").unwrap()).await.unwrap();
    card.reset();
    assert_eq!(jpki::pin_tries_left(&mut card).await.unwrap(), PinStatus::TriesLeft(3));
    for left in [2, 1] {
        let err = jpki::authenticate(&mut card, "https://a", "n", &wrong).await;
        assert_eq!(err, Err(JpkiError::WrongPin { tries_left: left }));
    }
    assert_eq!(jpki::authenticate(&mut card, "https://a", "n", &wrong).await, Err(JpkiError::PinBlocked));
    let right = Pin::parse("1234").unwrap();
    assert_eq!(jpki::authenticate(&mut card, "https://a", "n", &right).await, Err(JpkiError::PinBlocked));
    assert_eq!(jpki::pin_tries_left(&mut card).await.unwrap(), PinStatus::Blocked);
}

#[test]
fn answers_like_a_card_to_what_it_does_not_know() {
    let (_ca, mut card) = card();
    // Another application (the card-info-input AP is never selected by mykey, and this card
    // does not have it either).
    assert_eq!(card.handle(&[0x00, 0xA4, 0x04, 0x0C, 0x02, 0xD3, 0x92]), vec![0x6A, 0x82]);
    // Unknown instruction and class.
    assert_eq!(card.handle(&[0x00, 0xCA, 0x00, 0x00, 0x00]), vec![0x6D, 0x00]);
    assert_eq!(card.handle(&[0xFF, 0xB0, 0x00, 0x00, 0x00]), vec![0x6E, 0x00]);
    // Select the AP, then an unknown file, then read with nothing selected.
    let aid = [&[0x00, 0xA4, 0x04, 0x0C, 0x0A][..], &jpki::JPKI_AID].concat();
    assert_eq!(card.handle(&aid), vec![0x90, 0x00]);
    assert_eq!(card.handle(&[0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x99]), vec![0x6A, 0x82]);
    assert_eq!(card.handle(&[0x00, 0xB0, 0x00, 0x00, 0x04]), vec![0x69, 0x86]);
    // Signing without the PIN is refused; the signing certificate stays locked.
    assert_eq!(card.handle(&[0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x17]), vec![0x90, 0x00]);
    assert_eq!(card.handle(&[0x80, 0x2A, 0x00, 0x80, 0x01, 0x00, 0x00]), vec![0x69, 0x82]);
    assert_eq!(card.handle(&[0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x01]), vec![0x90, 0x00]);
    assert_eq!(card.handle(&[0x00, 0xB0, 0x00, 0x00, 0x04]), vec![0x69, 0x82]);
    // Token information reads as on a real card; a truncated APDU is a length error.
    assert_eq!(card.handle(&[0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x06]), vec![0x90, 0x00]);
    assert_eq!(&card.handle(&[0x00, 0xB0, 0x00, 0x00, 0x0F])[..15], b"JPKIAPICCTOKEN2");
    assert_eq!(card.handle(&[0x00, 0xA4, 0x02]), vec![0x67, 0x00]);
}

#[test]
fn the_ca_survives_a_save_and_issues_crls() {
    let (ca, _card) = card();
    let again = DemoCa::from_json(&ca.to_json().unwrap()).unwrap();
    assert_eq!(again.certificate(), ca.certificate());
    let now = SystemTime::now();
    let crl = again.crl(7, &[vec![0x12, 0x34]], now, now + std::time::Duration::from_secs(3600)).unwrap();
    let parsed = x509_cert::crl::CertificateList::from_der(&crl).unwrap();
    assert_eq!(parsed.tbs_cert_list.revoked_certificates.unwrap().len(), 1);
}
