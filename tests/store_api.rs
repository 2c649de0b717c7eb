//! What Barbican's REST API needs from the store beyond the foundation, on
//! every catalog and backend: secrets' user metadata and per-project quotas
//! (also under concurrent writers); and that a catalog copy (backup,
//! restore) keeps them with container consumers and ACLs. Containers
//! themselves: tests/store_containers.rs.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::{Fixture, Kind, Setup, admin, ctx};
use keywarden::ErrorKind;
use keywarden::context::Context;
use keywarden::model::{
    Acl, Consumer, ContainerConsumer, ContainerType, ProjectId, ProjectQuotas, Quotas, SecretId,
};
use keywarden::store::{KeyOrder, NewContainer, NewSecret};

conformance!(
    metadata_as_barbican_keeps_it,
    metadata_refusals_change_nothing,
    metadata_policy_follows_the_secret,
    quotas_are_unlimited_until_set_and_then_enforced,
    quotas_hold_under_concurrent_writers,
    secret_stores_are_listed_for_admins,
    secret_consumers_are_paged,
);

catalog_tests!(a_copy_keeps_metadata_quotas_and_container_consumers,);

fn service_admin() -> Context {
    ctx("svc", "cloud-admin", &["key-manager:service-admin"])
}

fn project(p: &str) -> ProjectId {
    ProjectId::new(p).unwrap()
}

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

fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv(pairs).into_iter().collect()
}

fn metadata_as_barbican_keeps_it(setup: &Setup) {
    let f = Fixture::on(setup);
    let c = admin("p1");
    let id = secret(&f, &c, "m");
    assert!(f.store.secret_metadata(&c, &id).unwrap().is_empty());

    // PUT: replaces all, keys lower-cased.
    let stored = f
        .store
        .replace_secret_metadata(&c, &id, kv(&[("Geo", "eu"), ("tier", "gold")]))
        .unwrap();
    assert_eq!(stored, map(&[("geo", "eu"), ("tier", "gold")]));
    f.store
        .replace_secret_metadata(&c, &id, kv(&[("only", "1")]))
        .unwrap();
    assert_eq!(
        f.store.secret_metadata(&c, &id).unwrap(),
        map(&[("only", "1")])
    );

    // POST one key; again is a conflict with Barbican's text.
    assert_eq!(
        f.store.add_secret_metadatum(&c, &id, "Added", "a").unwrap(),
        ("added".to_owned(), "a".to_owned())
    );
    let e = f
        .store
        .add_secret_metadatum(&c, &id, "added", "b")
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert_eq!(
        e.context(),
        "Conflict. Key in request is already in the secret metadata"
    );
    assert_eq!(f.store.secret_metadatum(&c, &id, "added").unwrap(), "a");

    // PUT one key: absent is not found; body key differing from the URL's
    // is a conflict; else the value changes.
    let e = f
        .store
        .update_secret_metadatum(&c, &id, "nope", "nope", "v")
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(e.context(), "Secret metadata not found.");
    let e = f
        .store
        .update_secret_metadatum(&c, &id, "added", "only", "v")
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    f.store
        .update_secret_metadatum(&c, &id, "added", "ADDED", "changed")
        .unwrap();
    assert_eq!(
        f.store.secret_metadatum(&c, &id, "added").unwrap(),
        "changed"
    );

    // DELETE one key; an absent one is no error (Barbican answers 204).
    f.store.delete_secret_metadatum(&c, &id, "added").unwrap();
    f.store.delete_secret_metadatum(&c, &id, "added").unwrap();
    let e = f.store.secret_metadatum(&c, &id, "added").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);

    // Survives reopening; leaves with the secret.
    assert_eq!(
        f.reopen().secret_metadata(&c, &id).unwrap(),
        map(&[("only", "1")])
    );
    assert_eq!(f.rows("secret_metadata"), 1);
    f.store.delete_secret(&c, &id, false).unwrap();
    assert_eq!(f.rows("secret_metadata"), 0);
}

