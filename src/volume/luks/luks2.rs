//! Opening LUKS2 volumes (cryptsetup's or ours): the binary header, its
//! checksum, the JSON metadata, pbkdf2 and argon2 key slots, the digest
//! and the crypt segment. Formatting is `luks2_format.rs`; changing the
//! key slots of a LUKS2 volume (adding or removing a passphrase) is
//! `Unsupported`.

use std::fmt;
use std::fs::File;
use std::path::Path;

use base64::Engine as _;
use serde_json::Value;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind, Result};
use crate::secret::SecretBytes;
use crate::volume::luks::crypto::{HashSpec, SectorCipher, af_merge};
use crate::volume::luks::payload::Payload;
use crate::volume::luks::{
    Argon2Cost, KdfLimits, LuksHeader, LuksVolume, MAGIC, SECTOR, read_exact_at, truncated,
};
use crate::volume::spec::CipherSpec;

pub(crate) const BINARY_LEN: usize = 4096;
pub(crate) const SECONDARY_MAGIC: [u8; 6] = *b"SKUL\xba\xbe";
const MAX_ARGON2_CPUS: u32 = 16;
/// Where a secondary header can stand: right after a primary of each size
/// cryptsetup writes (16 KiB to 4 MiB), the offsets cryptsetup itself
/// scans when the primary is gone.
pub(crate) const SECONDARY_OFFSETS: [u64; 9] = [
    0x4000, 0x8000, 0x10000, 0x20000, 0x40000, 0x80000, 0x10_0000, 0x20_0000, 0x40_0000,
];

