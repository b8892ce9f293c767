//! Store checkout: sessions a store's server creates, the resident confirms in the embedded
//! widget, and the store captures and refunds, and the events its server receives
//! (`docs/checkout.md`). The store's origins, keys and webhook are the embedding's.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::text::{Reference, Text};

/// The longest line item name, in characters.
pub const LINE_ITEM_NAME_MAX: usize = 120;
/// A line item's name, shown in the widget.
pub type LineItemName = Text<LINE_ITEM_NAME_MAX>;
/// At most this many line items per session.
pub const LINE_ITEMS_MAX: usize = 50;
/// At most this many metadata entries per session.
pub const METADATA_ENTRIES_MAX: usize = 20;
/// The longest metadata key, in characters.
pub const METADATA_KEY_MAX: usize = 40;
/// The longest metadata value, in characters.
pub const METADATA_VALUE_MAX: usize = 500;

api_enum! {
    /// When the points move to the store.
    pub enum CaptureMethod {
        /// At the resident's confirmation.
        Automatic,
        /// The points are held at confirmation; the store captures them (on shipping) before
        /// the hold expires, or cancels.
        Manual,
    }
}

api_enum! {
    /// Where a checkout session stands. `open` leaves at most once.
    pub enum CheckoutState {
        /// Waiting for the resident.
        Open,
        /// Confirmed with manual capture: the points are held for the store.
        Authorized,
        /// The points moved to the store (refunds may follow).
        Completed,
        /// The store cancelled it (an authorised hold is released).
        Cancelled,
        /// Not confirmed in time, or an authorised hold ran out before capture.
        Expired,
    }
}

impl CheckoutState {
    /// The name used in SQL and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckoutState::Open => "open",
            CheckoutState::Authorized => "authorized",
            CheckoutState::Completed => "completed",
            CheckoutState::Cancelled => "cancelled",
            CheckoutState::Expired => "expired",
        }
    }

    /// Parses the SQL and JSON name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            CheckoutState::Open,
            CheckoutState::Authorized,
            CheckoutState::Completed,
            CheckoutState::Cancelled,
            CheckoutState::Expired,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

api_type! {
    /// One line of the order, for display in the widget.
    pub struct LineItem {
        /// What it is.
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        pub name: LineItemName,
        /// How many (1 to 999).
        pub quantity: u32,
        /// Yen per piece, whole.
        #[cfg_attr(feature = "openapi", schema(value_type = f64))]
        #[serde(serialize_with = "crate::points::decimal_as_number")]
        pub unit_amount: Decimal,
    }
}

api_type! {
    /// `POST /v1/checkout/sessions`: the store's server opens a checkout for one order. The
    /// amount is fixed here and never changes: a changed cart is a new session.
    pub struct CheckoutSessionRequest {
        /// The store's idempotency id: the same id and body give the same session.
        pub id: Uuid,
        /// The shop (the store) the points go to.
        pub shop: i64,
        /// The order's total in yen; points pay 1 yen each.
        #[cfg_attr(feature = "openapi", schema(value_type = f64))]
        pub amount: Decimal,
        /// The store's order number.
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        pub order_reference: Reference,
        /// The order's lines; when given, they add up to `amount`.
        #[serde(default)]
        pub line_items: Vec<LineItem>,
        /// May points pay part of the order, the rest paid by other means the store handles?
        #[serde(default)]
        pub partial_points: bool,
        /// When the points move (default automatic).
        #[serde(default)]
        pub capture: Option<CaptureMethod>,
        /// Where the widget sends the resident afterwards: a URL on one of the store's
        /// registered origins.
        #[serde(default)]
        pub return_url: Option<String>,
        /// The store's own keys and values, returned with the session and in events.
        #[serde(default)]
        pub metadata: BTreeMap<String, String>,
        /// Seconds until an unconfirmed session expires (default and bounds:
        /// `mykey_core::rules`).
        #[serde(default)]
        pub expires_in_seconds: Option<u32>,
        /// Manual capture: seconds the confirmed points stay held (default and bounds:
        /// `mykey_core::rules`).
        #[serde(default)]
        pub hold_seconds: Option<u32>,
    }
}

api_type! {
    /// A checkout session as the store's server reads it.
    pub struct CheckoutSession {
        /// The session's id (also in the client secret).
        pub id: Uuid,
        /// The store.
        pub shop: i64,
        /// Where it stands.
        pub state: CheckoutState,
        /// The order's total in yen.
        pub amount: i64,
        /// Points the resident used (0 until confirmed).
        pub points: i64,
        /// What the store still collects by other means: `amount - points`.
        pub amount_due: i64,
        /// Points moved to the store so far.
        pub captured: i64,
        /// Points refunded so far.
        pub refunded: i64,
        /// The store's order number.
        pub order_reference: String,
        /// The order's lines.
        pub line_items: Vec<LineItem>,
        /// Whether points may pay part.
        pub partial_points: bool,
        /// When the points move.
        pub capture: CaptureMethod,
        /// Where the widget sends the resident afterwards.
        pub return_url: Option<String>,
        /// The store's keys and values.
        pub metadata: BTreeMap<String, String>,
        /// When it was opened.
        pub created_at: DateTime<Utc>,
        /// An open session expires then; an authorised one's hold expires then.
        pub expires_at: DateTime<Utc>,
        /// When the resident confirmed.
        pub confirmed_at: Option<DateTime<Utc>>,
    }
}

