//! Backup and restore: the guide's §4.6, a backup the configured master KEK
//! cannot open, and a backup taken while four writers run. The one-line
//! refusals of `backup` and `restore` are tables in `refusals`.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::common::cli::{Keywarden, uuid_of};
use crate::set;
use keywarden::config::Config;
use keywarden::context::Context;
use keywarden::model::{ProjectId, SecretId, UserId};
use keywarden::store::{NewSecret, SecretStore};

#[test]
fn section_4_6_backup_and_restore() {
    let kw = Keywarden::new();
    let key = kw.field(
        &[
            "secret",
            "order",
            "create",
            "key",
            "--name",
            "backup-key",
            "--algorithm",
            "aes",
            "--bit-length",
            "256",
            "--mode",
            "ctr",
            "--payload-content-type",
            "application/octet-stream",
        ],
        "Secret href",
    );
    let secret = kw.store("backup-secret", "backed-up payload");
    let key_bytes = kw.payload_file(&key);
    let listed = kw.ok(&["secret", "list", "-f", "value"]);
    assert_eq!(kw.hrefs(), set(&[&key, &secret]));

    let backup = kw.path("keywarden-backup.db");
    let out = kw.ok(&["backup", "--output", backup.to_str().unwrap()]);
    assert!(out.contains("Backed up 2 secrets"), "{out}");
    assert!(
        out.contains(&format!("back up the config file {}", kw.config.display())),
        "names the config to keep: {out}"
    );
    assert!(
        out.contains("master KEK is NOT in the backup"),
        "the guide's §4.6.1.1 reminder: {out}"
    );
    kw.refused_unchanged(
        &["backup", "--output", backup.to_str().unwrap()],
        "already exists",
    );

    // The catalog has secrets: restore wants --force.
    let line = kw.refused_unchanged(&["restore", backup.to_str().unwrap()], "--force");
    assert!(line.starts_with("Conflict"), "{line}");

    kw.ok(&["secret", "delete", &key]);
    kw.ok(&["secret", "delete", &secret]);
    assert_eq!(kw.ok(&["secret", "list"]), "", "an empty list");

    // Now the catalog holds no secrets: no --force needed.
    let out = kw.ok(&["restore", backup.to_str().unwrap()]);
    assert!(out.contains("Restored 2 secrets"), "{out}");
    assert_eq!(
        kw.ok(&["secret", "list", "-f", "value"]),
        listed,
        "same hrefs and metadata"
    );
    assert_eq!(kw.payload(&secret), "backed-up payload");
    assert_eq!(kw.payload_file(&key), key_bytes);
    kw.ok(&["check"]);

    // --force replaces a catalog that holds secrets.
    let extra = kw.store("extra", "x");
    kw.ok(&["restore", "--force", backup.to_str().unwrap()]);
    assert_eq!(kw.ok(&["secret", "list", "-f", "value"]), listed);
    kw.refused_unchanged(&["secret", "get", &extra], "Not Found");
    assert_eq!(
        kw.leftover_files(),
        BTreeSet::from(["keywarden-backup.db".to_owned(), "keywarden.db".to_owned()]),
        "restore leaves no scratch copies"
    );
}

/// The whole backup is checked as a store before anything is replaced:
/// one secret that does not authenticate refuses it.
#[test]
fn restore_refuses_a_backup_with_a_secret_that_does_not_authenticate() {
    let kw = Keywarden::new();
    kw.store("kept", "1");
    let tampered = kw.store("tampered", "2");
    let backup = kw.path("b.db");
    kw.ok(&["backup", "--output", backup.to_str().unwrap()]);
    crate::common::cli::flip_byte(&backup, "secrets", "stored", Some(uuid_of(&tampered)));
    let line = kw.refused_unchanged(
        &["restore", "--force", backup.to_str().unwrap()],
        "do not authenticate",
    );
    assert!(line.contains("nothing was replaced"), "{line}");
    assert!(line.contains(uuid_of(&tampered)), "{line}");
    assert_eq!(kw.payload(&tampered), "2");
}

#[test]
fn restore_refuses_a_backup_the_configured_master_kek_cannot_open() {
    let theirs = Keywarden::new();
    theirs.store("theirs", "1");
    let backup = theirs.path("theirs.db");
    theirs.ok(&["backup", "--output", backup.to_str().unwrap()]);

    let ours = Keywarden::new();
    ours.store("ours", "2");
    let line = ours.refused_unchanged(
        &["restore", "--force", backup.to_str().unwrap()],
        "does not open 1 of 1 project KEKs",
    );
    assert!(line.contains("nothing was replaced"), "{line}");

    let empty = Keywarden::new();
    empty.refused_unchanged(
        &["restore", backup.to_str().unwrap()],
        "cannot be restored under this config",
    );
    empty.refused_unchanged(&["restore", "no-such-backup.db"], "does not exist");
}

