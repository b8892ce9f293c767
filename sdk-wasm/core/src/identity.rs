//! Card login and MyKey IDs as the API speaks them (docs/domain.md "MyKey ID", docs/card.md
//! "Authentication token"), and the typed rules the browser checks as the resident types:
//! password and e-mail. The server checks the same rules again with the same code.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::api::{api_enum, api_type};
use crate::MykeyId;

/// The token format this code writes and the server accepts.
pub const AUTH_TOKEN_FORMAT: &str = "mykey-auth-token:1";
/// Shortest login password.
pub const PASSWORD_MIN: usize = 6;
/// Longest login password.
pub const PASSWORD_MAX: usize = 16;
/// Auto-generated candidates per registration; the last one becomes the MyKey ID.
pub const MAX_GENERATIONS: u8 = 3;
/// Failed duplicate checks after which a candidate is generated instead.
pub const MAX_FAILED_CHECKS: u8 = 3;

/// The signature algorithm of a login token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum TokenAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256: today's cards (RSA-2048).
    RS256,
    /// ECDSA over P-256 with SHA-256, signature as `r || s` (64 bytes, as in JWS): accepted
    /// for the next card generation.
    ES256,
}

api_type! {
    /// What a card bridge returns after `authenticate(nonce, pin)`: the card signed
    /// `token_hash(origin, nonce)` (`card::jpki::token_hash`) with its authentication key.
    #[derive(Eq)]
    pub struct AuthToken {
        /// [`AUTH_TOKEN_FORMAT`].
        pub format: String,
        /// How `signature` was made.
        pub algorithm: TokenAlgorithm,
        /// The authentication certificate, DER in standard base64.
        pub certificate: String,
        /// The signature, standard base64.
        pub signature: String,
    }
}

impl AuthToken {
    /// The token of an RS256 card signature (`card::jpki::authenticate`) and the
    /// certificate it verifies with.
    pub fn rs256(certificate: &[u8], signature: &[u8]) -> AuthToken {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        AuthToken {
            format: AUTH_TOKEN_FORMAT.to_owned(),
            algorithm: TokenAlgorithm::RS256,
            certificate: b64.encode(certificate),
            signature: b64.encode(signature),
        }
    }
}

api_type! {
    /// `POST /v1/me/card`: the renewed card's token over a nonce, and the password typed again.
    pub struct CardRebind {
        /// The nonce from `POST /v1/auth/nonce`.
        pub nonce: String,
        /// The renewed card's token.
        pub token: AuthToken,
        /// The MyKey ID's password.
        pub password: String,
    }
}

api_type! {
    /// `POST /v1/auth/card`: the nonce and the token signed for it.
    pub struct CardLoginRequest {
        /// The nonce from `POST /v1/auth/nonce`.
        pub nonce: String,
        /// The bridge's token.
        pub token: AuthToken,
    }
}

api_enum! {
    /// What a card signature is for. Each challenge is issued for one purpose, its text begins
    /// with it (so the card signs the purpose too), and only that purpose's endpoint takes it:
    /// a challenge fetched for a facility look-up cannot open a web session.
    pub enum CardPurpose {
        /// Logging in to point-navi, or starting a MyKey ID's registration (`POST /v1/auth/card`).
        Login,
        /// Binding a renewed card to the MyKey ID (`POST /v1/me/card`).
        Rebind,
        /// Linking the MyKey ID to a facility's patron number at its counter.
        PatronLink,
        /// Looking up the patron number at a facility's counter.
        PatronLookup,
        /// Signing in to pay in a store's checkout widget.
        Checkout,
        /// Signing in to redeem a partner's coupon in its widget.
        Coupon,
        /// Signing in to prove a partner's or store's ID link in its widget.
        ServiceLink,
        /// Paying or authorising points at a shop's counter terminal, or taking a payment
        /// back there: the challenge's text names the terms (`api::CounterTerms`,
        /// `api::refund_terms`), so the card signs what the resident agreed to.
        Payment,
        /// Showing, on a shop's counter terminal, the points usable at that shop: the
        /// challenge's text names the shop (`api::balance_terms`).
        CounterBalance,
    }
}

/// Where a card signature is made: the card signs it with the origin (Web eID's design), so a
/// signature made at a counter or in a widget is refused at the web login and each other way
/// round, and a counter's names its shop and device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SigningContext {
    /// Point-navi: logging in, registering, binding a renewed card. The origin alone, as Web eID
    /// signs it.
    #[default]
    Web,
    /// A store's or partner's widget (checkout, coupon, service link).
    Widget,
    /// A shop's counter terminal: its shop and enrolled device.
    Counter {
        /// The shop.
        shop: i64,
        /// The device (`api::Device::id`).
        device: uuid::Uuid,
    },
}

