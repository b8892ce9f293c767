//! Outbound HTTP(S): every client the server makes (webhooks, witnesses, mirrors, `restore`,
//! the `jobs` command) comes from [`client`]. It speaks TLS with rustls (no OpenSSL), trusts
//! the usual public roots (Mozilla's, from `webpki-roots`) and the CAs of `--extra-ca-file`
//! (a private PKI, a test CA), and ignores the proxy environment variables: where a request
//! goes is decided by the server's own checks (`outbox::address`), never by the environment.

use std::sync::OnceLock;

use anyhow::Context;

/// CAs trusted besides the public roots, for the life of the process.
static EXTRA_CAS: OnceLock<Vec<reqwest::Certificate>> = OnceLock::new();

/// Trusts the CA certificates of a PEM file (one or more) for every outbound connection made
/// from now on; returns how many. Once per process: a second call is refused.
pub fn trust_extra_cas(pem: &[u8]) -> anyhow::Result<usize> {
    let certs = reqwest::Certificate::from_pem_bundle(pem).context("reading the extra CA certificates (PEM)")?;
    anyhow::ensure!(!certs.is_empty(), "the extra CA file holds no certificate");
    let n = certs.len();
    EXTRA_CAS.set(certs).map_err(|_| anyhow::anyhow!("extra CAs are set once per process"))?;
    Ok(n)
}

/// [`trust_extra_cas`] with the file at `path`.
pub fn trust_extra_ca_file(path: &std::path::Path) -> anyhow::Result<usize> {
    let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    trust_extra_cas(&pem).with_context(|| format!("in {}", path.display()))
}

/// A client builder with the server's TLS trust and without proxies; callers add their
/// timeouts, redirects and resolver.
pub fn client() -> reqwest::ClientBuilder {
    let mut b = reqwest::Client::builder().use_rustls_tls().tls_built_in_root_certs(true).no_proxy();
    for ca in EXTRA_CAS.get().into_iter().flatten() {
        b = b.add_root_certificate(ca.clone());
    }
    b
}

/// A plain client of [`client`] (witnesses, mirrors, the CLI).
pub fn plain_client() -> anyhow::Result<reqwest::Client> {
    client().build().context("building the HTTP client")
}
