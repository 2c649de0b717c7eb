//! Formatting LUKS2 volumes the way cryptsetup lays them out: two 16 KiB
//! header copies (a 4096-byte binary header, then the JSON metadata, each
//! copy checksummed with SHA-256), the key-slot area right after them with
//! key slot 0 (PBKDF2 or Argon2id, AF-split as LUKS1 does), one PBKDF2
//! digest, and one crypt segment from the aligned data offset to the end
//! of the device. What we write is read back through the same parser that
//! opens cryptsetup's volumes before the volume is handed out.

use std::fs::File;
use std::path::Path;

use base64::Engine as _;
use serde_json::json;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::crypto::af_split;
use super::luks2::{BINARY_LEN, SECONDARY_MAGIC, argon2_into};
use super::payload::Payload;
use super::{
    FormatOptions, LuksHeader, LuksVolume, MAGIC, SECTOR, STRIPES, SectorCipher, check_room,
    io_error, refuse_existing_data, resolve_cost, write_at,
};
use crate::error::{Error, ErrorKind, Result};
use crate::secret::SecretBytes;
use crate::volume::luks::Luks2Header;

/// Each header copy: binary header plus JSON area (cryptsetup's default).
const HDR_SIZE: u64 = 16 * 1024;
/// The key-slot area starts after both copies.
const KEYSLOTS_OFFSET: u64 = 2 * HDR_SIZE;
/// cryptsetup aligns key-slot areas and the area's size to 4 KiB.
const AREA_ALIGN: u64 = 4096;
const SALT_LEN: usize = 32;

pub(super) fn format(
    mut file: File,
    len: u64,
    passphrase: &SecretBytes,
    opts: &FormatOptions,
    path: &Path,
) -> Result<LuksVolume> {
    let unit = u64::from(opts.sector_size);
    if !(512..=4096).contains(&unit) || !unit.is_power_of_two() {
        return Err(Error::invalid(
            "sector_size",
            "a LUKS2 sector size is a power of two from 512 to 4096",
        ));
    }
    // At most 512 key bytes times 4000 stripes: no overflow.
    let slot_len = (opts.key_bytes as u64 * u64::from(STRIPES)).next_multiple_of(SECTOR);
    let area_size = slot_len.next_multiple_of(AREA_ALIGN);
    let align = u64::from(opts.align_sectors.max(1))
        .checked_mul(SECTOR)
        .ok_or_else(|| Error::invalid("align_sectors", "alignment out of range"))?;
    let data_offset = (KEYSLOTS_OFFSET + area_size)
        .next_multiple_of(align)
        .next_multiple_of(unit);
    check_room(len, data_offset, unit, "LUKS2", opts)?;
    if !(len - data_offset).is_multiple_of(unit) {
        return Err(Error::invalid(
            "volume",
            format!(
                "{len} bytes leaves a payload that is not a whole number of {unit}-byte sectors"
            ),
        ));
    }
    if !opts.overwrite {
        refuse_existing_data(&mut file, data_offset, path)?;
    }
    let master_key = opts.master_key()?;
    let hash = opts.hash;
    let (slot_iterations, digest_iterations) = resolve_cost(opts.cost, hash);

    // Key slot 0: the area key from the passphrase, the AF-split master key
    // encrypted under it with the segment's cipher.
    let kdf_salt = random_salt()?;
    let mut area_key = Zeroizing::new(vec![0u8; opts.key_bytes]);
    let kdf = match opts.argon2 {
        None => {
            hash.pbkdf2(
                passphrase.expose_secret(),
                &kdf_salt,
                slot_iterations,
                &mut area_key,
            );
            json!({
                "type": "pbkdf2",
                "hash": hash.as_str(),
                "iterations": slot_iterations,
                "salt": b64(&kdf_salt),
            })
        }
        Some(cost) => {
            argon2_into(
                argon2::Algorithm::Argon2id,
                cost,
                passphrase,
                &kdf_salt,
                &mut area_key,
            )?;
            json!({
                "type": "argon2id",
                "time": cost.time,
                "memory": cost.memory_kib,
                "cpus": cost.cpus,
                "salt": b64(&kdf_salt),
            })
        }
    };
    let mut material = af_split(master_key.expose_secret(), STRIPES, hash)?;
    material.resize(slot_len as usize, 0);
    SectorCipher::new(&area_key, opts.cipher, 512)?.encrypt(&mut material, 0)?;

    let digest_salt = random_salt()?;
    // cryptsetup's digest is as long as its hash.
    let mut digest = vec![0u8; hash.digest_len()];
    hash.pbkdf2(
        master_key.expose_secret(),
        &digest_salt,
        digest_iterations,
        &mut digest,
    );

    let cipher_name = opts.cipher.to_string();
    let metadata = json!({
        "keyslots": {
            "0": {
                "type": "luks2",
                "key_size": opts.key_bytes,
                "af": { "type": "luks1", "stripes": STRIPES, "hash": hash.as_str() },
                "area": {
                    "type": "raw",
                    "offset": KEYSLOTS_OFFSET.to_string(),
                    "size": area_size.to_string(),
                    "encryption": cipher_name,
                    "key_size": opts.key_bytes,
                },
                "kdf": kdf,
            }
        },
        "tokens": {},
        "segments": {
            "0": {
                "type": "crypt",
                "offset": data_offset.to_string(),
                "size": "dynamic",
                "iv_tweak": "0",
                "encryption": cipher_name,
                "sector_size": opts.sector_size,
            }
        },
        "digests": {
            "0": {
                "type": "pbkdf2",
                "keyslots": ["0"],
                "segments": ["0"],
                "hash": hash.as_str(),
                "iterations": digest_iterations,
                "salt": b64(&digest_salt),
                "digest": b64(&digest),
            }
        },
        "config": {
            "json_size": (HDR_SIZE - BINARY_LEN as u64).to_string(),
            "keyslots_size": (data_offset - KEYSLOTS_OFFSET).to_string(),
        }
    });
    let json = metadata.to_string().into_bytes();
    let uuid = uuid::Uuid::new_v4().hyphenated().to_string();

    // Everything before the payload in one write: both header copies, the
    // key slot, zeros over the rest of the key-slot area.
    let mut area = vec![0u8; data_offset as usize];
    for at in [0, HDR_SIZE] {
        let copy = header_copy(at, &uuid, &json)?;
        area[at as usize..(at + HDR_SIZE) as usize].copy_from_slice(&copy);
    }
    let slot_at = KEYSLOTS_OFFSET as usize;
    area[slot_at..slot_at + material.len()].copy_from_slice(&material);
    write_at(&mut file, 0, &area, path)?;
    file.sync_data().map_err(|e| io_error("sync", path, e))?;
    tracing::info!(volume = %path.display(), uuid = %uuid, "formatted LUKS2 volume");

    let header = Luks2Header::parse(&area[..HDR_SIZE as usize])?;
    let cipher = SectorCipher::new(master_key.expose_secret(), opts.cipher, unit as usize)?;
    Ok(LuksVolume {
        payload: Payload::new(file, cipher, data_offset, len - data_offset, 0)?,
        header: LuksHeader::V2(Box::new(header)),
        master_key,
        opened_slot: 0,
    })
}

