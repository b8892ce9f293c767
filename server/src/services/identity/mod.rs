//! MyKey IDs (docs/domain.md "MyKey ID"): card login, the candidate dialogue, registration,
//! password login, sessions, change, revocation and re-binding a renewed card. Plain
//! functions over the database; `http/identity.rs` parses and authorises, then calls them.
//!
//! Rules held here: an ID binds to one certificate (issuer + serial) and a certificate to at
//! most one live ID; IDs are never issued twice; candidate counts live per card on the
//! server; passwords are argon2id; every event goes into the usage history.

pub mod card;
pub mod facilities;
pub mod links;
pub mod mandates;

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use mykey_core::identity::{
    check_email, check_password, CandidateAction, CandidateRequest, CardPurpose, Notices, Profile, Registration,
    RegistrationRequest, SigningContext, MAX_FAILED_CHECKS, MAX_GENERATIONS,
};
use mykey_core::{MykeyId, Problem, ProblemKind};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::Connection;

use crate::auth::FailureCounter;
use crate::engine::{Change, ChangeResult, Engine};
use crate::failure;
use crate::outbox::mail::{self, Kind};
use crate::store::identity::{self as id_store, Draft, MykeyIdRow, Session};
use crate::time::{self, Micros};
use card::{CardTrust, Nonces, VerifiedCard};

/// What proves a new link: the open link session the resident confirms, and the event (given
/// the link's id) for its opener's server, if it registered for events.
pub struct LinkProof<'a> {
    /// The session.
    pub session: uuid::Uuid,
    /// The opener's event.
    pub event: &'a (dyn Fn(uuid::Uuid) -> Option<crate::store::embedding::NewEvent> + Send + Sync),
    /// The standing mandate the resident grants with the link, if the session asked for one.
    pub mandate: Option<&'a MandateGrant>,
    /// The partner's or online service's name, for the resident's notice.
    pub service_name: &'a str,
}

/// A standing mandate the resident grants with a link (the link session asked for it;
/// `mandates` makes its row and notice).
#[derive(Clone, Debug)]
pub struct MandateGrant {
    /// Its opaque id (the store charges by it).
    pub id: uuid::Uuid,
    /// The store that may charge.
    pub shop: i64,
    /// The store's municipality: whose points.
    pub municipality: i64,
    /// The store's name, for the notice.
    pub shop_name: String,
    /// The limits the resident saw.
    pub terms: mykey_core::api::MandateTerms,
}

/// How long a session lasts after login.
pub const SESSION_LIFE: Duration = Duration::from_secs(2 * 3600);
/// Duplicate checks allowed per card in one dialogue (past it: `rate-limited`).
pub const MAX_CHECKS: u8 = 10;
/// Duplicate checks per client address and minute.
pub const CHECKS_PER_MINUTE: u32 = 20;
/// Password checks (argon2, about 20 MB and tens of milliseconds each) running at once; more
/// wait, at most [`HASH_WAIT`].
pub const HASHES_AT_ONCE: usize = 4;
/// Longest a password check waits for its turn before the answer is 503.
pub const HASH_WAIT: Duration = Duration::from_secs(10);
/// Login challenges (nonces) per client address and minute: filling the table of pending
/// challenges would block every card login until they expire.
pub const NONCES_PER_MINUTE: u32 = 30;
/// Login challenges per browser (challenge cookie) and minute.
pub const NONCES_PER_BROWSER_PER_MINUTE: u32 = 10;
/// Payment challenges per shop (all its counter terminals) and minute: a stolen terminal key
/// cannot fill the table of pending challenges.
pub const COUNTER_CHALLENGES_PER_MINUTE: u32 = 120;
/// Failed password logins per client address in [`LOGIN_WINDOW`].
pub const FAILED_LOGINS_PER_IP: usize = 20;
/// Failed password logins per MyKey ID in [`LOGIN_WINDOW`].
pub const FAILED_LOGINS_PER_ID: usize = 5;
/// The window of the two limits above.
pub const LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);
/// How long an unfinished registration's candidate dialogue is kept; after it the card starts
/// a new one.
pub const DRAFT_LIFE: Duration = Duration::from_secs(30 * 86_400);

/// What a clean-up removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CleanedUp {
    /// Expired sessions.
    pub sessions: u64,
    /// Drafts older than [`DRAFT_LIFE`].
    pub drafts: u64,
}

type KeyedLimiter<K> = governor::DefaultKeyedRateLimiter<K>;

/// The identity service: card trust, nonces, rate limits and the database.
pub struct Identity {
    engine: Engine,
    trust: Option<CardTrust>,
    nonces: Nonces,
    session_life: Duration,
    /// Registration, ID change and re-binding run one at a time, so the checks before them
    /// hold when they write (the unique indexes stay the last guard).
    writes: tokio::sync::Mutex<()>,
    checks_per_ip: KeyedLimiter<IpAddr>,
    nonces_per_ip: KeyedLimiter<IpAddr>,
    nonces_per_browser: KeyedLimiter<String>,
    counter_nonces: KeyedLimiter<String>,
    /// Turns for the password checks ([`HASHES_AT_ONCE`]).
    hashing: tokio::sync::Semaphore,
    logins_per_ip: FailureCounter<IpAddr>,
    logins_per_id: FailureCounter<String>,
}

