//! Proven ID links (docs/partners.md): a partner's server (or an online service's store), which
//! knows its signed-in member, opens a link session naming the member's service ID with its
//! secret key; the resident, signed in to MyKey inside the widget, confirms it; only then is the
//! link live and do linked conversions (or charges) for that ID flow. The opener hears of the
//! confirmation and of the resident cutting the link by webhook.

use std::net::IpAddr;
use std::sync::Arc;

use mykey_core::api::{
    LinkNotice, LinkSession, LinkSessionCreated, LinkSessionRequest, LinkState, LinkView, MandateOffer, PartnerEvent,
    PartnerEventType, WidgetGrant, WidgetSignIn, WidgetSignedIn,
};
use mykey_core::identity::{check_service_id, CardPurpose, LinkTarget, NonceIssued, ServiceLink};
use mykey_core::rules::{LINK_OPEN_SECONDS, LINK_OPEN_SECONDS_RANGE};
use mykey_core::{Problem, ProblemKind};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::engine::Engine;
use crate::failure;
use crate::services::embedding::{check_return_url, origins_of, Embedding, GrantScope, Owner, WidgetPlace};
use crate::services::identity::mandates;
use crate::services::identity::{Identity, LinkProof, MandateGrant};
use crate::store::embedding::NewEvent;
use crate::store::links::{self as store, LinkScope, LinkSessionRow};
use crate::store::mandates::MandateRow;
use crate::time::{self, Micros, SECOND};

/// Link sessions over the identity service.
pub struct Links {
    engine: Engine,
    embedding: Arc<Embedding>,
    identity: Arc<Identity>,
    /// Client secrets derive from it, so a retried request gets the same secret.
    key: [u8; 32],
}

fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn not_found(id: Uuid) -> Problem {
    Problem::new(ProblemKind::NotFound, format!("link session {id} does not exist"))
}

fn state_of(s: &LinkSessionRow, now: Micros) -> LinkState {
    match LinkState::parse(&s.state) {
        Some(LinkState::Open) if s.expires_at <= now => LinkState::Expired,
        Some(state) => state,
        None => LinkState::Cancelled,
    }
}

fn view(s: &LinkSessionRow) -> LinkSession {
    LinkSession {
        id: s.id,
        state: state_of(s, time::now()),
        partner: (s.scope.partner != 0).then_some(s.scope.partner),
        online_service: (s.scope.online_service != 0).then_some(s.scope.online_service),
        service_id: s.service_id.clone(),
        link: s.link,
        return_url: s.return_url.clone(),
        created_at: time::micros_to_datetime(s.created_at),
        expires_at: time::micros_to_datetime(s.expires_at),
        confirmed_at: s.confirmed_at.map(time::micros_to_datetime),
        mandate: s.mandate,
        mandate_id: None,
    }
}

/// A `link.*` event for `owner` about `link`.
pub fn link_event(owner: Owner, kind: PartnerEventType, notice: LinkNotice) -> NewEvent {
    let now = time::now();
    let e = PartnerEvent {
        id: Uuid::new_v4(),
        kind,
        created_at: time::micros_to_datetime(now),
        redemption: None,
        link: Some(notice),
        mandate: None,
    };
    NewEvent {
        id: e.id,
        owner,
        subject: e.link.as_ref().expect("a link event").link,
        kind: kind.as_str(),
        body: serde_json::to_string(&e).expect("events serialise"),
        created_at: now,
    }
}

/// A `mandate.revoked` event for the store `m` was granted to; one link's events (and so its
/// mandate's) are delivered in order.
pub fn mandate_revoked_event(m: &MandateRow) -> NewEvent {
    let now = time::now();
    let e = PartnerEvent {
        id: Uuid::new_v4(),
        kind: PartnerEventType::MandateRevoked,
        created_at: time::micros_to_datetime(now),
        redemption: None,
        link: None,
        mandate: Some(mandates::for_store(m, now)),
    };
    NewEvent {
        id: e.id,
        owner: Owner::Store(m.shop),
        subject: m.link,
        kind: PartnerEventType::MandateRevoked.as_str(),
        body: serde_json::to_string(&e).expect("events serialise"),
        created_at: now,
    }
}

