//! Master-KEK rollout across instances sharing one catalog, for both
//! catalogs: which master KEK new project KEKs of a SimpleCrypto backend are
//! wrapped under (`master_kek_rollout`), and which instances are running
//! with which keys (`kek_instances`). The driver decides the transaction;
//! the rules that make rotation safe are here:
//!
//! - a new project KEK is inserted only while the master KEK that wrapped
//!   it is still the rollout's active one, checked under a shared lock on
//!   the rollout row in the insert's own transaction;
//! - a rotation takes that row exclusively (so it waits for inserts in
//!   flight, and inserts after it wait for it and then see the new key),
//!   refuses while a live instance does not know the new key, and rewraps
//!   every project KEK of the backend before it commits.

use crate::backend::{KekInsert, KekInstance, RewrapFn, WrappedKek};
use crate::catalog::rows::{KEK_COLUMNS, corrupt, kek_from_row, parsed};
use crate::catalog::sql::{Columns, Db, args, count, row, rows};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{BackendId, ProjectId, Timestamp};

const INSTANCE_COLUMNS: &str =
    "instance_id, backend_id, host, pid, known_fingerprints, active_fingerprint, heartbeat";

fn instance_from_row(r: &dyn Columns) -> Result<KekInstance> {
    Ok(KekInstance {
        instance_id: r.text(0)?,
        backend: parsed(r, 1, "backend id")?,
        host: r.text(2)?,
        pid: u32::try_from(r.int(3)?).map_err(|_| corrupt("instance pid"))?,
        known: r.text(4)?.split_whitespace().map(str::to_owned).collect(),
        configured_active: r.text(5)?,
        heartbeat: Timestamp::from_unix(r.int(6)?),
    })
}

/// The rollout's active master-KEK fingerprint of `backend`, if recorded;
/// `lock` follows the `SELECT` (a dialect lock clause, or nothing).
pub(crate) fn active<D: Db + ?Sized>(
    db: &mut D,
    backend: &BackendId,
    lock: &str,
) -> Result<Option<String>, D::Fail> {
    row(
        db,
        &format!("SELECT active_fingerprint FROM master_kek_rollout WHERE backend_id = $1{lock}"),
        &args![backend.as_str()],
        |r| r.text(0),
    )
}

/// Records `fingerprint` as the rollout's active key of `backend` unless
/// one is recorded; either way, the one recorded.
pub(crate) fn propose<D: Db + ?Sized>(
    db: &mut D,
    backend: &BackendId,
    fingerprint: &str,
) -> Result<String, D::Fail> {
    db.execute(
        "INSERT INTO master_kek_rollout (backend_id, active_fingerprint, updated)
         VALUES ($1, $2, $3) ON CONFLICT (backend_id) DO NOTHING",
        &args![backend.as_str(), fingerprint, Timestamp::now().unix()],
    )?;
    Ok(active(db, backend, "")?.unwrap_or_else(|| fingerprint.to_owned()))
}

/// Inserts `kek` as the project's KEK (unless it has one) only while its
/// master KEK is the rollout's active one; the row's shared lock holds off
/// a rotation until this transaction ends.
pub(crate) fn insert_project_kek_if_active<D: Db + ?Sized>(
    db: &mut D,
    backend: &BackendId,
    project: &ProjectId,
    kek: &WrappedKek,
) -> Result<KekInsert, D::Fail> {
    let lock = db.dialect().lock_key_share;
    let current = match active(db, backend, lock)? {
        Some(current) => current,
        None => {
            propose(db, backend, &kek.master_fingerprint)?;
            active(db, backend, lock)?.unwrap_or_default()
        }
    };
    if current != kek.master_fingerprint {
        return Ok(KekInsert::ActiveChanged(current));
    }
    Ok(KekInsert::Stored(super::write::insert_project_kek(
        db, backend, project, kek,
    )?))
}

