//! Object-storage encryption at rest, as swift's `kms_keymaster`,
//! `encrypter` and `decrypter` middlewares do it (openstack/swift,
//! `swift/common/middleware/crypto/`), with the root secrets held in a
//! [`SecretStore`].
//!
//! * **Root secrets.** Each is an AES key of at least 256 bits, fetched from
//!   the store by its secret id when the key master is loaded (swift fetches
//!   them once at proxy start-up). Several may be configured, each under a
//!   root secret id (swift's `key_id_<secret_id>` options; the plain `key_id`
//!   has no id); one is active for new writes (`active_root_secret_id`).
//! * **Per-path keys.** `HMAC-SHA256(root secret, path)`, 32 bytes, where the
//!   path is `/account/container` for the container key and
//!   `/account/container/object` for the object key, UTF-8 encoded. A swift
//!   cluster holding the same root secret derives the same keys.
//! * **Bodies.** A random 32-byte body key encrypts the body with
//!   AES-256-CTR under a random 16-byte IV that is the whole initial counter
//!   block. The body key is wrapped with AES-256-CTR under the object key and
//!   its own fresh IV (swift's `wrap_key`: CTR, not RFC 3394). The IVs, the
//!   wrapped key and the `key_id` (`{v, path, secret_id}`) travel beside the
//!   object as swift's `X-Object-Sysmeta-Crypto-Body-Meta` value
//!   ([`BodyCryptoMeta::to_header`]).
//! * **Rotation.** Reading uses the root secret named by the stored `key_id`,
//!   so data written before a rotation stays readable as long as its root
//!   secret stays configured. A `key_id` naming a root secret that is not
//!   configured is refused with [`ErrorKind::Config`] and an
//!   [`UnknownSecretId`] source: swift's warning is that encryption cannot
//!   simply be turned off or a root secret dropped.
//!
//! What we do differently from swift, on purpose: the metadata version we
//! write defaults to `3` (swift's code default is `2`, its sample config says
//! to move to `3` once every proxy is upgraded; `3` stores the path as native
//! UTF-8, free of bug 1888037), and the metadata parser is strict (standard
//! base64, exact lengths, string values) where Python would shrug.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{Read, Write};
use std::str::FromStr;

use aes::Aes256;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ctr::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::context::Context;
use crate::crypto::fill_random;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{ManagedObject, SecretId};
use crate::secret::SecretBytes;
use crate::store::SecretStore;

/// The one cipher swift's crypto middleware knows.
pub const CIPHER: &str = "AES_CTR_256";
/// Bytes in a root secret, at least (swift: "at least 256 bits").
pub const MIN_ROOT_SECRET_BYTES: usize = 32;
/// Bytes in a body key, an object key and a container key.
pub const KEY_LEN: usize = 32;
/// Bytes in an IV (one AES block).
pub const IV_LEN: usize = 16;
/// Chunk size of the streaming helpers (swift's `DECRYPT_CHUNK_SIZE`).
pub const CHUNK_SIZE: usize = 64 * 1024;

type Aes256Ctr = ctr::Ctr128BE<Aes256>;
type HmacSha256 = Hmac<Sha256>;

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------

/// The id of a root secret: swift's `secret_id`. The root secret configured
/// without a suffix (`key_id = …`) has none.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct RootSecretId(Option<String>);

impl RootSecretId {
    /// The un-suffixed root secret.
    pub const DEFAULT: RootSecretId = RootSecretId(None);

    /// A named root secret (`key_id_<id>`). Swift needs at least one character.
    pub fn named(id: impl Into<String>) -> Result<Self> {
        let id = id.into();
        if id.is_empty() {
            return Err(Error::invalid(
                "secret_id",
                "a root secret id must not be empty",
            ));
        }
        Ok(RootSecretId(Some(id)))
    }

    pub fn as_str(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

impl fmt::Display for RootSecretId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // As swift prints it in "Unrecognised secret id: %s".
        f.write_str(self.0.as_deref().unwrap_or("None"))
    }
}

impl fmt::Debug for RootSecretId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RootSecretId({self})")
    }
}

/// The `key_id` metadata version (`v`) to write. All three are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MetaVersion {
    /// Paths may be the bare object name when it starts with `/`; never written.
    V1,
    /// Paths stored as WSGI (latin-1) strings (swift bug 1888037).
    V2,
    /// Paths stored as native strings.
    V3,
}

impl MetaVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            MetaVersion::V1 => "1",
            MetaVersion::V2 => "2",
            MetaVersion::V3 => "3",
        }
    }
}

impl FromStr for MetaVersion {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "1" => Ok(MetaVersion::V1),
            "2" => Ok(MetaVersion::V2),
            "3" => Ok(MetaVersion::V3),
            _ => Err(Error::invalid("v", format!("Unknown key_id version: {s}"))),
        }
    }
}

