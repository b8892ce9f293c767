//! The HTTP API: handlers parse and authorise, then hand the request to the engine (writes)
//! or the store (reads). Errors are RFC 9457 `application/problem+json`. One file per
//! resource group; `state`, `error` and `extract` are what they share.

use std::sync::Arc;

use axum::middleware::{self};
use axum::routing::get;
use axum::Router;
use mykey_core::{Problem, ProblemKind};

use crate::auth::{GuessLimiter, KeyCache};
use crate::engine::Engine;
use crate::services::identity::Identity;
use error::ApiError;
use state::AppState;

mod accounts;
mod admin;
#[cfg(feature = "demo")]
pub mod demo_cards;
mod directory;
pub mod error;
pub mod extract;
pub mod identity;
mod ledger;
mod log;
pub mod openapi;
mod ops;
pub mod state;

pub use extract::MAX_BODY_BYTES;

/// The router with every route, and `extra` routes (the demo's) under the same layers.
pub fn router(
    engine: Engine,
    identity: Arc<Identity>,
    coupons: Arc<crate::services::coupons::Coupons>,
    web_dir: Option<std::path::PathBuf>,
    extra: Router<AppState>,
) -> Router {
    let catalog = crate::services::catalog::Catalog::new(&engine);
    let state = AppState {
        engine,
        identity,
        coupons,
        catalog,
        keys: Arc::new(KeyCache::default()),
        guesses: Arc::new(GuessLimiter::default()),
        metrics: state::metrics_handle(),
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
        None => Router::new().route("/", get(ops::home)),
    };
    app.route("/healthz", get(ops::healthz))
        .route("/metrics", get(ops::metrics_text))
        .route("/openapi.json", get(openapi::openapi_json))
        .merge(ledger::routes())
        .merge(accounts::routes())
        .merge(directory::routes())
        .merge(admin::routes())
        .merge(log::routes())
        .merge(crate::http::identity::routes())
        .merge(extra)
        .fallback(|| async { ApiError(Problem::new(ProblemKind::NotFound, "no such route; see /openapi.json")) })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(ops::track))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}
