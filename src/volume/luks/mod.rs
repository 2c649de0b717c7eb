//! LUKS volumes held in a file: format and open LUKS1 and LUKS2, and
//! read and write the payload with AES-XTS or AES-CBC (`plain64`, `plain`,
//! `essiv:sha256` IVs).
//!
//! Everything the code needs about a volume (cipher, hash, key length,
//! where each key slot's material and the payload start, the encryption
//! unit) is read from its header; nothing is assumed, because cryptsetup
//! and QEMU lay volumes out differently. Bad input (a corrupt, crafted or
//! truncated file, a wrong passphrase) is a typed error and leaves the file
//! as it was: every offset and IV a header implies is computed with checked
//! arithmetic, KDF costs are bounded ([`KdfLimits`]) before any work, and a
//! device that holds a LUKS header at either LUKS2 header offset, or any
//! data where the header would go, is never formatted without an explicit
//! [`FormatOptions::danger_overwrite_existing_data`].

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Instant;

use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind, Result};
use crate::secret::SecretBytes;
use crate::volume::spec::CipherSpec;

mod cbc;
mod crypto;
mod header;
mod luks2;
mod luks2_format;
mod options;
pub(crate) mod payload;
mod xts;

pub use crypto::{HashSpec, STRIPES, SectorCipher};
pub use header::{DIGEST_LEN, HEADER_LEN, KeySlot, Luks1Header, MAGIC, SALT_LEN, SECTOR, SLOTS};
pub use luks2::{Luks2Header, Luks2Kdf, Luks2Keyslot, Luks2Segment};
pub use options::{Argon2Cost, FormatOptions, KdfLimits, LuksVersion, Pbkdf2Cost};

use crypto::{af_merge, af_split};
use payload::Payload;

/// Key-slot areas start here and are aligned to this many sectors
/// (4096 bytes), as cryptsetup lays out LUKS1.
const KEYSLOT_ALIGN_SECTORS: u64 = 8;
/// cryptsetup aligns the LUKS1 payload to 1 MiB by default.
pub const DEFAULT_ALIGN_SECTORS: u32 = 2048;
/// cryptsetup's floor for the master-key digest iterations.
const MIN_DIGEST_ITERATIONS: u32 = 1000;

/// Which LUKS version a header is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LuksHeader {
    V1(Box<Luks1Header>),
    V2(Box<Luks2Header>),
}

impl LuksHeader {
    /// Reads and checks the header of the volume at `path`.
    pub fn read(path: &Path) -> Result<Self> {
        let mut file = open_file(path, false)?;
        let len = file_len(&file)?;
        read_header(&mut file, len)
    }

    pub fn version(&self) -> u16 {
        match self {
            LuksHeader::V1(_) => 1,
            LuksHeader::V2(_) => 2,
        }
    }
}

impl fmt::Display for LuksHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LuksHeader::V1(h) => h.fmt(f),
            LuksHeader::V2(h) => h.fmt(f),
        }
    }
}

/// Whether the file holds a LUKS header, as `cryptsetup isLuks` answers:
/// the LUKS magic (version 1 or 2) at byte 0, or a LUKS2 secondary header
/// at one of the offsets cryptsetup looks at, so a LUKS2 volume whose
/// primary header is damaged is still LUKS. A file too short to hold one is
/// not LUKS.
pub fn is_luks(path: &Path) -> Result<bool> {
    let mut file = open_file(path, false)?;
    let len = file_len(&file)?;
    Ok(luks_magic_at(&mut file, len)?.is_some())
}

/// The first byte offset where a LUKS header's magic stands, if any.
fn luks_magic_at(file: &mut File, len: u64) -> Result<Option<u64>> {
    let mut head = [0u8; 8];
    if len >= 8 {
        read_exact_at(file, 0, &mut head)?;
        if head[..6] == MAGIC && matches!(u16::from_be_bytes([head[6], head[7]]), 1 | 2) {
            return Ok(Some(0));
        }
    }
    luks2::secondary_magic_at(file, len)
}

/// An unlocked LUKS volume in a file: the master key is held (wiped on
/// drop) and the payload can be read and written.
pub struct LuksVolume {
    payload: Payload,
    header: LuksHeader,
    master_key: SecretBytes,
    opened_slot: usize,
}

