//! The key master: root secrets loaded from the store, and the per-path
//! keys derived from them (swift's `keymaster.py`).

use std::collections::BTreeMap;
use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::context::Context;
use crate::error::{Error, ErrorKind, Result};
use crate::model::ManagedObject;
use crate::secret::SecretBytes;
use crate::store::SecretStore;

use super::{
    KeyId, KeymasterConfig, MIN_ROOT_SECRET_BYTES, MetaVersion, ObjectPath, PathKeys, RootSecretId,
    UnknownSecretId,
};

type HmacSha256 = Hmac<Sha256>;

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
pub(super) fn utf8_as_latin1(s: &str) -> String {
    s.bytes().map(char::from).collect()
}

/// `s.encode('latin1').decode('utf-8')`, or `None` where Python raises.
fn latin1_as_utf8(s: &str) -> Option<String> {
    let bytes: Option<Vec<u8>> = s.chars().map(|c| u8::try_from(c).ok()).collect();
    String::from_utf8(bytes?).ok()
}
