//! The `keywarden` command on a shared PostgreSQL catalog: init, the secret
//! verbs, check, backup and restore, and `catalog copy` in both directions
//! between SQLite and PostgreSQL. The catalog URL carries a password (the
//! test server trusts every connection) that must never be printed.
#![cfg(all(feature = "cli", feature = "postgres"))]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{Kind, Raw, admin};
use keywarden::config::Config;
use keywarden::model::{Acl, BackendId, Consumer, SecretId, UserId};
use keywarden::store::{KeyOrder, KeyPairOrder, NewSecret, SecretStore};

const PASSWORD: &str = "hunter2-not-shown";

/// A fresh schema on the test server, as a URL with a password in it.
fn pg_catalog(kind: &Kind, dir: &Path) -> String {
    kind.fresh_catalog(dir).replacen(
        "postgresql://postgres@",
        &format!("postgresql://postgres:{PASSWORD}@"),
        1,
    )
}

struct Run {
    dir: tempfile::TempDir,
}

impl Run {
    fn new() -> Self {
        Run {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, config: &str, args: &[&str]) -> (bool, String, String) {
        let out: Output = Command::new(env!("CARGO_BIN_EXE_keywarden"))
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .env_remove("KEYWARDEN_CONFIG")
            .arg("--config")
            .arg(self.path(config))
            .args(args)
            .output()
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        );
        assert!(
            !stdout.contains(PASSWORD) && !stderr.contains(PASSWORD),
            "the password was printed: {stdout} {stderr}"
        );
        (out.status.success(), stdout, stderr)
    }

    fn ok(&self, config: &str, args: &[&str]) -> String {
        let (ok, stdout, stderr) = self.run(config, args);
        assert!(ok, "{args:?} failed: {stderr}");
        stdout
    }

    fn refused(&self, config: &str, args: &[&str], phrase: &str) {
        let (ok, stdout, stderr) = self.run(config, args);
        assert!(!ok, "{args:?} succeeded: {stdout}");
        assert!(stderr.contains(phrase), "{args:?}: {stderr}");
    }
}

fn field(out: &str, name: &str) -> String {
    out.lines()
        .find_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells.len() > 2 && cells[1] == name).then(|| cells[2].to_owned())
        })
        .unwrap_or_else(|| panic!("no {name} in {out}"))
}

#[test]
fn init_store_get_check_backup_and_restore_on_postgres() {
    let Some(kind) = Kind::postgres() else { return };
    let run = Run::new();
    let url = pg_catalog(&kind, run.dir.path());
    let out = run.ok("kw.toml", &["init", "--database", &url]);
    assert!(
        out.contains("Created catalog postgresql://postgres:***@"),
        "{out}"
    );
    // The catalog belongs to that config now.
    run.refused("other.toml", &["init", "--database", &url], "already holds");
    assert!(!run.path("other.toml").exists());

    let stored = run.ok(
        "kw.toml",
        &[
            "secret",
            "store",
            "--name",
            "kept",
            "--payload",
            "kept-payload",
        ],
    );
    let kept = field(&stored, "Secret href");
    let gone = field(
        &run.ok(
            "kw.toml",
            &[
                "secret",
                "store",
                "--name",
                "gone",
                "--payload",
                "gone-payload",
            ],
        ),
        "Secret href",
    );
    let got = run.ok("kw.toml", &["secret", "get", &kept, "--payload"]);
    assert!(got.contains("kept-payload"), "{got}");
    let check = run.ok("kw.toml", &["check"]);
    assert!(
        check.contains("Secrets: 2 (2 with payload, all authenticated)"),
        "{check}"
    );
    assert!(check.contains("OK"), "{check}");

    let backup = run.ok("kw.toml", &["backup", "--output", "b.db"]);
    assert!(backup.contains("Backed up 2 secrets"), "{backup}");
    run.ok("kw.toml", &["secret", "delete", &gone]);
    run.refused("kw.toml", &["restore", "b.db"], "pass --force");
    let restored = run.ok("kw.toml", &["restore", "b.db", "--force"]);
    assert!(restored.contains("Restored 2 secrets"), "{restored}");
    let back = run.ok("kw.toml", &["secret", "get", &gone, "--payload"]);
    assert!(back.contains("gone-payload"), "{back}");
    assert!(run.ok("kw.toml", &["check"]).contains("OK"));
}

/// A store holding one of everything the catalog keeps.
fn populate(store: &SecretStore) -> Vec<(SecretId, String, String)> {
    let mut written = Vec::new();
    for p in 0..3 {
        let project = format!("project-{p}");
        for i in 0..5 {
            let payload = format!("payload-{p}-{i}");
            let id = store
                .store_secret(
                    &admin(&project),
                    NewSecret::new().name(format!("s{i}")).payload_text(
                        &payload,
                        Some("text/plain"),
                        None,
                    ),
                )
                .unwrap();
            written.push((id, project.clone(), payload));
        }
    }
    let c = admin("project-0");
    store
        .store_secret(&c, NewSecret::new().name("no payload yet"))
        .unwrap();
    store.create_key(&c, &KeyOrder::aes(256)).unwrap();
    store
        .create_key_pair(
            &c,
            &KeyPairOrder {
                name: Some("pair".into()),
                algorithm: "rsa".into(),
                bit_length: 2048,
                expiration: None,
                passphrase: None,
            },
        )
        .unwrap();
    let (first, _, _) = &written[0];
    store
        .add_consumer(
            &c,
            first,
            Consumer {
                service: "cinder".into(),
                resource_type: "volume".into(),
                resource_id: "v1".into(),
            },
        )
        .unwrap();
    store
        .set_acl(
            &c,
            first,
            Acl {
                users: vec![UserId::new("bob").unwrap()],
                project_access: false,
            },
        )
        .unwrap();
    store
        .set_project_backend(&admin("project-2"), &BackendId::new("software").unwrap())
        .unwrap();
    written
}