impl LuksVolume {
    /// Formats the file at `path` as LUKS1 or LUKS2 (`opts.version`) with
    /// `passphrase` in key slot 0.
    ///
    /// Refuses (`Conflict`) a file that already holds a LUKS header at
    /// byte 0 or at a LUKS2 secondary-header offset, or any non-zero byte
    /// where the new header and key slots go: a volume is formatted once,
    /// on its first attach, and existing data is destroyed only with
    /// [`FormatOptions::danger_overwrite_existing_data`]. Refuses a file too
    /// small for the header, the key slots and one payload sector. In every
    /// case the file is not touched.
    pub fn format(path: &Path, passphrase: &SecretBytes, opts: &FormatOptions) -> Result<Self> {
        let mut file = open_file(path, true)?;
        let len = file_len(&file)?;
        if !opts.overwrite
            && let Some(at) = luks_magic_at(&mut file, len)?
        {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "{} is already a LUKS volume (LUKS magic at byte {at}); refusing to format it again",
                    path.display()
                ),
            ));
        }
        // Fails early on a key length the cipher does not take.
        SectorCipher::new(&vec![0u8; opts.key_bytes], opts.cipher, 512)?;
        match opts.version {
            LuksVersion::Luks1 => format_v1(file, len, passphrase, opts, path),
            LuksVersion::Luks2 => luks2_format::format(file, len, passphrase, opts, path),
        }
    }

    /// Opens the LUKS1 or LUKS2 volume at `path` with `passphrase`, trying
    /// every active key slot. A passphrase that opens none is `Integrity`;
    /// a file that is not LUKS, is corrupt or truncated is `InvalidInput`;
    /// a cipher, hash or KDF we do not run is `Unsupported`; a KDF cost
    /// above the default [`KdfLimits`] is `TooLarge`. A LUKS2 volume whose
    /// primary header is damaged opens through its secondary header.
    pub fn open(path: &Path, passphrase: &SecretBytes) -> Result<Self> {
        LuksVolume::open_with_limits(path, passphrase, &KdfLimits::default())
    }

    /// [`LuksVolume::open`] with KDF limits of the caller's choosing.
    pub fn open_with_limits(
        path: &Path,
        passphrase: &SecretBytes,
        limits: &KdfLimits,
    ) -> Result<Self> {
        open_volume(path, passphrase, limits, true)
    }

    /// [`LuksVolume::open`] without write access to the file (cryptsetup's
    /// `--readonly`), so a read-only device or file opens for reading.
    /// Writing the payload or changing key slots is then refused
    /// (`PermissionDenied`) before anything is encrypted or written.
    pub fn open_read_only(path: &Path, passphrase: &SecretBytes) -> Result<Self> {
        LuksVolume::open_read_only_with_limits(path, passphrase, &KdfLimits::default())
    }

    /// [`LuksVolume::open_read_only`] with KDF limits of the caller's
    /// choosing.
    pub fn open_read_only_with_limits(
        path: &Path,
        passphrase: &SecretBytes,
        limits: &KdfLimits,
    ) -> Result<Self> {
        open_volume(path, passphrase, limits, false)
    }

    /// True when the volume was opened with [`LuksVolume::open_read_only`].
    pub fn is_read_only(&self) -> bool {
        self.payload.is_read_only()
    }

    /// The header this volume was opened with.
    pub fn header(&self) -> &LuksHeader {
        &self.header
    }

    /// The master (volume) key.
    pub fn master_key(&self) -> &SecretBytes {
        &self.master_key
    }

    /// The key slot the passphrase opened.
    pub fn opened_slot(&self) -> usize {
        self.opened_slot
    }

    /// Payload bytes available.
    pub fn payload_len(&self) -> u64 {
        self.payload.len()
    }

    /// Byte offset of the payload in the file.
    pub fn payload_start(&self) -> u64 {
        self.payload.start()
    }

    /// Bytes per encryption unit (512 for LUKS1).
    pub fn sector_size(&self) -> usize {
        self.payload.cipher().unit()
    }

    /// The payload's cipher spec.
    pub fn cipher(&self) -> CipherSpec {
        self.payload.cipher().spec()
    }

    /// Reads and decrypts `buf.len()` payload bytes from `offset`.
    pub fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.payload.read_at(offset, buf)
    }

    /// Encrypts and writes `data` at payload `offset`. Partial units at
    /// either end are read, patched and rewritten.
    pub fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        self.payload.write_at(offset, data)
    }

    /// Flushes written payload to the disk.
    pub fn sync(&mut self) -> Result<()> {
        self.payload.sync()
    }

    /// Adds `passphrase` in the first free LUKS1 key slot; returns the slot.
    pub fn add_passphrase(&mut self, passphrase: &SecretBytes, cost: Pbkdf2Cost) -> Result<usize> {
        self.payload.check_writable()?;
        let LuksHeader::V1(h) = &self.header else {
            return Err(luks2::read_only("adding a passphrase"));
        };
        let mut h = h.clone();
        let Some(slot) = h.key_slots.iter().position(|s| !s.active) else {
            return Err(Error::new(
                ErrorKind::Conflict,
                "all 8 key slots are in use",
            ));
        };
        let hash = HashSpec::parse(h.hash_spec())?;
        let cipher = luks1_cipher(&h)?;
        let (iterations, _) = resolve_cost(cost, hash);
        let (entry, material) = seal_key_slot(
            &self.master_key,
            passphrase,
            h.key_slots[slot],
            hash,
            cipher,
            iterations,
        )?;
        h.key_slots[slot] = entry;
        // Material first: a crash between the writes leaves a disabled slot
        // over unused material, never an enabled slot over garbage.
        let at = u64::from(entry.key_material_offset) * SECTOR;
        self.raw_write(at, &material)?;
        self.raw_write(0, &h.to_bytes())?;
        self.sync()?;
        self.header = LuksHeader::V1(h);
        Ok(slot)
    }

    /// Removes the key slot `passphrase` opens and wipes its material.
    /// Removing the last passphrase is refused (`Conflict`): the volume
    /// would be lost.
    pub fn remove_passphrase(&mut self, passphrase: &SecretBytes) -> Result<usize> {
        self.payload.check_writable()?;
        let LuksHeader::V1(h) = &self.header else {
            return Err(luks2::read_only("removing a passphrase"));
        };
        let (slot, _) = unlock_v1(
            self.payload.file_mut(),
            h,
            passphrase,
            &KdfLimits::default(),
            u64::MAX,
            Path::new("volume"),
        )?;
        self.kill_slot(slot)?;
        Ok(slot)
    }

    /// Disables key slot `slot` and overwrites its material with random
    /// bytes. Refuses the last active slot.
    pub fn kill_slot(&mut self, slot: usize) -> Result<()> {
        self.payload.check_writable()?;
        let LuksHeader::V1(h) = &self.header else {
            return Err(luks2::read_only("removing a key slot"));
        };
        let mut h = h.clone();
        match h.key_slots.get(slot) {
            Some(s) if s.active => {}
            _ => {
                return Err(Error::invalid(
                    "slot",
                    format!("key slot {slot} is not active"),
                ));
            }
        }
        if h.key_slots.iter().filter(|s| s.active).count() == 1 {
            return Err(Error::new(
                ErrorKind::Conflict,
                "refusing to remove the last passphrase of the volume",
            ));
        }
        let entry = &mut h.key_slots[slot];
        entry.active = false;
        entry.iterations = 0;
        entry.salt = [0; SALT_LEN];
        let at = u64::from(entry.key_material_offset) * SECTOR;
        let mut wipe = vec![0u8; (h.key_material_sectors() * SECTOR) as usize];
        crate::crypto::fill_random(&mut wipe)?;
        self.raw_write(0, &h.to_bytes())?;
        self.raw_write(at, &wipe)?;
        self.sync()?;
        self.header = LuksHeader::V1(h);
        Ok(())
    }

    // ---- helpers ----

    fn raw_write(&mut self, at: u64, data: &[u8]) -> Result<()> {
        self.payload.check_writable()?;
        write_at(self.payload.file_mut(), at, data, Path::new("volume"))
    }
}

