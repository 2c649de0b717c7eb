//! The LUKS building blocks: the header's hash (PBKDF2 and the
//! anti-forensic diffuse), the AF splitter, and the XTS sector cipher.

use aes::cipher::KeyInit;
use aes::{Aes128, Aes192, Aes256};
use sha2::{Digest, Sha256, Sha512};
use xts_mode::{Xts128, get_tweak_default};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, ErrorKind, Result};
use crate::secret::SecretBytes;
use crate::volume::spec::IvGen;

/// Dm-crypt and LUKS count IVs in 512-byte sectors whatever the
/// encryption unit.
pub(crate) const IV_SECTOR: u64 = 512;

/// The anti-forensic stripe count every LUKS implementation uses.
pub const STRIPES: u32 = 4000;

/// A LUKS hash spec: drives PBKDF2 and the AF diffuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HashSpec {
    Sha1,
    Sha256,
    Sha512,
}

impl HashSpec {
    /// Case-insensitive, as cryptsetup compares hash names.
    pub fn parse(name: &str) -> Result<Self> {
        match name.to_ascii_lowercase().as_str() {
            "sha1" => Ok(HashSpec::Sha1),
            "sha256" => Ok(HashSpec::Sha256),
            "sha512" => Ok(HashSpec::Sha512),
            _ => Err(Error::new(
                ErrorKind::Unsupported,
                format!("LUKS hash {name:?} is not supported (sha1, sha256, sha512 are)"),
            )
            .with_field("hash_spec")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            HashSpec::Sha1 => "sha1",
            HashSpec::Sha256 => "sha256",
            HashSpec::Sha512 => "sha512",
        }
    }

    fn digest_len(self) -> usize {
        match self {
            HashSpec::Sha1 => 20,
            HashSpec::Sha256 => 32,
            HashSpec::Sha512 => 64,
        }
    }

    /// PBKDF2-HMAC with this hash into `out`.
    pub(crate) fn pbkdf2(self, password: &[u8], salt: &[u8], iterations: u32, out: &mut [u8]) {
        match self {
            HashSpec::Sha1 => pbkdf2::pbkdf2_hmac::<sha1::Sha1>(password, salt, iterations, out),
            HashSpec::Sha256 => pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, out),
            HashSpec::Sha512 => pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, out),
        }
    }

    /// `hash(be32(counter) || data)`, truncated to `out.len()`.
    fn counter_hash(self, counter: u32, data: &[u8], out: &mut [u8]) {
        fn run<D: Digest>(counter: u32, data: &[u8], out: &mut [u8]) {
            let mut h = D::new();
            h.update(counter.to_be_bytes());
            h.update(data);
            let mut digest = h.finalize();
            out.copy_from_slice(&digest[..out.len()]);
            digest.as_mut_slice().zeroize();
        }
        match self {
            HashSpec::Sha1 => run::<sha1::Sha1>(counter, data, out),
            HashSpec::Sha256 => run::<Sha256>(counter, data, out),
            HashSpec::Sha512 => run::<Sha512>(counter, data, out),
        }
    }

    /// The AF "H1" diffusion of `block` in place: each digest-sized chunk
    /// (and the final partial one) is replaced by the hash of its index and
    /// itself.
    fn diffuse(self, block: &mut [u8]) {
        let ds = self.digest_len();
        let mut tmp = Zeroizing::new(vec![0u8; ds]);
        for (i, chunk) in block.chunks_mut(ds).enumerate() {
            let out = &mut tmp[..chunk.len()];
            // A key is at most a few hundred bytes: the chunk count fits u32.
            self.counter_hash(i as u32, chunk, out);
            chunk.copy_from_slice(out);
        }
    }
}

