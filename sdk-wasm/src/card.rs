//! Card bridges for pages: one API for every way to reach the My Number Card.
//!
//! - `native-messaging`: the mykey extension and its native host (PC/SC, any reader). The page
//!   talks to the extension's content script with `window.postMessage`; the extension adds the
//!   origin from the browser.
//! - `webusb`: a Sony PaSoRi (RC-S380 or RC-S300) driven from the page (`webusb.rs`).
//! - `virtual`: the demo's "try without a card" path: a virtual card held by a demo server,
//!   reached APDU by APDU, so the card protocol runs here in the page exactly as with a reader.
//!
//! `listBridges()`, `connect(kind, options)`, then `readCertificate()`, `pinTriesLeft()` and
//! `authenticate(nonce, pin)` (the token for `POST /v1/auth/card`). Failures are thrown as
//! `Error`s with a `code` (`wrong_pin`, `pin_blocked`, `no_card`, ...) and, for a wrong PIN,
//! `triesLeft`. No method signs a hash the page chose.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use mykey_core::card::bridge::{Answer, Command, ErrorCode, Failure, Outcome, Response, Tries};
use mykey_core::card::jpki::{self, Pin, PinStatus};
use mykey_core::card::{Transport, TransportError};
use mykey_core::identity::{AuthToken, SigningContext};
use wasm_bindgen::prelude::*;

#[wasm_bindgen(inline_js = r#"
export function mykeyPost(id, request, timeoutMs) {
  return new Promise((resolve) => {
    const onMessage = (ev) => {
      if (ev.source !== window || !ev.data || ev.data.mykey !== 'response' || ev.data.id !== id) return;
      window.removeEventListener('message', onMessage);
      clearTimeout(timer);
      resolve(ev.data.response);
    };
    const timer = setTimeout(() => { window.removeEventListener('message', onMessage); resolve(null); }, timeoutMs);
    window.addEventListener('message', onMessage);
    window.postMessage({ mykey: 'request', id, request }, window.location.origin);
  });
}
export function mykeyOrigin() { return globalThis.location ? globalThis.location.origin : ''; }
"#)]
extern "C" {
    #[wasm_bindgen(js_name = mykeyPost)]
    fn mykey_post(id: f64, request: JsValue, timeout_ms: u32) -> js_sys::Promise;
    #[wasm_bindgen(js_name = mykeyOrigin)]
    fn mykey_origin() -> String;
}

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &str = r#"
/** The token for `POST /v1/auth/card`, signed by the card for this page's origin and the nonce. */
export interface AuthToken { format: string; algorithm: "RS256" | "ES256"; certificate: string; signature: string; }
/** The PIN's state, read without spending a try. */
export type PinTries = { status: "left"; left: number } | { status: "blocked" } | { status: "verified" };
/** Where the card signs: the web (the default), a widget, or a shop's enrolled counter device. */
export type SigningContext = { kind: "web" } | { kind: "widget" } | { kind: "counter"; shop: number; device: string };
/** A way to reach the card. */
export interface BridgeInfo { kind: "native-messaging" | "webusb" | "virtual"; available: boolean; label: string; readers?: { name: string; card: boolean }[]; }
/** What a card bridge throws. */
export interface CardError extends Error {
  code: "bad_request" | "bad_origin" | "no_reader" | "no_card" | "not_my_number_card" | "wrong_pin" | "pin_blocked" | "bad_pin" | "card_removed" | "reader" | "not_allowed";
  triesLeft?: number;
}
/** Options of `connect`. */
export interface ConnectOptions { reader?: string; server?: string; }
"#;

/// How long the extension has to say it is there.
const PROBE_MS: u32 = 1500;
/// How long a card command may take (a PIN and an RSA signature on a slow reader included).
const COMMAND_MS: u32 = 60_000;

