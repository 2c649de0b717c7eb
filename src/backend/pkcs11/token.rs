//! Token helpers: finding keys by label, key templates, mechanism probes,
//! and the binding and fingerprint formats.

use std::sync::{Mutex, MutexGuard};

use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki::types::Ulong;

use crate::error::{Error, ErrorKind, Result};

use super::config::{EncryptionMechanism, Pkcs11Config, TokenSelector, WrapMechanism};
use super::session::{self, Token, p11_error, rv_of};

/// A key found by label, with the attributes we check.
pub(super) struct FoundKey {
    pub(super) handle: ObjectHandle,
    pub(super) id: Vec<u8>,
    pub(super) key_type: Option<KeyType>,
    pub(super) sensitive: bool,
    pub(super) extractable: bool,
}

/// The one secret key labelled `label`, if any; two is a configuration error.
pub(super) fn find_key(s: &Session, label: &str) -> Result<Option<FoundKey>> {
    let found = s
        .find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .map_err(p11_error)?;
    let handle = match found.as_slice() {
        [] => return Ok(None),
        [one] => *one,
        more => {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "{} secret keys on the token are labelled {label:?}; labels must name one key",
                    more.len()
                ),
            ));
        }
    };
    let attributes = s
        .get_attributes(
            handle,
            &[
                AttributeType::Id,
                AttributeType::KeyType,
                AttributeType::Sensitive,
                AttributeType::Extractable,
            ],
        )
        .map_err(p11_error)?;
    let mut key = FoundKey {
        handle,
        id: Vec::new(),
        key_type: None,
        sensitive: false,
        extractable: true,
    };
    for a in attributes {
        match a {
            Attribute::Id(id) => key.id = id,
            Attribute::KeyType(t) => key.key_type = Some(t),
            Attribute::Sensitive(v) => key.sensitive = v,
            Attribute::Extractable(v) => key.extractable = v,
            _ => {}
        }
    }
    Ok(Some(key))
}

/// The one job a token key may do.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Use {
    WrapUnwrap,
    SignVerify,
}

/// A token key that never leaves the token and does only `job`. CKA_ID is
/// random, so a key re-created under the same label has a new fingerprint.
pub(super) fn token_key_template(
    s: &Session,
    label: &str,
    key_type: KeyType,
    len: usize,
    job: Use,
) -> Result<Vec<Attribute>> {
    let mut id = vec![0u8; 8];
    s.generate_random_slice(&mut id).map_err(p11_error)?;
    let wraps = job == Use::WrapUnwrap;
    let signs = job == Use::SignVerify;
    Ok(vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(key_type),
        value_len(len)?,
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Modifiable(false),
        Attribute::Encrypt(false),
        Attribute::Decrypt(false),
        Attribute::Derive(false),
        Attribute::Wrap(wraps),
        Attribute::Unwrap(wraps),
        Attribute::Sign(signs),
        Attribute::Verify(signs),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id),
    ])
}

/// A project KEK as a session object: sensitive, encrypts and decrypts
/// secrets, extractable only so that it can be wrapped (and rewrapped).
pub(super) fn project_kek_template(len: Option<usize>) -> Result<Vec<Attribute>> {
    let mut t = vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Token(false),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(true),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
    ];
    if let Some(len) = len {
        t.push(value_len(len)?);
    }
    Ok(t)
}

/// `CKA_VALUE_LEN` for a key of `len` bytes. The attribute is a `CK_ULONG`,
/// a C `unsigned long`: 64 bits on 64-bit Linux but 32 bits on 32-bit
/// targets (and on Windows), so the length is converted, not cast.
pub(super) fn value_len(len: usize) -> Result<Attribute> {
    Ok(Attribute::ValueLen(
        Ulong::try_from(len).map_err(p11_error)?,
    ))
}

pub(super) fn wrap_mechanism(m: WrapMechanism) -> Mechanism<'static> {
    match m {
        WrapMechanism::AesKeyWrapPad => Mechanism::AesKeyWrapPad,
        WrapMechanism::AesKeyWrap => Mechanism::AesKeyWrap,
    }
}

