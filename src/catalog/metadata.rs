//! Secrets' user metadata (Barbican's `secret_user_metadata`): the writes
//! and reads of both catalogs, over [`Db`].

use std::collections::BTreeMap;

use crate::catalog::sql::{Db, args, row, rows};
use crate::catalog::write::{not_found, secret_exists};
use crate::error::{Error, ErrorKind, Result};
use crate::model::SecretId;

/// Barbican's text for a key that is not there.
pub(crate) const METADATUM_NOT_FOUND: &str = "Secret metadata not found.";

/// Barbican's text for a POST of a key that is already there.
pub(crate) const METADATUM_EXISTS: &str =
    "Conflict. Key in request is already in the secret metadata";

/// Replaces all of a secret's metadata with `metadata`.
pub(crate) fn replace<D: Db + ?Sized>(
    db: &mut D,
    id: &SecretId,
    metadata: &BTreeMap<String, String>,
) -> Result<(), D::Fail> {
    // The secret cannot be deleted before this transaction ends.
    if !secret_exists(db, id, db.dialect().lock_key_share)? {
        return Err(not_found(id).into());
    }
    db.execute(
        "DELETE FROM secret_metadata WHERE secret_id = $1",
        &args![id.to_string()],
    )?;
    for (key, value) in metadata {
        insert(db, id, key, value)?;
    }
    Ok(())
}

/// Adds one key; `Conflict` when the secret already has it.
pub(crate) fn add<D: Db + ?Sized>(
    db: &mut D,
    id: &SecretId,
    key: &str,
    value: &str,
) -> Result<(), D::Fail> {
    if !secret_exists(db, id, db.dialect().lock_key_share)? {
        return Err(not_found(id).into());
    }
    let n = db.execute(
        "INSERT INTO secret_metadata (secret_id, meta_key, meta_value) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
        &args![id.to_string(), key, value],
    )?;
    if n == 0 {
        return Err(Error::new(ErrorKind::Conflict, METADATUM_EXISTS).into());
    }
    Ok(())
}

/// Changes one key's value; `NotFound` when the secret does not have it.
pub(crate) fn update<D: Db + ?Sized>(
    db: &mut D,
    id: &SecretId,
    key: &str,
    value: &str,
) -> Result<(), D::Fail> {
    let n = db.execute(
        "UPDATE secret_metadata SET meta_value = $3 WHERE secret_id = $1 AND meta_key = $2",
        &args![id.to_string(), key, value],
    )?;
    if n == 0 {
        return Err(Error::new(ErrorKind::NotFound, METADATUM_NOT_FOUND).into());
    }
    Ok(())
}

/// Removes one key; as Barbican, a key that is not there is no error.
pub(crate) fn delete<D: Db + ?Sized>(db: &mut D, id: &SecretId, key: &str) -> Result<(), D::Fail> {
    if !secret_exists(db, id, "")? {
        return Err(not_found(id).into());
    }
    db.execute(
        "DELETE FROM secret_metadata WHERE secret_id = $1 AND meta_key = $2",
        &args![id.to_string(), key],
    )?;
    Ok(())
}

/// Inserts one metadatum row (also for an imported record).
pub(crate) fn insert<D: Db + ?Sized>(
    db: &mut D,
    id: &SecretId,
    key: &str,
    value: &str,
) -> Result<u64, D::Fail> {
    db.execute(
        "INSERT INTO secret_metadata (secret_id, meta_key, meta_value) VALUES ($1, $2, $3)",
        &args![id.to_string(), key, value],
    )
}

/// A secret's metadata, key by key.
pub(crate) fn read<D: Db + ?Sized>(
    db: &mut D,
    id: &SecretId,
) -> Result<BTreeMap<String, String>, D::Fail> {
    Ok(rows(
        db,
        "SELECT meta_key, meta_value FROM secret_metadata WHERE secret_id = $1 ORDER BY meta_key",
        &args![id.to_string()],
        |r| Ok((r.text(0)?, r.text(1)?)),
    )?
    .into_iter()
    .collect())
}

/// One key's value, if the secret has it.
pub(crate) fn read_one<D: Db + ?Sized>(
    db: &mut D,
    id: &SecretId,
    key: &str,
) -> Result<Option<String>, D::Fail> {
    row(
        db,
        "SELECT meta_value FROM secret_metadata WHERE secret_id = $1 AND meta_key = $2",
        &args![id.to_string(), key],
        |r| r.text(0),
    )
}
