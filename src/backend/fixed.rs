//! The legacy fixed key (castellan's ConfKeyManager): one AES key from the
//! configuration, served under the all-zeros id that every volume encrypted
//! before a real key manager carries.
//!
//! Dangerous by design: every volume shares one key that sits in a config
//! file. It exists so deployments can read their old volumes while the
//! migration moves them to real secrets. The config opts in explicitly with
//! `kind = "danger_fixed_key"`.

use std::fmt;

use zeroize::Zeroizing;

use crate::backend::{KekReport, KeyManager, Scope, StoredKeyPair, StoredSecret};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{BackendId, KeySpec, SecretId};
use crate::secret::SecretBytes;

/// The id ConfKeyManager gives its one key, in cinder, nova and castellan.
pub const FIXED_KEY_ID: SecretId = SecretId::from_uuid(uuid::Uuid::nil());

/// The algorithm string ConfKeyManager reports (upper case, as castellan's
/// `SymmetricKey('AES', …)`).
pub const FIXED_KEY_ALGORITHM: &str = "AES";

/// The fixed-key backend. Its Debug shows only the key length.
pub struct DangerFixedKey {
    id: BackendId,
    key: SecretBytes,
}

impl DangerFixedKey {
    /// Parses the hex `fixed_key` as cinder's `binascii.unhexlify` would.
    pub fn from_hex(id: BackendId, hex: &str) -> Result<Self> {
        Ok(DangerFixedKey::new(id, parse_hex_key(hex)?))
    }

    /// A fixed-key backend serving `key`.
    pub fn new(id: BackendId, key: SecretBytes) -> Self {
        tracing::warn!(
            backend = %id,
            "This key manager is insecure and is not recommended for production deployments"
        );
        DangerFixedKey { id, key }
    }

    /// The key's length in bits (8 × its bytes).
    pub fn bit_length(&self) -> u32 {
        u32::try_from(self.key.len() * 8).unwrap_or(u32::MAX)
    }

    /// The fixed key itself.
    pub fn key(&self) -> &SecretBytes {
        &self.key
    }
}

/// Decodes a hex key; odd length, non-hex digits or an empty key are refused.
pub fn parse_hex_key(hex: &str) -> Result<SecretBytes> {
    let hex = hex.trim();
    let bad = || {
        Error::new(
            ErrorKind::Config,
            "fixed_key must be a non-empty, even-length hex string",
        )
    };
    if hex.is_empty() || !hex.len().is_multiple_of(2) {
        return Err(bad());
    }
    let mut out = Zeroizing::new(Vec::with_capacity(hex.len() / 2));
    for pair in hex.as_bytes().chunks(2) {
        let digit = |c: u8| (c as char).to_digit(16);
        match (digit(pair[0]), digit(pair[1])) {
            (Some(hi), Some(lo)) => out.push((hi * 16 + lo) as u8),
            _ => return Err(bad()),
        }
    }
    Ok(SecretBytes::copy_from(&out))
}

impl KeyManager for DangerFixedKey {
    fn id(&self) -> &BackendId {
        &self.id
    }

    fn kind(&self) -> &'static str {
        "danger_fixed_key"
    }

    /// Accepts only the fixed key itself ("cannot store arbitrary keys").
    fn store(&self, _scope: Scope<'_>, material: &SecretBytes) -> Result<StoredSecret> {
        if material.ct_eq(self.key.expose_secret()) {
            Ok(StoredSecret::plain(Vec::new()))
        } else {
            Err(Error::new(
                ErrorKind::Unsupported,
                "the fixed-key backend cannot store arbitrary keys",
            ))
        }
    }

    fn retrieve(&self, scope: Scope<'_>, stored: &StoredSecret) -> Result<SecretBytes> {
        if !stored.bytes.is_empty() || stored.kek_id.is_some() {
            return Err(Error::integrity());
        }
        let _ = scope;
        Ok(self.key.clone())
    }

    fn delete(&self, scope: Scope<'_>, _stored: &StoredSecret) -> Result<()> {
        tracing::warn!("Not deleting key {}", scope.secret_id);
        Ok(())
    }

    /// Whatever was asked, the key is the fixed key.
    fn generate_symmetric(&self, _scope: Scope<'_>, _spec: &KeySpec) -> Result<StoredSecret> {
        Ok(StoredSecret::plain(Vec::new()))
    }

    fn generate_key_pair(
        &self,
        _private: Scope<'_>,
        _public: Scope<'_>,
        _passphrase: Option<(Scope<'_>, &SecretBytes)>,
        _spec: &KeySpec,
    ) -> Result<StoredKeyPair> {
        Err(Error::new(
            ErrorKind::Unsupported,
            "ConfKeyManager does not support asymmetric keys",
        ))
    }

    fn verify(&self) -> Result<KekReport> {
        Ok(KekReport::default())
    }

    fn serves_fixed_id(&self) -> bool {
        true
    }
}

impl fmt::Debug for DangerFixedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DangerFixedKey")
            .field("id", &self.id)
            .field("bit_length", &self.bit_length())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ProjectId;

    fn backend() -> DangerFixedKey {
        DangerFixedKey::from_hex(BackendId::new("legacy").unwrap(), &"0a".repeat(32)).unwrap()
    }

    #[test]
    fn hex_key_is_parsed_like_unhexlify() {
        let b = backend();
        assert_eq!(b.bit_length(), 256);
        assert_eq!(b.key().expose_secret(), &[0x0a; 32]);
        let upper = parse_hex_key("ABcd").unwrap();
        assert_eq!(upper.expose_secret(), &[0xab, 0xcd]);
        for bad in ["", "abc", "zz", "0g"] {
            assert_eq!(
                parse_hex_key(bad).unwrap_err().kind(),
                ErrorKind::Config,
                "{bad}"
            );
        }
    }

    #[test]
    fn store_accepts_only_the_fixed_key_and_the_rest_is_unsupported() {
        let b = backend();
        let p = ProjectId::new("p").unwrap();
        let scope = Scope::new(&p, &FIXED_KEY_ID);
        assert!(b.store(scope, &SecretBytes::copy_from(&[0x0a; 32])).is_ok());
        let e = b
            .store(scope, &SecretBytes::copy_from(&[0x0b; 32]))
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        let spec = KeySpec {
            algorithm: "rsa".into(),
            bit_length: 2048,
            mode: None,
        };
        assert_eq!(
            b.generate_key_pair(scope, scope, None, &spec)
                .unwrap_err()
                .kind(),
            ErrorKind::Unsupported
        );
        assert_eq!(
            b.rewrap_project_keks().unwrap_err().kind(),
            ErrorKind::Unsupported
        );
        let got = b.retrieve(scope, &StoredSecret::plain(Vec::new())).unwrap();
        assert_eq!(got.expose_secret(), &[0x0a; 32]);
        assert!(!format!("{b:?}").contains("10, 10"));
    }
}
