//! Attach, as nova and os-brick do it: fetch the volume's key, turn it
//! into the LUKS passphrase, register it with libvirt, and open the volume
//! (formatting it on its first attach); or, for os-brick's `plain`
//! provider, open it as dm-crypt plain mode ([`attach_plain`]).

use std::fmt;
use std::path::Path;

use zeroize::Zeroizing;

use crate::context::Context;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{ManagedObject, SecretId};
use crate::secret::SecretBytes;
use crate::store::SecretStore;
use crate::volume::VolumeId;
use crate::volume::luks::{Argon2Cost, FormatOptions, LuksVolume, Pbkdf2Cost, is_luks};
use crate::volume::plain::{PlainOptions, PlainVolume};
use crate::volume::spec::{ControlLocation, EncryptionMetadata, Provider};

/// The LUKS passphrase for a key, as os-brick's
/// `get_passphrase_from_secret` makes it: a passphrase-type secret is used
/// as it is; any other key becomes the lower-case hex of its bytes (a
/// 32-byte key gives 64 characters). The key bytes are never the LUKS
/// master key.
pub fn passphrase_for(key: &ManagedObject) -> SecretBytes {
    match key {
        ManagedObject::Passphrase { passphrase } => passphrase.clone(),
        other => hex_passphrase(other.expose_secret()),
    }
}

/// Lower-case hex, no separators: what nova hands to libvirt and cinder to
/// cryptsetup.
pub fn hex_passphrase(key: &[u8]) -> SecretBytes {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = Zeroizing::new(Vec::with_capacity(key.len() * 2));
    for b in key {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 0x0f)]);
    }
    SecretBytes::from(out)
}

/// The libvirt secret nova defines for an encrypted volume: usage type
/// `volume`, usage id the volume id, value the passphrase. Hand
/// [`LibvirtSecret::xml`] to `virSecretDefineXML` and
/// [`LibvirtSecret::value`] to `virSecretSetValue`.
pub struct LibvirtSecret {
    volume_id: VolumeId,
    value: SecretBytes,
}

impl LibvirtSecret {
    pub fn new(volume_id: VolumeId, passphrase: SecretBytes) -> Self {
        LibvirtSecret {
            volume_id,
            value: passphrase,
        }
    }

    /// Always `volume`.
    pub fn usage_type(&self) -> &'static str {
        "volume"
    }

    /// The volume id, which libvirt looks the secret up by.
    pub fn usage_id(&self) -> String {
        self.volume_id.to_string()
    }

    /// The secret definition nova writes: persistent, not private.
    pub fn xml(&self) -> String {
        format!(
            "<secret ephemeral='no' private='no'><usage type='volume'><volume>{}</volume></usage></secret>",
            self.volume_id
        )
    }

    /// The disk's `<encryption>` element, given the uuid libvirt assigned
    /// to the defined secret.
    pub fn disk_encryption_xml(secret_uuid: &uuid::Uuid) -> String {
        format!(
            "<encryption format='luks'><secret type='passphrase' uuid='{}'/></encryption>",
            secret_uuid.hyphenated()
        )
    }

    /// The passphrase libvirt stores (`virSecretSetValue`).
    pub fn value(&self) -> &SecretBytes {
        &self.value
    }
}

impl fmt::Debug for LibvirtSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LibvirtSecret")
            .field("usage_type", &"volume")
            .field("usage_id", &self.volume_id)
            .field("value", &self.value)
            .finish()
    }
}

/// How the first attach formats a fresh volume.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct AttachOptions {
    /// PBKDF2 cost of the LUKS1 key slot and of the master-key digest
    /// written by a first-attach format.
    pub format_cost: Pbkdf2Cost,
    /// Argon2id cost of the key slot when the first attach formats a
    /// `luks2` volume (default: cryptsetup's).
    pub luks2_cost: Argon2Cost,
}

/// An attached volume: open LUKS, and the libvirt secret to register.
#[derive(Debug)]
pub struct Attachment {
    pub volume: LuksVolume,
    pub libvirt_secret: LibvirtSecret,
    /// True when this attach formatted the volume (its first attach).
    pub formatted: bool,
}

/// The passphrase for the key `key_id`, fetched with the caller's context.
pub fn fetch_passphrase(
    store: &SecretStore,
    ctx: &Context,
    key_id: &SecretId,
) -> Result<SecretBytes> {
    let key = store.get_object(ctx, key_id)?;
    Ok(passphrase_for(&key))
}

