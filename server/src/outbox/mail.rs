//! E-mail notices: the kinds a resident may choose (docs/domain.md "MyKey ID"), in Japanese,
//! through an outbox table and a real SMTP client (lettre) with retries.
//!
//! Two sources fill `mail_outbox`: the ledger's `notices` (points granted, expired, spent at a
//! shop, given back), turned into mail by [`Mailer::run_once`] for residents who chose that
//! kind; and MyKey ID changes ([`queue`], called by `identity`). The mailer then sends what is
//! due, [`SENDING_AT_ONCE`] at a time; a failure is tried again later (1 s, 2 s, 4 s, ... up to
//! an hour), at most [`MAX_ATTEMPTS`] times.
//!
//! Every payment queues a notice, so a round takes notices and mail in batches of [`PER_ROUND`]
//! until it has caught up or spent [`ROUND_BUDGET`]: measured in `docs/benchmarks.md`.

use std::time::Duration;

use anyhow::Context;
use lettre::message::header::ContentType;
use lettre::message::{header::ContentTransferEncoding, Mailbox, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use mykey_core::identity::Notices;
use sqlx::AnyPool;

use crate::ledger::NoticeKind;
use crate::store::outbox::{self, Recipient};
use crate::time::{self, SECOND};

/// Sends per message before giving up.
pub const MAX_ATTEMPTS: i64 = 10;
/// Notices or mails read and handled in one batch (one database transaction of notices).
pub const PER_ROUND: i64 = 500;
/// A round stops taking further batches after this long (the next round goes on).
pub const ROUND_BUDGET: Duration = Duration::from_millis(800);
/// Mails handed to the SMTP relay at the same time, over lettre's pool of connections (sending is
/// bound by each mail's round trips, not by CPU: docs/benchmarks.md "Mail").
pub const SENDING_AT_ONCE: usize = 16;
/// Points this close to their expiry are announced (once per lot): the domain's rule.
pub use mykey_core::rules::EXPIRY_WARNING_DAYS;
/// Rounds run this often (and at once after a MyKey ID change).
pub const EVERY: Duration = Duration::from_secs(1);

/// A notice kind a resident may choose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Points granted (municipal and event points).
    PointsGranted,
    /// Points expired.
    PointsExpired,
    /// Points expire within [`EXPIRY_WARNING_DAYS`] days (the same choice as expired).
    PointsExpiring,
    /// Password or settings changed.
    SettingsChanged,
    /// MyKey ID registered, changed or revoked.
    MykeyIdChanged,
    /// A service ID linked or unlinked; a mandate granted or revoked.
    Payments,
    /// Points spent at a shop (the same choice as [`Kind::Payments`]).
    Payment,
    /// Points given back by a shop (the same choice as [`Kind::Payments`]).
    Refund,
    /// An unspent voucher expired and its points came back (the same choice as
    /// [`Kind::Payments`]).
    VoucherReturned,
}

impl Kind {
    fn chosen(self, n: &Notices) -> bool {
        match self {
            Kind::PointsGranted => n.points_granted,
            Kind::PointsExpired | Kind::PointsExpiring => n.points_expired,
            Kind::SettingsChanged => n.settings_changed,
            Kind::MykeyIdChanged => n.mykey_id_changed,
            Kind::Payments | Kind::Payment | Kind::Refund | Kind::VoucherReturned => n.payments,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::PointsGranted => "points_granted",
            Kind::PointsExpired => "points_expired",
            Kind::PointsExpiring => "points_expiring",
            Kind::SettingsChanged => "settings_changed",
            Kind::MykeyIdChanged => "mykey_id_changed",
            Kind::Payments => "payments",
            Kind::Payment => "payment",
            Kind::Refund => "refund",
            Kind::VoucherReturned => "voucher_returned",
        }
    }
}

const FOOTER: &str = "\n\n――\nこのメールは送信専用のアドレスから自動で送っています。\nお心当たりのない場合は、お住まいの市区町村の窓口にご連絡ください。\n\nマイキープラットフォーム／自治体ポイント管理クラウド\n";

/// The line of a voucher's return: its number and its points.
fn voucher_notice(points: &str, payload: &serde_json::Value) -> String {
    let number = payload["number"]
        .as_u64()
        .and_then(|n| mykey_core::voucher::VoucherNumber::from_stored(n).ok())
        .map(|n| n.to_string())
        .unwrap_or_default();
    format!("ポイント券（番号 {number}）の{points}")
}

