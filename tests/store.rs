//! SecretStore on every catalog and backend (the conformance suite): every
//! behaviour of the foundation, and every refused input leaving the catalog
//! unchanged.

mod common;

use common::{Fixture, Kind, Setup, admin, ctx};
use keywarden::ErrorKind;
use keywarden::catalog::Write;
use keywarden::model::{
    Acl, Consumer, ContentType, ManagedObject, Order, OrderId, SecretId, SecretMeta, SecretType,
    Status, Timestamp, UserId,
};
use keywarden::secret::SecretBytes;
use keywarden::store::{KeyOrder, KeyPairOrder, ListQuery, NewSecret};

conformance!(
    store_and_read_back_text_and_binary,
    two_step_payload_is_write_once,
    refused_inputs_name_the_field_and_write_nothing,
    put_payload_refusals_change_nothing,
    configurable_size_limit,
    delete_removes_the_ciphertext,
    consumers_block_delete_unless_forced,
    expired_secrets_can_be_deleted_and_purged,
    expired_secret_reads_as_not_found,
    list_filters_sort_and_paging,
    key_orders,
    key_pair_order_makes_an_rsa_container,
    castellan_objects_round_trip,
    acl_lets_a_listed_user_of_another_project_read,
);

catalog_tests!(
    a_whole_catalog_copies_to_either_kind_and_reads_back,
    a_failed_replace_leaves_the_old_content,
    apply_each_keeps_the_good_batches_when_one_fails,
);

fn text_secret(name: &str, payload: &str) -> NewSecret {
    NewSecret::new()
        .name(name)
        .payload_text(payload, Some("text/plain"), None)
}

fn store_and_read_back_text_and_binary(setup: &Setup) {
    let f = Fixture::on(setup);
    let c = admin("p1");
    let id = f
        .store
        .store_secret(&c, text_secret("testSecret", "my-secret-payload"))
        .unwrap();
    let p = f.store.payload(&c, &id).unwrap();
    assert_eq!(p.content_type, ContentType::TextPlain);
    assert_eq!(p.bytes.expose_secret(), b"my-secret-payload");

    let meta = f.store.secret(&c, &id).unwrap();
    assert_eq!(meta.name.as_deref(), Some("testSecret"));
    assert_eq!(
        meta.secret_type,
        SecretType::Opaque,
        "default type is opaque"
    );
    assert_eq!(meta.status, Status::Active);
    assert_eq!(meta.creator_id.as_str(), "admin-user");
    assert_eq!(meta.project_id.as_str(), "p1");
    assert_eq!(meta.content_type, Some(ContentType::TextPlain));
    assert_eq!(meta.backend_id.as_str(), f.backend_id());

    let bin = NewSecret::new()
        .secret_type(SecretType::Symmetric)
        .algorithm("aes")
        .bit_length(128)
        .mode("cbc")
        .payload_text(
            "AAECAwQFBgcICQoLDA0ODw==",
            Some("application/octet-stream"),
            Some("base64"),
        );
    let id2 = f.store.store_secret(&c, bin).unwrap();
    let p2 = f.store.payload(&c, &id2).unwrap();
    assert_eq!(p2.content_type, ContentType::OctetStream);
    assert_eq!(
        p2.bytes.expose_secret(),
        (0u8..16).collect::<Vec<_>>().as_slice()
    );
    let m2 = f.store.secret(&c, &id2).unwrap();
    assert_eq!(
        (m2.algorithm.as_deref(), m2.bit_length, m2.mode.as_deref()),
        (Some("aes"), Some(128), Some("cbc"))
    );

    // Survives reopening (durable) and the ciphertext in the file is not the payload.
    let reopened = f.reopen();
    assert_eq!(
        reopened.payload(&c, &id).unwrap().bytes.expose_secret(),
        b"my-secret-payload"
    );
    assert!(!f.holds_bytes(b"my-secret-payload"));
}

fn two_step_payload_is_write_once(setup: &Setup) {
    let f = Fixture::on(setup);
    let c = admin("p1");
    let id = f
        .store
        .store_secret(&c, NewSecret::new().name("later"))
        .unwrap();
    assert!(f.store.secret(&c, &id).unwrap().content_type.is_none());
    let e = f.store.payload(&c, &id).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains("has no payload"));

    f.store
        .put_payload(
            &c,
            &id,
            SecretBytes::copy_from(b"first"),
            "text/plain",
            None,
        )
        .unwrap();
    let e = f
        .store
        .put_payload(
            &c,
            &id,
            SecretBytes::copy_from(b"second"),
            "text/plain",
            None,
        )
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert_eq!(
        f.store.payload(&c, &id).unwrap().bytes.expose_secret(),
        b"first"
    );
}