/// Spreads `key` over `stripes` blocks so that losing any part of the
/// result loses the key (LUKS's anti-forensic splitter).
pub(crate) fn af_split(key: &[u8], stripes: u32, hash: HashSpec) -> Result<Zeroizing<Vec<u8>>> {
    let n = key.len();
    let mut out = Zeroizing::new(vec![0u8; n * stripes as usize]);
    crate::crypto::fill_random(&mut out[..n * (stripes as usize - 1)])?;
    let mut d = Zeroizing::new(vec![0u8; n]);
    for s in out[..n * (stripes as usize - 1)].chunks(n) {
        xor_into(&mut d, s);
        hash.diffuse(&mut d);
    }
    let last = &mut out[n * (stripes as usize - 1)..];
    for ((o, a), b) in last.iter_mut().zip(d.iter()).zip(key) {
        *o = a ^ b;
    }
    Ok(out)
}

/// Inverse of [`af_split`]: the key of `key_len` bytes from its stripes.
pub(crate) fn af_merge(split: &[u8], key_len: usize, stripes: u32, hash: HashSpec) -> SecretBytes {
    let mut d = Zeroizing::new(vec![0u8; key_len]);
    let body = key_len * (stripes as usize - 1);
    for s in split[..body].chunks(key_len) {
        xor_into(&mut d, s);
        hash.diffuse(&mut d);
    }
    xor_into(&mut d, &split[body..body + key_len]);
    SecretBytes::copy_from(&d)
}

fn xor_into(acc: &mut [u8], other: &[u8]) {
    for (a, b) in acc.iter_mut().zip(other) {
        *a ^= b;
    }
}

/// AES-XTS over sectors, the way dm-crypt runs `aes-xts-plain64`.
///
/// The expanded AES keys are wiped on drop (the `aes` crate's `zeroize`
/// feature).
pub struct SectorCipher {
    xts: Xts,
    ivgen: IvGen,
    /// Bytes per encryption unit (512 for LUKS1; LUKS2 may use 4096).
    unit: usize,
}

enum Xts {
    Aes128(Xts128<Aes128>),
    Aes192(Xts128<Aes192>),
    Aes256(Xts128<Aes256>),
}

impl SectorCipher {
    /// An XTS cipher from the whole XTS key (two halves: data, tweak) and
    /// the encryption unit in bytes (512, or a LUKS2 segment's sector size).
    pub fn new(key: &[u8], ivgen: IvGen, unit: usize) -> Result<Self> {
        let half = key.len() / 2;
        let (k1, k2) = key.split_at(half);
        let bad = || {
            Error::new(
                ErrorKind::Unsupported,
                format!(
                    "AES-XTS takes a 32, 48 or 64-byte key, not {} bytes",
                    key.len()
                ),
            )
            .with_field("key_bytes")
        };
        // new_from_slice only fails on a length mismatch, checked by the match.
        let xts = match key.len() {
            32 => Xts::Aes128(Xts128::new(
                Aes128::new_from_slice(k1).map_err(|_| bad())?,
                Aes128::new_from_slice(k2).map_err(|_| bad())?,
            )),
            48 => Xts::Aes192(Xts128::new(
                Aes192::new_from_slice(k1).map_err(|_| bad())?,
                Aes192::new_from_slice(k2).map_err(|_| bad())?,
            )),
            64 => Xts::Aes256(Xts128::new(
                Aes256::new_from_slice(k1).map_err(|_| bad())?,
                Aes256::new_from_slice(k2).map_err(|_| bad())?,
            )),
            _ => return Err(bad()),
        };
        if unit < 512 || !unit.is_power_of_two() {
            return Err(Error::invalid(
                "sector_size",
                "must be a power of two of at least 512",
            ));
        }
        Ok(SectorCipher { xts, ivgen, unit })
    }

    /// Bytes per encryption unit.
    pub fn unit(&self) -> usize {
        self.unit
    }

    /// Encrypts whole units in place; `first_iv` is the IV sector (in
    /// 512-byte sectors) of the first unit. `buf.len()` must be a multiple
    /// of the unit; a trailing partial unit is left as it is.
    pub fn encrypt(&self, buf: &mut [u8], first_iv: u64) {
        self.run(buf, first_iv, true)
    }

    /// The inverse of [`SectorCipher::encrypt`].
    pub fn decrypt(&self, buf: &mut [u8], first_iv: u64) {
        self.run(buf, first_iv, false)
    }

