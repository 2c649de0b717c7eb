//! The shared statements on a SQLite connection: the [`Db`] of this catalog.

use rusqlite::Connection;
use rusqlite::types::{ToSqlOutput, ValueRef};

use super::error::Fail;
use crate::catalog::sql::{Columns, Db, Dialect, Value};
use crate::error::Error;

/// One writer holds the whole database, so no row locks; NULLs already
/// sort first ascending and last descending; `LIKE` ignores ASCII case.
pub(crate) static DIALECT: Dialect = Dialect {
    like: "LIKE",
    asc: " ASC",
    desc: " DESC",
    lock_for_update: "",
    lock_key_share: "",
    kek_race: " ON CONFLICT DO NOTHING",
};

/// A connection (or a transaction on it) running the shared statements.
pub(crate) struct Sqlite<'c>(pub &'c Connection);

/// The shared `$N` placeholders as SQLite's `?N`: the same numbering.
fn sqlite_sql(sql: &str) -> String {
    sql.replace('$', "?")
}

impl Db for Sqlite<'_> {
    type Fail = Fail;

    fn dialect(&self) -> &'static Dialect {
        &DIALECT
    }

    fn execute(&mut self, sql: &str, args: &[Value<'_>]) -> Result<u64, Fail> {
        let n = self
            .0
            .prepare_cached(&sqlite_sql(sql))?
            .execute(rusqlite::params_from_iter(args))?;
        Ok(n as u64)
    }

    fn query(
        &mut self,
        sql: &str,
        args: &[Value<'_>],
        each: &mut dyn FnMut(&dyn Columns) -> crate::Result<()>,
    ) -> Result<(), Fail> {
        let mut stmt = self.0.prepare_cached(&sqlite_sql(sql))?;
        let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
        while let Some(r) = rows.next()? {
            each(r)?;
        }
        Ok(())
    }

    fn is_unique_violation(e: &Fail) -> bool {
        matches!(
            e.extended_code(),
            Some(
                rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                    | rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            )
        )
    }

    /// SQLite does not name the constraint that broke: any will do.
    fn is_foreign_key_violation(e: &Fail, _constraint: &str) -> bool {
        e.extended_code() == Some(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY)
    }

    fn caused_by(error: Error, e: Fail) -> Fail {
        Fail::Kw(match e {
            Fail::Sqlite(e) => error.with_source(e),
            Fail::Kw(e) => error.with_source(e),
        })
    }
}

impl rusqlite::ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Int(Some(i)) => ValueRef::Integer(*i),
            Value::Bool(b) => ValueRef::Integer(i64::from(*b)),
            Value::Text(Some(s)) => ValueRef::Text(s.as_bytes()),
            Value::Bytes(Some(b)) => ValueRef::Blob(b),
            Value::Int(None) | Value::Text(None) | Value::Bytes(None) => ValueRef::Null,
        }))
    }
}

impl Columns for rusqlite::Row<'_> {
    fn opt_text(&self, i: usize) -> crate::Result<Option<String>> {
        Ok(self.get(i).map_err(Fail::from)?)
    }

    fn opt_int(&self, i: usize) -> crate::Result<Option<i64>> {
        Ok(self.get(i).map_err(Fail::from)?)
    }

    fn opt_bytes(&self, i: usize) -> crate::Result<Option<Vec<u8>>> {
        Ok(self.get(i).map_err(Fail::from)?)
    }

    fn bool(&self, i: usize) -> crate::Result<bool> {
        Ok(self.get(i).map_err(Fail::from)?)
    }
}
