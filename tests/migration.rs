//! The fixed-key migration against cinder's tables: every decision branch
//! with its exact log line, the role failure and the retry, the 4th-error
//! abort, and kill-and-resume at every write.

#[macro_use]
mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use common::{Fixture, Kind, capture_logs, ctx};
use keywarden::ErrorKind;
use keywarden::backend::{DangerFixedKey, FIXED_KEY_ID, KeyManager, MasterKek, SimpleCrypto};
use keywarden::catalog::{Catalog, SqliteCatalog};
use keywarden::context::Context;
use keywarden::migration::{
    ALL_ZEROS, CinderSqlite, HostFilter, Level, MigrationEvent, MigrationOptions, MigrationReport,
    Service, migrate_fixed_key, migrated_secret_id,
};
use keywarden::model::{BackendId, SecretId};
use keywarden::secret::SecretBytes;
use keywarden::store::{KeyOrder, NewSecret, SecretStore};

// On SQLite and PostgreSQL: the catalogs write bulk batches their own way.
catalog_tests!(
    volumes_of_one_host_migrate_with_their_snapshots,
    kill_and_resume_at_every_write_ends_with_one_secret_per_item,
);

const FIXED_HEX: &str = "6b6579776172642d6669786564206b65792d3235362d6269742d6c6f6e672121";

fn fixed_key() -> SecretBytes {
    keywarden::backend::fixed::parse_hex_key(FIXED_HEX).unwrap()
}

/// A cinder database: volumes v01..vNN on host-a (every third with a
/// snapshot), two on host-b, a deleted one, one with a real key, one
/// unencrypted, and backups on backup-host.
fn cinder_db(path: &Path, n: usize) -> CinderSqlite {
    let db = CinderSqlite::create_minimal(path).unwrap();
    let c = db.connection();
    let vol = |id: &str, host: &str, cluster: Option<&str>, key: Option<&str>, deleted: i64| {
        c.execute(
            "INSERT INTO volumes (id, host, cluster_name, user_id, project_id, encryption_key_id, deleted)
             VALUES (?1, ?2, ?3, ?4, 'tenant', ?5, ?6)",
            rusqlite::params![id, host, cluster, format!("user-{id}"), key, deleted],
        )
        .unwrap();
    };
    for i in 1..=n {
        let id = format!("v{i:02}");
        vol(&id, "host-a", Some("cluster-1"), Some(ALL_ZEROS), 0);
        if i % 3 == 0 {
            c.execute(
                "INSERT INTO snapshots (id, volume_id, encryption_key_id, deleted) VALUES (?1, ?2, ?3, 0)",
                rusqlite::params![format!("s{i:02}"), id, ALL_ZEROS],
            )
            .unwrap();
        }
    }
    vol("w01", "host-b", None, Some(ALL_ZEROS), 0);
    vol("w02", "host-b", None, Some(ALL_ZEROS), 0);
    vol("x-deleted", "host-a", None, Some(ALL_ZEROS), 1);
    vol(
        "y-real",
        "host-a",
        None,
        Some("11111111-2222-3333-4444-555555555555"),
        0,
    );
    vol("z-plain", "host-a", None, None, 0);
    for (id, host) in [
        ("b1", "backup-host"),
        ("b2", "backup-host"),
        ("b3", "other-backup-host"),
    ] {
        c.execute(
            "INSERT INTO backups (id, volume_id, host, user_id, project_id, encryption_key_id, deleted)
             VALUES (?1, 'v01', ?2, ?3, 'tenant', ?4, 0)",
            rusqlite::params![id, host, format!("user-{id}"), ALL_ZEROS],
        )
        .unwrap();
    }
    db
}

