//! Key generation for orders: what Barbican's `simple_crypto` plugin makes
//! for `key` and `asymmetric` orders (barbican,
//! `barbican/plugin/crypto/simple_crypto.py`).
//!
//! * Symmetric keys are raw bytes from the operating system's CSPRNG. Which
//!   algorithms and lengths an order may ask for is the order layer's
//!   business; here any positive multiple of 8 bits up to Barbican's schema
//!   maximum is made.
//! * RSA keys come back as PEM: the private key as PKCS#8 (`PRIVATE KEY`), or
//!   encrypted PKCS#8 (`ENCRYPTED PRIVATE KEY`, PBES2 with PBKDF2-HMAC-SHA256
//!   and AES-256-CBC) when the order carries a passphrase; the public key as
//!   SubjectPublicKeyInfo (`PUBLIC KEY`). The PEM text of the private key only
//!   ever lives in [`SecretBytes`] or in `Zeroizing` buffers.

use std::fmt;

use getrandom::SysRng;
use getrandom::rand_core::UnwrapErr;
use rsa::pkcs8::der::Decode as _;
use rsa::pkcs8::der::pem::PemLabel as _;
use rsa::pkcs8::pkcs5::pbes2;
use rsa::pkcs8::{
    EncodePrivateKey as _, EncodePublicKey as _, EncryptedPrivateKeyInfoRef, LineEnding,
    PrivateKeyInfoRef,
};
use rsa::traits::PublicKeyParts as _;

use crate::error::{Error, ErrorKind, Result};
use crate::secret::SecretBytes;

/// Barbican's schema maximum for `bit_length` (MySQL `SMALLINT`).
pub const MAX_SYMMETRIC_BITS: u32 = 32_767;

/// RSA modulus sizes we generate.
pub const RSA_BITS: [u32; 3] = [2048, 3072, 4096];

/// PBKDF2-HMAC-SHA256 rounds for encrypted private keys: OWASP's 2023
/// recommendation, and what the `pkcs5` crate picks for PBKDF2. Costs about a
/// third of a second per encryption or decryption on one core.
pub const PBKDF2_ITERATIONS: u32 = 600_000;

/// Random key bytes for a symmetric-key order.
pub fn generate_symmetric(bit_length: u32) -> Result<SecretBytes> {
    SecretBytes::random(symmetric_key_len(bit_length)?)
}

/// The byte length of a symmetric key of `bit_length` bits, if we make such keys.
pub fn symmetric_key_len(bit_length: u32) -> Result<usize> {
    if bit_length == 0 || !bit_length.is_multiple_of(8) {
        return Err(Error::invalid(
            "bit_length",
            "Must be a positive integer that is a multiple of 8",
        ));
    }
    if bit_length > MAX_SYMMETRIC_BITS {
        return Err(Error::invalid(
            "bit_length",
            format!("{bit_length} is greater than the maximum of {MAX_SYMMETRIC_BITS}"),
        ));
    }
    // Lossless: bit_length / 8 < 4096.
    Ok((bit_length / 8) as usize)
}

/// An RSA key pair as PEM text. `Debug` shows no key material.
pub struct RsaKeyPair {
    bits: u32,
    private_key_pem: SecretBytes,
    public_key_pem: String,
    encrypted: bool,
}

impl RsaKeyPair {
    /// The modulus size.
    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// PKCS#8 PEM, `ENCRYPTED PRIVATE KEY` when a passphrase was given and
    /// `PRIVATE KEY` otherwise.
    pub fn private_key_pem(&self) -> &SecretBytes {
        &self.private_key_pem
    }

    /// SubjectPublicKeyInfo PEM (`PUBLIC KEY`).
    pub fn public_key_pem(&self) -> &str {
        &self.public_key_pem
    }

    /// Whether the private key is passphrase-encrypted.
    pub fn is_private_key_encrypted(&self) -> bool {
        self.encrypted
    }

    /// `(private key PEM, public key PEM)`, for storing as two secrets.
    pub fn into_pems(self) -> (SecretBytes, String) {
        (self.private_key_pem, self.public_key_pem)
    }
}

impl fmt::Debug for RsaKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RsaKeyPair")
            .field("bits", &self.bits)
            .field("encrypted", &self.encrypted)
            .field("private_key_pem", &self.private_key_pem)
            .field(
                "public_key_pem",
                &format_args!("[{} bytes]", self.public_key_pem.len()),
            )
            .finish()
    }
}

