//! Reads of balances and histories, for whoever may read them.

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use mykey_core::api::*;
use mykey_core::{Problem, ProblemKind};
use serde::Deserialize;

use super::error::{forbidden, not_found, ApiError, ApiResult};
use super::state::AppState;
use crate::auth::{policy, Caller};
use crate::store::Tables;
use crate::time;

/// This group's routes.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/residents/{resident}/balances", get(resident_balances))
        .route("/v1/accounts/{account}", get(account))
        .route("/v1/accounts/{account}/balance", get(balance_as_of))
        .route("/v1/accounts/{account}/history", get(history))
}

/// [`policy::may_read_resident`] with the resident's home looked up (tables caught up).
async fn may_read_resident(tables: &Tables<'_>, caller: &Caller, resident: i64) -> ApiResult<()> {
    let home = tables.resident_home(resident).await?;
    if policy::may_read_resident(caller, resident, home) {
        Ok(())
    } else {
        Err(forbidden())
    }
}

/// Every balance of a resident, all municipalities at once.
#[utoipa::path(get, path = "/v1/residents/{resident}/balances", security(("api_key" = [])),
    params(("resident" = i64, Path, description = "Resident id")),
    responses((status = 200, body = ResidentBalances), (status = 404, body = Problem)))]
async fn resident_balances(
    State(s): State<AppState>,
    caller: Caller,
    Path(resident): Path<i64>,
) -> ApiResult<Json<ResidentBalances>> {
    let tables = s.engine.tables().await?;
    may_read_resident(&tables, &caller, resident).await?;
    let b = tables.resident_balances(resident, time::now()).await?;
    b.map(Json).ok_or_else(|| not_found(&format!("resident {resident}")))
}

/// [`policy::may_read_account`] with the account's owner looked up.
async fn may_read_account(tables: &Tables<'_>, caller: &Caller, account: i64) -> ApiResult<()> {
    let (kind, owner, municipality) =
        tables.account_owner(account).await?.ok_or_else(|| not_found(&format!("account {account}")))?;
    if policy::may_read_account(caller, kind, owner, municipality) {
        Ok(())
    } else {
        Err(forbidden())
    }
}

/// One account's balance.
#[utoipa::path(get, path = "/v1/accounts/{account}", security(("api_key" = [])),
    params(("account" = i64, Path, description = "Account id")),
    responses((status = 200, body = AccountView), (status = 404, body = Problem)))]
async fn account(State(s): State<AppState>, caller: Caller, Path(account): Path<i64>) -> ApiResult<Json<AccountView>> {
    let tables = s.engine.tables().await?;
    may_read_account(&tables, &caller, account).await?;
    let a = tables.account(account, time::now()).await?;
    a.map(Json).ok_or_else(|| not_found(&format!("account {account}")))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct AsOf {
    /// RFC 3339 moment.
    as_of: DateTime<Utc>,
}

/// An account's balance at a past moment.
#[utoipa::path(get, path = "/v1/accounts/{account}/balance", security(("api_key" = [])),
    params(("account" = i64, Path, description = "Account id"), AsOf),
    responses((status = 200, body = BalanceAsOf), (status = 404, body = Problem)))]
async fn balance_as_of(
    State(s): State<AppState>,
    caller: Caller,
    Path(account): Path<i64>,
    q: Result<Query<AsOf>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<BalanceAsOf>> {
    let tables = s.engine.tables().await?;
    let Query(q) = q.map_err(|e| {
        ApiError(Problem::new(
            ProblemKind::InvalidRequest,
            format!("{e}; give as_of as an RFC 3339 time, e.g. 2026-11-27T10:00:00Z"),
        ))
    })?;
    may_read_account(&tables, &caller, account).await?;
    Ok(Json(tables.balance_as_of(account, time::datetime_to_micros(q.as_of)).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct Page {
    /// Entries per page, 1 to 1000 (default 50).
    limit: Option<u32>,
    /// `next_cursor` of the previous page (with the same filters).
    cursor: Option<String>,
    /// Only transactions of this kind (`payment`, `grant`, `conversion`, ...).
    kind: Option<String>,
    /// Only entries from this moment (RFC 3339, inclusive).
    from: Option<DateTime<Utc>>,
    /// Only entries before this moment (RFC 3339, exclusive).
    to: Option<DateTime<Utc>>,
}

/// An account's history, newest first, with cursor pagination, optionally one kind of
/// transaction or one period only.
#[utoipa::path(get, path = "/v1/accounts/{account}/history", security(("api_key" = [])),
    params(("account" = i64, Path, description = "Account id"), Page),
    responses((status = 200, body = HistoryPage), (status = 400, body = Problem), (status = 404, body = Problem)))]
async fn history(
    State(s): State<AppState>,
    caller: Caller,
    Path(account): Path<i64>,
    q: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<HistoryPage>> {
    let tables = s.engine.tables().await?;
    let Query(q) = q.map_err(|e| ApiError(Problem::new(ProblemKind::InvalidRequest, e.to_string())))?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError(Problem::new(ProblemKind::InvalidRequest, "limit must be 1 to 1000")));
    }
    let before = q
        .cursor
        .map(|c| {
            c.parse::<i64>()
                .map_err(|_| ApiError(Problem::new(ProblemKind::InvalidRequest, "cursor is not one this API gave out")))
        })
        .transpose()?;
    let kind = q
        .kind
        .filter(|k| !k.is_empty())
        .map(|k| {
            TransactionKind::parse(&k).ok_or_else(|| {
                ApiError(
                    Problem::new(ProblemKind::InvalidRequest, format!("{k:?} is not a kind of transaction"))
                        .with("field", "kind"),
                )
            })
        })
        .transpose()?;
    if let (Some(from), Some(to)) = (q.from, q.to) {
        if from >= to {
            return Err(ApiError(
                Problem::new(ProblemKind::InvalidRequest, "from must be before to").with("field", "to"),
            ));
        }
    }
    let filter = crate::store::HistoryFilter {
        kind,
        from: q.from.map(time::datetime_to_micros),
        to: q.to.map(time::datetime_to_micros),
    };
    may_read_account(&tables, &caller, account).await?;
    Ok(Json(tables.history(account, before, limit, &filter).await?))
}