/// A new session: the cookie value (shown once) and what it allows.
pub struct NewSession {
    /// The cookie value.
    pub token: String,
    /// Seconds it lasts.
    pub max_age: Duration,
}

fn session_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn micros(d: Duration) -> Micros {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// Hashes a password with argon2id (default parameters: 19 MiB, 2 passes) off the async threads.
async fn hash_password(password: &str) -> Result<String, Problem> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string())
    })
    .await
    .map_err(failure::mykey_id)?
    // password_hash's error is not a std error: keep its text.
    .map_err(|e| failure::mykey_id(anyhow::anyhow!("hashing the password: {e}")))
}

async fn password_matches(password: &str, hash: &str) -> bool {
    let (password, hash) = (password.to_owned(), hash.to_owned());
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
    })
    .await
    .unwrap_or(false)
}

fn check_new_password(password: &str, confirmation: &str) -> Result<(), Problem> {
    check_password(password)
        .map_err(|e| Problem::new(ProblemKind::PasswordRules, e.to_string()).with("field", "password"))?;
    if password != confirmation {
        return Err(Problem::new(ProblemKind::ConfirmationMismatch, "the two passwords differ")
            .with("field", "password_confirmation"));
    }
    Ok(())
}

fn check_contact(
    email: Option<&str>,
    confirmation: Option<&str>,
    notices: &Notices,
) -> Result<Option<String>, Problem> {
    let email = email.map(str::trim).filter(|e| !e.is_empty());
    let confirmation = confirmation.map(str::trim).filter(|e| !e.is_empty());
    match email {
        None if *notices != Notices::default() => Err(Problem::new(
            ProblemKind::InvalidEmail,
            "notices go by e-mail: give an e-mail address or choose no notices",
        )
        .with("field", "email")),
        None => Ok(None),
        Some(e) if !check_email(e) => {
            Err(Problem::new(ProblemKind::InvalidEmail, format!("{e:?} is not an e-mail address"))
                .with("field", "email"))
        }
        Some(e) if confirmation != Some(e) => {
            Err(Problem::new(ProblemKind::ConfirmationMismatch, "the two e-mail addresses differ")
                .with("field", "email_confirmation"))
        }
        Some(e) => Ok(Some(e.to_owned())),
    }
}

fn parse_candidate(s: &str) -> Result<MykeyId, Problem> {
    MykeyId::parse(s).map_err(|e| Problem::new(ProblemKind::InvalidMykeyId, e.to_string()).with("field", "candidate"))
}

fn registration(d: &Draft) -> Result<Registration, Problem> {
    Ok(Registration {
        candidate: d.candidate.as_deref().map(parse_candidate).transpose()?,
        candidate_final: d.candidate_final,
        generations_left: MAX_GENERATIONS.saturating_sub(d.generated),
        failed_checks: d.failed_checks,
    })
}

fn profile(row: &MykeyIdRow, card_state: mykey_core::identity::CardState) -> Result<Profile, Problem> {
    Ok(Profile {
        mykey_id: MykeyId::parse(&row.id).map_err(failure::mykey_id)?,
        resident: row.resident,
        home_municipality: row.home_municipality,
        email: row.email.clone(),
        notices: row.notices.clone(),
        card_not_after: time::micros_to_datetime(row.cert_not_after),
        card_state,
        created_at: time::micros_to_datetime(row.created_at),
    })
}

impl Identity {
    /// Identity over `engine`'s database; card login only with `trust`.
    pub fn new(engine: Engine, trust: Option<CardTrust>) -> Identity {
        Self::with_lives(engine, trust, card::NONCE_LIFE, SESSION_LIFE)
    }

    /// As [`Identity::new`] with other nonce and session lives (tests).
    pub fn with_lives(
        engine: Engine,
        trust: Option<CardTrust>,
        nonce_life: Duration,
        session_life: Duration,
    ) -> Identity {
        let per_minute = |n: u32| governor::Quota::per_minute(NonZeroU32::new(n).expect("non-zero"));
        Identity {
            engine,
            trust,
            nonces: Nonces::new(nonce_life),
            session_life,
            writes: tokio::sync::Mutex::new(()),
            checks_per_ip: governor::RateLimiter::keyed(per_minute(CHECKS_PER_MINUTE)),
            nonces_per_ip: governor::RateLimiter::keyed(per_minute(NONCES_PER_MINUTE)),
            nonces_per_browser: governor::RateLimiter::keyed(per_minute(NONCES_PER_BROWSER_PER_MINUTE)),
            counter_nonces: governor::RateLimiter::keyed(per_minute(COUNTER_CHALLENGES_PER_MINUTE)),
            hashing: tokio::sync::Semaphore::new(HASHES_AT_ONCE),
            logins_per_ip: FailureCounter::new(FAILED_LOGINS_PER_IP, LOGIN_WINDOW),
            logins_per_id: FailureCounter::new(FAILED_LOGINS_PER_ID, LOGIN_WINDOW),
        }
    }

