//! Image signature verification, as cursive does it for glance, nova and
//! cinder (openstack/cursive, `cursive/signature_utils.py` and
//! `cursive/verifiers.py`), with the signing certificate held in a
//! [`SecretStore`].
//!
//! An image carries four properties: `img_signature` (base64 of the raw
//! signature), `img_signature_hash_method` (`SHA-224`, `SHA-256`, `SHA-384`,
//! `SHA-512`), `img_signature_key_type` (`RSA-PSS`, `DSA`, `ECC_SECP384R1`,
//! `ECC_SECP521R1`) and `img_signature_certificate_uuid` (the id of a
//! certificate secret). The image bytes are hashed as they stream past
//! ([`ImageVerifier`] is a [`Write`]), then the digest is verified against
//! the certificate's public key:
//!
//! * RSA-PSS with MGF1 over the same hash; any salt length up to the maximum
//!   is accepted (OpenSSL 3.0 signs with the maximum, OpenSSL 3.1 and later
//!   with the digest length, and both must verify). RSA keys under 2048 bits
//!   (the glance guide's example makes a 1024-bit key) are accepted with a
//!   warning that they are weak.
//! * ECDSA on P-384 or P-521, and DSA, with DER `(r, s)` signatures over the
//!   prehashed digest.
//!
//! Every refusal is an [`Error`] whose source is a [`Failure`] naming the
//! reason: a missing property, an unknown hash method or key type, a
//! signature that is not base64 (or not DER), a certificate that is not
//! found, not a certificate, or outside its dates (when dates are checked),
//! a key that does not suit the key type, or a signature that does not
//! match. As in cursive, dates are not checked unless asked for
//! ([`VerifyOptions::check_dates_at`]).
//!
//! Where we differ from cursive, on purpose: an `ECC_*` key type must name
//! the certificate's own curve (cursive accepts any EC key); the binary
//! `ECC_SECT*` curves are refused as unsupported, as cursive does under
//! cryptography 47 and later.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{Read, Write};
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ecdsa::signature::hazmat::PrehashVerifier as _;
use rsa::traits::PublicKeyParts as _;
use sha2::Digest as _;

use crate::context::Context;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{ManagedObject, SecretId, Timestamp};
use crate::store::SecretStore;

mod certificate;
pub mod cinder;

use certificate::PublicKey;
pub use certificate::SigningCertificate;

/// `img_signature`: base64 of the signature.
pub const SIGNATURE: &str = "img_signature";
/// `img_signature_hash_method`.
pub const HASH_METHOD: &str = "img_signature_hash_method";
/// `img_signature_key_type`.
pub const KEY_TYPE: &str = "img_signature_key_type";
/// `img_signature_certificate_uuid`: the certificate secret's id.
pub const CERT_UUID: &str = "img_signature_certificate_uuid";
/// The four, in the order cursive checks them.
pub const PROPERTIES: [&str; 4] = [CERT_UUID, HASH_METHOD, SIGNATURE, KEY_TYPE];

/// RSA keys below this many bits verify with a warning.
pub const WEAK_RSA_BITS: usize = 2048;

/// The SHA-2 hash the image was signed over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HashMethod {
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl HashMethod {
    pub const ALL: [HashMethod; 4] = [
        HashMethod::Sha224,
        HashMethod::Sha256,
        HashMethod::Sha384,
        HashMethod::Sha512,
    ];

    /// The property value: `SHA-256` and so on.
    pub fn as_str(self) -> &'static str {
        match self {
            HashMethod::Sha224 => "SHA-224",
            HashMethod::Sha256 => "SHA-256",
            HashMethod::Sha384 => "SHA-384",
            HashMethod::Sha512 => "SHA-512",
        }
    }

    fn hasher(self) -> Hasher {
        match self {
            HashMethod::Sha224 => Hasher::Sha224(sha2::Sha224::new()),
            HashMethod::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            HashMethod::Sha384 => Hasher::Sha384(sha2::Sha384::new()),
            HashMethod::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }
}

impl FromStr for HashMethod {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        HashMethod::ALL
            .into_iter()
            .find(|h| h.as_str() == s)
            .ok_or_else(|| Failure::InvalidHashMethod(s.to_owned()).into_error())
    }
}

