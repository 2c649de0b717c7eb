//! swift's body crypto-meta, byte for byte: the value of
//! `X-Object-Sysmeta-Crypto-Body-Meta` (`crypto_utils.py`'s
//! `dump_crypto_meta` and `load_crypto_meta`, with Python's `json.dumps`
//! and `urllib.parse.quote_plus`).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::error::{Error, Result};

use super::{CIPHER, IV_LEN, KEY_LEN, KeyId, MetaVersion, RootSecretId};

/// A body key wrapped by an object key: AES-256-CTR under its own IV.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey {
    pub iv: [u8; IV_LEN],
    pub key: [u8; KEY_LEN],
}

// Hand-written: the wrapped key is ciphertext, but there is no reason to
// print it either.
impl fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WrappedKey")
            .field("iv", &hex(&self.iv))
            .field("key", &"[WRAPPED]")
            .finish()
    }
}

/// swift's body crypto-meta (`X-Object-Sysmeta-Crypto-Body-Meta`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BodyCryptoMeta {
    /// The body's initial counter block.
    pub iv: [u8; IV_LEN],
    pub body_key: WrappedKey,
    pub key_id: KeyId,
}

impl BodyCryptoMeta {
    /// The header value, byte for byte what swift's `dump_crypto_meta`
    /// writes: `json.dumps(sort_keys=True)` with base64 IVs and key, then
    /// `urllib.parse.quote_plus`.
    pub fn to_header(&self) -> String {
        let mut key_id = format!("{{\"path\": {}", py_json_str(&self.key_id.path));
        if let Some(id) = self.key_id.secret_id.as_str() {
            key_id.push_str(&format!(", \"secret_id\": {}", py_json_str(id)));
        }
        key_id.push_str(&format!(", \"v\": \"{}\"}}", self.key_id.version.as_str()));
        let json = format!(
            "{{\"body_key\": {{\"iv\": \"{}\", \"key\": \"{}\"}}, \"cipher\": \"{CIPHER}\", \"iv\": \"{}\", \"key_id\": {key_id}}}",
            BASE64.encode(self.body_key.iv),
            BASE64.encode(self.body_key.key),
            BASE64.encode(self.iv),
        );
        quote_plus(&json)
    }

    /// Parses a header value written by swift or by [`Self::to_header`].
    /// Untrusted input: every field is checked (swift's
    /// `check_crypto_meta` and `check_key` messages where it has them).
    pub fn from_header(value: &str) -> Result<Self> {
        let bad = |why: String| Error::invalid("crypto_meta", format!("Bad crypto meta: {why}"));
        let json = unquote_plus(value).ok_or_else(|| bad("not UTF-8 once unquoted".into()))?;
        let top: serde_json::Value =
            serde_json::from_str(&json).map_err(|e| bad("not JSON".into()).with_source(e))?;
        let top = top
            .as_object()
            .ok_or_else(|| bad("crypto meta not a Mapping".into()))?;
        let field = |obj: &serde_json::Map<String, serde_json::Value>, name: &str| {
            obj.get(name)
                .cloned()
                .ok_or_else(|| bad(format!("Missing '{name}'")))
        };
        let string = |v: serde_json::Value, name: &str| match v {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(bad(format!("'{name}' must be a string"))),
        };
        let cipher = string(field(top, "cipher")?, "cipher")?;
        if cipher != CIPHER {
            return Err(bad(format!("Cipher must be {CIPHER}")));
        }
        let iv = fixed::<IV_LEN>(&string(field(top, "iv")?, "iv")?)
            .ok_or_else(|| bad(format!("IV must be length {IV_LEN} bytes")))?;
        let body_key = field(top, "body_key")?;
        let body_key = body_key
            .as_object()
            .ok_or_else(|| bad("'body_key' must be a mapping".into()))?;
        let wrap_iv = fixed::<IV_LEN>(&string(field(body_key, "iv")?, "iv")?)
            .ok_or_else(|| bad(format!("IV must be length {IV_LEN} bytes")))?;
        let wrapped = fixed::<KEY_LEN>(&string(field(body_key, "key")?, "key")?)
            .ok_or_else(|| bad(format!("Key must be length {KEY_LEN} bytes")))?;
        let key_id = field(top, "key_id")?;
        let key_id = key_id
            .as_object()
            .ok_or_else(|| bad("'key_id' must be a mapping".into()))?;
        let version: MetaVersion = string(field(key_id, "v")?, "v")?.parse()?;
        let path = string(field(key_id, "path")?, "path")?;
        let secret_id = match key_id.get("secret_id") {
            None | Some(serde_json::Value::Null) => RootSecretId::DEFAULT,
            // swift's `if secret_id:` never writes an empty one.
            Some(serde_json::Value::String(s)) if s.is_empty() => RootSecretId::DEFAULT,
            Some(serde_json::Value::String(s)) => RootSecretId(Some(s.clone())),
            Some(_) => return Err(bad("'secret_id' must be a string".into())),
        };
        Ok(BodyCryptoMeta {
            iv,
            body_key: WrappedKey {
                iv: wrap_iv,
                key: wrapped,
            },
            key_id: KeyId {
                version,
                path,
                secret_id,
            },
        })
    }
}

fn fixed<const N: usize>(b64: &str) -> Option<[u8; N]> {
    BASE64.decode(b64).ok()?.try_into().ok()
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A JSON string as Python's `json.dumps` writes it (`ensure_ascii=True`).
fn py_json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
    out
}

/// Python's `urllib.parse.quote_plus(s)` (UTF-8, `safe=''`).
pub(super) fn quote_plus(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3 / 2);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Python's `urllib.parse.unquote_plus(s)`, except that bytes which are not
/// UTF-8 once unquoted are refused rather than replaced.
pub(super) fn unquote_plus(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hi = char::from(bytes[i + 1]).to_digit(16);
                let lo = char::from(bytes[i + 2]).to_digit(16);
                match (hi, lo) {
                    (Some(h), Some(l)) => {
                        // Two hex digits: at most 0xFF.
                        out.push((h * 16 + l) as u8);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}
