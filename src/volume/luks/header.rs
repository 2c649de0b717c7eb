//! The LUKS1 header: 592 big-endian bytes at sector 0 (LUKS1 On-Disk
//! Format Specification 1.2.3).
//!
//! Parsing keeps every byte it is given in a field, so an accepted header
//! writes back byte for byte; what we cannot make sense of is refused with
//! a typed error naming the field, never a panic.

use std::fmt;

use crate::error::{Error, Result};
use crate::volume::luks::crypto::STRIPES;

/// LUKS magic: `LUKS` and two bytes 0xBA 0xBE.
pub const MAGIC: [u8; 6] = *b"LUKS\xba\xbe";
/// Bytes of the LUKS1 header proper.
pub const HEADER_LEN: usize = 592;
/// LUKS1 counts key-material and payload offsets in 512-byte sectors.
pub const SECTOR: u64 = 512;
/// Key slots in a LUKS1 header.
pub const SLOTS: usize = 8;
/// Length of the master-key digest.
pub const DIGEST_LEN: usize = 20;
/// Length of every salt.
pub const SALT_LEN: usize = 32;

const SLOT_ENABLED: u32 = 0x00AC_71F3;
const SLOT_DISABLED: u32 = 0x0000_DEAD;
const SLOT_LEN: usize = 48;
const SLOTS_AT: usize = 208;

/// One key slot's header entry.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KeySlot {
    pub active: bool,
    pub iterations: u32,
    pub salt: [u8; SALT_LEN],
    /// Sector where this slot's encrypted AF stripes start.
    pub key_material_offset: u32,
    pub stripes: u32,
}

impl fmt::Debug for KeySlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySlot")
            .field("active", &self.active)
            .field("iterations", &self.iterations)
            .field("key_material_offset", &self.key_material_offset)
            .field("stripes", &self.stripes)
            .finish_non_exhaustive()
    }
}

/// A parsed LUKS1 header. No key material: the digest and salts are public.
#[derive(Clone, PartialEq, Eq)]
pub struct Luks1Header {
    cipher_name: [u8; 32],
    cipher_mode: [u8; 32],
    hash_spec: [u8; 32],
    /// Sector where the encrypted payload starts.
    pub payload_offset: u32,
    /// Master key length in bytes.
    pub key_bytes: u32,
    pub mk_digest: [u8; DIGEST_LEN],
    pub mk_digest_salt: [u8; SALT_LEN],
    pub mk_digest_iterations: u32,
    uuid: [u8; 40],
    pub key_slots: [KeySlot; SLOTS],
}

