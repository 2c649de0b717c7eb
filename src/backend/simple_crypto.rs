//! SimpleCrypto: a master KEK from the configuration wraps one KEK per
//! project; the project KEK encrypts that project's secrets into the catalog.
//!
//! Every ciphertext is an authenticated envelope (see `crypto`) bound to the
//! backend, the project and the secret id, so a row copied onto another secret
//! or into another project fails with `Integrity`.
//!
//! Master-KEK rotation with several instances on one catalog is a staged
//! rollout the catalog records: each instance holds its config's active,
//! staged and retired master KEKs and tells the catalog which (`announce`,
//! every [`HEARTBEAT_EVERY`]); new project KEKs are wrapped under the
//! catalog's active key (`master_kek_rollout`), whichever of its keys that
//! is; a rotation is refused while a running instance lacks the new key,
//! and a prune while one still runs with the old key as its `master_kek`.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use zeroize::Zeroizing;

use crate::backend::{
    KekInsert, KekInstance, KekReport, KekStore, KeyManager, Scope, StoredSecret, WrappedKek,
};
use crate::catalog::rollout::describe;
use crate::crypto::{SealKey, fingerprint};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{BackendId, ProjectId, Timestamp};
use crate::secret::SecretBytes;

/// Master KEKs are AES-256 keys.
pub const MASTER_KEK_LEN: usize = 32;
const PROJECT_KEK_LEN: usize = 32;

/// A master KEK: 32 bytes, carried in the config file as base64.
#[derive(Clone)]
pub struct MasterKek(SecretBytes);

impl MasterKek {
    /// A fresh random master KEK.
    pub fn generate() -> Result<Self> {
        Ok(MasterKek(SecretBytes::random(MASTER_KEK_LEN)?))
    }

    /// Parses the config form (standard base64 of 32 bytes).
    pub fn from_base64(text: &str) -> Result<Self> {
        let bytes = Zeroizing::new(
            B64.decode(text.trim().as_bytes())
                .map_err(|_| Error::new(ErrorKind::Config, "master KEK is not valid base64"))?,
        );
        if bytes.len() != MASTER_KEK_LEN {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "master KEK must be {MASTER_KEK_LEN} bytes, got {}",
                    bytes.len()
                ),
            ));
        }
        Ok(MasterKek(SecretBytes::copy_from(&bytes)))
    }

    /// The config form. The returned string is wiped when dropped.
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(B64.encode(self.0.expose_secret()))
    }

    /// A public fingerprint naming this key (safe to log).
    pub fn fingerprint(&self) -> String {
        fingerprint(self.0.expose_secret())
    }

    pub fn expose_secret(&self) -> &[u8] {
        self.0.expose_secret()
    }
}

impl fmt::Debug for MasterKek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKek(fingerprint {})", self.fingerprint())
    }
}

/// How often a running store tells the catalog which master KEKs it holds.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(10);
/// An instance silent this long no longer counts as running (it may be
/// stopped, or cut off from the catalog): rotation and prune stop waiting
/// for it.
pub const STALE_AFTER: Duration = Duration::from_secs(30);
/// Rows of instances silent this long are removed by the next heartbeat.
const FORGET_AFTER: Duration = Duration::from_secs(3600);

/// Where the master-KEK rollout of one SimpleCrypto backend stands, for
/// `keywarden kek status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MasterKekStatus {
    pub backend: BackendId,
    /// The master KEK new project KEKs are wrapped under (the catalog's).
    pub catalog_active: Option<String>,
    /// This instance's own id among `instances`.
    pub this_instance: String,
    /// Instances heard from within [`STALE_AFTER`], this one included.
    pub instances: Vec<KekInstance>,
    /// Project KEKs wrapped by another key than `catalog_active`.
    pub wrapped_by_others: u64,
}

/// The SimpleCrypto backend.
pub struct SimpleCrypto {
    id: BackendId,
    ring: RwLock<Arc<KeyRing>>,
    keks: Arc<dyn KekStore>,
    cache: RwLock<HashMap<ProjectId, Arc<ProjectKey>>>,
    /// This backend object's id in the catalog's instance list.
    instance_id: String,
    host: String,
}

