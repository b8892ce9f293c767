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

/// The client's address: the peer's, or, when the peer is a trusted proxy, the last address
/// in `X-Forwarded-For` that is not one of the trusted proxies (addresses further left were
/// written by the client and prove nothing). Set once per request by [`client_address`].
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub std::net::IpAddr);

/// Works out [`ClientAddr`] for each request, with the proxies `trusted`.
pub(super) async fn client_address(
    axum::extract::State(trusted): axum::extract::State<std::sync::Arc<Vec<ipnet::IpNet>>>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
    let addr = behind_proxies(peer, &trusted, req.headers());
    req.extensions_mut().insert(ClientAddr(addr));
    next.run(req).await
}

/// The client behind `peer`: see [`ClientAddr`].
pub fn behind_proxies(
    peer: std::net::IpAddr,
    trusted: &[ipnet::IpNet],
    headers: &axum::http::HeaderMap,
) -> std::net::IpAddr {
    let is_trusted = |ip: &std::net::IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    // Each proxy appends the address it saw; read from the right, past the trusted ones.
    let mut hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    hops.reverse();
    // Bounded: a header is at most the server's header limit.
    for hop in hops {
        match hop.parse::<std::net::IpAddr>() {
            Ok(ip) if is_trusted(&ip) => continue,
            Ok(ip) => return ip,
            // Garbage where a proxy should have written an address: the proxy is all we know.
            Err(_) => return peer,
        }
    }
    peer
}

/// The client's address of a request ([`ClientAddr`]; the peer's before the middleware ran).
pub(crate) fn client_ip(parts: &Parts) -> std::net::IpAddr {
    parts.extensions.get::<ClientAddr>().map_or_else(
        || {
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |c| c.0.ip())
        },
        |a| a.0,
    )
}

/// A counter device's signature, an API key (`Authorization: Bearer`), or else a resident's
/// browser session cookie.
impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        // A counter device's request, verified by `devices::signed_requests`.
        if let Some(by) = parts.extensions.get::<crate::auth::devices::SignedBy>() {
            return Ok(Caller { role: Role::Terminal, subject: by.shop });
        }
        if let Some(SignatureRefused(p)) = parts.extensions.get::<SignatureRefused>() {
            return Err(ApiError(p.clone()));
        }
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

/// Why a signed request's signature was refused (set by `devices::signed_requests`): the
/// caller extractors answer with it, so that routing still answers first (an unknown path 404,
/// a method the path does not take 405) and a route that needs no caller is not refused.
#[derive(Clone)]
pub(super) struct SignatureRefused(pub(super) Problem);

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

/// Cookie-authenticated writes must come from this site: browsers name the page's origin on
/// every write (`Origin`), and it must be the site's (`--origin`, or else the address the
/// request was sent to). A write naming no origin is refused too, unless the browser says the
/// request is the site's own (`Sec-Fetch-Site: same-origin`), so a page elsewhere cannot use
/// a resident's session by making its request look origin-less.
pub fn check_origin(parts: &Parts, s: &AppState) -> Result<(), ApiError> {
    if matches!(parts.method, Method::GET | Method::HEAD) {
        return Ok(());
    }
    let refuse = |why: String| Err(ApiError(Problem::new(ProblemKind::Forbidden, why)));
    let header_text = |name: header::HeaderName| parts.headers.get(name).and_then(|v| v.to_str().ok());
    match header_text(header::ORIGIN) {
        Some(origin) => {
            let ours = match s.origin.as_deref() {
                Some(o) => origin == o,
                // Without a configured origin: the origin's host and port are the ones asked.
                None => {
                    let authority = origin.split_once("://").map(|(_, a)| a);
                    authority.is_some() && authority == header_text(header::HOST)
                }
            };
            if ours {
                Ok(())
            } else {
                refuse(format!("requests from {origin} may not use this session"))
            }
        }
        None if header_text(header::HeaderName::from_static("sec-fetch-site")) == Some("same-origin") => Ok(()),
        None => refuse("a write with a session must come from this site's pages (no Origin header was sent)".into()),
    }
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

#[cfg(test)]
mod tests {
    use super::behind_proxies;
    use axum::http::HeaderMap;

    #[test]
    fn the_client_is_the_last_untrusted_hop() {
        let proxies: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let peer = "10.0.0.2".parse().unwrap();
        let with = |xff: &str| {
            let mut h = HeaderMap::new();
            h.insert("x-forwarded-for", xff.parse().unwrap());
            behind_proxies(peer, &proxies, &h).to_string()
        };
        // The client wrote the first entry itself; the proxies appended after it.
        assert_eq!(with("1.2.3.4, 203.0.113.7, 10.0.0.9"), "203.0.113.7");
        assert_eq!(with("203.0.113.7"), "203.0.113.7");
        assert_eq!(with("not-an-address"), "10.0.0.2", "garbage leaves the proxy");
        assert_eq!(behind_proxies(peer, &proxies, &HeaderMap::new()).to_string(), "10.0.0.2");
        // A peer that is not a trusted proxy is the client, whatever it writes.
        let stranger = "198.51.100.1".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "203.0.113.7".parse().unwrap());
        assert_eq!(behind_proxies(stranger, &proxies, &h).to_string(), "198.51.100.1");
    }
}
