//! What a cinder.conf or nova.conf says about its key manager: the
//! `[key_manager]` group's `fixed_key` and `backend` (also the older
//! `[keymgr]` group and its `api_class`), for `migrate fixed-key
//! --from-conf`. Operator-supplied text: anything it cannot use is `Config`.

use std::fmt;
use std::path::Path;

use zeroize::Zeroizing;

use crate::backend::fixed::parse_hex_key;
use crate::error::{Error, ErrorKind, Result};
use crate::secret::SecretBytes;

/// The key-manager settings of an oslo.config file.
#[derive(Clone, Default)]
pub struct ServiceConf {
    /// The hex-decoded `fixed_key`, when one is set.
    pub fixed_key: Option<SecretBytes>,
    /// `backend` (or `api_class`), when one is set.
    pub backend: Option<String>,
}

impl ServiceConf {
    /// Reads the settings from a config file.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        // The file holds the fixed key: wiped once read.
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            Error::new(ErrorKind::Config, format!("cannot read {}", path.display())).with_source(e)
        })?);
        ServiceConf::parse(&text)
    }

    /// Reads the settings from config text. The last setting of a name
    /// wins; a `fixed_key` that is not hex is `Config`.
    pub fn parse(text: &str) -> Result<Self> {
        let mut in_group = false;
        let mut fixed_key: Option<Zeroizing<String>> = None;
        let mut backend = None;
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                in_group = matches!(name.trim(), "key_manager" | "keymgr");
                continue;
            }
            if !in_group {
                continue;
            }
            if let Some((k, v)) = line.split_once('=') {
                let value = v.trim();
                match k.trim() {
                    "fixed_key" if !value.is_empty() => {
                        fixed_key = Some(Zeroizing::new(value.to_owned()));
                    }
                    "backend" | "api_class" if !value.is_empty() => {
                        backend = Some(value.to_owned());
                    }
                    _ => {}
                }
            }
        }
        Ok(ServiceConf {
            fixed_key: fixed_key.map(|k| parse_hex_key(&k)).transpose()?,
            backend,
        })
    }
}

impl fmt::Debug for ServiceConf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceConf")
            .field(
                "fixed_key",
                &self
                    .fixed_key
                    .as_ref()
                    .map(|k| format!("[REDACTED, {} bytes]", k.len())),
            )
            .field("backend", &self.backend)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_key_manager_and_keymgr_groups() {
        let key = "0f".repeat(32);
        let conf = ServiceConf::parse(&format!(
            "[DEFAULT]\nfixed_key = 00\n\n[key_manager]\n# a comment\nbackend = barbican\nfixed_key = {key}\n"
        ))
        .unwrap();
        assert_eq!(conf.fixed_key.unwrap().expose_secret(), &[0x0f; 32]);
        assert_eq!(conf.backend.as_deref(), Some("barbican"));

        let conf = ServiceConf::parse(
            "[keymgr]\napi_class = cinder.keymgr.conf_key_mgr.ConfKeyManager\nfixed_key=abcd\n",
        )
        .unwrap();
        assert_eq!(conf.fixed_key.unwrap().expose_secret(), &[0xab, 0xcd]);
        assert_eq!(
            conf.backend.as_deref(),
            Some("cinder.keymgr.conf_key_mgr.ConfKeyManager")
        );

        let none =
            ServiceConf::parse("[key_manager]\nfixed_key =\n[other]\nbackend = x\n").unwrap();
        assert!(none.fixed_key.is_none() && none.backend.is_none());
    }

    #[test]
    fn a_bad_key_is_config_and_never_shown() {
        let e = ServiceConf::parse("[key_manager]\nfixed_key = 0g1234secret\n").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(!e.to_string().contains("secret"), "{e}");
        let conf = ServiceConf::parse("[key_manager]\nfixed_key = c0ffee\n").unwrap();
        assert!(!format!("{conf:?}").contains("c0ffee"));
    }
}
