//! The `kind = "pkcs11"` backend section: which module and token, the PIN,
//! the key labels and the mechanisms. Parsed whole and checked once
//! (`try_from`), so the backend only ever sees a usable configuration.

use std::fmt::{self, Write as _};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind, Result};
use crate::secret::SecretBytes;
use crate::toml_text::push_toml_str;

/// Barbican's defaults (`[p11_crypto_plugin]`): `primarymkek`, `primaryhmac`.
pub const DEFAULT_MKEK_LABEL: &str = "primarymkek";
pub const DEFAULT_HMAC_LABEL: &str = "primaryhmac";
/// Sessions each backend keeps open for its workers (plus one that holds
/// unwrapped project KEKs).
pub const DEFAULT_SESSION_POOL_SIZE: usize = 4;
/// Barbican's `pkek_cache_limit` and `pkek_cache_ttl`.
pub const DEFAULT_PKEK_CACHE_LIMIT: usize = 100;
pub const DEFAULT_PKEK_CACHE_TTL_SECS: u64 = 900;

/// How the token is found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSelector {
    /// The token whose CKA_LABEL is this (SoftHSM gives slots random ids).
    Label(String),
    /// A fixed slot id.
    Slot(u64),
}

/// How project KEKs are wrapped by the master KEK. Recorded in every wrapped
/// KEK, so KEKs wrapped under an earlier setting still open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WrapMechanism {
    /// RFC 5649 AES key wrap with padding (Barbican's `CKM_AES_KEY_WRAP_PAD`).
    #[default]
    AesKeyWrapPad,
    /// RFC 3394 AES key wrap (project KEKs are 32 bytes, a multiple of 8).
    AesKeyWrap,
}

/// How secrets are encrypted inside the token. Recorded in every envelope.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EncryptionMechanism {
    /// AES-GCM, 96-bit IV from the token's RNG, 128-bit tag, the secret's
    /// binding as additional authenticated data.
    #[default]
    AesGcm,
    /// For tokens without GCM: AES-CBC with PKCS#7 padding, then an HMAC
    /// (the token's HMAC key, CKM_SHA256_HMAC) over the binding, IV and
    /// ciphertext: encrypt-then-MAC, both inside the token.
    AesCbcPadHmac,
}

/// One pkcs11 backend's configuration.
#[derive(Clone, Debug)]
pub struct Pkcs11Config {
    /// The PKCS#11 module (e.g. `/usr/lib/softhsm/libsofthsm2.so`).
    pub module: PathBuf,
    pub token: TokenSelector,
    /// The user PIN. A secret: redacted in `Debug`, wiped on drop.
    pub pin: SecretBytes,
    /// The master KEK that wraps new project KEKs.
    pub mkek_label: String,
    /// Its length in bytes when `keywarden hsm init` makes it (16, 24 or 32).
    pub mkek_length: usize,
    /// Earlier master KEKs that still open project KEKs until
    /// `keywarden hsm rotate` has rewrapped them.
    pub retired_mkek_labels: Vec<String>,
    /// The HMAC key that authenticates wrapped project KEKs.
    pub hmac_label: String,
    pub wrap_mechanism: WrapMechanism,
    pub encryption_mechanism: EncryptionMechanism,
    /// Sessions kept open for operations. `0` opens and closes a session for
    /// every operation, as Barbican does: only for benchmarks comparing the
    /// two, so a config file cannot ask for it.
    pub session_pool_size: usize,
    /// Unwrapped project KEKs kept as token handles, at most this many…
    pub pkek_cache_limit: usize,
    /// …each for at most this long.
    pub pkek_cache_ttl: Duration,
}

impl Pkcs11Config {
    /// A configuration with Barbican's defaults for everything but the module,
    /// token and PIN.
    pub fn new(module: impl Into<PathBuf>, token: TokenSelector, pin: SecretBytes) -> Self {
        Pkcs11Config {
            module: module.into(),
            token,
            pin,
            mkek_label: DEFAULT_MKEK_LABEL.to_owned(),
            mkek_length: 32,
            retired_mkek_labels: Vec::new(),
            hmac_label: DEFAULT_HMAC_LABEL.to_owned(),
            wrap_mechanism: WrapMechanism::default(),
            encryption_mechanism: EncryptionMechanism::default(),
            session_pool_size: DEFAULT_SESSION_POOL_SIZE,
            pkek_cache_limit: DEFAULT_PKEK_CACHE_LIMIT,
            pkek_cache_ttl: Duration::from_secs(DEFAULT_PKEK_CACHE_TTL_SECS),
        }
    }