    fn run(&self, buf: &mut [u8], first_iv: u64, encrypt: bool) {
        let step = (self.unit as u64) / IV_SECTOR;
        for (i, unit) in buf.chunks_exact_mut(self.unit).enumerate() {
            let iv = first_iv.wrapping_add(i as u64 * step);
            let iv = match self.ivgen {
                IvGen::Plain64 => iv,
                IvGen::Plain => iv & 0xffff_ffff,
            };
            let tweak = get_tweak_default(u128::from(iv));
            match (&self.xts, encrypt) {
                (Xts::Aes128(x), true) => x.encrypt_sector(unit, tweak),
                (Xts::Aes128(x), false) => x.decrypt_sector(unit, tweak),
                (Xts::Aes192(x), true) => x.encrypt_sector(unit, tweak),
                (Xts::Aes192(x), false) => x.decrypt_sector(unit, tweak),
                (Xts::Aes256(x), true) => x.encrypt_sector(unit, tweak),
                (Xts::Aes256(x), false) => x.decrypt_sector(unit, tweak),
            }
        }
    }
}

impl std::fmt::Debug for SectorCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bits = match self.xts {
            Xts::Aes128(_) => 128,
            Xts::Aes192(_) => 192,
            Xts::Aes256(_) => 256,
        };
        write!(
            f,
            "SectorCipher(aes-{bits}-xts-{}, unit {}, key [REDACTED])",
            self.ivgen.as_str(),
            self.unit
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// IEEE 1619-2007 (XTS-AES) vector 4: AES-128, data unit sequence
    /// number 0, 512 bytes of 0x00..0xff twice. Only the first 32 bytes of
    /// the ciphertext are checked here.
    #[test]
    fn ieee_1619_vector_4_prefix() {
        let key: Vec<u8> = ["2718281828459045235360287471352631415926535897932384626433832795"]
            .iter()
            .flat_map(|h| hex(h))
            .collect();
        let c = SectorCipher::new(&key, IvGen::Plain64, 512).unwrap();
        let mut buf: Vec<u8> = (0..512).map(|i| i as u8).collect();
        c.encrypt(&mut buf, 0);
        assert_eq!(
            &buf[..32],
            hex("27a7479befa1d476489f308cd4cfa6e2a96e4bbe3208ff25287dd3819616e89c").as_slice()
        );
        c.decrypt(&mut buf, 0);
        assert!(buf.iter().enumerate().all(|(i, b)| *b == i as u8));
    }

    #[test]
    fn af_round_trips_for_every_hash_and_odd_lengths() {
        for hash in [HashSpec::Sha1, HashSpec::Sha256, HashSpec::Sha512] {
            for len in [16usize, 32, 33, 64] {
                let key: Vec<u8> = (0..len as u8).collect();
                let split = af_split(&key, 10, hash).unwrap();
                assert_eq!(split.len(), len * 10);
                assert_eq!(
                    af_merge(&split, len, 10, hash).expose_secret(),
                    key.as_slice()
                );
                let mut broken = split.clone();
                broken[3] ^= 1;
                assert_ne!(
                    af_merge(&broken, len, 10, hash).expose_secret(),
                    key.as_slice()
                );
            }
        }
    }

    #[test]
    fn plain_iv_wraps_at_32_bits() {
        let key = [7u8; 64];
        let a = SectorCipher::new(&key, IvGen::Plain, 512).unwrap();
        let mut x = vec![1u8; 512];
        let mut y = x.clone();
        a.encrypt(&mut x, 5);
        a.encrypt(&mut y, (1u64 << 32) + 5);
        assert_eq!(x, y);
    }

    #[test]
    fn debug_hides_the_key() {
        let c = SectorCipher::new(&[0xAB; 64], IvGen::Plain64, 512).unwrap();
        let shown = format!("{c:?}");
        assert_eq!(
            shown,
            "SectorCipher(aes-256-xts-plain64, unit 512, key [REDACTED])"
        );
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
