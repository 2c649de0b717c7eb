//! The KMIP backend against a real PyKMIP server on 127.0.0.1 (started by
//! scripts/test.sh; without it these tests are skipped, under `CI=true`
//! they fail).
#![cfg(feature = "kmip")]

#[macro_use]
mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use common::{admin, kmip};
use keywarden::ErrorKind;
use keywarden::backend::kmip::{KmipFailure, ResultReason};
use keywarden::backend::{KeyManager, Kmip, ObjectKind, Scope};
use keywarden::catalog::Catalog;
use keywarden::config::{BackendConfig, Config};
use keywarden::model::{BackendId, ManagedObject, ProjectId, SecretId, SecretType, Status};
use keywarden::secret::SecretBytes;
use keywarden::store::{KeyOrder, KeyPairOrder, NewSecret, SecretStore};

macro_rules! need_server {
    () => {
        match kmip::env() {
            Some(env) => env,
            None => return,
        }
    };
}

/// A store whose default backend is `kmip` (the test server), with a
/// SimpleCrypto backend `software` beside it.
struct Deployment {
    _dir: tempfile::TempDir,
    config: Config,
}

impl Deployment {
    fn new(kmip: keywarden::backend::KmipConfig, default: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::generate(dir.path().join("keywarden.db")).unwrap();
        config
            .backends
            .insert(BackendId::new("kmip").unwrap(), BackendConfig::Kmip(kmip));
        config.default_backend = BackendId::new(default).unwrap();
        // Through TOML and back, as an operator's file would be.
        let config = Config::from_toml(&config.to_toml(), None).unwrap();
        Deployment { _dir: dir, config }
    }

    fn catalog(&self) -> Arc<dyn Catalog> {
        keywarden::catalog::open(&self.config.catalog_location()).unwrap()
    }
}

fn secret(payload: &str) -> NewSecret {
    NewSecret::new().payload_text(payload, Some("text/plain"), None)
}

fn openssl_output(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl").args(args).output().unwrap();
    assert!(out.status.success(), "openssl {args:?}");
    out.stdout
}

#[test]
fn every_secret_type_round_trips_and_only_the_uid_is_in_the_catalog() {
    let env = need_server!();
    let d = Deployment::new(kmip::config(&env), "kmip");
    let store = SecretStore::open(&d.config).unwrap();
    let c = admin("kmip-types");
    let key = env.key.to_str().unwrap();
    let private_pem = openssl_output(&["pkey", "-in", key]);
    let public_pem = openssl_output(&["pkey", "-in", key, "-pubout"]);
    let rsa_private_pem = openssl_output(&["rsa", "-in", key, "-traditional"]);
    let public_der = openssl_output(&["pkey", "-in", key, "-pubout", "-outform", "DER"]);
    let cert_pem = std::fs::read(&env.cert).unwrap();
    let objects = [
        ManagedObject::SymmetricKey {
            algorithm: Some("AES".into()),
            bit_length: Some(256),
            key: SecretBytes::copy_from(&[7; 32]),
        },
        ManagedObject::SymmetricKey {
            algorithm: Some("hmacsha256".into()),
            bit_length: Some(256),
            key: SecretBytes::copy_from(&[8; 32]),
        },
        ManagedObject::Passphrase {
            passphrase: SecretBytes::copy_from(b"correct horse battery staple"),
        },
        ManagedObject::OpaqueData {
            data: SecretBytes::copy_from(&[0, 255, 1, 2, 3]),
        },
        ManagedObject::X509Certificate {
            data: SecretBytes::copy_from(&cert_pem),
        },
        // Not PEM: registered as given, for the server to judge.
        ManagedObject::X509Certificate {
            data: SecretBytes::copy_from(b"\x30\x82cert"),
        },
        ManagedObject::PrivateKey {
            algorithm: Some("RSA".into()),
            bit_length: Some(2048),
            key: SecretBytes::copy_from(&private_pem),
        },
        ManagedObject::PrivateKey {
            algorithm: Some("RSA".into()),
            bit_length: Some(2048),
            key: SecretBytes::copy_from(&rsa_private_pem),
        },
        ManagedObject::PublicKey {
            algorithm: Some("RSA".into()),
            bit_length: Some(2048),
            key: SecretBytes::copy_from(&public_pem),
        },
        ManagedObject::PublicKey {
            algorithm: Some("RSA".into()),
            bit_length: Some(2048),
            key: SecretBytes::copy_from(&public_der),
        },
    ];
    let catalog = d.catalog();
    for obj in &objects {
        let id = store.store_object(&c, obj, Some("obj"), None).unwrap();
        let back = store.get_object(&c, &id).unwrap();
        assert_eq!(back.secret_type(), obj.secret_type());
        assert_eq!(
            back.expose_secret(),
            obj.expose_secret(),
            "{:?}",
            obj.secret_type()
        );
        let row = catalog.secret(&id, &c.user_id, true).unwrap().unwrap();
        assert_eq!(row.meta.backend_id.as_str(), "kmip");
        let stored = row.stored.unwrap();
        assert!(stored.kek_id.is_none());
        // A version, the object type, the encoding and a short identifier.
        assert!(stored.bytes.len() <= 3 + 128, "{stored:?}");
        let secret = obj.expose_secret();
        assert!(
            !stored
                .bytes
                .windows(4)
                .any(|w| secret.windows(4).any(|s| s == w))
                || secret.len() < 4,
            "the catalog row holds material"
        );
    }
    // A symmetric key without an algorithm has no KMIP form: refused, not
    // kept as something else.
    let e = store
        .store_object(
            &c,
            &ManagedObject::SymmetricKey {
                algorithm: None,
                bit_length: None,
                key: SecretBytes::copy_from(&[1; 16]),
            },
            None,
            None,
        )
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
}

