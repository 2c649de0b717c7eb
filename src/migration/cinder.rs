//! cinder's own tables, read from an SQLite copy of a cinder database:
//! `volumes`, `snapshots` and `backups` with cinder's column names. Rows
//! with `deleted = 1` are left alone; other columns are ignored.

use std::collections::HashMap;
use std::path::Path;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::error::{Error, ErrorKind, Result};
use crate::migration::{ALL_ZEROS, EncryptedResources, HostFilter, Item, Remaining, Service};
use crate::model::SecretId;

/// A cinder database in an SQLite file.
pub struct CinderSqlite {
    conn: Connection,
    /// Whether `backups` has a `volume_id` column (to spot old backups whose
    /// key id lives only in their metadata).
    backups_have_volume_id: bool,
    /// Snapshots on the all-zeros id, by volume: read in one pass at the
    /// first volume assignment of a run. cinder's schema may have no index
    /// on `snapshots.volume_id`, so looking them up per batch would scan the
    /// table once per batch (quadratic in a million-volume run).
    zeroed_snapshots: Option<HashMap<String, Vec<String>>>,
}

impl CinderSqlite {
    /// Opens the database; it must have cinder's three tables.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if !path.is_file() {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("cinder database {} does not exist", path.display()),
            ));
        }
        let conn = Connection::open(path).map_err(cinder_error)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(cinder_error)?;
        for (table, columns) in [
            (
                "volumes",
                &[
                    "id",
                    "host",
                    "cluster_name",
                    "user_id",
                    "project_id",
                    "encryption_key_id",
                    "deleted",
                ][..],
            ),
            (
                "snapshots",
                &["id", "volume_id", "encryption_key_id", "deleted"][..],
            ),
            (
                "backups",
                &[
                    "id",
                    "host",
                    "user_id",
                    "project_id",
                    "encryption_key_id",
                    "deleted",
                ][..],
            ),
        ] {
            let present = table_columns(&conn, table)?;
            if let Some(missing) = columns.iter().find(|c| !present.iter().any(|p| p == *c)) {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "{} is not a cinder database: table {table} lacks column {missing}",
                        path.display()
                    ),
                ));
            }
        }
        let backups_have_volume_id = table_columns(&conn, "backups")?
            .iter()
            .any(|c| c == "volume_id");
        Ok(CinderSqlite {
            conn,
            backups_have_volume_id,
            zeroed_snapshots: None,
        })
    }
}

impl CinderSqlite {
    /// Creates a database with cinder's three tables (the columns the
    /// migration reads, plus a few cinder has beside them), for examples,
    /// tests and benchmarks. A deployment points at a copy of its real
    /// cinder database instead.
    pub fn create_minimal(path: impl AsRef<Path>) -> Result<Self> {
        let conn = Connection::open(path.as_ref()).map_err(cinder_error)?;
        conn.execute_batch(
            "CREATE TABLE volumes (id VARCHAR(36) PRIMARY KEY NOT NULL, host VARCHAR(255),
                 cluster_name VARCHAR(255), user_id VARCHAR(255), project_id VARCHAR(255),
                 encryption_key_id VARCHAR(36), deleted BOOLEAN NOT NULL DEFAULT 0,
                 size INTEGER, display_name VARCHAR(255), status VARCHAR(255));
             CREATE TABLE snapshots (id VARCHAR(36) PRIMARY KEY NOT NULL, volume_id VARCHAR(36) NOT NULL,
                 encryption_key_id VARCHAR(36), deleted BOOLEAN NOT NULL DEFAULT 0,
                 user_id VARCHAR(255), project_id VARCHAR(255), status VARCHAR(255));
             CREATE TABLE backups (id VARCHAR(36) PRIMARY KEY NOT NULL, volume_id VARCHAR(36),
                 host VARCHAR(255), user_id VARCHAR(255), project_id VARCHAR(255),
                 encryption_key_id VARCHAR(36), deleted BOOLEAN NOT NULL DEFAULT 0,
                 status VARCHAR(255));",
        ).map_err(cinder_error)?;
        drop(conn);
        CinderSqlite::open(path)
    }

    /// The underlying connection (to load demo rows).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

fn table_columns(conn: &Connection, table: &str) -> Result<Vec<String>> {
    let mut stmt = conn
        .prepare(&format!("PRAGMA table_info({table})"))
        .map_err(cinder_error)?;
    let cols = stmt
        .query_map([], |r| r.get::<_, String>(1))
        .map_err(cinder_error)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(cinder_error)?;
    Ok(cols)
}

fn table(service: Service) -> &'static str {
    match service {
        Service::Volume => "volumes",
        Service::Backup => "backups",
    }
}

/// The column and value selecting this host's rows. Backups have no
/// cluster; cinder-backup selects by host.
fn host_clause(service: Service, filter: &HostFilter) -> (&'static str, &str) {
    match (service, filter) {
        (Service::Volume, HostFilter::Cluster(c)) => ("cluster_name", c),
        (_, HostFilter::Host(h)) | (Service::Backup, HostFilter::Cluster(h)) => ("host", h),
    }
}

