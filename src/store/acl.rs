//! A secret's read ACL: users of other projects it is shared with, and
//! whether its own project may read it.

use crate::catalog::Write;
use crate::context::Context;
use crate::error::Result;
use crate::model::{Acl, SecretId};

use super::audit::audited;
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
}
