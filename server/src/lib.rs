//! The mykey points cloud: the ledger, its storage, the HTTP API and the CLI's commands.
//!
//! `ledger` holds the rules, `engine` the single writer that batches and commits, `store`
//! every SQL statement, `http` the HTTP handlers. See ARCHITECTURE.md.

pub mod auth;
#[cfg(feature = "demo")]
pub mod demo;
pub mod engine;
pub mod failure;
pub mod http;
pub mod integrity;
pub mod ledger;
pub mod log;
pub mod net;
pub mod outbox;
pub mod secret;
pub mod services;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod time;

use std::net::SocketAddr;

use anyhow::Context;

/// The log's origin when none is configured.
pub const DEFAULT_LOG_ORIGIN: &str = "mykey.local/log";

/// A running ledger: database, writer lock and engine.
pub struct LedgerService {
    /// The engine (writes).
    pub engine: engine::Engine,
    tasks: engine::Tasks,
    _lock: store::lock::WriterLock,
}

impl LedgerService {
    /// Opens with a fresh, unsaved log key (tests and benchmarks).
    pub async fn open(database_url: &str) -> anyhow::Result<LedgerService> {
        Self::open_with(database_url, engine::LogConfig::unwitnessed(log::LogSigner::generate(DEFAULT_LOG_ORIGIN)))
            .await
    }

    /// Connects, migrates, takes the writer lock and starts the engine; `log` says who signs
    /// and who cosigns the log's checkpoints.
    pub async fn open_with(database_url: &str, log: engine::LogConfig) -> anyhow::Result<LedgerService> {
        let store = store::Store::connect(database_url).await?;
        store.migrate().await?;
        let lock = store::lock::WriterLock::acquire(&store).await?;
        let (engine, tasks) = engine::Engine::start(store, log).await?;
        Ok(LedgerService { engine, tasks, _lock: lock })
    }

    /// Stops the writer, lets the materialiser finish, then releases the writer lock.
    pub async fn close(self) {
        self.engine.stop().await;
        self.tasks.join().await;
    }
}

/// What the server offers besides the ledger API.
#[derive(Default)]
pub struct ServeConfig {
    /// Who is trusted for card logins, for which origin; none: card login is off.
    pub card_trust: Option<services::identity::card::CardTrust>,
    /// Demo only: the CA that issues virtual cards to pages at `/demo/cards`.
    #[cfg(feature = "demo")]
    pub demo_ca: Option<mykey_virtual_card::DemoCa>,
    /// Files served under `/app/` (the web app, test pages).
    pub web_dir: Option<std::path::PathBuf>,
    /// The site's origin as residents' browsers name it (`serve --origin`): cookie writes must
    /// come from it. None: card login's origin, else the address a request was sent to (tests).
    pub origin: Option<String>,
    /// Proxies whose `X-Forwarded-For` names the client (limits count clients, not the proxy).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Where e-mail notices go; none: they wait in the outbox.
    pub mail: Option<outbox::mail::MailConfig>,
    /// The secret coupon codes derive from (`services::coupons::key_file`); none: a random one for
    /// this process (tests).
    pub coupon_key: Option<[u8; 32]>,
    /// How often the card CRL files are read again; none: [`CRL_RELOAD_EVERY`].
    pub crl_reload_every: Option<std::time::Duration>,
    /// Development only (`--allow-loopback-webhooks`, the demo, the tests): webhooks may also
    /// go to this machine's loopback addresses. Off, a store could probe the cloud's own ports.
    pub loopback_webhooks: bool,
}

/// How often the card CRL files are read again by default.
pub const CRL_RELOAD_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Serves the API on `listener` until the process ends; runs the jobs every `jobs_every`.
pub async fn serve(
    engine: engine::Engine,
    mut site: ServeConfig,
    listener: tokio::net::TcpListener,
    jobs_every: std::time::Duration,
) -> anyhow::Result<()> {
    let identity = std::sync::Arc::new(services::identity::Identity::new(engine.clone(), site.card_trust.take()));
    serve_with(engine, identity, site, listener, jobs_every).await
}

/// As [`serve`], with an identity service the caller configured (tests set short lives);
/// `site.card_trust` is not used.
pub async fn serve_with(
    engine: engine::Engine,
    identity: std::sync::Arc<services::identity::Identity>,
    site: ServeConfig,
    listener: tokio::net::TcpListener,
    jobs_every: std::time::Duration,
) -> anyhow::Result<()> {
    let pending = identity.log_pending().await.context("logging MyKey ID events left from the last run")?;
    if pending > 0 {
        tracing::info!(events = pending, "logged MyKey ID events left from the last run");
    }
    if let Some(config) = &site.mail {
        let mailer = outbox::mail::Mailer::new(engine.store().pool().clone(), config)?;
        tokio::spawn(mailer.run());
    }
    let coupon_key = site.coupon_key.unwrap_or_else(|| {
        use rand::RngCore;
        let mut k = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut k);
        k
    });
    let origin = site.origin.clone().or_else(|| identity.origin().map(str::to_owned));
    if identity.reload_crls().is_some() {
        let (identity, every) = (identity.clone(), site.crl_reload_every.unwrap_or(CRL_RELOAD_EVERY));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                identity.reload_crls();
            }
        });
    }
    let targets = if site.loopback_webhooks {
        outbox::address::Targets::PublicAndLoopback
    } else {
        outbox::address::Targets::Public
    };
    let services = http::Services::new(engine.clone(), identity.clone(), coupon_key, origin, targets);
    services.start_background()?;
    let extra = axum::Router::new();
    #[cfg(feature = "demo")]
    let extra = extra.merge(http::demo_cards::routes(site.demo_ca));
    let router = http::router(services, site.web_dir, site.trusted_proxies, extra)?;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(jobs_every);
        tick.tick().await;
        loop {
            tick.tick().await;
            let now = time::now();
            match engine.apply(engine::Change::Jobs { now }).await {
                Ok(r) => tracing::info!(report = ?r, "scheduled jobs ran"),
                Err(p) => tracing::warn!(problem = ?p, "scheduled jobs failed"),
            }
            match identity.clean_up(now).await {
                Ok(c) => tracing::info!(removed = ?c, "ended sessions and old drafts removed"),
                Err(e) => tracing::warn!(error = format!("{e:#}"), "removing ended sessions failed"),
            }
        }
    });
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await.context("serving HTTP")
}

/// Binds a listener with a readable error.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))
}