fn js_error(f: &Failure) -> JsValue {
    let e = js_sys::Error::new(&f.message);
    let code = serde_json::to_value(f.code).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    let _ = js_sys::Reflect::set(&e, &"code".into(), &code.into());
    if let Some(t) = f.tries_left {
        let _ = js_sys::Reflect::set(&e, &"triesLeft".into(), &t.into());
    }
    e.into()
}

fn failure(code: ErrorCode, message: impl Into<String>) -> Failure {
    Failure { code, message: message.into(), tries_left: None }
}

fn to_js<T: serde::Serialize>(v: &T) -> Result<JsValue, JsValue> {
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).map_err(|e| JsValue::from(e.to_string()))
}

static NEXT_ID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);

/// One round trip to the extension; `None` when nothing answered in time.
async fn post(command: &Command, timeout_ms: u32) -> Result<Option<Response>, Failure> {
    let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let request = to_js(command).map_err(|_| failure(ErrorCode::BadRequest, "unencodable request"))?;
    let answer = wasm_bindgen_futures::JsFuture::from(mykey_post(f64::from(id), request, timeout_ms))
        .await
        .map_err(|_| failure(ErrorCode::Reader, "the extension did not answer"))?;
    if answer.is_null() || answer.is_undefined() {
        return Ok(None);
    }
    let response: Response = serde_wasm_bindgen::from_value(answer)
        .map_err(|e| failure(ErrorCode::Reader, format!("the extension answered something unexpected: {e}")))?;
    Ok(Some(response))
}

async fn native(command: Command) -> Result<Answer, Failure> {
    match post(&command, COMMAND_MS).await? {
        None => Err(failure(
            ErrorCode::NoReader,
            "the mykey extension did not answer; install it (and its bridge host), then reload the page",
        )),
        Some(Response { result: Outcome::Ok(a), .. }) => Ok(a),
        Some(Response { result: Outcome::Error(f), .. }) => Err(f),
    }
}

/// The context a page names (`undefined`: the web), read field by field: a derived
/// deserialiser of the tagged enum would add kilobytes to every page that loads the SDK.
pub fn signing_context(v: &JsValue) -> Result<SigningContext, String> {
    if v.is_undefined() || v.is_null() {
        return Ok(SigningContext::Web);
    }
    let get = |k: &str| js_sys::Reflect::get(v, &k.into()).unwrap_or(JsValue::UNDEFINED);
    match get("kind").as_string().as_deref() {
        Some("web") => Ok(SigningContext::Web),
        Some("widget") => Ok(SigningContext::Widget),
        Some("counter") => {
            let shop = get("shop").as_f64().filter(|n| n.fract() == 0.0 && n.abs() < 9e15).map(|n| n as i64);
            let device = get("device").as_string().and_then(|d| uuid::Uuid::parse_str(&d).ok());
            match (shop, device) {
                (Some(shop), Some(device)) => Ok(SigningContext::Counter { shop, device }),
                _ => Err("a counter's context names its shop (a number) and device (its id)".into()),
            }
        }
        _ => Err("the signing context's kind is web, widget or counter".into()),
    }
}

/// The virtual card of a demo server, reached APDU by APDU.
struct VirtualTransport {
    url: String,
}

impl Transport for VirtualTransport {
    async fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        let body = serde_json::json!({ "apdu": B64.encode(command) });
        let res = gloo_net::http::Request::post(&self.url)
            .json(&body)
            .map_err(|e| TransportError::Reader(e.to_string()))?
            .send()
            .await
            .map_err(|e| TransportError::Reader(e.to_string()))?;
        if res.status() == 404 {
            return Err(TransportError::CardRemoved);
        }
        let v: serde_json::Value = res.json().await.map_err(|e| TransportError::Reader(e.to_string()))?;
        let b64 =
            v["response"].as_str().ok_or_else(|| TransportError::Reader("the demo card did not answer".into()))?;
        B64.decode(b64).map_err(|e| TransportError::Reader(e.to_string()))
    }
}

/// A card this page talks to APDU by APDU.
enum Local {
    Virtual(VirtualTransport),
    #[cfg(target_arch = "wasm32")]
    Pasori(crate::webusb::PasoriCard),
}

