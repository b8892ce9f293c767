//! Store checkout: the store's server (its secret key) opens, reads, captures, cancels and
//! refunds sessions and manages its settings, secrets and events; the widget (a session's client
//! secret, then the resident's sign-in grant) shows and confirms one session.

use axum::extract::{Path, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use mykey_core::api::*;
use mykey_core::identity::NonceIssued;
use mykey_core::{Problem, ProblemKind};
use serde::Deserialize;
use uuid::Uuid;

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
        .route("/v1/shops/{shop}/checkout", get(settings).put(put_settings))
        .route("/v1/shops/{shop}/webhook-secrets", post(rotate_secret))
        .route("/v1/shops/{shop}/events", get(events))
        .route("/v1/shops/{shop}/events/{event}/resend", post(resend))
        .route("/checkout/frame", get(frame))
}

/// The widget's page; its scripts and the SDK are the web build's `/app/sdk/` files.
const FRAME_HTML: &str = include_str!("../../../sdk-wasm/widget/frame.html");

#[derive(Deserialize)]
struct FrameQuery {
    pk: String,
    session: Uuid,
}

/// The widget's page for a store's publishable key and one of its sessions: framed only by
/// the store's registered origins (`frame-ancestors`), and refused outright when the framing
/// page says it is elsewhere (`Referer`).
async fn frame(State(s): State<AppState>, parts: Parts, Query(q): Query<FrameQuery>) -> axum::response::Response {
    use axum::http::{header, HeaderValue};
    use axum::response::IntoResponse;
    let referer_origin = parts
        .headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| url::Url::parse(r).ok())
        .map(|u| u.origin().ascii_serialization());
    let allowed = match s.checkout.frame_origins(&q.pk, q.session).await {
        Ok(origins) => origins,
        Err(p) => return ApiError(p).into_response(),
    };
    if let Some(origin) = referer_origin.filter(|o| !allowed.contains(o)) {
        return ApiError(Problem::new(
            ProblemKind::OriginNotAllowed,
            format!("this publishable key may not be used from {origin}"),
        ))
        .into_response();
    }
    let csp = format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors {}; \
         report-uri /csp-reports",
        allowed.join(" ")
    );
    let mut res = (StatusCode::OK, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], FRAME_HTML).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_str(&csp).expect("origins are ASCII"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // A store page that isolates itself (COEP require-corp) may still embed the widget.
    h.insert("cross-origin-resource-policy", HeaderValue::from_static("cross-origin"));
    h.insert("cross-origin-embedder-policy", HeaderValue::from_static("require-corp"));
    // Its address holds a publishable key and a session id only; still, say nothing onward.
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    res
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

/// A wrong client secret counts as a failed authentication of the address.
fn guarded<T>(s: &AppState, parts: &Parts, r: Result<T, Problem>) -> ApiResult<T> {
    r.map_err(|p| {
        if p.kind() == Some(ProblemKind::Unauthenticated) {
            ApiError(s.guesses.failed(client_ip(parts), p))
        } else {
            ApiError(p)
        }
    })
}

/// What the widget shows (the client secret; no key, no cookie).
#[utoipa::path(post, path = "/v1/checkout/sessions/{id}/view", tag = "checkout", request_body = CheckoutClient,
    params(("id" = Uuid, Path, description = "The session")),
    responses((status = 200, body = CheckoutView), (status = 401, body = Problem), (status = 429, body = Problem)))]
async fn client_view(
    State(s): State<AppState>,
    parts: Parts,
    Path(id): Path<Uuid>,
    JsonBody(r): JsonBody<CheckoutClient>,
) -> ApiResult<Json<CheckoutView>> {
    Ok(Json(guarded(&s, &parts, s.checkout.client_view(id, &r.client_secret).await)?))
}

/// A card challenge for this session's widget.
#[utoipa::path(post, path = "/v1/checkout/sessions/{id}/nonce", tag = "checkout", request_body = CheckoutClient,
    params(("id" = Uuid, Path, description = "The session")),
    responses((status = 200, body = NonceIssued), (status = 401, body = Problem), (status = 409, body = Problem),
        (status = 429, body = Problem), (status = 503, body = Problem)))]
async fn nonce(
    State(s): State<AppState>,
    parts: Parts,
    Path(id): Path<Uuid>,
    JsonBody(r): JsonBody<CheckoutClient>,
) -> ApiResult<Json<NonceIssued>> {
    Ok(Json(guarded(&s, &parts, s.checkout.nonce(id, &r.client_secret, client_ip(&parts)).await)?))
}

