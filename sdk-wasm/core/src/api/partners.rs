//! Partners and online services on their members' pages (docs/partners.md): proven ID links
//! (the partner's server names its member's service ID in a link session; the resident
//! confirms it in the widget), the coupon redemption widget, a batch's codes with their state,
//! and the events a partner's server receives.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::identity::{AuthToken, PasswordLogin};

api_type! {
    /// `POST /v1/link-sessions` (the partner's or the online store's server, with its secret
    /// key, for a member signed in there): name exactly one of `partner` and `online_service`.
    pub struct LinkSessionRequest {
        /// Idempotency id: the same id and body give the same session and client secret.
        pub id: Uuid,
        /// The partner (ID linkage).
        #[serde(default)]
        pub partner: Option<i64>,
        /// The online service (a store's key of that service).
        #[serde(default)]
        pub online_service: Option<i64>,
        /// The member's ID there.
        pub service_id: String,
        /// Where the widget sends the resident afterwards (one of the registered origins).
        #[serde(default)]
        pub return_url: Option<String>,
        /// Seconds the session stays open (`mykey_core::rules::LINK_OPEN_SECONDS` if none).
        #[serde(default)]
        pub expires_in_seconds: Option<u32>,
        /// An online store only: the standing mandate it asks for, which the resident sees and
        /// grants with the link. Without one, the link alone lets the store charge nothing.
        #[serde(default)]
        pub mandate: Option<super::MandateTerms>,
    }
}

api_enum! {
    /// Where a link session stands.
    pub enum LinkState {
        /// Waiting for the resident.
        Open,
        /// A resident confirmed: the link is live (until the resident cuts it).
        Linked,
        /// Its creator cancelled it.
        Cancelled,
        /// Nobody confirmed in time.
        Expired,
    }
}