fn refused_inputs_name_the_field_and_write_nothing(setup: &Setup) {
    let f = Fixture::on(setup);
    let c = admin("p1");
    let past = Timestamp::from_unix(Timestamp::now().unix() - 60);
    let cases: Vec<(NewSecret, ErrorKind, &str)> = vec![
        (
            NewSecret::new().payload_text("x", Some("text/plain"), Some("base64")),
            ErrorKind::InvalidInput,
            "payload_content_encoding",
        ),
        (
            NewSecret::new().payload_text("AAAA", Some("application/octet-stream"), None),
            ErrorKind::InvalidInput,
            "payload_content_encoding",
        ),
        (
            NewSecret::new().payload_text(
                "!!not base64!!",
                Some("application/octet-stream"),
                Some("base64"),
            ),
            ErrorKind::InvalidInput,
            "payload",
        ),
        (
            NewSecret::new().payload_text("x", Some("image/png"), None),
            ErrorKind::InvalidInput,
            "payload_content_type",
        ),
        (
            NewSecret::new().payload_text("x", None, None),
            ErrorKind::InvalidInput,
            "payload_content_type",
        ),
        (
            NewSecret::new().payload_text("   ", Some("text/plain"), None),
            ErrorKind::InvalidInput,
            "payload",
        ),
        (
            NewSecret::new().payload_content_type_only("text/plain"),
            ErrorKind::InvalidInput,
            "payload",
        ),
        (
            text_secret("big", &"x".repeat(20_001)),
            ErrorKind::TooLarge,
            "payload",
        ),
        (
            text_secret("old", "x").expiration(past),
            ErrorKind::InvalidInput,
            "expiration",
        ),
        (
            text_secret("b0", "x").bit_length(0),
            ErrorKind::InvalidInput,
            "bit_length",
        ),
        (
            text_secret("b1", "x").bit_length(40_000),
            ErrorKind::InvalidInput,
            "bit_length",
        ),
        (
            text_secret(&"n".repeat(256), "x"),
            ErrorKind::InvalidInput,
            "name",
        ),
        (
            text_secret("a", "x").algorithm("a".repeat(256)),
            ErrorKind::InvalidInput,
            "algorithm",
        ),
    ];
    for (new, kind, field) in cases {
        let shown = format!("{new:?}");
        let e = f.store.store_secret(&c, new).unwrap_err();
        assert_eq!(e.kind(), kind, "{shown}: {e}");
        assert_eq!(e.field(), Some(field), "{shown}: {e}");
    }
    // Exactly at the limit is fine.
    f.store
        .store_secret(&c, text_secret("edge", &"x".repeat(20_000)))
        .unwrap();
    assert_eq!(f.rows("secrets"), 1, "refusals wrote nothing");
    let keks = if setup.backend.keeps_project_keks() {
        1
    } else {
        0
    };
    assert_eq!(f.rows("project_keks"), keks);
}

fn put_payload_refusals_change_nothing(setup: &Setup) {
    let f = Fixture::on(setup);
    let c = admin("p1");
    let id = f.store.store_secret(&c, NewSecret::new()).unwrap();
    let cases = [
        (b"".to_vec(), "text/plain", None, ErrorKind::InvalidInput),
        (
            b"x".to_vec(),
            "application/json",
            None,
            ErrorKind::InvalidInput,
        ),
        (
            b"%%%".to_vec(),
            "application/octet-stream",
            Some("base64"),
            ErrorKind::InvalidInput,
        ),
        (
            vec![b'x'; 20_001],
            "application/octet-stream",
            None,
            ErrorKind::TooLarge,
        ),
    ];
    for (body, ct, enc, kind) in cases {
        let e = f
            .store
            .put_payload(&c, &id, SecretBytes::new(body), ct, enc)
            .unwrap_err();
        assert_eq!(e.kind(), kind, "{ct}: {e}");
    }
    assert!(f.store.secret(&c, &id).unwrap().content_type.is_none());
    f.store
        .put_payload(
            &c,
            &id,
            SecretBytes::copy_from(b"AQID"),
            "application/octet-stream",
            Some("base64"),
        )
        .unwrap();
    assert_eq!(
        f.store.payload(&c, &id).unwrap().bytes.expose_secret(),
        &[1, 2, 3]
    );
}