fn metadata_refusals_change_nothing(setup: &Setup) {
    let f = Fixture::on(setup);
    let c = admin("p1");
    let id = secret(&f, &c, "m");
    f.store
        .replace_secret_metadata(&c, &id, kv(&[("keep", "1")]))
        .unwrap();
    let long = "v".repeat(256);
    let bad: Vec<(&str, Vec<(String, String)>)> = vec![
        ("key", kv(&[("ok", "1"), ("not url safe", "1")])),
        ("key", kv(&[("a/b", "1")])),
        ("value", vec![("ok".into(), long.clone())]),
        ("key", vec![("k".repeat(256), "1".into())]),
    ];
    for (field, metadata) in bad {
        let e = f
            .store
            .replace_secret_metadata(&c, &id, metadata)
            .unwrap_err();
        assert_eq!(
            (e.kind(), e.field()),
            (ErrorKind::InvalidInput, Some(field))
        );
    }
    let e = f
        .store
        .add_secret_metadatum(&c, &id, "a.b", "1")
        .unwrap_err();
    assert_eq!(e.context(), "Invalid Key. Key must be URL safe.");
    let e = f
        .store
        .add_secret_metadatum(&c, &id, "k", &long)
        .unwrap_err();
    assert_eq!(e.field(), Some("value"));
    let e = f
        .store
        .update_secret_metadatum(&c, &id, "keep", "keep", &long)
        .unwrap_err();
    assert_eq!(e.field(), Some("value"));
    assert_eq!(
        f.store.secret_metadata(&c, &id).unwrap(),
        map(&[("keep", "1")])
    );
    // A secret that is not there.
    let gone = SecretId::new_random();
    let e = f
        .store
        .replace_secret_metadata(&c, &gone, kv(&[("a", "1")]))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(f.rows("secret_metadata"), 1);
}

fn metadata_policy_follows_the_secret(setup: &Setup) {
    let f = Fixture::on(setup);
    let owner = ctx("owner", "p1", &["creator"]);
    let id = secret(&f, &owner, "m");
    f.store
        .replace_secret_metadata(&owner, &id, kv(&[("a", "1")]))
        .unwrap();
    // Another project: not found, whatever the role.
    let e = f.store.secret_metadata(&admin("p2"), &id).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    // Observer reads, cannot write; audit reads too (as secret:get).
    let observer = ctx("o", "p1", &["observer"]);
    assert_eq!(f.store.secret_metadata(&observer, &id).unwrap().len(), 1);
    let e = f
        .store
        .add_secret_metadatum(&observer, &id, "b", "2")
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    let audit = ctx("au", "p1", &["audit"]);
    assert_eq!(f.store.secret_metadata(&audit, &id).unwrap().len(), 1);
    let e = f
        .store
        .replace_secret_metadata(&audit, &id, kv(&[]))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    // Another creator of the project writes while the secret is not private.
    let other_creator = ctx("c2", "p1", &["creator"]);
    f.store
        .add_secret_metadatum(&other_creator, &id, "b", "2")
        .unwrap();
    f.store
        .set_acl(
            &owner,
            &id,
            keywarden::model::Acl {
                users: vec![],
                project_access: false,
            },
        )
        .unwrap();
    let e = f
        .store
        .delete_secret_metadatum(&other_creator, &id, "b")
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    f.store.delete_secret_metadatum(&owner, &id, "b").unwrap();
}

