//! Tampering, moved ciphertext and wrong keys: always one opaque `Integrity`
//! error, never wrong plaintext.

mod common;

use std::sync::Arc;

use common::{Fixture, Kind, Raw, Setup, admin, build_two, two_backend_store};
use keywarden::ErrorKind;
use keywarden::backend::{MasterKek, SimpleCrypto};
use keywarden::catalog::{Catalog, SqliteCatalog};
use keywarden::config::{BackendConfig, CatalogLocation, Config};
use keywarden::model::BackendId;
use keywarden::store::{NewSecret, SecretStore};

conformance!(
    one_flipped_ciphertext_byte_is_integrity,
    ciphertext_moved_onto_another_secret_is_integrity,
    row_moved_into_another_project_is_integrity,
    tampered_project_kek_is_refused_at_open,
    untrusted_catalog_rows_give_typed_errors,
    running_instance_writes_readable_secrets_after_a_restore,
    a_secret_cannot_reference_a_kek_the_catalog_lacks,
);

catalog_tests!(
    wrong_master_kek_is_refused_at_open_and_at_use,
    master_kek_rotation_rewraps_without_touching_secrets,
    projects_on_two_backends_and_a_moved_project,
    restore_checks_the_whole_backup_before_replacing_anything,
    restore_refuses_a_newer_schema_or_a_foreign_file_before_replacing_anything,
);

fn secret(payload: &str) -> NewSecret {
    NewSecret::new().payload_text(payload, Some("text/plain"), None)
}

fn raw(f: &Fixture) -> Raw {
    f.raw()
}

fn one_flipped_ciphertext_byte_is_integrity(setup: &Setup) {
    let f = Fixture::on(setup);
    let c = admin("p1");
    let id = f.store.store_secret(&c, secret("payload")).unwrap();
    let mut raw = raw(&f);
    let stored = raw
        .blobs(&format!("SELECT stored FROM secrets WHERE id = '{id}'"))
        .remove(0);
    for i in [0, 1, stored.len() / 2, stored.len() - 1] {
        let mut bad = stored.clone();
        bad[i] ^= 0x80;
        let bad = raw.blob_literal(&bad);
        raw.exec(&format!(
            "UPDATE secrets SET stored = {bad} WHERE id = '{id}'"
        ))
        .unwrap();
        let e = f.store.payload(&c, &id).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Integrity, "byte {i}: {e}");
        assert!(!e.to_string().contains("payload"), "opaque: {e}");
    }
}

fn ciphertext_moved_onto_another_secret_is_integrity(setup: &Setup) {
    let f = Fixture::on(setup);
    let c = admin("p1");
    let a = f.store.store_secret(&c, secret("payload-a")).unwrap();
    let b = f.store.store_secret(&c, secret("payload-b")).unwrap();
    raw(&f)
        .exec(&format!(
            "UPDATE secrets SET stored = (SELECT stored FROM secrets WHERE id = '{a}') WHERE id = '{b}'"
        ))
        .unwrap();
    assert_eq!(
        f.store.payload(&c, &b).unwrap_err().kind(),
        ErrorKind::Integrity
    );
    assert_eq!(
        f.store.payload(&c, &a).unwrap().bytes.expose_secret(),
        b"payload-a"
    );
}

fn row_moved_into_another_project_is_integrity(setup: &Setup) {
    let f = Fixture::on(setup);
    let p1 = admin("p1");
    let p2 = admin("p2");
    let a = f.store.store_secret(&p1, secret("payload-a")).unwrap();
    f.store.store_secret(&p2, secret("gives p2 a KEK")).unwrap();
    raw(&f)
        .exec(&format!(
            "UPDATE secrets SET project_id = 'p2' WHERE id = '{a}'"
        ))
        .unwrap();
    assert_eq!(
        f.store.payload(&p2, &a).unwrap_err().kind(),
        ErrorKind::Integrity
    );
}

