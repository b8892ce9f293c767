//! Settlement statements, the scheduled jobs and API key revocation.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use mykey_core::api::*;
use mykey_core::{Problem, ProblemKind};
use serde::Deserialize;

use super::error::{ApiError, ApiResult};
use super::extract::JsonBody;
use super::state::AppState;
use crate::auth::{policy, Caller};
use crate::engine::{Change, ChangeResult};
use crate::time;

/// This group's routes.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/jobs/run", post(run_jobs))
        .route("/v1/settlements", get(settlements))
        .route("/v1/api-keys/{key_id}/revoke", post(revoke_api_key))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct SettlementQuery {
    /// Start of the period (RFC 3339, inclusive).
    from: DateTime<Utc>,
    /// End of the period (RFC 3339, exclusive).
    to: DateTime<Utc>,
    /// One partner only (a partner key always sees only its own).
    partner: Option<i64>,
    /// One municipality only (a municipality key always sees only its own).
    municipality: Option<i64>,
}

/// The settlement statement of a period: what each partner pays each municipality for the
/// points its members' conversions brought there (operator; a partner or a municipality sees
/// its own lines).
#[utoipa::path(get, path = "/v1/settlements", params(SettlementQuery), security(("api_key" = [])),
    responses((status = 200, body = SettlementStatement), (status = 403, body = Problem)))]
async fn settlements(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<SettlementQuery>,
) -> ApiResult<Json<SettlementStatement>> {
    let (partner, municipality) = policy::settlement_scope(&caller, q.partner, q.municipality)?;
    if q.from >= q.to {
        return Err(ApiError(Problem::new(ProblemKind::InvalidRequest, "from must be before to")));
    }
    let lines = s
        .engine
        .tables()
        .await?
        .settlement(time::datetime_to_micros(q.from), time::datetime_to_micros(q.to), partner, municipality)
        .await?;
    let total_yen = lines.iter().map(|l| l.yen).sum();
    Ok(Json(SettlementStatement { from: q.from, to: q.to, lines, total_yen }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct JobsRequest {
    /// Run as of this time instead of now (for drills and tests).
    #[serde(default)]
    now: Option<DateTime<Utc>>,
}

/// Run the scheduled jobs once (operator).
#[utoipa::path(post, path = "/v1/jobs/run", request_body = JobsRequest, security(("api_key" = [])),
    responses((status = 200, body = JobsReport)))]
async fn run_jobs(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(r): JsonBody<JobsRequest>,
) -> ApiResult<Json<JobsReport>> {
    caller.require_operator()?;
    let now = r.now.map(time::datetime_to_micros).unwrap_or_else(time::now);
    match s.engine.apply(Change::Jobs { now }).await? {
        ChangeResult::Jobs(j) => Ok(Json(j)),
        _ => unreachable!("jobs answer with a report"),
    }
}

/// Revoke an API key at once (operator): its id is the SHA-256 of the key, in hex, which
/// `mykey-server api-key` prints beside the key. Any later request with it answers 401.
#[utoipa::path(post, path = "/v1/api-keys/{key_id}/revoke", security(("api_key" = [])),
    params(("key_id" = String, Path, description = "The key's id: SHA-256 of the key, 64 hex digits")),
    responses((status = 204, description = "Revoked"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No live key has that id", body = Problem, content_type = "application/problem+json")))]
async fn revoke_api_key(
    State(s): State<AppState>,
    caller: Caller,
    Path(key_id): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require_operator()?;
    if key_id.len() != 64 || !key_id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(ApiError(
            Problem::new(ProblemKind::InvalidRequest, "a key id is 64 lower-case hex digits").with("field", "key_id"),
        ));
    }
    if crate::auth::revoke_key(s.engine.store(), &s.keys, &key_id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError(Problem::new(ProblemKind::NotFound, "no live API key has that id")))
    }
}
