//! The HTTP API: handlers parse and authorise, then hand the request to the engine (writes)
//! or the store (reads). Errors are RFC 9457 `application/problem+json`.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request as HttpRequest, State};
use axum::http::{header, request::Parts, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use mykey_core::api::*;
use mykey_core::{Problem, ProblemKind};
use serde::Deserialize;
use utoipa::OpenApi;
use uuid::Uuid;

use crate::auth::{Caller, GuessLimiter, KeyCache, Role};

pub mod demo_cards;
pub mod identity;

use crate::engine::{Admin, AdminResult, Answer, Engine, Request};
use crate::http::identity::{SessionAuth, SESSION_COOKIE};
use crate::services::identity::Identity;
use crate::time;

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    pub(crate) engine: Engine,
    pub(crate) identity: Arc<Identity>,
    pub(crate) coupons: Arc<crate::services::coupons::Coupons>,
    pub(crate) demo_cards: Option<Arc<crate::http::demo_cards::DemoCards>>,
    catalog: crate::services::catalog::Catalog,
    keys: Arc<KeyCache>,
    guesses: Arc<GuessLimiter>,
    metrics: PrometheusHandle,
}

/// The process-wide Prometheus recorder (metrics' recorder is global, so install it once).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (tests); then ours just stays empty.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// A refusal, answered as problem+json.
pub struct ApiError(pub Problem);

impl From<Problem> for ApiError {
    fn from(p: Problem) -> Self {
        ApiError(p)
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        tracing::error!(error = format!("{e:#}"), "request failed");
        ApiError(Problem::new(ProblemKind::Internal, "the server failed to read the ledger"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_string(&self.0).expect("problems serialise");
        raw(self.0.status, body)
    }
}

fn raw(status: u16, body: String) -> Response {
    let ct = if status >= 400 { "application/problem+json" } else { "application/json" };
    (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), [(header::CONTENT_TYPE, ct)], body)
        .into_response()
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        raw(self.status, self.body)
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// The largest request body read. The largest legitimate ones, a card's login token and an
/// operator's transaction of [`crate::ledger::MAX_LEGS`] legs, are a few KiB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A JSON body whose rejections are problems.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;
    async fn from_request(req: HttpRequest, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
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

/// The router with every route.
pub fn router(
    engine: Engine,
    identity: Arc<Identity>,
    coupons: Arc<crate::services::coupons::Coupons>,
    demo_ca: Option<mykey_virtual_card::DemoCa>,
    web_dir: Option<std::path::PathBuf>,
) -> Router {
    let demo_cards = demo_ca.map(|ca| Arc::new(crate::http::demo_cards::DemoCards::new(ca)));
    let catalog = crate::services::catalog::Catalog::new(&engine);
    let state = AppState {
        engine,
        identity,
        coupons,
        demo_cards,
        catalog,
        keys: Arc::new(KeyCache::default()),
        guesses: Arc::new(GuessLimiter::default()),
        metrics: metrics_handle(),
    };
    // The web app under /app/: its files, and index.html for its own paths (/app/create, ...)
    // so that a reload or a shared link opens the right page. `/` leads there.
    let app = match web_dir {
        Some(dir) => {
            let index = tower_http::services::ServeFile::new(dir.join("index.html"));
            Router::new()
                .nest_service("/app", tower_http::services::ServeDir::new(dir).fallback(index))
                .route("/", get(|| async { axum::response::Redirect::temporary("/app/") }))
        }
        None => Router::new().route("/", get(home)),
    };
    app.route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .route("/openapi.json", get(openapi_json))
        .route("/v1/payments", post(payment))
        .route("/v1/grants", post(grant))
        .route("/v1/conversions", post(conversion))
        .route("/v1/assignments", post(assignment))
        .route("/v1/transactions", post(transaction))
        .route("/v1/holds", post(hold))
        .route("/v1/holds/{hold}/capture", post(capture))
        .route("/v1/holds/{hold}/void", post(void))
        .route("/v1/partners/{partner}/coupons", post(issue_coupons))
        .route("/v1/coupons/redeem", post(redeem_coupon))
        .route("/v1/residents", post(create_resident))
        .route("/v1/residents/{resident}/balances", get(resident_balances))
        .route("/v1/accounts/{account}", get(account))
        .route("/v1/accounts/{account}/balance", get(balance_as_of))
        .route("/v1/accounts/{account}/history", get(history))
        .route("/v1/municipalities", get(municipalities))
        .route("/v1/partners", get(partners))
        .route("/v1/shops", get(shops))
        .route("/v1/directory", get(directory))
        .route("/v1/search", get(search))
        .route("/v1/jobs/run", post(run_jobs))
        .route("/v1/settlements", get(settlements))
        .route("/v1/log/inclusion", get(log_inclusion))
        .route("/v1/log/consistency", get(log_consistency))
        .route("/log/checkpoint", get(log_checkpoint))
        .route("/log/key", get(log_key))
        .route("/log/tile/entries/{*bundle}", get(log_entries))
        .route("/log/{*tile}", get(log_tile))
        .merge(crate::http::identity::routes())
        .merge(crate::http::demo_cards::routes())
        .fallback(|| async { ApiError(Problem::new(ProblemKind::NotFound, "no such route; see /openapi.json")) })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(track))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

async fn track(req: HttpRequest, next: Next) -> Response {
    let started = Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    metrics::counter!("mykey_http_requests_total", "status" => status).increment(1);
    metrics::histogram!("mykey_http_request_seconds").record(started.elapsed().as_secs_f64());
    res
}

/// A plain page for whoever opens the server in a browser.
async fn home() -> axum::response::Html<&'static str> {
    axum::response::Html(include_str!("home.html"))
}

#[utoipa::path(get, path = "/healthz", responses(
    (status = 200, description = "The server and its database answer, and the tables keep up with the journal"),
    (status = 503, description = "The tables cannot catch up with the journal (the detail says since when), or the database does not answer", body = Problem, content_type = "application/problem+json")))]
