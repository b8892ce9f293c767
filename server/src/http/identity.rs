//! HTTP face of card login and MyKey IDs. Browser sessions are an HttpOnly, SameSite=Strict
//! cookie (`mykey_session`); a write with a session must also come from the configured
//! origin when the browser says where it comes from. The login challenge is bound to a
//! second cookie (`mykey_challenge`), so a token signed in one browser cannot be used in
//! another.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use mykey_core::identity::*;
use mykey_core::{Problem, ProblemKind};
use rand::RngCore;

use crate::http::error::ApiError;
use crate::http::extract::{client_ip, JsonBody};
use crate::http::state::AppState;
use crate::services::identity::NewSession;
use crate::time;

use crate::http::error::ApiResult;
use crate::http::extract::{ClientIp, RegistrationAuth, ResidentAuth, CHALLENGE_COOKIE, SESSION_COOKIE};

/// The identity routes, merged into the API's router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/auth/nonce", post(nonce))
        .route("/v1/auth/card", post(card_login))
        .route("/v1/auth/password", post(password_login))
        .route("/v1/auth/logout", post(logout))
        .route("/v1/registration/candidates", post(registration_candidates))
        .route("/v1/mykey-ids", post(register))
        .route("/v1/me", get(me))
        .route("/v1/me/history", get(me_history))
        .route("/v1/me/settings", put(me_settings))
        .route("/v1/me/password", post(me_password))
        .route("/v1/me/candidates", post(me_candidates))
        .route("/v1/me/mykey-id", post(me_mykey_id))
        .route("/v1/me/revoke", post(me_revoke))
        .route("/v1/me/card", post(me_card))
        .route("/v1/me/service-links", get(me_links))
        .route("/v1/me/service-links/{link}/revoke", post(me_unlink))
        .route("/v1/partners/{partner}/linked-conversions", post(linked_conversion))
        .route("/v1/shops/{shop}/mandate-charges", post(mandate_charge))
        .route("/v1/me/mandates", get(me_mandates))
        .route("/v1/me/mandates/{mandate}/revoke", post(me_revoke_mandate))
        .route("/v1/facilities/{shop}/service", put(facility_service))
        .route("/v1/facilities/{shop}/challenges", post(facility_challenge))
        .route("/v1/facilities/{shop}/patrons", post(facility_link))
        .route("/v1/facilities/{shop}/lookups", post(facility_lookup))
        .route("/v1/me/patron-links", get(me_patron_links))
        .route("/v1/me/patron-links/{link}/revoke", post(me_patron_unlink))
}

