//! Partners and online services: link sessions their servers open for a signed-in member and
//! the resident confirms in the widget (`services::links`); the coupon widget (a partner's
//! publishable key, then the resident's sign-in grant) and a batch's codes with their state.

use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use mykey_core::api::{
    BatchCode, CouponMailRequest, CouponPreview, CouponRedeemed, CouponWidgetAssignment, CouponWidgetClient,
    CouponWidgetCode, CouponWidgetNonce, CouponWidgetSignIn, CouponWidgetView, LinkSession, LinkSessionCreated,
    LinkSessionRequest, LinkView, TransactionReceipt, WidgetClient, WidgetGrant, WidgetSignIn, WidgetSignedIn,
};
use mykey_core::identity::NonceIssued;
use mykey_core::{Problem, ProblemKind};
use uuid::Uuid;

use super::embedding::guarded;
use super::error::{ApiError, ApiResult};
use super::extract::{check_origin, client_ip, JsonBody};
use super::state::AppState;
use crate::auth::{Caller, Role};
use crate::services::embedding::Owner;

/// This group's routes.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/link-sessions", post(create_link))
        .route("/v1/link-sessions/{id}", get(read_link))
        .route("/v1/link-sessions/{id}/cancel", post(cancel_link))
        .route("/v1/link-sessions/{id}/view", post(link_view))
        .route("/v1/link-sessions/{id}/nonce", post(link_nonce))
        .route("/v1/link-sessions/{id}/sign-in", post(link_sign_in))
        .route("/v1/link-sessions/{id}/confirm", post(confirm_link))
        .route("/v1/coupon-widget/view", post(coupon_view))
        .route("/v1/coupon-widget/nonce", post(coupon_nonce))
        .route("/v1/coupon-widget/sign-in", post(coupon_sign_in))
        .route("/v1/coupon-widget/preview", post(coupon_preview))
        .route("/v1/coupon-widget/redeem", post(coupon_redeem))
        .route("/v1/coupon-widget/assign", post(coupon_assign))
        .route("/v1/partners/{partner}/coupon-batches/{batch}/codes", get(batch_codes))
        .route("/v1/partners/{partner}/coupon-batches/{batch}/sheet", get(batch_sheet))
        .route("/v1/partners/{partner}/coupon-batches/{batch}/codes.csv", get(batch_csv))
        .route("/v1/partners/{partner}/coupon-batches/{batch}/mail", post(mail_code))
}

/// Whom a caller opens and reads link sessions for: a partner, an online service's store, or
/// (none) the operator, who may read any.
fn opener(caller: &Caller) -> Result<Option<Owner>, ApiError> {
    match caller.role {
        Role::Operator => Ok(None),
        Role::Partner => Ok(Some(Owner::Partner(caller.subject))),
        Role::Store => Ok(Some(Owner::Store(caller.subject))),
        other => Err(ApiError(Problem::new(
            ProblemKind::Forbidden,
            format!("link sessions are opened by partners and online stores; a {} key may not", other.as_str()),
        ))),
    }
}

/// Open a link session for the member signed in on the partner's (or online store's) site:
/// its service ID is linked only when a resident confirms the session in the widget.
#[utoipa::path(post, path = "/v1/link-sessions", tag = "partners", request_body = LinkSessionRequest,
    security(("api_key" = [])),
    responses((status = 201, body = LinkSessionCreated), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_link(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(r): JsonBody<LinkSessionRequest>,
) -> ApiResult<(StatusCode, Json<LinkSessionCreated>)> {
    let owner = opener(&caller)?.ok_or_else(|| {
        ApiError(Problem::new(ProblemKind::Forbidden, "the operator does not open link sessions; the partner does"))
    })?;
    Ok((StatusCode::CREATED, Json(s.links.create(owner, &r).await?)))
}

/// Read a link session (its opener).
#[utoipa::path(get, path = "/v1/link-sessions/{id}", tag = "partners", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The session")),
    responses((status = 200, body = LinkSession), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn read_link(State(s): State<AppState>, caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Json<LinkSession>> {
    Ok(Json(s.links.session(opener(&caller)?, id).await?))
}

/// Cancel an open link session (its opener).
#[utoipa::path(post, path = "/v1/link-sessions/{id}/cancel", tag = "partners", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The session")),
    responses((status = 200, body = LinkSession), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn cancel_link(State(s): State<AppState>, caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Json<LinkSession>> {
    Ok(Json(s.links.cancel(opener(&caller)?, id).await?))
}

/// What the link widget shows (the client secret; no key, no cookie).
#[utoipa::path(post, path = "/v1/link-sessions/{id}/view", tag = "partners", request_body = WidgetClient,
    params(("id" = Uuid, Path, description = "The session")),
    responses((status = 200, body = LinkView), (status = 401, body = Problem), (status = 429, body = Problem)))]
async fn link_view(
    State(s): State<AppState>,
    parts: Parts,
    Path(id): Path<Uuid>,
    JsonBody(r): JsonBody<WidgetClient>,
) -> ApiResult<Json<LinkView>> {
    Ok(Json(guarded(&s, &parts, s.links.client_view(id, &r.client_secret).await)?))
}

/// A card challenge for this link session's widget.
#[utoipa::path(post, path = "/v1/link-sessions/{id}/nonce", tag = "partners", request_body = WidgetClient,
    params(("id" = Uuid, Path, description = "The session")),
    responses((status = 200, body = NonceIssued), (status = 401, body = Problem), (status = 409, body = Problem),
        (status = 429, body = Problem), (status = 503, body = Problem)))]
async fn link_nonce(
    State(s): State<AppState>,
    parts: Parts,
    Path(id): Path<Uuid>,
    JsonBody(r): JsonBody<WidgetClient>,
) -> ApiResult<Json<NonceIssued>> {
    Ok(Json(guarded(&s, &parts, s.links.nonce(id, &r.client_secret, client_ip(&parts)).await)?))
}

/// The resident signs in inside the link widget (card, or MyKey ID and password). Only the
/// points cloud's own pages may send it.
#[utoipa::path(post, path = "/v1/link-sessions/{id}/sign-in", tag = "partners", request_body = WidgetSignIn,
    params(("id" = Uuid, Path, description = "The session")),
    responses((status = 200, body = WidgetSignedIn), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 429, body = Problem)))]
