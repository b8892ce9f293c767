//! `mykey-server virtual-card`: issue a virtual My Number Card from the demo CA (demo and tests only).

use std::path::PathBuf;
use std::time::Duration;

use mykey_server::secret::replace_secret_file;

use super::keys::demo_ca;
use super::options::Globals;

/// The options of `virtual-card`.
#[derive(clap::Args)]
pub(crate) struct Args {
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
}

/// Runs `virtual-card`.
pub(crate) async fn run(_g: &Globals, a: Args) -> anyhow::Result<()> {
    let Args { demo_ca_file, out, pin, ca_certificate_out, crl_out } = a;
    let ca = demo_ca(&demo_ca_file)?;
    let pem = |label: &str, der: &[u8]| {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).expect("base64")).collect();
        format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
    };
    if let Some(p) = ca_certificate_out {
        std::fs::write(&p, pem("CERTIFICATE", ca.certificate()))?;
    }
    if let Some(p) = crl_out {
        let now = std::time::SystemTime::now();
        std::fs::write(&p, pem("X509 CRL", &ca.crl(1, &[], now, now + Duration::from_secs(7 * 24 * 3600))?))?;
    }
    let card = mykey_virtual_card::VirtualCard::issue(&ca, &mut rand::rngs::OsRng, &pin, std::time::SystemTime::now())?;
    replace_secret_file(&out, &serde_json::to_string_pretty(&card.to_file()?)?)?;
    println!("virtual card written to {} (PIN {pin}); its CA is {}", out.display(), demo_ca_file.display());
    Ok(())
}
