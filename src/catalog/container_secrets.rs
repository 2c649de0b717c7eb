//! Adding a secret reference to a container, or removing one, after the
//! container was made (Barbican's `/v1/containers/{id}/secrets`): both
//! catalogs, over [`Db`].

use crate::catalog::sql::{Db, args, row};
use crate::catalog::write::{not_found, secret_exists};
use crate::error::{Error, ErrorKind};
use crate::model::{ContainerId, SecretId};

/// Barbican's text for a reference that is already there.
pub(crate) const REF_EXISTS: &str = "Conflict. A secret with that name and ID is already stored \
     in this container. The same secret can exist in a container as long as the name is unique.";

/// Barbican's text for removing a reference the container does not hold.
pub(crate) const REF_NOT_FOUND: &str = "Secret provided is not in the container";

/// Adds `(name, secret)`; `Conflict` when the container already has a
/// reference of that name (the catalog keys references by name).
pub(crate) fn add<D: Db + ?Sized>(
    db: &mut D,
    id: &ContainerId,
    name: &str,
    secret: &SecretId,
) -> Result<(), D::Fail> {
    let lock = db.dialect().lock_key_share;
    let exists = row(
        db,
        &format!("SELECT 1 FROM containers WHERE id = $1{lock}"),
        &args![id.to_string()],
        |_| Ok(()),
    )?;
    if exists.is_none() {
        return Err(Error::new(ErrorKind::NotFound, format!("container {id} not found")).into());
    }
    if !secret_exists(db, secret, lock)? {
        return Err(not_found(secret).into());
    }
    let n = db.execute(
        "INSERT INTO container_secrets (container_id, name, secret_id) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
        &args![id.to_string(), name, secret.to_string()],
    )?;
    if n == 0 {
        return Err(Error::new(ErrorKind::Conflict, REF_EXISTS).into());
    }
    Ok(())
}

/// Removes `(name, secret)`; `NotFound` when the container does not hold it.
pub(crate) fn remove<D: Db + ?Sized>(
    db: &mut D,
    id: &ContainerId,
    name: &str,
    secret: &SecretId,
) -> Result<(), D::Fail> {
    let n = db.execute(
        "DELETE FROM container_secrets WHERE container_id = $1 AND name = $2 AND secret_id = $3",
        &args![id.to_string(), name, secret.to_string()],
    )?;
    if n == 0 {
        return Err(Error::new(ErrorKind::NotFound, REF_NOT_FOUND).into());
    }
    Ok(())
}