impl SigningContext {
    /// The text the card signs in the origin's place: the origin, followed for a widget or a
    /// counter by what names it.
    pub fn signed_origin(&self, origin: &str) -> String {
        match self {
            SigningContext::Web => origin.to_owned(),
            SigningContext::Widget => format!("{origin} widget"),
            SigningContext::Counter { shop, device } => format!("{origin} counter shop={shop} device={device}"),
        }
    }

    /// Its kind's word (its serde tag).
    pub fn word(&self) -> &'static str {
        match self {
            SigningContext::Web => "web",
            SigningContext::Widget => "widget",
            SigningContext::Counter { .. } => "counter",
        }
    }
}

impl CardPurpose {
    /// The kind of [`SigningContext`] a signature for this purpose is made in.
    pub fn context_word(self) -> &'static str {
        match self {
            CardPurpose::Login | CardPurpose::Rebind => "web",
            CardPurpose::Checkout | CardPurpose::Coupon | CardPurpose::ServiceLink => "widget",
            CardPurpose::PatronLink
            | CardPurpose::PatronLookup
            | CardPurpose::Payment
            | CardPurpose::CounterBalance => "counter",
        }
    }

    /// The word a challenge's text starts with (its serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            CardPurpose::Login => "login",
            CardPurpose::Rebind => "rebind",
            CardPurpose::PatronLink => "patron_link",
            CardPurpose::PatronLookup => "patron_lookup",
            CardPurpose::Checkout => "checkout",
            CardPurpose::Coupon => "coupon",
            CardPurpose::ServiceLink => "service_link",
            CardPurpose::Payment => "payment",
            CardPurpose::CounterBalance => "counter_balance",
        }
    }
}

api_type! {
    /// `POST /v1/auth/nonce`: what the card will sign for.
    pub struct NonceRequest {
        /// The one endpoint the challenge will be good for.
        pub purpose: CardPurpose,
    }
}

api_type! {
    /// A card challenge: sign it within five minutes, once, for its purpose only.
    pub struct NonceIssued {
        /// `<purpose>:`, for a payment the terms and `:`, then 32 random bytes in standard
        /// base64: sign this text as it is.
        pub nonce: String,
        /// What it is good for (the word its text starts with).
        pub purpose: CardPurpose,
        /// When it stops being accepted.
        pub expires_at: DateTime<Utc>,
    }
}

api_type! {
    /// Where a card's MyKey ID registration stands. The server keeps the counts per card, so
    /// starting again does not reset them.
    pub struct Registration {
        /// The candidate offered, if any.
        pub candidate: Option<MykeyId>,
        /// The candidate is final (the last generation): registration must use it.
        pub candidate_final: bool,
        /// Generations left (of [`MAX_GENERATIONS`]).
        pub generations_left: u8,
        /// Failed duplicate checks so far (a candidate is generated at [`MAX_FAILED_CHECKS`]).
        pub failed_checks: u8,
    }
}

api_type! {
    /// The answer to a card login: the card's live MyKey ID, or where its registration stands.
    pub struct CardLogin {
        /// The MyKey ID bound to the card, when there is one (a session is open).
        pub mykey_id: Option<MykeyId>,
        /// Without a MyKey ID: the registration, which the session may now continue.
        pub registration: Option<Registration>,
    }
}

api_enum! {
    /// A step of the candidate dialogue.
    pub enum CandidateAction {
        /// Generate one (at most [`MAX_GENERATIONS`] times).
        Generate,
        /// Check a typed candidate for duplicates.
        Check,
    }
}

api_type! {
    /// `POST .../candidates`.
    pub struct CandidateRequest {
        /// Generate or check.
        pub action: CandidateAction,
        /// The typed candidate (for `check`).
        #[serde(default)]
        pub candidate: Option<String>,
    }
}

