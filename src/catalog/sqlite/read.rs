//! Reads on the SQLite catalog: pooled read connections, each read in a
//! snapshot of its own where it takes more than one statement.

use rusqlite::Connection;

use super::error::Fail;
use super::schema::connect;
use super::write::Sqlite;
use super::{SqliteCatalog, lock};
use crate::error::Result;

impl SqliteCatalog {
    /// Runs `f` on a pooled read connection, outside any transaction.
    pub(crate) fn read_conn<T>(&self, f: impl FnOnce(&Connection) -> Result<T, Fail>) -> Result<T> {
        let conn = match lock(&self.readers).pop() {
            Some(c) => c,
            None => connect(&self.path, &self.options, false)?,
        };
        let out = f(&conn);
        lock(&self.readers).push(conn);
        Ok(out?)
    }

    /// Runs the shared statements of `f` in one read transaction: one
    /// snapshot for all of them.
    pub(crate) fn snapshot<T>(
        &self,
        f: impl FnOnce(&mut Sqlite<'_>) -> Result<T, Fail>,
    ) -> Result<T> {
        self.read_conn(|c| {
            let tx = c.unchecked_transaction()?;
            let out = f(&mut Sqlite(&tx))?;
            tx.commit()?;
            Ok(out)
        })
    }

    /// Runs the shared statements of `f` on a read connection.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&mut Sqlite<'_>) -> Result<T, Fail>) -> Result<T> {
        self.read_conn(|c| f(&mut Sqlite(c)))
    }
}