impl Links {
    /// Link sessions over `engine`; client secrets derive from `key`.
    pub fn new(engine: Engine, embedding: Arc<Embedding>, identity: Arc<Identity>, key: [u8; 32]) -> Links {
        Links { engine, embedding, identity, key }
    }

    fn pool(&self) -> &sqlx::AnyPool {
        self.engine.store().pool()
    }

    /// Whether `owner` may open sessions for `target`: the partner itself (an ID-linkage
    /// partner), or a store of the online service.
    async fn check_opener(&self, owner: Owner, target: LinkTarget) -> Result<LinkScope, Problem> {
        let refused = |what: String| Problem::new(ProblemKind::Forbidden, what);
        match (owner, target) {
            (Owner::Partner(p), LinkTarget::Partner(q)) if p == q => {
                self.identity.check_linkage_partner(p).await?;
                Ok(LinkScope { partner: p, online_service: 0 })
            }
            (Owner::Store(shop), LinkTarget::OnlineService(o)) => {
                let ties = self.engine.tables().await?.shop_ties(shop).await.map_err(failure::service_link)?;
                match ties {
                    Some((_, online)) if online == o => Ok(LinkScope { partner: 0, online_service: o }),
                    _ => Err(refused(format!("shop {shop} is not a store of online service {o}"))),
                }
            }
            _ => Err(refused("a partner opens link sessions for its own members only".into())),
        }
    }

    /// `<id>_secret_<HMAC-SHA-256(key, id)>`: only its hash is stored.
    fn client_secret(&self, id: Uuid) -> String {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(b"mykey link client secret\0");
        mac.update(id.as_bytes());
        format!("{id}_secret_{}", hex::encode(mac.finalize().into_bytes()))
    }

    /// Opens a session (or gives the one the same request opened).
    pub async fn create(&self, owner: Owner, r: &LinkSessionRequest) -> Result<LinkSessionCreated, Problem> {
        let target = LinkTarget::of(r.partner, r.online_service).ok_or_else(|| {
            Problem::new(ProblemKind::InvalidRequest, "name exactly one of partner and online_service")
        })?;
        let service_id = r.service_id.trim();
        if !check_service_id(service_id) {
            return Err(Problem::new(ProblemKind::InvalidRequest, "a service ID is 1 to 64 half-width characters")
                .with("field", "service_id"));
        }
        let seconds = r.expires_in_seconds.unwrap_or(LINK_OPEN_SECONDS);
        if !LINK_OPEN_SECONDS_RANGE.contains(&seconds) {
            return Err(Problem::new(
                ProblemKind::InvalidRequest,
                format!(
                    "expires_in_seconds must be {} to {}",
                    LINK_OPEN_SECONDS_RANGE.start(),
                    LINK_OPEN_SECONDS_RANGE.end()
                ),
            ));
        }
        let scope = self.check_opener(owner, target).await?;
        if let Some(terms) = &r.mandate {
            if !matches!(owner, Owner::Store(_)) {
                return Err(Problem::new(
                    ProblemKind::InvalidRequest,
                    "only an online store asks for a mandate: it is a permission to charge",
                )
                .with("field", "mandate"));
            }
            terms.check(mandates::today()).map_err(|why| {
                Problem::new(ProblemKind::InvalidRequest, format!("mandate: {why}")).with("field", "mandate")
            })?;
        }
        let settings = self.embedding.stored(owner).await?.ok_or_else(|| {
            Problem::new(ProblemKind::InvalidRequest, format!("register origins first ({})", owner.settings_path()))
        })?;
        if let Some(u) = &r.return_url {
            check_return_url(&settings, u)?;
        }
        let fingerprint = hex::encode(Sha256::digest(serde_json::to_vec(r).expect("serialisable")));
        if let Some(s) =
            store::link_session_by_request(self.pool(), &owner.key(), r.id).await.map_err(failure::service_link)?
        {
            return self.replay(s, &fingerprint);
        }
        let now = time::now();
        let id = Uuid::new_v4();
        let secret = self.client_secret(id);
        let row = LinkSessionRow {
            id,
            owner: owner.key(),
            request_id: r.id,
            fingerprint: fingerprint.clone(),
            secret_hash: secret_hash(&secret),
            scope,
            service_id: service_id.to_owned(),
            state: LinkState::Open.as_str().to_owned(),
            return_url: r.return_url.clone(),
            resident: None,
            link: None,
            created_at: now,
            expires_at: now + i64::from(seconds) * SECOND,
            confirmed_at: None,
            mandate: r.mandate,
        };
        if !store::insert_link_session(self.pool(), &row).await.map_err(failure::service_link)? {
            let s = store::link_session_by_request(self.pool(), &owner.key(), r.id)
                .await
                .map_err(failure::service_link)?
                .ok_or_else(|| failure::service_link(anyhow::anyhow!("a link session vanished")))?;
            return self.replay(s, &fingerprint);
        }
        Ok(LinkSessionCreated { session: view(&row), client_secret: secret })
    }