/// Makes `new_active` the rollout's active key of `backend` and rewraps
/// every project KEK of it under that key with `rewrap`, in the caller's
/// one transaction; `Conflict` (nothing changed) while an instance that
/// heartbeat since `live_since` does not know `new_active`. How many
/// project KEKs the backend has.
pub(crate) fn rotate<D: Db + ?Sized>(
    db: &mut D,
    backend: &BackendId,
    new_active: &str,
    live_since: Timestamp,
    rewrap: &mut RewrapFn<'_>,
) -> Result<usize, D::Fail> {
    propose(db, backend, new_active)?;
    // Exclusive: waits for inserts holding the shared lock, and makes the
    // ones after it wait until the new key is in.
    let lock = db.dialect().lock_for_update;
    active(db, backend, lock)?;
    let behind: Vec<KekInstance> = live(db, backend, live_since)?
        .into_iter()
        .filter(|i| !i.known.iter().any(|k| k == new_active))
        .collect();
    if !behind.is_empty() {
        return Err(Error::new(
            ErrorKind::Conflict,
            format!(
                "master KEK {new_active} of backend {backend} is not yet known to {}; \
                 nothing was rotated. Add it to each one's staged_master_keks (the line \
                 `keywarden kek stage` wrote), reload or restart it, check `keywarden kek status`, \
                 then rotate again",
                describe(&behind)
            ),
        )
        .into());
    }
    db.execute(
        "UPDATE master_kek_rollout SET active_fingerprint = $2, updated = $3 WHERE backend_id = $1",
        &args![backend.as_str(), new_active, Timestamp::now().unix()],
    )?;
    // Read after the lock: under READ COMMITTED a fresh snapshot, holding
    // every KEK inserted before it.
    let all: Vec<(ProjectId, WrappedKek)> = rows(
        db,
        &format!(
            "SELECT {KEK_COLUMNS}, project_id FROM project_keks
             WHERE backend_id = $1 ORDER BY project_id"
        ),
        &args![backend.as_str()],
        |r| Ok((parsed(r, 3, "project id")?, kek_from_row(r)?)),
    )?;
    for (project, old) in &all {
        if old.master_fingerprint == new_active {
            continue;
        }
        let new = rewrap(project, old)?;
        let n = db.execute(
            "UPDATE project_keks SET master_fingerprint = $4, wrapped = $5
             WHERE backend_id = $1 AND project_id = $2 AND kek_id = $3 AND master_fingerprint = $6",
            &args![
                backend.as_str(),
                project.as_str(),
                new.kek_id.as_str(),
                new.master_fingerprint.as_str(),
                new.wrapped.as_slice(),
                old.master_fingerprint.as_str(),
            ],
        )?;
        if n != 1 || new.master_fingerprint != new_active {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!("project KEK of {project} changed during rotation; nothing was rewrapped"),
            )
            .into());
        }
    }
    let left = count(
        db,
        "SELECT COUNT(*) FROM project_keks WHERE backend_id = $1 AND master_fingerprint <> $2",
        &args![backend.as_str(), new_active],
    )?;
    if left > 0 {
        return Err(Error::new(
            ErrorKind::Conflict,
            format!("{left} project KEKs of backend {backend} appeared during rotation; nothing was rewrapped, retry"),
        )
        .into());
    }
    Ok(all.len())
}

/// How many project KEKs of `backend` are wrapped by another master KEK
/// than `fingerprint`.
pub(crate) fn wrapped_by_others<D: Db + ?Sized>(
    db: &mut D,
    backend: &BackendId,
    fingerprint: &str,
) -> Result<u64, D::Fail> {
    count(
        db,
        "SELECT COUNT(*) FROM project_keks WHERE backend_id = $1 AND master_fingerprint <> $2",
        &args![backend.as_str(), fingerprint],
    )
}

/// Records (or refreshes) `instance`, and forgets instances silent since
/// `forget_before`.
pub(crate) fn heartbeat<D: Db + ?Sized>(
    db: &mut D,
    instance: &KekInstance,
    forget_before: Timestamp,
) -> Result<(), D::Fail> {
    db.execute(
        "DELETE FROM kek_instances WHERE heartbeat < $1",
        &args![forget_before.unix()],
    )?;
    db.execute(
        &format!(
            "INSERT INTO kek_instances ({INSTANCE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (instance_id) DO UPDATE SET backend_id = excluded.backend_id,
               host = excluded.host, pid = excluded.pid,
               known_fingerprints = excluded.known_fingerprints,
               active_fingerprint = excluded.active_fingerprint, heartbeat = excluded.heartbeat"
        ),
        &args![
            instance.instance_id.as_str(),
            instance.backend.as_str(),
            instance.host.as_str(),
            i64::from(instance.pid),
            instance.known.join(" "),
            instance.configured_active.as_str(),
            instance.heartbeat.unix(),
        ],
    )?;
    Ok(())
}

pub(crate) fn remove<D: Db + ?Sized>(db: &mut D, instance_id: &str) -> Result<(), D::Fail> {
    db.execute(
        "DELETE FROM kek_instances WHERE instance_id = $1",
        &args![instance_id],
    )?;
    Ok(())
}

/// Instances of `backend` that heartbeat since `since`, by host and pid.
pub(crate) fn live<D: Db + ?Sized>(
    db: &mut D,
    backend: &BackendId,
    since: Timestamp,
) -> Result<Vec<KekInstance>, D::Fail> {
    rows(
        db,
        &format!(
            "SELECT {INSTANCE_COLUMNS} FROM kek_instances
             WHERE backend_id = $1 AND heartbeat >= $2 ORDER BY host, pid, instance_id"
        ),
        &args![backend.as_str(), since.unix()],
        instance_from_row,
    )
}

/// "instance abc on host h (pid 7), …", for errors.
pub(crate) fn describe(instances: &[KekInstance]) -> String {
    instances
        .iter()
        .map(|i| format!("instance on host {} (pid {})", i.host, i.pid))
        .collect::<Vec<_>>()
        .join(", ")
}
