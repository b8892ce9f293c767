//! `mykey-server demo`: load the demo data (if the database is empty) and serve.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use mykey_server::demo;
use mykey_server::engine::LogConfig;
use mykey_server::integrity::witness::Witness;
use mykey_server::log::witness::WitnessClient;
use mykey_server::services::identity::card::{CardTrust, UnknownRevocation};
use mykey_server::{store, LedgerService, ServeConfig};

use mykey_server::secret::replace_secret_file;

use super::keys::{demo_ca, new_witness_key};
use super::options::{Globals, MailArgs};

/// The options of `demo`.
#[derive(clap::Args)]
pub(crate) struct Args {
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
}

/// Runs `demo`.
pub(crate) async fn run(g: &Globals, a: Args) -> anyhow::Result<()> {
    let Args { bind, data_dir, keys_file, witness_dir, demo_ca_file, web_dir, mail } = a;
    // Three witnesses on loopback, quorum 2. Their memory belongs to this database:
    // a fresh database starts fresh witnesses.
    let fresh = store::Store::connect(&g.database_url).await?.is_new().await.unwrap_or(true);
    if fresh && witness_dir.exists() {
        std::fs::remove_dir_all(&witness_dir).with_context(|| format!("clearing {}", witness_dir.display()))?;
    }
    std::fs::create_dir_all(&witness_dir)?;
    let signer = g.signer()?;
    let log_key = mykey_core::note::VerifierKey::parse(&signer.vkey()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut witnesses = Vec::new();
    for i in 1..=3 {
        let name = format!("witness.local/w{i}");
        let key = mykey_server::log::key_file(&witness_dir.join(format!("w{i}.key")), || new_witness_key(&name))?;
        let state = format!("sqlite:{}", witness_dir.join(format!("w{i}.db")).display());
        let witness = std::sync::Arc::new(Witness::open(&state, key, vec![log_key.clone()]).await?);
        let listener = mykey_server::bind("127.0.0.1:0".parse()?).await?;
        let witness_url = format!("http://{}", listener.local_addr()?);
        witnesses.push(WitnessClient::parse(&format!("{witness_url}={}", witness.vkey()))?);
        tokio::spawn(async move { axum::serve(listener, witness.router()).await });
    }
    let ledger = LedgerService::open_with(&g.database_url, LogConfig { signer, witnesses, quorum: 2 }).await?;
    match demo::seed(&ledger.engine, &data_dir.map_or(demo::DemoData::Embedded, demo::DemoData::Dir)).await? {
        Some(keys) => {
            replace_secret_file(&keys_file, &serde_json::to_string_pretty(&keys)?)?;
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
    let trust = CardTrust::new(&[ca.certificate().to_vec()], &[crl], UnknownRevocation::Deny, &format!("http://{at}"))?;
    println!("log key (verify checkpoints at http://{at}/log/checkpoint with it): {}", ledger.engine.log_vkey());
    println!(
            "mykey demo: http://{at}/  (the web app is at http://{at}/app/ when built; the API at http://{at}/openapi.json)"
        );
    println!(
        "counter terminal: http://{at}/app/terminal, enrolled with a pairing code the shop's store key makes \
         (POST /v1/shops/{{shop}}/pairing-codes; docs/counter.md)"
    );
    let coupon_key = Some(mykey_server::services::coupons::key_file(&g.coupon_key_file)?);
    let site = ServeConfig {
        card_trust: Some(trust),
        demo_ca: Some(ca),
        web_dir,
        origin: Some(format!("http://{at}")),
        crl_reload_every: None,
        trusted_proxies: Vec::new(),
        coupon_key,
        mail: mail.config(),
        // The example store and partner site receive their webhooks on loopback.
        loopback_webhooks: true,
    };
    mykey_server::serve(ledger.engine.clone(), site, listener, Duration::from_secs(60)).await
}