/// The master KEKs one instance holds.
struct KeyRing {
    /// The config's `master_kek`.
    active: MasterEntry,
    /// Distributed ahead of a rotation (`staged_master_keks`).
    staged: Vec<MasterEntry>,
    /// Replaced by a rotation, kept until prune (`retired_master_keks`).
    retired: Vec<MasterEntry>,
}

impl KeyRing {
    fn new(active: &MasterKek, staged: &[MasterKek], retired: &[MasterKek]) -> Self {
        let entry = |k: &MasterKek| MasterEntry {
            fingerprint: k.fingerprint(),
            seal: SealKey::derive(k.expose_secret(), b"keywarden master kek"),
        };
        KeyRing {
            active: entry(active),
            staged: staged.iter().map(entry).collect(),
            retired: retired.iter().map(entry).collect(),
        }
    }

    fn all(&self) -> impl Iterator<Item = &MasterEntry> {
        std::iter::once(&self.active)
            .chain(&self.staged)
            .chain(&self.retired)
    }

    fn find(&self, fingerprint: &str) -> Option<&MasterEntry> {
        self.all().find(|m| m.fingerprint == fingerprint)
    }

    fn is_retired(&self, fingerprint: &str) -> bool {
        self.active.fingerprint != fingerprint
            && self.retired.iter().any(|m| m.fingerprint == fingerprint)
    }
}

struct MasterEntry {
    fingerprint: String,
    seal: SealKey,
}

struct ProjectKey {
    kek_id: String,
    /// The wrapped form it was opened from, to notice a changed catalog row.
    wrapped: Vec<u8>,
    seal: SealKey,
}

