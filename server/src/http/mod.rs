//! The HTTP API: handlers parse and authorise, then hand the request to the engine (writes)
//! or the store (reads). Errors are RFC 9457 `application/problem+json`. One file per
//! resource group; `state`, `error` and `extract` are what they share.

use std::sync::Arc;

use axum::middleware::{self};
use axum::routing::get;
use axum::Router;
use mykey_core::{Problem, ProblemKind};
use tower_http::compression::predicate::Predicate as _;

use crate::auth::{GuessLimiter, KeyCache};
use crate::engine::Engine;
use crate::services::identity::Identity;
use error::ApiError;
use state::AppState;

mod accounts;
mod admin;
pub(crate) mod checkout;
mod close;
#[cfg(feature = "demo")]
pub mod demo_cards;
mod devices;
mod directory;
pub(crate) mod embedding;
pub mod error;
pub mod extract;
pub mod identity;
mod ledger;
mod log;
pub mod openapi;
mod ops;
mod partners;
mod party;
pub mod state;
mod vouchers;

pub use extract::MAX_BODY_BYTES;
pub use ops::{APP_CSP, CSP_REPORTS_PER_MINUTE, REQUEST_TIMEOUT};

/// The services the routes call, and the site's origin.
pub struct Services {
    /// The ledger.
    pub engine: Engine,
    /// MyKey IDs and card login.
    pub identity: Arc<Identity>,
    /// Coupon codes.
    pub coupons: Arc<crate::services::coupons::Coupons>,
    /// Store checkout.
    pub checkout: Arc<crate::services::checkout::Checkout>,
    /// What stores' and partners' widgets share.
    pub embedding: Arc<crate::services::embedding::Embedding>,
    /// Partners' link sessions.
    pub links: Arc<crate::services::links::Links>,
    /// Stores' charges under standing mandates.
    pub mandates: Arc<crate::services::mandates::Mandates>,
    /// Point vouchers' keys.
    pub vouchers: Arc<crate::services::vouchers::Vouchers>,
    /// The group-commit writer of checkout's, coupons' and counters' small writes.
    pub writes: crate::store::group_commit::Writer,
    /// The site's origin (`ServeConfig::origin`).
    pub origin: Option<String>,
    /// Where webhooks may go (`ServeConfig::loopback_webhooks`).
    pub webhook_targets: crate::outbox::address::Targets,
}

impl Services {
    /// The services over `engine` and `identity`: coupon codes, checkout and link secrets
    /// derive from `coupon_key`; `origin` is the site's; webhooks go to `webhook_targets`.
    pub fn new(
        engine: Engine,
        identity: Arc<Identity>,
        coupon_key: [u8; 32],
        origin: Option<String>,
        webhook_targets: crate::outbox::address::Targets,
    ) -> Services {
        use crate::services::{checkout::Checkout, coupons::Coupons, embedding::Embedding, links::Links};
        let embedding = Arc::new(Embedding::new(engine.clone(), identity.clone(), webhook_targets));
        // One group-commit writer for checkout's and coupons' small writes: they share syncs.
        let writer =
            crate::store::group_commit::Writer::start(engine.store().pool().clone(), embedding.events_written());
        let checkout = Arc::new(Checkout::new(
            engine.clone(),
            embedding.clone(),
            writer.clone(),
            derived_key(&coupon_key, b"mykey checkout key\0"),
        ));
        let links = Arc::new(Links::new(
            engine.clone(),
            embedding.clone(),
            identity.clone(),
            derived_key(&coupon_key, b"mykey links key\0"),
        ));
        let coupons = Arc::new(Coupons::new(
            engine.clone(),
            coupon_key,
            origin.as_deref().unwrap_or(""),
            embedding.clone(),
            writer.clone(),
        ));
        let mandates = Arc::new(crate::services::mandates::Mandates::new(engine.clone(), identity.clone()));
        let vouchers =
            Arc::new(crate::services::vouchers::Vouchers::new(derived_key(&coupon_key, b"mykey vouchers key\0")));
        Services {
            engine,
            identity,
            coupons,
            checkout,
            embedding,
            links,
            mandates,
            vouchers,
            writes: writer,
            origin,
            webhook_targets,
        }
    }

    /// Starts what runs beside requests: checkout's expiries and recoveries, webhook deliveries.
    pub fn start_background(&self) -> anyhow::Result<()> {
        tokio::spawn(self.checkout.clone().run());
        let deliverer =
            crate::outbox::webhooks::Deliverer::new(self.engine.store().pool().clone(), self.webhook_targets)?;
        tokio::spawn(deliverer.run(self.embedding.events_written()));
        Ok(())
    }
}

/// A key for the purpose `label` names, from the coupon key: one key file serves them all, and
/// no derived key says anything about another.
fn derived_key(coupon_key: &[u8; 32], label: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::new().chain_update(label).chain_update(coupon_key).finalize().into()
}

