//! AES-CBC over whole encryption units, as dm-crypt runs `aes-cbc-*`: one
//! CBC chain per unit, started from the unit's IV, through the `cbc`
//! crate.
//!
//! Decryption is parallel across blocks (each plaintext block needs only
//! two ciphertext blocks), and `cbc::Decryptor::decrypt_blocks` hands the
//! `aes` backend eight blocks per call. Encryption is sequential within a
//! unit by construction. The ESSIV IVs of many units are made in one
//! parallel `encrypt_blocks` call.

use aes::Aes256;
use aes::cipher::common::array::Array;
use aes::cipher::common::typenum::U16;
use aes::cipher::{
    BlockCipherDecrypt, BlockCipherEncrypt, BlockModeDecrypt, BlockModeEncrypt, BlockSizeUser,
    InnerIvInit, KeyInit,
};
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use crate::error::{Error, Result};

type Block = Array<u8, U16>;

/// Units whose IVs are made in one call of the ESSIV cipher.
const UNITS_PER_PASS: usize = 256;

/// The data key and, for ESSIV, the IV key (SHA-256 of the data key).
pub(super) struct CbcKeys<C> {
    data: C,
    essiv: Option<Aes256>,
}

impl<C> CbcKeys<C>
where
    C: BlockCipherEncrypt + BlockCipherDecrypt + BlockSizeUser<BlockSize = U16>,
{
    pub(super) fn new(key: &[u8], essiv: bool, bad: impl Fn() -> Error) -> Result<Self>
    where
        C: KeyInit,
    {
        let data = C::new_from_slice(key).map_err(|_| bad())?;
        let essiv = essiv.then(|| {
            let mut salt = Sha256::digest(key);
            let cipher = Aes256::new(&salt);
            salt.as_mut_slice().zeroize();
            cipher
        });
        Ok(CbcKeys { data, essiv })
    }

    /// CBC over the units of `buf` (`unit` bytes each, a multiple of 16;
    /// the caller passes whole units). Unit k's IV is the k-th item of
    /// `ivs` as a little-endian 128-bit block, encrypted under the ESSIV
    /// key when there is one.
    pub(super) fn run(
        &self,
        buf: &mut [u8],
        mut ivs: impl Iterator<Item = u64>,
        unit: usize,
        encrypt: bool,
    ) {
        let per_unit = unit / 16;
        let (blocks, _) = Block::slice_as_chunks_mut(buf);
        let mut starts = [Block::default(); UNITS_PER_PASS];
        for group in blocks.chunks_mut(UNITS_PER_PASS * per_unit) {
            let units = group.len() / per_unit;
            for (s, iv) in starts[..units].iter_mut().zip(ivs.by_ref()) {
                *s = Block::from(u128::from(iv).to_le_bytes());
            }
            if let Some(essiv) = &self.essiv {
                essiv.encrypt_blocks(&mut starts[..units]);
            }
            for (blocks, iv) in group.chunks_exact_mut(per_unit).zip(&starts[..units]) {
                if encrypt {
                    cbc::Encryptor::<&C>::inner_iv_init(&self.data, iv).encrypt_blocks(blocks);
                } else {
                    cbc::Decryptor::<&C>::inner_iv_init(&self.data, iv).decrypt_blocks(blocks);
                }
            }
        }
        starts.iter_mut().for_each(|s| s.as_mut_slice().zeroize());
    }
}
