//! Writes that move points: payments and holds (at a counter with the resident's card, or by
//! the operator), grants, conversions, assignments, transactions, coupons, residents.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use axum::{Json, Router};
use mykey_core::api::*;
use mykey_core::{Problem, ProblemKind};
use uuid::Uuid;

use super::error::{ApiError, ApiResult};
use super::extract::{client_ip, JsonBody};
use super::state::AppState;
use crate::auth::devices::SignedBy;
use crate::auth::{Caller, Role};
use crate::engine::{check_client_id, Change, ChangeResult, Done, Request};
use crate::services::counter::Counter;

/// This group's routes.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/shops/{shop}/counter-challenges", post(counter_challenge))
        .route("/v1/shops/{shop}/balance-challenges", post(balance_challenge))
        .route("/v1/shops/{shop}/counter-balances", post(counter_balances))
        .route("/v1/shops/{shop}/counter-payments", post(counter_payment))
        .route("/v1/shops/{shop}/counter-holds", post(counter_hold))
        .route("/v1/shops/{shop}/refund-challenges", post(refund_challenge))
        .route("/v1/shops/{shop}/counter-refunds", post(counter_refund))
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
}

macro_rules! write_route {
    ($name:ident, $path:literal, $body:ty, $ok:ty, $summary:literal, |$caller:ident, $r:ident| $auth:expr, $wrap:expr) => {
        #[doc = $summary]
        #[utoipa::path(post, path = $path, request_body = $body, security(("api_key" = [])),
            responses((status = 201, body = $ok), (status = 400, body = Problem), (status = 401, body = Problem),
                      (status = 403, body = Problem), (status = 409, body = Problem), (status = 413, body = Problem),
                      (status = 422, body = Problem)))]
        async fn$name(State(s): State<AppState>, $caller: Caller, JsonBody($r): JsonBody<$body>) -> ApiResult<Done> {
            $auth?;
            let request = $wrap;
            check_client_id(request.id())?;
            let principal = $caller.principal();
            Ok(s.engine.execute(request, &principal).await?)
        }
    };
}

write_route!(
    payment,
    "/v1/payments",
    PaymentRequest,
    TransactionReceipt,
    "Spend a resident's points at a shop (operator: corrections and migrations). No other key charges a resident alone: a counter terminal charges with the resident's card (`/v1/shops/{shop}/counter-payments`), an online store through a checkout session the resident confirms (`/v1/checkout/sessions`).",
    |caller, r| charge_without_consent(&caller, r.shop),
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
    "Credit a resident with a partner's points as reserved points (operator: corrections and migrations). Partners convert only for a member who linked their service ID (`/v1/partners/{partner}/linked-conversions`) or with coupon codes the resident redeems: a partner's key alone may not credit any resident it names.",
    |caller, r| caller.require_operator(),
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
    "Authorise points for a later capture (operator). A counter terminal holds points with the resident's card (`/v1/shops/{shop}/counter-holds`); online stores through a checkout session with manual capture.",
    |caller, r| charge_without_consent(&caller, r.shop),
    Request::Hold(r)
);

/// Only the operator charges a resident without the resident's consent; a terminal is told
/// where its card-signed payments go.
fn charge_without_consent(caller: &Caller, shop: i64) -> Result<(), Problem> {
    if caller.role == Role::Terminal {
        return Err(Problem::new(
            ProblemKind::Forbidden,
            format!(
                "a terminal charges with the resident's card: a challenge from \
                 /v1/shops/{shop}/counter-challenges, signed by the card, sent to /v1/shops/{shop}/counter-payments \
                 or /v1/shops/{shop}/counter-holds"
            ),
        ));
    }
    caller.require_operator()
}

/// A challenge for the resident's card to show, on this shop's terminal, the points usable
/// here: good once, for this device only, for five minutes.
#[utoipa::path(post, path = "/v1/shops/{shop}/balance-challenges",
    security(("device_signature" = [])), params(("shop" = i64, Path, description = "The terminal's shop")),
    responses((status = 200, body = mykey_core::identity::NonceIssued), (status = 403, body = Problem), (status = 429, body = Problem)))]
async fn balance_challenge(
    State(s): State<AppState>,
    device: SignedBy,
    Path(shop): Path<i64>,
) -> ApiResult<Json<mykey_core::identity::NonceIssued>> {
    device.require_shop(shop)?;
    Ok(Json(Counter::new(&s.identity, &s.engine, &s.counter_notes, device).balance_challenge()?))
}