#[test]
fn keys_generated_on_the_server() {
    let env = need_server!();
    let d = Deployment::new(kmip::config(&env), "kmip");
    let store = SecretStore::open(&d.config).unwrap();
    let c = admin("kmip-orders");
    let order = store.create_key(&c, &KeyOrder::aes(256)).unwrap();
    assert_eq!(order.status, Status::Active);
    let key = store.payload(&c, &order.secret_id.unwrap()).unwrap();
    assert_eq!(key.bytes.len(), 32);

    let pair = store
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
    assert_eq!(pair.status, Status::Active, "{pair:?}");
    let container = store.container(&c, &pair.container_id.unwrap()).unwrap();
    let get = |name: &str| {
        let id = container
            .secret_refs
            .iter()
            .find(|(n, _)| n == name)
            .unwrap()
            .1;
        store.payload(&c, &id).unwrap()
    };
    let private = get("private_key");
    assert!(
        private
            .bytes
            .expose_secret()
            .starts_with(b"-----BEGIN PRIVATE KEY-----\n"),
        "PKCS#8 PEM"
    );
    let public = get("public_key");
    let public = public.bytes.expose_secret();
    assert!(public.starts_with(b"-----BEGIN PUBLIC KEY-----\n"));
    // The public key is the private key's (openssl derives it the same way).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.pem");
    std::fs::write(&path, private.bytes.expose_secret()).unwrap();
    assert_eq!(
        openssl_output(&["pkey", "-in", path.to_str().unwrap(), "-pubout"]),
        public
    );

    // A passphrase-protected pair cannot come from a KMIP server: the order
    // fails with Barbican's 400, nothing is made.
    let refused = store
        .create_key_pair(
            &c,
            &KeyPairOrder {
                name: None,
                algorithm: "rsa".into(),
                bit_length: 2048,
                expiration: None,
                passphrase: Some(SecretBytes::copy_from(b"pw")),
            },
        )
        .unwrap();
    assert_eq!(refused.status, Status::Error);
    assert_eq!(refused.error_code, Some(400));
}

