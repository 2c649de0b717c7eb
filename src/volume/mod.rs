//! Encrypted volumes: what block storage (cinder) and compute (nova,
//! os-brick) do with keys.
//!
//! - [`spec`]: a volume type's encryption spec and the key it implies;
//! - [`keys`]: the key over the volume's life (create, snapshot, clone,
//!   backup, delete, transfer) through [`SecretStore`](crate::store::SecretStore);
//! - [`attach`]: key -> LUKS passphrase, the libvirt secret, first-attach
//!   format; plain-mode attach;
//! - [`luks`]: LUKS1 and LUKS2 format/open for a volume held in a
//!   file, and the payload read and written with AES-XTS or AES-CBC
//!   (`essiv:sha256`, `plain64`, `plain`);
//! - [`plain`]: dm-crypt plain mode (os-brick's `plain` provider): the key
//!   cryptsetup derives from the passphrase, the headerless payload.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

pub mod attach;
pub mod keys;
pub mod luks;
pub mod plain;
pub mod spec;

pub use attach::{
    AttachOptions, Attachment, LibvirtSecret, attach, attach_plain, fetch_passphrase,
    hex_passphrase, passphrase_for,
};
pub use keys::{EncryptedVolume, VolumeKeys, VolumeSnapshot};
pub use luks::{FormatOptions, KdfLimits, LuksHeader, LuksVolume, Pbkdf2Cost, is_luks};
pub use plain::{PlainHash, PlainOptions, PlainVolume, plain_key};
pub use spec::{
    BlockMode, CipherSpec, ControlLocation, EncryptionMetadata, EncryptionSpec, KeyRequest,
    KeySizeConvention, Provider,
};

macro_rules! volume_id {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(uuid::Uuid);

        impl $name {
            pub fn new_random() -> Self {
                $name(uuid::Uuid::new_v4())
            }

            pub fn from_uuid(u: uuid::Uuid) -> Self {
                $name(u)
            }

            pub fn as_uuid(&self) -> &uuid::Uuid {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                uuid::Uuid::try_parse(s.trim())
                    .map($name)
                    .map_err(|e| Error::invalid($field, "must be a UUID").with_source(e))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.hyphenated())
            }
        }
    };
}

volume_id!(
    /// A volume's id (cinder's UUID); libvirt's usage id for its secret.
    VolumeId,
    "volume_id"
);
volume_id!(
    /// A snapshot's id.
    SnapshotId,
    "snapshot_id"
);
