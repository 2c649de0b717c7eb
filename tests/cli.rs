//! The `keywarden` command, driven as an operator drives it: the built
//! binary, a fresh directory per test, `--config` always explicit and the
//! caller's `OS_*` / `KEYWARDEN_CONFIG` variables removed, so nothing from
//! the environment running the tests leaks in.
//!
//! Covers the seed guide's "Test barbican functionality" and chapter 4
//! walkthrough (list, add, update, delete, key orders, asymmetric orders and
//! containers, §4.6 backup and restore), the operator commands (project-store,
//! kek rotate/prune, check), every refusal the issue names (exit 1, one line
//! on stderr, nothing on stdout, nothing changed), and a backup taken while
//! four writers run.
#![cfg(feature = "cli")]

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
use rusqlite::Connection;
use rusqlite::types::ValueRef;
use sha2::{Digest as _, Sha256};

use keywarden::backend::MasterKek;
use keywarden::config::Config;
use keywarden::context::Context;
use keywarden::model::{ProjectId, SecretId, UserId};
use keywarden::store::{NewSecret, SecretStore};

/// The seed guide's field names, in its order.
const SECRET_FIELDS: [&str; 10] = [
    "Secret href",
    "Name",
    "Created",
    "Status",
    "Content types",
    "Algorithm",
    "Bit length",
    "Secret type",
    "Mode",
    "Expiration",
];
const ORDER_FIELDS: [&str; 8] = [
    "Order href",
    "Type",
    "Container href",
    "Secret href",
    "Created",
    "Status",
    "Error code",
    "Error message",
];
const SECRETS_BASE: &str = "http://localhost:9311/v1/secrets/";
const ORDERS_BASE: &str = "http://localhost:9311/v1/orders/";
const CONTAINERS_BASE: &str = "http://localhost:9311/v1/containers/";

const OBSERVER: Who = Who {
    user: "olga",
    project: "default",
    roles: "observer",
};
const AUDITOR: Who = Who {
    user: "audrey",
    project: "default",
    roles: "audit",
};
const ALICE_CREATOR: Who = Who {
    user: "alice",
    project: "default",
    roles: "creator",
};
const BOB_CREATOR: Who = Who {
    user: "bob",
    project: "default",
    roles: "creator",
};
const OTHER_PROJECT_ADMIN: Who = Who {
    user: "mallory",
    project: "other",
    roles: "admin",
};

// ---- the guide's walkthrough ----

#[test]
fn init_writes_a_private_config_once_and_never_takes_over_a_database() {
    let kw = Keywarden::new();
    assert_eq!(mode(&kw.config), 0o600, "the config holds the master KEK");
    assert!(kw.db().is_file());
    let text = fs::read_to_string(&kw.config).unwrap();
    assert!(text.contains("master_kek = \""), "{text}");

    let line = kw.refused_unchanged(&["init"], "already exists");
    assert!(line.contains("keywarden.toml"), "{line}");

    // A database left behind by another config is not adopted by a new one.
    fs::remove_file(&kw.config).unwrap();
    kw.refused(&["init"], "already exists");
    assert!(!kw.config.exists(), "a refused init writes no config");
}

#[test]
fn test_barbican_functionality_store_and_read_back() {
    let kw = Keywarden::new();
    let stored = kw.ok(&[
        "secret",
        "store",
        "--name",
        "testSecret",
        "--payload",
        "my-secret-payload",
    ]);
    assert_in_order(&stored, &SECRET_FIELDS);
    let href = table_value(&stored, "Secret href");
    assert_secret_href(&href);
    assert_eq!(table_value(&stored, "Name"), "testSecret");
    assert_eq!(table_value(&stored, "Status"), "ACTIVE");
    assert_eq!(
        table_value(&stored, "Content types"),
        "{'default': 'text/plain'}"
    );

    let payload = kw.ok(&["secret", "get", &href, "--payload"]);
    assert!(
        payload.contains("| Payload | my-secret-payload |"),
        "{payload}"
    );
    assert_eq!(
        kw.ok(&["secret", "get", &href, "--payload", "-f", "value"]),
        "my-secret-payload\n"
    );

    // The output formats, as the openstack client prints them.
    assert_eq!(
        kw.ok(&["secret", "get", &href, "-f", "value", "-c", "Secret href"]),
        format!("{href}\n"),
        "the bare href, as the guide's glance chapter uses it"
    );
    assert_eq!(
        kw.ok(&[
            "secret",
            "get",
            &href,
            "-f",
            "value",
            "-c",
            "Name",
            "-c",
            "Secret href"
        ]),
        format!("{href}\ntestSecret\n"),
        "columns keep the record's order"
    );
    let json = kw.ok(&["secret", "get", &href, "-f", "json"]);
    assert!(json.starts_with('{'), "{json}");
    assert!(json.trim_end().ends_with('}'), "{json}");
    assert!(
        json.contains(&format!("\"Secret href\": \"{href}\"")),
        "{json}"
    );
    assert!(json.contains("\"Bit length\": 256"), "{json}");
    assert!(json.contains("\"Expiration\": null"), "{json}");
    assert_in_order(&json, &SECRET_FIELDS);
    let shell = kw.ok(&["secret", "get", &href, "-f", "shell"]);
    assert!(
        shell
            .lines()
            .any(|l| l == format!("secret_href=\"{href}\"")),
        "{shell}"
    );
    assert!(shell.lines().any(|l| l == "name=\"testSecret\""), "{shell}");
    assert_eq!(shell.lines().count(), SECRET_FIELDS.len(), "{shell}");

    kw.refused_unchanged(
        &["secret", "get", &href, "-f", "value", "-c", "Colour"],
        "No recognized column",
    );
}

