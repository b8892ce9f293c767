//! This browser as a shop's counter device: a P-256 key made by WebCrypto that not even this
//! page can export, kept in IndexedDB with the device's id; enrolment with the shop's pairing
//! code; and every request signed (RFC 9421) over the shared core's signature base
//! ([`mykey_core::device`]), so the server and this page build the same text.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use gloo_net::http::Request;
use mykey_core::api::{Device, EnrolmentRequest};
use mykey_core::device::{self as sig, Target, Terms};
use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::api::{read, Failure};

#[wasm_bindgen(inline_js = r#"
const DB = 'mykey-terminal', STORE = 'device', KEY = 'this';
function db() {
  return new Promise((ok, fail) => {
    const r = indexedDB.open(DB, 1);
    r.onupgradeneeded = () => r.result.createObjectStore(STORE);
    r.onsuccess = () => ok(r.result);
    r.onerror = () => fail(r.error);
  });
}
function run(mode, f) {
  return db().then((d) => new Promise((ok, fail) => {
    const t = d.transaction(STORE, mode);
    const r = f(t.objectStore(STORE));
    t.oncomplete = () => ok(r.result);
    t.onerror = () => fail(t.error);
  }));
}
export async function terminalNewKey() {
  const keys = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
  const raw = new Uint8Array(await crypto.subtle.exportKey('raw', keys.publicKey));
  return { keys, raw };
}
export function terminalSave(keys, device) { return run('readwrite', (s) => s.put({ keys, device }, KEY)); }
export function terminalLoad() { return run('readonly', (s) => s.get(KEY)).then((v) => v || null); }
export function terminalForget() { return run('readwrite', (s) => s.delete(KEY)); }
export async function terminalSign(keys, data) {
  return new Uint8Array(await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, keys.privateKey, data));
}
"#)]
extern "C" {
    #[wasm_bindgen(catch, js_name = terminalNewKey)]
    async fn new_key() -> Result<JsValue, JsValue>;
    #[wasm_bindgen(catch, js_name = terminalSave)]
    async fn save(keys: &JsValue, device: JsValue) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(catch, js_name = terminalLoad)]
    async fn load() -> Result<JsValue, JsValue>;
    #[wasm_bindgen(catch, js_name = terminalForget)]
    async fn forget_stored() -> Result<JsValue, JsValue>;
    #[wasm_bindgen(catch, js_name = terminalSign)]
    async fn sign(keys: &JsValue, data: &[u8]) -> Result<JsValue, JsValue>;
}

/// This browser's enrolment: the device as the server knows it, and its key pair.
#[derive(Clone)]
pub struct ThisDevice {
    /// The device.
    pub device: Device,
    keys: JsValue,
}

impl PartialEq for ThisDevice {
    fn eq(&self, other: &Self) -> bool {
        self.device == other.device
    }
}

fn storage_failure(e: JsValue) -> Failure {
    Failure::network(format!("{e:?}"))
}

