//! What a caller chooses: format options, PBKDF2 cost, and the KDF limits
//! a header is held to before any key derivation runs.

use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};
use crate::secret::SecretBytes;
use crate::volume::spec::{CipherSpec, EncryptionSpec, KeySizeConvention, Provider};

use super::{DEFAULT_ALIGN_SECTORS, HashSpec};

/// The most KDF work a header may ask for, checked before any of it is
/// done: a crafted header cannot make the host allocate gigabytes or spin
/// for minutes. The defaults cover what cryptsetup writes (its LUKS2
/// default is argon2id with 1 GiB and the time cost its benchmark picks for
/// 2 s; its PBKDF2 count for 2 s is a few million on current CPUs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfLimits {
    /// PBKDF2 iterations of one key slot or digest.
    pub pbkdf2_iterations: u32,
    /// Argon2 memory of one key slot, in KiB.
    pub argon2_memory_kib: u32,
    /// Argon2 passes (time cost) of one key slot.
    pub argon2_time: u32,
}

impl Default for KdfLimits {
    /// 2^25 PBKDF2 iterations (about 20 s of PBKDF2-SHA256 on one core of
    /// the CI machine), 1 GiB and 32 passes of Argon2.
    fn default() -> Self {
        KdfLimits {
            pbkdf2_iterations: 1 << 25,
            argon2_memory_kib: 1 << 20,
            argon2_time: 32,
        }
    }
}

impl KdfLimits {
    pub(crate) fn check_pbkdf2(&self, iterations: u32, what: &str) -> Result<()> {
        if iterations == 0 {
            return Err(Error::invalid(
                "iterations",
                format!("corrupt LUKS header: {what} has no PBKDF2 iterations"),
            ));
        }
        over_limit(
            iterations,
            self.pbkdf2_iterations,
            what,
            "PBKDF2 iterations",
            "pbkdf2_iterations",
        )
    }

    pub(crate) fn check_argon2(&self, memory_kib: u32, time: u32, what: &str) -> Result<()> {
        over_limit(
            memory_kib,
            self.argon2_memory_kib,
            what,
            "KiB of Argon2 memory",
            "argon2_memory_kib",
        )?;
        over_limit(time, self.argon2_time, what, "Argon2 passes", "argon2_time")
    }
}

fn over_limit(asked: u32, limit: u32, what: &str, unit: &str, field: &'static str) -> Result<()> {
    if asked <= limit {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::TooLarge,
        format!("{what} asks for {asked} {unit}, above the limit of {limit} (KdfLimits::{field})"),
    )
    .with_field(field))
}

/// How much PBKDF2 work a key slot costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pbkdf2Cost {
    /// Exactly this many iterations for the key slot and the master-key
    /// digest (tests and interop use small counts).
    Iterations(u32),
    /// Measured on this machine: as many iterations as take this long
    /// (cryptsetup's `--iter-time`; the digest gets 1/16 of it, at least
    /// 1000, as cryptsetup does).
    IterTime(Duration),
}

impl Default for Pbkdf2Cost {
    /// cryptsetup's LUKS1 default, 2 seconds.
    fn default() -> Self {
        Pbkdf2Cost::IterTime(Duration::from_millis(2000))
    }
}

/// Which on-disk format [`super::LuksVolume::format`] writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LuksVersion {
    /// LUKS1: cinder's `luks` provider and nova's native QEMU path.
    #[default]
    Luks1,
    /// LUKS2 (os-brick's `luks2` provider): two checksummed header copies
    /// with JSON metadata, one key slot, one crypt segment.
    Luks2,
}

/// The Argon2id cost of a LUKS2 key slot (cryptsetup's `--pbkdf argon2id
/// --pbkdf-memory --pbkdf-force-iterations --pbkdf-parallel`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Argon2Cost {
    /// Passes over the memory.
    pub time: u32,
    pub memory_kib: u32,
    /// Lanes.
    pub cpus: u32,
}

impl Default for Argon2Cost {
    /// cryptsetup's LUKS2 defaults: 1 GiB, at most 4 lanes, and the pass
    /// count its benchmark settles on for 2 s on a server core with that
    /// much memory (4).
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Argon2Cost {
            time: 4,
            memory_kib: 1 << 20,
            cpus: cores.min(4) as u32,
        }
    }
}

