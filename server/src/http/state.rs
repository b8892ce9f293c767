//! What every handler shares.

use std::sync::{Arc, OnceLock};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::auth::{GuessLimiter, KeyCache};
use crate::engine::Engine;
use crate::services::identity::Identity;

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    pub(crate) engine: Engine,
    pub(crate) identity: Arc<Identity>,
    pub(crate) coupons: Arc<crate::services::coupons::Coupons>,
    pub(crate) checkout: Arc<crate::services::checkout::Checkout>,
    pub(crate) embedding: Arc<crate::services::embedding::Embedding>,
    pub(crate) links: Arc<crate::services::links::Links>,
    pub(crate) mandates: Arc<crate::services::mandates::Mandates>,
    /// Which counter device sent each request, noted many at a time.
    pub(crate) counter_notes: crate::store::group_commit::Writer,
    /// Point vouchers' keys and guesses.
    pub(crate) vouchers: Arc<crate::services::vouchers::Vouchers>,
    /// The site's origin (`ServeConfig::origin`); none: the address a request was sent to.
    pub(crate) origin: Option<String>,
    pub(crate) catalog: crate::services::catalog::Catalog,
    pub(crate) keys: Arc<KeyCache>,
    pub(crate) guesses: Arc<GuessLimiter>,
    /// Counter devices: enrolment, keys, nonces.
    pub(crate) devices: Arc<crate::auth::devices::Devices>,
    /// Wrong pairing codes per client address.
    pub(crate) pairing_failures: Arc<crate::auth::FailureCounter<std::net::IpAddr>>,
    pub(crate) metrics: PrometheusHandle,
    /// CSP reports per client address ([`super::ops::CSP_REPORTS_PER_MINUTE`]).
    pub(crate) csp_reports: Arc<governor::DefaultKeyedRateLimiter<std::net::IpAddr>>,
    /// The widget's page (frame and password window), read once at start.
    pub(crate) widget_page: Arc<str>,
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
