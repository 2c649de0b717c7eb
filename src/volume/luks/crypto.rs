//! The LUKS building blocks: the header's hash (PBKDF2 and the
//! anti-forensic diffuse), the AF splitter, and the XTS sector cipher.

use aes::cipher::common::array::Array;
use aes::cipher::common::typenum::U16;
use aes::cipher::{BlockCipherDecrypt, BlockCipherEncrypt, BlockSizeUser, KeyInit};
use aes::{Aes128, Aes192, Aes256};
use sha2::{Digest, Sha256, Sha512};
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
    Aes128(XtsKeys<Aes128>),
    Aes192(XtsKeys<Aes192>),
    Aes256(XtsKeys<Aes256>),
}

/// XTS's two keys: one for the data, one for the tweaks.
struct XtsKeys<C> {
    data: C,
    tweak: C,
}

/// Units are processed this many bytes at a time: large enough that the AES
/// backend runs many blocks in parallel (AES-NI / VAES pipelines), small
/// enough to keep the tweak buffer in cache.
const BATCH: usize = 64 * 1024;

impl<C> XtsKeys<C>
where
    C: BlockCipherEncrypt + BlockCipherDecrypt + BlockSizeUser<BlockSize = U16>,
{
    fn new(key: &[u8], bad: impl Fn() -> Error) -> Result<Self>
    where
        C: KeyInit,
    {
        let (k1, k2) = key.split_at(key.len() / 2);
        Ok(XtsKeys {
            data: C::new_from_slice(k1).map_err(|_| bad())?,
            tweak: C::new_from_slice(k2).map_err(|_| bad())?,
        })
    }

    /// IEEE 1619 XTS over whole units, without ciphertext stealing (units
    /// are multiples of the block size). Each unit's tweak is its IV
    /// encrypted under the tweak key, multiplied by x in GF(2^128) for each
    /// following block. All blocks of a batch go through the AES backend in
    /// one call, so it can run them in parallel.
    fn run(&self, buf: &mut [u8], ivs: impl Iterator<Item = u64>, unit: usize, encrypt: bool) {
        let per_unit = unit / 16;
        let mut ivs = ivs;
        let mut tweaks: Zeroizing<Vec<[u8; 16]>> = Zeroizing::new(Vec::with_capacity(BATCH / unit));
        for batch in buf.chunks_mut(BATCH.max(unit)) {
            let whole = batch.len() / unit * unit;
            let (blocks, _) = Array::<u8, U16>::slice_as_chunks_mut(&mut batch[..whole]);
            let mut starts: Vec<Array<u8, U16>> = ivs
                .by_ref()
                .take(whole / unit)
                .map(|iv| Array::from(u128::from(iv).to_le_bytes()))
                .collect();
            self.tweak.encrypt_blocks(&mut starts);
            tweaks.clear();
            tweaks.extend(starts.iter().map(|t| <[u8; 16]>::from(*t)));
            starts.iter_mut().for_each(|t| t.as_mut_slice().zeroize());
            xor_tweaks(blocks, &tweaks, per_unit);
            if encrypt {
                self.data.encrypt_blocks(blocks);
            } else {
                self.data.decrypt_blocks(blocks);
            }
            xor_tweaks(blocks, &tweaks, per_unit);
        }
    }
}

/// XORs each unit's blocks with its tweak sequence T, T·x, T·x², …
fn xor_tweaks(blocks: &mut [Array<u8, U16>], tweaks: &[[u8; 16]], per_unit: usize) {
    for (unit, start) in blocks.chunks_mut(per_unit).zip(tweaks) {
        let mut t = u128::from_le_bytes(*start);
        for block in unit {
            let x = u128::from_le_bytes((*block).into()) ^ t;
            *block = Array::from(x.to_le_bytes());
            // Multiply by x in GF(2^128) (little-endian, as IEEE 1619 does).
            t = (t << 1) ^ ((t >> 127) * 0x87);
        }
    }
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

    /// Our batched XTS against the xts-mode crate's block-at-a-time one:
    /// every key size, both units, both IV generators, buffers spanning
    /// several batches.
    #[test]
    fn batched_xts_matches_the_reference() {
        fn reference<C>(key: &[u8], buf: &mut [u8], first_iv: u64, unit: usize, plain: bool)
        where
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
                let mut iv = first_iv + i as u64 * step;
                if plain {
                    iv &= 0xffff_ffff;
                }
                xts.encrypt_sector(u, xts_mode::get_tweak_default(u128::from(iv)));
            }
        }
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
                        match key_len {
                            32 => reference::<Aes128>(&key, &mut theirs, first, unit, plain),
                            48 => reference::<Aes192>(&key, &mut theirs, first, unit, plain),
                            _ => reference::<Aes256>(&key, &mut theirs, first, unit, plain),
                        }
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
