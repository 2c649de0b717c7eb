//! Several instances on one PostgreSQL catalog: racing first stores agree
//! on one project KEK; 4 processes x 4 threads storing, reading, deleting,
//! ordering keys, registering consumers and setting ACLs lose nothing and
//! duplicate nothing; a process killed with SIGKILL leaves nothing
//! half-written while the others carry on; a server restart gives
//! `Unavailable`, then service resumes; dropped connections are replaced;
//! the schema is versioned and migrated once.
//!
//! Children are this test binary run again (`child_worker`), as in
//! tests/concurrency.rs.
#![cfg(feature = "postgres")]

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{Kind, Raw, admin, ctx, with_search_path};
use keywarden::ErrorKind;
use keywarden::catalog::PostgresCatalog;
use keywarden::catalog::PostgresUrl;
use keywarden::config::Config;
use keywarden::model::{Acl, Consumer, SecretId, UserId};
use keywarden::store::{KeyOrder, NewSecret, SecretStore};

const CHILD_ENV: &str = "KEYWARDEN_TEST_SHARED_CHILD";
const CHILD_SECS_ENV: &str = "KEYWARDEN_TEST_SHARED_SECS";
const THREADS: usize = 4;
const SHARED_PROJECTS: usize = 4;

/// A config whose catalog is a fresh schema on the test server.
fn shared_config(kind: &Kind, dir: &Path) -> Config {
    let mut config = Config::generate(dir.join("unused.db")).unwrap();
    config.catalog = kind.fresh_catalog(dir);
    config
}

fn text(payload: &str) -> NewSecret {
    NewSecret::new()
        .name(payload)
        .payload_text(payload, Some("text/plain"), None)
}

#[test]
fn racing_first_stores_make_one_project_kek() {
    let Some(kind) = Kind::postgres() else { return };
    let dir = tempfile::tempdir().unwrap();
    let config = shared_config(&kind, dir.path());
    // Two instances: separate pools and separate KEK caches.
    let a = Arc::new(SecretStore::open(&config).unwrap());
    let b = Arc::new(SecretStore::open(&config).unwrap());
    const PROJECTS: usize = 20;
    let barrier = Arc::new(Barrier::new(2));
    let run = |store: Arc<SecretStore>, tag: &'static str| {
        let barrier = barrier.clone();
        std::thread::spawn(move || {
            (0..PROJECTS)
                .map(|p| {
                    barrier.wait();
                    let project = format!("fresh-{p}");
                    let payload = format!("{tag}-{p}");
                    let id = store
                        .store_secret(&admin(&project), text(&payload))
                        .unwrap();
                    (id, project, payload)
                })
                .collect::<Vec<_>>()
        })
    };
    let ha = run(a.clone(), "a");
    let hb = run(b.clone(), "b");
    let written: Vec<_> = ha
        .join()
        .unwrap()
        .into_iter()
        .chain(hb.join().unwrap())
        .collect();
    let mut raw = Raw::open(&config.catalog);
    assert_eq!(
        raw.count("project_keks"),
        PROJECTS as i64,
        "one KEK per project"
    );
    assert_eq!(raw.count("secrets"), 2 * PROJECTS as i64);
    // Each instance reads what the other wrote: both used the one KEK.
    for (id, project, payload) in &written {
        for store in [&a, &b] {
            let got = store.payload(&admin(project), id).unwrap();
            assert_eq!(got.bytes.expose_secret(), payload.as_bytes());
        }
    }
}

// --- several processes ------------------------------------------------------------