/// An HttpOnly, SameSite=Strict cookie (Secure on https), for the browser session when
/// `max_age` is none.
fn cookie(s: &AppState, name: &'static str, value: String, max_age: Option<std::time::Duration>) -> Cookie<'static> {
    let secure = s.origin.as_deref().is_some_and(|o| o.starts_with("https://"));
    let mut c = Cookie::build((name, value)).http_only(true).secure(secure).same_site(SameSite::Strict).path("/");
    if let Some(age) = max_age {
        c = c.max_age(time_duration(age));
    }
    c.build()
}

fn time_duration(d: std::time::Duration) -> cookie::time::Duration {
    cookie::time::Duration::seconds(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn with_session(s: &AppState, jar: CookieJar, session: NewSession) -> CookieJar {
    jar.add(cookie(s, SESSION_COOKIE, session.token, Some(session.max_age)))
}

/// A card challenge for one purpose; sets the challenge cookie it is bound to.
#[utoipa::path(post, path = "/v1/auth/nonce", tag = "identity", request_body = NonceRequest,
    responses((status = 200, body = NonceIssued), (status = 400, body = Problem), (status = 429, body = Problem),
        (status = 503, body = Problem)))]
async fn nonce(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    jar: CookieJar,
    JsonBody(r): JsonBody<NonceRequest>,
) -> ApiResult<(CookieJar, Json<NonceIssued>)> {
    let challenge = match jar.get(CHALLENGE_COOKIE) {
        Some(c) if c.value().len() == 64 => c.value().to_owned(),
        _ => {
            let mut b = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut b);
            hex::encode(b)
        }
    };
    // The counter's purposes are asked for by a shop's enrolled device, bound to it and naming
    // the shop, never by a browser's cookie.
    let counter_only = match r.purpose {
        CardPurpose::Payment => {
            Some("a payment's challenge names its terms (POST /v1/shops/{shop}/counter-challenges)")
        }
        CardPurpose::CounterBalance => Some("a balance read names its shop (POST /v1/shops/{shop}/balance-challenges)"),
        CardPurpose::PatronLink | CardPurpose::PatronLookup => {
            Some("a facility's device asks for it (POST /v1/facilities/{shop}/challenges)")
        }
        _ => None,
    };
    if let Some(instead) = counter_only {
        return Err(ApiError(
            Problem::new(ProblemKind::InvalidRequest, format!("a shop's counter terminal asks for it: {instead}"))
                .with("field", "purpose"),
        ));
    }
    let (nonce, life) = s.identity.nonce(&challenge, r.purpose, ip)?;
    // The binding lives as long as the browser session; each nonce has its own life.
    let jar = jar.add(cookie(&s, CHALLENGE_COOKIE, challenge, None));
    let expires_at = time::micros_to_datetime(time::now() + i64::try_from(life.as_micros()).unwrap_or(i64::MAX));
    Ok((jar, Json(NonceIssued { nonce, purpose: r.purpose, expires_at })))
}

fn challenge(jar: &CookieJar) -> Result<String, ApiError> {
    jar.get(CHALLENGE_COOKIE).map(|c| c.value().to_owned()).ok_or_else(|| {
        ApiError(Problem::new(ProblemKind::NonceInvalid, "no login challenge in this browser; ask for a nonce first"))
    })
}

/// Card login: the card's MyKey ID session, or a registration session.
#[utoipa::path(post, path = "/v1/auth/card", tag = "identity", request_body = CardLoginRequest,
    responses((status = 200, body = CardLogin), (status = 401, body = Problem)))]
async fn card_login(
    State(s): State<AppState>,
    jar: CookieJar,
    JsonBody(r): JsonBody<CardLoginRequest>,
) -> ApiResult<(CookieJar, Json<CardLogin>)> {
    let card =
        s.identity.verify_card(&r.nonce, &challenge(&jar)?, CardPurpose::Login, &SigningContext::Web, &r.token)?;
    let (login, session) = s.identity.card_login(card).await?;
    Ok((with_session(&s, jar, session), Json(login)))
}

/// Password login with the MyKey ID (rate-limited per address and per ID).
#[utoipa::path(post, path = "/v1/auth/password", tag = "identity", request_body = PasswordLogin,
    responses((status = 200, body = Profile), (status = 401, body = Problem), (status = 429, body = Problem)))]
async fn password_login(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    jar: CookieJar,
    JsonBody(r): JsonBody<PasswordLogin>,
) -> ApiResult<(CookieJar, Json<Profile>)> {
    let (profile, session) = s.identity.password_login(&r.mykey_id, &r.password, ip).await?;
    Ok((with_session(&s, jar, session), Json(profile)))
}

/// Ends the session.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "identity", responses((status = 204)))]
async fn logout(State(s): State<AppState>, jar: CookieJar) -> ApiResult<(CookieJar, StatusCode)> {
    if let Some(c) = jar.get(SESSION_COOKIE) {
        s.identity.logout(c.value()).await?;
    }
    Ok((jar.remove(Cookie::build(SESSION_COOKIE).path("/")), StatusCode::NO_CONTENT))
}

/// A step of the candidate dialogue during registration.
#[utoipa::path(post, path = "/v1/registration/candidates", security(("session" = [])), tag = "identity", request_body = CandidateRequest,
    responses((status = 200, body = Registration), (status = 409, body = Problem), (status = 422, body = Problem), (status = 429, body = Problem)))]
