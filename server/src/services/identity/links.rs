//! Service links. ID linkage (docs/domain.md "Partner conversion", method 1): a resident links a
//! partner's service ID to their MyKey ID on my page; the partner pushes conversions for that
//! service ID, idempotent by the partner's own reference. Online services (an online shop, a
//! crowdfunding site): the resident links their member ID there and the service's stores
//! charge points by it, idempotent by the store's reference. An unlinked or revoked service
//! ID is refused. Linking and unlinking are MyKey ID usage events (so leaves of the log).

use mykey_core::api::{ConversionRequest, PaymentRequest};
use mykey_core::identity::{
    check_service_id, LinkTarget, LinkedConversionRequest, LinkedPaymentRequest, ServiceLink, ServiceLinkRequest,
};
use mykey_core::text::{Memo, Reference, MEMO_MAX, REFERENCE_MAX};
use mykey_core::{Problem, ProblemKind};
use sha2::{Digest, Sha256};
use sqlx::Connection;
use uuid::Uuid;

use super::Identity;
use crate::engine::{Answer, Request};
use crate::failure;
use crate::store::links::{self, LinkKind, LinkScope};
use crate::time;

/// Past owners a retried linked request is matched against: an ID linked and unlinked more
/// often than this answers 409 for its oldest requests.
const PAST_OWNERS_MAX: i64 = 16;

impl Identity {
    /// The resident's live service links.
    pub async fn links(&self, resident: i64) -> Result<Vec<ServiceLink>, Problem> {
        links::service_links(self.pool(), resident).await.map_err(failure::service_link)
    }

    /// Links a partner's or an online service's member ID to the resident's MyKey ID.
    pub async fn link(&self, resident: i64, req: &ServiceLinkRequest) -> Result<ServiceLink, Problem> {
        let service_id = req.service_id.trim();
        if !check_service_id(service_id) {
            return Err(Problem::new(ProblemKind::InvalidRequest, "a service ID is 1 to 64 half-width characters")
                .with("field", "service_id"));
        }
        let target = req.target().ok_or_else(|| {
            Problem::new(ProblemKind::InvalidRequest, "name exactly one of partner and online_service")
        })?;
        let (partner, online) = match target {
            LinkTarget::Partner(p) => {
                self.check_linkage_partner(p).await?;
                (p, 0)
            }
            LinkTarget::OnlineService(o) => {
                let known = crate::services::catalog::Catalog::new(&self.engine)
                    .online_service(o)
                    .await
                    .map_err(failure::service_link)?;
                if known.is_none() {
                    return Err(Problem::new(
                        ProblemKind::UnknownReference,
                        format!("online service {o} does not exist"),
                    ));
                }
                (0, o)
            }
        };
        let row = self.live(resident).await?;
        let _one = self.writes.lock().await;
        if let Some(owner) = self.link_owner(partner, online, service_id).await? {
            if owner == resident {
                return self
                    .links(resident)
                    .await?
                    .into_iter()
                    .find(|l| {
                        l.service_id == service_id
                            && l.partner.unwrap_or(0) == partner
                            && l.online_service.unwrap_or(0) == online
                    })
                    .ok_or_else(|| failure::service_link(anyhow::anyhow!("a live link vanished")));
            }
            return Err(Problem::new(ProblemKind::ServiceIdTaken, "this service ID is linked to another MyKey ID")
                .with("field", "service_id"));
        }
        let now = time::now();
        let link = ServiceLink {
            id: Uuid::new_v4(),
            partner: (partner != 0).then_some(partner),
            online_service: (online != 0).then_some(online),
            service_id: service_id.to_owned(),
            created_at: time::micros_to_datetime(now),
        };
        let mut c = self.pool().acquire().await.map_err(failure::service_link)?;
        let mut tx = c.begin().await.map_err(failure::service_link)?;
        links::insert_service_link(&mut tx, resident, &link, now).await.map_err(failure::service_link)?;
        self.commit_event(tx, &row, "service_linked", None).await?;
        Ok(link)
    }

    /// Refuses partners that do not convert by ID linkage.
    async fn check_linkage_partner(&self, partner: i64) -> Result<(), Problem> {
        match self.engine.tables().await?.exchange_method(partner).await.map_err(failure::service_link)? {
            None => Err(Problem::new(ProblemKind::UnknownReference, format!("partner {partner} does not exist"))),
            Some(m) if m != "id_linkage" => Err(Problem::new(
                ProblemKind::InvalidRequest,
                "this partner converts with coupon codes, not with a linked service ID",
            )),
            Some(_) => Ok(()),
        }
    }

    /// The resident holding a live link (partner or online service, the other 0).
    async fn link_owner(&self, partner: i64, online: i64, service_id: &str) -> Result<Option<i64>, Problem> {
        links::live_owner(self.pool(), LinkScope { partner, online_service: online }, service_id)
            .await
            .map_err(failure::service_link)
    }

    /// Revokes one of the resident's links: the partner can no longer convert for it, the
    /// online service no longer charge by it.
    pub async fn unlink(&self, resident: i64, link: Uuid) -> Result<(), Problem> {
        self.revoke_link(resident, link, LinkKind::Service).await
    }

