//! Messages between the page's SDK, the browser extension and the native host
//! `mykey-bridge-host` (native messaging: JSON, each preceded by its 32-bit length in native
//! byte order). The extension adds the page's origin, taken from the browser, before passing a
//! request on; the host signs only for that origin. There is no command that signs a
//! caller's hash.

use serde::{Deserialize, Serialize};

use crate::identity::AuthToken;

/// The native host's registered name.
pub const HOST_NAME: &str = "jp.mykey.bridge";
/// Largest message the host accepts from the browser.
pub const MAX_REQUEST: usize = 64 * 1024;

/// What the page asks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// The readers and whether a card is in each.
    ListReaders,
    /// The user-authentication certificate (DER, base64).
    ReadCertificate {
        /// Reader name; the first with a card when absent.
        #[serde(default)]
        reader: Option<String>,
    },
    /// The auth PIN's tries left, without spending one.
    PinTriesLeft {
        /// Reader name.
        #[serde(default)]
        reader: Option<String>,
    },
    /// Verify the PIN and sign the login digest of (origin in its context, nonce): the token.
    Authenticate {
        /// Reader name.
        #[serde(default)]
        reader: Option<String>,
        /// The server's nonce, as issued.
        nonce: String,
        /// The 4-digit PIN the page asked for.
        pin: String,
        /// Where the signature is made (the web when absent); signed with the origin the
        /// browser reports, which the page cannot choose.
        #[serde(default)]
        context: crate::identity::SigningContext,
    },
}

/// A request as the host receives it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Echoed in the response.
    pub id: u64,
    /// The page's origin, set by the extension from the browser (never from the page).
    pub origin: String,
    /// The command.
    #[serde(flatten)]
    pub command: Command,
}

/// A reader seen by PC/SC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reader {
    /// PC/SC name.
    pub name: String,
    /// A card is in it (or on it).
    pub card: bool,
}

/// Where the PIN stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Tries {
    /// Tries left.
    Left {
        /// 1 to 3.
        left: u8,
    },
    /// Blocked.
    Blocked,
    /// Already verified in this card session.
    Verified,
}

/// A successful answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// `list_readers`.
    Readers(Vec<Reader>),
    /// `read_certificate`: DER, standard base64.
    Certificate(String),
    /// `pin_tries_left`.
    Tries(Tries),
    /// `authenticate`.
    Token(AuthToken),
}

/// Why a command failed, as the page shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is malformed.
    BadRequest,
    /// The origin is not https (or loopback http).
    BadOrigin,
    /// No reader is connected (or PC/SC is not running).
    NoReader,
    /// No card in any reader.
    NoCard,
    /// The card is not a My Number Card.
    NotMyNumberCard,
    /// Wrong PIN; `tries_left` says how many remain.
    WrongPin,
    /// The PIN is blocked.
    PinBlocked,
    /// The PIN is not 4 digits.
    BadPin,
    /// The card left the reader during the command.
    CardRemoved,
    /// The reader or card answered something unexpected.
    Reader,
    /// The user did not allow it in the extension's own window: this site may not use the
    /// card, or the last PIN try was not confirmed (the PIN never reached the card).
    NotAllowed,
}

/// A failure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// What kind.
    pub code: ErrorCode,
    /// For the user, in English (the page localises by `code`).
    pub message: String,
    /// With `wrong_pin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tries_left: Option<u8>,
}

/// The host's response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// The request's id.
    pub id: u64,
    /// Success or failure.
    #[serde(flatten)]
    pub result: Outcome,
}

/// Success or failure, flattened into [`Response`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It worked.
    Ok(Answer),
    /// It did not.
    Error(Failure),
}

/// Origins a bridge signs for: https, and http on loopback for development.
pub fn origin_allowed(origin: &str) -> bool {
    let host_of = |rest: &str| rest.split(['/', '?', '#']).next().unwrap_or("").to_owned();
    if let Some(rest) = origin.strip_prefix("https://") {
        return !host_of(rest).is_empty();
    }
    if let Some(rest) = origin.strip_prefix("http://") {
        let host = host_of(rest);
        let name = host.rsplit_once(':').map_or(host.as_str(), |(h, _)| h);
        return name == "localhost" || name == "127.0.0.1" || name == "[::1]";
    }
    false
}

impl From<&super::jpki::JpkiError> for Failure {
    fn from(e: &super::jpki::JpkiError) -> Self {
        use super::jpki::JpkiError as E;
        let (code, tries_left) = match e {
            E::NotMyNumberCard => (ErrorCode::NotMyNumberCard, None),
            E::WrongPin { tries_left } => (ErrorCode::WrongPin, Some(*tries_left)),
            E::PinBlocked => (ErrorCode::PinBlocked, None),
            E::BadPin => (ErrorCode::BadPin, None),
            E::Transport(super::TransportError::CardRemoved) => (ErrorCode::CardRemoved, None),
            E::MalformedCertificate | E::Status { .. } | E::Transport(_) => (ErrorCode::Reader, None),
        };
        Failure { code, message: e.to_string(), tries_left }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn messages_have_a_stable_json_shape() {
        let r: Request = serde_json::from_str(
            r#"{"id":7,"origin":"https://mykey.example","command":"authenticate","nonce":"bm9uY2U=","pin":"1234"}"#,
        )
        .unwrap();
        assert_eq!(
            r.command,
            Command::Authenticate {
                reader: None,
                nonce: "bm9uY2U=".into(),
                pin: "1234".into(),
                context: crate::identity::SigningContext::Web
            }
        );
        let ok = Response { id: 7, result: Outcome::Ok(Answer::Tries(Tries::Left { left: 2 })) };
        assert_eq!(serde_json::to_string(&ok).unwrap(), r#"{"id":7,"ok":{"tries":{"status":"left","left":2}}}"#);
        let err = Response {
            id: 8,
            result: Outcome::Error(Failure::from(&super::super::jpki::JpkiError::WrongPin { tries_left: 1 })),
        };
        let json = serde_json::to_string(&err).unwrap();
        assert!(json.contains(r#""code":"wrong_pin""#) && json.contains(r#""tries_left":1"#), "{json}");
        assert_eq!(serde_json::from_str::<Response>(&json).unwrap(), err);
    }

    #[test]
    fn only_https_and_loopback_http_origins_are_signed_for() {
        for ok in ["https://mykey.example", "http://localhost:8080", "http://127.0.0.1:41234", "http://[::1]:80"] {
            assert!(origin_allowed(ok), "{ok}");
        }
        for bad in [
            "http://mykey.example",
            "http://127.0.0.1.evil.example",
            "file:///x",
            "chrome-extension://abc",
            "https://",
            "",
        ] {
            assert!(!origin_allowed(bad), "{bad}");
        }
    }
}
