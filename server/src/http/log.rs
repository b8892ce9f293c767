//! The tamper-evident log over HTTP: checkpoints, tiles, entry bundles, proofs.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use mykey_core::api::{LogProof, LogWitnesses};
use mykey_core::{Problem, ProblemKind};
use serde::Deserialize;

use super::error::{not_found, ApiError, ApiResult};
use super::state::AppState;
use crate::auth::Caller;

/// This group's routes.
pub(super) fn routes() -> Router<AppState> {
    let public = Router::new()
        .route("/v1/log/inclusion", get(log_inclusion))
        .route("/v1/log/consistency", get(log_consistency))
        .route("/log/checkpoint", get(log_checkpoint))
        .route("/log/key", get(log_key))
        .route("/log/witnesses", get(log_witnesses))
        .route("/log/{*tile}", get(log_tile))
        .layer(axum::middleware::map_response(readable_from_any_page));
    Router::new().route("/log/tile/entries/{*bundle}", get(log_entries)).merge(public)
}

/// The public log answers carry `Access-Control-Allow-Origin: *`, so that a partner's page
/// checks a receipt with the SDK from its own origin (docs/log-format.md "Receipts"); they hold
/// hashes, signatures and keys only. Entry bundles (the leaves) do not.
async fn readable_from_any_page(mut res: Response) -> Response {
    res.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, header::HeaderValue::from_static("*"));
    res
}

fn published(s: &AppState) -> ApiResult<Arc<crate::engine::Published>> {
    s.engine.checkpoint().ok_or_else(|| {
        ApiError(Problem::new(ProblemKind::Unavailable, "the log has no checkpoint yet; try again in a second"))
    })
}

/// The latest signed checkpoint of the log (C2SP tlog-checkpoint, public).
#[utoipa::path(get, path = "/log/checkpoint", responses((status = 200, description = "signed note", content_type = "text/plain")))]
async fn log_checkpoint(State(s): State<AppState>) -> ApiResult<Response> {
    let p = published(&s)?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8"), (header::CACHE_CONTROL, "no-store")], p.note.clone())
        .into_response())
}

/// The log's public key (C2SP vkey), for clients and witnesses.
#[utoipa::path(get, path = "/log/key", responses((status = 200, description = "vkey", content_type = "text/plain")))]
async fn log_key(State(s): State<AppState>) -> String {
    format!("{}\n", s.engine.log_vkey())
}

/// Checks a tile path against the latest checkpoint: tiles never change once served.
fn servable_tile(s: &AppState, path: &str) -> ApiResult<(Option<u8>, u64, u32)> {
    let Some((level, n, width)) = crate::log::parse_tile_path(path) else {
        return Err(not_found(&format!("tile {path:?}")));
    };
    let size = published(s)?.size;
    let available = size >> (u32::from(crate::log::TILE_HEIGHT) * u32::from(level.unwrap_or(0)));
    if (n << crate::log::TILE_HEIGHT) + u64::from(width) > available {
        return Err(not_found(&format!("tile {path} beyond the latest checkpoint")));
    }
    Ok((level, n, width))
}

/// The witnesses whose cosignatures every published checkpoint carries, and how many
/// (public): with `/log/key`, what a client checks a checkpoint against.
#[utoipa::path(get, path = "/log/witnesses", responses((status = 200, body = LogWitnesses)))]
async fn log_witnesses(State(s): State<AppState>) -> Json<LogWitnesses> {
    Json(s.engine.log_witnesses().clone())
}

fn tile_response(body: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        body,
    )
        .into_response()
}

/// A C2SP tlog-tiles hash tile, `tile/<L>/<N>[.p/<W>]` (public: hashes only).
async fn log_tile(State(s): State<AppState>, Path(path): Path<String>) -> ApiResult<Response> {
    let (level, n, width) = servable_tile(&s, &path)?;
    let level = level.ok_or_else(|| not_found("entry bundles are under /log/tile/entries/"))?;
    Ok(tile_response(crate::log::hash_tile(s.engine.store(), level, n, width).await?))
}

/// A C2SP entry bundle, `tile/entries/<N>[.p/<W>]`: the leaves themselves, which are the
/// residents' transactions, so only for the operator and mirrors (a `mirror` key).
async fn log_entries(State(s): State<AppState>, caller: Caller, Path(bundle): Path<String>) -> ApiResult<Response> {
    caller.require_role(crate::auth::Role::Mirror)?;
    let (_, n, width) = servable_tile(&s, &format!("tile/entries/{bundle}"))?;
    Ok(tile_response(crate::log::entry_bundle(s.engine.store(), n, width).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct InclusionQuery {
    /// Leaf index (a receipt's `leaf_index`).
    index: u64,
    /// Tree size of the checkpoint to prove against.
    size: u64,
}

fn b64_all(hashes: &[crate::log::Hash]) -> Vec<String> {
    use base64::Engine as _;
    hashes.iter().map(|h| base64::engine::general_purpose::STANDARD.encode(h)).collect()
}

fn within_checkpoint(s: &AppState, sizes: &[u64]) -> ApiResult<()> {
    let size = published(s)?.size;
    if sizes.iter().any(|n| *n > size) {
        return Err(ApiError(Problem::new(
            ProblemKind::InvalidRequest,
            format!("the latest checkpoint covers {size} leaves"),
        )));
    }
    Ok(())
}

/// Inclusion proof of a leaf in the tree of `size` (public).
#[utoipa::path(get, path = "/v1/log/inclusion", params(InclusionQuery), responses((status = 200, body = LogProof), (status = 400, body = Problem)))]
async fn log_inclusion(
    State(s): State<AppState>,
    q: Result<Query<InclusionQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<LogProof>> {
    let Query(q) = q.map_err(|e| ApiError(Problem::new(ProblemKind::InvalidRequest, e.to_string())))?;
    within_checkpoint(&s, &[q.size])?;
    if q.index >= q.size {
        return Err(ApiError(Problem::new(ProblemKind::InvalidRequest, "index must be below size")));
    }
    let proof = crate::log::inclusion_proof(s.engine.store(), q.index, q.size).await?;
    Ok(Json(LogProof { proof: b64_all(&proof) }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ConsistencyQuery {
    /// The older tree size.
    first: u64,
    /// The newer tree size.
    second: u64,
}

/// Consistency proof between two tree sizes (public).
#[utoipa::path(get, path = "/v1/log/consistency", params(ConsistencyQuery), responses((status = 200, body = LogProof), (status = 400, body = Problem)))]
async fn log_consistency(
    State(s): State<AppState>,
    q: Result<Query<ConsistencyQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<LogProof>> {
    let Query(q) = q.map_err(|e| ApiError(Problem::new(ProblemKind::InvalidRequest, e.to_string())))?;
    within_checkpoint(&s, &[q.second])?;
    if q.first > q.second {
        return Err(ApiError(Problem::new(ProblemKind::InvalidRequest, "first must not exceed second")));
    }
    let proof = crate::log::consistency_proof(s.engine.store(), q.first, q.second).await?;
    Ok(Json(LogProof { proof: b64_all(&proof) }))
}
