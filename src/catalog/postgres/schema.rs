//! The PostgreSQL schema: forward migrations, `keywarden_schema.version`
//! recording how many have run.

use ::postgres::Client;

use super::error::Fail;
use crate::error::{Error, ErrorKind};

/// Forward migrations, version N in file 000N; the SQLite catalog has the
/// same versions with the same tables, columns and indexes.
pub(crate) const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/postgres/0001_initial.sql"),
    include_str!("../migrations/postgres/0002_secrets_by_kek.sql"),
    include_str!("../migrations/postgres/0003_metadata_quotas_container_consumers.sql"),
    include_str!("../migrations/postgres/0004_container_acls.sql"),
    include_str!("../migrations/postgres/0005_master_kek_rollout.sql"),
];

pub(crate) fn migrate(client: &mut Client) -> Result<(), Fail> {
    let mut tx = client.transaction()?;
    // Two instances starting at once: one migrates, the other waits and
    // then finds the work done. Keyed by schema, so test schemas in one
    // database do not wait on each other.
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('keywarden schema ' || coalesce(current_schema(), '')))",
        &[],
    )?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS keywarden_schema (
             one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
             version BIGINT NOT NULL
         )",
    )?;
    let version: i64 = match tx.query_opt("SELECT version FROM keywarden_schema", &[])? {
        Some(r) => r.try_get(0)?,
        None => {
            tx.execute("INSERT INTO keywarden_schema (version) VALUES (0)", &[])?;
            0
        }
    };
    let known = MIGRATIONS.len() as i64;
    if version > known || version < 0 {
        return Err(Fail::Kw(Error::new(
            ErrorKind::Config,
            format!(
                "catalog schema version {version} is newer than this keywarden understands ({known}); upgrade keywarden"
            ),
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.batch_execute(sql)?;
        tx.execute(
            "UPDATE keywarden_schema SET version = $1",
            &[&(i as i64 + 1)],
        )?;
    }
    tx.commit()?;
    Ok(())
}
