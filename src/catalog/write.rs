//! The write batch's rules and their error texts, for both catalogs: one
//! [`Write`] (or one imported [`Record`]) as statements on a [`Db`]. The
//! driver decides the transaction around them.

use crate::backend::{StoredSecret, WrappedKek};
use crate::catalog::sql::{Db, args, count, row};
use crate::catalog::{Record, Write};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{BackendId, ContentType, ProjectId, SecretId, SecretMeta, Timestamp};

/// Every table, children before parents (the order to empty them in).
pub(crate) const TABLES: [&str; 12] = [
    "container_acl_users",
    "container_consumers",
    "project_quotas",
    "secret_metadata",
    "container_secrets",
    "containers",
    "orders",
    "secret_consumers",
    "secret_acl_users",
    "secrets",
    "project_backends",
    "project_keks",
];

/// The foreign key from a secret to the project KEK that encrypted it.
pub(crate) const SECRET_KEK_FK: &str = "secrets_kek_fk";
/// The foreign key from a read grant to its secret.
const ACL_SECRET_FK: &str = "secret_acl_users_secret_fk";

pub(crate) const INSERT_SECRET: &str =
    "INSERT INTO secrets (id, project_id, name, algorithm, bit_length, mode, secret_type,
     expiration, created, updated, status, content_type, creator_id, backend_id, stored, kek_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)";

const GRANT_READ: &str = "INSERT INTO secret_acl_users (secret_id, user_id) VALUES ($1, $2)
     ON CONFLICT DO NOTHING";

pub(crate) fn not_found(id: &SecretId) -> Error {
    Error::new(ErrorKind::NotFound, format!("secret {id} not found"))
}

/// A secret written under a KEK the catalog does not hold (a running
/// instance whose KEK row was replaced, e.g. by a restore).
pub(crate) fn kek_violation<D: Db + ?Sized>(e: D::Fail) -> D::Fail {
    if D::is_foreign_key_violation(&e, SECRET_KEK_FK) {
        D::caused_by(
            Error::new(
                ErrorKind::Conflict,
                "the project KEK this secret was encrypted under is not in the catalog; retry",
            ),
            e,
        )
    } else {
        e
    }
}