async fn healthz(State(s): State<AppState>) -> ApiResult<&'static str> {
    if let Some(stall) = s.engine.stall() {
        return Err(ApiError(Problem::new(ProblemKind::Unavailable, stall.describe())));
    }
    if let Err(e) = sqlx::query("SELECT 1").execute(s.engine.store().pool()).await {
        tracing::error!(error = format!("{e:#}"), "health check");
        return Err(ApiError(Problem::new(ProblemKind::Unavailable, "the database does not answer")));
    }
    Ok("ok\n")
}

#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text format")))]
async fn metrics_text(State(s): State<AppState>) -> String {
    s.metrics.render()
}

async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    let mut doc = ApiDoc::openapi();
    doc.merge(crate::http::identity::IdentityDoc::openapi());
    Json(doc)
}

macro_rules! write_route {
    ($name:ident, $path:literal, $body:ty, $ok:ty, $summary:literal, |$caller:ident, $r:ident| $auth:expr, $wrap:expr) => {
        #[doc = $summary]
        #[utoipa::path(post, path = $path, request_body = $body, security(("api_key" = [])),
            responses((status = 201, body = $ok), (status = 400, body = Problem), (status = 401, body = Problem),
                      (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
        async fn $name(State(s): State<AppState>, $caller: Caller, Body($r): Body<$body>) -> ApiResult<Answer> {
            $auth?;
            let principal = $caller.principal();
            Ok(s.engine.execute($wrap, &principal).await)
        }
    };
}

write_route!(
    payment,
    "/v1/payments",
    PaymentRequest,
    TransactionReceipt,
    "Spend a resident's points at a shop (store, terminal).",
    |caller, r| caller.require(&[Role::Store, Role::Terminal], r.shop),
    Request::Payment(r)
);
write_route!(
    grant,
    "/v1/grants",
    GrantRequest,
    TransactionReceipt,
    "Grant administrative or event points (municipality).",
    |caller, r| caller.require(&[Role::Municipality], r.municipality),
    Request::Grant(r)
);
write_route!(
    conversion,
    "/v1/conversions",
    ConversionRequest,
    TransactionReceipt,
    "Convert a member's partner points into reserved points (partner).",
    |caller, r| caller.require(&[Role::Partner], r.partner),
    Request::Conversion(r)
);
write_route!(
    assignment,
    "/v1/assignments",
    AssignmentRequest,
    TransactionReceipt,
    "Assign reserved points to a municipality (resident).",
    |caller, r| caller.require(&[Role::Resident], r.resident),
    Request::Assignment(r)
);
write_route!(
    transaction,
    "/v1/transactions",
    TransactionRequest,
    TransactionReceipt,
    "Post a multi-leg transaction, all legs or none (operator).",
    |caller, _r| caller.require_operator(),
    Request::Transaction(_r)
);
write_route!(
    hold,
    "/v1/holds",
    HoldRequest,
    HoldReceipt,
    "Authorise points for a later capture (store, terminal).",
    |caller, r| caller.require(&[Role::Store, Role::Terminal], r.shop),
    Request::Hold(r)
);

/// The shop a hold pays, for authorising capture and void.
async fn hold_shop(s: &AppState, hold: Uuid) -> ApiResult<i64> {
    s.engine.barrier().await?;
    let row: Option<(i64,)> = sqlx::query_as(
        "SELECT s.id FROM holds h JOIN shops s ON s.receivable_account = h.shop_account WHERE h.id = $1",
    )
    .bind(hold.to_string())
    .fetch_optional(s.engine.store().pool())
    .await
    .map_err(anyhow::Error::from)?;
    row.map(|r| r.0).ok_or_else(|| ApiError(Problem::new(ProblemKind::NotFound, format!("hold {hold} does not exist"))))
}

/// Capture all or part of a hold (the hold's shop).
#[utoipa::path(post, path = "/v1/holds/{hold}/capture", request_body = CaptureRequest, security(("api_key" = [])),
    params(("hold" = Uuid, Path, description = "The hold's id")),
    responses((status = 200, body = HoldReceipt), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn capture(
    State(s): State<AppState>,
    caller: Caller,
    Path(hold): Path<Uuid>,
    Body(r): Body<CaptureRequest>,
) -> ApiResult<Answer> {
    s.engine.barrier().await?;
    if caller.role != Role::Operator {
        caller.require(&[Role::Store, Role::Terminal], hold_shop(&s, hold).await?)?;
    }
    Ok(s.engine.execute(Request::Capture { hold, body: r }, &caller.principal()).await)
}

/// Release a hold (the hold's shop).
#[utoipa::path(post, path = "/v1/holds/{hold}/void", request_body = VoidRequest, security(("api_key" = [])),
    params(("hold" = Uuid, Path, description = "The hold's id")),
    responses((status = 200, body = HoldReceipt), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn void(
    State(s): State<AppState>,
    caller: Caller,
    Path(hold): Path<Uuid>,
    Body(r): Body<VoidRequest>,
) -> ApiResult<Answer> {
    s.engine.barrier().await?;
    if caller.role != Role::Operator {
        caller.require(&[Role::Store, Role::Terminal], hold_shop(&s, hold).await?)?;
    }
    Ok(s.engine.execute(Request::Void { hold, body: r }, &caller.principal()).await)
}

/// Issue a batch of coupon codes (the partner); the same request id gives the same codes.
#[utoipa::path(post, path = "/v1/partners/{partner}/coupons", request_body = mykey_core::coupon::CouponBatchRequest,
    security(("api_key" = [])), params(("partner" = i64, Path, description = "The partner")),
    responses((status = 201, body = mykey_core::coupon::CouponBatch), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn issue_coupons(
    State(s): State<AppState>,
    caller: Caller,
    Path(partner): Path<i64>,
    Body(r): Body<mykey_core::coupon::CouponBatchRequest>,
) -> ApiResult<(StatusCode, Json<mykey_core::coupon::CouponBatch>)> {
    caller.require(&[Role::Partner], partner)?;
    Ok((StatusCode::CREATED, Json(s.coupons.issue(partner, &r).await?)))
}

/// Redeem a coupon code (the resident): its points arrive as reserved points; a retry
/// gives the same receipt.
#[utoipa::path(post, path = "/v1/coupons/redeem", request_body = mykey_core::coupon::CouponRedemption,
    security(("api_key" = [])),
    responses((status = 201, body = TransactionReceipt), (status = 409, body = Problem), (status = 422, body = Problem), (status = 429, body = Problem)))]
async fn redeem_coupon(
    State(s): State<AppState>,
    caller: Caller,
    parts: axum::http::request::Parts,
    Body(r): Body<mykey_core::coupon::CouponRedemption>,
) -> ApiResult<Answer> {
    caller.require(&[Role::Resident], r.resident)?;
    Ok(s.coupons.redeem(r.resident, &r.code, client_ip(&parts)).await?)
}

/// Create a resident (operator, or the home municipality).
#[utoipa::path(post, path = "/v1/residents", request_body = ResidentRequest, security(("api_key" = [])),
    responses((status = 201, body = ResidentCreated), (status = 422, body = Problem)))]
async fn create_resident(
    State(s): State<AppState>,
    caller: Caller,
    Body(r): Body<ResidentRequest>,
) -> ApiResult<(StatusCode, Json<ResidentCreated>)> {
    caller.require(&[Role::Municipality], r.home_municipality)?;
    match s.engine.admin(Admin::Residents { home: r.home_municipality, count: 1 }).await? {
        AdminResult::Residents(mut v) => Ok((StatusCode::CREATED, Json(v.remove(0)))),
        _ => unreachable!("residents answer with residents"),
    }
}

/// May `caller` read the resident's data? The resident, the operator, the home municipality,
/// and counter terminals and stores (the counter shows every balance when the card is held).
async fn may_read_resident(s: &AppState, caller: &Caller, resident: i64) -> ApiResult<()> {
    match caller.role {
        Role::Operator | Role::Terminal | Role::Store => Ok(()),
        Role::Resident if caller.subject == resident => Ok(()),
        Role::Municipality => {
            s.engine.barrier().await?;
            let home: Option<(i64,)> = sqlx::query_as("SELECT municipality_id FROM residents WHERE id = $1")
                .bind(resident)
                .fetch_optional(s.engine.store().pool())
                .await
                .map_err(anyhow::Error::from)?;
            match home {
                Some((m,)) if m == caller.subject => Ok(()),
                _ => Err(forbidden()),
            }
        }
        _ => Err(forbidden()),
    }
}

fn forbidden() -> ApiError {
    ApiError(Problem::new(ProblemKind::Forbidden, "this key may not read that"))
}

fn not_found(what: &str) -> ApiError {
    ApiError(Problem::new(ProblemKind::NotFound, format!("{what} does not exist")))
}

/// Every balance of a resident, all municipalities at once.
#[utoipa::path(get, path = "/v1/residents/{resident}/balances", security(("api_key" = [])),
    params(("resident" = i64, Path, description = "Resident id")),
    responses((status = 200, body = ResidentBalances), (status = 404, body = Problem)))]