impl fmt::Display for HashMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The prime curves cursive still registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EcCurve {
    Secp384r1,
    Secp521r1,
}

impl EcCurve {
    pub fn name(self) -> &'static str {
        match self {
            EcCurve::Secp384r1 => "secp384r1",
            EcCurve::Secp521r1 => "secp521r1",
        }
    }
}

/// The kind of key that made the signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyType {
    RsaPss,
    Dsa,
    Ecc(EcCurve),
}

impl KeyType {
    /// The property value.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::RsaPss => "RSA-PSS",
            KeyType::Dsa => "DSA",
            KeyType::Ecc(EcCurve::Secp384r1) => "ECC_SECP384R1",
            KeyType::Ecc(EcCurve::Secp521r1) => "ECC_SECP521R1",
        }
    }
}

impl FromStr for KeyType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "RSA-PSS" => Ok(KeyType::RsaPss),
            "DSA" => Ok(KeyType::Dsa),
            "ECC_SECP384R1" => Ok(KeyType::Ecc(EcCurve::Secp384r1)),
            "ECC_SECP521R1" => Ok(KeyType::Ecc(EcCurve::Secp521r1)),
            "ECC_SECT571K1" | "ECC_SECT409K1" | "ECC_SECT571R1" | "ECC_SECT409R1" => {
                Err(Failure::UnsupportedKeyType(s.to_owned()).into_error())
            }
            _ => Err(Failure::InvalidKeyType(s.to_owned()).into_error()),
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An image's four signature properties, decoded.
#[derive(Clone, PartialEq, Eq)]
pub struct ImageSignature {
    signature: Vec<u8>,
    pub hash_method: HashMethod,
    pub key_type: KeyType,
    pub certificate_id: SecretId,
}

impl ImageSignature {
    /// Decodes the four property values, checked in cursive's order:
    /// signature, hash method, key type, certificate id.
    pub fn new(
        signature_b64: &str,
        hash_method: &str,
        key_type: &str,
        certificate_uuid: &str,
    ) -> Result<Self> {
        let signature = decode_signature_b64(signature_b64)?;
        let hash_method = hash_method.parse()?;
        let key_type = key_type.parse()?;
        let certificate_id = certificate_uuid.parse().map_err(|e| {
            Failure::CertificateNotFound(certificate_uuid.to_owned(), Some(Box::new(e)))
                .into_error()
        })?;
        Ok(ImageSignature {
            signature,
            hash_method,
            key_type,
            certificate_id,
        })
    }

    /// Reads the properties from an image's property map: `Ok(None)` when
    /// none of the four is there (nothing to verify), a
    /// [`Failure::MissingProperty`] when only some are.
    pub fn from_properties(properties: &BTreeMap<String, String>) -> Result<Option<Self>> {
        let present: Vec<&str> = PROPERTIES
            .iter()
            .copied()
            .filter(|p| properties.contains_key(*p))
            .collect();
        if present.is_empty() {
            return Ok(None);
        }
        if let Some(missing) = PROPERTIES.iter().find(|p| !present.contains(p)) {
            return Err(Failure::MissingProperty(missing).into_error());
        }
        let get = |p: &str| properties.get(p).map(String::as_str).unwrap_or_default();
        ImageSignature::new(
            get(SIGNATURE),
            get(HASH_METHOD),
            get(KEY_TYPE),
            get(CERT_UUID),
        )
        .map(Some)
    }

    /// The decoded signature bytes.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }
}

impl fmt::Debug for ImageSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImageSignature")
            .field("signature", &format_args!("{} bytes", self.signature.len()))
            .field("hash_method", &self.hash_method)
            .field("key_type", &self.key_type)
            .field("certificate_id", &self.certificate_id)
            .finish()
    }
}

/// Optional checks beyond cursive's plain verification.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VerifyOptions {
    /// Refuse a certificate outside its validity dates at this time.
    pub check_dates_at: Option<Timestamp>,
}

impl VerifyOptions {
    /// Checks the certificate's dates against the clock.
    pub fn check_dates_now() -> Self {
        VerifyOptions {
            check_dates_at: Some(Timestamp::now()),
        }
    }
}

