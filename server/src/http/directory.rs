//! Public reads: municipalities, partners, shops, point-navi's directory and search.

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use mykey_core::api::*;
use mykey_core::{Problem, ProblemKind};
use serde::Deserialize;

use super::error::{ApiError, ApiResult};
use super::state::AppState;

/// This group's routes.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/municipalities", get(municipalities))
        .route("/v1/partners", get(partners))
        .route("/v1/shops", get(shops))
        .route("/v1/directory", get(directory))
        .route("/v1/search", get(search))
}

/// Municipalities taking part (public).
#[utoipa::path(get, path = "/v1/municipalities", responses((status = 200, body = Vec<Municipality>)))]
async fn municipalities(State(s): State<AppState>) -> ApiResult<Json<Vec<Municipality>>> {
    Ok(Json(s.engine.tables().await?.municipalities().await?))
}

/// Point-navi's directory: services set up per municipality, products, online services (public).
#[utoipa::path(get, path = "/v1/directory", responses((status = 200, body = Directory)))]
async fn directory(State(s): State<AppState>) -> ApiResult<Json<Directory>> {
    Ok(Json(s.catalog.directory().await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct SearchQuery {
    /// Words to find (all must match) in municipality, shop and product names.
    q: String,
}

/// Free-word search over municipalities, shops and products (public).
#[utoipa::path(get, path = "/v1/search", params(SearchQuery),
    responses((status = 200, body = SearchResults), (status = 400, body = Problem)))]
async fn search(
    State(s): State<AppState>,
    q: Result<Query<SearchQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<SearchResults>> {
    let Query(q) = q.map_err(|e| ApiError(Problem::new(ProblemKind::InvalidRequest, e.to_string())))?;
    Ok(Json(s.catalog.search(&q.q).await?))
}

/// Partner companies (public).
#[utoipa::path(get, path = "/v1/partners", responses((status = 200, body = Vec<Partner>)))]
async fn partners(State(s): State<AppState>) -> ApiResult<Json<Vec<Partner>>> {
    Ok(Json(s.engine.tables().await?.partners().await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ShopFilter {
    /// Only shops accepting this municipality's points.
    municipality: Option<i64>,
}

/// Shops, facilities and stores (public).
#[utoipa::path(get, path = "/v1/shops", params(ShopFilter), responses((status = 200, body = Vec<Shop>)))]
async fn shops(State(s): State<AppState>, Query(f): Query<ShopFilter>) -> ApiResult<Json<Vec<Shop>>> {
    Ok(Json(s.engine.tables().await?.shops(f.municipality).await?))
}
