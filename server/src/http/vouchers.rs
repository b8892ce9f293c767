//! Point vouchers over HTTP (docs/counter.md "Point vouchers"): issued and redeemed by a shop's
//! counter devices, their QR codes' key for anyone, and a resident's own list.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use mykey_core::api::{
    VoucherIssueRequest, VoucherIssued, VoucherKey, VoucherRedeemed, VoucherRedemptionRequest, VoucherView,
};
use mykey_core::Problem;

use super::error::ApiResult;
use super::extract::{JsonBody, ResidentAuth};
use super::state::AppState;
use crate::auth::devices::SignedBy;
use crate::services::counter::Counter;

/// This group's routes.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/shops/{shop}/vouchers", post(issue))
        .route("/v1/shops/{shop}/voucher-redemptions", post(redeem))
        .route("/v1/vouchers/key", get(key))
        .route("/v1/me/vouchers", get(mine))
}

/// Issue a point voucher of the points the resident agreed to with their card at this counter
/// (terminal): a `voucher` challenge from `…/counter-challenges` naming the municipality and
/// amount, signed by the card. The answer is what is printed; a retry answers the same voucher.
#[utoipa::path(post, path = "/v1/shops/{shop}/vouchers", tag = "vouchers", request_body = VoucherIssueRequest,
    security(("device_signature" = [])), params(("shop" = i64, Path, description = "The terminal's shop")),
    responses((status = 201, body = VoucherIssued), (status = 401, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
async fn issue(
    State(s): State<AppState>,
    device: SignedBy,
    Path(shop): Path<i64>,
    JsonBody(r): JsonBody<VoucherIssueRequest>,
) -> ApiResult<(StatusCode, Json<VoucherIssued>)> {
    device.require_shop(shop)?;
    let issued = Counter::new(&s.identity, &s.engine, &s.counter_notes, device).issue_voucher(&s.vouchers, r).await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

/// Take a point voucher as payment, in full (terminal of a shop taking that municipality's
/// points): its QR code's text as scanned, or its 13-digit number as typed. A forged or altered
/// code, a typo, a spent, expired or another municipality's voucher is refused with its reason.
#[utoipa::path(post, path = "/v1/shops/{shop}/voucher-redemptions", tag = "vouchers",
    request_body = VoucherRedemptionRequest, security(("device_signature" = [])),
    params(("shop" = i64, Path, description = "The terminal's shop")),
    responses((status = 201, body = VoucherRedeemed), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem), (status = 429, body = Problem)))]
async fn redeem(
    State(s): State<AppState>,
    device: SignedBy,
    Path(shop): Path<i64>,
    JsonBody(r): JsonBody<VoucherRedemptionRequest>,
) -> ApiResult<(StatusCode, Json<VoucherRedeemed>)> {
    device.require_shop(shop)?;
    let redeemed =
        Counter::new(&s.identity, &s.engine, &s.counter_notes, device).redeem_voucher(&s.vouchers, r).await?;
    Ok((StatusCode::CREATED, Json(redeemed)))
}

/// The public key that signs vouchers' QR codes (public; any page may read it).
#[utoipa::path(get, path = "/v1/vouchers/key", tag = "vouchers", responses((status = 200, body = VoucherKey)))]
async fn key(State(s): State<AppState>) -> impl IntoResponse {
    ([(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")], Json(s.vouchers.key().clone()))
}

/// The session's resident's vouchers: every open one, then those spent or returned lately.
#[utoipa::path(get, path = "/v1/me/vouchers", tag = "vouchers", security(("session" = [])),
    responses((status = 200, body = [VoucherView]), (status = 401, body = Problem)))]
async fn mine(State(s): State<AppState>, auth: ResidentAuth) -> ApiResult<Json<Vec<VoucherView>>> {
    Ok(Json(crate::services::vouchers::of_resident(&s.engine, auth.resident).await?))
}

/// The OpenAPI part of this group.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(issue, redeem, key, mine),
    components(schemas(
        VoucherIssueRequest,
        VoucherIssued,
        VoucherRedemptionRequest,
        VoucherRedeemed,
        VoucherView,
        VoucherKey
    ))
)]
pub struct VouchersDoc;
