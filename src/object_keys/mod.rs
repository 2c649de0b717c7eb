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
//!
//! [`SecretStore`]: crate::store::SecretStore
//! [`ErrorKind::Config`]: crate::ErrorKind::Config

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::secret::SecretBytes;

mod body;
mod config;
mod crypto_meta;
mod keymaster;
#[cfg(test)]
mod tests;

pub use body::{BodyDecryptor, BodyEncryptor};
pub use config::KeymasterConfig;
pub use crypto_meta::{BodyCryptoMeta, WrappedKey};
pub use keymaster::ObjectKeyMaster;

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
