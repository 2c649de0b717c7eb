//! keywarden and swift agree on every object key, key_id and crypto-meta.
//!
//! The other side is swift's own Python code from PyPI (the `swift` and
//! `castellan` packages in `.venv-peers`): its `kms_keymaster` fetches the
//! root secrets from this store through the `keywarden` command (a castellan
//! `api_class` shim, tests/peers/keywarden_castellan.py), derives keys with
//! `KeyMasterContext.fetch_crypto_keys`, and encrypts and decrypts bodies
//! with `crypto_utils.Crypto`. We compare keys byte for byte, decrypt what
//! swift encrypted (also across a root-secret rotation), and let swift
//! decrypt what we encrypted.
#![cfg(feature = "cli")]

mod common;
mod peers;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::{Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use keywarden::ErrorKind;
use keywarden::model::{ContentType, SecretId, SecretType};
use keywarden::object_keys::{
    BodyCryptoMeta, KeyId, KeymasterConfig, MetaVersion, ObjectKeyMaster, ObjectPath, RootSecretId,
    UnknownSecretId,
};
use keywarden::secret::SecretBytes;
use keywarden::store::{KeyOrder, NewSecret};
use serde_json::{Value, json};

const PATHS: [[&str; 3]; 4] = [
    ["AUTH_test", "photos", "cat.jpg"],
    ["AUTH_test", "c", "dir/sub/o"],
    ["AUTH_\u{fc}n\u{ef}", "c\u{f8}n", "ob j\u{e9}/t?%+\u{1f600}"],
    ["AUTH_test", "c", "/leading-slash"],
];

struct Setup {
    fx: common::Fixture,
    config_path: std::path::PathBuf,
    old: SecretId,
    new: SecretId,
}

fn setup() -> Setup {
    let fx = common::Fixture::new();
    let ctx = common::admin("swift");
    // The old root secret from a key order (256 bits), the new one stored
    // as bytes (384 bits: swift takes any length of at least 256).
    let order = fx.store.create_key(&ctx, &KeyOrder::aes(256)).unwrap();
    let old = order.secret_id.unwrap();
    let new = fx
        .store
        .store_secret(
            &ctx,
            NewSecret::new()
                .name("swift_root_secret_2")
                .secret_type(SecretType::Symmetric)
                .algorithm("aes")
                .bit_length(384)
                .mode("ctr")
                .payload_bytes(SecretBytes::random(48).unwrap(), ContentType::OctetStream),
        )
        .unwrap();
    let config_path = fx.dir.path().join("keywarden.toml");
    common::write_private(&config_path, fx.config.to_toml().as_bytes());
    Setup {
        fx,
        config_path,
        old,
        new,
    }
}

fn options(s: &Setup, rotated: bool) -> Vec<(String, String)> {
    let mut o = vec![
        ("key_id".to_owned(), s.old.to_string()),
        ("project_id".to_owned(), "swift".to_owned()),
    ];
    if rotated {
        o.push(("key_id_new".into(), s.new.to_string()));
        o.push(("active_root_secret_id".into(), "new".into()));
    }
    o
}

fn keymaster(s: &Setup, rotated: bool, version: MetaVersion) -> ObjectKeyMaster {
    let opts = options(s, rotated);
    let mut config =
        KeymasterConfig::from_options(opts.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap();
    config.meta_version_to_write = version;
    ObjectKeyMaster::load(&s.fx.store, &common::admin("swift"), &config).unwrap()
}

fn path(p: &[&str; 3]) -> ObjectPath {
    ObjectPath::new(p[0], p[1], p[2]).unwrap()
}

fn key_id_json(k: &KeyId) -> Value {
    let mut v = json!({"v": k.version.as_str(), "path": k.path});
    if let Some(id) = k.secret_id.as_str() {
        v["secret_id"] = json!(id);
    }
    v
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn body(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u32)
                .wrapping_mul(2_654_435_761)
                .rotate_left(seed as u32) as u8
        })
        .collect()
}

