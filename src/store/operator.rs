//! Operator actions: no request context, so no policy; each is audited
//! as user `operator`. Those on an open store are [`Operator`] methods;
//! backup, restore and checking a backup, which work from a [`Config`]
//! without one, are associated functions of [`SecretStore`] (see the note
//! on their `impl` block).

use std::collections::BTreeMap;
use std::sync::Arc;

use std::path::Path;

use crate::backend::{KekInstance, KekReport, MasterKekStatus};
use crate::catalog::{Catalog, CatalogLocation, Counts, SqliteCatalog};
use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{BackendId, SecretId, Timestamp};

use super::audit::{Actor, audited, record};
use super::{SecretStore, scope};

/// What [`Operator::check`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreReport {
    pub counts: Counts,
    pub backends: BTreeMap<BackendId, KekReport>,
}

/// What [`Operator::verify_secrets`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretsCheck {
    pub checked: u64,
    /// Secrets whose stored material did not authenticate.
    pub failed: Vec<SecretId>,
}

/// Backup, restore and checking a backup are associated functions of
/// `SecretStore`, not [`Operator`] methods, because none of them works on
/// an open store: an [`Operator`] borrows one, and a store holds neither
/// its config nor a concrete catalog.
///
/// - [`backup`](SecretStore::backup) opens only the catalog `config`
///   names, never its backends' keys, and refuses a missing catalog where
///   [`SecretStore::open`] would create one; a SQLite catalog is copied by
///   SQLite's `VACUUM INTO`, which needs the SQLite file, not the
///   `dyn Catalog` a store holds.
/// - [`restore`](SecretStore::restore) replaces the catalog underneath any
///   open store (whose cached project KEKs would then belong to the old
///   one), so it opens a fresh store only once the catalog is restored.
/// - [`verify_backup`](SecretStore::verify_backup) opens the backup as a
///   store of its own, under `config`'s backends.
impl SecretStore {
    /// Checks the SQLite catalog at `path` (a backup, or better a scratch
    /// copy of one: its schema is migrated in place) as a whole store under
    /// `config`'s backends before it replaces anything: it is a keywarden
    /// catalog of a schema this binary knows, every backend's keys open the
    /// project KEKs it holds, every project mapping names a configured
    /// backend, and every stored secret authenticates. Returns its counts;
    /// the first failure is the error.
    pub fn verify_backup(config: &Config, path: &Path) -> Result<Counts> {
        let catalog: Arc<dyn Catalog> = Arc::new(SqliteCatalog::open_existing(path)?);
        let mut builder =
            SecretStore::builder(catalog.clone()).default_backend(config.default_backend.clone());
        for (id, backend) in &config.backends {
            builder = builder.backend(backend.build(id, catalog.clone())?);
        }
        let store = builder.build()?;
        let check = store.operator().verify_secrets()?;
        if let Some(first) = check.failed.first() {
            return Err(Error::new(
                ErrorKind::Integrity,
                format!(
                    "{} of {} secrets do not authenticate (the first: {first})",
                    check.failed.len(),
                    check.checked
                ),
            ));
        }
        store.operator().counts()
    }

