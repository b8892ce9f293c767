//! What operators and browsers ask of the server itself: health, metrics, a home page.

use std::time::Instant;

use axum::extract::{Request as HttpRequest, State};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use mykey_core::{Problem, ProblemKind};

use super::error::{ApiError, ApiResult};
use super::state::AppState;

pub(super) async fn track(req: HttpRequest, next: Next) -> Response {
    let started = Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    metrics::counter!("mykey_http_requests_total", "status" => status).increment(1);
    metrics::histogram!("mykey_http_request_seconds").record(started.elapsed().as_secs_f64());
    res
}

/// Longest a request may take before it is answered `503 unavailable`: a database that stopped
/// answering (a full disk, a lost connection) must not hold clients and their sockets forever.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Answers `503 unavailable` for a request that took longer than `limit`. A write cut off
/// this way may still be applied: the client sends it again with the same id, which returns
/// the stored answer or applies it once.
pub(super) async fn time_limit(State(limit): State<std::time::Duration>, req: HttpRequest, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(res) => res,
        Err(_) => {
            metrics::counter!("mykey_http_timeouts_total").increment(1);
            ApiError(Problem::new(
                ProblemKind::Unavailable,
                format!(
                    "the server could not answer within {} s; send the request again (with the same id for a write)",
                    limit.as_secs_f64()
                ),
            ))
            .into_response()
        }
    }
}

/// A plain page for whoever opens the server in a browser.
pub(super) async fn home() -> axum::response::Html<&'static str> {
    axum::response::Html(include_str!("home.html"))
}

#[utoipa::path(get, path = "/healthz", responses(
    (status = 200, description = "The server and its database answer, and the tables keep up with the journal"),
    (status = 503, description = "The tables cannot catch up with the journal (the detail says since when), or the database does not answer", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn healthz(State(s): State<AppState>) -> ApiResult<&'static str> {
    if let Some(stall) = s.engine.stall() {
        return Err(ApiError(Problem::new(ProblemKind::Unavailable, stall.describe())));
    }
    if let Err(e) = s.engine.store().ping().await {
        tracing::error!(error = format!("{e:#}"), "health check");
        return Err(ApiError(Problem::new(ProblemKind::Unavailable, "the database does not answer")));
    }
    Ok("ok\n")
}

#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text format")))]
pub(super) async fn metrics_text(State(s): State<AppState>) -> String {
    // Read from the engine's `Stall` when scraped, so it is there from the first scrape on.
    metrics::gauge!("mykey_materialize_stalled").set(if s.engine.stall().is_some() { 1.0 } else { 0.0 });
    s.metrics.render()
}