/// One header copy standing at byte `at` (0: the primary), checksum set.
fn header_copy(at: u64, uuid: &str, json: &[u8]) -> Result<Vec<u8>> {
    let json_area = HDR_SIZE as usize - BINARY_LEN;
    // The JSON is NUL-terminated inside its area.
    if json.len() >= json_area {
        return Err(Error::new(
            ErrorKind::Unsupported,
            "the LUKS2 metadata does not fit its 12 KiB area",
        ));
    }
    let mut copy = vec![0u8; HDR_SIZE as usize];
    copy[..6].copy_from_slice(if at == 0 { &MAGIC } else { &SECONDARY_MAGIC });
    copy[6..8].copy_from_slice(&2u16.to_be_bytes());
    copy[8..16].copy_from_slice(&HDR_SIZE.to_be_bytes());
    // seqid: the first generation of this metadata, the same in both copies.
    copy[16..24].copy_from_slice(&1u64.to_be_bytes());
    copy[72..78].copy_from_slice(b"sha256");
    crate::crypto::fill_random(&mut copy[104..168])?;
    copy[168..168 + uuid.len()].copy_from_slice(uuid.as_bytes());
    copy[256..264].copy_from_slice(&at.to_be_bytes());
    copy[BINARY_LEN..BINARY_LEN + json.len()].copy_from_slice(json);
    // The checksum covers the whole copy with its own field zeroed.
    let sum = Sha256::digest(&copy);
    copy[448..448 + sum.len()].copy_from_slice(&sum);
    Ok(copy)
}

fn random_salt() -> Result<[u8; SALT_LEN]> {
    let mut salt = [0u8; SALT_LEN];
    crate::crypto::fill_random(&mut salt)?;
    Ok(salt)
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