/// Applies one write of a batch.
pub(crate) fn apply_write<D: Db + ?Sized>(db: &mut D, w: &Write) -> Result<(), D::Fail> {
    match w {
        Write::InsertSecret { meta, stored } => {
            insert_secret(db, meta, stored.as_ref()).map_err(|e| {
                if D::is_unique_violation(&e) {
                    Error::new(
                        ErrorKind::Conflict,
                        format!("secret {} already exists", meta.id),
                    )
                    .into()
                } else {
                    kek_violation::<D>(e)
                }
            })?;
        }
        Write::SetPayload {
            id,
            content_type,
            stored,
            updated,
        } => {
            let n = db
                .execute(
                    "UPDATE secrets SET content_type = $2, stored = $3, updated = $4, kek_id = $5
                     WHERE id = $1 AND stored IS NULL",
                    &args![
                        id.to_string(),
                        content_type.as_str(),
                        stored.bytes.as_slice(),
                        updated.unix(),
                        stored.kek_id.as_deref(),
                    ],
                )
                .map_err(kek_violation::<D>)?;
            if n == 0 {
                return Err(if secret_exists(db, id, "")? {
                    Error::new(
                        ErrorKind::Conflict,
                        "Secret already has data, cannot modify it.",
                    )
                } else {
                    not_found(id)
                }
                .into());
            }
        }
        Write::DeleteSecret { id, force } => {
            // Lock the row first: a consumer registered concurrently either
            // commits before (and is counted) or waits for this delete.
            if !secret_exists(db, id, db.dialect().lock_for_update)? {
                return Err(not_found(id).into());
            }
            if !force {
                let consumers = count(
                    db,
                    "SELECT COUNT(*) FROM secret_consumers WHERE secret_id = $1",
                    &args![id.to_string()],
                )?;
                if consumers > 0 {
                    return Err(Error::new(
                        ErrorKind::Conflict,
                        format!(
                            "Secret cannot be deleted as it has consumers ({consumers}); use force"
                        ),
                    )
                    .into());
                }
            }
            db.execute("DELETE FROM secrets WHERE id = $1", &args![id.to_string()])?;
        }
        Write::AddConsumer { id, consumer } => {
            // The secret cannot be deleted before this transaction ends.
            if !secret_exists(db, id, db.dialect().lock_key_share)? {
                return Err(not_found(id).into());
            }
            db.execute(
                "INSERT INTO secret_consumers (secret_id, service, resource_type, resource_id)
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &args![
                    id.to_string(),
                    consumer.service.as_str(),
                    consumer.resource_type.as_str(),
                    consumer.resource_id.as_str(),
                ],
            )?;
        }
        Write::RemoveConsumer { id, consumer } => {
            let n = db.execute(
                "DELETE FROM secret_consumers
                 WHERE secret_id = $1 AND service = $2 AND resource_type = $3 AND resource_id = $4",
                &args![
                    id.to_string(),
                    consumer.service.as_str(),
                    consumer.resource_type.as_str(),
                    consumer.resource_id.as_str(),
                ],
            )?;
            if n == 0 {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    "consumer not registered on this secret",
                )
                .into());
            }
        }
        Write::SetAcl { id, acl } => {
            let acl = acl.clone().unwrap_or_default();
            if set_project_access(db, id, acl.project_access)? == 0 {
                return Err(not_found(id).into());
            }
            db.execute(
                "DELETE FROM secret_acl_users WHERE secret_id = $1",
                &args![id.to_string()],
            )?;
            for user in &acl.users {
                db.execute(GRANT_READ, &args![id.to_string(), user.as_str()])?;
            }
        }
        Write::GrantRead { id, user } => {
            db.execute(GRANT_READ, &args![id.to_string(), user.as_str()])
                .map_err(|e| {
                    if D::is_foreign_key_violation(&e, ACL_SECRET_FK) {
                        not_found(id).into()
                    } else {
                        e
                    }
                })?;
        }
        Write::InsertOrder(o) => {
            db.execute(
                "INSERT INTO orders (id, project_id, creator_id, type, status, name, algorithm, bit_length, mode,
                 payload_content_type, expiration, secret_id, container_id, error_code, error_reason, created, updated)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
                &args![
                    o.id.to_string(),
                    o.project_id.as_str(),
                    o.creator_id.as_str(),
                    o.order_type.as_str(),
                    o.status.as_str(),
                    o.name.as_deref(),
                    o.algorithm.as_str(),
                    i64::from(o.bit_length),
                    o.mode.as_deref(),
                    o.payload_content_type.map(ContentType::as_str),
                    o.expiration.map(Timestamp::unix),
                    o.secret_id.map(|s| s.to_string()),
                    o.container_id.map(|s| s.to_string()),
                    o.error_code.map(i64::from),
                    o.error_reason.as_deref(),
                    o.created.unix(),
                    o.updated.unix(),
                ],
            )?;
        }
        Write::DeleteOrder(id) => delete_by_id(db, "orders", "order", id)?,
        Write::InsertContainer(k) => {
            db.execute(
                "INSERT INTO containers (id, project_id, creator_id, name, type, status, created, updated)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &args![
                    k.id.to_string(),
                    k.project_id.as_str(),
                    k.creator_id.as_str(),
                    k.name.as_deref(),
                    k.container_type.as_str(),
                    k.status.as_str(),
                    k.created.unix(),
                    k.updated.unix(),
                ],
            )?;
            for (name, secret) in &k.secret_refs {
                db.execute(
                    "INSERT INTO container_secrets (container_id, name, secret_id) VALUES ($1, $2, $3)",
                    &args![k.id.to_string(), name.as_str(), secret.to_string()],
                )?;
            }
        }
        Write::DeleteContainer(id) => delete_by_id(db, "containers", "container", id)?,
        Write::SetProjectBackend { project, backend } => match backend {
            Some(b) => {
                db.execute(
                    "INSERT INTO project_backends (project_id, backend_id) VALUES ($1, $2)
                     ON CONFLICT (project_id) DO UPDATE SET backend_id = excluded.backend_id",
                    &args![project.as_str(), b.as_str()],
                )?;
            }
            None => {
                db.execute(
                    "DELETE FROM project_backends WHERE project_id = $1",
                    &args![project.as_str()],
                )?;
            }
        },
        Write::ReplaceMetadata { id, metadata } => super::metadata::replace(db, id, metadata)?,
        Write::AddMetadatum { id, key, value } => super::metadata::add(db, id, key, value)?,
        Write::UpdateMetadatum { id, key, value } => {
            super::metadata::update(db, id, key, value)?;
        }
        Write::DeleteMetadatum { id, key } => super::metadata::delete(db, id, key)?,
        Write::MergeProjectQuotas { project, quotas } => {
            super::quotas::merge(db, project, quotas)?;
        }
        Write::DeleteProjectQuotas(project) => super::quotas::delete(db, project)?,
        Write::WithinQuota {
            project,
            resource,
            default,
            adding,
        } => super::quotas::check(db, project, *resource, *default, *adding)?,
        Write::AddContainerConsumer {
            id,
            consumer,
            created,
        } => super::container_consumers::add(db, id, consumer, *created)?,
        Write::RemoveContainerConsumer { id, consumer } => {
            super::container_consumers::remove(db, id, consumer)?;
        }
        Write::AddContainerSecret { id, name, secret } => {
            super::container_secrets::add(db, id, name, secret)?;
        }
        Write::RemoveContainerSecret { id, name, secret } => {
            super::container_secrets::remove(db, id, name, secret)?;
        }
        Write::SetContainerAcl { id, acl } => super::container_acls::set(db, id, acl.as_ref())?,
    }
    Ok(())
}

