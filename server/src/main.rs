//! `mykey-server`: the points cloud's command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use std::future::IntoFuture as _;

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand, ValueEnum};
use mykey_server::auth::{create_key, Role};
#[cfg(feature = "demo")]
use mykey_server::demo;
use mykey_server::engine::LogConfig;
use mykey_server::engine::{Change, ChangeResult};
use mykey_server::log::witness::{Witness, WitnessClient};
use mykey_server::log::LogSigner;
use mykey_server::services::identity::card::{CardTrust, UnknownRevocation};
use mykey_server::{store, time, LedgerService, ServeConfig};

#[cfg(feature = "bench-without-log")]
compile_error!("bench-without-log is for `mykey-bench` only: a server without its log could not be audited");

/// mimalloc: the ledger allocates and frees many small rows per payment; glibc's `malloc`
/// and `free` were a fifth of the payment benchmark's samples (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "mykey-server", version, about = "The MyKey Platform's municipal points cloud")]
struct Cli {
    /// Database: `sqlite:PATH` (embedded, created if missing) or `postgres://...`.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite:mykey.db", global = true)]
    database_url: String,
    /// Log format.
    #[arg(long, env = "MYKEY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    /// The tamper-evident log's signing key (a C2SP skey); created with a new key if missing.
    #[arg(long, env = "MYKEY_LOG_KEY_FILE", default_value = "mykey-log.key", global = true)]
    log_key_file: PathBuf,
    /// The secret coupon codes derive from; created when missing. Keep it with the database.
    #[arg(long, env = "MYKEY_COUPON_KEY_FILE", default_value = "mykey-coupon.key", global = true)]
    coupon_key_file: PathBuf,
    /// The log's origin (first line of its checkpoints) when a new key is created.
    #[arg(long, env = "MYKEY_LOG_ORIGIN", default_value = mykey_server::DEFAULT_LOG_ORIGIN, global = true)]
    log_origin: String,
    #[command(subcommand)]
    command: Command,
}

/// E-mail notices.
#[derive(clap::Args)]
struct MailArgs {
    /// The SMTP server for e-mail notices: `smtp://host:port` (plain, a local relay),
    /// `smtp://host:587?tls=required` (STARTTLS) or `smtps://user:password@host`. Without it,
    /// notices wait in the outbox.
    #[arg(long, env = "MYKEY_SMTP_URL")]
    smtp_url: Option<String>,
    /// The sender of e-mail notices.
    #[arg(long, env = "MYKEY_MAIL_FROM", default_value = "マイキープラットフォーム <no-reply@mykey.local>")]
    mail_from: String,
}

impl MailArgs {
    fn config(&self) -> Option<mykey_server::outbox::mail::MailConfig> {
        let url = self.smtp_url.clone()?;
        Some(mykey_server::outbox::mail::MailConfig { smtp_url: url, from: self.mail_from.clone() })
    }
}

/// Card login settings of `serve`.
#[derive(clap::Args)]
struct CardArgs {
    /// The origin residents' browsers use, e.g. `https://mykey.example`: card logins are
    /// signed for it and cookie-authenticated writes must come from it.
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
    /// When a card's revocation status is unknown (no CRL of its CA, or a stale one).
    #[arg(long, value_enum, default_value_t = UnknownRevocation::Deny)]
    card_revocation_unknown: UnknownRevocation,
    /// Files to serve under `/app/` (the web app).
    #[arg(long)]
    web_dir: Option<PathBuf>,
}

