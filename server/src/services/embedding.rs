//! Embedding (docs/checkout.md, docs/partners.md): what a store's checkout widget and a
//! partner's link and coupon widgets share. The owner registers the origins whose pages may
//! frame its widgets and gets a publishable key; its server gets signed events (rotating
//! secrets, a list with delivery state, resend); and inside a widget the resident signs in
//! without a cookie (the points cloud's cookies are third-party there) for a grant that works
//! in that one place only.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use mykey_core::api::{
    DeliveryState, EmbedSettings, EmbedSettingsRequest, EventDelivery, WebhookEvent, WebhookSecret, WidgetCard,
    ORIGINS_MAX, URL_MAX,
};
use mykey_core::identity::{CardPurpose, NonceIssued, PasswordLogin, Profile, SigningContext};
use mykey_core::rules::{WEBHOOK_SECRET_OVERLAP_HOURS, WIDGET_GRANT_MINUTES};
use mykey_core::{Problem, ProblemKind};
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::engine::Engine;
use crate::failure;
use crate::outbox::address::Targets;
pub use crate::services::grants::GrantScope;
use crate::services::grants::Grants;
use crate::services::identity::Identity;
pub use crate::store::embedding::Owner;
use crate::store::embedding::{self as store, Settings};
use crate::time::{self, Micros, SECOND};

/// Owners whose settings are remembered (every widget request reads them).
pub const SETTINGS_REMEMBERED: usize = 10_000;

/// Where a widget's card challenge and sign-in happen: a checkout or link session, or one
/// frame of a partner's coupon widget, which has no session of its own (its challenges are
/// then bound to, and limited per, that frame rather than every resident of the partner).
#[derive(Clone, Copy, Debug)]
pub enum WidgetPlace<'a> {
    /// A checkout or link session.
    Session(Uuid),
    /// A partner's coupon widget in the frame `instance` (checked by the caller).
    Frame {
        /// The partner.
        partner: i64,
        /// The frame's own random id.
        instance: &'a str,
    },
}

impl WidgetPlace<'_> {
    /// What a card's nonce is bound to.
    fn binding(self) -> String {
        match self {
            WidgetPlace::Session(id) => format!("widget-session:{id}"),
            WidgetPlace::Frame { partner, instance } => format!("widget-partner:{partner}:{instance}"),
        }
    }

    /// What a sign-in's grant opens: the session, or the partner's widget.
    fn scope(self) -> GrantScope {
        match self {
            WidgetPlace::Session(id) => GrantScope::Session(id),
            WidgetPlace::Frame { partner, .. } => GrantScope::Partner(partner),
        }
    }
}

/// The embedding of stores' and partners' widgets.
pub struct Embedding {
    engine: Engine,
    identity: Arc<Identity>,
    /// Sign-ins inside widgets.
    grants: Mutex<Grants>,
    /// Told when events were committed, so that the deliverer need not wait for its round.
    written: Arc<tokio::sync::Notify>,
    /// Settings read, by owner, at most [`SETTINGS_REMEMBERED`]; this process is the only one
    /// that changes them, and forgets an owner's when it does.
    known: Mutex<HashMap<Owner, Settings>>,
    /// Publishable keys read, to their owner (a key never changes).
    keys: Mutex<HashMap<String, Owner>>,
    /// Where webhooks may go.
    targets: Targets,
}

/// 64 random hex digits.
pub fn random_hex() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

fn invalid(detail: impl Into<String>) -> Problem {
    Problem::new(ProblemKind::InvalidRequest, detail.into())
}

