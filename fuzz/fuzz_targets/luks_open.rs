//! Past the header parse: a LUKS1 or LUKS2 volume that opens with a known
//! passphrase (made once with our formatter, a CBC or XTS cipher), its
//! header fields mutated by the input (LUKS1: payload offset, key-slot
//! offsets and iterations, cipher mode; LUKS2: the JSON metadata's
//! offsets, sizes, IV tweak, sector size, stripes, KDF and digest costs,
//! with both copies' checksums recomputed so the parse accepts them), then
//! opened and read and written at offsets the input picks. Never a panic;
//! where a read succeeds, writing the same bytes back and reading again
//! gives them back, and the header is never touched by payload writes.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use keywarden::secret::SecretBytes;
use keywarden::volume::luks::{Argon2Cost, FormatOptions, LuksVersion, LuksVolume, Pbkdf2Cost};
use keywarden::volume::{CipherSpec, KdfLimits};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Cipher, key bytes, LUKS version, sector size, Argon2id (else PBKDF2).
const TEMPLATES: [(CipherSpec, usize, LuksVersion, u32, bool); 6] = [
    (
        CipherSpec::AES_CBC_ESSIV_SHA256,
        16,
        LuksVersion::Luks1,
        512,
        false,
    ),
    (
        CipherSpec::AES_CBC_PLAIN,
        32,
        LuksVersion::Luks1,
        512,
        false,
    ),
    (
        CipherSpec::AES_XTS_PLAIN64,
        32,
        LuksVersion::Luks1,
        512,
        false,
    ),
    (
        CipherSpec::AES_XTS_PLAIN64,
        32,
        LuksVersion::Luks2,
        512,
        false,
    ),
    (
        CipherSpec::AES_CBC_ESSIV_SHA256,
        16,
        LuksVersion::Luks2,
        4096,
        false,
    ),
    (
        CipherSpec::AES_CBC_PLAIN64,
        32,
        LuksVersion::Luks2,
        512,
        true,
    ),
];

/// Our LUKS2 header copies: 16 KiB each, the JSON from byte 4096.
const HDR_SIZE: usize = 16 * 1024;

/// The LUKS2 JSON fields the input may replace.
const LUKS2_FIELDS: [&[&str]; 14] = [
    &["segments", "0", "offset"],
    &["segments", "0", "size"],
    &["segments", "0", "iv_tweak"],
    &["segments", "0", "sector_size"],
    &["keyslots", "0", "area", "offset"],
    &["keyslots", "0", "area", "size"],
    &["keyslots", "0", "area", "key_size"],
    &["keyslots", "0", "key_size"],
    &["keyslots", "0", "af", "stripes"],
    &["keyslots", "0", "kdf", "iterations"],
    &["keyslots", "0", "kdf", "memory"],
    &["keyslots", "0", "kdf", "time"],
    &["digests", "0", "iterations"],
    &["config", "keyslots_size"],
];

fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("keywarden-fuzz-{}-{name}", std::process::id()))
}

/// One valid image per template, 2 MiB: LUKS1 key-slot areas for a
/// 32-byte key take 1 MiB beside the header, so 1 MiB holds no payload.
fn images() -> &'static Vec<Vec<u8>> {
    static IMAGES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    IMAGES.get_or_init(|| {
        TEMPLATES
            .iter()
            .map(|(cipher, key_bytes, version, sector_size, argon2)| {
                let path = scratch("template.img");
                std::fs::File::create(&path)
                    .unwrap()
                    .set_len(2 << 20)
                    .unwrap();
                let mut opts = FormatOptions::default()
                    .with_version(*version)
                    .with_cipher(*cipher)
                    .with_key_bytes(*key_bytes)
                    .with_cost(Pbkdf2Cost::Iterations(1000))
                    .with_argon2(argon2.then_some(Argon2Cost {
                        time: 1,
                        memory_kib: 64,
                        cpus: 1,
                    }));
                opts.align_sectors = 8;
                opts.sector_size = *sector_size;
                LuksVolume::format(&path, &pass(), &opts).unwrap();
                let image = std::fs::read(&path).unwrap();
                std::fs::remove_file(&path).unwrap();
                image
            })
            .collect()
    })
}

