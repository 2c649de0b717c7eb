//! Pkcs11: the master KEK and an HMAC key live in an HSM token by label;
//! each project gets a KEK generated in the token, wrapped by the master KEK
//! and kept in the catalog with an HMAC over the wrapped bytes; secrets are
//! encrypted and decrypted inside the token under the project KEK.
//!
//! Mirrors `simple_crypto`: one KEK per project made once across instances
//! (`KekStore::insert_project_kek`), a cache of opened KEKs, `verify` at
//! startup, `rewrap_project_keks` for master-KEK rotation. What differs is
//! where keys live: unwrapped project KEKs are token handles (bounded in
//! number and age), never bytes in our memory.
//!
//! Formats (all integers big-endian):
//! - wrapped project KEK: `0x01 || wrap mechanism (1) || length (2) ||
//!   wrapped key || HMAC-SHA256 (32)`; the HMAC covers the backend, project,
//!   KEK id and master-KEK fingerprint as well.
//! - secret, GCM: `0x01 || 0x01 || IV (12) || ciphertext || tag (16)`, the
//!   header and the binding (backend, project, secret id, KEK id) as AAD.
//! - secret, CBC+HMAC: `0x01 || 0x02 || IV (16) || ciphertext || HMAC (32)`,
//!   the HMAC over the binding, header, IV and ciphertext.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki::types::Ulong;

use crate::backend::{KekReport, KekStore, KeyManager, Scope, StoredSecret, WrappedKek};
use crate::error::{Error, ErrorKind, Result};
use crate::keygen;
use crate::model::{BackendId, KeySpec, ProjectId};
use crate::secret::SecretBytes;

mod config;
pub(crate) mod record;
mod session;
mod token;

pub use config::{
    DEFAULT_HMAC_LABEL, DEFAULT_MKEK_LABEL, EncryptionMechanism, Pkcs11Config, TokenSelector,
    WrapMechanism,
};
pub use session::{PoolStats, shared_context};

use record::{KekRecord, SecretRecord};
use session::{Token, p11_error};
use token::{
    Use, binding, find_key, fingerprint, integrity_unless_lost, lock, probe_mechanisms,
    project_kek_template, rng_self_test, token_key_template, token_name, value_len, wrap_mechanism,
};

/// Project KEKs are AES-256 keys.
const PROJECT_KEK_LEN: usize = 32;
const HMAC_KEY_LEN: usize = 32;
const HMAC_LEN: usize = 32;
const VERSION_1: u8 = 1;
const GCM_IV_LEN: usize = 12;
/// A `CK_ULONG`, which is 32 bits wide on 32-bit targets.
const GCM_TAG_BITS: Ulong = Ulong::new(128);
const CBC_IV_LEN: usize = 16;

/// The PKCS#11 backend.
pub struct Pkcs11 {
    id: BackendId,
    config: Pkcs11Config,
    token: Token,
    keks: Arc<dyn KekStore>,
    masters: Mutex<Option<Arc<MasterKeys>>>,
    cache: Mutex<HashMap<ProjectId, Arc<OpenKek>>>,
    unwraps: AtomicU64,
}

/// What the backend has done, for tests, benchmarks and operators.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pkcs11Stats {
    pub pool: PoolStats,
    /// Project KEKs held open as token handles now.
    pub cached_project_keks: usize,
    /// C_UnwrapKey calls for project KEKs since start.
    pub project_kek_unwraps: u64,
}

/// What `keywarden hsm init` found or made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitReport {
    pub token: String,
    pub mkek_label: String,
    pub mkek_created: bool,
    pub hmac_label: String,
    pub hmac_created: bool,
}

