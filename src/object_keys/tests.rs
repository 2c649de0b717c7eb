//! Known answers from swift, the header format, the legacy paths.

use crate::error::ErrorKind;
use crate::model::SecretId;
use crate::secret::SecretBytes;

use super::crypto_meta::{hex, quote_plus, unquote_plus};
use super::keymaster::utf8_as_latin1;
use super::*;

fn master() -> ObjectKeyMaster {
    ObjectKeyMaster::from_root_secrets(
        [
            (RootSecretId::DEFAULT, SecretBytes::copy_from(&[1; 32])),
            (
                RootSecretId::named("2").unwrap(),
                SecretBytes::copy_from(&[2; 48]),
            ),
        ],
        RootSecretId::named("2").unwrap(),
    )
    .unwrap()
}

/// Known answers computed with swift 2.38.3's own `KeyMaster.create_key`
/// (root secret: 32 bytes of 0x01, given as `encryption_root_secret`).
const SWIFT_KEYS: [(&str, &str); 2] = [
    (
        "/a/c/o",
        "781886ff533c5989a6194d3c629b967352c9615bb4285a5b61c3b90490375f48",
    ),
    (
        "/a/c",
        "d9d2de7f842882a361b124756b990906b4b8e6f9d3b2bec6f695d34523c9e196",
    ),
];

#[test]
fn keys_match_swift_known_answers() {
    let m = master();
    for (path, expected) in SWIFT_KEYS {
        let k = m.create_key(path, &RootSecretId::DEFAULT).unwrap();
        assert_eq!(hex(k.expose_secret()), expected, "{path}");
    }
    let keys = m
        .keys_for_read(
            &ObjectPath::new("a", "c", "o").unwrap(),
            &KeyId {
                version: MetaVersion::V3,
                path: "/a/c/o".into(),
                secret_id: RootSecretId::DEFAULT,
            },
        )
        .unwrap();
    assert_eq!(hex(keys.object.expose_secret()), SWIFT_KEYS[0].1);
    assert_eq!(hex(keys.container.expose_secret()), SWIFT_KEYS[1].1);
}

#[test]
fn round_trip_with_ranged_reads() {
    let m = master();
    let path = ObjectPath::new("AUTH_test", "c", "dir/o").unwrap();
    let body: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut stored = Vec::new();
    let meta = m.encrypt_object(&path, &body[..], &mut stored).unwrap();
    assert_ne!(stored, body);
    assert_eq!(meta.key_id.secret_id, RootSecretId::named("2").unwrap());
    assert_eq!(meta.key_id.path, "/AUTH_test/c/dir/o");
    let parsed = BodyCryptoMeta::from_header(&meta.to_header()).unwrap();
    assert_eq!(parsed, meta);
    let mut plain = Vec::new();
    m.decrypt_object(&path, &parsed, &stored[..], &mut plain)
        .unwrap();
    assert_eq!(plain, body);
    for offset in [1u64, 15, 16, 17, 65_537, 199_999] {
        let mut dec = m.body_decryptor(&path, &parsed, offset).unwrap();
        let mut tail = stored[offset as usize..].to_vec();
        dec.apply(&mut tail);
        assert_eq!(tail, body[offset as usize..]);
    }
}

#[test]
fn unknown_secret_id_is_a_typed_config_error() {
    let m = master();
    let path = ObjectPath::new("a", "c", "o").unwrap();
    let mut meta = m.body_encryptor(&path).unwrap().into_meta();
    meta.key_id.secret_id = RootSecretId::named("gone").unwrap();
    let e = m.body_decryptor(&path, &meta, 0).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    let src = std::error::Error::source(&e)
        .and_then(|s| s.downcast_ref::<UnknownSecretId>())
        .expect("typed source");
    assert_eq!(src.0, RootSecretId::named("gone").unwrap());
}

#[test]
fn header_matches_python_json_and_quote_plus() {
    let meta = BodyCryptoMeta {
        iv: [0; 16],
        body_key: WrappedKey {
            iv: [1; 16],
            key: [2; 32],
        },
        key_id: KeyId {
            version: MetaVersion::V3,
            path: "/a/c/\u{e9}".into(),
            secret_id: RootSecretId::named("s").unwrap(),
        },
    };
    // json.dumps({...}, sort_keys=True) then quote_plus, by hand.
    let json = "{\"body_key\": {\"iv\": \"AQEBAQEBAQEBAQEBAQEBAQ==\", \"key\": \"AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=\"}, \"cipher\": \"AES_CTR_256\", \"iv\": \"AAAAAAAAAAAAAAAAAAAAAA==\", \"key_id\": {\"path\": \"/a/c/\\u00e9\", \"secret_id\": \"s\", \"v\": \"3\"}}";
    assert_eq!(meta.to_header(), quote_plus(json));
    assert_eq!(unquote_plus(&meta.to_header()).unwrap(), json);
    assert_eq!(
        BodyCryptoMeta::from_header(&meta.to_header()).unwrap(),
        meta
    );
}