/// The resident signs in inside the widget, with the card or MyKey ID and password: a grant to
/// confirm this session. Only the points cloud's own pages may send it.
#[utoipa::path(post, path = "/v1/checkout/sessions/{id}/sign-in", tag = "checkout", request_body = CheckoutSignIn,
    params(("id" = Uuid, Path, description = "The session")),
    responses((status = 200, body = CheckoutSignedIn), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, body = Problem), (status = 429, body = Problem)))]
async fn sign_in(
    State(s): State<AppState>,
    parts: Parts,
    Path(id): Path<Uuid>,
    JsonBody(r): JsonBody<CheckoutSignIn>,
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

/// A store's checkout settings (the store).
#[utoipa::path(get, path = "/v1/shops/{shop}/checkout", tag = "checkout", security(("api_key" = [])),
    params(("shop" = i64, Path, description = "The store")),
    responses((status = 200, body = CheckoutSettings), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn settings(
    State(s): State<AppState>,
    caller: Caller,
    Path(shop): Path<i64>,
) -> ApiResult<Json<CheckoutSettings>> {
    caller.require(&[Role::Store], shop)?;
    Ok(Json(s.checkout.settings(shop).await?))
}

/// Register the store's origins and webhook URL; the first time also makes its publishable key.
#[utoipa::path(put, path = "/v1/shops/{shop}/checkout", tag = "checkout", request_body = CheckoutSettingsRequest,
    security(("api_key" = [])), params(("shop" = i64, Path, description = "The store")),
    responses((status = 200, body = CheckoutSettings), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 422, body = Problem)))]
async fn put_settings(
    State(s): State<AppState>,
    caller: Caller,
    Path(shop): Path<i64>,
    JsonBody(r): JsonBody<CheckoutSettingsRequest>,
) -> ApiResult<Json<CheckoutSettings>> {
    caller.require(&[Role::Store], shop)?;
    Ok(Json(s.checkout.put_settings(shop, &r).await?))
}

/// A new webhook signing secret, shown once; the previous one keeps signing for a while.
#[utoipa::path(post, path = "/v1/shops/{shop}/webhook-secrets", tag = "checkout", security(("api_key" = [])),
    params(("shop" = i64, Path, description = "The store")),
    responses((status = 201, body = WebhookSecret), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn rotate_secret(
    State(s): State<AppState>,
    caller: Caller,
    Path(shop): Path<i64>,
) -> ApiResult<(StatusCode, Json<WebhookSecret>)> {
    caller.require(&[Role::Store], shop)?;
    Ok((StatusCode::CREATED, Json(s.checkout.rotate_secret(shop).await?)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    /// Only events created before this time (RFC 3339): the next page.
    before: Option<chrono::DateTime<chrono::Utc>>,
    /// At most this many (1 to 100, default 20).
    limit: Option<u32>,
}

/// A store's events, newest first, with their delivery state.
#[utoipa::path(get, path = "/v1/shops/{shop}/events", tag = "checkout", security(("api_key" = [])),
    params(("shop" = i64, Path, description = "The store"), EventsQuery),
    responses((status = 200, body = Vec<EventDelivery>), (status = 400, body = Problem), (status = 403, body = Problem)))]
async fn events(
    State(s): State<AppState>,
    caller: Caller,
    Path(shop): Path<i64>,
    Query(q): Query<EventsQuery>,
) -> ApiResult<Json<Vec<EventDelivery>>> {
    caller.require(&[Role::Store], shop)?;
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError(Problem::new(ProblemKind::InvalidRequest, "limit is 1 to 100").with("field", "limit")));
    }
    let before = q.before.map_or(i64::MAX, crate::time::datetime_to_micros);
    Ok(Json(s.checkout.events(shop, before, limit).await?))
}

/// Deliver an event again now (and retry it as a new one).
#[utoipa::path(post, path = "/v1/shops/{shop}/events/{event}/resend", tag = "checkout", security(("api_key" = [])),
    params(("shop" = i64, Path, description = "The store"), ("event" = Uuid, Path, description = "The event")),
    responses((status = 204, description = "Queued"), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn resend(
    State(s): State<AppState>,
    caller: Caller,
    Path((shop, event)): Path<(i64, Uuid)>,
) -> ApiResult<StatusCode> {
    caller.require(&[Role::Store], shop)?;
    s.checkout.resend(shop, event).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The checkout operations of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    create,
    read,
    capture,
    cancel,
    refund,
    client_view,
    nonce,
    sign_in,
    confirm,
    settings,
    put_settings,
    rotate_secret,
    events,
    resend
))]
pub struct CheckoutDoc;
