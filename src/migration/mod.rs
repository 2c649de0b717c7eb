//! The fixed-key migration: every encrypted volume (or backup) that still
//! carries ConfKeyManager's all-zeros key id gets a secret of its own holding
//! the same key bytes, and its key id is rewritten to that secret.
//!
//! Follows cinder's `cinder/keymgr/migration.py`: the same decisions in the
//! same order, the same log lines, one new secret per item (owned by the
//! service's project, readable by the item's user), a volume's snapshots
//! following the volume. Better than cinder:
//!
//! - Crash-safe and resumable. An item's new secret id is derived from the
//!   item (UUIDv5), so a rerun after a crash finds the secret it made before
//!   instead of making a second one: every item ends with exactly one id,
//!   and no secret is left without its item. Rewriting the item is a
//!   compare-and-set on the all-zeros id.
//! - Batched: secrets for many items are written in one transaction, items
//!   rewritten in one transaction per batch.
//! - A dry run, and a final status that says when `fixed_key` can go.
//!
//! The resources live behind [`EncryptedResources`]; [`CinderSqlite`] reads
//! cinder's own tables.

use std::fmt;

use crate::backend::fixed::FIXED_KEY_ALGORITHM;
use crate::context::Context;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{SecretId, UserId};
use crate::secret::SecretBytes;
use crate::store::{SecretStore, migrated};

mod cinder;
mod service_conf;

pub use cinder::CinderSqlite;
pub use service_conf::ServiceConf;

/// The key id every fixed-key volume carries.
pub const ALL_ZEROS: &str = "00000000-0000-0000-0000-000000000000";

/// cinder's `MAX_KEY_MIGRATION_ERRORS`: the 4th error aborts.
pub const MAX_ERRORS: u64 = 3;

/// Namespace for the secret ids the migration derives from item ids.
const MIGRATION_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6b65_7977_6172_4465_8e4d_6967_7261_7465);

/// Which cinder service is migrating: each handles its own rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// cinder-volume: volumes (and their snapshots).
    Volume,
    /// cinder-backup: backups.
    Backup,
}

impl Service {
    /// The item type cinder names in its per-item log line.
    fn item_type(self) -> &'static str {
        match self {
            Service::Volume => "VolumeMigration",
            Service::Backup => "Backup",
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Service::Volume => "volume",
            Service::Backup => "backup",
        }
    }
}

/// Which rows belong to this service instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostFilter {
    Host(String),
    /// A clustered cinder-volume selects by `cluster_name`.
    Cluster(String),
}

/// An encrypted resource still on the fixed key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub id: String,
    /// The owner, who gets read access to the new secret.
    pub user_id: Option<String>,
}

/// How many rows of the whole database still use the all-zeros id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Remaining {
    pub volumes: u64,
    pub snapshots: u64,
    pub backups: u64,
    /// Backups with no key id column value whose volume is encrypted: made
    /// before cinder kept backup key ids, their id lives only in the backup
    /// metadata and may still be the all-zeros id.
    pub backups_without_key_id: u64,
}

impl Remaining {
    /// Whether `fixed_key` can be removed from the configuration.
    pub fn safe_to_remove_fixed_key(&self) -> bool {
        self.volumes == 0
            && self.snapshots == 0
            && self.backups == 0
            && self.backups_without_key_id == 0
    }
}

/// Where the encrypted resources live. [`CinderSqlite`] reads cinder's tables;
/// a service can plug in its own database.
pub trait EncryptedResources {
    /// Whether this host (or cluster) has any live volumes (or backups), of
    /// any key: cinder's "no volumes or backups associated with this host".
    fn has_items(&mut self, service: Service, filter: &HostFilter) -> Result<bool>;