async fn resident_balances(
    State(s): State<AppState>,
    caller: Caller,
    Path(resident): Path<i64>,
) -> ApiResult<Json<ResidentBalances>> {
    s.engine.barrier().await?;
    may_read_resident(&s, &caller, resident).await?;
    let b = s.engine.store().resident_balances(resident, time::now()).await?;
    b.map(Json).ok_or_else(|| not_found(&format!("resident {resident}")))
}

async fn may_read_account(s: &AppState, caller: &Caller, account: i64) -> ApiResult<()> {
    let (kind, owner, municipality) =
        s.engine.store().account_owner(account).await?.ok_or_else(|| not_found(&format!("account {account}")))?;
    let ok = match caller.role {
        Role::Operator => true,
        Role::Municipality => municipality == caller.subject,
        Role::Resident => kind.is_resident() && owner == caller.subject,
        Role::Partner => kind == AccountKind::Clearing && owner == caller.subject,
        Role::Store | Role::Terminal => kind == AccountKind::Receivable && owner == caller.subject,
    };
    if ok {
        Ok(())
    } else {
        Err(forbidden())
    }
}

/// One account's balance.
#[utoipa::path(get, path = "/v1/accounts/{account}", security(("api_key" = [])),
    params(("account" = i64, Path, description = "Account id")),
    responses((status = 200, body = AccountView), (status = 404, body = Problem)))]
