//! Per-project quotas (Barbican's `/v1/quotas` and `/v1/project-quotas`):
//! how many secrets, orders, containers and consumers a project may hold.
//! Unlimited unless configured; a project's own values override the
//! store's defaults resource by resource.
//!
//! Creation calls end their write batch with the check (see
//! `catalog/quotas.rs` for why that holds under concurrent writers); when a
//! limit applies, they also check before any backend work, so a refused
//! create leaves nothing behind on an HSM or KMIP device either.

use crate::catalog::Write;
use crate::context::Context;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{Page, ProjectId, ProjectQuotas, QuotaResource, Quotas};

use super::audit::audited;
use super::{ListQuery, SecretStore};

/// Barbican's client-facing text for a refused creation (the API answers
/// 403 with "<operation> issue seen - " and this).
pub const QUOTA_REACHED_CLIENT_MESSAGE: &str =
    "Creation not allowed because a quota has been reached";

impl SecretStore {
    /// The quotas in effect for the caller's project (`quotas:get`).
    pub fn quotas(&self, ctx: &Context) -> Result<Quotas> {
        audited(ctx, "quotas:get", &ctx.project_id, || {
            self.authorize("quotas:get", ctx, &self.project_target(ctx))?;
            self.effective_quotas(&ctx.project_id)
        })
    }

    /// The quotas set for `project` itself (`project_quotas:get`);
    /// `NotFound` ("Project quotas not found.") when none are.
    pub fn project_quotas(&self, ctx: &Context, project: &ProjectId) -> Result<ProjectQuotas> {
        audited(ctx, "project_quotas:get", project, || {
            self.authorize("project_quotas:get", ctx, &self.project_target(ctx))?;
            self.catalog
                .project_quotas(project)?
                .ok_or_else(|| Error::new(ErrorKind::NotFound, "Project quotas not found."))
        })
    }

    /// Every project with quotas of its own, oldest first, paged as
    /// Barbican pages (`project_quotas:get`).
    pub fn list_project_quotas(
        &self,
        ctx: &Context,
        limit: Option<i64>,
        offset: Option<i64>,
    ) -> Result<Page<(ProjectId, ProjectQuotas)>> {
        audited(ctx, "project_quotas:list", &ctx.project_id, || {
            self.authorize("project_quotas:get", ctx, &self.project_target(ctx))?;
            let q = ListQuery {
                limit,
                offset,
                ..Default::default()
            };
            self.catalog
                .list_project_quotas(q.effective_limit(), q.effective_offset())
        })
    }

    /// Sets `project`'s quotas (`project_quotas:put`): each `Some` replaces
    /// that resource's value, each `None` keeps what was set before (as
    /// Barbican's PUT does). Any integer is taken: negative is unlimited,
    /// 0 refuses every creation.
    pub fn set_project_quotas(
        &self,
        ctx: &Context,
        project: &ProjectId,
        quotas: ProjectQuotas,
    ) -> Result<()> {
        audited(ctx, "project_quotas:put", project, || {
            self.authorize("project_quotas:put", ctx, &self.project_target(ctx))?;
            self.catalog.apply(vec![Write::MergeProjectQuotas {
                project: project.clone(),
                quotas,
            }])
        })
    }

    /// Removes `project`'s own quotas; the defaults apply again
    /// (`project_quotas:delete`). `NotFound` when it had none.
    pub fn delete_project_quotas(&self, ctx: &Context, project: &ProjectId) -> Result<()> {
        audited(ctx, "project_quotas:delete", project, || {
            self.authorize("project_quotas:delete", ctx, &self.project_target(ctx))?;
            self.catalog
                .apply(vec![Write::DeleteProjectQuotas(project.clone())])
        })
    }

    /// The store's default quotas (configuration).
    pub fn default_quotas(&self) -> &Quotas {
        &self.default_quotas
    }

    fn effective_quotas(&self, project: &ProjectId) -> Result<Quotas> {
        Ok(match self.catalog.project_quotas(project)? {
            Some(own) => own.effective(&self.default_quotas),
            None => self.default_quotas,
        })
    }

    /// Before creating one `resource` in `project`: `QuotaExceeded` when
    /// the project is already at its limit, else the check to end the
    /// create's batch with (`None` when the resource is unlimited).
    pub(super) fn quota_guard(
        &self,
        project: &ProjectId,
        resource: QuotaResource,
    ) -> Result<Option<Write>> {
        let limit = self.effective_quotas(project)?.get(resource);
        if limit < 0 {
            return Ok(None);
        }
        let check = |adding| Write::WithinQuota {
            project: project.clone(),
            resource,
            default: self.default_quotas.get(resource),
            adding,
        };
        // A batch of the check alone writes nothing.
        self.catalog.apply(vec![check(1)])?;
        Ok(Some(check(0)))
    }
}
