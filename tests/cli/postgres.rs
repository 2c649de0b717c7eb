//! The `keywarden` command on a shared PostgreSQL catalog: init, the secret
//! verbs, check, backup and restore, and `catalog copy` in both directions
//! between SQLite and PostgreSQL. The catalog URL carries a password (the
//! test server trusts every connection) that must never be printed.

use std::path::Path;

use crate::common::cli::{Keywarden, Outcome, table_value};
use crate::common::{Kind, Raw, admin};
use keywarden::config::{CatalogLocation, Config};
use keywarden::model::{Acl, BackendId, Consumer, SecretId, UserId};
use keywarden::store::{KeyOrder, KeyPairOrder, NewSecret, SecretStore};

const PASSWORD: &str = "hunter2-not-shown";

/// A fresh schema on the test server, as a URL with a password in it.
fn pg_catalog(kind: &Kind, dir: &Path) -> String {
    kind.fresh_catalog(dir).expose_text().replacen(
        "postgresql://postgres@",
        &format!("postgresql://postgres:{PASSWORD}@"),
        1,
    )
}

/// Runs the command in `kw`'s directory with the config named `config`
/// there; the catalog's password is never printed.
fn run(kw: &Keywarden, config: &str, args: &[&str]) -> Outcome {
    let out = kw.run_with_config(&kw.path(config), args);
    assert!(
        !out.stdout.contains(PASSWORD) && !out.stderr.contains(PASSWORD),
        "the password was printed: {out:?}"
    );
    out
}

fn ok(kw: &Keywarden, config: &str, args: &[&str]) -> String {
    run(kw, config, args).assert_ok(args)
}

fn refused(kw: &Keywarden, config: &str, args: &[&str], phrase: &str) {
    run(kw, config, args).assert_refused(phrase);
}

#[test]
fn init_store_get_check_backup_and_restore_on_postgres() {
    let Some(kind) = Kind::postgres() else { return };
    let kw = Keywarden::uninitialised();
    let url = pg_catalog(&kind, kw.dir());
    let out = ok(&kw, "kw.toml", &["init", "--database", &url]);
    assert!(
        out.contains("Created catalog postgresql://postgres:***@"),
        "{out}"
    );
    // The catalog belongs to that config now.
    refused(
        &kw,
        "other.toml",
        &["init", "--database", &url],
        "already holds",
    );
    assert!(!kw.path("other.toml").exists());

    let stored = ok(
        &kw,
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
    let kept = table_value(&stored, "Secret href");
    let gone = table_value(
        &ok(
            &kw,
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
    let got = ok(&kw, "kw.toml", &["secret", "get", &kept, "--payload"]);
    assert!(got.contains("kept-payload"), "{got}");
    let check = ok(&kw, "kw.toml", &["check"]);
    assert!(
        check.contains("Secrets: 2 (2 with payload, all authenticated)"),
        "{check}"
    );
    assert!(check.contains("OK"), "{check}");

    let backup = ok(&kw, "kw.toml", &["backup", "--output", "b.db"]);
    assert!(backup.contains("Backed up 2 secrets"), "{backup}");
    ok(&kw, "kw.toml", &["secret", "delete", &gone]);
    refused(&kw, "kw.toml", &["restore", "b.db"], "pass --force");
    let restored = ok(&kw, "kw.toml", &["restore", "b.db", "--force"]);
    assert!(restored.contains("Restored 2 secrets"), "{restored}");
    let back = ok(&kw, "kw.toml", &["secret", "get", &gone, "--payload"]);
    assert!(back.contains("gone-payload"), "{back}");
    assert!(ok(&kw, "kw.toml", &["check"]).contains("OK"));
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

fn write_config(kw: &Keywarden, name: &str, config: &Config) {
    std::fs::write(kw.path(name), config.to_toml().as_bytes()).unwrap();
}

#[test]
fn catalog_copy_moves_a_whole_store_both_ways_and_verifies_it() {
    let Some(kind) = Kind::postgres() else { return };
    let kw = Keywarden::uninitialised();
    let mut config = Config::generate(kw.path("kw.db")).unwrap();
    write_config(&kw, "kw.toml", &config);
    let written = populate(&SecretStore::open(&config).unwrap());

    let url = pg_catalog(&kind, kw.dir());
    let out = ok(
        &kw,
        "kw.toml",
        &[
            "catalog",
            "copy",
            "--from",
            &config.catalog.expose_text(),
            "--to",
            &url,
        ],
    );
    assert!(out.contains("19 secrets (18 with payload)"), "{out}");
    assert!(
        out.contains("2 orders, 1 containers, 1 consumers, 3 project KEKs"),
        "{out}"
    );
    assert!(out.contains("holds exactly the rows copied"), "{out}");
    assert!(out.contains("all 18 stored secrets authenticate"), "{out}");

    // A destination that holds rows is replaced only when asked.
    refused(
        &kw,
        "kw.toml",
        &[
            "catalog",
            "copy",
            "--from",
            &config.catalog.expose_text(),
            "--to",
            &url,
        ],
        "--force",
    );
    refused(
        &kw,
        "kw.toml",
        &["catalog", "copy", "--from", &url, "--to", &url],
        "same catalog",
    );

    // The store now served from PostgreSQL: everything readable, ACL and
    // consumer and mapping kept.
    let sqlite_catalog = config.catalog.clone();
    config.catalog = url.parse().unwrap();
    write_config(&kw, "pg.toml", &config);
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
    let got = ok(
        &kw,
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
    let out = ok(
        &kw,
        "pg.toml",
        &["catalog", "copy", "--from", &url, "--to", "sqlite:back.db"],
    );
    assert!(out.contains("20 secrets (19 with payload)"), "{out}");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(kw.path("back.db")).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "a new SQLite catalog is private");
    config.catalog = CatalogLocation::Sqlite(kw.path("back.db"));
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
    let kw = Keywarden::uninitialised();
    let config = Config::generate(kw.path("kw.db")).unwrap();
    write_config(&kw, "kw.toml", &config);
    populate(&SecretStore::open(&config).unwrap());
    let other = Config::generate(kw.path("other.db")).unwrap();
    write_config(&kw, "other.toml", &other);
    let url = pg_catalog(&kind, kw.dir());
    refused(
        &kw,
        "other.toml",
        &[
            "catalog",
            "copy",
            "--from",
            &config.catalog.expose_text(),
            "--to",
            &url,
        ],
        "Integrity",
    );
    // Nothing was written: the schema was not even made.
    let mut raw = Raw::open(
        &url.replacen(&format!(":{PASSWORD}"), "", 1)
            .parse()
            .unwrap(),
    );
    let e = raw.exec("SELECT 1 FROM secrets").unwrap_err();
    assert!(e.contains("does not exist"), "{e}");
}