/// How to format a LUKS volume.
#[derive(Clone, Debug)]
pub struct FormatOptions {
    /// LUKS1 unless asked (LUKS2 for the `luks2` provider).
    pub version: LuksVersion,
    pub cipher: CipherSpec,
    /// The whole XTS master key: 32 (AES-128-XTS), 48 or 64 (AES-256-XTS).
    pub key_bytes: usize,
    pub hash: HashSpec,
    /// PBKDF2 cost of the LUKS1 key slot and of the master-key digest (both
    /// versions); the LUKS2 key slot too unless `argon2` is set.
    pub cost: Pbkdf2Cost,
    /// LUKS2 only: an Argon2id key slot of this cost instead of PBKDF2.
    pub argon2: Option<Argon2Cost>,
    /// Payload alignment in sectors (cryptsetup: 2048, QEMU: none, i.e. 8).
    pub align_sectors: u32,
    /// LUKS2 only: the encryption sector size, 512 to 4096 (LUKS1: 512).
    pub sector_size: u32,
    pub(super) master_key: Option<SecretBytes>,
    pub(super) overwrite: bool,
}

impl Default for FormatOptions {
    /// cryptsetup 2.1+'s LUKS1 defaults: aes-xts-plain64 with a 512-bit
    /// key, sha256, 2 s of PBKDF2, 1 MiB alignment.
    fn default() -> Self {
        FormatOptions {
            version: LuksVersion::Luks1,
            cipher: CipherSpec::AES_XTS_PLAIN64,
            key_bytes: 64,
            hash: HashSpec::Sha256,
            cost: Pbkdf2Cost::default(),
            argon2: None,
            align_sectors: DEFAULT_ALIGN_SECTORS,
            sector_size: 512,
            master_key: None,
            overwrite: false,
        }
    }
}

impl FormatOptions {
    /// What os-brick asks cryptsetup for: the volume type's cipher and
    /// `key_size` as cryptsetup counts it (the whole XTS key; the CBC key);
    /// for the `luks2` provider a LUKS2 volume with cryptsetup's default
    /// Argon2id key slot. Plain volumes are never formatted.
    pub fn from_spec(spec: &EncryptionSpec) -> Result<Self> {
        let luks2 = match spec.provider {
            Provider::Luks => false,
            Provider::Luks2 => true,
            Provider::Plain => {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    "plain dm-crypt volumes have no header and are never formatted",
                )
                .with_field("provider"));
            }
        };
        Ok(FormatOptions {
            version: if luks2 {
                LuksVersion::Luks2
            } else {
                LuksVersion::Luks1
            },
            argon2: luks2.then(Argon2Cost::default),
            cipher: spec.cipher.unwrap_or(CipherSpec::AES_XTS_PLAIN64),
            key_bytes: spec.master_key_bytes(KeySizeConvention::Cryptsetup)?,
            ..FormatOptions::default()
        })
    }

    pub fn with_version(mut self, version: LuksVersion) -> Self {
        self.version = version;
        self
    }

    /// LUKS2: an Argon2id key slot of this cost (`None`: PBKDF2).
    pub fn with_argon2(mut self, cost: Option<Argon2Cost>) -> Self {
        self.argon2 = cost;
        self
    }

    pub fn with_cipher(mut self, cipher: CipherSpec) -> Self {
        self.cipher = cipher;
        self
    }

    pub fn with_cost(mut self, cost: Pbkdf2Cost) -> Self {
        self.cost = cost;
        self
    }

    pub fn with_key_bytes(mut self, key_bytes: usize) -> Self {
        self.key_bytes = key_bytes;
        self
    }

    /// Uses this master key instead of a random one (known-answer tests,
    /// re-creating a header for a key you hold).
    pub fn with_master_key(mut self, key: SecretBytes) -> Self {
        self.key_bytes = key.len();
        self.master_key = Some(key);
        self
    }

    /// The given master key, or a fresh random one.
    pub(super) fn master_key(&self) -> Result<SecretBytes> {
        match &self.master_key {
            Some(k) => Ok(k.clone()),
            None => SecretBytes::random(self.key_bytes),
        }
    }

    /// Formats even a device that holds a LUKS header (at either LUKS2
    /// header offset) or other data where the new header goes, destroying
    /// it. Without this, [`LuksVolume::format`] refuses such a device; the
    /// attach path never sets it.
    pub fn danger_overwrite_existing_data(mut self) -> Self {
        self.overwrite = true;
        self
    }
}