/// What a successful verification found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub hash_method: HashMethod,
    pub key_type: KeyType,
    pub certificate_id: SecretId,
    pub certificate_subject: String,
    /// Bits in the signing key (the modulus for RSA and DSA, the field for ECC).
    pub key_bits: usize,
    /// Image bytes hashed.
    pub bytes: u64,
    /// An RSA key under [`WEAK_RSA_BITS`]: accepted, but weak.
    pub weak_key: bool,
}

/// Verifies one image as its bytes go past: create it, feed it every byte
/// ([`ImageVerifier::update`] or as a [`Write`]), then [`ImageVerifier::verify`].
pub struct ImageVerifier {
    key: PublicKey,
    hasher: Hasher,
    signature: ImageSignature,
    certificate_subject: String,
    bytes: u64,
}

impl ImageVerifier {
    /// Fetches the certificate from `store` as `ctx` (it must be a
    /// certificate secret) and prepares to hash the image.
    pub fn new(
        store: &SecretStore,
        ctx: &Context,
        signature: ImageSignature,
        options: &VerifyOptions,
    ) -> Result<Self> {
        let id = signature.certificate_id;
        let object = store.get_object(ctx, &id).map_err(|e| {
            if e.kind() == ErrorKind::NotFound {
                Failure::CertificateNotFound(id.to_string(), Some(Box::new(e))).into_error()
            } else {
                tracing::error!("Unable to retrieve certificate with ID {id}: {e}");
                Failure::CertificateUnavailable(id, Box::new(e)).into_error()
            }
        })?;
        let ManagedObject::X509Certificate { data } = &object else {
            return Err(
                Failure::InvalidCertificateFormat(object.secret_type().to_string()).into_error(),
            );
        };
        let cert = SigningCertificate::decode(data.expose_secret())?;
        Self::with_certificate(&cert, signature, options)
    }

    /// Prepares to verify against a certificate already in hand.
    pub fn with_certificate(
        cert: &SigningCertificate,
        signature: ImageSignature,
        options: &VerifyOptions,
    ) -> Result<Self> {
        if let Some(now) = options.check_dates_at {
            cert.check_dates(now)?;
        }
        let key = cert.public_key(signature.key_type)?;
        let certificate_subject = cert.subject();
        if let PublicKey::Rsa(k) = &key {
            let bits = k.n().bit_width() as usize;
            if bits < WEAK_RSA_BITS {
                tracing::warn!(
                    certificate = %signature.certificate_id,
                    bits,
                    "image signing certificate has a {bits}-bit RSA key: accepted, but keys under {WEAK_RSA_BITS} bits are weak"
                );
            }
        }
        Ok(ImageVerifier {
            key,
            hasher: signature.hash_method.hasher(),
            signature,
            certificate_subject,
            bytes: 0,
        })
    }

    /// Hashes the next image bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
        self.bytes += bytes.len() as u64;
    }

    /// Checks the signature over everything hashed.
    pub fn verify(self) -> Result<Verified> {
        let digest = self.hasher.finalize();
        let sig = self.signature.signature();
        let (key_bits, outcome) = match &self.key {
            PublicKey::Rsa(key) => {
                let bits = key.n().bit_width() as usize;
                if sig.len() != key.size() {
                    return Err(Failure::BadSignatureEncoding(format!(
                        "an RSA-PSS signature by this {bits}-bit key is {} bytes, not {}",
                        key.size(),
                        sig.len()
                    ))
                    .into_error());
                }
                (
                    bits,
                    verify_pss(key, self.signature.hash_method, &digest, sig),
                )
            }
            PublicKey::Dsa(key) => {
                let bits = key.components().p().bit_width() as usize;
                let sig = dsa::Signature::try_from(sig).map_err(|_| {
                    Failure::BadSignatureEncoding("not a DER DSA (r, s) sequence".into())
                        .into_error()
                })?;
                (bits, key.verify_prehash(&digest, &sig).is_ok())
            }
            PublicKey::P384(key) => {
                let sig = p384::ecdsa::Signature::from_der(sig).map_err(|_| {
                    Failure::BadSignatureEncoding("not a DER ECDSA (r, s) sequence".into())
                        .into_error()
                })?;
                (384, key.verify_prehash(&digest, &sig).is_ok())
            }
            PublicKey::P521(key) => {
                let sig = p521::ecdsa::Signature::from_der(sig).map_err(|_| {
                    Failure::BadSignatureEncoding("not a DER ECDSA (r, s) sequence".into())
                        .into_error()
                })?;
                (521, key.verify_prehash(&digest, &sig).is_ok())
            }
        };
        if !outcome {
            return Err(Failure::SignatureMismatch.into_error());
        }
        Ok(Verified {
            hash_method: self.signature.hash_method,
            key_type: self.signature.key_type,
            certificate_id: self.signature.certificate_id,
            certificate_subject: self.certificate_subject,
            key_bits,
            bytes: self.bytes,
            weak_key: matches!(self.key, PublicKey::Rsa(_)) && key_bits < WEAK_RSA_BITS,
        })
    }
}

