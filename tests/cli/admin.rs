//! The operator commands: project-store, kek rotate and prune, check (under
//! a wrong master KEK, after tampering), the variables that pick the config
//! and the identity, and the fixed-key migration.

use std::fs;

use rusqlite::Connection;

use crate::OBSERVER;
use crate::common::cli::{Keywarden, Outcome, Who, flip_byte, mode, uuid_of};
use keywarden::backend::MasterKek;

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

    // The legacy fixed key serves every project: no project is mapped there.
    let mut config = fs::read_to_string(&kw.config).unwrap();
    config.push_str(
        "\n[backends.legacy]\nkind = \"danger_fixed_key\"\nfixed_key = \"6b6579776172642d6669786564206b65792d3235362d6269742d6c6f6e672121\"\n",
    );
    fs::write(&kw.config, config).unwrap();
    let line = kw.refused_unchanged(&["project-store", "set", "p1", "legacy"], "fixed key");
    assert!(line.contains("legacy"), "{line}");
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
    crate::common::write_private(&old, before_rotation.as_bytes());
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
    crate::common::write_private(&wrong_config, wrong.as_bytes());
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
fn environment_variables_pick_the_config_and_identity_and_flags_win() {
    let kw = Keywarden::new();
    let href = kw.store("s", "v");

    // KEYWARDEN_CONFIG, from another working directory.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = Outcome::of(
        kw.bare_command()
            .current_dir(elsewhere.path())
            .env("KEYWARDEN_CONFIG", &kw.config)
            .args(["secret", "get", &href, "--payload", "-f", "value"]),
    );
    assert_eq!(out.stdout, "v\n");

    // Without --config or the variable: ./keywarden.toml.
    let out =
        Outcome::of(
            kw.bare_command()
                .args(["secret", "list", "-f", "value", "-c", "Secret href"]),
        );
    assert_eq!(out.stdout, format!("{href}\n"));

    // OS_ROLES / OS_PROJECT_ID / OS_USER_ID, and a flag overriding them.
    let observer = |extra: &[&str]| -> Outcome {
        let mut c = kw.command();
        c.env("OS_ROLES", "observer")
            .env("OS_USER_ID", "olga")
            .env("OS_PROJECT_ID", "default")
            .args(extra)
            .args(["secret", "store", "--payload", "x"]);
        Outcome::of(&mut c)
    };
    observer(&[]).assert_refused("Forbidden");
    assert_eq!(observer(&["--os-roles", "creator"]).code, Some(0));
    Outcome::of(
        kw.command()
            .env("OS_PROJECT_ID", "elsewhere")
            .args(["secret", "get", &href]),
    )
    .assert_refused("Not Found");
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

    let migrate = [
        "migrate",
        "fixed-key",
        "--db",
        db_arg,
        "--host",
        "node-1",
        "--from-conf",
        "cinder.conf",
    ];
    // Dry run changes nothing.
    let dry = kw.run(&[&migrate[..], &["--dry-run"]].concat());
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
    let cinder = Who {
        user: "cinder",
        project: "service",
        roles: "creator",
    };
    let out = kw.run_as(&cinder, &migrate);
    let (stdout, stderr) = (&out.stdout, &out.stderr);
    assert_eq!(out.code, Some(0), "{stderr}");
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
    let owner = Who {
        user: "owner",
        project: "tenant",
        roles: "creator",
    };
    let got = kw.ok_as(&owner, &["secret", "get", &key_id, "--file", "k.bin"]);
    assert_eq!(got, "", "the key goes to the file only");
    assert_eq!(fs::read(kw.path("k.bin")).unwrap(), vec![0x0f; 32]);

    kw.refused_unchanged(
        &["migrate", "status", "--db", "missing.db"],
        "does not exist",
    );
}

fn master_kek_line(config: &str) -> String {
    config
        .lines()
        .find(|l| l.starts_with("master_kek = "))
        .expect("a master_kek line")
        .to_owned()
}