    /// Refuses what cannot work: no token, a bad key length, clashing labels.
    pub fn check(&self) -> Result<()> {
        let bad = |m: String| Err(Error::new(ErrorKind::Config, m));
        if self.module.as_os_str().is_empty() {
            return bad("pkcs11 backend: `module` is empty".into());
        }
        if let TokenSelector::Label(l) = &self.token
            && l.is_empty()
        {
            return bad("pkcs11 backend: `token_label` is empty".into());
        }
        if !matches!(self.mkek_length, 16 | 24 | 32) {
            return bad(format!(
                "pkcs11 backend: mkek_length must be 16, 24 or 32 bytes, not {}",
                self.mkek_length
            ));
        }
        let mut labels = vec![&self.mkek_label, &self.hmac_label];
        labels.extend(&self.retired_mkek_labels);
        for (i, l) in labels.iter().enumerate() {
            if l.is_empty() {
                return bad("pkcs11 backend: key labels must not be empty".into());
            }
            if labels[..i].contains(l) {
                return bad(format!(
                    "pkcs11 backend: label {l:?} is used for two keys (master KEK, retired master KEKs and HMAC key need their own)"
                ));
            }
        }
        if self.pkek_cache_limit == 0 {
            return bad("pkcs11 backend: pkek_cache_limit must be at least 1".into());
        }
        Ok(())
    }

    /// Appends this section's TOML body (after its `[backends.ID]` header).
    /// `out` is a wiped buffer: the PIN goes straight into it.
    pub(crate) fn write_toml(&self, out: &mut Zeroizing<String>) {
        out.push_str("kind = \"pkcs11\"\nmodule = ");
        push_toml_str(out, &self.module.to_string_lossy());
        match &self.token {
            TokenSelector::Label(l) => {
                out.push_str("\ntoken_label = ");
                push_toml_str(out, l);
            }
            TokenSelector::Slot(s) => {
                let _ = write!(out, "\nslot = {s}");
            }
        }
        out.push_str("\npin = ");
        // The PIN was a TOML string (or built from one), so it is UTF-8.
        push_toml_str(out, &String::from_utf8_lossy(self.pin.expose_secret()));
        out.push_str("\nmkek_label = ");
        push_toml_str(out, &self.mkek_label);
        let _ = write!(out, "\nmkek_length = {}", self.mkek_length);
        out.push_str("\nretired_mkek_labels = [");
        for (i, l) in self.retired_mkek_labels.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            push_toml_str(out, l);
        }
        out.push_str("]\nhmac_label = ");
        push_toml_str(out, &self.hmac_label);
        let _ = write!(
            out,
            "\nwrap_mechanism = \"{}\"\nencryption_mechanism = \"{}\"\nsession_pool_size = {}\npkek_cache_limit = {}\npkek_cache_ttl_secs = {}\n",
            self.wrap_mechanism,
            self.encryption_mechanism,
            self.session_pool_size,
            self.pkek_cache_limit,
            self.pkek_cache_ttl.as_secs()
        );
    }
}

impl WrapMechanism {
    pub(crate) const fn code(self) -> u8 {
        match self {
            WrapMechanism::AesKeyWrapPad => 1,
            WrapMechanism::AesKeyWrap => 2,
        }
    }

    pub(crate) fn from_code(code: u8) -> Option<Self> {
        [WrapMechanism::AesKeyWrapPad, WrapMechanism::AesKeyWrap]
            .into_iter()
            .find(|m| m.code() == code)
    }

    pub const fn name(self) -> &'static str {
        match self {
            WrapMechanism::AesKeyWrapPad => "CKM_AES_KEY_WRAP_PAD",
            WrapMechanism::AesKeyWrap => "CKM_AES_KEY_WRAP",
        }
    }
}