    /// Writes a consistent copy of `config`'s catalog (SQLite or
    /// PostgreSQL) into the new SQLite file `output`, mode 0600, while
    /// writers carry on; `output` must not exist. Master KEKs are not in
    /// it: they stay in the config. Returns what the backup holds.
    pub fn backup(config: &Config, output: &Path) -> Result<Counts> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let location = config.catalog_location();
        // Created private and empty (VACUUM INTO writes into an empty file).
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(output)
            .map_err(|e| {
                Error::new(
                    ErrorKind::Unavailable,
                    format!("cannot create {}", output.display()),
                )
                .with_source(e)
            })?;
        let written = match &location {
            CatalogLocation::Sqlite(db) => {
                SqliteCatalog::open_existing(db).and_then(|catalog| catalog.backup_to(output))
            }
            // A shared catalog is backed up into the same portable SQLite file.
            shared => crate::catalog::open_existing(shared).and_then(|source| {
                let dest = SqliteCatalog::open(output)?;
                crate::catalog::copy_verified(&*source, &dest).map(drop)
            }),
        }
        .and_then(|()| {
            // Private whatever wrote it: it holds every ciphertext and wrapped KEK.
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(output, std::fs::Permissions::from_mode(0o600)).map_err(
                |e| {
                    Error::new(
                        ErrorKind::Unavailable,
                        format!("cannot restrict {}", output.display()),
                    )
                    .with_source(e)
                },
            )?;
            SqliteCatalog::open_existing(output)?.counts()
        });
        if written.is_err() {
            for suffix in ["", "-wal", "-shm"] {
                let mut p = output.to_path_buf().into_os_string();
                p.push(suffix);
                let _ = std::fs::remove_file(std::path::PathBuf::from(p));
            }
        }
        written
    }

    /// Replaces `config`'s catalog (SQLite or PostgreSQL) with the SQLite
    /// backup at `backup`, after checking it as a whole store in a scratch
    /// copy ([`SecretStore::verify_backup`]): nothing is replaced unless the
    /// whole backup opens under this config. A catalog that holds secrets
    /// is replaced only with `force`. A SQLite catalog is replaced through
    /// SQLite's backup API, a PostgreSQL one in one transaction, so other
    /// processes see the old catalog or the restored one. `progress` gets
    /// (done, total) as the copy goes. Returns the restored counts.
    pub fn restore(
        config: &Config,
        backup: &Path,
        force: bool,
        progress: impl FnMut(u64, u64),
    ) -> Result<Counts> {
        if !backup.is_file() {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("backup {} does not exist", backup.display()),
            ));
        }
        let location = config.catalog_location();
        let beside = match &location {
            CatalogLocation::Sqlite(db) => db.as_path(),
            CatalogLocation::Postgres(_) => backup,
        };
        let scratch = scratch_beside(beside, "restore-check");
        // The backup file itself stays untouched: checks may migrate it.
        let copied = copy_private(backup, &scratch);
        let outcome = copied
            .and_then(|()| {
                SecretStore::verify_backup(config, &scratch).map_err(|e| {
                    Error::new(
                        e.kind(),
                        format!(
                            "backup {} cannot be restored under this config; nothing was replaced: {}",
                            backup.display(),
                            e.context().replace(&scratch.display().to_string(), "it")
                        ),
                    )
                })
            })
            .and_then(|_| replace_catalog(&location, &scratch, force, progress));
        for suffix in ["", "-wal", "-shm"] {
            let mut p = scratch.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(std::path::PathBuf::from(p));
        }
        outcome?;
        SecretStore::open(config)?.operator().counts()
    }
}

/// Replaces the catalog at `location` with the checked copy `scratch`.
fn replace_catalog(
    location: &CatalogLocation,
    scratch: &Path,
    force: bool,
    progress: impl FnMut(u64, u64),
) -> Result<()> {
    let refuse_unless_forced = |existing: u64| {
        if existing > 0 && !force {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "the catalog holds {existing} secrets; pass --force to replace it with the backup"
                ),
            ));
        }
        Ok(())
    };
    match location {
        CatalogLocation::Sqlite(db) => {
            let catalog = SqliteCatalog::open(db)?;
            refuse_unless_forced(catalog.counts()?.secrets)?;
            catalog.restore_from(scratch, progress)
        }
        shared => {
            let catalog = crate::catalog::open(shared)?;
            refuse_unless_forced(catalog.counts()?.secrets)?;
            let source = SqliteCatalog::open_existing(scratch)?;
            let mut progress = progress;
            progress(0, 1);
            crate::catalog::copy_verified(&source, &*catalog)?;
            progress(1, 1);
            Ok(())
        }
    }
}

/// `.<name>.<what>-<pid>` beside `path`.
fn scratch_beside(path: &Path, what: &str) -> std::path::PathBuf {
    let name = format!(
        ".{}.{what}-{}",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("keywarden.db"),
        std::process::id()
    );
    path.with_file_name(name)
}

/// Copies `from` to a new file `to` of mode 0600 (it holds every
/// ciphertext and wrapped KEK).
fn copy_private(from: &Path, to: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let fail = |e: std::io::Error| {
        Error::new(ErrorKind::Unavailable, "cannot copy the backup").with_source(e)
    };
    let _ = std::fs::remove_file(to);
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)
        .map_err(fail)?;
    let mut input = std::fs::File::open(from).map_err(fail)?;
    std::io::copy(&mut input, &mut out).map_err(fail)?;
    out.sync_all().map_err(fail)
}

/// Operator actions on a store; see [`SecretStore::operator`].
pub struct Operator<'a> {
    pub(super) store: &'a SecretStore,
}

