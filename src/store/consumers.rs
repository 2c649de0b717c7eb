//! Consumers: who uses a secret (cinder's volumes, glance's images). A
//! secret with consumers is deleted only when forced.

use crate::catalog::Write;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::model::{Consumer, Page, QuotaResource, SecretId};

use super::audit::audited;
use super::{ListQuery, SecretStore, secret_target};

impl SecretStore {
    /// Registers a consumer on a secret (idempotent). Counted against the
    /// consumers quota of the secret's project.
    pub fn add_consumer(&self, ctx: &Context, id: &SecretId, consumer: Consumer) -> Result<()> {
        audited(ctx, "secret_consumers:post", id, || {
            validate_consumer(&consumer)?;
            let row = self.visible_secret(ctx, id, false)?;
            self.authorize("secret_consumers:post", ctx, &secret_target(ctx, &row))?;
            let quota = self.quota_guard(&row.meta.project_id, QuotaResource::Consumers)?;
            let mut batch = vec![Write::AddConsumer { id: *id, consumer }];
            batch.extend(quota);
            self.catalog.apply(batch)
        })
    }

    /// Removes a consumer; `NotFound` if it was not registered.
    pub fn remove_consumer(&self, ctx: &Context, id: &SecretId, consumer: Consumer) -> Result<()> {
        audited(ctx, "secret_consumers:delete", id, || {
            let row = self.visible_secret(ctx, id, false)?;
            self.authorize("secret_consumers:delete", ctx, &secret_target(ctx, &row))?;
            self.catalog
                .apply(vec![Write::RemoveConsumer { id: *id, consumer }])
        })
    }

    /// One page of a secret's consumers (`secret_consumers:get`), paged as
    /// Barbican pages (`limit` clamped to 1..=100, default 10), in
    /// (service, resource type, resource id) order.
    pub fn list_consumers(
        &self,
        ctx: &Context,
        id: &SecretId,
        limit: Option<i64>,
        offset: Option<i64>,
    ) -> Result<Page<Consumer>> {
        let all = self.consumers(ctx, id)?;
        let q = ListQuery {
            limit,
            offset,
            ..Default::default()
        };
        let (limit, offset) = (q.effective_limit(), q.effective_offset());
        let total = all.len() as u64;
        let items = all
            .into_iter()
            .skip(usize::try_from(offset).unwrap_or(usize::MAX))
            .take(limit as usize)
            .collect();
        Ok(Page {
            items,
            total,
            limit,
            offset,
        })
    }

    /// The consumers registered on a secret.
    pub fn consumers(&self, ctx: &Context, id: &SecretId) -> Result<Vec<Consumer>> {
        audited(ctx, "secret_consumers:get", id, || {
            let row = self.visible_secret(ctx, id, false)?;
            self.authorize("secret_consumers:get", ctx, &secret_target(ctx, &row))?;
            self.catalog.consumers(id)
        })
    }
}

fn validate_consumer(c: &Consumer) -> Result<()> {
    for (field, v, max) in [
        ("service", &c.service, 255),
        ("resource_type", &c.resource_type, 255),
        ("resource_id", &c.resource_id, 36),
    ] {
        if v.is_empty() || v.len() > max {
            return Err(Error::invalid(
                field,
                format!("must be 1 to {max} characters"),
            ));
        }
    }
    Ok(())
}