/// Deletes the row `id` of `table`; `NotFound` naming `what` when there
/// is none.
fn delete_by_id<D: Db + ?Sized>(
    db: &mut D,
    table: &str,
    what: &str,
    id: &dyn std::fmt::Display,
) -> Result<(), D::Fail> {
    let sql = format!("DELETE FROM {table} WHERE id = $1");
    if db.execute(&sql, &args![id.to_string()])? == 0 {
        return Err(Error::new(ErrorKind::NotFound, format!("{what} {id} not found")).into());
    }
    Ok(())
}

fn insert_secret<D: Db + ?Sized>(
    db: &mut D,
    meta: &SecretMeta,
    stored: Option<&StoredSecret>,
) -> Result<u64, D::Fail> {
    db.execute(
        INSERT_SECRET,
        &args![
            meta.id.to_string(),
            meta.project_id.as_str(),
            meta.name.as_deref(),
            meta.algorithm.as_deref(),
            meta.bit_length.map(i64::from),
            meta.mode.as_deref(),
            meta.secret_type.as_str(),
            meta.expiration.map(Timestamp::unix),
            meta.created.unix(),
            meta.updated.unix(),
            meta.status.as_str(),
            meta.content_type.map(ContentType::as_str),
            meta.creator_id.as_str(),
            meta.backend_id.as_str(),
            stored.map(|s| s.bytes.as_slice()),
            stored.and_then(|s| s.kek_id.as_deref()),
        ],
    )
}

fn set_project_access<D: Db + ?Sized>(
    db: &mut D,
    id: &SecretId,
    project_access: bool,
) -> Result<u64, D::Fail> {
    db.execute(
        "UPDATE secrets SET read_project_access = $2 WHERE id = $1",
        &args![id.to_string(), project_access],
    )
}

/// Whether the secret exists; `lock` is a [`Dialect`](super::sql::Dialect)
/// row lock to take on it.
pub(crate) fn secret_exists<D: Db + ?Sized>(
    db: &mut D,
    id: &SecretId,
    lock: &str,
) -> Result<bool, D::Fail> {
    let sql = format!("SELECT 1 FROM secrets WHERE id = $1{lock}");
    Ok(row(db, &sql, &args![id.to_string()], |_| Ok(()))?.is_some())
}

/// Empties every table (the caller holds the transaction).
pub(crate) fn delete_everything<D: Db + ?Sized>(db: &mut D) -> Result<(), D::Fail> {
    for table in TABLES {
        db.execute(&format!("DELETE FROM {table}"), &[])?;
    }
    Ok(())
}

/// Writes one row of another catalog's export.
pub(crate) fn insert_record<D: Db + ?Sized>(db: &mut D, row: Record) -> Result<(), D::Fail> {
    match row {
        Record::ProjectKek {
            backend,
            project,
            kek,
            created,
        } => {
            insert_kek(db, &backend, &project, &kek, created, "")?;
            Ok(())
        }
        Record::ProjectBackend { project, backend } => apply_write(
            db,
            &Write::SetProjectBackend {
                project,
                backend: Some(backend),
            },
        ),
        Record::Secret {
            meta,
            stored,
            project_access,
        } => {
            let id = meta.id;
            apply_write(db, &Write::InsertSecret { meta, stored })?;
            if !project_access {
                set_project_access(db, &id, false)?;
            }
            Ok(())
        }
        Record::AclUser { secret, user } => apply_write(db, &Write::GrantRead { id: secret, user }),
        Record::Consumer { secret, consumer } => apply_write(
            db,
            &Write::AddConsumer {
                id: secret,
                consumer,
            },
        ),
        Record::Order(o) => apply_write(db, &Write::InsertOrder(o)),
        Record::Container(k) => apply_write(db, &Write::InsertContainer(k)),
        Record::Metadatum { secret, key, value } => {
            super::metadata::insert(db, &secret, &key, &value)?;
            Ok(())
        }
        Record::ProjectQuotas {
            project,
            quotas,
            created,
        } => super::quotas::insert(db, &project, &quotas, created),
        Record::ContainerConsumer {
            container,
            consumer,
            created,
        } => super::container_consumers::add(db, &container, &consumer, created),
        Record::ContainerAcl { container, acl } => {
            super::container_acls::set(db, &container, Some(&acl))
        }
    }
}

