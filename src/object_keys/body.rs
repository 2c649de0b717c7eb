//! The object cipher: bodies are AES-256-CTR under a random body key,
//! which is itself wrapped with AES-256-CTR under the object key (swift's
//! `encrypter.py` and `decrypter.py`).

use std::fmt;
use std::io::{Read, Write};

use aes::Aes256;
use ctr::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
use zeroize::Zeroizing;

use crate::crypto::fill_random;
use crate::error::{Error, ErrorKind, Result};

use super::{BodyCryptoMeta, CHUNK_SIZE, IV_LEN, KEY_LEN, ObjectKeyMaster, ObjectPath, WrappedKey};

type Aes256Ctr = ctr::Ctr128BE<Aes256>;

impl ObjectKeyMaster {
    /// Starts encrypting a new object body at `path`: a fresh body key and
    /// IV, the body key wrapped under the object key.
    pub fn body_encryptor(&self, path: &ObjectPath) -> Result<BodyEncryptor> {
        let keys = self.keys_for_write(path)?;
        let mut body_key = Zeroizing::new([0u8; KEY_LEN]);
        fill_random(body_key.as_mut())?;
        let mut iv = [0u8; IV_LEN];
        fill_random(&mut iv)?;
        let mut wrap_iv = [0u8; IV_LEN];
        fill_random(&mut wrap_iv)?;
        let mut wrapped = *body_key;
        ctr_cipher(keys.object.expose_secret(), &wrap_iv)?.apply_keystream(&mut wrapped);
        let cipher = ctr_cipher(body_key.as_ref(), &iv)?;
        Ok(BodyEncryptor {
            cipher,
            meta: BodyCryptoMeta {
                iv,
                body_key: WrappedKey {
                    iv: wrap_iv,
                    key: wrapped,
                },
                key_id: keys.key_id,
            },
        })
    }

    /// Starts decrypting an object body stored with `meta`, at byte
    /// `offset` of the body (ranged reads).
    pub fn body_decryptor(
        &self,
        path: &ObjectPath,
        meta: &BodyCryptoMeta,
        offset: u64,
    ) -> Result<BodyDecryptor> {
        let keys = self.keys_for_read(path, &meta.key_id)?;
        let mut body_key = Zeroizing::new(meta.body_key.key);
        ctr_cipher(keys.object.expose_secret(), &meta.body_key.iv)?
            .apply_keystream(body_key.as_mut());
        let mut cipher = ctr_cipher(body_key.as_ref(), &meta.iv)?;
        // The counter wraps modulo 2^128, as swift's IV arithmetic does.
        cipher
            .try_seek(offset)
            .map_err(|_| Error::invalid("offset", "offset is beyond what AES-CTR can address"))?;
        Ok(BodyDecryptor { cipher })
    }

    /// Encrypts `body` into `out` in [`CHUNK_SIZE`] chunks; returns the
    /// metadata to store beside the object.
    pub fn encrypt_object(
        &self,
        path: &ObjectPath,
        body: impl Read,
        out: impl Write,
    ) -> Result<BodyCryptoMeta> {
        let mut enc = self.body_encryptor(path)?;
        pump(body, out, |chunk| enc.apply(chunk))?;
        Ok(enc.into_meta())
    }

    /// Decrypts a stored body into `out` in [`CHUNK_SIZE`] chunks; returns
    /// the number of bytes written.
    pub fn decrypt_object(
        &self,
        path: &ObjectPath,
        meta: &BodyCryptoMeta,
        stored: impl Read,
        out: impl Write,
    ) -> Result<u64> {
        let mut dec = self.body_decryptor(path, meta, 0)?;
        pump(stored, out, |chunk| dec.apply(chunk))
    }
}

/// Encrypts one object body, chunk by chunk, in place.
pub struct BodyEncryptor {
    cipher: Aes256Ctr,
    meta: BodyCryptoMeta,
}

impl BodyEncryptor {
    /// Encrypts the next bytes of the body in place.
    pub fn apply(&mut self, chunk: &mut [u8]) {
        self.cipher.apply_keystream(chunk);
    }

    pub fn meta(&self) -> &BodyCryptoMeta {
        &self.meta
    }

    pub fn into_meta(self) -> BodyCryptoMeta {
        self.meta
    }
}

impl fmt::Debug for BodyEncryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyEncryptor")
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

/// Decrypts one object body, chunk by chunk, in place.
pub struct BodyDecryptor {
    cipher: Aes256Ctr,
}

impl BodyDecryptor {
    /// Decrypts the next bytes of the body in place.
    pub fn apply(&mut self, chunk: &mut [u8]) {
        self.cipher.apply_keystream(chunk);
    }
}

impl fmt::Debug for BodyDecryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BodyDecryptor([REDACTED])")
    }
}

fn ctr_cipher(key: &[u8], iv: &[u8; IV_LEN]) -> Result<Aes256Ctr> {
    Aes256Ctr::new_from_slices(key, iv)
        .map_err(|_| Error::invalid("key", format!("Key must be length {KEY_LEN} bytes")))
}

/// Reads `input` to its end in chunks, transforms each in place, writes it.
fn pump(mut input: impl Read, mut out: impl Write, mut f: impl FnMut(&mut [u8])) -> Result<u64> {
    let io = |what: &'static str| {
        move |e: std::io::Error| Error::new(ErrorKind::Storage, what).with_source(e)
    };
    let mut buf = vec![0u8; CHUNK_SIZE];
    let mut total = 0u64;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io("reading the object body failed")(e)),
        };
        f(&mut buf[..n]);
        out.write_all(&buf[..n])
            .map_err(io("writing the object body failed"))?;
        total += n as u64;
    }
    out.flush().map_err(io("writing the object body failed"))?;
    Ok(total)
}
