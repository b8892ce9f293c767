//! `mykey-bench`: point payments per second and latency, in-process and over HTTP, on SQLite
//! and PostgreSQL, next to a plain row-locking implementation on the same database.
//!
//! Workload: `--residents` residents with ample points, `--shops` shops, 70% of payments to
//! one hot shop, 1 to 100 points each; `--clients` concurrent clients, each waiting for its
//! answer before sending the next. Every acknowledged payment is durable (SQLite WAL with
//! synchronous=FULL, PostgreSQL synchronous_commit=on). Results go to docs/benchmarks.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use std::future::IntoFuture as _;

use anyhow::Context;
use base64::Engine as _;
use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use mykey_core::api::{GrantRequest, PaymentRequest};
use mykey_server::engine::{Engine, Request};
use mykey_server::testing::Seed;
use mykey_server::LedgerService;
use rand::Rng;
use rust_decimal::Decimal;
use tokio::sync::Mutex;
use uuid::Uuid;

/// mimalloc: the ledger allocates and frees many small rows per payment; glibc's `malloc`
/// and `free` were a fifth of the payment benchmark's samples (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(about = "Benchmark point payments")]
struct Args {
    /// `sqlite` for a fresh file in a temporary folder, or a PostgreSQL admin URL
    /// (a fresh database is created beside it).
    #[arg(long, default_value = "sqlite")]
    database: String,
    /// What to measure.
    #[arg(long, value_enum)]
    mode: Mode,
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Seconds to measure (after a one-second warm-up).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Residents.
    #[arg(long, default_value_t = 100_000)]
    residents: usize,
    /// Shops; shop 1 is the hot one.
    #[arg(long, default_value_t = 100)]
    shops: usize,
    /// Leaves for `log-proofs` and `audit`.
    #[arg(long, default_value_t = 1_000_000)]
    leaves: u64,
    /// `checkout`: the store opens every session before the clock starts, and only the
    /// residents' confirmations are measured.
    #[arg(long)]
    confirm_only: bool,
    /// `coupons`: codes in the batch rendered to a sheet.
    #[arg(long, default_value_t = 10_000)]
    codes: u32,
    /// `notices`: mails queued for the SMTP server.
    #[arg(long, default_value_t = 2_000)]
    mails: u32,
    /// `device-verify`: signed requests made before the clock starts (each nonce is used once).
    #[arg(long, default_value_t = 50_000)]
    requests: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
enum Mode {
    /// The engine called directly.
    InProcess,
    /// The API over loopback HTTP (server and clients share the machine).
    Http,
    /// Baseline: one database transaction per payment, `UPDATE ... WHERE balance >= amount`.
    RowLock,
    /// The log alone: append `--leaves` leaves, then time tree heads and inclusion proofs.
    LogProofs,
    /// `--leaves` payments through the engine, then time the audit of all of them (twice).
    Audit,
    /// A witness over loopback HTTP: `--leaves` add-checkpoint calls, each one leaf larger.
    Witness,
    /// Card login tokens verified per second (chain to the anchor, CRL, RS256 signature), on
    /// one thread and on `--clients` threads; no database.
    CardVerify,
    /// Store checkout over loopback HTTP: `--clients` residents, each in a loop opening a
    /// session (the store's key) and confirming it (a grant minted without password or card);
    /// webhooks go to a local receiver, which times confirm-to-webhook.
    Checkout,
    /// Partners' coupons: `--codes` codes issued in one batch and rendered to the printable
    /// sheet (over loopback HTTP, the partner's key), then redemptions in the coupon widget's
    /// API by `--clients` residents (grants minted without password or card).
    Coupons,
    /// The mailer: `--residents` grants queue as many ledger notices (none of these residents
    /// has an address, so each is read and passed over), timed until a round finds none; then
    /// `--mails` queued mails sent to a local SMTP server (aiosmtpd, scripts/install-deps).
    Notices,
    /// Counter devices' signed requests verified per second on one thread (content digest,
    /// RFC 9421 signature base, P-256 signature, nonce), `--requests` of them, each signed
    /// beforehand; the device's key is looked up once, as a running server caches it.
    DeviceVerify,
    /// Card-consented counter payments over loopback HTTP: `--clients` terminals (enrolled
    /// devices signing every request), each with its resident's virtual card: the signed
    /// challenge, the card's RS256 signature over it (in this process), the signed payment.
    Counter,
}

const MUNICIPALITY: i64 = 1;
const HOT_SHARE: f64 = 0.7;
const START_POINTS: i64 = 1_000_000_000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.mode == Mode::CardVerify {
        return card_verify(args.seconds, args.clients);
    }
    let url = fresh_database(&args.database).await?;
    let result = bench(args, &url).await;
    // A SQLite benchmark database can be gigabytes: remove it (PostgreSQL's stays for a look).
    if let Some(path) = url.strip_prefix("sqlite:") {
        if let Some(dir) = std::path::Path::new(path).parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    result
}

async fn bench(args: Args, url: &str) -> anyhow::Result<()> {
    let url = url.to_owned();
    let backend = if url.starts_with("sqlite:") { "SQLite" } else { "PostgreSQL" };
    eprintln!("setting up {} residents and {} shops on {backend}...", args.residents, args.shops);
    let started = Instant::now();
    match args.mode {
        Mode::LogProofs => return log_proofs(&url, args.leaves).await,
        Mode::Audit => return audit_bench(&url, args.leaves, args.residents, args.shops).await,
        Mode::Witness => return witness_bench(&url, args.leaves).await,
        Mode::Checkout => return checkout_bench(&url, args.clients, args.seconds, args.confirm_only).await,
        Mode::Coupons => return coupons_bench(&url, args.clients, args.seconds, args.codes).await,
        Mode::Notices => return notices_bench(&url, args.residents, args.mails).await,
        Mode::DeviceVerify => return device_verify(&url, args.requests).await,
        Mode::Counter => return counter_bench(&url, args.clients, args.seconds).await,
        _ => {}
    }
    let result = match args.mode {
        Mode::InProcess | Mode::Http => {
            let ledger = LedgerService::open(&url).await?;
            let shops = setup_ledger(&ledger.engine, args.residents, args.shops).await?;
            eprintln!("set up in {:.1} s", started.elapsed().as_secs_f64());
            let measured_from = mykey_server::time::now();
            let outcome = if args.mode == Mode::InProcess {
                let clients = (0..args.clients).map(|_| InProcess(ledger.engine.clone())).collect();
                run(clients, args.seconds, args.residents, shops).await
            } else {
                let listener = mykey_server::bind("127.0.0.1:0".parse()?).await?;
                let addr = listener.local_addr()?;
                let engine = ledger.engine.clone();
                tokio::spawn(mykey_server::serve(engine, Default::default(), listener, Duration::from_secs(3600)));
                let key = mykey_server::auth::create_key(
                    ledger.engine.store(),
                    mykey_server::auth::Role::Operator,
                    0,
                    "bench",
                )
                .await?;
                let mut clients = Vec::with_capacity(args.clients);
                for _ in 0..args.clients {
                    clients.push(Http::connect(addr, &key).await?);
                }
                run(clients, args.seconds, args.residents, shops).await
            };
            checkpoint_gaps(ledger.engine.store(), measured_from).await?;
            outcome
        }
        Mode::RowLock => {
            let pool = row_lock_setup(&url, args.residents, args.shops, args.clients).await?;
            eprintln!("set up in {:.1} s", started.elapsed().as_secs_f64());
            let pool = Arc::new(pool);
            let shops: Vec<i64> = (1..=args.shops as i64).collect();
            let clients = (0..args.clients).map(|_| RowLock(pool.clone())).collect();
            run(clients, args.seconds, args.residents, shops).await
        }
        Mode::LogProofs
        | Mode::Audit
        | Mode::Witness
        | Mode::CardVerify
        | Mode::Checkout
        | Mode::Coupons
        | Mode::Notices
        | Mode::DeviceVerify
        | Mode::Counter => {
            unreachable!("handled above")
        }
    };
    println!(
        "| {backend} | {:?} | {} | {:.0} | {:.2} | {:.2} | {} |",
        args.mode, args.clients, result.per_second, result.p50_ms, result.p99_ms, result.failed
    );
    Ok(())
}

async fn fresh_database(spec: &str) -> anyhow::Result<String> {
    sqlx::any::install_default_drivers();
    let name = format!("mykey_bench_{}", Uuid::new_v4().simple());
    if spec == "sqlite" {
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&dir)?;
        return Ok(format!("sqlite:{}", dir.join("bench.db").display()));
    }
    mykey_server::store::create_postgres_database(spec, &name).await
}