impl Pkcs11 {
    /// Connects to the token, logs in, checks that it offers every mechanism
    /// the configuration needs, and finds the master KEK and HMAC key.
    /// Never creates keys: a token without them is refused with a pointer to
    /// `keywarden hsm init`.
    pub fn connect(id: BackendId, config: &Pkcs11Config, keks: Arc<dyn KekStore>) -> Result<Self> {
        config.check()?;
        let token = Token::open(
            &config.module,
            config.token.clone(),
            config.pin.clone(),
            config.session_pool_size,
        )?;
        probe_mechanisms(&token, config)?;
        token.with_session(|s, _| rng_self_test(s))?;
        let backend = Pkcs11 {
            id,
            config: config.clone(),
            token,
            keks,
            masters: Mutex::new(None),
            cache: Mutex::new(HashMap::new()),
            unwraps: AtomicU64::new(0),
        };
        backend.token.retrying(|| backend.master_keys())?;
        Ok(backend)
    }

    /// Creates the master KEK and the HMAC key in the token unless they are
    /// there (`keywarden hsm init`). Both are token objects: private,
    /// sensitive, never extractable; the master KEK may only wrap and unwrap,
    /// the HMAC key only sign and verify.
    pub fn init_token(config: &Pkcs11Config) -> Result<InitReport> {
        config.check()?;
        let token = Token::open(&config.module, config.token.clone(), config.pin.clone(), 1)?;
        let (mkek_created, hmac_created) = token.with_session(|s, _| {
            let mkek = match find_key(s, &config.mkek_label)? {
                Some(_) => false,
                None => {
                    let template = token_key_template(
                        s,
                        &config.mkek_label,
                        KeyType::AES,
                        config.mkek_length,
                        Use::WrapUnwrap,
                    )?;
                    s.generate_key(&Mechanism::AesKeyGen, &template)
                        .map_err(p11_error)?;
                    true
                }
            };
            let hmac = match find_key(s, &config.hmac_label)? {
                Some(_) => false,
                None => {
                    let template = token_key_template(
                        s,
                        &config.hmac_label,
                        KeyType::GENERIC_SECRET,
                        HMAC_KEY_LEN,
                        Use::SignVerify,
                    )?;
                    s.generate_key(&Mechanism::GenericSecretKeyGen, &template)
                        .map_err(p11_error)?;
                    true
                }
            };
            Ok((mkek, hmac))
        })?;
        for (label, created) in [
            (&config.mkek_label, mkek_created),
            (&config.hmac_label, hmac_created),
        ] {
            if created {
                tracing::info!(label = %label, "created key in the PKCS#11 token");
            }
        }
        Ok(InitReport {
            token: token_name(&config.token),
            mkek_label: config.mkek_label.clone(),
            mkek_created,
            hmac_label: config.hmac_label.clone(),
            hmac_created,
        })
    }

    /// The configuration this backend runs with.
    pub fn config(&self) -> &Pkcs11Config {
        &self.config
    }

    /// The active master KEK's fingerprint (its label and CKA_ID).
    pub fn master_fingerprint(&self) -> Result<String> {
        Ok(self
            .token
            .retrying(|| self.master_keys())?
            .active
            .fingerprint
            .clone())
    }

    /// Checks that the token answers (C_GetSessionInfo on a pooled session),
    /// recovering a lost connection once: a readiness probe.
    pub fn ping(&self) -> Result<()> {
        self.token.retrying(|| {
            self.token.with_session(|s, _| {
                s.get_session_info().map_err(p11_error)?;
                Ok(())
            })
        })
    }

    pub fn stats(&self) -> Pkcs11Stats {
        Pkcs11Stats {
            pool: self.token.stats(),
            cached_project_keks: lock(&self.cache).len(),
            project_kek_unwraps: self.unwraps.load(Ordering::Relaxed),
        }
    }

    // ---- master keys ----