impl Luks1Header {
    /// Parses the first [`HEADER_LEN`] bytes of `bytes`.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        if bytes.len() < HEADER_LEN {
            return Err(corrupt("header", "shorter than a LUKS1 header (592 bytes)"));
        }
        if bytes[..6] != MAGIC {
            return Err(Error::invalid(
                "volume",
                "not a LUKS volume (no LUKS magic)",
            ));
        }
        let version = u16::from_be_bytes([bytes[6], bytes[7]]);
        if version != 1 {
            return Err(Error::invalid(
                "version",
                format!("LUKS version {version} is not LUKS1"),
            ));
        }
        let h = Luks1Header {
            cipher_name: text(bytes, 8, "cipher_name")?,
            cipher_mode: text(bytes, 40, "cipher_mode")?,
            hash_spec: text(bytes, 72, "hash_spec")?,
            payload_offset: be32(bytes, 104),
            key_bytes: be32(bytes, 108),
            mk_digest: array(bytes, 112),
            mk_digest_salt: array(bytes, 132),
            mk_digest_iterations: be32(bytes, 164),
            uuid: text(bytes, 168, "uuid")?,
            key_slots: {
                let mut slots = [KeySlot {
                    active: false,
                    iterations: 0,
                    salt: [0; SALT_LEN],
                    key_material_offset: 0,
                    stripes: 0,
                }; SLOTS];
                for (i, slot) in slots.iter_mut().enumerate() {
                    let at = SLOTS_AT + i * SLOT_LEN;
                    slot.active = match be32(bytes, at) {
                        SLOT_ENABLED => true,
                        SLOT_DISABLED => false,
                        _ => {
                            return Err(corrupt(
                                "key_slot",
                                format!("key slot {i} has an unknown state"),
                            ));
                        }
                    };
                    slot.iterations = be32(bytes, at + 4);
                    slot.salt = array(bytes, at + 8);
                    slot.key_material_offset = be32(bytes, at + 40);
                    slot.stripes = be32(bytes, at + 44);
                }
                slots
            },
        };
        h.check()?;
        Ok(h)
    }

    /// The 592 header bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[..6].copy_from_slice(&MAGIC);
        b[6..8].copy_from_slice(&1u16.to_be_bytes());
        b[8..40].copy_from_slice(&self.cipher_name);
        b[40..72].copy_from_slice(&self.cipher_mode);
        b[72..104].copy_from_slice(&self.hash_spec);
        b[104..108].copy_from_slice(&self.payload_offset.to_be_bytes());
        b[108..112].copy_from_slice(&self.key_bytes.to_be_bytes());
        b[112..132].copy_from_slice(&self.mk_digest);
        b[132..164].copy_from_slice(&self.mk_digest_salt);
        b[164..168].copy_from_slice(&self.mk_digest_iterations.to_be_bytes());
        b[168..208].copy_from_slice(&self.uuid);
        for (i, s) in self.key_slots.iter().enumerate() {
            let at = SLOTS_AT + i * SLOT_LEN;
            let state = if s.active {
                SLOT_ENABLED
            } else {
                SLOT_DISABLED
            };
            b[at..at + 4].copy_from_slice(&state.to_be_bytes());
            b[at + 4..at + 8].copy_from_slice(&s.iterations.to_be_bytes());
            b[at + 8..at + 40].copy_from_slice(&s.salt);
            b[at + 40..at + 44].copy_from_slice(&s.key_material_offset.to_be_bytes());
            b[at + 44..at + 48].copy_from_slice(&s.stripes.to_be_bytes());
        }
        b
    }

    /// A fresh header (used by format): the strings are written
    /// NUL-padded; the caller checks they fit.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        cipher_name: &str,
        cipher_mode: &str,
        hash_spec: &str,
        payload_offset: u32,
        key_bytes: u32,
        mk_digest: [u8; DIGEST_LEN],
        mk_digest_salt: [u8; SALT_LEN],
        mk_digest_iterations: u32,
        uuid: &str,
        key_slots: [KeySlot; SLOTS],
    ) -> Result<Self> {
        let h = Luks1Header {
            cipher_name: pad(cipher_name, "cipher_name")?,
            cipher_mode: pad(cipher_mode, "cipher_mode")?,
            hash_spec: pad(hash_spec, "hash_spec")?,
            payload_offset,
            key_bytes,
            mk_digest,
            mk_digest_salt,
            mk_digest_iterations,
            uuid: pad(uuid, "uuid")?,
            key_slots,
        };
        h.check()?;
        Ok(h)
    }

    pub fn cipher_name(&self) -> &str {
        as_str(&self.cipher_name)
    }

    pub fn cipher_mode(&self) -> &str {
        as_str(&self.cipher_mode)
    }

    pub fn hash_spec(&self) -> &str {
        as_str(&self.hash_spec)
    }

    pub fn uuid(&self) -> &str {
        as_str(&self.uuid)
    }

    /// Sectors one slot's AF stripes fill (not rounded to the slot
    /// alignment).
    pub fn key_material_sectors(&self) -> u64 {
        (u64::from(self.key_bytes) * u64::from(STRIPES)).div_ceil(SECTOR)
    }

    /// Byte offset of the payload.
    pub fn payload_start(&self) -> u64 {
        u64::from(self.payload_offset) * SECTOR
    }

    /// Cross-field checks, as cryptsetup and QEMU make them before trusting
    /// a header: sane key length and iteration counts, 4000 stripes, key
    /// material after the header, before the payload, slots not overlapping.
    fn check(&self) -> Result<()> {
        if !(1..=512).contains(&self.key_bytes) {
            return Err(corrupt("key_bytes", "master key length out of range"));
        }
        if self.mk_digest_iterations == 0 {
            return Err(corrupt("mk_digest_iterations", "must be at least 1"));
        }
        let header_sectors = (HEADER_LEN as u64).div_ceil(SECTOR);
        let area = self.key_material_sectors();
        let mut ranges: Vec<(u64, u64)> = Vec::with_capacity(SLOTS);
        for (i, s) in self.key_slots.iter().enumerate() {
            if s.stripes != STRIPES {
                return Err(corrupt(
                    "key_slot",
                    format!(
                        "key slot {i} is corrupted (stripes {} != {STRIPES})",
                        s.stripes
                    ),
                ));
            }
            if s.active && s.iterations == 0 {
                return Err(corrupt(
                    "key_slot",
                    format!("key slot {i} has no iterations"),
                ));
            }
            let start = u64::from(s.key_material_offset);
            let end = start + area;
            if start < header_sectors {
                return Err(corrupt(
                    "key_slot",
                    format!("key slot {i} key material overlaps the header"),
                ));
            }
            if self.payload_offset != 0 && end > u64::from(self.payload_offset) {
                return Err(corrupt(
                    "key_slot",
                    format!("key slot {i} key material overlaps the payload"),
                ));
            }
            if ranges.iter().any(|&(a, b)| start < b && a < end) {
                return Err(corrupt(
                    "key_slot",
                    format!("key slot {i} key material overlaps another slot"),
                ));
            }
            ranges.push((start, end));
        }
        Ok(())
    }
}