    /// Live items of this host still on the all-zeros id, ordered by id,
    /// strictly after `after`, at most `limit`.
    fn pending(
        &mut self,
        service: Service,
        filter: &HostFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Item>>;

    /// Points each item at its new key id where it still holds the
    /// all-zeros id (a volume's snapshots on the all-zeros id follow it), in
    /// one transaction. Returns how many items changed.
    fn assign(&mut self, service: Service, assignments: &[(String, SecretId)]) -> Result<usize>;

    /// Rows of the whole database still on the all-zeros id.
    fn remaining(&mut self) -> Result<Remaining>;
}

/// How a migration run is set up.
#[derive(Clone)]
pub struct MigrationOptions {
    /// The service's `[key_manager] backend` (cinder's decisions look at
    /// it): `ConfKeyManager` means the fixed key is still in use; `barbican`,
    /// `BarbicanKeyManager` or `keywarden` name a real key manager.
    pub key_manager_backend: String,
    /// The hex-decoded `fixed_key`, if one is configured.
    pub fixed_key: Option<SecretBytes>,
    pub service: Service,
    pub filter: HostFilter,
    /// Report what would change; write nothing.
    pub dry_run: bool,
    /// Items per transaction ([`DEFAULT_BATCH_SIZE`] unless set).
    pub batch_size: usize,
    /// For tests: stop (as if the process died) after this many writes.
    #[doc(hidden)]
    pub fail_after_writes: Option<usize>,
}

/// Items per transaction unless set. Each item's read ACL lands in the
/// catalog's by-user index, on a page of its user's run of entries, so a
/// transaction rewrites about one index page per distinct user in it,
/// however few items that user has: few large transactions write far less
/// than many small ones (1M volumes of 5000 users: 82 s with 5000 items,
/// about 36 s with 50,000; docs/benchmarks.md). An interrupted batch rolls
/// back whole; in flight it holds about 2 KB per item.
pub const DEFAULT_BATCH_SIZE: usize = 50_000;

impl MigrationOptions {
    pub fn new(service: Service, filter: HostFilter, fixed_key: Option<SecretBytes>) -> Self {
        MigrationOptions {
            key_manager_backend: "keywarden".to_owned(),
            fixed_key,
            service,
            filter,
            dry_run: false,
            batch_size: DEFAULT_BATCH_SIZE,
            fail_after_writes: None,
        }
    }
}

impl fmt::Debug for MigrationOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MigrationOptions")
            .field("key_manager_backend", &self.key_manager_backend)
            .field("fixed_key", &self.fixed_key)
            .field("service", &self.service)
            .field("filter", &self.filter)
            .field("dry_run", &self.dry_run)
            .field("batch_size", &self.batch_size)
            .finish_non_exhaustive()
    }
}

/// A log line as cinder writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Info,
    Warning,
    Error,
}

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct MigrationReport {
    /// Items rewritten to a new key id in this run.
    pub migrated: u64,
    /// Items a dry run would rewrite.
    pub would_migrate: Vec<String>,
    pub errors: u64,
    pub aborted: bool,
    /// Rows of the whole database still on the all-zeros id afterwards
    /// (`None` when cinder would not log the summary).
    pub remaining: Option<Remaining>,
}

/// The report being built, and where its lines go as they happen.
struct Run<'e, 'f> {
    report: MigrationReport,
    events: &'e mut (dyn FnMut(MigrationEvent<'_>) + 'f),
}

impl Run<'_, '_> {
    fn log(&mut self, level: Level, line: String) {
        match level {
            Level::Info => tracing::info!(target: "keywarden::migration", "{line}"),
            Level::Warning => tracing::warn!(target: "keywarden::migration", "{line}"),
            Level::Error => tracing::error!(target: "keywarden::migration", "{line}"),
        }
        (self.events)(MigrationEvent::Line(level, &line));
    }

    fn progress(&mut self) {
        (self.events)(MigrationEvent::Progress {
            migrated: self.report.migrated,
            errors: self.report.errors,
        });
    }
}

/// What a run reports as it goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrationEvent<'a> {
    /// A log line, as cinder would log it.
    Line(Level, &'a str),
    /// After each batch: items migrated and errors so far.
    Progress { migrated: u64, errors: u64 },
}

