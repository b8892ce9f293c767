//! Embedding (docs/checkout.md, docs/partners.md): a store or a partner registers the origins
//! whose pages may frame its widgets and gets a publishable key; its server receives signed
//! events (checkout sessions, coupon redemptions, member links) and can list and resend them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{CheckoutEvent, PartnerEvent};

/// The longest URL (return URL, webhook URL, origin), in characters.
pub const URL_MAX: usize = 2048;
/// At most this many registered origins per store or partner.
pub const ORIGINS_MAX: usize = 10;

api_type! {
    /// `PUT /v1/shops/{shop}/checkout` and `/v1/partners/{partner}/embedding`: where the
    /// store's or partner's pages and server live.
    pub struct EmbedSettingsRequest {
        /// The origins whose pages may embed the widget (`https://store.example`; http only on
        /// loopback).
        pub origins: Vec<String>,
        /// Where events are posted (https; http only on loopback); none stops deliveries.
        #[serde(default)]
        pub webhook_url: Option<String>,
    }
}

api_type! {
    /// A store's or partner's embedding: who may frame its widgets, where its events go.
    pub struct EmbedSettings {
        /// The publishable key: safe in a page, works only from `origins`.
        pub publishable_key: String,
        /// Registered origins.
        pub origins: Vec<String>,
        /// Where events are posted.
        pub webhook_url: Option<String>,
    }
}

api_type! {
    /// A new webhook signing secret (`POST /v1/shops/{shop}/webhook-secrets`,
    /// `/v1/partners/{partner}/webhook-secrets`): shown once. The
    /// previous secret keeps signing too for a while (`mykey_core::rules`), so a receiver can
    /// deploy the new one without missing an event.
    pub struct WebhookSecret {
        /// `whsec_<64 hex>`.
        pub secret: String,
        /// When the secrets before it stop signing.
        pub previous_valid_until: Option<DateTime<Utc>>,
    }
}

/// A webhook's body: a store's checkout event or a partner's event (told apart by `type`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum WebhookEvent {
    /// `checkout.session.*`.
    Checkout(CheckoutEvent),
    /// `coupon.redeemed`, `link.*`.
    Partner(PartnerEvent),
}

api_enum! {
    /// Where an event's delivery stands.
    pub enum DeliveryState {
        /// Waiting for its next try.
        Pending,
        /// The receiving server answered 2xx.
        Delivered,
        /// Tried for the whole retry window without success.
        Failed,
    }
}

api_type! {
    /// An event with its delivery state (`GET /v1/shops/{shop}/events`,
    /// `/v1/partners/{partner}/events`).
    pub struct EventDelivery {
        /// The event, as it is posted.
        pub event: WebhookEvent,
        /// Where its delivery stands.
        pub state: DeliveryState,
        /// Tries so far.
        pub attempts: u32,
        /// The next try, while pending.
        pub next_attempt_at: Option<DateTime<Utc>>,
        /// What the last failed try saw.
        pub last_error: Option<String>,
    }
}
