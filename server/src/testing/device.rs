//! A counter device for tests and benchmarks: enrols with a pairing code and signs requests as
//! the terminal page does (RFC 9421 over the shared core's signature base), with a key in memory.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use mykey_core::device::{self as sig, Target, Terms};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use rand::RngCore;
use uuid::Uuid;

/// An enrolled device with its key.
#[derive(Clone)]
pub struct TestDevice {
    /// Its id (`keyid`).
    pub id: Uuid,
    /// Its shop.
    pub shop: i64,
    key: SigningKey,
}

/// The headers of a signed request.
pub struct SignedHeaders {
    /// `Content-Digest`.
    pub content_digest: String,
    /// `Signature-Input`.
    pub signature_input: String,
    /// `Signature`.
    pub signature: String,
}

/// A new P-256 key and its public half as enrolment sends it.
pub fn new_key() -> (SigningKey, String) {
    let key = SigningKey::random(&mut rand::rngs::OsRng);
    let public = URL_SAFE_NO_PAD.encode(key.verifying_key().to_encoded_point(false).as_bytes());
    (key, public)
}

/// A fresh random nonce (base64url, 128 bits).
pub fn nonce() -> String {
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

impl TestDevice {
    /// Asks `shop`'s pairing code with the store's key and enrols a new device with it.
    pub async fn enrol(http: &reqwest::Client, base: &str, store_key: &str, shop: i64) -> anyhow::Result<TestDevice> {
        let code: serde_json::Value = http
            .post(format!("{base}/v1/shops/{shop}/pairing-codes"))
            .bearer_auth(store_key)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let code = code["code"].as_str().ok_or_else(|| anyhow::anyhow!("no code in {code}"))?;
        let (key, public) = new_key();
        let body = serde_json::json!({"code": code, "name": "レジ1", "public_key": public});
        let res = http.post(format!("{base}/v1/devices")).json(&body).send().await?;
        anyhow::ensure!(res.status() == 201, "enrolment answered {}: {}", res.status(), res.text().await?);
        let device: serde_json::Value = res.json().await?;
        let id = device["id"].as_str().unwrap_or_default().parse()?;
        Ok(TestDevice { id, shop, key })
    }

    /// A device from an id and a key it enrolled elsewhere.
    pub fn from_parts(id: Uuid, shop: i64, key: SigningKey) -> TestDevice {
        TestDevice { id, shop, key }
    }

    /// The headers signing `method url` with `body`, made now with a new nonce.
    pub fn sign(&self, method: &str, url: &str, body: &[u8]) -> SignedHeaders {
        let created = u64::try_from(crate::time::now() / crate::time::SECOND).expect("after 1970");
        let terms = Terms { created, expires: created + 30, nonce: nonce(), keyid: self.id.to_string() };
        self.sign_with(method, url, body, &terms)
    }

    /// The headers signing `method url` with `body` under `terms` (for refusals).
    pub fn sign_with(&self, method: &str, url: &str, body: &[u8], terms: &Terms) -> SignedHeaders {
        let url = reqwest::Url::parse(url).expect("a URL");
        let authority = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        };
        let target = Target { method, authority: &authority, path: url.path(), query: url.query() };
        let content_digest = sig::content_digest(body);
        let base = sig::signature_base(&target, &content_digest, terms).expect("well-formed terms");
        let signature: Signature = self.key.sign(base.as_bytes());
        SignedHeaders {
            content_digest,
            signature_input: sig::signature_input(terms).expect("well-formed terms"),
            signature: sig::signature_header(&signature.to_bytes()),
        }
    }

    /// A signed JSON request (`body` none: an empty body).
    pub fn request(
        &self,
        http: &reqwest::Client,
        method: reqwest::Method,
        url: &str,
        body: Option<&serde_json::Value>,
    ) -> reqwest::RequestBuilder {
        let bytes = body.map(|b| serde_json::to_vec(b).expect("JSON")).unwrap_or_default();
        let h = self.sign(method.as_str(), url, &bytes);
        let mut req = http
            .request(method, url)
            .header("content-digest", h.content_digest)
            .header("signature-input", h.signature_input)
            .header("signature", h.signature);
        if body.is_some() {
            req = req.header("content-type", "application/json").body(bytes);
        }
        req
    }
}