/// The parts of a LUKS2 header we use. Salts and digests are public.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Luks2Header {
    pub hdr_size: u64,
    /// Where this copy says it stands (0 for the primary).
    pub hdr_offset: u64,
    pub seqid: u64,
    pub label: String,
    pub checksum_alg: String,
    pub uuid: String,
    pub keyslots: Vec<Luks2Keyslot>,
    pub digests: Vec<Luks2Digest>,
    pub segments: Vec<Luks2Segment>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Luks2Keyslot {
    pub id: u32,
    /// Bytes of the key this slot holds.
    pub key_size: usize,
    /// 0 ignore, 1 normal, 2 high (tried first).
    pub priority: u32,
    pub area_offset: u64,
    pub area_size: u64,
    pub area_encryption: String,
    pub area_key_size: usize,
    pub af_stripes: u32,
    pub af_hash: String,
    pub kdf: Luks2Kdf,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Luks2Kdf {
    Pbkdf2 {
        hash: String,
        iterations: u32,
        salt: Vec<u8>,
    },
    Argon2 {
        /// `argon2i` or `argon2id`.
        variant: String,
        time: u32,
        memory_kib: u32,
        cpus: u32,
        salt: Vec<u8>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Luks2Digest {
    pub id: u32,
    pub keyslots: Vec<u32>,
    pub segments: Vec<u32>,
    pub hash: String,
    pub iterations: u32,
    pub salt: Vec<u8>,
    pub digest: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Luks2Segment {
    pub id: u32,
    /// Byte offset of the payload.
    pub offset: u64,
    /// `None`: up to the end of the device ("dynamic").
    pub size: Option<u64>,
    pub iv_tweak: u64,
    pub encryption: String,
    pub sector_size: u32,
}

impl Luks2Header {
    /// Reads the primary header and, when it is damaged or gone, the
    /// secondary copy ([`Luks2Header::read_secondary`]). When no copy is
    /// valid, the primary's error.
    pub(crate) fn read(file: &mut File, len: u64) -> Result<Self> {
        let first = match read_copy(file, 0, len) {
            Ok(h) => return Ok(h),
            Err(e) => e,
        };
        Self::read_secondary(file, len).ok_or(first)
    }

    /// The first valid secondary header copy: where the primary's size
    /// field says (if it is still a valid size), then at every offset
    /// cryptsetup scans. Each copy must stand where it says it does.
    pub(crate) fn read_secondary(file: &mut File, len: u64) -> Option<Self> {
        let named = peek_hdr_size_at(file, 0, len);
        let offsets = named
            .into_iter()
            .chain(SECONDARY_OFFSETS.into_iter().filter(|&o| Some(o) != named));
        for at in offsets {
            if let Ok(h) = read_copy(file, at, len) {
                tracing::warn!(
                    offset = at,
                    "LUKS2 primary header is damaged; using the secondary copy"
                );
                return Some(h);
            }
        }
        None
    }

    /// Parses one header copy: the 4096-byte binary header followed by the
    /// JSON area, `hdr_size` bytes in all, checksum verified.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        if bytes.len() < BINARY_LEN {
            return Err(corrupt("header", "shorter than the LUKS2 binary header"));
        }
        if bytes[..6] != MAGIC && bytes[..6] != SECONDARY_MAGIC {
            return Err(Error::invalid(
                "volume",
                "not a LUKS volume (no LUKS magic)",
            ));
        }
        if u16::from_be_bytes([bytes[6], bytes[7]]) != 2 {
            return Err(Error::invalid("version", "not a LUKS2 header"));
        }
        let hdr_size = be64(bytes, 8);
        if !valid_hdr_size(hdr_size) || (bytes.len() as u64) < hdr_size {
            return Err(corrupt("hdr_size", "header size out of range"));
        }
        let hdr_offset = be64(bytes, 256);
        let secondary = bytes[..6] == SECONDARY_MAGIC;
        if secondary != (hdr_offset != 0) {
            return Err(corrupt(
                "hdr_offset",
                "the magic does not match the header's offset",
            ));
        }
        let area = &bytes[..hdr_size as usize];
        let checksum_alg = cstr(&area[72..104], "checksum_alg")?;
        if checksum_alg != "sha256" {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!("LUKS2 checksum {checksum_alg:?} is not supported"),
            ));
        }
        let mut h = Sha256::new();
        h.update(&area[..448]);
        h.update([0u8; 64]);
        h.update(&area[512..]);
        if h.finalize().as_slice() != &area[448..480] {
            return Err(corrupt("checksum", "header checksum does not match"));
        }
        let json_area = &area[BINARY_LEN..];
        let json_end = json_area
            .iter()
            .position(|&c| c == 0)
            .unwrap_or(json_area.len());
        let json: Value = serde_json::from_slice(&json_area[..json_end])
            .map_err(|e| corrupt("json", "metadata is not JSON").with_source(e))?;
        Ok(Luks2Header {
            hdr_size,
            hdr_offset,
            seqid: be64(area, 16),
            label: cstr(&area[24..72], "label")?,
            checksum_alg,
            uuid: cstr(&area[168..208], "uuid")?,
            keyslots: objects(&json, "keyslots")?
                .into_iter()
                .filter(|(_, v)| v.get("type").and_then(Value::as_str) == Some("luks2"))
                .map(|(id, v)| keyslot(id, v))
                .collect::<Result<_>>()?,
            digests: objects(&json, "digests")?
                .into_iter()
                .map(|(id, v)| digest(id, v))
                .collect::<Result<_>>()?,
            segments: objects(&json, "segments")?
                .into_iter()
                .map(|(id, v)| segment(id, v))
                .collect::<Result<_>>()?,
        })
    }
}

pub(crate) fn read_only(what: &str) -> Error {
    Error::new(
        ErrorKind::Unsupported,
        format!("{what} on a LUKS2 volume is not supported (use cryptsetup for LUKS2 key slots)"),
    )
}