impl Write for ImageVerifier {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl fmt::Debug for ImageVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImageVerifier")
            .field("signature", &self.signature)
            .field("certificate_subject", &self.certificate_subject)
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

/// Verifies an image read from `image` (streamed, never held whole).
pub fn verify_image(
    store: &SecretStore,
    ctx: &Context,
    signature: ImageSignature,
    image: impl Read,
    options: &VerifyOptions,
) -> Result<Verified> {
    let mut verifier = ImageVerifier::new(store, ctx, signature, options)?;
    copy_into(image, &mut verifier)?;
    verifier.verify()
}

/// Why a verification was refused: the typed source of every error this
/// module returns. Find it with [`Failure::of`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Failure {
    /// One of the four properties is absent while others are present.
    MissingProperty(&'static str),
    /// `img_signature_hash_method` is not a SHA-2 name we know.
    InvalidHashMethod(String),
    /// `img_signature_key_type` is not a key type at all.
    InvalidKeyType(String),
    /// A key type cursive once knew (the binary `ECC_SECT*` curves) that
    /// is not supported here.
    UnsupportedKeyType(String),
    /// The signature is not base64, or its bytes are not a signature of the
    /// key type's shape.
    BadSignatureEncoding(String),
    /// No certificate with this id is visible to the caller.
    CertificateNotFound(String, Option<Box<Error>>),
    /// The store could not produce the certificate.
    CertificateUnavailable(SecretId, Box<Error>),
    /// The secret is not a certificate.
    InvalidCertificateFormat(String),
    /// The certificate's bytes are not an X.509 certificate we can read.
    BadCertificate(
        String,
        Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ),
    /// The certificate's key does not suit the key type.
    KeyTypeMismatch { key_type: KeyType, found: String },
    /// Dates were checked and the certificate is outside them.
    CertificateExpired {
        not_before: Timestamp,
        not_after: Timestamp,
    },
    /// The signature does not match the image.
    SignatureMismatch,
}

impl Failure {
    /// The reason behind `error`, when it came from this module.
    pub fn of(error: &Error) -> Option<&Failure> {
        std::error::Error::source(error)?.downcast_ref::<Failure>()
    }

