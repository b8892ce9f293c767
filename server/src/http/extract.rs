//! Extractors: JSON bodies whose refusals are problems, the client's address, the caller.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request as HttpRequest};
use axum::http::{header, request::Parts, StatusCode};
use axum::Json;
use mykey_core::{Problem, ProblemKind};

use super::error::ApiError;
use std::net::IpAddr;

use axum::http::Method;
use axum_extra::extract::cookie::CookieJar;

use super::state::AppState;
use crate::auth::{Caller, Role};
use crate::services::identity::card::VerifiedCard;

/// The largest request body read. The largest legitimate ones, a card's login token and an
/// operator's transaction of [`crate::ledger::MAX_LEGS`] legs, are a few KiB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A JSON body whose rejections are problems.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;
    async fn from_request(req: HttpRequest, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(JsonBody(v)),
            Err(e) => {
                let (kind, detail) = match &e {
                    JsonRejection::MissingJsonContentType(_) => (
                        ProblemKind::InvalidRequest,
                        "send the body as JSON with `Content-Type: application/json`".to_owned(),
                    ),
                    other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                        (ProblemKind::BodyTooLarge, format!("a request body has at most {MAX_BODY_BYTES} bytes"))
                    }
                    other => (ProblemKind::InvalidRequest, other.body_text()),
                };
                Err(ApiError(Problem::new(kind, detail)))
            }
        }
    }
}

/// The client's address (0.0.0.0 when the server was not given connection info).
pub(crate) fn client_ip(parts: &Parts) -> std::net::IpAddr {
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |c| c.0.ip())
}

/// An API key (`Authorization: Bearer`), or else a resident's browser session cookie.
impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let bearer = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let has_session =
            axum_extra::extract::cookie::CookieJar::from_headers(&parts.headers).get(SESSION_COOKIE).is_some();
        if bearer.is_none() && has_session {
            let session = SessionAuth::from_request_parts(parts, state).await?;
            let resident = session.session.resident.ok_or_else(|| {
                Problem::new(ProblemKind::Forbidden, "this card has no MyKey ID yet; register one first")
            })?;
            return Ok(Caller { role: Role::Resident, subject: resident });
        }
        let key = bearer.and_then(|v| v.strip_prefix("Bearer ")).ok_or_else(|| {
            Problem::new(ProblemKind::Unauthenticated, "send an API key as `Authorization: Bearer mk_...`")
        })?;
        match state.keys.resolve(state.engine.store(), key.trim()).await {
            Ok(c) => Ok(c),
            Err(p) if p.kind() == Some(ProblemKind::Unauthenticated) => {
                Err(ApiError(state.guesses.failed(client_ip(parts), p)))
            }
            Err(p) => Err(ApiError(p)),
        }
    }
}

/// The session cookie.
pub const SESSION_COOKIE: &str = "mykey_session";
/// The login-challenge cookie.
pub const CHALLENGE_COOKIE: &str = "mykey_challenge";

/// A browser session from the cookie.
pub struct SessionAuth {
    /// The cookie value.
    pub token: String,
    /// The session.
    pub session: crate::store::identity::Session,
}

impl FromRequestParts<AppState> for SessionAuth {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Self::Rejection> {
        let jar = CookieJar::from_headers(&parts.headers);
        let unauth =
            || ApiError(Problem::new(ProblemKind::Unauthenticated, "log in first (card or MyKey ID and password)"));
        let token = jar.get(SESSION_COOKIE).map(|c| c.value().to_owned()).ok_or_else(unauth)?;
        check_origin(parts, s)?;
        let session = s.identity.session(&token).await?.ok_or_else(unauth)?;
        Ok(SessionAuth { token, session })
    }
}

/// Cookie-authenticated writes must come from our own origin when the browser names one.
pub fn check_origin(parts: &Parts, s: &AppState) -> Result<(), ApiError> {
    if matches!(parts.method, Method::GET | Method::HEAD) {
        return Ok(());
    }
    let (Some(origin), Some(ours)) =
        (parts.headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()), s.identity.origin())
    else {
        return Ok(());
    };
    if origin != ours {
        return Err(ApiError(Problem::new(
            ProblemKind::Forbidden,
            format!("requests from {origin} may not use this session"),
        )));
    }
    Ok(())
}

/// A session with a MyKey ID.
pub struct ResidentAuth {
    /// The resident.
    pub resident: i64,
    /// The session cookie's value.
    pub token: String,
}

impl FromRequestParts<AppState> for ResidentAuth {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Self::Rejection> {
        let a = SessionAuth::from_request_parts(parts, s).await?;
        let resident = a.session.resident.ok_or_else(|| {
            ApiError(Problem::new(ProblemKind::Forbidden, "this card has no MyKey ID yet; register one first"))
        })?;
        Ok(ResidentAuth { resident, token: a.token })
    }
}

/// A card session still registering.
pub struct RegistrationAuth {
    /// The card that logged in.
    pub card: VerifiedCard,
    /// The session cookie's value.
    pub token: String,
}

impl FromRequestParts<AppState> for RegistrationAuth {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Self::Rejection> {
        let a = SessionAuth::from_request_parts(parts, s).await?;
        match (a.session.resident, a.session.card) {
            (None, Some(card)) => Ok(RegistrationAuth { card, token: a.token }),
            (Some(_), _) => {
                Err(ApiError(Problem::new(ProblemKind::CardAlreadyBound, "this session already has a MyKey ID")))
            }
            (None, None) => Err(ApiError(Problem::new(ProblemKind::Unauthenticated, "log in with the card first"))),
        }
    }
}

/// The client's address, for rate limits.
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_ip(parts)))
    }
}
