//! The PostgreSQL catalog's connections, each with its prepared statements,
//! on the crate's generic pool (`crate::pool`). A connection the server
//! closed is never handed out again nor put back (the pool's health check,
//! at checkout and at checkin); one that broke mid-call is discarded by the
//! caller, which also clears the idle ones, likely as stale.

use std::collections::HashMap;
use std::time::Duration;

use ::postgres::{Client, NoTls, Statement};

use super::error::connect_error;
use crate::error::{Error, ErrorKind, Result};
use crate::pool::{Lease, Pool, PoolError};

/// One pooled connection and its prepared statements.
pub(crate) struct Conn {
    pub(crate) client: Client,
    pub(crate) cache: HashMap<String, Statement>,
}

pub(crate) struct ConnPool {
    config: ::postgres::Config,
    pool: Pool<Conn>,
    /// The URL, password masked, for errors.
    shown: String,
}

impl ConnPool {
    /// At most `max` connections (at least one); a checkout waits up to
    /// `checkout_timeout` for a free one.
    pub(crate) fn new(
        config: ::postgres::Config,
        max: usize,
        checkout_timeout: Duration,
        shown: String,
    ) -> Self {
        ConnPool {
            config,
            pool: Pool::new(max.max(1), Some(checkout_timeout))
                .with_health_check(|conn: &Conn| !conn.client.is_closed()),
            shown,
        }
    }

    pub(crate) fn max(&self) -> usize {
        self.pool.size()
    }

    /// An open idle connection, or a new one while fewer than `max` exist.
    pub(crate) fn checkout(&self) -> Result<Lease<'_, Conn>> {
        self.pool
            .checkout(|| {
                let client = self
                    .config
                    .connect(NoTls)
                    .map_err(|e| connect_error(&self.shown, e))?;
                Ok(Conn {
                    client,
                    cache: HashMap::new(),
                })
            })
            .map_err(|e| {
                e.or_pool(|refused| {
                    let text = match refused {
                        PoolError::Busy { size, waited } => format!(
                            "all {size} connections to the catalog stayed busy for {waited:?}"
                        ),
                        PoolError::Closed => "the catalog's connections are closed".to_owned(),
                    };
                    Error::new(ErrorKind::Unavailable, text)
                })
            })
    }

    /// Drops every idle connection (after one of them turned out broken).
    pub(crate) fn clear_idle(&self) {
        self.pool.clear_idle();
    }
}
