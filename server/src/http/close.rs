//! A shop's daily close over HTTP: as JSON and as CSV, for the shop's key or its counter
//! devices (docs/counter.md "Daily close").

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::NaiveDate;
use mykey_core::api::DailyClose;
use mykey_core::{Problem, ProblemKind};
use serde::Deserialize;

use super::error::{ApiError, ApiResult};
use super::state::AppState;
use crate::auth::{Caller, Role};
use crate::services::close;
use crate::time;

/// This group's routes.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/shops/{shop}/daily-close", get(daily_close))
        .route("/v1/shops/{shop}/daily-close.csv", get(daily_close_csv))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct CloseQuery {
    /// The day in Japan, `YYYY-MM-DD`; today when absent.
    #[param(value_type = Option<String>, format = Date)]
    date: Option<NaiveDate>,
}

/// The close the caller asked for, once it may read it.
async fn close_for(
    s: &AppState,
    caller: &Caller,
    shop: i64,
    q: Result<Query<CloseQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<DailyClose> {
    caller.require(&[Role::Store, Role::Terminal], shop)?;
    let Query(q) = q.map_err(|e| {
        ApiError(
            Problem::new(ProblemKind::InvalidRequest, format!("date is a day as YYYY-MM-DD: {e}"))
                .with("field", "date"),
        )
    })?;
    let date = q.date.unwrap_or_else(|| close::today_in_japan(time::now()));
    Ok(close::daily_close(&s.engine, shop, date).await?)
}

/// A shop's day in Japan: the points into its account by municipality, counter device and kind
/// of transaction, from the ledger's own postings (the shop's key, or one of its devices).
#[utoipa::path(get, path = "/v1/shops/{shop}/daily-close", security(("api_key" = []), ("device_signature" = [])),
    params(("shop" = i64, Path, description = "The shop"), CloseQuery),
    responses((status = 200, body = DailyClose), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem)))]
async fn daily_close(
    State(s): State<AppState>,
    caller: Caller,
    Path(shop): Path<i64>,
    q: Result<Query<CloseQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<DailyClose>> {
    Ok(Json(close_for(&s, &caller, shop, q).await?))
}

/// The same day as CSV: a row per line and the day's total.
#[utoipa::path(get, path = "/v1/shops/{shop}/daily-close.csv", security(("api_key" = []), ("device_signature" = [])),
    params(("shop" = i64, Path, description = "The shop"), CloseQuery),
    responses((status = 200, description = "CSV: date, shop, municipality, device, device_name, kind, count, points; then the total",
        content_type = "text/csv"), (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn daily_close_csv(
    State(s): State<AppState>,
    caller: Caller,
    Path(shop): Path<i64>,
    q: Result<Query<CloseQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let c = close_for(&s, &caller, shop, q).await?;
    let name = format!("attachment; filename=\"daily-close-{shop}-{}.csv\"", c.date);
    Ok((
        [(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()), (header::CONTENT_DISPOSITION, name)],
        close::csv(&c),
    )
        .into_response())
}