/// ssh's rule for private keys, for the config that holds the master KEK.
#[test]
fn a_config_others_can_read_is_refused_until_chmod_600() {
    use std::os::unix::fs::PermissionsExt;
    let kw = Keywarden::new();
    assert_eq!(mode(&kw.config), 0o600, "init writes it private");
    let href = kw.store("s", "kept");
    fs::set_permissions(&kw.config, fs::Permissions::from_mode(0o644)).unwrap();
    for args in [
        &["secret", "list"][..],
        &["check"],
        &["backup", "--output", "b.db"],
    ] {
        let line = kw.refused_unchanged(args, "chmod 600");
        assert!(line.contains(&kw.config.display().to_string()), "{line}");
    }
    fs::set_permissions(&kw.config, fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(kw.payload(&href), "kept");
}

/// The several-instance runbook through the command, with a second
/// instance (a library store on the same catalog) running throughout:
/// `kek rotate` without a staged key is refused while it runs, `kek stage`
/// writes the key, `kek status` shows who lacks it, the rotation waits
/// until it holds it, that instance keeps working on its old master_kek,
/// and `kek prune` waits until it runs on the new one.
#[test]
fn kek_stage_status_rotate_prune_with_a_second_instance_running() {
    use crate::common::admin;
    use keywarden::config::Config;
    use keywarden::store::{NewSecret, SecretStore};

    let kw = Keywarden::new();
    let href = kw.store("s", "kept");
    let other = SecretStore::open(&Config::from_file(&kw.config).unwrap()).unwrap();
    let text = |s: &str| NewSecret::new().payload_text(s, Some("text/plain"), None);
    let mine = other.store_secret(&admin("other"), text("mine")).unwrap();

    let before = fs::read_to_string(&kw.config).unwrap();
    let line = kw.refused(&["kek", "rotate"], "stage the new key first");
    assert!(line.starts_with("Conflict"), "{line}");
    assert!(
        line.contains(&format!("(pid {})", std::process::id())),
        "{line}"
    );
    assert_eq!(
        fs::read_to_string(&kw.config).unwrap(),
        before,
        "config unchanged"
    );

    let out = kw.ok(&["kek", "stage"]);
    assert!(out.contains("staged new master KEK"), "{out}");
    let staged = fs::read_to_string(&kw.config).unwrap();
    assert!(staged.contains("staged_master_keks = [\""), "{staged}");
    assert_eq!(master_kek_line(&staged), master_kek_line(&before));
    assert_eq!(mode(&kw.config), 0o600);
    let status = kw.ok(&["kek", "status"]);
    assert!(status.contains("LACKS the staged key"), "{status}");
    assert!(status.contains("(this command)"), "{status}");
    kw.refused(&["kek", "rotate"], "not yet held by");

    // The operator copies the staged line to the other instance; it reloads.
    other
        .reload_master_keys(&Config::from_file(&kw.config).unwrap())
        .unwrap();
    let status = kw.ok(&["kek", "status"]);
    assert!(!status.contains("LACKS"), "{status}");
    assert!(status.contains("run `keywarden kek rotate`"), "{status}");
    let out = kw.ok(&["kek", "rotate"]);
    assert!(out.contains("2 project KEKs rewrapped"), "{out}");
    let rotated = fs::read_to_string(&kw.config).unwrap();
    assert!(!rotated.contains("staged_master_keks"), "{rotated}");

    // The other instance, still on its old master_kek, keeps working.
    let after = other.store_secret(&admin("other"), text("after")).unwrap();
    let fresh = other.store_secret(&admin("fresh"), text("fresh")).unwrap();
    for (project, id, payload) in [
        ("other", mine, "mine"),
        ("other", after, "after"),
        ("fresh", fresh, "fresh"),
    ] {
        assert_eq!(
            other
                .payload(&admin(project), &id)
                .unwrap()
                .bytes
                .expose_secret(),
            payload.as_bytes()
        );
    }

    let line = kw.refused(&["kek", "prune"], "still run with another master_kek");
    assert!(line.starts_with("Conflict"), "{line}");
    other
        .reload_master_keys(&Config::from_file(&kw.config).unwrap())
        .unwrap();
    let out = kw.ok(&["kek", "prune"]);
    assert!(out.contains("Removed 1 retired master KEKs"), "{out}");
    other
        .reload_master_keys(&Config::from_file(&kw.config).unwrap())
        .unwrap();
    assert_eq!(kw.payload(&href), "kept");
    assert!(kw.ok(&["kek", "status"]).contains("Next: nothing to do"));
    assert!(kw.ok(&["check"]).ends_with("OK\n"));

    // Alone again, the one-step rotation works as before.
    drop(other);
    let out = kw.ok(&["kek", "rotate"]);
    assert!(out.contains("3 project KEKs rewrapped"), "{out}");
}

/// `keywarden serve` reloads its config's master KEKs on SIGHUP: staged,
/// it holds the new key without a restart, and the rotation proceeds.
#[cfg(feature = "server")]
#[test]
fn serve_reloads_master_keks_on_sighup() {
    use std::io::{BufRead as _, BufReader};
    use std::process::Stdio;

    let kw = Keywarden::new();
    let href = kw.store("s", "kept");
    let text = fs::read_to_string(&kw.config).unwrap();
    assert!(text.contains("\nplain_http = true\n"), "{text}");
    crate::common::write_private(
        &kw.config,
        text.replacen(
            "\nplain_http = true\n",
            "\nplain_http = true\nlisten = \"127.0.0.1:0\"\n",
            1,
        )
        .as_bytes(),
    );
    let mut serve = kw
        .command()
        .arg("serve")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = serve.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let wait_for = |phrase: &str| loop {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("serve never said {phrase:?}"));
        if line.contains(phrase) {
            return;
        }
    };
    wait_for("listening on");
    let signal = |name: &str| {
        let ok = std::process::Command::new("kill")
            .args([name, &serve.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {name}");
    };

    kw.ok(&["kek", "stage"]);
    assert!(kw.ok(&["kek", "status"]).contains("LACKS the staged key"));
    kw.refused(&["kek", "rotate"], "not yet held by");
    signal("-HUP");
    wait_for("master KEKs reloaded");
    assert!(!kw.ok(&["kek", "status"]).contains("LACKS"));
    let out = kw.ok(&["kek", "rotate"]);
    assert!(out.contains("1 project KEKs rewrapped"), "{out}");
    signal("-HUP");
    wait_for("master KEKs reloaded");
    kw.ok(&["kek", "prune"]);
    assert_eq!(kw.payload(&href), "kept");
    signal("-TERM");
    assert!(serve.wait().unwrap().success());
}
