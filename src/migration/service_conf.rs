//! What a cinder.conf or nova.conf says about its key manager: the
//! `[key_manager]` group's `fixed_key` and `backend` (also the older
//! `[keymgr]` group and its `api_class`), for `migrate fixed-key
//! --from-conf`. Operator-supplied text: anything it cannot use is `Config`.

use std::path::Path;

use zeroize::Zeroizing;

use crate::backend::fixed::parse_hex_key;
use crate::error::{Error, ErrorKind, Result};
use crate::secret::SecretBytes;

/// The key-manager settings of an oslo.config file.
#[derive(Clone, Debug, Default)]
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

    /// Reads the settings from config text, line by line as oslo.config
    /// does: `name = value` or `name: value`, one pair of matching quotes
    /// around the value dropped, the last setting of a name winning (an
    /// empty one unsets it). A `fixed_key` that is not hex, or a setting of
    /// ours continued on an indented line, is `Config`.
    pub fn parse(text: &str) -> Result<Self> {
        let mut in_group = false;
        // Our setting on the line before, which an indented line continues.
        let mut last: Option<&str> = None;
        let mut fixed_key: Option<Zeroizing<String>> = None;
        let mut backend: Option<String> = None;
        for line in text.lines() {
            let line = line.trim_end();
            if line.starts_with([' ', '\t']) {
                if let Some(name) = last {
                    return Err(Error::new(
                        ErrorKind::Config,
                        format!(
                            "[key_manager] {name} continues on an indented line; it must be one line"
                        ),
                    ));
                }
                continue;
            }
            last = None;
            if line.is_empty() || line.starts_with(['#', ';']) {
                continue;
            }
            if let Some(name) = line.strip_prefix('[') {
                in_group = matches!(name.strip_suffix(']'), Some("key_manager" | "keymgr"));
                continue;
            }
            if !in_group {
                continue;
            }
            let Some((name, value)) = assignment(line) else {
                continue;
            };
            match name {
                "fixed_key" => fixed_key = Some(Zeroizing::new(value.to_owned())),
                "backend" | "api_class" => backend = Some(value.to_owned()),
                _ => continue,
            }
            last = Some(name);
        }
        Ok(ServiceConf {
            fixed_key: fixed_key
                .filter(|k| !k.is_empty())
                .map(|k| parse_hex_key(&k))
                .transpose()?,
            backend: backend.filter(|b| !b.is_empty()),
        })
    }
}

/// `name = value` or `name: value`, split at whichever comes first, with
/// one pair of matching quotes around the value dropped (oslo.config's
/// `_split_key_value`, which makes a lone quote an empty value).
fn assignment(line: &str) -> Option<(&str, &str)> {
    let at = line.find([':', '='])?;
    let value = line[at + 1..].trim();
    let value = match value.as_bytes() {
        [open @ (b'"' | b'\''), .., close] if open == close => &value[1..value.len() - 1],
        [b'"' | b'\''] => "",
        _ => value,
    };
    Some((line[..at].trim(), value))
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
    fn reads_values_as_oslo_config_does() {
        let conf = ServiceConf::parse(
            "[key_manager]\nfixed_key: \"0F0f\"\nbackend = 'barbican'\nfixed_key = 'abcd'\n",
        )
        .unwrap();
        assert_eq!(conf.fixed_key.unwrap().expose_secret(), &[0xab, 0xcd]);
        assert_eq!(conf.backend.as_deref(), Some("barbican"));
        // The first of ':' and '=' splits; an empty value unsets.
        let conf =
            ServiceConf::parse("[key_manager]\nbackend = a:b\nfixed_key = 00\nfixed_key =\n")
                .unwrap();
        assert_eq!(conf.backend.as_deref(), Some("a:b"));
        assert!(conf.fixed_key.is_none());
        // Section names are taken as written.
        let conf = ServiceConf::parse("[ key_manager ]\nfixed_key = 00\n").unwrap();
        assert!(conf.fixed_key.is_none());
        // A lone quote is an empty value, not a crash.
        let conf = ServiceConf::parse("[keymgr]\nbackend = \"\n").unwrap();
        assert!(conf.backend.is_none());
    }

    #[test]
    fn a_setting_continued_on_the_next_line_is_config() {
        let e = ServiceConf::parse("[key_manager]\nfixed_key = 00\n  11\n").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.to_string().contains("fixed_key"), "{e}");
        // Other settings' continuations, and indented lines after a blank
        // line, are not ours.
        let conf = ServiceConf::parse(
            "[key_manager]\nother = x\n  y\nfixed_key = 00\n\n  11\n[DEFAULT]\nbackend = b\n\tz\n",
        )
        .unwrap();
        assert_eq!(conf.fixed_key.unwrap().expose_secret(), &[0]);
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