api_type! {
    /// The answer to `POST /v1/checkout/sessions`: the session and, once, its client secret,
    /// which the store's page passes to the widget.
    pub struct CheckoutSessionCreated {
        /// The session.
        pub session: CheckoutSession,
        /// `<session id>_secret_<64 hex>`: lets the widget show and confirm this session only.
        pub client_secret: String,
    }
}

api_type! {
    /// What the widget reads with the client secret.
    pub struct CheckoutView {
        /// The session's id.
        pub id: Uuid,
        /// The store's name.
        pub shop_name: String,
        /// Whose points the store takes.
        pub municipality: i64,
        /// Where it stands.
        pub state: CheckoutState,
        /// The order's total in yen.
        pub amount: i64,
        /// Points used (0 until confirmed).
        pub points: i64,
        /// The order's lines.
        pub line_items: Vec<LineItem>,
        /// Whether points may pay part.
        pub partial_points: bool,
        /// When it expires.
        pub expires_at: DateTime<Utc>,
        /// Where to send the resident afterwards.
        pub return_url: Option<String>,
        /// The store's origins: the only ones the widget talks to.
        pub origins: Vec<String>,
    }
}

api_type! {
    /// Points the resident may use at this store: one spending account.
    pub struct UsablePoints {
        /// The event programme, or none for the municipality's points.
        pub event: Option<i64>,
        /// What to call them.
        pub name: String,
        /// Points available now.
        pub available: i64,
    }
}

api_type! {
    /// The widget's sign-in answer: a grant to confirm this session only, and the points usable.
    pub struct CheckoutSignedIn {
        /// Send it with the confirmation; it works for this session, for a short while.
        pub grant: String,
        /// The resident's MyKey ID, to show who is paying.
        pub mykey_id: String,
        /// The points usable at this store.
        pub usable: Vec<UsablePoints>,
    }
}

api_type! {
    /// The resident confirms: use these points for this session.
    pub struct CheckoutConfirmation {
        /// The session's client secret.
        pub client_secret: String,
        /// The sign-in grant.
        pub grant: String,
        /// Points to use: the whole amount, or less when the session allows part.
        #[cfg_attr(feature = "openapi", schema(value_type = f64))]
        pub points: Decimal,
        /// Use event points of this programme instead of the municipality's.
        #[serde(default)]
        pub event: Option<i64>,
    }
}

api_type! {
    /// Capture an authorised session (manual capture): all, or fewer points.
    pub struct CheckoutCapture {
        /// Points to capture; all that were held when absent.
        #[serde(default)]
        #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
        pub points: Option<Decimal>,
    }
}

api_type! {
    /// `POST /v1/checkout/sessions/{id}/refunds`.
    pub struct RefundRequest {
        /// The store's idempotency id for this refund.
        pub id: Uuid,
        /// Points to give back: at most what was captured and not yet refunded.
        #[cfg_attr(feature = "openapi", schema(value_type = f64))]
        pub points: Decimal,
    }
}

api_type! {
    /// A refund made.
    pub struct Refund {
        /// The store's id for it.
        pub id: Uuid,
        /// The session.
        pub session: Uuid,
        /// Points given back.
        pub points: i64,
        /// When.
        pub created_at: DateTime<Utc>,
        /// The session afterwards.
        pub refunded_total: i64,
    }
}

api_enum! {
    /// What happened to a session.
    pub enum CheckoutEventType {
        /// The resident confirmed and the points moved (automatic capture).
        #[serde(rename = "checkout.session.completed")]
        Completed,
        /// The resident confirmed and the points are held (manual capture).
        #[serde(rename = "checkout.session.authorized")]
        Authorized,
        /// The store captured held points.
        #[serde(rename = "checkout.session.captured")]
        Captured,
        /// Points were refunded.
        #[serde(rename = "checkout.session.refunded")]
        Refunded,
        /// The session or its hold expired.
        #[serde(rename = "checkout.session.expired")]
        Expired,
        /// The store cancelled it.
        #[serde(rename = "checkout.session.cancelled")]
        Cancelled,
        /// The resident tried to confirm and the points could not move (the session stays open).
        #[serde(rename = "checkout.session.failed")]
        Failed,
    }
}

impl CheckoutEventType {
    /// The name used in SQL and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckoutEventType::Completed => "checkout.session.completed",
            CheckoutEventType::Authorized => "checkout.session.authorized",
            CheckoutEventType::Captured => "checkout.session.captured",
            CheckoutEventType::Refunded => "checkout.session.refunded",
            CheckoutEventType::Expired => "checkout.session.expired",
            CheckoutEventType::Cancelled => "checkout.session.cancelled",
            CheckoutEventType::Failed => "checkout.session.failed",
        }
    }
}

api_type! {
    /// The body of a webhook: an event with the session as it was then.
    pub struct CheckoutEvent {
        /// The event's id: a store applies each id once.
        pub id: Uuid,
        /// What happened.
        #[serde(rename = "type")]
        pub kind: CheckoutEventType,
        /// When.
        pub created_at: DateTime<Utc>,
        /// The session after it happened.
        pub session: CheckoutSession,
        /// Why it failed (`failed` only): the problem's slug.
        #[serde(default)]
        pub failure: Option<String>,
    }
}