/// Runs as a child process when the environment says so: 4 threads of mixed
/// work until the deadline, printing each acknowledged change.
#[test]
fn child_worker() {
    let Ok(config_path) = std::env::var(CHILD_ENV) else {
        return; // not a child: nothing to do
    };
    let secs: u64 = std::env::var(CHILD_SECS_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let config = Config::from_file(&config_path).unwrap();
    let store = Arc::new(SecretStore::open(&config).unwrap());
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || worker(&store, t, start, deadline))
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

fn worker(store: &SecretStore, thread: usize, start: Instant, deadline: Instant) {
    let pid = std::process::id();
    let mut rng = Rng(u64::from(pid) << 16 | thread as u64 | 1);
    let mut live: Vec<(SecretId, String, String)> = Vec::new();
    let mut seq = 0u64;
    while Instant::now() < deadline {
        let roll = rng.next() % 100;
        if roll < 50 || live.is_empty() {
            // Stores; one in five goes to a project that is new in this
            // quarter second, in every process at once: first-KEK races.
            let project = if roll.is_multiple_of(5) {
                format!("race-{}", start.elapsed().as_millis() / 250)
            } else {
                format!("shared-{}", rng.next() % SHARED_PROJECTS as u64)
            };
            seq += 1;
            let payload = format!("p{pid}-t{thread}-{seq}");
            let id = store
                .store_secret(&admin(&project), text(&payload))
                .unwrap_or_else(|e| panic!("store: {e}"));
            println!("ACK {id} {project} {payload}");
            live.push((id, project, payload));
        } else if roll < 70 {
            let (id, project, payload) = &live[rng.next() as usize % live.len()];
            let got = store
                .payload(&admin(project), id)
                .unwrap_or_else(|e| panic!("read {id}: {e}"));
            assert_eq!(got.bytes.expose_secret(), payload.as_bytes());
        } else if roll < 82 {
            let (id, project, _) = live.swap_remove(rng.next() as usize % live.len());
            store
                .delete_secret(&admin(&project), &id, false)
                .unwrap_or_else(|e| panic!("delete {id}: {e}"));
            println!("DEL {id}");
        } else if roll < 88 {
            let project = format!("shared-{}", rng.next() % SHARED_PROJECTS as u64);
            let order = store
                .create_key(&admin(&project), &KeyOrder::aes(256))
                .unwrap_or_else(|e| panic!("order: {e}"));
            let secret = order.secret_id.expect("an ACTIVE key order has its secret");
            println!("ORDER {} {secret} {project}", order.id);
        } else if roll < 94 {
            // A registered consumer blocks the delete; removed, it no longer does.
            let (id, project, _) = &live[rng.next() as usize % live.len()];
            let c = admin(project);
            let consumer = Consumer {
                service: "cinder".into(),
                resource_type: "volume".into(),
                resource_id: format!("vol-{pid}-{thread}-{seq}"),
            };
            store.add_consumer(&c, id, consumer.clone()).unwrap();
            let e = store.delete_secret(&c, id, false).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
            store.remove_consumer(&c, id, consumer).unwrap();
        } else {
            let (id, project, _) = &live[rng.next() as usize % live.len()];
            let c = admin(project);
            let acl = Acl {
                users: vec![UserId::new(format!("reader-{pid}")).unwrap()],
                project_access: rng.next().is_multiple_of(2),
            };
            store.set_acl(&c, id, acl.clone()).unwrap();
            assert_eq!(store.acl(&c, id).unwrap(), acl);
        }
    }
}

/// xorshift64: enough to mix the workload, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

struct Spawned {
    child: Child,
    lines: JoinHandle<Vec<(Instant, String)>>,
}

fn spawn_children(config_path: &Path, n: usize, secs: u64) -> Vec<Spawned> {
    let exe = std::env::current_exe().unwrap();
    (0..n)
        .map(|_| {
            let mut child = Command::new(&exe)
                .args(["--exact", "child_worker", "--nocapture", "--test-threads=1"])
                .env(CHILD_ENV, config_path)
                .env(CHILD_SECS_ENV, secs.to_string())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            // Read as it comes, so a full pipe never stalls the child.
            let out = child.stdout.take().unwrap();
            let lines = std::thread::spawn(move || {
                BufReader::new(out)
                    .lines()
                    .map_while(Result::ok)
                    .map(|l| (Instant::now(), l))
                    .collect()
            });
            Spawned { child, lines }
        })
        .collect()
}

/// What the children reported as done.
#[derive(Default)]
struct Acked {
    /// id -> (project, payload, child)
    stored: BTreeMap<SecretId, (String, String, usize)>,
    deleted: BTreeSet<SecretId>,
    /// order id -> (secret id, project)
    orders: BTreeMap<String, (SecretId, String)>,
}

impl Acked {
    fn take(&mut self, child: usize, line: &str) {
        // The harness may print its own "test child_worker ... " first.
        let line = match ["ACK ", "DEL ", "ORDER "]
            .iter()
            .filter_map(|m| line.find(m))
            .min()
        {
            Some(at) => &line[at..],
            None => return,
        };
        let parts: Vec<&str> = line.split(' ').collect();
        match parts.as_slice() {
            ["ACK", id, project, payload] => {
                let fresh = self.stored.insert(
                    id.parse().unwrap(),
                    (project.to_string(), payload.to_string(), child),
                );
                assert!(fresh.is_none(), "id {id} acknowledged twice");
            }
            ["DEL", id] => {
                assert!(
                    self.deleted.insert(id.parse().unwrap()),
                    "{id} deleted twice"
                );
            }
            ["ORDER", order, secret, project] => {
                self.orders.insert(
                    order.to_string(),
                    (secret.parse().unwrap(), project.to_string()),
                );
            }
            _ => panic!("unexpected child output {line:?}"),
        }
    }
}

/// Checks the catalog against what was acknowledged. Rows the killed child
/// (if any) wrote or deleted without getting to report it are allowed, at
/// most one per thread.
fn verify_run(config: &Config, acked: &Acked, killed: Option<usize>) {
    eprintln!(
        "acknowledged: {} stores, {} deletes, {} key orders",
        acked.stored.len(),
        acked.deleted.len(),
        acked.orders.len()
    );
    let store = SecretStore::open(config).unwrap();
    let mut raw = Raw::open(&config.catalog);
    let mut vanished = 0;
    for (id, (project, payload, child)) in &acked.stored {
        let got = store.payload(&admin(project), id);
        if acked.deleted.contains(id) {
            assert_eq!(got.unwrap_err().kind(), ErrorKind::NotFound, "deleted {id}");
            continue;
        }
        match got {
            Ok(p) => assert_eq!(p.bytes.expose_secret(), payload.as_bytes(), "{id}"),
            // Deleted by the killed child just before it could report it.
            Err(e) if Some(*child) == killed && e.kind() == ErrorKind::NotFound => vanished += 1,
            Err(e) => panic!("acknowledged secret {id} does not read back: {e}"),
        }
    }
    assert!(
        vanished <= THREADS,
        "{vanished} acknowledged secrets vanished"
    );
    for (order, (secret, project)) in &acked.orders {
        let key = store.payload(&admin(project), secret).unwrap();
        assert_eq!(key.bytes.len(), 32, "order {order}'s key");
    }
    // Nothing duplicated: every payload (the secret's name) once.
    let dupes = raw.count(
        "(SELECT name FROM secrets WHERE name IS NOT NULL GROUP BY name HAVING COUNT(*) > 1) d",
    );
    assert_eq!(dupes, 0, "a secret was written twice");
    let live = acked.stored.len() - acked.deleted.len() - vanished;
    let rows = raw.count("secrets") as usize;
    let expected = live + acked.orders.len();
    match killed {
        None => assert_eq!(rows, expected, "rows beyond what was acknowledged"),
        Some(_) => assert!(
            rows >= expected && rows - expected <= THREADS,
            "{rows} rows for {expected} acknowledged"
        ),
    }
    // One KEK per project, and every secret of a project under it.
    let split = raw.count(
        "(SELECT project_id FROM secrets WHERE kek_id IS NOT NULL GROUP BY project_id HAVING COUNT(DISTINCT kek_id) > 1) p",
    );
    assert_eq!(split, 0, "a project's secrets use two KEKs");
    let projects: BTreeSet<&str> = acked
        .stored
        .values()
        .map(|(p, _, _)| p.as_str())
        .chain(acked.orders.values().map(|(_, p)| p.as_str()))
        .collect();
    let keks = raw.count("project_keks") as usize;
    assert!(keks >= projects.len() && keks <= projects.len() + THREADS);
    // Nothing half-written: every ACTIVE order has its secret, every row
    // with a payload authenticates.
    let orphans = raw.count(
        "orders o WHERE status = 'ACTIVE' AND NOT EXISTS (SELECT 1 FROM secrets s WHERE s.id = o.secret_id)",
    );
    assert_eq!(orphans, 0, "an order without its secret");
    let checked = store.operator().verify_secrets().unwrap();
    assert!(checked.failed.is_empty(), "{:?}", checked.failed);
    assert_eq!(checked.checked as usize, rows);
}

fn write_config(dir: &Path, config: &Config) -> PathBuf {
    let path = dir.join("keywarden.toml");
    std::fs::write(&path, config.to_toml().as_bytes()).unwrap();
    path
}

#[test]
fn four_processes_four_threads_lose_nothing_and_duplicate_nothing() {
    let Some(kind) = Kind::postgres() else { return };
    let dir = tempfile::tempdir().unwrap();
    let config = shared_config(&kind, dir.path());
    let config_path = write_config(dir.path(), &config);
    drop(SecretStore::open(&config).unwrap()); // schema made once
    let mut acked = Acked::default();
    for (i, s) in spawn_children(&config_path, 4, 4).into_iter().enumerate() {
        let status = { s.child }.wait().unwrap();
        let lines = s.lines.join().unwrap();
        assert!(status.success(), "child {i} failed: {status}");
        assert!(
            lines.iter().any(|(_, l)| l.contains("ACK ")),
            "child {i} did nothing"
        );
        for (_, line) in &lines {
            acked.take(i, line);
        }
    }
    assert!(
        acked.stored.len() > 100,
        "only {} stores",
        acked.stored.len()
    );
    verify_run(&config, &acked, None);
}

#[test]
fn sigkill_mid_run_leaves_nothing_half_written() {
    let Some(kind) = Kind::postgres() else { return };
    let dir = tempfile::tempdir().unwrap();
    let config = shared_config(&kind, dir.path());
    let config_path = write_config(dir.path(), &config);
    drop(SecretStore::open(&config).unwrap());
    let mut children = spawn_children(&config_path, 4, 6);
    std::thread::sleep(Duration::from_millis(2500));
    children[0].child.kill().unwrap(); // SIGKILL
    let killed_at = Instant::now();
    let mut acked = Acked::default();
    for (i, s) in children.into_iter().enumerate() {
        let status = { s.child }.wait().unwrap();
        let lines = s.lines.join().unwrap();
        if i == 0 {
            assert!(!status.success(), "the killed child was killed");
        } else {
            assert!(status.success(), "child {i} failed: {status}");
            let after = lines
                .iter()
                .filter(|(t, l)| *t > killed_at && l.contains("ACK "))
                .count();
            assert!(
                after > 0,
                "child {i} stopped working when child 0 was killed"
            );
        }
        for (_, line) in &lines {
            acked.take(i, line);
        }
    }
    verify_run(&config, &acked, Some(0));
}

// --- the server going away ------------------------------------------------------

/// A PostgreSQL server of this test's own (so stopping it disturbs no other
/// test), from the binaries scripts/test.sh names.
struct PrivateServer {
    dir: tempfile::TempDir,
    bindir: PathBuf,
    port: u16,
    as_postgres_user: bool,
}

impl PrivateServer {
    fn start() -> Option<PrivateServer> {
        let bindir = match std::env::var("KEYWARDEN_TEST_POSTGRES_BINDIR") {
            Ok(b) if !b.is_empty() => PathBuf::from(b),
            _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
                panic!("CI=true but KEYWARDEN_TEST_POSTGRES_BINDIR is not set")
            }
            _ => {
                eprintln!("skipped: KEYWARDEN_TEST_POSTGRES_BINDIR is not set");
                return None;
            }
        };
        let uid = Command::new("id").arg("-u").output().unwrap();
        let as_postgres_user = String::from_utf8_lossy(&uid.stdout).trim() == "0";
        let dir = tempfile::tempdir().unwrap();
        if as_postgres_user {
            let ok = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(ok.success());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = PrivateServer {
            dir,
            bindir,
            port,
            as_postgres_user,
        };
        let data = server.dir.path().join("data");
        server.run(&format!(
            "{}/initdb -D {} -A trust -U postgres",
            server.bindir.display(),
            data.display()
        ));
        server.start_again();
        Some(server)
    }

    fn run(&self, cmd: &str) {
        let out = if self.as_postgres_user {
            Command::new("su").args(["postgres", "-c", cmd]).output()
        } else {
            Command::new("sh").args(["-c", cmd]).output()
        }
        .unwrap();
        assert!(
            out.status.success(),
            "{cmd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn pg_ctl(&self, args: &str) -> String {
        format!(
            "{}/pg_ctl -D {} {args}",
            self.bindir.display(),
            self.dir.path().join("data").display()
        )
    }

    fn start_again(&self) {
        self.run(&self.pg_ctl(&format!(
            "-w -l {}/log -o '-p {} -k {} -c listen_addresses=127.0.0.1' start",
            self.dir.path().display(),
            self.port,
            self.dir.path().display()
        )));
    }

    fn stop(&self) {
        self.run(&self.pg_ctl("-w -m fast stop"));
    }

    fn url(&self) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let cmd = self.pg_ctl("-w -m immediate stop");
        let _ = if self.as_postgres_user {
            Command::new("su").args(["postgres", "-c", &cmd]).output()
        } else {
            Command::new("sh").args(["-c", &cmd]).output()
        };
    }
}

#[test]
fn server_restart_gives_unavailable_then_service_resumes() {
    if Kind::postgres().is_none() {
        return;
    }
    let Some(server) = PrivateServer::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::generate(dir.path().join("unused.db")).unwrap();
    config.catalog = server.url().parse().unwrap();
    let store = Arc::new(SecretStore::open(&config).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let down = Arc::new(AtomicBool::new(false));
    // Per thread: acknowledged (id, payload), errors seen, successes after restart.
    type Outcome = (Vec<(SecretId, String)>, Vec<ErrorKind>, usize);
    let workers: Vec<JoinHandle<Outcome>> = (0..THREADS)
        .map(|t| {
            let (store, stop, down) = (store.clone(), stop.clone(), down.clone());
            std::thread::spawn(move || {
                let c = admin("restart");
                let (mut acked, mut errors, mut resumed) = (Vec::new(), Vec::new(), 0);
                let mut seen_down = false;
                let mut seq = 0;
                while !stop.load(Ordering::SeqCst) {
                    seq += 1;
                    let payload = format!("t{t}-{seq}");
                    let was_down = down.load(Ordering::SeqCst);
                    match store.store_secret(&c, text(&payload)) {
                        Ok(id) => {
                            if seen_down && !was_down {
                                resumed += 1;
                            }
                            acked.push((id, payload));
                        }
                        Err(e) => {
                            assert!(e.is_retryable(), "not retryable: {e}");
                            seen_down = true;
                            errors.push(e.kind());
                            std::thread::sleep(Duration::from_millis(20));
                        }
                    }
                }
                (acked, errors, resumed)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(800));
    down.store(true, Ordering::SeqCst);
    server.stop();
    // While it is gone: every call is Unavailable, reads too.
    std::thread::sleep(Duration::from_millis(1000));
    let e = store
        .store_secret(&admin("restart"), text("while-down"))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.is_retryable());
    let e = store
        .list_secrets(&admin("restart"), &Default::default())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    server.start_again();
    down.store(false, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::SeqCst);
    let mut acked = Vec::new();
    let mut errors = 0;
    for w in workers {
        let (a, e, resumed) = w.join().unwrap();
        assert!(e.iter().all(|k| *k == ErrorKind::Unavailable), "{e:?}");
        assert!(!e.is_empty(), "a worker never noticed the server was gone");
        assert!(resumed > 0, "a worker's service did not resume");
        errors += e.len();
        acked.extend(a);
    }
    // Everything acknowledged is there; at most the writes whose COMMIT
    // was cut off (reported Unavailable) are there without acknowledgement.
    let fresh = SecretStore::open(&config).unwrap();
    for (id, payload) in &acked {
        let got = fresh.payload(&admin("restart"), id).unwrap();
        assert_eq!(got.bytes.expose_secret(), payload.as_bytes());
    }
    let rows = Raw::open(&config.catalog).count("secrets") as usize;
    eprintln!(
        "{} stores acknowledged, {errors} Unavailable while the server was gone, {rows} rows",
        acked.len()
    );
    assert!(rows >= acked.len() && rows - acked.len() <= errors.min(THREADS));
}

#[test]
fn dropped_connections_are_replaced_without_the_caller_noticing() {
    let Some(Kind::Postgres(server)) = Kind::postgres() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut config = shared_config(&Kind::Postgres(server.clone()), dir.path());
    let app = format!("kw-drop-{}", uuid::Uuid::new_v4().simple());
    config.catalog = format!(
        "{}&application_name={app}",
        config.catalog.expose_text().as_str()
    )
    .parse()
    .unwrap();
    let store = SecretStore::open(&config).unwrap();
    let c = admin("p");
    let id = store.store_secret(&c, text("before")).unwrap();
    for _ in 0..3 {
        let mut admin_conn = postgres::Client::connect(&server, postgres::NoTls).unwrap();
        let killed: i64 = admin_conn
            .query_one(
                "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
                &[&app],
            )
            .unwrap()
            .get(0);
        assert!(killed > 0, "the store's pooled connections were found");
        std::thread::sleep(Duration::from_millis(100));
        // Reads and writes on a fresh connection, transparently.
        assert_eq!(
            store.payload(&c, &id).unwrap().bytes.expose_secret(),
            b"before"
        );
        store.store_secret(&c, text("after")).unwrap();
    }
}

#[test]
fn schema_is_versioned_migrated_once_and_newer_is_refused() {
    let Some(kind) = Kind::postgres() else { return };
    let dir = tempfile::tempdir().unwrap();
    let catalog = kind.fresh_catalog(dir.path());
    let url = PostgresUrl::parse(&catalog.expose_text()).unwrap();
    // Eight instances starting at once on an empty schema: one migrates.
    let barrier = Arc::new(Barrier::new(8));
    let opened: Vec<_> = (0..8)
        .map(|_| {
            let (url, barrier) = (url.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                PostgresCatalog::open(&url).map(|c| c.schema_version().unwrap())
            })
        })
        .collect();
    // Version 4: 0002 gives SQLite the index PostgreSQL's 0001 made; 0003
    // metadata, quotas and container consumers; 0004 container ACLs.
    for h in opened {
        assert_eq!(h.join().unwrap().unwrap(), 4);
    }
    let mut raw = Raw::open(&catalog);
    assert_eq!(raw.count("keywarden_schema"), 1);
    raw.exec("UPDATE keywarden_schema SET version = 99")
        .unwrap();
    let e = PostgresCatalog::open(&url).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.to_string().contains("newer"), "{e}");
}

#[test]
fn open_existing_refuses_an_uninitialised_database() {
    let Some(kind) = Kind::postgres() else { return };
    let dir = tempfile::tempdir().unwrap();
    let url = PostgresUrl::parse(&kind.fresh_catalog(dir.path()).expose_text()).unwrap();
    let e = PostgresCatalog::open_existing(&url).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    PostgresCatalog::open(&url).unwrap();
    PostgresCatalog::open_existing(&url).unwrap();
}

#[test]
fn an_unreachable_server_is_unavailable_and_the_password_never_shows() {
    // Port 1 on loopback: nothing listens there.
    let url = "postgresql://kw:hunter2@127.0.0.1:1/keywarden";
    let mut config = Config::generate("unused.db").unwrap();
    config.catalog = url.parse().unwrap();
    let e = SecretStore::open(&config).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.is_retryable());
    let mut shown = format!("{e} {e:?} {config:?}");
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        shown.push_str(&format!(" {s} {s:?}"));
        source = s.source();
    }
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("kw:***@127.0.0.1:1"), "{shown}");
}