api_type! {
    /// The kinds of notice a resident may ask for by e-mail.
    #[derive(Default, Eq)]
    pub struct Notices {
        /// Points granted (municipal and event points).
        pub points_granted: bool,
        /// Points expired, or expiring within [`crate::rules::EXPIRY_WARNING_DAYS`] days.
        pub points_expired: bool,
        /// Password or settings changed.
        pub settings_changed: bool,
        /// MyKey ID registered, changed or revoked.
        pub mykey_id_changed: bool,
        /// Every payment (at a shop, a counter, an online store, under a mandate) and refund;
        /// service IDs linked or unlinked; standing mandates granted or revoked.
        #[serde(default)]
        pub payments: bool,
    }
}

api_type! {
    /// `POST /v1/mykey-ids`: the registration form after the card login.
    pub struct RegistrationRequest {
        /// The candidate the registration offered or the resident's checked own choice.
        pub candidate: String,
        /// Login password for my page.
        pub password: String,
        /// The same, typed again.
        pub password_confirmation: String,
        /// Optional e-mail for notices.
        #[serde(default)]
        pub email: Option<String>,
        /// The same, typed again.
        #[serde(default)]
        pub email_confirmation: Option<String>,
        /// Which notices to send.
        #[serde(default)]
        pub notices: Notices,
        /// Home municipality (required).
        pub home_municipality: i64,
    }
}

api_type! {
    /// A MyKey ID as its owner sees it on my page.
    pub struct Profile {
        /// The MyKey ID.
        pub mykey_id: MykeyId,
        /// The resident behind it (ledger id).
        pub resident: i64,
        /// Home municipality.
        pub home_municipality: i64,
        /// E-mail for notices.
        pub email: Option<String>,
        /// Notices chosen.
        pub notices: Notices,
        /// When the bound card's certificate expires (re-bind a renewed card before).
        pub card_not_after: DateTime<Utc>,
        /// Whether the bound card's certificate still holds: password login keeps working
        /// when it does not, and my page asks for the renewed card.
        #[serde(default)]
        pub card_state: CardState,
        /// Registered at.
        pub created_at: DateTime<Utc>,
    }
}

/// Where the bound card's certificate stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CardState {
    /// Valid, and not on a revocation list the server holds.
    #[default]
    Valid,
    /// Past its expiry.
    Expired,
    /// On a revocation list (the card was lost, or renewed).
    Revoked,
}

api_type! {
    /// `POST /v1/auth/password`.
    pub struct PasswordLogin {
        /// The MyKey ID.
        pub mykey_id: String,
        /// Its password.
        pub password: String,
    }
}

api_type! {
    /// `POST /v1/me/password`.
    pub struct PasswordChange {
        /// The password now.
        pub current_password: String,
        /// The new one.
        pub password: String,
        /// The new one again.
        pub password_confirmation: String,
    }
}

api_type! {
    /// `PUT /v1/me/settings`: e-mail and notices.
    pub struct SettingsChange {
        /// The current password, to confirm (a session left open must not redirect notices).
        pub password: String,
        /// E-mail, or none.
        #[serde(default)]
        pub email: Option<String>,
        /// The same again.
        #[serde(default)]
        pub email_confirmation: Option<String>,
        /// Notices.
        pub notices: Notices,
    }
}

api_type! {
    /// `POST /v1/me/mykey-id`: change the MyKey ID to a candidate from `/v1/me/candidates`.
    pub struct MykeyIdChange {
        /// The new ID.
        pub candidate: String,
        /// The password, to confirm.
        pub password: String,
    }
}

api_type! {
    /// `POST /v1/me/revoke`.
    pub struct Revocation {
        /// The password, to confirm.
        pub password: String,
    }
}

api_type! {
    /// One entry of a MyKey ID's usage history.
    pub struct UsageEvent {
        /// The MyKey ID at the time.
        pub mykey_id: String,
        /// `registered`, `login_card`, `login_password`, `settings_changed`, `password_changed`,
        /// `changed_away`, `changed_to`, `revoked`, `card_rebound`, `service_linked` or
        /// `service_unlinked`.
        pub kind: String,
        /// When.
        pub at: DateTime<Utc>,
    }
}

api_type! {
    /// A service ID linked to a MyKey ID: a partner's member number (ID linkage, points come
    /// in) or an online service's member ID (points are spent there). One of `partner` and
    /// `online_service` is set. Only a proven link (confirmed through the partner's link
    /// session) carries points; an unproven one was typed on my page before links were proven.
    pub struct ServiceLink {
        /// The link.
        pub id: uuid::Uuid,
        /// The partner, for ID linkage.
        pub partner: Option<i64>,
        /// The online shop or crowdfunding site.
        pub online_service: Option<i64>,
        /// The partner's or the online service's member ID for this resident.
        pub service_id: String,
        /// Proven by the partner's link session (else typed on my page earlier: no points move).
        pub proven: bool,
        /// Linked at.
        pub created_at: DateTime<Utc>,
    }
}