#[test]
fn chapter_4_list_add_update_delete() {
    let kw = Keywarden::new();
    let alpha = kw.store("alpha", "one");
    let beta = kw.store("beta", "two");

    let table = kw.ok(&["secret", "list"]);
    assert_in_order(&table, &SECRET_FIELDS);
    assert!(table.contains(&alpha) && table.contains(&beta), "{table}");
    assert_eq!(kw.hrefs(), set(&[&alpha, &beta]));
    assert_eq!(
        kw.ok(&[
            "secret",
            "list",
            "--name",
            "beta",
            "-f",
            "value",
            "-c",
            "Secret href"
        ]),
        format!("{beta}\n")
    );
    let json = kw.ok(&["secret", "list", "-f", "json"]);
    assert!(
        json.starts_with('[') && json.contains("\"Secret href\":"),
        "{json}"
    );
    let page = |offset: &str| -> String {
        let args = [
            "secret",
            "list",
            "--limit",
            "1",
            "--offset",
            offset,
            "-f",
            "value",
            "-c",
            "Secret href",
        ];
        trim_line(kw.ok(&args))
    };
    let (first, second) = (page("0"), page("1"));
    assert_eq!(set(&[&first, &second]), set(&[&alpha, &beta]), "pages");

    // A secret stored without a payload gets it later, once.
    let later = kw.field(&["secret", "store", "--name", "later"], "Secret href");
    assert_eq!(
        kw.field(&["secret", "get", &later], "Content types"),
        "None"
    );
    kw.refused_unchanged(&["secret", "get", &later, "--payload"], "no payload");
    assert_eq!(kw.ok(&["secret", "update", &later, "filled-later"]), "");
    assert_eq!(kw.payload(&later), "filled-later");
    assert_eq!(
        kw.field(&["secret", "get", &later], "Content types"),
        "{'default': 'text/plain'}"
    );
    kw.refused_unchanged(
        &["secret", "update", &later, "second"],
        "Secret already has data",
    );
    assert_eq!(kw.payload(&later), "filled-later");

    assert_eq!(kw.ok(&["secret", "delete", &alpha]), "");
    kw.refused_unchanged(&["secret", "get", &alpha], "Not Found");
    assert_eq!(kw.hrefs(), set(&[&beta, &later]));
}

#[test]
fn chapter_4_key_order_and_reading_the_key_back() {
    let kw = Keywarden::new();
    let created = kw.ok(&[
        "secret",
        "order",
        "create",
        "key",
        "--name",
        "k",
        "--algorithm",
        "aes",
        "--bit-length",
        "256",
        "--mode",
        "ctr",
    ]);
    assert_in_order(&created, &ORDER_FIELDS);
    let order = table_value(&created, "Order href");
    let key = table_value(&created, "Secret href");
    assert!(order.starts_with(ORDERS_BASE), "{order}");
    assert_secret_href(&key);
    assert_eq!(table_value(&created, "Type"), "Key");
    assert_eq!(table_value(&created, "Status"), "ACTIVE");
    assert_eq!(table_value(&created, "Container href"), "N/A");

    let got = kw.ok(&["secret", "order", "get", &order]);
    assert_in_order(&got, &ORDER_FIELDS);
    assert_eq!(table_value(&got, "Secret href"), key);
    assert_eq!(table_value(&got, "Error code"), "None");
    assert_eq!(
        kw.ok(&["secret", "order", "get", uuid_of(&order)]),
        got,
        "a bare uuid names the same order"
    );
    assert!(
        kw.ok(&["secret", "order", "list", "-f", "value", "-c", "Order href"])
            .lines()
            .any(|l| l == order)
    );

    let meta = kw.ok(&["secret", "get", &key]);
    assert_eq!(table_value(&meta, "Algorithm"), "aes");
    assert_eq!(table_value(&meta, "Bit length"), "256");
    assert_eq!(table_value(&meta, "Mode"), "ctr");
    assert_eq!(table_value(&meta, "Secret type"), "symmetric");
    assert_eq!(
        table_value(&meta, "Content types"),
        "{'default': 'application/octet-stream'}"
    );

    // The list filters find the key by its metadata.
    kw.store("not-a-key", "x");
    for filter in [
        &["--mode", "ctr"][..],
        &["--secret-type", "symmetric"],
        &["--name", "k"],
        &["--algorithm", "aes", "--bit-length", "256", "--mode", "ctr"],
    ] {
        let args = [
            &["secret", "list"][..],
            filter,
            &["-f", "value", "-c", "Secret href"],
        ]
        .concat();
        assert_eq!(kw.ok(&args), format!("{key}\n"), "{filter:?}");
    }

    // --payload shows the binary key as base64; --file writes the raw bytes.
    let shown = kw.payload(&key);
    let raw = kw.payload_file(&key);
    assert_eq!(raw.len(), 32);
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(shown)
            .unwrap(),
        raw
    );
    let file = kw.path("key.bin");
    assert_eq!(
        kw.ok(&["secret", "get", &key, "--file", file.to_str().unwrap()]),
        ""
    );
    assert_eq!(mode(&file), 0o600, "key material lands in a private file");

    // Deleting the order leaves its key (as Barbican does).
    assert_eq!(kw.ok(&["secret", "order", "delete", uuid_of(&order)]), "");
    kw.refused_unchanged(&["secret", "order", "get", &order], "Not Found");
    assert_eq!(kw.payload_file(&key), raw);
}

#[test]
fn chapter_4_asymmetric_order_makes_a_container() {
    let kw = Keywarden::new();
    let shown = kw.ok(&[
        "secret",
        "order",
        "create",
        "asymmetric",
        "--name",
        "kp",
        "--algorithm",
        "rsa",
        "--bit-length",
        "2048",
        "-f",
        "value",
        "-c",
        "Type",
        "-c",
        "Container href",
        "-c",
        "Secret href",
    ]);
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines.len(), 3, "{shown}");
    assert_eq!(lines[0], "Asymmetric");
    let container = lines[1].to_owned();
    assert!(container.starts_with(CONTAINERS_BASE), "{shown}");
    assert_eq!(lines[2], "N/A");

    let got = kw.ok(&["secret", "container", "get", &container]);
    assert_eq!(table_value(&got, "Name"), "kp");
    assert_eq!(table_value(&got, "Type"), "rsa");
    assert_eq!(
        kw.ok(&["secret", "container", "get", uuid_of(&container)]),
        got
    );
    let members = kw.ok(&[
        "secret",
        "container",
        "get",
        &container,
        "-f",
        "value",
        "-c",
        "Secrets",
    ]);
    let member = |name: &str| -> String {
        members
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} in {members}"))
            .to_owned()
    };
    let private = member("private_key");
    let public = member("public_key");
    assert!(
        kw.payload(&private)
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
    assert!(
        kw.payload(&public)
            .starts_with("-----BEGIN PUBLIC KEY-----")
    );
    assert_eq!(
        kw.field(&["secret", "get", &private], "Secret type"),
        "private"
    );
    assert_eq!(
        kw.ok(&[
            "secret",
            "container",
            "list",
            "-f",
            "value",
            "-c",
            "Container href"
        ]),
        format!("{container}\n")
    );

    // Deleting the container leaves its secrets.
    assert_eq!(
        kw.ok(&["secret", "container", "delete", uuid_of(&container)]),
        ""
    );
    kw.refused_unchanged(&["secret", "container", "get", &container], "Not Found");
    assert!(
        kw.payload(&public)
            .starts_with("-----BEGIN PUBLIC KEY-----")
    );
}