#[test]
fn bad_meta_is_refused_with_swift_reasons() {
    let m = master();
    let good = m
        .body_encryptor(&ObjectPath::new("a", "c", "o").unwrap())
        .unwrap()
        .into_meta()
        .to_header();
    let json = unquote_plus(&good).unwrap();
    for (from, to, reason) in [
        ("AES_CTR_256", "AES_CBC_256", "Cipher must be AES_CTR_256"),
        ("\"v\": \"3\"", "\"v\": \"4\"", "Unknown key_id version: 4"),
        ("\"v\": \"3\"", "\"v\": 3", "'v' must be a string"),
    ] {
        let e = BodyCryptoMeta::from_header(&quote_plus(&json.replace(from, to))).unwrap_err();
        assert!(e.to_string().contains(reason), "{e}");
    }
    assert!(BodyCryptoMeta::from_header("%7B").is_err());
    assert!(BodyCryptoMeta::from_header("[]").is_err());
}

#[test]
fn legacy_paths_are_read_as_swift_reads_them() {
    let m = master();
    let path = ObjectPath::new("a", "c", "\u{e9}t\u{e9}").unwrap();
    // Version 2 stored the path as latin-1 chars of its UTF-8 bytes.
    let v2 = KeyId {
        version: MetaVersion::V2,
        path: utf8_as_latin1("/a/c/\u{e9}t\u{e9}"),
        secret_id: RootSecretId::DEFAULT,
    };
    let keys = m.keys_for_read(&path, &v2).unwrap();
    let expect = m
        .create_key("/a/c/\u{e9}t\u{e9}", &RootSecretId::DEFAULT)
        .unwrap();
    assert!(keys.object.ct_eq(expect.expose_secret()));
    // Version 1 recorded an object name starting with '/' as the path.
    let slashed = ObjectPath::new("a", "c", "/o").unwrap();
    let v1 = KeyId {
        version: MetaVersion::V1,
        path: "/o".into(),
        secret_id: RootSecretId::DEFAULT,
    };
    let keys = m.keys_for_read(&slashed, &v1).unwrap();
    let expect = m.create_key("/o", &RootSecretId::DEFAULT).unwrap();
    assert!(keys.object.ct_eq(expect.expose_secret()));
}

#[test]
fn config_options_as_swift_names_them() {
    let a = SecretId::new_random();
    let b = SecretId::new_random();
    let href = format!("http://localhost:9311/v1/secrets/{b}");
    let c = KeymasterConfig::from_options([
        ("key_id", a.to_string().as_str()),
        ("key_id_new", href.as_str()),
        ("active_root_secret_id", "new"),
        ("username", "swift"),
        ("meta_version_to_write", "2"),
    ])
    .unwrap();
    assert_eq!(c.key_ids[&RootSecretId::DEFAULT], a);
    assert_eq!(c.key_ids[&RootSecretId::named("new").unwrap()], b);
    assert_eq!(c.active_root_secret_id, RootSecretId::named("new").unwrap());
    assert_eq!(c.meta_version_to_write, MetaVersion::V2);
    let e = KeymasterConfig::from_options([("key_id_", a.to_string().as_str())]).unwrap_err();
    assert_eq!(e.context(), "Malformed multi-key option name key_id_");
}

#[test]
fn short_root_secret_and_missing_active_are_refused() {
    let e = ObjectKeyMaster::from_root_secrets(
        [(RootSecretId::DEFAULT, SecretBytes::copy_from(&[0; 31]))],
        RootSecretId::DEFAULT,
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    let e = ObjectKeyMaster::from_root_secrets(
        [(RootSecretId::DEFAULT, SecretBytes::copy_from(&[0; 32]))],
        RootSecretId::named("x").unwrap(),
    )
    .unwrap_err();
    assert_eq!(e.context(), "No secret loaded for active_root_secret_id x");
}

#[test]
fn debug_shows_no_key_material() {
    let m = master();
    let shown = format!("{m:?}");
    assert!(!shown.contains("[1, 1"), "{shown}");
    let keys = m
        .keys_for_write(&ObjectPath::new("a", "c", "o").unwrap())
        .unwrap();
    let shown = format!("{keys:?}");
    assert!(shown.contains("REDACTED"), "{shown}");
}