async fn setup_ledger(engine: &Engine, residents: usize, shops: usize) -> anyhow::Result<Vec<i64>> {
    let seed = Seed { municipalities: 1, shops: vec![MUNICIPALITY; shops], residents, partners: false };
    let shop_ids = mykey_server::testing::seed(engine, &seed).await?.shops;
    // Grants in parallel so that they batch.
    let mut set = tokio::task::JoinSet::new();
    for chunk in (1..=residents as i64).collect::<Vec<_>>().chunks(residents.div_ceil(64).max(1)) {
        let (engine, chunk) = (engine.clone(), chunk.to_vec());
        set.spawn(async move {
            for resident in chunk {
                let g = GrantRequest {
                    id: Uuid::new_v4(),
                    resident,
                    municipality: MUNICIPALITY,
                    event: None,
                    amount: Decimal::from(START_POINTS),
                    expires_at: None,
                    memo: None,
                };
                let a = engine.execute(Request::Grant(g), "bench").await;
                if let Err(e) = a {
                    panic!("a set-up request was refused: {e}");
                }
            }
        });
    }
    set.join_all().await;
    Ok(shop_ids)
}

/// Prints how often checkpoints were published while payments ran (issue 3: at least once a
/// second while there are new entries).
async fn checkpoint_gaps(store: &mykey_server::store::Store, from: i64) -> anyhow::Result<()> {
    let times = store.checkpoint_times(from).await?;
    let gaps: Vec<i64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    let max_ms = gaps.iter().max().copied().unwrap_or(0) as f64 / 1000.0;
    let mean_ms = gaps.iter().sum::<i64>() as f64 / gaps.len().max(1) as f64 / 1000.0;
    eprintln!("checkpoints published: {}, between them mean {mean_ms:.0} ms, longest {max_ms:.0} ms", times.len());
    Ok(())
}

/// CPU time per thread of this process (not a PostgreSQL server's), from
/// `/proc/self/task/*/schedstat` (nanoseconds on a CPU): where a run's cycles went, and
/// whether the machine was busy at all.
struct ThreadCpu(Vec<(u32, String, u64)>);

impl ThreadCpu {
    fn read() -> ThreadCpu {
        let mut threads = Vec::new();
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return ThreadCpu(threads) };
        for task in tasks.flatten() {
            let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) else { continue };
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            let ns = std::fs::read_to_string(task.path().join("schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()));
            if let Some(ns) = ns {
                threads.push((tid, comm.trim().to_owned(), ns));
            }
        }
        ThreadCpu(threads)
    }

    /// CPU used by each thread since `before` (threads that started since count from zero).
    fn since(&self, before: &ThreadCpu) -> ThreadCpu {
        let used = self.0.iter().map(|(tid, comm, ns)| {
            let was = before.0.iter().find(|b| b.0 == *tid).map_or(0, |b| b.2);
            (*tid, comm.clone(), ns - was.min(*ns))
        });
        ThreadCpu(used.filter(|t| t.2 > 0).collect())
    }

    /// Prints CPU per payment and the busiest threads as a share of one core.
    fn report(&self, payments: u64, over: Duration) {
        let total: u64 = self.0.iter().map(|t| t.2).sum();
        let mut busiest = self.0.clone();
        busiest.sort_by_key(|t| std::cmp::Reverse(t.2));
        let share = |ns: u64| 100.0 * ns as f64 / over.as_nanos() as f64;
        let threads: Vec<String> =
            busiest.iter().take(6).map(|(tid, comm, ns)| format!("{comm}/{tid} {:.0}%", share(*ns))).collect();
        eprintln!(
            "cpu: {:.1} us per payment, {:.0}% of one core in all; busiest threads: {}",
            total as f64 / 1000.0 / payments.max(1) as f64,
            share(total),
            threads.join(", ")
        );
    }
}

struct Outcome {
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    failed: u64,
}

fn payment(residents: usize, shops: &[i64]) -> PaymentRequest {
    let mut rng = rand::thread_rng();
    let shop = if rng.gen_bool(HOT_SHARE) { shops[0] } else { shops[rng.gen_range(0..shops.len())] };
    PaymentRequest {
        id: Uuid::new_v4(),
        resident: rng.gen_range(1..=residents as i64),
        municipality: MUNICIPALITY,
        event: None,
        shop,
        amount: Decimal::from(rng.gen_range(1..=100)),
        memo: None,
    }
}

/// One benchmark client: sends a payment, waits for the answer, says whether it was taken.
trait Client: Send + 'static {
    fn pay(&mut self, body: PaymentRequest) -> impl std::future::Future<Output = bool> + Send;
}

/// Calls the engine directly.
struct InProcess(Engine);

impl Client for InProcess {
    async fn pay(&mut self, body: PaymentRequest) -> bool {
        self.0.execute(Request::Payment(body), "bench").await.is_ok()
    }
}

/// `POST /v1/payments` over its own keep-alive HTTP/1.1 connection, as a load generator
/// such as wrk does: no pool, retry or redirect layers taking the server's cores.
struct Http {
    sender: hyper::client::conn::http1::SendRequest<http_body_util::Full<hyper::body::Bytes>>,
    host: String,
    authorization: String,
}

impl Http {
    async fn connect(addr: std::net::SocketAddr, key: &str) -> anyhow::Result<Http> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok(Http { sender, host: addr.to_string(), authorization: format!("Bearer {key}") })
    }
}

