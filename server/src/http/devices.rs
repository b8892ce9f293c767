//! Counter devices: pairing codes and the device list (the shop's key), enrolment (the
//! terminal, with a code), and the layer that verifies every signed request
//! ([`crate::auth::devices`]).

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use mykey_core::api::{Device, EnrolmentRequest, PairingCode};
use mykey_core::device::Target;
use mykey_core::{Problem, ProblemKind};
use uuid::Uuid;

use super::error::{ApiError, ApiResult};
use super::extract::{client_ip, JsonBody, SignatureRefused, MAX_BODY_BYTES};
use super::state::AppState;
use crate::auth::devices::{SignedBy, SignedRequest};
use crate::auth::{Caller, Role};

/// This group's routes.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/shops/{shop}/pairing-codes", post(pairing_code))
        .route("/v1/shops/{shop}/devices", get(list))
        .route("/v1/shops/{shop}/devices/{device}/revoke", post(revoke))
        .route("/v1/devices", post(enrol))
}

/// A pairing code that enrols one counter terminal of this shop, once, within ten minutes
/// (the shop's key). Shown once.
#[utoipa::path(post, path = "/v1/shops/{shop}/pairing-codes", tag = "devices", security(("api_key" = [])),
    params(("shop" = i64, Path, description = "The shop")),
    responses((status = 201, body = PairingCode), (status = 403, body = Problem)))]
async fn pairing_code(
    State(s): State<AppState>,
    caller: Caller,
    Path(shop): Path<i64>,
) -> ApiResult<(StatusCode, Json<PairingCode>)> {
    caller.require(&[Role::Store], shop)?;
    Ok((StatusCode::CREATED, Json(s.devices.pairing_code(s.engine.store(), shop).await?)))
}

/// The shop's counter devices, newest first, with when each was last seen (the shop's key).
#[utoipa::path(get, path = "/v1/shops/{shop}/devices", tag = "devices", security(("api_key" = [])),
    params(("shop" = i64, Path, description = "The shop")),
    responses((status = 200, body = [Device]), (status = 403, body = Problem)))]
async fn list(State(s): State<AppState>, caller: Caller, Path(shop): Path<i64>) -> ApiResult<Json<Vec<Device>>> {
    caller.require(&[Role::Store], shop)?;
    Ok(Json(s.devices.list(s.engine.store(), shop).await?))
}

/// Revokes a device at once: its next signed request is refused (the shop's key).
#[utoipa::path(post, path = "/v1/shops/{shop}/devices/{device}/revoke", tag = "devices", security(("api_key" = [])),
    params(("shop" = i64, Path, description = "The shop"), ("device" = Uuid, Path, description = "The device")),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn revoke(
    State(s): State<AppState>,
    caller: Caller,
    Path((shop, device)): Path<(i64, Uuid)>,
) -> ApiResult<StatusCode> {
    caller.require(&[Role::Store], shop)?;
    s.devices.revoke(s.engine.store(), shop, device).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A terminal enrols with a pairing code and the public half of the P-256 key it made; it
/// then signs every request with that key (`docs/counter.md`). No key needed: the code is the
/// shop's consent. Failed codes count against the client's address.
#[utoipa::path(post, path = "/v1/devices", tag = "devices", request_body = EnrolmentRequest,
    responses((status = 201, body = Device), (status = 422, body = Problem), (status = 429, body = Problem)))]
async fn enrol(State(s): State<AppState>, parts: Parts, JsonBody(r): JsonBody<EnrolmentRequest>) -> Response {
    let ip = crate::auth::guesser(client_ip(&parts));
    if s.pairing_failures.blocked(&ip) {
        return ApiError(Problem::new(
            ProblemKind::RateLimited,
            "too many wrong pairing codes from this address; wait ten minutes",
        ))
        .into_response();
    }
    match s.devices.enrol(s.engine.store(), &r).await {
        Ok(d) => (StatusCode::CREATED, Json(d)).into_response(),
        Err(p) => {
            if p.kind() == Some(ProblemKind::PairingCodeInvalid) {
                s.pairing_failures.failed(&ip);
            }
            ApiError(p).into_response()
        }
    }
}

