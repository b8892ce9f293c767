//! Embedding, for stores and partners alike: registering origins and a webhook (which makes the
//! publishable key), rotating the webhook secret, listing and resending events, and the
//! widget's frame, which only registered origins may embed.

use axum::extract::{Path, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use mykey_core::api::{EmbedSettings, EmbedSettingsRequest, EventDelivery, WebhookSecret};
use mykey_core::{Problem, ProblemKind};
use serde::Deserialize;
use uuid::Uuid;

use super::error::{ApiError, ApiResult};
use super::extract::{client_ip, JsonBody};
use super::state::AppState;
use crate::auth::{Caller, Role};
use crate::services::embedding::Owner;

/// This group's routes.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/shops/{shop}/checkout", get(shop_settings).put(put_shop_settings))
        .route("/v1/shops/{shop}/webhook-secrets", post(rotate_shop_secret))
        .route("/v1/shops/{shop}/events", get(shop_events))
        .route("/v1/shops/{shop}/events/{event}/resend", post(resend_shop_event))
        .route("/v1/partners/{partner}/embedding", get(partner_settings).put(put_partner_settings))
        .route("/v1/partners/{partner}/webhook-secrets", post(rotate_partner_secret))
        .route("/v1/partners/{partner}/events", get(partner_events))
        .route("/v1/partners/{partner}/events/{event}/resend", post(resend_partner_event))
        .route("/widget/frame", get(frame))
        .route("/widget/sign-in", get(sign_in_window))
}

/// A wrong client secret counts as a failed authentication of the address.
pub(super) fn guarded<T>(s: &AppState, parts: &Parts, r: Result<T, Problem>) -> ApiResult<T> {
    r.map_err(|p| {
        if p.kind() == Some(ProblemKind::Unauthenticated) {
            ApiError(s.guesses.failed(client_ip(parts), p))
        } else {
            ApiError(p)
        }
    })
}

/// The widget's page as written, naming its files without their content hashes: served when
/// there is no web build (`--web-dir`), whose `sdk/frame.html` names the hashed files.
pub(super) const FRAME_HTML: &str = include_str!("../../../sdk-wasm/widget/frame.html");

/// The widget's page: the web build's `sdk/frame.html` (`scripts/build-web` names its scripts
/// by their content hash, kept immutable by browsers), or [`FRAME_HTML`] without a web build.
/// A web build whose page is missing, or names a file the build does not have, is refused at
/// start: the widget would otherwise only ever say "Loading".
pub fn widget_page(web_dir: Option<&std::path::Path>) -> anyhow::Result<std::sync::Arc<str>> {
    use anyhow::Context as _;
    let Some(dir) = web_dir else { return Ok(FRAME_HTML.into()) };
    let path = dir.join("sdk/frame.html");
    let page = std::fs::read_to_string(&path)
        .with_context(|| format!("{} (run scripts/build-web, which writes it)", path.display()))?;
    for named in page.split("\"/app/").skip(1).filter_map(|rest| rest.split('"').next()) {
        anyhow::ensure!(
            dir.join(named).is_file(),
            "{} names /app/{named}, which the web build does not have (build it again with scripts/build-web)",
            path.display()
        );
    }
    Ok(page.into())
}

/// Headers both widget pages carry: never stored, and no referrer sent onward.
fn widget_page_response(s: &AppState, csp: &str) -> axum::response::Response {
    use axum::http::{header, HeaderValue};
    use axum::response::IntoResponse;
    let mut res = (StatusCode::OK, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], s.widget_page.to_string())
        .into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_str(csp).expect("origins are ASCII"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Its address holds a publishable key and a session id only; still, say nothing onward.
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    res
}

/// The policy of both widget pages but for who may frame them.
fn widget_csp(frame_ancestors: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors {frame_ancestors}; \
         report-uri /csp-reports"
    )
}

/// The window where a widget's resident types a MyKey ID password: a top-level page of the
/// points cloud (never framed, so its address bar shows whose page it is), opened by the
/// widget's frame, which alone it hands the sign-in to. The same page and script as the frame.
async fn sign_in_window(State(s): State<AppState>) -> axum::response::Response {
    let mut res = widget_page_response(&s, &widget_csp("'none'"));
    // Browsers without CSP's frame-ancestors refuse to frame it too.
    res.headers_mut().insert(axum::http::header::X_FRAME_OPTIONS, axum::http::HeaderValue::from_static("DENY"));
    res
}

#[derive(Deserialize)]
struct FrameQuery {
    pk: String,
    /// A checkout or link session; none for a partner's coupon widget.
    session: Option<Uuid>,
    /// `checkout` (the default), `link` or `coupon`.
    kind: Option<String>,
}

