//! Signing certificates as they come out of the store, and the public keys
//! in them.
//!
//! A certificate secret's payload may be DER, PEM, or base64 of either with
//! line breaks (what `base64 cert.pem` prints, stored as text). Barbican keeps
//! PEM and castellan hands cursive DER; we take all of them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use x509_cert::Certificate;
use x509_cert::der::{Decode as _, DecodePem as _, Encode as _};
use x509_cert::spki::{self, DecodePublicKey as _, ObjectIdentifier};

use crate::error::{Error, Result};
use crate::model::Timestamp;
use crate::signature::{EcCurve, Failure, KeyType};

const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const DSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10040.4.1");
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const SECP521R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");

/// An X.509 certificate decoded from a certificate secret's payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigningCertificate {
    cert: Certificate,
}

impl SigningCertificate {
    /// Decodes DER, PEM, or base64 (whitespace allowed) of DER or PEM.
    pub fn decode(payload: &[u8]) -> Result<Self> {
        Self::decode_at_depth(payload, 0)
    }

    fn decode_at_depth(payload: &[u8], depth: u8) -> Result<Self> {
        // DER is binary: trimming "whitespace" could cut its last byte.
        let trimmed = payload.trim_ascii();
        let cert = if payload.first() == Some(&0x30) {
            Certificate::from_der(payload)
                .map_err(|e| bad_certificate_because("it is not a DER X.509 certificate", e))?
        } else if trimmed.starts_with(b"-----BEGIN") {
            Certificate::from_pem(trimmed)
                .map_err(|e| bad_certificate_because("it is not a PEM X.509 certificate", e))?
        } else if depth == 0 {
            let compact: Vec<u8> = trimmed
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            let inner = BASE64.decode(&compact).map_err(|e| {
                bad_certificate_because("it is neither DER, PEM, nor base64 of either", e)
            })?;
            return Self::decode_at_depth(&inner, 1);
        } else {
            return Err(bad_certificate(
                "its base64 holds neither a DER nor a PEM certificate",
            ));
        };
        Ok(SigningCertificate { cert })
    }

    /// The certificate as DER.
    pub fn to_der(&self) -> Result<Vec<u8>> {
        self.cert
            .to_der()
            .map_err(|e| bad_certificate_because("it cannot be re-encoded", e))
    }

    /// The subject, RFC 4514 style.
    pub fn subject(&self) -> String {
        self.cert.tbs_certificate().subject().to_string()
    }

    /// `notBefore` and `notAfter`, in Unix seconds.
    pub fn validity(&self) -> (Timestamp, Timestamp) {
        let v = self.cert.tbs_certificate().validity();
        let secs = |t: x509_cert::time::Time| {
            Timestamp::from_unix(i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX))
        };
        (secs(v.not_before), secs(v.not_after))
    }

    /// Refuses a certificate outside its validity period at `now` (the
    /// check cursive's certificate validation does).
    pub fn check_dates(&self, now: Timestamp) -> Result<()> {
        let (not_before, not_after) = self.validity();
        if now < not_before || now > not_after {
            return Err(Failure::CertificateExpired {
                not_before,
                not_after,
            }
            .into_error());
        }
        Ok(())
    }

    /// The certified public key, which must suit `key_type`.
    pub(crate) fn public_key(&self, key_type: KeyType) -> Result<PublicKey> {
        let spki = self.cert.tbs_certificate().subject_public_key_info();
        let der = spki
            .to_der()
            .map_err(|e| bad_certificate_because("its public key cannot be encoded", e))?;
        let oid = spki.algorithm.oid;
        let mismatch = |found: &str| {
            Failure::KeyTypeMismatch {
                key_type,
                found: found.to_owned(),
            }
            .into_error()
        };
        let unreadable =
            |e: spki::Error| bad_certificate_because("its public key cannot be read", e);
        match key_type {
            KeyType::RsaPss => {
                if oid != RSA_ENCRYPTION {
                    return Err(mismatch(&algorithm_name(oid, spki)));
                }
                let key = rsa::PublicKey::from_public_key_der(&der).map_err(unreadable)?;
                Ok(PublicKey::Rsa(key))
            }
            KeyType::Dsa => {
                if oid != DSA {
                    return Err(mismatch(&algorithm_name(oid, spki)));
                }
                let key = dsa::VerifyingKey::from_public_key_der(&der).map_err(unreadable)?;
                Ok(PublicKey::Dsa(key))
            }
            KeyType::Ecc(curve) => {
                if oid != EC_PUBLIC_KEY || curve_of(spki) != Some(curve) {
                    return Err(mismatch(&algorithm_name(oid, spki)));
                }
                Ok(match curve {
                    EcCurve::Secp384r1 => PublicKey::P384(
                        p384::ecdsa::VerifyingKey::from_public_key_der(&der).map_err(unreadable)?,
                    ),
                    EcCurve::Secp521r1 => PublicKey::P521(
                        p521::ecdsa::VerifyingKey::from_public_key_der(&der).map_err(unreadable)?,
                    ),
                })
            }
        }
    }
}

/// A public key from a signing certificate.
#[derive(Clone, Debug)]
pub(crate) enum PublicKey {
    Rsa(rsa::PublicKey),
    Dsa(dsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    P521(p521::ecdsa::VerifyingKey),
}

fn curve_of(spki: &x509_cert::spki::SubjectPublicKeyInfoOwned) -> Option<EcCurve> {
    let oid = spki
        .algorithm
        .parameters
        .as_ref()?
        .decode_as::<ObjectIdentifier>()
        .ok()?;
    match oid {
        SECP384R1 => Some(EcCurve::Secp384r1),
        SECP521R1 => Some(EcCurve::Secp521r1),
        _ => None,
    }
}

/// What the certificate holds, in words, for a mismatch message.
fn algorithm_name(
    oid: ObjectIdentifier,
    spki: &x509_cert::spki::SubjectPublicKeyInfoOwned,
) -> String {
    if oid == RSA_ENCRYPTION {
        "an RSA key".to_owned()
    } else if oid == DSA {
        "a DSA key".to_owned()
    } else if oid == EC_PUBLIC_KEY {
        match curve_of(spki) {
            Some(c) => format!("an EC key on {}", c.name()),
            None => "an EC key on another curve".to_owned(),
        }
    } else {
        format!("a key of algorithm {oid}")
    }
}

fn bad_certificate(why: &str) -> Error {
    Failure::BadCertificate(why.to_owned(), None).into_error()
}

fn bad_certificate_because(
    why: &str,
    cause: impl std::error::Error + Send + Sync + 'static,
) -> Error {
    Failure::BadCertificate(why.to_owned(), Some(Box::new(cause))).into_error()
}
