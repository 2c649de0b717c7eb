//! Reads on the PostgreSQL catalog: one statement on a pooled connection
//! (run again once on a fresh one when the pooled one turned out broken),
//! or several in one `REPEATABLE READ` snapshot.

use ::postgres::{Client, IsolationLevel, Transaction};

use super::PostgresCatalog;
use super::error::{Fail, is_connection_error, pg_error};
use super::write::Session;
use crate::error::Result;

impl PostgresCatalog {
    /// Runs `body` on a pooled connection outside any transaction. Reads
    /// only: a connection that turns out broken (the server restarted since
    /// it was pooled) is replaced and the read run once more.
    pub(crate) fn read<T>(
        &self,
        mut body: impl FnMut(&mut Session<'_, Client>) -> Result<T, Fail>,
    ) -> Result<T> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut conn = self.pool.checkout()?;
            let out = {
                let c = &mut *conn;
                body(&mut Session {
                    client: &mut c.client,
                    cache: &mut c.cache,
                })
            };
            match out {
                Ok(v) => return Ok(v),
                Err(Fail::Kw(e)) => return Err(e),
                Err(Fail::Pg(e)) => {
                    if is_connection_error(&e) {
                        conn.discard();
                        // Every pooled connection is likely as stale.
                        self.pool.clear_idle();
                        if attempt < 2 {
                            continue;
                        }
                    }
                    return Err(pg_error(e));
                }
            }
        }
    }

    /// Runs `body` in one read snapshot (retried as [`Self::transact`] is).
    pub(crate) fn snapshot<T>(
        &self,
        body: impl FnMut(&mut Session<'_, Transaction<'_>>) -> Result<T, Fail>,
    ) -> Result<T> {
        self.transact(IsolationLevel::RepeatableRead, body)
    }
}