/// A new RSA key pair (public exponent 65537) for an asymmetric order.
///
/// With `passphrase`, the private key is encrypted PKCS#8 as Barbican's
/// `BestAvailableEncryption` makes it; an empty passphrase is refused, as
/// Python's `cryptography` refuses it.
pub fn generate_rsa(bits: u32, passphrase: Option<&SecretBytes>) -> Result<RsaKeyPair> {
    if !RSA_BITS.contains(&bits) {
        return Err(Error::invalid(
            "bit_length",
            "RSA keys must be 2048, 3072 or 4096 bits",
        ));
    }
    if passphrase.is_some_and(SecretBytes::is_empty) {
        return Err(Error::invalid(
            "passphrase",
            "Password must be 1 or more bytes",
        ));
    }

    // The RSA crate needs an infallible RNG. Ask the OS once through the
    // fallible call so a broken RNG is a typed error here; a failure after
    // that (which Linux's getrandom(2) does not produce once seeded) panics
    // inside `UnwrapErr` rather than yield a weak key.
    crate::crypto::fill_random(&mut [0u8; 16])?;
    let mut rng = UnwrapErr(SysRng);
    // Lossless: bits is one of RSA_BITS.
    let key = rsa::PrivateKey::new(&mut rng, bits as usize).map_err(|e| {
        Error::new(ErrorKind::Unsupported, "RSA key generation failed").with_source(e)
    })?;
    debug_assert_eq!(key.size() * 8, bits as usize);

    let public_key_pem = key
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| encoding_failed("public key").with_source(e))?;

    let der = key
        .to_pkcs8_der()
        .map_err(|e| encoding_failed("private key").with_source(e))?;
    let pem = match passphrase {
        None => der.to_pem(PrivateKeyInfoRef::PEM_LABEL, LineEnding::LF),
        Some(passphrase) => encrypt_pkcs8(der.as_bytes(), passphrase)?
            .to_pem(EncryptedPrivateKeyInfoRef::PEM_LABEL, LineEnding::LF),
    }
    .map_err(|e| encoding_failed("private key").with_source(e))?;

    Ok(RsaKeyPair {
        bits,
        private_key_pem: SecretBytes::copy_from(pem.as_bytes()),
        public_key_pem,
        encrypted: passphrase.is_some(),
    })
}

/// PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC) over a PKCS#8 `PrivateKeyInfo`.
fn encrypt_pkcs8(der: &[u8], passphrase: &SecretBytes) -> Result<rsa::pkcs8::SecretDocument> {
    let mut salt = [0u8; 16];
    let mut iv = [0u8; 16];
    crate::crypto::fill_random(&mut salt)?;
    crate::crypto::fill_random(&mut iv)?;
    let params = pbes2::Parameters::generate_pbkdf2_sha256_aes256cbc(PBKDF2_ITERATIONS, &salt, iv)
        .map_err(|e| encoding_failed("PBES2 parameters").with_source(e))?;
    PrivateKeyInfoRef::from_der(der)
        .map_err(|e| encoding_failed("private key").with_source(e))?
        .encrypt_with_params(params, passphrase.expose_secret())
        .map_err(|e| encoding_failed("encrypted private key").with_source(e))
}

