//! Several processes (this binary run again as `child_worker`): four
//! processes of four threads lose and duplicate nothing, and one killed
//! with SIGKILL leaves nothing half-written.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use keywarden::ErrorKind;
use keywarden::config::Config;
use keywarden::model::SecretId;
use keywarden::store::SecretStore;

use crate::common;
use crate::common::{Kind, Raw, admin};
use crate::{CHILD_ENV, CHILD_SECS_ENV, THREADS, shared_config};

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
    common::write_private(&path, config.to_toml().as_bytes());
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