impl Transport for Local {
    async fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        match self {
            Local::Virtual(t) => t.transmit(command).await,
            #[cfg(target_arch = "wasm32")]
            Local::Pasori(t) => t.transmit(command).await,
        }
    }
}

enum Kind {
    Native { reader: Option<String> },
    Local(Local),
}

/// A connected card bridge.
#[wasm_bindgen]
pub struct CardBridge {
    kind: Kind,
}

/// The bridges this page can use: `[{ kind, available, label, readers? }]`.
#[wasm_bindgen(js_name = listBridges, unchecked_return_type = "BridgeInfo[]")]
pub async fn list_bridges() -> Result<JsValue, JsValue> {
    let native = post(&Command::ListReaders, PROBE_MS).await.ok().flatten();
    let webusb = js_sys::Reflect::get(&js_sys::global(), &"navigator".into())
        .and_then(|n| js_sys::Reflect::has(&n, &"usb".into()))
        .unwrap_or(false);
    let readers = match &native {
        Some(Response { result: Outcome::Ok(Answer::Readers(r)), .. }) => r.clone(),
        _ => vec![],
    };
    to_js(&serde_json::json!([
        {
            "kind": "native-messaging",
            "available": native.is_some(),
            "label": "Card reader (mykey extension)",
            "readers": readers,
        },
        {
            "kind": "webusb",
            "available": webusb,
            "label": "Sony PaSoRi RC-S380 / RC-S300 (WebUSB)",
        },
        { "kind": "virtual", "available": true, "label": "Demo: virtual card (not a real card)" },
    ]))
}

/// Connects to a bridge: `"native-messaging"` (option `reader`), `"webusb"` (asks the user to
/// choose a PaSoRi RC-S380 or RC-S300, then activates the card on it), or `"virtual"` (option
/// `server`, the demo server's base URL; a new virtual card is issued for this page).
#[wasm_bindgen]
pub async fn connect(
    #[wasm_bindgen(unchecked_param_type = "\"native-messaging\" | \"webusb\" | \"virtual\"")] kind: &str,
    #[wasm_bindgen(unchecked_param_type = "ConnectOptions")] options: JsValue,
) -> Result<CardBridge, JsValue> {
    let opt = |name: &str| -> Option<String> {
        js_sys::Reflect::get(&options, &name.into()).ok().and_then(|v| v.as_string())
    };
    match kind {
        "native-messaging" => {
            let reader = opt("reader");
            native(Command::ListReaders).await.map_err(|f| js_error(&f))?;
            Ok(CardBridge { kind: Kind::Native { reader } })
        }
        "virtual" => {
            let server = opt("server").unwrap_or_else(mykey_origin);
            let server = server.trim_end_matches('/').to_owned();
            let res = gloo_net::http::Request::post(&format!("{server}/demo/cards"))
                .send()
                .await
                .map_err(|e| js_error(&failure(ErrorCode::NoReader, e.to_string())))?;
            if !res.ok() {
                return Err(js_error(&failure(
                    ErrorCode::NoReader,
                    "this server offers no virtual card (it is not a demo)",
                )));
            }
            let v: serde_json::Value =
                res.json().await.map_err(|e| js_error(&failure(ErrorCode::Reader, e.to_string())))?;
            let card = v["card"].as_str().unwrap_or_default();
            let t = VirtualTransport { url: format!("{server}/demo/cards/{card}/apdu") };
            Ok(CardBridge { kind: Kind::Local(Local::Virtual(t)) })
        }
        #[cfg(target_arch = "wasm32")]
        "webusb" => {
            let card = crate::webusb::connect().await.map_err(|f| js_error(&f))?;
            Ok(CardBridge { kind: Kind::Local(Local::Pasori(card)) })
        }
        other => Err(js_error(&failure(ErrorCode::BadRequest, format!("no bridge called {other:?}")))),
    }
}

