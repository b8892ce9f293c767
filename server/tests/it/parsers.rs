//! Every parser of outside input, fed generated input for a bounded number of cases: it
//! answers (a value or an error) and never panics. Proptest keeps the failing input small and
//! records it in `parsers.proptest-regressions`. Cases per parser: `CASES`.

use std::time::{Duration, SystemTime};

use mykey_core::card::{apdu, port100};
use mykey_core::coupon::CouponCode;
use mykey_core::identity::{AuthToken, TokenAlgorithm, AUTH_TOKEN_FORMAT};
use mykey_core::note::{Checkpoint, Note, SignerKey, VerifierKey};
use mykey_core::text::Memo;
use mykey_core::MykeyId;
use mykey_server::services::identity::card::{CardTrust, UnknownRevocation};
use proptest::prelude::*;

/// Generated inputs per parser and run (about a second each in a debug build).
const CASES: u32 = 2_000;

fn config() -> ProptestConfig {
    ProptestConfig { cases: CASES, ..ProptestConfig::default() }
}

/// Text that looks like the format in places: printable, control and non-ASCII characters,
/// the separators the formats use.
fn texty() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            any::<char>().prop_map(String::from),
            Just("\n".to_owned()),
            Just(" ".to_owned()),
            Just("\u{2014} ".to_owned()),
            Just("+".to_owned()),
            Just("-".to_owned()),
            "[A-Z0-9]{1,8}",
            "[A-Za-z0-9+/=]{4,44}",
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn coupon_codes_mykey_ids_and_memos(s in texty()) {
        let _ = CouponCode::parse(&s);
        let _ = MykeyId::parse(&s);
        let _ = Memo::parse(s.clone());
    }

    #[test]
    fn signed_notes_checkpoints_and_keys(s in texty()) {
        let _ = Note::parse(&s);
        let _ = Checkpoint::parse(&s);
        let _ = VerifierKey::parse(&s);
        let _ = SignerKey::parse(&s);
    }

    #[test]
    fn card_responses_and_reader_frames(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = apdu::Response::parse(&bytes);
        let _ = port100::decode(&bytes);
    }

    #[test]
    fn log_leaves_and_journal_rows(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = mykey_server::ledger::leaf::parse_leaf(&bytes);
        let _ = mykey_server::store::journal::Batch::decode(&bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES / 4, ..ProptestConfig::default() })]

    /// DER certificates and CRLs: as trust anchors, as revocation lists, and as the certificate
    /// of a login token checked against a real CA.
    #[test]
    fn certificates_and_revocation_lists(der in prop::collection::vec(any::<u8>(), 0..700)) {
        let origin = "https://mykey.example";
        let _ = CardTrust::new(std::slice::from_ref(&der), &[], UnknownRevocation::Deny, origin);
        let ca = ca();
        let _ = CardTrust::new(&[ca.certificate().to_vec()], std::slice::from_ref(&der), UnknownRevocation::Deny, origin);
        let trust = CardTrust::new(&[ca.certificate().to_vec()], &[], UnknownRevocation::Allow, origin).unwrap();
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        for algorithm in [TokenAlgorithm::RS256, TokenAlgorithm::ES256] {
            let token = AuthToken {
                format: AUTH_TOKEN_FORMAT.to_owned(),
                algorithm,
                certificate: b64.encode(&der),
                signature: b64.encode(&der[..der.len().min(256)]),
            };
            prop_assert!(trust.verify(&token, "nonce", &mykey_core::identity::SigningContext::Web, SystemTime::now()).is_err());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES / 4, ..ProptestConfig::default() })]

    /// A real certificate with bytes changed and cut: deep into the DER parser, where random
    /// bytes rarely reach.
    #[test]
    fn damaged_certificates(changes in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
                            cut in any::<prop::sample::Index>()) {
        let mut der = ca().certificate().to_vec();
        for (at, byte) in changes {
            let i = at.index(der.len());
            der[i] = byte;
        }
        der.truncate(cut.index(der.len() + 1).max(1));
        let origin = "https://mykey.example";
        let _ = CardTrust::new(&[der.clone()], &[], UnknownRevocation::Deny, origin);
        let _ = CardTrust::new(&[ca().certificate().to_vec()], &[der], UnknownRevocation::Deny, origin);
    }
}

/// One demo CA for every case (making a key per case would dominate the run).
fn ca() -> &'static mykey_virtual_card::DemoCa {
    static CA: std::sync::OnceLock<mykey_virtual_card::DemoCa> = std::sync::OnceLock::new();
    CA.get_or_init(|| {
        mykey_virtual_card::DemoCa::generate(&mut rand::rngs::OsRng, SystemTime::now() - Duration::from_secs(60))
            .unwrap()
    })
}
