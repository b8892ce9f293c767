//! Service links. ID linkage (docs/domain.md "Partner conversion", method 1): a link is made
//! only when both sides agree (`services::links`): the partner's server names its member's
//! service ID in a link session and the resident confirms it in the widget; the partner then
//! pushes conversions for that service ID, idempotent by the partner's own reference. Online
//! services (an online shop, a crowdfunding site) link their member IDs the same way; the link
//! alone lets their stores charge nothing: a store charges through a checkout the resident
//! confirms, or under a standing mandate the resident granted with the link
//! (`services::mandates`). An unlinked, revoked or unproven service ID is refused. Linking and
//! unlinking are MyKey ID usage events (so leaves of the log).

use mykey_core::api::ConversionRequest;
use mykey_core::identity::{LinkedConversionRequest, ServiceLink};
use mykey_core::text::{Memo, Reference, MEMO_MAX, REFERENCE_MAX};
use mykey_core::{Problem, ProblemKind};
use sqlx::Connection;
use uuid::Uuid;

use super::{Identity, LinkProof};
use crate::engine::{derived_id, Executed, Request};
use crate::failure;
use crate::outbox::mail::Kind;
use crate::store::links::{self, LinkKind, LinkScope};
use crate::store::mandates::MandateRow;
use crate::time;

/// Past owners a retried linked request is matched against: an ID linked and unlinked more
/// often than this answers 409 for its oldest requests.
const PAST_OWNERS_MAX: i64 = 16;

impl Identity {
    /// The resident's live service links.
    pub async fn links(&self, resident: i64) -> Result<Vec<ServiceLink>, Problem> {
        links::service_links(self.pool(), resident).await.map_err(failure::service_link)
    }

    /// Makes the link that link session `proof` proved: `link` for `resident`, written with
    /// the session's confirmation and the partner's event in one transaction. An ID already
    /// linked to this resident gives that link (the session confirms it); linked to another
    /// resident, it is refused.
    pub async fn link_proven(
        &self,
        resident: i64,
        link: &ServiceLink,
        proof: &LinkProof<'_>,
    ) -> Result<ServiceLink, Problem> {
        let (partner, online) = (link.partner.unwrap_or(0), link.online_service.unwrap_or(0));
        let scope = LinkScope { partner, online_service: online };
        let row = self.live(resident).await?;
        let _one = self.writes.lock().await;
        let now = time::now();
        let existing = match self.link_owner(partner, online, &link.service_id).await? {
            Some(owner) if owner != resident => {
                return Err(Problem::new(
                    ProblemKind::ServiceIdTaken,
                    "this member ID is linked to another MyKey ID; that MyKey ID must cut the link first",
                ))
            }
            Some(_) => self.links(resident).await?.into_iter().find(|l| {
                l.proven
                    && l.service_id == link.service_id
                    && l.partner.unwrap_or(0) == partner
                    && l.online_service.unwrap_or(0) == online
            }),
            None => None,
        };
        let made = existing.clone().unwrap_or_else(|| link.clone());
        let mut c = self.pool().acquire().await.map_err(failure::service_link)?;
        let mut tx = c.begin().await.map_err(failure::service_link)?;
        if !links::confirm_link_session(&mut tx, proof.session, resident, made.id, now)
            .await
            .map_err(failure::service_link)?
        {
            return Err(Problem::new(ProblemKind::LinkNotOpen, "this link session is no longer open"));
        }
        if existing.is_none() {
            links::retire_unproven(&mut tx, resident, scope, &link.service_id, now)
                .await
                .map_err(failure::service_link)?;
            links::insert_service_link(&mut tx, resident, &made, now).await.map_err(failure::service_link)?;
        }
        if let Some(e) = (proof.event)(made.id) {
            crate::store::embedding::insert_event(&mut tx, &e).await.map_err(failure::service_link)?;
        }
        let linked = format!("{} の会員ID {} をマイキーIDと連携しました。", proof.service_name, made.service_id);
        match proof.mandate {
            None => self.commit_event(tx, &row, "service_linked", Some((Kind::Payments, &linked))).await?,
            Some(grant) => {
                let m = grant.row(resident, made.id, proof.session, now);
                crate::store::mandates::insert_mandate(&mut tx, &m).await.map_err(failure::service_link)?;
                let what = format!("{linked}\n{}", grant.notice());
                self.commit_events(tx, &row, &["service_linked", "mandate_granted"], Some((Kind::Payments, &what)))
                    .await?
            }
        }
        Ok(made)
    }

