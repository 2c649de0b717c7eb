//! Writes on the PostgreSQL catalog: the shared statements on a pooled
//! connection (this catalog's [`Db`]), the transaction that runs them
//! (serializable, retried), and the bulk paths only PostgreSQL has.

use std::collections::HashMap;
use std::time::Duration;

use ::postgres::types::ToSql;
use ::postgres::{Client, GenericClient, IsolationLevel, Row, Statement, Transaction};

use super::PostgresCatalog;
use super::error::{
    Fail, constraint_violation, is_connection_error, is_serialization_failure, pg_error,
};
use crate::backend::StoredSecret;
use crate::catalog::Write;
use crate::catalog::sql::{Columns, Db, Dialect, Value};
use crate::catalog::write::{apply_batch, kek_violation};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{SecretMeta, Timestamp};
use ::postgres::error::SqlState;

/// Rows a write depends on are locked (`FOR UPDATE`, `FOR KEY SHARE`);
/// NULLs sort as SQLite sorts them; `ILIKE` ignores case as SQLite's
/// `LIKE` does, over `C`-collated columns.
pub(crate) static DIALECT: Dialect = Dialect {
    like: "ILIKE",
    asc: " ASC NULLS FIRST",
    desc: " DESC NULLS LAST",
    lock_for_update: " FOR UPDATE",
    lock_key_share: " FOR KEY SHARE",
    kek_race: " ON CONFLICT (backend_id, project_id) DO NOTHING",
};

impl PostgresCatalog {
    /// One transaction, a savepoint per batch: a batch that fails is
    /// rolled back alone. A serialization failure aborts the whole
    /// transaction, and then every batch runs again.
    pub(crate) fn apply_each_by_savepoint(&self, batches: Vec<Vec<Write>>) -> Vec<Result<()>> {
        let out = self.transact(IsolationLevel::Serializable, |db| {
            let mut outcomes = Vec::with_capacity(batches.len());
            for batch in &batches {
                db.batch("SAVEPOINT batch")?;
                match apply_batch(db, batch) {
                    Ok(()) => {
                        db.batch("RELEASE SAVEPOINT batch")?;
                        outcomes.push(Ok(()));
                    }
                    Err(Fail::Pg(e)) if is_serialization_failure(&e) || is_connection_error(&e) => {
                        return Err(Fail::Pg(e));
                    }
                    Err(e) => {
                        db.batch("ROLLBACK TO SAVEPOINT batch; RELEASE SAVEPOINT batch")?;
                        outcomes.push(Err(e.into_error()));
                    }
                }
            }
            Ok(outcomes)
        });
        match out {
            Ok(outcomes) => outcomes,
            Err(e) => {
                let kind = e.kind();
                let shared = std::sync::Arc::new(e);
                batches
                    .iter()
                    .map(|_| {
                        Err(Error::new(kind, "the catalog could not commit this write")
                            .with_source(shared.clone()))
                    })
                    .collect()
            }
        }
    }

    /// Runs `body` in one transaction and commits it. Serialization
    /// failures and deadlocks run it again from the start; so does a broken
    /// connection, as long as `COMMIT` was not sent (the server rolled the
    /// transaction back). Broken during `COMMIT`, the outcome is unknown and
    /// the call says so (`Unavailable`).
    pub(crate) fn transact<T>(
        &self,
        isolation: IsolationLevel,
        mut body: impl FnMut(&mut Session<'_, Transaction<'_>>) -> Result<T, Fail>,
    ) -> Result<T> {
        let mut attempt = 0u32;
        let mut reconnects = 0;
        loop {
            attempt += 1;
            let mut conn = self.pool.checkout()?;
            let (out, committing) = {
                let c = &mut *conn;
                run_transaction(&mut c.client, &mut c.cache, isolation, &mut body)
            };
            let e = match out {
                Ok(v) => return Ok(v),
                Err(Fail::Kw(e)) => return Err(e),
                Err(Fail::Pg(e)) => e,
            };
            if is_connection_error(&e) {
                conn.discard();
                self.pool.clear_idle();
                if committing {
                    return Err(Error::new(
                        ErrorKind::Unavailable,
                        "lost the PostgreSQL catalog while committing; the write may or may not have been applied",
                    )
                    .with_source(e));
                }
                reconnects += 1;
                if reconnects < 2 {
                    continue;
                }
                return Err(pg_error(e));
            }
            if is_serialization_failure(&e) {
                if attempt <= self.options.serialization_retries {
                    drop(conn);
                    backoff(attempt);
                    continue;
                }
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    format!(
                        "the catalog stayed contended: {attempt} tries lost a serialization race; retry"
                    ),
                )
                .with_source(e));
            }
            return Err(pg_error(e));
        }
    }
}