fn quotas_are_unlimited_until_set_and_then_enforced(setup: &Setup) {
    let f = Fixture::on(setup);
    let c = admin("p1");
    let sa = service_admin();
    assert_eq!(f.store.quotas(&c).unwrap(), Quotas::default());
    assert_eq!(f.store.quotas(&c).unwrap().secrets, -1);
    let e = f.store.project_quotas(&sa, &project("p1")).unwrap_err();
    assert_eq!(
        (e.kind(), e.context()),
        (ErrorKind::NotFound, "Project quotas not found.")
    );
    // Only the service admin sets them (Barbican's project_quotas:put).
    let two = ProjectQuotas {
        secrets: Some(2),
        ..Default::default()
    };
    let e = f
        .store
        .set_project_quotas(&c, &project("p1"), two)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    f.store
        .set_project_quotas(&sa, &project("p1"), two)
        .unwrap();

    secret(&f, &c, "1");
    secret(&f, &c, "2");
    let before = f.rows("secrets");
    let e = f
        .store
        .store_secret(&c, NewSecret::new().name("3"))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::QuotaExceeded);
    assert_eq!(
        e.context(),
        "Quota reached for project p1. Only 2 secrets are allowed."
    );
    assert_eq!(f.rows("secrets"), before);
    // Other projects keep the default; the project's own effective quotas.
    secret(&f, &admin("p2"), "elsewhere");
    assert_eq!(f.store.quotas(&c).unwrap().secrets, 2);
    assert_eq!(f.store.quotas(&c).unwrap().orders, -1);

    // A later PUT keeps what it does not name; 0 disables.
    let no_orders = ProjectQuotas {
        orders: Some(0),
        containers: Some(1),
        consumers: Some(1),
        ..Default::default()
    };
    f.store
        .set_project_quotas(&sa, &project("p1"), no_orders)
        .unwrap();
    let got = f.store.project_quotas(&sa, &project("p1")).unwrap();
    assert_eq!(
        (got.secrets, got.orders, got.containers, got.cas),
        (Some(2), Some(0), Some(1), None)
    );
    let orders = f.rows("orders");
    let e = f.store.create_key(&c, &KeyOrder::aes(256)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::QuotaExceeded);
    assert_eq!(f.rows("orders"), orders);

    // Containers and consumers (secret and container consumers together).
    let s = f.store.list_secrets(&c, &Default::default()).unwrap().items[0].id;
    let k = f
        .store
        .store_container(
            &c,
            NewContainer::new(ContainerType::Generic).secret_ref("a", s),
        )
        .unwrap();
    let e = f
        .store
        .store_container(&c, NewContainer::new(ContainerType::Generic))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::QuotaExceeded);
    let consumer = Consumer {
        service: "nova".into(),
        resource_type: "instance".into(),
        resource_id: "i-1".into(),
    };
    f.store.add_consumer(&c, &s, consumer.clone()).unwrap();
    let e = f
        .store
        .add_container_consumer(
            &c,
            &k,
            ContainerConsumer {
                name: "lb".into(),
                url: "http://lb/1".into(),
            },
        )
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::QuotaExceeded);
    assert_eq!(f.rows("container_consumers"), 0);

    // Listing (service admin only) and deleting.
    f.store
        .set_project_quotas(
            &sa,
            &project("p2"),
            ProjectQuotas {
                cas: Some(3),
                ..Default::default()
            },
        )
        .unwrap();
    let page = f.store.list_project_quotas(&sa, None, None).unwrap();
    assert_eq!(page.total, 2);
    assert_eq!(page.items[0].0, project("p1"), "oldest first");
    let e = f.store.list_project_quotas(&c, None, None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    f.store.delete_project_quotas(&sa, &project("p1")).unwrap();
    let e = f
        .store
        .delete_project_quotas(&sa, &project("p1"))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    f.store.create_key(&c, &KeyOrder::aes(256)).unwrap();
    assert_eq!(f.store.quotas(&c).unwrap(), Quotas::default());
}

/// Eight writers on two store instances (two connection pools, as two
/// processes would hold) race for ten slots: exactly ten secrets land.
fn quotas_hold_under_concurrent_writers(setup: &Setup) {
    let f = Fixture::on(setup);
    f.store
        .set_project_quotas(
            &service_admin(),
            &project("p1"),
            ProjectQuotas {
                secrets: Some(10),
                ..Default::default()
            },
        )
        .unwrap();
    let stores = [Arc::new(f.reopen()), Arc::new(f.reopen())];
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let store = stores[t % 2].clone();
            std::thread::spawn(move || {
                let c = admin("p1");
                let mut stored = 0;
                for i in 0..4 {
                    match store.store_secret(
                        &c,
                        NewSecret::new().name(format!("{t}-{i}")).payload_text(
                            "x",
                            Some("text/plain"),
                            None,
                        ),
                    ) {
                        Ok(_) => stored += 1,
                        Err(e) => assert_eq!(e.kind(), ErrorKind::QuotaExceeded, "{e}"),
                    }
                }
                stored
            })
        })
        .collect();
    let stored: i32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(stored, 10);
    assert_eq!(f.rows("secrets"), 10);
}