/// Opens a LUKS2 volume: each key slot by priority, its key checked
/// against the digest that lists it, then that digest's crypt segment.
/// Every slot's and digest's KDF cost is checked against `limits` before
/// any KDF runs; the segment must lie past both header copies and clear of
/// every key-slot area, so writing the payload can never overwrite them.
pub(crate) fn open(
    mut file: File,
    h: Luks2Header,
    len: u64,
    passphrase: &SecretBytes,
    limits: &KdfLimits,
    path: &Path,
) -> Result<LuksVolume> {
    let mut order: Vec<&Luks2Keyslot> = h.keyslots.iter().filter(|k| k.priority > 0).collect();
    order.sort_by_key(|k| (std::cmp::Reverse(k.priority), k.id));
    for slot in &order {
        let what = format!("key slot {}", slot.id);
        match &slot.kdf {
            Luks2Kdf::Pbkdf2 { iterations, .. } => limits.check_pbkdf2(*iterations, &what)?,
            Luks2Kdf::Argon2 {
                time, memory_kib, ..
            } => limits.check_argon2(*memory_kib, *time, &what)?,
        }
    }
    for d in &h.digests {
        limits.check_pbkdf2(d.iterations, &format!("digest {}", d.id))?;
    }
    let mut unlocked = None;
    for slot in &order {
        let Some(digest) = h.digests.iter().find(|d| d.keyslots.contains(&slot.id)) else {
            continue;
        };
        let key = unlock_slot(&mut file, slot, passphrase, len, path)?;
        let mut check = Zeroizing::new(vec![0u8; digest.digest.len()]);
        HashSpec::parse(&digest.hash)?.pbkdf2(
            key.expose_secret(),
            &digest.salt,
            digest.iterations,
            &mut check,
        );
        if bool::from(subtle::ConstantTimeEq::ct_eq(
            &check[..],
            &digest.digest[..],
        )) {
            unlocked = Some((slot.id, key, digest));
            break;
        }
    }
    let Some((slot_id, master_key, digest)) = unlocked else {
        return Err(Error::new(
            ErrorKind::Integrity,
            "no key slot opens with this passphrase",
        ));
    };
    let segment = digest
        .segments
        .iter()
        .find_map(|id| h.segments.iter().find(|s| s.id == *id))
        .ok_or_else(|| corrupt("segments", "the digest names no crypt segment"))?;
    let spec: CipherSpec = segment.encryption.parse()?;
    let cipher = SectorCipher::new(
        master_key.expose_secret(),
        spec,
        segment.sector_size as usize,
    )?;
    let unit = u64::from(segment.sector_size);
    if segment.offset % unit != 0 {
        return Err(corrupt(
            "segments",
            "the segment offset is not a whole number of sectors",
        ));
    }
    if segment.offset < 2 * h.hdr_size {
        return Err(corrupt("segments", "the segment overlaps the LUKS2 header"));
    }
    if segment.offset > len {
        return Err(truncated(path, len, segment.offset));
    }
    let available = len - segment.offset;
    let payload = match segment.size {
        Some(size) if size > available => {
            return Err(truncated(path, len, segment.offset.saturating_add(size)));
        }
        Some(size) => size,
        None => available,
    };
    let end = segment.offset + payload;
    if let Some(k) = h
        .keyslots
        .iter()
        .find(|k| k.area_offset < end && segment.offset < k.area_offset.saturating_add(k.area_size))
    {
        return Err(corrupt(
            "segments",
            &format!("the segment overlaps key slot {}'s area", k.id),
        ));
    }
    Ok(LuksVolume {
        payload: Payload::new(file, cipher, segment.offset, payload, segment.iv_tweak)?,
        header: LuksHeader::V2(Box::new(h.clone())),
        master_key,
        opened_slot: slot_id as usize,
    })
}

fn unlock_slot(
    file: &mut File,
    slot: &Luks2Keyslot,
    passphrase: &SecretBytes,
    len: u64,
    path: &Path,
) -> Result<SecretBytes> {
    let mut area_key = Zeroizing::new(vec![0u8; slot.area_key_size]);
    match &slot.kdf {
        Luks2Kdf::Pbkdf2 {
            hash,
            iterations,
            salt,
        } => HashSpec::parse(hash)?.pbkdf2(
            passphrase.expose_secret(),
            salt,
            *iterations,
            &mut area_key,
        ),
        Luks2Kdf::Argon2 {
            variant,
            time,
            memory_kib,
            cpus,
            salt,
        } => {
            let algorithm = match variant.as_str() {
                "argon2id" => argon2::Algorithm::Argon2id,
                "argon2i" => argon2::Algorithm::Argon2i,
                other => {
                    return Err(Error::new(
                        ErrorKind::Unsupported,
                        format!("LUKS2 KDF {other:?} is not supported"),
                    ));
                }
            };
            let cost = Argon2Cost {
                time: *time,
                memory_kib: *memory_kib,
                cpus: *cpus,
            };
            argon2_into(algorithm, cost, passphrase, salt, &mut area_key)?;
        }
    }
    let spec: CipherSpec = slot.area_encryption.parse()?;
    let hash = HashSpec::parse(&slot.af_hash)?;
    // At most 512 bytes times 4000 stripes: no overflow.
    let need = (slot.key_size as u64 * u64::from(slot.af_stripes)).div_ceil(SECTOR) * SECTOR;
    if need > slot.area_size {
        return Err(corrupt(
            "keyslot",
            "key slot area is smaller than its stripes",
        ));
    }
    let end = slot.area_offset.saturating_add(need);
    if end > len {
        return Err(truncated(path, len, end));
    }
    let mut material = Zeroizing::new(vec![0u8; need as usize]);
    read_exact_at(file, slot.area_offset, &mut material)?;
    SectorCipher::new(&area_key, spec, 512)?.decrypt(&mut material, 0)?;
    Ok(af_merge(&material, slot.key_size, slot.af_stripes, hash))
}