/// A client (or transaction) with the connection's statement cache.
pub(crate) struct Session<'a, C> {
    pub(crate) client: &'a mut C,
    pub(crate) cache: &'a mut HashMap<String, Statement>,
}

type Params<'p> = [&'p (dyn ToSql + Sync)];

impl<C: GenericClient> Session<'_, C> {
    fn prepare(&mut self, sql: &str) -> Result<Statement, ::postgres::Error> {
        if let Some(s) = self.cache.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        if self.cache.len() >= 256 {
            self.cache.clear();
        }
        self.cache.insert(sql.to_owned(), s.clone());
        Ok(s)
    }

    pub(crate) fn exec(
        &mut self,
        sql: &str,
        params: &Params<'_>,
    ) -> Result<u64, ::postgres::Error> {
        let stmt = self.prepare(sql)?;
        self.client.execute(&stmt, params)
    }

    pub(crate) fn query_one(
        &mut self,
        sql: &str,
        params: &Params<'_>,
    ) -> Result<Row, ::postgres::Error> {
        let stmt = self.prepare(sql)?;
        self.client.query_one(&stmt, params)
    }

    pub(crate) fn batch(&mut self, sql: &str) -> Result<(), ::postgres::Error> {
        self.client.batch_execute(sql)
    }
}

impl<C: GenericClient> Db for Session<'_, C> {
    type Fail = Fail;

    fn dialect(&self) -> &'static Dialect {
        &DIALECT
    }

    fn execute(&mut self, sql: &str, args: &[Value<'_>]) -> Result<u64, Fail> {
        let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(as_sql).collect();
        Ok(self.exec(sql, &params)?)
    }

    fn query(
        &mut self,
        sql: &str,
        args: &[Value<'_>],
        each: &mut dyn FnMut(&dyn Columns) -> Result<()>,
    ) -> Result<(), Fail> {
        let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(as_sql).collect();
        let stmt = self.prepare(sql)?;
        for r in self.client.query(&stmt, &params)? {
            each(&r)?;
        }
        Ok(())
    }

    fn is_unique_violation(e: &Fail) -> bool {
        matches!(e, Fail::Pg(e) if constraint_violation(e, &SqlState::UNIQUE_VIOLATION).is_some())
    }

    fn is_foreign_key_violation(e: &Fail, constraint: &str) -> bool {
        matches!(
            e,
            Fail::Pg(e) if constraint_violation(e, &SqlState::FOREIGN_KEY_VIOLATION).as_deref() == Some(constraint)
        )
    }

    fn caused_by(error: Error, e: Fail) -> Fail {
        Fail::Kw(match e {
            Fail::Pg(e) => error.with_source(e),
            Fail::Kw(e) => error.with_source(e),
        })
    }
}

fn as_sql<'v>(v: &'v Value<'_>) -> &'v (dyn ToSql + Sync) {
    match v {
        Value::Int(i) => i,
        Value::Bool(b) => b,
        Value::Text(s) => s,
        Value::Bytes(b) => b,
    }
}

impl Columns for Row {
    fn opt_text(&self, i: usize) -> Result<Option<String>> {
        self.try_get(i).map_err(pg_error)
    }

    fn opt_int(&self, i: usize) -> Result<Option<i64>> {
        self.try_get(i).map_err(pg_error)
    }

    fn opt_bytes(&self, i: usize) -> Result<Option<Vec<u8>>> {
        self.try_get(i).map_err(pg_error)
    }

    fn bool(&self, i: usize) -> Result<bool> {
        self.try_get(i).map_err(pg_error)
    }
}

/// One try at a transaction; says whether the failure came at `COMMIT`.
fn run_transaction<T>(
    client: &mut Client,
    cache: &mut HashMap<String, Statement>,
    isolation: IsolationLevel,
    body: &mut impl FnMut(&mut Session<'_, Transaction<'_>>) -> Result<T, Fail>,
) -> (Result<T, Fail>, bool) {
    let mut tx = match client
        .build_transaction()
        .isolation_level(isolation)
        .start()
    {
        Ok(tx) => tx,
        Err(e) => return (Err(e.into()), false),
    };
    let out = body(&mut Session {
        client: &mut tx,
        cache,
    });
    match out {
        // Dropping `tx` rolls back.
        Err(e) => (Err(e), false),
        Ok(v) => match tx.commit() {
            Ok(()) => (Ok(v), false),
            Err(e) => (Err(e.into()), true),
        },
    }
}

fn backoff(attempt: u32) {
    // Exponential with jitter from the clock, capped at ~100 ms.
    let base = 1u64 << attempt.min(7);
    let jitter = u64::from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0),
    ) % (base * 1000);
    std::thread::sleep(Duration::from_micros(base * 500 + jitter));
}