    fn replay(&self, s: LinkSessionRow, fingerprint: &str) -> Result<LinkSessionCreated, Problem> {
        if s.fingerprint != fingerprint {
            return Err(Problem::new(
                ProblemKind::IdempotencyConflict,
                format!("id {} opened another link session; use a new id", s.request_id),
            ));
        }
        Ok(LinkSessionCreated { session: view(&s), client_secret: self.client_secret(s.id) })
    }

    async fn owned(&self, owner: Option<Owner>, id: Uuid) -> Result<LinkSessionRow, Problem> {
        let s =
            store::link_session(self.pool(), id).await.map_err(failure::service_link)?.ok_or_else(|| not_found(id))?;
        if owner.is_some_and(|o| o.key() != s.owner) {
            return Err(not_found(id));
        }
        Ok(s)
    }

    /// A session of `owner` (none: the operator, any), with the mandate granted through it.
    pub async fn session(&self, owner: Option<Owner>, id: Uuid) -> Result<LinkSession, Problem> {
        let mut v = view(&self.owned(owner, id).await?);
        if v.mandate.is_some() {
            v.mandate_id = crate::store::mandates::of_session(self.pool(), id).await.map_err(failure::service_link)?;
        }
        Ok(v)
    }

    /// Cancels an open session.
    pub async fn cancel(&self, owner: Option<Owner>, id: Uuid) -> Result<LinkSession, Problem> {
        let s = self.owned(owner, id).await?;
        if !store::cancel_link_session(self.pool(), id).await.map_err(failure::service_link)? {
            return Err(not_open(&s));
        }
        self.embedding.end_session(id);
        self.session(owner, id).await
    }

    /// The origins that may frame the widget for `session` with publishable key `key`.
    pub async fn frame_origins(&self, key: &str, session: Uuid) -> Result<Vec<String>, Problem> {
        let unknown = || Problem::new(ProblemKind::NotFound, "no such publishable key and session");
        let settings = self.embedding.publishable(key).await.map_err(|_| unknown())?;
        let s = store::link_session(self.pool(), session).await.map_err(failure::service_link)?.ok_or_else(unknown)?;
        if s.owner != settings.owner.key() {
            return Err(unknown());
        }
        Ok(origins_of(&settings))
    }

    // ----- the widget's side -----

    async fn by_secret(&self, id: Uuid, secret: &str) -> Result<LinkSessionRow, Problem> {
        let refused =
            || Problem::new(ProblemKind::Unauthenticated, "the client secret does not open this link session");
        let s = store::link_session(self.pool(), id).await.map_err(failure::service_link)?.ok_or_else(refused)?;
        if !crate::secret::same_secret(secret_hash(secret).as_bytes(), s.secret_hash.as_bytes()) {
            return Err(refused());
        }
        Ok(s)
    }