/// Subject and body (Japanese) of a notice; `what` says which change or how many points.
pub fn render(kind: Kind, mykey_id: &str, what: &str) -> (String, String) {
    let (subject, text) = match kind {
        Kind::PointsGranted => (
            "【自治体ポイント】ポイントが付与されました",
            format!("{what}が付与されました。\nマイページで残高と有効期限をご確認ください。"),
        ),
        Kind::PointsExpired => {
            ("【自治体ポイント】ポイントが失効しました", format!("有効期限を過ぎた{what}が失効しました。"))
        }
        Kind::PointsExpiring => (
            "【自治体ポイント】まもなく有効期限です",
            format!("次のポイントの有効期限が{EXPIRY_WARNING_DAYS}日以内に迫っています。\n{what}\n期限までにお使いください。"),
        ),
        Kind::SettingsChanged => {
            ("【マイキープラットフォーム】設定が変更されました", format!("{what}が変更されました。"))
        }
        Kind::MykeyIdChanged => ("【マイキープラットフォーム】マイキーIDのお知らせ", what.to_owned()),
        Kind::Payments => ("【自治体ポイント】連携とお支払いのお知らせ", what.to_owned()),
        Kind::Payment => ("【自治体ポイント】ポイントでお支払いしました", what.to_owned()),
        Kind::Refund => ("【自治体ポイント】ポイントが返金されました", what.to_owned()),
        Kind::VoucherReturned => (
            "【自治体ポイント】使われなかったポイント券のポイントが戻りました",
            format!("{what}\n有効期間内に使われなかったため、ポイントをお戻ししました。\nマイページで残高と有効期限をご確認ください。"),
        ),
    };
    (subject.to_owned(), format!("マイキーID {mykey_id} 様\n\n{text}{FOOTER}"))
}

/// The kind of mail a partner has the points cloud send to its member (no resident yet).
pub const PARTNER_COUPON: &str = "partner_coupon";

/// Subject and body (Japanese) of a partner's coupon mailed to its member.
pub fn render_coupon(partner: &str, code: &str, points: i64, expires_on: &str, url: &str) -> (String, String) {
    (
        format!("【{partner}】自治体ポイント交換クーポンのお知らせ"),
        format!(
            "{partner}から自治体ポイント交換クーポンをお届けします。\n\n\
             クーポンコード：{code}\n受け取れるポイント：{points}ポイント（留保ポイント）\n有効期限：{expires_on}\n\n\
             次のアドレスを開くと、マイキーIDでサインインしてコードを使えます。\n{url}\n\n\
             マイキーIDをお持ちでない方は、マイナンバーカードで作成してからお使いください。{FOOTER}"
        ),
    )
}

/// Queues a notice to `to` whatever the resident chose (inside the caller's transaction): a
/// change of the address itself is told to the address it leaves, so that a session someone
/// else took over cannot move the notices away unseen.
pub async fn queue_to_former_address(
    tx: &mut sqlx::AnyConnection,
    resident: i64,
    mykey_id: &str,
    to: &str,
    what: &str,
) -> sqlx::Result<()> {
    let (subject, body) = render(Kind::SettingsChanged, mykey_id, what);
    outbox::insert_mail(tx, resident, Kind::SettingsChanged.name(), to, &subject, &body, time::now()).await
}

/// Queues a notice for the resident behind a MyKey ID row, if they chose its kind and gave an
/// e-mail address (inside the caller's transaction).
pub async fn queue(
    tx: &mut sqlx::AnyConnection,
    resident: i64,
    mykey_id: &str,
    email: Option<&str>,
    notices: &Notices,
    kind: Kind,
    what: &str,
) -> sqlx::Result<bool> {
    let Some(to) = email.filter(|_| kind.chosen(notices)) else { return Ok(false) };
    let (subject, body) = render(kind, mykey_id, what);
    outbox::insert_mail(tx, resident, kind.name(), to, &subject, &body, time::now()).await?;
    Ok(true)
}

/// Where mail goes out.
#[derive(Clone, Debug)]
pub struct MailConfig {
    /// `smtp://host:port` (plain, e.g. a local relay), `smtp://host?tls=required` (STARTTLS)
    /// or `smtps://user:password@host` (TLS); lettre's URL form.
    pub smtp_url: String,
    /// The sender, e.g. `mykey <no-reply@mykey.example>`.
    pub from: String,
}

