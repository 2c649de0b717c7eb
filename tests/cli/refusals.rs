//! The one-line refusals, as tables: every case must exit with status 1,
//! print nothing on stdout and one line on stderr that matches its pattern
//! (`[..]` is any text), and change nothing: not a row of the catalog, not
//! the config, not a file of the directory (see `common::cli::State`).
//! Because a case changes nothing, the cases of a table share one store.
//!
//! Refusals that are a step of a longer story (the guide's walkthrough, a
//! KEK rotation, a role that may do one thing but not another) stay in
//! their tests.

use std::fs;

use base64::Engine as _;
use rusqlite::Connection;

use crate::common::cli::{Keywarden, Refusal, Vars, matches};

/// On a store holding `{secret}` (a text secret, "v") and `{updated}` (a
/// secret stored without a payload and given "first" later), with these
/// files beside it: garbage.db (text), empty.db (empty), mapped.db (a
/// backup of this store mapping project `px` to `hsm`, which the config
/// does not have) and garbled.toml (a config that does not parse).
/// `{missing-config}` names a config in a directory that does not exist.
const ON_A_STORE_WITH_SECRETS: &[Refusal] = &[
    Refusal {
        what: "a payload over the size limit",
        args: "secret store --name big --payload {too-big}",
        stderr: "[..]too large[..]",
    },
    Refusal {
        what: "bad base64",
        args: "secret store --payload-content-type application/octet-stream \
               --payload-content-encoding base64 --payload !!",
        stderr: "[..]Invalid payload for payload_content_encoding[..]",
    },
    Refusal {
        what: "text/plain with an encoding",
        args: "secret store --payload-content-type text/plain \
               --payload-content-encoding base64 --payload aGk=",
        stderr: "[..]payload_content_encoding is not one of None[..]",
    },
    Refusal {
        what: "an expiration in the past",
        args: "secret store --payload x --expiration 2001-01-01T00:00:00Z",
        stderr: "[..]'expiration' is before current time[..]",
    },
    Refusal {
        what: "an unparsable expiration",
        args: "secret store --payload x --expiration soon",
        stderr: "[..]Invalid date for 'expiration'[..]",
    },
    Refusal {
        what: "a key order of 255 bits",
        args: "secret order create key --name k --algorithm aes --bit-length 255",
        stderr: "[..]multiple of 8[..]",
    },
    Refusal {
        what: "an unknown secret type",
        args: "secret store --payload x --secret-type banana",
        stderr: "[..]secret_type[..]",
    },
    Refusal {
        what: "an empty payload",
        args: "secret store --payload ''",
        stderr: "[..]must be non empty[..]",
    },
    Refusal {
        what: "a content type without a payload",
        args: "secret store --payload-content-type text/plain",
        stderr: "[..]payload must be provided[..]",
    },
    Refusal {
        what: "a malformed id",
        args: "secret get not-a-uuid",
        stderr: "[..]invalid[..]",
    },
    Refusal {
        what: "an unknown subcommand",
        args: "secret frobnicate",
        stderr: "[..]unrecognized subcommand 'frobnicate'[..]",
    },
    Refusal {
        what: "a non-numeric limit",
        args: "secret list --limit ten",
        stderr: "[..]invalid value 'ten' for '--limit[..]",
    },
    Refusal {
        what: "an unknown output format",
        args: "secret list -f yaml",
        stderr: "[..]invalid value 'yaml' for '--format[..]",
    },
    Refusal {
        what: "a list in the one-object shell format",
        args: "secret list -f shell",
        stderr: "[..]shell format[..]",
    },
    Refusal {
        what: "a usage error names the missing secret",
        args: "secret get",
        stderr: "[..]<SECRET>[..]",
    },
    Refusal {
        what: "a usage error names the missing payload",
        args: "secret update x",
        stderr: "[..]<PAYLOAD>[..]",
    },
    Refusal {
        what: "a second update is a conflict",
        args: "secret update {updated} second",
        stderr: "Conflict[..]Secret already has data, cannot modify it.[..]",
    },
    Refusal {
        what: "a backup into a directory that does not exist names the file",
        args: "backup --output no-dir/b.db",
        stderr: "[..]no-dir/b.db[..]",
    },
    Refusal {
        what: "a restore of a file that is not a database names the file",
        args: "restore --force garbage.db",
        stderr: "[..]garbage.db[..]",
    },
    Refusal {
        what: "a restore of an empty file names the file",
        args: "restore --force empty.db",
        stderr: "[..]empty.db[..]",
    },
    Refusal {
        what: "a restore of a backup mapping a project to an unconfigured backend",
        args: "restore --force mapped.db",
        stderr: "[..]hsm[..]",
    },
    Refusal {
        what: "secret list under a config that does not exist",
        args: "--config {missing-config} secret list",
        stderr: "[..]{missing-config} does not exist[..]keywarden init[..]",
    },
    Refusal {
        what: "check under a config that does not exist",
        args: "--config {missing-config} check",
        stderr: "[..]{missing-config} does not exist[..]keywarden init[..]",
    },
    Refusal {
        what: "backup under a config that does not exist",
        args: "--config {missing-config} backup --output b.db",
        stderr: "[..]{missing-config} does not exist[..]keywarden init[..]",
    },
    Refusal {
        what: "kek rotate under a config that does not exist",
        args: "--config {missing-config} kek rotate",
        stderr: "[..]{missing-config} does not exist[..]keywarden init[..]",
    },
    Refusal {
        what: "a config that does not parse",
        args: "--config garbled.toml secret list",
        stderr: "[..]invalid configuration[..]",
    },
];