#[test]
fn every_secret_command_takes_an_href_or_a_bare_uuid() {
    let kw = Keywarden::new();
    let href = kw.store("by-uuid", "p");
    let id = uuid_of(&href);
    assert_eq!(
        kw.ok(&["secret", "get", id]),
        kw.ok(&["secret", "get", &href])
    );
    assert_eq!(
        kw.ok(&["secret", "get", id, "--payload", "-f", "value"]),
        "p\n"
    );
    let file = kw.path("p.bin");
    kw.ok(&["secret", "get", id, "--file", file.to_str().unwrap()]);
    assert_eq!(fs::read(&file).unwrap(), b"p");

    let empty = kw.field(&["secret", "store", "--name", "e"], "Secret href");
    kw.ok(&["secret", "update", uuid_of(&empty), "filled"]);
    assert_eq!(kw.payload(&empty), "filled");

    kw.ok(&["secret", "delete", id]);
    kw.refused_unchanged(&["secret", "get", &href], "Not Found");

    // An href of another kind is not taken for a secret.
    let order = kw.field(
        &["secret", "order", "create", "key", "--name", "k"],
        "Order href",
    );
    kw.refused_unchanged(&["secret", "get", &order], "not a secrets href");
}

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
fn restore_refuses_a_file_that_is_not_a_database() {
    let kw = Keywarden::new();
    let href = kw.store("kept", "v");
    fs::write(kw.path("garbage.db"), "not a database, just some text").unwrap();
    kw.refused_unchanged(&["restore", "--force", "garbage.db"], "");
    assert_eq!(kw.payload(&href), "v");
}

#[test]

fn restore_refuses_an_empty_file() {
    let kw = Keywarden::new();
    let href = kw.store("kept", "v");
    fs::write(kw.path("empty.db"), "").unwrap();
    kw.refused_unchanged(&["restore", "--force", "empty.db"], "empty.db");
    assert_eq!(kw.payload(&href), "v");
}

#[test]

fn restore_refuses_a_backup_mapping_a_project_to_an_unconfigured_backend() {
    let kw = Keywarden::new();
    let href = kw.store("kept", "v");
    let backup = kw.path("mapped.db");
    kw.ok(&["backup", "--output", backup.to_str().unwrap()]);
    Connection::open(&backup)
        .unwrap()
        .execute(
            "INSERT INTO project_backends (project_id, backend_id) VALUES ('px', 'hsm')",
            [],
        )
        .unwrap();
    kw.refused_unchanged(&["restore", "--force", backup.to_str().unwrap()], "hsm");
    assert!(kw.ok(&["check"]).ends_with("OK\n"));
    assert_eq!(kw.payload(&href), "v");
}

#[test]

fn usage_errors_name_the_missing_argument() {
    let kw = Keywarden::new();
    kw.refused_unchanged(&["secret", "get"], "<SECRET>");
    kw.refused_unchanged(&["secret", "update", "x"], "<PAYLOAD>");
}

#[test]

fn sqlite_failures_name_the_file() {
    let kw = Keywarden::new();
    kw.store("s", "v");
    kw.refused_unchanged(&["backup", "--output", "no-dir/b.db"], "no-dir/b.db");
    fs::write(kw.path("garbage.db"), "not a database, just some text").unwrap();
    kw.refused_unchanged(&["restore", "--force", "garbage.db"], "garbage.db");
}

