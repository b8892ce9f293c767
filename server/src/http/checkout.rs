//! Store checkout: the store's server (its secret key) opens, reads, captures, cancels and
//! refunds sessions; the widget (a session's client secret, then the resident's sign-in grant)
//! shows and confirms one session. Settings, secrets, events and the frame: `http::embedding`.

use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use mykey_core::api::*;
use mykey_core::identity::NonceIssued;
use mykey_core::{Problem, ProblemKind};
use uuid::Uuid;

use super::embedding::guarded;
use super::error::{ApiError, ApiResult};
use super::extract::{check_origin, client_ip, JsonBody};
use super::state::AppState;
use crate::auth::{Caller, Role};

/// This group's routes.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/checkout/sessions", post(create))
        .route("/v1/checkout/sessions/{id}", get(read))
        .route("/v1/checkout/sessions/{id}/capture", post(capture))
        .route("/v1/checkout/sessions/{id}/cancel", post(cancel))
        .route("/v1/checkout/sessions/{id}/refunds", post(refund))
        .route("/v1/checkout/sessions/{id}/view", post(client_view))
        .route("/v1/checkout/sessions/{id}/nonce", post(nonce))
        .route("/v1/checkout/sessions/{id}/sign-in", post(sign_in))
        .route("/v1/checkout/sessions/{id}/confirm", post(confirm))
}

/// The store a caller acts for on a session: none for the operator (any store).
fn store_of(caller: &Caller) -> Result<Option<i64>, ApiError> {
    match caller.role {
        Role::Operator => Ok(None),
        Role::Store => Ok(Some(caller.subject)),
        other => Err(ApiError(Problem::new(
            ProblemKind::Forbidden,
            format!("checkout sessions belong to stores; a {} key may not use them", other.as_str()),
        ))),
    }
}

/// Open a checkout session for one order (the store's server, with its secret key). The
/// same id and body give the same session and client secret again.
#[utoipa::path(post, path = "/v1/checkout/sessions", tag = "checkout", request_body = CheckoutSessionRequest,
    security(("api_key" = [])),
    responses((status = 201, body = CheckoutSessionCreated), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(r): JsonBody<CheckoutSessionRequest>,
) -> ApiResult<(StatusCode, Json<CheckoutSessionCreated>)> {
    caller.require(&[Role::Store], r.shop)?;
    Ok((StatusCode::CREATED, Json(s.checkout.create(&r).await?)))
}

/// Read a session (its store).
#[utoipa::path(get, path = "/v1/checkout/sessions/{id}", tag = "checkout", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The session")),
    responses((status = 200, body = CheckoutSession), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn read(State(s): State<AppState>, caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Json<CheckoutSession>> {
    Ok(Json(s.checkout.session(store_of(&caller)?, id).await?))
}

/// Capture an authorised session's held points, all or fewer (its store; manual capture).
#[utoipa::path(post, path = "/v1/checkout/sessions/{id}/capture", tag = "checkout", request_body = CheckoutCapture,
    security(("api_key" = [])), params(("id" = Uuid, Path, description = "The session")),
    responses((status = 200, body = CheckoutSession), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
async fn capture(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    JsonBody(r): JsonBody<CheckoutCapture>,
) -> ApiResult<Json<CheckoutSession>> {
    Ok(Json(s.checkout.capture(store_of(&caller)?, id, &r).await?))
}

/// Cancel an open session, or release an authorised one's points (its store).
#[utoipa::path(post, path = "/v1/checkout/sessions/{id}/cancel", tag = "checkout", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "The session")),
    responses((status = 200, body = CheckoutSession), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn cancel(State(s): State<AppState>, caller: Caller, Path(id): Path<Uuid>) -> ApiResult<Json<CheckoutSession>> {
    Ok(Json(s.checkout.cancel(store_of(&caller)?, id).await?))
}

/// Refund captured points, all or part, several times up to what was captured (its store).
/// The same refund id and points give the same refund again.
#[utoipa::path(post, path = "/v1/checkout/sessions/{id}/refunds", tag = "checkout", request_body = RefundRequest,
    security(("api_key" = [])), params(("id" = Uuid, Path, description = "The session")),
    responses((status = 201, body = Refund), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
async fn refund(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    JsonBody(r): JsonBody<RefundRequest>,
) -> ApiResult<(StatusCode, Json<Refund>)> {
    Ok((StatusCode::CREATED, Json(s.checkout.refund(store_of(&caller)?, id, &r).await?)))
}

/// What the widget shows (the client secret; no key, no cookie).
#[utoipa::path(post, path = "/v1/checkout/sessions/{id}/view", tag = "checkout", request_body = WidgetClient,
    params(("id" = Uuid, Path, description = "The session")),
    responses((status = 200, body = CheckoutView), (status = 401, body = Problem), (status = 429, body = Problem)))]
async fn client_view(
    State(s): State<AppState>,
    parts: Parts,
    Path(id): Path<Uuid>,
    JsonBody(r): JsonBody<WidgetClient>,
) -> ApiResult<Json<CheckoutView>> {
    Ok(Json(guarded(&s, &parts, s.checkout.client_view(id, &r.client_secret).await)?))
}

/// A card challenge for this session's widget.
#[utoipa::path(post, path = "/v1/checkout/sessions/{id}/nonce", tag = "checkout", request_body = WidgetClient,
    params(("id" = Uuid, Path, description = "The session")),
    responses((status = 200, body = NonceIssued), (status = 401, body = Problem), (status = 409, body = Problem),
        (status = 429, body = Problem), (status = 503, body = Problem)))]
async fn nonce(
    State(s): State<AppState>,
    parts: Parts,
    Path(id): Path<Uuid>,
    JsonBody(r): JsonBody<WidgetClient>,
) -> ApiResult<Json<NonceIssued>> {
    Ok(Json(guarded(&s, &parts, s.checkout.nonce(id, &r.client_secret, client_ip(&parts)).await)?))
}

/// The resident signs in inside the widget, with the card or MyKey ID and password: a grant to
/// confirm this session. Only the points cloud's own pages may send it.
#[utoipa::path(post, path = "/v1/checkout/sessions/{id}/sign-in", tag = "checkout", request_body = WidgetSignIn,
    params(("id" = Uuid, Path, description = "The session")),
    responses((status = 200, body = CheckoutSignedIn), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 429, body = Problem)))]
async fn sign_in(
    State(s): State<AppState>,
    parts: Parts,
    Path(id): Path<Uuid>,
    JsonBody(r): JsonBody<WidgetSignIn>,
) -> ApiResult<Json<CheckoutSignedIn>> {
    check_origin(&parts, &s)?;
    Ok(Json(s.checkout.sign_in(id, &r, client_ip(&parts)).await?))
}

/// The resident confirms: the points move (automatic capture) or are held (manual), once.
#[utoipa::path(post, path = "/v1/checkout/sessions/{id}/confirm", tag = "checkout", request_body = CheckoutConfirmation,
    params(("id" = Uuid, Path, description = "The session")),
    responses((status = 200, body = CheckoutView), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn confirm(
    State(s): State<AppState>,
    parts: Parts,
    Path(id): Path<Uuid>,
    JsonBody(r): JsonBody<CheckoutConfirmation>,
) -> ApiResult<Json<CheckoutView>> {
    check_origin(&parts, &s)?;
    Ok(Json(guarded(&s, &parts, s.checkout.confirm(id, &r).await)?))
}

/// The checkout operations of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(create, read, capture, cancel, refund, client_view, nonce, sign_in, confirm))]
pub struct CheckoutDoc;
