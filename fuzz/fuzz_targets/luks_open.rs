//! Past the header parse: a LUKS1 volume that opens with a known
//! passphrase (made once with our formatter, a CBC or XTS cipher), its
//! header fields mutated by the input (payload offset, key-slot offsets and
//! iterations, cipher mode), then opened and read and written at offsets
//! the input picks. Never a panic; where a read succeeds, writing the same
//! bytes back and reading again gives them back, and the header is never
//! touched by payload writes.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use keywarden::secret::SecretBytes;
use keywarden::volume::luks::{FormatOptions, LuksVolume, Pbkdf2Cost};
use keywarden::volume::{CipherSpec, KdfLimits};
use libfuzzer_sys::fuzz_target;

const CIPHERS: [(CipherSpec, usize); 3] = [
    (CipherSpec::AES_CBC_ESSIV_SHA256, 16),
    (CipherSpec::AES_CBC_PLAIN, 32),
    (CipherSpec::AES_XTS_PLAIN64, 32),
];

fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("keywarden-fuzz-{}-{name}", std::process::id()))
}

/// One valid image per cipher, 2 MiB: LUKS1 key-slot areas for a 32-byte
/// key take 1 MiB beside the header, so 1 MiB holds no payload.
fn images() -> &'static Vec<Vec<u8>> {
    static IMAGES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    IMAGES.get_or_init(|| {
        CIPHERS
            .iter()
            .map(|(cipher, key_bytes)| {
                let path = scratch("template.img");
                std::fs::File::create(&path)
                    .unwrap()
                    .set_len(2 << 20)
                    .unwrap();
                let mut opts = FormatOptions::default()
                    .with_cipher(*cipher)
                    .with_key_bytes(*key_bytes)
                    .with_cost(Pbkdf2Cost::Iterations(1000));
                opts.align_sectors = 8;
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

fuzz_target!(|data: &[u8]| {
    let Some((&pick, data)) = data.split_first() else {
        return;
    };
    let mut image = images()[pick as usize % CIPHERS.len()].clone();
    // XOR the input over the header fields a crafted header would change:
    // cipher mode (40..72), payload offset (104..108), key slot 0's
    // iterations and material offset (212..216, 248..252), slot 1's state
    // and offset (256..260, 296..300).
    let fields = [40..72, 104..108, 212..216, 248..252, 256..260, 296..300];
    let mut input = data.iter();
    for range in fields {
        for at in range {
            if let Some(d) = input.next() {
                image[at] ^= d;
            }
        }
    }
    let rest = input.as_slice();
    let path = scratch("volume.img");
    std::fs::write(&path, &image).unwrap();
    let limits = KdfLimits {
        pbkdf2_iterations: 20_000,
        ..KdfLimits::default()
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
