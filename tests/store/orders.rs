//! Key orders and RSA key-pair orders.

use keywarden::ErrorKind;
use keywarden::model::{ContentType, SecretType, Status};
use keywarden::secret::SecretBytes;
use keywarden::store::{KeyOrder, KeyPairOrder};

use crate::common::{Fixture, Setup, admin};
use crate::conformance;

conformance!(key_orders, key_pair_order_makes_an_rsa_container);

fn key_orders(setup: &Setup) {
    let f = Fixture::on(setup);
    let c = admin("p1");
    for bits in [128, 192, 256] {
        let order = f
            .store
            .create_key(
                &c,
                &KeyOrder {
                    mode: Some("ctr".into()),
                    ..KeyOrder::aes(bits)
                },
            )
            .unwrap();
        assert_eq!(order.status, Status::Active);
        let sid = order.secret_id.expect("key order makes a secret");
        let key = f.store.payload(&c, &sid).unwrap();
        assert_eq!(key.bytes.len() * 8, bits as usize);
        assert_eq!(key.content_type, ContentType::OctetStream);
        let meta = f.store.secret(&c, &sid).unwrap();
        assert_eq!(meta.secret_type, SecretType::Symmetric);
        assert_eq!(meta.mode.as_deref(), Some("ctr"));
        assert_eq!(f.store.order(&c, &order.id).unwrap(), order);
    }
    let hmac = f
        .store
        .create_key(
            &c,
            &KeyOrder {
                algorithm: "hmacsha256".into(),
                bit_length: 384,
                ..KeyOrder::aes(0)
            },
        )
        .unwrap();
    // PyKMIP does not generate HMAC keys: the order fails as Barbican's
    // would (400), nothing is faked.
    let server_makes_all = !setup.backend.is_kmip();
    let made = |o: &keywarden::model::Order| {
        if server_makes_all {
            assert_eq!(o.status, Status::Active);
        } else {
            assert_eq!(
                (o.status, o.error_code),
                (Status::Error, Some(400)),
                "{o:?}"
            );
        }
    };
    made(&hmac);
    let xts = f
        .store
        .create_key(
            &c,
            &KeyOrder {
                mode: Some("xts".into()),
                ..KeyOrder::aes(512)
            },
        )
        .unwrap();
    assert_eq!(xts.status, Status::Active);

    // Schema refusals write nothing.
    let before = f.rows("orders");
    for (req, field) in [
        (KeyOrder::aes(255), "bit_length"),
        (KeyOrder::aes(0), "bit_length"),
        (
            KeyOrder {
                algorithm: String::new(),
                ..KeyOrder::aes(256)
            },
            "algorithm",
        ),
        (
            KeyOrder {
                payload_content_type: Some("text/html".into()),
                ..KeyOrder::aes(256)
            },
            "payload_content_type",
        ),
        (
            KeyOrder {
                payload_content_type: Some("text/plain".into()),
                ..KeyOrder::aes(256)
            },
            "payload_content_type",
        ),
    ] {
        assert_eq!(
            f.store.create_key(&c, &req).unwrap_err().field(),
            Some(field)
        );
    }
    assert_eq!(f.rows("orders"), before);

    // What the backend cannot make is an order in ERROR, with no secret.
    let secrets = f.rows("secrets");
    let bad = f.store.create_key(&c, &KeyOrder::aes(64)).unwrap();
    assert_eq!(bad.status, Status::Error);
    assert_eq!(bad.error_code, Some(400));
    assert!(bad.error_reason.as_deref().unwrap().contains("AES"));
    assert!(bad.secret_id.is_none());
    assert_eq!(f.rows("secrets"), secrets);
    let unknown = f
        .store
        .create_key(
            &c,
            &KeyOrder {
                algorithm: "rot13".into(),
                ..KeyOrder::aes(128)
            },
        )
        .unwrap();
    assert_eq!(unknown.status, Status::Error);

    let orders = f.store.list_orders(&c, None, None).unwrap();
    assert_eq!(orders.total, 7);
    f.store.delete_order(&c, &bad.id).unwrap();
    assert_eq!(
        f.store.order(&c, &bad.id).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        f.store.order(&admin("p2"), &hmac.id).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

fn key_pair_order_makes_an_rsa_container(setup: &Setup) {
    let f = Fixture::on(setup);
    let c = admin("p1");
    let order = f
        .store
        .create_key_pair(
            &c,
            &KeyPairOrder {
                name: Some("pair".into()),
                algorithm: "rsa".into(),
                bit_length: 2048,
                expiration: None,
                passphrase: Some(SecretBytes::copy_from(b"correct horse")),
            },
        )
        .unwrap();
    if setup.backend.is_kmip() {
        // A KMIP server makes the pair and cannot protect it with a
        // passphrase: refused as Barbican's KMIP plugin does (400).
        // tests/kmip.rs covers the pair without a passphrase.
        assert_eq!((order.status, order.error_code), (Status::Error, Some(400)));
        return;
    }
    assert_eq!(order.status, Status::Active);
    let container = f.store.container(&c, &order.container_id.unwrap()).unwrap();
    let names: Vec<&str> = container
        .secret_refs
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(
        names,
        ["private_key", "private_key_passphrase", "public_key"]
    );
    let get = |name: &str| {
        let id = container
            .secret_refs
            .iter()
            .find(|(n, _)| n == name)
            .unwrap()
            .1;
        (
            f.store.secret(&c, &id).unwrap(),
            f.store.payload(&c, &id).unwrap(),
        )
    };
    let (pm, private) = get("private_key");
    assert_eq!(pm.secret_type, SecretType::Private);
    assert_eq!(pm.bit_length, Some(2048));
    assert!(
        private
            .bytes
            .expose_secret()
            .starts_with(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    );
    let (_, public) = get("public_key");
    assert!(
        public
            .bytes
            .expose_secret()
            .starts_with(b"-----BEGIN PUBLIC KEY-----")
    );
    let (_, pass) = get("private_key_passphrase");
    assert_eq!(pass.bytes.expose_secret(), b"correct horse");
    assert_eq!(f.store.list_containers(&c, None, None).unwrap().total, 1);

    let unsupported = f
        .store
        .create_key_pair(
            &c,
            &KeyPairOrder {
                name: None,
                algorithm: "rsa".into(),
                bit_length: 1000,
                expiration: None,
                passphrase: None,
            },
        )
        .unwrap();
    assert_eq!(unsupported.status, Status::Error);
    let dsa = f
        .store
        .create_key_pair(
            &c,
            &KeyPairOrder {
                name: None,
                algorithm: "dsa".into(),
                bit_length: 2048,
                expiration: None,
                passphrase: None,
            },
        )
        .unwrap();
    assert_eq!(dsa.status, Status::Error);
    assert_eq!(f.rows("containers"), 1);

    f.store.delete_container(&c, &container.id).unwrap();
    assert_eq!(
        f.rows("secrets"),
        3,
        "deleting a container keeps its secrets"
    );
}
