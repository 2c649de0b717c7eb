//! The LUKS building blocks: the header's hash (PBKDF2 and the
//! anti-forensic diffuse), the AF splitter, and the sector cipher (XTS or
//! CBC).

use aes::{Aes128, Aes192, Aes256};
use sha2::{Digest, Sha256, Sha512};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, ErrorKind, Result};
use crate::secret::SecretBytes;
use crate::volume::spec::{BlockMode, CipherSpec, IvGen};

use super::cbc::CbcKeys;
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

    pub(crate) fn digest_len(self) -> usize {
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

/// AES over sectors, the way dm-crypt runs `aes-xts-*` and `aes-cbc-*`.
///
/// The expanded AES keys are wiped on drop (the `aes` crate's `zeroize`
/// feature).
pub struct SectorCipher {
    keys: Keys,
    spec: CipherSpec,
    /// Bytes per encryption unit (512 for LUKS1; LUKS2 may use 4096).
    unit: usize,
}

enum Keys {
    Xts128(XtsKeys<Aes128>),
    Xts192(XtsKeys<Aes192>),
    Xts256(XtsKeys<Aes256>),
    Cbc128(CbcKeys<Aes128>),
    Cbc192(CbcKeys<Aes192>),
    Cbc256(CbcKeys<Aes256>),
}

impl SectorCipher {
    /// A sector cipher from the whole key (for XTS two halves: data,
    /// tweak), the cipher spec and the encryption unit in bytes (512, or a
    /// LUKS2 segment's sector size).
    pub fn new(key: &[u8], spec: CipherSpec, unit: usize) -> Result<Self> {
        let bad = || {
            Error::new(
                ErrorKind::Unsupported,
                format!(
                    "{spec} takes a {} key, not {} bytes",
                    match spec.mode {
                        BlockMode::Xts => "32, 48 or 64-byte",
                        BlockMode::Cbc => "16, 24 or 32-byte",
                    },
                    key.len()
                ),
            )
            .with_field("key_bytes")
        };
        let essiv = match (spec.mode, spec.ivgen) {
            (BlockMode::Xts, IvGen::EssivSha256) => {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    "XTS with ESSIV IVs is not supported; use aes-xts-plain64 or aes-cbc-essiv:sha256",
                )
                .with_field("cipher"));
            }
            (_, ivgen) => ivgen == IvGen::EssivSha256,
        };
        let keys = match (spec.mode, key.len()) {
            (BlockMode::Xts, 32) => Keys::Xts128(XtsKeys::new(key, bad)?),
            (BlockMode::Xts, 48) => Keys::Xts192(XtsKeys::new(key, bad)?),
            (BlockMode::Xts, 64) => Keys::Xts256(XtsKeys::new(key, bad)?),
            (BlockMode::Cbc, 16) => Keys::Cbc128(CbcKeys::new(key, essiv, bad)?),
            (BlockMode::Cbc, 24) => Keys::Cbc192(CbcKeys::new(key, essiv, bad)?),
            (BlockMode::Cbc, 32) => Keys::Cbc256(CbcKeys::new(key, essiv, bad)?),
            _ => return Err(bad()),
        };
        if !(512..=MAX_UNIT).contains(&unit) || !unit.is_power_of_two() {
            return Err(Error::invalid(
                "sector_size",
                "must be a power of two from 512 to 4096",
            ));
        }
        Ok(SectorCipher { keys, spec, unit })
    }

    /// Bytes per encryption unit.
    pub fn unit(&self) -> usize {
        self.unit
    }

    /// The cipher spec this cipher runs.
    pub fn spec(&self) -> CipherSpec {
        self.spec
    }

    /// Encrypts whole units in place; `first_iv` is the IV sector (in
    /// 512-byte sectors) of the first unit. A buffer that is not a whole
    /// number of units, or whose IV sectors would pass 2^64, is refused
    /// (`InvalidInput`) and left as it is: no byte is left in clear.
    pub fn encrypt(&self, buf: &mut [u8], first_iv: u64) -> Result<()> {
        self.run(buf, first_iv, true)
    }

    /// The inverse of [`SectorCipher::encrypt`], refusing the same buffers.
    pub fn decrypt(&self, buf: &mut [u8], first_iv: u64) -> Result<()> {
        self.run(buf, first_iv, false)
    }

    fn run(&self, buf: &mut [u8], first_iv: u64, encrypt: bool) -> Result<()> {
        if !buf.len().is_multiple_of(self.unit) {
            return Err(Error::invalid(
                "buffer",
                format!(
                    "{} bytes are not a whole number of {}-byte sectors",
                    buf.len(),
                    self.unit
                ),
            ));
        }
        let step = (self.unit as u64) / IV_SECTOR;
        let units = (buf.len() / self.unit) as u64;
        if units > 0 && last_iv(first_iv, units - 1, step).is_none() {
            return Err(Error::invalid(
                "iv",
                "the sectors' IVs pass the 64-bit sector number",
            ));
        }
        let ivgen = self.spec.ivgen;
        // No overflow: the last IV was checked above.
        let ivs = (0u64..units).map(move |i| {
            let iv = first_iv + i * step;
            match ivgen {
                IvGen::Plain => iv & 0xffff_ffff,
                IvGen::Plain64 | IvGen::EssivSha256 => iv,
            }
        });
        match &self.keys {
            Keys::Xts128(k) => k.run(buf, ivs, self.unit, encrypt),
            Keys::Xts192(k) => k.run(buf, ivs, self.unit, encrypt),
            Keys::Xts256(k) => k.run(buf, ivs, self.unit, encrypt),
            Keys::Cbc128(k) => k.run(buf, ivs, self.unit, encrypt),
            Keys::Cbc192(k) => k.run(buf, ivs, self.unit, encrypt),
            Keys::Cbc256(k) => k.run(buf, ivs, self.unit, encrypt),
        }
        Ok(())
    }
}

