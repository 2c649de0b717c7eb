//! The server going away: a restart gives `Unavailable`, then service
//! resumes; dropped connections are replaced; an unreachable server and a
//! statement timeout are `Unavailable`.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use keywarden::ErrorKind;
use keywarden::config::Config;
use keywarden::model::SecretId;
use keywarden::store::SecretStore;

use crate::common::{Kind, Raw, admin};
use crate::{THREADS, shared_config, text};

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