/// New secrets and read grants on them, the shape of a bulk migration
/// batch, written with one statement per table instead of a round trip per
/// row. Returns `false` (and writes nothing) for any other shape: a write of
/// another kind, or a grant on a secret not inserted before it in `writes`
/// (whose order the two statements would not keep).
pub(crate) fn insert_in_bulk(
    db: &mut Session<'_, Transaction<'_>>,
    writes: &[Write],
) -> Result<bool, Fail> {
    let mut inserted = std::collections::HashSet::new();
    for w in writes {
        let fits = match w {
            Write::InsertSecret { meta, .. } => inserted.insert(meta.id),
            Write::GrantRead { id, .. } => inserted.contains(id),
            _ => false,
        };
        if !fits {
            return Ok(false);
        }
    }
    let metas: Vec<(&SecretMeta, Option<&StoredSecret>)> = writes
        .iter()
        .filter_map(|w| match w {
            Write::InsertSecret { meta, stored } => Some((meta, stored.as_ref())),
            _ => None,
        })
        .collect();
    let column = |f: &dyn Fn(&SecretMeta) -> Option<String>| -> Vec<Option<String>> {
        metas.iter().map(|(m, _)| f(m)).collect()
    };
    let number = |f: &dyn Fn(&SecretMeta) -> Option<i64>| -> Vec<Option<i64>> {
        metas.iter().map(|(m, _)| f(m)).collect()
    };
    let ids = column(&|m| Some(m.id.to_string()));
    let projects = column(&|m| Some(m.project_id.as_str().to_owned()));
    let names = column(&|m| m.name.clone());
    let algorithms = column(&|m| m.algorithm.clone());
    let bit_lengths = number(&|m| m.bit_length.map(i64::from));
    let modes = column(&|m| m.mode.clone());
    let types = column(&|m| Some(m.secret_type.as_str().to_owned()));
    let expirations = number(&|m| m.expiration.map(Timestamp::unix));
    let created = number(&|m| Some(m.created.unix()));
    let updated = number(&|m| Some(m.updated.unix()));
    let statuses = column(&|m| Some(m.status.as_str().to_owned()));
    let content_types = column(&|m| m.content_type.map(|c| c.as_str().to_owned()));
    let creators = column(&|m| Some(m.creator_id.as_str().to_owned()));
    let backends = column(&|m| Some(m.backend_id.as_str().to_owned()));
    let stored: Vec<Option<&[u8]>> = metas
        .iter()
        .map(|(_, s)| s.map(|s| s.bytes.as_slice()))
        .collect();
    let kek_ids: Vec<Option<&str>> = metas
        .iter()
        .map(|(_, s)| s.and_then(|s| s.kek_id.as_deref()))
        .collect();
    db.exec(
        "INSERT INTO secrets (id, project_id, name, algorithm, bit_length, mode, secret_type,
         expiration, created, updated, status, content_type, creator_id, backend_id, stored, kek_id)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[],
           $6::text[], $7::text[], $8::bigint[], $9::bigint[], $10::bigint[], $11::text[],
           $12::text[], $13::text[], $14::text[], $15::bytea[], $16::text[])",
        &[
            &ids,
            &projects,
            &names,
            &algorithms,
            &bit_lengths,
            &modes,
            &types,
            &expirations,
            &created,
            &updated,
            &statuses,
            &content_types,
            &creators,
            &backends,
            &stored,
            &kek_ids,
        ],
    )
    .map_err(|e| {
        if constraint_violation(&e, &SqlState::UNIQUE_VIOLATION).is_some() {
            Fail::Kw(Error::new(
                ErrorKind::Conflict,
                "a secret of this bulk write already exists",
            ))
        } else {
            kek_violation::<Session<'_, Transaction<'_>>>(Fail::Pg(e))
        }
    })?;
    let (grant_ids, grant_users): (Vec<String>, Vec<&str>) = writes
        .iter()
        .filter_map(|w| match w {
            Write::GrantRead { id, user } => Some((id.to_string(), user.as_str())),
            _ => None,
        })
        .unzip();
    if !grant_ids.is_empty() {
        db.exec(
            "INSERT INTO secret_acl_users (secret_id, user_id)
             SELECT * FROM UNNEST($1::text[], $2::text[]) ON CONFLICT DO NOTHING",
            &[&grant_ids, &grant_users],
        )?;
    }
    Ok(true)
}
