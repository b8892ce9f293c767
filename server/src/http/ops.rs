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

/// The web app's pages may run only the app's own scripts and WebAssembly, load only its own
/// files, talk only to this server, and be framed by nobody (the checkout and coupon widgets
/// will name their stores' origins).
pub const APP_CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'; report-uri /csp-reports";

/// Reports taken from one client address a minute; more are refused (429) and not counted,
/// so one client cannot make the count say whatever it likes.
pub const CSP_REPORTS_PER_MINUTE: u32 = 60;

/// Largest CSP violation report read.
const MAX_CSP_REPORT: usize = 8 * 1024;

/// Browsers report here what the app's policy blocked: a count in the metrics
/// (`mykey_csp_violations_total`), so that a page the policy breaks, or a script injected into
/// one, is noticed. Anyone can post here; a report only adds to the count.
/// A browser's report of what a page's policy blocked (CSP level 2 `report-uri`).
#[derive(serde::Deserialize, utoipa::ToSchema)]
pub(super) struct CspReport {
    /// The violation: the page, the directive, what was blocked.
    #[serde(rename = "csp-report")]
    report: serde_json::Map<String, serde_json::Value>,
}

#[utoipa::path(post, path = "/csp-reports",
    request_body(content((CspReport = "application/csp-report"), (CspReport = "application/json")),
        description = "A browser's report of what the page's policy blocked"),
    responses((status = 204, description = "Counted"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "More than `CSP_REPORTS_PER_MINUTE` from this address", body = Problem,
            content_type = "application/problem+json")))]
pub(super) async fn csp_report(
    axum::extract::State(s): axum::extract::State<super::state::AppState>,
    super::extract::ClientIp(ip): super::extract::ClientIp,
    body: axum::body::Bytes,
) -> ApiResult<axum::http::StatusCode> {
    // Bounded memory: forget addresses whose quota has refilled.
    if s.csp_reports.len() > 100_000 {
        s.csp_reports.retain_recent();
    }
    if s.csp_reports.check_key(&ip).is_err() {
        return Err(ApiError(Problem::new(
            ProblemKind::RateLimited,
            format!("at most {CSP_REPORTS_PER_MINUTE} reports a minute from one address"),
        )));
    }
    let body = &body[..body.len().min(MAX_CSP_REPORT)];
    let Ok(CspReport { report }) = serde_json::from_slice::<CspReport>(body) else {
        return Err(ApiError(Problem::new(ProblemKind::InvalidRequest, "a report is {\"csp-report\": {...}}")));
    };
    metrics::counter!("mykey_csp_violations_total").increment(1);
    let field = |name: &str| report.get(name).and_then(|v| v.as_str()).unwrap_or("").escape_debug().to_string();
    tracing::debug!(
        directive = field("violated-directive"),
        blocked = field("blocked-uri"),
        page = field("document-uri"),
        "content security policy violation"
    );
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// Headers every answer carries: no content sniffing, no referrer to other sites, no framing
/// (an answer that sets its own policy keeps it).
pub(super) async fn security_headers(req: HttpRequest, next: Next) -> Response {
    use axum::http::{header, HeaderValue};
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // The widget's frame sends no referrer at all (`http::embedding`): kept, as its CSP is.
    h.entry(header::REFERRER_POLICY).or_insert(HeaderValue::from_static("same-origin"));
    h.entry(header::CONTENT_SECURITY_POLICY).or_insert(HeaderValue::from_static("frame-ancestors 'none'"));
    res
}

/// Whether a file name carries its content's hash (`name.<16 hex digits>.ext`, as
/// `scripts/build-web` names the app's files): its content never changes under that name.
fn content_hashed(name: &str) -> bool {
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() >= 3 && {
        let h = parts[parts.len() - 2];
        h.len() == 16 && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }
}

/// The web app's files: its pages (every `/app/...` address without a file name extension is
/// the app's `index.html`) get [`APP_CSP`] and are revalidated on every load; files whose
/// names carry their content's hash are kept for a year without asking again; the rest (the
/// SDK, the widget and the favicon, whose names integrators use) are revalidated.
pub(super) async fn app_headers(req: HttpRequest, next: Next) -> Response {
    use axum::http::{header, HeaderValue};
    let path = req.uri().path().to_owned();
    let mut res = next.run(req).await;
    let last = path.rsplit('/').next().unwrap_or_default();
    // Also on a 304: a revalidated page keeps the policy it is answered with.
    let is_page = !last.contains('.');
    let cache = if content_hashed(last) && res.status().is_success() {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if is_page {
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(APP_CSP));
    }
    // The SDK and the checkout loader are public files that stores' pages import as modules
    // from their own origins (which needs CORS), also under COEP.
    if path.starts_with("/app/sdk/") {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        h.insert("cross-origin-resource-policy", HeaderValue::from_static("cross-origin"));
    }
    res
}

/// What `/app/...` answers when no file has that name: the app's `index.html` for its pages
/// (addresses without a file name extension, so that a reload or a shared link opens the right
/// page), and 404 for a file name: an old page asking for a file a new build renamed must not
/// get the page in its place (and keep it for a year under that name).
pub(super) fn app_page(
    index: std::path::PathBuf,
) -> impl Fn(HttpRequest) -> std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>>
       + Clone
       + Send
       + Sync
       + 'static {
    move |req: HttpRequest| {
        let index = index.clone();
        Box::pin(async move {
            use axum::response::IntoResponse;
            use tower::ServiceExt;
            let last = req.uri().path().rsplit('/').next().unwrap_or_default();
            if last.contains('.') {
                return ApiError(Problem::new(ProblemKind::NotFound, "no such file")).into_response();
            }
            let file = tower_http::services::ServeFile::new(index).precompressed_br().precompressed_gzip();
            match file.oneshot(req).await {
                Ok(r) => r.into_response(),
                Err(never) => match never {},
            }
        })
    }
}

/// A plain page for whoever opens the server in a browser.
pub(super) async fn home() -> axum::response::Html<&'static str> {
    axum::response::Html(include_str!("home.html"))
}

#[utoipa::path(get, path = "/healthz", responses(
    (status = 200, description = "The server and its database answer, and the tables keep up with the journal"),
    (status = 503, description = "The disk is full, the tables cannot catch up with the journal (the detail says since when), or the database does not answer", body = Problem, content_type = "application/problem+json")))]
pub(super) async fn healthz(State(s): State<AppState>) -> ApiResult<&'static str> {
    if let Some(since) = s.engine.disk_full() {
        return Err(ApiError(Problem::new(
            ProblemKind::Unavailable,
            format!(
                "the disk is full since {}: writes are refused until there is room (docs/operations.md, \
                 \"The disk is full\")",
                since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
        )));
    }
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
    metrics::gauge!("mykey_disk_full").set(if s.engine.disk_full().is_some() { 1.0 } else { 0.0 });
    s.metrics.render()
}

#[cfg(test)]
mod tests {
    use super::content_hashed;

    #[test]
    fn only_names_with_a_content_hash_count_as_immutable() {
        assert!(content_hashed("mykey_web.0123456789abcdef.js"));
        assert!(content_hashed("mykey_web_bg.0123456789abcdef.wasm"));
        for name in ["mykey_web.js", "style.css", "favicon.svg", "a.0123456789ABCDEF.js", "a.0123456789abcde.js", ""] {
            assert!(!content_hashed(name), "{name}");
        }
    }
}
