//! Secrets' user metadata (Barbican's `/v1/secrets/{id}/metadata`): string
//! keys and values kept beside the secret, deleted with it. Keys are
//! URL-safe and kept lower-cased, as Barbican keeps them.

use std::collections::BTreeMap;

use crate::catalog::Write;
use crate::context::Context;
use crate::error::{Error, ErrorKind, Result};
use crate::model::SecretId;

use super::audit::audited;
use super::{SecretStore, secret_target};

/// The longest key or value Barbican keeps (its columns are 255 long).
pub const MAX_METADATUM_LEN: usize = 255;

impl SecretStore {
    /// All of a secret's user metadata (`secret_meta:get`).
    pub fn secret_metadata(
        &self,
        ctx: &Context,
        id: &SecretId,
    ) -> Result<BTreeMap<String, String>> {
        audited(ctx, "secret_meta:get", id, || {
            let row = self.visible_secret(ctx, id, false)?;
            self.authorize("secret_meta:get", ctx, &secret_target(ctx, &row))?;
            self.catalog.secret_metadata(id)
        })
    }

    /// One key's value (`secret_meta:get`); `NotFound` with Barbican's
    /// "Secret metadata not found." when the secret lacks it. The key is
    /// looked up as given, as Barbican does.
    pub fn secret_metadatum(&self, ctx: &Context, id: &SecretId, key: &str) -> Result<String> {
        audited(ctx, "secret_meta:get", id, || {
            let row = self.visible_secret(ctx, id, false)?;
            self.authorize("secret_meta:get", ctx, &secret_target(ctx, &row))?;
            self.catalog
                .secret_metadatum(id, key)?
                .ok_or_else(metadatum_not_found)
        })
    }

    /// Replaces all of a secret's user metadata (`secret_meta:put`); returns
    /// what is now stored (keys lower-cased; of two keys that differ only in
    /// case, the later wins, as in Barbican).
    pub fn replace_secret_metadata(
        &self,
        ctx: &Context,
        id: &SecretId,
        metadata: impl IntoIterator<Item = (String, String)>,
    ) -> Result<BTreeMap<String, String>> {
        audited(ctx, "secret_meta:put", id, || {
            let row = self.visible_secret(ctx, id, false)?;
            self.authorize("secret_meta:put", ctx, &secret_target(ctx, &row))?;
            let mut clean = BTreeMap::new();
            for (key, value) in metadata {
                let (key, value) = validate_metadatum(&key, value)?;
                clean.insert(key, value);
            }
            self.catalog.apply(vec![Write::ReplaceMetadata {
                id: *id,
                metadata: clean.clone(),
            }])?;
            Ok(clean)
        })
    }

    /// Adds one key (`secret_meta:post`); `Conflict` with Barbican's text
    /// when the secret already has it. Returns the stored (lower-cased) key.
    pub fn add_secret_metadatum(
        &self,
        ctx: &Context,
        id: &SecretId,
        key: &str,
        value: &str,
    ) -> Result<(String, String)> {
        audited(ctx, "secret_meta:post", id, || {
            let row = self.visible_secret(ctx, id, false)?;
            self.authorize("secret_meta:post", ctx, &secret_target(ctx, &row))?;
            let (key, value) = validate_metadatum(key, value.to_owned())?;
            self.catalog.apply(vec![Write::AddMetadatum {
                id: *id,
                key: key.clone(),
                value: value.clone(),
            }])?;
            Ok((key, value))
        })
    }

    /// Changes the value of the key `url_key` (`secret_meta:put`), as
    /// Barbican's `PUT …/metadata/{key}` with body `{key, value}`: the body
    /// is validated first; then `NotFound` when the secret lacks `url_key`,
    /// `Conflict` when the body's (lower-cased) key is another one.
    pub fn update_secret_metadatum(
        &self,
        ctx: &Context,
        id: &SecretId,
        url_key: &str,
        key: &str,
        value: &str,
    ) -> Result<(String, String)> {
        audited(ctx, "secret_meta:put", id, || {
            let row = self.visible_secret(ctx, id, false)?;
            self.authorize("secret_meta:put", ctx, &secret_target(ctx, &row))?;
            let (key, value) = validate_metadatum(key, value.to_owned())?;
            if self.catalog.secret_metadatum(id, url_key)?.is_none() {
                return Err(metadatum_not_found());
            }
            if url_key != key {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    "Key in request data does not match key in the request url.",
                ));
            }
            self.catalog.apply(vec![Write::UpdateMetadatum {
                id: *id,
                key: key.clone(),
                value: value.clone(),
            }])?;
            Ok((key, value))
        })
    }

    /// Removes one key (`secret_meta:delete`). As Barbican, a key the
    /// secret does not have is no error.
    pub fn delete_secret_metadatum(&self, ctx: &Context, id: &SecretId, key: &str) -> Result<()> {
        audited(ctx, "secret_meta:delete", id, || {
            let row = self.visible_secret(ctx, id, false)?;
            self.authorize("secret_meta:delete", ctx, &secret_target(ctx, &row))?;
            self.catalog.apply(vec![Write::DeleteMetadatum {
                id: *id,
                key: key.to_owned(),
            }])
        })
    }
}

fn metadatum_not_found() -> Error {
    Error::new(ErrorKind::NotFound, "Secret metadata not found.")
}

/// Barbican's metadatum rules: the key is URL-safe (`[A-Za-z0-9_-]*`) and
/// stored lower-cased; key and value at most 255 characters.
fn validate_metadatum(key: &str, value: String) -> Result<(String, String)> {
    if !key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(Error::invalid("key", "Invalid Key. Key must be URL safe."));
    }
    if key.len() > MAX_METADATUM_LEN {
        return Err(Error::invalid("key", "must be at most 255 characters"));
    }
    if value.chars().count() > MAX_METADATUM_LEN {
        return Err(Error::invalid("value", "must be at most 255 characters"));
    }
    Ok((key.to_ascii_lowercase(), value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_url_safe_and_lower_cased() {
        assert_eq!(
            validate_metadatum("Geo-Zone_1", "x".into()).unwrap(),
            ("geo-zone_1".to_owned(), "x".to_owned())
        );
        for bad in ["a b", "a/b", "ä", "a.b", "a%20"] {
            let e = validate_metadatum(bad, String::new()).unwrap_err();
            assert_eq!(e.field(), Some("key"), "{bad}");
            assert_eq!(e.context(), "Invalid Key. Key must be URL safe.");
        }
        assert!(validate_metadatum(&"k".repeat(255), "v".repeat(255)).is_ok());
        assert_eq!(
            validate_metadatum(&"k".repeat(256), String::new())
                .unwrap_err()
                .field(),
            Some("key")
        );
        assert_eq!(
            validate_metadatum("k", "é".repeat(256))
                .unwrap_err()
                .field(),
            Some("value")
        );
    }
}
