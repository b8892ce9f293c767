//! Refusals as RFC 9457 problem+json, and answers as they were stored.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use mykey_core::{Problem, ProblemKind};

use crate::engine::Answer;

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

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        raw(self.status, self.body)
    }
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
