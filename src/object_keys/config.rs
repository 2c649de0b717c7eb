//! swift's `[kms_keymaster]` options: which store secrets are the root
//! secrets, which one is active, which `key_id` version is written.

use std::collections::BTreeMap;

use crate::error::{Error, ErrorKind, Result};
use crate::model::SecretId;

use super::{MetaVersion, RootSecretId};

/// Which secrets in the store are the root secrets: swift's `kms_keymaster`
/// options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeymasterConfig {
    /// Root secret id -> the store's secret id (swift's `key_id[_<id>]`).
    pub key_ids: BTreeMap<RootSecretId, SecretId>,
    /// The root secret new objects are encrypted under.
    pub active_root_secret_id: RootSecretId,
    /// Which `key_id` version new objects record.
    pub meta_version_to_write: MetaVersion,
}

impl KeymasterConfig {
    /// One root secret, active.
    pub fn single(key_id: SecretId) -> Self {
        KeymasterConfig {
            key_ids: BTreeMap::from([(RootSecretId::DEFAULT, key_id)]),
            active_root_secret_id: RootSecretId::DEFAULT,
            meta_version_to_write: MetaVersion::V3,
        }
    }

    /// Reads a `[kms_keymaster]` section as swift does: `key_id` and
    /// `key_id_<secret_id>` name root secrets (a bare uuid or a secret
    /// href), `active_root_secret_id` picks the one for writes,
    /// `meta_version_to_write` the metadata version. The credential and
    /// endpoint options swift uses to reach Barbican mean nothing to an
    /// embedded store and are ignored; any other option is refused.
    pub fn from_options<'a>(options: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self> {
        const IGNORED: [&str; 18] = [
            "username",
            "password",
            "project_name",
            "project_id",
            "user_domain_name",
            "user_domain_id",
            "project_domain_name",
            "project_domain_id",
            "user_id",
            "trust_id",
            "domain_id",
            "domain_name",
            "reauthenticate",
            "auth_endpoint",
            "api_class",
            "barbican_endpoint",
            "barbican_region_name",
            "keymaster_config_path",
        ];
        let mut key_ids = BTreeMap::new();
        let mut active = RootSecretId::DEFAULT;
        let mut version = MetaVersion::V3;
        for (name, value) in options {
            let value = value.trim();
            if let Some(suffix) = name.strip_prefix("key_id") {
                // swift's load_multikey_opts: `key_id` or `key_id_<id>`.
                let secret_id = match suffix {
                    "" => RootSecretId::DEFAULT,
                    s if s.len() >= 2 && s.starts_with('_') => RootSecretId::named(&s[1..])?,
                    _ => {
                        return Err(Error::new(
                            ErrorKind::Config,
                            format!("Malformed multi-key option name {name}"),
                        ));
                    }
                };
                let id = value
                    .trim_end_matches('/')
                    .rsplit('/')
                    .next()
                    .unwrap_or(value)
                    .parse::<SecretId>()
                    .map_err(|e| {
                        Error::new(
                            ErrorKind::Config,
                            format!("{name} must be a secret uuid or href, got {value:?}"),
                        )
                        .with_source(e)
                    })?;
                key_ids.insert(secret_id, id);
            } else if name == "active_root_secret_id" {
                active = if value.is_empty() {
                    RootSecretId::DEFAULT
                } else {
                    RootSecretId::named(value)?
                };
            } else if name == "meta_version_to_write" {
                version = value.parse().map_err(|e: Error| {
                    Error::new(
                        ErrorKind::Config,
                        format!("Unknown/unsupported metadata version: {value:?}"),
                    )
                    .with_source(e)
                })?;
            } else if !IGNORED.contains(&name) {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!("unknown kms_keymaster option {name}"),
                ));
            }
        }
        Ok(KeymasterConfig {
            key_ids,
            active_root_secret_id: active,
            meta_version_to_write: version,
        })
    }
}