/// Argon2 (version 1.3, as LUKS2 uses it) of `passphrase` into `out`.
pub(crate) fn argon2_into(
    algorithm: argon2::Algorithm,
    cost: Argon2Cost,
    passphrase: &SecretBytes,
    salt: &[u8],
    out: &mut [u8],
) -> Result<()> {
    let params = argon2::Params::new(cost.memory_kib, cost.time, cost.cpus, Some(out.len()))
        .map_err(|_| corrupt("kdf", "argon2 parameters out of range"))?;
    argon2::Argon2::new(algorithm, argon2::Version::V0x13, params)
        .hash_password_into(passphrase.expose_secret(), salt, out)
        .map_err(|_| corrupt("kdf", "argon2 parameters out of range"))
}

/// A header copy read at `at`, standing where it says it does.
fn read_copy(file: &mut File, at: u64, len: u64) -> Result<Luks2Header> {
    let h = read_area(file, at, len).and_then(|b| Luks2Header::parse(&b))?;
    if h.hdr_offset != at {
        return Err(corrupt(
            "hdr_offset",
            "the header copy does not stand where it says",
        ));
    }
    Ok(h)
}

/// The first secondary-header offset that holds the LUKS2 secondary magic.
pub(crate) fn secondary_magic_at(file: &mut File, len: u64) -> Result<Option<u64>> {
    let mut head = [0u8; 8];
    for at in SECONDARY_OFFSETS {
        if at + 8 > len {
            break;
        }
        read_exact_at(file, at, &mut head)?;
        if head[..6] == SECONDARY_MAGIC && u16::from_be_bytes([head[6], head[7]]) == 2 {
            return Ok(Some(at));
        }
    }
    Ok(None)
}

fn read_area(file: &mut File, at: u64, len: u64) -> Result<Vec<u8>> {
    let Some(hdr_size) = peek_hdr_size_at(file, at, len) else {
        return Err(corrupt("hdr_size", "header size out of range"));
    };
    // Both at most 4 MiB: no overflow.
    if at + hdr_size > len {
        return Err(truncated(Path::new("volume"), len, at + hdr_size));
    }
    let mut buf = vec![0u8; hdr_size as usize];
    read_exact_at(file, at, &mut buf)?;
    Ok(buf)
}

fn peek_hdr_size_at(file: &mut File, at: u64, len: u64) -> Option<u64> {
    if at.checked_add(16)? > len {
        return None;
    }
    let mut b = [0u8; 16];
    read_exact_at(file, at, &mut b).ok()?;
    let size = be64(&b, 8);
    valid_hdr_size(size).then_some(size)
}

/// cryptsetup's header sizes: 16 KiB to 4 MiB, powers of two.
fn valid_hdr_size(size: u64) -> bool {
    (16 * 1024..=4 * 1024 * 1024).contains(&size) && size.is_power_of_two()
}

fn be64(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(x)
}

fn cstr(raw: &[u8], field: &'static str) -> Result<String> {
    let end = raw
        .iter()
        .position(|&c| c == 0)
        .ok_or_else(|| corrupt(field, "field is not NUL-terminated"))?;
    std::str::from_utf8(&raw[..end])
        .map(str::to_owned)
        .map_err(|_| corrupt(field, "field is not UTF-8"))
}

fn corrupt(field: &'static str, msg: &str) -> Error {
    Error::invalid(field, format!("corrupt LUKS2 header: {msg}"))
}