/// Receives [`MigrationEvent`]s.
pub type Events<'a> = &'a mut dyn FnMut(MigrationEvent<'_>);

/// The secret id an item's migrated key gets: derived from the item, so a
/// rerun finds what an interrupted run made.
///
/// A UUIDv8 whose first six bytes follow the item id (its UUID bytes, or its
/// leading bytes when it is no UUID) and whose rest is a name-based hash of
/// service and item, which keeps ids distinct. A run walks items in id
/// order, so its secrets land at the ends of the catalog's id indexes
/// instead of on random pages: with random ids, a million-item run rewrote
/// most index pages in every transaction and slowed down as the catalog
/// grew.
pub fn migrated_secret_id(service: Service, item_id: &str) -> SecretId {
    let name = format!("cinder-fixed-key:{}:{item_id}", service.as_str());
    let mut bytes = *uuid::Uuid::new_v5(&MIGRATION_NAMESPACE, name.as_bytes()).as_bytes();
    let order: [u8; 16] = match uuid::Uuid::try_parse(item_id) {
        Ok(item) => *item.as_bytes(),
        Err(_) => {
            let mut raw = [0u8; 16];
            let lead = &item_id.as_bytes()[..item_id.len().min(16)];
            raw[..lead.len()].copy_from_slice(lead);
            raw
        }
    };
    bytes[..6].copy_from_slice(&order[..6]);
    SecretId::from_uuid(uuid::Uuid::new_v8(bytes))
}

/// Runs the migration for one service as `ctx` (the service's identity,
/// which needs the creator role to make secrets).
pub fn migrate_fixed_key(
    store: &SecretStore,
    ctx: &Context,
    db: &mut dyn EncryptedResources,
    options: &MigrationOptions,
    events: Events<'_>,
) -> Result<MigrationReport> {
    let mut run = Run {
        report: MigrationReport::default(),
        events,
    };
    let backend = options
        .key_manager_backend
        .rsplit('.')
        .next()
        .unwrap_or_default();
    if backend == "ConfKeyManager" {
        run.log(
            Level::Info,
            "Not migrating encryption keys because the ConfKeyManager is still in use.".into(),
        );
        return Ok(run.report);
    }
    let Some(fixed_key) = options.fixed_key.as_ref().filter(|k| !k.is_empty()) else {
        run.log(
            Level::Info,
            "Not migrating encryption keys because the ConfKeyManager's fixed_key is not in use."
                .into(),
        );
        return Ok(run.report);
    };
    if !matches!(backend, "barbican" | "BarbicanKeyManager" | "keywarden") {
        run.log(
            Level::Warning,
            format!(
                "Not migrating encryption keys because migration to the '{backend}' key_manager backend is not supported."
            ),
        );
        return finish(db, run);
    }
    if !db.has_items(options.service, &options.filter)? {
        run.log(
            Level::Info,
            "Not migrating encryption keys because there are no volumes or backups associated with this host.".into(),
        );
        return finish(db, run);
    }
    migrate_items(store, ctx, db, options, fixed_key, &mut run)?;
    finish(db, run)
}

fn migrate_items(
    store: &SecretStore,
    ctx: &Context,
    db: &mut dyn EncryptedResources,
    options: &MigrationOptions,
    key: &SecretBytes,
    run: &mut Run<'_, '_>,
) -> Result<()> {
    run.log(
        Level::Info,
        "Starting migration of ConfKeyManager keys.".into(),
    );
    let mut writes = 0usize;
    let crash_point = |writes: &mut usize| -> Result<()> {
        *writes += 1;
        match options.fail_after_writes {
            Some(n) if *writes > n => Err(Error::new(
                ErrorKind::Unavailable,
                "injected failure: migration stopped",
            )),
            _ => Ok(()),
        }
    };
    let mut after: Option<String> = None;
    loop {
        let items = db.pending(
            options.service,
            &options.filter,
            after.as_deref(),
            options.batch_size.max(1),
        )?;
        let Some(last) = items.last() else { break };
        after = Some(last.id.clone());
        if options.dry_run {
            run.report
                .would_migrate
                .extend(items.into_iter().map(|i| i.id));
            continue;
        }
        let wanted: Vec<(SecretId, Option<UserId>)> = items
            .iter()
            .map(|i| {
                (
                    migrated_secret_id(options.service, &i.id),
                    i.user_id.as_deref().and_then(|u| UserId::new(u).ok()),
                )
            })
            .collect();
        crash_point(&mut writes)?;
        let outcomes = match migrated::store_keys(store, ctx, &wanted, key, FIXED_KEY_ALGORITHM) {
            Ok(outcomes) => outcomes,
            Err(e) if e.kind() == ErrorKind::PermissionDenied => {
                // The service identity may not create secrets (it lacks the
                // creator role): every item fails as it does in cinder, and
                // the 4th failure stops the run.
                for item in &items {
                    run.log(Level::Info, migrating_line(options.service, &item.id));
                    run.log(
                        Level::Error,
                        format!("Error migrating encryption key: {}", cli_style(&e)),
                    );
                    run.report.errors += 1;
                    if run.report.errors > MAX_ERRORS {
                        abort(run);
                        return Ok(());
                    }
                }
                run.progress();
                continue;
            }
            Err(e) => return Err(e),
        };
        let mut assignments = Vec::with_capacity(items.len());
        let mut batch_log = Vec::with_capacity(items.len());
        for ((item, (secret_id, _)), outcome) in items.iter().zip(&wanted).zip(outcomes) {
            batch_log.push((Level::Info, migrating_line(options.service, &item.id)));
            match outcome {
                Ok(()) => assignments.push((item.id.clone(), *secret_id)),
                Err(e) => batch_log.push((
                    Level::Error,
                    format!("Error migrating encryption key: {}", cli_style(&e)),
                )),
            }
        }
        crash_point(&mut writes)?;
        let changed = db.assign(options.service, &assignments)?;
        run.report.migrated += changed as u64;
        for (level, line) in batch_log {
            if level == Level::Error {
                run.report.errors += 1;
            }
            run.log(level, line);
        }
        // A batch is finished even past the 4th error, so every secret made
        // in it belongs to its item; then the run stops.
        if run.report.errors > MAX_ERRORS {
            abort(run);
        }
        run.progress();
        if run.report.aborted {
            break;
        }
    }
    Ok(())
}

fn migrating_line(service: Service, item_id: &str) -> String {
    format!(
        "Migrating {} {item_id} encryption key to Barbican",
        service.item_type()
    )
}

fn abort(run: &mut Run<'_, '_>) {
    run.report.aborted = true;
    run.log(
        Level::Error,
        "Aborting encryption key migration (too many errors).".into(),
    );
}

/// cinder's `_log_migration_status`: counts over the whole database.
fn finish(db: &mut dyn EncryptedResources, mut run: Run<'_, '_>) -> Result<MigrationReport> {
    let remaining = db.remaining()?;
    if remaining.volumes == 0 {
        run.log(
            Level::Info,
            "No volumes are using the ConfKeyManager's encryption_key_id.".into(),
        );
    } else {
        run.log(
            Level::Warning,
            format!(
                "There are still {} volume(s) using the ConfKeyManager's all-zeros encryption key ID.",
                remaining.volumes
            ),
        );
    }
    if remaining.backups == 0 {
        run.log(
            Level::Info,
            "No backups are known to be using the ConfKeyManager's encryption_key_id.".into(),
        );
    } else {
        run.log(
            Level::Warning,
            format!(
                "There are still {} backups(s) using the ConfKeyManager's all-zeros encryption key ID.",
                remaining.backups
            ),
        );
    }
    run.report.remaining = Some(remaining);
    Ok(run.report)
}

/// Errors as cinder's log shows Barbican's: "Forbidden: …".
fn cli_style(e: &Error) -> String {
    let what = match e.kind() {
        ErrorKind::PermissionDenied => "Forbidden",
        ErrorKind::NotFound => "Not Found",
        ErrorKind::Conflict => "Conflict",
        ErrorKind::InvalidInput => "Bad Request",
        _ => "Error",
    };
    format!("{what}: {}", e.context())
}

/// What `migrate status` reports: whether `fixed_key` can go.
pub fn status_lines(remaining: &Remaining) -> Vec<String> {
    let mut out = vec![
        format!(
            "Volumes still on the all-zeros key ID: {}",
            remaining.volumes
        ),
        format!(
            "Snapshots still on the all-zeros key ID: {}",
            remaining.snapshots
        ),
        format!(
            "Backups still on the all-zeros key ID: {}",
            remaining.backups
        ),
    ];
    if remaining.backups_without_key_id > 0 {
        out.push(format!(
            "Warning: {} backup(s) of encrypted volumes have no encryption_key_id; made before cinder recorded backup key ids, their key id lives only in the backup metadata and may be the all-zeros ID. Keep fixed_key until they are restored, re-created or deleted.",
            remaining.backups_without_key_id
        ));
    }
    out.push(if remaining.safe_to_remove_fixed_key() {
        "It is safe to remove fixed_key from the configuration.".to_owned()
    } else {
        "Keep fixed_key: some resources still use the all-zeros key ID.".to_owned()
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrated_ids_are_stable_distinct_and_follow_the_item_order() {
        let mut items: Vec<String> = (0..2000)
            .map(|_| uuid::Uuid::new_v4().to_string())
            .collect();
        items.push("not-a-uuid".into());
        items.push("not-a-uuid-2".into());
        items.sort();
        let ids: Vec<String> = items
            .iter()
            .map(|i| migrated_secret_id(Service::Volume, i).to_string())
            .collect();
        assert_eq!(
            migrated_secret_id(Service::Volume, &items[0]).to_string(),
            ids[0],
            "a rerun derives the same id"
        );
        assert_ne!(
            migrated_secret_id(Service::Backup, &items[0]).to_string(),
            ids[0],
            "the services' ids differ"
        );
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ids.len());
        // Ordered by their first six bytes (twelve hex digits) as the items are.
        let uuids = ids.len() - 2;
        assert!(ids[..uuids].windows(2).all(|w| w[0][..13] <= w[1][..13]));
        for (item, id) in items.iter().zip(&ids).take(uuids) {
            assert_eq!(item[..13], id[..13]);
            assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 8);
        }
    }
}
