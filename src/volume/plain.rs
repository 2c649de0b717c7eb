//! dm-crypt plain mode, os-brick's `plain` provider (CryptsetupEncryptor):
//! no header, the key derived from the passphrase by hashing, the payload
//! from the first sector of the device.
//!
//! os-brick runs `cryptsetup create --key-file=- [--cipher C] [--key-size
//! N] NAME DEVICE` with the passphrase (the hex of the volume's key) on
//! stdin. Because the key file is stdin, cryptsetup hashes what it reads
//! (with its plain-mode default hash, ripemd160, as os-brick passes no
//! `--hash`): the key is `H(passphrase) || H("A" || passphrase) || H("AA"
//! || passphrase) …`, cut to the key size (cryptsetup's `crypt_plain_hash`).
//! Its other plain defaults are `aes-cbc-essiv:sha256` and 256 bits.
//!
//! Plain mode has no header, so nothing can tell a wrong key from a right
//! one: [`PlainVolume::open`] with the wrong passphrase succeeds and reads
//! noise. Nothing here ever formats or writes anything on open.

use std::fmt;
use std::path::Path;

use ripemd::Ripemd160;
use sha2::{Digest, Sha256, Sha512};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, ErrorKind, Result};
use crate::secret::SecretBytes;
use crate::volume::luks::payload::Payload;
use crate::volume::luks::{SECTOR, SectorCipher, file_len, open_file, truncated};
use crate::volume::spec::{CipherSpec, EncryptionSpec};

/// How plain mode turns the passphrase into the key (`--hash`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PlainHash {
    /// cryptsetup's plain-mode default, and what os-brick gets.
    Ripemd160,
    Sha1,
    Sha256,
    Sha512,
    /// No hash: the passphrase's first bytes are the key (`--hash plain`).
    Plain,
}

impl PlainHash {
    /// Case-insensitive, as cryptsetup's crypto backends take hash names.
    pub fn parse(name: &str) -> Result<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "ripemd160" => Ok(PlainHash::Ripemd160),
            "sha1" => Ok(PlainHash::Sha1),
            "sha256" => Ok(PlainHash::Sha256),
            "sha512" => Ok(PlainHash::Sha512),
            "plain" => Ok(PlainHash::Plain),
            _ => Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "plain-mode hash {name:?} is not supported (ripemd160, sha1, sha256, sha512, plain are)"
                ),
            )
            .with_field("hash")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PlainHash::Ripemd160 => "ripemd160",
            PlainHash::Sha1 => "sha1",
            PlainHash::Sha256 => "sha256",
            PlainHash::Sha512 => "sha512",
            PlainHash::Plain => "plain",
        }
    }
}

impl fmt::Display for PlainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `cryptsetup open --type plain` options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlainOptions {
    pub cipher: CipherSpec,
    /// The key in bytes (`--key-size` / 8): the whole XTS key, the CBC key.
    pub key_bytes: usize,
    pub hash: PlainHash,
    /// `--offset`: where the payload starts, in 512-byte sectors.
    pub offset: u64,
    /// `--skip`: the IV sector of the payload's first sector.
    pub skip: u64,
}

impl Default for PlainOptions {
    /// cryptsetup 2.6's compiled-in plain defaults: aes-cbc-essiv:sha256,
    /// 256 bits, ripemd160; no offset or skip.
    fn default() -> Self {
        PlainOptions {
            cipher: CipherSpec::AES_CBC_ESSIV_SHA256,
            key_bytes: 32,
            hash: PlainHash::Ripemd160,
            offset: 0,
            skip: 0,
        }
    }
}

impl PlainOptions {
    /// What os-brick's CryptsetupEncryptor asks cryptsetup for: the volume
    /// type's cipher and `key_size` when it has them, cryptsetup's
    /// defaults otherwise (`key_size` in bits, the whole key).
    pub fn from_spec(spec: &EncryptionSpec) -> Result<Self> {
        let defaults = PlainOptions::default();
        let key_bytes = match spec.key_size {
            Some(bits) if bits % 8 == 0 && bits > 0 => bits as usize / 8,
            Some(_) => {
                return Err(Error::invalid(
                    "key_size",
                    "must be a positive multiple of 8 bits",
                ));
            }
            None => defaults.key_bytes,
        };
        let opts = PlainOptions {
            cipher: spec.cipher.unwrap_or(defaults.cipher),
            key_bytes,
            ..defaults
        };
        // A key size the cipher does not take is refused here, not at open.
        SectorCipher::new(&vec![0u8; opts.key_bytes], opts.cipher, 512)?;
        Ok(opts)
    }