async fn registration_candidates(
    State(s): State<AppState>,
    auth: RegistrationAuth,
    ClientIp(ip): ClientIp,
    JsonBody(r): JsonBody<CandidateRequest>,
) -> ApiResult<Json<Registration>> {
    Ok(Json(s.identity.candidate(&auth.card, &r, ip).await?))
}

/// Registers the MyKey ID of the card that logged in.
#[utoipa::path(post, path = "/v1/mykey-ids", security(("session" = [])), tag = "identity", request_body = RegistrationRequest,
    responses((status = 201, body = Profile), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn register(
    State(s): State<AppState>,
    auth: RegistrationAuth,
    JsonBody(r): JsonBody<RegistrationRequest>,
) -> ApiResult<(StatusCode, Json<Profile>)> {
    Ok((StatusCode::CREATED, Json(s.identity.register(&auth.token, &auth.card, &r).await?)))
}

/// The session's MyKey ID.
#[utoipa::path(get, path = "/v1/me", security(("session" = [])), tag = "identity", responses((status = 200, body = Profile), (status = 401, body = Problem)))]
async fn me(State(s): State<AppState>, auth: ResidentAuth) -> ApiResult<Json<Profile>> {
    Ok(Json(s.identity.profile(auth.resident).await?))
}

/// The usage history of the session's MyKey ID, newest first.
#[utoipa::path(get, path = "/v1/me/history", security(("session" = [])), tag = "identity", responses((status = 200, body = [UsageEvent])))]
async fn me_history(State(s): State<AppState>, auth: ResidentAuth) -> ApiResult<Json<Vec<UsageEvent>>> {
    let events = s.identity.history(auth.resident).await?;
    Ok(Json(
        events
            .into_iter()
            .map(|(mykey_id, kind, at)| UsageEvent { mykey_id, kind, at: time::micros_to_datetime(at) })
            .collect(),
    ))
}

/// Changes e-mail and notices.
#[utoipa::path(put, path = "/v1/me/settings", security(("session" = [])), tag = "identity", request_body = SettingsChange,
    responses((status = 200, body = Profile), (status = 401, description = "The password is wrong", body = Problem),
        (status = 422, body = Problem), (status = 429, body = Problem)))]
async fn me_settings(
    State(s): State<AppState>,
    auth: ResidentAuth,
    ClientIp(ip): ClientIp,
    JsonBody(r): JsonBody<SettingsChange>,
) -> ApiResult<Json<Profile>> {
    Ok(Json(s.identity.change_settings(auth.resident, &r, ip).await?))
}

/// Changes the password (other sessions end).
#[utoipa::path(post, path = "/v1/me/password", security(("session" = [])), tag = "identity", request_body = PasswordChange,
    responses((status = 204), (status = 401, body = Problem), (status = 422, body = Problem)))]
async fn me_password(
    State(s): State<AppState>,
    auth: ResidentAuth,
    ClientIp(ip): ClientIp,
    JsonBody(r): JsonBody<PasswordChange>,
) -> ApiResult<StatusCode> {
    s.identity.change_password(auth.resident, &auth.token, &r, ip).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A step of the candidate dialogue for changing the MyKey ID.
#[utoipa::path(post, path = "/v1/me/candidates", security(("session" = [])), tag = "identity", request_body = CandidateRequest,
    responses((status = 200, body = Registration), (status = 409, body = Problem)))]
async fn me_candidates(
    State(s): State<AppState>,
    auth: ResidentAuth,
    ClientIp(ip): ClientIp,
    JsonBody(r): JsonBody<CandidateRequest>,
) -> ApiResult<Json<Registration>> {
    let card = s.identity.bound_card(auth.resident).await?;
    Ok(Json(s.identity.candidate(&card, &r, ip).await?))
}

/// Changes the MyKey ID to the candidate on offer.
#[utoipa::path(post, path = "/v1/me/mykey-id", security(("session" = [])), tag = "identity", request_body = MykeyIdChange,
    responses((status = 200, body = Profile), (status = 409, body = Problem)))]
