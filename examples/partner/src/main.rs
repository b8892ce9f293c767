//! An example card company's member site on its own origin, the one partners copy
//! (docs/partners.md walks through it):
//!
//! - at start it registers its origin and webhook URL with the points cloud as a partner and
//!   takes a fresh webhook signing secret (`cloud.rs`);
//! - members sign in with their member number and password (`members.rs`) and exchange card
//!   points for municipal points: a member whose number is linked to a MyKey ID gets a
//!   conversion pushed; any other gets a coupon code, redeemed at once in the embedded coupon
//!   widget;
//! - "link with MyKey ID" opens a link session for the signed-in member and mounts the link
//!   widget; the link counts only once the verified `link.confirmed` webhook arrives;
//! - the webhook log (a password) shows every verified event.
//!
//!   partner-site --points http://127.0.0.1:8080 --keys mykey-demo-keys.json --bind 127.0.0.3:8100

mod cloud;
mod members;
mod pages;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;

#[derive(Parser)]
#[command(about = "An example card company's member site exchanging card points for municipal points")]
struct Args {
    /// Where to listen: another loopback address than the points cloud's and the store's, so
    /// that the three are different sites as they are in production.
    #[arg(long, default_value = "127.0.0.3:8100")]
    bind: SocketAddr,
    /// The points cloud's origin.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    points: String,
    /// The demo's keys file: the key of `coupon_partner` and its partner id.
    #[arg(long, default_value = "mykey-demo-keys.json")]
    keys: std::path::PathBuf,
    /// The site's own database (members, exchanges, links, events).
    #[arg(long, default_value = "sqlite:partner.db")]
    database_url: String,
    /// The demo members' password; a random one is printed when none is given.
    #[arg(long, env = "PARTNER_MEMBER_PASSWORD")]
    member_password: Option<String>,
    /// The webhook log's password (user `admin`); a random one is printed when none is given.
    #[arg(long, env = "PARTNER_ADMIN_PASSWORD")]
    admin_password: Option<String>,
}

/// What every page shares.
pub struct Site {
    /// The site's origin, as browsers name it.
    pub origin: String,
    /// The points cloud.
    pub cloud: cloud::PointsCloud,
    /// Members, exchanges, links and events.
    pub members: members::Members,
    /// The webhook log's password.
    pub admin_password: String,
}

fn random_password() -> String {
    use rand::Rng;
    rand::thread_rng().sample_iter(rand::distributions::Alphanumeric).take(16).map(char::from).collect()
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
    let key = keys["coupon_partner"].as_str().context("the keys file has no coupon_partner key")?.to_owned();
    let partner = keys["ids"]["coupon_partner"].as_i64().context("the keys file has no ids.coupon_partner")?;
    let cloud = cloud::PointsCloud::connect(&a.points, key, partner, &origin).await?;
    let member_password = a.member_password.unwrap_or_else(random_password);
    let members = members::Members::open(&a.database_url, &member_password).await?;
    let admin_password = a.admin_password.unwrap_or_else(random_password);
    let site = Arc::new(Site { origin: origin.clone(), cloud, members, admin_password });
    println!("members M0001 and M0002, password {member_password}");
    println!("webhook log: {origin}/admin/events (user admin, password {})", site.admin_password);
    println!("partner site: {origin}/");
    axum::serve(listener, pages::router(site)).await.context("serving")
}
