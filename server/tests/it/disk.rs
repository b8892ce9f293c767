//! A full disk under a running server: SQLite, and a PostgreSQL 15 server of the test's own,
//! on a small tmpfs, filled up while the server runs. Writes are refused with a 503 that says
//! so and store nothing; `/healthz` and the metrics tell; once there is room again the server
//! goes on by itself and a refused request sent again with its id is applied once. (Mounting
//! needs root, as CI runs.) PostgreSQL refuses to extend a table with `disk_full` (53100); a
//! full disk when it must create a new WAL segment is a PANIC of the database server instead,
//! which its operator restarts (docs/operations.md).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mykey_server::testing::TestDb;
use serde_json::json;
use uuid::Uuid;

use crate::common::App;

/// A tmpfs of `size` mounted at a new folder, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = std::env::temp_dir().join(format!("mykey-full-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .output()
            .expect("running mount");
        assert!(
            out.status.success(),
            "this test mounts a tmpfs and must run as root (CI does): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes zeros into `path` until the file system is full.
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    loop {
        if let Err(e) = f.write_all(&chunk).and_then(|()| f.sync_all()) {
            assert_eq!(e.raw_os_error(), Some(28), "filling stops at ENOSPC: {e}");
            // What fits in the last partial chunk.
            let mut byte = [0u8; 1];
            while f.write_all(&byte).is_ok() {
                byte[0] = 0;
            }
            return;
        }
    }
}

async fn text(app: &App, path: &str) -> (u16, String) {
    let res = app.client.get(format!("{}{path}", app.base)).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// A PostgreSQL 15 server with its data on `disk`, on a free loopback port; stopped on drop.
struct Postgres {
    data: PathBuf,
    admin: String,
}

impl Postgres {
    fn start(disk: &Path) -> Postgres {
        let bin = Path::new("/usr/lib/postgresql/15/bin");
        let data = disk.join("pg");
        let as_postgres = |program: &str| {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(bin.join(program));
            c
        };
        let chown = std::process::Command::new("chown").arg("postgres:postgres").arg(disk).status().unwrap();
        assert!(chown.success());
        let out = as_postgres("initdb")
            .args(["-A", "trust", "-U", "mykey", "-E", "UTF8", "--locale=C.UTF-8", "-D"])
            .arg(&data)
            .output()
            .expect("running initdb (scripts/install-deps installs PostgreSQL 15)");
        assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let options = format!("-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={}", disk.display());
        let out = as_postgres("pg_ctl")
            .args(["-w", "-t", "60", "-l"])
            .arg(disk.join("server.log"))
            .args(["-o", &options, "-D"])
            .arg(&data)
            .arg("start")
            .output()
            .unwrap();
        assert!(out.status.success(), "pg_ctl start: {}", String::from_utf8_lossy(&out.stderr));
        Postgres { data, admin: format!("postgres://mykey@127.0.0.1:{port}/postgres") }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = std::process::Command::new("runuser")
            .args(["-u", "postgres", "--", "/usr/lib/postgresql/15/bin/pg_ctl", "-m", "immediate", "-D"])
            .arg(&self.data)
            .arg("stop")
            .output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_says_so_and_the_server_goes_on_when_there_is_room() {
    let disk = Tmpfs::mount("24m");
    let app = App::start_on(TestDb::sqlite_in(disk.0.join("db")).unwrap()).await;
    fill_refuse_and_recover(&app, &disk).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_under_postgresql_refuses_writes_and_the_server_goes_on_when_there_is_room() {
    // initdb's 39 MB (a 16 MB WAL segment among them) and room for the test's tables.
    let disk = Tmpfs::mount("96m");
    let pg = Postgres::start(&disk.0);
    let app = App::start_on(TestDb::postgres_at(&pg.admin).await.unwrap()).await;
    fill_refuse_and_recover(&app, &disk).await;
}

/// Fills `disk` under `app`'s database and checks the refusals, the reports and the recovery.
async fn fill_refuse_and_recover(app: &App, disk: &Tmpfs) {
    let r = app.residents[0];
    app.grant(r, 100).await;
    let grant = |id: Uuid| json!({"id": id, "resident": r, "municipality": 1, "amount": 7});
    let first = grant(Uuid::new_v4());
    let (st, first_receipt) = app.post("/v1/grants", &app.keys.municipality1, first.clone()).await;
    assert_eq!(st, 201, "{first_receipt}");
    let before = app.available(r).await;

    fill(&disk.0.join("filler"));
    // The journal may still have room in pages it reuses; the first append that needs more
    // finds the disk full.
    let mut applied = 0;
    let (refused_id, refusal) = loop {
        let id = Uuid::new_v4();
        let (st, v) = app.post("/v1/grants", &app.keys.municipality1, grant(id)).await;
        match st {
            201 => applied += 1,
            503 => break (id, v),
            _ => panic!("{st}: {v}"),
        }
        assert!(applied < 5000, "the disk never filled up");
    };
    assert_eq!(refusal["type"], "urn:mykey:problem:unavailable");
    assert!(refusal["detail"].as_str().unwrap().contains("disk is full"), "{refusal}");
    // A request applied before still replays from what is stored.
    let (st, v) = app.post("/v1/grants", &app.keys.municipality1, first.clone()).await;
    assert_eq!((st, &v), (201, &first_receipt), "a replay needs no room");
    // Every new write is now refused at once, the same way.
    let started = std::time::Instant::now();
    let (st, v) = app.post("/v1/grants", &app.keys.municipality1, grant(Uuid::new_v4())).await;
    assert!(st == 503 && v["detail"].as_str().unwrap().contains("disk is full"), "{st}: {v}");
    assert!(started.elapsed() < Duration::from_secs(5), "refused at once, not after a timeout");
    let (st, health) = text(app, "/healthz").await;
    assert!(st == 503 && health.contains("disk is full since"), "{st}: {health}");
    let (_, metrics) = text(app, "/metrics").await;
    assert!(metrics.contains("mykey_disk_full 1"), "{metrics}");

    // Room again: the refused request, sent again with its id, is applied once.
    std::fs::remove_file(disk.0.join("filler")).unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (st, receipt) = app.post("/v1/grants", &app.keys.municipality1, grant(refused_id)).await;
    assert_eq!(st, 201, "{receipt}");
    let again = app.post("/v1/grants", &app.keys.municipality1, grant(refused_id)).await;
    assert_eq!(again, (201, receipt), "a replay, not a second grant");
    let (st, health) = text(app, "/healthz").await;
    assert_eq!((st, health.as_str()), (200, "ok\n"));
    let (_, metrics) = text(app, "/metrics").await;
    assert!(metrics.contains("mykey_disk_full 0"), "{metrics}");
    // Exactly the answered grants moved points: none of the refused ones, the retried one once.
    assert_eq!(app.available(r).await, before + 7 * (applied + 1));
    // The ledger's invariants hold in the rebuilt memory (a violation panics the writer, and
    // the next write would find it stopped).
    app.engine.check_invariants().await;
    app.grant(r, 1).await;
}