#[test]
fn project_store_set_show_clear() {
    let kw = Keywarden::new();
    let show = |project: &str| -> Vec<String> {
        kw.ok(&["project-store", "show", project, "-f", "value"])
            .lines()
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(show("p1"), ["p1", "software", "global default"]);
    let set = kw.ok(&["project-store", "set", "p1", "software", "-f", "value"]);
    assert_eq!(set, "p1\nsoftware\nproject mapping\n");
    assert_eq!(show("p1"), ["p1", "software", "project mapping"]);

    kw.refused_unchanged(&["project-store", "set", "p1", "hsm"], "hsm");
    let line = kw.refused_unchanged_as(
        &OBSERVER,
        &["project-store", "set", "p2", "software"],
        "Forbidden",
    );
    assert!(line.contains("preferred secret store"), "{line}");

    let cleared = kw.ok(&["project-store", "clear", "p1", "-f", "value"]);
    assert_eq!(cleared, "p1\nsoftware\nglobal default\n");
    assert_eq!(show("p1"), ["p1", "software", "global default"]);
}

#[test]
fn kek_rotate_then_prune_keeps_every_secret_readable() {
    let kw = Keywarden::new();
    let default_secret = kw.store("d", "in default");
    let other = Who {
        user: "ops",
        project: "p2",
        roles: "admin",
    };
    let other_secret = kw.field_as(
        &other,
        &["secret", "store", "--name", "o", "--payload", "in p2"],
        "Secret href",
    );
    let key = kw.field(
        &["secret", "order", "create", "key", "--name", "k"],
        "Secret href",
    );
    let key_bytes = kw.payload_file(&key);
    let before_rotation = fs::read_to_string(&kw.config).unwrap();
    let old_kek = master_kek_line(&before_rotation);

    let out = kw.ok(&["kek", "rotate"]);
    assert!(out.contains("2 project KEKs rewrapped"), "{out}");
    assert!(out.contains("secrets untouched"), "{out}");
    assert_eq!(mode(&kw.config), 0o600);
    let rotated = fs::read_to_string(&kw.config).unwrap();
    assert_ne!(master_kek_line(&rotated), old_kek);
    let old_value = old_kek.trim_start_matches("master_kek = ");
    assert!(
        rotated.contains(&format!("retired_master_keks = [{old_value}]")),
        "the old KEK is kept as retired: {rotated}"
    );
    let check = kw.ok(&["check"]);
    assert!(check.ends_with("OK\n"), "{check}");
    assert!(check.contains("(0 wrapped by a retired KEK)"), "{check}");
    assert_eq!(kw.payload(&default_secret), "in default");
    assert_eq!(kw.payload_as(&other, &other_secret), "in p2");
    assert_eq!(kw.payload_file(&key), key_bytes);

    let out = kw.ok(&["kek", "prune"]);
    assert!(out.contains("Removed 1 retired master KEKs"), "{out}");
    let pruned = fs::read_to_string(&kw.config).unwrap();
    assert!(pruned.contains("retired_master_keks = []"), "{pruned}");
    assert_eq!(mode(&kw.config), 0o600);
    assert!(kw.ok(&["check"]).ends_with("OK\n"));
    assert_eq!(kw.payload(&default_secret), "in default");
    assert_eq!(kw.payload_as(&other, &other_secret), "in p2");
    assert_eq!(kw.payload_file(&key), key_bytes);

    // The pre-rotation config no longer opens the store.
    let old = kw.path("old.toml");
    fs::write(&old, &before_rotation).unwrap();
    let out = kw.run_with_config(&old, &["check"]);
    out.assert_refused("does not open");
}

#[test]
fn kek_prune_waits_while_a_retired_kek_still_wraps_something() {
    let kw = Keywarden::new();
    let secret = kw.store("s", "kept");
    let backup = kw.path("before-rotation.db");
    kw.ok(&["backup", "--output", backup.to_str().unwrap()]);
    kw.ok(&["kek", "rotate"]);

    // The old backup's project KEK is wrapped by the now-retired master KEK,
    // which the config still holds: restore accepts it.
    kw.ok(&["restore", "--force", backup.to_str().unwrap()]);
    assert!(kw.ok(&["check"]).contains("(1 wrapped by a retired KEK)"));
    assert_eq!(kw.payload(&secret), "kept");
    let line = kw.refused_unchanged(&["kek", "prune"], "still wrapped by a retired master KEK");
    assert!(line.starts_with("Conflict"), "{line}");

    kw.ok(&["kek", "rotate"]);
    kw.ok(&["kek", "prune"]);
    assert!(kw.ok(&["check"]).contains("(0 wrapped by a retired KEK)"));
    assert_eq!(kw.payload(&secret), "kept");
}

#[test]
fn check_fails_under_a_wrong_master_kek_or_a_tampered_project_kek() {
    let kw = Keywarden::new();
    let secret = kw.store("s", "v");
    let text = fs::read_to_string(&kw.config).unwrap();
    let wrong = text.replace(
        &master_kek_line(&text),
        &format!(
            "master_kek = \"{}\"",
            MasterKek::generate().unwrap().to_base64().as_str()
        ),
    );
    let wrong_config = kw.path("wrong.toml");
    fs::write(&wrong_config, wrong).unwrap();
    let before = kw.state();
    kw.run_with_config(&wrong_config, &["check"])
        .assert_refused("does not open");
    kw.run_with_config(&wrong_config, &["secret", "list"])
        .assert_refused("does not open");
    kw.run_with_config(&wrong_config, &["kek", "rotate"])
        .assert_refused("does not open");
    assert_eq!(kw.state(), before, "nothing changed");
    assert!(
        fs::read_to_string(&wrong_config)
            .unwrap()
            .contains("retired_master_keks = []"),
        "a refused rotation leaves its config alone"
    );

    flip_byte(&kw.db(), "project_keks", "wrapped", None);
    let line = kw.refused_unchanged(&["check"], "Integrity check failed");
    assert!(line.contains("project KEK"), "{line}");
    kw.refused_unchanged(&["secret", "get", &secret, "--payload"], "Integrity");
}

// ---- refusals ----

#[test]
fn bad_input_is_refused_with_one_line_and_nothing_written() {
    let kw = Keywarden::new();
    kw.store("existing", "x");
    let too_big = "a".repeat(20_001);
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "payload over the size limit",
            &["secret", "store", "--name", "big", "--payload", &too_big],
            "too large",
        ),
        (
            "bad base64",
            &[
                "secret",
                "store",
                "--payload-content-type",
                "application/octet-stream",
                "--payload-content-encoding",
                "base64",
                "--payload",
                "!!",
            ],
            "Invalid payload for payload_content_encoding",
        ),
        (
            "text/plain with an encoding",
            &[
                "secret",
                "store",
                "--payload-content-type",
                "text/plain",
                "--payload-content-encoding",
                "base64",
                "--payload",
                "aGk=",
            ],
            "payload_content_encoding is not one of None",
        ),
        (
            "an expiration in the past",
            &[
                "secret",
                "store",
                "--payload",
                "x",
                "--expiration",
                "2001-01-01T00:00:00Z",
            ],
            "'expiration' is before current time",
        ),
        (
            "an unparsable expiration",
            &["secret", "store", "--payload", "x", "--expiration", "soon"],
            "Invalid date for 'expiration'",
        ),
        (
            "a key order of 255 bits",
            &[
                "secret",
                "order",
                "create",
                "key",
                "--name",
                "k",
                "--algorithm",
                "aes",
                "--bit-length",
                "255",
            ],
            "multiple of 8",
        ),
        (
            "an unknown secret type",
            &[
                "secret",
                "store",
                "--payload",
                "x",
                "--secret-type",
                "banana",
            ],
            "secret_type",
        ),
        (
            "an empty payload",
            &["secret", "store", "--payload", ""],
            "must be non empty",
        ),
        (
            "a content type without a payload",
            &["secret", "store", "--payload-content-type", "text/plain"],
            "payload must be provided",
        ),
        (
            "a malformed id",
            &["secret", "get", "not-a-uuid"],
            "invalid",
        ),
        (
            "an unknown subcommand",
            &["secret", "frobnicate"],
            "unrecognized subcommand 'frobnicate'",
        ),
        (
            "a non-numeric limit",
            &["secret", "list", "--limit", "ten"],
            "invalid value 'ten' for '--limit",
        ),
        (
            "an unknown output format",
            &["secret", "list", "-f", "yaml"],
            "invalid value 'yaml' for '--format",
        ),
        (
            "a list in the one-object shell format",
            &["secret", "list", "-f", "shell"],
            "shell format",
        ),
    ];
    for (what, args, phrase) in cases {
        let before = kw.state();
        let out = kw.run(args);
        assert_eq!(out.code, Some(1), "{what}: {out:?}");
        assert!(out.stdout.is_empty(), "{what}: {out:?}");
        let line = out.one_line();
        assert!(line.contains(phrase), "{what}: {line:?} lacks {phrase:?}");
        assert_eq!(kw.state(), before, "{what}: something changed");
    }

    // The limit is inclusive: 20000 bytes of encoded payload are accepted.
    let at_limit = base64::engine::general_purpose::STANDARD.encode([7u8; 15_000]);
    assert_eq!(at_limit.len(), 20_000);
    let href = kw.field(
        &[
            "secret",
            "store",
            "--payload-content-type",
            "application/octet-stream",
            "--payload-content-encoding",
            "base64",
            "--payload",
            &at_limit,
        ],
        "Secret href",
    );
    assert_eq!(kw.payload_file(&href), vec![7u8; 15_000]);
}