/// Which secrets in the store are the root secrets: swift's `kms_keymaster`
/// options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeymasterConfig {
    /// Root secret id -> the store's secret id (swift's `key_id[_<id>]`).
    pub key_ids: BTreeMap<RootSecretId, SecretId>,
    /// The root secret new objects are encrypted under.
    pub active_root_secret_id: RootSecretId,
    /// Which `key_id` version new objects record.
    pub meta_version_to_write: MetaVersion,
}

impl KeymasterConfig {
    /// One root secret, active.
    pub fn single(key_id: SecretId) -> Self {
        KeymasterConfig {
            key_ids: BTreeMap::from([(RootSecretId::DEFAULT, key_id)]),
            active_root_secret_id: RootSecretId::DEFAULT,
            meta_version_to_write: MetaVersion::V3,
        }
    }

    /// Reads a `[kms_keymaster]` section as swift does: `key_id` and
    /// `key_id_<secret_id>` name root secrets (a bare uuid or a secret
    /// href), `active_root_secret_id` picks the one for writes,
    /// `meta_version_to_write` the metadata version. The credential and
    /// endpoint options swift uses to reach Barbican mean nothing to an
    /// embedded store and are ignored; any other option is refused.
    pub fn from_options<'a>(options: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self> {
        const IGNORED: [&str; 18] = [
            "username",
            "password",
            "project_name",
            "project_id",
            "user_domain_name",
            "user_domain_id",
            "project_domain_name",
            "project_domain_id",
            "user_id",
            "trust_id",
            "domain_id",
            "domain_name",
            "reauthenticate",
            "auth_endpoint",
            "api_class",
            "barbican_endpoint",
            "barbican_region_name",
            "keymaster_config_path",
        ];
        let mut key_ids = BTreeMap::new();
        let mut active = RootSecretId::DEFAULT;
        let mut version = MetaVersion::V3;
        for (name, value) in options {
            let value = value.trim();
            if let Some(suffix) = name.strip_prefix("key_id") {
                // swift's load_multikey_opts: `key_id` or `key_id_<id>`.
                let secret_id = match suffix {
                    "" => RootSecretId::DEFAULT,
                    s if s.len() >= 2 && s.starts_with('_') => RootSecretId::named(&s[1..])?,
                    _ => {
                        return Err(Error::new(
                            ErrorKind::Config,
                            format!("Malformed multi-key option name {name}"),
                        ));
                    }
                };
                let id = value
                    .trim_end_matches('/')
                    .rsplit('/')
                    .next()
                    .unwrap_or(value)
                    .parse::<SecretId>()
                    .map_err(|e| {
                        Error::new(
                            ErrorKind::Config,
                            format!("{name} must be a secret uuid or href, got {value:?}"),
                        )
                        .with_source(e)
                    })?;
                key_ids.insert(secret_id, id);
            } else if name == "active_root_secret_id" {
                active = if value.is_empty() {
                    RootSecretId::DEFAULT
                } else {
                    RootSecretId::named(value)?
                };
            } else if name == "meta_version_to_write" {
                version = value.parse().map_err(|e: Error| {
                    Error::new(
                        ErrorKind::Config,
                        format!("Unknown/unsupported metadata version: {value:?}"),
                    )
                    .with_source(e)
                })?;
            } else if !IGNORED.contains(&name) {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!("unknown kms_keymaster option {name}"),
                ));
            }
        }
        Ok(KeymasterConfig {
            key_ids,
            active_root_secret_id: active,
            meta_version_to_write: version,
        })
    }
}

// ---------------------------------------------------------------------------
// The key master
// ---------------------------------------------------------------------------

/// The root secrets in memory, and everything derived from them.
pub struct ObjectKeyMaster {
    root_secrets: BTreeMap<RootSecretId, SecretBytes>,
    active: RootSecretId,
    meta_version_to_write: MetaVersion,
}

impl ObjectKeyMaster {
    /// Fetches every configured root secret from `store` as `ctx` and checks
    /// it as swift's `kms_keymaster` does: a symmetric AES key of at least
    /// 256 bits. Unlike swift, the refusal says which check failed.
    pub fn load(store: &SecretStore, ctx: &Context, config: &KeymasterConfig) -> Result<Self> {
        let mut secrets = Vec::with_capacity(config.key_ids.len());
        for (secret_id, key_id) in &config.key_ids {
            let object = store.get_object(ctx, key_id).map_err(|e| {
                let kind = e.kind();
                Error::new(
                    kind,
                    format!("cannot fetch the root secret with key_id '{key_id}' ({secret_id})"),
                )
                .with_source(e)
            })?;
            let refuse = |why: String| {
                Error::new(
                    ErrorKind::Config,
                    format!("Secret with key_id '{key_id}' is not a symmetric key: {why}"),
                )
            };
            let ManagedObject::SymmetricKey {
                algorithm,
                bit_length,
                key,
            } = object
            else {
                return Err(refuse(format!("it is a {} secret", object.secret_type())));
            };
            if !algorithm
                .as_deref()
                .is_some_and(|a| a.eq_ignore_ascii_case("aes"))
            {
                return Err(refuse(format!(
                    "encryption root secrets must be AES keys (algorithm is {algorithm:?})"
                )));
            }
            // A length the catalog does not record is the key's own length.
            let bit_length = bit_length.unwrap_or(u32::try_from(key.len() * 8).unwrap_or(u32::MAX));
            if bit_length < 256 || key.len() < MIN_ROOT_SECRET_BYTES {
                return Err(refuse(format!(
                    "encryption root secrets must be at least 256 bits (bit_length {bit_length}, {} bytes stored)",
                    key.len()
                )));
            }
            secrets.push((secret_id.clone(), key));
        }
        ObjectKeyMaster::from_root_secrets(secrets, config.active_root_secret_id.clone())?
            .with_meta_version(config.meta_version_to_write)
    }