#[test]
fn deleted_secrets_are_gone_from_the_server() {
    let env = need_server!();
    let d = Deployment::new(kmip::config(&env), "kmip");
    let store = SecretStore::open(&d.config).unwrap();
    let c = admin("kmip-delete");
    let id = store.store_secret(&c, secret("short-lived")).unwrap();
    let row = d.catalog().secret(&id, &c.user_id, true).unwrap().unwrap();
    store.delete_secret(&c, &id, false).unwrap();
    assert_eq!(
        store.payload(&c, &id).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    // The object itself was destroyed: the old row's identifier finds nothing.
    let backend = Kmip::connect(BackendId::new("kmip").unwrap(), &kmip::config(&env)).unwrap();
    let e = backend
        .retrieve(Scope::of(&row.meta), row.stored.as_ref().unwrap())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    let failure = std::error::Error::source(&e)
        .and_then(|s| s.downcast_ref::<KmipFailure>())
        .expect("the server's failure as the source");
    assert_eq!(failure.reason, Some(ResultReason::ItemNotFound));
    assert!(e.to_string().contains("KMIP Get failed"), "{e}");
    // Deleting again is not an error.
    backend
        .delete(Scope::of(&row.meta), row.stored.as_ref().unwrap())
        .unwrap();
}

#[test]
fn a_row_pointing_at_another_secrets_object_is_integrity() {
    let env = need_server!();
    let backend = Kmip::connect(BackendId::new("kmip").unwrap(), &kmip::config(&env)).unwrap();
    let project = ProjectId::new("kmip-binding").unwrap();
    let (a, b) = (SecretId::new_random(), SecretId::new_random());
    let opaque = |id| Scope::new(&project, id);
    let stored_a = backend
        .store(opaque(&a), &SecretBytes::copy_from(b"a"))
        .unwrap();
    assert_eq!(
        backend
            .retrieve(opaque(&a), &stored_a)
            .unwrap()
            .expose_secret(),
        b"a"
    );
    let e = backend.retrieve(opaque(&b), &stored_a).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Integrity);
    let other_project = ProjectId::new("kmip-binding-2").unwrap();
    let e = backend
        .retrieve(Scope::new(&other_project, &a), &stored_a)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Integrity);
    // Nor may a moved row destroy another secret's object.
    assert_eq!(
        backend.delete(opaque(&b), &stored_a).unwrap_err().kind(),
        ErrorKind::Integrity
    );
    assert!(backend.retrieve(opaque(&a), &stored_a).is_ok());
    // A row declaring another object type than the server holds.
    let mut wrong = stored_a.clone();
    wrong.bytes[1] = 2;
    let scope = Scope {
        object: ObjectKind {
            secret_type: SecretType::Symmetric,
            algorithm: Some("aes"),
            bit_length: Some(8),
        },
        ..opaque(&a)
    };
    assert_eq!(
        backend.retrieve(scope, &wrong).unwrap_err().kind(),
        ErrorKind::Integrity
    );
    backend.delete(opaque(&a), &stored_a).unwrap();
}

/// Barbican's multiple-backend deployment: one project on the KMIP server,
/// the others on SimpleCrypto, in one store.
#[test]
fn a_project_on_kmip_beside_projects_on_simple_crypto() {
    let env = need_server!();
    let d = Deployment::new(kmip::config(&env), "software");
    let store = SecretStore::open(&d.config).unwrap();
    let (a, k) = (admin("kmip-mixed-a"), admin("kmip-mixed-k"));
    store
        .set_project_backend(&k, &BackendId::new("kmip").unwrap())
        .unwrap();
    let on_a = store.store_secret(&a, secret("a on software")).unwrap();
    let on_k = store.store_secret(&k, secret("k on kmip")).unwrap();
    let key = store.create_key(&k, &KeyOrder::aes(128)).unwrap();
    drop(store);
    let store = SecretStore::open(&d.config).unwrap();
    let backend_of = |ctx, id| {
        store
            .secret(ctx, id)
            .unwrap()
            .backend_id
            .as_str()
            .to_owned()
    };
    assert_eq!(backend_of(&a, &on_a), "software");
    assert_eq!(backend_of(&k, &on_k), "kmip");
    assert_eq!(backend_of(&k, &key.secret_id.unwrap()), "kmip");
    assert_eq!(
        store.payload(&a, &on_a).unwrap().bytes.expose_secret(),
        b"a on software"
    );
    assert_eq!(
        store.payload(&k, &on_k).unwrap().bytes.expose_secret(),
        b"k on kmip"
    );
    assert_eq!(
        store
            .payload(&k, &key.secret_id.unwrap())
            .unwrap()
            .bytes
            .len(),
        16
    );
    // Other projects' secrets stay not-found, whichever backend holds them.
    assert_eq!(
        store.payload(&a, &on_k).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn a_stopped_server_is_retryable_unavailable_and_nothing_is_lost() {
    let env = need_server!();
    let dir = tempfile::tempdir().unwrap();
    let mut server = kmip::PrivateServer::start(&env, dir.path());
    let mut config = kmip::config(&env);
    config.port = server.port;
    config.pool_size = 2;
    let d = Deployment::new(config, "kmip");
    let store = SecretStore::open(&d.config).unwrap();
    let c = admin("kmip-outage");
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(
            store
                .store_secret(&c, secret(&format!("before {i}")))
                .unwrap(),
        );
    }

    server.stop();
    let e = store.payload(&c, &ids[0]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.is_retryable());
    assert!(e.to_string().contains("KMIP Get"), "{e}");
    let e = store.store_secret(&c, secret("during")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");

    server.restart();
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            store.payload(&c, id).unwrap().bytes.expose_secret(),
            format!("before {i}").as_bytes()
        );
    }
    let after = store.store_secret(&c, secret("after")).unwrap();
    assert_eq!(
        store.payload(&c, &after).unwrap().bytes.expose_secret(),
        b"after"
    );
}

