//! A resident's standing mandates (issue 23): granted with a proven link
//! ([`Identity::link_proven`]), listed with what was charged under each, revoked at once (and
//! with the link they came with). Every grant, charge and revocation is a usage event in the
//! tamper-evident history and an e-mail notice of the `payments` kind.

use mykey_core::api::{japan_date, mandate_month, MandateState, ResidentMandate, MANDATE_CHARGES_SHOWN};
use mykey_core::{Problem, ProblemKind};
use sqlx::Connection;
use uuid::Uuid;

use super::{Identity, MandateGrant};
use crate::failure;
use crate::outbox::mail::Kind;
use crate::store::embedding::NewEvent;
use crate::store::mandates::{self as store, MandateRow};
use crate::time::{self, Micros};

/// Mandates listed on my page, newest first.
pub const MANDATES_SHOWN: i64 = 100;

impl MandateGrant {
    /// The row it becomes, granted by `resident` with `link` through `session` at `now`.
    pub fn row(&self, resident: i64, link: Uuid, session: Uuid, now: Micros) -> MandateRow {
        MandateRow {
            id: self.id,
            shop: self.shop,
            resident,
            municipality: self.municipality,
            link,
            session,
            terms: self.terms,
            ends_at: self.terms.ends_at().timestamp_micros(),
            revoked_at: None,
            granted_at: now,
        }
    }

    /// The notice's text.
    pub(super) fn notice(&self) -> String {
        format!(
            "{}に、継続して支払うことを許可しました。\n\
             1回あたり{}ポイントまで、1か月あたり{}ポイントまで、{}まで有効です。\n\
             マイページの「継続支払いの許可」でいつでも取り消せます。",
            self.shop_name,
            self.terms.max_per_charge,
            self.terms.max_per_month,
            self.terms.ends_on.format("%Y年%m月%d日"),
        )
    }
}

/// Where `m` stands at `now`.
pub fn state_of(m: &MandateRow, now: Micros) -> MandateState {
    if m.revoked_at.is_some() {
        MandateState::Revoked
    } else if now >= m.ends_at {
        MandateState::Ended
    } else {
        MandateState::Active
    }
}

/// `m` as the store it was granted to sees it.
pub fn for_store(m: &MandateRow, now: Micros) -> mykey_core::api::Mandate {
    mykey_core::api::Mandate {
        id: m.id,
        shop: m.shop,
        terms: m.terms,
        state: state_of(m, now),
        granted_at: time::micros_to_datetime(m.granted_at),
        revoked_at: m.revoked_at.map(time::micros_to_datetime),
    }
}

impl Identity {
    /// The resident's mandates with what was charged under each this month and lately.
    pub async fn mandates(&self, resident: i64) -> Result<Vec<ResidentMandate>, Problem> {
        let rows = store::mandates_of(self.pool(), resident, MANDATES_SHOWN).await.map_err(failure::service_link)?;
        let now = time::now();
        let month = mandate_month(time::micros_to_datetime(now));
        let tables = self.engine.tables().await?;
        let mut out = Vec::with_capacity(rows.len());
        for m in rows {
            let shop_name =
                tables.shop(m.shop).await.map_err(failure::ledger_read)?.map(|s| s.name).unwrap_or_default();
            let charged_this_month =
                store::charged_in(self.pool(), m.id, &month).await.map_err(failure::service_link)?;
            let charges = store::charges_of(self.pool(), m.id, MANDATE_CHARGES_SHOWN as i64)
                .await
                .map_err(failure::service_link)?;
            out.push(ResidentMandate {
                id: m.id,
                shop: m.shop,
                shop_name,
                terms: m.terms,
                state: state_of(&m, now),
                granted_at: time::micros_to_datetime(m.granted_at),
                revoked_at: m.revoked_at.map(time::micros_to_datetime),
                charged_this_month,
                charges,
            });
        }
        Ok(out)
    }

    /// The resident revokes an active mandate: from now on it charges nothing; the store hears
    /// of it by `event` (given the revoked row).
    pub async fn revoke_mandate(
        &self,
        resident: i64,
        id: Uuid,
        event: &(dyn Fn(&MandateRow) -> Option<NewEvent> + Send + Sync),
    ) -> Result<(), Problem> {
        let row = self.live(resident).await?;
        let not_found = || Problem::new(ProblemKind::NotFound, "you have no active mandate with that id");
        let found = store::mandate(self.pool(), id).await.map_err(failure::service_link)?;
        let shop = found.filter(|m| m.resident == resident).ok_or_else(not_found)?.shop;
        // Read before the transaction: waiting for the tables while holding SQLite's write
        // lock would wait for ever.
        let name = self.shop_name(shop).await?;
        let mut c = self.pool().acquire().await.map_err(failure::service_link)?;
        let mut tx = c.begin().await.map_err(failure::service_link)?;
        let now = time::now();
        let m =
            store::revoke(&mut tx, id, resident, now).await.map_err(failure::service_link)?.ok_or_else(not_found)?;
        if let Some(e) = event(&m) {
            crate::store::embedding::insert_event(&mut tx, &e).await.map_err(failure::service_link)?;
        }
        let what =
            format!("{name}への継続支払いの許可を取り消しました。今後、{name}はこの許可で支払いを受けられません。");
        self.commit_event(tx, &row, "mandate_revoked", Some((Kind::Payments, &what))).await
    }

    /// Inside an unlink's transaction: revokes the link's active mandates; their rows.
    pub(super) async fn revoke_mandates_of_link(
        &self,
        tx: &mut sqlx::AnyConnection,
        resident: i64,
        link: Uuid,
        now: Micros,
    ) -> Result<Vec<MandateRow>, Problem> {
        let mut revoked = Vec::new();
        for id in store::active_of_link(tx, link).await.map_err(failure::service_link)? {
            if let Some(m) = store::revoke(tx, id, resident, now).await.map_err(failure::service_link)? {
                revoked.push(m);
            }
        }
        Ok(revoked)
    }

    /// Once the ledger committed charge `request` under `m`: marks it charged and, the first
    /// time, records the usage event. (The resident's e-mail is the ledger's payment notice,
    /// sent for every payment.)
    pub async fn record_mandate_charge(&self, m: &MandateRow, request: Uuid) -> Result<(), Problem> {
        let row = self.live(m.resident).await?;
        let mut c = self.pool().acquire().await.map_err(failure::service_link)?;
        let mut tx = c.begin().await.map_err(failure::service_link)?;
        if !store::mark_charged(&mut tx, request).await.map_err(failure::service_link)? {
            return Ok(());
        }
        self.commit_event(tx, &row, "mandate_charged", None).await
    }

    async fn shop_name(&self, shop: i64) -> Result<String, Problem> {
        let tables = self.engine.tables().await?;
        Ok(tables.shop(shop).await.map_err(failure::ledger_read)?.map(|s| s.name).unwrap_or_default())
    }
}

/// Japan's date today, against which terms are checked.
pub fn today() -> chrono::NaiveDate {
    japan_date(time::micros_to_datetime(time::now()))
}