    /// Root secrets given directly (swift's `keymaster` with
    /// `encryption_root_secret[_<id>]`); each must be at least 32 bytes.
    pub fn from_root_secrets(
        secrets: impl IntoIterator<Item = (RootSecretId, SecretBytes)>,
        active: RootSecretId,
    ) -> Result<Self> {
        let mut root_secrets = BTreeMap::new();
        for (id, secret) in secrets {
            if secret.len() < MIN_ROOT_SECRET_BYTES {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!("root secret {id} must be at least 32 raw bytes"),
                ));
            }
            root_secrets.insert(id, secret);
        }
        if !root_secrets.contains_key(&active) {
            return Err(Error::new(
                ErrorKind::Config,
                format!("No secret loaded for active_root_secret_id {active}"),
            ));
        }
        Ok(ObjectKeyMaster {
            root_secrets,
            active,
            meta_version_to_write: MetaVersion::V3,
        })
    }

    /// Chooses the `key_id` version new objects record (2 or 3).
    pub fn with_meta_version(mut self, version: MetaVersion) -> Result<Self> {
        if version == MetaVersion::V1 {
            return Err(Error::new(
                ErrorKind::Config,
                "meta_version_to_write 1 is not supported: version 1 records object names that \
                 start with '/' without their account and container; write 2 or 3",
            ));
        }
        self.meta_version_to_write = version;
        Ok(self)
    }

    /// The root secret new objects are encrypted under.
    pub fn active_secret_id(&self) -> &RootSecretId {
        &self.active
    }

    /// Every configured root secret id, sorted as swift sorts them.
    pub fn root_secret_ids(&self) -> impl Iterator<Item = &RootSecretId> {
        self.root_secrets.keys()
    }

    /// `HMAC-SHA256(root secret, path)`: swift's `create_key`.
    pub fn create_key(&self, path: &str, secret_id: &RootSecretId) -> Result<SecretBytes> {
        let root = self.root_secret(secret_id)?;
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(root.expose_secret())
            .expect("HMAC takes keys of any length");
        mac.update(path.as_bytes());
        let mut out = Zeroizing::new(mac.finalize().into_bytes());
        Ok(SecretBytes::copy_from(out.as_mut_slice()))
    }

    /// The container and object keys for writing `path` under the active
    /// root secret, with the `key_id` to record.
    pub fn keys_for_write(&self, path: &ObjectPath) -> Result<PathKeys> {
        let container_path = path.container_path();
        let object_path = path.object_path();
        Ok(PathKeys {
            container: self.create_key(&container_path, &self.active)?,
            object: self.create_key(&object_path, &self.active)?,
            key_id: KeyId {
                version: self.meta_version_to_write,
                path: match self.meta_version_to_write {
                    MetaVersion::V3 => object_path,
                    _ => utf8_as_latin1(&object_path),
                },
                secret_id: self.active.clone(),
            },
        })
    }

    /// The keys an object was written with, re-derived from its stored
    /// `key_id` as swift's keymaster does for a request on `path`: the path
    /// in the metadata wins (after undoing bug 1888037 for versions 1 and
    /// 2), and a root secret that is not configured is refused.
    pub fn keys_for_read(&self, path: &ObjectPath, key_id: &KeyId) -> Result<PathKeys> {
        let request = (
            path.account.as_str(),
            path.container.as_str(),
            path.object.as_str(),
        );
        let (account, container, object) = if key_id.version == MetaVersion::V1
            && !key_id.path.starts_with(&format!("/{}/", path.account))
        {
            // Version 1 recorded an object name starting with '/' as the
            // whole path; the request supplies account and container.
            (
                path.account.clone(),
                path.container.clone(),
                key_id.path.clone(),
            )
        } else {
            split_key_path(&key_id.path)?
        };
        let mut parts = (account, container, object);
        let matches =
            |p: &(String, String, String)| (p.0.as_str(), p.1.as_str(), p.2.as_str()) == request;
        if key_id.version != MetaVersion::V3
            && !matches(&parts)
            && let (Some(a), Some(c), Some(o)) = (
                latin1_as_utf8(&parts.0),
                latin1_as_utf8(&parts.1),
                latin1_as_utf8(&parts.2),
            )
        {
            let alt = (a, c, o);
            if matches(&alt) {
                parts = alt;
            }
        }
        if !matches(&parts) {
            tracing::info!(
                "Path stored in meta ({:?}) does not match path from request ({:?})! Using path from meta.",
                key_id.path,
                path.object_path()
            );
        }
        let (account, container, object) = parts;
        let container_path = format!("/{account}/{container}");
        let object_path = if key_id.version == MetaVersion::V1 && object.starts_with('/') {
            object
        } else {
            format!("{container_path}/{object}")
        };
        Ok(PathKeys {
            container: self.create_key(&container_path, &key_id.secret_id)?,
            object: self.create_key(&object_path, &key_id.secret_id)?,
            key_id: key_id.clone(),
        })
    }

    /// Starts encrypting a new object body at `path`: a fresh body key and
    /// IV, the body key wrapped under the object key.
    pub fn body_encryptor(&self, path: &ObjectPath) -> Result<BodyEncryptor> {
        let keys = self.keys_for_write(path)?;
        let mut body_key = Zeroizing::new([0u8; KEY_LEN]);
        fill_random(body_key.as_mut())?;
        let mut iv = [0u8; IV_LEN];
        fill_random(&mut iv)?;
        let mut wrap_iv = [0u8; IV_LEN];
        fill_random(&mut wrap_iv)?;
        let mut wrapped = *body_key;
        ctr_cipher(keys.object.expose_secret(), &wrap_iv)?.apply_keystream(&mut wrapped);
        let cipher = ctr_cipher(body_key.as_ref(), &iv)?;
        Ok(BodyEncryptor {
            cipher,
            meta: BodyCryptoMeta {
                iv,
                body_key: WrappedKey {
                    iv: wrap_iv,
                    key: wrapped,
                },
                key_id: keys.key_id,
            },
        })
    }

    /// Starts decrypting an object body stored with `meta`, at byte
    /// `offset` of the body (ranged reads).
    pub fn body_decryptor(
        &self,
        path: &ObjectPath,
        meta: &BodyCryptoMeta,
        offset: u64,
    ) -> Result<BodyDecryptor> {
        let keys = self.keys_for_read(path, &meta.key_id)?;
        let mut body_key = Zeroizing::new(meta.body_key.key);
        ctr_cipher(keys.object.expose_secret(), &meta.body_key.iv)?
            .apply_keystream(body_key.as_mut());
        let mut cipher = ctr_cipher(body_key.as_ref(), &meta.iv)?;
        // The counter wraps modulo 2^128, as swift's IV arithmetic does.
        cipher
            .try_seek(offset)
            .map_err(|_| Error::invalid("offset", "offset is beyond what AES-CTR can address"))?;
        Ok(BodyDecryptor { cipher })
    }

    /// Encrypts `body` into `out` in [`CHUNK_SIZE`] chunks; returns the
    /// metadata to store beside the object.
    pub fn encrypt_object(
        &self,
        path: &ObjectPath,
        body: impl Read,
        out: impl Write,
    ) -> Result<BodyCryptoMeta> {
        let mut enc = self.body_encryptor(path)?;
        pump(body, out, |chunk| enc.apply(chunk))?;
        Ok(enc.into_meta())
    }

    /// Decrypts a stored body into `out` in [`CHUNK_SIZE`] chunks; returns
    /// the number of bytes written.
    pub fn decrypt_object(
        &self,
        path: &ObjectPath,
        meta: &BodyCryptoMeta,
        stored: impl Read,
        out: impl Write,
    ) -> Result<u64> {
        let mut dec = self.body_decryptor(path, meta, 0)?;
        pump(stored, out, |chunk| dec.apply(chunk))
    }

    fn root_secret(&self, id: &RootSecretId) -> Result<&SecretBytes> {
        self.root_secrets.get(id).ok_or_else(|| {
            tracing::warn!("Unrecognised secret id: {id}");
            Error::new(
                ErrorKind::Config,
                format!(
                    "Unrecognised secret id: {id}. Data written under this root secret cannot be \
                     read until it is configured again; root secrets must never be removed"
                ),
            )
            .with_source(UnknownSecretId(id.clone()))
        })
    }
}