async fn me_mykey_id(
    State(s): State<AppState>,
    auth: ResidentAuth,
    ClientIp(ip): ClientIp,
    JsonBody(r): JsonBody<MykeyIdChange>,
) -> ApiResult<Json<Profile>> {
    Ok(Json(s.identity.change_id(auth.resident, &r, ip).await?))
}

/// Revokes the MyKey ID; the session ends.
#[utoipa::path(post, path = "/v1/me/revoke", security(("session" = [])), tag = "identity", request_body = Revocation,
    responses((status = 204), (status = 401, body = Problem)))]
async fn me_revoke(
    State(s): State<AppState>,
    auth: ResidentAuth,
    ClientIp(ip): ClientIp,
    jar: CookieJar,
    JsonBody(r): JsonBody<Revocation>,
) -> ApiResult<(CookieJar, StatusCode)> {
    s.identity.revoke(auth.resident, &r.password, ip).await?;
    Ok((jar.remove(Cookie::build(SESSION_COOKIE).path("/")), StatusCode::NO_CONTENT))
}

/// Re-binds the MyKey ID to a renewed card (a token from the new card), confirmed with the
/// password; the address on file hears of it.
#[utoipa::path(post, path = "/v1/me/card", security(("session" = [])), tag = "identity", request_body = CardRebind,
    responses((status = 200, body = Profile), (status = 401, body = Problem), (status = 409, body = Problem),
        (status = 429, body = Problem)))]
async fn me_card(
    State(s): State<AppState>,
    auth: ResidentAuth,
    ClientIp(ip): ClientIp,
    jar: CookieJar,
    JsonBody(r): JsonBody<CardRebind>,
) -> ApiResult<Json<Profile>> {
    let challenge = challenge(&jar)?;
    Ok(Json(
        s.identity
            .rebind(auth.resident, &r.password, ip, || {
                s.identity.verify_card(&r.nonce, &challenge, CardPurpose::Rebind, &SigningContext::Web, &r.token)
            })
            .await?,
    ))
}

/// The session's linked service IDs (partners and online services).
#[utoipa::path(get, path = "/v1/me/service-links", security(("session" = [])), tag = "identity", responses((status = 200, body = [ServiceLink])))]
async fn me_links(State(s): State<AppState>, auth: ResidentAuth) -> ApiResult<Json<Vec<ServiceLink>>> {
    Ok(Json(s.identity.links(auth.resident).await?))
}

/// Cuts a linked service ID (the password again); the partner's server hears of it.
#[utoipa::path(post, path = "/v1/me/service-links/{link}/revoke", security(("session" = [])), tag = "identity",
    request_body = Revocation, params(("link" = uuid::Uuid, Path, description = "The link")),
    responses((status = 204), (status = 401, body = Problem), (status = 404, body = Problem), (status = 429, body = Problem)))]
async fn me_unlink(
    State(s): State<AppState>,
    auth: ResidentAuth,
    parts: axum::http::request::Parts,
    axum::extract::Path(link): axum::extract::Path<uuid::Uuid>,
    JsonBody(r): JsonBody<Revocation>,
) -> ApiResult<StatusCode> {
    s.links.unlink(auth.resident, link, &r.password, client_ip(&parts)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A partner converts a linked member's points (idempotent by the partner's reference).
#[utoipa::path(post, path = "/v1/partners/{partner}/linked-conversions", tag = "identity",
    request_body = LinkedConversionRequest, security(("api_key" = [])),
    params(("partner" = i64, Path, description = "The partner")),
    responses((status = 201, body = mykey_core::api::PartyReceipt), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn linked_conversion(
    State(s): State<AppState>,
    caller: crate::auth::Caller,
    axum::extract::Path(partner): axum::extract::Path<i64>,
    JsonBody(r): JsonBody<LinkedConversionRequest>,
) -> ApiResult<axum::response::Response> {
    caller.require(&[crate::auth::Role::Partner], partner)?;
    super::party::receipt(s.identity.linked_conversion(partner, &r).await?)
}

/// A store charges a resident under a standing mandate the resident granted it (idempotent by
/// the store's reference); the answer names no account or balance.
#[utoipa::path(post, path = "/v1/shops/{shop}/mandate-charges", tag = "identity",
    request_body = mykey_core::api::MandateChargeRequest, security(("api_key" = [])),
    params(("shop" = i64, Path, description = "The store the mandate was granted to")),
    responses((status = 201, body = mykey_core::api::PartyReceipt), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem), (status = 429, body = Problem)))]
