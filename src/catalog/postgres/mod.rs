//! The PostgreSQL catalog: one database shared by several service
//! instances (processes, machines) under one KEK configuration.
//!
//! The schema mirrors the SQLite one (same tables, same version numbers), so
//! a store moves between the two with `keywarden catalog copy`. What differs
//! is how concurrency is held:
//!
//! - Every write batch runs in one `SERIALIZABLE` transaction; a
//!   serialization failure or deadlock is retried (with a fresh snapshot)
//!   a bounded number of times. On top of that the writes that decide an
//!   invariant lock the rows they decide on (`FOR UPDATE` / `FOR KEY SHARE`),
//!   and unique keys and foreign keys hold the rest: the `(backend, project)`
//!   primary key picks the one project KEK two instances race to make.
//! - Connections come from a small pool (`pool.rs`). One that broke (server restarted,
//!   network cut) is dropped and replaced; a call whose transaction never
//!   reached `COMMIT` is run again on a fresh connection. When the server
//!   cannot be reached the call fails with the retryable `Unavailable`.
//! - Each session runs with `statement_timeout`, `lock_timeout`,
//!   `idle_in_transaction_session_timeout` and `synchronous_commit = on`, so
//!   `apply` returns only once the batch is durable on the server.

//!
//! The statements and rules are the shared ones of `catalog/` (`read.rs`,
//! `write.rs`, `query.rs`), run through this catalog's
//! [`Db`](crate::catalog::sql::Db) (`write.rs` here).

use std::fmt;
use std::time::Duration;

use ::postgres::IsolationLevel;

use crate::backend::{KekInsert, KekInstance, KekStore, RewrapFn, WrappedKek};
use crate::catalog::rows::corrupt;
use crate::catalog::write::{
    TABLES, apply_batch, apply_each_at_once_first, delete_everything, insert_record,
};
use crate::catalog::{
    Catalog, PostgresUrl, RecordSink, RecordSource, Write, read as reads, rollout, write as rules,
};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{BackendId, ProjectId, Timestamp};

mod error;
mod pool;
mod read;
mod schema;
mod write;

use error::Fail;
use pool::ConnPool;
use schema::migrate;
use write::{Session, insert_in_bulk};

/// Connection and retry settings.
#[derive(Clone, Debug)]
pub struct PostgresOptions {
    /// Connections this instance keeps open at most.
    pub max_connections: usize,
    /// How long connecting may take before the server counts as unreachable.
    pub connect_timeout: Duration,
    /// Server-side limit on any one statement (and on waiting for a lock).
    pub statement_timeout: Duration,
    /// How long a call waits for a free pooled connection.
    pub checkout_timeout: Duration,
    /// How many times a transaction that lost a serialization race is run
    /// again before the call gives up with `Unavailable`.
    pub serialization_retries: u32,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            max_connections: 8,
            connect_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
            checkout_timeout: Duration::from_secs(30),
            serialization_retries: 30,
        }
    }
}

/// The PostgreSQL catalog.
pub struct PostgresCatalog {
    url: PostgresUrl,
    options: PostgresOptions,
    pool: ConnPool,
}

impl PostgresCatalog {
    /// Connects to the database at `url` and brings its schema up to date
    /// (creating it in an empty database).
    pub fn open(url: &PostgresUrl) -> Result<Self> {
        Self::open_with(url, PostgresOptions::default())
    }

    pub fn open_with(url: &PostgresUrl, options: PostgresOptions) -> Result<Self> {
        let catalog = Self::connect(url, options)?;
        catalog.run_migrations()?;
        Ok(catalog)
    }