/// What a service link names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkTarget {
    /// A partner using ID linkage.
    Partner(i64),
    /// An online shop or crowdfunding site.
    OnlineService(i64),
}

impl LinkTarget {
    /// The partner or online service named, when exactly one is.
    pub fn of(partner: Option<i64>, online_service: Option<i64>) -> Option<LinkTarget> {
        match (partner, online_service) {
            (Some(p), None) => Some(LinkTarget::Partner(p)),
            (None, Some(o)) => Some(LinkTarget::OnlineService(o)),
            _ => None,
        }
    }
}

api_type! {
    /// `POST /v1/partners/{partner}/linked-conversions`: the partner converts points of a
    /// member who linked their service ID.
    pub struct LinkedConversionRequest {
        /// The partner's own reference: the same reference gives the same answer again.
        pub reference: crate::text::Reference,
        /// The member's service ID.
        pub service_id: String,
        /// The partner's points or miles converted.
        #[cfg_attr(feature = "openapi", schema(value_type = f64))]
        pub partner_points: rust_decimal::Decimal,
        /// Municipal points per partner point; the product must be whole.
        #[cfg_attr(feature = "openapi", schema(value_type = f64))]
        pub rate: rust_decimal::Decimal,
    }
}

api_type! {
    /// `PUT /v1/facilities/{shop}/service`: the card service a facility offers (one card).
    pub struct FacilityServiceRequest {
        /// As residents know it, e.g. 前橋市立図書館 利用者カード.
        pub name: FacilityServiceName,
        /// `library`, `museum`, `gym`, `clinic` or `other`.
        pub kind: String,
    }
}

api_type! {
    /// A facility's card service.
    pub struct FacilityService {
        /// The facility (its shop id).
        pub facility: i64,
        /// As residents know it.
        pub name: String,
        /// `library`, `museum`, `gym`, `clinic` or `other`.
        pub kind: String,
    }
}

/// The longest name of a facility's card service, in characters.
pub const FACILITY_SERVICE_NAME_MAX: usize = 100;

/// The name of a facility's card service, as residents know it.
pub type FacilityServiceName = crate::text::Text<FACILITY_SERVICE_NAME_MAX>;

/// The kinds of facility service.
pub const FACILITY_KINDS: [&str; 5] = ["library", "museum", "gym", "clinic", "other"];

api_type! {
    /// `POST /v1/facilities/{shop}/patrons`: at the facility's counter terminal, the resident's
    /// card signs a fresh nonce (card and PIN: the resident is present) and staff type the
    /// facility's own patron number.
    pub struct PatronLinkRequest {
        /// The nonce from `POST /v1/auth/nonce`.
        pub nonce: String,
        /// The card's token for it.
        pub token: AuthToken,
        /// The facility's own number for this resident (1 to 64 visible ASCII characters).
        pub patron_number: String,
    }
}

api_type! {
    /// A MyKey ID linked to a facility's patron number.
    pub struct PatronLink {
        /// The link.
        pub id: uuid::Uuid,
        /// The facility.
        pub facility: i64,
        /// The facility's service, as residents know it.
        pub service: String,
        /// The facility's number for the resident.
        pub patron_number: String,
        /// Linked at.
        pub created_at: DateTime<Utc>,
    }
}

api_type! {
    /// What a card read at a facility returns: that facility's patron number, nothing else.
    pub struct PatronLookup {
        /// The facility's number for the card's holder.
        pub patron_number: String,
    }
}

/// Checks a service ID's shape: 1 to 64 visible ASCII characters.
pub fn check_service_id(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.chars().all(|c| c.is_ascii_graphic())
}

/// Why a password breaks the rules.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// Too short or too long.
    #[error("a password has {PASSWORD_MIN} to {PASSWORD_MAX} characters, this one has {0}")]
    Length(usize),
    /// Not a half-width letter, digit or symbol.
    #[error("a password uses only half-width letters, digits and symbols, not {0:?}")]
    Character(char),
}

/// Checks the password rules (docs/domain.md): 6 to 16 half-width letters, digits and symbols.
pub fn check_password(password: &str) -> Result<(), PasswordError> {
    if let Some(c) = password.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(PasswordError::Character(c));
    }
    let n = password.len();
    if !(PASSWORD_MIN..=PASSWORD_MAX).contains(&n) {
        return Err(PasswordError::Length(n));
    }
    Ok(())
}