#[test]
fn a_second_update_is_a_conflict() {
    let kw = Keywarden::new();
    let href = kw.field(&["secret", "store", "--name", "once"], "Secret href");
    kw.ok(&["secret", "update", &href, "first"]);
    let line = kw.refused_unchanged(
        &["secret", "update", &href, "second"],
        "Secret already has data, cannot modify it.",
    );
    assert!(line.starts_with("Conflict"), "{line}");
    assert_eq!(kw.payload(&href), "first");
}

#[test]
fn an_observer_cannot_store() {
    let kw = Keywarden::new();
    let href = kw.store("s", "v");
    let line = kw.refused_unchanged_as(
        &OBSERVER,
        &["secret", "store", "--name", "o", "--payload", "o"],
        "Forbidden",
    );
    assert!(
        line.contains("Secret creation attempt not allowed"),
        "{line}"
    );
    // What an observer may do still works.
    assert_eq!(kw.payload_as(&OBSERVER, &href), "v");
}

#[test]
fn an_audit_user_cannot_read_a_payload() {
    let kw = Keywarden::new();
    let href = kw.store("s", "v");
    let line = kw.refused_unchanged_as(
        &AUDITOR,
        &["secret", "get", &href, "--payload"],
        "Forbidden",
    );
    assert!(
        line.contains("Secret payload retrieval attempt not allowed"),
        "{line}"
    );
    let file = kw.path("audit.bin");
    kw.refused_unchanged_as(
        &AUDITOR,
        &["secret", "get", &href, "--file", file.to_str().unwrap()],
        "Forbidden",
    );
    assert!(!file.exists());
    // Metadata is what audit is for.
    assert_eq!(
        kw.field_as(&AUDITOR, &["secret", "get", &href], "Name"),
        "s"
    );
}

#[test]
fn a_creator_cannot_delete_another_users_secret() {
    let kw = Keywarden::new();
    let alices = kw.field_as(
        &ALICE_CREATOR,
        &["secret", "store", "--name", "a", "--payload", "alice's"],
        "Secret href",
    );
    let bobs = kw.field_as(
        &BOB_CREATOR,
        &["secret", "store", "--name", "b", "--payload", "bob's"],
        "Secret href",
    );
    let line = kw.refused_unchanged_as(&BOB_CREATOR, &["secret", "delete", &alices], "Forbidden");
    assert!(
        line.contains("Secret deletion attempt not allowed"),
        "{line}"
    );
    assert_eq!(kw.payload(&alices), "alice's");
    // Their own, yes; and a project admin may delete anyone's.
    assert_eq!(kw.ok_as(&BOB_CREATOR, &["secret", "delete", &bobs]), "");
    assert_eq!(kw.ok(&["secret", "delete", &alices]), "");
    assert_eq!(kw.ok(&["secret", "list"]), "");
}

#[test]
fn another_project_sees_not_found_not_forbidden() {
    let kw = Keywarden::new();
    let href = kw.store("s", "v");
    let id = uuid_of(&href);
    for args in [
        &["secret", "get", &href, "--payload"][..],
        &["secret", "get", &href],
        &["secret", "delete", &href],
        &["secret", "update", &href, "x"],
    ] {
        let line = kw.refused_unchanged_as(&OTHER_PROJECT_ADMIN, args, "Not Found");
        assert!(!line.contains("Forbidden"), "{line}");
        // Indistinguishable from a secret that does not exist.
        let missing = "00000000-0000-4000-8000-000000000000";
        let mut absent: Vec<&str> = args.to_vec();
        absent[2] = missing;
        let absent_line = kw.refused_unchanged(&absent, "Not Found");
        assert_eq!(line.replace(id, missing), absent_line);
    }
    assert_eq!(kw.payload(&href), "v");
}

#[test]
fn a_wrong_config_is_named_clearly() {
    let kw = Keywarden::new();
    kw.store("s", "v");
    let missing = kw.path("nope").join("keywarden.toml");
    for args in [
        &["secret", "list"][..],
        &["check"],
        &["backup", "--output", "b.db"],
        &["kek", "rotate"],
    ] {
        let before = kw.state();
        let out = kw.run_with_config(&missing, args);
        let line = out.assert_refused("does not exist");
        assert!(line.contains(missing.to_str().unwrap()), "{line}");
        assert!(line.contains("keywarden init"), "{line}");
        assert_eq!(kw.state(), before);
        assert!(!kw.path("nope").exists());
    }

    let garbled = kw.path("garbled.toml");
    fs::write(&garbled, "catalog = [").unwrap();
    kw.run_with_config(&garbled, &["secret", "list"])
        .assert_refused("invalid configuration");
}