    /// Opens a database that already holds a keywarden schema (bringing it
    /// up to date); refuses one nobody initialised.
    pub fn open_existing(url: &PostgresUrl) -> Result<Self> {
        let catalog = Self::connect(url, PostgresOptions::default())?;
        let initialised = catalog.read(|conn| {
            let row = conn.query_one(
                "SELECT to_regclass('keywarden_schema') IS NOT NULL AND to_regclass('secrets') IS NOT NULL",
                &[],
            )?;
            Ok(row.try_get::<_, bool>(0)?)
        })?;
        if !initialised {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!(
                    "{} holds no keywarden catalog; run `keywarden init` or restore a backup into it",
                    url
                ),
            ));
        }
        catalog.run_migrations()?;
        Ok(catalog)
    }

    fn connect(url: &PostgresUrl, options: PostgresOptions) -> Result<Self> {
        let mut config: ::postgres::Config = url.expose_url().parse().map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("catalog URL {url} is not a valid PostgreSQL URL"),
            )
            .with_source(e)
        })?;
        let ms = |d: Duration| d.as_millis().max(1);
        // Ours first, so options given in the URL win.
        let session = format!(
            "-c statement_timeout={} -c lock_timeout={} -c idle_in_transaction_session_timeout={} -c synchronous_commit=on {}",
            ms(options.statement_timeout),
            ms(options.statement_timeout),
            ms(options.statement_timeout * 2),
            config.get_options().unwrap_or("")
        );
        config
            .options(session.trim_end())
            .connect_timeout(options.connect_timeout)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30))
            .tcp_user_timeout(options.statement_timeout + options.connect_timeout);
        if config.get_application_name().is_none() {
            config.application_name("keywarden");
        }
        Ok(PostgresCatalog {
            url: url.clone(),
            pool: ConnPool::new(
                config,
                options.max_connections,
                options.checkout_timeout,
                url.redacted().to_owned(),
            ),
            options,
        })
    }

    /// The URL, password masked.
    pub fn url(&self) -> &PostgresUrl {
        &self.url
    }

    /// The schema version this database is at.
    pub fn schema_version(&self) -> Result<u32> {
        self.read(|conn| {
            let v: i64 = conn
                .query_one("SELECT version FROM keywarden_schema", &[])?
                .try_get(0)?;
            Ok(u32::try_from(v).map_err(|_| corrupt("schema version"))?)
        })
    }

    fn run_migrations(&self) -> Result<()> {
        let mut conn = self.pool.checkout()?;
        migrate(&mut conn.client).map_err(Fail::into_error)
    }
}

impl fmt::Debug for PostgresCatalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresCatalog")
            .field("url", &self.url)
            .field("max_connections", &self.pool.max())
            .finish_non_exhaustive()
    }
}

impl Catalog for PostgresCatalog {
    fn apply(&self, batch: Vec<Write>) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        self.transact(IsolationLevel::Serializable, |db| apply_batch(db, &batch))
    }

    fn apply_each(&self, batches: Vec<Vec<Write>>) -> Vec<Result<()>> {
        apply_each_at_once_first(
            batches,
            |all| {
                self.transact(IsolationLevel::Serializable, |db| {
                    if !insert_in_bulk(db, &all)? {
                        apply_batch(db, &all)?;
                    }
                    Ok(())
                })
                .is_ok()
            },
            |batches| self.apply_each_by_savepoint(batches),
        )
    }

    crate::catalog::read::catalog_reads!();

    fn purge_expired(&self, now: Timestamp) -> Result<u64> {
        self.transact(IsolationLevel::Serializable, |db| {
            rules::purge_expired(db, now)
        })
    }

    fn export(&self, out: &mut RecordSink<'_>) -> Result<()> {
        // A read-only snapshot: writers carry on meanwhile. Not retried: the
        // sink has seen rows by the time anything could fail.
        let mut conn = self.pool.checkout()?;
        let c = &mut *conn;
        let result = (|| -> Result<(), Fail> {
            let mut tx = c
                .client
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()?;
            let mut db = Session {
                client: &mut tx,
                cache: &mut c.cache,
            };
            reads::export_rows(&mut db, out)?;
            tx.commit()?;
            Ok(())
        })();
        result.map_err(Fail::into_error)
    }

    fn replace_with(&self, rows: &mut RecordSource<'_>) -> Result<()> {
        let mut conn = self.pool.checkout()?;
        let c = &mut *conn;
        let result = (|| -> Result<(), Fail> {
            let mut tx = c.client.transaction()?;
            let mut db = Session {
                client: &mut tx,
                cache: &mut c.cache,
            };
            // Writers wait until the new content is in; readers keep seeing
            // the old until then.
            db.batch(&format!(
                "LOCK TABLE {} IN EXCLUSIVE MODE",
                TABLES.join(", ")
            ))?;
            delete_everything(&mut db)?;
            rows(&mut |row| Ok(insert_record(&mut db, row)?))?;
            tx.commit()?;
            Ok(())
        })();
        result.map_err(Fail::into_error)
    }
}

