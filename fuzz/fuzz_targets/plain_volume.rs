//! Plain dm-crypt volumes: options (cipher, key size, hash, offset, skip)
//! and read/write offsets from the input, over a small file. Never a panic;
//! options that open give a volume where a write then a read returns the
//! written bytes.
#![no_main]

use keywarden::secret::SecretBytes;
use keywarden::volume::{CipherSpec, PlainHash, PlainOptions, PlainVolume};
use libfuzzer_sys::fuzz_target;

fn u64_at(data: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    for (i, x) in data.iter().skip(at).take(8).enumerate() {
        b[i] = *x;
    }
    u64::from_le_bytes(b)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let cipher = [
        CipherSpec::AES_CBC_ESSIV_SHA256,
        CipherSpec::AES_CBC_PLAIN64,
        CipherSpec::AES_CBC_PLAIN,
        CipherSpec::AES_XTS_PLAIN64,
    ][data[0] as usize % 4];
    let hash = [
        PlainHash::Ripemd160,
        PlainHash::Sha1,
        PlainHash::Sha256,
        PlainHash::Sha512,
        PlainHash::Plain,
    ][data[1] as usize % 5];
    let opts = PlainOptions {
        cipher,
        key_bytes: data[2] as usize % 80,
        hash,
        offset: (u64_at(data, 4) % 16).saturating_add(if data[3] & 1 == 1 {
            u64::MAX - 8
        } else {
            0
        }),
        skip: u64_at(data, 12) | if data[3] & 2 == 2 { u64::MAX - 4 } else { 0 },
    };
    let path =
        std::env::temp_dir().join(format!("keywarden-fuzz-{}-plain.img", std::process::id()));
    std::fs::write(&path, vec![0u8; 16 * 512]).unwrap();
    let pass = SecretBytes::copy_from(&data[..data.len().min(100)]);
    if let Ok(mut vol) = PlainVolume::open(&path, &pass, &opts) {
        let len = vol.payload_len();
        let offset = u64_at(data, 20) % (len + 2);
        let chunk = &data[data.len().min(28)..];
        if vol.write_at(offset, chunk).is_ok() {
            let mut back = vec![0u8; chunk.len()];
            vol.read_at(offset, &mut back).unwrap();
            assert_eq!(back, chunk);
        }
    }
    let _ = std::fs::remove_file(&path);
});
