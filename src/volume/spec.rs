//! A volume type's encryption spec, and the key it implies.
//!
//! The fields are cinder's (`provider`, `cipher`, `key_size`,
//! `control_location`); the key request is what cinder's
//! `create_encryption_key` asks the key manager for: the algorithm is the
//! cipher's first dash-separated part, the length is `key_size` bits.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, ErrorKind, Result};

/// Who encrypts the volume: the LUKS format, or dm-crypt plain mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Provider {
    /// LUKS1: what cinder's `luks` provider and nova's native QEMU path use.
    Luks,
    /// LUKS2 through dm-crypt (os-brick's `luks2`).
    Luks2,
    /// dm-crypt plain mode, no header (deprecated in os-brick).
    Plain,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Luks => "luks",
            Provider::Luks2 => "luks2",
            Provider::Plain => "plain",
        }
    }
}

impl FromStr for Provider {
    type Err = Error;

    /// Takes the short names and the legacy class paths old volume types
    /// still carry (os-brick maps them the same way).
    fn from_str(s: &str) -> Result<Self> {
        let name = s.trim();
        let short = name.rsplit('.').next().unwrap_or(name);
        match short {
            "luks" | "LuksEncryptor" => Ok(Provider::Luks),
            "luks2" | "Luks2Encryptor" => Ok(Provider::Luks2),
            "plain" | "CryptsetupEncryptor" => Ok(Provider::Plain),
            _ => Err(Error::invalid(
                "provider",
                format!("unknown encryption provider {name:?}; expected luks, luks2 or plain"),
            )),
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where encryption happens: on the compute host (nova/os-brick) or in the
/// storage back end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ControlLocation {
    FrontEnd,
    BackEnd,
}

impl ControlLocation {
    pub fn as_str(self) -> &'static str {
        match self {
            ControlLocation::FrontEnd => "front-end",
            ControlLocation::BackEnd => "back-end",
        }
    }
}

impl FromStr for ControlLocation {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "front-end" => Ok(ControlLocation::FrontEnd),
            "back-end" => Ok(ControlLocation::BackEnd),
            _ => Err(Error::invalid(
                "control_location",
                "must be front-end or back-end",
            )),
        }
    }
}

impl fmt::Display for ControlLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the sector number becomes the IV (the XTS tweak, or the CBC IV).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IvGen {
    /// The 64-bit sector number, little-endian.
    Plain64,
    /// The low 32 bits of the sector number (old dm-crypt volumes).
    Plain,
    /// The 64-bit sector number encrypted under SHA-256 of the volume key
    /// (dm-crypt's `essiv:sha256`; AES-256 whatever the data key's size).
    EssivSha256,
}

impl IvGen {
    pub fn as_str(self) -> &'static str {
        match self {
            IvGen::Plain64 => "plain64",
            IvGen::Plain => "plain",
            IvGen::EssivSha256 => "essiv:sha256",
        }
    }
}

/// The chaining mode of a sector cipher.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BlockMode {
    /// XTS: the key is two AES keys (data, tweak).
    Xts,
    /// CBC, one chain per sector, restarted with the sector's IV.
    Cbc,
}

impl BlockMode {
    pub fn as_str(self) -> &'static str {
        match self {
            BlockMode::Xts => "xts",
            BlockMode::Cbc => "cbc",
        }
    }
}

/// The cipher specs we run, as cinder and dm-crypt name them.
const SUPPORTED_CIPHERS: &str =
    "aes-xts-plain64, aes-xts-plain, aes-cbc-essiv:sha256, aes-cbc-plain64 or aes-cbc-plain";

/// A cipher spec we can run: AES in XTS (`plain64`, `plain` IVs) or CBC
/// (`essiv:sha256`, `plain64`, `plain` IVs).
///
/// Parsed the way cinder's `decode_cipher` splits it: exactly three
/// dash-separated parts, algorithm, mode, IV generator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CipherSpec {
    pub mode: BlockMode,
    pub ivgen: IvGen,
}

impl CipherSpec {
    pub const AES_XTS_PLAIN64: CipherSpec = CipherSpec {
        mode: BlockMode::Xts,
        ivgen: IvGen::Plain64,
    };
    /// cryptsetup's LUKS1 default before 1.6, and its plain-mode default.
    pub const AES_CBC_ESSIV_SHA256: CipherSpec = CipherSpec {
        mode: BlockMode::Cbc,
        ivgen: IvGen::EssivSha256,
    };
    pub const AES_CBC_PLAIN64: CipherSpec = CipherSpec {
        mode: BlockMode::Cbc,
        ivgen: IvGen::Plain64,
    };
    pub const AES_CBC_PLAIN: CipherSpec = CipherSpec {
        mode: BlockMode::Cbc,
        ivgen: IvGen::Plain,
    };