    pub fn with_hash(mut self, hash: PlainHash) -> Self {
        self.hash = hash;
        self
    }

    pub fn with_offset(mut self, sectors: u64) -> Self {
        self.offset = sectors;
        self
    }

    pub fn with_skip(mut self, sectors: u64) -> Self {
        self.skip = sectors;
        self
    }
}

/// The key plain mode derives from `passphrase`, as cryptsetup's
/// `crypt_plain_hash` does: hash rounds `H("A" * r || passphrase)` for r =
/// 0, 1, … concatenated and cut to `key_bytes`; with [`PlainHash::Plain`]
/// the passphrase's first `key_bytes` bytes.
pub fn plain_key(
    passphrase: &SecretBytes,
    hash: PlainHash,
    key_bytes: usize,
) -> Result<SecretBytes> {
    let pass = passphrase.expose_secret();
    let mut key = Zeroizing::new(Vec::with_capacity(key_bytes));
    if hash == PlainHash::Plain {
        let Some(head) = pass.get(..key_bytes) else {
            return Err(Error::invalid(
                "passphrase",
                format!("hash plain needs a passphrase of at least {key_bytes} bytes"),
            ));
        };
        key.extend_from_slice(head);
        return Ok(SecretBytes::from(key));
    }
    let mut round = 0usize;
    while key.len() < key_bytes {
        let mut digest = match hash {
            PlainHash::Ripemd160 => hash_round::<Ripemd160>(round, pass),
            PlainHash::Sha1 => hash_round::<sha1::Sha1>(round, pass),
            PlainHash::Sha256 => hash_round::<Sha256>(round, pass),
            PlainHash::Sha512 => hash_round::<Sha512>(round, pass),
            PlainHash::Plain => unreachable!("handled above"),
        };
        let take = digest.len().min(key_bytes - key.len());
        key.extend_from_slice(&digest[..take]);
        digest.zeroize();
        round += 1;
    }
    Ok(SecretBytes::from(key))
}

fn hash_round<D: Digest>(round: usize, pass: &[u8]) -> Vec<u8> {
    let mut h = D::new();
    for _ in 0..round {
        h.update(b"A");
    }
    h.update(pass);
    let mut out = h.finalize();
    let v = out.to_vec();
    out.as_mut_slice().zeroize();
    v
}

/// An open plain dm-crypt volume in a file.
pub struct PlainVolume {
    payload: Payload,
    key: SecretBytes,
    options: PlainOptions,
}

impl PlainVolume {
    /// Opens the file at `path` as `cryptsetup open --type plain` would:
    /// the key from `passphrase` by `opts.hash`, the payload from sector
    /// `opts.offset` to the end of the file, IVs from `opts.skip`.
    ///
    /// There is no header to check the key against: a wrong passphrase
    /// opens too, and reads noise. Nothing is written.
    pub fn open(path: &Path, passphrase: &SecretBytes, opts: &PlainOptions) -> Result<Self> {
        PlainVolume::open_mode(path, passphrase, opts, true)
    }

    /// [`PlainVolume::open`] without write access to the file (cryptsetup's
    /// `--readonly`), so a read-only device or file opens for reading;
    /// [`PlainVolume::write_at`] is then refused (`PermissionDenied`).
    pub fn open_read_only(
        path: &Path,
        passphrase: &SecretBytes,
        opts: &PlainOptions,
    ) -> Result<Self> {
        PlainVolume::open_mode(path, passphrase, opts, false)
    }

    /// True when the volume was opened with [`PlainVolume::open_read_only`].
    pub fn is_read_only(&self) -> bool {
        self.payload.is_read_only()
    }

