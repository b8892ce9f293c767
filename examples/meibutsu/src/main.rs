//! めいぶつチョイス, an example online store on its own origin that takes municipal points
//! through the points cloud's checkout widget (docs/checkout.md walks through it):
//!
//! - at start it registers its origin and webhook URL with the points cloud and takes a fresh
//!   webhook signing secret (`points.rs`);
//! - the catalog is the repository's `meibutsu-products.csv`, by prefecture and municipality,
//!   with search (`catalog.rs`); a cart in a cookie; checkout opens a session with the store's
//!   secret key on this server and the order page mounts the widget with the client secret;
//! - an order turns paid when the verified webhook arrives, each event applied once
//!   (`orders.rs`); the admin page (a password) refunds.
//!
//!   meibutsu --points http://127.0.0.1:8080 --keys mykey-demo-keys.json --bind 127.0.0.2:8090

mod catalog;
mod orders;
mod pages;
mod points;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;

#[derive(Parser)]
#[command(about = "めいぶつチョイス: an example store taking municipal points")]
struct Args {
    /// Where to listen. Use another loopback address than the points cloud's, so the two are
    /// different sites as they are in production.
    #[arg(long, default_value = "127.0.0.2:8090")]
    bind: SocketAddr,
    /// The points cloud's origin.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    points: String,
    /// The demo's keys file: the store key of `online_store` and its shop id.
    #[arg(long, default_value = "mykey-demo-keys.json")]
    keys: std::path::PathBuf,
    /// The store's own database (orders, applied events).
    #[arg(long, default_value = "sqlite:meibutsu.db")]
    database_url: String,
    /// The admin page's password (user `admin`); a random one is printed when none is given.
    #[arg(long, env = "MEIBUTSU_ADMIN_PASSWORD")]
    admin_password: Option<String>,
}

/// What every page shares.
pub struct Shop {
    /// The store's origin, as browsers name it.
    pub origin: String,
    /// The points cloud.
    pub points: points::PointsCloud,
    /// Orders and applied events.
    pub orders: orders::Orders,
    /// Products.
    pub catalog: catalog::Catalog,
    /// The admin page's password.
    pub admin_password: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let a = Args::parse();
    let listener = tokio::net::TcpListener::bind(a.bind).await.with_context(|| format!("binding {}", a.bind))?;
    let origin = format!("http://{}", listener.local_addr()?);
    let keys: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&a.keys).with_context(|| format!("reading {}", a.keys.display()))?,
    )?;
    let key = keys["online_store"].as_str().context("the keys file has no online_store key")?.to_owned();
    let shop = keys["ids"]["online_store"].as_i64().context("the keys file has no ids.online_store")?;
    let points = points::PointsCloud::connect(&a.points, key, shop, &origin).await?;
    let orders = orders::Orders::open(&a.database_url).await?;
    let admin_password = a.admin_password.unwrap_or_else(|| {
        use rand::Rng;
        rand::thread_rng().sample_iter(rand::distributions::Alphanumeric).take(16).map(char::from).collect()
    });
    let shop =
        Arc::new(Shop { origin: origin.clone(), points, orders, catalog: catalog::Catalog::load()?, admin_password });
    println!("admin page: {origin}/admin (user admin, password {})", shop.admin_password);
    println!("meibutsu store: {origin}/");
    axum::serve(listener, pages::router(shop)).await.context("serving")
}
