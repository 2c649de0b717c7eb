//! The seed guide's §5.1: volumes encrypted under cinder's legacy
//! `fixed_key`, a restart with a real key manager (keywarden) beside the
//! fixed key, the migration with cinder's log lines, the role failure and
//! the retry, and the final "safe to remove fixed_key" check.

use std::sync::Arc;

use keywarden::backend::{DangerFixedKey, FIXED_KEY_ID, KeyManager, MasterKek, SimpleCrypto};
use keywarden::catalog::{Catalog, SqliteCatalog};
use keywarden::context::Context;
use keywarden::migration::{
    ALL_ZEROS, CinderSqlite, EncryptedResources, HostFilter, MigrationEvent, MigrationOptions,
    Service, migrate_fixed_key, status_lines,
};
use keywarden::model::{BackendId, ProjectId, UserId};
use keywarden::store::SecretStore;

/// cinder.conf's `[key_manager] fixed_key` (hex of a 256-bit key).
const FIXED_KEY: &str = "3f1c6a9e0b7d42c58e91f0a2b4c6d8e0f1a3b5c7d9e1f3a5b7c9d1e3f5a7b9c1";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("keywarden-migration-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = run(&dir);
    std::fs::remove_dir_all(&dir)?;
    result
}

fn run(dir: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    // Before: cinder with ConfKeyManager. Every encrypted volume carries the
    // all-zeros key id; two have snapshots; one backup.
    let mut cinder = CinderSqlite::create_minimal(dir.join("cinder.db"))?;
    for i in 1..=5 {
        cinder.connection().execute(
            "INSERT INTO volumes (id, host, user_id, project_id, encryption_key_id, deleted)
             VALUES (?1, 'cinder-volume-1@lvm', ?2, 'demo', ?3, 0)",
            (format!("vol-{i}"), format!("user-{i}"), ALL_ZEROS),
        )?;
    }
    for v in [2, 4] {
        cinder.connection().execute(
            "INSERT INTO snapshots (id, volume_id, encryption_key_id, deleted) VALUES (?1, ?2, ?3, 0)",
            (format!("snap-of-{v}"), format!("vol-{v}"), ALL_ZEROS),
        )?;
    }
    cinder.connection().execute(
        "INSERT INTO backups (id, volume_id, host, user_id, project_id, encryption_key_id, deleted)
         VALUES ('backup-1', 'vol-1', 'cinder-backup-1', 'user-1', 'demo', ?1, 0)",
        [ALL_ZEROS],
    )?;

    // Restart with a real backend, keeping fixed_key so old volumes still open.
    let catalog: Arc<dyn Catalog> = Arc::new(SqliteCatalog::open(dir.join("keywarden.db"))?);
    let real: Arc<dyn KeyManager> = Arc::new(SimpleCrypto::new(
        BackendId::new("software")?,
        &MasterKek::generate()?,
        &[],
        catalog.clone(),
    ));
    let legacy = Arc::new(DangerFixedKey::from_hex(
        BackendId::new("legacy")?,
        FIXED_KEY,
    )?);
    let store = SecretStore::builder(catalog)
        .backend(real)
        .backend(legacy.clone())
        .default_backend(BackendId::new("software")?)
        .build()?;
    let nova = Context::new(UserId::new("nova")?, ProjectId::new("demo")?, ["creator"]);
    let old_key = store.get_object(&nova, &FIXED_KEY_ID)?;
    println!(
        "half-migrated deployment: the all-zeros id still opens ({} bits)",
        old_key.bit_length().unwrap_or(0)
    );

    let options = MigrationOptions::new(
        Service::Volume,
        HostFilter::Host("cinder-volume-1@lvm".into()),
        Some(legacy.key().clone()),
    );
    // cinder's log lines, as the service would log them.
    let mut print = |event: MigrationEvent<'_>| {
        if let MigrationEvent::Line(level, line) = event {
            println!("{level:?}: {line}");
        }
    };

    // cinder's service user without the creator role: every item fails.
    println!("\n-- cinder-volume starts; its service user lacks the creator role");
    let no_role = Context::new(
        UserId::new("cinder")?,
        ProjectId::new("service")?,
        ["member"],
    );
    let report = migrate_fixed_key(&store, &no_role, &mut cinder, &options, &mut print)?;
    assert!(report.errors > 0 && report.migrated == 0);

    // The operator grants the role (`openstack role add --user cinder --project service creator`).
    println!("\n-- the creator role is granted; cinder-volume restarts");
    let cinder_user = Context::new(
        UserId::new("cinder")?,
        ProjectId::new("service")?,
        ["creator"],
    );
    let report = migrate_fixed_key(&store, &cinder_user, &mut cinder, &options, &mut print)?;
    assert_eq!(report.migrated, 5);
    println!("\n-- cinder-backup starts");
    let backups = MigrationOptions::new(
        Service::Backup,
        HostFilter::Host("cinder-backup-1".into()),
        Some(legacy.key().clone()),
    );
    let report = migrate_fixed_key(&store, &cinder_user, &mut cinder, &backups, &mut print)?;
    assert_eq!(report.migrated, 1);

    // Each volume's owner reads its own new key: same bytes, new id.
    let owner = Context::new(UserId::new("user-2")?, ProjectId::new("demo")?, ["creator"]);
    let new_id: String = cinder.connection().query_row(
        "SELECT encryption_key_id FROM volumes WHERE id = 'vol-2'",
        [],
        |r| r.get(0),
    )?;
    let key = store.get_object(&owner, &new_id.parse()?)?;
    assert!(key.material().ct_eq(old_key.expose_secret()));
    println!("\nvol-2 now uses secret {new_id}; its owner reads the same key bytes");

    println!("\n-- clean up the fixed keys?");
    let remaining = cinder.remaining()?;
    for line in status_lines(&remaining) {
        println!("{line}");
    }
    assert!(remaining.safe_to_remove_fixed_key());
    Ok(())
}
