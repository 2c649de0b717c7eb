//! The audit trail: one event per operation on the [`AUDIT_TARGET`]
//! tracing target, saying who asked, what action on which object, and the
//! outcome. Never a payload or key byte.

use std::fmt;

use crate::context::Context;
use crate::error::{ErrorKind, Result};

/// The tracing target audit events are emitted on.
pub const AUDIT_TARGET: &str = "keywarden::audit";

/// Who an audited operation runs for.
#[derive(Clone, Copy)]
pub(super) enum Actor<'a> {
    /// A request: its user and project are recorded.
    Request(&'a Context),
    /// An operator action, outside any request (recorded as user `operator`).
    Operator,
}

impl<'a> From<&'a Context> for Actor<'a> {
    fn from(ctx: &'a Context) -> Self {
        Actor::Request(ctx)
    }
}

/// Runs `op` as one audited operation: `action` on `object`, with the
/// outcome `op` returns.
pub(super) fn audited<'a, T>(
    actor: impl Into<Actor<'a>>,
    action: &'static str,
    object: &dyn fmt::Display,
    op: impl FnOnce() -> Result<T>,
) -> Result<T> {
    let out = op();
    record(actor.into(), action, object, &out);
    out
}

/// Emits the audit event of one operation, for the calls whose event does
/// not fit [`audited`] (its object known only from the outcome, or one
/// event per item of a batch). Holds ids and outcomes only.
pub(super) fn record<T>(
    actor: Actor<'_>,
    action: &'static str,
    object: &dyn fmt::Display,
    outcome: &Result<T>,
) {
    match (actor, outcome) {
        (Actor::Request(ctx), Ok(_)) => tracing::info!(
            target: AUDIT_TARGET,
            user = %ctx.user_id,
            project = %ctx.project_id,
            action,
            object = %object,
            outcome = "success",
        ),
        (Actor::Request(ctx), Err(e)) => tracing::info!(
            target: AUDIT_TARGET,
            user = %ctx.user_id,
            project = %ctx.project_id,
            action,
            object = %object,
            outcome = outcome_name(e.kind()),
            reason = %e,
        ),
        (Actor::Operator, Ok(_)) => tracing::info!(
            target: AUDIT_TARGET,
            user = "operator",
            action,
            object = %object,
            outcome = "success",
        ),
        (Actor::Operator, Err(e)) => tracing::info!(
            target: AUDIT_TARGET,
            user = "operator",
            action,
            object = %object,
            outcome = outcome_name(e.kind()),
            reason = %e,
        ),
    }
}

fn outcome_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::NotFound => "not_found",
        ErrorKind::PermissionDenied => "denied",
        ErrorKind::InvalidInput | ErrorKind::TooLarge => "invalid",
        ErrorKind::Conflict => "conflict",
        ErrorKind::QuotaExceeded => "quota",
        _ => "error",
    }
}
