//! Per-project quotas: the configured rows, and the check a create batch
//! ends with. Both catalogs, over [`Db`].
//!
//! The check counts inside the batch's own transaction, after its inserts,
//! so concurrent creators cannot both pass on one free slot: SQLite runs
//! one write transaction at a time (across processes too, by its file
//! lock); PostgreSQL runs batches `SERIALIZABLE`, so two that each count
//! the other's rows as absent conflict and one is retried, on one
//! connection or many instances alike.

use crate::catalog::query::page_args;
use crate::catalog::rows::parsed;
use crate::catalog::sql::{Columns, Db, Value, args, count, row, rows};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{Page, ProjectId, ProjectQuotas, QuotaResource, Timestamp};

/// Barbican's text when a project has no quotas of its own.
pub(crate) const PROJECT_QUOTAS_NOT_FOUND: &str = "Project quotas not found.";

const QUOTA_COLUMNS: &str = "secrets, orders, containers, consumers, cas";

/// Sets the given limits, keeping the project's other ones (Barbican's PUT
/// updates only the resources it names).
pub(crate) fn merge<D: Db + ?Sized>(
    db: &mut D,
    project: &ProjectId,
    q: &ProjectQuotas,
) -> Result<(), D::Fail> {
    db.execute(
        "INSERT INTO project_quotas (project_id, secrets, orders, containers, consumers, cas, created)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (project_id) DO UPDATE SET
           secrets = COALESCE(excluded.secrets, project_quotas.secrets),
           orders = COALESCE(excluded.orders, project_quotas.orders),
           containers = COALESCE(excluded.containers, project_quotas.containers),
           consumers = COALESCE(excluded.consumers, project_quotas.consumers),
           cas = COALESCE(excluded.cas, project_quotas.cas)",
        &args![
            project.as_str(),
            q.secrets,
            q.orders,
            q.containers,
            q.consumers,
            q.cas,
            Timestamp::now().unix(),
        ],
    )?;
    Ok(())
}

/// Inserts a row as exported (restores keep the creation time).
pub(crate) fn insert<D: Db + ?Sized>(
    db: &mut D,
    project: &ProjectId,
    q: &ProjectQuotas,
    created: Timestamp,
) -> Result<(), D::Fail> {
    db.execute(
        "INSERT INTO project_quotas (project_id, secrets, orders, containers, consumers, cas, created)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &args![
            project.as_str(),
            q.secrets,
            q.orders,
            q.containers,
            q.consumers,
            q.cas,
            created.unix(),
        ],
    )?;
    Ok(())
}

/// `NotFound` when the project has no quotas of its own.
pub(crate) fn delete<D: Db + ?Sized>(db: &mut D, project: &ProjectId) -> Result<(), D::Fail> {
    let n = db.execute(
        "DELETE FROM project_quotas WHERE project_id = $1",
        &args![project.as_str()],
    )?;
    if n == 0 {
        return Err(Error::new(ErrorKind::NotFound, PROJECT_QUOTAS_NOT_FOUND).into());
    }
    Ok(())
}

/// Fails the batch with `QuotaExceeded` when `project` holds more of
/// `resource` than its limit (its own, else `default`) with `adding` more.
/// Run after the batch's inserts, "more than the limit now" is Barbican's
/// "already at the limit before".
pub(crate) fn check<D: Db + ?Sized>(
    db: &mut D,
    project: &ProjectId,
    resource: QuotaResource,
    default: i64,
    adding: u64,
) -> Result<(), D::Fail> {
    let own = project_quotas(db, project)?.and_then(|(q, _)| q.get(resource));
    let limit = own.unwrap_or(default);
    if limit < 0 {
        return Ok(());
    }
    let held = match count_sql(resource) {
        // Disabled: refused whatever the project holds.
        _ if limit == 0 => 1,
        Some(sql) => count(db, sql, &args![project.as_str()])?.saturating_add(adding),
        None => 0,
    };
    if held > limit.unsigned_abs() {
        return Err(quota_reached(project, resource, limit).into());
    }
    Ok(())
}