impl KekStore for PostgresCatalog {
    fn project_kek(&self, backend: &BackendId, project: &ProjectId) -> Result<Option<WrappedKek>> {
        self.read(|db| reads::project_kek(db, backend, project))
    }

    fn insert_project_kek(
        &self,
        backend: &BackendId,
        project: &ProjectId,
        kek: WrappedKek,
    ) -> Result<WrappedKek> {
        // The loser's insert waits for the winner's commit, does nothing,
        // and the read after it (a new snapshot under READ COMMITTED) finds
        // the winner's.
        self.transact(IsolationLevel::ReadCommitted, |db| {
            rules::insert_project_kek(db, backend, project, &kek)
        })
    }

    fn project_keks(&self, backend: &BackendId) -> Result<Vec<(ProjectId, WrappedKek)>> {
        self.read(|db| reads::project_keks(db, backend))
    }

    fn replace_project_keks(
        &self,
        backend: &BackendId,
        keks: Vec<(ProjectId, WrappedKek)>,
    ) -> Result<()> {
        self.transact(IsolationLevel::Serializable, |db| {
            rules::replace_project_keks(db, backend, &keks)
        })
    }

    fn rollout_active(&self, backend: &BackendId) -> Result<Option<String>> {
        self.read(|db| rollout::active(db, backend, ""))
    }

    fn propose_rollout_active(&self, backend: &BackendId, fingerprint: &str) -> Result<String> {
        self.transact(IsolationLevel::ReadCommitted, |db| {
            rollout::propose(db, backend, fingerprint)
        })
    }

    fn insert_project_kek_if_active(
        &self,
        backend: &BackendId,
        project: &ProjectId,
        kek: WrappedKek,
    ) -> Result<KekInsert> {
        // READ COMMITTED, as `insert_project_kek`: the rollout row's lock
        // (FOR KEY SHARE) waits for a rotation holding it and then reads
        // the key that rotation committed.
        self.transact(IsolationLevel::ReadCommitted, |db| {
            rollout::insert_project_kek_if_active(db, backend, project, &kek)
        })
    }

    fn rotate_project_keks(
        &self,
        backend: &BackendId,
        new_active: &str,
        live_since: Timestamp,
        rewrap: &mut RewrapFn<'_>,
    ) -> Result<usize> {
        // READ COMMITTED on purpose: the rollout row is locked (FOR UPDATE)
        // first, after inserts in flight commit, and each statement after
        // it sees their KEKs; a SERIALIZABLE snapshot would predate them.
        self.transact(IsolationLevel::ReadCommitted, |db| {
            rollout::rotate(db, backend, new_active, live_since, &mut *rewrap)
        })
    }

    fn project_keks_not_under(&self, backend: &BackendId, fingerprint: &str) -> Result<u64> {
        self.read(|db| rollout::wrapped_by_others(db, backend, fingerprint))
    }

    fn heartbeat_instance(&self, instance: &KekInstance, forget_before: Timestamp) -> Result<()> {
        self.transact(IsolationLevel::ReadCommitted, |db| {
            rollout::heartbeat(db, instance, forget_before)
        })
    }

    fn remove_instance(&self, instance_id: &str) -> Result<()> {
        self.transact(IsolationLevel::ReadCommitted, |db| {
            rollout::remove(db, instance_id)
        })
    }

    fn live_instances(&self, backend: &BackendId, since: Timestamp) -> Result<Vec<KekInstance>> {
        self.read(|db| rollout::live(db, backend, since))
    }
}