/// Runs tests/peers/swift_keys.py on `job`.
fn swift(python: &std::path::Path, s: &Setup, job: &Value) -> Value {
    let mut command = Command::new(python);
    // swift_keys.py runs `keywarden`: none of our variables reach it but these.
    common::cli::isolate(&mut command);
    let mut child = command
        .arg(peers::dir().join("swift_keys.py"))
        .env("PYTHONPATH", peers::dir())
        .env("KEYWARDEN_BIN", common::cli::BIN)
        .env("KEYWARDEN_CONFIG", &s.config_path)
        .env("OS_PROJECT_ID", "swift")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run swift's python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(job.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "swift_keys.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("swift_keys.py prints JSON")
}

fn swift_keymasters(s: &Setup) -> Value {
    let conf = |rotated| -> BTreeMap<String, String> { options(s, rotated).into_iter().collect() };
    json!({"old": conf(false), "rotated": conf(true)})
}

#[test]
fn keys_and_key_ids_match_swift() {
    let Some(python) = peers::swift_python() else {
        return;
    };
    let s = setup();
    let mut derive = Vec::new();
    let mut expected = Vec::new();
    for (name, rotated) in [("old", false), ("rotated", true)] {
        for version in [MetaVersion::V2, MetaVersion::V3] {
            let km = keymaster(&s, rotated, version);
            for p in &PATHS {
                derive.push(json!({"keymaster": name, "path": p, "version": version.as_str()}));
                let keys = km.keys_for_write(&path(p)).unwrap();
                let all_ids: Vec<Value> = km
                    .root_secret_ids()
                    .map(|id| {
                        key_id_json(&KeyId {
                            secret_id: id.clone(),
                            ..keys.key_id.clone()
                        })
                    })
                    .collect();
                expected.push(json!({
                    "container": hex(keys.container.expose_secret()),
                    "object": hex(keys.object.expose_secret()),
                    "id": key_id_json(&keys.key_id),
                    "all_ids": all_ids,
                }));
            }
        }
    }
    // Legacy key_ids swift may find on disk: version 1 with a bare
    // leading-slash object name, and version 2 with a latin-1 path.
    let km = keymaster(&s, true, MetaVersion::V3);
    let legacy = [
        (PATHS[3], json!({"v": "1", "path": "/leading-slash"})),
        (
            PATHS[2],
            json!({"v": "2", "path": "/AUTH_\u{c3}\u{bc}n\u{c3}\u{af}/c\u{c3}\u{b8}n/ob j\u{c3}\u{a9}/t?%+\u{f0}\u{9f}\u{98}\u{80}", "secret_id": "new"}),
        ),
        // A path that is not the request's: swift uses the one in the meta.
        (PATHS[0], json!({"v": "3", "path": "/AUTH_test/other/x"})),
    ];
    let mut read = Vec::new();
    let mut read_expected = Vec::new();
    for (p, key_id) in &legacy {
        read.push(json!({"keymaster": "rotated", "path": p, "key_id": key_id}));
        let kid = KeyId {
            version: key_id["v"].as_str().unwrap().parse().unwrap(),
            path: key_id["path"].as_str().unwrap().to_owned(),
            secret_id: match key_id.get("secret_id") {
                Some(v) => RootSecretId::named(v.as_str().unwrap()).unwrap(),
                None => RootSecretId::DEFAULT,
            },
        };
        let keys = km.keys_for_read(&path(p), &kid).unwrap();
        read_expected.push(json!({
            "container": hex(keys.container.expose_secret()),
            "object": hex(keys.object.expose_secret()),
        }));
    }
    let job = json!({
        "keymasters": swift_keymasters(&s),
        "derive": derive,
        "read": read,
        "encrypt": [],
        "decrypt": [],
    });
    let out = swift(&python, &s, &job);
    assert_eq!(out["derive"], Value::Array(expected));
    assert_eq!(out["read"], Value::Array(read_expected));
}