fn configurable_size_limit(setup: &Setup) {
    let f = Fixture::on(setup);
    let mut config = f.config.clone();
    config.max_payload_bytes = 8;
    let store = keywarden::store::SecretStore::open(&config).unwrap();
    let c = admin("p");
    store
        .store_secret(&c, text_secret("ok", "12345678"))
        .unwrap();
    let e = store
        .store_secret(&c, text_secret("no", "123456789"))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TooLarge);
}

fn delete_removes_the_ciphertext(setup: &Setup) {
    let f = Fixture::on(setup);
    let c = admin("p1");
    let id = f
        .store
        .store_secret(&c, text_secret("gone", "payload"))
        .unwrap();
    f.store.delete_secret(&c, &id, false).unwrap();
    assert_eq!(
        f.store.secret(&c, &id).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        f.store.payload(&c, &id).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        f.rows("secrets"),
        0,
        "row (and its ciphertext) is gone, not soft-deleted"
    );
    assert_eq!(
        f.store.delete_secret(&c, &id, false).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

fn consumers_block_delete_unless_forced(setup: &Setup) {
    let f = Fixture::on(setup);
    let c = admin("p1");
    let id = f
        .store
        .store_secret(&c, text_secret("vol-key", "k"))
        .unwrap();
    let consumer = Consumer {
        service: "cinder".into(),
        resource_type: "volume".into(),
        resource_id: "0b5b2d5e-1111-4c3a-9f00-000000000001".into(),
    };
    f.store.add_consumer(&c, &id, consumer.clone()).unwrap();
    f.store.add_consumer(&c, &id, consumer.clone()).unwrap(); // idempotent
    assert_eq!(f.store.consumers(&c, &id).unwrap(), vec![consumer.clone()]);
    let e = f.store.delete_secret(&c, &id, false).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert!(f.store.secret(&c, &id).is_ok());

    f.store.remove_consumer(&c, &id, consumer.clone()).unwrap();
    assert_eq!(
        f.store
            .remove_consumer(&c, &id, consumer.clone())
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    f.store.add_consumer(&c, &id, consumer.clone()).unwrap();
    f.store.delete_secret(&c, &id, true).unwrap();
    assert_eq!(f.rows("secret_consumers"), 0);

    let bad = Consumer {
        service: String::new(),
        ..consumer
    };
    let id2 = f.store.store_secret(&c, text_secret("x", "k")).unwrap();
    assert_eq!(
        f.store.add_consumer(&c, &id2, bad).unwrap_err().field(),
        Some("service")
    );
}

fn expired_secrets_can_be_deleted_and_purged(setup: &Setup) {
    let f = Fixture::on(setup);
    let c = admin("p1");
    let base = f.store.store_secret(&c, text_secret("base", "x")).unwrap();
    let mut meta: SecretMeta = f.store.secret(&c, &base).unwrap();
    let mut expired = Vec::new();
    for _ in 0..3 {
        meta.id = SecretId::new_random();
        meta.content_type = None;
        meta.expiration = Some(Timestamp::from_unix(Timestamp::now().unix() - 1));
        f.store
            .operator()
            .danger_catalog()
            .apply(vec![Write::InsertSecret {
                meta: meta.clone(),
                stored: None,
            }])
            .unwrap();
        expired.push(meta.id);
    }
    // The owner can still delete an expired secret (nobody can read it).
    f.store.delete_secret(&c, &expired[0], false).unwrap();
    assert_eq!(f.rows("secrets"), 3);
    assert_eq!(f.store.operator().purge_expired().unwrap(), 2);
    assert_eq!(f.rows("secrets"), 1);
    assert!(f.store.payload(&c, &base).is_ok());
}

fn expired_secret_reads_as_not_found(setup: &Setup) {
    let f = Fixture::on(setup);
    let c = admin("p1");
    let live = f.store.store_secret(&c, text_secret("live", "x")).unwrap();
    let mut meta: SecretMeta = f.store.secret(&c, &live).unwrap();
    meta.id = SecretId::new_random();
    meta.name = Some("expired".into());
    meta.content_type = None;
    meta.expiration = Some(Timestamp::from_unix(Timestamp::now().unix() - 1));
    f.store
        .operator()
        .danger_catalog()
        .apply(vec![Write::InsertSecret {
            meta: meta.clone(),
            stored: None,
        }])
        .unwrap();
    assert_eq!(
        f.store.secret(&c, &meta.id).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let page = f.store.list_secrets(&c, &ListQuery::default()).unwrap();
    assert_eq!(page.total, 1);
    assert_eq!(page.items[0].id, live);
}

fn list_filters_sort_and_paging(setup: &Setup) {
    let f = Fixture::on(setup);
    let c = admin("p1");
    for i in 0..25 {
        let new = NewSecret::new()
            .name(format!("s{i:02}"))
            .secret_type(if i % 2 == 0 {
                SecretType::Symmetric
            } else {
                SecretType::Passphrase
            })
            .algorithm(if i % 3 == 0 { "aes" } else { "des" })
            .bit_length(if i % 5 == 0 { 256 } else { 128 })
            .mode(if i % 2 == 0 { "cbc" } else { "ctr" });
        f.store.store_secret(&c, new).unwrap();
    }
    f.store
        .store_secret(&admin("p2"), text_secret("other", "x"))
        .unwrap();

    let all = f.store.list_secrets(&c, &ListQuery::default()).unwrap();
    assert_eq!((all.items.len(), all.total, all.limit), (10, 25, 10));

    let q = |f: fn(&mut ListQuery)| {
        let mut q = ListQuery::default();
        f(&mut q);
        q
    };
    let by_name = f
        .store
        .list_secrets(&c, &q(|q| q.name = Some("s07".into())))
        .unwrap();
    assert_eq!(by_name.total, 1);
    assert_eq!(by_name.items[0].name.as_deref(), Some("s07"));
    let like = f
        .store
        .list_secrets(&c, &q(|q| q.name = Some("s1%".into())))
        .unwrap();
    assert_eq!(like.total, 10);
    assert_eq!(
        f.store
            .list_secrets(&c, &q(|q| q.algorithm = Some("aes".into())))
            .unwrap()
            .total,
        9
    );
    assert_eq!(
        f.store
            .list_secrets(&c, &q(|q| q.bit_length = Some(256)))
            .unwrap()
            .total,
        5
    );
    assert_eq!(
        f.store
            .list_secrets(&c, &q(|q| q.mode = Some("ctr".into())))
            .unwrap()
            .total,
        12
    );
    assert_eq!(
        f.store
            .list_secrets(&c, &q(|q| q.secret_type = Some(SecretType::Passphrase)))
            .unwrap()
            .total,
        12
    );

    let page = f
        .store
        .list_secrets(
            &c,
            &q(|q| {
                q.sort = Some("name:desc".into());
                q.limit = Some(5);
                q.offset = Some(5);
            }),
        )
        .unwrap();
    let names: Vec<_> = page.items.iter().map(|m| m.name.clone().unwrap()).collect();
    assert_eq!(names, ["s19", "s18", "s17", "s16", "s15"]);
    assert_eq!(page.total, 25);

    let big = f
        .store
        .list_secrets(&c, &q(|q| q.limit = Some(1000)))
        .unwrap();
    assert_eq!((big.limit, big.items.len()), (100, 25));

    let now = Timestamp::now();
    let future = Timestamp::from_unix(now.unix() + 3600).to_iso8601();
    let past = Timestamp::from_unix(now.unix() - 3600).to_iso8601();
    let created = ListQuery {
        created: Some(format!("gt:{past},lt:{future}")),
        ..ListQuery::default()
    };
    assert_eq!(f.store.list_secrets(&c, &created).unwrap().total, 25);
    let none = ListQuery {
        created: Some(format!("gte:{future}")),
        ..ListQuery::default()
    };
    assert_eq!(f.store.list_secrets(&c, &none).unwrap().total, 0);
    let bad = ListQuery {
        created: Some("gt:x".into()),
        ..ListQuery::default()
    };
    assert_eq!(
        f.store.list_secrets(&c, &bad).unwrap_err().field(),
        Some("created")
    );
    let bad_sort = ListQuery {
        sort: Some("name,name".into()),
        ..ListQuery::default()
    };
    assert_eq!(
        f.store.list_secrets(&c, &bad_sort).unwrap_err().field(),
        Some("sort")
    );
}

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

fn castellan_objects_round_trip(setup: &Setup) {
    let f = Fixture::on(setup);
    let c = admin("p1");
    let objects = [
        ManagedObject::SymmetricKey {
            algorithm: Some("AES".into()),
            bit_length: Some(256),
            key: SecretBytes::copy_from(&[7; 32]),
        },
        ManagedObject::Passphrase {
            passphrase: SecretBytes::copy_from(b"hunter2"),
        },
        ManagedObject::SymmetricKey {
            algorithm: None,
            bit_length: None,
            key: SecretBytes::copy_from(&[8; 16]),
        },
        ManagedObject::OpaqueData {
            data: SecretBytes::copy_from(&[0, 255, 1]),
        },
        ManagedObject::X509Certificate {
            data: SecretBytes::copy_from(b"\x30\x82cert"),
        },
        ManagedObject::PublicKey {
            algorithm: Some("RSA".into()),
            bit_length: Some(2048),
            key: SecretBytes::copy_from(b"\x30spki"),
        },
        ManagedObject::PrivateKey {
            algorithm: Some("RSA".into()),
            bit_length: Some(2048),
            key: SecretBytes::copy_from(b"\x30pkcs8"),
        },
    ];
    for obj in objects {
        if setup.backend.is_kmip()
            && obj.secret_type() == SecretType::Symmetric
            && obj.algorithm().is_none()
        {
            // KMIP holds a symmetric key only with its algorithm.
            let e = f
                .store
                .store_object(&c, &obj, Some("obj"), None)
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
            continue;
        }
        let id = f.store.store_object(&c, &obj, Some("obj"), None).unwrap();
        let back = f.store.get_object(&c, &id).unwrap();
        assert_eq!(back.secret_type(), obj.secret_type());
        assert_eq!(back.expose_secret(), obj.expose_secret());
        assert_eq!(back.algorithm(), obj.algorithm());
        assert_eq!(back.bit_length(), obj.bit_length());
    }
}

fn acl_lets_a_listed_user_of_another_project_read(setup: &Setup) {
    let f = Fixture::on(setup);
    let owner = ctx("alice", "p1", &["creator"]);
    let id = f
        .store
        .store_secret(&owner, text_secret("shared", "s3cr3t"))
        .unwrap();
    let bob = ctx("bob", "p2", &["observer"]);
    assert_eq!(
        f.store.payload(&bob, &id).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    f.store
        .set_acl(
            &owner,
            &id,
            Acl {
                users: vec![UserId::new("bob").unwrap()],
                project_access: true,
            },
        )
        .unwrap();
    assert_eq!(
        f.store.payload(&bob, &id).unwrap().bytes.expose_secret(),
        b"s3cr3t"
    );
    assert_eq!(f.store.acl(&owner, &id).unwrap().users.len(), 1);
    let acl_only = ListQuery {
        acl_only: true,
        ..ListQuery::default()
    };
    assert_eq!(f.store.list_secrets(&bob, &acl_only).unwrap().total, 1);

    // project-access=false makes the secret private to creator, admin and listed users.
    f.store
        .set_acl(
            &owner,
            &id,
            Acl {
                users: vec![UserId::new("bob").unwrap()],
                project_access: false,
            },
        )
        .unwrap();
    let colleague = ctx("carol", "p1", &["observer"]);
    assert_eq!(
        f.store.payload(&colleague, &id).unwrap_err().kind(),
        ErrorKind::PermissionDenied
    );
    assert!(f.store.payload(&bob, &id).is_ok());
    assert!(f.store.payload(&owner, &id).is_ok());
    assert!(f.store.payload(&admin("p1"), &id).is_ok());
    f.store.delete_acl(&owner, &id).unwrap();
    assert!(f.store.payload(&colleague, &id).is_ok());
    assert_eq!(
        f.store.payload(&bob, &id).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

/// One of everything the catalog keeps, in `f`'s store.
fn populate(f: &Fixture) -> Vec<(SecretId, String)> {
    let c = admin("p1");
    let mut written = Vec::new();
    for i in 0..5 {
        let payload = format!("payload-{i}");
        let id = f
            .store
            .store_secret(
                &admin(&format!("p{}", i % 2 + 1)),
                text_secret("s", &payload),
            )
            .unwrap();
        written.push((id, payload));
    }
    f.store
        .store_secret(&c, NewSecret::new().name("empty"))
        .unwrap();
    f.store.create_key(&c, &KeyOrder::aes(128)).unwrap();
    f.store
        .create_key_pair(
            &c,
            &KeyPairOrder {
                name: None,
                algorithm: "rsa".into(),
                bit_length: 2048,
                expiration: None,
                passphrase: None,
            },
        )
        .unwrap();
    let (first, _) = written[0];
    f.store
        .add_consumer(
            &c,
            &first,
            Consumer {
                service: "nova".into(),
                resource_type: "instance".into(),
                resource_id: "i-1".into(),
            },
        )
        .unwrap();
    f.store
        .set_acl(
            &c,
            &first,
            Acl {
                users: vec![UserId::new("bob").unwrap()],
                project_access: false,
            },
        )
        .unwrap();
    f.store
        .set_project_backend(&admin("p2"), &f.config.default_backend)
        .unwrap();
    written
}

fn a_whole_catalog_copies_to_either_kind_and_reads_back(kind: &Kind) {
    let f = Fixture::with(kind);
    let written = populate(&f);
    let before = f.store.operator().counts().unwrap();
    let mut targets = vec![Kind::Sqlite];
    if cfg!(feature = "postgres") {
        targets.extend(Kind::postgres());
    }
    for target in targets {
        let mut config = f.config.clone();
        config.catalog = target.fresh_catalog(f.dir.path());
        let dest = keywarden::catalog::open(&config.catalog_location()).unwrap();
        let report = keywarden::catalog::copy_verified(&*f.catalog(), &*dest).unwrap();
        assert_eq!(report.counts, before, "{target:?}");
        // 2 project KEKs + 1 mapping + 9 secrets + 1 ACL user + 1 consumer
        // + 2 orders + 1 container
        assert_eq!(report.rows, 17, "{target:?}");
        let copy = keywarden::store::SecretStore::open(&config).unwrap();
        for (i, (id, payload)) in written.iter().enumerate() {
            let c = admin(&format!("p{}", i % 2 + 1));
            let got = copy.payload(&c, id).unwrap();
            assert_eq!(got.bytes.expose_secret(), payload.as_bytes());
        }
        let (first, _) = written[0];
        assert!(!copy.acl(&admin("p1"), &first).unwrap().project_access);
        assert_eq!(copy.consumers(&admin("p1"), &first).unwrap().len(), 1);
        assert!(copy.project_backend(&admin("p2")).unwrap().1);
        let checked = copy.operator().verify_secrets().unwrap();
        assert!(checked.failed.is_empty());
    }
}

fn a_failed_replace_leaves_the_old_content(kind: &Kind) {
    let f = Fixture::with(kind);
    populate(&f);
    let before = f.store.operator().counts().unwrap();
    let source = Fixture::with(kind);
    source
        .store
        .store_secret(&admin("other"), text_secret("new", "new"))
        .unwrap();
    // The rows stop coming halfway: nothing of the replacement stays.
    let mut sent = 0;
    let e = f
        .catalog()
        .replace_with(&mut |sink| {
            source.catalog().export(&mut |row| {
                sent += 1;
                if sent == 2 {
                    return Err(keywarden::Error::new(ErrorKind::Unavailable, "source gone"));
                }
                sink(row)
            })
        })
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert_eq!(f.store.operator().counts().unwrap(), before);
    assert_eq!(f.store.operator().verify_secrets().unwrap().failed.len(), 0);
}

/// The bulk path (the fixed-key migration's): one failing batch among many
/// leaves the others applied (after the single job for them all fails) and
/// changes nothing itself; when all are good, all are applied.
fn apply_each_keeps_the_good_batches_when_one_fails(kind: &Kind) {
    let f = Fixture::with(kind);
    let catalog = f.catalog();
    // One order in the catalog, and fresh rows like it.
    let taken = f
        .store
        .create_key(&admin("p"), &KeyOrder::aes(256))
        .unwrap();
    let fresh = || {
        Write::InsertOrder(Order {
            id: OrderId::new_random(),
            ..taken.clone()
        })
    };
    let orders = || catalog.counts().unwrap().orders;

    let outcomes = catalog.apply_each(vec![
        vec![fresh()],
        vec![fresh(), Write::InsertOrder(taken.clone())],
        vec![fresh(), fresh()],
    ]);
    assert!(outcomes[0].is_ok() && outcomes[2].is_ok(), "{outcomes:?}");
    assert_eq!(
        outcomes[1].as_ref().unwrap_err().kind(),
        ErrorKind::Conflict,
        "{outcomes:?}"
    );
    assert_eq!(orders(), 1 + 1 + 2, "the failing batch left nothing behind");

    let all_good = catalog.apply_each((0..3).map(|_| vec![fresh()]).collect());
    assert!(all_good.iter().all(Result::is_ok), "{all_good:?}");
    assert_eq!(orders(), 4 + 3);
}
