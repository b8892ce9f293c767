//! The store's side of the points cloud: its secret key stays here. Registers the store's
//! origin and webhook, opens checkout sessions, refunds, and verifies webhooks.

use anyhow::{bail, Context};
use mykey_core::api::{
    CheckoutEvent, CheckoutSessionCreated, CheckoutSessionRequest, EmbedSettings, LineItem, Refund, RefundRequest,
    WebhookSecret,
};
use mykey_core::rules::WEBHOOK_TOLERANCE_SECONDS;
use uuid::Uuid;

/// The points cloud as this store uses it.
pub struct PointsCloud {
    /// Its origin.
    pub base: String,
    key: String,
    /// The store's shop id there.
    pub shop: i64,
    /// The publishable key the store's pages give the widget.
    pub publishable_key: String,
    /// Signing secrets, newest first (the points cloud signs with every live one, so a store
    /// that rotates keeps the old one here until its overlap ends).
    secrets: Vec<String>,
    http: reqwest::Client,
}

async fn answer<T: serde::de::DeserializeOwned>(res: reqwest::Response) -> anyhow::Result<T> {
    let status = res.status();
    let text = res.text().await?;
    if !status.is_success() {
        bail!("the points cloud answered {status}: {text}");
    }
    serde_json::from_str(&text).with_context(|| format!("reading the points cloud's answer {text}"))
}

impl PointsCloud {
    /// Registers `origin` (pages and webhook) and takes a new signing secret.
    pub async fn connect(base: &str, key: String, shop: i64, origin: &str) -> anyhow::Result<PointsCloud> {
        let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(15)).build()?;
        let base = base.trim_end_matches('/').to_owned();
        let body = serde_json::json!({"origins": [origin], "webhook_url": format!("{origin}/webhooks")});
        let res = http.put(format!("{base}/v1/shops/{shop}/checkout")).bearer_auth(&key).json(&body).send().await;
        let settings: EmbedSettings = answer(res.context("registering with the points cloud")?).await?;
        let res = http.post(format!("{base}/v1/shops/{shop}/webhook-secrets")).bearer_auth(&key).send().await?;
        let secret: WebhookSecret = answer(res).await?;
        Ok(PointsCloud {
            base,
            key,
            shop,
            publishable_key: settings.publishable_key,
            secrets: vec![secret.secret],
            http,
        })
    }

    /// Opens the checkout session of an order (its id is the idempotency id: a retry gets the
    /// same session).
    pub async fn open(
        &self,
        order: Uuid,
        reference: &str,
        lines: Vec<LineItem>,
        amount: i64,
        return_url: String,
    ) -> anyhow::Result<CheckoutSessionCreated> {
        let r = CheckoutSessionRequest {
            id: order,
            shop: self.shop,
            amount: amount.into(),
            order_reference: mykey_core::text::Reference::parse(reference)?,
            line_items: lines,
            partial_points: true,
            capture: None,
            return_url: Some(return_url),
            metadata: [("order".to_owned(), order.to_string())].into(),
            expires_in_seconds: None,
            hold_seconds: None,
        };
        let res = self
            .http
            .post(format!("{}/v1/checkout/sessions", self.base))
            .bearer_auth(&self.key)
            .json(&r)
            .send()
            .await?;
        answer(res).await
    }

    /// Refunds points of a paid order; `id` makes a double-submitted form refund once.
    pub async fn refund(&self, session: Uuid, id: Uuid, points: i64) -> anyhow::Result<Refund> {
        let r = RefundRequest { id, points: points.into() };
        let url = format!("{}/v1/checkout/sessions/{session}/refunds", self.base);
        answer(self.http.post(url).bearer_auth(&self.key).json(&r).send().await?).await
    }

    /// The event in `body` if `signature` verifies with one of the store's secrets now.
    pub fn verify(&self, signature: &str, body: &[u8]) -> Result<CheckoutEvent, String> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        let mut last = String::from("no secret");
        for s in &self.secrets {
            match mykey_core::webhook::verify(s, signature, body, now, WEBHOOK_TOLERANCE_SECONDS) {
                Ok(()) => return serde_json::from_slice(body).map_err(|e| format!("not an event: {e}")),
                Err(e) => last = e.to_string(),
            }
        }
        Err(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with(secret: &str) -> PointsCloud {
        PointsCloud {
            base: "http://127.0.0.1:1".into(),
            key: String::new(),
            shop: 1,
            publishable_key: String::new(),
            secrets: vec![secret.into()],
            http: reqwest::Client::new(),
        }
    }

    #[test]
    fn the_store_takes_only_fresh_events_signed_with_its_secret() {
        let store = store_with("whsec_store");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        let body = br#"{"not":"an event"}"#;
        let fresh = mykey_core::webhook::sign(&["whsec_store"], now, body);
        assert!(
            store.verify(&fresh, body).unwrap_err().starts_with("not an event"),
            "signature accepted, body refused"
        );
        let stale = mykey_core::webhook::sign(&["whsec_store"], now - WEBHOOK_TOLERANCE_SECONDS - 1, body);
        assert!(store.verify(&stale, body).unwrap_err().contains("timestamp"));
        let other = mykey_core::webhook::sign(&["whsec_other"], now, body);
        assert!(store.verify(&other, body).unwrap_err().contains("no signature matches"));
        assert!(store.verify("", body).is_err());
    }
}