#[test]
fn orders_consumers_and_acls_agree_across_instances() {
    let Some(kind) = Kind::postgres() else { return };
    let dir = tempfile::tempdir().unwrap();
    let config = shared_config(&kind, dir.path());
    let a = SecretStore::open(&config).unwrap();
    let b = SecretStore::open(&config).unwrap();
    let c = admin("p");
    let order = a.create_key(&c, &KeyOrder::aes(256)).unwrap();
    assert_eq!(b.order(&c, &order.id).unwrap(), order);
    let id = order.secret_id.unwrap();
    let consumer = Consumer {
        service: "nova".into(),
        resource_type: "instance".into(),
        resource_id: "i-1".into(),
    };
    a.add_consumer(&c, &id, consumer.clone()).unwrap();
    assert_eq!(
        b.delete_secret(&c, &id, false).unwrap_err().kind(),
        ErrorKind::Conflict
    );
    let acl = Acl {
        users: vec![UserId::new("bob").unwrap()],
        project_access: false,
    };
    b.set_acl(&c, &id, acl.clone()).unwrap();
    assert_eq!(a.acl(&c, &id).unwrap(), acl);
    let bob = ctx("bob", "other", &["observer"]);
    assert!(a.payload(&bob, &id).is_ok());
    // Many instances adding and removing consumers at once leave exactly
    // what was added last.
    let stores: Vec<_> = (0..4)
        .map(|_| Arc::new(SecretStore::open(&config).unwrap()))
        .collect();
    let seen = Arc::new(Mutex::new(HashMap::new()));
    let handles: Vec<_> = stores
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (s, seen) = (s.clone(), seen.clone());
            std::thread::spawn(move || {
                let c = admin("p");
                for n in 0..25u32 {
                    let consumer = Consumer {
                        service: "cinder".into(),
                        resource_type: "volume".into(),
                        resource_id: format!("v-{i}-{n}"),
                    };
                    s.add_consumer(&c, &id, consumer.clone()).unwrap();
                    if n.is_multiple_of(2) {
                        s.remove_consumer(&c, &id, consumer.clone()).unwrap();
                    } else {
                        seen.lock()
                            .unwrap()
                            .insert(consumer.resource_id.clone(), ());
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let consumers = b.consumers(&c, &id).unwrap();
    assert_eq!(consumers.len(), 1 + seen.lock().unwrap().len());
    a.delete_secret(&c, &id, true).unwrap();
    assert_eq!(Raw::open(&config.catalog).count("secret_consumers"), 0);
    let _ = with_search_path;
}

#[test]
fn a_statement_timeout_is_unavailable_and_url_session_options_win() {
    let Some(kind) = Kind::postgres() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut config = shared_config(&kind, dir.path());
    let c = admin("p");
    let id = SecretStore::open(&config)
        .unwrap()
        .store_secret(&c, text("held"))
        .unwrap();
    // 300 ms instead of the default 30 s.
    config.catalog = format!(
        "{}%20-c%20statement_timeout%3D300",
        config.catalog.expose_text().as_str()
    )
    .parse()
    .unwrap();
    let store = SecretStore::open(&config).unwrap();
    // Another session holds the table: every statement waits, then times out.
    let mut holder = Raw::open(&config.catalog);
    let Raw::Postgres(client) = &mut holder else {
        unreachable!("a PostgreSQL catalog")
    };
    let mut tx = client.transaction().unwrap();
    tx.batch_execute("LOCK TABLE secrets IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let started = Instant::now();
    let e = store.payload(&c, &id).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.is_retryable());
    let e = store.store_secret(&c, text("waits")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the URL's timeout applied"
    );
    tx.rollback().unwrap();
    assert_eq!(
        store.payload(&c, &id).unwrap().bytes.expose_secret(),
        b"held"
    );
}