#[test]
fn a_store_opens_while_its_kmip_server_is_down() {
    let env = need_server!();
    let dir = tempfile::tempdir().unwrap();
    let mut server = kmip::PrivateServer::start(&env, dir.path());
    let mut config = kmip::config(&env);
    config.port = server.port;
    let d = Deployment::new(config, "software");
    server.stop();

    // Projects on other backends work; the KMIP one waits for its server.
    let store = SecretStore::open(&d.config).unwrap();
    let (a, k) = (admin("kmip-down-a"), admin("kmip-down-k"));
    store
        .set_project_backend(&k, &BackendId::new("kmip").unwrap())
        .unwrap();
    let on_a = store
        .store_secret(&a, secret("a while kmip is down"))
        .unwrap();
    assert_eq!(
        store.payload(&a, &on_a).unwrap().bytes.expose_secret(),
        b"a while kmip is down"
    );
    let e = store.store_secret(&k, secret("k")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.is_retryable());
    assert!(
        store
            .list_secrets(&k, &Default::default())
            .unwrap()
            .items
            .is_empty(),
        "the refused store left no row"
    );

    server.restart();
    let on_k = store.store_secret(&k, secret("k after restart")).unwrap();
    assert_eq!(
        store.payload(&k, &on_k).unwrap().bytes.expose_secret(),
        b"k after restart"
    );
}

#[test]
fn a_client_certificate_the_server_refuses_is_a_config_error() {
    let env = need_server!();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (
        dir.path().join("stranger.crt"),
        dir.path().join("stranger.key"),
    );
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=stranger", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    set_mode(&key, 0o600);
    let mut config = kmip::config(&env).with_client_cert(cert, key);
    config.connect_timeout = std::time::Duration::from_secs(2);
    let e = Kmip::connect(BackendId::new("kmip").unwrap(), &config).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(!e.is_retryable());
    assert!(
        e.to_string().contains("refused our client certificate"),
        "{e}"
    );
    // And a store naming it does not open.
    let d = Deployment::new(config, "software");
    let e = SecretStore::open(&d.config).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
}

#[test]
fn the_pool_reuses_connections() {
    let env = need_server!();
    let mut config = kmip::config(&env);
    config.pool_size = 2;
    let backend = Kmip::connect(BackendId::new("kmip").unwrap(), &config).unwrap();
    let project = ProjectId::new("kmip-pool").unwrap();
    let id = SecretId::new_random();
    let scope = Scope::new(&project, &id);
    let stored = backend.store(scope, &SecretBytes::copy_from(b"x")).unwrap();
    for _ in 0..20 {
        backend.retrieve(scope, &stored).unwrap();
    }
    let stats = backend.stats();
    assert_eq!(stats.connects, 1, "{stats:?}");
    assert_eq!(stats.open, 1);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..5 {
                    backend.retrieve(scope, &stored).unwrap();
                }
            });
        }
    });
    let stats = backend.stats();
    assert!(stats.open <= 2 && stats.connects <= 2, "{stats:?}");
    backend.delete(scope, &stored).unwrap();
}

#[test]
fn a_client_key_others_can_read_is_refused() {
    let env = need_server!();
    let dir = tempfile::tempdir().unwrap();
    let loose = dir.path().join("client.key");
    std::fs::copy(&env.key, &loose).unwrap();
    set_mode(&loose, 0o644);
    let mut config = kmip::config(&env);
    config.client_key = Some(loose.clone());
    let e = Kmip::connect(BackendId::new("kmip").unwrap(), &config).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.to_string().contains("0644"), "{e}");
    set_mode(&loose, 0o400);
    Kmip::connect(BackendId::new("kmip").unwrap(), &config).unwrap();
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_server_the_ca_does_not_vouch_for_is_refused() {
    let env = need_server!();
    let mut config = kmip::config(&env);
    config.ca_cert = env.certs_dir().join("other-ca.crt");
    let e = Kmip::connect(BackendId::new("kmip").unwrap(), &config).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(!e.is_retryable());
    assert!(e.to_string().contains("not trusted"), "{e}");
}

#[test]
fn debug_output_never_shows_the_password() {
    let env = need_server!();
    let mut config = kmip::config(&env);
    config.username = Some(SecretBytes::copy_from(b"kw-user"));
    config.password = Some(SecretBytes::copy_from(b"hunter2-kmip"));
    // PyKMIP accepts (and ignores) the credential beside the certificate.
    let backend = Kmip::connect(BackendId::new("kmip").unwrap(), &config).unwrap();
    let shown = format!("{backend:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    let project = ProjectId::new("kmip-cred").unwrap();
    let id = SecretId::new_random();
    let stored = backend
        .store(Scope::new(&project, &id), &SecretBytes::copy_from(b"y"))
        .unwrap();
    backend.delete(Scope::new(&project, &id), &stored).unwrap();
}