/// How a project's objects of `resource` are counted. Consumers are those
/// registered on the project's secrets and containers.
fn count_sql(resource: QuotaResource) -> Option<&'static str> {
    Some(match resource {
        QuotaResource::Secrets => "SELECT COUNT(*) FROM secrets WHERE project_id = $1",
        QuotaResource::Orders => "SELECT COUNT(*) FROM orders WHERE project_id = $1",
        QuotaResource::Containers => "SELECT COUNT(*) FROM containers WHERE project_id = $1",
        QuotaResource::Consumers => {
            "SELECT (SELECT COUNT(*) FROM secret_consumers c JOIN secrets s ON s.id = c.secret_id
                     WHERE s.project_id = $1)
                  + (SELECT COUNT(*) FROM container_consumers c
                     JOIN containers k ON k.id = c.container_id WHERE k.project_id = $1)"
        }
        // Nothing creates certificate authorities.
        QuotaResource::Cas => return None,
    })
}

/// Barbican's `QuotaReached` message (its log text; the API answers 403
/// with "Creation not allowed because a quota has been reached").
pub(crate) fn quota_reached(project: &ProjectId, resource: QuotaResource, limit: i64) -> Error {
    Error::new(
        ErrorKind::QuotaExceeded,
        format!("Quota reached for project {project}. Only {limit} {resource} are allowed."),
    )
}

fn quotas_from_row(r: &dyn Columns, first: usize) -> Result<ProjectQuotas> {
    Ok(ProjectQuotas {
        secrets: r.opt_int(first)?,
        orders: r.opt_int(first + 1)?,
        containers: r.opt_int(first + 2)?,
        consumers: r.opt_int(first + 3)?,
        cas: r.opt_int(first + 4)?,
    })
}

/// A project's own quotas and when they were first set.
pub(crate) fn project_quotas<D: Db + ?Sized>(
    db: &mut D,
    project: &ProjectId,
) -> Result<Option<(ProjectQuotas, Timestamp)>, D::Fail> {
    row(
        db,
        &format!("SELECT {QUOTA_COLUMNS}, created FROM project_quotas WHERE project_id = $1"),
        &args![project.as_str()],
        |r| Ok((quotas_from_row(r, 0)?, Timestamp::from_unix(r.int(5)?))),
    )
}

/// Every project with quotas of its own, oldest first (Barbican's order).
pub(crate) fn list<D: Db + ?Sized>(
    db: &mut D,
    limit: u32,
    offset: u64,
) -> Result<Page<(ProjectId, ProjectQuotas)>, D::Fail> {
    let total = count(db, "SELECT COUNT(*) FROM project_quotas", &[])?;
    let [lim, off] = page_args(limit, offset);
    let items = rows(
        db,
        &format!(
            "SELECT project_id, {QUOTA_COLUMNS} FROM project_quotas
             ORDER BY created, project_id LIMIT $1 OFFSET $2"
        ),
        &[lim, off],
        |r| Ok((parsed(r, 0, "project id")?, quotas_from_row(r, 1)?)),
    )?;
    Ok(Page {
        items,
        total,
        limit,
        offset,
    })
}

/// Every row with its creation time, in project order (for export).
pub(crate) fn all<D: Db + ?Sized>(
    db: &mut D,
) -> Result<Vec<(ProjectId, ProjectQuotas, Timestamp)>, D::Fail> {
    rows(
        db,
        &format!(
            "SELECT project_id, {QUOTA_COLUMNS}, created FROM project_quotas ORDER BY project_id"
        ),
        &[] as &[Value<'_>],
        |r| {
            Ok((
                parsed(r, 0, "project id")?,
                quotas_from_row(r, 1)?,
                Timestamp::from_unix(r.int(6)?),
            ))
        },
    )
}