/// The origins that may frame the widget `q` asks for.
async fn frame_origins(s: &AppState, q: &FrameQuery) -> Result<Vec<String>, Problem> {
    match (q.kind.as_deref().unwrap_or("checkout"), q.session) {
        ("checkout", Some(session)) => s.checkout.frame_origins(&q.pk, session).await,
        ("link", Some(session)) => s.links.frame_origins(&q.pk, session).await,
        ("coupon", None) => Ok(s.coupons.widget_view(&q.pk).await?.origins),
        _ => Err(Problem::new(ProblemKind::NotFound, "no such widget")),
    }
}

/// The widget's page for a publishable key (and session): framed only by its owner's
/// registered origins (`frame-ancestors`), and refused outright when the framing page says it
/// is elsewhere (`Referer`).
async fn frame(State(s): State<AppState>, parts: Parts, Query(q): Query<FrameQuery>) -> axum::response::Response {
    use axum::http::{header, HeaderValue};
    use axum::response::IntoResponse;
    let referer_origin = parts
        .headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| url::Url::parse(r).ok())
        .map(|u| u.origin().ascii_serialization());
    let allowed = match frame_origins(&s, &q).await {
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
    let mut res = widget_page_response(&s, &widget_csp(&allowed.join(" ")));
    let h = res.headers_mut();
    // A page that isolates itself (COEP require-corp) may still embed the widget.
    h.insert("cross-origin-resource-policy", HeaderValue::from_static("cross-origin"));
    h.insert("cross-origin-embedder-policy", HeaderValue::from_static("require-corp"));
    res
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

async fn list_events(s: &AppState, owner: Owner, q: &EventsQuery) -> ApiResult<Json<Vec<EventDelivery>>> {
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError(Problem::new(ProblemKind::InvalidRequest, "limit is 1 to 100").with("field", "limit")));
    }
    let before = q.before.map_or(i64::MAX, crate::time::datetime_to_micros);
    Ok(Json(s.embedding.events(owner, before, limit).await?))
}

/// A store's checkout settings (the store).
#[utoipa::path(get, path = "/v1/shops/{shop}/checkout", tag = "checkout", security(("api_key" = [])),
    params(("shop" = i64, Path, description = "The store")),
    responses((status = 200, body = EmbedSettings), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn shop_settings(
    State(s): State<AppState>,
    caller: Caller,
    Path(shop): Path<i64>,
) -> ApiResult<Json<EmbedSettings>> {
    caller.require(&[Role::Store], shop)?;
    Ok(Json(s.embedding.settings(Owner::Store(shop)).await?))
}

/// Register the store's origins and webhook URL; the first time also makes its publishable key.
#[utoipa::path(put, path = "/v1/shops/{shop}/checkout", tag = "checkout", request_body = EmbedSettingsRequest,
    security(("api_key" = [])), params(("shop" = i64, Path, description = "The store")),
    responses((status = 200, body = EmbedSettings), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 422, body = Problem)))]
async fn put_shop_settings(
    State(s): State<AppState>,
    caller: Caller,
    Path(shop): Path<i64>,
    JsonBody(r): JsonBody<EmbedSettingsRequest>,
) -> ApiResult<Json<EmbedSettings>> {
    caller.require(&[Role::Store], shop)?;
    Ok(Json(s.embedding.put_settings(Owner::Store(shop), &r).await?))
}

/// A new webhook signing secret, shown once; the previous one keeps signing for a while.
#[utoipa::path(post, path = "/v1/shops/{shop}/webhook-secrets", tag = "checkout", security(("api_key" = [])),
    params(("shop" = i64, Path, description = "The store")),
    responses((status = 201, body = WebhookSecret), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn rotate_shop_secret(
    State(s): State<AppState>,
    caller: Caller,
    Path(shop): Path<i64>,
) -> ApiResult<(StatusCode, Json<WebhookSecret>)> {
    caller.require(&[Role::Store], shop)?;
    Ok((StatusCode::CREATED, Json(s.embedding.rotate_secret(Owner::Store(shop)).await?)))
}

/// A store's events, newest first, with their delivery state.
#[utoipa::path(get, path = "/v1/shops/{shop}/events", tag = "checkout", security(("api_key" = [])),
    params(("shop" = i64, Path, description = "The store"), EventsQuery),
    responses((status = 200, body = Vec<EventDelivery>), (status = 400, body = Problem), (status = 403, body = Problem)))]
