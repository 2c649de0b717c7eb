//! Containers' read ACLs (users of other projects a container is shared
//! with, and whether its own project may read it): both catalogs, over
//! [`Db`].

use crate::catalog::rows::parsed;
use crate::catalog::sql::{Db, args, row, rows};
use crate::error::{Error, ErrorKind};
use crate::model::{Acl, ContainerId, UserId};

fn container_not_found(id: &ContainerId) -> Error {
    Error::new(ErrorKind::NotFound, format!("container {id} not found"))
}

/// Replaces the ACL; `None` restores the defaults (project access, no users).
pub(crate) fn set<D: Db + ?Sized>(
    db: &mut D,
    id: &ContainerId,
    acl: Option<&Acl>,
) -> Result<(), D::Fail> {
    let default = Acl::default();
    let acl = acl.unwrap_or(&default);
    let n = db.execute(
        "UPDATE containers SET read_project_access = $2 WHERE id = $1",
        &args![id.to_string(), acl.project_access],
    )?;
    if n == 0 {
        return Err(container_not_found(id).into());
    }
    db.execute(
        "DELETE FROM container_acl_users WHERE container_id = $1",
        &args![id.to_string()],
    )?;
    for user in &acl.users {
        db.execute(
            "INSERT INTO container_acl_users (container_id, user_id) VALUES ($1, $2)
             ON CONFLICT DO NOTHING",
            &args![id.to_string(), user.as_str()],
        )?;
    }
    Ok(())
}

/// The ACL, or `None` when the container is not there; run in one snapshot.
pub(crate) fn read<D: Db + ?Sized>(db: &mut D, id: &ContainerId) -> Result<Option<Acl>, D::Fail> {
    let project_access = row(
        db,
        "SELECT read_project_access FROM containers WHERE id = $1",
        &args![id.to_string()],
        |r| r.bool(0),
    )?;
    let Some(project_access) = project_access else {
        return Ok(None);
    };
    let users = rows(
        db,
        "SELECT user_id FROM container_acl_users WHERE container_id = $1 ORDER BY user_id",
        &args![id.to_string()],
        |r| parsed::<UserId>(r, 0, "user id"),
    )?;
    Ok(Some(Acl {
        users,
        project_access,
    }))
}

/// Every container whose ACL is not the default, in id order (for export).
pub(crate) fn all<D: Db + ?Sized>(db: &mut D) -> Result<Vec<(ContainerId, Acl)>, D::Fail> {
    let ids = rows(
        db,
        "SELECT id FROM containers k WHERE NOT read_project_access
           OR EXISTS (SELECT 1 FROM container_acl_users a WHERE a.container_id = k.id)
         ORDER BY id",
        &[],
        |r| parsed::<ContainerId>(r, 0, "container id"),
    )?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(acl) = read(db, &id)? {
            out.push((id, acl));
        }
    }
    Ok(out)
}
