//! SimpleCrypto: a master KEK from the configuration wraps one KEK per
//! project; the project KEK encrypts that project's secrets into the catalog.
//!
//! Every ciphertext is an authenticated envelope (see `crypto`) bound to the
//! backend, the project and the secret id, so a row copied onto another secret
//! or into another project fails with `Integrity`.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use zeroize::Zeroizing;

use crate::backend::{KekReport, KekStore, KeyManager, Scope, StoredSecret, WrappedKek};
use crate::crypto::{SealKey, fingerprint};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{BackendId, ProjectId};
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

/// The SimpleCrypto backend.
pub struct SimpleCrypto {
    id: BackendId,
    active: MasterEntry,
    retired: Vec<MasterEntry>,
    keks: Arc<dyn KekStore>,
    cache: RwLock<HashMap<ProjectId, Arc<ProjectKey>>>,
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

impl SimpleCrypto {
    /// `active` wraps new project KEKs; `retired` keys still open KEKs they
    /// wrapped until `rewrap_project_keks` has moved them to `active`.
    pub fn new(
        id: BackendId,
        active: &MasterKek,
        retired: &[MasterKek],
        keks: Arc<dyn KekStore>,
    ) -> Self {
        let entry = |k: &MasterKek| MasterEntry {
            fingerprint: k.fingerprint(),
            seal: SealKey::derive(k.expose_secret(), b"keywarden master kek"),
        };
        SimpleCrypto {
            id,
            active: entry(active),
            retired: retired.iter().map(entry).collect(),
            keks,
            cache: RwLock::new(HashMap::new()),
        }
    }

    /// The active master KEK's fingerprint.
    pub fn master_fingerprint(&self) -> &str {
        &self.active.fingerprint
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
        let master = std::iter::once(&self.active)
            .chain(&self.retired)
            .find(|m| m.fingerprint == wrapped.master_fingerprint)
            .ok_or_else(|| {
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

    fn wrap_new_kek(&self, project: &ProjectId) -> Result<WrappedKek> {
        let raw = SecretBytes::random(PROJECT_KEK_LEN)?;
        let kek_id = uuid::Uuid::new_v4().hyphenated().to_string();
        let wrapped = self
            .active
            .seal
            .seal(&self.kek_binding(project, &kek_id), raw.expose_secret())?;
        Ok(WrappedKek {
            kek_id,
            master_fingerprint: self.active.fingerprint.clone(),
            wrapped,
        })
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
            None => {
                let fresh = self.wrap_new_kek(project)?;
                let stored = self.keks.insert_project_kek(&self.id, project, fresh)?;
                tracing::info!(backend = %self.id, project = %project, kek_id = %stored.kek_id, "project KEK ready");
                stored
            }
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
        let all = self.keks.project_keks(&self.id)?;
        let mut report = KekReport::default();
        let mut failed: Vec<&ProjectId> = Vec::new();
        for (project, wrapped) in &all {
            match self.unwrap_kek(project, wrapped) {
                Ok(key) => {
                    report.project_keks += 1;
                    if wrapped.master_fingerprint != self.active.fingerprint {
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
                    self.active.fingerprint,
                    failed.len(),
                    all.len(),
                    self.id
                ),
            ));
        }
        Ok(report)
    }

    fn rewrap_project_keks(&self) -> Result<usize> {
        let all = self.keks.project_keks(&self.id)?;
        let mut rewrapped = Vec::with_capacity(all.len());
        for (project, wrapped) in all {
            let master = std::iter::once(&self.active)
                .chain(&self.retired)
                .find(|m| m.fingerprint == wrapped.master_fingerprint)
                .ok_or_else(Error::integrity)?;
            let binding = self.kek_binding(&project, &wrapped.kek_id);
            let raw = master.seal.open(&binding, &wrapped.wrapped)?;
            let new = WrappedKek {
                kek_id: wrapped.kek_id.clone(),
                master_fingerprint: self.active.fingerprint.clone(),
                wrapped: self.active.seal.seal(&binding, raw.expose_secret())?,
            };
            rewrapped.push((project, new));
        }
        let n = rewrapped.len();
        self.keks.replace_project_keks(&self.id, rewrapped)?;
        self.cache
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        Ok(n)
    }
}

impl fmt::Debug for SimpleCrypto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimpleCrypto")
            .field("id", &self.id)
            .field("master_kek", &self.active.fingerprint)
            .field(
                "retired",
                &self
                    .retired
                    .iter()
                    .map(|m| &m.fingerprint)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}