/// The points usable at this shop of the resident whose card signed this terminal's balance
/// challenge (the counter's screen): nothing without that signature.
#[utoipa::path(post, path = "/v1/shops/{shop}/counter-balances", request_body = mykey_core::identity::CardLoginRequest,
    security(("device_signature" = [])), params(("shop" = i64, Path, description = "The terminal's shop")),
    responses((status = 200, body = mykey_core::api::CounterBalances), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn counter_balances(
    State(s): State<AppState>,
    device: SignedBy,
    Path(shop): Path<i64>,
    JsonBody(r): JsonBody<mykey_core::identity::CardLoginRequest>,
) -> ApiResult<Json<mykey_core::api::CounterBalances>> {
    device.require_shop(shop)?;
    Ok(Json(Counter::new(&s.identity, &s.engine, &s.counter_notes, device).balances(&r.nonce, &r.token).await?))
}

/// A challenge for the resident's card at this shop's counter, naming the terms it will
/// sign: good once, for this device only, for five minutes.
#[utoipa::path(post, path = "/v1/shops/{shop}/counter-challenges", request_body = CounterChallengeRequest,
    security(("device_signature" = [])), params(("shop" = i64, Path, description = "The terminal's shop")),
    responses((status = 200, body = mykey_core::identity::NonceIssued), (status = 422, body = Problem)))]
async fn counter_challenge(
    State(s): State<AppState>,
    device: SignedBy,
    Path(shop): Path<i64>,
    JsonBody(r): JsonBody<CounterChallengeRequest>,
) -> ApiResult<Json<mykey_core::identity::NonceIssued>> {
    device.require_shop(shop)?;
    Ok(Json(Counter::new(&s.identity, &s.engine, &s.counter_notes, device).challenge(&r)?))
}