impl Client for Http {
    async fn pay(&mut self, body: PaymentRequest) -> bool {
        use http_body_util::BodyExt as _;
        let Ok(json) = serde_json::to_vec(&body) else { return false };
        let request = hyper::Request::post("/v1/payments")
            .header(hyper::header::HOST, &self.host)
            .header(hyper::header::AUTHORIZATION, &self.authorization)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(http_body_util::Full::new(hyper::body::Bytes::from(json)));
        let Ok(request) = request else { return false };
        if self.sender.ready().await.is_err() {
            return false;
        }
        match self.sender.send_request(request).await {
            // The body is read to the end, whatever the status, so that the connection takes
            // the next request.
            Ok(r) => {
                let created = r.status() == 201;
                r.into_body().collect().await.is_ok() && created
            }
            Err(_) => false,
        }
    }
}

/// The plain row-locking implementation.
struct RowLock(Arc<sqlx::AnyPool>);

impl Client for RowLock {
    async fn pay(&mut self, body: PaymentRequest) -> bool {
        row_lock_payment(&self.0, &body).await.unwrap_or(false)
    }
}

async fn run<C: Client>(clients: Vec<C>, seconds: u64, residents: usize, shops: Vec<i64>) -> Outcome {
    let warmup = Duration::from_secs(1);
    let measure = Duration::from_secs(seconds);
    let start = Instant::now();
    let hist = Arc::new(Mutex::new(Histogram::<u64>::new(3).expect("histogram")));
    let mut set = tokio::task::JoinSet::new();
    let shops = Arc::new(shops);
    for mut client in clients {
        let (hist, shops) = (hist.clone(), shops.clone());
        set.spawn(async move {
            let mut local = Histogram::<u64>::new(3).expect("histogram");
            let (mut ok, mut failed) = (0u64, 0u64);
            // Bounded by time and by count.
            for _ in 0..100_000_000u64 {
                let t = Instant::now();
                if t - start >= warmup + measure {
                    break;
                }
                let done = client.pay(payment(residents, &shops)).await;
                if t - start >= warmup {
                    local.record(t.elapsed().as_micros() as u64).expect("in range");
                    if done {
                        ok += 1;
                    } else {
                        failed += 1;
                    }
                }
            }
            hist.lock().await.add(&local).expect("same bounds");
            (ok, failed)
        });
    }
    tokio::time::sleep_until((start + warmup).into()).await;
    let cpu_from = ThreadCpu::read();
    tokio::time::sleep(measure).await;
    let cpu = ThreadCpu::read().since(&cpu_from);
    let (mut ok, mut failed) = (0, 0);
    for (o, f) in set.join_all().await {
        ok += o;
        failed += f;
    }
    cpu.report(ok, measure);
    let h = hist.lock().await;
    Outcome {
        per_second: ok as f64 / measure.as_secs_f64(),
        p50_ms: h.value_at_quantile(0.50) as f64 / 1000.0,
        p99_ms: h.value_at_quantile(0.99) as f64 / 1000.0,
        failed,
    }
}

async fn row_lock_setup(url: &str, residents: usize, shops: usize, clients: usize) -> anyhow::Result<sqlx::AnyPool> {
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(clients.clamp(1, 64) as u32)
        .after_connect(|conn, _| {
            Box::pin(async move {
                if conn.backend_name() == "SQLite" {
                    sqlx::query("PRAGMA journal_mode = WAL").execute(&mut *conn).await?;
                    sqlx::query("PRAGMA synchronous = FULL").execute(&mut *conn).await?;
                    sqlx::query("PRAGMA busy_timeout = 60000").execute(&mut *conn).await?;
                }
                Ok(())
            })
        })
        .connect(&format!("{url}{}", if url.starts_with("sqlite:") { "?mode=rwc" } else { "" }))
        .await?;
    for ddl in [
        "CREATE TABLE rl_accounts (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL)",
        "CREATE TABLE rl_postings (id TEXT NOT NULL, account_id BIGINT NOT NULL, amount BIGINT NOT NULL, created_at BIGINT NOT NULL)",
    ] {
        sqlx::query(ddl).execute(&pool).await?;
    }
    // Residents are ids 1..=residents, shops 10_000_000 + shop.
    let rows: Vec<(i64, i64)> = (1..=residents as i64)
        .map(|r| (r, START_POINTS))
        .chain((1..=shops as i64).map(|s| (10_000_000 + s, 0)))
        .collect();
    for chunk in rows.chunks(5000) {
        let mut sql = String::from("INSERT INTO rl_accounts (id, balance) VALUES ");
        for (i, (id, b)) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!("({id},{b})"));
        }
        sqlx::query(&sql).execute(&pool).await?;
    }
    Ok(pool)
}

