//! The `KeyManager` trait and one module per backend.
//!
//! A backend turns secret material into something the catalog keeps (a
//! ciphertext for crypto backends, a remote id for store backends) and back.
//! Backends know nothing about policy and nothing about each other.

use std::fmt::Debug;

use crate::error::{Error, ErrorKind, Result};
use crate::keygen;
use crate::model::{BackendId, KeySpec, ProjectId, SecretId, SecretMeta, SecretType, Timestamp};
use crate::secret::SecretBytes;

pub mod fixed;
#[cfg(feature = "kmip")]
pub mod kmip;
#[cfg(feature = "pkcs11")]
pub mod pkcs11;
pub mod simple_crypto;

pub use fixed::{DangerFixedKey, FIXED_KEY_ID};
#[cfg(feature = "kmip")]
pub use kmip::{Kmip, KmipConfig};
#[cfg(feature = "pkcs11")]
pub use pkcs11::{Pkcs11, Pkcs11Config};
pub use simple_crypto::{HEARTBEAT_EVERY, MasterKek, MasterKekStatus, STALE_AFTER, SimpleCrypto};

/// Which secret an operation is about: the backend binds its output to both.
#[derive(Clone, Copy, Debug)]
pub struct Scope<'a> {
    pub project_id: &'a ProjectId,
    pub secret_id: &'a SecretId,
    /// What the secret is. Crypto backends encrypt every type alike and
    /// ignore it; a store backend (KMIP) keeps each type as its own kind of
    /// object and needs the key's algorithm.
    pub object: ObjectKind<'a>,
}

impl<'a> Scope<'a> {
    /// The scope of a secret with only bytes to go by (kept as opaque data).
    pub fn new(project_id: &'a ProjectId, secret_id: &'a SecretId) -> Self {
        Scope {
            project_id,
            secret_id,
            object: ObjectKind::OPAQUE,
        }
    }

    /// The scope of the secret `meta` describes.
    pub fn of(meta: &'a SecretMeta) -> Self {
        Scope {
            project_id: &meta.project_id,
            secret_id: &meta.id,
            object: ObjectKind {
                secret_type: meta.secret_type,
                algorithm: meta.algorithm.as_deref(),
                bit_length: meta.bit_length,
            },
        }
    }
}

/// A secret's type and key parameters, as its metadata records them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectKind<'a> {
    pub secret_type: SecretType,
    pub algorithm: Option<&'a str>,
    pub bit_length: Option<u32>,
}

impl ObjectKind<'_> {
    pub const OPAQUE: ObjectKind<'static> = ObjectKind {
        secret_type: SecretType::Opaque,
        algorithm: None,
        bit_length: None,
    };
}

/// What a backend asks the catalog to keep for one secret: a ciphertext, a
/// remote object id, or whatever the backend needs to find the material again.
/// Untrusted when read back: the backend authenticates it.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredSecret {
    pub bytes: Vec<u8>,
    /// The project KEK that encrypted `bytes`, for crypto backends. The
    /// catalog keeps it as a reference to that KEK's row, so a secret can
    /// never be written under a KEK the catalog does not hold.
    pub kek_id: Option<String>,
}

impl StoredSecret {
    /// Something kept without a KEK (a remote id, or nothing at all).
    pub fn plain(bytes: Vec<u8>) -> Self {
        StoredSecret {
            bytes,
            kek_id: None,
        }
    }
}

impl Debug for StoredSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "StoredSecret({} bytes, kek {:?})",
            self.bytes.len(),
            self.kek_id
        )
    }
}

/// A generated key pair as the backend keeps it.
#[derive(Debug)]
pub struct StoredKeyPair {
    pub private_key: StoredSecret,
    pub public_key: StoredSecret,
    /// The passphrase protecting the private key, if one was asked for.
    pub passphrase: Option<StoredSecret>,
}

/// What a backend found when asked to verify its keys against the catalog.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KekReport {
    /// Project KEKs that the configured master KEK opened.
    pub project_keks: usize,
    /// Of those, how many are wrapped by a retired master KEK (need `kek rotate`).
    pub wrapped_by_retired: usize,
}

/// One key-manager backend. Object safe; held as `Arc<dyn KeyManager>`.
pub trait KeyManager: Send + Sync + Debug {
    /// The stable id this backend was configured under.
    fn id(&self) -> &BackendId;

    /// The backend kind, e.g. `simple_crypto`.
    fn kind(&self) -> &'static str;

