//! Containers as Barbican's REST API makes them, on every catalog and
//! backend: created by request and validated as Barbican validates, their
//! references changed later, listed with Barbican's filters, their
//! consumers and their ACLs.

mod common;

use common::{Fixture, Setup, admin, ctx};
use keywarden::ErrorKind;
use keywarden::context::Context;
use keywarden::model::{Acl, ContainerConsumer, ContainerType, SecretId};
use keywarden::store::{ContainerQuery, NewContainer, NewSecret};

conformance!(
    containers_are_validated_as_barbican_validates,
    generic_containers_take_and_lose_references,
    containers_list_with_barbican_filters,
    container_consumers_are_idempotent_and_paged,
    container_acls_share_and_restrict,
);

fn secret(f: &Fixture, c: &Context, name: &str) -> SecretId {
    f.store
        .store_secret(
            c,
            NewSecret::new()
                .name(name)
                .payload_text("x", Some("text/plain"), None),
        )
        .unwrap()
}

fn containers_are_validated_as_barbican_validates(setup: &Setup) {
    let f = Fixture::on(setup);
    let c = admin("p1");
    let [a, b, d] = ["a", "b", "d"].map(|n| secret(&f, &c, n));
    let foreign = secret(&f, &admin("p2"), "foreign");
    let refused: Vec<(NewContainer, &str)> = vec![
        (
            NewContainer::new(ContainerType::Generic)
                .secret_ref("x", a)
                .secret_ref("x", b),
            "Duplicate reference names are not allowed",
        ),
        (
            NewContainer::new(ContainerType::Generic)
                .secret_ref("x", a)
                .secret_ref("y", a),
            "Duplicate secret ids are not allowed",
        ),
        (
            NewContainer::new(ContainerType::Rsa).secret_ref("public_key", a),
            "The minimum required reference names are 'public_key' and'private_key' for RSA type",
        ),
        (
            NewContainer::new(ContainerType::Rsa)
                .secret_ref("public_key", a)
                .secret_ref("private_key", b)
                .secret_ref("certificate", d),
            "only 'private_key', 'public_key' and 'private_key_passphrase' reference names are \
             allowed for RSA type",
        ),
        (
            NewContainer::new(ContainerType::Certificate).secret_ref("private_key", a),
            "The minimum required reference name is 'certificate' for Certificate type",
        ),
        (
            NewContainer::new(ContainerType::Generic).name("n".repeat(256)),
            "must be at most 255 characters",
        ),
    ];
    for (new, text) in refused {
        let e = f.store.store_container(&c, new).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert_eq!(e.context(), text);
    }
    // A secret of another project, or none at all, does not exist here.
    for missing in [foreign, SecretId::new_random()] {
        let e = f
            .store
            .store_container(
                &c,
                NewContainer::new(ContainerType::Generic).secret_ref("ref", missing),
            )
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(e.context(), "Secret provided for 'ref' doesn't exist.");
    }
    // Observers cannot create (containers:post is admin or creator).
    let e = f
        .store
        .store_container(
            &ctx("o", "p1", &["observer"]),
            NewContainer::new(ContainerType::Generic),
        )
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    assert_eq!(f.rows("containers"), 0);

    let rsa = f
        .store
        .store_container(
            &c,
            NewContainer::new(ContainerType::Rsa)
                .name("pair")
                .secret_ref("public_key", a)
                .secret_ref("private_key", b)
                .secret_ref("private_key_passphrase", d),
        )
        .unwrap();
    let cert = f
        .store
        .store_container(
            &c,
            NewContainer::new(ContainerType::Certificate)
                .secret_ref("certificate", a)
                .secret_ref("intermediates", b),
        )
        .unwrap();
    let mut generic = NewContainer::new(ContainerType::Generic);
    generic.secret_refs.push((None, d));
    let generic = f.store.store_container(&c, generic).unwrap();
    let got = f.store.container(&c, &rsa).unwrap();
    assert_eq!(got.name.as_deref(), Some("pair"));
    assert_eq!(got.container_type, ContainerType::Rsa);
    assert_eq!(got.creator_id.as_str(), "admin-user");
    assert_eq!(
        got.secret_refs,
        vec![
            ("private_key".to_owned(), b),
            ("private_key_passphrase".to_owned(), d),
            ("public_key".to_owned(), a),
        ]
    );
    assert_eq!(f.store.container(&c, &cert).unwrap().secret_refs.len(), 2);
    assert_eq!(
        f.store.container(&c, &generic).unwrap().secret_refs,
        vec![(String::new(), d)]
    );
    assert_eq!(f.store.list_containers(&c, None, None).unwrap().total, 3);
    assert_eq!(
        f.store.container(&admin("p2"), &rsa).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert!(
        f.store
            .container_href(&rsa)
            .ends_with(&format!("/v1/containers/{rsa}"))
    );
    f.store.delete_container(&c, &rsa).unwrap();
    // Its secrets stay.
    f.store.secret(&c, &a).unwrap();
}

fn container_consumers_are_idempotent_and_paged(setup: &Setup) {
    let f = Fixture::on(setup);
    let c = admin("p1");
    let k = f
        .store
        .store_container(&c, NewContainer::new(ContainerType::Generic))
        .unwrap();
    let lb = |i: u32| ContainerConsumer {
        name: format!("lb{i}"),
        url: format!("http://lb/{i}"),
    };
    for i in 0..3 {
        let got = f.store.add_container_consumer(&c, &k, lb(i)).unwrap();
        assert_eq!(got.id, k);
    }
    let again = f.store.add_container_consumer(&c, &k, lb(0)).unwrap();
    assert_eq!(again.consumers, vec![lb(0), lb(1), lb(2)]);
    assert_eq!(f.store.container(&c, &k).unwrap().consumers.len(), 3);
    let page = f.store.container_consumers(&c, &k, Some(2), None).unwrap();
    assert_eq!(page.total, 3);
    assert_eq!(page.items.len(), 2);
    let rest = f
        .store
        .container_consumers(&c, &k, Some(2), Some(2))
        .unwrap();
    assert_eq!(rest.items.len(), 1);

    for (bad, field) in [
        (
            ContainerConsumer {
                name: "n".repeat(37),
                url: "u".into(),
            },
            "name",
        ),
        (
            ContainerConsumer {
                name: "n".into(),
                url: String::new(),
            },
            "URL",
        ),
    ] {
        let e = f.store.add_container_consumer(&c, &k, bad).unwrap_err();
        assert_eq!(e.field(), Some(field));
    }
    let e = f
        .store
        .remove_container_consumer(&c, &k, lb(9))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    f.store.remove_container_consumer(&c, &k, lb(1)).unwrap();
    assert_eq!(f.rows("container_consumers"), 2);
    // Not visible to other projects; gone with the container.
    let e = f
        .store
        .add_container_consumer(&admin("p2"), &k, lb(5))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    f.store.delete_container(&c, &k).unwrap();
    assert_eq!(f.rows("container_consumers"), 0);
}

fn container_acls_share_and_restrict(setup: &Setup) {
    let f = Fixture::on(setup);
    let owner = ctx("owner", "p1", &["creator"]);
    let k = f
        .store
        .store_container(&owner, NewContainer::new(ContainerType::Generic))
        .unwrap();
    assert_eq!(f.store.container_acl(&owner, &k).unwrap(), Acl::default());
    let friend = ctx("friend", "p2", &["creator"]);
    let e = f.store.container(&friend, &k).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);

    let acl = Acl {
        users: vec![friend.user_id.clone()],
        project_access: false,
    };
    // Only the project admin or the container's creator sets it.
    let colleague = ctx("colleague", "p1", &["creator"]);
    let e = f
        .store
        .set_container_acl(&colleague, &k, acl.clone())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    f.store.set_container_acl(&owner, &k, acl.clone()).unwrap();
    assert_eq!(f.store.container_acl(&owner, &k).unwrap(), acl);

    // The listed user of another project reads the container, not its ACL.
    assert_eq!(f.store.container(&friend, &k).unwrap().id, k);
    let e = f.store.container_acl(&friend, &k).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    // Private now: the colleague no longer reads it; the project admin does.
    let e = f.store.container(&colleague, &k).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    f.store.container(&admin("p1"), &k).unwrap();

    f.store.delete_container_acl(&owner, &k).unwrap();
    assert_eq!(f.store.container_acl(&owner, &k).unwrap(), Acl::default());
    f.store.container(&colleague, &k).unwrap();
    assert_eq!(
        f.store.container(&friend, &k).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    f.store.set_container_acl(&owner, &k, acl).unwrap();
    f.store.delete_container(&owner, &k).unwrap();
    assert_eq!(f.rows("container_acl_users"), 0);
}

fn containers_list_with_barbican_filters(setup: &Setup) {
    let f = Fixture::on(setup);
    let c = admin("p1");
    let [a, b] = ["a", "b"].map(|n| secret(&f, &c, n));
    for (name, t) in [
        ("Web-1", ContainerType::Generic),
        ("web-2", ContainerType::Generic),
        ("db", ContainerType::Generic),
    ] {
        f.store
            .store_container(&c, NewContainer::new(t).name(name))
            .unwrap();
    }
    f.store
        .store_container(
            &c,
            NewContainer::new(ContainerType::Rsa)
                .name("web-rsa")
                .secret_ref("public_key", a)
                .secret_ref("private_key", b),
        )
        .unwrap();
    f.store
        .store_container(
            &admin("p2"),
            NewContainer::new(ContainerType::Generic).name("web-3"),
        )
        .unwrap();
    let names = |q: ContainerQuery| -> (u64, Vec<String>) {
        let page = f.store.list_containers_matching(&c, &q).unwrap();
        // Created in the same second: the order among them is the ids'.
        let mut names: Vec<String> = page.items.into_iter().filter_map(|k| k.name).collect();
        names.sort();
        (page.total, names)
    };
    assert_eq!(names(ContainerQuery::default()).0, 4);
    assert_eq!(
        names(ContainerQuery {
            name: Some("web%".into()),
            ..Default::default()
        }),
        (3, vec!["Web-1".into(), "web-2".into(), "web-rsa".into()])
    );
    let (total, page) = names(ContainerQuery {
        name: Some("web%".into()),
        container_type: Some(ContainerType::Generic),
        limit: Some(1),
        offset: Some(1),
    });
    assert_eq!((total, page.len()), (2, 1));
    assert!(page[0].eq_ignore_ascii_case("web-1") || page[0] == "web-2");
    assert_eq!(
        names(ContainerQuery {
            name: Some("db".into()),
            ..Default::default()
        }),
        (1, vec!["db".into()])
    );
    assert_eq!(
        names(ContainerQuery {
            name: Some(String::new()),
            ..Default::default()
        })
        .0,
        4
    );
}

fn generic_containers_take_and_lose_references(setup: &Setup) {
    let f = Fixture::on(setup);
    let c = admin("p1");
    let [a, b, d] = ["a", "b", "d"].map(|n| secret(&f, &c, n));
    let k = f
        .store
        .store_container(&c, NewContainer::new(ContainerType::Generic))
        .unwrap();
    f.store.add_container_secret(&c, &k, Some("x"), &a).unwrap();
    f.store.add_container_secret(&c, &k, None, &b).unwrap();
    let e = f
        .store
        .add_container_secret(&c, &k, Some("x"), &a)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    let foreign = secret(&f, &admin("p2"), "foreign");
    let e = f
        .store
        .add_container_secret(&c, &k, Some("y"), &foreign)
        .unwrap_err();
    assert_eq!(
        (e.kind(), e.context()),
        (ErrorKind::NotFound, "Secret provided doesn't exist.")
    );
    assert_eq!(
        f.store.container(&c, &k).unwrap().secret_refs,
        vec![(String::new(), b), ("x".to_owned(), a)]
    );
    let e = f
        .store
        .remove_container_secret(&c, &k, Some("x"), &d)
        .unwrap_err();
    assert_eq!(
        (e.kind(), e.context()),
        (
            ErrorKind::NotFound,
            "Secret provided is not in the container"
        )
    );
    f.store
        .remove_container_secret(&c, &k, Some("x"), &a)
        .unwrap();
    assert_eq!(f.store.container(&c, &k).unwrap().secret_refs.len(), 1);
    // Observers may not; rsa containers are not modified.
    let e = f
        .store
        .add_container_secret(&ctx("o", "p1", &["observer"]), &k, Some("z"), &d)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    let rsa = f
        .store
        .store_container(
            &c,
            NewContainer::new(ContainerType::Rsa)
                .secret_ref("public_key", a)
                .secret_ref("private_key", b),
        )
        .unwrap();
    let e = f
        .store
        .add_container_secret(&c, &rsa, Some("private_key_passphrase"), &d)
        .unwrap_err();
    assert_eq!(e.context(), "Only 'generic' containers can be modified.");
}
