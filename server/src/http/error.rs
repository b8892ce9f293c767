//! Refusals as RFC 9457 problem+json, and answers as they were stored.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use mykey_core::{Problem, ProblemKind};

use crate::engine::{Done, EngineError};

/// A refusal, answered as problem+json.
pub struct ApiError(pub Problem);

impl From<Problem> for ApiError {
    fn from(p: Problem) -> Self {
        ApiError(p)
    }
}

/// A read of the ledger's tables that failed (the handlers' `?` on the store's reads).
impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        crate::failure::ledger_read(e).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_string(&self.0).expect("problems serialise");
        raw(self.0.status, body)
    }
}

pub(crate) fn raw(status: u16, body: String) -> Response {
    let ct = if status >= 400 { "application/problem+json" } else { "application/json" };
    (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), [(header::CONTENT_TYPE, ct)], body)
        .into_response()
}

/// An applied request, answered with the JSON first given (a replay with the same bytes).
impl IntoResponse for Done {
    fn into_response(self) -> Response {
        raw(self.status, self.body)
    }
}

/// A request the engine did not apply, told in full (to the resident or a municipality; a
/// party's answers go through `party`).
impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        ApiError(e.into())
    }
}

/// Turns the framework's own refusals (a path or query parameter that does not parse, a body
/// of the wrong media type, a method the route lacks), which axum answers as plain text, into
/// problems like every other refusal; the text becomes the detail.
pub(super) async fn framework_refusals_as_problems(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let res = next.run(req).await;
    // Plain text, or nothing at all (axum's 405 has no body).
    let plain = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|ct| ct.starts_with("text/plain"));
    if !res.status().is_client_error() || !plain {
        return res;
    }
    let status = res.status();
    // The framework's refusal texts are short; the bound keeps a surprise from being copied.
    let text = match axum::body::to_bytes(res.into_body(), 4096).await {
        Ok(b) => String::from_utf8_lossy(&b).trim().to_owned(),
        Err(_) => String::new(),
    };
    let kind = match status {
        StatusCode::NOT_FOUND => ProblemKind::NotFound,
        StatusCode::PAYLOAD_TOO_LARGE => ProblemKind::BodyTooLarge,
        StatusCode::UNAUTHORIZED => ProblemKind::Unauthenticated,
        _ => ProblemKind::InvalidRequest,
    };
    let mut problem = Problem::new(kind, text);
    if status == StatusCode::METHOD_NOT_ALLOWED {
        // Keep 405: the route exists, the method does not.
        problem.status = 405;
        problem.detail = "this route does not take that method; see /openapi.json".into();
    }
    ApiError(problem).into_response()
}

/// A handler's result: a value, or a problem.
pub type ApiResult<T> = Result<T, ApiError>;

/// The caller may not read or do this.
pub(crate) fn forbidden() -> ApiError {
    ApiError(Problem::new(ProblemKind::Forbidden, "this key may not read that"))
}

/// `what` does not exist.
pub(crate) fn not_found(what: &str) -> ApiError {
    ApiError(Problem::new(ProblemKind::NotFound, format!("{what} does not exist")))
}