    /// With `n` counter challenges per terminal per minute instead of
    /// [`COUNTER_CHALLENGES_PER_MINUTE`]: for the counter benchmark, whose terminals pay far
    /// faster than a shop's staff can.
    #[cfg(feature = "testing")]
    pub fn with_counter_challenges_per_minute(mut self, n: u32) -> Identity {
        let quota = governor::Quota::per_minute(NonZeroU32::new(n).expect("non-zero"));
        self.counter_nonces = governor::RateLimiter::keyed(quota);
        self
    }

    /// Appends committed usage events to the tamper-evident log. A failure leaves them for
    /// [`Identity::log_pending`] at the next start (the rows are the outbox).
    pub(crate) async fn log(&self, events: Vec<crate::ledger::leaf::UsageEvent>) {
        if let Err(p) = self.engine.apply(Change::LogUsage { events }).await {
            tracing::warn!(problem = ?p, "usage events not logged yet; they will be at the next start");
        }
    }

    /// Removes sessions that ended and drafts older than [`DRAFT_LIFE`] as of `now`, and what
    /// the rate limits remember of quiet addresses (the scheduled jobs run it).
    pub async fn clean_up(&self, now: Micros) -> anyhow::Result<CleanedUp> {
        // The limiters forget addresses and browsers that stopped asking.
        self.checks_per_ip.retain_recent();
        self.nonces_per_ip.retain_recent();
        self.nonces_per_browser.retain_recent();
        self.counter_nonces.retain_recent();
        let sessions = id_store::delete_expired_sessions(self.pool(), now).await?;
        let drafts = id_store::delete_drafts_before(self.pool(), now - micros(DRAFT_LIFE)).await?;
        Ok(CleanedUp { sessions, drafts })
    }

    /// Appends every usage event still missing from the log (after a crash between the
    /// commit and the append). Run at start-up, before requests are served.
    pub async fn log_pending(&self) -> anyhow::Result<u64> {
        let mut logged = 0;
        // Bounded by the unlogged rows, a writer batch at a time.
        loop {
            let events = id_store::unlogged_events(self.pool(), crate::engine::MAX_BATCH as i64).await?;
            if events.is_empty() {
                return Ok(logged);
            }
            let n = events.len() as u64;
            self.engine.apply(Change::LogUsage { events }).await.map_err(|p| anyhow::anyhow!("{}", p.detail))?;
            // The events' leaves are in the tables before the next round reads them.
            self.engine.tables().await.map_err(|p| anyhow::anyhow!("{}", p.detail))?;
            logged += n;
        }
    }

    /// Records a usage event of `row`'s MyKey ID in `tx`, queues its e-mail notice when the
    /// resident chose that kind, commits, then appends the event to the log.
    async fn commit_event(
        &self,
        tx: sqlx::Transaction<'_, sqlx::Any>,
        row: &MykeyIdRow,
        kind: &str,
        notice: Option<(Kind, &str)>,
    ) -> Result<(), Problem> {
        self.commit_events(tx, row, &[kind], notice).await
    }

    /// [`Identity::commit_event`] with several usage events, in order.
    async fn commit_events(
        &self,
        mut tx: sqlx::Transaction<'_, sqlx::Any>,
        row: &MykeyIdRow,
        kinds: &[&str],
        notice: Option<(Kind, &str)>,
    ) -> Result<(), Problem> {
        let mut events = Vec::with_capacity(kinds.len());
        for kind in kinds {
            events.push(
                id_store::insert_event(&mut tx, row.resident, &row.id, kind, time::now())
                    .await
                    .map_err(failure::mykey_id)?,
            );
        }
        if let Some((k, what)) = notice {
            mail::queue(&mut tx, row.resident, &row.id, row.email.as_deref(), &row.notices, k, what)
                .await
                .map_err(failure::mykey_id)?;
        }
        tx.commit().await.map_err(failure::mykey_id)?;
        self.log(events).await;
        Ok(())
    }

    /// The origin card logins are signed for, when card login is configured.
    pub fn origin(&self) -> Option<&str> {
        self.trust.as_ref().map(CardTrust::origin)
    }