fn a_copy_keeps_metadata_quotas_and_container_consumers(kind: &Kind) {
    let f = Fixture::with(kind);
    let c = admin("p1");
    let id = secret(&f, &c, "m");
    f.store
        .replace_secret_metadata(&c, &id, kv(&[("a", "1"), ("b", "2")]))
        .unwrap();
    let quotas = ProjectQuotas {
        secrets: Some(5),
        consumers: Some(-1),
        ..Default::default()
    };
    f.store
        .set_project_quotas(&service_admin(), &project("p1"), quotas)
        .unwrap();
    let k = f
        .store
        .store_container(
            &c,
            NewContainer::new(ContainerType::Generic).secret_ref("m", id),
        )
        .unwrap();
    let consumer = ContainerConsumer {
        name: "lb".into(),
        url: "http://lb".into(),
    };
    f.store
        .add_container_consumer(&c, &k, consumer.clone())
        .unwrap();
    let shared = Acl {
        users: vec![keywarden::model::UserId::new("friend").unwrap()],
        project_access: false,
    };
    f.store.set_container_acl(&c, &k, shared.clone()).unwrap();
    let mut targets = vec![Kind::Sqlite];
    if cfg!(feature = "postgres") {
        targets.extend(Kind::postgres());
    }
    for target in targets {
        let mut config = f.config.clone();
        config.catalog = target.fresh_catalog(f.dir.path());
        let dest = keywarden::catalog::open(&config.catalog_location()).unwrap();
        let report = keywarden::catalog::copy_verified(&*f.catalog(), &*dest).unwrap();
        // KEK + secret + container + 2 metadata + quotas + consumer + ACL
        assert_eq!(report.rows, 8, "{target:?}");
        let copy = keywarden::store::SecretStore::open(&config).unwrap();
        assert_eq!(
            copy.secret_metadata(&c, &id).unwrap(),
            map(&[("a", "1"), ("b", "2")])
        );
        assert_eq!(
            copy.project_quotas(&service_admin(), &project("p1"))
                .unwrap(),
            quotas
        );
        assert_eq!(
            copy.container_consumers(&c, &k, None, None).unwrap().items,
            vec![consumer.clone()]
        );
        assert_eq!(copy.container_acl(&c, &k).unwrap(), shared);
    }
}

fn secret_stores_are_listed_for_admins(setup: &Setup) {
    let f = Fixture::on(setup);
    let a = admin("p1");
    let (all, default) = f.store.backends(&a).unwrap();
    assert_eq!(default.as_str(), f.backend_id());
    assert!(all.contains(&default));
    assert_eq!(f.store.global_default_backend(&a).unwrap(), default);
    let e = f.store.preferred_backend(&a).unwrap_err();
    assert_eq!(
        (e.kind(), e.context()),
        (
            ErrorKind::NotFound,
            "Not Found. No preferred secret store defined for this project."
        )
    );
    f.store.set_project_backend(&a, &default).unwrap();
    assert_eq!(f.store.preferred_backend(&a).unwrap(), default);
    let creator = ctx("c", "p1", &["creator"]);
    for e in [
        f.store.backends(&creator).unwrap_err(),
        f.store.global_default_backend(&creator).unwrap_err(),
        f.store.preferred_backend(&creator).unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    }
}

fn secret_consumers_are_paged(setup: &Setup) {
    let f = Fixture::on(setup);
    let c = admin("p1");
    let id = secret(&f, &c, "used");
    for i in 0..12 {
        f.store
            .add_consumer(
                &c,
                &id,
                Consumer {
                    service: "cinder".into(),
                    resource_type: "volume".into(),
                    resource_id: format!("v-{i:02}"),
                },
            )
            .unwrap();
    }
    let first = f.store.list_consumers(&c, &id, None, None).unwrap();
    assert_eq!((first.total, first.items.len(), first.limit), (12, 10, 10));
    let rest = f.store.list_consumers(&c, &id, Some(5), Some(10)).unwrap();
    let ids: Vec<_> = rest.items.iter().map(|c| c.resource_id.as_str()).collect();
    assert_eq!(ids, ["v-10", "v-11"]);
    let e = f
        .store
        .list_consumers(&admin("p2"), &id, None, None)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}