impl EncryptionMechanism {
    pub(crate) const fn code(self) -> u8 {
        match self {
            EncryptionMechanism::AesGcm => 1,
            EncryptionMechanism::AesCbcPadHmac => 2,
        }
    }

    pub(crate) fn from_code(code: u8) -> Option<Self> {
        [
            EncryptionMechanism::AesGcm,
            EncryptionMechanism::AesCbcPadHmac,
        ]
        .into_iter()
        .find(|m| m.code() == code)
    }

    pub const fn name(self) -> &'static str {
        match self {
            EncryptionMechanism::AesGcm => "CKM_AES_GCM",
            EncryptionMechanism::AesCbcPadHmac => "CKM_AES_CBC_PAD",
        }
    }
}

impl fmt::Display for WrapMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for EncryptionMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The section as written in TOML.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPkcs11Config {
    module: PathBuf,
    #[serde(default)]
    token_label: Option<String>,
    #[serde(default)]
    slot: Option<u64>,
    #[serde(deserialize_with = "pin")]
    pin: SecretBytes,
    #[serde(default = "default_mkek_label")]
    mkek_label: String,
    #[serde(default = "default_mkek_length")]
    mkek_length: usize,
    #[serde(default)]
    retired_mkek_labels: Vec<String>,
    #[serde(default = "default_hmac_label")]
    hmac_label: String,
    #[serde(default)]
    wrap_mechanism: Option<String>,
    #[serde(default)]
    encryption_mechanism: Option<String>,
    #[serde(default = "default_pool")]
    session_pool_size: usize,
    #[serde(default = "default_cache_limit")]
    pkek_cache_limit: usize,
    #[serde(default = "default_cache_ttl")]
    pkek_cache_ttl_secs: u64,
}

impl TryFrom<RawPkcs11Config> for Pkcs11Config {
    type Error = Error;

    fn try_from(raw: RawPkcs11Config) -> Result<Self> {
        let token = match (raw.token_label, raw.slot) {
            (Some(l), None) => TokenSelector::Label(l),
            (None, Some(s)) => TokenSelector::Slot(s),
            _ => {
                return Err(Error::new(
                    ErrorKind::Config,
                    "pkcs11 backend: give exactly one of `token_label` and `slot`",
                ));
            }
        };
        let wrap_mechanism = match raw.wrap_mechanism.as_deref() {
            None => WrapMechanism::default(),
            Some(n) => [WrapMechanism::AesKeyWrapPad, WrapMechanism::AesKeyWrap]
                .into_iter()
                .find(|m| m.name() == n)
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::Config,
                        format!(
                            "pkcs11 backend: wrap_mechanism {n:?} is not supported; use CKM_AES_KEY_WRAP_PAD or CKM_AES_KEY_WRAP"
                        ),
                    )
                })?,
        };
        let encryption_mechanism = match raw.encryption_mechanism.as_deref() {
            None => EncryptionMechanism::default(),
            Some(n) => [EncryptionMechanism::AesGcm, EncryptionMechanism::AesCbcPadHmac]
                .into_iter()
                .find(|m| m.name() == n)
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::Config,
                        format!(
                            "pkcs11 backend: encryption_mechanism {n:?} is not supported; use CKM_AES_GCM or CKM_AES_CBC_PAD (with HMAC)"
                        ),
                    )
                })?,
        };
        if raw.session_pool_size == 0 {
            return Err(Error::new(
                ErrorKind::Config,
                "pkcs11 backend: session_pool_size must be at least 1",
            ));
        }
        let config = Pkcs11Config {
            module: raw.module,
            token,
            pin: raw.pin,
            mkek_label: raw.mkek_label,
            mkek_length: raw.mkek_length,
            retired_mkek_labels: raw.retired_mkek_labels,
            hmac_label: raw.hmac_label,
            wrap_mechanism,
            encryption_mechanism,
            session_pool_size: raw.session_pool_size,
            pkek_cache_limit: raw.pkek_cache_limit,
            pkek_cache_ttl: Duration::from_secs(raw.pkek_cache_ttl_secs),
        };
        config.check()?;
        Ok(config)
    }
}

impl<'de> Deserialize<'de> for Pkcs11Config {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let raw = RawPkcs11Config::deserialize(d)?;
        Pkcs11Config::try_from(raw).map_err(|e| serde::de::Error::custom(e.context()))
    }
}