fn host_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| {
            std::fs::read_to_string(p)
                .ok()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

fn since(age: Duration) -> Timestamp {
    Timestamp::from_unix(Timestamp::now().unix() - i64::try_from(age.as_secs()).unwrap_or(0))
}

impl SimpleCrypto {
    /// `active` wraps new project KEKs (unless the catalog's rollout names
    /// another key this instance holds); `retired` keys still open KEKs they
    /// wrapped until `rewrap_project_keks` has moved them to `active`.
    pub fn new(
        id: BackendId,
        active: &MasterKek,
        retired: &[MasterKek],
        keks: Arc<dyn KekStore>,
    ) -> Self {
        Self::with_keys(id, active, &[], retired, keks)
    }

    /// [`SimpleCrypto::new`] with staged master KEKs too: distributed ahead
    /// of a rotation, they open project KEKs (and wrap new ones once the
    /// catalog's rollout makes one of them active) before this instance's
    /// config makes one its `master_kek`.
    pub fn with_keys(
        id: BackendId,
        active: &MasterKek,
        staged: &[MasterKek],
        retired: &[MasterKek],
        keks: Arc<dyn KekStore>,
    ) -> Self {
        SimpleCrypto {
            id,
            ring: RwLock::new(Arc::new(KeyRing::new(active, staged, retired))),
            keks,
            cache: RwLock::new(HashMap::new()),
            instance_id: uuid::Uuid::new_v4().hyphenated().to_string(),
            host: host_name(),
        }
    }

    /// The active master KEK's fingerprint (this instance's config's).
    pub fn master_fingerprint(&self) -> String {
        self.keys().active.fingerprint.clone()
    }

    fn keys(&self) -> Arc<KeyRing> {
        self.ring.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set_keys(&self, ring: Arc<KeyRing>) -> Arc<KeyRing> {
        std::mem::replace(
            &mut *self.ring.write().unwrap_or_else(|p| p.into_inner()),
            ring,
        )
    }

    /// This instance as the catalog's instance list records it.
    fn instance(&self, ring: &KeyRing) -> KekInstance {
        KekInstance {
            instance_id: self.instance_id.clone(),
            backend: self.id.clone(),
            host: self.host.clone(),
            pid: std::process::id(),
            known: ring.all().map(|m| m.fingerprint.clone()).collect(),
            configured_active: ring.active.fingerprint.clone(),
            heartbeat: Timestamp::now(),
        }
    }

    /// The refusal of an instance that lacks the catalog's active key.
    fn lacks_active(&self, fingerprint: &str) -> Error {
        Error::new(
            ErrorKind::Config,
            format!(
                "new project KEKs of backend {} are wrapped under master KEK {fingerprint}, which \
                 this instance's config does not hold; copy that key from the config where \
                 `keywarden kek stage` or `kek rotate` put it into this config's \
                 staged_master_keks (or make it master_kek), then reload or restart this instance",
                self.id
            ),
        )
    }

    fn kek_binding<'a>(&'a self, project: &'a ProjectId, kek_id: &'a str) -> [&'a [u8]; 4] {
        [
            b"project-kek",
            self.id.as_str().as_bytes(),
            project.as_str().as_bytes(),
            kek_id.as_bytes(),
        ]
    }

    fn unwrap_kek(&self, project: &ProjectId, wrapped: &WrappedKek) -> Result<ProjectKey> {
        let ring = self.keys();
        let master = ring.find(&wrapped.master_fingerprint).ok_or_else(|| {
            Error::new(
                ErrorKind::Integrity,
                format!(
                    "project KEK of {project} was wrapped by master KEK {}, which is not configured",
                    wrapped.master_fingerprint
                ),
            )
        })?;
        let raw = master.seal.open(
            &self.kek_binding(project, &wrapped.kek_id),
            &wrapped.wrapped,
        )?;
        if raw.len() != PROJECT_KEK_LEN {
            return Err(Error::integrity());
        }
        Ok(ProjectKey {
            kek_id: wrapped.kek_id.clone(),
            wrapped: wrapped.wrapped.clone(),
            seal: SealKey::derive(raw.expose_secret(), b"keywarden secret payload"),
        })
    }

    fn wrap_new_kek(&self, master: &MasterEntry, project: &ProjectId) -> Result<WrappedKek> {
        let raw = SecretBytes::random(PROJECT_KEK_LEN)?;
        let kek_id = uuid::Uuid::new_v4().hyphenated().to_string();
        let wrapped = master
            .seal
            .seal(&self.kek_binding(project, &kek_id), raw.expose_secret())?;
        Ok(WrappedKek {
            kek_id,
            master_fingerprint: master.fingerprint.clone(),
            wrapped,
        })
    }

    /// The project's first KEK, wrapped under the rollout's active master
    /// KEK. The catalog stores it only while that key is still the active
    /// one; a rotation in between makes it wrap again under the new key.
    fn make_project_kek(&self, project: &ProjectId) -> Result<WrappedKek> {
        let mut active = self.keks.rollout_active(&self.id)?;
        for _ in 0..3 {
            let ring = self.keys();
            let fingerprint = active.unwrap_or_else(|| ring.active.fingerprint.clone());
            let master = ring
                .find(&fingerprint)
                .ok_or_else(|| self.lacks_active(&fingerprint))?;
            let fresh = self.wrap_new_kek(master, project)?;
            match self
                .keks
                .insert_project_kek_if_active(&self.id, project, fresh)?
            {
                KekInsert::Stored(stored) => {
                    tracing::info!(backend = %self.id, project = %project, kek_id = %stored.kek_id, "project KEK ready");
                    return Ok(stored);
                }
                KekInsert::ActiveChanged(now) => active = Some(now),
            }
        }
        Err(Error::new(
            ErrorKind::Unavailable,
            format!(
                "the active master KEK of backend {} changed three times while project {project}'s KEK was made; retry",
                self.id
            ),
        ))
    }

    fn cached(&self, project: &ProjectId) -> Option<Arc<ProjectKey>> {
        self.cache
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(project)
            .cloned()
    }

    fn remember(&self, project: &ProjectId, key: ProjectKey) -> Arc<ProjectKey> {
        let key = Arc::new(key);
        self.cache
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(project.clone(), key.clone());
        key
    }

    /// The project's current KEK as the catalog holds it, made (once,
    /// across instances) on first use. Read from the catalog on every store,
    /// so an instance never encrypts under a KEK the catalog no longer holds
    /// (after a restore, say); unwrapped only when it changed.
    fn current_key(&self, project: &ProjectId) -> Result<Arc<ProjectKey>> {
        let wrapped = match self.keks.project_kek(&self.id, project)? {
            Some(w) => w,
            None => self.make_project_kek(project)?,
        };
        if let Some(k) = self.cached(project)
            && k.kek_id == wrapped.kek_id
            && k.wrapped == wrapped.wrapped
        {
            return Ok(k);
        }
        let key = self.unwrap_kek(project, &wrapped)?;
        Ok(self.remember(project, key))
    }

    /// The KEK `kek_id` of `project`, from the cache when it is there.
    fn key_for_read(&self, project: &ProjectId, kek_id: &str) -> Result<Arc<ProjectKey>> {
        if let Some(k) = self.cached(project)
            && k.kek_id == kek_id
        {
            return Ok(k);
        }
        let wrapped = self
            .keks
            .project_kek(&self.id, project)?
            .filter(|w| w.kek_id == kek_id)
            .ok_or_else(Error::integrity)?;
        let key = self.unwrap_kek(project, &wrapped)?;
        Ok(self.remember(project, key))
    }

    /// `material` sealed for `scope` under the project KEK `key`.
    fn seal_under(
        &self,
        key: &ProjectKey,
        scope: &Scope<'_>,
        material: &SecretBytes,
    ) -> Result<StoredSecret> {
        let bytes = key.seal.seal(
            &self.secret_binding(scope, &key.kek_id),
            material.expose_secret(),
        )?;
        Ok(StoredSecret {
            bytes,
            kek_id: Some(key.kek_id.clone()),
        })
    }

    fn secret_binding<'a>(&'a self, scope: &'a Scope<'a>, kek_id: &'a str) -> [&'a [u8]; 5] {
        [
            b"secret",
            self.id.as_str().as_bytes(),
            scope.project_id.as_str().as_bytes(),
            scope.secret_id.as_uuid().as_bytes(),
            kek_id.as_bytes(),
        ]
    }
}

