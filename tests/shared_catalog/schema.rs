//! The schema: versioned, migrated once, a newer one refused; an
//! uninitialised database refused by `open_existing`.

use std::sync::{Arc, Barrier};

use keywarden::ErrorKind;
use keywarden::catalog::{PostgresCatalog, PostgresUrl};

use crate::common::{Kind, Raw};

#[test]
fn schema_is_versioned_migrated_once_and_newer_is_refused() {
    let Some(kind) = Kind::postgres() else { return };
    let dir = tempfile::tempdir().unwrap();
    let catalog = kind.fresh_catalog(dir.path());
    let url = PostgresUrl::parse(&catalog.expose_text()).unwrap();
    // Eight instances starting at once on an empty schema: one migrates.
    let barrier = Arc::new(Barrier::new(8));
    let opened: Vec<_> = (0..8)
        .map(|_| {
            let (url, barrier) = (url.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                PostgresCatalog::open(&url).map(|c| c.schema_version().unwrap())
            })
        })
        .collect();
    // Version 4: 0002 gives SQLite the index PostgreSQL's 0001 made; 0003
    // metadata, quotas and container consumers; 0004 container ACLs.
    for h in opened {
        assert_eq!(h.join().unwrap().unwrap(), 5);
    }
    let mut raw = Raw::open(&catalog);
    assert_eq!(raw.count("keywarden_schema"), 1);
    raw.exec("UPDATE keywarden_schema SET version = 99")
        .unwrap();
    let e = PostgresCatalog::open(&url).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.to_string().contains("newer"), "{e}");
}

#[test]
fn open_existing_refuses_an_uninitialised_database() {
    let Some(kind) = Kind::postgres() else { return };
    let dir = tempfile::tempdir().unwrap();
    let url = PostgresUrl::parse(&kind.fresh_catalog(dir.path()).expose_text()).unwrap();
    let e = PostgresCatalog::open_existing(&url).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    PostgresCatalog::open(&url).unwrap();
    PostgresCatalog::open_existing(&url).unwrap();
}