    /// What the widget shows.
    pub async fn client_view(&self, id: Uuid, secret: &str) -> Result<LinkView, Problem> {
        let s = self.by_secret(id, secret).await?;
        let tables = self.engine.tables().await?;
        let service_name = self.service_name(&s).await?;
        let owner = Owner::parse(&s.owner).ok_or_else(|| failure::service_link(anyhow::anyhow!("a bad owner")))?;
        let origins = self.embedding.stored(owner).await?.as_ref().map(origins_of).unwrap_or_default();
        let mandate = match (s.mandate, owner) {
            (Some(terms), Owner::Store(shop)) => {
                let shop_name =
                    tables.shop(shop).await.map_err(failure::ledger_read)?.map(|x| x.name).unwrap_or_default();
                Some(MandateOffer { shop_name, terms })
            }
            _ => None,
        };
        Ok(LinkView {
            mandate,
            id: s.id,
            state: state_of(&s, time::now()),
            service_name,
            service_id: s.service_id.clone(),
            expires_at: time::micros_to_datetime(s.expires_at),
            return_url: s.return_url.clone(),
            origins,
        })
    }

    /// A card challenge for this session's widget.
    pub async fn nonce(&self, id: Uuid, secret: &str, ip: IpAddr) -> Result<NonceIssued, Problem> {
        let s = self.by_secret(id, secret).await?;
        open(&s)?;
        self.embedding.nonce(WidgetPlace::Session(id), CardPurpose::ServiceLink, ip)
    }

    /// Signs the resident in for this session.
    pub async fn sign_in(&self, id: Uuid, r: &WidgetSignIn, ip: IpAddr) -> Result<WidgetSignedIn, Problem> {
        let s = self.by_secret(id, &r.client_secret).await?;
        open(&s)?;
        let (grant, _, profile) = self
            .embedding
            .sign_in(WidgetPlace::Session(id), CardPurpose::ServiceLink, r.password.as_ref(), r.card.as_ref(), ip)
            .await?;
        Ok(WidgetSignedIn { grant, mykey_id: profile.mykey_id.to_string() })
    }

    /// The signed-in resident confirms: the link goes live, once.
    pub async fn confirm(&self, id: Uuid, r: &WidgetGrant) -> Result<LinkView, Problem> {
        let s = self.by_secret(id, &r.client_secret).await?;
        let resident = self.embedding.resident(GrantScope::Session(id), &r.grant)?;
        open(&s)?;
        let owner = Owner::parse(&s.owner).ok_or_else(|| failure::service_link(anyhow::anyhow!("a bad owner")))?;
        let wants_events = self.wants_events(owner).await?;
        let grant = self.mandate_grant(&s, owner).await?;
        let now = time::now();
        let event = |link: Uuid| {
            wants_events.then(|| {
                let mut n = notice(&s, link);
                n.mandate = grant.as_ref().map(|g| mandates::for_store(&g.row(resident, link, s.id, now), now));
                link_event(owner, PartnerEventType::LinkConfirmed, n)
            })
        };
        let link = ServiceLink {
            id: Uuid::new_v4(),
            partner: (s.scope.partner != 0).then_some(s.scope.partner),
            online_service: (s.scope.online_service != 0).then_some(s.scope.online_service),
            service_id: s.service_id.clone(),
            proven: true,
            created_at: time::micros_to_datetime(time::now()),
        };
        let service_name = self.service_name(&s).await?;
        let proof = LinkProof { session: s.id, event: &event, mandate: grant.as_ref(), service_name: &service_name };
        self.identity.link_proven(resident, &link, &proof).await?;
        self.embedding.end_session(id);
        self.client_view(id, &r.client_secret).await
    }