/// On a store whose database was moved away: the admin commands do not
/// make a new one.
const WITHOUT_A_DATABASE: &[Refusal] = &[
    Refusal {
        what: "check",
        args: "check",
        stderr: "[..]does not exist[..]",
    },
    Refusal {
        what: "backup",
        args: "backup --output b.db",
        stderr: "[..]does not exist[..]",
    },
    Refusal {
        what: "kek rotate",
        args: "kek rotate",
        stderr: "[..]does not exist[..]",
    },
    Refusal {
        what: "kek prune",
        args: "kek prune",
        stderr: "[..]does not exist[..]",
    },
];

#[test]
fn refusals_on_a_store_with_secrets_change_nothing() {
    let kw = Keywarden::new();
    let secret = kw.store("existing", "v");
    let updated = kw.field(&["secret", "store", "--name", "once"], "Secret href");
    kw.ok(&["secret", "update", &updated, "first"]);
    fs::write(kw.path("garbage.db"), "not a database, just some text").unwrap();
    fs::write(kw.path("empty.db"), "").unwrap();
    kw.ok(&["backup", "--output", "mapped.db"]);
    Connection::open(kw.path("mapped.db"))
        .unwrap()
        .execute(
            "INSERT INTO project_backends (project_id, backend_id) VALUES ('px', 'hsm')",
            [],
        )
        .unwrap();
    fs::write(kw.path("garbled.toml"), "catalog = [").unwrap();
    let missing_config = kw.path("nope").join("keywarden.toml");
    let vars = Vars::new()
        .with("secret", &secret)
        .with("updated", &updated)
        .with("too-big", "a".repeat(20_001))
        .with("missing-config", missing_config.to_str().unwrap());

    kw.assert_refusals(&vars, ON_A_STORE_WITH_SECRETS);

    // What the refusals were refused around still reads back.
    assert_eq!(kw.payload(&secret), "v");
    assert_eq!(kw.payload(&updated), "first");
    assert!(kw.ok(&["check"]).ends_with("OK\n"));
}

#[test]
fn refusals_without_a_database_make_none() {
    let kw = Keywarden::new();
    kw.store("s", "v");
    fs::rename(kw.db(), kw.path("moved.db")).unwrap();
    kw.assert_refusals(&Vars::new(), WITHOUT_A_DATABASE);
    assert!(!kw.db().exists());
}

#[test]
fn a_payload_of_exactly_the_size_limit_is_accepted() {
    let kw = Keywarden::new();
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
fn a_refusal_pattern_matches_with_wildcards_and_exactly_without() {
    assert!(matches("Conflict: pass --force", "Conflict[..]--force"));
    assert!(matches("Conflict: pass --force", "[..]pass[..]"));
    assert!(matches("abc", "abc"));
    assert!(matches("abc", "[..]"));
    assert!(!matches("abcd", "abc"));
    assert!(!matches("xabc", "abc[..]"));
    assert!(!matches("a then b", "[..]b[..]a[..]"));
    assert!(!matches("ab", "a[..]b[..]b"));
}