/// The layer that verifies a device's signed request: a request with `Signature-Input` or
/// `Signature` is read whole (at most [`MAX_BODY_BYTES`]) and verified; it carries on the
/// [`SignedBy`] device, or why the signature was refused ([`SignatureRefused`]).
pub(super) async fn signed_requests(
    State(s): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let signed = req.headers().contains_key("signature-input") || req.headers().contains_key("signature");
    if !signed {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        let p = Problem::new(ProblemKind::BodyTooLarge, format!("a request body has at most {MAX_BODY_BYTES} bytes"));
        return ApiError(p).into_response();
    };
    let outcome = verified(&s, &parts, &body).await;
    match outcome {
        Ok(by) => {
            parts.extensions.insert(by);
        }
        Err(p) => {
            // Wrong keys and forged signatures count as guesses from this address.
            let guess = matches!(p.kind(), Some(ProblemKind::SignatureInvalid | ProblemKind::DeviceRevoked));
            let p = if guess { s.guesses.failed(client_ip(&parts), p) } else { p };
            parts.extensions.insert(SignatureRefused(p));
        }
    }
    next.run(axum::extract::Request::from_parts(parts, axum::body::Body::from(body))).await
}

/// The device that signed the request `parts` and `body` make.
async fn verified(s: &AppState, parts: &Parts, body: &[u8]) -> Result<SignedBy, Problem> {
    let refuse = |kind: ProblemKind, detail: &str| Err(Problem::new(kind, detail.to_owned()));
    if parts.headers.contains_key(header::AUTHORIZATION) {
        return refuse(ProblemKind::InvalidRequest, "send a device's signature or an API key, not both");
    }
    let text = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let one = |name: &str| parts.headers.get_all(name).iter().count() <= 1;
    if !one("signature-input") || !one("signature") || !one("content-digest") {
        return refuse(ProblemKind::SignatureInvalid, "send Signature-Input, Signature and Content-Digest once each");
    }
    // The authority the device addressed: the site's public origin when it is configured (a
    // proxy in front may rewrite Host), else the one the request names.
    let configured = s.origin.as_deref().and_then(|o| o.split_once("://")).map(|(_, a)| a.trim_end_matches('/'));
    let authority =
        configured.or_else(|| parts.uri.authority().map(|a| a.as_str())).or_else(|| text(header::HOST.as_str()));
    let (Some(authority), Some(signature_input), Some(signature)) =
        (authority, text("signature-input"), text("signature"))
    else {
        return refuse(ProblemKind::SignatureInvalid, "a signed request has Host, Signature-Input and Signature");
    };
    let request = SignedRequest {
        target: Target { method: parts.method.as_str(), authority, path: parts.uri.path(), query: parts.uri.query() },
        signature_input,
        signature,
        content_digest: text("content-digest"),
        body,
    };
    s.devices.verify(s.engine.store(), &request, crate::time::now()).await
}

/// The counter device that signed the request; refused when the request was not signed.
impl FromRequestParts<AppState> for SignedBy {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(SignatureRefused(p)) = parts.extensions.get::<SignatureRefused>() {
            return Err(ApiError(p.clone()));
        }
        parts.extensions.get::<SignedBy>().copied().ok_or_else(|| {
            ApiError(Problem::new(
                ProblemKind::SignatureInvalid,
                "only an enrolled counter device does this, and it signs the request (RFC 9421; docs/counter.md)",
            ))
        })
    }
}

/// The OpenAPI part of this group.
#[derive(utoipa::OpenApi)]
#[openapi(paths(pairing_code, list, revoke, enrol), components(schemas(PairingCode, Device, EnrolmentRequest)))]
pub struct DevicesDoc;
