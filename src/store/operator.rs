//! Operator actions: no request context, so no policy; each is audited
//! as user `operator`.

use std::collections::BTreeMap;
use std::sync::Arc;

use std::path::Path;

use crate::backend::KekReport;
use crate::catalog::{Catalog, Counts, SqliteCatalog};
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
    /// transaction (master-KEK rotation). Secrets are not re-encrypted.
    pub fn rewrap_project_keks(&self, backend: &BackendId) -> Result<usize> {
        audited(Actor::Operator, "kek:rewrap", backend, || {
            self.store
                .backend(backend)
                .and_then(|b| b.rewrap_project_keks())
        })
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