/// The entries of a JSON object of numbered objects, ids parsed.
fn objects<'a>(json: &'a Value, section: &'static str) -> Result<Vec<(u32, &'a Value)>> {
    let Some(map) = json.get(section).and_then(Value::as_object) else {
        return Err(corrupt(section, "section missing"));
    };
    let mut out = Vec::with_capacity(map.len());
    for (k, v) in map {
        let id = k
            .parse::<u32>()
            .map_err(|_| corrupt(section, "object id is not a number"))?;
        out.push((id, v));
    }
    Ok(out)
}

fn field<'a>(v: &'a Value, path: &[&str], section: &'static str) -> Result<&'a Value> {
    let mut cur = v;
    for p in path {
        cur = cur
            .get(p)
            .ok_or_else(|| corrupt(section, "a required field is missing"))?;
    }
    Ok(cur)
}

fn text(v: &Value, path: &[&str], section: &'static str) -> Result<String> {
    field(v, path, section)?
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| corrupt(section, "a field is not a string"))
}

/// A u64 that LUKS2 writes either as a JSON number or a decimal string.
fn number(v: &Value, path: &[&str], section: &'static str) -> Result<u64> {
    let f = field(v, path, section)?;
    f.as_u64()
        .or_else(|| f.as_str().and_then(|s| s.parse().ok()))
        .ok_or_else(|| corrupt(section, "a field is not a number"))
}

fn small(v: &Value, path: &[&str], section: &'static str) -> Result<u32> {
    u32::try_from(number(v, path, section)?).map_err(|_| corrupt(section, "a number is too large"))
}

fn b64(v: &Value, path: &[&str], section: &'static str) -> Result<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(text(v, path, section)?)
        .map_err(|_| corrupt(section, "a field is not base64"))
}

fn key_size(v: &Value, path: &[&str], section: &'static str) -> Result<usize> {
    match small(v, path, section)? {
        n @ 1..=512 => Ok(n as usize),
        _ => Err(corrupt(section, "key size out of range")),
    }
}

fn ids(v: &Value, path: &[&str], section: &'static str) -> Result<Vec<u32>> {
    field(v, path, section)?
        .as_array()
        .ok_or_else(|| corrupt(section, "a list field is not a list"))?
        .iter()
        .map(|x| {
            x.as_str()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| corrupt(section, "a list entry is not a numbered id"))
        })
        .collect()
}

fn keyslot(id: u32, v: &Value) -> Result<Luks2Keyslot> {
    const S: &str = "keyslots";
    let kdf_type = text(v, &["kdf", "type"], S)?;
    let kdf = match kdf_type.as_str() {
        "pbkdf2" => Luks2Kdf::Pbkdf2 {
            hash: text(v, &["kdf", "hash"], S)?,
            iterations: small(v, &["kdf", "iterations"], S)?,
            salt: b64(v, &["kdf", "salt"], S)?,
        },
        "argon2i" | "argon2id" => {
            let memory_kib = small(v, &["kdf", "memory"], S)?;
            let cpus = small(v, &["kdf", "cpus"], S)?;
            if !(1..=MAX_ARGON2_CPUS).contains(&cpus) {
                return Err(corrupt(S, "argon2 cost out of range"));
            }
            Luks2Kdf::Argon2 {
                variant: kdf_type,
                time: small(v, &["kdf", "time"], S)?,
                memory_kib,
                cpus,
                salt: b64(v, &["kdf", "salt"], S)?,
            }
        }
        _ => {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!("LUKS2 KDF {kdf_type:?} is not supported"),
            ));
        }
    };
    let priority = match v.get("priority") {
        None => 1,
        Some(_) => small(v, &["priority"], S)?,
    };
    Ok(Luks2Keyslot {
        id,
        key_size: key_size(v, &["key_size"], S)?,
        priority,
        area_offset: number(v, &["area", "offset"], S)?,
        area_size: number(v, &["area", "size"], S)?,
        area_encryption: text(v, &["area", "encryption"], S)?,
        area_key_size: key_size(v, &["area", "key_size"], S)?,
        af_stripes: match small(v, &["af", "stripes"], S)? {
            n @ 1..=4000 => n,
            _ => return Err(corrupt(S, "AF stripes out of range")),
        },
        af_hash: text(v, &["af", "hash"], S)?,
        kdf,
    })
}