    /// The master KEKs and HMAC key as handles of the current epoch.
    fn master_keys(&self) -> Result<Arc<MasterKeys>> {
        let epoch = self.token.epoch();
        if let Some(m) = lock(&self.masters).as_ref()
            && m.epoch == epoch
        {
            return Ok(m.clone());
        }
        let token = token_name(&self.config.token);
        let keys = self.token.with_session(|s, epoch| {
            let missing = |label: &str, what: &str| {
                Error::new(
                    ErrorKind::Config,
                    format!(
                        "{what} {label:?} is not on PKCS#11 token {token}; create it with `keywarden hsm init` (keywarden never creates it on its own)"
                    ),
                )
            };
            let master = |label: &str, what: &str| -> Result<MasterKey> {
                let key = find_key(s, label)?.ok_or_else(|| missing(label, what))?;
                if key.key_type != Some(KeyType::AES) || !key.sensitive || key.extractable {
                    return Err(Error::new(
                        ErrorKind::Config,
                        format!(
                            "{what} {label:?} on token {token} must be an AES key with CKA_SENSITIVE set and CKA_EXTRACTABLE clear"
                        ),
                    ));
                }
                Ok(MasterKey {
                    fingerprint: fingerprint(label, &key.id),
                    handle: key.handle,
                })
            };
            let active = master(&self.config.mkek_label, "master KEK")?;
            let retired = self
                .config
                .retired_mkek_labels
                .iter()
                .map(|l| master(l, "retired master KEK"))
                .collect::<Result<Vec<_>>>()?;
            let hmac = find_key(s, &self.config.hmac_label)?
                .ok_or_else(|| missing(&self.config.hmac_label, "HMAC key"))?;
            if !hmac.sensitive || hmac.extractable {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!(
                        "HMAC key {:?} on token {token} must have CKA_SENSITIVE set and CKA_EXTRACTABLE clear",
                        self.config.hmac_label
                    ),
                ));
            }
            Ok(MasterKeys {
                epoch,
                active,
                retired,
                hmac: hmac.handle,
            })
        })?;
        let keys = Arc::new(keys);
        *lock(&self.masters) = Some(keys.clone());
        Ok(keys)
    }

    // ---- project KEKs ----

    fn kek_mac_input(
        &self,
        project: &ProjectId,
        kek_id: &str,
        master_fingerprint: &str,
        body: &[u8],
    ) -> Vec<u8> {
        let mut input = binding(&[
            b"keywarden pkcs11 project kek",
            self.id.as_str().as_bytes(),
            project.as_str().as_bytes(),
            kek_id.as_bytes(),
            master_fingerprint.as_bytes(),
        ]);
        input.extend_from_slice(body);
        input
    }

    /// A new project KEK made in the token, wrapped under the active master
    /// KEK; returns its handle (owned by the holder session) too.
    fn make_kek(&self, project: &ProjectId) -> Result<(WrappedKek, ObjectHandle, u64)> {
        let masters = self.master_keys()?;
        let kek_id = uuid::Uuid::new_v4().hyphenated().to_string();
        self.token.with_holder(|s, epoch| {
            let handle = s
                .generate_key(
                    &Mechanism::AesKeyGen,
                    &project_kek_template(Some(PROJECT_KEK_LEN))?,
                )
                .map_err(p11_error)?;
            let wrapped = self
                .wrap_kek(s, &masters, project, &kek_id, handle)
                .inspect_err(|_| {
                    let _ = s.destroy_object(handle);
                })?;
            Ok((wrapped, handle, epoch))
        })
    }

    /// Wraps `handle` under the active master KEK with the configured
    /// mechanism, and authenticates the result.
    fn wrap_kek(
        &self,
        s: &Session,
        masters: &MasterKeys,
        project: &ProjectId,
        kek_id: &str,
        handle: ObjectHandle,
    ) -> Result<WrappedKek> {
        let mechanism = self.config.wrap_mechanism;
        let wrapped = s
            .wrap_key(&wrap_mechanism(mechanism), masters.active.handle, handle)
            .map_err(p11_error)?;
        let mut body = KekRecord::authenticated_part(mechanism, &wrapped).ok_or_else(|| {
            Error::new(
                ErrorKind::Unavailable,
                "the token returned an oversized wrapped key",
            )
        })?;
        let input = self.kek_mac_input(project, kek_id, &masters.active.fingerprint, &body);
        let mac = s
            .sign(&Mechanism::Sha256Hmac, masters.hmac, &input)
            .map_err(p11_error)?;
        body.extend_from_slice(&mac);
        Ok(WrappedKek {
            kek_id: kek_id.to_owned(),
            master_fingerprint: masters.active.fingerprint.clone(),
            wrapped: body,
        })
    }

    /// Checks a wrapped KEK's HMAC and unwraps it in the holder session.
    /// Anything that does not authenticate is `Integrity`.
    fn unwrap_kek(
        &self,
        s: &Session,
        masters: &MasterKeys,
        project: &ProjectId,
        wrapped: &WrappedKek,
    ) -> Result<ObjectHandle> {
        let master = masters.by_fingerprint(&wrapped.master_fingerprint).ok_or_else(|| {
            Error::new(
                ErrorKind::Integrity,
                format!(
                    "project KEK of {project} was wrapped by master KEK {}, which is not configured",
                    wrapped.master_fingerprint
                ),
            )
        })?;
        let record = KekRecord::parse(&wrapped.wrapped)?;
        let input = self.kek_mac_input(
            project,
            &wrapped.kek_id,
            &wrapped.master_fingerprint,
            record.authenticated,
        );
        s.verify(&Mechanism::Sha256Hmac, masters.hmac, &input, record.mac)
            .map_err(integrity_unless_lost)?;
        let handle = s
            .unwrap_key(
                &wrap_mechanism(record.mechanism),
                master.handle,
                record.wrapped_key,
                &project_kek_template(None)?,
            )
            .map_err(integrity_unless_lost)?;
        self.unwraps.fetch_add(1, Ordering::Relaxed);
        Ok(handle)
    }

    fn open_kek(&self, project: &ProjectId, wrapped: &WrappedKek) -> Result<OpenKek> {
        let masters = self.master_keys()?;
        self.token.with_holder(|s, epoch| {
            let handle = self.unwrap_kek(s, &masters, project, wrapped)?;
            Ok(self.open_entry(wrapped, handle, epoch))
        })
    }

    fn open_entry(&self, wrapped: &WrappedKek, handle: ObjectHandle, epoch: u64) -> OpenKek {
        OpenKek {
            kek_id: wrapped.kek_id.clone(),
            wrapped: wrapped.wrapped.clone(),
            handle,
            epoch,
            opened: Instant::now(),
            graveyard: self.token.graveyard(),
        }
    }

    fn cached(&self, project: &ProjectId) -> Option<Arc<OpenKek>> {
        let epoch = self.token.epoch();
        let mut cache = lock(&self.cache);
        let fresh = cache
            .get(project)
            .is_some_and(|k| k.epoch == epoch && k.opened.elapsed() < self.config.pkek_cache_ttl);
        if fresh {
            cache.get(project).cloned()
        } else {
            // Expired or of a dead epoch: its handle goes (when unused).
            cache.remove(project);
            None
        }
    }

    /// Caches `key`, evicting the longest-held entry when full (Barbican's
    /// insertion-order eviction). An evicted handle is destroyed once no
    /// operation uses it any more.
    fn remember(&self, project: &ProjectId, key: OpenKek) -> Arc<OpenKek> {
        let key = Arc::new(key);
        let mut cache = lock(&self.cache);
        if !cache.contains_key(project) && cache.len() >= self.config.pkek_cache_limit {
            let oldest = cache
                .iter()
                .min_by_key(|(_, k)| k.opened)
                .map(|(p, _)| p.clone());
            if let Some(p) = oldest {
                cache.remove(&p);
            }
        }
        cache.insert(project.clone(), key.clone());
        key
    }

    /// The project's current KEK as the catalog holds it, made (once, across
    /// instances) on first use; read from the catalog on every store, like
    /// SimpleCrypto, and unwrapped only when it changed.
    fn current_key(&self, project: &ProjectId) -> Result<Arc<OpenKek>> {
        let wrapped = match self.keks.project_kek(&self.id, project)? {
            Some(w) => w,
            None => {
                let (fresh, handle, epoch) = self.make_kek(project)?;
                let fresh_id = fresh.kek_id.clone();
                let stored = self
                    .keks
                    .insert_project_kek(&self.id, project, fresh)
                    .inspect_err(|_| self.token.destroy_later(handle, epoch))?;
                if stored.kek_id == fresh_id {
                    tracing::info!(backend = %self.id, project = %project, kek_id = %stored.kek_id, "project KEK ready");
                    let entry = self.open_entry(&stored, handle, epoch);
                    return Ok(self.remember(project, entry));
                }
                // Another instance made the project's KEK first: use theirs.
                self.token.destroy_later(handle, epoch);
                stored
            }
        };
        if let Some(k) = self.cached(project)
            && k.kek_id == wrapped.kek_id
            && k.wrapped == wrapped.wrapped
        {
            return Ok(k);
        }
        let key = self.open_kek(project, &wrapped)?;
        Ok(self.remember(project, key))
    }

    /// The KEK `kek_id` of `project`, from the cache when it is there.
    fn key_for_read(&self, project: &ProjectId, kek_id: &str) -> Result<Arc<OpenKek>> {
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
        let key = self.open_kek(project, &wrapped)?;
        Ok(self.remember(project, key))
    }

    // ---- secrets ----

    fn secret_binding(&self, scope: &Scope<'_>, kek_id: &str, header: &[u8]) -> Vec<u8> {
        binding(&[
            b"keywarden pkcs11 secret",
            self.id.as_str().as_bytes(),
            scope.project_id.as_str().as_bytes(),
            scope.secret_id.as_uuid().as_bytes(),
            kek_id.as_bytes(),
            header,
        ])
    }

    fn store_once(&self, scope: Scope<'_>, material: &SecretBytes) -> Result<StoredSecret> {
        let key = self.current_key(scope.project_id)?;
        let mechanism = self.config.encryption_mechanism;
        let header = [VERSION_1, mechanism.code()];
        let aad = self.secret_binding(&scope, &key.kek_id, &header);
        let mut out = header.to_vec();
        match mechanism {
            EncryptionMechanism::AesGcm => self.token.with_session(|s, _| {
                let mut iv = [0u8; GCM_IV_LEN];
                s.generate_random_slice(&mut iv).map_err(p11_error)?;
                out.extend_from_slice(&iv);
                let params = GcmParams::new(&mut iv, &aad, GCM_TAG_BITS).map_err(p11_error)?;
                let ct = s
                    .encrypt(
                        &Mechanism::AesGcm(params),
                        key.handle,
                        material.expose_secret(),
                    )
                    .map_err(p11_error)?;
                out.extend_from_slice(&ct);
                Ok(())
            })?,
            EncryptionMechanism::AesCbcPadHmac => {
                let masters = self.master_keys()?;
                self.token.with_session(|s, _| {
                    let mut iv = [0u8; CBC_IV_LEN];
                    s.generate_random_slice(&mut iv).map_err(p11_error)?;
                    out.extend_from_slice(&iv);
                    let ct = s
                        .encrypt(
                            &Mechanism::AesCbcPad(iv),
                            key.handle,
                            material.expose_secret(),
                        )
                        .map_err(p11_error)?;
                    out.extend_from_slice(&ct);
                    let mut input = aad;
                    input.extend_from_slice(&out);
                    let mac = s
                        .sign(&Mechanism::Sha256Hmac, masters.hmac, &input)
                        .map_err(p11_error)?;
                    out.extend_from_slice(&mac);
                    Ok(())
                })?
            }
        }
        Ok(StoredSecret {
            bytes: out,
            kek_id: Some(key.kek_id.clone()),
        })
    }

    fn retrieve_once(&self, scope: Scope<'_>, stored: &StoredSecret) -> Result<SecretBytes> {
        let kek_id = stored.kek_id.as_deref().ok_or_else(Error::integrity)?;
        let record = SecretRecord::parse(&stored.bytes)?;
        let key = self.key_for_read(scope.project_id, kek_id)?;
        let aad = self.secret_binding(&scope, &key.kek_id, record.header());
        let plain = match record {
            SecretRecord::Gcm { mut iv, sealed, .. } => self.token.with_session(|s, _| {
                let params = GcmParams::new(&mut iv, &aad, GCM_TAG_BITS).map_err(p11_error)?;
                s.decrypt(&Mechanism::AesGcm(params), key.handle, sealed)
                    .map_err(integrity_unless_lost)
            })?,
            SecretRecord::CbcHmac {
                iv,
                authenticated,
                ciphertext,
                mac,
                ..
            } => {
                let masters = self.master_keys()?;
                let mut input = aad;
                input.extend_from_slice(authenticated);
                self.token.with_session(|s, _| {
                    s.verify(&Mechanism::Sha256Hmac, masters.hmac, &input, mac)
                        .map_err(integrity_unless_lost)?;
                    s.decrypt(&Mechanism::AesCbcPad(iv), key.handle, ciphertext)
                        .map_err(integrity_unless_lost)
                })?
            }
        };
        Ok(SecretBytes::new(plain))
    }

    /// Key bytes made by the token's key generator: a session object that
    /// lives only long enough to be read and encrypted under the project KEK.
    fn generate_in_token(&self, len: usize) -> Result<SecretBytes> {
        self.token.with_session(|s, _| {
            let handle = s
                .generate_key(
                    &Mechanism::GenericSecretKeyGen,
                    &[
                        Attribute::Class(ObjectClass::SECRET_KEY),
                        Attribute::KeyType(KeyType::GENERIC_SECRET),
                        value_len(len)?,
                        Attribute::Token(false),
                        Attribute::Private(true),
                        Attribute::Sensitive(false),
                        Attribute::Extractable(true),
                    ],
                )
                .map_err(p11_error)?;
            let read = s.get_attributes(handle, &[AttributeType::Value]);
            let destroyed = s.destroy_object(handle);
            let mut attributes = read.map_err(p11_error)?;
            destroyed.map_err(p11_error)?;
            match attributes.pop() {
                Some(Attribute::Value(bytes)) if bytes.len() == len => Ok(SecretBytes::new(bytes)),
                _ => Err(Error::new(
                    ErrorKind::Unavailable,
                    "the token did not return the generated key's value",
                )),
            }
        })
    }
}

