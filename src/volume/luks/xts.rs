//! AES-XTS over whole encryption units (IEEE 1619 without ciphertext
//! stealing) through the `aes` crate's parallel `encrypt_blocks` /
//! `decrypt_blocks`.
//!
//! The buffer is worked through in slices of [`SLICE_BLOCKS`] blocks
//! (4 KiB), small enough that a slice and its tweaks stay in L1 across the
//! passes over it: compute the slice's tweaks (four units' doubling chains
//! side by side), XOR them in, run the slice through AES in one call, XOR
//! them out. Each pass is a plain loop the compiler turns into
//! straight-line code without bounds checks (the XORs into 16-byte vector
//! operations), and the writes of one pass have left the store buffer
//! before the next pass reads them. All of it is the crate's safe API.
//!
//! A fused loop, run inside the `aes` backend through its
//! `BlockCipherEncClosure` hook (tweak, XOR, eight blocks of AES, XOR, per
//! group of eight), was tried first and was slower: the freshly XORed
//! blocks went to memory as two 64-bit stores and came straight back as one
//! 128-bit AES load, which store forwarding cannot serve.
//!
//! The `aes` crate (0.9.4) picks AES-NI at run time, eight blocks at a
//! time. It has a VAES backend (two blocks per instruction), but its
//! detection (`cpufeatures` 0.3.1) asks for AVX-512 register state, so on
//! CPUs with VAES and no AVX-512 (AMD Zen 3) it is used only when the
//! application is built with `-C target-feature=+vaes`.

use aes::cipher::common::array::Array;
use aes::cipher::common::typenum::U16;
use aes::cipher::{BlockCipherDecrypt, BlockCipherEncrypt, BlockSizeUser, KeyInit};
use zeroize::Zeroize;

use crate::error::{Error, Result};

type Block = Array<u8, U16>;

/// Units whose starting tweaks are computed in one call of the tweak
/// cipher: 256 IVs, 4 KiB of them.
const UNITS_PER_PASS: usize = 256;

/// Blocks XORed, ciphered and XORed again together: 4 KiB of data and
/// 4 KiB of tweaks, within L1.
const SLICE_BLOCKS: usize = 256;

/// XTS's two keys: one for the data, one for the tweaks.
pub(super) struct XtsKeys<C> {
    data: C,
    tweak: C,
}

impl<C> XtsKeys<C>
where
    C: BlockCipherEncrypt + BlockCipherDecrypt + BlockSizeUser<BlockSize = U16>,
{
    pub(super) fn new(key: &[u8], bad: impl Fn() -> Error) -> Result<Self>
    where
        C: KeyInit,
    {
        let (k1, k2) = key.split_at(key.len() / 2);
        Ok(XtsKeys {
            data: C::new_from_slice(k1).map_err(|_| bad())?,
            tweak: C::new_from_slice(k2).map_err(|_| bad())?,
        })
    }

    /// XTS over the whole units of `buf` (`unit` bytes each, a multiple of
    /// 16); a trailing partial unit is left as it is. Unit k's tweak is its
    /// IV (the k-th item of `ivs`) encrypted under the tweak key, multiplied
    /// by x in GF(2^128) for each following block.
    pub(super) fn run(
        &self,
        buf: &mut [u8],
        mut ivs: impl Iterator<Item = u64>,
        unit: usize,
        encrypt: bool,
    ) {
        let per_unit = unit / 16;
        let whole = buf.len() / unit * unit;
        let (blocks, _) = Block::slice_as_chunks_mut(&mut buf[..whole]);
        // A slice is whole units: 8 of 512 bytes, or one of 4096 or more.
        let slice_units = (SLICE_BLOCKS / per_unit).max(1);
        let mut starts = [Block::default(); UNITS_PER_PASS];
        let mut tweaks = vec![Block::default(); slice_units * per_unit];
        for group in blocks.chunks_mut(UNITS_PER_PASS * per_unit) {
            let units = group.len() / per_unit;
            for (s, iv) in starts[..units].iter_mut().zip(ivs.by_ref()) {
                *s = Block::from(u128::from(iv).to_le_bytes());
            }
            self.tweak.encrypt_blocks(&mut starts[..units]);
            for (slice, starts) in group
                .chunks_mut(slice_units * per_unit)
                .zip(starts[..units].chunks(slice_units))
            {
                let tweaks = &mut tweaks[..slice.len()];
                fill_tweaks(tweaks, starts, per_unit);
                xor_tweaks(slice, tweaks);
                if encrypt {
                    self.data.encrypt_blocks(slice);
                } else {
                    self.data.decrypt_blocks(slice);
                }
                xor_tweaks(slice, tweaks);
            }
        }
        starts.iter_mut().for_each(|s| s.as_mut_slice().zeroize());
        tweaks.iter_mut().for_each(|t| t.as_mut_slice().zeroize());
    }
}

