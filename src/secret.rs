//! The one type that holds key material in memory.
//!
//! Modelled on secrecy's `SecretBox`: redacted `Debug`, no `Display`,
//! `Serialize` or derived `PartialEq`, wiped on drop, and read only through
//! [`SecretBytes::expose_secret`], which grep can find.

use std::fmt;

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// Secret bytes: key material, passphrases, PINs, payloads.
pub struct SecretBytes(Box<[u8]>);

impl SecretBytes {
    /// Takes ownership of `bytes`; the vector's buffer becomes the secret's.
    pub fn new(bytes: Vec<u8>) -> Self {
        // `into_boxed_slice` may reallocate when capacity > len; wipe the
        // spare capacity first so no copy of the secret is left behind.
        let mut bytes = bytes;
        if bytes.capacity() != bytes.len() {
            let copy = SecretBytes(bytes.as_slice().into());
            bytes.zeroize();
            return copy;
        }
        SecretBytes(bytes.into_boxed_slice())
    }

    /// Copies `bytes`; the caller remains responsible for its own copy.
    pub fn copy_from(bytes: &[u8]) -> Self {
        SecretBytes(bytes.into())
    }

    /// `len` bytes from the operating system's CSPRNG.
    pub fn random(len: usize) -> crate::Result<Self> {
        let mut buf = vec![0u8; len].into_boxed_slice();
        crate::crypto::fill_random(&mut buf)?;
        Ok(SecretBytes(buf))
    }

    /// The secret bytes. Every read of key material goes through here.
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Constant-time equality, for tests and for "store accepts only this key" checks.
    pub fn ct_eq(&self, other: &[u8]) -> bool {
        // Lengths are not secret: subtle answers false at once when they differ.
        bool::from(self.0[..].ct_eq(other))
    }
}

impl Clone for SecretBytes {
    fn clone(&self) -> Self {
        SecretBytes::copy_from(&self.0)
    }
}

impl Drop for SecretBytes {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes([REDACTED; {} bytes])", self.0.len())
    }
}

impl From<Zeroizing<Vec<u8>>> for SecretBytes {
    fn from(mut z: Zeroizing<Vec<u8>>) -> Self {
        SecretBytes::new(std::mem::take(&mut *z))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = SecretBytes::copy_from(b"hunter2-hunter2");
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2"));
        assert!(!shown.contains("104")); // 'h' as a decimal byte
        assert_eq!(shown, "SecretBytes([REDACTED; 15 bytes])");
    }

    #[test]
    fn new_handles_spare_capacity() {
        let mut v = Vec::with_capacity(64);
        v.extend_from_slice(b"abc");
        let s = SecretBytes::new(v);
        assert_eq!(s.expose_secret(), b"abc");
    }
}