impl KeyManager for SimpleCrypto {
    fn id(&self) -> &BackendId {
        &self.id
    }

    fn kind(&self) -> &'static str {
        "simple_crypto"
    }

    fn store(&self, scope: Scope<'_>, material: &SecretBytes) -> Result<StoredSecret> {
        let key = self.current_key(scope.project_id)?;
        self.seal_under(&key, &scope, material)
    }

    fn store_each(
        &self,
        scopes: &[Scope<'_>],
        material: &SecretBytes,
    ) -> Result<Vec<StoredSecret>> {
        let mut current: Option<(&ProjectId, Arc<ProjectKey>)> = None;
        let mut out = Vec::with_capacity(scopes.len());
        for scope in scopes {
            let key = match &current {
                Some((project, k)) if *project == scope.project_id => k.clone(),
                _ => {
                    let k = self.current_key(scope.project_id)?;
                    current = Some((scope.project_id, k.clone()));
                    k
                }
            };
            out.push(self.seal_under(&key, scope, material)?);
        }
        Ok(out)
    }

    fn retrieve(&self, scope: Scope<'_>, stored: &StoredSecret) -> Result<SecretBytes> {
        let kek_id = stored.kek_id.as_deref().ok_or_else(Error::integrity)?;
        let key = self.key_for_read(scope.project_id, kek_id)?;
        key.seal
            .open(&self.secret_binding(&scope, &key.kek_id), &stored.bytes)
    }

    fn delete(&self, _scope: Scope<'_>, _stored: &StoredSecret) -> Result<()> {
        // The ciphertext lives only in the catalog row, which the store deletes.
        Ok(())
    }

    fn verify(&self) -> Result<KekReport> {
        let ring = self.keys();
        let all = self.keks.project_keks(&self.id)?;
        let mut report = KekReport::default();
        let mut failed: Vec<&ProjectId> = Vec::new();
        for (project, wrapped) in &all {
            match self.unwrap_kek(project, wrapped) {
                Ok(key) => {
                    report.project_keks += 1;
                    if ring.is_retired(&wrapped.master_fingerprint) {
                        report.wrapped_by_retired += 1;
                    }
                    self.remember(project, key);
                }
                Err(_) => failed.push(project),
            }
        }
        if let Some(first) = failed.first() {
            return Err(Error::new(
                ErrorKind::Integrity,
                format!(
                    "the configured master KEK (fingerprint {}) does not open {} of {} project KEKs of backend {} (first: project {first}); check the config's master_kek",
                    ring.active.fingerprint,
                    failed.len(),
                    all.len(),
                    self.id
                ),
            ));
        }
        Ok(report)
    }

    fn rewrap_project_keks(&self) -> Result<usize> {
        let ring = self.keys();
        // This instance's own row first: it holds the new key.
        self.announce()?;
        let new = &ring.active;
        let n = self.keks.rotate_project_keks(
            &self.id,
            &new.fingerprint,
            since(STALE_AFTER),
            &mut |project, old| {
                let master = ring.find(&old.master_fingerprint).ok_or_else(|| {
                    Error::new(
                        ErrorKind::Integrity,
                        format!(
                            "project KEK of {project} was wrapped by master KEK {}, which is not configured",
                            old.master_fingerprint
                        ),
                    )
                })?;
                let binding = self.kek_binding(project, &old.kek_id);
                let raw = master.seal.open(&binding, &old.wrapped)?;
                Ok(WrappedKek {
                    kek_id: old.kek_id.clone(),
                    master_fingerprint: new.fingerprint.clone(),
                    wrapped: new.seal.seal(&binding, raw.expose_secret())?,
                })
            },
        )?;
        self.cache
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        Ok(n)
    }

    fn announce(&self) -> Result<()> {
        let ring = self.keys();
        let active = self
            .keks
            .propose_rollout_active(&self.id, &ring.active.fingerprint)?;
        if ring.find(&active).is_none() {
            return Err(self.lacks_active(&active));
        }
        self.keks
            .heartbeat_instance(&self.instance(&ring), since(FORGET_AFTER))
    }

    fn withdraw(&self) {
        if let Err(e) = self.keks.remove_instance(&self.instance_id) {
            tracing::warn!(backend = %self.id, error = %e, "could not remove this instance from the catalog's instance list; it ages out");
        }
    }

    fn reload_master_keys(
        &self,
        active: &MasterKek,
        staged: &[MasterKek],
        retired: &[MasterKek],
    ) -> Result<()> {
        let old = self.set_keys(Arc::new(KeyRing::new(active, staged, retired)));
        if let Err(e) = self.verify().and_then(|_| self.announce()) {
            self.set_keys(old);
            let _ = self.announce();
            return Err(e);
        }
        let ring = self.keys();
        tracing::info!(
            backend = %self.id,
            master_kek = %ring.active.fingerprint,
            staged = ring.staged.len(),
            retired = ring.retired.len(),
            "master KEKs reloaded"
        );
        Ok(())
    }

    fn master_kek_status(&self) -> Result<Option<MasterKekStatus>> {
        let catalog_active = self.keks.rollout_active(&self.id)?;
        let wrapped_by_others = match &catalog_active {
            Some(a) => self.keks.project_keks_not_under(&self.id, a)?,
            None => 0,
        };
        Ok(Some(MasterKekStatus {
            backend: self.id.clone(),
            catalog_active,
            this_instance: self.instance_id.clone(),
            instances: self.keks.live_instances(&self.id, since(STALE_AFTER))?,
            wrapped_by_others,
        }))
    }

    fn check_prune(&self) -> Result<()> {
        let ring = self.keys();
        let mine = &ring.active.fingerprint;
        let left = self.keks.project_keks_not_under(&self.id, mine)?;
        if left > 0 {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "{left} project KEKs of backend {} are still wrapped by a retired master KEK; run `keywarden kek rotate` first",
                    self.id
                ),
            ));
        }
        let active = self
            .keks
            .rollout_active(&self.id)?
            .unwrap_or_else(|| mine.clone());
        if &active != mine {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "new project KEKs of backend {} are wrapped under master KEK {active}, not under this config's master_kek {mine}; run `keywarden kek rotate` first",
                    self.id
                ),
            ));
        }
        let behind: Vec<KekInstance> = self
            .keks
            .live_instances(&self.id, since(STALE_AFTER))?
            .into_iter()
            .filter(|i| i.instance_id != self.instance_id && i.configured_active != active)
            .collect();
        if !behind.is_empty() {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "{} still run with another master_kek than {active} (backend {}); make that key their master_kek, reload or restart them, check `keywarden kek status`, then prune again",
                    describe(&behind),
                    self.id
                ),
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for SimpleCrypto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ring = self.keys();
        let fingerprints = |keys: &[MasterEntry]| {
            keys.iter()
                .map(|m| m.fingerprint.clone())
                .collect::<Vec<_>>()
        };
        f.debug_struct("SimpleCrypto")
            .field("id", &self.id)
            .field("master_kek", &ring.active.fingerprint)
            .field("staged", &fingerprints(&ring.staged))
            .field("retired", &fingerprints(&ring.retired))
            .finish_non_exhaustive()
    }
}
