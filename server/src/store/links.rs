//! The SQL of links: partners' and online services' member IDs (`service_links`), facilities'
//! card services (`facility_services`) and their patron numbers (`patron_links`).

use mykey_core::identity::{PatronLink, ServiceLink};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AnyPool, Row};
use uuid::Uuid;

use super::uuid_column;

use crate::time::{micros_to_datetime, Micros};

/// Which table a resident's link lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkKind {
    /// A partner's or an online service's member ID.
    Service,
    /// A facility's patron number (one card).
    Patron,
}

/// A partner or an online service (the other one 0), as the `service_links` rows name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkScope {
    /// The partner, or 0.
    pub partner: i64,
    /// The online service, or 0.
    pub online_service: i64,
}

fn service_link_from_row(r: &AnyRow) -> sqlx::Result<ServiceLink> {
    let partner: i64 = r.try_get("partner_id")?;
    let online: i64 = r.try_get("online_service_id")?;
    Ok(ServiceLink {
        id: uuid_column(r, "id")?,
        partner: (partner != 0).then_some(partner),
        online_service: (online != 0).then_some(online),
        service_id: r.try_get("service_id")?,
        proven: r.try_get::<String, _>("status")? == "live",
        created_at: micros_to_datetime(r.try_get("created_at")?),
    })
}

/// The resident's live and unproven service links, oldest first.
pub async fn service_links(pool: &AnyPool, resident: i64) -> sqlx::Result<Vec<ServiceLink>> {
    sqlx::query(
        "SELECT id, partner_id, online_service_id, service_id, status, created_at FROM service_links \
         WHERE resident_id = $1 AND status IN ('live', 'unproven') ORDER BY created_at",
    )
    .bind(resident)
    .fetch_all(pool)
    .await?
    .iter()
    .map(service_link_from_row)
    .collect()
}

/// Inserts a live service link of `resident` inside `tx`.
pub async fn insert_service_link(
    tx: &mut AnyConnection,
    resident: i64,
    link: &ServiceLink,
    now: Micros,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO service_links (id, resident_id, partner_id, online_service_id, service_id, status, created_at) \
         VALUES ($1, $2, $3, $4, $5, 'live', $6)",
    )
    .bind(link.id.to_string())
    .bind(resident)
    .bind(link.partner.unwrap_or(0))
    .bind(link.online_service.unwrap_or(0))
    .bind(link.service_id.clone())
    .bind(now)
    .execute(tx)
    .await?;
    Ok(())
}

/// The resident holding the live link of `service_id` in `scope`.
pub async fn live_owner(pool: &AnyPool, scope: LinkScope, service_id: &str) -> sqlx::Result<Option<i64>> {
    let owner: Option<(i64,)> = sqlx::query_as(
        "SELECT resident_id FROM service_links \
         WHERE partner_id = $1 AND online_service_id = $2 AND service_id = $3 AND status = 'live'",
    )
    .bind(scope.partner)
    .bind(scope.online_service)
    .bind(service_id.to_owned())
    .fetch_optional(pool)
    .await?;
    Ok(owner.map(|(r,)| r))
}

/// The residents who held a now revoked link of `service_id` in `scope`, the latest first, at
/// most `limit`.
pub async fn past_owners(pool: &AnyPool, scope: LinkScope, service_id: &str, limit: i64) -> sqlx::Result<Vec<i64>> {
    let owners: Vec<(i64,)> = sqlx::query_as(
        "SELECT resident_id FROM service_links WHERE partner_id = $1 AND online_service_id = $2 \
         AND service_id = $3 AND status = 'revoked' ORDER BY revoked_at DESC LIMIT $4",
    )
    .bind(scope.partner)
    .bind(scope.online_service)
    .bind(service_id.to_owned())
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(owners.into_iter().map(|(r,)| r).collect())
}

/// Marks the resident's live (or unproven) link `id` revoked inside `tx`; false when there was none.
pub async fn revoke(
    tx: &mut AnyConnection,
    kind: LinkKind,
    id: Uuid,
    resident: i64,
    now: Micros,
) -> sqlx::Result<bool> {
    let sql = match kind {
        LinkKind::Service => {
            "UPDATE service_links SET status = 'revoked', revoked_at = $1 \
             WHERE id = $2 AND resident_id = $3 AND status IN ('live', 'unproven')"
        }
        LinkKind::Patron => {
            "UPDATE patron_links SET status = 'revoked', revoked_at = $1 \
             WHERE id = $2 AND resident_id = $3 AND status = 'live'"
        }
    };
    let done = sqlx::query(sql).bind(now).bind(id.to_string()).bind(resident).execute(tx).await?;
    Ok(done.rows_affected() > 0)
}

/// Records (or renames) the card service of a facility inside `tx`.
pub async fn set_facility_service(
    tx: &mut AnyConnection,
    facility: i64,
    name: &str,
    kind: &str,
    now: Micros,
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM facility_services WHERE shop_id = $1").bind(facility).execute(&mut *tx).await?;
    sqlx::query("INSERT INTO facility_services (shop_id, name, kind, created_at) VALUES ($1, $2, $3, $4)")
        .bind(facility)
        .bind(name.to_owned())
        .bind(kind.to_owned())
        .bind(now)
        .execute(tx)
        .await?;
    Ok(())
}