#[test]
fn a_tampered_secret_fails_with_an_integrity_message() {
    let kw = Keywarden::new();
    let tampered = kw.store("tampered", "original");
    let intact = kw.store("intact", "still fine");
    flip_byte(&kw.db(), "secrets", "stored", Some(uuid_of(&tampered)));

    let line = kw.refused_unchanged(
        &["secret", "get", &tampered, "--payload"],
        "Integrity check failed",
    );
    assert!(!line.contains("original"), "{line}");
    let file = kw.path("out.bin");
    kw.refused_unchanged(
        &["secret", "get", &tampered, "--file", file.to_str().unwrap()],
        "Integrity check failed",
    );
    assert!(!file.exists(), "no partial file");
    // Only that secret is affected.
    assert_eq!(kw.payload(&intact), "still fine");
}

#[test]

fn check_fails_on_a_tampered_secret() {
    let kw = Keywarden::new();
    let href = kw.store("s", "v");
    flip_byte(&kw.db(), "secrets", "stored", Some(uuid_of(&href)));
    kw.refused_unchanged(&["check"], "Integrity");
}

#[test]

fn admin_commands_refuse_a_missing_database() {
    let kw = Keywarden::new();
    kw.store("s", "v");
    fs::rename(kw.db(), kw.path("moved.db")).unwrap();
    for args in [
        &["check"][..],
        &["backup", "--output", "b.db"],
        &["kek", "rotate"],
        &["kek", "prune"],
    ] {
        kw.refused_unchanged(args, "does not exist");
        assert!(!kw.db().exists(), "{args:?} created a database");
    }
}

#[test]
fn environment_variables_pick_the_config_and_identity_and_flags_win() {
    let kw = Keywarden::new();
    let href = kw.store("s", "v");

    // KEYWARDEN_CONFIG, from another working directory.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = kw
        .bare_command()
        .current_dir(elsewhere.path())
        .env("KEYWARDEN_CONFIG", &kw.config)
        .args(["secret", "get", &href, "--payload", "-f", "value"])
        .output()
        .unwrap();
    assert_eq!(Outcome::from(out).stdout, "v\n");

    // Without --config or the variable: ./keywarden.toml.
    let out = kw
        .bare_command()
        .args(["secret", "list", "-f", "value", "-c", "Secret href"])
        .output()
        .unwrap();
    assert_eq!(Outcome::from(out).stdout, format!("{href}\n"));

    // OS_ROLES / OS_PROJECT_ID / OS_USER_ID, and a flag overriding them.
    let observer = |extra: &[&str]| -> Outcome {
        let mut c = kw.command();
        c.env("OS_ROLES", "observer")
            .env("OS_USER_ID", "olga")
            .env("OS_PROJECT_ID", "default")
            .args(extra)
            .args(["secret", "store", "--payload", "x"]);
        Outcome::from(c.output().unwrap())
    };
    observer(&[]).assert_refused("Forbidden");
    assert_eq!(observer(&["--os-roles", "creator"]).code, Some(0));
    let out = kw
        .command()
        .env("OS_PROJECT_ID", "elsewhere")
        .args(["secret", "get", &href])
        .output()
        .unwrap();
    Outcome::from(out).assert_refused("Not Found");
}

// ---- backup under load ----

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

// ---- harness ----

/// One keywarden installation in its own temp dir.
struct Keywarden {
    dir: tempfile::TempDir,
    config: PathBuf,
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

/// An identity passed with `--os-user-id`, `--os-project-id`, `--os-roles`.
struct Who {
    user: &'static str,
    project: &'static str,
    roles: &'static str,
}

impl Who {
    fn args(&self) -> [&'static str; 6] {
        [
            "--os-user-id",
            self.user,
            "--os-project-id",
            self.project,
            "--os-roles",
            self.roles,
        ]
    }
}

/// What the tests compare to show that a refusal changed nothing: every row
/// of every table, the config file (as a digest: a failing assertion prints
/// the state, and the config holds the master KEK), and the directory's files
/// (SQLite's own `-wal`/`-shm` files come and go and are left out).
#[derive(Debug, PartialEq, Eq)]
struct State {
    rows: Vec<String>,
    config_sha256: String,
    files: BTreeSet<String>,
}

#[derive(Debug)]
struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Keywarden {
    /// A fresh directory with `keywarden init` run in it.
    fn new() -> Self {
        let kw = Keywarden::uninitialised();
        let out = kw.ok(&["init"]);
        assert!(out.contains("mode 0600"), "{out}");
        assert!(out.contains("Created database"), "{out}");
        kw
    }

    fn uninitialised() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("keywarden.toml");
        Keywarden { dir, config }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn db(&self) -> PathBuf {
        self.path("keywarden.db")
    }

    /// The binary in this directory with no config or identity from the
    /// environment.
    fn bare_command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_keywarden"));
        c.current_dir(self.dir.path()).stdin(Stdio::null());
        for var in [
            "KEYWARDEN_CONFIG",
            "OS_PROJECT_ID",
            "OS_USER_ID",
            "OS_ROLES",
        ] {
            c.env_remove(var);
        }
        c
    }

    fn command(&self) -> Command {
        let mut c = self.bare_command();
        c.arg("--config").arg(&self.config);
        c
    }

    fn run(&self, args: &[&str]) -> Outcome {
        Outcome::from(self.command().args(args).output().expect("run keywarden"))
    }

    fn run_as(&self, who: &Who, args: &[&str]) -> Outcome {
        let mut c = self.command();
        c.args(who.args()).args(args);
        Outcome::from(c.output().expect("run keywarden"))
    }

    fn run_with_config(&self, config: &Path, args: &[&str]) -> Outcome {
        let mut c = self.bare_command();
        c.arg("--config").arg(config).args(args);
        Outcome::from(c.output().expect("run keywarden"))
    }

