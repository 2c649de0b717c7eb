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
//! - Connections come from a small pool. One that broke (server restarted,
//!   network cut) is dropped and replaced; a call whose transaction never
//!   reached `COMMIT` is run again on a fresh connection. When the server
//!   cannot be reached the call fails with the retryable `Unavailable`.
//! - Each session runs with `statement_timeout`, `lock_timeout`,
//!   `idle_in_transaction_session_timeout` and `synchronous_commit = on`, so
//!   `apply` returns only once the batch is durable on the server.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ::postgres::error::SqlState;
use ::postgres::types::ToSql;
use ::postgres::{Client, GenericClient, IsolationLevel, NoTls, Row, Statement, Transaction};

use crate::backend::{KekStore, StoredSecret, WrappedKek};
use crate::catalog::{
    Acl, AclView, Catalog, Container, ContainerType, Counts, Order, OrderType, Page, Record,
    RecordSink, RecordSource, SecretFilter, SecretRow, Write, cmp_sql, corrupt, parse_content_type,
    sort_column,
};
use crate::config::PostgresUrl;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{
    BackendId, Consumer, ContainerId, ContentType, OrderId, ProjectId, SecretId, SecretMeta,
    Timestamp, UserId,
};

/// Forward migrations; `keywarden_schema.version` records how many have
/// run. Version numbers match the SQLite catalog's.
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE project_keks (
    backend_id TEXT COLLATE "C" NOT NULL,
    project_id TEXT COLLATE "C" NOT NULL,
    kek_id TEXT COLLATE "C" NOT NULL CONSTRAINT project_keks_kek_id_key UNIQUE,
    master_fingerprint TEXT COLLATE "C" NOT NULL,
    wrapped BYTEA NOT NULL,
    created BIGINT NOT NULL,
    PRIMARY KEY (backend_id, project_id)
);
CREATE TABLE secrets (
    id TEXT COLLATE "C" PRIMARY KEY,
    project_id TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C",
    algorithm TEXT COLLATE "C",
    bit_length BIGINT,
    mode TEXT COLLATE "C",
    secret_type TEXT COLLATE "C" NOT NULL,
    expiration BIGINT,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL,
    status TEXT COLLATE "C" NOT NULL,
    content_type TEXT COLLATE "C",
    creator_id TEXT COLLATE "C" NOT NULL,
    backend_id TEXT COLLATE "C" NOT NULL,
    stored BYTEA,
    -- The project KEK that encrypted `stored` (crypto backends): a secret
    -- can never be written under a KEK this catalog does not hold.
    kek_id TEXT COLLATE "C" CONSTRAINT secrets_kek_fk REFERENCES project_keks (kek_id),
    read_project_access BOOLEAN NOT NULL DEFAULT TRUE,
    CHECK ((content_type IS NULL) = (stored IS NULL))
);
CREATE INDEX secrets_by_project_created ON secrets (project_id, created, id);
CREATE INDEX secrets_by_project_name ON secrets (project_id, name, created, id);
CREATE INDEX secrets_by_project_expiration ON secrets (project_id, expiration);
CREATE INDEX secrets_by_kek ON secrets (kek_id);
CREATE TABLE secret_acl_users (
    secret_id TEXT COLLATE "C" NOT NULL
        CONSTRAINT secret_acl_users_secret_fk REFERENCES secrets (id) ON DELETE CASCADE,
    user_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (secret_id, user_id)
);
CREATE INDEX secret_acl_users_by_user ON secret_acl_users (user_id);
CREATE TABLE secret_consumers (
    secret_id TEXT COLLATE "C" NOT NULL
        CONSTRAINT secret_consumers_secret_fk REFERENCES secrets (id) ON DELETE CASCADE,
    service TEXT COLLATE "C" NOT NULL,
    resource_type TEXT COLLATE "C" NOT NULL,
    resource_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (secret_id, service, resource_type, resource_id)
);
CREATE TABLE project_backends (
    project_id TEXT COLLATE "C" PRIMARY KEY,
    backend_id TEXT COLLATE "C" NOT NULL
);
CREATE TABLE orders (
    id TEXT COLLATE "C" PRIMARY KEY,
    project_id TEXT COLLATE "C" NOT NULL,
    creator_id TEXT COLLATE "C" NOT NULL,
    type TEXT COLLATE "C" NOT NULL,
    status TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C",
    algorithm TEXT COLLATE "C" NOT NULL,
    bit_length BIGINT NOT NULL,
    mode TEXT COLLATE "C",
    payload_content_type TEXT COLLATE "C",
    expiration BIGINT,
    secret_id TEXT COLLATE "C",
    container_id TEXT COLLATE "C",
    error_code BIGINT,
    error_reason TEXT,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL
);
CREATE INDEX orders_by_project ON orders (project_id, created, id);
CREATE TABLE containers (
    id TEXT COLLATE "C" PRIMARY KEY,
    project_id TEXT COLLATE "C" NOT NULL,
    creator_id TEXT COLLATE "C" NOT NULL,
    name TEXT COLLATE "C",
    type TEXT COLLATE "C" NOT NULL,
    status TEXT COLLATE "C" NOT NULL,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL
);
CREATE INDEX containers_by_project ON containers (project_id, created, id);
CREATE TABLE container_secrets (
    container_id TEXT COLLATE "C" NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
    name TEXT COLLATE "C" NOT NULL,
    secret_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (container_id, name)
);
"#];