/// Spend the points the resident agreed to with their card at this shop's counter (terminal).
#[utoipa::path(post, path = "/v1/shops/{shop}/counter-payments", request_body = CounterPaymentRequest,
    security(("device_signature" = [])), params(("shop" = i64, Path, description = "The terminal's shop")),
    responses((status = 201, body = PartyReceipt), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn counter_payment(
    State(s): State<AppState>,
    device: SignedBy,
    Path(shop): Path<i64>,
    JsonBody(r): JsonBody<CounterPaymentRequest>,
) -> ApiResult<Response> {
    device.require_shop(shop)?;
    super::party::receipt(Counter::new(&s.identity, &s.engine, &s.counter_notes, device).pay(r).await?)
}

/// Set aside the points the resident agreed to with their card, for this shop to capture
/// (terminal).
#[utoipa::path(post, path = "/v1/shops/{shop}/counter-holds", request_body = CounterHoldRequest,
    security(("device_signature" = [])), params(("shop" = i64, Path, description = "The terminal's shop")),
    responses((status = 201, body = PartyHold), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn counter_hold(
    State(s): State<AppState>,
    device: SignedBy,
    Path(shop): Path<i64>,
    JsonBody(r): JsonBody<CounterHoldRequest>,
) -> ApiResult<Response> {
    device.require_shop(shop)?;
    super::party::hold(Counter::new(&s.identity, &s.engine, &s.counter_notes, device).hold(r).await?)
}

/// A challenge for the card of the resident who paid, naming a refund of that payment: good
/// once, for this device only (terminal).
#[utoipa::path(post, path = "/v1/shops/{shop}/refund-challenges", request_body = mykey_core::api::CounterRefundChallengeRequest,
    security(("device_signature" = [])), params(("shop" = i64, Path, description = "The terminal's shop")),
    responses((status = 200, body = mykey_core::identity::NonceIssued), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn refund_challenge(
    State(s): State<AppState>,
    device: SignedBy,
    Path(shop): Path<i64>,
    JsonBody(r): JsonBody<mykey_core::api::CounterRefundChallengeRequest>,
) -> ApiResult<Json<mykey_core::identity::NonceIssued>> {
    device.require_shop(shop)?;
    Ok(Json(Counter::new(&s.identity, &s.engine, &s.counter_notes, device).refund_challenge(&r).await?))
}

/// Give back points of a payment made at this shop, with the card of the resident who paid
/// (terminal). Once per payment, in full or in part; a retry gets the same answer.
#[utoipa::path(post, path = "/v1/shops/{shop}/counter-refunds", request_body = mykey_core::api::CounterRefundRequest,
    security(("device_signature" = [])), params(("shop" = i64, Path, description = "The terminal's shop")),
    responses((status = 201, body = PartyReceipt), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn counter_refund(
    State(s): State<AppState>,
    device: SignedBy,
    Path(shop): Path<i64>,
    JsonBody(r): JsonBody<mykey_core::api::CounterRefundRequest>,
) -> ApiResult<Response> {
    device.require_shop(shop)?;
    super::party::receipt(Counter::new(&s.identity, &s.engine, &s.counter_notes, device).refund(r).await?)
}

/// The shop a hold pays, for authorising capture and void.
async fn hold_shop(s: &AppState, hold: Uuid) -> ApiResult<i64> {
    let tables = s.engine.tables().await?;
    let shop = tables.hold_shop(hold).await?;
    shop.ok_or_else(|| ApiError(Problem::new(ProblemKind::NotFound, format!("hold {hold} does not exist"))))
}

/// Capture all or part of a hold (the hold's shop); the answer names no resident's account.
#[utoipa::path(post, path = "/v1/holds/{hold}/capture", request_body = CaptureRequest, security(("api_key" = [])),
    params(("hold" = Uuid, Path, description = "The hold's id")),
    responses((status = 200, body = PartyHold), (status = 400, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn capture(
    State(s): State<AppState>,
    caller: Caller,
    Path(hold): Path<Uuid>,
    JsonBody(r): JsonBody<CaptureRequest>,
) -> ApiResult<Response> {
    if caller.role != Role::Operator {
        caller.require(&[Role::Store, Role::Terminal], hold_shop(&s, hold).await?)?;
    }
    check_client_id(r.id)?;
    super::party::hold(s.engine.execute(Request::Capture { hold, body: r }, &caller.principal()).await)
}

/// Release a hold (the hold's shop); the answer names no resident's account.
#[utoipa::path(post, path = "/v1/holds/{hold}/void", request_body = VoidRequest, security(("api_key" = [])),
    params(("hold" = Uuid, Path, description = "The hold's id")),
    responses((status = 200, body = PartyHold), (status = 400, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn void(
    State(s): State<AppState>,
    caller: Caller,
    Path(hold): Path<Uuid>,
    JsonBody(r): JsonBody<VoidRequest>,
) -> ApiResult<Response> {
    if caller.role != Role::Operator {
        caller.require(&[Role::Store, Role::Terminal], hold_shop(&s, hold).await?)?;
    }
    check_client_id(r.id)?;
    super::party::hold(s.engine.execute(Request::Void { hold, body: r }, &caller.principal()).await)
}

/// Issue a batch of coupon codes (the partner); the same request id gives the same codes.
#[utoipa::path(post, path = "/v1/partners/{partner}/coupons", request_body = mykey_core::coupon::CouponBatchRequest,
    security(("api_key" = [])), params(("partner" = i64, Path, description = "The partner")),
    responses((status = 201, body = mykey_core::coupon::CouponBatch), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn issue_coupons(
    State(s): State<AppState>,
    caller: Caller,
    Path(partner): Path<i64>,
    JsonBody(r): JsonBody<mykey_core::coupon::CouponBatchRequest>,
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
    JsonBody(r): JsonBody<mykey_core::coupon::CouponRedemption>,
) -> ApiResult<Done> {
    caller.require(&[Role::Resident], r.resident)?;
    Ok(s.coupons.redeem(r.resident, &r.code, client_ip(&parts)).await??)
}

/// Create a resident (operator, or the home municipality).
#[utoipa::path(post, path = "/v1/residents", request_body = ResidentRequest, security(("api_key" = [])),
    responses((status = 201, body = ResidentCreated), (status = 422, body = Problem)))]
async fn create_resident(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(r): JsonBody<ResidentRequest>,
) -> ApiResult<(StatusCode, Json<ResidentCreated>)> {
    caller.require(&[Role::Municipality], r.home_municipality)?;
    match s.engine.apply(Change::Residents { home: r.home_municipality, count: 1 }).await? {
        ChangeResult::Residents(mut v) => Ok((StatusCode::CREATED, Json(v.remove(0)))),
        _ => unreachable!("residents answer with residents"),
    }
}