/// Every mechanism the configuration needs, with what it is needed for;
/// a token lacking one is refused at start, naming it.
pub(super) fn probe_mechanisms(token: &Token, config: &Pkcs11Config) -> Result<()> {
    struct Need {
        mechanism: MechanismType,
        name: &'static str,
        why: &'static str,
        flags: fn(&cryptoki::mechanism::MechanismInfo) -> bool,
    }
    let mut needs = vec![
        Need {
            mechanism: MechanismType::AES_KEY_GEN,
            name: "CKM_AES_KEY_GEN",
            why: "generating project KEKs",
            flags: |i| i.generate(),
        },
        Need {
            mechanism: MechanismType::SHA256_HMAC,
            name: "CKM_SHA256_HMAC",
            why: "authenticating wrapped project KEKs",
            flags: |i| i.sign() && i.verify(),
        },
        Need {
            mechanism: MechanismType::GENERIC_SECRET_KEY_GEN,
            name: "CKM_GENERIC_SECRET_KEY_GEN",
            why: "generating symmetric keys for key orders",
            flags: |i| i.generate(),
        },
    ];
    needs.push(match config.wrap_mechanism {
        WrapMechanism::AesKeyWrapPad => Need {
            mechanism: MechanismType::AES_KEY_WRAP_PAD,
            name: "CKM_AES_KEY_WRAP_PAD",
            why: "wrap_mechanism",
            flags: |i| i.wrap() && i.unwrap(),
        },
        WrapMechanism::AesKeyWrap => Need {
            mechanism: MechanismType::AES_KEY_WRAP,
            name: "CKM_AES_KEY_WRAP",
            why: "wrap_mechanism",
            flags: |i| i.wrap() && i.unwrap(),
        },
    });
    needs.push(match config.encryption_mechanism {
        EncryptionMechanism::AesGcm => Need {
            mechanism: MechanismType::AES_GCM,
            name: "CKM_AES_GCM",
            why: "encryption_mechanism",
            flags: |i| i.encrypt() && i.decrypt(),
        },
        EncryptionMechanism::AesCbcPadHmac => Need {
            mechanism: MechanismType::AES_CBC_PAD,
            name: "CKM_AES_CBC_PAD",
            why: "encryption_mechanism",
            flags: |i| i.encrypt() && i.decrypt(),
        },
    });
    let ctx = token.context();
    let slot = token.slot();
    let offered = ctx.get_mechanism_list(slot).map_err(p11_error)?;
    let name = token_name(&config.token);
    for need in needs {
        let usable = offered.contains(&need.mechanism)
            && ctx
                .get_mechanism_info(slot, need.mechanism)
                .map(|i| (need.flags)(&i))
                .unwrap_or(false);
        if !usable {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "PKCS#11 token {name} does not offer {} ({}); choose another mechanism or token",
                    need.name, need.why
                ),
            ));
        }
    }
    Ok(())
}

/// Barbican's start-up check: the token's RNG answers and is not stuck at zero.
pub(super) fn rng_self_test(s: &Session) -> Result<()> {
    let mut sample = [0u8; 100];
    s.generate_random_slice(&mut sample).map_err(p11_error)?;
    if sample.iter().all(|&b| b == 0) {
        return Err(Error::new(
            ErrorKind::Unavailable,
            "the PKCS#11 token's C_GenerateRandom returned only zeros",
        ));
    }
    Ok(())
}

/// A decrypt, verify or unwrap failure is the opaque `Integrity` error,
/// unless the session or token was lost (then recovery may retry it).
pub(super) fn integrity_unless_lost(e: P11Error) -> Error {
    let err = p11_error(e);
    if session::lost(&err).is_some() || matches!(rv_of(&err), Some(RvError::DeviceMemory)) {
        err
    } else {
        Error::integrity()
    }
}

pub(super) fn fingerprint(label: &str, id: &[u8]) -> String {
    if id.is_empty() {
        return label.to_owned();
    }
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    format!("{label}/{hex}")
}

pub(super) fn token_name(t: &TokenSelector) -> String {
    match t {
        TokenSelector::Label(l) => format!("{l:?}"),
        TokenSelector::Slot(s) => format!("in slot {s}"),
    }
}

/// Length-prefixed parts, so ("ab", "c") and ("a", "bc") differ.
pub(super) fn binding(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + parts.iter().map(|p| 8 + p.len()).sum::<usize>());
    out.extend_from_slice(&(parts.len() as u32).to_be_bytes());
    for part in parts {
        out.extend_from_slice(&(part.len() as u64).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key length reaches the template as the token's `CK_ULONG`,
    /// whatever width the target gives it (this once cast through `u64`,
    /// which does not build where `unsigned long` is 32 bits).
    #[test]
    fn key_lengths_become_the_tokens_ulong() {
        let lens = |t: &[Attribute]| -> Vec<usize> {
            t.iter()
                .filter_map(|a| match a {
                    Attribute::ValueLen(len) => Some(usize::from(*len)),
                    _ => None,
                })
                .collect()
        };
        assert_eq!(lens(&project_kek_template(Some(32)).unwrap()), [32]);
        assert!(lens(&project_kek_template(None).unwrap()).is_empty());
        assert_eq!(lens(&[value_len(16).unwrap()]), [16]);
    }
}