/// Inserts a project KEK row; `on_conflict` follows `VALUES (…)`.
pub(crate) fn insert_kek<D: Db + ?Sized>(
    db: &mut D,
    backend: &BackendId,
    project: &ProjectId,
    kek: &WrappedKek,
    created: Timestamp,
    on_conflict: &str,
) -> Result<u64, D::Fail> {
    let sql = format!(
        "INSERT INTO project_keks (backend_id, project_id, kek_id, master_fingerprint, wrapped, created)
         VALUES ($1, $2, $3, $4, $5, $6){on_conflict}"
    );
    db.execute(
        &sql,
        &args![
            backend.as_str(),
            project.as_str(),
            kek.kek_id.as_str(),
            kek.master_fingerprint.as_str(),
            kek.wrapped.as_slice(),
            created.unix(),
        ],
    )
}

/// Stores `kek` as the project's KEK unless another was stored first;
/// either way, the one the catalog holds. The `(backend, project)` primary
/// key decides a race: the loser's insert does nothing and it reads the
/// winner's back.
pub(crate) fn insert_project_kek<D: Db + ?Sized>(
    db: &mut D,
    backend: &BackendId,
    project: &ProjectId,
    kek: &WrappedKek,
) -> Result<WrappedKek, D::Fail> {
    let race = db.dialect().kek_race;
    insert_kek(db, backend, project, kek, Timestamp::now(), race)?;
    super::read::project_kek(db, backend, project)?.ok_or_else(|| {
        Error::new(
            ErrorKind::Storage,
            format!("the project KEK of {project} vanished as it was stored"),
        )
        .into()
    })
}

/// Rewraps project KEKs in place; `Conflict` (the caller rolls back) when
/// one of them changed since it was read.
pub(crate) fn replace_project_keks<D: Db + ?Sized>(
    db: &mut D,
    backend: &BackendId,
    keks: &[(ProjectId, WrappedKek)],
) -> Result<(), D::Fail> {
    for (project, kek) in keks {
        let n = db.execute(
            "UPDATE project_keks SET master_fingerprint = $4, wrapped = $5
             WHERE backend_id = $1 AND project_id = $2 AND kek_id = $3",
            &args![
                backend.as_str(),
                project.as_str(),
                kek.kek_id.as_str(),
                kek.master_fingerprint.as_str(),
                kek.wrapped.as_slice(),
            ],
        )?;
        if n != 1 {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!("project KEK of {project} changed during rotation; nothing was rewrapped"),
            )
            .into());
        }
    }
    Ok(())
}

/// Deletes every secret that expired before `now`; how many.
pub(crate) fn purge_expired<D: Db + ?Sized>(db: &mut D, now: Timestamp) -> Result<u64, D::Fail> {
    db.execute(
        "DELETE FROM secrets WHERE expiration IS NOT NULL AND expiration <= $1",
        &args![now.unix()],
    )
}

/// Runs `batch` in order, stopping at the first write that fails.
pub(crate) fn apply_batch<D: Db + ?Sized>(db: &mut D, batch: &[Write]) -> Result<(), D::Fail> {
    batch.iter().try_for_each(|w| apply_write(db, w))
}

/// How the catalogs apply a bulk set ([`Catalog::apply_each`]): first all
/// batches as one all-or-nothing job, which is the common case and needs
/// no savepoint per batch (SQLite copies every page a savepoint first
/// touches; PostgreSQL slows every snapshot once a transaction holds more
/// than 64 subtransactions). Only when that job fails are the batches run
/// again with `one_by_one`, to learn which of them failed.
///
/// [`Catalog::apply_each`]: super::Catalog::apply_each
pub(crate) fn apply_each_at_once_first(
    batches: Vec<Vec<Write>>,
    applied_at_once: impl FnOnce(Vec<Write>) -> bool,
    one_by_one: impl FnOnce(Vec<Vec<Write>>) -> Vec<Result<()>>,
) -> Vec<Result<()>> {
    if batches.len() > 1 {
        let all: Vec<Write> = batches.iter().flatten().cloned().collect();
        if applied_at_once(all) {
            return batches.iter().map(|_| Ok(())).collect();
        }
    }
    one_by_one(batches)
}