fn pass() -> SecretBytes {
    SecretBytes::copy_from(b"fuzz")
}

fn u64_at(data: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    for (i, x) in data.iter().skip(at).take(8).enumerate() {
        b[i] = *x;
    }
    u64::from_le_bytes(b)
}

/// XORs the input over the LUKS1 header fields a crafted header would
/// change: cipher mode (40..72), payload offset (104..108), key slot 0's
/// iterations and material offset (212..216, 248..252), slot 1's state and
/// offset (256..260, 296..300). Returns the unused input.
fn mutate_luks1<'a>(image: &mut [u8], data: &'a [u8]) -> &'a [u8] {
    let fields = [40..72, 104..108, 212..216, 248..252, 256..260, 296..300];
    let mut input = data.iter();
    for range in fields {
        for at in range {
            if let Some(d) = input.next() {
                image[at] ^= d;
            }
        }
    }
    input.as_slice()
}

/// Replaces LUKS2 JSON fields the input picks (one flag byte per field,
/// then 8 bytes of value: as a number, or as a decimal string where LUKS2
/// writes strings), writes the metadata into both copies and recomputes
/// their checksums. Returns the unused input.
fn mutate_luks2<'a>(image: &mut [u8], data: &'a [u8]) -> &'a [u8] {
    let json_area = &image[4096..HDR_SIZE];
    let end = json_area.iter().position(|&c| c == 0).unwrap();
    let mut json: Value = serde_json::from_slice(&json_area[..end]).unwrap();
    let mut rest = data;
    for path in LUKS2_FIELDS {
        let Some((&flag, tail)) = rest.split_first() else {
            break;
        };
        rest = tail;
        if flag & 1 == 0 {
            continue;
        }
        let value = u64_at(rest, 0);
        rest = rest.get(8..).unwrap_or(&[]);
        let mut at = &mut json;
        for key in path {
            at = &mut at[*key];
        }
        *at = match at {
            Value::String(_) => Value::String(value.to_string()),
            _ => Value::from(value),
        };
    }
    let text = json.to_string();
    if text.len() >= HDR_SIZE - 4096 {
        return rest;
    }
    for copy in [0, HDR_SIZE] {
        let area = &mut image[copy..copy + HDR_SIZE];
        area[4096..].fill(0);
        area[4096..4096 + text.len()].copy_from_slice(text.as_bytes());
        area[448..512].fill(0);
        let sum = Sha256::digest(&*area);
        area[448..480].copy_from_slice(&sum);
    }
    rest
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, data)) = data.split_first() else {
        return;
    };
    let template = pick as usize % TEMPLATES.len();
    let mut image = images()[template].clone();
    let rest = match TEMPLATES[template].2 {
        LuksVersion::Luks1 => mutate_luks1(&mut image, data),
        LuksVersion::Luks2 => mutate_luks2(&mut image, data),
    };
    let path = scratch("volume.img");
    std::fs::write(&path, &image).unwrap();
    let limits = KdfLimits {
        pbkdf2_iterations: 20_000,
        argon2_memory_kib: 1024,
        argon2_time: 4,
    };
    if let Ok(mut vol) = LuksVolume::open_with_limits(&path, &pass(), &limits) {
        let len = vol.payload_len();
        let offset = u64_at(rest, 0) % (len + 2);
        let size = (u64_at(rest, 8) % 4096) as usize;
        let mut buf = vec![0u8; size];
        if vol.read_at(offset, &mut buf).is_ok() {
            vol.write_at(offset, &buf).unwrap();
            let mut again = vec![0u8; size];
            vol.read_at(offset, &mut again).unwrap();
            assert_eq!(buf, again);
            drop(vol);
            let after = std::fs::read(&path).unwrap();
            let start = after.len() as u64 - len;
            assert_eq!(&after[..start as usize], &image[..start as usize]);
        }
    }
    let _ = std::fs::remove_file(&path);
});