impl fmt::Debug for ObjectKeyMaster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectKeyMaster")
            .field(
                "root_secret_ids",
                &self.root_secrets.keys().collect::<Vec<_>>(),
            )
            .field("active", &self.active)
            .field("meta_version_to_write", &self.meta_version_to_write)
            .finish()
    }
}

/// The typed cause of reading data whose root secret is not configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownSecretId(pub RootSecretId);

impl fmt::Display for UnknownSecretId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "root secret {} is not configured", self.0)
    }
}

impl std::error::Error for UnknownSecretId {}

/// An object's place: `/account/container/object`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ObjectPath {
    account: String,
    container: String,
    object: String,
}

impl ObjectPath {
    /// Account and container are non-empty and have no `/`; the object name
    /// is non-empty and may contain `/`.
    pub fn new(
        account: impl Into<String>,
        container: impl Into<String>,
        object: impl Into<String>,
    ) -> Result<Self> {
        let (account, container, object) = (account.into(), container.into(), object.into());
        for (field, part) in [("account", &account), ("container", &container)] {
            if part.is_empty() || part.contains('/') {
                return Err(Error::invalid(
                    field,
                    "must be non-empty and contain no '/'",
                ));
            }
        }
        if object.is_empty() {
            return Err(Error::invalid("object", "must be non-empty"));
        }
        Ok(ObjectPath {
            account,
            container,
            object,
        })
    }