fn key_ids(path: &Path, table: &str) -> HashMap<String, Option<String>> {
    let c = rusqlite::Connection::open(path).unwrap();
    let mut stmt = c
        .prepare(&format!("SELECT id, encryption_key_id FROM {table}"))
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn service_ctx() -> Context {
    ctx("cinder", "service", &["creator"])
}

fn options(service: Service, host: &str) -> MigrationOptions {
    MigrationOptions::new(service, HostFilter::Host(host.into()), Some(fixed_key()))
}

/// A run's report and the lines it logged, in order.
struct Ran {
    report: MigrationReport,
    log: Vec<(Level, String)>,
}

impl std::ops::Deref for Ran {
    type Target = MigrationReport;
    fn deref(&self) -> &MigrationReport {
        &self.report
    }
}

fn run(store: &SecretStore, who: &Context, db: &mut CinderSqlite, opts: &MigrationOptions) -> Ran {
    let mut log = Vec::new();
    let report = migrate_fixed_key(store, who, db, opts, &mut |e| {
        if let MigrationEvent::Line(level, line) = e {
            log.push((level, line.to_owned()));
        }
    })
    .unwrap();
    Ran { report, log }
}

fn lines(r: &Ran) -> Vec<String> {
    r.log.iter().map(|(_, l)| l.clone()).collect()
}

#[test]
fn not_migrating_while_conf_key_manager_is_in_use() {
    let f = Fixture::new();
    let dir = tempfile::tempdir().unwrap();
    let mut db = cinder_db(&dir.path().join("cinder.db"), 3);
    let mut o = options(Service::Volume, "host-a");
    o.key_manager_backend = "cinder.keymgr.conf_key_mgr.ConfKeyManager".into();
    let r = run(&f.store, &service_ctx(), &mut db, &o);
    assert_eq!(
        lines(&r),
        ["Not migrating encryption keys because the ConfKeyManager is still in use."]
    );
    assert!(r.remaining.is_none(), "no summary");
}

#[test]
fn not_migrating_without_a_fixed_key() {
    let f = Fixture::new();
    let dir = tempfile::tempdir().unwrap();
    let mut db = cinder_db(&dir.path().join("cinder.db"), 3);
    let mut o = options(Service::Volume, "host-a");
    o.fixed_key = None;
    let r = run(&f.store, &service_ctx(), &mut db, &o);
    assert_eq!(
        lines(&r),
        ["Not migrating encryption keys because the ConfKeyManager's fixed_key is not in use."]
    );
}

#[test]
fn not_migrating_to_an_unsupported_backend_logs_the_summary() {
    let f = Fixture::new();
    let dir = tempfile::tempdir().unwrap();
    let mut db = cinder_db(&dir.path().join("cinder.db"), 3);
    let mut o = options(Service::Volume, "host-a");
    o.key_manager_backend = "vault".into();
    let r = run(&f.store, &service_ctx(), &mut db, &o);
    assert_eq!(
        lines(&r),
        [
            "Not migrating encryption keys because migration to the 'vault' key_manager backend is not supported.",
            "There are still 5 volume(s) using the ConfKeyManager's all-zeros encryption key ID.",
            "There are still 3 backups(s) using the ConfKeyManager's all-zeros encryption key ID.",
        ]
    );
    assert_eq!(r.log[0].0, Level::Warning);
}

#[test]
fn not_migrating_a_host_without_volumes() {
    let f = Fixture::new();
    let dir = tempfile::tempdir().unwrap();
    let mut db = cinder_db(&dir.path().join("cinder.db"), 3);
    let r = run(
        &f.store,
        &service_ctx(),
        &mut db,
        &options(Service::Volume, "empty-host"),
    );
    assert_eq!(
        lines(&r)[0],
        "Not migrating encryption keys because there are no volumes or backups associated with this host."
    );
    assert_eq!(r.log.len(), 3, "then the two summary lines");
}

fn volumes_of_one_host_migrate_with_their_snapshots(kind: &Kind) {
    let f = Fixture::with(kind);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cinder.db");
    let mut db = cinder_db(&path, 6);
    let before = key_ids(&path, "volumes");
    let r = run(
        &f.store,
        &service_ctx(),
        &mut db,
        &options(Service::Volume, "host-a"),
    );
    let mut expected = vec!["Starting migration of ConfKeyManager keys.".to_owned()];
    for i in 1..=6 {
        expected.push(format!(
            "Migrating VolumeMigration v{i:02} encryption key to Barbican"
        ));
    }
    expected.push(
        "There are still 2 volume(s) using the ConfKeyManager's all-zeros encryption key ID."
            .into(),
    );
    expected.push(
        "There are still 3 backups(s) using the ConfKeyManager's all-zeros encryption key ID."
            .into(),
    );
    assert_eq!(lines(&r), expected);
    assert_eq!((r.migrated, r.errors, r.aborted), (6, 0, false));

    let after = key_ids(&path, "volumes");
    let snaps = key_ids(&path, "snapshots");
    let mut seen = HashSet::new();
    for i in 1..=6 {
        let vid = format!("v{i:02}");
        let new: SecretId = after[&vid].as_deref().unwrap().parse().unwrap();
        assert_eq!(new, migrated_secret_id(Service::Volume, &vid));
        assert!(seen.insert(new), "one secret per volume");
        // The secret holds the fixed key, belongs to the service project,
        // and the volume's owner can read it.
        let owner = ctx(&format!("user-{vid}"), "tenant", &["creator"]);
        let key = f.store.payload(&owner, &new).unwrap();
        assert_eq!(key.bytes.expose_secret(), fixed_key().expose_secret());
        let meta = f.store.secret(&service_ctx(), &new).unwrap();
        assert_eq!(
            (
                meta.project_id.as_str(),
                meta.algorithm.as_deref(),
                meta.bit_length
            ),
            ("service", Some("AES"), Some(256))
        );
        let stranger = ctx("someone", "tenant", &["creator"]);
        assert_eq!(
            f.store.payload(&stranger, &new).unwrap_err().kind(),
            ErrorKind::NotFound
        );
        if i % 3 == 0 {
            assert_eq!(
                snaps[&format!("s{i:02}")],
                after[&vid],
                "snapshot follows its volume"
            );
        }
    }
    for untouched in ["w01", "w02", "x-deleted", "y-real", "z-plain"] {
        assert_eq!(after[untouched], before[untouched], "{untouched}");
    }
    // Idempotent: a second run finds nothing to do and makes no secret.
    let secrets = f.rows("secrets");
    let again = run(
        &f.store,
        &service_ctx(),
        &mut db,
        &options(Service::Volume, "host-a"),
    );
    assert_eq!(again.migrated, 0);
    assert_eq!(f.rows("secrets"), secrets);
}

#[test]
fn clustered_volumes_and_backups_are_selected_separately() {
    let f = Fixture::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cinder.db");
    let mut db = cinder_db(&path, 2);
    let mut o = options(Service::Volume, "ignored");
    o.filter = HostFilter::Cluster("cluster-1".into());
    assert_eq!(run(&f.store, &service_ctx(), &mut db, &o).migrated, 2);

    let r = run(
        &f.store,
        &service_ctx(),
        &mut db,
        &options(Service::Backup, "backup-host"),
    );
    assert!(lines(&r).contains(&"Migrating Backup b1 encryption key to Barbican".to_owned()));
    assert_eq!(r.migrated, 2);
    assert_eq!(
        lines(&r).last().unwrap(),
        "There are still 1 backups(s) using the ConfKeyManager's all-zeros encryption key ID."
    );
    let backups = key_ids(&path, "backups");
    assert_eq!(backups["b3"].as_deref(), Some(ALL_ZEROS));
    assert_ne!(backups["b1"], backups["b2"]);
}

#[test]
fn the_role_failure_keeps_the_all_zeros_id_and_a_retry_migrates() {
    let f = Fixture::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cinder.db");
    let mut db = cinder_db(&path, 6);
    let no_creator = ctx("cinder", "service", &["observer"]);
    let mut o = options(Service::Volume, "host-a");
    o.batch_size = 4;
    let r = run(&f.store, &no_creator, &mut db, &o);
    let forbidden = "Error migrating encryption key: Forbidden: Secret creation attempt not allowed - please review your user/project privileges";
    let mut expected = vec!["Starting migration of ConfKeyManager keys.".to_owned()];
    for i in 1..=4 {
        expected.push(format!(
            "Migrating VolumeMigration v{i:02} encryption key to Barbican"
        ));
        expected.push(forbidden.to_owned());
    }
    expected.push("Aborting encryption key migration (too many errors).".into());
    expected.push(
        "There are still 8 volume(s) using the ConfKeyManager's all-zeros encryption key ID."
            .into(),
    );
    expected.push(
        "There are still 3 backups(s) using the ConfKeyManager's all-zeros encryption key ID."
            .into(),
    );
    assert_eq!(lines(&r), expected);
    assert_eq!((r.errors, r.aborted, r.migrated), (4, true, 0));
    assert_eq!(f.rows("secrets"), 0);
    let zeros = key_ids(&path, "volumes")
        .values()
        .filter(|k| k.as_deref() == Some(ALL_ZEROS))
        .count();
    assert_eq!(
        zeros, 9,
        "8 live volumes and the deleted one keep the all-zeros id"
    );

    // The role is granted; the next start migrates everything.
    let r = run(&f.store, &service_ctx(), &mut db, &o);
    assert_eq!((r.migrated, r.errors), (6, 0));
    assert_eq!(r.remaining.unwrap().volumes, 2);
}

#[test]
fn dry_run_writes_nothing() {
    let f = Fixture::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cinder.db");
    let mut db = cinder_db(&path, 4);
    let before = key_ids(&path, "volumes");
    let mut o = options(Service::Volume, "host-a");
    o.dry_run = true;
    o.batch_size = 3;
    let r = run(&f.store, &service_ctx(), &mut db, &o);
    assert_eq!(r.would_migrate, ["v01", "v02", "v03", "v04"]);
    assert_eq!(key_ids(&path, "volumes"), before);
    assert_eq!(f.rows("secrets"), 0);
}

fn kill_and_resume_at_every_write_ends_with_one_secret_per_item(kind: &Kind) {
    for batch_size in [1, 2, 4] {
        for fail_after in 0..16 {
            let f = Fixture::with(kind);
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("cinder.db");
            let mut db = cinder_db(&path, 7);
            let mut o = options(Service::Volume, "host-a");
            o.batch_size = batch_size;
            o.fail_after_writes = Some(fail_after);
            let stopped = migrate_fixed_key(&f.store, &service_ctx(), &mut db, &o, &mut |_| {});
            if let Err(e) = &stopped {
                assert!(e.to_string().contains("injected failure"), "{e}");
            }
            o.fail_after_writes = None;
            let resumed = run(&f.store, &service_ctx(), &mut db, &o);
            assert_eq!(
                resumed.errors, 0,
                "batch {batch_size}, stop after {fail_after}"
            );

            let volumes = key_ids(&path, "volumes");
            let snaps = key_ids(&path, "snapshots");
            let mut ids = HashSet::new();
            for i in 1..=7 {
                let vid = format!("v{i:02}");
                let id: SecretId = volumes[&vid].as_deref().unwrap().parse().unwrap();
                assert_eq!(id, migrated_secret_id(Service::Volume, &vid));
                ids.insert(id);
                let key = f.store.payload(&service_ctx(), &id).unwrap();
                assert_eq!(key.bytes.expose_secret(), fixed_key().expose_secret());
                if i % 3 == 0 {
                    assert_eq!(snaps[&format!("s{i:02}")], volumes[&vid]);
                }
            }
            assert_eq!(ids.len(), 7);
            assert_eq!(
                f.rows("secrets"),
                7,
                "no orphans (batch {batch_size}, stop after {fail_after})"
            );
        }
    }
}

#[test]
fn status_says_when_fixed_key_can_go() {
    let f = Fixture::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cinder.db");
    let mut db = cinder_db(&path, 2);
    run(
        &f.store,
        &service_ctx(),
        &mut db,
        &options(Service::Volume, "host-a"),
    );
    run(
        &f.store,
        &service_ctx(),
        &mut db,
        &options(Service::Volume, "host-b"),
    );
    use keywarden::migration::EncryptedResources;
    let r = db.remaining().unwrap();
    assert!(!r.safe_to_remove_fixed_key(), "backups remain");
    run(
        &f.store,
        &service_ctx(),
        &mut db,
        &options(Service::Backup, "backup-host"),
    );
    run(
        &f.store,
        &service_ctx(),
        &mut db,
        &options(Service::Backup, "other-backup-host"),
    );
    let r = db.remaining().unwrap();
    assert!(r.safe_to_remove_fixed_key(), "{r:?}");
    let text = keywarden::migration::status_lines(&r).join("\n");
    assert!(text.contains("It is safe to remove fixed_key"), "{text}");

    // An old backup of an encrypted volume with no key id column value.
    db.connection()
        .execute("INSERT INTO backups (id, volume_id, host, encryption_key_id, deleted) VALUES ('old', 'v01', 'backup-host', NULL, 0)", [])
        .unwrap();
    let r = db.remaining().unwrap();
    assert_eq!(r.backups_without_key_id, 1);
    assert!(!r.safe_to_remove_fixed_key());
    assert!(
        keywarden::migration::status_lines(&r)
            .join("\n")
            .contains("backup metadata")
    );
}

#[test]
fn cinder_database_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let e = CinderSqlite::open(dir.path().join("missing.db"))
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let p = dir.path().join("other.db");
    rusqlite::Connection::open(&p)
        .unwrap()
        .execute_batch("CREATE TABLE volumes (id TEXT)")
        .unwrap();
    let e = CinderSqlite::open(&p).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
}