    /// Protects `material` for the secret `scope`.
    fn store(&self, scope: Scope<'_>, material: &SecretBytes) -> Result<StoredSecret>;

    /// Protects the same `material` for each of `scopes`, for bulk work
    /// (the fixed-key migration). The default stores them one by one; a
    /// backend with per-call setup worth sharing (SimpleCrypto's catalog read
    /// of the project KEK) does that once per project.
    fn store_each(
        &self,
        scopes: &[Scope<'_>],
        material: &SecretBytes,
    ) -> Result<Vec<StoredSecret>> {
        scopes.iter().map(|s| self.store(*s, material)).collect()
    }

    /// Recovers the material stored for `scope`. Anything that does not
    /// authenticate is `Integrity`.
    fn retrieve(&self, scope: Scope<'_>, stored: &StoredSecret) -> Result<SecretBytes>;

    /// Destroys the material. Crypto backends hold nothing outside the catalog
    /// row, which the store deletes, so for them this only has to succeed.
    fn delete(&self, scope: Scope<'_>, stored: &StoredSecret) -> Result<()>;

    /// Generates a symmetric key for `scope`. The default makes the key from
    /// the OS CSPRNG and stores it; an HSM or KMIP backend overrides this to
    /// generate on the device.
    fn generate_symmetric(&self, scope: Scope<'_>, spec: &KeySpec) -> Result<StoredSecret> {
        let key = keygen::generate_symmetric(spec.bit_length)?;
        self.store(scope, &key)
    }

    /// Generates an RSA key pair: private key PEM PKCS#8 (encrypted when a
    /// passphrase is given) and public key PEM SubjectPublicKeyInfo, as
    /// Barbican's asymmetric orders make them.
    fn generate_key_pair(
        &self,
        private: Scope<'_>,
        public: Scope<'_>,
        passphrase: Option<(Scope<'_>, &SecretBytes)>,
        spec: &KeySpec,
    ) -> Result<StoredKeyPair> {
        if !spec.algorithm.eq_ignore_ascii_case("rsa") {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "backend {} generates only RSA key pairs, not {}",
                    self.id(),
                    spec.algorithm
                ),
            ));
        }
        let pair = keygen::generate_rsa(spec.bit_length, passphrase.map(|(_, p)| p))?;
        Ok(StoredKeyPair {
            private_key: self.store(private, pair.private_key_pem())?,
            public_key: self.store(
                public,
                &SecretBytes::copy_from(pair.public_key_pem().as_bytes()),
            )?,
            passphrase: match passphrase {
                Some((scope, p)) => Some(self.store(scope, p)?),
                None => None,
            },
        })
    }

    /// Checks that the configured keys open what the catalog holds for this
    /// backend. Called when a store is opened.
    fn verify(&self) -> Result<KekReport>;

    /// True for the legacy fixed-key backend, which serves its one key under
    /// the all-zeros id instead of keeping secrets.
    fn serves_fixed_id(&self) -> bool {
        false
    }

    /// Rewraps this backend's project KEKs under its active master KEK.
    /// Secrets are not re-encrypted.
    fn rewrap_project_keks(&self) -> Result<usize> {
        Err(Error::new(
            ErrorKind::Unsupported,
            format!("backend {} has no master KEK to rotate", self.id()),
        ))
    }

    /// Tells the catalog this instance is running and which keys it holds
    /// (SimpleCrypto's master-KEK rollout). The store calls it when it
    /// opens and then every [`HEARTBEAT_EVERY`]; backends without a
    /// rollout do nothing.
    fn announce(&self) -> Result<()> {
        Ok(())
    }

    /// Removes what [`KeyManager::announce`] recorded (the store is closing).
    fn withdraw(&self) {}

    /// Replaces the master KEKs this running backend holds (a reloaded
    /// config), keeping the old ones when the new ones do not open what the
    /// catalog holds.
    fn reload_master_keys(
        &self,
        active: &MasterKek,
        staged: &[MasterKek],
        retired: &[MasterKek],
    ) -> Result<()> {
        let _ = (active, staged, retired);
        Err(Error::new(
            ErrorKind::Unsupported,
            format!("backend {} has no master KEKs in the config", self.id()),
        ))
    }

    /// Where the master-KEK rollout stands: the catalog's active key and
    /// each live instance's keys. `None` for backends without one.
    fn master_kek_status(&self) -> Result<Option<MasterKekStatus>> {
        Ok(None)
    }

    /// Whether this instance's retired master KEKs may be dropped from its
    /// config: `Conflict` while a project KEK is wrapped by any key but the
    /// rollout's active one, or this or another live instance still has an
    /// older key as its configured active one.
    fn check_prune(&self) -> Result<()> {
        Err(Error::new(
            ErrorKind::Unsupported,
            format!("backend {} has no master KEKs to prune", self.id()),
        ))
    }
}

/// A project KEK as the catalog keeps it: wrapped, with the fingerprint of the
/// master KEK that wrapped it.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKek {
    pub kek_id: String,
    pub master_fingerprint: String,
    pub wrapped: Vec<u8>,
}

impl Debug for WrappedKek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WrappedKek")
            .field("kek_id", &self.kek_id)
            .field("master_fingerprint", &self.master_fingerprint)
            .field("wrapped", &format_args!("{} bytes", self.wrapped.len()))
            .finish()
    }
}