fn pin<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<SecretBytes, D::Error> {
    let text = Zeroizing::new(String::deserialize(d)?);
    if text.is_empty() {
        return Err(serde::de::Error::custom("pkcs11 backend: `pin` is empty"));
    }
    Ok(SecretBytes::copy_from(text.as_bytes()))
}

fn default_mkek_label() -> String {
    DEFAULT_MKEK_LABEL.to_owned()
}

fn default_hmac_label() -> String {
    DEFAULT_HMAC_LABEL.to_owned()
}

fn default_mkek_length() -> usize {
    32
}

fn default_pool() -> usize {
    DEFAULT_SESSION_POOL_SIZE
}

fn default_cache_limit() -> usize {
    DEFAULT_PKEK_CACHE_LIMIT
}

fn default_cache_ttl() -> u64 {
    DEFAULT_PKEK_CACHE_TTL_SECS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<Pkcs11Config> {
        toml::from_str::<Pkcs11Config>(body)
            .map_err(|e| Error::new(ErrorKind::Config, e.message().to_owned()))
    }

    const MINIMAL: &str = "module = \"/usr/lib/softhsm/libsofthsm2.so\"\ntoken_label = \"kw\"\npin = \"s3cr3t-pin\"\n";

    #[test]
    fn defaults_are_barbicans() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.token, TokenSelector::Label("kw".into()));
        assert_eq!(c.mkek_label, "primarymkek");
        assert_eq!(c.hmac_label, "primaryhmac");
        assert_eq!(c.mkek_length, 32);
        assert_eq!(c.wrap_mechanism, WrapMechanism::AesKeyWrapPad);
        assert_eq!(c.encryption_mechanism, EncryptionMechanism::AesGcm);
        assert_eq!(c.pkek_cache_limit, 100);
        assert_eq!(c.pkek_cache_ttl, Duration::from_secs(900));
    }

    #[test]
    fn debug_never_shows_the_pin() {
        let c = parse(MINIMAL).unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cr3t-pin"), "{shown}");
        assert!(shown.contains("REDACTED"), "{shown}");
    }

    #[test]
    fn round_trips_through_toml() {
        let mut c = parse(MINIMAL).unwrap();
        c.retired_mkek_labels = vec!["old \"one\"".into()];
        c.wrap_mechanism = WrapMechanism::AesKeyWrap;
        c.encryption_mechanism = EncryptionMechanism::AesCbcPadHmac;
        let mut out = Zeroizing::new(String::new());
        c.write_toml(&mut out);
        let body = out.replace("kind = \"pkcs11\"\n", "");
        let back = parse(&body).unwrap();
        assert_eq!(back.pin.expose_secret(), b"s3cr3t-pin");
        assert_eq!(back.retired_mkek_labels, c.retired_mkek_labels);
        assert_eq!(back.wrap_mechanism, WrapMechanism::AesKeyWrap);
        assert_eq!(
            back.encryption_mechanism,
            EncryptionMechanism::AesCbcPadHmac
        );
    }

    #[test]
    fn refusals_say_why() {
        for (body, needle) in [
            (
                MINIMAL.replace("token_label = \"kw\"\n", ""),
                "exactly one of",
            ),
            (format!("{MINIMAL}slot = 3\n"), "exactly one of"),
            (format!("{MINIMAL}mkek_length = 20\n"), "16, 24 or 32"),
            (
                format!("{MINIMAL}hmac_label = \"primarymkek\"\n"),
                "used for two keys",
            ),
            (
                format!("{MINIMAL}wrap_mechanism = \"CKM_AES_GCM\"\n"),
                "not supported",
            ),
            (
                format!("{MINIMAL}encryption_mechanism = \"CKM_DES3_CBC\"\n"),
                "not supported",
            ),
            (MINIMAL.replace("s3cr3t-pin", ""), "`pin` is empty"),
            (format!("{MINIMAL}session_pool_size = 0\n"), "at least 1"),
        ] {
            let e = parse(&body).unwrap_err();
            assert!(e.to_string().contains(needle), "{body}: {e}");
        }
    }
}