fn wrong_master_kek_is_refused_at_open_and_at_use(kind: &Kind) {
    let f = Fixture::with(kind);
    let c = admin("p1");
    let id = f.store.store_secret(&c, secret("payload")).unwrap();

    // Opening with another master KEK: refused with a clear message.
    let mut wrong = f.config.clone();
    wrong.backends.insert(
        wrong.default_backend.clone(),
        BackendConfig::SimpleCrypto {
            master_kek: MasterKek::generate().unwrap(),
            staged_master_keks: vec![],
            retired_master_keks: vec![],
        },
    );
    let e = SecretStore::open(&wrong).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Integrity);
    assert!(
        e.to_string().contains("does not open 1 of 1 project KEKs"),
        "{e}"
    );

    // A backend used without the startup check: Integrity on use, never plaintext.
    let cat: Arc<dyn Catalog> = f.catalog();
    let backend = SimpleCrypto::new(
        BackendId::new("software").unwrap(),
        &MasterKek::generate().unwrap(),
        &[],
        cat.clone(),
    );
    let row = cat.secret(&id, &c.user_id, true).unwrap().unwrap();
    let scope = keywarden::backend::Scope::new(&row.meta.project_id, &id);
    use keywarden::backend::KeyManager;
    let e = backend
        .retrieve(scope, row.stored.as_ref().unwrap())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Integrity);
}

fn tampered_project_kek_is_refused_at_open(setup: &Setup) {
    if !setup.backend.keeps_project_keks() {
        // A store backend (KMIP) has no KEKs in the catalog to tamper with.
        return;
    }
    let f = Fixture::on(setup);
    f.store.store_secret(&admin("p1"), secret("x")).unwrap();
    let mut raw = raw(&f);
    let mut wrapped = raw.blobs("SELECT wrapped FROM project_keks").remove(0);
    wrapped[20] ^= 0x01;
    let wrapped = raw.blob_literal(&wrapped);
    raw.exec(&format!("UPDATE project_keks SET wrapped = {wrapped}"))
        .unwrap();
    assert_eq!(
        SecretStore::open(&f.config).unwrap_err().kind(),
        ErrorKind::Integrity
    );
}

fn untrusted_catalog_rows_give_typed_errors(setup: &Setup) {
    let f = Fixture::on(setup);
    let c = admin("p1");
    let id = f.store.store_secret(&c, secret("x")).unwrap();
    raw(&f)
        .exec(&format!(
            "UPDATE secrets SET secret_type = 'bogus' WHERE id = '{id}'"
        ))
        .unwrap();
    assert_eq!(
        f.store.secret(&c, &id).unwrap_err().kind(),
        ErrorKind::Storage
    );
}

fn master_kek_rotation_rewraps_without_touching_secrets(kind: &Kind) {
    let f = Fixture::with(kind);
    let c = admin("p1");
    let ids: Vec<_> = (0..3)
        .map(|i| {
            f.store
                .store_secret(&admin(&format!("p{i}")), secret(&format!("v{i}")))
                .unwrap()
        })
        .collect();
    let before = raw(&f).blobs("SELECT stored FROM secrets ORDER BY id");

    let old = f
        .config
        .master_kek(&f.config.default_backend)
        .unwrap()
        .clone();
    let new = MasterKek::generate().unwrap();
    let mut rotated: Config = f.config.clone();
    rotated.backends.insert(
        rotated.default_backend.clone(),
        BackendConfig::SimpleCrypto {
            master_kek: new.clone(),
            staged_master_keks: vec![],
            retired_master_keks: vec![old.clone()],
        },
    );
    let store = SecretStore::open(&rotated).unwrap();
    let report = store.operator().check().unwrap();
    assert_eq!(
        report.backends[&rotated.default_backend].wrapped_by_retired,
        3
    );
    let backend_ids = store.operator().backend_ids();
    assert_eq!(backend_ids.0.len(), 1);
    // f.store still runs on the old config alone: the rotation waits for it.
    let e = store
        .operator()
        .rewrap_project_keks(&rotated.default_backend)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    assert!(e.to_string().contains("not yet known"), "{e}");
    // Once it holds the new key as staged (reloaded, not reopened), it no
    // longer does.
    let mut staged: Config = f.config.clone();
    staged.backends.insert(
        staged.default_backend.clone(),
        BackendConfig::SimpleCrypto {
            master_kek: old.clone(),
            staged_master_keks: vec![new.clone()],
            retired_master_keks: vec![],
        },
    );
    f.store.reload_master_keys(&staged).unwrap();
    let n = store
        .operator()
        .rewrap_project_keks(&rotated.default_backend)
        .unwrap();
    assert_eq!(n, 3);
    // The instance still on its old master_kek reads (and below wraps a
    // new project's KEK under the new key).
    assert_eq!(
        f.store
            .payload(&admin("p0"), &ids[0])
            .unwrap()
            .bytes
            .expose_secret(),
        b"v0"
    );

    // The old KEK can now be pruned: the new one alone opens everything.
    let mut pruned = rotated.clone();
    pruned.backends.insert(
        pruned.default_backend.clone(),
        BackendConfig::SimpleCrypto {
            master_kek: new.clone(),
            staged_master_keks: vec![],
            retired_master_keks: vec![],
        },
    );
    let store = SecretStore::open(&pruned).unwrap();
    for (i, id) in ids.iter().enumerate() {
        let ctx = admin(&format!("p{i}"));
        assert_eq!(
            store.payload(&ctx, id).unwrap().bytes.expose_secret(),
            format!("v{i}").as_bytes()
        );
    }
    let after = raw(&f).blobs("SELECT stored FROM secrets ORDER BY id");
    assert_eq!(before, after, "secrets were not re-encrypted");
    // And the original KEK no longer opens the store.
    assert_eq!(
        SecretStore::open(&f.config).unwrap_err().kind(),
        ErrorKind::Integrity
    );
    f.store.store_secret(&admin("p9"), secret("after")).unwrap();
    assert_eq!(
        raw(&f).count(&format!(
            "project_keks WHERE master_fingerprint = '{}'",
            new.fingerprint()
        )),
        4
    );
    let _ = c;
}