async fn account(State(s): State<AppState>, caller: Caller, Path(account): Path<i64>) -> ApiResult<Json<AccountView>> {
    s.engine.barrier().await?;
    may_read_account(&s, &caller, account).await?;
    let a = s.engine.store().account(account, time::now()).await?;
    a.map(Json).ok_or_else(|| not_found(&format!("account {account}")))
}

#[derive(Deserialize, utoipa::IntoParams)]
struct AsOf {
    /// RFC 3339 moment.
    as_of: DateTime<Utc>,
}

/// An account's balance at a past moment.
#[utoipa::path(get, path = "/v1/accounts/{account}/balance", security(("api_key" = [])),
    params(("account" = i64, Path, description = "Account id"), AsOf),
    responses((status = 200, body = BalanceAsOf), (status = 404, body = Problem)))]
async fn balance_as_of(
    State(s): State<AppState>,
    caller: Caller,
    Path(account): Path<i64>,
    q: Result<Query<AsOf>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<BalanceAsOf>> {
    s.engine.barrier().await?;
    let Query(q) = q.map_err(|e| {
        ApiError(Problem::new(
            ProblemKind::InvalidRequest,
            format!("{e}; give as_of as an RFC 3339 time, e.g. 2026-11-27T10:00:00Z"),
        ))
    })?;
    may_read_account(&s, &caller, account).await?;
    Ok(Json(s.engine.store().balance_as_of(account, time::datetime_to_micros(q.as_of)).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
struct Page {
    /// Entries per page, 1 to 1000 (default 50).
    limit: Option<u32>,
    /// `next_cursor` of the previous page (with the same filters).
    cursor: Option<String>,
    /// Only transactions of this kind (`payment`, `grant`, `conversion`, ...).
    kind: Option<String>,
    /// Only entries from this moment (RFC 3339, inclusive).
    from: Option<DateTime<Utc>>,
    /// Only entries before this moment (RFC 3339, exclusive).
    to: Option<DateTime<Utc>>,
}

/// An account's history, newest first, with cursor pagination, optionally one kind of
/// transaction or one period only.
#[utoipa::path(get, path = "/v1/accounts/{account}/history", security(("api_key" = [])),
    params(("account" = i64, Path, description = "Account id"), Page),
    responses((status = 200, body = HistoryPage), (status = 400, body = Problem), (status = 404, body = Problem)))]
async fn history(
    State(s): State<AppState>,
    caller: Caller,
    Path(account): Path<i64>,
    q: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<HistoryPage>> {
    s.engine.barrier().await?;
    let Query(q) = q.map_err(|e| ApiError(Problem::new(ProblemKind::InvalidRequest, e.to_string())))?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError(Problem::new(ProblemKind::InvalidRequest, "limit must be 1 to 1000")));
    }
    let before = q
        .cursor
        .map(|c| {
            c.parse::<i64>()
                .map_err(|_| ApiError(Problem::new(ProblemKind::InvalidRequest, "cursor is not one this API gave out")))
        })
        .transpose()?;
    let kind = q
        .kind
        .filter(|k| !k.is_empty())
        .map(|k| {
            TransactionKind::parse(&k).ok_or_else(|| {
                ApiError(
                    Problem::new(ProblemKind::InvalidRequest, format!("{k:?} is not a kind of transaction"))
                        .with("field", "kind"),
                )
            })
        })
        .transpose()?;
    if let (Some(from), Some(to)) = (q.from, q.to) {
        if from >= to {
            return Err(ApiError(
                Problem::new(ProblemKind::InvalidRequest, "from must be before to").with("field", "to"),
            ));
        }
    }
    let filter = crate::store::HistoryFilter {
        kind,
        from: q.from.map(time::datetime_to_micros),
        to: q.to.map(time::datetime_to_micros),
    };
    may_read_account(&s, &caller, account).await?;
    Ok(Json(s.engine.store().history(account, before, limit, &filter).await?))
}

/// Municipalities taking part (public).
#[utoipa::path(get, path = "/v1/municipalities", responses((status = 200, body = Vec<Municipality>)))]
async fn municipalities(State(s): State<AppState>) -> ApiResult<Json<Vec<Municipality>>> {
    s.engine.barrier().await?;
    Ok(Json(s.engine.store().municipalities().await?))
}

/// Point-navi's directory: services set up per municipality, products, online services (public).
#[utoipa::path(get, path = "/v1/directory", responses((status = 200, body = Directory)))]
async fn directory(State(s): State<AppState>) -> ApiResult<Json<Directory>> {
    Ok(Json(s.catalog.directory().await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
struct SearchQuery {
    /// Words to find (all must match) in municipality, shop and product names.
    q: String,
}

/// Free-word search over municipalities, shops and products (public).
#[utoipa::path(get, path = "/v1/search", params(SearchQuery),
    responses((status = 200, body = SearchResults), (status = 400, body = Problem)))]
async fn search(
    State(s): State<AppState>,
    q: Result<Query<SearchQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<SearchResults>> {
    let Query(q) = q.map_err(|e| ApiError(Problem::new(ProblemKind::InvalidRequest, e.to_string())))?;
    Ok(Json(s.catalog.search(&q.q).await?))
}

/// Partner companies (public).
#[utoipa::path(get, path = "/v1/partners", responses((status = 200, body = Vec<Partner>)))]
async fn partners(State(s): State<AppState>) -> ApiResult<Json<Vec<Partner>>> {
    s.engine.barrier().await?;
    Ok(Json(s.engine.store().partners().await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
struct SettlementQuery {
    /// Start of the period (RFC 3339, inclusive).
    from: DateTime<Utc>,
    /// End of the period (RFC 3339, exclusive).
    to: DateTime<Utc>,
    /// One partner only (a partner key always sees only its own).
    partner: Option<i64>,
    /// One municipality only (a municipality key always sees only its own).
    municipality: Option<i64>,
}

/// The settlement statement of a period: what each partner pays each municipality for the
/// points its members' conversions brought there (operator; a partner or a municipality sees
/// its own lines).
#[utoipa::path(get, path = "/v1/settlements", params(SettlementQuery), security(("api_key" = [])),
    responses((status = 200, body = SettlementStatement), (status = 403, body = Problem)))]
async fn settlements(
    State(s): State<AppState>,
    caller: Caller,
    Query(q): Query<SettlementQuery>,
) -> ApiResult<Json<SettlementStatement>> {
    let (partner, municipality) = match caller.role {
        Role::Operator => (q.partner, q.municipality),
        Role::Partner => {
            caller.require(&[Role::Partner], q.partner.unwrap_or(caller.subject))?;
            (Some(caller.subject), q.municipality)
        }
        Role::Municipality => {
            caller.require(&[Role::Municipality], q.municipality.unwrap_or(caller.subject))?;
            (q.partner, Some(caller.subject))
        }
        _ => {
            return Err(ApiError(Problem::new(
                ProblemKind::Forbidden,
                "settlements are for partners, municipalities and the operator",
            )))
        }
    };
    if q.from >= q.to {
        return Err(ApiError(Problem::new(ProblemKind::InvalidRequest, "from must be before to")));
    }
    s.engine.barrier().await?;
    let lines = s
        .engine
        .store()
        .settlement(time::datetime_to_micros(q.from), time::datetime_to_micros(q.to), partner, municipality)
        .await?;
    let total_yen = lines.iter().map(|l| l.yen).sum();
    Ok(Json(SettlementStatement { from: q.from, to: q.to, lines, total_yen }))
}

#[derive(Deserialize, utoipa::IntoParams)]
struct ShopFilter {
    /// Only shops accepting this municipality's points.
    municipality: Option<i64>,
}

/// Shops, facilities and stores (public).
#[utoipa::path(get, path = "/v1/shops", params(ShopFilter), responses((status = 200, body = Vec<Shop>)))]
async fn shops(State(s): State<AppState>, Query(f): Query<ShopFilter>) -> ApiResult<Json<Vec<Shop>>> {
    s.engine.barrier().await?;
    Ok(Json(s.engine.store().shops(f.municipality).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct JobsRequest {
    /// Run as of this time instead of now (for drills and tests).
    #[serde(default)]
    now: Option<DateTime<Utc>>,
}

/// Run the scheduled jobs once (operator).
#[utoipa::path(post, path = "/v1/jobs/run", request_body = JobsRequest, security(("api_key" = [])),
    responses((status = 200, body = JobsReport)))]
async fn run_jobs(
    State(s): State<AppState>,
    caller: Caller,
    Body(r): Body<JobsRequest>,
) -> ApiResult<Json<JobsReport>> {
    caller.require_operator()?;
    let now = r.now.map(time::datetime_to_micros).unwrap_or_else(time::now);
    match s.engine.admin(Admin::Jobs { now }).await? {
        AdminResult::Jobs(j) => Ok(Json(j)),
        _ => unreachable!("jobs answer with a report"),
    }
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
/// residents' transactions, so only for the operator (and, later, mirrors).
async fn log_entries(State(s): State<AppState>, caller: Caller, Path(bundle): Path<String>) -> ApiResult<Response> {
    caller.require_operator()?;
    let (_, n, width) = servable_tile(&s, &format!("tile/entries/{bundle}"))?;
    Ok(tile_response(crate::log::entry_bundle(s.engine.store(), n, width).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
struct InclusionQuery {
    /// Leaf index (a receipt's `leaf_index`).
    index: u64,
    /// Tree size of the checkpoint to prove against.
    size: u64,
}

/// A proof of a hash list, base64.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct ProofBody {
    /// The proof's hashes, base64, in RFC 9162 order.
    proof: Vec<String>,
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
#[utoipa::path(get, path = "/v1/log/inclusion", params(InclusionQuery), responses((status = 200, body = ProofBody), (status = 400, body = Problem)))]
async fn log_inclusion(
    State(s): State<AppState>,
    q: Result<Query<InclusionQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<ProofBody>> {
    let Query(q) = q.map_err(|e| ApiError(Problem::new(ProblemKind::InvalidRequest, e.to_string())))?;
    within_checkpoint(&s, &[q.size])?;
    if q.index >= q.size {
        return Err(ApiError(Problem::new(ProblemKind::InvalidRequest, "index must be below size")));
    }
    let proof = crate::log::inclusion_proof(s.engine.store(), q.index, q.size).await?;
    Ok(Json(ProofBody { proof: b64_all(&proof) }))
}

#[derive(Deserialize, utoipa::IntoParams)]
struct ConsistencyQuery {
    /// The older tree size.
    first: u64,
    /// The newer tree size.
    second: u64,
}

/// Consistency proof between two tree sizes (public).
#[utoipa::path(get, path = "/v1/log/consistency", params(ConsistencyQuery), responses((status = 200, body = ProofBody), (status = 400, body = Problem)))]
async fn log_consistency(
    State(s): State<AppState>,
    q: Result<Query<ConsistencyQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<ProofBody>> {
    let Query(q) = q.map_err(|e| ApiError(Problem::new(ProblemKind::InvalidRequest, e.to_string())))?;
    within_checkpoint(&s, &[q.second])?;
    if q.first > q.second {
        return Err(ApiError(Problem::new(ProblemKind::InvalidRequest, "first must not exceed second")));
    }
    let proof = crate::log::consistency_proof(s.engine.store(), q.first, q.second).await?;
    Ok(Json(ProofBody { proof: b64_all(&proof) }))
}

struct SecurityAddon;

impl utoipa::Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("mk_<role>_<hex>").build(),
            ),
        );
    }
}

/// The OpenAPI 3.1 document, generated from the handlers and the shared types.
#[derive(OpenApi)]
#[openapi(
    info(title = "mykey points cloud", description = "Ledger API of the MyKey Platform's municipal points cloud."),
    paths(healthz, metrics_text, issue_coupons, redeem_coupon, payment, grant, conversion, assignment, transaction, hold, capture, void,
          create_resident, resident_balances, account, balance_as_of, history, municipalities, partners, shops, directory, search, run_jobs,
          settlements,
          log_checkpoint, log_key, log_inclusion, log_consistency),
    components(schemas(Problem, PostingRequest, Posting, Expiry, AccountKind, TransactionKind, HoldState, HistoryEntry, JobsRequest)),
    modifiers(&SecurityAddon)
)]
pub struct ApiDoc;

#[cfg(test)]
mod tests {
    use mykey_core::ProblemKind;

    #[test]
    fn every_problem_type_is_documented() {
        let doc = include_str!("../../../docs/problems.md");
        for k in ProblemKind::ALL {
            assert!(
                doc.contains(&format!("| `{}` | {} |", k.slug(), k.status())),
                "docs/problems.md lacks {}",
                k.slug()
            );
        }
    }
}
