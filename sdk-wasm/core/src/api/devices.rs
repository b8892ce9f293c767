//! Counter terminals as enrolled devices: the shop makes a one-time pairing code, the terminal
//! page makes a P-256 key it cannot export and enrols its public key with the code; from then on
//! it signs every request (see [`crate::device`]). Devices are listed and revoked by the shop.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::text::Text;

/// The longest device name, in characters.
pub const DEVICE_NAME_MAX: usize = 64;

/// A device's name as the shop's staff will recognise it ("レジ1").
pub type DeviceName = Text<DEVICE_NAME_MAX>;

api_type! {
    /// `POST /v1/shops/{shop}/pairing-codes`: a code that enrols one device of this shop, once,
    /// within minutes. Shown once; only its hash is kept.
    pub struct PairingCode {
        /// The code, typed on the terminal (`XXXX-XXXX`).
        pub code: String,
        /// The shop the device will belong to.
        pub shop: i64,
        /// When the code stops working.
        pub expires_at: DateTime<Utc>,
    }
}

api_type! {
    /// `POST /v1/devices`: a terminal enrols with a pairing code and the public half of a key it
    /// made and cannot export.
    pub struct EnrolmentRequest {
        /// The pairing code.
        pub code: String,
        /// What staff call the terminal.
        pub name: DeviceName,
        /// The P-256 public key: the uncompressed point (65 bytes, WebCrypto's `raw` export),
        /// base64url without padding.
        pub public_key: String,
    }
}

api_type! {
    /// An enrolled device, as its shop sees it.
    pub struct Device {
        /// Its id: the `keyid` of its signatures.
        pub id: Uuid,
        /// Its shop.
        pub shop: i64,
        /// What staff call it.
        pub name: DeviceName,
        /// When it was enrolled.
        pub enrolled_at: DateTime<Utc>,
        /// When it last made a signed request (to the minute).
        pub last_seen_at: Option<DateTime<Utc>>,
        /// When it was revoked; a revoked device's signatures are refused.
        pub revoked_at: Option<DateTime<Utc>>,
    }
}