    /// `/account/container/object`, as a swift request path after `/v1`.
    pub fn parse(path: &str) -> Result<Self> {
        let rest = path
            .strip_prefix('/')
            .ok_or_else(|| Error::invalid("path", "must start with '/'"))?;
        let mut parts = rest.splitn(3, '/');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(a), Some(c), Some(o)) => ObjectPath::new(a, c, o),
            _ => Err(Error::invalid("path", "must be /account/container/object")),
        }
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    pub fn container(&self) -> &str {
        &self.container
    }

    pub fn object(&self) -> &str {
        &self.object
    }

    /// `/account/container`: what the container key is derived from.
    pub fn container_path(&self) -> String {
        format!("/{}/{}", self.account, self.container)
    }

    /// `/account/container/object`: what the object key is derived from.
    pub fn object_path(&self) -> String {
        format!("/{}/{}/{}", self.account, self.container, self.object)
    }
}

impl fmt::Display for ObjectPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.object_path())
    }
}

/// The keys for one object.
#[derive(Debug)]
pub struct PathKeys {
    /// Encrypts the container listing's copy of the etag.
    pub container: SecretBytes,
    /// Wraps the body key; encrypts user metadata and the etag.
    pub object: SecretBytes,
    /// What to record beside the object so the keys can be derived again.
    pub key_id: KeyId,
}

/// swift's persisted `key_id`: `{"v": …, "path": …, "secret_id": …}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyId {
    pub version: MetaVersion,
    /// The path the keys were derived from, as recorded (versions 1 and 2
    /// may hold it as a latin-1 view of its UTF-8 bytes).
    pub path: String,
    pub secret_id: RootSecretId,
}

/// A body key wrapped by an object key: AES-256-CTR under its own IV.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey {
    pub iv: [u8; IV_LEN],
    pub key: [u8; KEY_LEN],
}

// Hand-written: the wrapped key is ciphertext, but there is no reason to
// print it either.
impl fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WrappedKey")
            .field("iv", &hex(&self.iv))
            .field("key", &"[WRAPPED]")
            .finish()
    }
}

/// swift's body crypto-meta (`X-Object-Sysmeta-Crypto-Body-Meta`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BodyCryptoMeta {
    /// The body's initial counter block.
    pub iv: [u8; IV_LEN],
    pub body_key: WrappedKey,
    pub key_id: KeyId,
}

impl BodyCryptoMeta {
    /// The header value, byte for byte what swift's `dump_crypto_meta`
    /// writes: `json.dumps(sort_keys=True)` with base64 IVs and key, then
    /// `urllib.parse.quote_plus`.
    pub fn to_header(&self) -> String {
        let mut key_id = format!("{{\"path\": {}", py_json_str(&self.key_id.path));
        if let Some(id) = self.key_id.secret_id.as_str() {
            key_id.push_str(&format!(", \"secret_id\": {}", py_json_str(id)));
        }
        key_id.push_str(&format!(", \"v\": \"{}\"}}", self.key_id.version.as_str()));
        let json = format!(
            "{{\"body_key\": {{\"iv\": \"{}\", \"key\": \"{}\"}}, \"cipher\": \"{CIPHER}\", \"iv\": \"{}\", \"key_id\": {key_id}}}",
            BASE64.encode(self.body_key.iv),
            BASE64.encode(self.body_key.key),
            BASE64.encode(self.iv),
        );
        quote_plus(&json)
    }

