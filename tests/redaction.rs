//! Key material never shows in `Debug` output, errors or logs; every
//! operation emits one audit event.

mod common;

use std::io::Write as _;
use std::sync::{Arc, Mutex};

use common::{Fixture, admin, ctx};
use keywarden::backend::MasterKek;
use keywarden::config::Config;
use keywarden::model::{ContentType, ManagedObject, Payload};
use keywarden::payload;
use keywarden::secret::SecretBytes;
use keywarden::store::{KeyOrder, KeyPairOrder, NewSecret};

const MARKER: &str = "ZZ-very-secret-marker-ZZ";

fn assert_hidden(shown: &str, secret: &[u8]) {
    assert!(!shown.contains(MARKER), "{shown}");
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    assert!(!shown.to_lowercase().contains(&hex), "{shown}");
    let decimal = format!("{:?}", secret);
    assert!(!shown.contains(&decimal[1..decimal.len() - 1]), "{shown}");
}

#[test]
fn debug_of_every_key_holding_type_is_redacted() {
    let bytes = MARKER.as_bytes();
    let sb = SecretBytes::copy_from(bytes);
    assert_hidden(&format!("{sb:?}"), bytes);
    let payload = Payload {
        content_type: ContentType::TextPlain,
        bytes: sb.clone(),
    };
    assert_hidden(&format!("{payload:?}"), bytes);
    assert_hidden(&format!("{:?}", payload::encode(&payload)), bytes);
    for obj in [
        ManagedObject::SymmetricKey {
            algorithm: Some("AES".into()),
            bit_length: Some(192),
            key: sb.clone(),
        },
        ManagedObject::PrivateKey {
            algorithm: Some("RSA".into()),
            bit_length: Some(2048),
            key: sb.clone(),
        },
        ManagedObject::PublicKey {
            algorithm: Some("RSA".into()),
            bit_length: Some(2048),
            key: sb.clone(),
        },
        ManagedObject::X509Certificate { data: sb.clone() },
        ManagedObject::Passphrase {
            passphrase: sb.clone(),
        },
        ManagedObject::OpaqueData { data: sb.clone() },
    ] {
        assert_hidden(&format!("{obj:?}"), bytes);
    }
    let new = NewSecret::new().payload_text(MARKER, Some("text/plain"), None);
    assert_hidden(&format!("{new:?}"), bytes);
    let pair = KeyPairOrder {
        name: None,
        algorithm: "rsa".into(),
        bit_length: 2048,
        expiration: None,
        passphrase: Some(sb.clone()),
    };
    assert_hidden(&format!("{pair:?}"), bytes);

    let kek = MasterKek::generate().unwrap();
    let b64 = kek.to_base64();
    for shown in [
        format!("{kek:?}"),
        format!("{:?}", Config::generate("x.db").unwrap()),
    ] {
        assert!(!shown.contains(b64.as_str()));
        assert_hidden(&shown, kek.expose_secret());
    }
    let fixed = keywarden::backend::DangerFixedKey::new(
        keywarden::model::BackendId::new("legacy").unwrap(),
        sb.clone(),
    );
    assert_hidden(&format!("{fixed:?}"), bytes);
    let options = keywarden::migration::MigrationOptions::new(
        keywarden::migration::Service::Volume,
        keywarden::migration::HostFilter::Host("h".into()),
        Some(sb.clone()),
    );
    assert_hidden(&format!("{options:?}"), bytes);
    let mut legacy = Config::generate("x.db").unwrap();
    legacy.backends.insert(
        keywarden::model::BackendId::new("legacy").unwrap(),
        keywarden::config::BackendConfig::DangerFixedKey {
            fixed_key: sb.clone(),
        },
    );
    assert_hidden(&format!("{legacy:?}"), bytes);
    let rsa = keywarden::keygen::generate_rsa(2048, None).unwrap();
    let shown = format!("{rsa:?}");
    assert!(!shown.contains("PRIVATE KEY"), "{shown}");
}

#[test]
fn store_debug_shows_no_master_kek() {
    let f = Fixture::new();
    let master_kek = f.config.master_kek(&f.config.default_backend).unwrap();
    let shown = format!("{:?}", f.store);
    assert!(!shown.contains(master_kek.to_base64().as_str()), "{shown}");
    assert_hidden(&shown, master_kek.expose_secret());
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn audit_events_name_the_operation_and_never_the_payload() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    let f = Fixture::new();
    tracing::subscriber::with_default(subscriber, || {
        let c = admin("audited");
        let id = f
            .store
            .store_secret(
                &c,
                NewSecret::new().payload_text(MARKER, Some("text/plain"), None),
            )
            .unwrap();
        let got = f.store.payload(&c, &id).unwrap();
        assert_eq!(got.bytes.expose_secret(), MARKER.as_bytes());
        let order = f.store.create_key(&c, &KeyOrder::aes(256)).unwrap();
        let key = f.store.payload(&c, &order.secret_id.unwrap()).unwrap();
        let observer = ctx("watcher", "audited", &["audit"]);
        assert!(f.store.payload(&observer, &id).is_err());
        f.store.delete_secret(&c, &id, false).unwrap();
        let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert_hidden(&log, MARKER.as_bytes());
        assert_hidden(&log, key.bytes.expose_secret());
        let audit: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("keywarden::audit"))
            .collect();
        assert_eq!(audit.len(), 6, "{log}");
        assert!(
            audit[0].contains("action=\"secret:store\"")
                && audit[0].contains("outcome=\"success\""),
            "{}",
            audit[0]
        );
        assert!(
            audit[0].contains(&id.to_string()) && audit[0].contains("project=audited"),
            "{}",
            audit[0]
        );
        assert!(audit[1].contains("secret:decrypt"));
        assert!(audit[2].contains("orders:post"));
        assert!(
            audit[4].contains("user=watcher") && audit[4].contains("outcome=\"denied\""),
            "{}",
            audit[4]
        );
        assert!(audit[5].contains("secret:delete"));
    });
    let _ = std::io::stderr().flush();
}