async fn mandate_charge(
    State(s): State<AppState>,
    caller: crate::auth::Caller,
    axum::extract::Path(shop): axum::extract::Path<i64>,
    JsonBody(r): JsonBody<mykey_core::api::MandateChargeRequest>,
) -> ApiResult<axum::response::Response> {
    caller.require(&[crate::auth::Role::Store], shop)?;
    super::party::receipt(s.mandates.charge(shop, &r).await?)
}

/// The session's standing mandates, with what was charged under each.
#[utoipa::path(get, path = "/v1/me/mandates", security(("session" = [])), tag = "identity",
    responses((status = 200, body = [mykey_core::api::ResidentMandate])))]
async fn me_mandates(
    State(s): State<AppState>,
    auth: ResidentAuth,
) -> ApiResult<Json<Vec<mykey_core::api::ResidentMandate>>> {
    Ok(Json(s.identity.mandates(auth.resident).await?))
}

/// Revokes a standing mandate at once; its store hears of it.
#[utoipa::path(post, path = "/v1/me/mandates/{mandate}/revoke", security(("session" = [])), tag = "identity",
    params(("mandate" = uuid::Uuid, Path, description = "The mandate")),
    responses((status = 204), (status = 404, body = Problem)))]
async fn me_revoke_mandate(
    State(s): State<AppState>,
    auth: ResidentAuth,
    axum::extract::Path(mandate): axum::extract::Path<uuid::Uuid>,
) -> ApiResult<StatusCode> {
    s.links.revoke_mandate(auth.resident, mandate).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A facility registers the card service whose patron numbers it keeps (its store key, or
/// the operator).
#[utoipa::path(put, path = "/v1/facilities/{shop}/service", tag = "one card", request_body = FacilityServiceRequest,
    security(("api_key" = [])), params(("shop" = i64, Path, description = "The facility")),
    responses((status = 200, body = FacilityService), (status = 400, body = Problem), (status = 403, body = Problem)))]
async fn facility_service(
    State(s): State<AppState>,
    caller: crate::auth::Caller,
    axum::extract::Path(shop): axum::extract::Path<i64>,
    JsonBody(r): JsonBody<FacilityServiceRequest>,
) -> ApiResult<Json<FacilityService>> {
    caller.require(&[crate::auth::Role::Store], shop)?;
    Ok(Json(s.identity.set_facility_service(shop, &r).await?))
}

/// A challenge for the resident's card at this facility's counter (a patron link or look-up),
/// naming the facility: good for this device only, once, for five minutes.
#[utoipa::path(post, path = "/v1/facilities/{shop}/challenges", tag = "one card", request_body = NonceRequest,
    security(("device_signature" = [])), params(("shop" = i64, Path, description = "The facility")),
    responses((status = 200, body = NonceIssued), (status = 429, body = Problem)))]
async fn facility_challenge(
    State(s): State<AppState>,
    device: crate::auth::devices::SignedBy,
    axum::extract::Path(shop): axum::extract::Path<i64>,
    JsonBody(r): JsonBody<NonceRequest>,
) -> ApiResult<Json<NonceIssued>> {
    device.require_shop(shop)?;
    if !matches!(r.purpose, CardPurpose::PatronLink | CardPurpose::PatronLookup) {
        return Err(ApiError(
            Problem::new(ProblemKind::InvalidRequest, "a facility's counter asks for patron_link or patron_lookup")
                .with("field", "purpose"),
        ));
    }
    let terms = mykey_core::api::facility_terms(shop);
    let (nonce, life) = s.identity.counter_nonce(&device.principal(), r.purpose, &terms)?;
    let life = i64::try_from(life.as_micros()).unwrap_or(i64::MAX);
    Ok(Json(NonceIssued {
        nonce,
        purpose: r.purpose,
        expires_at: crate::time::micros_to_datetime(crate::time::now() + life),
    }))
}