impl CardArgs {
    /// The card trust; without `--origin`, a loopback server's own address is its origin.
    fn trust(&self, bound: SocketAddr) -> anyhow::Result<Option<CardTrust>> {
        if self.card_cas.is_empty() {
            tracing::warn!("no --card-ca: card login is off (password login still works)");
            return Ok(None);
        }
        let origin = match &self.origin {
            Some(o) => o.clone(),
            None if bound.ip().is_loopback() => format!("http://{bound}"),
            None => bail!("card login needs --origin (the https site residents use)"),
        };
        let trust = CardTrust::from_files(&self.card_cas, &self.card_crls, self.card_revocation_unknown, &origin)?;
        if self.card_crls.is_empty() {
            tracing::warn!(policy = ?self.card_revocation_unknown, "no --card-crl: every card's revocation status is unknown");
        }
        Ok(Some(trust))
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API.
    Serve {
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
        #[command(flatten)]
        card: CardArgs,
        #[command(flatten)]
        mail: MailArgs,
    },
    /// Run a witness (C2SP tlog-witness): cosign checkpoints of the given logs that are
    /// consistent with the last one it cosigned.
    Witness {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8181")]
        bind: SocketAddr,
        /// The witness's name (key name of its cosignatures).
        #[arg(long, default_value = "witness.local/w1")]
        name: String,
        /// The witness's key (C2SP skey, type 0x04); created if missing.
        #[arg(long, default_value = "mykey-witness.key")]
        key_file: PathBuf,
        /// Where the witness keeps the last checkpoint of each log.
        #[arg(long, default_value = "sqlite:mykey-witness.db")]
        state: String,
        /// A log to follow, as its vkey (repeat for each).
        #[arg(long = "log", required = true)]
        logs: Vec<String>,
    },
    /// Run a mirror: copy a log, verify it against its signed (and witnessed) checkpoints,
    /// replay its balances, and serve its tiles.
    Mirror {
        /// The log's base URL.
        #[arg(long)]
        from: String,
        /// A key of the log allowed to read entry bundles.
        #[arg(long, env = "MYKEY_MIRROR_SOURCE_KEY")]
        source_key: Option<String>,
        /// The log's public key (vkey).
        #[arg(long)]
        log_vkey: String,
        /// A witness whose cosignatures count (vkey; repeat for each).
        #[arg(long = "witness")]
        witnesses: Vec<String>,
        /// Cosignatures required (default: 2, or fewer witnesses).
        #[arg(long)]
        quorum: Option<usize>,
        /// The mirror's own database.
        #[arg(long, default_value = "sqlite:mykey-mirror.db")]
        mirror_database: String,
        /// Address to serve the mirrored tiles on.
        #[arg(long, default_value = "127.0.0.1:8282")]
        bind: SocketAddr,
        /// Token readers of the mirror's entry bundles must send.
        #[arg(long, env = "MYKEY_MIRROR_TOKEN")]
        token: Option<String>,
        /// Seconds between syncs.
        #[arg(long, default_value_t = 5)]
        every: u64,
    },
    /// Repair the ledger's rows from a mirror verified against the log's signed checkpoint,
    /// then audit again. Stop the server first.
    Restore {
        /// The mirror's base URL.
        #[arg(long)]
        from_mirror: String,
        /// The mirror's token for entry bundles.
        #[arg(long, env = "MYKEY_MIRROR_TOKEN")]
        token: Option<String>,
        /// The log's public key (vkey); without it, the one of --log-key-file.
        #[arg(long)]
        log_vkey: Option<String>,
        /// A witness whose cosignatures count (vkey; repeat for each).
        #[arg(long = "witness")]
        witnesses: Vec<String>,
        /// Cosignatures required (default: 2, or fewer witnesses).
        #[arg(long)]
        quorum: Option<usize>,
    },
    /// Apply the database migrations and exit.
    Migrate,
    /// Recompute the log from the ledger's rows and compare it with the stored log and a
    /// signed checkpoint; exits 1 when anything differs.
    Audit {
        /// A signed checkpoint kept outside this database (by a monitor or a witness
        /// operator); without it, the latest one the database recorded.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// The log's public key (vkey); without it, the one of --log-key-file.
        #[arg(long)]
        log_vkey: Option<String>,
    },
    /// Load the demo data (if the database is empty) and serve.
    #[cfg(feature = "demo")]
    Demo {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        bind: SocketAddr,
        /// Folder with the demo's data files (the names of the repository's `data/`); by
        /// default the copy compiled into this binary.
        #[arg(long, env = "MYKEY_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Where to write the demo's API keys.
        #[arg(long, default_value = "mykey-demo-keys.json")]
        keys_file: PathBuf,
        /// Where the demo's three witnesses keep their keys and state.
        #[arg(long, default_value = "mykey-demo-witnesses")]
        witness_dir: PathBuf,
        /// The demo CA that issues virtual cards (created if missing); trusted for card
        /// login by this demo only.
        #[arg(long, default_value = "mykey-demo-ca.json")]
        demo_ca_file: PathBuf,
        /// Files to serve under `/app/` (the web app).
        #[arg(long)]
        web_dir: Option<PathBuf>,
        #[command(flatten)]
        mail: MailArgs,
    },
    /// Issue a virtual My Number Card from the demo CA (demo and tests only).
    #[cfg(feature = "demo")]
    VirtualCard {
        /// The demo CA (created if missing).
        #[arg(long, default_value = "mykey-demo-ca.json")]
        demo_ca_file: PathBuf,
        /// Where to write the card.
        #[arg(long)]
        out: PathBuf,
        /// The card's 4-digit PIN.
        #[arg(long, default_value = "1234")]
        pin: String,
        /// Also write the CA certificate (PEM) here, for `serve --card-ca`.
        #[arg(long)]
        ca_certificate_out: Option<PathBuf>,
        /// Also write a fresh CRL of the CA (PEM, valid 7 days, nothing revoked) here, for
        /// `serve --card-crl`.
        #[arg(long)]
        crl_out: Option<PathBuf>,
    },
    /// Run the scheduled jobs once: on this database, or through a running server.
    Jobs {
        /// A running server's URL; without it the database is opened directly.
        #[arg(long)]
        server: Option<String>,
        /// Operator key for `--server`.
        #[arg(long, env = "MYKEY_OPERATOR_KEY")]
        key: Option<String>,
        /// Run as of this RFC 3339 time instead of now.
        #[arg(long)]
        now: Option<DateTime<Utc>>,
    },
    /// Create an API key and print it (it is shown only once).
    ApiKey {
        /// operator, municipality, partner, store, terminal or resident.
        #[arg(long)]
        role: String,
        /// The municipality, partner, shop or resident id the key acts for (0 for operator).
        #[arg(long, default_value_t = 0)]
        subject: i64,
        /// A note for whoever reads the key table.
        #[arg(long, default_value = "")]
        label: String,
    },
}

/// Loads the demo CA, or creates and saves one.
#[cfg(feature = "demo")]
fn demo_ca(path: &std::path::Path) -> anyhow::Result<mykey_virtual_card::DemoCa> {
    if path.exists() {
        let json = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        return mykey_virtual_card::DemoCa::from_json(&json);
    }
    let ca = mykey_virtual_card::DemoCa::generate(&mut rand::rngs::OsRng, std::time::SystemTime::now())?;
    write_secret(path, &ca.to_json()?)?;
    Ok(ca)
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logs(cli.log_format);
    let url = cli.database_url;
    let signer = || LogSigner::from_file(&cli.log_key_file, &cli.log_origin);
    let log_config = |witnesses: &[String], quorum: Option<usize>| -> anyhow::Result<LogConfig> {
        let witnesses = witnesses.iter().map(|w| WitnessClient::parse(w)).collect::<anyhow::Result<Vec<_>>>()?;
        let quorum = quorum.unwrap_or(witnesses.len().min(2));
        anyhow::ensure!(quorum <= witnesses.len(), "a quorum of {quorum} needs at least {quorum} witnesses");
        Ok(LogConfig { signer: signer()?, witnesses, quorum })
    };
    match cli.command {
        Command::Serve { bind, jobs_every_seconds, witnesses, witness_quorum, card, mail } => {
            let ledger = LedgerService::open_with(&url, log_config(&witnesses, witness_quorum)?).await?;
            tracing::info!(database = store::redact(&url), %bind, log_key = ledger.engine.log_vkey(), "serving");
            let listener = mykey_server::bind(bind).await?;
            let trust = card.trust(listener.local_addr()?)?;
            eprintln!("mykey-server listening on http://{}", listener.local_addr()?);
            let coupon_key = Some(mykey_server::services::coupons::key_file(&cli.coupon_key_file)?);
            let site = ServeConfig {
                card_trust: trust,
                #[cfg(feature = "demo")]
                demo_ca: None,
                web_dir: card.web_dir.clone(),
                coupon_key,
                mail: mail.config(),
            };
            mykey_server::serve(ledger.engine.clone(), site, listener, Duration::from_secs(jobs_every_seconds.max(1)))
                .await
        }
        Command::Witness { bind, name, key_file, state, logs } => {
            let key = mykey_server::log::key_file(&key_file, || new_witness_key(&name))?;
            anyhow::ensure!(
                key.kind() == mykey_core::note::TYPE_COSIGNATURE_V1,
                "{} is not a witness key (type 0x04)",
                key_file.display()
            );
            let logs = logs
                .iter()
                .map(|l| mykey_core::note::VerifierKey::parse(l).map_err(|e| anyhow::anyhow!("--log {l}: {e}")))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let witness = std::sync::Arc::new(Witness::open(&state, key, logs).await?);
            let listener = mykey_server::bind(bind).await?;
            println!("witness {} listening on http://{} (vkey {})", name, listener.local_addr()?, witness.vkey());
            axum::serve(listener, witness.router()).await.context("serving the witness")
        }
        Command::Audit { checkpoint, log_vkey } => {
            let vkey = match log_vkey {
                Some(v) => v,
                None => signer()?.vkey(),
            };
            let key = mykey_core::note::VerifierKey::parse(&vkey).map_err(|e| anyhow::anyhow!("the log key: {e}"))?;
            let s = store::Store::connect(&url).await?;
            let cp = mykey_server::integrity::audit::load_checkpoint(&s, checkpoint.as_deref(), &key).await?;
            let bar = indicatif::ProgressBar::new(cp.size);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} leaves {per_sec} {eta}")
                    .expect("template"),
            );
            let report = mykey_server::integrity::audit::audit(&s, &cp, |n| bar.set_position(n)).await?;
            bar.finish_and_clear();
            if report.clean() {
                println!(
                    "audit clean: {} transactions match the log and the checkpoint of size {} ({})",
                    report.checked, cp.size, cp.origin
                );
                return Ok(());
            }
            eprintln!("audit FAILED against the checkpoint of size {} ({}):", cp.size, cp.origin);
            for f in &report.findings {
                eprintln!("  leaf {}: {}", f.leaf, f.what);
                if let Some(id) = f.transaction {
                    eprintln!("    transaction {id} (seq {}), accounts {:?}", f.seq.unwrap_or_default(), f.accounts);
                }
            }
            std::process::exit(1);
        }
        Command::Mirror { from, source_key, log_vkey, witnesses, quorum, mirror_database, bind, token, every } => {
            let parse =
                |k: &str| mykey_core::note::VerifierKey::parse(k.trim()).map_err(|e| anyhow::anyhow!("{k:?}: {e}"));
            let witnesses = witnesses.iter().map(|w| parse(w)).collect::<anyhow::Result<Vec<_>>>()?;
            let quorum = quorum.unwrap_or(witnesses.len().min(2));
            anyhow::ensure!(quorum <= witnesses.len(), "a quorum of {quorum} needs at least {quorum} witnesses");
            let config = mykey_server::integrity::mirror::Source {
                url: from.trim_end_matches('/').to_owned(),
                token: source_key,
                log_key: parse(&log_vkey)?,
                witnesses,
                quorum,
            };
            let mut mirror = mykey_server::integrity::mirror::Mirror::open(&mirror_database, config).await?;
            let listener = mykey_server::bind(bind).await?;
            println!("mirror of {from} serving on http://{}", listener.local_addr()?);
            tokio::spawn(
                axum::serve(listener, mykey_server::integrity::mirror::router(mirror.store().clone(), token))
                    .into_future(),
            );
            let mut tick = tokio::time::interval(Duration::from_secs(every.max(1)));
            loop {
                tick.tick().await;
                match mirror.sync().await {
                    Ok(s) if s.to > s.from => tracing::info!(from = s.from, to = s.to, "mirrored"),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!(error = format!("{e:#}"), "the log could not be verified; nothing new was kept")
                    }
                }
            }
        }
        Command::Restore { from_mirror, token, log_vkey, witnesses, quorum } => {
            let parse =
                |k: &str| mykey_core::note::VerifierKey::parse(k.trim()).map_err(|e| anyhow::anyhow!("{k:?}: {e}"));
            let log_key = parse(&match log_vkey {
                Some(v) => v,
                None => signer()?.vkey(),
            })?;
            let witnesses = witnesses.iter().map(|w| parse(w)).collect::<anyhow::Result<Vec<_>>>()?;
            let quorum = quorum.unwrap_or(witnesses.len().min(2));
            let s = store::Store::connect(&url).await?;
            s.migrate().await?;
            let _lock = mykey_server::store::lock::WriterLock::acquire(&s).await?;
            mykey_server::engine::journal::recover(&s).await?;
            let from = mykey_server::integrity::mirror::Source {
                url: from_mirror.trim_end_matches('/').to_owned(),
                token,
                log_key: log_key.clone(),
                witnesses,
                quorum,
            };
            let done = mykey_server::integrity::restore::restore(&s, &from).await?;
            println!(
                "restored from {from_mirror}: {} leaves checked, {} transactions and {} log leaves rewritten; auditing again",
                done.checked, done.transactions, done.leaves
            );
            let cp = mykey_server::integrity::audit::load_checkpoint(&s, None, &log_key).await?;
            let report = mykey_server::integrity::audit::audit(&s, &cp, |_| {}).await?;
            if !report.clean() {
                eprintln!("the audit still fails after the restore: {}", report.findings[0].what);
                std::process::exit(1);
            }
            println!("audit clean: {} transactions", report.checked);
            Ok(())
        }
        Command::Migrate => {
            let s = store::Store::connect(&url).await?;
            s.migrate().await?;
            eprintln!("migrations applied to {}", store::redact(&url));
            Ok(())
        }
        #[cfg(feature = "demo")]
        Command::VirtualCard { demo_ca_file, out, pin, ca_certificate_out, crl_out } => {
            let ca = demo_ca(&demo_ca_file)?;
            let pem = |label: &str, der: &[u8]| {
                use base64::Engine as _;
                let b64 = base64::engine::general_purpose::STANDARD.encode(der);
                let lines: Vec<&str> =
                    b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).expect("base64")).collect();
                format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
            };
            if let Some(p) = ca_certificate_out {
                std::fs::write(&p, pem("CERTIFICATE", ca.certificate()))?;
            }
            if let Some(p) = crl_out {
                let now = std::time::SystemTime::now();
                std::fs::write(&p, pem("X509 CRL", &ca.crl(1, &[], now, now + Duration::from_secs(7 * 24 * 3600))?))?;
            }
            let card = mykey_virtual_card::VirtualCard::issue(
                &ca,
                &mut rand::rngs::OsRng,
                &pin,
                std::time::SystemTime::now(),
            )?;
            write_secret(&out, &serde_json::to_string_pretty(&card.to_file()?)?)?;
            println!("virtual card written to {} (PIN {pin}); its CA is {}", out.display(), demo_ca_file.display());
            Ok(())
        }
        #[cfg(feature = "demo")]
        Command::Demo { bind, data_dir, keys_file, witness_dir, demo_ca_file, web_dir, mail } => {
            // Three witnesses on loopback, quorum 2. Their memory belongs to this database:
            // a fresh database starts fresh witnesses.
            let fresh = store::Store::connect(&url).await?.is_new().await.unwrap_or(true);
            if fresh && witness_dir.exists() {
                std::fs::remove_dir_all(&witness_dir).with_context(|| format!("clearing {}", witness_dir.display()))?;
            }
            std::fs::create_dir_all(&witness_dir)?;
            let signer = signer()?;
            let log_key = mykey_core::note::VerifierKey::parse(&signer.vkey()).map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut witnesses = Vec::new();
            for i in 1..=3 {
                let name = format!("witness.local/w{i}");
                let key =
                    mykey_server::log::key_file(&witness_dir.join(format!("w{i}.key")), || new_witness_key(&name))?;
                let state = format!("sqlite:{}", witness_dir.join(format!("w{i}.db")).display());
                let witness = std::sync::Arc::new(Witness::open(&state, key, vec![log_key.clone()]).await?);
                let listener = mykey_server::bind("127.0.0.1:0".parse()?).await?;
                let witness_url = format!("http://{}", listener.local_addr()?);
                witnesses.push(WitnessClient::parse(&format!("{witness_url}={}", witness.vkey()))?);
                tokio::spawn(async move { axum::serve(listener, witness.router()).await });
            }
            let ledger = LedgerService::open_with(&url, LogConfig { signer, witnesses, quorum: 2 }).await?;
            match demo::seed(&ledger.engine, &data_dir.map_or(demo::DemoData::Embedded, demo::DemoData::Dir)).await? {
                Some(keys) => {
                    write_secret(&keys_file, &serde_json::to_string_pretty(&keys)?)?;
                    println!("demo data loaded; API keys written to {}", keys_file.display());
                }
                None => println!("demo data already present; API keys are in {}", keys_file.display()),
            }
            let listener = mykey_server::bind(bind).await?;
            let at = listener.local_addr()?;
            // Card login against the demo CA only, with a fresh CRL of it, for this origin.
            let ca = demo_ca(&demo_ca_file)?;
            let now = std::time::SystemTime::now();
            let crl = ca.crl(1, &[], now, now + Duration::from_secs(7 * 24 * 3600))?;
            let trust =
                CardTrust::new(&[ca.certificate().to_vec()], &[crl], UnknownRevocation::Deny, &format!("http://{at}"))?;
            println!(
                "log key (verify checkpoints at http://{at}/log/checkpoint with it): {}",
                ledger.engine.log_vkey()
            );
            println!(
                "mykey demo: http://{at}/  (the web app is at http://{at}/app/ when built; the API at http://{at}/openapi.json)"
            );
            let coupon_key = Some(mykey_server::services::coupons::key_file(&cli.coupon_key_file)?);
            let site =
                ServeConfig { card_trust: Some(trust), demo_ca: Some(ca), web_dir, coupon_key, mail: mail.config() };
            mykey_server::serve(ledger.engine.clone(), site, listener, Duration::from_secs(60)).await
        }
        Command::Jobs { server, key, now } => {
            let now_json = serde_json::json!({ "now": now });
            let report = match server {
                Some(base) => {
                    let key = key.context("--server needs --key (or MYKEY_OPERATOR_KEY) with an operator key")?;
                    let res = reqwest::Client::new()
                        .post(format!("{}/v1/jobs/run", base.trim_end_matches('/')))
                        .bearer_auth(key)
                        .json(&now_json)
                        .send()
                        .await
                        .with_context(|| format!("reaching {base}"))?;
                    let status = res.status();
                    let body = res.text().await?;
                    if !status.is_success() {
                        bail!("the server refused: {status} {body}");
                    }
                    body
                }
                None => {
                    let ledger = LedgerService::open_with(&url, LogConfig::unwitnessed(signer()?)).await?;
                    let at = now.map(time::datetime_to_micros).unwrap_or_else(time::now);
                    let report = match ledger
                        .engine
                        .apply(Change::Jobs { now: at })
                        .await
                        .map_err(|p| anyhow::anyhow!(p.detail))?
                    {
                        ChangeResult::Jobs(r) => serde_json::to_string(&r)?,
                        _ => unreachable!("jobs answer with a report"),
                    };
                    // Leave the tables up to date, not just the journal.
                    ledger.close().await;
                    report
                }
            };
            println!("{report}");
            Ok(())
        }
        Command::ApiKey { role, subject, label } => {
            let role = Role::parse(&role).with_context(|| format!("unknown role {role:?}"))?;
            let s = store::Store::connect(&url).await?;
            s.migrate().await?;
            println!("{}", create_key(&s, role, subject, &label).await?);
            Ok(())
        }
    }
}

fn new_witness_key(name: &str) -> mykey_core::note::SignerKey {
    use rand::RngCore;
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    mykey_core::note::SignerKey::witness(name, seed).expect("a witness name without spaces or '+'")
}

/// Writes a file only its owner can read: it holds secrets.
#[cfg(feature = "demo")]
fn write_secret(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .with_context(|| format!("writing {}", path.display()))
}