fn write_config(run: &Run, name: &str, config: &Config) {
    std::fs::write(run.path(name), config.to_toml().as_bytes()).unwrap();
}

#[test]
fn catalog_copy_moves_a_whole_store_both_ways_and_verifies_it() {
    let Some(kind) = Kind::postgres() else { return };
    let run = Run::new();
    let mut config = Config::generate(run.path("kw.db")).unwrap();
    write_config(&run, "kw.toml", &config);
    let written = populate(&SecretStore::open(&config).unwrap());

    let url = pg_catalog(&kind, run.dir.path());
    let out = run.ok(
        "kw.toml",
        &["catalog", "copy", "--from", &config.catalog, "--to", &url],
    );
    assert!(out.contains("19 secrets (18 with payload)"), "{out}");
    assert!(
        out.contains("2 orders, 1 containers, 1 consumers, 3 project KEKs"),
        "{out}"
    );
    assert!(out.contains("holds exactly the rows copied"), "{out}");
    assert!(out.contains("all 18 stored secrets authenticate"), "{out}");

    // A destination that holds rows is replaced only when asked.
    run.refused(
        "kw.toml",
        &["catalog", "copy", "--from", &config.catalog, "--to", &url],
        "--force",
    );
    run.refused(
        "kw.toml",
        &["catalog", "copy", "--from", &url, "--to", &url],
        "same catalog",
    );

    // The store now served from PostgreSQL: everything readable, ACL and
    // consumer and mapping kept.
    let sqlite_catalog = config.catalog.clone();
    config.catalog = url.clone();
    write_config(&run, "pg.toml", &config);
    let on_pg = SecretStore::open(&config).unwrap();
    for (id, project, payload) in &written {
        let got = on_pg.payload(&admin(project), id).unwrap();
        assert_eq!(got.bytes.expose_secret(), payload.as_bytes());
    }
    let (first, _, _) = &written[0];
    assert_eq!(
        on_pg.acl(&admin("project-0"), first).unwrap().users.len(),
        1
    );
    assert_eq!(
        on_pg.consumers(&admin("project-0"), first).unwrap().len(),
        1
    );
    assert!(
        on_pg.project_backend(&admin("project-2")).unwrap().1,
        "mapping copied"
    );
    let href = format!("http://localhost:9311/v1/secrets/{}", written[3].0);
    let got = run.ok(
        "pg.toml",
        &[
            "--os-project-id",
            "project-0",
            "secret",
            "get",
            &href,
            "--payload",
        ],
    );
    assert!(got.contains(&written[3].2), "{got}");
    // A write on PostgreSQL, then back to a new SQLite file.
    let later = on_pg
        .store_secret(
            &admin("project-1"),
            NewSecret::new().payload_text("written on pg", Some("text/plain"), None),
        )
        .unwrap();
    let out = run.ok(
        "pg.toml",
        &["catalog", "copy", "--from", &url, "--to", "sqlite:back.db"],
    );
    assert!(out.contains("20 secrets (19 with payload)"), "{out}");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(run.path("back.db"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "a new SQLite catalog is private");
    config.catalog = format!("sqlite:{}", run.path("back.db").display());
    let back = SecretStore::open(&config).unwrap();
    assert_eq!(
        back.payload(&admin("project-1"), &later)
            .unwrap()
            .bytes
            .expose_secret(),
        b"written on pg"
    );
    // The copy back holds everything, plus the secret written on PostgreSQL.
    let mut raw_a = Raw::open(&sqlite_catalog);
    let mut raw_b = Raw::open(&config.catalog);
    assert_eq!(raw_b.count("secrets"), raw_a.count("secrets") + 1);
}

#[test]
fn catalog_copy_refuses_a_source_the_config_cannot_open() {
    let Some(kind) = Kind::postgres() else { return };
    let run = Run::new();
    let config = Config::generate(run.path("kw.db")).unwrap();
    write_config(&run, "kw.toml", &config);
    populate(&SecretStore::open(&config).unwrap());
    let other = Config::generate(run.path("other.db")).unwrap();
    write_config(&run, "other.toml", &other);
    let url = pg_catalog(&kind, run.dir.path());
    run.refused(
        "other.toml",
        &["catalog", "copy", "--from", &config.catalog, "--to", &url],
        "Integrity",
    );
    // Nothing was written: the schema was not even made.
    let mut raw = Raw::open(&url.replacen(&format!(":{PASSWORD}"), "", 1));
    let e = raw.exec("SELECT 1 FROM secrets").unwrap_err();
    assert!(e.contains("does not exist"), "{e}");
}