/// The router with every route, and `extra` routes (the demo's) under the same layers; refused
/// when the web build in `web_dir` is incomplete ([`embedding::widget_page`]).
pub fn router(
    services: Services,
    web_dir: Option<std::path::PathBuf>,
    trusted_proxies: Vec<ipnet::IpNet>,
    extra: Router<AppState>,
) -> anyhow::Result<Router> {
    let widget_page = embedding::widget_page(web_dir.as_deref())?;
    let Services {
        engine,
        identity,
        coupons,
        checkout,
        embedding,
        links,
        mandates,
        vouchers,
        writes,
        origin,
        webhook_targets: _,
    } = services;
    let catalog = crate::services::catalog::Catalog::new(&engine);
    let state = AppState {
        engine,
        identity,
        coupons,
        checkout,
        embedding,
        links,
        mandates,
        vouchers,
        counter_notes: writes,
        origin,
        catalog,
        keys: Arc::new(KeyCache::default()),
        guesses: Arc::new(GuessLimiter::default()),
        devices: Arc::new(crate::auth::devices::Devices::default()),
        pairing_failures: Arc::new(crate::auth::FailureCounter::new(
            crate::auth::FAILED_AUTH_PER_MINUTE as usize,
            std::time::Duration::from_secs(600),
        )),
        metrics: state::metrics_handle(),
        csp_reports: Arc::new(governor::RateLimiter::keyed(governor::Quota::per_minute(
            std::num::NonZeroU32::new(ops::CSP_REPORTS_PER_MINUTE).expect("non-zero"),
        ))),
        widget_page,
    };
    // The web app under /app/: its files, and index.html for its own paths (/app/create, ...)
    // so that a reload or a shared link opens the right page. `/` leads there.
    let app = match web_dir {
        Some(dir) => {
            // `scripts/build-web` leaves a brotli and a gzip copy beside each file: sent as
            // they are to browsers that take them (the .wasm is a third of its size in brotli).
            let files = tower_http::services::ServeDir::new(&dir)
                .precompressed_br()
                .precompressed_gzip()
                .fallback(axum::handler::HandlerWithoutStateExt::into_service(ops::app_page(dir.join("index.html"))));
            Router::new()
                .nest_service("/app", files)
                .layer(middleware::from_fn(ops::app_headers))
                .route("/", get(|| async { axum::response::Redirect::temporary("/app/") }))
                // Browsers ask for it at the root whatever the page names.
                .route("/favicon.ico", get(|| async { axum::response::Redirect::permanent("/app/favicon.svg") }))
        }
        None => Router::new().route("/", get(ops::home)),
    };
    Ok(app
        .route("/healthz", get(ops::healthz))
        .route("/csp-reports", axum::routing::post(ops::csp_report))
        .route("/metrics", get(ops::metrics_text))
        .route("/openapi.json", get(openapi::openapi_json))
        .merge(ledger::routes())
        .merge(accounts::routes())
        .merge(directory::routes())
        .merge(admin::routes())
        .merge(checkout::routes())
        .merge(embedding::routes())
        .merge(partners::routes())
        .merge(log::routes())
        .merge(crate::http::identity::routes())
        .merge(devices::routes())
        .merge(close::routes())
        .merge(vouchers::routes())
        .merge(extra)
        .fallback(|| async { ApiError(Problem::new(ProblemKind::NotFound, "no such route; see /openapi.json")) })
        .layer(middleware::from_fn_with_state(state.clone(), devices::signed_requests))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(ops::REQUEST_TIMEOUT, ops::time_limit))
        .layer(middleware::from_fn(error::framework_refusals_as_problems))
        .layer(middleware::from_fn(ops::security_headers))
        // Answers over 1 KiB (directory lists, history pages, the OpenAPI document) in brotli or
        // gzip when the client takes them; the web app's files come precompressed.
        .layer(
            tower_http::compression::CompressionLayer::new().compress_when(
                tower_http::compression::predicate::DefaultPredicate::new()
                    .and(tower_http::compression::predicate::SizeAbove::new(1024)),
            ),
        )
        .layer(middleware::from_fn(ops::track))
        .layer(middleware::from_fn_with_state(Arc::new(trusted_proxies), extract::client_address))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::routing::get;
    use axum::Router;

    #[tokio::test]
    async fn a_request_that_takes_too_long_is_answered_503_with_a_problem() {
        let app: Router = Router::new()
            .route("/slow", get(|| async { tokio::time::sleep(Duration::from_secs(5)).await }))
            .route("/fast", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn_with_state(Duration::from_millis(100), super::ops::time_limit));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let res = reqwest::get(format!("{base}/slow")).await.unwrap();
        assert_eq!(res.status(), 503);
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["type"], "urn:mykey:problem:unavailable");
        assert!(body["detail"].as_str().unwrap().contains("same id"), "{body}");
        assert_eq!(reqwest::get(format!("{base}/fast")).await.unwrap().status(), 200);
    }
}