/// At the facility's counter terminal: the resident's card (with PIN) signs a challenge this
/// device asked for, and staff link the MyKey ID to the facility's patron number.
#[utoipa::path(post, path = "/v1/facilities/{shop}/patrons", tag = "one card", request_body = PatronLinkRequest,
    security(("device_signature" = [])), params(("shop" = i64, Path, description = "The facility")),
    responses((status = 201, body = PatronLink), (status = 401, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn facility_link(
    State(s): State<AppState>,
    device: crate::auth::devices::SignedBy,
    axum::extract::Path(shop): axum::extract::Path<i64>,
    JsonBody(r): JsonBody<PatronLinkRequest>,
) -> ApiResult<(StatusCode, Json<PatronLink>)> {
    device.require_shop(shop)?;
    let at = SigningContext::Counter { shop, device: device.device };
    let card = s.identity.verify_card(&r.nonce, &device.principal(), CardPurpose::PatronLink, &at, &r.token)?;
    Ok((StatusCode::CREATED, Json(s.identity.link_patron(shop, &card, &r.patron_number).await?)))
}

/// A card read at the facility's counter terminal: the facility's patron number for its
/// holder, and nothing else.
#[utoipa::path(post, path = "/v1/facilities/{shop}/lookups", tag = "one card", request_body = CardLoginRequest,
    security(("device_signature" = [])), params(("shop" = i64, Path, description = "The facility")),
    responses((status = 200, body = PatronLookup), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn facility_lookup(
    State(s): State<AppState>,
    device: crate::auth::devices::SignedBy,
    axum::extract::Path(shop): axum::extract::Path<i64>,
    JsonBody(r): JsonBody<CardLoginRequest>,
) -> ApiResult<Json<PatronLookup>> {
    device.require_shop(shop)?;
    let at = SigningContext::Counter { shop, device: device.device };
    let card = s.identity.verify_card(&r.nonce, &device.principal(), CardPurpose::PatronLookup, &at, &r.token)?;
    Ok(Json(s.identity.look_up_patron(shop, &card).await?))
}

/// The session's patron links (one card).
#[utoipa::path(get, path = "/v1/me/patron-links", security(("session" = [])), tag = "one card", responses((status = 200, body = [PatronLink])))]
async fn me_patron_links(State(s): State<AppState>, auth: ResidentAuth) -> ApiResult<Json<Vec<PatronLink>>> {
    Ok(Json(s.identity.patron_links(auth.resident).await?))
}

/// The resident cuts a patron link.
#[utoipa::path(post, path = "/v1/me/patron-links/{link}/revoke", security(("session" = [])), tag = "one card",
    params(("link" = uuid::Uuid, Path, description = "The link")), responses((status = 204), (status = 404, body = Problem)))]
async fn me_patron_unlink(
    State(s): State<AppState>,
    auth: ResidentAuth,
    axum::extract::Path(link): axum::extract::Path<uuid::Uuid>,
) -> ApiResult<StatusCode> {
    s.identity.unlink_patron(auth.resident, link).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The paths above, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    nonce,
    card_login,
    password_login,
    logout,
    registration_candidates,
    register,
    me,
    me_history,
    me_settings,
    me_password,
    me_candidates,
    me_mykey_id,
    me_revoke,
    me_card,
    me_links,
    me_unlink,
    linked_conversion,
    mandate_charge,
    me_mandates,
    me_revoke_mandate,
    facility_service,
    facility_challenge,
    facility_link,
    facility_lookup,
    me_patron_links,
    me_patron_unlink
))]
pub struct IdentityDoc;