#[test]
fn backup_while_four_writers_run_loses_nothing() {
    const WRITERS: usize = 4;
    const ACKED_BEFORE_BACKUP: usize = 40;

    let kw = Keywarden::new();
    let config = Config::from_file(&kw.config).unwrap();
    // Per writer: what its store has acknowledged, in order.
    let acked: Arc<Vec<Mutex<Vec<Ack>>>> =
        Arc::new((0..WRITERS).map(|_| Mutex::default()).collect());
    let stop = StopOnDrop(Arc::new(AtomicBool::new(false)));
    let mut writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (config, acked, stop) = (config.clone(), acked.clone(), stop.0.clone());
            // Each writer opens its own store from the config, as separate
            // services sharing one catalog would.
            thread::spawn(move || -> keywarden::Result<usize> {
                let store = SecretStore::open(&config)?;
                let ctx = default_admin();
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    let payload = format!("writer {w} secret {n}");
                    let id = store.store_secret(
                        &ctx,
                        NewSecret::new().name(format!("w{w}-{n}")).payload_text(
                            payload.as_str(),
                            Some("text/plain"),
                            None,
                        ),
                    )?;
                    acked[w].lock().unwrap().push(Ack { id, payload });
                    n += 1;
                }
                Ok(n)
            })
        })
        .collect();
    let acked_now =
        || -> Vec<Vec<Ack>> { acked.iter().map(|a| a.lock().unwrap().clone()).collect() };

    // Every writer has had a store acknowledged (SQLite serves separate
    // connections' writers unfairly, so this can take a while for one).
    let deadline = Instant::now() + Duration::from_secs(20);
    let before_backup = loop {
        let now = acked_now();
        if now.iter().all(|a| !a.is_empty())
            && now.iter().map(Vec::len).sum::<usize>() >= ACKED_BEFORE_BACKUP
        {
            break now;
        }
        assert!(
            Instant::now() < deadline,
            "writers made no progress: {:?}",
            now.iter().map(Vec::len).collect::<Vec<_>>()
        );
        if let Some(w) = writers.iter().position(|w| w.is_finished()) {
            panic!("writer {w} stopped: {:?}", writers.swap_remove(w).join());
        }
        thread::sleep(Duration::from_millis(5));
    };
    let backup = kw.path("under-load.db");
    let out = kw.ok(&["backup", "--output", backup.to_str().unwrap()]);
    assert!(out.contains("master KEK is NOT in the backup"), "{out}");
    stop.0.store(true, Ordering::SeqCst);
    for (w, writer) in writers.into_iter().enumerate() {
        let n = writer
            .join()
            .unwrap()
            .expect("every writer's stores succeed");
        assert_eq!(n, acked[w].lock().unwrap().len());
    }
    let before_backup: Vec<Ack> = before_backup.into_iter().flatten().collect();

    // Every secret acknowledged before the backup started is in it.
    let in_backup: BTreeSet<String> = column(&backup, "SELECT id FROM secrets");
    for Ack { id, .. } in &before_backup {
        assert!(in_backup.contains(&id.to_string()), "{id} missing");
    }

    // Restored into a fresh directory under the same config, the store opens
    // and reads those payloads.
    let fresh = Keywarden::uninitialised();
    fs::copy(&kw.config, &fresh.config).unwrap();
    let out = fresh.ok(&["restore", backup.to_str().unwrap()]);
    assert!(
        out.contains(&format!("Restored {} secrets", in_backup.len())),
        "{out}"
    );
    assert!(fresh.ok(&["check"]).ends_with("OK\n"));
    let restored = SecretStore::open(&Config::from_file(&fresh.config).unwrap()).unwrap();
    let ctx = default_admin();
    for Ack { id, payload } in &before_backup {
        let got = restored.payload(&ctx, id).expect("restored payload");
        assert_eq!(got.bytes.expose_secret(), payload.as_bytes());
    }
    // And through the command, for the first secret of each writer.
    for w in 0..WRITERS {
        let first = format!("writer {w} secret 0");
        let ack = before_backup.iter().find(|a| a.payload == first).unwrap();
        assert_eq!(fresh.payload(&ack.id.to_string()), first);
    }
}

/// A secret a writer's store acknowledged, with its payload.
#[derive(Clone)]
struct Ack {
    id: SecretId,
    payload: String,
}

/// Stops the writer threads however the test ends.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// The identity the command uses when given none.
fn default_admin() -> Context {
    Context::new(
        UserId::new("admin").unwrap(),
        ProjectId::new("default").unwrap(),
        ["admin"],
    )
}

/// The one column of every row `sql` returns from a SQLite file.
fn column(db: &Path, sql: &str) -> BTreeSet<String> {
    let c = Connection::open(db).unwrap();
    c.prepare(sql)
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}
