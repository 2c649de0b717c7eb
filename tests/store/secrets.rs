//! Storing and reading secrets, the write-once payload, refused inputs and
//! the size limit (nothing written), and deletion.

use keywarden::ErrorKind;
use keywarden::model::{ContentType, SecretType, Status, Timestamp};
use keywarden::secret::SecretBytes;
use keywarden::store::NewSecret;

use crate::common::{Fixture, Setup, admin};
use crate::{conformance, text_secret};

conformance!(
    store_and_read_back_text_and_binary,
    two_step_payload_is_write_once,
    refused_inputs_name_the_field_and_write_nothing,
    put_payload_refusals_change_nothing,
    configurable_size_limit,
    delete_removes_the_ciphertext,
);

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