/// The IV sector of unit `index`, when it fits 64 bits.
pub(crate) fn last_iv(first_iv: u64, index: u64, step: u64) -> Option<u64> {
    index.checked_mul(step)?.checked_add(first_iv)
}

/// The largest encryption unit dm-crypt takes.
pub(crate) const MAX_UNIT: usize = 4096;

impl std::fmt::Debug for SectorCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bits = match self.keys {
            Keys::Xts128(_) | Keys::Cbc128(_) => 128,
            Keys::Xts192(_) | Keys::Cbc192(_) => 192,
            Keys::Xts256(_) | Keys::Cbc256(_) => 256,
        };
        write!(
            f,
            "SectorCipher(aes-{bits}-{}, unit {}, key [REDACTED])",
            self.spec.cipher_mode(),
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
        let c = SectorCipher::new(&key, CipherSpec::AES_XTS_PLAIN64, 512).unwrap();
        let mut buf: Vec<u8> = (0..512).map(|i| i as u8).collect();
        c.encrypt(&mut buf, 0).unwrap();
        assert_eq!(
            &buf[..32],
            hex("27a7479befa1d476489f308cd4cfa6e2a96e4bbe3208ff25287dd3819616e89c").as_slice()
        );
        c.decrypt(&mut buf, 0).unwrap();
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
                        SectorCipher::new(&key, xts(ivgen), unit)
                            .unwrap()
                            .encrypt(&mut ours, first)
                            .unwrap();
                        reference_any(&key, &mut theirs, first, unit, plain, true);
                        assert!(
                            ours == theirs,
                            "key {key_len}, unit {unit}, {ivgen:?}, len {len}"
                        );
                        SectorCipher::new(&key, xts(ivgen), unit)
                            .unwrap()
                            .decrypt(&mut ours, first)
                            .unwrap();
                        assert!(ours == plain_text);
                    }
                }
            }
        }
    }

    proptest::proptest! {
        /// Random keys of both XTS sizes (and AES-192's), sector counts
        /// spanning slices and tweak passes, any first sector that leaves
        /// room for the buffer, both units and IV generators: encrypt and
        /// decrypt each equal xts-mode's. A buffer with a trailing partial
        /// unit is refused and left alone.
        #[test]
        fn xts_matches_xts_mode_on_random_input(
            key_len in proptest::sample::select(vec![32usize, 48, 64]),
            key_seed in proptest::prelude::any::<u64>(),
            unit in proptest::sample::select(vec![512usize, 4096]),
            units in 0usize..300,
            tail in 1usize..512,
            first_iv in 0u64..u64::MAX / 2,
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
            let cipher = SectorCipher::new(&key, xts(ivgen), unit).unwrap();

            let mut partial = data.clone();
            proptest::prop_assert!(cipher.encrypt(&mut partial, first_iv).is_err());
            proptest::prop_assert!(cipher.decrypt(&mut partial, first_iv).is_err());
            proptest::prop_assert!(partial == data);

            let data = &data[..whole];
            let mut ours = data.to_vec();
            cipher.encrypt(&mut ours, first_iv).unwrap();
            let mut theirs = data.to_vec();
            reference_any(&key, &mut theirs, first_iv, unit, plain, true);
            proptest::prop_assert!(ours == theirs);

            let mut back = data.to_vec();
            cipher.decrypt(&mut back, first_iv).unwrap();
            let mut theirs = data.to_vec();
            reference_any(&key, &mut theirs, first_iv, unit, plain, false);
            proptest::prop_assert!(back == theirs);

            cipher.decrypt(&mut ours, first_iv).unwrap();
            proptest::prop_assert!(ours == data);
        }

        /// CBC, each IV generator and key size, against a block-at-a-time
        /// CBC written from the definition (dm-crypt's: one chain per
        /// sector; ESSIV's IV is the sector number under AES-256 keyed by
        /// SHA-256 of the key).
        #[test]
        fn cbc_matches_the_definition(
            key_len in proptest::sample::select(vec![16usize, 24, 32]),
            key_seed in proptest::prelude::any::<u8>(),
            ivgen in proptest::sample::select(vec![IvGen::EssivSha256, IvGen::Plain64, IvGen::Plain]),
            unit in proptest::sample::select(vec![512usize, 4096]),
            units in 0usize..40,
            first_iv in 0u64..u64::MAX / 2,
        ) {
            let key: Vec<u8> = (0..key_len).map(|i| (i as u8).wrapping_mul(key_seed) ^ 0x5c).collect();
            let data: Vec<u8> = (0..units * unit).map(|i| (i * 131 + 7) as u8).collect();
            let spec = CipherSpec { mode: BlockMode::Cbc, ivgen };
            let cipher = SectorCipher::new(&key, spec, unit).unwrap();
            let mut ours = data.clone();
            cipher.encrypt(&mut ours, first_iv).unwrap();
            proptest::prop_assert!(ours == cbc_reference(&key, ivgen, unit, first_iv, &data));
            cipher.decrypt(&mut ours, first_iv).unwrap();
            proptest::prop_assert!(ours == data);
        }
    }

    fn xts(ivgen: IvGen) -> CipherSpec {
        CipherSpec {
            mode: BlockMode::Xts,
            ivgen,
        }
    }

    /// CBC encryption of `data`, one block at a time, from the definition.
    fn cbc_reference(key: &[u8], ivgen: IvGen, unit: usize, first_iv: u64, data: &[u8]) -> Vec<u8> {
        use aes::cipher::{Array, BlockCipherEncrypt};
        fn with<C: BlockCipherEncrypt + KeyInit + aes::cipher::BlockSizeUser<BlockSize = U16>>(
            key: &[u8],
            ivgen: IvGen,
            unit: usize,
            first_iv: u64,
            data: &[u8],
        ) -> Vec<u8> {
            let c = C::new_from_slice(key).unwrap();
            let essiv = Aes256::new_from_slice(&Sha256::digest(key)).unwrap();
            let mut out = Vec::new();
            for (i, sector) in data.chunks(unit).enumerate() {
                let n = first_iv + (i * unit / 512) as u64;
                let mut iv = Array::from(
                    match ivgen {
                        IvGen::Plain => u128::from(n & 0xffff_ffff),
                        _ => u128::from(n),
                    }
                    .to_le_bytes(),
                );
                if ivgen == IvGen::EssivSha256 {
                    essiv.encrypt_block(&mut iv);
                }
                for block in sector.chunks(16) {
                    let mut b = Array::try_from(block).unwrap();
                    for (x, y) in b.iter_mut().zip(iv.iter()) {
                        *x ^= y;
                    }
                    c.encrypt_block(&mut b);
                    out.extend_from_slice(&b);
                    iv = b;
                }
            }
            out
        }
        match key.len() {
            16 => with::<Aes128>(key, ivgen, unit, first_iv, data),
            24 => with::<Aes192>(key, ivgen, unit, first_iv, data),
            _ => with::<Aes256>(key, ivgen, unit, first_iv, data),
        }
    }

    /// The review's finding: a partial sector was left in clear. Now the
    /// call is refused and the buffer untouched, for every cipher.
    #[test]
    fn partial_sectors_and_ivs_past_u64_are_refused() {
        for (spec, key_len) in [
            (CipherSpec::AES_XTS_PLAIN64, 64),
            (CipherSpec::AES_CBC_ESSIV_SHA256, 32),
            (CipherSpec::AES_CBC_PLAIN, 16),
        ] {
            let c = SectorCipher::new(&vec![9u8; key_len], spec, 512).unwrap();
            let mut buf = vec![0x41u8; 700];
            let e = c.encrypt(&mut buf, 0).unwrap_err();
            assert_eq!(
                (e.kind(), e.field()),
                (ErrorKind::InvalidInput, Some("buffer"))
            );
            assert!(buf.iter().all(|&b| b == 0x41), "{spec}: bytes changed");
            assert!(c.decrypt(&mut buf, 0).is_err());
            let mut two = vec![0u8; 1024];
            let e = c.encrypt(&mut two, u64::MAX).unwrap_err();
            assert_eq!(e.field(), Some("iv"));
            assert!(two.iter().all(|&b| b == 0));
            c.encrypt(&mut two[..512], u64::MAX).unwrap();
        }
        assert_eq!(
            SectorCipher::new(&[0u8; 32], CipherSpec::AES_CBC_PLAIN64, 8192)
                .unwrap_err()
                .field(),
            Some("sector_size")
        );
        let e = SectorCipher::new(&[0u8; 64], CipherSpec::AES_CBC_ESSIV_SHA256, 512).unwrap_err();
        assert_eq!(
            (e.kind(), e.field()),
            (ErrorKind::Unsupported, Some("key_bytes"))
        );
    }

    #[test]
    fn plain_iv_wraps_at_32_bits() {
        let key = [7u8; 64];
        let a = SectorCipher::new(&key, xts(IvGen::Plain), 512).unwrap();
        let mut x = vec![1u8; 512];
        let mut y = x.clone();
        a.encrypt(&mut x, 5).unwrap();
        a.encrypt(&mut y, (1u64 << 32) + 5).unwrap();
        assert_eq!(x, y);
    }

    #[test]
    fn debug_hides_the_key() {
        let c = SectorCipher::new(&[0xAB; 64], CipherSpec::AES_XTS_PLAIN64, 512).unwrap();
        let shown = format!("{c:?}");
        assert_eq!(
            shown,
            "SectorCipher(aes-256-xts-plain64, unit 512, key [REDACTED])"
        );
        let c = SectorCipher::new(&[0xAB; 16], CipherSpec::AES_CBC_ESSIV_SHA256, 512).unwrap();
        assert_eq!(
            format!("{c:?}"),
            "SectorCipher(aes-128-cbc-essiv:sha256, unit 512, key [REDACTED])"
        );
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