    /// The partner's or online service's name that session `s` links to.
    async fn service_name(&self, s: &LinkSessionRow) -> Result<String, Problem> {
        let name = if s.scope.partner != 0 {
            self.engine.tables().await?.partner_name(s.scope.partner).await.map_err(failure::ledger_read)?
        } else {
            crate::services::catalog::Catalog::new(&self.engine)
                .online_service(s.scope.online_service)
                .await
                .map_err(failure::service_link)?
                .map(|o| o.name)
        };
        Ok(name.unwrap_or_default())
    }

    /// The mandate a store's session asked for, as the resident grants it.
    async fn mandate_grant(&self, s: &LinkSessionRow, owner: Owner) -> Result<Option<MandateGrant>, Problem> {
        let (Some(terms), Owner::Store(shop)) = (s.mandate, owner) else { return Ok(None) };
        let tables = self.engine.tables().await?;
        let found = tables.shop(shop).await.map_err(failure::ledger_read)?;
        let store = found.ok_or_else(|| failure::service_link(anyhow::anyhow!("the opening store {shop} vanished")))?;
        Ok(Some(MandateGrant {
            id: Uuid::new_v4(),
            shop,
            municipality: store.municipality,
            shop_name: store.name,
            terms,
        }))
    }

    /// Whether `owner` registered a webhook URL.
    async fn wants_events(&self, owner: Owner) -> Result<bool, Problem> {
        Ok(self.embedding.stored(owner).await?.is_some_and(|x| x.webhook_url.is_some()))
    }

    /// The resident revokes a mandate on my page; its store hears of it.
    pub async fn revoke_mandate(&self, resident: i64, id: Uuid) -> Result<(), Problem> {
        let shop = crate::store::mandates::mandate(self.pool(), id)
            .await
            .map_err(failure::service_link)?
            .filter(|m| m.resident == resident)
            .map(|m| m.shop);
        let wants = match shop {
            Some(shop) => self.wants_events(Owner::Store(shop)).await?,
            None => false,
        };
        let event = |m: &MandateRow| wants.then(|| mandate_revoked_event(m));
        self.identity.revoke_mandate(resident, id, &event).await
    }

    /// The resident cuts a link (password typed again); the session's opener hears of it.
    pub async fn unlink(&self, resident: i64, link: Uuid, password: &str, ip: IpAddr) -> Result<(), Problem> {
        let session = store::link_session_of_link(self.pool(), link).await.map_err(failure::service_link)?;
        let mut event = None;
        let mut mandate_events = false;
        if let Some(s) = session.filter(|s| s.resident == Some(resident)) {
            if let Some(owner) = Owner::parse(&s.owner) {
                if self.wants_events(owner).await? {
                    event = Some(link_event(owner, PartnerEventType::LinkRevoked, notice(&s, link)));
                    mandate_events = matches!(owner, Owner::Store(_));
                }
            }
        }
        let mandate_event = |m: &MandateRow| mandate_events.then(|| mandate_revoked_event(m));
        self.identity.unlink(resident, link, password, ip, event, &mandate_event).await
    }
}

fn not_open(s: &LinkSessionRow) -> Problem {
    let state = state_of(s, time::now());
    Problem::new(ProblemKind::LinkNotOpen, format!("link session {} is {}", s.id, state.as_str()))
        .with("state", state.as_str())
}

fn open(s: &LinkSessionRow) -> Result<(), Problem> {
    if state_of(s, time::now()) == LinkState::Open {
        Ok(())
    } else {
        Err(not_open(s))
    }
}

/// What a `link.*` event says of `link`, made through session `s`.
fn notice(s: &LinkSessionRow, link: Uuid) -> LinkNotice {
    LinkNotice {
        link,
        session: Some(s.id),
        partner: (s.scope.partner != 0).then_some(s.scope.partner),
        online_service: (s.scope.online_service != 0).then_some(s.scope.online_service),
        service_id: s.service_id.clone(),
        mandate: None,
    }
}