impl fmt::Debug for LuksVolume {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LuksVolume")
            .field("version", &self.header.version())
            .field("master_key", &self.master_key)
            .field("payload", &self.payload)
            .field("opened_slot", &self.opened_slot)
            .finish_non_exhaustive()
    }
}

/// Opens the LUKS volume at `path`, read-write or (`write` false) with a
/// read-only file and a read-only payload.
fn open_volume(
    path: &Path,
    passphrase: &SecretBytes,
    limits: &KdfLimits,
    write: bool,
) -> Result<LuksVolume> {
    let mut file = open_file(path, write)?;
    let len = file_len(&file)?;
    let header = read_header(&mut file, len)?;
    let mut volume = match header {
        LuksHeader::V1(h) => open_v1(file, *h, len, passphrase, limits, path)?,
        LuksHeader::V2(h) => luks2::open(file, *h, len, passphrase, limits, path)?,
    };
    if !write {
        volume.payload.set_read_only();
    }
    Ok(volume)
}

/// LUKS1: the header, key slot 0 and the payload from the first aligned
/// sector after the key-slot areas.
fn format_v1(
    mut file: File,
    len: u64,
    passphrase: &SecretBytes,
    opts: &FormatOptions,
    path: &Path,
) -> Result<LuksVolume> {
    if opts.sector_size != 512 {
        return Err(Error::new(
            ErrorKind::Unsupported,
            "LUKS1 encrypts 512-byte sectors only; a larger sector size needs LUKS2",
        )
        .with_field("sector_size"));
    }
    let key_bytes = opts.key_bytes as u64;
    let slot_sectors = (key_bytes * u64::from(STRIPES))
        .div_ceil(SECTOR)
        .next_multiple_of(KEYSLOT_ALIGN_SECTORS);
    let slots_end = KEYSLOT_ALIGN_SECTORS + SLOTS as u64 * slot_sectors;
    let align = u64::from(opts.align_sectors.max(1));
    let payload_offset = slots_end.next_multiple_of(align);
    check_room(len, payload_offset * SECTOR, SECTOR, "LUKS1", opts)?;
    let payload_offset = u32::try_from(payload_offset)
        .map_err(|_| Error::invalid("align_sectors", "payload offset out of range"))?;
    if !opts.overwrite {
        refuse_existing_data(&mut file, u64::from(payload_offset) * SECTOR, path)?;
    }
    let master_key = opts.master_key()?;
    let (slot_iterations, digest_iterations) = resolve_cost(opts.cost, opts.hash);
    let mut digest_salt = [0u8; SALT_LEN];
    crate::crypto::fill_random(&mut digest_salt)?;
    let mut digest = [0u8; DIGEST_LEN];
    opts.hash.pbkdf2(
        master_key.expose_secret(),
        &digest_salt,
        digest_iterations,
        &mut digest,
    );
    let mut slots = std::array::from_fn(|i| KeySlot {
        active: false,
        iterations: 0,
        salt: [0; SALT_LEN],
        key_material_offset: (KEYSLOT_ALIGN_SECTORS + i as u64 * slot_sectors) as u32,
        stripes: STRIPES,
    });
    let (slot0, material) = seal_key_slot(
        &master_key,
        passphrase,
        slots[0],
        opts.hash,
        opts.cipher,
        slot_iterations,
    )?;
    slots[0] = slot0;
    let header = Luks1Header::new(
        opts.cipher.cipher_name(),
        opts.cipher.cipher_mode(),
        opts.hash.as_str(),
        payload_offset,
        opts.key_bytes as u32,
        digest,
        digest_salt,
        digest_iterations,
        &uuid::Uuid::new_v4().hyphenated().to_string(),
        slots,
    )?;

    // Header area: header, zeroed key-slot areas, slot 0's material.
    let mut area = vec![0u8; header.payload_start() as usize];
    area[..HEADER_LEN].copy_from_slice(&header.to_bytes());
    let at = u64::from(slot0.key_material_offset) * SECTOR;
    area[at as usize..at as usize + material.len()].copy_from_slice(&material);
    write_at(&mut file, 0, &area, path)?;
    file.sync_data().map_err(|e| io_error("sync", path, e))?;
    tracing::info!(volume = %path.display(), uuid = header.uuid(), "formatted LUKS1 volume");

    let cipher = SectorCipher::new(master_key.expose_secret(), opts.cipher, 512)?;
    let payload_start = header.payload_start();
    Ok(LuksVolume {
        payload: Payload::new(file, cipher, payload_start, len - payload_start, 0)?,
        header: LuksHeader::V1(Box::new(header)),
        master_key,
        opened_slot: 0,
    })
}