    /// Reads the card CRL files again (none when card login is off), sets the CRL metrics
    /// (`mykey_card_crl_age_seconds`, `mykey_card_crl_stale_in_seconds`) and says in the log when
    /// the files could not be read or a CRL is stale (the revocation policy then decides logins).
    pub fn reload_crls(&self) -> Option<card::CrlFreshness> {
        let trust = self.trust.as_ref()?;
        let fresh = match trust.reload_crls() {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = format!("{e:#}"), "reading the card CRLs failed; the ones in use stay");
                trust.crl_freshness(std::time::SystemTime::now())
            }
        };
        if let Some(age) = fresh.age_seconds {
            metrics::gauge!("mykey_card_crl_age_seconds").set(age as f64);
        }
        if let Some(left) = fresh.stale_in_seconds {
            metrics::gauge!("mykey_card_crl_stale_in_seconds").set(left as f64);
            if left < 0 {
                tracing::warn!(stale_for_seconds = -left, "a card CRL is past its next update: renew the CRL files");
            }
        }
        Some(fresh)
    }

    pub(crate) fn pool(&self) -> &sqlx::AnyPool {
        self.engine.store().pool()
    }

    fn trust(&self) -> Result<&CardTrust, Problem> {
        self.trust
            .as_ref()
            .ok_or_else(|| Problem::new(ProblemKind::Unavailable, "card login is not configured on this server"))
    }

    /// A card challenge for `purpose` for the browser holding challenge cookie `binding`,
    /// asking from `ip`.
    pub fn nonce(&self, binding: &str, purpose: CardPurpose, ip: IpAddr) -> Result<(String, Duration), Problem> {
        self.trust()?;
        // The browser's limit first: a browser past it does not use up its address's.
        if self.nonces_per_browser.check_key(&binding.to_owned()).is_err() || self.nonces_per_ip.check_key(&ip).is_err()
        {
            return Err(Problem::new(ProblemKind::RateLimited, "too many login challenges; try again in a minute"));
        }
        self.nonces.issue(binding, purpose, None)
    }

    /// A counter challenge (a payment's, or a balance read's) naming `terms` for the terminal
    /// keys of one shop (`principal`),
    /// limited per shop ([`COUNTER_CHALLENGES_PER_MINUTE`]) rather than per address: a shop's
    /// registers may share one.
    pub fn counter_nonce(
        &self,
        principal: &str,
        purpose: CardPurpose,
        terms: &str,
    ) -> Result<(String, Duration), Problem> {
        self.trust()?;
        if self.counter_nonces.check_key(&principal.to_owned()).is_err() {
            return Err(Problem::new(
                ProblemKind::RateLimited,
                "too many payment challenges at this shop; try again in a minute",
            ));
        }
        self.nonces.issue(principal, purpose, Some(terms))
    }

    /// Takes the nonce (issued for `purpose`), then verifies the token, signed in `context`
    /// (the kind `purpose` is made in): the card behind it.
    pub fn verify_card(
        &self,
        nonce: &str,
        binding: &str,
        purpose: CardPurpose,
        context: &SigningContext,
        token: &mykey_core::identity::AuthToken,
    ) -> Result<VerifiedCard, Problem> {
        if context.word() != purpose.context_word() {
            // A caller's mistake, not the resident's: no signature can be right for it.
            tracing::error!(?purpose, context = context.word(), "a card purpose verified in another kind of context");
            return Err(Problem::new(ProblemKind::Internal, "the server asked for the wrong kind of card signature"));
        }
        let trust = self.trust()?;
        self.nonces.take(nonce, binding, purpose)?;
        trust.verify(token, nonce, context, std::time::SystemTime::now())
    }

    /// Verifies a token over a nonce an earlier request already took: a retry of a payment
    /// that request made, which the ledger only answers again (it moves nothing new).
    pub fn verify_card_again(
        &self,
        nonce: &str,
        context: &SigningContext,
        token: &mykey_core::identity::AuthToken,
    ) -> Result<VerifiedCard, Problem> {
        self.trust()?.verify(token, nonce, context, std::time::SystemTime::now())
    }

    async fn open_session(
        &self,
        resident: Option<i64>,
        method: &str,
        card: Option<VerifiedCard>,
    ) -> Result<NewSession, Problem> {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let token = hex::encode(bytes);
        let now = time::now();
        let s = Session { resident, method: method.to_owned(), card, expires_at: now + micros(self.session_life) };
        id_store::insert_session(self.pool(), &session_hash(&token), &s, now).await.map_err(failure::mykey_id)?;
        Ok(NewSession { token, max_age: self.session_life })
    }

    /// The session behind a cookie value, if it is live.
    pub async fn session(&self, token: &str) -> Result<Option<Session>, Problem> {
        if token.len() != 64 {
            return Ok(None);
        }
        id_store::session(self.pool(), &session_hash(token), time::now()).await.map_err(failure::mykey_id)
    }

    /// Ends a session.
    pub async fn logout(&self, token: &str) -> Result<(), Problem> {
        id_store::delete_session(self.pool(), &session_hash(token)).await.map_err(failure::mykey_id)
    }

    /// The resident whose live MyKey ID `card` is bound to, logged as a card login; none for a
    /// card without one. Opens no browser session (the checkout widget holds no cookie).
    pub async fn card_sign_in(&self, card: &VerifiedCard) -> Result<Option<(i64, Profile)>, Problem> {
        let pool = self.pool();
        let Some(row) = id_store::live_by_card(pool, &card.issuer, &card.serial).await.map_err(failure::mykey_id)?
        else {
            return Ok(None);
        };
        let mut c = pool.acquire().await.map_err(failure::mykey_id)?;
        let e = id_store::insert_event(&mut c, row.resident, &row.id, "login_card", time::now())
            .await
            .map_err(failure::mykey_id)?;
        drop(c);
        self.log(vec![e]).await;
        Ok(Some((row.resident, self.profile_of(&row)?)))
    }

    /// Card login: a session for the card's live MyKey ID, or a registration session.
    pub async fn card_login(
        &self,
        card: VerifiedCard,
    ) -> Result<(mykey_core::identity::CardLogin, NewSession), Problem> {
        match self.card_sign_in(&card).await? {
            Some((resident, profile)) => {
                let session = self.open_session(Some(resident), "card", Some(card)).await?;
                let login = mykey_core::identity::CardLogin { mykey_id: Some(profile.mykey_id), registration: None };
                Ok((login, session))
            }
            None => {
                let pool = self.pool();
                let draft = id_store::draft(pool, &card.issuer, &card.serial).await.map_err(failure::mykey_id)?;
                let login =
                    mykey_core::identity::CardLogin { mykey_id: None, registration: Some(registration(&draft)?) };
                Ok((login, self.open_session(None, "card", Some(card)).await?))
            }
        }
    }

    async fn fresh_id(&self) -> Result<String, Problem> {
        // 32^8 = 2^40 IDs: a few collisions in a row means something else is wrong.
        for _ in 0..16 {
            let mut random = [0u8; 8];
            rand::rngs::OsRng.fill_bytes(&mut random);
            let id = MykeyId::generate_from(random).as_str().to_owned();
            if !id_store::id_exists(self.pool(), &id).await.map_err(failure::mykey_id)? {
                return Ok(id);
            }
        }
        Err(failure::mykey_id(anyhow::anyhow!("no free MyKey ID in 16 tries")))
    }

    /// One step of the candidate dialogue for `card` (registration or ID change).
    pub async fn candidate(
        &self,
        card: &VerifiedCard,
        req: &CandidateRequest,
        ip: IpAddr,
    ) -> Result<Registration, Problem> {
        let _one = self.writes.lock().await;
        let pool = self.pool();
        let mut d = id_store::draft(pool, &card.issuer, &card.serial).await.map_err(failure::mykey_id)?;
        if d.candidate_final {
            return Err(Problem::new(
                ProblemKind::CandidatesUsedUp,
                "the last generated candidate is final: register with it",
            )
            .with("registration", serde_json::to_value(registration(&d)?).map_err(failure::mykey_id)?));
        }
        let now = time::now();
        match req.action {
            CandidateAction::Generate => {
                assert!(d.generated < MAX_GENERATIONS, "a final candidate returned above");
                d.generated += 1;
                d.candidate = Some(self.fresh_id().await?);
                d.candidate_final = d.generated == MAX_GENERATIONS;
            }
            CandidateAction::Check => {
                let typed = req.candidate.as_deref().unwrap_or("");
                let id = parse_candidate(typed)?;
                if d.checks >= MAX_CHECKS || self.checks_per_ip.check_key(&ip).is_err() {
                    return Err(Problem::new(
                        ProblemKind::RateLimited,
                        format!(
                            "too many duplicate checks; at most {MAX_CHECKS} per card and {CHECKS_PER_MINUTE} a minute"
                        ),
                    ));
                }
                d.checks += 1;
                if id_store::id_exists(pool, id.as_str()).await.map_err(failure::mykey_id)? {
                    d.failed_checks = d.failed_checks.saturating_add(1);
                    if d.failed_checks == MAX_FAILED_CHECKS {
                        // Third failure: a generated candidate is offered (not final).
                        d.candidate = Some(self.fresh_id().await?);
                    }
                    id_store::save_draft(pool, &card.issuer, &card.serial, &d, now).await.map_err(failure::mykey_id)?;
                    return Err(Problem::new(
                        ProblemKind::MykeyIdTaken,
                        format!("{id} is already in use; choose another"),
                    )
                    .with("field", "candidate")
                    .with("registration", serde_json::to_value(registration(&d)?).map_err(failure::mykey_id)?));
                }
                d.candidate = Some(id.as_str().to_owned());
            }
        }
        id_store::save_draft(pool, &card.issuer, &card.serial, &d, now).await.map_err(failure::mykey_id)?;
        registration(&d)
    }

    /// The candidate on offer must be the one asked for.
    async fn offered(&self, card: &VerifiedCard, candidate: &str) -> Result<MykeyId, Problem> {
        let id = parse_candidate(candidate)?;
        let d = id_store::draft(self.pool(), &card.issuer, &card.serial).await.map_err(failure::mykey_id)?;
        if d.candidate.as_deref() != Some(id.as_str()) {
            return Err(Problem::new(
                ProblemKind::InvalidRequest,
                "the candidate must be the one generated or checked for this card; check it first",
            )
            .with("field", "candidate"));
        }
        Ok(id)
    }

    async fn not_bound(&self, card: &VerifiedCard) -> Result<(), Problem> {
        if id_store::live_by_card(self.pool(), &card.issuer, &card.serial).await.map_err(failure::mykey_id)?.is_some() {
            return Err(Problem::new(
                ProblemKind::CardAlreadyBound,
                "this card already has a live MyKey ID; log in with it",
            ));
        }
        Ok(())
    }

    /// Registers a MyKey ID for the card of a registration session.
    pub async fn register(
        &self,
        session_token: &str,
        card: &VerifiedCard,
        req: &RegistrationRequest,
    ) -> Result<Profile, Problem> {
        self.not_bound(card).await?;
        let id = self.offered(card, &req.candidate).await?;
        check_new_password(&req.password, &req.password_confirmation)?;
        let email = check_contact(req.email.as_deref(), req.email_confirmation.as_deref(), &req.notices)?;
        let password_hash = hash_password(&req.password).await?;

        let _one = self.writes.lock().await;
        let pool = self.pool();
        self.not_bound(card).await?;
        if id_store::id_exists(pool, id.as_str()).await.map_err(failure::mykey_id)? {
            return Err(Problem::new(ProblemKind::MykeyIdTaken, format!("{id} was taken meanwhile; choose another"))
                .with("field", "candidate"));
        }
        // The resident (and its reserved account) comes from the ledger; an unknown home
        // municipality is refused there before anything is written.
        let resident = match self.engine.apply(Change::Residents { home: req.home_municipality, count: 1 }).await? {
            ChangeResult::Residents(mut v) if v.len() == 1 => v.remove(0).resident,
            other => return Err(failure::mykey_id(anyhow::anyhow!("residents answered {other:?}"))),
        };
        let now = time::now();
        let row = MykeyIdRow {
            id: id.as_str().to_owned(),
            resident,
            status: "live".into(),
            cert_issuer: card.issuer.clone(),
            cert_serial: card.serial.clone(),
            cert_not_after: card.not_after,
            password_hash,
            email,
            notices: req.notices.clone(),
            home_municipality: req.home_municipality,
            created_at: now,
        };
        let mut c = pool.acquire().await.map_err(failure::mykey_id)?;
        let mut tx = c.begin().await.map_err(failure::mykey_id)?;
        id_store::insert_mykey_id(&mut tx, &row).await.map_err(failure::mykey_id)?;
        id_store::delete_draft(&mut tx, &card.issuer, &card.serial).await.map_err(failure::mykey_id)?;
        id_store::attach_resident(&mut tx, &session_hash(session_token), resident).await.map_err(failure::mykey_id)?;
        self.commit_event(tx, &row, "registered", Some((Kind::MykeyIdChanged, "マイキーIDが登録されました。"))).await?;
        self.profile_of(&row)
    }

    /// Password login; failures are rate-limited per address and per MyKey ID.
    pub async fn password_login(
        &self,
        mykey_id: &str,
        password: &str,
        ip: IpAddr,
    ) -> Result<(Profile, NewSession), Problem> {
        let (resident, profile) = self.password_sign_in(mykey_id, password, ip).await?;
        let session = self.open_session(Some(resident), "password", None).await?;
        Ok((profile, session))
    }

    /// Checks a MyKey ID and password without opening a browser session (the checkout widget
    /// holds no cookie): the resident and the profile. Limited and logged as a password login.
    pub async fn password_sign_in(
        &self,
        mykey_id: &str,
        password: &str,
        ip: IpAddr,
    ) -> Result<(i64, Profile), Problem> {
        let limited = || {
            Problem::new(
                ProblemKind::RateLimited,
                "too many failed logins; wait a few minutes, or log in with the card",
            )
        };
        // The per-ID counter is keyed on IDs that can exist; anything else fails at once
        // (counted for the address only), so made-up strings cannot fill the table.
        let id = MykeyId::parse(mykey_id).ok();
        // Counted as failures before the password is checked, so that concurrent guesses cannot
        // all pass the limit first; a success takes its counts back.
        if !self.logins_per_ip.reserve(&ip) {
            return Err(limited());
        }
        let key = id.as_ref().map(|id| id.as_str().to_owned());
        if let Some(k) = &key {
            if !self.logins_per_id.reserve(k) {
                self.logins_per_ip.forgive(&ip);
                return Err(limited());
            }
        }
        let row = match &id {
            Some(id) => id_store::live_by_id(self.pool(), id.as_str()).await.map_err(failure::mykey_id)?,
            None => None,
        };
        let ok = match &row {
            Some(row) => self.password_matches(password, &row.password_hash).await?,
            None => false,
        };
        let (Some(row), true) = (row, ok) else {
            return Err(Problem::new(ProblemKind::LoginFailed, "the MyKey ID or the password is wrong"));
        };
        self.logins_per_ip.forgive(&ip);
        if let Some(k) = &key {
            self.logins_per_id.clear(k);
        }
        let mut c = self.pool().acquire().await.map_err(failure::mykey_id)?;
        let e = id_store::insert_event(&mut c, row.resident, &row.id, "login_password", time::now())
            .await
            .map_err(failure::mykey_id)?;
        drop(c);
        self.log(vec![e]).await;
        Ok((row.resident, self.profile_of(&row)?))
    }

    /// Checks `password` against `hash` when a turn is free ([`HASHES_AT_ONCE`]).
    async fn password_matches(&self, password: &str, hash: &str) -> Result<bool, Problem> {
        let _turn = tokio::time::timeout(HASH_WAIT, self.hashing.acquire())
            .await
            .map_err(|_| Problem::new(ProblemKind::Unavailable, "too many logins at once; try again in a moment"))?
            .expect("the semaphore is never closed");
        Ok(password_matches(password, hash).await)
    }

    pub(crate) async fn live(&self, resident: i64) -> Result<MykeyIdRow, Problem> {
        id_store::live_by_resident(self.pool(), resident)
            .await
            .map_err(failure::mykey_id)?
            .ok_or_else(|| Problem::new(ProblemKind::NotFound, "this session's MyKey ID was revoked"))
    }

    async fn confirm_password(&self, row: &MykeyIdRow, password: &str, ip: IpAddr) -> Result<(), Problem> {
        let limited = || Problem::new(ProblemKind::RateLimited, "too many wrong passwords; wait a few minutes");
        // Reserved before the check, as for logins.
        if !self.logins_per_ip.reserve(&ip) {
            return Err(limited());
        }
        if !self.logins_per_id.reserve(&row.id) {
            self.logins_per_ip.forgive(&ip);
            return Err(limited());
        }
        if !self.password_matches(password, &row.password_hash).await? {
            return Err(Problem::new(ProblemKind::LoginFailed, "the password is wrong").with("field", "password"));
        }
        self.logins_per_ip.forgive(&ip);
        self.logins_per_id.forgive(&row.id);
        Ok(())
    }

    /// `row`'s profile, with where its card's certificate stands now. Password login stays
    /// open whatever it says (a card renewal must not lock a resident away from their points);
    /// the profile tells them to re-bind the renewed card.
    fn profile_of(&self, row: &MykeyIdRow) -> Result<Profile, Problem> {
        use mykey_core::identity::CardState;
        let state = if row.cert_not_after <= time::now() {
            CardState::Expired
        } else if self.trust.as_ref().is_some_and(|t| t.is_revoked(&row.cert_issuer, &row.cert_serial)) {
            CardState::Revoked
        } else {
            CardState::Valid
        };
        profile(row, state)
    }

    /// The resident's MyKey ID.
    pub async fn profile(&self, resident: i64) -> Result<Profile, Problem> {
        self.profile_of(&self.live(resident).await?)
    }

    /// The resident's usage history, newest first.
    pub async fn history(&self, resident: i64) -> Result<Vec<(String, String, Micros)>, Problem> {
        id_store::events(self.pool(), resident, 200).await.map_err(failure::mykey_id)
    }

    /// Changes the password; other sessions end.
    pub async fn change_password(
        &self,
        resident: i64,
        session_token: &str,
        req: &mykey_core::identity::PasswordChange,
        ip: IpAddr,
    ) -> Result<(), Problem> {
        let row = self.live(resident).await?;
        self.confirm_password(&row, &req.current_password, ip).await?;
        check_new_password(&req.password, &req.password_confirmation)?;
        let hash = hash_password(&req.password).await?;
        let mut c = self.pool().acquire().await.map_err(failure::mykey_id)?;
        let mut tx = c.begin().await.map_err(failure::mykey_id)?;
        id_store::set_password(&mut tx, &row.id, &hash).await.map_err(failure::mykey_id)?;
        id_store::delete_sessions_of(&mut tx, resident, Some(&session_hash(session_token)))
            .await
            .map_err(failure::mykey_id)?;
        self.commit_event(tx, &row, "password_changed", Some((Kind::SettingsChanged, "パスワード"))).await
    }

    /// Changes e-mail and notices.
    pub async fn change_settings(
        &self,
        resident: i64,
        req: &mykey_core::identity::SettingsChange,
        ip: IpAddr,
    ) -> Result<Profile, Problem> {
        let row = self.live(resident).await?;
        let email = check_contact(req.email.as_deref(), req.email_confirmation.as_deref(), &req.notices)?;
        self.confirm_password(&row, &req.password, ip).await?;
        let mut c = self.pool().acquire().await.map_err(failure::mykey_id)?;
        let mut tx = c.begin().await.map_err(failure::mykey_id)?;
        id_store::set_settings(&mut tx, &row.id, email.as_deref(), &req.notices).await.map_err(failure::mykey_id)?;
        // The address being left hears of it, whatever it had chosen.
        if let Some(former) = row.email.as_deref().filter(|old| Some(*old) != email.as_deref()) {
            let what = "メールアドレス（このアドレスには今後お知らせが届きません）";
            mail::queue_to_former_address(&mut tx, row.resident, &row.id, former, what)
                .await
                .map_err(failure::mykey_id)?;
        }
        // The notice goes to the settings just saved.
        let changed = MykeyIdRow { email, notices: req.notices.clone(), ..row.clone() };
        let what = "メールアドレス・お知らせの設定";
        self.commit_event(tx, &changed, "settings_changed", Some((Kind::SettingsChanged, what))).await?;
        self.profile(resident).await
    }

    /// The card a live MyKey ID is bound to (its candidate dialogue is keyed by it).
    pub async fn bound_card(&self, resident: i64) -> Result<VerifiedCard, Problem> {
        let row = self.live(resident).await?;
        Ok(VerifiedCard { issuer: row.cert_issuer, serial: row.cert_serial, not_after: row.cert_not_after })
    }

    /// Changes the MyKey ID to the candidate on offer; the old ID is never issued again.
    pub async fn change_id(
        &self,
        resident: i64,
        req: &mykey_core::identity::MykeyIdChange,
        ip: IpAddr,
    ) -> Result<Profile, Problem> {
        let row = self.live(resident).await?;
        self.confirm_password(&row, &req.password, ip).await?;
        let card = self.bound_card(resident).await?;
        let id = self.offered(&card, &req.candidate).await?;
        let _one = self.writes.lock().await;
        if id_store::id_exists(self.pool(), id.as_str()).await.map_err(failure::mykey_id)? {
            return Err(Problem::new(ProblemKind::MykeyIdTaken, format!("{id} was taken meanwhile; choose another")));
        }
        let now = time::now();
        let new = MykeyIdRow { id: id.as_str().to_owned(), created_at: now, ..row.clone() };
        let mut c = self.pool().acquire().await.map_err(failure::mykey_id)?;
        let mut tx = c.begin().await.map_err(failure::mykey_id)?;
        if !id_store::end_mykey_id(&mut tx, &row.id, "changed", now).await.map_err(failure::mykey_id)? {
            return Err(Problem::new(ProblemKind::NotFound, "this MyKey ID is no longer live"));
        }
        id_store::insert_mykey_id(&mut tx, &new).await.map_err(failure::mykey_id)?;
        id_store::delete_draft(&mut tx, &card.issuer, &card.serial).await.map_err(failure::mykey_id)?;
        let away =
            id_store::insert_event(&mut tx, resident, &row.id, "changed_away", now).await.map_err(failure::mykey_id)?;
        let to =
            id_store::insert_event(&mut tx, resident, &new.id, "changed_to", now).await.map_err(failure::mykey_id)?;
        mail::queue(
            &mut tx,
            resident,
            &new.id,
            new.email.as_deref(),
            &new.notices,
            Kind::MykeyIdChanged,
            &format!("マイキーIDが {} から {} に変更されました。", row.id, new.id),
        )
        .await
        .map_err(failure::mykey_id)?;
        tx.commit().await.map_err(failure::mykey_id)?;
        self.log(vec![away, to]).await;
        self.profile_of(&new)
    }

    /// Revokes the MyKey ID; every session of the resident ends. The resident's points stay in
    /// the ledger; the card may register a new MyKey ID.
    pub async fn revoke(&self, resident: i64, password: &str, ip: IpAddr) -> Result<(), Problem> {
        let row = self.live(resident).await?;
        self.confirm_password(&row, password, ip).await?;
        let now = time::now();
        let mut c = self.pool().acquire().await.map_err(failure::mykey_id)?;
        let mut tx = c.begin().await.map_err(failure::mykey_id)?;
        id_store::end_mykey_id(&mut tx, &row.id, "revoked", now).await.map_err(failure::mykey_id)?;
        id_store::delete_sessions_of(&mut tx, resident, None).await.map_err(failure::mykey_id)?;
        self.commit_event(tx, &row, "revoked", Some((Kind::MykeyIdChanged, "マイキーIDが廃止されました。"))).await?;
        Ok(())
    }

    /// Re-binds the MyKey ID to a renewed card, once `password` is confirmed (the session logged
    /// in with the password or the old card; `card` verifies the new card's token, taking its
    /// nonce only after the password was right).
    pub async fn rebind(
        &self,
        resident: i64,
        password: &str,
        ip: IpAddr,
        card: impl FnOnce() -> Result<VerifiedCard, Problem>,
    ) -> Result<Profile, Problem> {
        let _one = self.writes.lock().await;
        let row = self.live(resident).await?;
        // The password first: a session left open somewhere cannot hand the ID to another card.
        self.confirm_password(&row, password, ip).await?;
        let card = &card()?;
        if (row.cert_issuer.as_str(), row.cert_serial.as_str()) == (card.issuer.as_str(), card.serial.as_str()) {
            return Err(Problem::new(
                ProblemKind::InvalidRequest,
                "this is the card already bound; read the renewed card",
            ));
        }
        if id_store::live_by_card(self.pool(), &card.issuer, &card.serial).await.map_err(failure::mykey_id)?.is_some() {
            return Err(Problem::new(ProblemKind::CardAlreadyBound, "the new card already has another live MyKey ID"));
        }
        let mut c = self.pool().acquire().await.map_err(failure::mykey_id)?;
        let mut tx = c.begin().await.map_err(failure::mykey_id)?;
        id_store::set_card(&mut tx, &row.id, card).await.map_err(failure::mykey_id)?;
        self.commit_event(
            tx,
            &row,
            "card_rebound",
            Some((Kind::MykeyIdChanged, "マイキーIDに更新後のマイナンバーカードが登録されました。")),
        )
        .await?;
        self.profile(resident).await
    }
}