/// Turns notices into mail and sends it.
pub struct Mailer {
    pool: AnyPool,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

/// What one round did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Round {
    /// Ledger notices handled (mailed or nobody to tell).
    pub notices: usize,
    /// Lots announced as expiring soon (mailed or nobody to tell).
    pub expiring_lots: usize,
    /// Mails sent.
    pub sent: usize,
    /// Mails that failed this time.
    pub failed: usize,
}

impl Mailer {
    /// A mailer over `pool` with `config`.
    pub fn new(pool: AnyPool, config: &MailConfig) -> anyhow::Result<Mailer> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&config.smtp_url)
            .context("the SMTP URL (smtp://host:port, smtps://user:password@host)")?
            .timeout(Some(Duration::from_secs(20)))
            .build();
        let from: Mailbox = config.from.parse().context("the sender address (--mail-from)")?;
        Ok(Mailer { pool, transport, from })
    }

    /// Runs rounds every [`EVERY`] until the process ends.
    pub async fn run(self) {
        let mut tick = tokio::time::interval(EVERY);
        loop {
            tick.tick().await;
            match self.run_once().await {
                Ok(r) if r.failed > 0 => {
                    tracing::warn!(round = ?r, "some mail could not be sent; it will be tried again")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = format!("{e:#}"), "the mailer's round failed"),
            }
        }
    }

    /// One round: ledger notices into the outbox, then send what is due, batch after batch
    /// until caught up or [`ROUND_BUDGET`] is spent.
    pub async fn run_once(&self) -> anyhow::Result<Round> {
        let started = std::time::Instant::now();
        let mut round = Round::default();
        // Turning notices into mail failing (the database) must not keep the mail already
        // queued, security notices among it, from going out.
        let queued = async {
            loop {
                let n = self.notices_to_outbox().await?;
                round.notices += n;
                if n < PER_ROUND as usize || started.elapsed() >= ROUND_BUDGET {
                    break;
                }
            }
            round.expiring_lots = self.expiry_warnings_to_outbox().await?;
            anyhow::Ok(())
        }
        .await;
        if let Err(e) = queued {
            tracing::warn!(error = format!("{e:#}"), "notices could not be turned into mail this round");
        }
        loop {
            let due = outbox::due_mail(&self.pool, time::now(), MAX_ATTEMPTS, PER_ROUND).await?;
            let n = due.len();
            let (sent, failed) = self.send_batch(due).await?;
            round.sent += sent;
            round.failed += failed;
            // A failed mail waits before it is due again, so the loop ends.
            if n < PER_ROUND as usize || failed > 0 || started.elapsed() >= ROUND_BUDGET {
                break;
            }
        }
        Ok(round)
    }

    /// Sends `due`, [`SENDING_AT_ONCE`] at a time, recording each as it finishes (so a later
    /// failure never sends one twice). After [`SENDING_AT_ONCE`] failures in the batch the
    /// rest wait for a later round: a relay that is down costs one timeout per connection, not
    /// one per mail. Returns how many were sent and how many failed.
    async fn send_batch(&self, due: Vec<outbox::QueuedMail>) -> anyhow::Result<(usize, usize)> {
        use futures_util::StreamExt;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let failures = AtomicUsize::new(0);
        let results: Vec<anyhow::Result<Option<bool>>> = futures_util::stream::iter(due)
            .map(|mail| {
                let failures = &failures;
                async move {
                    if failures.load(Ordering::Relaxed) >= SENDING_AT_ONCE {
                        return Ok(None);
                    }
                    match self.send(&mail.to, &mail.subject, mail.body.clone()).await {
                        Ok(()) => {
                            outbox::mail_sent(&self.pool, &mail, time::now()).await?;
                            Ok(Some(true))
                        }
                        Err(e) => {
                            failures.fetch_add(1, Ordering::Relaxed);
                            let wait = (1i64 << mail.attempts.min(12)).min(3600) * SECOND;
                            outbox::mail_failed(&self.pool, &mail, time::now() + wait, &format!("{e:#}")).await?;
                            Ok(Some(false))
                        }
                    }
                }
            })
            .buffer_unordered(SENDING_AT_ONCE)
            .collect()
            .await;
        let (mut sent, mut failed) = (0, 0);
        for r in results {
            match r? {
                Some(true) => sent += 1,
                Some(false) => failed += 1,
                None => {}
            }
        }
        Ok((sent, failed))
    }

    async fn send(&self, to: &str, subject: &str, body: String) -> anyhow::Result<()> {
        let message = Message::builder()
            .from(self.from.clone())
            .to(to.parse().context("the resident's address")?)
            .subject(subject)
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .header(ContentTransferEncoding::Base64)
                    .body(body),
            )?;
        self.transport.send(message).await.context("the SMTP server")?;
        Ok(())
    }

    /// Turns unsent ledger notices into mail for residents who chose them.
    async fn notices_to_outbox(&self) -> anyhow::Result<usize> {
        use sqlx::Connection;
        let rows = outbox::unsent_notices(&self.pool, PER_ROUND).await?;
        let n = rows.len();
        let mut c = self.pool.acquire().await?;
        let mut tx = c.begin().await?;
        let now = time::now();
        // Municipality names, read once per round.
        let mut places: std::collections::HashMap<i64, String> = std::collections::HashMap::new();
        for r in &rows {
            // A notice this build cannot read (written by a newer one) is passed over, logged,
            // rather than holding up every notice after it.
            let Some(kind) = NoticeKind::parse(&r.kind) else {
                tracing::warn!(notice = r.id, kind = %r.kind, "a notice of a kind this build does not know was passed over");
                continue;
            };
            let kind = match kind {
                NoticeKind::PointsGranted => Kind::PointsGranted,
                NoticeKind::PointsExpired => Kind::PointsExpired,
                NoticeKind::Payment => Kind::Payment,
                NoticeKind::Refund => Kind::Refund,
                NoticeKind::VoucherReturned => Kind::VoucherReturned,
            };
            let Some(to) = r.to.as_ref().filter(|to| kind.chosen(&to.notices)) else { continue };
            let Ok(payload) = serde_json::from_str::<serde_json::Value>(&r.payload) else {
                tracing::warn!(notice = r.id, "a notice whose details do not parse was passed over");
                continue;
            };
            let place = match payload["municipality"].as_i64() {
                Some(m) => format!("{}の", place_name(&mut tx, &mut places, m).await?),
                None => String::new(),
            };
            let points = format!("{place}自治体ポイント {}ポイント", payload["points"].as_i64().unwrap_or_default());
            let what = match kind {
                Kind::Payment | Kind::Refund => shop_notice(kind, &points, &payload),
                Kind::VoucherReturned => voucher_notice(&points, &payload),
                _ => points,
            };
            let (subject, body) = render(kind, &to.mykey_id, &what);
            outbox::insert_mail(&mut tx, r.resident, kind.name(), &to.email, &subject, &body, now).await?;
        }
        // The rows read were the first unsent ones by id: one statement marks them all.
        if let Some(last) = rows.last() {
            outbox::mark_notices_sent(&mut tx, last.id, now).await?;
        }
        tx.commit().await?;
        Ok(n)
    }

    /// Announces, once per lot, municipal and event points expiring within
    /// [`EXPIRY_WARNING_DAYS`] days: one mail per resident who chose expiry notices. Reserved
    /// points do not expire (they move home), so they are not announced.
    async fn expiry_warnings_to_outbox(&self) -> anyhow::Result<usize> {
        use sqlx::Connection;
        let now = time::now();
        let until = now + EXPIRY_WARNING_DAYS * 86_400 * SECOND;
        let lots = outbox::expiring_lots(&self.pool, now, until, PER_ROUND).await?;
        let n = lots.len();
        let mut c = self.pool.acquire().await?;
        let mut tx = c.begin().await?;
        let mut places: std::collections::HashMap<i64, String> = std::collections::HashMap::new();
        // Lines per resident, with where to send them.
        let mut mails: std::collections::BTreeMap<i64, ExpiringMail> = std::collections::BTreeMap::new();
        for lot in lots {
            outbox::expiry_announced(&mut tx, lot.id, now).await?;
            let place = match lot.currency.strip_prefix("municipal:").and_then(|m| m.parse::<i64>().ok()) {
                Some(m) => place_name(&mut tx, &mut places, m).await?,
                None => String::new(),
            };
            let expires = time::micros_to_datetime(lot.expires_at);
            let line = format!(
                "・{place}の自治体ポイント {}ポイント（有効期限 {}）",
                lot.remaining,
                expires.with_timezone(&crate::time::japan()).format("%Y年%m月%d日")
            );
            let mail = mails.entry(lot.resident).or_insert_with(|| ExpiringMail { to: lot.to, lines: Vec::new() });
            mail.lines.push(line);
        }
        for (resident, mail) in mails {
            if let Some(to) = mail.to {
                let what = mail.lines.join("\n");
                queue(&mut tx, resident, &to.mykey_id, Some(&to.email), &to.notices, Kind::PointsExpiring, &what)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(n)
    }
}

/// What a payment or refund mail says: where, how many, the transaction, the memo.
fn shop_notice(kind: Kind, points: &str, payload: &serde_json::Value) -> String {
    let shop = payload["shop_name"].as_str().unwrap_or_default();
    let transaction = payload["transaction"].as_str().unwrap_or_default();
    let memo = payload["memo"].as_str().map(|m| format!("\n内容（お店の記載）：{}", plain(m))).unwrap_or_default();
    let (said, unknown) = if kind == Kind::Refund {
        (format!("{shop}から{points}が返金されました。"), "")
    } else {
        (
            format!("{shop}で{points}を使いました。"),
            "\nお心当たりのない場合は、マイページの利用履歴と「継続支払いの許可」をご確認のうえ、\
             お住まいの市区町村の窓口にご連絡ください。",
        )
    };
    format!("{said}{memo}\n取引ID：{transaction}{unknown}")
}

/// A shop's text as one plain line in a mail: without the invisible and direction-changing
/// characters (bidi controls, zero-width, line and paragraph separators; texts are refused
/// with most of them since session 14, older ones may hold them), so a store cannot make its
/// memo look like the points cloud's own lines.
fn plain(text: &str) -> String {
    // What a text may not hold (`mykey_core::text::allowed`), and the invisible marks too.
    let invisible =
        |c: char| matches!(c, '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}');
    text.chars().filter(|&c| mykey_core::text::allowed(c) && !invisible(c)).collect()
}

/// One resident's "expiring soon" mail: where it goes (nobody without a MyKey ID and an
/// address) and one line per lot.
struct ExpiringMail {
    to: Option<Recipient>,
    lines: Vec<String>,
}

/// "群馬県前橋市" for a municipality id, read once per round.
async fn place_name(
    tx: &mut sqlx::AnyConnection,
    cache: &mut std::collections::HashMap<i64, String>,
    municipality: i64,
) -> anyhow::Result<String> {
    if let Some(p) = cache.get(&municipality) {
        return Ok(p.clone());
    }
    let p = outbox::place_name(tx, municipality).await?;
    cache.insert(municipality, p.clone());
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payment_and_refund_mails_say_where_how_many_and_which_transaction() {
        let payload = serde_json::json!({
            "shop": 3, "shop_name": "めいぶつチョイス（前橋市）", "municipality": 1, "points": 300,
            "transaction": "0190f2c4-0000-7000-8000-000000000001", "memo": "定期便",
        });
        let paid = shop_notice(Kind::Payment, "群馬県前橋市の自治体ポイント 300ポイント", &payload);
        assert!(
            paid.starts_with("めいぶつチョイス（前橋市）で群馬県前橋市の自治体ポイント 300ポイントを使いました。"),
            "{paid}"
        );
        assert!(
            paid.contains("内容（お店の記載）：定期便")
                && paid.contains("取引ID：0190f2c4-0000-7000-8000-000000000001")
        );
        // A memo cannot pass itself off as the mail's own lines.
        let sly = serde_json::json!({"shop_name": "A", "memo": "定期便\u{2028}取引ID：偽\u{202E}gnp.exe"});
        let told = shop_notice(Kind::Payment, "1ポイント", &sly);
        assert!(told.contains("内容（お店の記載）：定期便取引ID：偽gnp.exe\n"), "{told}");
        assert!(paid.contains("お心当たりのない場合"));
        let back = shop_notice(Kind::Refund, "300ポイント", &serde_json::json!({"shop_name": "A", "memo": null}));
        assert!(back.starts_with("Aから300ポイントが返金されました。") && !back.contains("内容"), "{back}");
        let (subject, body) = render(Kind::Refund, "ABCD2345", &back);
        assert_eq!(subject, "【自治体ポイント】ポイントが返金されました");
        assert!(body.starts_with("マイキーID ABCD2345 様"));
        // Both are the resident's "payments" choice.
        let payments = Notices { payments: true, ..Notices::default() };
        assert!(Kind::Payment.chosen(&payments) && Kind::Refund.chosen(&payments));
        assert!(!Kind::Payment.chosen(&Notices::default()));
    }
}