/// Refuses a file without room for the metadata (`payload_start` bytes)
/// and one payload sector of `unit` bytes.
fn check_room(
    len: u64,
    payload_start: u64,
    unit: u64,
    what: &str,
    opts: &FormatOptions,
) -> Result<()> {
    if len < payload_start.saturating_add(unit) {
        return Err(Error::invalid(
            "volume",
            format!(
                "{len} bytes is too small for a {what} volume with a {}-byte key: need more than {payload_start} bytes",
                opts.key_bytes
            ),
        ));
    }
    Ok(())
}

fn open_v1(
    mut file: File,
    h: Luks1Header,
    len: u64,
    passphrase: &SecretBytes,
    limits: &KdfLimits,
    path: &Path,
) -> Result<LuksVolume> {
    if h.payload_offset == 0 {
        return Err(Error::new(
            ErrorKind::Unsupported,
            "LUKS header with a detached payload (payload offset 0)",
        ));
    }
    let cipher_spec = luks1_cipher(&h)?;
    HashSpec::parse(h.hash_spec())?;
    if len < h.payload_start() {
        return Err(truncated(path, len, h.payload_start()));
    }
    let (slot, master_key) = unlock_v1(&mut file, &h, passphrase, limits, len, path)?;
    let cipher = SectorCipher::new(master_key.expose_secret(), cipher_spec, 512)?;
    let payload_start = h.payload_start();
    Ok(LuksVolume {
        payload: Payload::new(file, cipher, payload_start, len - payload_start, 0)?,
        header: LuksHeader::V1(Box::new(h)),
        master_key,
        opened_slot: slot,
    })
}