    /// Runs as the default identity; must succeed quietly (no progress
    /// output when stderr is not a terminal). Returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        self.run(args).assert_ok(args)
    }

    fn ok_as(&self, who: &Who, args: &[&str]) -> String {
        self.run_as(who, args).assert_ok(args)
    }

    fn refused(&self, args: &[&str], phrase: &str) -> String {
        self.run(args).assert_refused(phrase)
    }

    /// A refusal that leaves the catalog, the config and the directory as
    /// they were. Returns the one line on stderr.
    fn refused_unchanged(&self, args: &[&str], phrase: &str) -> String {
        let before = self.state();
        let line = self.refused(args, phrase);
        assert_eq!(self.state(), before, "{args:?} changed something");
        line
    }

    fn refused_unchanged_as(&self, who: &Who, args: &[&str], phrase: &str) -> String {
        let before = self.state();
        let line = self.run_as(who, args).assert_refused(phrase);
        assert_eq!(self.state(), before, "{args:?} changed something");
        line
    }

    /// One column of a one-object command, via `-f value -c COLUMN`.
    fn field(&self, args: &[&str], column: &str) -> String {
        let args = [args, &["-f", "value", "-c", column]].concat();
        trim_line(self.ok(&args))
    }

    fn field_as(&self, who: &Who, args: &[&str], column: &str) -> String {
        let args = [args, &["-f", "value", "-c", column]].concat();
        trim_line(self.ok_as(who, &args))
    }

    /// Stores a text secret as the default identity; returns its href.
    fn store(&self, name: &str, payload: &str) -> String {
        let href = self.field(
            &["secret", "store", "--name", name, "--payload", payload],
            "Secret href",
        );
        assert_secret_href(&href);
        href
    }

    /// The payload as `--payload -f value` prints it (without the newline
    /// the value format adds).
    fn payload(&self, href: &str) -> String {
        strip_newline(self.ok(&["secret", "get", href, "--payload", "-f", "value"]))
    }

    fn payload_as(&self, who: &Who, href: &str) -> String {
        strip_newline(self.ok_as(who, &["secret", "get", href, "--payload", "-f", "value"]))
    }

    /// The raw payload bytes, through `--file`.
    fn payload_file(&self, href: &str) -> Vec<u8> {
        let file = self.path(&format!("{}.payload", uuid_of(href)));
        assert_eq!(
            self.ok(&["secret", "get", href, "--file", file.to_str().unwrap()]),
            ""
        );
        let bytes = fs::read(&file).unwrap();
        fs::remove_file(&file).unwrap();
        bytes
    }

    /// The hrefs `secret list` shows.
    fn hrefs(&self) -> BTreeSet<String> {
        self.ok(&["secret", "list", "-f", "value", "-c", "Secret href"])
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn leftover_files(&self) -> BTreeSet<String> {
        fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| !n.ends_with("-wal") && !n.ends_with("-shm") && n != "keywarden.toml")
            .collect()
    }

    fn state(&self) -> State {
        State {
            rows: dump(&self.db()),
            config_sha256: hex(&Sha256::digest(fs::read(&self.config).unwrap_or_default())),
            files: self.leftover_files(),
        }
    }
}

impl From<std::process::Output> for Outcome {
    fn from(o: std::process::Output) -> Self {
        Outcome {
            code: o.status.code(),
            stdout: String::from_utf8(o.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(o.stderr).expect("stderr is UTF-8"),
        }
    }
}

impl Outcome {
    fn assert_ok(self, args: &[&str]) -> String {
        assert_eq!(self.code, Some(0), "{args:?} failed: {self:?}");
        assert!(self.stderr.is_empty(), "{args:?} wrote to stderr: {self:?}");
        self.stdout
    }

    /// Exit status 1, nothing on stdout, one line on stderr holding `phrase`.
    fn assert_refused(&self, phrase: &str) -> String {
        assert_eq!(self.code, Some(1), "{self:?}");
        assert!(self.stdout.is_empty(), "a refusal printed output: {self:?}");
        let line = self.one_line();
        assert!(line.contains(phrase), "{line:?} lacks {phrase:?}");
        line
    }

    fn one_line(&self) -> String {
        let line = self
            .stderr
            .strip_suffix('\n')
            .unwrap_or_else(|| panic!("stderr is not one line: {self:?}"));
        assert!(
            !line.is_empty() && !line.contains('\n'),
            "stderr is not exactly one line: {self:?}"
        );
        line.to_owned()
    }
}

fn default_admin() -> Context {
    Context::new(
        UserId::new("admin").unwrap(),
        ProjectId::new("default").unwrap(),
        ["admin"],
    )
}

fn trim_line(mut s: String) -> String {
    assert!(s.ends_with('\n') && s.matches('\n').count() == 1, "{s:?}");
    s.pop();
    s
}

fn strip_newline(mut s: String) -> String {
    assert_eq!(s.pop(), Some('\n'), "{s:?}");
    s
}

fn assert_secret_href(href: &str) {
    let id = href
        .strip_prefix(SECRETS_BASE)
        .unwrap_or_else(|| panic!("{href} is not a secret href"));
    assert_eq!(id.len(), 36, "{href}");
    assert_eq!(id.matches('-').count(), 4, "{href}");
}

fn uuid_of(href: &str) -> &str {
    href.rsplit('/').next().unwrap()
}

fn set(items: &[&String]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).clone()).collect()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The value of `field` in a Field/Value table.
fn table_value(table: &str, field: &str) -> String {
    table
        .lines()
        .find_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells.len() == 4 && cells[1] == field).then(|| cells[2].to_owned())
        })
        .unwrap_or_else(|| panic!("no {field} in\n{table}"))
}

/// Every name appears in `text`, in this order.
fn assert_in_order(text: &str, names: &[&str]) {
    let mut from = 0;
    for name in names {
        let quoted = [format!("| {name} "), format!("\"{name}\"")];
        let at = quoted
            .iter()
            .filter_map(|q| text[from..].find(q.as_str()))
            .min()
            .unwrap_or_else(|| panic!("{name} missing or out of order in\n{text}"));
        from += at + 1;
    }
}

fn master_kek_line(config: &str) -> String {
    config
        .lines()
        .find(|l| l.starts_with("master_kek = "))
        .expect("a master_kek line")
        .to_owned()
}

