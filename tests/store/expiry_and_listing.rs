//! Expired secrets (deleted, purged, read as not found) and listing with
//! filters, sorting and paging.

use keywarden::ErrorKind;
use keywarden::catalog::Write;
use keywarden::model::{SecretId, SecretMeta, SecretType, Timestamp};
use keywarden::store::{ListQuery, NewSecret};

use crate::common::{Fixture, Setup, admin};
use crate::{conformance, text_secret};

conformance!(
    expired_secrets_can_be_deleted_and_purged,
    expired_secret_reads_as_not_found,
    list_filters_sort_and_paging,
);

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