/// The bulk cipher a LUKS1 header names, if we run it.
fn luks1_cipher(h: &Luks1Header) -> Result<CipherSpec> {
    let spec: CipherSpec = format!("{}-{}", h.cipher_name(), h.cipher_mode()).parse()?;
    SectorCipher::new(&vec![0u8; h.key_bytes as usize], spec, 512)?;
    Ok(spec)
}

/// Tries each active slot; the first whose merged key matches the digest
/// wins. `len` bounds the key material (u64::MAX: already checked). Every
/// slot's and the digest's cost is checked against `limits` first.
fn unlock_v1(
    file: &mut File,
    h: &Luks1Header,
    passphrase: &SecretBytes,
    limits: &KdfLimits,
    len: u64,
    path: &Path,
) -> Result<(usize, SecretBytes)> {
    let hash = HashSpec::parse(h.hash_spec())?;
    let cipher = luks1_cipher(h)?;
    limits.check_pbkdf2(h.mk_digest_iterations, "the master-key digest")?;
    for (i, slot) in h.key_slots.iter().enumerate().filter(|(_, s)| s.active) {
        limits.check_pbkdf2(slot.iterations, &format!("key slot {i}"))?;
    }
    let key_len = h.key_bytes as usize;
    let area_len = (h.key_material_sectors() * SECTOR) as usize;
    let mut any_active = false;
    for (i, slot) in h.key_slots.iter().enumerate() {
        if !slot.active {
            continue;
        }
        any_active = true;
        let at = u64::from(slot.key_material_offset) * SECTOR;
        if at + area_len as u64 > len {
            return Err(truncated(path, len, at + area_len as u64));
        }
        let mut slot_key = Zeroizing::new(vec![0u8; key_len]);
        hash.pbkdf2(
            passphrase.expose_secret(),
            &slot.salt,
            slot.iterations,
            &mut slot_key,
        );
        let mut material = Zeroizing::new(vec![0u8; area_len]);
        read_exact_at(file, at, &mut material)?;
        SectorCipher::new(&slot_key, cipher, 512)?.decrypt(&mut material, 0)?;
        let candidate = af_merge(&material, key_len, slot.stripes, hash);
        let mut digest = [0u8; DIGEST_LEN];
        hash.pbkdf2(
            candidate.expose_secret(),
            &h.mk_digest_salt,
            h.mk_digest_iterations,
            &mut digest,
        );
        if bool::from(subtle::ConstantTimeEq::ct_eq(&digest[..], &h.mk_digest[..])) {
            return Ok((i, candidate));
        }
    }
    Err(Error::new(
        ErrorKind::Integrity,
        if any_active {
            "no key slot opens with this passphrase"
        } else {
            "the volume has no active key slot"
        },
    ))
}

