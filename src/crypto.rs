//! The authenticated envelope every software-held ciphertext uses, and small
//! crypto helpers.
//!
//! Envelope v1: `0x01 || nonce(16) || AES-256-CTR ciphertext || HMAC-SHA256 tag(32)`.
//! Encryption and MAC keys are derived from the wrapping key with HKDF-SHA256,
//! and the tag covers the version, the nonce, a caller-chosen binding (for
//! secrets: project id and secret id) and the ciphertext (encrypt-then-MAC).
//! Any failure to open is the one opaque `Integrity` error.

use aes::Aes256;
use ctr::cipher::{KeyIvInit, StreamCipher};
use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, ErrorKind, Result};
use crate::secret::SecretBytes;

const VERSION_1: u8 = 1;
const NONCE_LEN: usize = 16;
const TAG_LEN: usize = 32;
/// Bytes an envelope adds to its plaintext.
pub(crate) const ENVELOPE_OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;

type Aes256Ctr = ctr::Ctr128BE<Aes256>;
type HmacSha256 = Hmac<Sha256>;

/// Fills `buf` from the operating system's CSPRNG.
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| {
        Error::new(
            ErrorKind::Unavailable,
            "operating system random source failed",
        )
        .with_source(std::io::Error::other(e.to_string()))
    })
}

/// A wrapping key ready to seal and open envelopes: the two derived subkeys.
pub(crate) struct SealKey {
    enc: Zeroizing<[u8; 32]>,
    mac: Zeroizing<[u8; 32]>,
}

impl SealKey {
    /// Derives the subkeys from `ikm` (a 32-byte KEK). `purpose` separates
    /// keys used for different jobs (project KEK wrapping, secret payloads).
    pub(crate) fn derive(ikm: &[u8], purpose: &[u8]) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(b"keywarden envelope v1"), ikm);
        let mut enc = Zeroizing::new([0u8; 32]);
        let mut mac = Zeroizing::new([0u8; 32]);
        let mut info = Vec::with_capacity(purpose.len() + 4);
        info.extend_from_slice(purpose);
        info.extend_from_slice(b"/enc");
        // HKDF-SHA256 can produce up to 8160 bytes; 32 always fits.
        hk.expand(&info, enc.as_mut())
            .expect("32 bytes is a valid HKDF length");
        info.truncate(purpose.len());
        info.extend_from_slice(b"/mac");
        hk.expand(&info, mac.as_mut())
            .expect("32 bytes is a valid HKDF length");
        SealKey { enc, mac }
    }

    /// Encrypts `plaintext`, binding it to `binding`.
    pub(crate) fn seal(&self, binding: &[&[u8]], plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(plaintext.len() + ENVELOPE_OVERHEAD);
        out.push(VERSION_1);
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce)?;
        out.extend_from_slice(&nonce);
        let body_start = out.len();
        out.extend_from_slice(plaintext);
        let mut cipher = Aes256Ctr::new_from_slices(self.enc.as_ref(), &nonce)
            .expect("key and nonce lengths are fixed by the types");
        cipher.apply_keystream(&mut out[body_start..]);
        let tag = self.mac(binding, &out).finalize().into_bytes();
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Authenticates and decrypts an envelope made by [`SealKey::seal`] with
    /// the same binding.
    pub(crate) fn open(&self, binding: &[&[u8]], envelope: &[u8]) -> Result<SecretBytes> {
        if envelope.len() < ENVELOPE_OVERHEAD || envelope[0] != VERSION_1 {
            return Err(Error::integrity());
        }
        let (signed, tag) = envelope.split_at(envelope.len() - TAG_LEN);
        // Constant time: hmac compares through `subtle`.
        self.mac(binding, signed)
            .verify_slice(tag)
            .map_err(|_| Error::integrity())?;
        let nonce = &signed[1..1 + NONCE_LEN];
        let mut plain = signed[1 + NONCE_LEN..].to_vec();
        let mut cipher = Aes256Ctr::new_from_slices(self.enc.as_ref(), nonce)
            .expect("key and nonce lengths are fixed by the types");
        cipher.apply_keystream(&mut plain);
        Ok(SecretBytes::new(plain))
    }

    /// The HMAC over `binding` and `signed`, ready to finalise or verify.
    fn mac(&self, binding: &[&[u8]], signed: &[u8]) -> HmacSha256 {
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(self.mac.as_ref())
            .expect("HMAC accepts any key length");
        // Length-prefix each binding part so ("ab","c") and ("a","bc") differ.
        mac.update(&(binding.len() as u32).to_be_bytes());
        for part in binding {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.update(signed);
        mac
    }
}

impl Drop for SealKey {
    fn drop(&mut self) {
        self.enc.zeroize();
        self.mac.zeroize();
    }
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey([REDACTED])")
    }
}

/// A short, public fingerprint of a key, to tell which master KEK wrapped what
/// without revealing anything about the key.
pub(crate) fn fingerprint(key: &[u8]) -> String {
    let mut mac =
        <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(b"keywarden key fingerprint v1");
    let digest = mac.finalize().into_bytes();
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SealKey {
        SealKey::derive(&[byte; 32], b"test")
    }

    #[test]
    fn round_trip() {
        let k = key(1);
        let env = k.seal(&[b"p", b"s"], b"payload").unwrap();
        assert_eq!(env.len(), 7 + ENVELOPE_OVERHEAD);
        assert_eq!(
            k.open(&[b"p", b"s"], &env).unwrap().expose_secret(),
            b"payload"
        );
    }

    #[test]
    fn every_flipped_byte_is_integrity() {
        let k = key(1);
        let env = k.seal(&[b"p"], b"payload").unwrap();
        for i in 0..env.len() {
            let mut bad = env.clone();
            bad[i] ^= 0x01;
            assert_eq!(
                k.open(&[b"p"], &bad).unwrap_err().kind(),
                ErrorKind::Integrity
            );
        }
        assert_eq!(
            k.open(&[b"p"], &env[..10]).unwrap_err().kind(),
            ErrorKind::Integrity
        );
    }

    #[test]
    fn wrong_key_or_binding_is_integrity() {
        let env = key(1).seal(&[b"p", b"s"], b"payload").unwrap();
        assert_eq!(
            key(2).open(&[b"p", b"s"], &env).unwrap_err().kind(),
            ErrorKind::Integrity
        );
        assert_eq!(
            key(1).open(&[b"p", b"t"], &env).unwrap_err().kind(),
            ErrorKind::Integrity
        );
        assert_eq!(
            key(1).open(&[b"ps"], &env).unwrap_err().kind(),
            ErrorKind::Integrity
        );
        let other_purpose = SealKey::derive(&[1; 32], b"other");
        assert_eq!(
            other_purpose.open(&[b"p", b"s"], &env).unwrap_err().kind(),
            ErrorKind::Integrity
        );
    }

    #[test]
    fn nonces_differ() {
        let k = key(1);
        assert_ne!(k.seal(&[], b"x").unwrap(), k.seal(&[], b"x").unwrap());
    }
}
