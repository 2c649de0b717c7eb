//! The LUKS building blocks: the header's hash (PBKDF2 and the
//! anti-forensic diffuse), the AF splitter, and the XTS sector cipher.

use aes::{Aes128, Aes192, Aes256};
use sha2::{Digest, Sha256, Sha512};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, ErrorKind, Result};
use crate::secret::SecretBytes;
use crate::volume::spec::IvGen;

use super::xts::XtsKeys;

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
    Aes128(XtsKeys<Aes128>),
    Aes192(XtsKeys<Aes192>),
    Aes256(XtsKeys<Aes256>),
}

impl SectorCipher {
    /// An XTS cipher from the whole XTS key (two halves: data, tweak) and
    /// the encryption unit in bytes (512, or a LUKS2 segment's sector size).
    pub fn new(key: &[u8], ivgen: IvGen, unit: usize) -> Result<Self> {
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
        let xts = match key.len() {
            32 => Xts::Aes128(XtsKeys::new(key, bad)?),
            48 => Xts::Aes192(XtsKeys::new(key, bad)?),
            64 => Xts::Aes256(XtsKeys::new(key, bad)?),
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
        let ivgen = self.ivgen;
        let ivs = (0u64..).map(move |i| {
            let iv = first_iv.wrapping_add(i.wrapping_mul(step));
            match ivgen {
                IvGen::Plain64 => iv,
                IvGen::Plain => iv & 0xffff_ffff,
            }
        });
        match &self.xts {
            Xts::Aes128(k) => k.run(buf, ivs, self.unit, encrypt),
            Xts::Aes192(k) => k.run(buf, ivs, self.unit, encrypt),
            Xts::Aes256(k) => k.run(buf, ivs, self.unit, encrypt),
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
    use aes::cipher::KeyInit;
    use aes::cipher::common::typenum::U16;

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

    /// The xts-mode crate's block-at-a-time XTS over `buf`'s units, IVs
    /// counted as `SectorCipher` counts them.
    fn reference<C>(
        key: &[u8],
        buf: &mut [u8],
        first_iv: u64,
        unit: usize,
        plain: bool,
        encrypt: bool,
    ) where
        C: aes::cipher::BlockCipherEncrypt
            + aes::cipher::BlockCipherDecrypt
            + aes::cipher::BlockSizeUser<BlockSize = U16>
            + KeyInit,
    {
        let (k1, k2) = key.split_at(key.len() / 2);
        let xts = xts_mode::Xts128::new(
            C::new_from_slice(k1).unwrap(),
            C::new_from_slice(k2).unwrap(),
        );
        let step = unit as u64 / 512;
        for (i, u) in buf.chunks_exact_mut(unit).enumerate() {
            let mut iv = first_iv.wrapping_add(i as u64 * step);
            if plain {
                iv &= 0xffff_ffff;
            }
            let tweak = xts_mode::get_tweak_default(u128::from(iv));
            if encrypt {
                xts.encrypt_sector(u, tweak);
            } else {
                xts.decrypt_sector(u, tweak);
            }
        }
    }

    fn reference_any(
        key: &[u8],
        buf: &mut [u8],
        first_iv: u64,
        unit: usize,
        plain: bool,
        encrypt: bool,
    ) {
        match key.len() {
            32 => reference::<Aes128>(key, buf, first_iv, unit, plain, encrypt),
            48 => reference::<Aes192>(key, buf, first_iv, unit, plain, encrypt),
            _ => reference::<Aes256>(key, buf, first_iv, unit, plain, encrypt),
        }
    }

    /// Our batched XTS against the xts-mode crate's block-at-a-time one:
    /// every key size, both units, both IV generators, buffers spanning
    /// several batches.
    #[test]
    fn batched_xts_matches_the_reference() {
        for key_len in [32usize, 48, 64] {
            let key: Vec<u8> = (0..key_len).map(|i| (i * 7 + 3) as u8).collect();
            for unit in [512usize, 4096] {
                for (ivgen, plain) in [(IvGen::Plain64, false), (IvGen::Plain, true)] {
                    for len in [unit, 3 * unit, 200 * 1024] {
                        let first = 0xffff_fff0u64;
                        let plain_text: Vec<u8> = (0..len).map(|i| (i * 31 + 1) as u8).collect();
                        let mut ours = plain_text.clone();
                        let mut theirs = plain_text.clone();
                        SectorCipher::new(&key, ivgen, unit)
                            .unwrap()
                            .encrypt(&mut ours, first);
                        reference_any(&key, &mut theirs, first, unit, plain, true);
                        assert!(
                            ours == theirs,
                            "key {key_len}, unit {unit}, {ivgen:?}, len {len}"
                        );
                        SectorCipher::new(&key, ivgen, unit)
                            .unwrap()
                            .decrypt(&mut ours, first);
                        assert!(ours == plain_text);
                    }
                }
            }
        }
    }

    proptest::proptest! {
        /// Random keys of both XTS sizes (and AES-192's), sector counts
        /// spanning slices and tweak passes, any first sector, both units
        /// and IV generators: encrypt and decrypt each equal xts-mode's,
        /// and a trailing partial unit is left alone.
        #[test]
        fn xts_matches_xts_mode_on_random_input(
            key_len in proptest::sample::select(vec![32usize, 48, 64]),
            key_seed in proptest::prelude::any::<u64>(),
            unit in proptest::sample::select(vec![512usize, 4096]),
            units in 0usize..300,
            tail in 0usize..512,
            first_iv in proptest::prelude::any::<u64>(),
            plain in proptest::prelude::any::<bool>(),
        ) {
            let key: Vec<u8> = (0..key_len as u64)
                .map(|i| (key_seed.wrapping_mul(i * 2 + 1).rotate_left(i as u32) >> 7) as u8)
                .collect();
            let ivgen = if plain { IvGen::Plain } else { IvGen::Plain64 };
            let whole = units * unit;
            let data: Vec<u8> = (0..whole + tail)
                .map(|i| (i as u64 ^ key_seed).wrapping_mul(0x9e37_79b9) as u8)
                .collect();
            let cipher = SectorCipher::new(&key, ivgen, unit).unwrap();

            let mut ours = data.clone();
            cipher.encrypt(&mut ours, first_iv);
            let mut theirs = data.clone();
            reference_any(&key, &mut theirs[..whole], first_iv, unit, plain, true);
            proptest::prop_assert!(ours == theirs);

            let mut back = data.clone();
            cipher.decrypt(&mut back, first_iv);
            let mut theirs = data.clone();
            reference_any(&key, &mut theirs[..whole], first_iv, unit, plain, false);
            proptest::prop_assert!(back == theirs);

            cipher.decrypt(&mut ours, first_iv);
            proptest::prop_assert!(ours == data);
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