// ---- the fixed key in the store ----

fn legacy_store(dir: &Path, default: &str) -> SecretStore {
    let catalog = Arc::new(SqliteCatalog::open(dir.join("k.db")).unwrap());
    let dyn_cat: Arc<dyn Catalog> = catalog;
    let soft: Arc<dyn KeyManager> = Arc::new(SimpleCrypto::new(
        BackendId::new("software").unwrap(),
        &MasterKek::generate().unwrap(),
        &[],
        dyn_cat.clone(),
    ));
    let legacy: Arc<dyn KeyManager> =
        Arc::new(DangerFixedKey::from_hex(BackendId::new("legacy").unwrap(), FIXED_HEX).unwrap());
    SecretStore::builder(dyn_cat)
        .backend(soft)
        .backend(legacy)
        .default_backend(BackendId::new(default).unwrap())
        .build()
        .unwrap()
}

#[test]
fn the_all_zeros_id_falls_back_to_the_fixed_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = legacy_store(dir.path(), "software");
    let c = ctx("nova", "tenant", &["creator"]);
    let key = store.get_object(&c, &FIXED_KEY_ID).unwrap();
    assert_eq!(key.expose_secret(), fixed_key().expose_secret());
    assert_eq!(
        (key.algorithm(), key.bit_length()),
        (Some("AES"), Some(256))
    );
    // Every other id comes from the real backend.
    let id = store
        .store_secret(
            &c,
            NewSecret::new().payload_text("real", Some("text/plain"), None),
        )
        .unwrap();
    assert_ne!(id, FIXED_KEY_ID);
    assert_eq!(
        store.payload(&c, &id).unwrap().bytes.expose_secret(),
        b"real"
    );
    // Deleting the all-zeros id does nothing, and the key stays readable.
    store.delete_secret(&c, &FIXED_KEY_ID, false).unwrap();
    assert!(store.payload(&c, &FIXED_KEY_ID).is_ok());
    // Without a fixed key configured, the all-zeros id is simply not there.
    let plain = Fixture::new();
    assert_eq!(
        plain.store.payload(&c, &FIXED_KEY_ID).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn fixed_key_as_the_backend_behaves_like_conf_key_manager() {
    let dir = tempfile::tempdir().unwrap();
    let store = legacy_store(dir.path(), "legacy");
    let c = ctx("cinder", "tenant", &["creator"]);
    // Create returns the all-zeros id whatever was asked.
    let order = store.create_key(&c, &KeyOrder::aes(128)).unwrap();
    assert_eq!(order.secret_id, Some(FIXED_KEY_ID));
    // Store accepts only the fixed key itself.
    let same =
        NewSecret::new().payload_bytes(fixed_key(), keywarden::model::ContentType::OctetStream);
    assert_eq!(store.store_secret(&c, same).unwrap(), FIXED_KEY_ID);
    let other = NewSecret::new().payload_text("other", Some("text/plain"), None);
    assert_eq!(
        store.store_secret(&c, other).unwrap_err().kind(),
        ErrorKind::Unsupported
    );
    // And the migration refuses to run while it is in use as the backend.
    let f_dir = tempfile::tempdir().unwrap();
    let mut db = cinder_db(&f_dir.path().join("cinder.db"), 1);
    let e = migrate_fixed_key(
        &store,
        &service_ctx(),
        &mut db,
        &options(Service::Volume, "host-a"),
        &mut |_| {},
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
}

#[test]
fn no_project_can_be_mapped_onto_the_fixed_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = legacy_store(dir.path(), "software");
    let admin = ctx("admin", "tenant", &["admin"]);
    let e = store
        .set_project_backend(&admin, &BackendId::new("legacy").unwrap())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("fixed key"), "{e}");
    let (backend, mapped) = store.project_backend(&admin).unwrap();
    assert_eq!((backend.as_str(), mapped), ("software", false));
    // Key orders of that project still get keys of their own.
    let order = store.create_key(&admin, &KeyOrder::aes(256)).unwrap();
    assert_ne!(order.secret_id, Some(FIXED_KEY_ID));
}