/// Attaches the volume held in the file at `path`, as nova's native LUKS
/// path does: fetch the key, derive the passphrase, and open the volume.
/// A file that is not LUKS yet is formatted with the volume type's cipher
/// and key size, as LUKS1 or, for the `luks2` provider, LUKS2 with an
/// Argon2id key slot (os-brick's lazy first-attach format); a LUKS volume (a
/// LUKS header at byte 0, or a LUKS2 secondary header when the primary is
/// damaged) is opened and never formatted again, so a wrong key is an
/// error, not a reformat. Unlike os-brick, a file that is not LUKS but
/// holds data where the header would go is not formatted either
/// (`Conflict`): that needs an operator and
/// [`FormatOptions::danger_overwrite_existing_data`].
///
/// Plain dm-crypt volumes (provider `plain`) have no header: attach them
/// with [`attach_plain`].
pub fn attach(
    store: &SecretStore,
    ctx: &Context,
    volume_id: VolumeId,
    encryption: &EncryptionMetadata,
    path: &Path,
    opts: &AttachOptions,
) -> Result<Attachment> {
    front_end(encryption)?;
    if encryption.provider == Provider::Plain {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "plain dm-crypt volumes have no LUKS header to open; attach them with attach_plain",
        )
        .with_field("provider"));
    }
    let passphrase = fetch_passphrase(store, ctx, &encryption.encryption_key_id)?;
    let (volume, formatted) = if is_luks(path)? {
        (LuksVolume::open(path, &passphrase)?, false)
    } else {
        tracing::info!(
            volume = %volume_id,
            "{} is not a valid LUKS device; formatting device for first use",
            path.display()
        );
        let mut format = FormatOptions::from_spec(&encryption.spec()?)?.with_cost(opts.format_cost);
        if format.argon2.is_some() {
            format.argon2 = Some(opts.luks2_cost);
        }
        (LuksVolume::format(path, &passphrase, &format)?, true)
    };
    Ok(Attachment {
        volume,
        libvirt_secret: LibvirtSecret::new(volume_id, passphrase),
        formatted,
    })
}

/// Attaches a volume of os-brick's `plain` provider held in the file at
/// `path`, as its CryptsetupEncryptor does: fetch the key, derive the
/// passphrase, and open the file with `cryptsetup create --key-file=-
/// [--cipher C] [--key-size N]` semantics ([`PlainOptions::from_spec`]).
///
/// Plain mode has no header, so a wrong key cannot be detected: it opens
/// and reads noise. Nothing is ever formatted or written here.
pub fn attach_plain(
    store: &SecretStore,
    ctx: &Context,
    encryption: &EncryptionMetadata,
    path: &Path,
) -> Result<PlainVolume> {
    front_end(encryption)?;
    if encryption.provider != Provider::Plain {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "a {} volume has a LUKS header; attach it with attach",
                encryption.provider
            ),
        )
        .with_field("provider"));
    }
    let opts = PlainOptions::from_spec(&encryption.spec()?)?;
    let passphrase = fetch_passphrase(store, ctx, &encryption.encryption_key_id)?;
    PlainVolume::open(path, &passphrase, &opts)
}

fn front_end(encryption: &EncryptionMetadata) -> Result<()> {
    if encryption.control_location != ControlLocation::FrontEnd {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "the back end encrypts this volume; the host has nothing to attach",
        )
        .with_field("control_location"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lower_case_and_keeps_leading_zeros() {
        let p = hex_passphrase(&[0x00, 0x0f, 0xab, 0x10]);
        assert_eq!(p.expose_secret(), b"000fab10");
    }

    #[test]
    fn passphrase_secrets_are_used_as_they_are() {
        let p = passphrase_for(&ManagedObject::Passphrase {
            passphrase: SecretBytes::copy_from(b"Correct Horse"),
        });
        assert_eq!(p.expose_secret(), b"Correct Horse");
        let k = passphrase_for(&ManagedObject::SymmetricKey {
            algorithm: Some("aes".into()),
            bit_length: Some(16),
            key: SecretBytes::copy_from(&[0xde, 0xad]),
        });
        assert_eq!(k.expose_secret(), b"dead");
    }

    #[test]
    fn libvirt_secret_shows_usage_not_value() {
        let id = VolumeId::from_uuid(uuid::Uuid::nil());
        let s = LibvirtSecret::new(id, SecretBytes::copy_from(b"cafe0123"));
        assert_eq!(
            s.xml(),
            "<secret ephemeral='no' private='no'><usage type='volume'><volume>00000000-0000-0000-0000-000000000000</volume></usage></secret>"
        );
        assert_eq!(s.usage_id(), "00000000-0000-0000-0000-000000000000");
        assert!(!format!("{s:?}").contains("cafe"));
    }
}