#[wasm_bindgen]
impl CardBridge {
    /// `"native-messaging"`, `"webusb"` or `"virtual"`; pages must label the virtual card as a
    /// demo.
    #[wasm_bindgen(getter)]
    pub fn kind(&self) -> String {
        match self.kind {
            Kind::Native { .. } => "native-messaging".into(),
            Kind::Local(Local::Virtual(_)) => "virtual".into(),
            #[cfg(target_arch = "wasm32")]
            Kind::Local(Local::Pasori(_)) => "webusb".into(),
        }
    }

    /// The user-authentication certificate, DER in base64.
    #[wasm_bindgen(js_name = readCertificate)]
    pub async fn read_certificate(&mut self) -> Result<String, JsValue> {
        match &mut self.kind {
            Kind::Native { reader } => match native(Command::ReadCertificate { reader: reader.clone() }).await {
                Ok(Answer::Certificate(c)) => Ok(c),
                Ok(_) => Err(js_error(&failure(ErrorCode::Reader, "unexpected answer"))),
                Err(f) => Err(js_error(&f)),
            },
            Kind::Local(t) => {
                jpki::read_auth_certificate(t).await.map(|c| B64.encode(c)).map_err(|e| js_error(&Failure::from(&e)))
            }
        }
    }

    /// The PIN's state without spending a try: `{ status: "left", left }`, `{ status:
    /// "blocked" }` or `{ status: "verified" }`.
    #[wasm_bindgen(js_name = pinTriesLeft, unchecked_return_type = "PinTries")]
    pub async fn pin_tries_left(&mut self) -> Result<JsValue, JsValue> {
        let tries = match &mut self.kind {
            Kind::Native { reader } => match native(Command::PinTriesLeft { reader: reader.clone() }).await {
                Ok(Answer::Tries(t)) => t,
                Ok(_) => return Err(js_error(&failure(ErrorCode::Reader, "unexpected answer"))),
                Err(f) => return Err(js_error(&f)),
            },
            Kind::Local(t) => match jpki::pin_tries_left(t).await.map_err(|e| js_error(&Failure::from(&e)))? {
                PinStatus::TriesLeft(left) => Tries::Left { left },
                PinStatus::Blocked => Tries::Blocked,
                PinStatus::Verified => Tries::Verified,
            },
        };
        to_js(&tries)
    }

    /// Verifies the PIN and signs the login digest for this page's origin in `context` (the
    /// web when absent; `{kind: "widget"}` in a widget, `{kind: "counter", shop, device}` at a
    /// counter terminal) and `nonce`; returns the token `{ format, algorithm, certificate,
    /// signature }`.
    #[wasm_bindgen(unchecked_return_type = "AuthToken")]
    pub async fn authenticate(
        &mut self,
        nonce: String,
        pin: String,
        context: Option<js_sys::Object>,
    ) -> Result<JsValue, JsValue> {
        let context = context.map(JsValue::from).unwrap_or(JsValue::UNDEFINED);
        let context = signing_context(&context).map_err(|m| js_error(&failure(ErrorCode::BadRequest, m)))?;
        let token = match &mut self.kind {
            Kind::Native { reader } => {
                match native(Command::Authenticate { reader: reader.clone(), nonce, pin, context }).await {
                    Ok(Answer::Token(t)) => t,
                    Ok(_) => return Err(js_error(&failure(ErrorCode::Reader, "unexpected answer"))),
                    Err(f) => return Err(js_error(&f)),
                }
            }
            Kind::Local(t) => {
                let run = async {
                    let pin = Pin::parse(&pin)?;
                    let cert = jpki::read_auth_certificate(t).await?;
                    let sig = jpki::authenticate(t, &context.signed_origin(&mykey_origin()), &nonce, &pin).await?;
                    Ok::<_, jpki::JpkiError>(AuthToken::rs256(&cert, &sig))
                };
                run.await.map_err(|e| js_error(&Failure::from(&e)))?
            }
        };
        to_js(&token)
    }
}