/// Flips one bit in the middle of a BLOB column, straight in the file.
fn flip_byte(db: &Path, table: &str, column: &str, id: Option<&str>) {
    let c = Connection::open(db).unwrap();
    let filter = if id.is_some() { "WHERE id = ?1" } else { "" };
    let (rowid, mut blob): (i64, Vec<u8>) = c
        .query_row(
            &format!("SELECT rowid, {column} FROM {table} {filter} LIMIT 1"),
            rusqlite::params_from_iter(id),
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let middle = blob.len() / 2;
    blob[middle] ^= 0x01;
    let n = c
        .execute(
            &format!("UPDATE {table} SET {column} = ?1 WHERE rowid = ?2"),
            rusqlite::params![blob, rowid],
        )
        .unwrap();
    assert_eq!(n, 1);
}

/// Every row of every table, rendered, in a stable order.
fn dump(db: &Path) -> Vec<String> {
    if !db.exists() {
        return Vec::new();
    }
    let c = Connection::open(db).unwrap();
    let tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut out = Vec::new();
    for table in tables {
        let mut stmt = c
            .prepare(&format!("SELECT * FROM \"{table}\" ORDER BY 1, 2"))
            .unwrap();
        let n = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            let cells: Vec<String> = (0..n)
                .map(|i| match row.get_ref(i).unwrap() {
                    ValueRef::Null => "NULL".to_owned(),
                    ValueRef::Integer(v) => v.to_string(),
                    ValueRef::Real(v) => v.to_string(),
                    ValueRef::Text(t) => format!("{:?}", String::from_utf8_lossy(t)),
                    ValueRef::Blob(b) => hex(b),
                })
                .collect();
            out.push(format!("{table}: {}", cells.join(" | ")));
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn column(db: &Path, sql: &str) -> BTreeSet<String> {
    let c = Connection::open(db).unwrap();
    c.prepare(sql)
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn an_order_that_ends_in_error_exits_1_and_shows_the_order() {
    let kw = Keywarden::new();
    let out = kw
        .bare_command()
        .args([
            "secret",
            "order",
            "create",
            "key",
            "--algorithm",
            "aes",
            "--bit-length",
            "64",
            "-f",
            "value",
            "-c",
            "Status",
            "-c",
            "Error code",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "ERROR\n400\n");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("finished in ERROR (400)"), "{stderr}");
    // The order is recorded, as Barbican records it.
    assert!(
        kw.ok(&["secret", "order", "list", "-f", "value", "-c", "Status"])
            .contains("ERROR")
    );
}

#[test]
fn migrate_fixed_key_from_a_cinder_conf_then_status() {
    let kw = Keywarden::new();
    let db = kw.path("cinder.db");
    let cinder = keywarden::migration::CinderSqlite::create_minimal(&db).unwrap();
    for id in ["vol-a", "vol-b"] {
        cinder
            .connection()
            .execute(
                "INSERT INTO volumes (id, host, user_id, project_id, encryption_key_id, deleted)
                 VALUES (?1, 'node-1', 'owner', 'tenant', ?2, 0)",
                [id, keywarden::migration::ALL_ZEROS],
            )
            .unwrap();
    }
    drop(cinder);
    fs::write(
        kw.path("cinder.conf"),
        format!(
            "[DEFAULT]\ndebug = false\n\n[key_manager]\nbackend = barbican\nfixed_key = {}\n",
            "0f".repeat(32)
        ),
    )
    .unwrap();
    let db_arg = db.to_str().unwrap();

    // Still in use: status says so, with exit 1.
    let status = kw.run(&["migrate", "status", "--db", db_arg]);
    assert_eq!(status.code, Some(1));
    assert!(
        status
            .stdout
            .contains("Volumes still on the all-zeros key ID: 2"),
        "{status:?}"
    );
    assert!(status.stdout.contains("Keep fixed_key"), "{status:?}");

    // Dry run changes nothing.
    let dry = kw.run(&[
        "migrate",
        "fixed-key",
        "--db",
        db_arg,
        "--host",
        "node-1",
        "--from-conf",
        "cinder.conf",
        "--dry-run",
    ]);
    assert_eq!(dry.code, Some(0), "{dry:?}");
    assert!(
        dry.stdout.contains("2 item(s) would be migrated"),
        "{dry:?}"
    );
    assert!(
        dry.stderr.contains("There are still 2 volume(s)"),
        "{dry:?}"
    );

    // The migration, as the service identity; cinder's lines on stderr.
    let out = kw
        .command()
        .args([
            "--os-project-id",
            "service",
            "--os-user-id",
            "cinder",
            "--os-roles",
            "creator",
        ])
        .args([
            "migrate",
            "fixed-key",
            "--db",
            db_arg,
            "--host",
            "node-1",
            "--from-conf",
            "cinder.conf",
        ])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    );
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("Migrated 2 item(s); 0 error(s)"),
        "{stdout}"
    );
    assert!(
        stderr.contains("INFO Starting migration of ConfKeyManager keys."),
        "{stderr}"
    );
    assert!(
        stderr.contains("INFO Migrating VolumeMigration vol-a encryption key to Barbican"),
        "{stderr}"
    );
    assert!(
        stderr.contains("INFO No volumes are using the ConfKeyManager's encryption_key_id."),
        "{stderr}"
    );

    let status = kw.ok(&["migrate", "status", "--db", db_arg]);
    assert!(
        status.contains("It is safe to remove fixed_key"),
        "{status}"
    );

    // The volume's owner reads its new key: the fixed key's bytes.
    let key_id: String = Connection::open(&db)
        .unwrap()
        .query_row(
            "SELECT encryption_key_id FROM volumes WHERE id = 'vol-a'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let owner = kw
        .command()
        .args([
            "--os-project-id",
            "tenant",
            "--os-user-id",
            "owner",
            "--os-roles",
            "creator",
        ])
        .args(["secret", "get", &key_id, "--file", "k.bin"])
        .output()
        .unwrap();
    assert_eq!(owner.status.code(), Some(0), "{owner:?}");
    assert_eq!(fs::read(kw.path("k.bin")).unwrap(), vec![0x0f; 32]);

    kw.refused_unchanged(
        &["migrate", "status", "--db", "missing.db"],
        "does not exist",
    );
}