    /// The cipher name as a LUKS header stores it.
    pub fn cipher_name(&self) -> &'static str {
        "aes"
    }

    /// The cipher mode as a LUKS header stores it (`xts-plain64`,
    /// `cbc-essiv:sha256`).
    pub fn cipher_mode(&self) -> &'static str {
        match (self.mode, self.ivgen) {
            (BlockMode::Xts, IvGen::Plain64) => "xts-plain64",
            (BlockMode::Xts, IvGen::Plain) => "xts-plain",
            (BlockMode::Xts, IvGen::EssivSha256) => "xts-essiv:sha256",
            (BlockMode::Cbc, IvGen::Plain64) => "cbc-plain64",
            (BlockMode::Cbc, IvGen::Plain) => "cbc-plain",
            (BlockMode::Cbc, IvGen::EssivSha256) => "cbc-essiv:sha256",
        }
    }

    /// The chaining mode alone, as recorded on the key (`xts`, `cbc`).
    pub fn mode(&self) -> &'static str {
        self.mode.as_str()
    }

    /// Whether a whole key of `bits` (cryptsetup's `--key-size`) runs
    /// with this cipher: XTS takes two AES keys, CBC one.
    pub fn takes_key_bits(&self, bits: u32) -> bool {
        match self.mode {
            BlockMode::Xts => matches!(bits, 256 | 384 | 512),
            BlockMode::Cbc => matches!(bits, 128 | 192 | 256),
        }
    }

    /// The key sizes [`CipherSpec::takes_key_bits`] accepts, for messages.
    pub fn key_bits_text(&self) -> &'static str {
        match self.mode {
            BlockMode::Xts => "the whole XTS key is 256, 384 or 512 bits",
            BlockMode::Cbc => "the CBC key is 128, 192 or 256 bits",
        }
    }
}

impl FromStr for CipherSpec {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.trim().split('-').collect();
        let [alg, mode, ivgen] = parts.as_slice() else {
            return Err(Error::invalid(
                "cipher",
                "Invalid cipher field in encryption type: expected <algorithm>-<mode>-<ivgen>",
            ));
        };
        let spec = match (alg.to_ascii_lowercase().as_str(), *mode, *ivgen) {
            ("aes", "xts", "plain64") => CipherSpec::AES_XTS_PLAIN64,
            ("aes", "xts", "plain") => CipherSpec {
                mode: BlockMode::Xts,
                ivgen: IvGen::Plain,
            },
            ("aes", "cbc", "essiv:sha256") => CipherSpec::AES_CBC_ESSIV_SHA256,
            ("aes", "cbc", "plain64") => CipherSpec::AES_CBC_PLAIN64,
            ("aes", "cbc", "plain") => CipherSpec::AES_CBC_PLAIN,
            _ => {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    format!(
                        "cipher {} is not supported; use {SUPPORTED_CIPHERS}",
                        s.trim()
                    ),
                )
                .with_field("cipher"));
            }
        };
        Ok(spec)
    }
}

impl fmt::Display for CipherSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "aes-{}", self.cipher_mode())
    }
}

/// What `key_size` means to the tool that formats the volume.
///
/// The same XTS volume type gives different LUKS master keys depending on
/// the path: cryptsetup (os-brick) takes `--key-size` as the whole XTS key,
/// so 256 is AES-128-XTS; QEMU (cinder's RBD path, `qemu-img create -f
/// luks`) takes `aes-256` as the size of each half, so 256 is AES-256-XTS.
/// For CBC, which has one key, both mean the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeySizeConvention {
    /// `key_size` is the whole XTS key (cryptsetup, os-brick, our formatter).
    Cryptsetup,
    /// `key_size` is one XTS half; the master key is twice as long (QEMU).
    Qemu,
}

/// The key a volume type implies, as cinder requests it from the key manager.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KeyRequest {
    /// Lower-case, as cinder takes it from the cipher (`aes`).
    pub algorithm: String,
    pub bit_length: u32,
    /// The cipher's chaining mode. Cinder does not pass it; we record it so
    /// a 512-bit XTS key is accepted by rules that allow 512 only for XTS.
    pub mode: Option<String>,
}

/// A volume type's encryption, parsed and checked.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EncryptionSpec {
    pub provider: Provider,
    pub control_location: ControlLocation,
    /// `None` only for a spec that cannot make a key (cinder refuses it when
    /// a volume is created).
    pub cipher: Option<CipherSpec>,
    /// Bits, cryptsetup's meaning (the whole XTS key; the CBC key).
    pub key_size: Option<u32>,
}

