//! The partner's side of the points cloud: its secret key stays here. Registers the member
//! site's origin and webhook, issues a coupon code per exchange, pushes conversions for linked
//! members, opens link sessions, and verifies webhooks.

use anyhow::{bail, Context};
use mykey_core::api::{EmbedSettings, LinkSessionCreated, LinkSessionRequest, PartnerEvent, WebhookSecret};
use mykey_core::coupon::{CouponBatch, CouponBatchRequest, Delivery};
use mykey_core::identity::LinkedConversionRequest;
use mykey_core::rules::WEBHOOK_TOLERANCE_SECONDS;
use rust_decimal::Decimal;
use uuid::Uuid;

/// Municipal points per card point on this site (the partner's own offer).
pub const RATE: Decimal = Decimal::from_parts(5, 0, 0, false, 1);
/// Days a code issued for an exchange stays valid.
pub const CODE_DAYS: i64 = 90;

/// What pushing a conversion came to.
pub enum Pushed {
    /// The member's reserved points arrived.
    Converted,
    /// The member's number is not (or no longer) linked: give a code instead.
    NotLinked,
}

/// The points cloud as this partner uses it.
pub struct PointsCloud {
    /// Its origin.
    pub base: String,
    key: String,
    /// The partner's id there.
    pub partner: i64,
    /// The publishable key the member pages give the widgets.
    pub publishable_key: String,
    /// The partner's name as the points cloud's directory (and so its widgets) shows it.
    pub name: String,
    /// Signing secrets, newest first.
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
    pub async fn connect(base: &str, key: String, partner: i64, origin: &str) -> anyhow::Result<PointsCloud> {
        let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(15)).build()?;
        let base = base.trim_end_matches('/').to_owned();
        let body = serde_json::json!({"origins": [origin], "webhook_url": format!("{origin}/webhooks")});
        let res =
            http.put(format!("{base}/v1/partners/{partner}/embedding")).bearer_auth(&key).json(&body).send().await;
        let settings: EmbedSettings = answer(res.context("registering with the points cloud")?).await?;
        let res = http.post(format!("{base}/v1/partners/{partner}/webhook-secrets")).bearer_auth(&key).send().await?;
        let secret: WebhookSecret = answer(res).await?;
        let partners: Vec<mykey_core::api::Partner> =
            answer(http.get(format!("{base}/v1/partners")).send().await?).await?;
        let name = partners
            .into_iter()
            .find(|p| p.id == partner)
            .map(|p| p.name)
            .context("the directory lists no such partner")?;
        Ok(PointsCloud {
            base,
            key,
            partner,
            publishable_key: settings.publishable_key,
            name,
            secrets: vec![secret.secret],
            http,
        })
    }

    /// One coupon code for exchange `exchange` (its id is the batch's: a retry gets the same code).
    pub async fn issue_code(&self, exchange: Uuid, card_points: i64) -> anyhow::Result<String> {
        let r = CouponBatchRequest {
            id: exchange,
            count: 1,
            partner_points: Decimal::from(card_points),
            rate: RATE,
            expires_at: chrono::Utc::now() + chrono::Duration::days(CODE_DAYS),
            delivery: Delivery::Url,
        };
        let url = format!("{}/v1/partners/{}/coupons", self.base, self.partner);
        let batch: CouponBatch = answer(self.http.post(url).bearer_auth(&self.key).json(&r).send().await?).await?;
        batch.codes.into_iter().next().context("a batch of one has a code")
    }

    /// Pushes the conversion of exchange `exchange` for a linked member.
    pub async fn push(&self, exchange: Uuid, member: &str, card_points: i64) -> anyhow::Result<Pushed> {
        let r = LinkedConversionRequest {
            reference: mykey_core::text::Reference::parse(exchange.to_string())?,
            service_id: member.to_owned(),
            partner_points: Decimal::from(card_points),
            rate: RATE,
        };
        let url = format!("{}/v1/partners/{}/linked-conversions", self.base, self.partner);
        let res = self.http.post(url).bearer_auth(&self.key).json(&r).send().await?;
        if res.status() == reqwest::StatusCode::UNPROCESSABLE_ENTITY {
            let p: serde_json::Value = res.json().await.unwrap_or_default();
            if p["type"] == "urn:mykey:problem:service-id-not-linked" {
                return Ok(Pushed::NotLinked);
            }
            bail!("the points cloud refused the conversion: {p}");
        }
        answer::<serde_json::Value>(res).await?;
        Ok(Pushed::Converted)
    }

    /// Opens a link session for the signed-in member (`request` makes a double submit open one).
    pub async fn open_link(
        &self,
        request: Uuid,
        member: &str,
        return_url: String,
    ) -> anyhow::Result<LinkSessionCreated> {
        let r = LinkSessionRequest {
            id: request,
            partner: Some(self.partner),
            online_service: None,
            service_id: member.to_owned(),
            return_url: Some(return_url),
            expires_in_seconds: None,
            mandate: None,
        };
        answer(self.http.post(format!("{}/v1/link-sessions", self.base)).bearer_auth(&self.key).json(&r).send().await?)
            .await
    }

    /// The event in `body` if `signature` verifies with one of the partner's secrets now.
    pub fn verify(&self, signature: &str, body: &[u8]) -> Result<PartnerEvent, String> {
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

    #[test]
    fn the_rate_makes_whole_points_of_even_card_points_and_events_must_be_signed() {
        assert_eq!(mykey_core::points::convert(Decimal::from(1000), RATE).unwrap().get(), 500);
        let cloud = PointsCloud {
            base: String::new(),
            key: String::new(),
            partner: 1,
            publishable_key: String::new(),
            name: String::new(),
            secrets: vec!["whsec_partner".into()],
            http: reqwest::Client::new(),
        };
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        let body = br#"{"id":"7b0c8f6e-9a43-4c55-8a8e-5b1f5c2a9d10","type":"link.revoked","created_at":"2026-11-29T00:00:00Z","link":{"link":"7b0c8f6e-9a43-4c55-8a8e-5b1f5c2a9d11","session":null,"partner":1,"online_service":null,"service_id":"M0001"}}"#;
        let good = mykey_core::webhook::sign(&["whsec_partner"], now, body);
        assert_eq!(cloud.verify(&good, body).unwrap().link.unwrap().service_id, "M0001");
        let forged = mykey_core::webhook::sign(&["whsec_other"], now, body);
        assert!(cloud.verify(&forged, body).is_err());
    }
}