    /// The error kind this failure is reported as.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Failure::CertificateNotFound(..) => ErrorKind::NotFound,
            Failure::CertificateUnavailable(_, e) => e.kind(),
            Failure::UnsupportedKeyType(_) => ErrorKind::Unsupported,
            Failure::SignatureMismatch => ErrorKind::Integrity,
            _ => ErrorKind::InvalidInput,
        }
    }

    /// The image property a caller would fix, where there is one.
    fn field(&self) -> Option<&'static str> {
        match self {
            Failure::MissingProperty(p) => Some(p),
            Failure::InvalidHashMethod(_) => Some(HASH_METHOD),
            Failure::InvalidKeyType(_)
            | Failure::UnsupportedKeyType(_)
            | Failure::KeyTypeMismatch { .. } => Some(KEY_TYPE),
            Failure::BadSignatureEncoding(_) => Some(SIGNATURE),
            Failure::CertificateNotFound(..)
            | Failure::InvalidCertificateFormat(_)
            | Failure::BadCertificate(..)
            | Failure::CertificateExpired { .. } => Some(CERT_UUID),
            _ => None,
        }
    }

    pub(crate) fn into_error(self) -> Error {
        let mut e = Error::new(
            self.kind(),
            format!("Signature verification for the image failed: {self}."),
        );
        if let Some(field) = self.field() {
            e = e.with_field(field);
        }
        e.with_source(self)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::MissingProperty(p) => write!(
                f,
                "Required image properties for signature verification do not exist. Cannot verify signature. Missing property: {p}"
            ),
            Failure::InvalidHashMethod(h) => write!(f, "Invalid signature hash method: {h}"),
            Failure::InvalidKeyType(k) => write!(f, "Invalid signature key type: {k}"),
            Failure::UnsupportedKeyType(k) => write!(
                f,
                "Unsupported signature key type: {k} (binary curves are not supported)"
            ),
            Failure::BadSignatureEncoding(why) => write!(
                f,
                "The signature data was not properly encoded using base64 ({why})"
            ),
            Failure::CertificateNotFound(id, _) => write!(f, "Certificate not found with ID: {id}"),
            Failure::CertificateUnavailable(id, _) => {
                write!(f, "Unable to retrieve certificate with ID: {id}")
            }
            Failure::InvalidCertificateFormat(t) => write!(
                f,
                "Invalid certificate format: the secret is of type {t}, not certificate"
            ),
            Failure::BadCertificate(why, _) => write!(f, "Invalid certificate: {why}"),
            Failure::KeyTypeMismatch { key_type, found } => write!(
                f,
                "Invalid public key type for signature key type: {key_type} (the certificate holds {found})"
            ),
            Failure::CertificateExpired {
                not_before,
                not_after,
            } => write!(
                f,
                "The certificate is outside its valid date range (not before {not_before}, not after {not_after})"
            ),
            Failure::SignatureMismatch => f.write_str("Signature does not match the image"),
        }
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Failure::CertificateNotFound(_, Some(e)) | Failure::CertificateUnavailable(_, e) => {
                Some(e.as_ref())
            }
            Failure::BadCertificate(_, Some(e)) => Some(e.as_ref()),
            _ => None,
        }
    }
}

// ---- helpers ----

enum Hasher {
    Sha224(sha2::Sha224),
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl Hasher {
    fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha224(h) => h.update(bytes),
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha384(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
    }

    fn finalize(self) -> Vec<u8> {
        match self {
            Hasher::Sha224(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha384(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
        }
    }
}

/// RSASSA-PSS with MGF1 over the same hash, salt length detected (any
/// length up to `emLen - hLen - 2`).
fn verify_pss(key: &rsa::PublicKey, hash: HashMethod, digest: &[u8], sig: &[u8]) -> bool {
    fn check<D>(key: &rsa::PublicKey, digest: &[u8], sig: &[u8]) -> bool
    where
        D: sha2::Digest + sha2::digest::FixedOutputReset,
    {
        let Ok(sig) = rsa::pss::Signature::try_from(sig) else {
            return false;
        };
        rsa::pss::VerifyingKey::<D>::new_with_auto_salt_len(key.clone())
            .verify_prehash(digest, &sig)
            .is_ok()
    }
    match hash {
        HashMethod::Sha224 => check::<sha2::Sha224>(key, digest, sig),
        HashMethod::Sha256 => check::<sha2::Sha256>(key, digest, sig),
        HashMethod::Sha384 => check::<sha2::Sha384>(key, digest, sig),
        HashMethod::Sha512 => check::<sha2::Sha512>(key, digest, sig),
    }
}

/// Standard base64; ASCII whitespace (line breaks) is ignored.
fn decode_signature_b64(text: &str) -> Result<Vec<u8>> {
    let compact: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let bytes = BASE64
        .decode(&compact)
        .map_err(|_| Failure::BadSignatureEncoding("not standard base64".into()).into_error())?;
    if bytes.is_empty() {
        return Err(Failure::BadSignatureEncoding("the signature is empty".into()).into_error());
    }
    Ok(bytes)
}

/// Streams `input` into `out` in 64 KiB chunks.
pub(crate) fn copy_into(mut input: impl Read, out: &mut impl Write) -> Result<u64> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(
                    Error::new(ErrorKind::Storage, "reading the image failed").with_source(e)
                );
            }
        };
        out.write_all(&buf[..n]).map_err(|e| {
            Error::new(ErrorKind::Storage, "writing the image failed").with_source(e)
        })?;
        total += n as u64;
    }
}