impl EncryptionSpec {
    /// The spec cinder's documentation shows: LUKS, aes-xts-plain64, 256
    /// bits, front-end.
    pub fn luks_default() -> Self {
        EncryptionSpec {
            provider: Provider::Luks,
            control_location: ControlLocation::FrontEnd,
            cipher: Some(CipherSpec::AES_XTS_PLAIN64),
            key_size: Some(256),
        }
    }

    /// Parses the fields as cinder's API takes them (`key_size` may arrive
    /// as a string). Unsupported ciphers and sizes are refused here, with
    /// the field named.
    pub fn parse(
        provider: &str,
        control_location: &str,
        cipher: Option<&str>,
        key_size: Option<&str>,
    ) -> Result<Self> {
        let provider: Provider = provider.parse()?;
        let control_location: ControlLocation = control_location.parse()?;
        let cipher = cipher
            .filter(|c| !c.trim().is_empty())
            .map(str::parse::<CipherSpec>)
            .transpose()?;
        let key_size = key_size
            .map(|k| {
                k.trim()
                    .parse::<u32>()
                    .map_err(|_| Error::invalid("key_size", "must be a non-negative integer"))
            })
            .transpose()?;
        let spec = EncryptionSpec {
            provider,
            control_location,
            cipher,
            key_size,
        };
        spec.check_key_size()?;
        Ok(spec)
    }

    /// The key cinder asks for when a volume of this type is created.
    pub fn key_request(&self) -> Result<KeyRequest> {
        let Some(cipher) = self.cipher else {
            return Err(Error::invalid("cipher", "Invalid encryption spec"));
        };
        let Some(bits) = self.key_size else {
            return Err(Error::invalid(
                "key_size",
                "Invalid encryption spec: key_size is required to create a key",
            ));
        };
        Ok(KeyRequest {
            algorithm: cipher.cipher_name().to_owned(),
            bit_length: bits,
            mode: Some(cipher.mode().to_owned()),
        })
    }

    /// The LUKS master key length in bytes when a volume of this type is
    /// formatted by a tool with the given `key_size` convention.
    pub fn master_key_bytes(&self, convention: KeySizeConvention) -> Result<usize> {
        let bits = self.key_size.unwrap_or(256);
        let xts = self.cipher.is_none_or(|c| c.mode == BlockMode::Xts);
        let bytes = match convention {
            KeySizeConvention::Cryptsetup => bits / 8,
            KeySizeConvention::Qemu if !xts => bits / 8,
            KeySizeConvention::Qemu => {
                if !matches!(bits, 128 | 192 | 256) {
                    return Err(Error::new(
                        ErrorKind::Unsupported,
                        format!("QEMU has no AES with {bits}-bit halves"),
                    )
                    .with_field("key_size"));
                }
                bits / 8 * 2
            }
        };
        Ok(bytes as usize)
    }

    /// The encryption metadata cinder hands to nova and os-brick.
    pub fn metadata(&self, key_id: &crate::model::SecretId) -> EncryptionMetadata {
        EncryptionMetadata {
            encryption_key_id: *key_id,
            control_location: self.control_location,
            cipher: self.cipher.map(|c| c.to_string()),
            key_size: self.key_size,
            provider: self.provider,
        }
    }

    fn check_key_size(&self) -> Result<()> {
        match (self.cipher, self.key_size) {
            (Some(c), Some(bits)) if c.takes_key_bits(bits) => Ok(()),
            (_, None) => Ok(()),
            (Some(c), Some(bits)) => Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "key_size {bits} is not supported for {c}: {}",
                    c.key_bits_text()
                ),
            )
            .with_field("key_size")),
            (None, Some(0)) => Err(Error::invalid("key_size", "must be positive")),
            (None, Some(_)) => Ok(()),
        }
    }
}

/// What cinder's `volume_encryption_metadata_get` returns for an attach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncryptionMetadata {
    pub encryption_key_id: crate::model::SecretId,
    pub control_location: ControlLocation,
    pub cipher: Option<String>,
    pub key_size: Option<u32>,
    pub provider: Provider,
}