    /// Refuses unknown partners. Every partner may link its members' IDs (the link is proven
    /// by its own server's session), whatever exchange method it offers first.
    pub(crate) async fn check_linkage_partner(&self, partner: i64) -> Result<(), Problem> {
        match self.engine.tables().await?.exchange_method(partner).await.map_err(failure::service_link)? {
            None => Err(Problem::new(ProblemKind::UnknownReference, format!("partner {partner} does not exist"))),
            Some(_) => Ok(()),
        }
    }

    /// The resident holding a live link (partner or online service, the other 0).
    async fn link_owner(&self, partner: i64, online: i64, service_id: &str) -> Result<Option<i64>, Problem> {
        links::live_owner(self.pool(), LinkScope { partner, online_service: online }, service_id)
            .await
            .map_err(failure::service_link)
    }

    /// Revokes one of the resident's links once the password is typed again: the partner can
    /// no longer convert for it, the online service no longer charge by it; `event` (given the
    /// link) tells the service's server.
    pub async fn unlink(
        &self,
        resident: i64,
        link: Uuid,
        password: &str,
        ip: std::net::IpAddr,
        event: Option<crate::store::embedding::NewEvent>,
        mandate_event: &(dyn Fn(&MandateRow) -> Option<crate::store::embedding::NewEvent> + Send + Sync),
    ) -> Result<(), Problem> {
        let row = self.live(resident).await?;
        self.confirm_password(&row, password, ip).await?;
        let mut c = self.pool().acquire().await.map_err(failure::service_link)?;
        let mut tx = c.begin().await.map_err(failure::service_link)?;
        let now = time::now();
        let done =
            links::revoke(&mut tx, LinkKind::Service, link, resident, now).await.map_err(failure::service_link)?;
        if !done {
            return Err(Problem::new(ProblemKind::NotFound, "no such link"));
        }
        if let Some(e) = event {
            crate::store::embedding::insert_event(&mut tx, &e).await.map_err(failure::service_link)?;
        }
        // A mandate came with the link: the store no longer knows the member, and charges nothing.
        let revoked = self.revoke_mandates_of_link(&mut tx, resident, link, now).await?;
        for m in &revoked {
            if let Some(e) = mandate_event(m) {
                crate::store::embedding::insert_event(&mut tx, &e).await.map_err(failure::service_link)?;
            }
        }
        let mut kinds = vec![unlinked_event(LinkKind::Service)];
        kinds.extend(revoked.iter().map(|_| "mandate_revoked"));
        let what = if revoked.is_empty() {
            "サービスIDとマイキーIDの連携を解除しました。"
        } else {
            "サービスIDとマイキーIDの連携を解除しました。そのサービスへの継続支払いの許可も取り消しました。"
        };
        self.commit_events(tx, &row, &kinds, Some((Kind::Payments, what))).await?;
        Ok(())
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
    pub async fn linked_conversion(&self, partner: i64, req: &LinkedConversionRequest) -> Result<Executed, Problem> {
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
        let Some(stored) = self.engine.committed_fingerprint(id).await? else {
            return Err(not_linked());
        };
        let scope = LinkScope { partner, online_service: online };
        let owners =
            links::past_owners(self.pool(), scope, service_id, PAST_OWNERS_MAX).await.map_err(failure::service_link)?;
        owners.iter().copied().find(|&r| fingerprint(r) == stored).or(owners.first().copied()).ok_or_else(not_linked)
    }
}

/// The memo of a linked conversion: the partner's reference.
fn linkage_memo(reference: &Reference) -> Memo {
    const PREFIX: &str = "ID linkage ";
    const _: () = assert!(PREFIX.len() + REFERENCE_MAX <= MEMO_MAX, "a reference fits a memo");
    Memo::parse(format!("{PREFIX}{reference}")).expect("a reference is one line without control characters")
}

/// The request id of a partner's or store's `reference` under `scope` (which names the
/// partner or store): the same reference always gives the same id, and no client can send it.
fn reference_id(scope: &str, reference: &Reference) -> Uuid {
    derived_id(&[scope.as_bytes(), reference.as_str().as_bytes()])
}

/// The usage event of cutting a link of `kind`.
pub(super) fn unlinked_event(kind: LinkKind) -> &'static str {
    match kind {
        LinkKind::Service => "service_unlinked",
        LinkKind::Patron => "facility_unlinked",
    }
}