impl fmt::Debug for Luks1Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Luks1Header")
            .field("cipher_name", &self.cipher_name())
            .field("cipher_mode", &self.cipher_mode())
            .field("hash_spec", &self.hash_spec())
            .field("payload_offset", &self.payload_offset)
            .field("key_bytes", &self.key_bytes)
            .field("mk_digest_iterations", &self.mk_digest_iterations)
            .field("uuid", &self.uuid())
            .field("key_slots", &self.key_slots)
            .finish_non_exhaustive()
    }
}

fn corrupt(field: &'static str, msg: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    let msg = msg.into();
    Error::invalid(field, format!("corrupt LUKS header: {msg}"))
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(array(b, at))
}

/// `N` bytes at `at`; callers read inside the length checked by `parse`.
fn array<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&b[at..at + N]);
    out
}

/// A NUL-terminated ASCII field; bytes after the NUL are kept as they are
/// (cryptsetup ignores them), so the header writes back unchanged.
fn text<const N: usize>(b: &[u8], at: usize, field: &'static str) -> Result<[u8; N]> {
    let raw: [u8; N] = array(b, at);
    let Some(end) = raw.iter().position(|&c| c == 0) else {
        return Err(corrupt(field, "field is not NUL-terminated"));
    };
    if !raw[..end].iter().all(|c| c.is_ascii_graphic()) {
        return Err(corrupt(field, "field is not printable ASCII"));
    }
    Ok(raw)
}

fn as_str(raw: &[u8]) -> &str {
    let end = raw.iter().position(|&c| c == 0).unwrap_or(raw.len());
    // `text` and `pad` admit printable ASCII only.
    std::str::from_utf8(&raw[..end]).unwrap_or("")
}

fn pad<const N: usize>(s: &str, field: &'static str) -> Result<[u8; N]> {
    if s.len() >= N || !s.bytes().all(|c| c.is_ascii_graphic()) {
        return Err(Error::invalid(
            field,
            format!("must be printable ASCII shorter than {N} bytes"),
        ));
    }
    let mut out = [0u8; N];
    out[..s.len()].copy_from_slice(s.as_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn sample() -> Luks1Header {
        let slots = std::array::from_fn(|i| KeySlot {
            active: i == 0,
            iterations: if i == 0 { 1000 } else { 0 },
            salt: [i as u8; SALT_LEN],
            key_material_offset: 8 + 256 * i as u32,
            stripes: STRIPES,
        });
        Luks1Header::new(
            "aes",
            "xts-plain64",
            "sha256",
            4096,
            32,
            [1; DIGEST_LEN],
            [2; SALT_LEN],
            1000,
            "0b9b1c1a-7d47-4f38-9d3c-9a0f1f1f1f1f",
            slots,
        )
        .unwrap()
    }

    #[test]
    fn round_trips_byte_for_byte() {
        let h = sample();
        let bytes = h.to_bytes();
        let again = Luks1Header::parse(&bytes).unwrap();
        assert_eq!(again, h);
        assert_eq!(again.to_bytes(), bytes);
        assert_eq!(again.cipher_mode(), "xts-plain64");
        assert_eq!(&bytes[..6], b"LUKS\xba\xbe");
        assert_eq!(&bytes[104..108], &4096u32.to_be_bytes());
    }

    #[test]
    fn refusals_are_typed() {
        let good = sample().to_bytes();
        let be = |n: u32| n.to_be_bytes().to_vec();
        let cases: [(usize, Vec<u8>, &str); 9] = [
            (0, b"X".to_vec(), "volume"),
            (7, vec![2], "version"),
            (8, vec![b'a'; 32], "cipher_name"),
            (108, be(0), "key_bytes"),
            (208, vec![0xff], "key_slot"),
            (252, be(3999), "key_slot"),
            (248, be(1), "key_slot"),
            (104, be(100), "key_slot"),
            (164, be(0), "mk_digest_iterations"),
        ];
        for (at, patch, field) in cases {
            let mut b = good;
            b[at..at + patch.len()].copy_from_slice(&patch);
            let e = Luks1Header::parse(&b).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
            assert_eq!(e.field(), Some(field), "{e}");
        }
        assert!(Luks1Header::parse(&good[..591]).is_err());
    }
}
