//! Who else depends on or reads a secret: consumers blocking a delete, and
//! ACLs sharing a secret beyond its project (or narrowing it within).

use keywarden::ErrorKind;
use keywarden::model::{Acl, Consumer, UserId};
use keywarden::store::ListQuery;

use crate::common::{Fixture, Setup, admin, ctx};
use crate::{conformance, text_secret};

conformance!(
    consumers_block_delete_unless_forced,
    acl_lets_a_listed_user_of_another_project_read,
);

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