impl LinkState {
    /// The name in SQL and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::Open => "open",
            LinkState::Linked => "linked",
            LinkState::Cancelled => "cancelled",
            LinkState::Expired => "expired",
        }
    }

    /// Parses [`LinkState::as_str`].
    pub fn parse(s: &str) -> Option<LinkState> {
        [LinkState::Open, LinkState::Linked, LinkState::Cancelled, LinkState::Expired]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

api_type! {
    /// A link session as its creator sees it.
    pub struct LinkSession {
        /// The session.
        pub id: Uuid,
        /// Where it stands.
        pub state: LinkState,
        /// The partner, for ID linkage.
        pub partner: Option<i64>,
        /// The online service.
        pub online_service: Option<i64>,
        /// The member's ID.
        pub service_id: String,
        /// The live link made by the confirmation.
        pub link: Option<Uuid>,
        /// Where the widget sends the resident afterwards.
        pub return_url: Option<String>,
        /// Created at.
        pub created_at: DateTime<Utc>,
        /// An open session expires then.
        pub expires_at: DateTime<Utc>,
        /// When a resident confirmed.
        pub confirmed_at: Option<DateTime<Utc>>,
        /// The mandate asked for.
        pub mandate: Option<super::MandateTerms>,
        /// The mandate the resident granted with the link, once confirmed: charge by this id
        /// (`GET /v1/link-sessions/{id}` and the `link.confirmed` event carry it).
        pub mandate_id: Option<Uuid>,
    }
}

api_type! {
    /// A new link session and the client secret its widget opens it with.
    pub struct LinkSessionCreated {
        /// The session.
        pub session: LinkSession,
        /// Hand it to the member's page for `mountLink`; it opens this session only.
        pub client_secret: String,
    }
}

api_type! {
    /// What the link widget shows (`POST /v1/link-sessions/{id}/view`).
    pub struct LinkView {
        /// The session.
        pub id: Uuid,
        /// Where it stands.
        pub state: LinkState,
        /// The partner's or online service's name.
        pub service_name: String,
        /// The member's ID there.
        pub service_id: String,
        /// An open session expires then.
        pub expires_at: DateTime<Utc>,
        /// Where to go afterwards.
        pub return_url: Option<String>,
        /// The opener's registered origins: the only pages the widget talks to.
        pub origins: Vec<String>,
        /// The standing mandate the store asks for, granted with the link.
        pub mandate: Option<super::MandateOffer>,
    }
}

api_type! {
    /// The client secret alone: a session's `view` and `nonce` in a widget.
    pub struct WidgetClient {
        /// The session's client secret.
        pub client_secret: String,
    }
}

api_type! {
    /// How the resident signs in inside a session's widget: exactly one of `password` or `card`.
    pub struct WidgetSignIn {
        /// The session's client secret.
        pub client_secret: String,
        /// MyKey ID and password.
        #[serde(default)]
        pub password: Option<PasswordLogin>,
        /// A card token over a nonce from the session's `nonce`.
        #[serde(default)]
        pub card: Option<WidgetCard>,
    }
}

api_type! {
    /// A card's login token inside a widget.
    pub struct WidgetCard {
        /// The nonce.
        pub nonce: String,
        /// The bridge's token.
        pub token: AuthToken,
    }
}

api_type! {
    /// A widget's sign-in answer: a grant for this session (or this partner's widget) only.
    pub struct WidgetSignedIn {
        /// Send it with the next steps; it works here only, for a short while.
        pub grant: String,
        /// The resident's MyKey ID, to show who is signed in.
        pub mykey_id: String,
    }
}

api_type! {
    /// The resident confirms a link session (or redeems, previews, assigns in the coupon widget).
    pub struct WidgetGrant {
        /// The session's client secret.
        pub client_secret: String,
        /// The sign-in grant.
        pub grant: String,
    }
}

api_type! {
    /// The coupon widget's key alone: `POST /v1/coupon-widget/view` and `/nonce`.
    pub struct CouponWidgetClient {
        /// The partner's publishable key.
        pub publishable_key: String,
    }
}

api_type! {
    /// What the coupon widget shows first (`POST /v1/coupon-widget/view`).
    pub struct CouponWidgetView {
        /// The partner's name.
        pub partner_name: String,
        /// The partner's registered origins: the only pages the widget talks to.
        pub origins: Vec<String>,
    }
}

api_type! {
    /// `POST /v1/coupon-widget/nonce`: a card challenge for one frame of the partner's widget.
    pub struct CouponWidgetNonce {
        /// The partner's publishable key.
        pub publishable_key: String,
        /// The frame's own random id ([`check_widget_instance`]): challenges are limited per
        /// frame and per address, and a card signs for this frame only.
        pub instance: String,
    }
}

/// Whether `s` may name a widget frame: 16 to 64 letters, digits, `-` or `_`.
pub fn check_widget_instance(s: &str) -> bool {
    (16..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

api_type! {
    /// `POST /v1/coupon-widget/sign-in`: exactly one of `password` or `card`.
    pub struct CouponWidgetSignIn {
        /// The partner's publishable key.
        pub publishable_key: String,
        /// The frame's id, as its card challenge named it.
        pub instance: String,
        /// MyKey ID and password.
        #[serde(default)]
        pub password: Option<PasswordLogin>,
        /// A card token over a nonce from `POST /v1/coupon-widget/nonce`.
        #[serde(default)]
        pub card: Option<WidgetCard>,
    }
}

api_type! {
    /// `POST /v1/coupon-widget/preview` and `/redeem`: a code, as typed.
    pub struct CouponWidgetCode {
        /// The partner's publishable key.
        pub publishable_key: String,
        /// The sign-in grant.
        pub grant: String,
        /// The code (separators and look-alikes are fine).
        pub code: String,
    }
}

api_enum! {
    /// A code's state.
    pub enum CouponState {
        /// Not redeemed and not expired.
        Issued,
        /// Redeemed.
        Redeemed,
        /// Not redeemed before it expired.
        Expired,
    }
}

api_type! {
    /// What a code gives, shown before the resident redeems it.
    pub struct CouponPreview {
        /// The code, `XXXX-XXXX-XXXX-XXXX`.
        pub code: String,
        /// The partner's name.
        pub partner_name: String,
        /// Reserved points it gives.
        pub points: i64,
        /// It is refused after this.
        pub expires_at: DateTime<Utc>,
        /// Where it stands.
        pub state: CouponState,
    }
}

api_type! {
    /// A redeemed code: the reserved points and when they move home unless assigned.
    pub struct CouponRedeemed {
        /// The code.
        pub code: String,
        /// Reserved points it gave.
        pub points: i64,
        /// The resident's reserved points now.
        pub reserved: i64,
        /// Unassigned reserved points move to the home municipality's account then.
        pub moves_home_at: DateTime<Utc>,
        /// The municipalities the resident may assign them to.
        pub municipalities: Vec<crate::api::Municipality>,
    }
}

api_type! {
    /// `POST /v1/coupon-widget/assign`: assign reserved points to a municipality now.
    pub struct CouponWidgetAssignment {
        /// The partner's publishable key.
        pub publishable_key: String,
        /// The sign-in grant.
        pub grant: String,
        /// Idempotency id.
        pub id: Uuid,
        /// The municipality.
        pub municipality: i64,
        /// Whole points.
        #[cfg_attr(feature = "openapi", schema(value_type = f64))]
        pub amount: rust_decimal::Decimal,
    }
}

api_type! {
    /// One code of a batch with its state (`GET /v1/partners/{partner}/coupon-batches/{batch}/codes`).
    pub struct BatchCode {
        /// The code.
        pub code: String,
        /// Its redemption URL.
        pub url: String,
        /// Where it stands.
        pub state: CouponState,
        /// When it was redeemed.
        pub redeemed_at: Option<DateTime<Utc>>,
    }
}

api_type! {
    /// `POST /v1/partners/{partner}/coupon-batches/{batch}/mail`: mail one code of the batch.
    pub struct CouponMailRequest {
        /// The code.
        pub code: String,
        /// The member's address.
        pub to: String,
    }
}

api_enum! {
    /// What happened, for a partner's (or an online service's) server.
    pub enum PartnerEventType {
        /// A resident redeemed one of the partner's codes.
        #[serde(rename = "coupon.redeemed")]
        CouponRedeemed,
        /// A resident confirmed a link session: the member's ID is linked.
        #[serde(rename = "link.confirmed")]
        LinkConfirmed,
        /// The resident cut the link.
        #[serde(rename = "link.revoked")]
        LinkRevoked,
        /// The resident revoked a standing mandate (or cut the link it came with).
        #[serde(rename = "mandate.revoked")]
        MandateRevoked,
    }
}

impl PartnerEventType {
    /// The name in SQL and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            PartnerEventType::CouponRedeemed => "coupon.redeemed",
            PartnerEventType::LinkConfirmed => "link.confirmed",
            PartnerEventType::LinkRevoked => "link.revoked",
            PartnerEventType::MandateRevoked => "mandate.revoked",
        }
    }
}

api_type! {
    /// A redemption, in a `coupon.redeemed` event.
    pub struct RedemptionNotice {
        /// The batch.
        pub batch: Uuid,
        /// The code (worthless once redeemed).
        pub code: String,
        /// Reserved points it gave.
        pub points: i64,
        /// When.
        pub redeemed_at: DateTime<Utc>,
    }
}

api_type! {
    /// A link, in a `link.*` event.
    pub struct LinkNotice {
        /// The link.
        pub link: Uuid,
        /// The session that proved it, when one did.
        pub session: Option<Uuid>,
        /// The partner.
        pub partner: Option<i64>,
        /// The online service.
        pub online_service: Option<i64>,
        /// The member's ID.
        pub service_id: String,
        /// The standing mandate granted with the link, in `link.confirmed`: charge by its id.
        #[serde(default)]
        pub mandate: Option<super::Mandate>,
    }
}

api_type! {
    /// The body of a partner's webhook.
    pub struct PartnerEvent {
        /// The event's id: apply each id once.
        pub id: Uuid,
        /// What happened.
        #[serde(rename = "type")]
        pub kind: PartnerEventType,
        /// When.
        pub created_at: DateTime<Utc>,
        /// For `coupon.redeemed`.
        #[serde(default)]
        pub redemption: Option<RedemptionNotice>,
        /// For `link.*`.
        #[serde(default)]
        pub link: Option<LinkNotice>,
        /// For `mandate.revoked`.
        #[serde(default)]
        pub mandate: Option<super::Mandate>,
    }
}