    /// Parses a header value written by swift or by [`Self::to_header`].
    /// Untrusted input: every field is checked (swift's
    /// `check_crypto_meta` and `check_key` messages where it has them).
    pub fn from_header(value: &str) -> Result<Self> {
        let bad = |why: String| Error::invalid("crypto_meta", format!("Bad crypto meta: {why}"));
        let json = unquote_plus(value).ok_or_else(|| bad("not UTF-8 once unquoted".into()))?;
        let top: serde_json::Value =
            serde_json::from_str(&json).map_err(|e| bad("not JSON".into()).with_source(e))?;
        let top = top
            .as_object()
            .ok_or_else(|| bad("crypto meta not a Mapping".into()))?;
        let field = |obj: &serde_json::Map<String, serde_json::Value>, name: &str| {
            obj.get(name)
                .cloned()
                .ok_or_else(|| bad(format!("Missing '{name}'")))
        };
        let string = |v: serde_json::Value, name: &str| match v {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(bad(format!("'{name}' must be a string"))),
        };
        let cipher = string(field(top, "cipher")?, "cipher")?;
        if cipher != CIPHER {
            return Err(bad(format!("Cipher must be {CIPHER}")));
        }
        let iv = fixed::<IV_LEN>(&string(field(top, "iv")?, "iv")?)
            .ok_or_else(|| bad(format!("IV must be length {IV_LEN} bytes")))?;
        let body_key = field(top, "body_key")?;
        let body_key = body_key
            .as_object()
            .ok_or_else(|| bad("'body_key' must be a mapping".into()))?;
        let wrap_iv = fixed::<IV_LEN>(&string(field(body_key, "iv")?, "iv")?)
            .ok_or_else(|| bad(format!("IV must be length {IV_LEN} bytes")))?;
        let wrapped = fixed::<KEY_LEN>(&string(field(body_key, "key")?, "key")?)
            .ok_or_else(|| bad(format!("Key must be length {KEY_LEN} bytes")))?;
        let key_id = field(top, "key_id")?;
        let key_id = key_id
            .as_object()
            .ok_or_else(|| bad("'key_id' must be a mapping".into()))?;
        let version: MetaVersion = string(field(key_id, "v")?, "v")?.parse()?;
        let path = string(field(key_id, "path")?, "path")?;
        let secret_id = match key_id.get("secret_id") {
            None | Some(serde_json::Value::Null) => RootSecretId::DEFAULT,
            // swift's `if secret_id:` never writes an empty one.
            Some(serde_json::Value::String(s)) if s.is_empty() => RootSecretId::DEFAULT,
            Some(serde_json::Value::String(s)) => RootSecretId(Some(s.clone())),
            Some(_) => return Err(bad("'secret_id' must be a string".into())),
        };
        Ok(BodyCryptoMeta {
            iv,
            body_key: WrappedKey {
                iv: wrap_iv,
                key: wrapped,
            },
            key_id: KeyId {
                version,
                path,
                secret_id,
            },
        })
    }
}

/// Encrypts one object body, chunk by chunk, in place.
pub struct BodyEncryptor {
    cipher: Aes256Ctr,
    meta: BodyCryptoMeta,
}

impl BodyEncryptor {
    /// Encrypts the next bytes of the body in place.
    pub fn apply(&mut self, chunk: &mut [u8]) {
        self.cipher.apply_keystream(chunk);
    }

    pub fn meta(&self) -> &BodyCryptoMeta {
        &self.meta
    }

    pub fn into_meta(self) -> BodyCryptoMeta {
        self.meta
    }
}

impl fmt::Debug for BodyEncryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyEncryptor")
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

/// Decrypts one object body, chunk by chunk, in place.
pub struct BodyDecryptor {
    cipher: Aes256Ctr,
}

impl BodyDecryptor {
    /// Decrypts the next bytes of the body in place.
    pub fn apply(&mut self, chunk: &mut [u8]) {
        self.cipher.apply_keystream(chunk);
    }
}

impl fmt::Debug for BodyDecryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BodyDecryptor([REDACTED])")
    }
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn ctr_cipher(key: &[u8], iv: &[u8; IV_LEN]) -> Result<Aes256Ctr> {
    Aes256Ctr::new_from_slices(key, iv)
        .map_err(|_| Error::invalid("key", format!("Key must be length {KEY_LEN} bytes")))
}

/// Reads `input` to its end in chunks, transforms each in place, writes it.
fn pump(mut input: impl Read, mut out: impl Write, mut f: impl FnMut(&mut [u8])) -> Result<u64> {
    let io = |what: &'static str| {
        move |e: std::io::Error| Error::new(ErrorKind::Storage, what).with_source(e)
    };
    let mut buf = vec![0u8; CHUNK_SIZE];
    let mut total = 0u64;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io("reading the object body failed")(e)),
        };
        f(&mut buf[..n]);
        out.write_all(&buf[..n])
            .map_err(io("writing the object body failed"))?;
        total += n as u64;
    }
    out.flush().map_err(io("writing the object body failed"))?;
    Ok(total)
}

/// swift's `split_path(path, 1, 3, True)`, where an object key needs all
/// three parts.
fn split_key_path(path: &str) -> Result<(String, String, String)> {
    let bad = || Error::invalid("key_id", format!("Invalid path in key_id: {path:?}"));
    let rest = path.strip_prefix('/').ok_or_else(bad)?;
    let mut parts = rest.splitn(3, '/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(a), Some(c), Some(o)) if !a.is_empty() && !c.is_empty() => {
            Ok((a.to_owned(), c.to_owned(), o.to_owned()))
        }
        _ => Err(bad()),
    }
}

/// swift's `str_to_wsgi`: the UTF-8 bytes, each read as a latin-1 char.
fn utf8_as_latin1(s: &str) -> String {
    s.bytes().map(char::from).collect()
}