async fn link_sign_in(
    State(s): State<AppState>,
    parts: Parts,
    Path(id): Path<Uuid>,
    JsonBody(r): JsonBody<WidgetSignIn>,
) -> ApiResult<Json<WidgetSignedIn>> {
    check_origin(&parts, &s)?;
    Ok(Json(guarded(&s, &parts, s.links.sign_in(id, &r, client_ip(&parts)).await)?))
}

/// The signed-in resident confirms: the member's ID is linked to the resident's MyKey ID.
#[utoipa::path(post, path = "/v1/link-sessions/{id}/confirm", tag = "partners", request_body = WidgetGrant,
    params(("id" = Uuid, Path, description = "The session")),
    responses((status = 200, body = LinkView), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem)))]
async fn confirm_link(
    State(s): State<AppState>,
    parts: Parts,
    Path(id): Path<Uuid>,
    JsonBody(r): JsonBody<WidgetGrant>,
) -> ApiResult<Json<LinkView>> {
    check_origin(&parts, &s)?;
    Ok(Json(guarded(&s, &parts, s.links.confirm(id, &r).await)?))
}

/// What a partner's coupon widget shows first (its publishable key; no key, no cookie).
#[utoipa::path(post, path = "/v1/coupon-widget/view", tag = "partners", request_body = CouponWidgetClient,
    responses((status = 200, body = CouponWidgetView), (status = 404, body = Problem)))]
async fn coupon_view(
    State(s): State<AppState>,
    JsonBody(r): JsonBody<CouponWidgetClient>,
) -> ApiResult<Json<CouponWidgetView>> {
    Ok(Json(s.coupons.widget_view(&r.publishable_key).await?))
}

/// A card challenge for a partner's coupon widget.
#[utoipa::path(post, path = "/v1/coupon-widget/nonce", tag = "partners", request_body = CouponWidgetNonce,
    responses((status = 200, body = NonceIssued), (status = 404, body = Problem), (status = 429, body = Problem),
        (status = 503, body = Problem)))]
async fn coupon_nonce(
    State(s): State<AppState>,
    parts: Parts,
    JsonBody(r): JsonBody<CouponWidgetNonce>,
) -> ApiResult<Json<NonceIssued>> {
    Ok(Json(s.coupons.widget_nonce(&r, client_ip(&parts)).await?))
}

/// The resident signs in inside a partner's coupon widget. Only the points cloud's own pages
/// may send it.
#[utoipa::path(post, path = "/v1/coupon-widget/sign-in", tag = "partners", request_body = CouponWidgetSignIn,
    responses((status = 200, body = WidgetSignedIn), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 429, body = Problem)))]
async fn coupon_sign_in(
    State(s): State<AppState>,
    parts: Parts,
    JsonBody(r): JsonBody<CouponWidgetSignIn>,
) -> ApiResult<Json<WidgetSignedIn>> {
    check_origin(&parts, &s)?;
    Ok(Json(s.coupons.widget_sign_in(&r, client_ip(&parts)).await?))
}

/// What a code gives (points, partner, expiry), before the signed-in resident redeems it.
#[utoipa::path(post, path = "/v1/coupon-widget/preview", tag = "partners", request_body = CouponWidgetCode,
    responses((status = 200, body = CouponPreview), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem), (status = 429, body = Problem)))]
async fn coupon_preview(
    State(s): State<AppState>,
    parts: Parts,
    JsonBody(r): JsonBody<CouponWidgetCode>,
) -> ApiResult<Json<CouponPreview>> {
    check_origin(&parts, &s)?;
    Ok(Json(s.coupons.preview(&r, client_ip(&parts)).await?))
}

/// The signed-in resident redeems a code of this partner: reserved points.
#[utoipa::path(post, path = "/v1/coupon-widget/redeem", tag = "partners", request_body = CouponWidgetCode,
    responses((status = 200, body = CouponRedeemed), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem),
        (status = 429, body = Problem)))]
