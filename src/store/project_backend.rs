//! The project -> backend mapping (Barbican's "preferred secret store"):
//! where a project's new secrets go.

use crate::catalog::Write;
use crate::context::Context;
use crate::error::{Error, ErrorKind, Result};
use crate::model::BackendId;

use super::SecretStore;
use super::audit::audited;

impl SecretStore {
    /// Maps the caller's project to `backend` for its new secrets
    /// (`secretstore_preferred:post`, Barbican's "preferred secret store").
    /// Existing secrets stay with the backend that stored them. A backend
    /// serving the legacy fixed key is refused (`InvalidInput`).
    pub fn set_project_backend(&self, ctx: &Context, backend: &BackendId) -> Result<()> {
        audited(ctx, "secretstore_preferred:post", &ctx.project_id, || {
            self.authorize("secretstore_preferred:post", ctx, &self.project_target(ctx))?;
            let Some(km) = self.backends.get(backend) else {
                return Err(Error::invalid(
                    "backend",
                    format!("backend {backend} is not configured"),
                ));
            };
            // Its one key is readable by every project: a project mapped
            // there would get keys that are not its own.
            if km.serves_fixed_id() {
                return Err(Error::invalid(
                    "backend",
                    format!(
                        "backend {backend} serves the shared legacy fixed key; \
                         no project can be mapped to it"
                    ),
                ));
            }
            self.catalog.apply(vec![Write::SetProjectBackend {
                project: ctx.project_id.clone(),
                backend: Some(backend.clone()),
            }])
        })
    }

    /// The backend the caller's project's new secrets go to, and whether
    /// that comes from a mapping (`true`) or the global default (`false`).
    pub fn project_backend(&self, ctx: &Context) -> Result<(BackendId, bool)> {
        audited(ctx, "secretstores:get", &ctx.project_id, || {
            self.authorize("secretstores:get", ctx, &self.project_target(ctx))?;
            Ok(match self.project_mapping(&ctx.project_id)? {
                Some(b) => (b, true),
                None => (self.default_backend.clone(), false),
            })
        })
    }

    /// Removes the caller's project's mapping; it falls back to the global
    /// default (`secretstore_preferred:delete`).
    pub fn clear_project_backend(&self, ctx: &Context) -> Result<()> {
        audited(ctx, "secretstore_preferred:delete", &ctx.project_id, || {
            self.authorize(
                "secretstore_preferred:delete",
                ctx,
                &self.project_target(ctx),
            )?;
            self.catalog.apply(vec![Write::SetProjectBackend {
                project: ctx.project_id.clone(),
                backend: None,
            }])
        })
    }

    /// Every configured backend (Barbican's secret stores) and the global
    /// default (`secretstores:get`). The fixed-key backend is one of them
    /// when configured.
    pub fn backends(&self, ctx: &Context) -> Result<(Vec<BackendId>, BackendId)> {
        audited(ctx, "secretstores:get", &ctx.project_id, || {
            self.authorize("secretstores:get", ctx, &self.project_target(ctx))?;
            Ok((
                self.backends.keys().cloned().collect(),
                self.default_backend.clone(),
            ))
        })
    }

    /// The global default backend (`secretstores:get_global_default`).
    pub fn global_default_backend(&self, ctx: &Context) -> Result<BackendId> {
        audited(
            ctx,
            "secretstores:get_global_default",
            &ctx.project_id,
            || {
                self.authorize(
                    "secretstores:get_global_default",
                    ctx,
                    &self.project_target(ctx),
                )?;
                Ok(self.default_backend.clone())
            },
        )
    }

    /// The caller's project's own mapping, if any
    /// (`secretstores:get_preferred`); Barbican answers 404 without one. A
    /// mapping onto a fixed-key backend left from before is not one.
    pub fn preferred_backend(&self, ctx: &Context) -> Result<BackendId> {
        audited(ctx, "secretstores:get_preferred", &ctx.project_id, || {
            self.authorize("secretstores:get_preferred", ctx, &self.project_target(ctx))?;
            self.project_mapping(&ctx.project_id)?.ok_or_else(|| {
                Error::new(
                    ErrorKind::NotFound,
                    "Not Found. No preferred secret store defined for this project.",
                )
            })
        })
    }
}