/// The name of a facility's card service, if it has one.
pub async fn facility_service(pool: &AnyPool, facility: i64) -> sqlx::Result<Option<String>> {
    let row: Option<(String,)> = sqlx::query_as("SELECT name FROM facility_services WHERE shop_id = $1")
        .bind(facility)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|(n,)| n))
}

/// A live patron link at `facility` with `patron_number` or of `resident`: (resident, number).
pub async fn patron_link_taken(
    pool: &AnyPool,
    facility: i64,
    patron_number: &str,
    resident: i64,
) -> sqlx::Result<Option<(i64, String)>> {
    sqlx::query_as(
        "SELECT resident_id, patron_number FROM patron_links \
         WHERE shop_id = $1 AND (patron_number = $2 OR resident_id = $3) AND status = 'live'",
    )
    .bind(facility)
    .bind(patron_number.to_owned())
    .bind(resident)
    .fetch_optional(pool)
    .await
}

/// Inserts a live patron link of `resident` inside `tx`.
pub async fn insert_patron_link(
    tx: &mut AnyConnection,
    resident: i64,
    link: &PatronLink,
    now: Micros,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO patron_links (id, shop_id, resident_id, patron_number, status, created_at) \
         VALUES ($1, $2, $3, $4, 'live', $5)",
    )
    .bind(link.id.to_string())
    .bind(link.facility)
    .bind(resident)
    .bind(link.patron_number.clone())
    .bind(now)
    .execute(tx)
    .await?;
    Ok(())
}

/// The resident's live patron number at `facility`.
pub async fn patron_number(pool: &AnyPool, facility: i64, resident: i64) -> sqlx::Result<Option<String>> {
    let number: Option<(String,)> = sqlx::query_as(
        "SELECT patron_number FROM patron_links WHERE shop_id = $1 AND resident_id = $2 AND status = 'live'",
    )
    .bind(facility)
    .bind(resident)
    .fetch_optional(pool)
    .await?;
    Ok(number.map(|(n,)| n))
}

/// The resident's live patron links with their services' names, oldest first.
pub async fn patron_links(pool: &AnyPool, resident: i64) -> sqlx::Result<Vec<PatronLink>> {
    sqlx::query(
        "SELECT l.id, l.shop_id, l.patron_number, l.created_at, f.name FROM patron_links l \
         JOIN facility_services f ON f.shop_id = l.shop_id \
         WHERE l.resident_id = $1 AND l.status = 'live' ORDER BY l.created_at",
    )
    .bind(resident)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| {
        Ok(PatronLink {
            id: uuid_column(r, "id")?,
            facility: r.try_get("shop_id")?,
            service: r.try_get("name")?,
            patron_number: r.try_get("patron_number")?,
            created_at: micros_to_datetime(r.try_get("created_at")?),
        })
    })
    .collect()
}

/// A link session as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkSessionRow {
    /// Its id.
    pub id: Uuid,
    /// Who opened it: `partner:<id>` or `shop:<id>` (an online service's store).
    pub owner: String,
    /// The opener's idempotency id.
    pub request_id: Uuid,
    /// Hash of the opener's request.
    pub fingerprint: String,
    /// SHA-256 of the client secret, hex.
    pub secret_hash: String,
    /// The partner and online service (the other 0).
    pub scope: LinkScope,
    /// The member's ID.
    pub service_id: String,
    /// `open`, `linked` or `cancelled`.
    pub state: String,
    /// Where the widget sends the resident afterwards.
    pub return_url: Option<String>,
    /// Who confirmed.
    pub resident: Option<i64>,
    /// The link the confirmation made.
    pub link: Option<Uuid>,
    /// Opened at.
    pub created_at: Micros,
    /// An open session expires then.
    pub expires_at: Micros,
    /// Confirmed at.
    pub confirmed_at: Option<Micros>,
    /// The standing mandate the opener (a store) asks for.
    pub mandate: Option<mykey_core::api::MandateTerms>,
}

fn link_session_row(r: &AnyRow) -> sqlx::Result<LinkSessionRow> {
    Ok(LinkSessionRow {
        id: uuid_column(r, "id")?,
        owner: r.try_get("owner")?,
        request_id: uuid_column(r, "request_id")?,
        fingerprint: r.try_get("fingerprint")?,
        secret_hash: r.try_get("secret_hash")?,
        scope: LinkScope { partner: r.try_get("partner_id")?, online_service: r.try_get("online_service_id")? },
        service_id: r.try_get("service_id")?,
        state: r.try_get("state")?,
        return_url: r.try_get("return_url")?,
        resident: r.try_get("resident_id")?,
        link: r
            .try_get::<Option<String>, _>("link_id")?
            .map(|t| Uuid::parse_str(&t))
            .transpose()
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        confirmed_at: r.try_get("confirmed_at")?,
        mandate: mandate_terms(r)?,
    })
}