fn get(v: &JsValue, key: &str) -> JsValue {
    js_sys::Reflect::get(v, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

impl ThisDevice {
    /// The device this browser enrolled before, if any.
    pub async fn stored() -> Result<Option<ThisDevice>, Failure> {
        let v = load().await.map_err(storage_failure)?;
        if v.is_null() || v.is_undefined() {
            return Ok(None);
        }
        let device = crate::components::card::js_json(&get(&v, "device"));
        let device: Device = serde_json::from_value(device).map_err(Failure::network)?;
        Ok(Some(ThisDevice { device, keys: get(&v, "keys") }))
    }

    /// Makes a key, enrols it with the shop's pairing `code` as `name`, and keeps it.
    pub async fn enrol(code: &str, name: mykey_core::api::DeviceName) -> Result<ThisDevice, Failure> {
        let made = new_key().await.map_err(storage_failure)?;
        let raw = js_sys::Uint8Array::new(&get(&made, "raw")).to_vec();
        let r = EnrolmentRequest { code: code.trim().to_owned(), name, public_key: URL_SAFE_NO_PAD.encode(raw) };
        let device: Device = crate::api::post("/v1/devices", &r).await?;
        let keys = get(&made, "keys");
        let json = serde_wasm_json(&device)?;
        save(&keys, json).await.map_err(storage_failure)?;
        Ok(ThisDevice { device, keys })
    }

    /// Forgets the enrolment (after the shop revoked the device).
    pub async fn forget() -> Result<(), Failure> {
        forget_stored().await.map(|_| ()).map_err(storage_failure)
    }

    /// `POST path` with a JSON body, signed by this device.
    pub async fn post<T: DeserializeOwned>(&self, path: &str, body: &(impl Serialize + ?Sized)) -> Result<T, Failure> {
        let bytes = serde_json::to_vec(body).map_err(Failure::network)?;
        read(self.send("POST", path, None, bytes).await?).await
    }

    /// `GET path?query`, signed by this device: the answer as JSON.
    pub async fn get<T: DeserializeOwned>(&self, path: &str, query: Option<&str>) -> Result<T, Failure> {
        read(self.send("GET", path, query, Vec::new()).await?).await
    }

    /// `GET path?query`, signed by this device: the answer as text (a CSV file).
    pub async fn get_text(&self, path: &str, query: Option<&str>) -> Result<String, Failure> {
        let res = self.send("GET", path, query, Vec::new()).await?;
        if res.status() >= 400 {
            return Err(read::<serde_json::Value>(res).await.err().unwrap_or_else(|| Failure::network("refused")));
        }
        res.text().await.map_err(Failure::network)
    }

    /// Sends a request signed by this device over the core's signature base.
    async fn send(
        &self,
        method: &'static str,
        path: &str,
        query: Option<&str>,
        bytes: Vec<u8>,
    ) -> Result<gloo_net::http::Response, Failure> {
        let location = web_sys::window().map(|w| w.location()).ok_or_else(|| Failure::network("no window"))?;
        let authority = location.host().map_err(storage_failure)?;
        let created = (js_sys::Date::now() / 1000.0) as u64;
        let terms = Terms { created, expires: created + 30, nonce: nonce()?, keyid: self.device.id.to_string() };
        let digest = sig::content_digest(&bytes);
        let target = Target { method, authority: &authority, path, query };
        let base = sig::signature_base(&target, &digest, &terms).map_err(Failure::network)?;
        let signature = sign(&self.keys, base.as_bytes()).await.map_err(storage_failure)?;
        let signature = js_sys::Uint8Array::new(&signature).to_vec();
        let url = match query {
            Some(q) => format!("{path}?{q}"),
            None => path.to_owned(),
        };
        let builder = match method {
            "GET" => Request::get(&url),
            _ => Request::post(&url).header("content-type", "application/json"),
        }
        .header("content-digest", &digest)
        .header("signature-input", &sig::signature_input(&terms).map_err(Failure::network)?)
        .header("signature", &sig::signature_header(&signature));
        let req = if method == "GET" { builder.build() } else { builder.body(bytes) }.map_err(Failure::network)?;
        req.send().await.map_err(Failure::network)
    }
}

/// A device as the JSON IndexedDB keeps.
fn serde_wasm_json(device: &Device) -> Result<JsValue, Failure> {
    let text = serde_json::to_string(device).map_err(Failure::network)?;
    js_sys::JSON::parse(&text).map_err(storage_failure)
}

/// 128 random bits from the browser.
fn random() -> Result<[u8; 16], Failure> {
    let mut b = [0u8; 16];
    let crypto = web_sys::window().and_then(|w| w.crypto().ok()).ok_or_else(|| Failure::network("no crypto"))?;
    crypto.get_random_values_with_u8_array(&mut b).map_err(storage_failure)?;
    Ok(b)
}

/// A signature's nonce: 128 random bits, base64url.
fn nonce() -> Result<String, Failure> {
    Ok(URL_SAFE_NO_PAD.encode(random()?))
}

/// A random (version 4) id for a payment, so that a retry is recognised.
pub fn random_id() -> Result<uuid::Uuid, Failure> {
    Ok(uuid::Builder::from_random_bytes(random()?).into_uuid())
}