    fn open_mode(
        path: &Path,
        passphrase: &SecretBytes,
        opts: &PlainOptions,
        write: bool,
    ) -> Result<Self> {
        let key = plain_key(passphrase, opts.hash, opts.key_bytes)?;
        let cipher = SectorCipher::new(key.expose_secret(), opts.cipher, SECTOR as usize)?;
        let file = open_file(path, write)?;
        let len = file_len(&file)?;
        let start = opts
            .offset
            .checked_mul(SECTOR)
            .ok_or_else(|| Error::invalid("offset", "offset past 2^64 bytes"))?;
        if start > len {
            return Err(truncated(path, len, start));
        }
        let mut payload = Payload::new(file, cipher, start, len - start, opts.skip)?;
        if !write {
            payload.set_read_only();
        }
        Ok(PlainVolume {
            payload,
            key,
            options: *opts,
        })
    }

    /// The dm-crypt key.
    pub fn key(&self) -> &SecretBytes {
        &self.key
    }

    pub fn options(&self) -> &PlainOptions {
        &self.options
    }

    /// Payload bytes available.
    pub fn payload_len(&self) -> u64 {
        self.payload.len()
    }

    /// Byte offset of the payload in the file.
    pub fn payload_start(&self) -> u64 {
        self.payload.start()
    }

    /// Reads and decrypts `buf.len()` payload bytes from `offset`.
    pub fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.payload.read_at(offset, buf)
    }

    /// Encrypts and writes `data` at payload `offset`.
    pub fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        self.payload.write_at(offset, data)
    }

    /// Flushes written payload to the disk.
    pub fn sync(&mut self) -> Result<()> {
        self.payload.sync()
    }
}

impl fmt::Debug for PlainVolume {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlainVolume")
            .field("key", &self.key)
            .field("options", &self.options)
            .field("payload", &self.payload)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// cryptsetup 2.6.1's plain key for the passphrase `abc`, 256 bits,
    /// ripemd160 (libcryptsetup `crypt_volume_key_get` on a PLAIN device):
    /// RIPEMD-160("abc") || RIPEMD-160("Aabc")[..12].
    const ABC_RIPEMD160_256: &str =
        "8eb208f7e05d987a9b044a8e98c6b087f15a0bfc7e368e412f739ece724fc229";

    #[test]
    fn plain_key_is_cryptsetups() {
        let key = plain_key(&SecretBytes::copy_from(b"abc"), PlainHash::Ripemd160, 32).unwrap();
        let hex: String = key
            .expose_secret()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hex, ABC_RIPEMD160_256);
        let sha = plain_key(&SecretBytes::copy_from(b"abc"), PlainHash::Sha256, 16).unwrap();
        assert_eq!(sha.expose_secret(), &Sha256::digest(b"abc")[..16]);
        let p = plain_key(
            &SecretBytes::copy_from(b"0123456789abcdef"),
            PlainHash::Plain,
            16,
        )
        .unwrap();
        assert_eq!(p.expose_secret(), b"0123456789abcdef");
        let e = plain_key(&SecretBytes::copy_from(b"short"), PlainHash::Plain, 16).unwrap_err();
        assert_eq!(e.field(), Some("passphrase"));
    }

    #[test]
    fn os_brick_arguments_become_options() {
        let spec = EncryptionSpec::parse("plain", "front-end", None, None).unwrap();
        assert_eq!(
            PlainOptions::from_spec(&spec).unwrap(),
            PlainOptions::default()
        );
        let spec = EncryptionSpec::parse(
            "CryptsetupEncryptor",
            "front-end",
            Some("aes-xts-plain64"),
            Some("512"),
        )
        .unwrap();
        let o = PlainOptions::from_spec(&spec).unwrap();
        assert_eq!((o.cipher, o.key_bytes), (CipherSpec::AES_XTS_PLAIN64, 64));
        let spec = EncryptionSpec::parse("plain", "front-end", None, Some("512")).unwrap();
        let e = PlainOptions::from_spec(&spec).unwrap_err();
        assert_eq!(
            (e.kind(), e.field()),
            (ErrorKind::Unsupported, Some("key_bytes"))
        );
        assert_eq!(PlainHash::parse("RIPEMD160").unwrap(), PlainHash::Ripemd160);
        assert_eq!(
            PlainHash::parse("whirlpool").unwrap_err().field(),
            Some("hash")
        );
    }
}
