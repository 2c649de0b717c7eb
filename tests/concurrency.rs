//! Several threads and several processes storing into one SQLite file lose
//! nothing, and racing first stores of a project agree on one project KEK.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use common::{admin, raw_count};
use keywarden::config::Config;
use keywarden::model::SecretId;
use keywarden::store::{NewSecret, SecretStore};

const PER_WRITER: usize = 100;
const CHILD_ENV: &str = "KEYWARDEN_TEST_CHILD_WRITER";

fn store_many(store: &SecretStore, tag: &str, n: usize) -> Vec<(SecretId, String)> {
    (0..n)
        .map(|i| {
            let payload = format!("{tag}-{i}");
            let project = format!("proj-{}", i % 3);
            let id = store
                .store_secret(
                    &admin(&project),
                    NewSecret::new().name(&payload).payload_text(
                        &payload,
                        Some("text/plain"),
                        None,
                    ),
                )
                .expect("store");
            (id, payload)
        })
        .collect()
}

fn verify_all(store: &SecretStore, written: &[(SecretId, String)]) {
    let ids: HashSet<_> = written.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids.len(), written.len(), "ids are unique");
    for (id, payload) in written {
        let project = store.secret(&admin("proj-0"), id).map(|m| m.project_id);
        let project = match project {
            Ok(p) => p,
            Err(_) => ["proj-1", "proj-2"]
                .iter()
                .find_map(|p| store.secret(&admin(p), id).ok().map(|m| m.project_id))
                .expect("every acknowledged secret exists"),
        };
        let got = store
            .payload(&admin(project.as_str()), id)
            .expect("payload");
        assert_eq!(got.bytes.expose_secret(), payload.as_bytes());
    }
}

#[test]
fn four_threads_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::generate(dir.path().join("k.db")).unwrap();
    let store = Arc::new(SecretStore::open(&config).unwrap());
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || store_many(&store, &format!("t{t}"), PER_WRITER))
        })
        .collect();
    let written: Vec<_> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert_eq!(written.len(), 4 * PER_WRITER);
    assert_eq!(
        raw_count(&dir.path().join("k.db"), "secrets"),
        (4 * PER_WRITER) as i64
    );
    assert_eq!(
        raw_count(&dir.path().join("k.db"), "project_keks"),
        3,
        "one KEK per project"
    );
    verify_all(&SecretStore::open(&config).unwrap(), &written);
}

/// Runs as a child process when the environment says so: stores into the
/// config given and prints the ids it got acknowledged.
#[test]
fn child_writer() {
    let Ok(config_path) = std::env::var(CHILD_ENV) else {
        return; // not a child: nothing to do
    };
    let config = Config::from_file(&config_path).unwrap();
    let store = SecretStore::open(&config).unwrap();
    let tag = format!("pid{}", std::process::id());
    for (id, payload) in store_many(&store, &tag, PER_WRITER) {
        println!("ACK {id} {payload}");
    }
}

#[test]
fn two_processes_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::generate(dir.path().join("k.db")).unwrap();
    let config_path = dir.path().join("keywarden.toml");
    common::write_private(&config_path, config.to_toml().as_bytes());
    // Create the schema once so both children race only on data.
    drop(SecretStore::open(&config).unwrap());

    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| {
            Command::new(&exe)
                .args(["--exact", "child_writer", "--nocapture", "--test-threads=1"])
                .env(CHILD_ENV, &config_path)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut written = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "child failed");
        for line in String::from_utf8(out.stdout).unwrap().lines() {
            // The harness may print its own "test child_writer ... " first.
            if let Some(rest) = line.find("ACK ").map(|at| &line[at + 4..]) {
                let (id, payload) = rest.split_once(' ').unwrap();
                written.push((id.parse().unwrap(), payload.to_owned()));
            }
        }
    }
    assert_eq!(written.len(), 2 * PER_WRITER);
    assert_eq!(
        raw_count(Path::new(&dir.path().join("k.db")), "secrets"),
        (2 * PER_WRITER) as i64
    );
    assert_eq!(raw_count(&dir.path().join("k.db"), "project_keks"), 3);
    verify_all(&SecretStore::open(&config).unwrap(), &written);
}