impl EncryptedResources for CinderSqlite {
    fn has_items(&mut self, service: Service, filter: &HostFilter) -> Result<bool> {
        // A run starts here: snapshots made since an earlier run are read again.
        self.zeroed_snapshots = None;
        let (column, value) = host_clause(service, filter);
        let sql = format!(
            "SELECT 1 FROM {} WHERE deleted = 0 AND {column} = ?1 LIMIT 1",
            table(service)
        );
        Ok(self
            .conn
            .query_row(&sql, [value], |_| Ok(()))
            .optional()
            .map_err(cinder_error)?
            .is_some())
    }

    fn pending(
        &mut self,
        service: Service,
        filter: &HostFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Item>> {
        let (column, value) = host_clause(service, filter);
        // Walks the primary key once across all batches.
        let sql = format!(
            "SELECT id, user_id FROM {} WHERE id > ?1 AND deleted = 0 AND {column} = ?2
             AND encryption_key_id = ?3 ORDER BY id LIMIT ?4",
            table(service)
        );
        let mut stmt = self.conn.prepare_cached(&sql).map_err(cinder_error)?;
        let rows = stmt
            .query_map(
                params![after.unwrap_or(""), value, ALL_ZEROS, limit as i64],
                |r| {
                    Ok(Item {
                        id: r.get(0)?,
                        user_id: r.get(1)?,
                    })
                },
            )
            .map_err(cinder_error)?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(cinder_error)
    }

    fn assign(&mut self, service: Service, assignments: &[(String, SecretId)]) -> Result<usize> {
        if assignments.is_empty() {
            return Ok(0);
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(cinder_error)?;
        let mut changed = 0;
        {
            let mut item = tx.prepare_cached(&format!(
                "UPDATE {} SET encryption_key_id = ?2 WHERE id = ?1 AND deleted = 0 AND encryption_key_id = ?3",
                table(service)
            )).map_err(cinder_error)?;
            for (id, secret) in assignments {
                changed += item
                    .execute(params![id, secret.to_string(), ALL_ZEROS])
                    .map_err(cinder_error)?;
            }
        }
        if service == Service::Volume {
            let zeroed = match &mut self.zeroed_snapshots {
                Some(map) => map,
                None => self.zeroed_snapshots.insert(zeroed_snapshots(&tx)?),
            };
            let mut snap = tx
                .prepare_cached(
                    "UPDATE snapshots SET encryption_key_id = ?2
                 WHERE id = ?1 AND deleted = 0 AND encryption_key_id = ?3",
                )
                .map_err(cinder_error)?;
            for (volume, secret) in assignments {
                for id in zeroed.get(volume).into_iter().flatten() {
                    snap.execute(params![id, secret.to_string(), ALL_ZEROS])
                        .map_err(cinder_error)?;
                }
            }
        }
        tx.commit().map_err(cinder_error)?;
        if let Some(zeroed) = &mut self.zeroed_snapshots {
            for (volume, _) in assignments {
                zeroed.remove(volume);
            }
        }
        Ok(changed)
    }

    fn remaining(&mut self) -> Result<Remaining> {
        let count = |sql: &str| -> Result<u64> {
            let n: i64 = self
                .conn
                .query_row(sql, [ALL_ZEROS], |r| r.get(0))
                .map_err(cinder_error)?;
            Ok(u64::try_from(n).unwrap_or(0))
        };
        let volumes =
            count("SELECT COUNT(*) FROM volumes WHERE deleted = 0 AND encryption_key_id = ?1")?;
        let snapshots =
            count("SELECT COUNT(*) FROM snapshots WHERE deleted = 0 AND encryption_key_id = ?1")?;
        let backups =
            count("SELECT COUNT(*) FROM backups WHERE deleted = 0 AND encryption_key_id = ?1")?;
        let backups_without_key_id = if self.backups_have_volume_id {
            count(
                "SELECT COUNT(*) FROM backups b WHERE b.deleted = 0 AND b.encryption_key_id IS NULL
                 AND EXISTS (SELECT 1 FROM volumes v WHERE v.id = b.volume_id
                             AND v.encryption_key_id IS NOT NULL AND ?1 IS NOT NULL)",
            )?
        } else {
            0
        };
        Ok(Remaining {
            volumes,
            snapshots,
            backups,
            backups_without_key_id,
        })
    }
}

/// Live snapshots still on the all-zeros id, grouped by their volume.
fn zeroed_snapshots(conn: &Connection) -> Result<HashMap<String, Vec<String>>> {
    let mut stmt = conn
        .prepare("SELECT id, volume_id FROM snapshots WHERE deleted = 0 AND encryption_key_id = ?1")
        .map_err(cinder_error)?;
    let mut rows = stmt.query([ALL_ZEROS]).map_err(cinder_error)?;
    let mut by_volume: HashMap<String, Vec<String>> = HashMap::new();
    while let Some(r) = rows.next().map_err(cinder_error)? {
        by_volume
            .entry(r.get(1).map_err(cinder_error)?)
            .or_default()
            .push(r.get(0).map_err(cinder_error)?);
    }
    Ok(by_volume)
}

/// A failed call on cinder's (or nova's) own database, read and updated by
/// the migration: not the catalog's.
fn cinder_error(e: rusqlite::Error) -> Error {
    Error::new(
        crate::catalog::sqlite::error_kind(&e),
        "cinder database call failed",
    )
    .with_source(e)
}