impl<'a> Operator<'a> {
    /// Verifies every backend's keys against the catalog and counts rows.
    pub fn check(&self) -> Result<StoreReport> {
        let mut backends = BTreeMap::new();
        for (id, b) in &self.store.backends {
            backends.insert(id.clone(), b.verify()?);
        }
        Ok(StoreReport {
            counts: self.store.catalog.counts()?,
            backends,
        })
    }

    /// The configured backend ids and the global default.
    pub fn backend_ids(&self) -> (Vec<BackendId>, &'a BackendId) {
        (
            self.store.backends.keys().cloned().collect(),
            &self.store.default_backend,
        )
    }

    /// Rewraps `backend`'s project KEKs under its active master KEK in one
    /// transaction (master-KEK rotation), which makes that key the one new
    /// project KEKs are wrapped under on every instance. `Conflict`
    /// (nothing changed) while a running instance does not hold the key
    /// (see [`Operator::rotation_blockers`]). Secrets are not re-encrypted.
    pub fn rewrap_project_keks(&self, backend: &BackendId) -> Result<usize> {
        audited(Actor::Operator, "kek:rewrap", backend, || {
            self.store
                .backend(backend)
                .and_then(|b| b.rewrap_project_keks())
        })
    }

    /// Where each SimpleCrypto backend's master-KEK rollout stands: the
    /// catalog's active key and every running instance's keys.
    pub fn master_kek_status(&self) -> Result<Vec<MasterKekStatus>> {
        let mut out = Vec::new();
        for b in self.store.backends.values() {
            if let Some(s) = b.master_kek_status()? {
                out.push(s);
            }
        }
        Ok(out)
    }

    /// The running instances (other than this store) that do not hold the
    /// master KEK `fingerprint` of `backend`: a rotation to it waits for
    /// them.
    pub fn rotation_blockers(
        &self,
        backend: &BackendId,
        fingerprint: &str,
    ) -> Result<Vec<KekInstance>> {
        let Some(status) = self.store.backend(backend)?.master_kek_status()? else {
            return Ok(Vec::new());
        };
        Ok(status
            .instances
            .into_iter()
            .filter(|i| {
                i.instance_id != status.this_instance && !i.known.iter().any(|k| k == fingerprint)
            })
            .collect())
    }

    /// How many project KEKs of `backend` another master KEK than
    /// `fingerprint` wraps.
    pub fn project_keks_not_under(&self, backend: &BackendId, fingerprint: &str) -> Result<u64> {
        self.store.backend(backend)?;
        self.store
            .catalog
            .project_keks_not_under(backend, fingerprint)
    }

    /// Whether this config's retired master KEKs of `backend` may go:
    /// `Conflict` while a project KEK is wrapped by another key than the
    /// catalog's active one (which must be this config's `master_kek`),
    /// or another running instance still has an older `master_kek`.
    pub fn check_prune(&self, backend: &BackendId) -> Result<()> {
        self.store.backend(backend)?.check_prune()
    }

    /// How much the catalog holds.
    pub fn counts(&self) -> Result<Counts> {
        self.store.catalog.counts()
    }

    /// Authenticates every stored secret with its backend (nothing is
    /// returned or kept): how many were checked, and which failed.
    pub fn verify_secrets(&self) -> Result<SecretsCheck> {
        let mut check = SecretsCheck::default();
        let mut after = None;
        loop {
            let page = self.store.catalog.scan_secrets(after.as_ref(), 500)?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.id);
            for (meta, stored) in &page {
                let Some(stored) = stored else { continue };
                check.checked += 1;
                let ok = self
                    .store
                    .backend(&meta.backend_id)
                    .and_then(|b| b.retrieve(scope(meta), stored))
                    .is_ok();
                if !ok {
                    check.failed.push(meta.id);
                }
            }
        }
        // One event once the scan is done; a scan that fails returns before it.
        record(Actor::Operator, "secrets:verify", &"*", &Ok::<_, Error>(()));
        Ok(check)
    }

    /// Deletes every expired secret (their ciphertext with them); returns
    /// how many.
    pub fn purge_expired(&self) -> Result<u64> {
        audited(Actor::Operator, "secrets:purge_expired", &"*", || {
            self.store.catalog.purge_expired(Timestamp::now())
        })
    }

    /// The catalog itself: no policy, no audit, no input validation. For
    /// migrations, benchmarks and tests that must write rows directly.
    pub fn danger_catalog(&self) -> &Arc<dyn Catalog> {
        &self.store.catalog
    }
}
