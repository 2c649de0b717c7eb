//! The PostgreSQL catalog's connections: a small pool, each connection
//! with its prepared statements. One that broke is dropped and replaced.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ::postgres::{Client, NoTls, Statement};

use super::error::connect_error;
use crate::error::{Error, ErrorKind, Result};

/// One pooled connection and its prepared statements.
pub(crate) struct Conn {
    pub(crate) client: Client,
    pub(crate) cache: HashMap<String, Statement>,
}

pub(crate) struct PoolState {
    pub(crate) idle: Vec<Conn>,
    /// Connections in existence: idle plus checked out.
    pub(crate) open: usize,
}

pub(crate) struct Pool {
    pub(crate) config: ::postgres::Config,
    pub(crate) state: Mutex<PoolState>,
    pub(crate) freed: Condvar,
    pub(crate) max: usize,
    pub(crate) checkout_timeout: Duration,
    /// The URL, password masked, for errors.
    pub(crate) shown: String,
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        // The state is a list and a counter; a panic elsewhere cannot leave
        // them half-updated, so carry on with them.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn checkout(&self) -> Result<Pooled<'_>> {
        let deadline = Instant::now() + self.checkout_timeout;
        let mut state = self.lock();
        loop {
            if let Some(conn) = state.idle.pop() {
                if !conn.client.is_closed() {
                    return Ok(Pooled {
                        pool: self,
                        conn: Some(conn),
                        broken: false,
                    });
                }
                state.open -= 1;
                continue;
            }
            if state.open < self.max {
                state.open += 1;
                drop(state);
                return match self.config.connect(NoTls) {
                    Ok(client) => Ok(Pooled {
                        pool: self,
                        conn: Some(Conn {
                            client,
                            cache: HashMap::new(),
                        }),
                        broken: false,
                    }),
                    Err(e) => {
                        let mut state = self.lock();
                        state.open -= 1;
                        self.freed.notify_one();
                        Err(connect_error(&self.shown, e))
                    }
                };
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    format!(
                        "all {} connections to the catalog stayed busy for {:?}",
                        self.max, self.checkout_timeout
                    ),
                ));
            }
            state = self
                .freed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Drops every idle connection (after one of them turned out broken).
    pub(crate) fn clear_idle(&self) {
        let stale: Vec<Conn> = {
            let mut state = self.lock();
            let stale: Vec<Conn> = state.idle.drain(..).collect();
            state.open -= stale.len();
            stale
        };
        self.freed.notify_all();
        drop(stale);
    }
}

/// A checked-out connection; back to the pool on drop unless broken.
pub(crate) struct Pooled<'a> {
    pool: &'a Pool,
    conn: Option<Conn>,
    broken: bool,
}

impl Pooled<'_> {
    pub(crate) fn get(&mut self) -> &mut Conn {
        // Invariant: `conn` is only taken in `drop`.
        self.conn
            .as_mut()
            .expect("pooled connection present until dropped")
    }

    pub(crate) fn discard(&mut self) {
        self.broken = true;
    }

    pub(crate) fn discard_if_broken(&mut self) {
        if self.conn.as_ref().is_none_or(|c| c.client.is_closed()) {
            self.broken = true;
        }
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        if self.broken || conn.client.is_closed() {
            self.pool.lock().open -= 1;
            // Closing may wait on a dead socket: outside the lock.
            drop(conn);
        } else {
            self.pool.lock().idle.push(conn);
        }
        self.pool.freed.notify_one();
    }
}
