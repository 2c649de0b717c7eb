//! A whole master-KEK rotation on one PostgreSQL catalog while two
//! processes (this binary run again as `rotation::rotation_child`) store
//! and read without pause: stage (the new key into every instance's
//! config, which each reloads without a restart), rotate, every config
//! rotated, prune, every config pruned. No request of either process
//! fails, and afterwards everything they acknowledged reads back under the
//! new key alone.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use keywarden::ErrorKind;
use keywarden::backend::{MasterKek, MasterKekStatus};
use keywarden::config::{BackendConfig, Config};
use keywarden::model::SecretId;
use keywarden::store::SecretStore;

use crate::common::{self, Kind, Raw, admin};
use crate::{THREADS, shared_config, text};

const CHILD_CONFIG_ENV: &str = "KEYWARDEN_TEST_ROTATION_CONFIG";
const CHILD_STOP_ENV: &str = "KEYWARDEN_TEST_ROTATION_STOP";

/// Runs as a child when the environment says so: `THREADS` threads store
/// (one in five into a project new to the catalog, so project KEKs are made
/// throughout) and read back until the stop file appears, while the main
/// thread reloads the master keys whenever the config file changes. Any
/// failed request panics, and the child exits non-zero.
#[test]
fn rotation_child() {
    let Ok(config_path) = std::env::var(CHILD_CONFIG_ENV) else {
        return; // not a child
    };
    let stop_file = PathBuf::from(std::env::var(CHILD_STOP_ENV).unwrap());
    let mut seen = std::fs::read(&config_path).unwrap();
    let config = Config::from_file(&config_path).unwrap();
    let store = Arc::new(SecretStore::open(&config).unwrap());
    let done = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (store, done) = (store.clone(), done.clone());
            std::thread::spawn(move || load(&store, t, &done))
        })
        .collect();
    while !stop_file.exists() {
        std::thread::sleep(Duration::from_millis(50));
        let now = std::fs::read(&config_path).unwrap();
        if now != seen {
            let config = Config::from_file(&config_path).unwrap();
            store
                .reload_master_keys(&config)
                .unwrap_or_else(|e| panic!("reload: {e}"));
            println!("RELOADED");
            seen = now;
        }
    }
    done.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
}

fn load(store: &SecretStore, thread: usize, done: &AtomicBool) {
    let pid = std::process::id();
    let mut mine: Vec<(SecretId, String, String)> = Vec::new();
    let mut seq = 0u64;
    while !done.load(Ordering::Relaxed) {
        seq += 1;
        if seq.is_multiple_of(3) && !mine.is_empty() {
            let (id, project, payload) = &mine[(seq as usize * 7919) % mine.len()];
            let got = store
                .payload(&admin(project), id)
                .unwrap_or_else(|e| panic!("read {id}: {e}"));
            assert_eq!(got.bytes.expose_secret(), payload.as_bytes());
            continue;
        }
        let project = if seq.is_multiple_of(5) {
            format!("fresh-{pid}-{thread}-{seq}")
        } else {
            format!("shared-{}", seq % 4)
        };
        let payload = format!("r{pid}-t{thread}-{seq}");
        let id = store
            .store_secret(&admin(&project), text(&payload))
            .unwrap_or_else(|e| panic!("store into {project}: {e}"));
        println!("ACK {id} {project} {payload}");
        mine.push((id, project, payload));
    }
}

struct Spawned {
    child: Child,
    lines: JoinHandle<Vec<(Instant, String)>>,
}

fn spawn(config: &Path, stop: &Path) -> Spawned {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "rotation::rotation_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_CONFIG_ENV, config)
        .env(CHILD_STOP_ENV, stop)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let lines = std::thread::spawn(move || {
        BufReader::new(out)
            .lines()
            .map_while(Result::ok)
            .map(|l| (Instant::now(), l))
            .collect()
    });
    Spawned { child, lines }
}

/// `config` with its default backend's keys replaced.
fn with_keys(
    config: &Config,
    active: &MasterKek,
    staged: &[&MasterKek],
    retired: &[&MasterKek],
) -> Config {
    let mut c = config.clone();
    c.backends.insert(
        c.default_backend.clone(),
        BackendConfig::SimpleCrypto {
            master_kek: active.clone(),
            staged_master_keks: staged.iter().map(|k| (*k).clone()).collect(),
            retired_master_keks: retired.iter().map(|k| (*k).clone()).collect(),
        },
    );
    c
}

/// Replaces the file at once (a child never reads half of it).
fn write_config(path: &Path, config: &Config) {
    let tmp = path.with_extension("tmp");
    common::write_private(&tmp, config.to_toml().as_bytes());
    std::fs::rename(&tmp, path).unwrap();
}

