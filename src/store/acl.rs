//! Secrets' and containers' read ACLs: users of other projects each is
//! shared with, and whether its own project may read it.

use crate::catalog::Write;
use crate::context::Context;
use crate::error::Result;
use crate::error::{Error, ErrorKind};
use crate::model::{Acl, ContainerId, SecretId};

use super::audit::audited;
use super::containers::container_target;
use super::{SecretStore, secret_target};

impl SecretStore {
    /// Replaces a secret's read ACL (`secret_acls:put_patch`).
    pub fn set_acl(&self, ctx: &Context, id: &SecretId, acl: Acl) -> Result<()> {
        audited(ctx, "secret_acls:put_patch", id, || {
            let row = self.visible_secret(ctx, id, false)?;
            self.authorize("secret_acls:put_patch", ctx, &secret_target(ctx, &row))?;
            self.catalog.apply(vec![Write::SetAcl {
                id: *id,
                acl: Some(acl),
            }])
        })
    }

    /// A secret's read ACL (`secret_acls:get`).
    pub fn acl(&self, ctx: &Context, id: &SecretId) -> Result<Acl> {
        audited(ctx, "secret_acls:get", id, || {
            let row = self.visible_secret(ctx, id, false)?;
            self.authorize("secret_acls:get", ctx, &secret_target(ctx, &row))?;
            self.catalog.secret_acl(id)
        })
    }

    /// Removes a secret's ACL; the defaults return (`secret_acls:delete`).
    pub fn delete_acl(&self, ctx: &Context, id: &SecretId) -> Result<()> {
        audited(ctx, "secret_acls:delete", id, || {
            let row = self.visible_secret(ctx, id, false)?;
            self.authorize("secret_acls:delete", ctx, &secret_target(ctx, &row))?;
            self.catalog
                .apply(vec![Write::SetAcl { id: *id, acl: None }])
        })
    }

    /// Replaces a container's read ACL (`container_acls:put_patch`).
    pub fn set_container_acl(&self, ctx: &Context, id: &ContainerId, acl: Acl) -> Result<()> {
        audited(ctx, "container_acls:put_patch", id, || {
            let seen = self.visible_container(ctx, id)?;
            self.authorize(
                "container_acls:put_patch",
                ctx,
                &container_target(ctx, &seen),
            )?;
            self.catalog.apply(vec![Write::SetContainerAcl {
                id: *id,
                acl: Some(acl),
            }])
        })
    }

    /// A container's read ACL (`container_acls:get`).
    pub fn container_acl(&self, ctx: &Context, id: &ContainerId) -> Result<Acl> {
        audited(ctx, "container_acls:get", id, || {
            let seen = self.visible_container(ctx, id)?;
            self.authorize("container_acls:get", ctx, &container_target(ctx, &seen))?;
            self.catalog
                .container_acl(id)?
                .ok_or_else(|| Error::new(ErrorKind::NotFound, format!("container {id} not found")))
        })
    }

    /// Removes a container's ACL; the defaults return
    /// (`container_acls:delete`).
    pub fn delete_container_acl(&self, ctx: &Context, id: &ContainerId) -> Result<()> {
        audited(ctx, "container_acls:delete", id, || {
            let seen = self.visible_container(ctx, id)?;
            self.authorize("container_acls:delete", ctx, &container_target(ctx, &seen))?;
            self.catalog
                .apply(vec![Write::SetContainerAcl { id: *id, acl: None }])
        })
    }
}