/// `s.encode('latin1').decode('utf-8')`, or `None` where Python raises.
fn latin1_as_utf8(s: &str) -> Option<String> {
    let bytes: Option<Vec<u8>> = s.chars().map(|c| u8::try_from(c).ok()).collect();
    String::from_utf8(bytes?).ok()
}

fn fixed<const N: usize>(b64: &str) -> Option<[u8; N]> {
    BASE64.decode(b64).ok()?.try_into().ok()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A JSON string as Python's `json.dumps` writes it (`ensure_ascii=True`).
fn py_json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
    out
}

/// Python's `urllib.parse.quote_plus(s)` (UTF-8, `safe=''`).
fn quote_plus(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3 / 2);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Python's `urllib.parse.unquote_plus(s)`, except that bytes which are not
/// UTF-8 once unquoted are refused rather than replaced.
fn unquote_plus(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hi = char::from(bytes[i + 1]).to_digit(16);
                let lo = char::from(bytes[i + 2]).to_digit(16);
                match (hi, lo) {
                    (Some(h), Some(l)) => {
                        // Two hex digits: at most 0xFF.
                        out.push((h * 16 + l) as u8);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master() -> ObjectKeyMaster {
        ObjectKeyMaster::from_root_secrets(
            [
                (RootSecretId::DEFAULT, SecretBytes::copy_from(&[1; 32])),
                (
                    RootSecretId::named("2").unwrap(),
                    SecretBytes::copy_from(&[2; 48]),
                ),
            ],
            RootSecretId::named("2").unwrap(),
        )
        .unwrap()
    }

    /// Known answers computed with swift 2.38.3's own `KeyMaster.create_key`
    /// (root secret: 32 bytes of 0x01, given as `encryption_root_secret`).
    const SWIFT_KEYS: [(&str, &str); 2] = [
        (
            "/a/c/o",
            "781886ff533c5989a6194d3c629b967352c9615bb4285a5b61c3b90490375f48",
        ),
        (
            "/a/c",
            "d9d2de7f842882a361b124756b990906b4b8e6f9d3b2bec6f695d34523c9e196",
        ),
    ];

    #[test]
    fn keys_match_swift_known_answers() {
        let m = master();
        for (path, expected) in SWIFT_KEYS {
            let k = m.create_key(path, &RootSecretId::DEFAULT).unwrap();
            assert_eq!(hex(k.expose_secret()), expected, "{path}");
        }
        let keys = m
            .keys_for_read(
                &ObjectPath::new("a", "c", "o").unwrap(),
                &KeyId {
                    version: MetaVersion::V3,
                    path: "/a/c/o".into(),
                    secret_id: RootSecretId::DEFAULT,
                },
            )
            .unwrap();
        assert_eq!(hex(keys.object.expose_secret()), SWIFT_KEYS[0].1);
        assert_eq!(hex(keys.container.expose_secret()), SWIFT_KEYS[1].1);
    }

    #[test]
    fn round_trip_with_ranged_reads() {
        let m = master();
        let path = ObjectPath::new("AUTH_test", "c", "dir/o").unwrap();
        let body: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut stored = Vec::new();
        let meta = m.encrypt_object(&path, &body[..], &mut stored).unwrap();
        assert_ne!(stored, body);
        assert_eq!(meta.key_id.secret_id, RootSecretId::named("2").unwrap());
        assert_eq!(meta.key_id.path, "/AUTH_test/c/dir/o");
        let parsed = BodyCryptoMeta::from_header(&meta.to_header()).unwrap();
        assert_eq!(parsed, meta);
        let mut plain = Vec::new();
        m.decrypt_object(&path, &parsed, &stored[..], &mut plain)
            .unwrap();
        assert_eq!(plain, body);
        for offset in [1u64, 15, 16, 17, 65_537, 199_999] {
            let mut dec = m.body_decryptor(&path, &parsed, offset).unwrap();
            let mut tail = stored[offset as usize..].to_vec();
            dec.apply(&mut tail);
            assert_eq!(tail, body[offset as usize..]);
        }
    }

    #[test]
    fn unknown_secret_id_is_a_typed_config_error() {
        let m = master();
        let path = ObjectPath::new("a", "c", "o").unwrap();
        let mut meta = m.body_encryptor(&path).unwrap().into_meta();
        meta.key_id.secret_id = RootSecretId::named("gone").unwrap();
        let e = m.body_decryptor(&path, &meta, 0).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        let src = std::error::Error::source(&e)
            .and_then(|s| s.downcast_ref::<UnknownSecretId>())
            .expect("typed source");
        assert_eq!(src.0, RootSecretId::named("gone").unwrap());
    }

    #[test]
    fn header_matches_python_json_and_quote_plus() {
        let meta = BodyCryptoMeta {
            iv: [0; 16],
            body_key: WrappedKey {
                iv: [1; 16],
                key: [2; 32],
            },
            key_id: KeyId {
                version: MetaVersion::V3,
                path: "/a/c/\u{e9}".into(),
                secret_id: RootSecretId::named("s").unwrap(),
            },
        };
        // json.dumps({...}, sort_keys=True) then quote_plus, by hand.
        let json = "{\"body_key\": {\"iv\": \"AQEBAQEBAQEBAQEBAQEBAQ==\", \"key\": \"AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=\"}, \"cipher\": \"AES_CTR_256\", \"iv\": \"AAAAAAAAAAAAAAAAAAAAAA==\", \"key_id\": {\"path\": \"/a/c/\\u00e9\", \"secret_id\": \"s\", \"v\": \"3\"}}";
        assert_eq!(meta.to_header(), quote_plus(json));
        assert_eq!(unquote_plus(&meta.to_header()).unwrap(), json);
        assert_eq!(
            BodyCryptoMeta::from_header(&meta.to_header()).unwrap(),
            meta
        );
    }

    #[test]
    fn bad_meta_is_refused_with_swift_reasons() {
        let m = master();
        let good = m
            .body_encryptor(&ObjectPath::new("a", "c", "o").unwrap())
            .unwrap()
            .into_meta()
            .to_header();
        let json = unquote_plus(&good).unwrap();
        for (from, to, reason) in [
            ("AES_CTR_256", "AES_CBC_256", "Cipher must be AES_CTR_256"),
            ("\"v\": \"3\"", "\"v\": \"4\"", "Unknown key_id version: 4"),
            ("\"v\": \"3\"", "\"v\": 3", "'v' must be a string"),
        ] {
            let e = BodyCryptoMeta::from_header(&quote_plus(&json.replace(from, to))).unwrap_err();
            assert!(e.to_string().contains(reason), "{e}");
        }
        assert!(BodyCryptoMeta::from_header("%7B").is_err());
        assert!(BodyCryptoMeta::from_header("[]").is_err());
    }

    #[test]
    fn legacy_paths_are_read_as_swift_reads_them() {
        let m = master();
        let path = ObjectPath::new("a", "c", "\u{e9}t\u{e9}").unwrap();
        // Version 2 stored the path as latin-1 chars of its UTF-8 bytes.
        let v2 = KeyId {
            version: MetaVersion::V2,
            path: utf8_as_latin1("/a/c/\u{e9}t\u{e9}"),
            secret_id: RootSecretId::DEFAULT,
        };
        let keys = m.keys_for_read(&path, &v2).unwrap();
        let expect = m
            .create_key("/a/c/\u{e9}t\u{e9}", &RootSecretId::DEFAULT)
            .unwrap();
        assert!(keys.object.ct_eq(expect.expose_secret()));
        // Version 1 recorded an object name starting with '/' as the path.
        let slashed = ObjectPath::new("a", "c", "/o").unwrap();
        let v1 = KeyId {
            version: MetaVersion::V1,
            path: "/o".into(),
            secret_id: RootSecretId::DEFAULT,
        };
        let keys = m.keys_for_read(&slashed, &v1).unwrap();
        let expect = m.create_key("/o", &RootSecretId::DEFAULT).unwrap();
        assert!(keys.object.ct_eq(expect.expose_secret()));
    }

    #[test]
    fn config_options_as_swift_names_them() {
        let a = SecretId::new_random();
        let b = SecretId::new_random();
        let href = format!("http://localhost:9311/v1/secrets/{b}");
        let c = KeymasterConfig::from_options([
            ("key_id", a.to_string().as_str()),
            ("key_id_new", href.as_str()),
            ("active_root_secret_id", "new"),
            ("username", "swift"),
            ("meta_version_to_write", "2"),
        ])
        .unwrap();
        assert_eq!(c.key_ids[&RootSecretId::DEFAULT], a);
        assert_eq!(c.key_ids[&RootSecretId::named("new").unwrap()], b);
        assert_eq!(c.active_root_secret_id, RootSecretId::named("new").unwrap());
        assert_eq!(c.meta_version_to_write, MetaVersion::V2);
        let e = KeymasterConfig::from_options([("key_id_", a.to_string().as_str())]).unwrap_err();
        assert_eq!(e.context(), "Malformed multi-key option name key_id_");
    }

    #[test]
    fn short_root_secret_and_missing_active_are_refused() {
        let e = ObjectKeyMaster::from_root_secrets(
            [(RootSecretId::DEFAULT, SecretBytes::copy_from(&[0; 31]))],
            RootSecretId::DEFAULT,
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        let e = ObjectKeyMaster::from_root_secrets(
            [(RootSecretId::DEFAULT, SecretBytes::copy_from(&[0; 32]))],
            RootSecretId::named("x").unwrap(),
        )
        .unwrap_err();
        assert_eq!(e.context(), "No secret loaded for active_root_secret_id x");
    }

    #[test]
    fn debug_shows_no_key_material() {
        let m = master();
        let shown = format!("{m:?}");
        assert!(!shown.contains("[1, 1"), "{shown}");
        let keys = m
            .keys_for_write(&ObjectPath::new("a", "c", "o").unwrap())
            .unwrap();
        let shown = format!("{keys:?}");
        assert!(shown.contains("REDACTED"), "{shown}");
    }
}