/// A tweak as its two little-endian 64-bit halves (low, high).
type Tweak = (u64, u64);

#[inline(always)]
fn load(block: &Block) -> Tweak {
    let (halves, _) = block.as_chunks::<8>();
    (u64::from_le_bytes(halves[0]), u64::from_le_bytes(halves[1]))
}

#[inline(always)]
fn store(block: &mut Block, (lo, hi): Tweak) {
    let (l, h) = block.split_at_mut(8);
    l.copy_from_slice(&lo.to_le_bytes());
    h.copy_from_slice(&hi.to_le_bytes());
}

/// Multiplies a tweak by x in GF(2^128), little-endian as IEEE 1619 has
/// it: shift left by one; the bit shifted out of the top folds back into
/// the bottom as 0x87.
#[inline(always)]
fn double((lo, hi): Tweak) -> Tweak {
    ((lo << 1) ^ ((hi >> 63) * 0x87), (hi << 1) | (lo >> 63))
}

/// Fills `tweaks` (whole units of `per_unit` blocks) with each unit's tweak
/// sequence: unit k's is `starts[k]`, `starts[k]`·x, `starts[k]`·x², …
///
/// Each sequence is a chain of dependent doublings, so four units are
/// filled side by side: four independent chains keep the ALUs busy where
/// one would wait on its own latency.
#[inline(always)]
fn fill_tweaks(tweaks: &mut [Block], starts: &[Block], per_unit: usize) {
    let mut quads = tweaks.chunks_exact_mut(4 * per_unit);
    let mut quad_starts = starts.chunks_exact(4);
    for (quad, s) in quads.by_ref().zip(quad_starts.by_ref()) {
        let (a, rest) = quad.split_at_mut(per_unit);
        let (b, rest) = rest.split_at_mut(per_unit);
        let (c, d) = rest.split_at_mut(per_unit);
        let mut t = [load(&s[0]), load(&s[1]), load(&s[2]), load(&s[3])];
        for (((a, b), c), d) in a.iter_mut().zip(b).zip(c).zip(d) {
            store(a, t[0]);
            store(b, t[1]);
            store(c, t[2]);
            store(d, t[3]);
            t = t.map(double);
        }
    }
    let rest = quads.into_remainder();
    for (unit, start) in rest.chunks_exact_mut(per_unit).zip(quad_starts.remainder()) {
        let mut t = load(start);
        for block in unit {
            store(block, t);
            t = double(t);
        }
    }
}

/// XORs every block with its kept tweak: byte by byte over the two
/// flattened slices, which the compiler turns into wide vector XORs.
#[inline(always)]
fn xor_tweaks(blocks: &mut [Block], tweaks: &[Block]) {
    let blocks = Block::slice_as_flattened_mut(blocks);
    let tweaks = Block::slice_as_flattened(tweaks);
    for (x, y) in blocks.iter_mut().zip(tweaks) {
        *x ^= y;
    }
}