/// The plain implementation: one database transaction per payment, the balance check done
/// by the row lock of `UPDATE ... WHERE balance >= amount`.
async fn row_lock_payment(pool: &sqlx::AnyPool, p: &PaymentRequest) -> anyhow::Result<bool> {
    let amount: i64 = p.amount.try_into()?;
    let mut tx = pool.begin().await?;
    let debited = sqlx::query("UPDATE rl_accounts SET balance = balance - $1 WHERE id = $2 AND balance >= $1")
        .bind(amount)
        .bind(p.resident)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if debited != 1 {
        tx.rollback().await?;
        return Ok(false);
    }
    sqlx::query("UPDATE rl_accounts SET balance = balance + $1 WHERE id = $2")
        .bind(amount)
        .bind(10_000_000 + p.shop)
        .execute(&mut *tx)
        .await?;
    let now = mykey_server::time::now();
    sqlx::query(
        "INSERT INTO rl_postings (id, account_id, amount, created_at) VALUES ($1, $2, $3, $4), ($1, $5, $6, $4)",
    )
    .bind(p.id.to_string())
    .bind(p.resident)
    .bind(-amount)
    .bind(now)
    .bind(10_000_000 + p.shop)
    .bind(amount)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Appends `leaves` synthetic leaves straight to the log's tables, then times tree heads and
/// inclusion proofs at that size.
async fn log_proofs(url: &str, leaves: u64) -> anyhow::Result<()> {
    use mykey_server::ledger::Changes;
    use mykey_server::log::Log;
    let store = mykey_server::store::Store::connect(url).await?;
    store.migrate().await?;
    let mut conn = store.writer_connection().await?;
    let mut log = Log::default();
    let started = Instant::now();
    let mut done = 0u64;
    // Bounded: `leaves` appends in chunks of 100,000.
    while done < leaves {
        let n = (leaves - done).min(100_000);
        let mut ch = Changes::default();
        for i in 0..n {
            let (leaf, stored) = log.append((done + i) as i64, (done + i).to_be_bytes().to_vec());
            ch.log_leaves.push(leaf);
            ch.log_hashes.extend(stored);
        }
        store.materialize(&mut conn, &ch, &[], 0).await?;
        done += n;
    }
    let append_s = started.elapsed().as_secs_f64();
    let t = Instant::now();
    let root = mykey_server::log::tree_head(&store, leaves).await?;
    let head_ms = t.elapsed().as_secs_f64() * 1000.0;
    let mut hist = Histogram::<u64>::new(3)?;
    let mut rng = rand::thread_rng();
    for _ in 0..1000 {
        let index = rng.gen_range(0..leaves);
        let t = Instant::now();
        let proof = mykey_server::log::inclusion_proof(&store, index, leaves).await?;
        hist.record(t.elapsed().as_micros() as u64)?;
        let leaf = mykey_core::merkle::leaf_hash(&index.to_be_bytes());
        mykey_core::merkle::verify_inclusion(index, leaves, &leaf, &proof, &root)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    println!(
        "| log | {leaves} leaves | appended and stored in {append_s:.1} s ({:.0} leaves/s) | tree head {head_ms:.2} ms | inclusion proof p50 {:.3} ms, p99 {:.3} ms (1,000 random leaves, each verified) |",
        leaves as f64 / append_s,
        hist.value_at_quantile(0.5) as f64 / 1000.0,
        hist.value_at_quantile(0.99) as f64 / 1000.0
    );

    // The same proofs served: the server started on this database answers
    // `GET /v1/log/inclusion` over loopback HTTP once its checkpoint covers every leaf.
    let ledger = LedgerService::open(url).await?;
    let listener = mykey_server::bind("127.0.0.1:0".parse()?).await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(mykey_server::serve(ledger.engine.clone(), Default::default(), listener, Duration::from_secs(3600)));
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let note = client.get(format!("{base}/log/checkpoint")).send().await?.text().await?;
        if note.lines().nth(1) == Some(&leaves.to_string()) {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "no checkpoint of {leaves} leaves: {note}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut served = Histogram::<u64>::new(3)?;
    for i in 0..1100 {
        let index = rng.gen_range(0..leaves);
        let t = Instant::now();
        let body: serde_json::Value = client
            .get(format!("{base}/v1/log/inclusion?index={index}&size={leaves}"))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let micros = t.elapsed().as_micros() as u64;
        let proof = body["proof"]
            .as_array()
            .context("a proof")?
            .iter()
            .map(|h| {
                let bytes = base64::engine::general_purpose::STANDARD.decode(h.as_str().unwrap_or_default())?;
                <[u8; 32]>::try_from(bytes).map_err(|_| anyhow::anyhow!("a 32-byte hash"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let leaf = mykey_core::merkle::leaf_hash(&index.to_be_bytes());
        mykey_core::merkle::verify_inclusion(index, leaves, &leaf, &proof, &root)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        // The first 100 warm the connection and the server.
        if i >= 100 {
            served.record(micros)?;
        }
    }
    println!(
        "| log | {leaves} leaves | served over loopback HTTP: inclusion proof p50 {:.3} ms, p99 {:.3} ms (1,000 random leaves, each verified) |",
        served.value_at_quantile(0.5) as f64 / 1000.0,
        served.value_at_quantile(0.99) as f64 / 1000.0
    );
    ledger.close().await;
    Ok(())
}

/// `leaves` payments through the engine (64 clients), then the audit of every one.
async fn audit_bench(url: &str, leaves: u64, residents: usize, shops: usize) -> anyhow::Result<()> {
    let ledger = LedgerService::open(url).await?;
    let shop_ids = setup_ledger(&ledger.engine, residents, shops).await?;
    let setup_leaves = residents as u64;
    let payments = leaves.saturating_sub(setup_leaves);
    let engine = ledger.engine.clone();
    let per_client = payments.div_ceil(64);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..64 {
        let (engine, shops) = (engine.clone(), shop_ids.clone());
        set.spawn(async move {
            for _ in 0..per_client {
                let a = engine.execute(Request::Payment(payment(residents, &shops)), "bench").await;
                if let Err(e) = a {
                    panic!("a set-up request was refused: {e}");
                }
            }
        });
    }
    set.join_all().await;
    let total = setup_leaves + per_client * 64;
    // Wait (bounded) for a checkpoint of everything.
    for _ in 0..600 {
        if engine.checkpoint().is_some_and(|p| p.size >= total) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let note = engine.checkpoint().context("a checkpoint")?.note.clone();
    let vkey = engine.log_vkey().to_owned();
    ledger.close().await;
    let store = mykey_server::store::Store::connect(url).await?;
    let key = mykey_core::note::VerifierKey::parse(&vkey).map_err(|e| anyhow::anyhow!("{e}"))?;
    let cp = mykey_server::integrity::audit::verified_checkpoint(&note, &key)?;
    // Twice: right after the write burst (PostgreSQL then still sets hint bits on every
    // page it reads, beside autovacuum), and again on the settled database, as a periodic
    // audit finds it.
    for when in ["right after the writes", "again"] {
        let t = Instant::now();
        let report = mykey_server::integrity::audit::audit(&store, &cp, |_| {}).await?;
        let secs = t.elapsed().as_secs_f64();
        anyhow::ensure!(report.clean(), "the audit found {:?}", report.findings.first());
        println!(
            "| audit ({when}) | {} transactions | {secs:.2} s | {:.0} per second |",
            report.checked,
            report.checked as f64 / secs
        );
    }
    Ok(())
}

/// Times `calls` sequential add-checkpoint requests to a witness on loopback, each for a tree
/// one leaf larger than the last, with its consistency proof; the witness syncs its state
/// before answering.
async fn witness_bench(url: &str, calls: u64) -> anyhow::Result<()> {
    use mykey_core::merkle;
    use mykey_server::integrity::witness::Witness;
    use mykey_server::log::witness::request_body;
    let log = mykey_server::log::LogSigner::generate("mykey.bench/log");
    let log_key = mykey_core::note::VerifierKey::parse(&log.vkey()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let key = mykey_core::note::SignerKey::witness("witness.bench/w1", [7; 32]).map_err(|e| anyhow::anyhow!("{e}"))?;
    let witness = std::sync::Arc::new(Witness::open(url, key, vec![log_key]).await?);
    let listener = mykey_server::bind("127.0.0.1:0".parse()?).await?;
    let endpoint = format!("http://{}/add-checkpoint", listener.local_addr()?);
    tokio::spawn(axum::serve(listener, witness.router()).into_future());
    let client = reqwest::Client::new();
    let mut leaves = Vec::new();
    let mut hist = Histogram::<u64>::new(3)?;
    let mut old = 0u64;
    for i in 0..calls.min(100_000) {
        leaves.push(merkle::leaf_hash(&i.to_be_bytes()));
        let size = leaves.len() as u64;
        let note = log.checkpoint(size, merkle::root(&leaves));
        let proof = if old == 0 { Vec::new() } else { merkle::consistency_proof(old as usize, &leaves) };
        let body = request_body(old, &proof, &note);
        let t = Instant::now();
        let res = client.post(&endpoint).body(body).send().await?;
        let status = res.status();
        res.bytes().await?;
        hist.record(t.elapsed().as_micros() as u64)?;
        anyhow::ensure!(status.is_success(), "the witness answered {status}");
        old = size;
    }
    println!(
        "| witness add-checkpoint | {} calls | p50 {:.2} ms | p99 {:.2} ms |",
        hist.len(),
        hist.value_at_quantile(0.5) as f64 / 1000.0,
        hist.value_at_quantile(0.99) as f64 / 1000.0
    );
    Ok(())
}

/// Verifies the same 64 tokens (each for its own nonce) again and again: the server's work
/// per card login, without the nonce look-up (a hash-map removal) and the database.
fn card_verify(seconds: u64, threads: usize) -> anyhow::Result<()> {
    use mykey_core::card::jpki::{self, Pin};
    use mykey_core::identity::AuthToken;
    use mykey_server::services::identity::card::{CardTrust, UnknownRevocation};
    use std::time::SystemTime;

    let origin = "https://mykey.example";
    let ca = mykey_virtual_card::DemoCa::generate(&mut rand::rngs::OsRng, SystemTime::now())?;
    let mut card = mykey_virtual_card::VirtualCard::issue(&ca, &mut rand::rngs::OsRng, "1234", SystemTime::now())?;
    let now = SystemTime::now();
    // A CRL with 10,000 other serials: a realistic list to search.
    let revoked: Vec<Vec<u8>> =
        (0..10_000u32).map(|i| [0x7F, 0x11].iter().copied().chain(i.to_be_bytes()).collect()).collect();
    let crl = ca.crl(1, &revoked, now, now + Duration::from_secs(3600))?;
    let trust = CardTrust::new(&[ca.certificate().to_vec()], &[crl], UnknownRevocation::Deny, origin)?;
    let pin = Pin::parse("1234").map_err(|e| anyhow::anyhow!("{e}"))?;
    let tokens = (0..64)
        .map(|i| {
            let nonce = format!("bench-nonce-{i:02}-0123456789abcdef0123456789abcdef");
            let sig = pollster::block_on(jpki::authenticate(&mut card, origin, &nonce, &pin))
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok((nonce, AuthToken::rs256(card.auth_certificate(), &sig)))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    for (nonce, token) in &tokens {
        trust
            .verify(token, nonce, &mykey_core::identity::SigningContext::Web, SystemTime::now())
            .map_err(|p| anyhow::anyhow!("{}", p.detail))?;
    }
    for n in [1, threads.max(1)] {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let results: Vec<(u64, Histogram<u64>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..n)
                .map(|t| {
                    let (trust, tokens) = (&trust, &tokens);
                    scope.spawn(move || {
                        let mut h = Histogram::<u64>::new(3).expect("histogram");
                        let mut done = 0u64;
                        while Instant::now() < deadline {
                            let (nonce, token) = &tokens[(done as usize + t) % tokens.len()];
                            let started = Instant::now();
                            trust
                                .verify(token, nonce, &mykey_core::identity::SigningContext::Web, SystemTime::now())
                                .expect("a valid token");
                            h.record(started.elapsed().as_micros() as u64).expect("in range");
                            done += 1;
                        }
                        (done, h)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("no panic")).collect()
        });
        let total: u64 = results.iter().map(|r| r.0).sum();
        let mut h = Histogram::<u64>::new(3)?;
        for (_, x) in &results {
            h.add(x)?;
        }
        println!(
            "card-verify threads={n}: {:.0} tokens/s, p50 {} us, p99 {} us",
            total as f64 / seconds as f64,
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99)
        );
    }
    Ok(())
}

/// [`Mode::DeviceVerify`]: a device enrolled as the terminal page does, `requests` signed
/// payment bodies, then each verified as the server's layer does.
async fn device_verify(url: &str, requests: usize) -> anyhow::Result<()> {
    use mykey_server::auth::devices::{Devices, SignedRequest};
    use mykey_server::testing::device::{new_key, TestDevice};

    let ledger = LedgerService::open(url).await?;
    let store = ledger.engine.store();
    let devices = Devices::default();
    let code = devices.pairing_code(store, 1).await.map_err(|p| anyhow::anyhow!("{}", p.detail))?;
    let (key, public) = new_key();
    let enrolment = mykey_core::api::EnrolmentRequest {
        code: code.code,
        name: mykey_core::api::DeviceName::parse("bench")?,
        public_key: public,
    };
    let device = devices.enrol(store, &enrolment).await.map_err(|p| anyhow::anyhow!("{}", p.detail))?;
    let device = TestDevice::from_parts(device.id, 1, key);
    let url = "https://mykey.example/v1/shops/1/counter-payments";
    let bodies: Vec<Vec<u8>> = (0..requests)
        .map(|i| {
            serde_json::to_vec(&serde_json::json!({
                "id": Uuid::new_v4(), "municipality": 1, "amount": 100 + i % 900,
                "nonce": format!("payment:payment,shop=1,municipality=1,amount={}:{i:032}", 100 + i % 900),
                "token": "x".repeat(2_400),
            }))
        })
        .collect::<Result<_, _>>()?;
    let signed: Vec<_> = bodies.iter().map(|b| device.sign("POST", url, b)).collect();
    let mut h = Histogram::<u64>::new(3)?;
    let started = Instant::now();
    for (body, headers) in bodies.iter().zip(&signed) {
        let r = SignedRequest {
            target: mykey_core::device::Target {
                method: "POST",
                authority: "mykey.example",
                path: "/v1/shops/1/counter-payments",
                query: None,
            },
            signature_input: &headers.signature_input,
            signature: &headers.signature,
            content_digest: Some(&headers.content_digest),
            body,
        };
        let one = Instant::now();
        devices.verify(store, &r, mykey_server::time::now()).await.map_err(|p| anyhow::anyhow!("{}", p.detail))?;
        h.record(one.elapsed().as_micros() as u64)?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "device-verify threads=1: {requests} signed requests (bodies of {} bytes) in {elapsed:.2} s: {:.0}/s, p50 {} us, p99 {} us",
        bodies[0].len(),
        requests as f64 / elapsed,
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99)
    );
    ledger.close().await;
    Ok(())
}

/// The `p` quantile of sorted `durations`, in milliseconds (0 for none).
fn percentile_ms(durations: &[Duration], p: f64) -> f64 {
    let at = ((durations.len() as f64 * p) as usize).min(durations.len().saturating_sub(1));
    durations.get(at).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// [`Mode::Counter`]: the whole counter path over HTTP, as `clients` terminals run it. Each
/// terminal's resident registered a MyKey ID with a virtual card beforehand (card login,
/// candidate, registration: the web app's path); the clock covers challenge, card signature and
/// payment, which is also the card tap to paid time without the reader's radio.
async fn counter_bench(url: &str, clients: usize, seconds: u64) -> anyhow::Result<()> {
    use mykey_core::card::jpki::{self, Pin};
    use mykey_core::identity::{AuthToken, SigningContext};
    use mykey_server::services::identity::card::{CardTrust, UnknownRevocation};
    use mykey_server::testing::device::TestDevice;
    use mykey_virtual_card::{DemoCa, VirtualCard};
    use serde_json::{json, Value};

    let ledger = LedgerService::open(url).await?;
    let engine = ledger.engine.clone();
    let shop = setup_ledger(&engine, 0, 1).await?[0];
    let listener = mykey_server::bind("127.0.0.1:0".parse()?).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let now = std::time::SystemTime::now();
    let ca = DemoCa::generate(&mut rand::rngs::OsRng, now)?;
    let trust = CardTrust::new(&[ca.certificate().to_vec()], &[], UnknownRevocation::Allow, &base)?;
    let identity = Arc::new(
        mykey_server::services::identity::Identity::with_lives(
            engine.clone(),
            Some(trust),
            Duration::from_secs(60),
            Duration::from_secs(3600),
        )
        .with_counter_challenges_per_minute(u32::MAX),
    );
    {
        let (engine, identity) = (engine.clone(), identity.clone());
        // Loopback is a trusted proxy: each resident's browser is its own address behind it, as
        // the per-address limits on logins expect.
        let trusted_proxies = vec!["127.0.0.1/32".parse()?];
        let site = mykey_server::ServeConfig { trusted_proxies, ..Default::default() };
        tokio::spawn(mykey_server::serve_with(engine, identity, site, listener, Duration::from_secs(3600)));
    }
    let store_key =
        mykey_server::auth::create_key(engine.store(), mykey_server::auth::Role::Store, shop, "bench").await?;

    // Residents with cards, as the web app registers them; then points and a terminal each.
    let pin = Pin::parse("1234")?;
    let mut terminals = Vec::with_capacity(clients);
    for i in 0..clients {
        let address = format!("10.0.{}.{}", i / 256, i % 256);
        let mut card = VirtualCard::issue(&ca, &mut rand::rngs::OsRng, "1234", now - Duration::from_secs(60))?;
        let http = reqwest::Client::new();
        // The browser's cookies (the login challenge's, then the session's), kept by hand.
        let jar = std::sync::Mutex::new(std::collections::BTreeMap::<String, String>::new());
        let post = |path: &str, body: Value| {
            let cookies: Vec<String> =
                jar.lock().expect("not poisoned").iter().map(|(k, v)| format!("{k}={v}")).collect();
            let req = http
                .post(format!("{base}{path}"))
                .header("origin", &base)
                .header("x-forwarded-for", &address)
                .header("cookie", cookies.join("; "))
                .json(&body);
            let (jar, path) = (&jar, path.to_owned());
            async move {
                let res = req.send().await?;
                for c in res.headers().get_all("set-cookie") {
                    let pair = c.to_str()?.split(';').next().unwrap_or_default();
                    if let Some((k, v)) = pair.split_once('=') {
                        jar.lock().expect("not poisoned").insert(k.trim().to_owned(), v.to_owned());
                    }
                }
                anyhow::ensure!(res.status().is_success(), "{path}: {}", res.status());
                anyhow::Ok(res.json::<Value>().await?)
            }
        };
        let nonce =
            post("/v1/auth/nonce", json!({"purpose": "login"})).await?["nonce"].as_str().unwrap_or_default().to_owned();
        let cert = jpki::read_auth_certificate(&mut card).await?;
        let sig = jpki::authenticate(&mut card, &base, &nonce, &pin).await?;
        post("/v1/auth/card", json!({"nonce": nonce, "token": AuthToken::rs256(&cert, &sig)})).await?;
        let candidate = post("/v1/registration/candidates", json!({"action": "generate"})).await?["candidate"].clone();
        let done = post(
            "/v1/mykey-ids",
            json!({"candidate": candidate, "password": "abc123!x", "password_confirmation": "abc123!x",
                   "notices": {"points_granted": false, "points_expired": false, "settings_changed": false,
                               "mykey_id_changed": false, "payments": false},
                   "home_municipality": MUNICIPALITY}),
        )
        .await?;
        let resident = done["resident"].as_i64().context("a resident")?;
        let grant = GrantRequest {
            id: Uuid::new_v4(),
            resident,
            municipality: MUNICIPALITY,
            event: None,
            amount: Decimal::from(START_POINTS),
            expires_at: None,
            memo: None,
        };
        engine.execute(Request::Grant(grant), "bench").await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let device = TestDevice::enrol(&reqwest::Client::new(), &base, &store_key, shop).await?;
        terminals.push((device, card, cert));
    }

    let warmup = Duration::from_secs(1);
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for (device, mut card, cert) in terminals {
        let (base, pin) = (base.clone(), pin.clone());
        set.spawn(async move {
            let http = reqwest::Client::new();
            let context = SigningContext::Counter { shop, device: device.id };
            let signed_at = context.signed_origin(&base);
            let send = |path: &str, body: &Value| {
                let url = format!("{base}{path}");
                let req = device.request(&http, reqwest::Method::POST, &url, Some(body));
                async move {
                    let res = req.send().await?;
                    let status = res.status();
                    let v: Value = res.json().await?;
                    anyhow::ensure!(status.is_success(), "{status}: {v}");
                    anyhow::Ok(v)
                }
            };
            let mut latencies = Vec::new();
            while start.elapsed() < warmup + Duration::from_secs(seconds) {
                let t = Instant::now();
                let amount = rand::thread_rng().gen_range(1..=100);
                let terms = json!({"kind": "payment", "municipality": MUNICIPALITY, "amount": amount});
                let challenge = send(&format!("/v1/shops/{shop}/counter-challenges"), &terms).await?;
                let nonce = challenge["nonce"].as_str().unwrap_or_default().to_owned();
                let sig = jpki::authenticate(&mut card, &signed_at, &nonce, &pin).await?;
                let payment = json!({"id": Uuid::new_v4(), "municipality": MUNICIPALITY, "amount": amount,
                                     "nonce": nonce, "token": AuthToken::rs256(&cert, &sig)});
                send(&format!("/v1/shops/{shop}/counter-payments"), &payment).await?;
                if t - start >= warmup {
                    latencies.push(t.elapsed());
                }
            }
            anyhow::Ok(latencies)
        });
    }
    let mut latencies = Vec::new();
    for r in set.join_all().await {
        latencies.extend(r?);
    }
    latencies.sort();
    let backend = if url.starts_with("sqlite:") { "SQLite" } else { "PostgreSQL" };
    println!(
        "| {backend} | {clients} | {:.0} | {:.1} | {:.1} |",
        latencies.len() as f64 / seconds as f64,
        percentile_ms(&latencies, 0.5),
        percentile_ms(&latencies, 0.99)
    );
    eprintln!("columns: database | terminals | card-consented payments/s | challenge to paid p50 ms | p99 ms");
    engine.check_invariants().await;
    Ok(())
}

/// [`Mode::Checkout`]: confirmed checkouts per second, confirm latency, and confirm to webhook.
async fn checkout_bench(url: &str, clients: usize, seconds: u64, confirm_only: bool) -> anyhow::Result<()> {
    let ledger = LedgerService::open(url).await?;
    let engine = ledger.engine.clone();
    let shops = setup_ledger(&engine, clients, 1).await?;
    let shop = shops[0];
    // The store's server receives the webhooks: when each session's event arrived.
    let arrived: Arc<std::sync::Mutex<std::collections::HashMap<Uuid, Instant>>> = Default::default();
    let hook = {
        let arrived = arrived.clone();
        axum::Router::new().route(
            "/hooks",
            axum::routing::post(move |body: String| {
                let arrived = arrived.clone();
                async move {
                    let e: mykey_core::api::CheckoutEvent = serde_json::from_str(&body).expect("an event");
                    arrived.lock().expect("not poisoned").insert(e.session.id, Instant::now());
                    axum::http::StatusCode::NO_CONTENT
                }
            }),
        )
    };
    let hook_listener = mykey_server::bind("127.0.0.1:0".parse()?).await?;
    let hook_url = format!("http://{}/hooks", hook_listener.local_addr()?);
    tokio::spawn(async move { axum::serve(hook_listener, hook).await });

    let identity = Arc::new(mykey_server::services::identity::Identity::new(engine.clone(), None));
    let services = mykey_server::http::Services::new(
        engine.clone(),
        identity,
        [8; 32],
        None,
        mykey_server::outbox::address::Targets::PublicAndLoopback,
    );
    let embedding = services.embedding.clone();
    let settings = mykey_core::api::EmbedSettingsRequest {
        origins: vec!["http://127.0.0.2:8090".into()],
        webhook_url: Some(hook_url),
    };
    let owner = mykey_server::services::embedding::Owner::Store(shop);
    embedding.put_settings(owner, &settings).await.map_err(|p| anyhow::anyhow!("{p:?}"))?;
    embedding.rotate_secret(owner).await.map_err(|p| anyhow::anyhow!("{p:?}"))?;
    services.start_background()?;
    let router = mykey_server::http::router(services, None, vec![], axum::Router::new())?;
    let listener = mykey_server::bind("127.0.0.1:0".parse()?).await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>()).await
    });
    let key = mykey_server::auth::create_key(engine.store(), mykey_server::auth::Role::Store, shop, "bench").await?;

    // One session: the store's server opens it (over HTTP, with its key).
    async fn open(
        http: &reqwest::Client,
        base: &str,
        key: &str,
        shop: i64,
    ) -> anyhow::Result<(Uuid, serde_json::Value)> {
        let order = serde_json::json!({"id": Uuid::new_v4(), "shop": shop, "amount": 100, "order_reference": "bench"});
        let created: serde_json::Value = http
            .post(format!("{base}/v1/checkout/sessions"))
            .bearer_auth(key)
            .json(&order)
            .send()
            .await?
            .json()
            .await?;
        Ok((created["session"]["id"].as_str().unwrap_or_default().parse()?, created["client_secret"].clone()))
    }
    // `--confirm-only`: enough sessions opened beforehand for a client confirming 100 a second.
    let ahead = if confirm_only { 100 * (seconds as usize + 1) } else { 0 };
    let mut opened: Vec<Vec<(Uuid, serde_json::Value)>> = Vec::with_capacity(clients);
    {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..clients {
            let (base, key) = (base.clone(), key.clone());
            set.spawn(async move {
                let http = reqwest::Client::new();
                let mut v = Vec::with_capacity(ahead);
                for _ in 0..ahead {
                    v.push(open(&http, &base, &key, shop).await?);
                }
                anyhow::Ok(v)
            });
        }
        for r in set.join_all().await {
            opened.push(r?);
        }
    }
    let warmup = Duration::from_secs(1);
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for (resident, mut ready) in (1..=clients as i64).zip(opened) {
        let (base, key, embedding) = (base.clone(), key.clone(), embedding.clone());
        set.spawn(async move {
            let http = reqwest::Client::new();
            let mut latencies = Vec::new();
            let mut confirmed: Vec<(Uuid, Instant)> = Vec::new();
            while start.elapsed() < warmup + Duration::from_secs(seconds) {
                let t = Instant::now();
                let (id, secret) = match (confirm_only, ready.pop()) {
                    (false, _) => open(&http, &base, &key, shop).await?,
                    (true, Some(s)) => s,
                    (true, None) => anyhow::bail!("a client ran out of opened sessions: open more ahead"),
                };
                let grant =
                    embedding.testing_grant(mykey_server::services::embedding::GrantScope::Session(id), resident);
                let body = serde_json::json!({"client_secret": secret, "grant": grant, "points": 100});
                // As the widget's frame sends it: from the points cloud's own origin.
                let res = http
                    .post(format!("{base}/v1/checkout/sessions/{id}/confirm"))
                    .header("origin", &base)
                    .json(&body)
                    .send()
                    .await?;
                anyhow::ensure!(res.status() == 200, "confirm answered {}", res.status());
                let done = Instant::now();
                if t - start >= warmup {
                    latencies.push(done - t);
                    confirmed.push((id, done));
                }
            }
            anyhow::Ok((latencies, confirmed))
        });
    }
    let mut latencies = Vec::new();
    let mut confirmed = Vec::new();
    for r in set.join_all().await {
        let (l, c) = r?;
        latencies.extend(l);
        confirmed.extend(c);
    }
    // Let the last events arrive.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let arrived = arrived.lock().expect("not poisoned").clone();
    let mut to_webhook: Vec<Duration> =
        confirmed.iter().filter_map(|(id, at)| arrived.get(id).map(|t| t.saturating_duration_since(*at))).collect();
    let missing = confirmed.len() - to_webhook.len();
    latencies.sort();
    to_webhook.sort();
    let backend = if url.starts_with("sqlite:") { "SQLite" } else { "PostgreSQL" };
    println!(
        "| {backend} | {clients} | {:.0} | {:.1} | {:.1} | {:.0} | {:.0} | {missing} |",
        latencies.len() as f64 / seconds as f64,
        percentile_ms(&latencies, 0.5),
        percentile_ms(&latencies, 0.99),
        percentile_ms(&to_webhook, 0.5),
        percentile_ms(&to_webhook, 0.99),
    );
    let what =
        if confirm_only { "confirmations/s (sessions opened beforehand)" } else { "checkouts/s (open + confirm)" };
    eprintln!("columns: database | residents | {what} | p50 ms | p99 ms | confirm to webhook p50 ms | p99 ms | webhooks missing after 5 s");
    Ok(())
}

/// [`Mode::Coupons`]: issuing and rendering a batch, then redemptions per second and latency.
async fn coupons_bench(url: &str, clients: usize, seconds: u64, codes: u32) -> anyhow::Result<()> {
    use mykey_server::engine::{Change, ChangeResult};
    let ledger = LedgerService::open(url).await?;
    let engine = ledger.engine.clone();
    setup_ledger(&engine, clients, 1).await?;
    let partner = match engine
        .apply(Change::Partner {
            name: "ベンチカード".into(),
            name_en: "Bench Card".into(),
            point_kind: "card_points".into(),
            exchange_method: "coupon_url".into(),
        })
        .await
        .map_err(|p| anyhow::anyhow!("{p:?}"))?
    {
        ChangeResult::Id(id) => id,
        other => anyhow::bail!("adding the partner: {other:?}"),
    };
    // The partner's server receives the redemption events.
    let hook =
        axum::Router::new().route("/hooks", axum::routing::post(|| async { axum::http::StatusCode::NO_CONTENT }));
    let hook_listener = mykey_server::bind("127.0.0.1:0".parse()?).await?;
    let hook_url = format!("http://{}/hooks", hook_listener.local_addr()?);
    tokio::spawn(async move { axum::serve(hook_listener, hook).await });
    let listener = mykey_server::bind("127.0.0.1:0".parse()?).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let identity = Arc::new(mykey_server::services::identity::Identity::new(engine.clone(), None));
    // The site's origin, as a deployment names it: the sheet's QR codes carry full URLs.
    let services = mykey_server::http::Services::new(
        engine.clone(),
        identity,
        [8; 32],
        Some(base.clone()),
        mykey_server::outbox::address::Targets::PublicAndLoopback,
    );
    let embedding = services.embedding.clone();
    let owner = mykey_server::services::embedding::Owner::Partner(partner);
    let settings = mykey_core::api::EmbedSettingsRequest {
        origins: vec!["http://127.0.0.3:8100".into()],
        webhook_url: Some(hook_url),
    };
    let pk = embedding.put_settings(owner, &settings).await.map_err(|p| anyhow::anyhow!("{p:?}"))?.publishable_key;
    embedding.rotate_secret(owner).await.map_err(|p| anyhow::anyhow!("{p:?}"))?;
    services.start_background()?;
    let router = mykey_server::http::router(services, None, vec![], axum::Router::new())?;
    tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>()).await
    });
    let key =
        mykey_server::auth::create_key(engine.store(), mykey_server::auth::Role::Partner, partner, "bench").await?;
    let http = reqwest::Client::new();
    let issue = |count: u32| {
        let body = serde_json::json!({"id": Uuid::new_v4(), "count": count, "partner_points": "1000", "rate": "0.5",
            "expires_at": (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339(), "delivery": "paper"});
        http.post(format!("{base}/v1/partners/{partner}/coupons")).bearer_auth(&key).json(&body).send()
    };

    // One batch issued, then its sheet rendered, each timed from request to the last byte.
    let t = Instant::now();
    let batch: serde_json::Value = issue(codes).await?.error_for_status()?.json().await?;
    let issued_in = t.elapsed();
    let t = Instant::now();
    let sheet = http
        .get(format!("{base}/v1/partners/{partner}/coupon-batches/{}/sheet", batch["id"].as_str().unwrap_or_default()))
        .bearer_auth(&key)
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    let rendered_in = t.elapsed();
    let backend = if url.starts_with("sqlite:") { "SQLite" } else { "PostgreSQL" };
    println!(
        "| {backend} | {codes} codes | issued {:.2} s | sheet {:.2} s ({:.1} MB) | together {:.2} s |",
        issued_in.as_secs_f64(),
        rendered_in.as_secs_f64(),
        sheet.len() as f64 / 1e6,
        (issued_in + rendered_in).as_secs_f64()
    );

    // Redemptions: enough codes for 4,000 a second, handed out from one queue.
    let wanted = 4_000 * (seconds as usize + 1);
    let mut pool: Vec<String> =
        batch["codes"].as_array().into_iter().flatten().filter_map(|c| c.as_str().map(str::to_owned)).collect();
    while pool.len() < wanted {
        let more: serde_json::Value = issue(10_000).await?.error_for_status()?.json().await?;
        pool.extend(more["codes"].as_array().into_iter().flatten().filter_map(|c| c.as_str().map(str::to_owned)));
    }
    let queue = Arc::new(std::sync::Mutex::new(pool));
    let warmup = Duration::from_secs(1);
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for resident in 1..=clients as i64 {
        let (base, pk, embedding, queue) = (base.clone(), pk.clone(), embedding.clone(), queue.clone());
        set.spawn(async move {
            let http = reqwest::Client::new();
            let grant =
                embedding.testing_grant(mykey_server::services::embedding::GrantScope::Partner(partner), resident);
            let mut latencies = Vec::new();
            while start.elapsed() < warmup + Duration::from_secs(seconds) {
                let Some(code) = queue.lock().expect("not poisoned").pop() else {
                    anyhow::bail!("the codes ran out: issue more ahead")
                };
                let t = Instant::now();
                let body = serde_json::json!({"publishable_key": pk, "grant": grant, "code": code});
                // As the widget's frame sends it: from the points cloud's own origin.
                let res = http
                    .post(format!("{base}/v1/coupon-widget/redeem"))
                    .header("origin", &base)
                    .json(&body)
                    .send()
                    .await?;
                anyhow::ensure!(res.status() == 200, "redeem answered {}: {}", res.status(), res.text().await?);
                if t - start >= warmup {
                    latencies.push(t.elapsed());
                }
            }
            anyhow::Ok(latencies)
        });
    }
    let mut latencies = Vec::new();
    for r in set.join_all().await {
        latencies.extend(r?);
    }
    latencies.sort();
    println!(
        "| {backend} | {clients} | {:.0} | {:.1} | {:.1} |",
        latencies.len() as f64 / seconds as f64,
        percentile_ms(&latencies, 0.5),
        percentile_ms(&latencies, 0.99)
    );
    eprintln!("columns: database | residents | redemptions/s (coupon widget, over HTTP) | p50 ms | p99 ms");
    Ok(())
}

/// [`Mode::Notices`]: ledger notices handled and mails sent per second by the mailer's rounds.
async fn notices_bench(url: &str, residents: usize, mails: u32) -> anyhow::Result<()> {
    use mykey_server::outbox::mail::{MailConfig, Mailer};
    let ledger = LedgerService::open(url).await?;
    setup_ledger(&ledger.engine, residents, 1).await?;
    // The notices are in the tables once the tables hold every batch.
    ledger.engine.tables().await.map_err(|p| anyhow::anyhow!("{p:?}"))?;
    let smtp = mykey_server::testing::Smtp::start()?;
    let config = MailConfig { smtp_url: smtp.url(), from: "mykey bench <bench@mykey.example>".into() };
    let pool = ledger.engine.store().pool().clone();
    let mailer = Mailer::new(pool.clone(), &config)?;
    let started = Instant::now();
    let (mut notices, mut rounds) = (0, 0);
    loop {
        let r = mailer.run_once().await?;
        rounds += 1;
        notices += r.notices;
        if r.notices == 0 {
            break;
        }
    }
    let took = started.elapsed().as_secs_f64();
    println!("notices: {notices} in {rounds} rounds, {took:.2} s: {:.0} notices/s", notices as f64 / took);
    let mut c = pool.acquire().await?;
    let now = mykey_server::time::now();
    for i in 0..mails {
        let to = format!("resident{i}@mykey.example");
        mykey_server::store::outbox::insert_mail(
            &mut c,
            1,
            "payment",
            &to,
            "【自治体ポイント】ベンチマーク",
            "本文",
            now,
        )
        .await?;
    }
    drop(c);
    let started = Instant::now();
    let (mut sent, mut rounds) = (0, 0);
    while sent < mails as usize {
        let r = mailer.run_once().await?;
        anyhow::ensure!(r.failed == 0, "mail failed: {r:?}");
        rounds += 1;
        sent += r.sent;
    }
    let took = started.elapsed().as_secs_f64();
    println!("mails: {sent} in {rounds} rounds, {took:.2} s: {:.0} mails/s", sent as f64 / took);
    Ok(())
}