#[test]
fn bodies_cross_between_swift_and_keywarden_across_rotation() {
    let Some(python) = peers::swift_python() else {
        return;
    };
    let s = setup();
    // swift writes under the old root secret, before the rotation.
    let mut encrypt = Vec::new();
    let mut bodies = Vec::new();
    for (i, p) in PATHS.iter().enumerate() {
        let b = body(70_000 + i * 33_331, i as u8);
        let version = if i % 2 == 0 { "2" } else { "3" };
        encrypt.push(
            json!({"keymaster": "old", "path": p, "body": B64.encode(&b), "version": version}),
        );
        bodies.push(b);
    }
    // keywarden writes under the new root secret, after it.
    let rotated = keymaster(&s, true, MetaVersion::V3);
    let mut decrypt = Vec::new();
    let mut ours = Vec::new();
    for (i, p) in PATHS.iter().enumerate() {
        let b = body(140_000 + i, 7 + i as u8);
        let mut stored = Vec::new();
        let meta = rotated
            .encrypt_object(&path(p), &b[..], &mut stored)
            .unwrap();
        assert_eq!(meta.key_id.secret_id, RootSecretId::named("new").unwrap());
        for offset in [0usize, 17, 65_536 + 5] {
            decrypt.push(json!({
                "keymaster": "rotated",
                "path": p,
                "header": meta.to_header(),
                "stored": B64.encode(&stored),
                "offset": offset,
            }));
        }
        ours.push((meta, b));
    }
    let job = json!({
        "keymasters": swift_keymasters(&s),
        "derive": [],
        "read": [],
        "encrypt": encrypt,
        "decrypt": decrypt,
    });
    let out = swift(&python, &s, &job);

    // What swift wrote under the old secret, we read after the rotation.
    for ((p, b), e) in PATHS
        .iter()
        .zip(&bodies)
        .zip(out["encrypt"].as_array().unwrap())
    {
        let meta = BodyCryptoMeta::from_header(e["header"].as_str().unwrap()).unwrap();
        assert_eq!(meta.key_id.secret_id, RootSecretId::DEFAULT);
        assert_eq!(
            meta.to_header(),
            e["header"].as_str().unwrap(),
            "same bytes as swift's dump"
        );
        let stored = B64.decode(e["stored"].as_str().unwrap()).unwrap();
        let mut plain = Vec::new();
        rotated
            .decrypt_object(&path(p), &meta, &stored[..], &mut plain)
            .unwrap();
        assert_eq!(&plain, b, "{p:?}");
    }
    // What we wrote, swift reads (also from an offset), and swift's own
    // dump of our meta is our header byte for byte.
    let results = out["decrypt"].as_array().unwrap();
    for (i, (meta, b)) in ours.iter().enumerate() {
        for (j, offset) in [0usize, 17, 65_536 + 5].into_iter().enumerate() {
            let r = &results[i * 3 + j];
            assert_eq!(
                B64.decode(r["body"].as_str().unwrap()).unwrap(),
                b[offset..]
            );
            assert_eq!(r["redump"].as_str().unwrap(), meta.to_header());
        }
    }

    // Dropping the old root secret makes swift's old objects unreadable,
    // with a typed refusal naming the missing root secret.
    let only_new = ObjectKeyMaster::load(
        &s.fx.store,
        &common::admin("swift"),
        &KeymasterConfig {
            key_ids: BTreeMap::from([(RootSecretId::named("new").unwrap(), s.new)]),
            active_root_secret_id: RootSecretId::named("new").unwrap(),
            meta_version_to_write: MetaVersion::V3,
        },
    )
    .unwrap();
    let e = &out["encrypt"][0];
    let meta = BodyCryptoMeta::from_header(e["header"].as_str().unwrap()).unwrap();
    let err = only_new
        .decrypt_object(&path(&PATHS[0]), &meta, &[][..], &mut Vec::new())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    let cause = std::error::Error::source(&err)
        .and_then(|c| c.downcast_ref::<UnknownSecretId>())
        .expect("typed cause");
    assert_eq!(cause.0, RootSecretId::DEFAULT);
}

#[test]
fn store_checks_root_secrets_as_kms_keymaster_does() {
    let s = setup();
    let ctx = common::admin("swift");
    let weak = s.fx.store.create_key(&ctx, &KeyOrder::aes(128)).unwrap();
    let passphrase =
        s.fx.store
            .store_secret(
                &ctx,
                NewSecret::new()
                    .secret_type(SecretType::Passphrase)
                    .payload_text("correct horse battery staple", Some("text/plain"), None),
            )
            .unwrap();
    for id in [weak.secret_id.unwrap(), passphrase] {
        let err =
            ObjectKeyMaster::load(&s.fx.store, &ctx, &KeymasterConfig::single(id)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.context().contains("is not a symmetric key"), "{err}");
    }
    // Another project's secret is not there at all.
    let err = ObjectKeyMaster::load(
        &s.fx.store,
        &common::admin("other"),
        &KeymasterConfig::single(s.old),
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}
