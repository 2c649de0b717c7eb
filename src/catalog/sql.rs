//! The seam between the catalog's rules and its two SQL drivers.
//!
//! Every statement and every rule is written once, in `read.rs`, `write.rs`
//! and `query.rs` of this folder, over [`Db`]: run a statement with
//! [`Value`] arguments, read rows through [`Columns`], and tell a duplicate
//! or a broken reference apart from other failures. SQLite and PostgreSQL
//! each implement [`Db`] once (their `write.rs`); what only one of them has
//! (group commit, row locks, array inserts) stays in its own folder.
//!
//! Statements are written with PostgreSQL's `$N` placeholders; the SQLite
//! driver turns them into its own `?N` (same numbering) before preparing.
//! Where the dialects really differ, [`Dialect`] says how.

use std::borrow::Cow;

use crate::error::{Error, Result};

/// One bound argument. Nulls keep their type: PostgreSQL checks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Value<'a> {
    Int(Option<i64>),
    Bool(bool),
    Text(Option<Cow<'a, str>>),
    Bytes(Option<&'a [u8]>),
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(s: &'a str) -> Self {
        Value::Text(Some(Cow::Borrowed(s)))
    }
}

impl From<String> for Value<'_> {
    fn from(s: String) -> Self {
        Value::Text(Some(Cow::Owned(s)))
    }
}

impl<'a> From<Option<&'a str>> for Value<'a> {
    fn from(s: Option<&'a str>) -> Self {
        Value::Text(s.map(Cow::Borrowed))
    }
}

impl From<Option<String>> for Value<'_> {
    fn from(s: Option<String>) -> Self {
        Value::Text(s.map(Cow::Owned))
    }
}

impl From<i64> for Value<'_> {
    fn from(i: i64) -> Self {
        Value::Int(Some(i))
    }
}

impl From<Option<i64>> for Value<'_> {
    fn from(i: Option<i64>) -> Self {
        Value::Int(i)
    }
}

impl From<bool> for Value<'_> {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl<'a> From<&'a [u8]> for Value<'a> {
    fn from(b: &'a [u8]) -> Self {
        Value::Bytes(Some(b))
    }
}

impl<'a> From<Option<&'a [u8]>> for Value<'a> {
    fn from(b: Option<&'a [u8]>) -> Self {
        Value::Bytes(b)
    }
}

/// The arguments of one statement: `args![a, b, c]`.
macro_rules! args {
    ($($v:expr),* $(,)?) => {
        [$($crate::catalog::sql::Value::from($v)),*]
    };
}
pub(crate) use args;

/// One result row, column by column (0-based). A column of another type
/// than asked is a storage error.
pub(crate) trait Columns {
    fn opt_text(&self, i: usize) -> Result<Option<String>>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>>;
    fn opt_bytes(&self, i: usize) -> Result<Option<Vec<u8>>>;
    fn bool(&self, i: usize) -> Result<bool>;

    fn text(&self, i: usize) -> Result<String> {
        self.opt_text(i)?.ok_or_else(|| null_column(i))
    }

    fn int(&self, i: usize) -> Result<i64> {
        self.opt_int(i)?.ok_or_else(|| null_column(i))
    }

    fn bytes(&self, i: usize) -> Result<Vec<u8>> {
        self.opt_bytes(i)?.ok_or_else(|| null_column(i))
    }
}

fn null_column(i: usize) -> Error {
    super::rows::corrupt(&format!("NULL in column {i}"))
}

/// How the two SQL dialects differ where one statement cannot serve both.
#[derive(Debug)]
pub(crate) struct Dialect {
    /// A `LIKE` that ignores ASCII case (SQLite's `LIKE` does; PostgreSQL
    /// needs `ILIKE` over its `C`-collated columns).
    pub like: &'static str,
    /// Sort suffixes putting NULLs first ascending and last descending
    /// (SQLite's own order, spelled out for PostgreSQL).
    pub asc: &'static str,
    pub desc: &'static str,
    /// Appended to a `SELECT` of a row the write then depends on: the
    /// row stays until the transaction ends (empty where one writer holds
    /// the whole database).
    pub lock_for_update: &'static str,
    pub lock_key_share: &'static str,
    /// Follows the `VALUES` of a project KEK insert: two instances making
    /// the same project's KEK at once, the loser's insert does nothing.
    pub kek_race: &'static str,
}

/// A connection or transaction that runs the shared statements.
pub(crate) trait Db {
    /// The driver's failure: keeps its own error typed (PostgreSQL decides
    /// retries on it) and takes a decided [`Error`].
    type Fail: From<Error>;

    fn dialect(&self) -> &'static Dialect;

    /// Runs one statement; how many rows it changed.
    fn execute(&mut self, sql: &str, args: &[Value<'_>]) -> Result<u64, Self::Fail>;

    /// Runs one query, handing each row to `each` in order.
    fn query(
        &mut self,
        sql: &str,
        args: &[Value<'_>],
        each: &mut dyn FnMut(&dyn Columns) -> Result<()>,
    ) -> Result<(), Self::Fail>;

    /// A UNIQUE or PRIMARY KEY violation: the row is already there.
    fn is_unique_violation(e: &Self::Fail) -> bool;

    /// A broken reference. `constraint` names it where the driver can tell
    /// constraints apart (PostgreSQL); SQLite only knows that one broke.
    fn is_foreign_key_violation(e: &Self::Fail, constraint: &str) -> bool;

    /// `error`, caused by `e` (kept typed as its source).
    fn caused_by(error: Error, e: Self::Fail) -> Self::Fail;
}

/// Every row of a query, each decoded by `f`.
pub(crate) fn rows<D: Db + ?Sized, T>(
    db: &mut D,
    sql: &str,
    args: &[Value<'_>],
    mut f: impl FnMut(&dyn Columns) -> Result<T>,
) -> Result<Vec<T>, D::Fail> {
    let mut out = Vec::new();
    db.query(sql, args, &mut |r| {
        out.push(f(r)?);
        Ok(())
    })?;
    Ok(out)
}

/// The first row of a query, if any, decoded by `f`.
pub(crate) fn row<D: Db + ?Sized, T>(
    db: &mut D,
    sql: &str,
    args: &[Value<'_>],
    mut f: impl FnMut(&dyn Columns) -> Result<T>,
) -> Result<Option<T>, D::Fail> {
    let mut out = None;
    db.query(sql, args, &mut |r| {
        if out.is_none() {
            out = Some(f(r)?);
        }
        Ok(())
    })?;
    Ok(out)
}

/// A count (`SELECT COUNT(*) …`).
pub(crate) fn count<D: Db + ?Sized>(
    db: &mut D,
    sql: &str,
    args: &[Value<'_>],
) -> Result<u64, D::Fail> {
    let n = row(db, sql, args, |r| r.int(0))?.unwrap_or(0);
    Ok(u64::try_from(n).unwrap_or(0))
}