/// `origin` as the browser names it (`https://store.example`, `http://127.0.0.2:8080`), or why not:
/// https, or http on a loopback host; nothing after the port.
pub fn parse_origin(origin: &str) -> Result<String, Problem> {
    let url = parse_url(origin, "an origin")?;
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() || origin.ends_with('/') {
        return Err(invalid(format!("{origin} is not an origin: give the scheme, host and port only")));
    }
    Ok(url.origin().ascii_serialization())
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// A URL of a store or partner (https, or http on loopback; no user name or password), or why not.
pub fn parse_url(text: &str, what: &str) -> Result<url::Url, Problem> {
    if text.chars().count() > URL_MAX || text.chars().any(char::is_control) {
        return Err(invalid(format!("{what} has at most {URL_MAX} characters and no control characters")));
    }
    let url = url::Url::parse(text).map_err(|e| invalid(format!("{what} is not a URL: {e}")))?;
    let ok_scheme = url.scheme() == "https" || (url.scheme() == "http" && is_loopback(&url));
    if !ok_scheme {
        return Err(invalid(format!("{what} must use https (http only on a loopback address): {text}")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(format!("{what} may not carry a user name or password")));
    }
    if let Some(url::Host::Ipv4(ip)) = url.host() {
        if ip.is_link_local() || ip.is_unspecified() {
            return Err(invalid(format!("{what} may not point at {ip}")));
        }
    }
    Ok(url)
}

/// A webhook URL: as [`parse_url`], and its host one a webhook may go to under `targets`
/// (`outbox::address`): an address literal is checked here, `localhost` is refused unless
/// loopback is allowed, other names are checked when the deliverer connects.
pub fn parse_webhook_url(text: &str, targets: Targets) -> Result<url::Url, Problem> {
    let url = parse_url(text, "the webhook URL")?;
    let allowed = match url.host() {
        Some(url::Host::Ipv4(ip)) => targets.may_receive(std::net::IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => targets.may_receive(std::net::IpAddr::V6(ip)),
        Some(url::Host::Domain(d)) => targets == Targets::PublicAndLoopback || !d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    if !allowed {
        return Err(invalid(match targets {
            Targets::Public => {
                "the webhook URL may not point into a private network or at this machine \
                                (loopback receivers need the server's development option --allow-loopback-webhooks)"
            }
            Targets::PublicAndLoopback => "the webhook URL may not point into a private network",
        }));
    }
    Ok(url)
}

/// The registered origins of stored settings.
pub fn origins_of(settings: &Settings) -> Vec<String> {
    serde_json::from_str(&settings.origins).unwrap_or_default()
}

/// `url`'s origin when it is one of `settings`' origins, or why not.
pub fn check_return_url(settings: &Settings, url: &str) -> Result<(), Problem> {
    let origin = parse_url(url, "the return URL")?.origin().ascii_serialization();
    if origins_of(settings).contains(&origin) {
        Ok(())
    } else {
        Err(Problem::new(ProblemKind::OriginNotAllowed, format!("the return URL's origin {origin} is not registered")))
    }
}

impl Embedding {
    /// Embedding over `engine`'s database, signing residents in through `identity`; webhook
    /// URLs must point at `targets`.
    pub fn new(engine: Engine, identity: Arc<Identity>, targets: Targets) -> Embedding {
        Embedding {
            targets,
            engine,
            identity,
            grants: Mutex::new(Grants::default()),
            written: Arc::new(tokio::sync::Notify::new()),
            known: Mutex::new(HashMap::new()),
            keys: Mutex::new(HashMap::new()),
        }
    }

    fn pool(&self) -> &sqlx::AnyPool {
        self.engine.store().pool()
    }

    /// Told whenever events were committed.
    pub fn events_written(&self) -> Arc<tokio::sync::Notify> {
        self.written.clone()
    }

    /// Unknown owners are refused before anything is stored for them.
    async fn check_owner(&self, owner: Owner) -> Result<(), Problem> {
        let tables = self.engine.tables().await?;
        let exists = match owner {
            Owner::Store(s) => tables.shop(s).await.map_err(failure::ledger_read)?.is_some(),
            Owner::Partner(p) => tables.exchange_method(p).await.map_err(failure::ledger_read)?.is_some(),
        };
        if exists {
            Ok(())
        } else {
            Err(Problem::new(ProblemKind::UnknownReference, format!("{} does not exist", owner.path())))
        }
    }

    /// The stored settings of `owner`, if it registered any.
    pub async fn stored(&self, owner: Owner) -> Result<Option<Settings>, Problem> {
        if let Some(s) = self.known.lock().expect("not poisoned").get(&owner) {
            return Ok(Some(s.clone()));
        }
        let s = store::settings(self.pool(), owner).await.map_err(failure::embedding)?;
        if let Some(s) = &s {
            self.remember(s);
        }
        Ok(s)
    }

    fn remember(&self, s: &Settings) {
        let mut known = self.known.lock().expect("not poisoned");
        let mut keys = self.keys.lock().expect("not poisoned");
        if known.len() >= SETTINGS_REMEMBERED {
            known.clear();
        }
        if keys.len() >= SETTINGS_REMEMBERED {
            keys.clear();
        }
        known.insert(s.owner, s.clone());
        keys.insert(s.publishable_key.clone(), s.owner);
    }

    /// An owner's settings; not-found before it registered its origins.
    pub async fn settings(&self, owner: Owner) -> Result<EmbedSettings, Problem> {
        let s = self.stored(owner).await?.ok_or_else(|| {
            Problem::new(ProblemKind::NotFound, format!("{} has no embedding settings; PUT them first", owner.path()))
        })?;
        Ok(EmbedSettings {
            publishable_key: s.publishable_key.clone(),
            origins: origins_of(&s),
            webhook_url: s.webhook_url,
        })
    }

    /// Registers an owner's origins and webhook; the first time, its publishable key is made.
    pub async fn put_settings(&self, owner: Owner, r: &EmbedSettingsRequest) -> Result<EmbedSettings, Problem> {
        self.check_owner(owner).await?;
        if r.origins.is_empty() || r.origins.len() > ORIGINS_MAX {
            return Err(invalid(format!("give 1 to {ORIGINS_MAX} origins")));
        }
        let mut origins = r.origins.iter().map(|o| parse_origin(o)).collect::<Result<Vec<_>, _>>()?;
        origins.dedup();
        if let Some(u) = &r.webhook_url {
            parse_webhook_url(u, self.targets)?;
        }
        let key = format!("pk_{}", random_hex());
        let json = serde_json::to_string(&origins).expect("strings serialise");
        // Forgotten before and after: a read between the two may have remembered the old ones.
        self.known.lock().expect("not poisoned").remove(&owner);
        store::put_settings(self.pool(), owner, &key, &json, r.webhook_url.as_deref(), time::now())
            .await
            .map_err(failure::embedding)?;
        self.known.lock().expect("not poisoned").remove(&owner);
        self.settings(owner).await
    }

    /// A new webhook signing secret; the previous ones keep signing for
    /// [`WEBHOOK_SECRET_OVERLAP_HOURS`].
    pub async fn rotate_secret(&self, owner: Owner) -> Result<WebhookSecret, Problem> {
        self.settings(owner).await?;
        let now = time::now();
        let previous = !store::signing_secrets(self.pool(), owner, now).await.map_err(failure::embedding)?.is_empty();
        let secret = format!("whsec_{}", random_hex());
        store::add_webhook_secret(self.pool(), owner, &secret, now).await.map_err(failure::embedding)?;
        Ok(WebhookSecret {
            secret,
            previous_valid_until: previous
                .then(|| time::micros_to_datetime(now + WEBHOOK_SECRET_OVERLAP_HOURS * 3600 * SECOND)),
        })
    }

    /// The settings behind a publishable key; not-found for a key nobody has.
    pub async fn publishable(&self, key: &str) -> Result<Settings, Problem> {
        let unknown = || Problem::new(ProblemKind::NotFound, "no such publishable key");
        if !key.starts_with("pk_") || key.len() != 67 {
            return Err(unknown());
        }
        let owner = self.keys.lock().expect("not poisoned").get(key).copied();
        if let Some(s) = match owner {
            Some(o) => self.stored(o).await?,
            None => None,
        } {
            return Ok(s);
        }
        let s = store::settings_by_publishable_key(self.pool(), key)
            .await
            .map_err(failure::embedding)?
            .ok_or_else(unknown)?;
        self.remember(&s);
        Ok(s)
    }

    /// An owner's events, newest first, created before `before`, with their delivery state.
    pub async fn events(&self, owner: Owner, before: Micros, limit: u32) -> Result<Vec<EventDelivery>, Problem> {
        let rows = store::events(self.pool(), owner, before, i64::from(limit)).await.map_err(failure::embedding)?;
        rows.into_iter()
            .map(|e| {
                let event: WebhookEvent =
                    serde_json::from_str(&e.body).map_err(|x| failure::embedding(anyhow::anyhow!(x)))?;
                let state = match (e.delivered_at, e.failed_at) {
                    (Some(_), _) => DeliveryState::Delivered,
                    (None, Some(_)) => DeliveryState::Failed,
                    (None, None) => DeliveryState::Pending,
                };
                Ok(EventDelivery {
                    event,
                    state,
                    attempts: u32::try_from(e.attempts).unwrap_or(u32::MAX),
                    next_attempt_at: e
                        .next_attempt_at
                        .filter(|_| state == DeliveryState::Pending)
                        .map(time::micros_to_datetime),
                    last_error: e.last_error,
                })
            })
            .collect()
    }

    /// Queues an owner's event for delivery again now.
    pub async fn resend(&self, owner: Owner, event: Uuid) -> Result<(), Problem> {
        if store::resend(self.pool(), owner, event, time::now()).await.map_err(failure::embedding)? {
            Ok(())
        } else {
            Err(Problem::new(ProblemKind::NotFound, format!("{} has no event {event}", owner.path())))
        }
    }

    // ----- signing in inside a widget -----

    /// A card challenge for `purpose` bound to `place` (not to a cookie).
    pub fn nonce(&self, place: WidgetPlace<'_>, purpose: CardPurpose, ip: IpAddr) -> Result<NonceIssued, Problem> {
        let (nonce, life) = self.identity.nonce(&place.binding(), purpose, ip)?;
        let expires_at = time::micros_to_datetime(time::now() + i64::try_from(life.as_micros()).unwrap_or(i64::MAX));
        Ok(NonceIssued { nonce, purpose, expires_at })
    }

    /// Signs the resident in at `place` with exactly one of a password or a card token over a
    /// nonce of that place: the grant, the resident and its profile.
    pub async fn sign_in(
        &self,
        place: WidgetPlace<'_>,
        purpose: CardPurpose,
        password: Option<&PasswordLogin>,
        card: Option<&WidgetCard>,
        ip: IpAddr,
    ) -> Result<(String, i64, Profile), Problem> {
        let (resident, profile) = match (password, card) {
            (Some(p), None) => self.identity.password_sign_in(&p.mykey_id, &p.password, ip).await?,
            (None, Some(c)) => {
                let card = self.identity.verify_card(
                    &c.nonce,
                    &place.binding(),
                    purpose,
                    &SigningContext::Widget,
                    &c.token,
                )?;
                self.identity.card_sign_in(&card).await?.ok_or_else(|| {
                    Problem::new(
                        ProblemKind::Forbidden,
                        "this card has no MyKey ID yet; create one on point-navi first",
                    )
                })?
            }
            _ => return Err(invalid("sign in with exactly one of password or card")),
        };
        Ok((self.issue_grant(place.scope(), resident)?, resident, profile))
    }

    fn issue_grant(&self, scope: GrantScope, resident: i64) -> Result<String, Problem> {
        let grant = random_hex();
        let now = time::now();
        let expires_at = now + WIDGET_GRANT_MINUTES * 60 * SECOND;
        let key: [u8; 32] = Sha256::digest(grant.as_bytes()).into();
        self.grants.lock().expect("not poisoned").issue(key, scope, resident, now, expires_at)?;
        Ok(grant)
    }

    /// Ends the grants of a session that is done (confirmed or cancelled): they open nothing more.
    pub fn end_session(&self, session: Uuid) {
        self.grants.lock().expect("not poisoned").end_session(session);
    }

    /// A grant for `resident` in `scope` without a password or card (feature `testing`:
    /// `mykey-bench` measures confirmations and redemptions, not argon2 or RSA).
    #[cfg(feature = "testing")]
    pub fn testing_grant(&self, scope: GrantScope, resident: i64) -> String {
        self.issue_grant(scope, resident).expect("room for a test's grant")
    }

    /// The resident a grant signed in for `scope`, or why not.
    pub fn resident(&self, scope: GrantScope, grant: &str) -> Result<i64, Problem> {
        let key: [u8; 32] = Sha256::digest(grant.as_bytes()).into();
        let found = self.grants.lock().expect("not poisoned").resident(&key, scope, time::now());
        match found {
            Some(resident) => Ok(resident),
            None => Err(Problem::new(
                ProblemKind::Unauthenticated,
                "sign in again: this sign-in is not for here or has ended",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_https_or_loopback_http_and_nothing_after_the_port() {
        assert_eq!(parse_origin("https://store.example").unwrap(), "https://store.example");
        assert_eq!(parse_origin("https://store.example:443").unwrap(), "https://store.example");
        assert_eq!(parse_origin("http://127.0.0.2:8080").unwrap(), "http://127.0.0.2:8080");
        assert_eq!(parse_origin("http://localhost:3000").unwrap(), "http://localhost:3000");
        for bad in [
            "http://store.example",
            "https://store.example/",
            "https://store.example/shop",
            "https://user:pw@store.example",
            "https://store.example?x=1",
            "javascript:alert(1)",
            "https://169.254.169.254",
            "",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
        assert!(parse_url(&format!("https://a.example/{}", "x".repeat(URL_MAX)), "u").is_err());
        assert!(parse_url("https://a.example/\u{0}", "u").is_err());
    }
}
