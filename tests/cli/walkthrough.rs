//! The seed guide's walkthrough: "Test barbican functionality" and chapter
//! 4 (list, add, update, delete, key orders, asymmetric orders and
//! containers), step by step.

use std::fs;

use base64::Engine as _;

use crate::common::cli::{Keywarden, assert_secret_href, mode, table_value, trim_line, uuid_of};
use crate::set;

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
const ORDERS_BASE: &str = "http://localhost:9311/v1/orders/";
const CONTAINERS_BASE: &str = "http://localhost:9311/v1/containers/";

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
fn an_order_that_ends_in_error_exits_1_and_shows_the_order() {
    let kw = Keywarden::new();
    let out = kw.run(&[
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
    ]);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_eq!(out.stdout, "ERROR\n400\n");
    let line = out.one_line();
    assert!(line.contains("finished in ERROR (400)"), "{line}");
    // The order is recorded, as Barbican records it.
    assert!(
        kw.ok(&["secret", "order", "list", "-f", "value", "-c", "Status"])
            .contains("ERROR")
    );
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

/// Payloads and passphrases need not be on argv, where every local user
/// reads them in /proc: `--payload-file PATH|-`, `--passphrase-file`.
#[test]
fn secrets_come_from_a_file_or_stdin_instead_of_argv() {
    use std::io::Write as _;
    use std::process::Stdio;
    let kw = Keywarden::new();
    let file = kw.path("payload.txt");
    fs::write(&file, "from a file\n").unwrap();
    let href = trim_line(kw.ok(&[
        "secret",
        "store",
        "--name",
        "f",
        "--payload-file",
        file.to_str().unwrap(),
        "-f",
        "value",
        "-c",
        "Secret href",
    ]));
    // What --payload would have held; Barbican strips a text payload.
    assert_eq!(kw.payload_file(&href), b"from a file");

    let mut child = kw
        .command()
        .args(["secret", "store", "--name", "s", "--payload-file", "-"])
        .args(["-f", "value", "-c", "Secret href"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"from stdin")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let href = trim_line(String::from_utf8(out.stdout).unwrap());
    assert_eq!(kw.payload(&href), "from stdin");

    let later = kw.field(&["secret", "store", "--name", "later"], "Secret href");
    kw.refused_unchanged(&["secret", "update", &later], "<PAYLOAD>");
    kw.refused_unchanged(
        &[
            "secret",
            "update",
            &later,
            "x",
            "--payload-file",
            file.to_str().unwrap(),
        ],
        "cannot be used with",
    );
    kw.ok(&[
        "secret",
        "update",
        &later,
        "--payload-file",
        file.to_str().unwrap(),
    ]);
    assert_eq!(
        kw.payload_file(&later),
        b"from a file\n",
        "a PUT body is kept as sent"
    );
    kw.refused_unchanged(
        &["secret", "store", "--payload", "x", "--payload-file", "-"],
        "cannot be used with",
    );

    let pass = kw.path("pass");
    fs::write(&pass, "correct horse").unwrap();
    let status = trim_line(kw.ok(&[
        "secret",
        "order",
        "create",
        "asymmetric",
        "--algorithm",
        "rsa",
        "--bit-length",
        "2048",
        "--passphrase-file",
        pass.to_str().unwrap(),
        "-f",
        "value",
        "-c",
        "Status",
    ]));
    assert_eq!(status, "ACTIVE");
}