fn projects_on_two_backends_and_a_moved_project(kind: &Kind) {
    let f = Fixture::with(kind);
    let (catalog, store, a, b) = two_backend_store(f.catalog(), "soft-a");
    let pa = admin("project-a");
    let pb = admin("project-b");
    let soft_b = BackendId::new("soft-b").unwrap();
    store.set_project_backend(&pb, &soft_b).unwrap();

    let on_a = store.store_secret(&pa, secret("on a")).unwrap();
    let on_b = store.store_secret(&pb, secret("on b")).unwrap();
    assert_eq!(
        store.secret(&pa, &on_a).unwrap().backend_id.as_str(),
        "soft-a"
    );
    assert_eq!(
        store.secret(&pb, &on_b).unwrap().backend_id.as_str(),
        "soft-b"
    );
    assert_eq!(store.project_backend(&pb).unwrap(), (soft_b.clone(), true));

    // Move project-a to soft-b: new secrets go there, old ones stay readable.
    store.set_project_backend(&pa, &soft_b).unwrap();
    let later = store.store_secret(&pa, secret("later")).unwrap();
    assert_eq!(
        store.secret(&pa, &later).unwrap().backend_id.as_str(),
        "soft-b"
    );
    assert_eq!(
        store.payload(&pa, &on_a).unwrap().bytes.expose_secret(),
        b"on a"
    );
    assert_eq!(
        store.payload(&pa, &later).unwrap().bytes.expose_secret(),
        b"later"
    );

    // Clearing the mapping falls back to the global default.
    store.clear_project_backend(&pa).unwrap();
    assert_eq!(
        store.project_backend(&pa).unwrap(),
        (BackendId::new("soft-a").unwrap(), false)
    );
    let unknown = BackendId::new("nope").unwrap();
    assert_eq!(
        store.set_project_backend(&pa, &unknown).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    // A non-admin may not move projects, and an admin only moves their own:
    // project-b's mapping is untouched by project-a's calls.
    let creator = common::ctx("u", "project-a", &["creator"]);
    assert_eq!(
        store
            .set_project_backend(&creator, &soft_b)
            .unwrap_err()
            .kind(),
        ErrorKind::PermissionDenied
    );
    assert_eq!(store.project_backend(&pb).unwrap(), (soft_b.clone(), true));

    // Each backend's project KEKs are wrapped by its own master KEK: swapping
    // the master KEKs is refused at open.
    drop(store);
    let reopened = build_two(&catalog, &a, &b, "soft-a");
    assert_eq!(
        reopened.payload(&pb, &on_b).unwrap().bytes.expose_secret(),
        b"on b"
    );
    let dyn_cat = catalog.clone();
    let swapped = SecretStore::builder(dyn_cat.clone())
        .backend(Arc::new(SimpleCrypto::new(
            BackendId::new("soft-a").unwrap(),
            &b,
            &[],
            dyn_cat.clone(),
        )))
        .backend(Arc::new(SimpleCrypto::new(
            BackendId::new("soft-b").unwrap(),
            &a,
            &[],
            dyn_cat.clone(),
        )))
        .default_backend(BackendId::new("soft-a").unwrap())
        .build();
    assert_eq!(swapped.unwrap_err().kind(), ErrorKind::Integrity);
}

fn running_instance_writes_readable_secrets_after_a_restore(setup: &Setup) {
    // Two catalogs under one config: the same master KEK, different project KEKs.
    let a = Fixture::on(setup);
    let mut other_config = a.config.clone();
    other_config.catalog = setup.catalog.fresh_catalog(a.dir.path());
    let b = SecretStore::open(&other_config).unwrap();
    let c = admin("p1");
    let in_a = a.store.store_secret(&c, secret("written to a")).unwrap();
    let in_b = b.store_secret(&c, secret("written to b")).unwrap();
    drop(b);

    // Replace a's catalog with b's while a's store keeps running (and caching).
    match setup.catalog {
        Kind::Sqlite => {
            let CatalogLocation::Sqlite(b_path) = &other_config.catalog else {
                unreachable!("a SQLite fixture has a SQLite catalog");
            };
            SqliteCatalog::open(a.db_path())
                .unwrap()
                .restore_from(b_path, |_, _| {})
                .unwrap();
        }
        Kind::Postgres(_) => {
            let from = keywarden::catalog::open(&other_config.catalog_location()).unwrap();
            keywarden::catalog::copy_verified(&*from, &*a.catalog()).unwrap();
        }
    }
    assert_eq!(
        a.store.payload(&c, &in_a).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        a.store.payload(&c, &in_b).unwrap().bytes.expose_secret(),
        b"written to b"
    );
    let after = a.store.store_secret(&c, secret("written after")).unwrap();

    // A fresh process reads everything the running one wrote.
    let fresh = a.reopen();
    assert_eq!(
        fresh.payload(&c, &after).unwrap().bytes.expose_secret(),
        b"written after"
    );
    assert_eq!(
        fresh.payload(&c, &in_b).unwrap().bytes.expose_secret(),
        b"written to b"
    );
}

fn a_secret_cannot_reference_a_kek_the_catalog_lacks(setup: &Setup) {
    let f = Fixture::on(setup);
    let c = admin("p1");
    let id = f.store.store_secret(&c, secret("x")).unwrap();
    let e = raw(&f)
        .exec(&format!(
            "UPDATE secrets SET kek_id = 'not-a-kek' WHERE id = '{id}'"
        ))
        .unwrap_err();
    assert!(e.to_lowercase().contains("foreign key"), "{e}");
    if !setup.backend.keeps_project_keks() {
        return;
    }
    let e = raw(&f).exec("DELETE FROM project_keks").unwrap_err();
    assert!(e.to_lowercase().contains("foreign key"), "{e}");
}

/// `SecretStore::restore` checks the backup as a whole store in a scratch
/// copy before it replaces anything, on either catalog: one secret that
/// does not authenticate refuses it, and the live catalog stays as it was.
fn restore_checks_the_whole_backup_before_replacing_anything(kind: &Kind) {
    let f = Fixture::with(kind);
    let c = admin("p");
    let text = |t: &str| NewSecret::new().payload_text(t, Some("text/plain"), None);
    let kept = f.store.store_secret(&c, text("kept")).unwrap();
    let backup = f.dir.path().join("backup.db");
    assert_eq!(SecretStore::backup(&f.config, &backup).unwrap().secrets, 1);
    assert!(
        SecretStore::backup(&f.config, &backup).is_err(),
        "never overwrites"
    );
    let later = f.store.store_secret(&c, text("later")).unwrap();
    let bad = f.dir.path().join("bad.db");
    std::fs::copy(&backup, &bad).unwrap();
    Raw::open(&CatalogLocation::Sqlite(bad.clone()))
        .exec("UPDATE secrets SET stored = zeroblob(length(stored))")
        .unwrap();

    let e = SecretStore::restore(&f.config, &bad, true, |_, _| {}).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
    assert!(e.to_string().contains("nothing was replaced"), "{e}");
    let e = SecretStore::restore(&f.config, &backup, false, |_, _| {}).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    let live = f.reopen();
    assert_eq!(
        live.payload(&c, &later).unwrap().bytes.expose_secret(),
        b"later"
    );

    let counts = SecretStore::restore(&f.config, &backup, true, |_, _| {}).unwrap();
    assert_eq!(counts.secrets, 1);
    let restored = f.reopen();
    assert_eq!(
        restored.payload(&c, &kept).unwrap().bytes.expose_secret(),
        b"kept"
    );
    assert_eq!(
        restored.payload(&c, &later).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

/// Issue 19, defect 2: `SecretStore::restore` refuses, with a typed error
/// and before it replaces anything, a backup from a schema newer than this
/// binary knows, a file of random bytes and a SQLite file without the
/// keywarden schema. The live catalog still holds and reads its secrets,
/// the backup file is left as it was, and no scratch copy stays behind.
fn restore_refuses_a_newer_schema_or_a_foreign_file_before_replacing_anything(kind: &Kind) {
    let f = Fixture::with(kind);
    let c = admin("p");
    let text = |t: &str| NewSecret::new().payload_text(t, Some("text/plain"), None);
    let first = f.store.store_secret(&c, text("first")).unwrap();
    let newer = f.dir.path().join("newer.db");
    assert_eq!(SecretStore::backup(&f.config, &newer).unwrap().secrets, 1);
    let second = f.store.store_secret(&c, text("second")).unwrap();
    let user_version = |path: &std::path::Path| -> u32 {
        rusqlite::Connection::open(path)
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    };
    assert!(
        user_version(&newer) > 0,
        "a backup records its schema version"
    );
    rusqlite::Connection::open(&newer)
        .unwrap()
        .pragma_update(None, "user_version", 999)
        .unwrap();

    let random = f.dir.path().join("random.db");
    let mut bytes = vec![0u8; 64 * 1024];
    getrandom::fill(&mut bytes).unwrap();
    std::fs::write(&random, &bytes).unwrap();

    // SQLite, even with a `secrets` table, but no keywarden schema version.
    let foreign = f.dir.path().join("foreign.db");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch(
            "CREATE TABLE secrets (id TEXT PRIMARY KEY, stored BLOB);
             INSERT INTO secrets VALUES ('x', x'00');",
        )
        .unwrap();

    for (bad, kind, phrase) in [
        (
            &newer,
            ErrorKind::Config,
            "newer than this keywarden understands",
        ),
        (&random, ErrorKind::InvalidInput, "not a keywarden catalog"),
        (&foreign, ErrorKind::InvalidInput, "not a keywarden catalog"),
    ] {
        let name = bad.file_name().unwrap().to_str().unwrap();
        let before = std::fs::read(bad).unwrap();
        let e = SecretStore::restore(&f.config, bad, true, |_, _| {
            panic!("{name}: restore began copying")
        })
        .unwrap_err();
        assert_eq!(e.kind(), kind, "{name}: {e}");
        assert!(e.to_string().contains(phrase), "{name}: {e}");
        assert!(
            e.to_string().contains("nothing was replaced"),
            "{name}: {e}"
        );
        assert_eq!(
            std::fs::read(bad).unwrap(),
            before,
            "{name}: backup untouched"
        );

        let live = f.reopen();
        assert_eq!(live.operator().counts().unwrap().secrets, 2, "{name}");
        for (id, payload) in [(&first, "first"), (&second, "second")] {
            assert_eq!(
                live.payload(&c, id).unwrap().bytes.expose_secret(),
                payload.as_bytes(),
                "{name}"
            );
        }
        let scratch: Vec<_> = std::fs::read_dir(f.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.contains("restore-check"))
            .collect();
        assert!(
            scratch.is_empty(),
            "{name}: scratch left behind: {scratch:?}"
        );
    }
    assert_eq!(user_version(&newer), 999);
}