#[test]
fn a_mapping_onto_the_fixed_key_left_from_before_opens_with_a_warning() {
    use keywarden::catalog::Write;
    let dir = tempfile::tempdir().unwrap();
    {
        let catalog = SqliteCatalog::open(dir.path().join("k.db")).unwrap();
        catalog
            .apply(vec![Write::SetProjectBackend {
                project: keywarden::model::ProjectId::new("old-tenant").unwrap(),
                backend: Some(BackendId::new("legacy").unwrap()),
            }])
            .unwrap();
    }
    let (logs, store) = capture_logs(|| legacy_store(dir.path(), "software"));
    assert!(
        logs.contains("WARN") && logs.contains("old-tenant") && logs.contains("fixed key"),
        "{logs}"
    );
    // The mapping is not followed: the project's new keys are its own.
    let c = ctx("admin", "old-tenant", &["admin"]);
    let order = store.create_key(&c, &KeyOrder::aes(256)).unwrap();
    assert_ne!(order.secret_id, Some(FIXED_KEY_ID));
    // Nor is it shown as the project's preferred secret store.
    assert_eq!(
        store.preferred_backend(&c).unwrap_err().kind(),
        keywarden::ErrorKind::NotFound
    );
    assert!(!store.project_backend(&c).unwrap().1);
}