    /// Marks a live link of the resident revoked and records the usage event, in one
    /// transaction.
    pub(super) async fn revoke_link(&self, resident: i64, link: Uuid, which: LinkKind) -> Result<(), Problem> {
        let row = self.live(resident).await?;
        let mut c = self.pool().acquire().await.map_err(failure::service_link)?;
        let mut tx = c.begin().await.map_err(failure::service_link)?;
        let done = links::revoke(&mut tx, which, link, resident, time::now()).await.map_err(failure::service_link)?;
        if !done {
            return Err(Problem::new(ProblemKind::NotFound, "no such live link"));
        }
        self.commit_event(tx, &row, unlinked_event(which), None).await?;
        Ok(())
    }

    /// A partner's conversion for a linked service ID: reserved points for its resident.
    pub async fn linked_conversion(&self, partner: i64, req: &LinkedConversionRequest) -> Result<Answer, Problem> {
        // The partner's reference is its idempotency key: one conversion per reference.
        let id = reference_id(&format!("linked:{partner}"), &req.reference);
        let service_id = req.service_id.trim();
        let principal = format!("partner:{partner}");
        let conversion = |resident| {
            Request::Conversion(ConversionRequest {
                id,
                partner,
                resident,
                partner_points: req.partner_points,
                rate: req.rate,
                memo: Some(linkage_memo(&req.reference)),
            })
        };
        let resident =
            self.owner_for(partner, 0, service_id, id, |r| conversion(r).fingerprint(&principal), "service ID").await?;
        Ok(self.engine.execute(conversion(resident), &principal).await)
    }

    /// An online service's store charges a linked member's points (its municipality's).
    pub async fn linked_payment(&self, shop: i64, req: &LinkedPaymentRequest) -> Result<Answer, Problem> {
        // The store's reference is its idempotency key: one payment per order.
        let id = reference_id(&format!("linked-payment:{shop}"), &req.reference);
        let tables = self.engine.tables().await?;
        let store = tables.shop_ties(shop).await.map_err(failure::service_link)?;
        let (municipality, online) =
            store.ok_or_else(|| Problem::new(ProblemKind::UnknownReference, format!("shop {shop} does not exist")))?;
        if online == 0 {
            return Err(Problem::new(
                ProblemKind::InvalidRequest,
                "this store is not part of an online service; charge the card at a terminal instead",
            ));
        }
        let service_id = req.service_id.trim();
        let principal = format!("store:{shop}");
        let payment = |resident| {
            Request::Payment(PaymentRequest {
                id,
                resident,
                municipality,
                event: None,
                shop,
                amount: req.amount,
                memo: req.memo.clone(),
            })
        };
        let resident =
            self.owner_for(0, online, service_id, id, |r| payment(r).fingerprint(&principal), "member ID").await?;
        Ok(self.engine.execute(payment(resident), &principal).await)
    }

    /// The resident a linked request `id` is for: the live link's owner; or, for a request
    /// answered before the link was cut (`id` known), the past owner whose request has the
    /// stored fingerprint, so that the retry replays (else the latest past owner, so that a
    /// different body gets the usual 409). A new request for an unlinked ID is refused.
    async fn owner_for(
        &self,
        partner: i64,
        online: i64,
        service_id: &str,
        id: Uuid,
        fingerprint: impl Fn(i64) -> String,
        noun: &str,
    ) -> Result<i64, Problem> {
        if let Some(r) = self.link_owner(partner, online, service_id).await? {
            return Ok(r);
        }
        let not_linked = || {
            Problem::new(
                ProblemKind::ServiceIdNotLinked,
                format!("no MyKey ID has linked this {noun} (or it was unlinked)"),
            )
        };
        let Some(stored) = self.engine.stored_response(id).await? else {
            return Err(not_linked());
        };
        let scope = LinkScope { partner, online_service: online };
        let owners =
            links::past_owners(self.pool(), scope, service_id, PAST_OWNERS_MAX).await.map_err(failure::service_link)?;
        owners
            .iter()
            .copied()
            .find(|&r| fingerprint(r) == stored.fingerprint)
            .or(owners.first().copied())
            .ok_or_else(not_linked)
    }
}

/// The memo of a linked conversion: the partner's reference.
fn linkage_memo(reference: &Reference) -> Memo {
    const PREFIX: &str = "ID linkage ";
    const _: () = assert!(PREFIX.len() + REFERENCE_MAX <= MEMO_MAX, "a reference fits a memo");
    Memo::parse(format!("{PREFIX}{reference}")).expect("a reference is one line without control characters")
}

/// The request id of a partner's or store's `reference` under `scope`: the same reference
/// always gives the same id.
fn reference_id(scope: &str, reference: &Reference) -> Uuid {
    let digest = Sha256::digest(format!("{scope}:{reference}").as_bytes());
    uuid::Builder::from_random_bytes(digest[..16].try_into().expect("16 bytes")).into_uuid()
}

/// The usage event of cutting a link of `kind`.
pub(super) fn unlinked_event(kind: LinkKind) -> &'static str {
    match kind {
        LinkKind::Service => "service_unlinked",
        LinkKind::Patron => "facility_unlinked",
    }
}