/// Derives the slot key, AF-splits and encrypts the master key: the slot's
/// header entry and its key material (a whole number of sectors).
fn seal_key_slot(
    master_key: &SecretBytes,
    passphrase: &SecretBytes,
    mut slot: KeySlot,
    hash: HashSpec,
    cipher: CipherSpec,
    iterations: u32,
) -> Result<(KeySlot, Zeroizing<Vec<u8>>)> {
    crate::crypto::fill_random(&mut slot.salt)?;
    slot.iterations = iterations.max(1);
    slot.active = true;
    slot.stripes = STRIPES;
    let mut slot_key = Zeroizing::new(vec![0u8; master_key.len()]);
    hash.pbkdf2(
        passphrase.expose_secret(),
        &slot.salt,
        slot.iterations,
        &mut slot_key,
    );
    let mut material = af_split(master_key.expose_secret(), STRIPES, hash)?;
    let padded = material.len().next_multiple_of(SECTOR as usize);
    material.resize(padded, 0);
    SectorCipher::new(&slot_key, cipher, 512)?.encrypt(&mut material, 0)?;
    Ok((slot, material))
}

/// (slot iterations, digest iterations) for a cost.
fn resolve_cost(cost: Pbkdf2Cost, hash: HashSpec) -> (u32, u32) {
    match cost {
        Pbkdf2Cost::Iterations(n) => (n.max(1), n.max(1)),
        Pbkdf2Cost::IterTime(t) => {
            let per_ms = pbkdf2_rate_per_ms(hash);
            let slot = (per_ms * t.as_millis() as f64).clamp(1000.0, f64::from(u32::MAX));
            let digest = (slot / 16.0).max(f64::from(MIN_DIGEST_ITERATIONS));
            (slot as u32, digest as u32)
        }
    }
}

/// PBKDF2 iterations per millisecond on this machine, measured.
fn pbkdf2_rate_per_ms(hash: HashSpec) -> f64 {
    let mut iterations = 1000u32;
    loop {
        let mut out = [0u8; 32];
        let start = Instant::now();
        hash.pbkdf2(b"benchmark", &[0u8; SALT_LEN], iterations, &mut out);
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        if ms >= 50.0 || iterations >= 1 << 28 {
            return f64::from(iterations) / ms.max(0.001);
        }
        iterations *= 4;
    }
}

/// The header of the volume: LUKS1 at byte 0, or LUKS2 from its primary
/// header or, when that is damaged or gone, its secondary one.
///
/// As cryptsetup does, a primary that is not a valid header (no magic, a
/// damaged version field, a LUKS1 header that does not parse, a LUKS2 copy
/// whose checksum or JSON is bad) does not end the search: a valid LUKS2
/// secondary copy is used. A valid LUKS1 header at byte 0 is always LUKS1.
fn read_header(file: &mut File, len: u64) -> Result<LuksHeader> {
    let mut head = vec![0u8; len.min(4096) as usize];
    read_exact_at(file, 0, &mut head)?;
    let primary = if head.len() < 8 || head[..6] != MAGIC {
        Error::invalid("volume", "not a LUKS volume (no LUKS magic)")
    } else {
        match u16::from_be_bytes([head[6], head[7]]) {
            1 => match Luks1Header::parse(&head) {
                Ok(h) => return Ok(LuksHeader::V1(Box::new(h))),
                Err(e) => e,
            },
            // Reads the secondary copies itself when the primary is bad.
            2 => return Ok(LuksHeader::V2(Box::new(Luks2Header::read(file, len)?))),
            v => Error::new(
                ErrorKind::Unsupported,
                format!("LUKS version {v} is not supported"),
            ),
        }
    };
    match Luks2Header::read_secondary(file, len) {
        Some(h) => Ok(LuksHeader::V2(Box::new(h))),
        None => Err(primary),
    }
}