/// Polls the rollout status until `done` holds for it.
fn wait_for(store: &SecretStore, what: &str, done: impl Fn(&MasterKekStatus) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = store.operator().master_kek_status().unwrap().remove(0);
        if done(&status) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting until {what}: {status:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The children's instances in a status (not the operator's own).
fn children(status: &MasterKekStatus) -> Vec<&keywarden::backend::KekInstance> {
    status
        .instances
        .iter()
        .filter(|i| i.instance_id != status.this_instance)
        .collect()
}

#[test]
fn two_processes_under_load_through_a_staged_rotation_and_prune() {
    let Some(kind) = Kind::postgres() else { return };
    let dir = tempfile::tempdir().unwrap();
    let config = shared_config(&kind, dir.path());
    let backend = config.default_backend.clone();
    let k1 = config.master_kek(&backend).unwrap().clone();
    let k2 = MasterKek::generate().unwrap();
    let (f1, f2) = (k1.fingerprint(), k2.fingerprint());
    let paths: Vec<PathBuf> = (0..2)
        .map(|i| dir.path().join(format!("instance-{i}.toml")))
        .collect();
    for p in &paths {
        write_config(p, &config);
    }
    let stop = dir.path().join("stop");
    let operator = SecretStore::open(&config).unwrap();
    let kids: Vec<Spawned> = paths.iter().map(|p| spawn(p, &stop)).collect();
    wait_for(&operator, "both children run", |s| children(s).len() == 2);
    std::thread::sleep(Duration::from_millis(700));

    // 1. Stage: K2 into every instance's config; each reloads it.
    let staged = with_keys(&config, &k1, &[&k2], &[]);
    for p in &paths {
        write_config(p, &staged);
    }
    wait_for(&operator, "both children hold K2", |s| {
        children(s).iter().all(|i| i.known.contains(&f2)) && children(s).len() == 2
    });
    std::thread::sleep(Duration::from_millis(500));

    // 2. Rotate, from an operator config with K2 active and K1 retired.
    let rotated = with_keys(&config, &k2, &[], &[&k1]);
    drop(operator);
    let operator = SecretStore::open(&rotated).unwrap();
    let n = operator.operator().rewrap_project_keks(&backend).unwrap();
    assert!(n >= 4, "{n} project KEKs rewrapped");
    let rotated_at = Instant::now();
    std::thread::sleep(Duration::from_millis(700));

    // 3. The prune waits while the children still have K1 as master_kek.
    let e = operator.operator().check_prune(&backend).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    for p in &paths {
        write_config(p, &rotated);
    }
    wait_for(&operator, "both children run on K2", |s| {
        children(s).iter().all(|i| i.configured_active == f2) && children(s).len() == 2
    });
    operator.operator().check_prune(&backend).unwrap();
    let pruned = with_keys(&config, &k2, &[], &[]);
    for p in &paths {
        write_config(p, &pruned);
    }
    wait_for(&operator, "both children hold K2 alone", |s| {
        children(s).iter().all(|i| i.known == [f2.clone()]) && children(s).len() == 2
    });
    let pruned_at = Instant::now();
    std::thread::sleep(Duration::from_millis(700));
    common::write_private(&stop, b"");

    let mut acked = Vec::new();
    for (i, s) in kids.into_iter().enumerate() {
        let status = { s.child }.wait().unwrap();
        let lines = s.lines.join().unwrap();
        assert!(status.success(), "child {i} had a failed request: {status}");
        let reloads = lines.iter().filter(|(_, l)| l.contains("RELOADED")).count();
        assert_eq!(reloads, 3, "child {i} reloaded stage, rotate and prune");
        let mut after = [0; 2];
        for (t, line) in &lines {
            let Some(at) = line.find("ACK ") else {
                continue;
            };
            let parts: Vec<&str> = line[at..].split(' ').collect();
            let [_, id, project, payload] = parts.as_slice() else {
                panic!("unexpected child output {line:?}")
            };
            after[0] += usize::from(*t > rotated_at);
            after[1] += usize::from(*t > pruned_at);
            acked.push((
                id.parse::<SecretId>().unwrap(),
                project.to_string(),
                payload.to_string(),
            ));
        }
        assert!(
            after[0] > 10 && after[1] > 10,
            "child {i} kept storing after the rotation and the prune: {after:?}"
        );
    }
    drop(operator);
    eprintln!(
        "{} stores acknowledged through the rollout; {n} project KEKs rewrapped",
        acked.len()
    );
    assert!(acked.len() > 200, "only {} stores", acked.len());

    // Everything reads back under K2 alone; nothing is wrapped by K1.
    let store = SecretStore::open(&pruned).unwrap();
    for (id, project, payload) in &acked {
        let got = store
            .payload(&admin(project), id)
            .unwrap_or_else(|e| panic!("acknowledged {id} unreadable: {e}"));
        assert_eq!(got.bytes.expose_secret(), payload.as_bytes());
    }
    let checked = store.operator().verify_secrets().unwrap();
    assert!(checked.failed.is_empty(), "{:?}", checked.failed);
    assert_eq!(checked.checked as usize, acked.len());
    let mut raw = Raw::open(&config.catalog);
    assert_eq!(
        raw.count(&format!("project_keks WHERE master_fingerprint <> '{f2}'")),
        0
    );
    assert_eq!(
        raw.count(&format!("project_keks WHERE master_fingerprint = '{f1}'")),
        0
    );
}
