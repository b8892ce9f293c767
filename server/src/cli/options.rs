//! The options every subcommand takes, and the mail options of those that send mail.

use std::path::PathBuf;

use clap::ValueEnum;
use mykey_server::engine::LogConfig;
use mykey_server::log::witness::WitnessClient;
use mykey_server::log::LogSigner;

/// The options every subcommand takes.
#[derive(clap::Args)]
pub(crate) struct Globals {
    /// Database: `sqlite:PATH` (embedded, created if missing) or `postgres://...`.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite:mykey.db", global = true)]
    pub(crate) database_url: String,
    /// Log format.
    #[arg(long, env = "MYKEY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub(crate) log_format: LogFormat,
    /// The tamper-evident log's signing key (a C2SP skey); created with a new key if missing.
    #[arg(long, env = "MYKEY_LOG_KEY_FILE", default_value = "mykey-log.key", global = true)]
    pub(crate) log_key_file: PathBuf,
    /// The secret coupon codes derive from; created when missing. Keep it with the database.
    #[arg(long, env = "MYKEY_COUPON_KEY_FILE", default_value = "mykey-coupon.key", global = true)]
    pub(crate) coupon_key_file: PathBuf,
    /// CA certificates (PEM, one or more) trusted for outbound HTTPS besides the public roots:
    /// webhooks, witnesses and mirrors under a private PKI.
    #[arg(long, env = "MYKEY_EXTRA_CA_FILE", global = true)]
    pub(crate) extra_ca_file: Option<PathBuf>,
    /// The log's origin (first line of its checkpoints) when a new key is created.
    #[arg(long, env = "MYKEY_LOG_ORIGIN", default_value = mykey_server::DEFAULT_LOG_ORIGIN, global = true)]
    pub(crate) log_origin: String,
}

/// E-mail notices.
#[derive(clap::Args)]
pub(crate) struct MailArgs {
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
    pub(crate) fn config(&self) -> Option<mykey_server::outbox::mail::MailConfig> {
        let url = self.smtp_url.clone()?;
        Some(mykey_server::outbox::mail::MailConfig { smtp_url: url, from: self.mail_from.clone() })
    }
}

/// How log lines are written.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum LogFormat {
    /// For people.
    Text,
    /// One JSON object per line, for collectors.
    Json,
}

impl Globals {
    /// The log's signer, from its key file (created when missing).
    pub(crate) fn signer(&self) -> anyhow::Result<LogSigner> {
        LogSigner::from_file(&self.log_key_file, &self.log_origin)
    }

    /// The log's settings with `witnesses` (`URL=VKEY`) and a quorum (default: 2, or fewer
    /// witnesses).
    pub(crate) fn log_config(&self, witnesses: &[String], quorum: Option<usize>) -> anyhow::Result<LogConfig> {
        let witnesses = witnesses.iter().map(|w| WitnessClient::parse(w)).collect::<anyhow::Result<Vec<_>>>()?;
        let quorum = quorum.unwrap_or(witnesses.len().min(2));
        anyhow::ensure!(quorum <= witnesses.len(), "a quorum of {quorum} needs at least {quorum} witnesses");
        Ok(LogConfig { signer: self.signer()?, witnesses, quorum })
    }
}