/// Refuses (`Conflict`) a file with any non-zero byte in its first
/// `area` bytes, which a format would overwrite.
fn refuse_existing_data(file: &mut File, area: u64, path: &Path) -> Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut at = 0u64;
    while at < area {
        let n = (area - at).min(buf.len() as u64) as usize;
        read_exact_at(file, at, &mut buf[..n])?;
        if let Some(i) = buf[..n].iter().position(|&b| b != 0) {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "{} holds data at byte {} where the LUKS header would go; refusing to format over it",
                    path.display(),
                    at + i as u64
                ),
            ));
        }
        at += n as u64;
    }
    Ok(())
}

pub(crate) fn open_file(path: &Path, write: bool) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(write)
        .open(path)
        .map_err(|e| {
            let kind = if e.kind() == std::io::ErrorKind::NotFound {
                ErrorKind::NotFound
            } else {
                ErrorKind::Storage
            };
            let hint = if write && e.kind() != std::io::ErrorKind::NotFound {
                " for writing (open_read_only opens a volume for reading)"
            } else {
                ""
            };
            Error::new(kind, format!("cannot open volume {}{hint}", path.display())).with_source(e)
        })
}

pub(crate) fn file_len(file: &File) -> Result<u64> {
    file.metadata()
        .map(|m| m.len())
        .map_err(|e| Error::new(ErrorKind::Storage, "cannot stat volume").with_source(e))
}

pub(crate) fn read_exact_at(file: &mut File, at: u64, buf: &mut [u8]) -> Result<()> {
    file.seek(SeekFrom::Start(at))
        .and_then(|_| file.read_exact(buf))
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::invalid("volume", "file ends before the data its header points to")
                    .with_source(e)
            } else {
                Error::new(ErrorKind::Storage, "cannot read volume").with_source(e)
            }
        })
}

pub(crate) fn write_at(file: &mut File, at: u64, data: &[u8], path: &Path) -> Result<()> {
    file.seek(SeekFrom::Start(at))
        .and_then(|_| file.write_all(data))
        .map_err(|e| io_error("write", path, e))
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::new(
        ErrorKind::Storage,
        format!("cannot {what} volume {}", path.display()),
    )
    .with_source(e)
}

pub(crate) fn truncated(path: &Path, len: u64, need: u64) -> Error {
    Error::invalid(
        "volume",
        format!(
            "{} is truncated: {len} bytes, its header points to byte {need}",
            path.display()
        ),
    )
}

impl fmt::Display for Luks1Header {
    /// The fields as `cryptsetup luksDump` shows them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "LUKS header information")?;
        writeln!(f)?;
        writeln!(f, "Version:       \t1")?;
        writeln!(f, "Cipher name:   \t{}", self.cipher_name())?;
        writeln!(f, "Cipher mode:   \t{}", self.cipher_mode())?;
        writeln!(f, "Hash spec:     \t{}", self.hash_spec())?;
        writeln!(f, "Payload offset:\t{}", self.payload_offset)?;
        writeln!(f, "MK bits:       \t{}", self.key_bytes * 8)?;
        writeln!(f, "MK digest:     \t{}", spaced_hex(&self.mk_digest))?;
        writeln!(f, "MK salt:       \t{}", spaced_hex(&self.mk_digest_salt))?;
        writeln!(f, "MK iterations: \t{}", self.mk_digest_iterations)?;
        writeln!(f, "UUID:          \t{}", self.uuid())?;
        writeln!(f)?;
        for (i, s) in self.key_slots.iter().enumerate() {
            if s.active {
                writeln!(f, "Key Slot {i}: ENABLED")?;
                writeln!(f, "\tIterations:         \t{}", s.iterations)?;
                writeln!(f, "\tSalt:               \t{}", spaced_hex(&s.salt))?;
                writeln!(f, "\tKey material offset:\t{}", s.key_material_offset)?;
                writeln!(f, "\tAF stripes:         \t{}", s.stripes)?;
            } else {
                writeln!(f, "Key Slot {i}: DISABLED")?;
            }
        }
        Ok(())
    }
}

fn spaced_hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}