async fn coupon_redeem(
    State(s): State<AppState>,
    parts: Parts,
    JsonBody(r): JsonBody<CouponWidgetCode>,
) -> ApiResult<Json<CouponRedeemed>> {
    check_origin(&parts, &s)?;
    Ok(Json(s.coupons.widget_redeem(&r, client_ip(&parts)).await?))
}

/// The signed-in resident assigns reserved points to a municipality now.
#[utoipa::path(post, path = "/v1/coupon-widget/assign", tag = "partners", request_body = CouponWidgetAssignment,
    responses((status = 201, body = TransactionReceipt), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn coupon_assign(
    State(s): State<AppState>,
    parts: Parts,
    JsonBody(r): JsonBody<CouponWidgetAssignment>,
) -> ApiResult<crate::engine::Done> {
    check_origin(&parts, &s)?;
    Ok(s.coupons.widget_assign(&r).await??)
}

/// A batch's codes with their state and redemption URLs (the partner).
#[utoipa::path(get, path = "/v1/partners/{partner}/coupon-batches/{batch}/codes", tag = "partners",
    security(("api_key" = [])),
    params(("partner" = i64, Path, description = "The partner"), ("batch" = Uuid, Path, description = "The batch")),
    responses((status = 200, body = Vec<BatchCode>), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn batch_codes(
    State(s): State<AppState>,
    caller: Caller,
    Path((partner, batch)): Path<(i64, Uuid)>,
) -> ApiResult<Json<Vec<BatchCode>>> {
    caller.require(&[Role::Partner], partner)?;
    Ok(Json(s.coupons.batch_codes(partner, batch).await?))
}

/// A batch as a print-ready sheet (HTML with print CSS: one card-sized coupon per cell with its
/// code, points, expiry and a QR code of its redemption URL); print it or save it as PDF.
#[utoipa::path(get, path = "/v1/partners/{partner}/coupon-batches/{batch}/sheet", tag = "partners",
    security(("api_key" = [])),
    params(("partner" = i64, Path, description = "The partner"), ("batch" = Uuid, Path, description = "The batch")),
    responses((status = 200, content_type = "text/html", body = String), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn batch_sheet(
    State(s): State<AppState>,
    caller: Caller,
    Path((partner, batch)): Path<(i64, Uuid)>,
) -> ApiResult<axum::response::Response> {
    use axum::http::header;
    use axum::response::IntoResponse;
    caller.require(&[Role::Partner], partner)?;
    let page = s.coupons.batch_paper(partner, batch, false).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // A static page: its own styles and inline SVG, nothing else.
            (header::CONTENT_SECURITY_POLICY, "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        page,
    )
        .into_response())
}

/// A batch as CSV for a mail house: code, URL, points, expiry, state, redemption time.
#[utoipa::path(get, path = "/v1/partners/{partner}/coupon-batches/{batch}/codes.csv", tag = "partners",
    security(("api_key" = [])),
    params(("partner" = i64, Path, description = "The partner"), ("batch" = Uuid, Path, description = "The batch")),
    responses((status = 200, content_type = "text/csv", body = String), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn batch_csv(
    State(s): State<AppState>,
    caller: Caller,
    Path((partner, batch)): Path<(i64, Uuid)>,
) -> ApiResult<axum::response::Response> {
    use axum::http::header;
    use axum::response::IntoResponse;
    caller.require(&[Role::Partner], partner)?;
    let rows = s.coupons.batch_paper(partner, batch, true).await?;
    let disposition = format!("attachment; filename=\"coupons-{batch}.csv\"");
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        rows,
    )
        .into_response())
}

/// Mail one code of the batch to the partner's member (Japanese template, through the points
/// cloud's outbox); each code once.
#[utoipa::path(post, path = "/v1/partners/{partner}/coupon-batches/{batch}/mail", tag = "partners",
    request_body = CouponMailRequest, security(("api_key" = [])),
    params(("partner" = i64, Path, description = "The partner"), ("batch" = Uuid, Path, description = "The batch")),
    responses((status = 202, description = "Queued"), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem), (status = 429, body = Problem)))]
async fn mail_code(
    State(s): State<AppState>,
    caller: Caller,
    Path((partner, batch)): Path<(i64, Uuid)>,
    JsonBody(r): JsonBody<CouponMailRequest>,
) -> ApiResult<StatusCode> {
    caller.require(&[Role::Partner], partner)?;
    s.coupons.mail(partner, batch, &r).await?;
    Ok(StatusCode::ACCEPTED)
}

/// The partner operations of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    create_link,
    read_link,
    cancel_link,
    link_view,
    link_nonce,
    link_sign_in,
    confirm_link,
    coupon_view,
    coupon_nonce,
    coupon_sign_in,
    coupon_preview,
    coupon_redeem,
    coupon_assign,
    batch_codes,
    batch_sheet,
    batch_csv,
    mail_code
))]
pub struct PartnersDoc;