impl EncryptionMetadata {
    /// Back to a spec (for the first-attach format).
    pub fn spec(&self) -> Result<EncryptionSpec> {
        Ok(EncryptionSpec {
            provider: self.provider,
            control_location: self.control_location,
            cipher: self.cipher.as_deref().map(str::parse).transpose()?,
            key_size: self.key_size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cinder_documented_spec_implies_aes_256() {
        let spec = EncryptionSpec::parse("luks", "front-end", Some("aes-xts-plain64"), Some("256"))
            .unwrap();
        assert_eq!(spec, EncryptionSpec::luks_default());
        let req = spec.key_request().unwrap();
        assert_eq!(req.algorithm, "aes");
        assert_eq!(req.bit_length, 256);
        assert_eq!(
            spec.master_key_bytes(KeySizeConvention::Cryptsetup)
                .unwrap(),
            32
        );
        assert_eq!(spec.master_key_bytes(KeySizeConvention::Qemu).unwrap(), 64);
    }

    #[test]
    fn legacy_provider_class_paths_map() {
        for (name, p) in [
            ("nova.volume.encryptors.luks.LuksEncryptor", Provider::Luks),
            ("os_brick.encryptors.luks.LuksEncryptor", Provider::Luks),
            ("LuksEncryptor", Provider::Luks),
            ("os_brick.encryptors.luks.Luks2Encryptor", Provider::Luks2),
            (
                "nova.volume.encryptors.cryptsetup.CryptsetupEncryptor",
                Provider::Plain,
            ),
        ] {
            assert_eq!(name.parse::<Provider>().unwrap(), p, "{name}");
        }
        assert_eq!(
            "bogus".parse::<Provider>().unwrap_err().field(),
            Some("provider")
        );
    }

    #[test]
    fn refusals_name_the_field() {
        let e = EncryptionSpec::parse("luks", "middle", None, None).unwrap_err();
        assert_eq!(e.field(), Some("control_location"));
        let e =
            EncryptionSpec::parse("luks", "front-end", Some("aes-xts"), Some("256")).unwrap_err();
        assert_eq!(
            (e.kind(), e.field()),
            (ErrorKind::InvalidInput, Some("cipher"))
        );
        for cipher in ["serpent-xts-plain64", "aes-cbc-essiv:sha1", "aes-xts-benbi"] {
            let e = EncryptionSpec::parse("luks", "front-end", Some(cipher), None).unwrap_err();
            assert_eq!(
                (e.kind(), e.field()),
                (ErrorKind::Unsupported, Some("cipher"))
            );
            assert!(e.context().contains("aes-cbc-essiv:sha256"), "{e}");
        }
        let e = EncryptionSpec::parse("luks", "front-end", Some("aes-cbc-plain64"), Some("512"))
            .unwrap_err();
        assert_eq!(
            (e.kind(), e.field()),
            (ErrorKind::Unsupported, Some("key_size"))
        );
        assert!(e.context().contains("128, 192 or 256"), "{e}");
        let e = EncryptionSpec::parse("luks", "front-end", Some("aes-xts-plain64"), Some("128"))
            .unwrap_err();
        assert_eq!(
            (e.kind(), e.field()),
            (ErrorKind::Unsupported, Some("key_size"))
        );
        let e = EncryptionSpec::parse("luks", "front-end", None, Some("x")).unwrap_err();
        assert_eq!(e.field(), Some("key_size"));
    }

    #[test]
    fn a_spec_without_cipher_cannot_make_a_key() {
        let spec = EncryptionSpec::parse("luks", "front-end", None, Some("256")).unwrap();
        let e = spec.key_request().unwrap_err();
        assert_eq!(e.context(), "Invalid encryption spec");
    }

    #[test]
    fn qemu_convention_refuses_512_bit_halves() {
        let spec = EncryptionSpec::parse("luks", "back-end", Some("aes-xts-plain64"), Some("512"))
            .unwrap();
        assert_eq!(
            spec.master_key_bytes(KeySizeConvention::Cryptsetup)
                .unwrap(),
            64
        );
        assert_eq!(
            spec.master_key_bytes(KeySizeConvention::Qemu)
                .unwrap_err()
                .kind(),
            ErrorKind::Unsupported
        );
    }

    #[test]
    fn cbc_specs_parse_and_keep_one_key() {
        for (name, spec) in [
            ("aes-cbc-essiv:sha256", CipherSpec::AES_CBC_ESSIV_SHA256),
            ("aes-cbc-plain64", CipherSpec::AES_CBC_PLAIN64),
            ("aes-cbc-plain", CipherSpec::AES_CBC_PLAIN),
        ] {
            assert_eq!(name.parse::<CipherSpec>().unwrap(), spec);
            assert_eq!(spec.to_string(), name);
            for bits in ["128", "256"] {
                let e =
                    EncryptionSpec::parse("plain", "front-end", Some(name), Some(bits)).unwrap();
                let req = e.key_request().unwrap();
                assert_eq!(
                    (req.algorithm.as_str(), req.mode.as_deref()),
                    ("aes", Some("cbc"))
                );
                let bytes = bits.parse::<usize>().unwrap() / 8;
                // One AES key: QEMU's aes-256 and cryptsetup's 256 agree.
                for conv in [KeySizeConvention::Cryptsetup, KeySizeConvention::Qemu] {
                    assert_eq!(e.master_key_bytes(conv).unwrap(), bytes);
                }
            }
        }
    }
}