/// Checks an e-mail address's shape (one `@`, a dotted domain, no spaces, at most 254
/// characters). Whether it receives mail is for the first notice to tell.
pub fn check_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else { return false };
    email.len() <= 254
        && !local.is_empty()
        && local.len() <= 64
        && email.chars().all(|c| c.is_ascii_graphic() || (!c.is_ascii() && !c.is_whitespace() && !c.is_control()))
        && !domain.contains('@')
        && domain.split('.').count() >= 2
        && domain.split('.').all(|label| !label.is_empty() && !label.starts_with('-') && !label.ends_with('-'))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn each_context_signs_its_own_text_and_each_purpose_has_one_context() {
        let device = uuid::Uuid::nil();
        let origin = "https://mykey.example";
        let texts = [
            SigningContext::Web.signed_origin(origin),
            SigningContext::Widget.signed_origin(origin),
            SigningContext::Counter { shop: 3, device }.signed_origin(origin),
            SigningContext::Counter { shop: 4, device }.signed_origin(origin),
        ];
        assert_eq!(texts[0], origin, "the web signs what Web eID signs");
        assert_eq!(texts[2], format!("{origin} counter shop=3 device={device}"));
        for (i, a) in texts.iter().enumerate() {
            assert!(texts.iter().skip(i + 1).all(|b| a != b), "{a} is one context's only");
        }
        let json = serde_json::json!({"kind": "counter", "shop": 3, "device": device});
        assert_eq!(
            serde_json::from_value::<SigningContext>(json).unwrap(),
            SigningContext::Counter { shop: 3, device }
        );
        assert!(serde_json::from_value::<SigningContext>(serde_json::json!({"kind": "kiosk"})).is_err());
        use CardPurpose::*;
        for (p, word) in [(Login, "web"), (Checkout, "widget"), (Payment, "counter"), (PatronLookup, "counter")] {
            assert_eq!(p.context_word(), word);
        }
        assert_eq!(SigningContext::Counter { shop: 3, device }.word(), Payment.context_word());
    }

    #[test]
    fn a_challenge_names_its_purpose_by_its_serde_name() {
        use CardPurpose::*;
        for p in [Login, Rebind, PatronLink, PatronLookup, Checkout, Coupon, ServiceLink, Payment] {
            assert_eq!(serde_json::to_value(p).unwrap(), serde_json::json!(p.as_str()));
            assert_eq!(serde_json::from_value::<CardPurpose>(serde_json::json!(p.as_str())).unwrap(), p);
        }
    }

    #[test]
    fn passwords_follow_the_rules() {
        assert_eq!(check_password("abc12!"), Ok(()));
        assert_eq!(check_password("A1!A1!A1!A1!A1!A"), Ok(()));
        assert_eq!(check_password("abc12"), Err(PasswordError::Length(5)));
        assert_eq!(check_password("abcdefghijklmnopq"), Err(PasswordError::Length(17)));
        assert_eq!(check_password("abc 123"), Err(PasswordError::Character(' ')));
        assert_eq!(check_password("ａbc1234"), Err(PasswordError::Character('ａ')));
        assert_eq!(check_password("パスワード123"), Err(PasswordError::Character('パ')));
    }

    #[test]
    fn emails_have_a_plausible_shape() {
        assert!(check_email("hanako@example.jp"));
        assert!(check_email("a.b+c@mail.city.maebashi.lg.jp"));
        for bad in [
            "",
            "hanako",
            "@example.jp",
            "hanako@",
            "hanako@localhost",
            "ha nako@example.jp",
            "a@b@c.jp",
            "a@.jp",
            "a\u{85}b@example.jp",
            "a\u{9b}b@example.jp",
            "a@example.jp\u{0}",
        ] {
            assert!(!check_email(bad), "{bad}");
        }
    }

    #[test]
    fn tokens_round_trip_with_their_algorithm_names() {
        let t = AuthToken {
            format: AUTH_TOKEN_FORMAT.into(),
            algorithm: TokenAlgorithm::RS256,
            certificate: "MA==".into(),
            signature: "AA==".into(),
        };
        let json = serde_json::to_string(&t).unwrap();
        assert!(json.contains("\"algorithm\":\"RS256\""));
        assert_eq!(serde_json::from_str::<AuthToken>(&json).unwrap(), t);
    }
}