/// Every table, children before parents (the order to empty them in).
const TABLES: &str = "container_secrets, containers, orders, secret_consumers, secret_acl_users, \
     secrets, project_backends, project_keks";

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
    pool: Pool,
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
            pool: Pool {
                config,
                state: Mutex::new(PoolState {
                    idle: Vec::new(),
                    open: 0,
                }),
                freed: Condvar::new(),
                max: options.max_connections.max(1),
                checkout_timeout: options.checkout_timeout,
                shown: url.redacted().to_owned(),
            },
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
        let out = migrate(&mut conn.get().client);
        if out.is_err() {
            conn.discard_if_broken();
        }
        out.map_err(Fail::into_error)
    }

    /// Runs `body` on a pooled connection outside any transaction. Reads
    /// only: a connection that turns out broken (the server restarted since
    /// it was pooled) is replaced and the read run once more.
    fn read<T>(
        &self,
        mut body: impl FnMut(&mut Session<'_, Client>) -> Result<T, Fail>,
    ) -> Result<T> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut conn = self.pool.checkout()?;
            let out = {
                let c = conn.get();
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
                    conn.discard_if_broken();
                    return Err(pg_error(e));
                }
            }
        }
    }

    /// One transaction, a savepoint per batch: a batch that fails is
    /// rolled back alone. A serialization failure aborts the whole
    /// transaction, and then every batch runs again.
    fn apply_each_by_savepoint(&self, batches: Vec<Vec<Write>>) -> Vec<Result<()>> {
        let out = self.transact(IsolationLevel::Serializable, |db| {
            let mut outcomes = Vec::with_capacity(batches.len());
            for batch in &batches {
                db.batch("SAVEPOINT batch")?;
                match batch.iter().try_for_each(|w| apply_write(db, w)) {
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
    fn transact<T>(
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
                let c = conn.get();
                run_transaction(&mut c.client, &mut c.cache, isolation, &mut body)
            };
            let e = match out {
                Ok(v) => return Ok(v),
                Err(Fail::Kw(e)) => {
                    conn.discard_if_broken();
                    return Err(e);
                }
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
            conn.discard_if_broken();
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

impl fmt::Debug for PostgresCatalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresCatalog")
            .field("url", &self.url)
            .field("max_connections", &self.pool.max)
            .finish_non_exhaustive()
    }
}

// --- connections ---------------------------------------------------------------

/// One pooled connection and its prepared statements.
struct Conn {
    client: Client,
    cache: HashMap<String, Statement>,
}

struct PoolState {
    idle: Vec<Conn>,
    /// Connections in existence: idle plus checked out.
    open: usize,
}

struct Pool {
    config: ::postgres::Config,
    state: Mutex<PoolState>,
    freed: Condvar,
    max: usize,
    checkout_timeout: Duration,
    /// The URL, password masked, for errors.
    shown: String,
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        // The state is a list and a counter; a panic elsewhere cannot leave
        // them half-updated, so carry on with them.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn checkout(&self) -> Result<Pooled<'_>> {
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
    fn clear_idle(&self) {
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
struct Pooled<'a> {
    pool: &'a Pool,
    conn: Option<Conn>,
    broken: bool,
}

impl Pooled<'_> {
    fn get(&mut self) -> &mut Conn {
        // Invariant: `conn` is only taken in `drop`.
        self.conn
            .as_mut()
            .expect("pooled connection present until dropped")
    }

    fn discard(&mut self) {
        self.broken = true;
    }

    fn discard_if_broken(&mut self) {
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

/// A client (or transaction) with the connection's statement cache.
struct Session<'a, C> {
    client: &'a mut C,
    cache: &'a mut HashMap<String, Statement>,
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

    fn execute(&mut self, sql: &str, params: &Params<'_>) -> Result<u64, ::postgres::Error> {
        let stmt = self.prepare(sql)?;
        self.client.execute(&stmt, params)
    }

    fn query(&mut self, sql: &str, params: &Params<'_>) -> Result<Vec<Row>, ::postgres::Error> {
        let stmt = self.prepare(sql)?;
        self.client.query(&stmt, params)
    }

    fn query_opt(
        &mut self,
        sql: &str,
        params: &Params<'_>,
    ) -> Result<Option<Row>, ::postgres::Error> {
        let stmt = self.prepare(sql)?;
        self.client.query_opt(&stmt, params)
    }

    fn query_one(&mut self, sql: &str, params: &Params<'_>) -> Result<Row, ::postgres::Error> {
        let stmt = self.prepare(sql)?;
        self.client.query_one(&stmt, params)
    }

    fn batch(&mut self, sql: &str) -> Result<(), ::postgres::Error> {
        self.client.batch_execute(sql)
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

fn migrate(client: &mut Client) -> Result<(), Fail> {
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

// --- errors --------------------------------------------------------------------

/// A failure inside a transaction body: from the server (maybe worth a
/// retry) or already decided (`NotFound`, `Conflict`…).
enum Fail {
    Pg(::postgres::Error),
    Kw(Error),
}

impl Fail {
    fn into_error(self) -> Error {
        match self {
            Fail::Pg(e) => pg_error(e),
            Fail::Kw(e) => e,
        }
    }
}

impl From<::postgres::Error> for Fail {
    fn from(e: ::postgres::Error) -> Self {
        Fail::Pg(e)
    }
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Fail::Kw(e)
    }
}

fn is_serialization_failure(e: &::postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    )
}

/// The connection is gone: closed, an I/O error, or the server said it is
/// shutting down or cannot take the session.
fn is_connection_error(e: &::postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(code) = e.code() {
        return code.code().starts_with("08")
            || *code == SqlState::ADMIN_SHUTDOWN
            || *code == SqlState::CRASH_SHUTDOWN
            || *code == SqlState::CANNOT_CONNECT_NOW
            || *code == SqlState::TOO_MANY_CONNECTIONS;
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}

fn connect_error(shown: &str, e: ::postgres::Error) -> Error {
    let kind = match e.code() {
        Some(c)
            if *c == SqlState::INVALID_PASSWORD
                || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
                || *c == SqlState::INVALID_CATALOG_NAME =>
        {
            ErrorKind::Config
        }
        _ => ErrorKind::Unavailable,
    };
    Error::new(
        kind,
        format!("cannot connect to the PostgreSQL catalog {shown}"),
    )
    .with_source(e)
}

fn pg_error(e: ::postgres::Error) -> Error {
    let (kind, what) = if is_connection_error(&e) {
        (ErrorKind::Unavailable, "the PostgreSQL catalog went away")
    } else {
        match e.code() {
            Some(c) if *c == SqlState::QUERY_CANCELED => (
                ErrorKind::Unavailable,
                "a PostgreSQL catalog statement timed out",
            ),
            Some(c) if *c == SqlState::LOCK_NOT_AVAILABLE => (
                ErrorKind::Unavailable,
                "a PostgreSQL catalog lock stayed taken",
            ),
            Some(c) if c.code().starts_with("53") => (
                ErrorKind::Unavailable,
                "the PostgreSQL server is out of resources",
            ),
            Some(c) if *c == SqlState::UNIQUE_VIOLATION => {
                (ErrorKind::Conflict, "PostgreSQL catalog call failed")
            }
            _ => (ErrorKind::Storage, "PostgreSQL catalog call failed"),
        }
    };
    Error::new(kind, what).with_source(e)
}

fn constraint_violation(e: &::postgres::Error, state: &SqlState) -> Option<String> {
    let db = e.as_db_error()?;
    (db.code() == state).then(|| db.constraint().unwrap_or("").to_owned())
}

fn not_found(id: &SecretId) -> Error {
    Error::new(ErrorKind::NotFound, format!("secret {id} not found"))
}

// --- writes --------------------------------------------------------------------

fn apply_write(db: &mut Session<'_, Transaction<'_>>, w: &Write) -> Result<(), Fail> {
    match w {
        Write::InsertSecret { meta, stored } => {
            let out = db.execute(
                "INSERT INTO secrets (id, project_id, name, algorithm, bit_length, mode, secret_type,
                 expiration, created, updated, status, content_type, creator_id, backend_id, stored, kek_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
                &[
                    &meta.id.to_string(),
                    &meta.project_id.as_str(),
                    &meta.name,
                    &meta.algorithm,
                    &meta.bit_length.map(i64::from),
                    &meta.mode,
                    &meta.secret_type.as_str(),
                    &meta.expiration.map(Timestamp::unix),
                    &meta.created.unix(),
                    &meta.updated.unix(),
                    &meta.status.as_str(),
                    &meta.content_type.map(ContentType::as_str),
                    &meta.creator_id.as_str(),
                    &meta.backend_id.as_str(),
                    &stored.as_ref().map(|s| s.bytes.as_slice()),
                    &stored.as_ref().and_then(|s| s.kek_id.as_deref()),
                ],
            );
            if let Err(e) = out {
                if constraint_violation(&e, &SqlState::UNIQUE_VIOLATION).is_some() {
                    return Err(Fail::Kw(Error::new(
                        ErrorKind::Conflict,
                        format!("secret {} already exists", meta.id),
                    )));
                }
                return Err(kek_violation(e));
            }
        }
        Write::SetPayload {
            id,
            content_type,
            stored,
            updated,
        } => {
            let n = db
                .execute(
                    "UPDATE secrets SET content_type = $2, stored = $3, kek_id = $5, updated = $4
                     WHERE id = $1 AND stored IS NULL",
                    &[
                        &id.to_string(),
                        &content_type.as_str(),
                        &stored.bytes,
                        &updated.unix(),
                        &stored.kek_id,
                    ],
                )
                .map_err(kek_violation)?;
            if n == 0 {
                return Err(Fail::Kw(if secret_exists(db, id)? {
                    Error::new(
                        ErrorKind::Conflict,
                        "Secret already has data, cannot modify it.",
                    )
                } else {
                    not_found(id)
                }));
            }
        }
        Write::DeleteSecret { id, force } => {
            // Lock the row first: a consumer registered concurrently either
            // commits before (and is counted) or waits for this delete.
            let exists = db.query_opt(
                "SELECT 1 FROM secrets WHERE id = $1 FOR UPDATE",
                &[&id.to_string()],
            )?;
            if exists.is_none() {
                return Err(Fail::Kw(not_found(id)));
            }
            if !force {
                let consumers: i64 = db
                    .query_one(
                        "SELECT COUNT(*) FROM secret_consumers WHERE secret_id = $1",
                        &[&id.to_string()],
                    )?
                    .try_get(0)?;
                if consumers > 0 {
                    return Err(Fail::Kw(Error::new(
                        ErrorKind::Conflict,
                        format!(
                            "Secret cannot be deleted as it has consumers ({consumers}); use force"
                        ),
                    )));
                }
            }
            db.execute("DELETE FROM secrets WHERE id = $1", &[&id.to_string()])?;
        }
        Write::AddConsumer { id, consumer } => {
            require_secret_locked(db, id)?;
            db.execute(
                "INSERT INTO secret_consumers (secret_id, service, resource_type, resource_id)
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[
                    &id.to_string(),
                    &consumer.service,
                    &consumer.resource_type,
                    &consumer.resource_id,
                ],
            )?;
        }
        Write::RemoveConsumer { id, consumer } => {
            let n = db.execute(
                "DELETE FROM secret_consumers
                 WHERE secret_id = $1 AND service = $2 AND resource_type = $3 AND resource_id = $4",
                &[
                    &id.to_string(),
                    &consumer.service,
                    &consumer.resource_type,
                    &consumer.resource_id,
                ],
            )?;
            if n == 0 {
                return Err(Fail::Kw(Error::new(
                    ErrorKind::NotFound,
                    "consumer not registered on this secret",
                )));
            }
        }
        Write::SetAcl { id, acl } => {
            let acl = acl.clone().unwrap_or_default();
            let n = db.execute(
                "UPDATE secrets SET read_project_access = $2 WHERE id = $1",
                &[&id.to_string(), &acl.project_access],
            )?;
            if n == 0 {
                return Err(Fail::Kw(not_found(id)));
            }
            db.execute(
                "DELETE FROM secret_acl_users WHERE secret_id = $1",
                &[&id.to_string()],
            )?;
            for user in &acl.users {
                db.execute(
                    "INSERT INTO secret_acl_users (secret_id, user_id) VALUES ($1, $2)
                     ON CONFLICT DO NOTHING",
                    &[&id.to_string(), &user.as_str()],
                )?;
            }
        }
        Write::GrantRead { id, user } => {
            let out = db.execute(
                "INSERT INTO secret_acl_users (secret_id, user_id) VALUES ($1, $2)
                 ON CONFLICT DO NOTHING",
                &[&id.to_string(), &user.as_str()],
            );
            if let Err(e) = out {
                if constraint_violation(&e, &SqlState::FOREIGN_KEY_VIOLATION).is_some() {
                    return Err(Fail::Kw(not_found(id)));
                }
                return Err(e.into());
            }
        }
        Write::InsertOrder(o) => {
            db.execute(
                "INSERT INTO orders (id, project_id, creator_id, type, status, name, algorithm, bit_length, mode,
                 payload_content_type, expiration, secret_id, container_id, error_code, error_reason, created, updated)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
                &[
                    &o.id.to_string(),
                    &o.project_id.as_str(),
                    &o.creator_id.as_str(),
                    &o.order_type.as_str(),
                    &o.status.as_str(),
                    &o.name,
                    &o.algorithm,
                    &i64::from(o.bit_length),
                    &o.mode,
                    &o.payload_content_type.map(ContentType::as_str),
                    &o.expiration.map(Timestamp::unix),
                    &o.secret_id.map(|s| s.to_string()),
                    &o.container_id.map(|s| s.to_string()),
                    &o.error_code.map(i64::from),
                    &o.error_reason,
                    &o.created.unix(),
                    &o.updated.unix(),
                ],
            )?;
        }
        Write::DeleteOrder(id) => {
            let n = db.execute("DELETE FROM orders WHERE id = $1", &[&id.to_string()])?;
            if n == 0 {
                return Err(Fail::Kw(Error::new(
                    ErrorKind::NotFound,
                    format!("order {id} not found"),
                )));
            }
        }
        Write::InsertContainer(k) => {
            db.execute(
                "INSERT INTO containers (id, project_id, creator_id, name, type, status, created, updated)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &k.id.to_string(),
                    &k.project_id.as_str(),
                    &k.creator_id.as_str(),
                    &k.name,
                    &k.container_type.as_str(),
                    &k.status.as_str(),
                    &k.created.unix(),
                    &k.updated.unix(),
                ],
            )?;
            for (name, secret) in &k.secret_refs {
                db.execute(
                    "INSERT INTO container_secrets (container_id, name, secret_id) VALUES ($1, $2, $3)",
                    &[&k.id.to_string(), name, &secret.to_string()],
                )?;
            }
        }
        Write::DeleteContainer(id) => {
            let n = db.execute("DELETE FROM containers WHERE id = $1", &[&id.to_string()])?;
            if n == 0 {
                return Err(Fail::Kw(Error::new(
                    ErrorKind::NotFound,
                    format!("container {id} not found"),
                )));
            }
        }
        Write::SetProjectBackend { project, backend } => match backend {
            Some(b) => {
                db.execute(
                    "INSERT INTO project_backends (project_id, backend_id) VALUES ($1, $2)
                     ON CONFLICT (project_id) DO UPDATE SET backend_id = excluded.backend_id",
                    &[&project.as_str(), &b.as_str()],
                )?;
            }
            None => {
                db.execute(
                    "DELETE FROM project_backends WHERE project_id = $1",
                    &[&project.as_str()],
                )?;
            }
        },
    }
    Ok(())
}

/// A secret written under a KEK the catalog does not hold (a running
/// instance whose KEK row was replaced, e.g. by a restore).
/// New secrets and read grants on them, the shape of a bulk migration
/// batch, written with one statement per table instead of a round trip per
/// row. Returns `false` (and writes nothing) for any other shape: a write of
/// another kind, or a grant on a secret not inserted before it in `writes`
/// (whose order the two statements would not keep).
fn insert_in_bulk(db: &mut Session<'_, Transaction<'_>>, writes: &[Write]) -> Result<bool, Fail> {
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
    db.execute(
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
            kek_violation(e)
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
        db.execute(
            "INSERT INTO secret_acl_users (secret_id, user_id)
             SELECT * FROM UNNEST($1::text[], $2::text[]) ON CONFLICT DO NOTHING",
            &[&grant_ids, &grant_users],
        )?;
    }
    Ok(true)
}

fn kek_violation(e: ::postgres::Error) -> Fail {
    match constraint_violation(&e, &SqlState::FOREIGN_KEY_VIOLATION) {
        Some(c) if c == "secrets_kek_fk" => Fail::Kw(
            Error::new(
                ErrorKind::Conflict,
                "the project KEK this secret was encrypted under is not in the catalog; retry",
            )
            .with_source(e),
        ),
        _ => Fail::Pg(e),
    }
}

fn secret_exists<C: GenericClient>(db: &mut Session<'_, C>, id: &SecretId) -> Result<bool, Fail> {
    Ok(db
        .query_opt("SELECT 1 FROM secrets WHERE id = $1", &[&id.to_string()])?
        .is_some())
}

/// The secret exists and cannot be deleted before this transaction ends.
fn require_secret_locked<C: GenericClient>(
    db: &mut Session<'_, C>,
    id: &SecretId,
) -> Result<(), Fail> {
    let row = db.query_opt(
        "SELECT 1 FROM secrets WHERE id = $1 FOR KEY SHARE",
        &[&id.to_string()],
    )?;
    match row {
        Some(_) => Ok(()),
        None => Err(Fail::Kw(not_found(id))),
    }
}

fn insert_record(db: &mut Session<'_, Transaction<'_>>, row: Record) -> Result<(), Fail> {
    match row {
        Record::ProjectKek {
            backend,
            project,
            kek,
            created,
        } => {
            db.execute(
                "INSERT INTO project_keks (backend_id, project_id, kek_id, master_fingerprint, wrapped, created)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &backend.as_str(),
                    &project.as_str(),
                    &kek.kek_id,
                    &kek.master_fingerprint,
                    &kek.wrapped,
                    &created.unix(),
                ],
            )?;
            Ok(())
        }
        Record::ProjectBackend { project, backend } => apply_write(
            db,
            &Write::SetProjectBackend {
                project,
                backend: Some(backend),
            },
        ),
        Record::Secret {
            meta,
            stored,
            project_access,
        } => {
            let id = meta.id;
            apply_write(db, &Write::InsertSecret { meta, stored })?;
            if !project_access {
                db.execute(
                    "UPDATE secrets SET read_project_access = FALSE WHERE id = $1",
                    &[&id.to_string()],
                )?;
            }
            Ok(())
        }
        Record::AclUser { secret, user } => apply_write(db, &Write::GrantRead { id: secret, user }),
        Record::Consumer { secret, consumer } => apply_write(
            db,
            &Write::AddConsumer {
                id: secret,
                consumer,
            },
        ),
        Record::Order(o) => apply_write(db, &Write::InsertOrder(o)),
        Record::Container(k) => apply_write(db, &Write::InsertContainer(k)),
    }
}

// --- rows ----------------------------------------------------------------------

/// Column list matching [`secret_from_row`].
const SECRET_COLUMNS: &str = "id, project_id, name, algorithm, bit_length, mode, secret_type, expiration, \
     created, updated, status, content_type, creator_id, backend_id";

const ORDER_COLUMNS: &str = "id, project_id, creator_id, type, status, name, algorithm, bit_length, mode, \
     payload_content_type, expiration, secret_id, container_id, error_code, error_reason, created, updated";

const CONTAINER_COLUMNS: &str = "id, project_id, creator_id, name, type, status, created, updated";

fn text(r: &Row, i: usize) -> Result<String, Fail> {
    Ok(r.try_get::<_, String>(i)?)
}

fn opt_text(r: &Row, i: usize) -> Result<Option<String>, Fail> {
    Ok(r.try_get::<_, Option<String>>(i)?)
}

fn parsed<T>(r: &Row, i: usize, what: &str, f: impl FnOnce(&str) -> Result<T>) -> Result<T, Fail> {
    let v = text(r, i)?;
    f(&v).map_err(|_| Fail::Kw(corrupt(what)))
}

fn secret_from_row(r: &Row) -> Result<SecretMeta, Fail> {
    Ok(SecretMeta {
        id: parsed(r, 0, "secret id", str::parse)?,
        project_id: parsed(r, 1, "project id", str::parse)?,
        name: opt_text(r, 2)?,
        algorithm: opt_text(r, 3)?,
        bit_length: r
            .try_get::<_, Option<i64>>(4)?
            .map(|b| u32::try_from(b).map_err(|_| corrupt("bit length")))
            .transpose()?,
        mode: opt_text(r, 5)?,
        secret_type: parsed(r, 6, "secret type", str::parse)?,
        expiration: r.try_get::<_, Option<i64>>(7)?.map(Timestamp::from_unix),
        created: Timestamp::from_unix(r.try_get(8)?),
        updated: Timestamp::from_unix(r.try_get(9)?),
        status: parsed(r, 10, "status", str::parse)?,
        content_type: opt_text(r, 11)?
            .map(|c| parse_content_type(&c))
            .transpose()?,
        creator_id: parsed(r, 12, "creator id", str::parse)?,
        backend_id: parsed(r, 13, "backend id", str::parse)?,
    })
}

/// `stored` and `kek_id` at `at` and `at + 1`.
fn stored_from_row(r: &Row, at: usize) -> Result<Option<StoredSecret>, Fail> {
    Ok(match r.try_get::<_, Option<Vec<u8>>>(at)? {
        Some(bytes) => Some(StoredSecret {
            bytes,
            kek_id: opt_text(r, at + 1)?,
        }),
        None => None,
    })
}

fn order_from_row(r: &Row) -> Result<Order, Fail> {
    let order_type = match text(r, 3)?.as_str() {
        "key" => OrderType::Key,
        "asymmetric" => OrderType::Asymmetric,
        _ => return Err(Fail::Kw(corrupt("order type"))),
    };
    Ok(Order {
        id: parsed(r, 0, "order id", str::parse)?,
        project_id: parsed(r, 1, "project id", str::parse)?,
        creator_id: parsed(r, 2, "creator id", str::parse)?,
        order_type,
        status: parsed(r, 4, "status", str::parse)?,
        name: opt_text(r, 5)?,
        algorithm: text(r, 6)?,
        bit_length: u32::try_from(r.try_get::<_, i64>(7)?).map_err(|_| corrupt("bit length"))?,
        mode: opt_text(r, 8)?,
        payload_content_type: opt_text(r, 9)?
            .map(|c| parse_content_type(&c))
            .transpose()?,
        expiration: r.try_get::<_, Option<i64>>(10)?.map(Timestamp::from_unix),
        secret_id: opt_text(r, 11)?
            .map(|s| s.parse().map_err(|_| corrupt("secret id")))
            .transpose()?,
        container_id: opt_text(r, 12)?
            .map(|s| s.parse().map_err(|_| corrupt("container id")))
            .transpose()?,
        error_code: r
            .try_get::<_, Option<i64>>(13)?
            .map(|c| u16::try_from(c).map_err(|_| corrupt("error code")))
            .transpose()?,
        error_reason: opt_text(r, 14)?,
        created: Timestamp::from_unix(r.try_get(15)?),
        updated: Timestamp::from_unix(r.try_get(16)?),
    })
}

/// A container row plus its references (read in the same snapshot by the caller).
fn container_from_rows(r: &Row, refs: &[Row]) -> Result<Container, Fail> {
    let container_type = match text(r, 4)?.as_str() {
        "generic" => ContainerType::Generic,
        "rsa" => ContainerType::Rsa,
        "certificate" => ContainerType::Certificate,
        _ => return Err(Fail::Kw(corrupt("container type"))),
    };
    let mut secret_refs = Vec::with_capacity(refs.len());
    for row in refs {
        secret_refs.push((text(row, 0)?, parsed(row, 1, "secret id", str::parse)?));
    }
    Ok(Container {
        id: parsed(r, 0, "container id", str::parse)?,
        project_id: parsed(r, 1, "project id", str::parse)?,
        creator_id: parsed(r, 2, "creator id", str::parse)?,
        name: opt_text(r, 3)?,
        container_type,
        status: parsed(r, 5, "status", str::parse)?,
        secret_refs,
        created: Timestamp::from_unix(r.try_get(6)?),
        updated: Timestamp::from_unix(r.try_get(7)?),
    })
}

fn load_container<C: GenericClient>(db: &mut Session<'_, C>, r: &Row) -> Result<Container, Fail> {
    let id = text(r, 0)?;
    let refs = db.query(
        "SELECT name, secret_id FROM container_secrets WHERE container_id = $1 ORDER BY name",
        &[&id],
    )?;
    container_from_rows(r, &refs)
}

fn kek_from_row(r: &Row) -> Result<WrappedKek, Fail> {
    Ok(WrappedKek {
        kek_id: text(r, 0)?,
        master_fingerprint: text(r, 1)?,
        wrapped: r.try_get(2)?,
    })
}

/// A bound value of a listing query.
enum Arg {
    Text(String),
    Int(i64),
}

impl Arg {
    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Arg::Text(s) => s,
            Arg::Int(i) => i,
        }
    }
}

/// SQLite's LIKE ignores ASCII case; ILIKE over `C`-collated columns does
/// the same, so both catalogs list alike.
fn like_or_eq(sql: &mut String, args: &mut Vec<Arg>, column: &str, pattern: &str) {
    args.push(Arg::Text(pattern.to_owned()));
    let n = args.len();
    if pattern.contains(['%', '_']) {
        sql.push_str(&format!(" AND {column} ILIKE ${n} ESCAPE '\\'"));
    } else {
        sql.push_str(&format!(" AND {column} = ${n}"));
    }
}

fn page_bounds(limit: u32, offset: u64) -> (i64, i64) {
    (i64::from(limit), i64::try_from(offset).unwrap_or(i64::MAX))
}

fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl Catalog for PostgresCatalog {
    fn apply(&self, batch: Vec<Write>) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        self.transact(IsolationLevel::Serializable, |db| {
            batch.iter().try_for_each(|w| apply_write(db, w))
        })
    }

    fn apply_each(&self, batches: Vec<Vec<Write>>) -> Vec<Result<()>> {
        super::apply_each_at_once_first(
            batches,
            |all| {
                self.transact(IsolationLevel::Serializable, |db| {
                    if !insert_in_bulk(db, &all)? {
                        all.iter().try_for_each(|w| apply_write(db, w))?;
                    }
                    Ok(())
                })
                .is_ok()
            },
            |batches| self.apply_each_by_savepoint(batches),
        )
    }

    fn secret(
        &self,
        id: &SecretId,
        caller: &UserId,
        with_stored: bool,
    ) -> Result<Option<SecretRow>> {
        self.read(|db| {
            let sql = format!(
                "SELECT {SECRET_COLUMNS}, read_project_access,
                   EXISTS (SELECT 1 FROM secret_acl_users a WHERE a.secret_id = s.id AND a.user_id = $2),
                   CASE WHEN $3 THEN stored END, kek_id
                 FROM secrets s WHERE id = $1"
            );
            let Some(r) = db.query_opt(&sql, &[&id.to_string(), &caller.as_str(), &with_stored])?
            else {
                return Ok(None);
            };
            Ok(Some(SecretRow {
                meta: secret_from_row(&r)?,
                acl: AclView {
                    project_access: r.try_get(14)?,
                    caller_listed: r.try_get(15)?,
                },
                stored: stored_from_row(&r, 16)?,
            }))
        })
    }

    fn list_secrets(
        &self,
        project: &ProjectId,
        filter: &SecretFilter,
        limit: u32,
        offset: u64,
        now: Timestamp,
    ) -> Result<Page<SecretMeta>> {
        let mut args = vec![Arg::Int(now.unix())];
        let mut sql = String::from(" FROM secrets s WHERE (expiration IS NULL OR expiration > $1)");
        match &filter.acl_user {
            Some(user) => {
                args.push(Arg::Text(user.as_str().to_owned()));
                sql.push_str(&format!(
                    " AND id IN (SELECT secret_id FROM secret_acl_users WHERE user_id = ${})",
                    args.len()
                ));
            }
            None => {
                args.push(Arg::Text(project.as_str().to_owned()));
                sql.push_str(&format!(" AND project_id = ${}", args.len()));
            }
        }
        if let Some(name) = &filter.name {
            like_or_eq(&mut sql, &mut args, "name", name);
        }
        if let Some(alg) = &filter.algorithm {
            like_or_eq(&mut sql, &mut args, "algorithm", alg);
        }
        if let Some(mode) = &filter.mode {
            like_or_eq(&mut sql, &mut args, "mode", mode);
        }
        if let Some(bits) = filter.bit_length {
            args.push(Arg::Int(bits.into()));
            sql.push_str(&format!(" AND bit_length = ${}", args.len()));
        }
        if let Some(t) = filter.secret_type {
            args.push(Arg::Text(t.as_str().to_owned()));
            sql.push_str(&format!(" AND secret_type = ${}", args.len()));
        }
        for (column, conds) in [
            ("created", &filter.created),
            ("updated", &filter.updated),
            ("expiration", &filter.expiration),
        ] {
            for (cmp, t) in conds {
                args.push(Arg::Int(t.unix()));
                sql.push_str(&format!(" AND {column} {} ${}", cmp_sql(*cmp), args.len()));
            }
        }
        let mut order = String::from(" ORDER BY ");
        for (key, desc) in &filter.sort {
            order.push_str(sort_column(*key));
            // SQLite puts NULLs first ascending and last descending.
            order.push_str(if *desc {
                " DESC NULLS LAST, "
            } else {
                " ASC NULLS FIRST, "
            });
        }
        let (lim, off) = page_bounds(limit, offset);
        let n = args.len();
        order.push_str(&format!(
            "created ASC, id ASC LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        ));
        let count_sql = format!("SELECT COUNT(*){sql}");
        let page_sql = format!("SELECT {SECRET_COLUMNS}{sql}{order}");
        // One snapshot, so the total and the page agree.
        self.transact(IsolationLevel::RepeatableRead, |db| {
            let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(Arg::as_sql).collect();
            let total: i64 = db.query_one(&count_sql, &params)?.try_get(0)?;
            let mut page_params = params.clone();
            page_params.push(&lim);
            page_params.push(&off);
            let rows = db.query(&page_sql, &page_params)?;
            let items = rows
                .iter()
                .map(secret_from_row)
                .collect::<Result<Vec<_>, Fail>>()?;
            Ok(Page {
                items,
                total: count(total),
                limit,
                offset,
            })
        })
    }

    fn consumers(&self, id: &SecretId) -> Result<Vec<Consumer>> {
        self.read(|db| {
            let rows = db.query(
                "SELECT service, resource_type, resource_id FROM secret_consumers
                 WHERE secret_id = $1 ORDER BY service, resource_type, resource_id",
                &[&id.to_string()],
            )?;
            rows.iter()
                .map(|r| {
                    Ok(Consumer {
                        service: text(r, 0)?,
                        resource_type: text(r, 1)?,
                        resource_id: text(r, 2)?,
                    })
                })
                .collect()
        })
    }

    fn secret_acl(&self, id: &SecretId) -> Result<Acl> {
        self.read(|db| {
            // One statement: the flag and the users from one snapshot.
            let row = db.query_opt(
                "SELECT read_project_access,
                   ARRAY(SELECT user_id FROM secret_acl_users WHERE secret_id = s.id ORDER BY user_id)
                 FROM secrets s WHERE id = $1",
                &[&id.to_string()],
            )?;
            let Some(row) = row else {
                return Err(Fail::Kw(not_found(id)));
            };
            let users: Vec<String> = row.try_get(1)?;
            Ok(Acl {
                project_access: row.try_get(0)?,
                users: users
                    .iter()
                    .map(|u| u.parse().map_err(|_| Fail::Kw(corrupt("user id"))))
                    .collect::<Result<_, _>>()?,
            })
        })
    }

    fn order(&self, id: &OrderId) -> Result<Option<Order>> {
        self.read(|db| {
            db.query_opt(
                &format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1"),
                &[&id.to_string()],
            )?
            .map(|r| order_from_row(&r))
            .transpose()
        })
    }

    fn list_orders(&self, project: &ProjectId, limit: u32, offset: u64) -> Result<Page<Order>> {
        let (lim, off) = page_bounds(limit, offset);
        self.transact(IsolationLevel::RepeatableRead, |db| {
            let total: i64 = db
                .query_one(
                    "SELECT COUNT(*) FROM orders WHERE project_id = $1",
                    &[&project.as_str()],
                )?
                .try_get(0)?;
            let rows = db.query(
                &format!(
                    "SELECT {ORDER_COLUMNS} FROM orders WHERE project_id = $1
                     ORDER BY created, id LIMIT $2 OFFSET $3"
                ),
                &[&project.as_str(), &lim, &off],
            )?;
            Ok(Page {
                items: rows.iter().map(order_from_row).collect::<Result<_, _>>()?,
                total: count(total),
                limit,
                offset,
            })
        })
    }

    fn container(&self, id: &ContainerId) -> Result<Option<Container>> {
        self.transact(IsolationLevel::RepeatableRead, |db| {
            let row = db.query_opt(
                &format!("SELECT {CONTAINER_COLUMNS} FROM containers WHERE id = $1"),
                &[&id.to_string()],
            )?;
            row.map(|r| load_container(db, &r)).transpose()
        })
    }

    fn list_containers(
        &self,
        project: &ProjectId,
        limit: u32,
        offset: u64,
    ) -> Result<Page<Container>> {
        let (lim, off) = page_bounds(limit, offset);
        self.transact(IsolationLevel::RepeatableRead, |db| {
            let total: i64 = db
                .query_one(
                    "SELECT COUNT(*) FROM containers WHERE project_id = $1",
                    &[&project.as_str()],
                )?
                .try_get(0)?;
            let rows = db.query(
                &format!(
                    "SELECT {CONTAINER_COLUMNS} FROM containers WHERE project_id = $1
                     ORDER BY created, id LIMIT $2 OFFSET $3"
                ),
                &[&project.as_str(), &lim, &off],
            )?;
            let mut items = Vec::with_capacity(rows.len());
            for r in &rows {
                items.push(load_container(db, r)?);
            }
            Ok(Page {
                items,
                total: count(total),
                limit,
                offset,
            })
        })
    }

    fn project_backend(&self, project: &ProjectId) -> Result<Option<BackendId>> {
        self.read(|db| {
            db.query_opt(
                "SELECT backend_id FROM project_backends WHERE project_id = $1",
                &[&project.as_str()],
            )?
            .map(|r| parsed(&r, 0, "backend id", str::parse))
            .transpose()
        })
    }

    fn project_backends(&self) -> Result<Vec<(ProjectId, BackendId)>> {
        self.read(|db| {
            let rows = db.query(
                "SELECT project_id, backend_id FROM project_backends ORDER BY project_id",
                &[],
            )?;
            rows.iter()
                .map(|r| {
                    Ok((
                        parsed(r, 0, "project id", str::parse)?,
                        parsed(r, 1, "backend id", str::parse)?,
                    ))
                })
                .collect()
        })
    }

    fn counts(&self) -> Result<Counts> {
        self.transact(IsolationLevel::RepeatableRead, |db| {
            let r = db.query_one(
                "SELECT (SELECT COUNT(*) FROM secrets),
                        (SELECT COUNT(*) FROM secrets WHERE stored IS NOT NULL),
                        (SELECT COUNT(*) FROM orders),
                        (SELECT COUNT(*) FROM containers),
                        (SELECT COUNT(*) FROM secret_consumers),
                        (SELECT COUNT(*) FROM project_keks)",
                &[],
            )?;
            let n = |i: usize| -> Result<u64, Fail> { Ok(count(r.try_get(i)?)) };
            Ok(Counts {
                secrets: n(0)?,
                secrets_with_payload: n(1)?,
                orders: n(2)?,
                containers: n(3)?,
                consumers: n(4)?,
                projects_with_keks: n(5)?,
            })
        })
    }

    fn scan_secrets(
        &self,
        after: Option<&SecretId>,
        limit: u32,
    ) -> Result<Vec<(SecretMeta, Option<StoredSecret>)>> {
        let after = after.map(ToString::to_string).unwrap_or_default();
        self.read(|db| {
            let rows = db.query(
                &format!(
                    "SELECT {SECRET_COLUMNS}, stored, kek_id FROM secrets WHERE id > $1 ORDER BY id LIMIT $2"
                ),
                &[&after, &i64::from(limit)],
            )?;
            rows.iter()
                .map(|r| Ok((secret_from_row(r)?, stored_from_row(r, 14)?)))
                .collect()
        })
    }

    fn purge_expired(&self, now: Timestamp) -> Result<u64> {
        self.transact(IsolationLevel::Serializable, |db| {
            Ok(db.execute(
                "DELETE FROM secrets WHERE expiration IS NOT NULL AND expiration <= $1",
                &[&now.unix()],
            )?)
        })
    }

    fn export(&self, out: &mut RecordSink<'_>) -> Result<()> {
        // A read-only snapshot: writers carry on meanwhile. Not retried: the
        // sink has seen rows by the time anything could fail.
        let mut conn = self.pool.checkout()?;
        let c = conn.get();
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
            export_rows(&mut db, out)?;
            tx.commit()?;
            Ok(())
        })();
        if result.is_err() {
            conn.discard_if_broken();
        }
        result.map_err(Fail::into_error)
    }

    fn replace_with(&self, rows: &mut RecordSource<'_>) -> Result<()> {
        let mut conn = self.pool.checkout()?;
        let c = conn.get();
        let result = (|| -> Result<(), Fail> {
            let mut tx = c.client.transaction()?;
            let mut db = Session {
                client: &mut tx,
                cache: &mut c.cache,
            };
            // Writers wait until the new content is in; readers keep seeing
            // the old until then.
            db.batch(&format!(
                "LOCK TABLE {TABLES} IN EXCLUSIVE MODE; \
                 DELETE FROM container_secrets; DELETE FROM containers; DELETE FROM orders; \
                 DELETE FROM secret_consumers; DELETE FROM secret_acl_users; DELETE FROM secrets; \
                 DELETE FROM project_backends; DELETE FROM project_keks;"
            ))?;
            rows(&mut |row| insert_record(&mut db, row).map_err(Fail::into_error))?;
            tx.commit()?;
            Ok(())
        })();
        if result.is_err() {
            conn.discard_if_broken();
        }
        result.map_err(Fail::into_error)
    }
}

fn export_rows(
    db: &mut Session<'_, Transaction<'_>>,
    out: &mut RecordSink<'_>,
) -> Result<(), Fail> {
    for r in db.query(
        "SELECT kek_id, master_fingerprint, wrapped, backend_id, project_id, created
         FROM project_keks ORDER BY backend_id, project_id",
        &[],
    )? {
        out(Record::ProjectKek {
            kek: kek_from_row(&r)?,
            backend: parsed(&r, 3, "backend id", str::parse)?,
            project: parsed(&r, 4, "project id", str::parse)?,
            created: Timestamp::from_unix(r.try_get(5)?),
        })?;
    }
    for r in db.query(
        "SELECT project_id, backend_id FROM project_backends ORDER BY project_id",
        &[],
    )? {
        out(Record::ProjectBackend {
            project: parsed(&r, 0, "project id", str::parse)?,
            backend: parsed(&r, 1, "backend id", str::parse)?,
        })?;
    }
    // Secrets in pages, so a large catalog is never all in memory.
    let mut after = String::new();
    loop {
        let rows = db.query(
            &format!(
                "SELECT {SECRET_COLUMNS}, stored, kek_id, read_project_access FROM secrets
                 WHERE id > $1 ORDER BY id LIMIT 1000"
            ),
            &[&after],
        )?;
        let Some(last) = rows.last() else {
            break;
        };
        after = text(last, 0)?;
        for r in &rows {
            out(Record::Secret {
                meta: secret_from_row(r)?,
                stored: stored_from_row(r, 14)?,
                project_access: r.try_get(16)?,
            })?;
        }
    }
    for r in db.query(
        "SELECT secret_id, user_id FROM secret_acl_users ORDER BY secret_id, user_id",
        &[],
    )? {
        out(Record::AclUser {
            secret: parsed(&r, 0, "secret id", str::parse)?,
            user: parsed(&r, 1, "user id", str::parse)?,
        })?;
    }
    for r in db.query(
        "SELECT secret_id, service, resource_type, resource_id FROM secret_consumers
         ORDER BY secret_id, service, resource_type, resource_id",
        &[],
    )? {
        out(Record::Consumer {
            secret: parsed(&r, 0, "secret id", str::parse)?,
            consumer: Consumer {
                service: text(&r, 1)?,
                resource_type: text(&r, 2)?,
                resource_id: text(&r, 3)?,
            },
        })?;
    }
    for r in db.query(
        &format!("SELECT {ORDER_COLUMNS} FROM orders ORDER BY id"),
        &[],
    )? {
        out(Record::Order(order_from_row(&r)?))?;
    }
    for r in db.query(
        &format!("SELECT {CONTAINER_COLUMNS} FROM containers ORDER BY id"),
        &[],
    )? {
        let container = load_container(db, &r)?;
        out(Record::Container(container))?;
    }
    Ok(())
}

impl KekStore for PostgresCatalog {
    fn project_kek(&self, backend: &BackendId, project: &ProjectId) -> Result<Option<WrappedKek>> {
        self.read(|db| {
            db.query_opt(
                "SELECT kek_id, master_fingerprint, wrapped FROM project_keks
                 WHERE backend_id = $1 AND project_id = $2",
                &[&backend.as_str(), &project.as_str()],
            )?
            .map(|r| kek_from_row(&r))
            .transpose()
        })
    }

    fn insert_project_kek(
        &self,
        backend: &BackendId,
        project: &ProjectId,
        kek: WrappedKek,
    ) -> Result<WrappedKek> {
        // The primary key (backend, project) decides the race: the loser's
        // insert waits for the winner's commit, does nothing, and the read
        // after it (a new snapshot under READ COMMITTED) finds the winner's.
        self.transact(IsolationLevel::ReadCommitted, |db| {
            db.execute(
                "INSERT INTO project_keks (backend_id, project_id, kek_id, master_fingerprint, wrapped, created)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (backend_id, project_id) DO NOTHING",
                &[
                    &backend.as_str(),
                    &project.as_str(),
                    &kek.kek_id,
                    &kek.master_fingerprint,
                    &kek.wrapped,
                    &Timestamp::now().unix(),
                ],
            )?;
            let r = db.query_one(
                "SELECT kek_id, master_fingerprint, wrapped FROM project_keks
                 WHERE backend_id = $1 AND project_id = $2",
                &[&backend.as_str(), &project.as_str()],
            )?;
            kek_from_row(&r)
        })
    }

    fn project_keks(&self, backend: &BackendId) -> Result<Vec<(ProjectId, WrappedKek)>> {
        self.read(|db| {
            let rows = db.query(
                "SELECT kek_id, master_fingerprint, wrapped, project_id FROM project_keks
                 WHERE backend_id = $1 ORDER BY project_id",
                &[&backend.as_str()],
            )?;
            rows.iter()
                .map(|r| Ok((parsed(r, 3, "project id", str::parse)?, kek_from_row(r)?)))
                .collect()
        })
    }

    fn replace_project_keks(
        &self,
        backend: &BackendId,
        keks: Vec<(ProjectId, WrappedKek)>,
    ) -> Result<()> {
        self.transact(IsolationLevel::Serializable, |db| {
            for (project, kek) in &keks {
                let n = db.execute(
                    "UPDATE project_keks SET master_fingerprint = $4, wrapped = $5
                     WHERE backend_id = $1 AND project_id = $2 AND kek_id = $3",
                    &[
                        &backend.as_str(),
                        &project.as_str(),
                        &kek.kek_id,
                        &kek.master_fingerprint,
                        &kek.wrapped,
                    ],
                )?;
                if n != 1 {
                    return Err(Fail::Kw(Error::new(
                        ErrorKind::Conflict,
                        format!(
                            "project KEK of {project} changed during rotation; nothing was rewrapped"
                        ),
                    )));
                }
            }
            Ok(())
        })
    }
}