/// Encoding our own freshly made key cannot fail short of a bug in the
/// encoder; keep the cause and say what was being encoded.
fn encoding_failed(what: &'static str) -> Error {
    Error::new(
        ErrorKind::Unsupported,
        format!("could not encode the generated RSA {what}"),
    )
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::process::{Command, Stdio};

    use rsa::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _, SecretDocument};

    use super::*;

    fn pem_str(pair: &RsaKeyPair) -> &str {
        std::str::from_utf8(pair.private_key_pem().expose_secret()).expect("PEM is ASCII")
    }

    #[track_caller]
    fn assert_parses_and_matches(pair: &RsaKeyPair, passphrase: Option<&[u8]>) -> rsa::PrivateKey {
        let private = match passphrase {
            None => rsa::PrivateKey::from_pkcs8_pem(pem_str(pair)).expect("PKCS#8 PEM parses"),
            Some(p) => rsa::PrivateKey::from_pkcs8_encrypted_pem(pem_str(pair), p)
                .expect("encrypted PKCS#8 PEM decrypts"),
        };
        private.validate().expect("valid RSA key");
        assert_eq!(private.size() * 8, pair.bits() as usize);
        let public =
            rsa::PublicKey::from_public_key_pem(pair.public_key_pem()).expect("SPKI parses");
        assert_eq!(
            private.to_public_key(),
            public,
            "public key matches private key"
        );
        private
    }

    // ---- symmetric ----

    #[test]
    fn symmetric_lengths() {
        for bits in [8, 64, 128, 192, 256, 512, 32_760] {
            let key = generate_symmetric(bits).unwrap();
            assert_eq!(key.len() * 8, bits as usize);
        }
        let a = generate_symmetric(256).unwrap();
        let b = generate_symmetric(256).unwrap();
        assert!(!a.ct_eq(b.expose_secret()), "two keys must differ");
    }

    #[test]
    fn symmetric_refuses_bad_lengths() {
        for bits in [0, 1, 7, 12, 129] {
            let e = generate_symmetric(bits).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
            assert_eq!(e.field(), Some("bit_length"));
            assert_eq!(
                e.context(),
                "Must be a positive integer that is a multiple of 8"
            );
        }
        let e = generate_symmetric(32_768).unwrap_err();
        assert_eq!(e.field(), Some("bit_length"));
        assert_eq!(e.context(), "32768 is greater than the maximum of 32767");
        assert!(generate_symmetric(u32::MAX - 7).is_err());
    }

    // ---- RSA ----

    #[test]
    fn rsa_refuses_other_sizes() {
        for bits in [0, 512, 1024, 2047, 2056, 8192] {
            let e = generate_rsa(bits, None).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
            assert_eq!(e.field(), Some("bit_length"));
        }
    }

    #[test]
    fn rsa_refuses_an_empty_passphrase() {
        let e = generate_rsa(2048, Some(&SecretBytes::new(Vec::new()))).unwrap_err();
        assert_eq!(e.field(), Some("passphrase"));
    }

    #[test]
    fn rsa_2048_plain_pkcs8() {
        let pair = generate_rsa(2048, None).unwrap();
        assert_eq!(pair.bits(), 2048);
        assert!(!pair.is_private_key_encrypted());
        assert!(pem_str(&pair).starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert!(pem_str(&pair).ends_with("-----END PRIVATE KEY-----\n"));
        assert!(
            pair.public_key_pem()
                .starts_with("-----BEGIN PUBLIC KEY-----\n")
        );
        let private = assert_parses_and_matches(&pair, None);
        assert_eq!(private.e(), &rsa::BoxedUint::from(65_537u32));
    }

    #[test]
    fn rsa_3072() {
        let pair = generate_rsa(3072, None).unwrap();
        assert_parses_and_matches(&pair, None);
    }

    #[test]
    fn rsa_4096() {
        let started = std::time::Instant::now();
        let pair = generate_rsa(4096, None).unwrap();
        eprintln!("4096-bit RSA key generated in {:?}", started.elapsed());
        assert_parses_and_matches(&pair, None);
    }

    #[test]
    fn two_keys_differ() {
        let a = generate_rsa(2048, None).unwrap();
        let b = generate_rsa(2048, None).unwrap();
        assert_ne!(a.public_key_pem(), b.public_key_pem());
    }

    #[test]
    fn rsa_encrypted_pkcs8_decrypts_only_with_the_passphrase() {
        let pass = SecretBytes::copy_from(b"correct horse battery staple");
        let pair = generate_rsa(2048, Some(&pass)).unwrap();
        assert!(pair.is_private_key_encrypted());
        assert!(pem_str(&pair).starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"));
        assert!(pem_str(&pair).ends_with("-----END ENCRYPTED PRIVATE KEY-----\n"));
        assert_parses_and_matches(&pair, Some(pass.expose_secret()));
        assert!(rsa::PrivateKey::from_pkcs8_encrypted_pem(pem_str(&pair), b"wrong").is_err());
        assert!(rsa::PrivateKey::from_pkcs8_pem(pem_str(&pair)).is_err());
    }

    #[test]
    fn rsa_encryption_is_pbes2_pbkdf2_sha256_aes256cbc() {
        let pass = SecretBytes::copy_from(b"pw");
        let pair = generate_rsa(2048, Some(&pass)).unwrap();
        let (label, doc) = SecretDocument::from_pem(pem_str(&pair)).unwrap();
        assert_eq!(label, "ENCRYPTED PRIVATE KEY");
        let info = EncryptedPrivateKeyInfoRef::from_der(doc.as_bytes()).unwrap();
        let params = info.encryption_algorithm.pbes2().expect("PBES2");
        let kdf = params.kdf.pbkdf2().expect("PBKDF2");
        assert_eq!(kdf.iteration_count, PBKDF2_ITERATIONS);
        assert_eq!(kdf.prf, pbes2::Pbkdf2Prf::HmacWithSha256);
        assert_eq!(kdf.salt.as_ref().len(), 16);
        assert!(matches!(
            params.encryption,
            pbes2::EncryptionScheme::Aes256Cbc { .. }
        ));
    }

    #[test]
    fn debug_is_redacted() {
        let pass = SecretBytes::copy_from(b"pw");
        for pair in [
            generate_rsa(2048, None).unwrap(),
            generate_rsa(2048, Some(&pass)).unwrap(),
        ] {
            let shown = format!("{pair:?}");
            assert!(!shown.contains("PRIVATE KEY"), "{shown}");
            // No 16-character run of any PEM body line appears.
            for line in pem_str(&pair).lines().filter(|l| !l.starts_with("-----")) {
                assert!(!shown.contains(&line[..16]), "{shown}");
            }
            assert!(shown.contains("REDACTED"), "{shown}");
        }
    }

    // ---- the openssl CLI as an independent peer ----

    /// Runs `openssl args…` with `stdin`; `None` when openssl is not installed
    /// and we are not in CI (where a missing peer is a failure).
    fn openssl(args: &[&str], stdin: &[u8], pass: Option<&[u8]>) -> Option<std::process::Output> {
        let mut cmd = Command::new("openssl");
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(pass) = pass {
            // Through the environment, not argv, so `ps` does not show it.
            cmd.env(
                "KEYWARDEN_TEST_PASS",
                std::str::from_utf8(pass).expect("test passphrases are UTF-8"),
            );
        }
        let mut child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!("the openssl CLI is required in CI but was not found");
                }
                eprintln!("skipping: openssl CLI not found");
                return None;
            }
            Err(e) => panic!("could not run openssl: {e}"),
        };
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        Some(child.wait_with_output().unwrap())
    }

    #[test]
    fn openssl_accepts_plain_keys() {
        let pair = generate_rsa(2048, None).unwrap();
        let pem = pair.private_key_pem().expose_secret();
        let Some(check) = openssl(&["pkey", "-check", "-noout"], pem, None) else {
            return;
        };
        assert!(
            check.status.success(),
            "{}",
            String::from_utf8_lossy(&check.stderr)
        );
        let derived = openssl(&["pkey", "-pubout"], pem, None).unwrap();
        assert!(derived.status.success());
        assert_eq!(
            String::from_utf8(derived.stdout).unwrap(),
            pair.public_key_pem()
        );
        let public = openssl(
            &["pkey", "-pubin", "-noout", "-text"],
            pair.public_key_pem().as_bytes(),
            None,
        )
        .unwrap();
        assert!(public.status.success());
        assert!(String::from_utf8_lossy(&public.stdout).contains("Public-Key: (2048 bit)"));
    }

    #[test]
    fn openssl_decrypts_encrypted_keys_with_the_passphrase_only() {
        let pass = SecretBytes::copy_from(b"s3cret passphrase");
        let pair = generate_rsa(2048, Some(&pass)).unwrap();
        let pem = pair.private_key_pem().expose_secret();
        let Some(decrypted) = openssl(
            &["pkcs8", "-passin", "env:KEYWARDEN_TEST_PASS"],
            pem,
            Some(pass.expose_secret()),
        ) else {
            return;
        };
        assert!(
            decrypted.status.success(),
            "{}",
            String::from_utf8_lossy(&decrypted.stderr)
        );
        let plain = String::from_utf8(decrypted.stdout).unwrap();
        assert!(plain.starts_with("-----BEGIN PRIVATE KEY-----"));
        let ours = rsa::PrivateKey::from_pkcs8_encrypted_pem(pem_str(&pair), pass.expose_secret())
            .unwrap();
        assert_eq!(rsa::PrivateKey::from_pkcs8_pem(&plain).unwrap(), ours);

        let wrong = openssl(
            &["pkcs8", "-passin", "env:KEYWARDEN_TEST_PASS"],
            pem,
            Some(b"not the passphrase"),
        )
        .unwrap();
        assert!(
            !wrong.status.success(),
            "openssl must refuse a wrong passphrase"
        );
    }
}
