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
//!
//! One test binary with a module per topic. What a child runs
//! (`child_worker` and its workload) is here, at the crate root:
//! `processes::spawn_children` runs it by that exact name.
#![cfg(feature = "postgres")]

#[path = "../common/mod.rs"]
mod common;

mod instances;
mod outage;
mod processes;
mod rotation;
mod schema;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Kind, admin};
use keywarden::ErrorKind;
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
