//! The PKCS#11 backend's catalog records, parsed apart from any token call:
//! they come back from the database, so they are untrusted input (and
//! fuzzed: `fuzz/fuzz_targets/pkcs11_record.rs`). Layouts are in the module
//! docs of `pkcs11`; anything malformed is the opaque `Integrity` error.

use crate::error::{Error, Result};

use super::{CBC_IV_LEN, EncryptionMechanism, GCM_IV_LEN, HMAC_LEN, VERSION_1, WrapMechanism};

/// GCM's tag, at the end of the sealed bytes.
const GCM_TAG_LEN: usize = 16;
/// The shortest CBC ciphertext: one block of padding.
const CBC_BLOCK_LEN: usize = 16;

/// A wrapped project KEK: `0x01 || mechanism || length (2) || wrapped key
/// || HMAC`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct KekRecord<'a> {
    pub mechanism: WrapMechanism,
    /// Header and wrapped key: what the HMAC covers (after the binding).
    pub authenticated: &'a [u8],
    pub wrapped_key: &'a [u8],
    pub mac: &'a [u8],
}

impl<'a> KekRecord<'a> {
    pub fn parse(w: &'a [u8]) -> Result<Self> {
        if w.len() < 4 + HMAC_LEN || w[0] != VERSION_1 {
            return Err(Error::integrity());
        }
        let mechanism = WrapMechanism::from_code(w[1]).ok_or_else(Error::integrity)?;
        let len = usize::from(u16::from_be_bytes([w[2], w[3]]));
        if w.len() != 4 + len + HMAC_LEN {
            return Err(Error::integrity());
        }
        let (authenticated, mac) = w.split_at(4 + len);
        Ok(KekRecord {
            mechanism,
            authenticated,
            wrapped_key: &authenticated[4..],
            mac,
        })
    }

    /// The authenticated part of a record for `wrapped_key`; the HMAC goes
    /// after it. `None` when the key is too long for its length field.
    pub fn authenticated_part(mechanism: WrapMechanism, wrapped_key: &[u8]) -> Option<Vec<u8>> {
        let len = u16::try_from(wrapped_key.len()).ok()?;
        let mut out = Vec::with_capacity(4 + wrapped_key.len() + HMAC_LEN);
        out.extend_from_slice(&[VERSION_1, mechanism.code()]);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(wrapped_key);
        Some(out)
    }

    /// The record's bytes again.
    pub fn to_bytes(&self) -> Vec<u8> {
        [self.authenticated, self.mac].concat()
    }
}

/// A secret's ciphertext under its project KEK.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SecretRecord<'a> {
    /// `0x01 || 0x01 || IV (12) || ciphertext || tag (16)`.
    Gcm {
        header: &'a [u8],
        iv: [u8; GCM_IV_LEN],
        /// Ciphertext and tag, as the token's decrypt takes them.
        sealed: &'a [u8],
    },
    /// `0x01 || 0x02 || IV (16) || ciphertext || HMAC (32)`.
    CbcHmac {
        header: &'a [u8],
        iv: [u8; CBC_IV_LEN],
        /// Header, IV and ciphertext: what the HMAC covers (after the binding).
        authenticated: &'a [u8],
        ciphertext: &'a [u8],
        mac: &'a [u8],
    },
}

impl<'a> SecretRecord<'a> {
    pub fn parse(b: &'a [u8]) -> Result<Self> {
        if b.len() < 2 || b[0] != VERSION_1 {
            return Err(Error::integrity());
        }
        let mechanism = EncryptionMechanism::from_code(b[1]).ok_or_else(Error::integrity)?;
        let header = &b[..2];
        match mechanism {
            EncryptionMechanism::AesGcm => {
                if b.len() < 2 + GCM_IV_LEN + GCM_TAG_LEN {
                    return Err(Error::integrity());
                }
                let mut iv = [0u8; GCM_IV_LEN];
                iv.copy_from_slice(&b[2..2 + GCM_IV_LEN]);
                Ok(SecretRecord::Gcm {
                    header,
                    iv,
                    sealed: &b[2 + GCM_IV_LEN..],
                })
            }
            EncryptionMechanism::AesCbcPadHmac => {
                if b.len() < 2 + CBC_IV_LEN + CBC_BLOCK_LEN + HMAC_LEN {
                    return Err(Error::integrity());
                }
                let (authenticated, mac) = b.split_at(b.len() - HMAC_LEN);
                let mut iv = [0u8; CBC_IV_LEN];
                iv.copy_from_slice(&authenticated[2..2 + CBC_IV_LEN]);
                Ok(SecretRecord::CbcHmac {
                    header,
                    iv,
                    authenticated,
                    ciphertext: &authenticated[2 + CBC_IV_LEN..],
                    mac,
                })
            }
        }
    }

    /// The version and mechanism bytes (part of the binding).
    pub fn header(&self) -> &'a [u8] {
        match self {
            SecretRecord::Gcm { header, .. } | SecretRecord::CbcHmac { header, .. } => header,
        }
    }

    /// The record's bytes again.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            SecretRecord::Gcm { header, iv, sealed } => [*header, &iv[..], *sealed].concat(),
            SecretRecord::CbcHmac {
                authenticated, mac, ..
            } => [*authenticated, *mac].concat(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_parse_and_write_back() {
        let mut kek =
            KekRecord::authenticated_part(WrapMechanism::AesKeyWrapPad, &[7; 40]).unwrap();
        kek.extend_from_slice(&[9; HMAC_LEN]);
        let parsed = KekRecord::parse(&kek).unwrap();
        assert_eq!(parsed.wrapped_key, &[7; 40][..]);
        assert_eq!(parsed.to_bytes(), kek);
        for cut in 0..kek.len() {
            assert!(KekRecord::parse(&kek[..cut]).is_err(), "cut at {cut}");
        }
        let gcm = [&[1u8, 1][..], &[3; GCM_IV_LEN], &[4; 20]].concat();
        let cbc = [&[1u8, 2][..], &[3; CBC_IV_LEN], &[4; 32], &[5; HMAC_LEN]].concat();
        for record in [gcm, cbc] {
            let parsed = SecretRecord::parse(&record).unwrap();
            assert_eq!(parsed.header(), &record[..2]);
            assert_eq!(parsed.to_bytes(), record);
        }
        assert!(SecretRecord::parse(&[1, 3, 0, 0]).is_err());
        assert!(SecretRecord::parse(&[2, 1]).is_err());
    }
}
