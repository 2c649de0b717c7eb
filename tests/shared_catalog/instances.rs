//! Two instances in one process: racing first stores make one project KEK;
//! orders, consumers and ACLs agree across instances.

use std::collections::HashMap;
use std::sync::{Arc, Barrier, Mutex};

use keywarden::ErrorKind;
use keywarden::model::{Acl, Consumer, UserId};
use keywarden::store::{KeyOrder, SecretStore};

use crate::common::{Kind, Raw, admin, ctx, with_search_path};
use crate::{shared_config, text};

#[test]
fn racing_first_stores_make_one_project_kek() {
    let Some(kind) = Kind::postgres() else { return };
    let dir = tempfile::tempdir().unwrap();
    let config = shared_config(&kind, dir.path());
    // Two instances: separate pools and separate KEK caches.
    let a = Arc::new(SecretStore::open(&config).unwrap());
    let b = Arc::new(SecretStore::open(&config).unwrap());
    const PROJECTS: usize = 20;
    let barrier = Arc::new(Barrier::new(2));
    let run = |store: Arc<SecretStore>, tag: &'static str| {
        let barrier = barrier.clone();
        std::thread::spawn(move || {
            (0..PROJECTS)
                .map(|p| {
                    barrier.wait();
                    let project = format!("fresh-{p}");
                    let payload = format!("{tag}-{p}");
                    let id = store
                        .store_secret(&admin(&project), text(&payload))
                        .unwrap();
                    (id, project, payload)
                })
                .collect::<Vec<_>>()
        })
    };
    let ha = run(a.clone(), "a");
    let hb = run(b.clone(), "b");
    let written: Vec<_> = ha
        .join()
        .unwrap()
        .into_iter()
        .chain(hb.join().unwrap())
        .collect();
    let mut raw = Raw::open(&config.catalog);
    assert_eq!(
        raw.count("project_keks"),
        PROJECTS as i64,
        "one KEK per project"
    );
    assert_eq!(raw.count("secrets"), 2 * PROJECTS as i64);
    // Each instance reads what the other wrote: both used the one KEK.
    for (id, project, payload) in &written {
        for store in [&a, &b] {
            let got = store.payload(&admin(project), id).unwrap();
            assert_eq!(got.bytes.expose_secret(), payload.as_bytes());
        }
    }
}

#[test]
fn orders_consumers_and_acls_agree_across_instances() {
    let Some(kind) = Kind::postgres() else { return };
    let dir = tempfile::tempdir().unwrap();
    let config = shared_config(&kind, dir.path());
    let a = SecretStore::open(&config).unwrap();
    let b = SecretStore::open(&config).unwrap();
    let c = admin("p");
    let order = a.create_key(&c, &KeyOrder::aes(256)).unwrap();
    assert_eq!(b.order(&c, &order.id).unwrap(), order);
    let id = order.secret_id.unwrap();
    let consumer = Consumer {
        service: "nova".into(),
        resource_type: "instance".into(),
        resource_id: "i-1".into(),
    };
    a.add_consumer(&c, &id, consumer.clone()).unwrap();
    assert_eq!(
        b.delete_secret(&c, &id, false).unwrap_err().kind(),
        ErrorKind::Conflict
    );
    let acl = Acl {
        users: vec![UserId::new("bob").unwrap()],
        project_access: false,
    };
    b.set_acl(&c, &id, acl.clone()).unwrap();
    assert_eq!(a.acl(&c, &id).unwrap(), acl);
    let bob = ctx("bob", "other", &["observer"]);
    assert!(a.payload(&bob, &id).is_ok());
    // Many instances adding and removing consumers at once leave exactly
    // what was added last.
    let stores: Vec<_> = (0..4)
        .map(|_| Arc::new(SecretStore::open(&config).unwrap()))
        .collect();
    let seen = Arc::new(Mutex::new(HashMap::new()));
    let handles: Vec<_> = stores
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (s, seen) = (s.clone(), seen.clone());
            std::thread::spawn(move || {
                let c = admin("p");
                for n in 0..25u32 {
                    let consumer = Consumer {
                        service: "cinder".into(),
                        resource_type: "volume".into(),
                        resource_id: format!("v-{i}-{n}"),
                    };
                    s.add_consumer(&c, &id, consumer.clone()).unwrap();
                    if n.is_multiple_of(2) {
                        s.remove_consumer(&c, &id, consumer.clone()).unwrap();
                    } else {
                        seen.lock()
                            .unwrap()
                            .insert(consumer.resource_id.clone(), ());
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let consumers = b.consumers(&c, &id).unwrap();
    assert_eq!(consumers.len(), 1 + seen.lock().unwrap().len());
    a.delete_secret(&c, &id, true).unwrap();
    assert_eq!(Raw::open(&config.catalog).count("secret_consumers"), 0);
    let _ = with_search_path;
}
