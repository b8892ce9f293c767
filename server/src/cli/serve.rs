//! `mykey-server serve`: serve the API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use mykey_server::services::identity::card::{CardTrust, UnknownRevocation};
use mykey_server::{store, LedgerService, ServeConfig};

use super::options::{Globals, MailArgs};

/// The options of `serve`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
    /// Run the scheduled jobs this often.
    #[arg(long, default_value_t = 60)]
    jobs_every_seconds: u64,
    /// A witness that cosigns checkpoints, as `URL=VKEY` (repeat for each).
    #[arg(long = "witness")]
    witnesses: Vec<String>,
    /// Cosignatures needed to publish a checkpoint (default: 2, or fewer witnesses).
    #[arg(long)]
    witness_quorum: Option<usize>,
    /// A proxy (address or CIDR, repeat for each) whose `X-Forwarded-For` names the client,
    /// e.g. the TLS terminator in front of the server; without it rate limits count the proxy.
    #[arg(long = "trusted-proxy", env = "MYKEY_TRUSTED_PROXIES", value_delimiter = ',', value_parser = proxy)]
    trusted_proxies: Vec<ipnet::IpNet>,
    /// Development only: let stores and partners register webhook URLs on this machine's
    /// loopback (`http://127.0.0.1:PORT/…`, `http://localhost:…`), for a receiver running beside
    /// the server. Off, such URLs are refused like private addresses.
    #[arg(long)]
    allow_loopback_webhooks: bool,
    #[command(flatten)]
    card: CardArgs,
    #[command(flatten)]
    mail: MailArgs,
}

/// `10.0.0.5` or `10.0.0.0/24`.
fn proxy(s: &str) -> Result<ipnet::IpNet, String> {
    s.parse::<ipnet::IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{s:?} is not an address or a CIDR network"))
}

/// Card login settings of `serve`.
#[derive(clap::Args)]
pub(crate) struct CardArgs {
    /// The origin residents' browsers use, e.g. `https://mykey.example`: card logins are
    /// signed for it and cookie-authenticated writes must come from it. Required unless the
    /// server listens on a loopback address (then `http://` and that address).
    #[arg(long, env = "MYKEY_ORIGIN")]
    origin: Option<String>,
    /// A CA trusted for card logins, PEM or DER (repeat). In production the J-LIS
    /// user-authentication CAs: `data/jpki-ca/auth_ca_*.pem`. Without one, card login
    /// is off.
    #[arg(long = "card-ca")]
    card_cas: Vec<PathBuf>,
    /// A CRL for card certificates, PEM or DER (repeat).
    #[arg(long = "card-crl")]
    card_crls: Vec<PathBuf>,
    /// Seconds between readings of the CRL files (replace a file and it is used from the next).
    #[arg(long, default_value_t = 3600)]
    card_crl_reload_seconds: u64,
    /// When a card's revocation status is unknown (no CRL of its CA, or a stale one).
    #[arg(long, value_enum, default_value_t = UnknownRevocation::Deny)]
    card_revocation_unknown: UnknownRevocation,
    /// Files to serve under `/app/` (the web app).
    #[arg(long)]
    web_dir: Option<PathBuf>,
}

impl CardArgs {
    /// The site's origin: `--origin`, or a loopback server's own address.
    fn site_origin(&self, bound: SocketAddr) -> anyhow::Result<String> {
        match &self.origin {
            Some(o) => mykey_server::services::embedding::parse_origin(o)
                .map_err(|p| anyhow::anyhow!("--origin {o:?}: {}", p.detail)),
            None if bound.ip().is_loopback() => Ok(format!("http://{bound}")),
            None => bail!(
                "serve needs --origin (the https site residents use, e.g. https://mykey.example): cookie writes \
                 are checked against it; only a server on a loopback address defaults to its own"
            ),
        }
    }

    /// The card trust, for `origin`.
    fn trust(&self, origin: &str) -> anyhow::Result<Option<CardTrust>> {
        if self.card_cas.is_empty() {
            tracing::warn!("no --card-ca: card login is off (password login still works)");
            return Ok(None);
        }
        let trust = CardTrust::from_files(&self.card_cas, &self.card_crls, self.card_revocation_unknown, origin)?;
        if self.card_crls.is_empty() {
            tracing::warn!(policy = ?self.card_revocation_unknown, "no --card-crl: every card's revocation status is unknown");
        }
        Ok(Some(trust))
    }
}

/// Runs `serve`.
pub(crate) async fn run(g: &Globals, a: Args) -> anyhow::Result<()> {
    let Args {
        bind,
        jobs_every_seconds,
        witnesses,
        witness_quorum,
        trusted_proxies,
        allow_loopback_webhooks,
        card,
        mail,
    } = a;
    let ledger = LedgerService::open_with(&g.database_url, g.log_config(&witnesses, witness_quorum)?).await?;
    tracing::info!(database = store::redact(&g.database_url), %bind, log_key = ledger.engine.log_vkey(), "serving");
    let listener = mykey_server::bind(bind).await?;
    let origin = card.site_origin(listener.local_addr()?)?;
    let trust = card.trust(&origin)?;
    eprintln!("mykey-server listening on http://{}", listener.local_addr()?);
    let coupon_key = Some(mykey_server::services::coupons::key_file(&g.coupon_key_file)?);
    let site = ServeConfig {
        card_trust: trust,
        #[cfg(feature = "demo")]
        demo_ca: None,
        web_dir: card.web_dir.clone(),
        origin: Some(origin),
        crl_reload_every: Some(Duration::from_secs(card.card_crl_reload_seconds.max(1))),
        trusted_proxies,
        coupon_key,
        mail: mail.config(),
        loopback_webhooks: allow_loopback_webhooks,
    };
    mykey_server::serve(ledger.engine.clone(), site, listener, Duration::from_secs(jobs_every_seconds.max(1))).await
}
