//! One card (docs/domain.md "One card"): a facility registers the card service whose patron numbers
//! it keeps; at its counter terminal, staff link a resident's MyKey ID to the facility's own
//! patron number with the resident present (card and PIN); afterwards a card read at that
//! facility returns that facility's patron number and nothing else: not the MyKey ID, not the
//! resident, not another facility's number. Linking, unlinking and every look-up are MyKey ID
//! usage events, so leaves of the log.

use mykey_core::identity::FACILITY_KINDS;
use mykey_core::identity::{check_service_id, FacilityService, FacilityServiceRequest, PatronLink, PatronLookup};
use mykey_core::{Problem, ProblemKind};
use sqlx::Connection;
use uuid::Uuid;

use super::card::VerifiedCard;
use super::Identity;
use crate::failure;
use crate::store::identity::{self as id_store, MykeyIdRow};
use crate::store::links::{self, LinkKind};
use crate::time;

impl Identity {
    /// Records (or renames) the card service of a facility.
    pub async fn set_facility_service(
        &self,
        facility: i64,
        req: &FacilityServiceRequest,
    ) -> Result<FacilityService, Problem> {
        let name = req.name.trim();
        if name.is_empty() {
            return Err(
                Problem::new(ProblemKind::InvalidRequest, "a service name is more than spaces").with("field", "name")
            );
        }
        if !FACILITY_KINDS.contains(&req.kind.as_str()) {
            return Err(Problem::new(
                ProblemKind::InvalidRequest,
                format!("kind is one of {}", FACILITY_KINDS.join(", ")),
            )
            .with("field", "kind"));
        }
        let tables = self.engine.tables().await?;
        let known = tables.shop_ties(facility).await.map_err(failure::patron_link)?;
        if known.is_none() {
            return Err(Problem::new(ProblemKind::UnknownReference, format!("facility {facility} does not exist")));
        }
        let mut c = self.pool().acquire().await.map_err(failure::patron_link)?;
        let mut tx = c.begin().await.map_err(failure::patron_link)?;
        links::set_facility_service(&mut tx, facility, name, &req.kind, time::now())
            .await
            .map_err(failure::patron_link)?;
        tx.commit().await.map_err(failure::patron_link)?;
        Ok(FacilityService { facility, name: name.to_owned(), kind: req.kind.clone() })
    }

    /// The facility's service name; refuses a facility without one.
    async fn facility_service(&self, facility: i64) -> Result<String, Problem> {
        let row = links::facility_service(self.pool(), facility).await.map_err(failure::patron_link)?;
        row.ok_or_else(|| {
            Problem::new(ProblemKind::NotFound, format!("facility {facility} has not registered a card service"))
                .with("reason", "no-service")
        })
    }

    /// The live MyKey ID `card` is bound to; 404 for a card without one.
    pub(crate) async fn card_holder(&self, card: &VerifiedCard) -> Result<MykeyIdRow, Problem> {
        id_store::live_by_card(self.pool(), &card.issuer, &card.serial).await.map_err(failure::patron_link)?.ok_or_else(
            || {
                Problem::new(ProblemKind::NotFound, "this card has no live MyKey ID; create one first")
                    .with("reason", "no-mykey-id")
            },
        )
    }

    /// Links the card holder's MyKey ID to the facility's patron number.
    pub async fn link_patron(
        &self,
        facility: i64,
        card: &VerifiedCard,
        patron_number: &str,
    ) -> Result<PatronLink, Problem> {
        let patron_number = patron_number.trim();
        if !check_service_id(patron_number) {
            return Err(Problem::new(ProblemKind::InvalidRequest, "a patron number is 1 to 64 half-width characters")
                .with("field", "patron_number"));
        }
        let service = self.facility_service(facility).await?;
        let row = self.card_holder(card).await?;
        let _one = self.writes.lock().await;
        let taken = links::patron_link_taken(self.pool(), facility, patron_number, row.resident)
            .await
            .map_err(failure::patron_link)?;
        match taken {
            Some((resident, number)) if resident == row.resident && number == patron_number => {
                return self
                    .patron_links(row.resident)
                    .await?
                    .into_iter()
                    .find(|l| l.facility == facility)
                    .ok_or_else(|| failure::patron_link(anyhow::anyhow!("a live patron link vanished")));
            }
            Some((resident, _)) if resident == row.resident => {
                return Err(Problem::new(
                    ProblemKind::ServiceIdTaken,
                    "this MyKey ID is already linked to another patron number here; unlink it first",
                )
                .with("field", "patron_number"))
            }
            Some(_) => {
                return Err(Problem::new(
                    ProblemKind::ServiceIdTaken,
                    "this patron number is linked to another MyKey ID",
                )
                .with("field", "patron_number"))
            }
            None => {}
        }
        let now = time::now();
        let link = PatronLink {
            id: Uuid::new_v4(),
            facility,
            service,
            patron_number: patron_number.to_owned(),
            created_at: time::micros_to_datetime(now),
        };
        let mut c = self.pool().acquire().await.map_err(failure::patron_link)?;
        let mut tx = c.begin().await.map_err(failure::patron_link)?;
        links::insert_patron_link(&mut tx, row.resident, &link, now).await.map_err(failure::patron_link)?;
        self.commit_event(tx, &row, "facility_linked", None).await?;
        Ok(link)
    }

    /// A card read at the facility: its patron number for the card's holder, nothing else.
    pub async fn look_up_patron(&self, facility: i64, card: &VerifiedCard) -> Result<PatronLookup, Problem> {
        self.facility_service(facility).await?;
        let row = self.card_holder(card).await?;
        let number = links::patron_number(self.pool(), facility, row.resident).await.map_err(failure::patron_link)?;
        let patron_number = number.ok_or_else(|| {
            Problem::new(ProblemKind::NotFound, "this MyKey ID is not linked to a patron number at this facility")
                .with("reason", "not-linked")
        })?;
        let mut c = self.pool().acquire().await.map_err(failure::patron_link)?;
        let tx = c.begin().await.map_err(failure::patron_link)?;
        self.commit_event(tx, &row, "facility_lookup", None).await?;
        Ok(PatronLookup { patron_number })
    }

    /// The resident's live patron links.
    pub async fn patron_links(&self, resident: i64) -> Result<Vec<PatronLink>, Problem> {
        links::patron_links(self.pool(), resident).await.map_err(failure::patron_link)
    }

    /// The resident cuts a patron link: the facility's card reads no longer find them.
    pub async fn unlink_patron(&self, resident: i64, link: Uuid) -> Result<(), Problem> {
        self.revoke_link(resident, link, LinkKind::Patron).await
    }
}
