//! The SQLite schema: forward migrations (`PRAGMA user_version` records
//! how many have run) and the settings every connection opens with.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::SqliteOptions;
use super::error::Fail;
use crate::error::{Error, ErrorKind};

/// Forward migrations, version N in file 000N; the PostgreSQL catalog has
/// the same versions with the same tables, columns and indexes.
pub(crate) const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/sqlite/0001_initial.sql"),
    include_str!("../migrations/sqlite/0002_secrets_by_kek.sql"),
    include_str!("../migrations/sqlite/0003_metadata_quotas_container_consumers.sql"),
    include_str!("../migrations/sqlite/0004_container_acls.sql"),
    include_str!("../migrations/sqlite/0005_master_kek_rollout.sql"),
];

/// The write connection's page cache: 16 MiB holds a bulk transaction's
/// dirty pages (the fixed-key migration writes 50,000 secrets at a time).
pub(crate) const WRITER_CACHE: &str = "PRAGMA cache_size=-16384;";

pub(crate) fn connect(
    path: &Path,
    options: &SqliteOptions,
    create: bool,
) -> Result<Connection, Fail> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags).map_err(|e| {
        Error::new(
            ErrorKind::Unavailable,
            format!("cannot open SQLite catalog {}", path.display()),
        )
        .with_source(e)
    })?;
    conn.busy_timeout(options.busy_timeout)?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::new(
            ErrorKind::Storage,
            format!("SQLite catalog refused WAL mode (got {mode})"),
        )
        .into());
    }
    // temp_store=MEMORY keeps statement journals (copies of pages a
    // savepoint touches) off disk: faster, and no temp files of catalog
    // pages. Readers keep SQLite's default 2 MiB page cache (there is one
    // per concurrent read, and the OS caches the file for all of them);
    // the writer's is larger, see `WRITER_CACHE`.
    conn.execute_batch(
        "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA secure_delete=ON;
         PRAGMA temp_store=MEMORY; PRAGMA cache_size=-2048;",
    )?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

pub(crate) fn migrate(conn: &mut Connection) -> Result<(), Fail> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: u32 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let known = MIGRATIONS.len() as u32;
    if version > known {
        return Err(Error::new(
            ErrorKind::Config,
            format!(
                "catalog schema version {version} is newer than this keywarden understands ({known}); upgrade keywarden"
            ),
        )
        .into());
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as u32)?;
    }
    tx.commit()?;
    Ok(())
}
