//! The whole catalog: copied to either kind and read back, a failed replace
//! leaving the old content, and the bulk path keeping the good batches.

use keywarden::ErrorKind;
use keywarden::catalog::Write;
use keywarden::model::{Acl, Consumer, Order, OrderId, SecretId, UserId};
use keywarden::store::{KeyOrder, KeyPairOrder, NewSecret};

use crate::common::{Fixture, Kind, admin};
use crate::{catalog_tests, text_secret};

catalog_tests!(
    a_whole_catalog_copies_to_either_kind_and_reads_back,
    a_failed_replace_leaves_the_old_content,
    apply_each_keeps_the_good_batches_when_one_fails,
);

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