/// A session's requested mandate: all three columns, or none.
fn mandate_terms(r: &AnyRow) -> sqlx::Result<Option<mykey_core::api::MandateTerms>> {
    let per_charge: Option<i64> = r.try_get("mandate_max_per_charge")?;
    let per_month: Option<i64> = r.try_get("mandate_max_per_month")?;
    let ends_on: Option<String> = r.try_get("mandate_ends_on")?;
    match (per_charge, per_month, ends_on) {
        (Some(max_per_charge), Some(max_per_month), Some(ends_on)) => Ok(Some(mykey_core::api::MandateTerms {
            max_per_charge,
            max_per_month,
            ends_on: ends_on.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        })),
        (None, None, None) => Ok(None),
        _ => Err(sqlx::Error::Decode("a link session's mandate columns are partly set".into())),
    }
}

/// Stores a new link session; false when its opener already used `s.request_id`.
pub async fn insert_link_session(pool: &AnyPool, s: &LinkSessionRow) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO link_sessions (id, owner, request_id, fingerprint, secret_hash, partner_id, online_service_id, \
         service_id, state, return_url, resident_id, link_id, created_at, expires_at, confirmed_at, \
         mandate_max_per_charge, mandate_max_per_month, mandate_ends_on) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, NULL, $11, $12, NULL, $13, $14, $15) \
         ON CONFLICT (owner, request_id) DO NOTHING",
    )
    .bind(s.id.to_string())
    .bind(&s.owner)
    .bind(s.request_id.to_string())
    .bind(&s.fingerprint)
    .bind(&s.secret_hash)
    .bind(s.scope.partner)
    .bind(s.scope.online_service)
    .bind(&s.service_id)
    .bind(&s.state)
    .bind(s.return_url.as_deref())
    .bind(s.created_at)
    .bind(s.expires_at)
    .bind(s.mandate.map(|m| m.max_per_charge))
    .bind(s.mandate.map(|m| m.max_per_month))
    .bind(s.mandate.map(|m| m.ends_on.to_string()))
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A link session by its id.
pub async fn link_session(pool: &AnyPool, id: Uuid) -> sqlx::Result<Option<LinkSessionRow>> {
    sqlx::query("SELECT * FROM link_sessions WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(pool)
        .await?
        .as_ref()
        .map(link_session_row)
        .transpose()
}

/// A link session by its opener's idempotency id.
pub async fn link_session_by_request(
    pool: &AnyPool,
    owner: &str,
    request: Uuid,
) -> sqlx::Result<Option<LinkSessionRow>> {
    sqlx::query("SELECT * FROM link_sessions WHERE owner = $1 AND request_id = $2")
        .bind(owner.to_owned())
        .bind(request.to_string())
        .fetch_optional(pool)
        .await?
        .as_ref()
        .map(link_session_row)
        .transpose()
}

/// The session that proved link `link`, if one did.
pub async fn link_session_of_link(pool: &AnyPool, link: Uuid) -> sqlx::Result<Option<LinkSessionRow>> {
    sqlx::query("SELECT * FROM link_sessions WHERE link_id = $1")
        .bind(link.to_string())
        .fetch_optional(pool)
        .await?
        .as_ref()
        .map(link_session_row)
        .transpose()
}

/// Marks an open session cancelled; false when it was not open.
pub async fn cancel_link_session(pool: &AnyPool, id: Uuid) -> sqlx::Result<bool> {
    let done = sqlx::query("UPDATE link_sessions SET state = 'cancelled' WHERE id = $1 AND state = 'open'")
        .bind(id.to_string())
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Inside `tx`: marks open session `id` linked by `resident` to `link`; false when it was no
/// longer open.
pub async fn confirm_link_session(
    tx: &mut AnyConnection,
    id: Uuid,
    resident: i64,
    link: Uuid,
    now: Micros,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE link_sessions SET state = 'linked', resident_id = $1, link_id = $2, confirmed_at = $3 \
         WHERE id = $4 AND state = 'open' AND expires_at > $3",
    )
    .bind(resident)
    .bind(link.to_string())
    .bind(now)
    .bind(id.to_string())
    .execute(tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Inside `tx`: retires the resident's unproven links of `service_id` in `scope` (a link
/// typed on my page before links were proven, now replaced by a proven one).
pub async fn retire_unproven(
    tx: &mut AnyConnection,
    resident: i64,
    scope: LinkScope,
    service_id: &str,
    now: Micros,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE service_links SET status = 'revoked', revoked_at = $1 WHERE resident_id = $2 AND partner_id = $3 \
         AND online_service_id = $4 AND service_id = $5 AND status = 'unproven'",
    )
    .bind(now)
    .bind(resident)
    .bind(scope.partner)
    .bind(scope.online_service)
    .bind(service_id.to_owned())
    .execute(tx)
    .await?;
    Ok(())
}