/// One running instance of a SimpleCrypto backend, as the catalog records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KekInstance {
    /// Random, one per backend object (a store opened twice in one process
    /// is two instances).
    pub instance_id: String,
    pub backend: BackendId,
    pub host: String,
    pub pid: u32,
    /// Fingerprints of every master KEK it holds: active, staged, retired.
    pub known: Vec<String>,
    /// The fingerprint of the master KEK its config makes active.
    pub configured_active: String,
    /// When it last said so (catalog clock of the instance's host).
    pub heartbeat: Timestamp,
}

/// What [`KekStore::insert_project_kek_if_active`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KekInsert {
    /// The project's KEK as stored (this one, or one stored first).
    Stored(WrappedKek),
    /// Nothing: the rollout's active master KEK is now this one; wrap again.
    ActiveChanged(String),
}

/// Rewraps one project KEK under the new active master KEK (rotation).
pub type RewrapFn<'a> = dyn FnMut(&ProjectId, &WrappedKek) -> Result<WrappedKek> + 'a;

/// Where crypto backends keep wrapped project KEKs (implemented by catalogs).
///
/// The master-KEK rollout calls (`rollout_active` and after) default to a
/// store without one: no recorded active key, no instances.
pub trait KekStore: Send + Sync + Debug {
    /// The project's KEK for `backend`, if one was made.
    fn project_kek(&self, backend: &BackendId, project: &ProjectId) -> Result<Option<WrappedKek>>;

    /// Inserts `kek` unless the project already has one; returns the one that
    /// is stored, so two instances racing to make the first KEK agree on it.
    fn insert_project_kek(
        &self,
        backend: &BackendId,
        project: &ProjectId,
        kek: WrappedKek,
    ) -> Result<WrappedKek>;

    /// Every project KEK of `backend`.
    fn project_keks(&self, backend: &BackendId) -> Result<Vec<(ProjectId, WrappedKek)>>;

    /// Replaces wrapped KEKs in one transaction (master-KEK rotation). Each
    /// entry names the KEK id it expects to replace; a mismatch aborts it all.
    fn replace_project_keks(
        &self,
        backend: &BackendId,
        keks: Vec<(ProjectId, WrappedKek)>,
    ) -> Result<()>;

    /// The master-KEK fingerprint new project KEKs of `backend` must be
    /// wrapped under, if the catalog records one.
    fn rollout_active(&self, backend: &BackendId) -> Result<Option<String>> {
        let _ = backend;
        Ok(None)
    }

    /// Records `fingerprint` as that key unless one is recorded; returns
    /// the one recorded.
    fn propose_rollout_active(&self, backend: &BackendId, fingerprint: &str) -> Result<String> {
        let _ = backend;
        Ok(fingerprint.to_owned())
    }

    /// [`KekStore::insert_project_kek`], done only while
    /// `kek.master_fingerprint` is the rollout's active key (checked in the
    /// insert's transaction).
    fn insert_project_kek_if_active(
        &self,
        backend: &BackendId,
        project: &ProjectId,
        kek: WrappedKek,
    ) -> Result<KekInsert> {
        Ok(KekInsert::Stored(
            self.insert_project_kek(backend, project, kek)?,
        ))
    }

    /// In one transaction: refuses (`Conflict`) while an instance that
    /// heartbeat since `live_since` does not know `new_active`; makes it
    /// the rollout's active key; rewraps every project KEK of `backend`
    /// not wrapped by it with `rewrap`. How many project KEKs there are.
    fn rotate_project_keks(
        &self,
        backend: &BackendId,
        new_active: &str,
        live_since: Timestamp,
        rewrap: &mut RewrapFn<'_>,
    ) -> Result<usize> {
        let _ = live_since;
        let all = self.project_keks(backend)?;
        let n = all.len();
        let mut new = Vec::with_capacity(n);
        for (project, old) in all {
            if old.master_fingerprint != new_active {
                let k = rewrap(&project, &old)?;
                new.push((project, k));
            }
        }
        self.replace_project_keks(backend, new)?;
        Ok(n)
    }

    /// How many project KEKs of `backend` another master KEK than
    /// `fingerprint` wraps.
    fn project_keks_not_under(&self, backend: &BackendId, fingerprint: &str) -> Result<u64> {
        Ok(self
            .project_keks(backend)?
            .iter()
            .filter(|(_, k)| k.master_fingerprint != fingerprint)
            .count() as u64)
    }

    /// Records or refreshes `instance`; forgets instances silent since
    /// `forget_before`.
    fn heartbeat_instance(&self, instance: &KekInstance, forget_before: Timestamp) -> Result<()> {
        let _ = (instance, forget_before);
        Ok(())
    }

    fn remove_instance(&self, instance_id: &str) -> Result<()> {
        let _ = instance_id;
        Ok(())
    }

    /// Instances of `backend` that heartbeat since `since`.
    fn live_instances(&self, backend: &BackendId, since: Timestamp) -> Result<Vec<KekInstance>> {
        let _ = (backend, since);
        Ok(Vec::new())
    }
}