fn digest(id: u32, v: &Value) -> Result<Luks2Digest> {
    const S: &str = "digests";
    let kind = text(v, &["type"], S)?;
    if kind != "pbkdf2" {
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!("LUKS2 digest {kind:?} is not supported"),
        ));
    }
    let digest = b64(v, &["digest"], S)?;
    if digest.is_empty() || digest.len() > 64 {
        return Err(corrupt(S, "digest length out of range"));
    }
    Ok(Luks2Digest {
        id,
        keyslots: ids(v, &["keyslots"], S)?,
        segments: ids(v, &["segments"], S)?,
        hash: text(v, &["hash"], S)?,
        iterations: small(v, &["iterations"], S)?,
        salt: b64(v, &["salt"], S)?,
        digest,
    })
}

fn segment(id: u32, v: &Value) -> Result<Luks2Segment> {
    const S: &str = "segments";
    let kind = text(v, &["type"], S)?;
    if kind != "crypt" {
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!("LUKS2 segment {kind:?} is not supported"),
        ));
    }
    let size = match text(v, &["size"], S)?.as_str() {
        "dynamic" => None,
        s => Some(
            s.parse()
                .map_err(|_| corrupt(S, "segment size is not a number"))?,
        ),
    };
    let sector_size = small(v, &["sector_size"], S)?;
    if !(512..=4096).contains(&sector_size) || !sector_size.is_power_of_two() {
        return Err(corrupt(S, "sector size out of range"));
    }
    Ok(Luks2Segment {
        id,
        offset: number(v, &["offset"], S)?,
        size,
        iv_tweak: number(v, &["iv_tweak"], S)?,
        encryption: text(v, &["encryption"], S)?,
        sector_size,
    })
}

impl fmt::Display for Luks2Header {
    /// An abridged `cryptsetup luksDump` for LUKS2.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "LUKS header information")?;
        writeln!(f, "Version:       \t2")?;
        writeln!(f, "Epoch:         \t{}", self.seqid)?;
        writeln!(f, "Metadata area: \t{} [bytes]", self.hdr_size)?;
        writeln!(f, "UUID:          \t{}", self.uuid)?;
        writeln!(
            f,
            "Label:         \t{}",
            if self.label.is_empty() {
                "(no label)"
            } else {
                &self.label
            }
        )?;
        writeln!(f)?;
        writeln!(f, "Data segments:")?;
        for s in &self.segments {
            writeln!(f, "  {}: crypt", s.id)?;
            writeln!(f, "\toffset: {} [bytes]", s.offset)?;
            match s.size {
                Some(n) => writeln!(f, "\tlength: {n} [bytes]")?,
                None => writeln!(f, "\tlength: (whole device)")?,
            }
            writeln!(f, "\tcipher: {}", s.encryption)?;
            writeln!(f, "\tsector: {} [bytes]", s.sector_size)?;
        }
        writeln!(f)?;
        writeln!(f, "Keyslots:")?;
        for k in &self.keyslots {
            writeln!(f, "  {}: luks2", k.id)?;
            writeln!(f, "\tKey:        {} bits", k.key_size * 8)?;
            match &k.kdf {
                Luks2Kdf::Pbkdf2 {
                    hash, iterations, ..
                } => {
                    writeln!(f, "\tPBKDF:      pbkdf2")?;
                    writeln!(f, "\tHash:       {hash}")?;
                    writeln!(f, "\tIterations: {iterations}")?;
                }
                Luks2Kdf::Argon2 {
                    variant,
                    time,
                    memory_kib,
                    cpus,
                    ..
                } => {
                    writeln!(f, "\tPBKDF:      {variant}")?;
                    writeln!(f, "\tTime cost:  {time}")?;
                    writeln!(f, "\tMemory:     {memory_kib}")?;
                    writeln!(f, "\tThreads:    {cpus}")?;
                }
            }
            writeln!(f, "\tAF stripes: {}", k.af_stripes)?;
            writeln!(f, "\tAF hash:    {}", k.af_hash)?;
            writeln!(f, "\tArea offset:{} [bytes]", k.area_offset)?;
            writeln!(f, "\tArea length:{} [bytes]", k.area_size)?;
        }
        writeln!(f, "Digests:")?;
        for d in &self.digests {
            writeln!(f, "  {}: pbkdf2", d.id)?;
            writeln!(f, "\tHash:       {}", d.hash)?;
            writeln!(f, "\tIterations: {}", d.iterations)?;
        }
        Ok(())
    }
}