impl KeyManager for Pkcs11 {
    fn id(&self) -> &BackendId {
        &self.id
    }

    fn kind(&self) -> &'static str {
        "pkcs11"
    }

    fn store(&self, scope: Scope<'_>, material: &SecretBytes) -> Result<StoredSecret> {
        self.token.retrying(|| self.store_once(scope, material))
    }

    fn retrieve(&self, scope: Scope<'_>, stored: &StoredSecret) -> Result<SecretBytes> {
        self.token.retrying(|| self.retrieve_once(scope, stored))
    }

    fn delete(&self, _scope: Scope<'_>, _stored: &StoredSecret) -> Result<()> {
        // The ciphertext lives only in the catalog row, which the store deletes.
        Ok(())
    }

    /// The key comes from the token's generator (CKM_GENERIC_SECRET_KEY_GEN)
    /// and is encrypted in the token; it is a secret whose payload callers
    /// fetch, so it cannot stay a non-extractable token object.
    fn generate_symmetric(&self, scope: Scope<'_>, spec: &KeySpec) -> Result<StoredSecret> {
        let len = keygen::symmetric_key_len(spec.bit_length)?;
        self.token.retrying(|| {
            let key = self.generate_in_token(len)?;
            self.store_once(scope, &key)
        })
    }

    fn verify(&self) -> Result<KekReport> {
        let masters = self.token.retrying(|| self.master_keys())?;
        let all = self.keks.project_keks(&self.id)?;
        let mut report = KekReport::default();
        let mut failed: Vec<&ProjectId> = Vec::new();
        for (project, wrapped) in &all {
            match self.token.retrying(|| self.open_kek(project, wrapped)) {
                Ok(key) => {
                    report.project_keks += 1;
                    if wrapped.master_fingerprint != masters.active.fingerprint {
                        report.wrapped_by_retired += 1;
                    }
                    if lock(&self.cache).len() < self.config.pkek_cache_limit {
                        self.remember(project, key);
                    }
                }
                Err(e) if e.kind() == ErrorKind::Integrity => failed.push(project),
                Err(e) => return Err(e),
            }
        }
        if let Some(first) = failed.first() {
            return Err(Error::new(
                ErrorKind::Integrity,
                format!(
                    "the token's master KEK {:?} and HMAC key {:?} do not open {} of {} project KEKs of backend {} (first: project {first}); check mkek_label, retired_mkek_labels and hmac_label",
                    self.config.mkek_label,
                    self.config.hmac_label,
                    failed.len(),
                    all.len(),
                    self.id
                ),
            ));
        }
        Ok(report)
    }

    /// Unwraps each project KEK with the master KEK that wrapped it and wraps
    /// it under the active one, inside the token; secrets are not touched.
    fn rewrap_project_keks(&self) -> Result<usize> {
        let all = self.keks.project_keks(&self.id)?;
        let mut rewrapped = Vec::with_capacity(all.len());
        for (project, wrapped) in all {
            let new = self.token.retrying(|| {
                let masters = self.master_keys()?;
                self.token.with_holder(|s, _| {
                    let handle = self.unwrap_kek(s, &masters, &project, &wrapped)?;
                    let new = self.wrap_kek(s, &masters, &project, &wrapped.kek_id, handle);
                    let _ = s.destroy_object(handle);
                    new
                })
            })?;
            rewrapped.push((project, new));
        }
        let n = rewrapped.len();
        self.keks.replace_project_keks(&self.id, rewrapped)?;
        lock(&self.cache).clear();
        Ok(n)
    }
}