async fn shop_events(
    State(s): State<AppState>,
    caller: Caller,
    Path(shop): Path<i64>,
    Query(q): Query<EventsQuery>,
) -> ApiResult<Json<Vec<EventDelivery>>> {
    caller.require(&[Role::Store], shop)?;
    list_events(&s, Owner::Store(shop), &q).await
}

/// Deliver a store's event again now (and retry it as a new one).
#[utoipa::path(post, path = "/v1/shops/{shop}/events/{event}/resend", tag = "checkout", security(("api_key" = [])),
    params(("shop" = i64, Path, description = "The store"), ("event" = Uuid, Path, description = "The event")),
    responses((status = 204, description = "Queued"), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn resend_shop_event(
    State(s): State<AppState>,
    caller: Caller,
    Path((shop, event)): Path<(i64, Uuid)>,
) -> ApiResult<StatusCode> {
    caller.require(&[Role::Store], shop)?;
    s.embedding.resend(Owner::Store(shop), event).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A partner's embedding settings (the partner).
#[utoipa::path(get, path = "/v1/partners/{partner}/embedding", tag = "partners", security(("api_key" = [])),
    params(("partner" = i64, Path, description = "The partner")),
    responses((status = 200, body = EmbedSettings), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn partner_settings(
    State(s): State<AppState>,
    caller: Caller,
    Path(partner): Path<i64>,
) -> ApiResult<Json<EmbedSettings>> {
    caller.require(&[Role::Partner], partner)?;
    Ok(Json(s.embedding.settings(Owner::Partner(partner)).await?))
}

/// Register the partner's member-site origins and webhook URL; the first time also makes its
/// publishable key.
#[utoipa::path(put, path = "/v1/partners/{partner}/embedding", tag = "partners", request_body = EmbedSettingsRequest,
    security(("api_key" = [])), params(("partner" = i64, Path, description = "The partner")),
    responses((status = 200, body = EmbedSettings), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 422, body = Problem)))]
async fn put_partner_settings(
    State(s): State<AppState>,
    caller: Caller,
    Path(partner): Path<i64>,
    JsonBody(r): JsonBody<EmbedSettingsRequest>,
) -> ApiResult<Json<EmbedSettings>> {
    caller.require(&[Role::Partner], partner)?;
    Ok(Json(s.embedding.put_settings(Owner::Partner(partner), &r).await?))
}

/// A new webhook signing secret for the partner, shown once.
#[utoipa::path(post, path = "/v1/partners/{partner}/webhook-secrets", tag = "partners", security(("api_key" = [])),
    params(("partner" = i64, Path, description = "The partner")),
    responses((status = 201, body = WebhookSecret), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn rotate_partner_secret(
    State(s): State<AppState>,
    caller: Caller,
    Path(partner): Path<i64>,
) -> ApiResult<(StatusCode, Json<WebhookSecret>)> {
    caller.require(&[Role::Partner], partner)?;
    Ok((StatusCode::CREATED, Json(s.embedding.rotate_secret(Owner::Partner(partner)).await?)))
}

/// A partner's events (redemptions, links), newest first, with their delivery state.
#[utoipa::path(get, path = "/v1/partners/{partner}/events", tag = "partners", security(("api_key" = [])),
    params(("partner" = i64, Path, description = "The partner"), EventsQuery),
    responses((status = 200, body = Vec<EventDelivery>), (status = 400, body = Problem), (status = 403, body = Problem)))]
async fn partner_events(
    State(s): State<AppState>,
    caller: Caller,
    Path(partner): Path<i64>,
    Query(q): Query<EventsQuery>,
) -> ApiResult<Json<Vec<EventDelivery>>> {
    caller.require(&[Role::Partner], partner)?;
    list_events(&s, Owner::Partner(partner), &q).await
}

/// Deliver a partner's event again now.
#[utoipa::path(post, path = "/v1/partners/{partner}/events/{event}/resend", tag = "partners", security(("api_key" = [])),
    params(("partner" = i64, Path, description = "The partner"), ("event" = Uuid, Path, description = "The event")),
    responses((status = 204, description = "Queued"), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn resend_partner_event(
    State(s): State<AppState>,
    caller: Caller,
    Path((partner, event)): Path<(i64, Uuid)>,
) -> ApiResult<StatusCode> {
    caller.require(&[Role::Partner], partner)?;
    s.embedding.resend(Owner::Partner(partner), event).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The embedding operations of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    shop_settings,
    put_shop_settings,
    rotate_shop_secret,
    shop_events,
    resend_shop_event,
    partner_settings,
    put_partner_settings,
    rotate_partner_secret,
    partner_events,
    resend_partner_event
))]
pub struct EmbeddingDoc;