impl fmt::Debug for Pkcs11 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11")
            .field("id", &self.id)
            .field("token", &self.token)
            .field("mkek_label", &self.config.mkek_label)
            .field("retired_mkek_labels", &self.config.retired_mkek_labels)
            .field("hmac_label", &self.config.hmac_label)
            .field("wrap_mechanism", &self.config.wrap_mechanism)
            .field("encryption_mechanism", &self.config.encryption_mechanism)
            .finish_non_exhaustive()
    }
}

/// Token handles of one epoch.
struct MasterKeys {
    epoch: u64,
    active: MasterKey,
    retired: Vec<MasterKey>,
    hmac: ObjectHandle,
}

struct MasterKey {
    fingerprint: String,
    handle: ObjectHandle,
}

impl MasterKeys {
    fn by_fingerprint(&self, fingerprint: &str) -> Option<&MasterKey> {
        std::iter::once(&self.active)
            .chain(&self.retired)
            .find(|m| m.fingerprint == fingerprint)
    }
}

/// An unwrapped project KEK: a token handle of one epoch. Its handle is
/// destroyed (by the holder session) once the last user drops it.
struct OpenKek {
    kek_id: String,
    /// The wrapped form it was opened from, to notice a changed catalog row.
    wrapped: Vec<u8>,
    handle: ObjectHandle,
    epoch: u64,
    opened: Instant,
    graveyard: Arc<Mutex<Vec<(ObjectHandle, u64)>>>,
}

impl Drop for OpenKek {
    fn drop(&mut self) {
        lock(&self.graveyard).push((self.handle, self.epoch));
    }
}
