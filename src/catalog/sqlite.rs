//! The SQLite catalog: one database file in WAL mode, `synchronous=FULL`.
//!
//! Writes use group commit: a writer queues its batch and takes the write
//! connection; whoever holds it runs every queued batch (each in its own
//! savepoint) inside one transaction and commits once, then hands each waiter
//! its own outcome. A lone writer commits its own batch and returns only once
//! that commit is durable; many writers share one fsync.

use std::collections::VecDeque;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior, params};

use crate::backend::{KekStore, StoredSecret, WrappedKek};
use crate::catalog::{
    Acl, AclView, Catalog, Container, ContainerType, Counts, Order, OrderType, Page, Record,
    RecordSink, RecordSource, SecretFilter, SecretRow, Write, cmp_sql, corrupt, parse_content_type,
    sort_column,
};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{
    BackendId, Consumer, ContainerId, ContentType, OrderId, ProjectId, SecretId, SecretMeta,
    Timestamp, UserId,
};

/// Forward migrations; `PRAGMA user_version` records how many have run.
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE secrets (
    id TEXT PRIMARY KEY NOT NULL,
    project_id TEXT NOT NULL,
    name TEXT,
    algorithm TEXT,
    bit_length INTEGER,
    mode TEXT,
    secret_type TEXT NOT NULL,
    expiration INTEGER,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    status TEXT NOT NULL,
    content_type TEXT,
    creator_id TEXT NOT NULL,
    backend_id TEXT NOT NULL,
    stored BLOB,
    -- The project KEK that encrypted `stored` (crypto backends): a secret
    -- can never be written under a KEK this catalog does not hold.
    kek_id TEXT REFERENCES project_keks (kek_id),
    read_project_access INTEGER NOT NULL DEFAULT 1,
    CHECK ((content_type IS NULL) = (stored IS NULL))
);
CREATE INDEX secrets_by_project_created ON secrets (project_id, created, id);
CREATE INDEX secrets_by_project_name ON secrets (project_id, name, created, id);
-- Lets the listing total count unexpired rows from the index alone.
CREATE INDEX secrets_by_project_expiration ON secrets (project_id, expiration);
CREATE TABLE secret_acl_users (
    secret_id TEXT NOT NULL REFERENCES secrets (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    PRIMARY KEY (secret_id, user_id)
) WITHOUT ROWID;
CREATE INDEX secret_acl_users_by_user ON secret_acl_users (user_id);
CREATE TABLE secret_consumers (
    secret_id TEXT NOT NULL REFERENCES secrets (id) ON DELETE CASCADE,
    service TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    PRIMARY KEY (secret_id, service, resource_type, resource_id)
) WITHOUT ROWID;
CREATE TABLE project_keks (
    backend_id TEXT NOT NULL,
    project_id TEXT NOT NULL,
    kek_id TEXT NOT NULL UNIQUE,
    master_fingerprint TEXT NOT NULL,
    wrapped BLOB NOT NULL,
    created INTEGER NOT NULL,
    PRIMARY KEY (backend_id, project_id)
);
CREATE TABLE project_backends (
    project_id TEXT PRIMARY KEY NOT NULL,
    backend_id TEXT NOT NULL
);
CREATE TABLE orders (
    id TEXT PRIMARY KEY NOT NULL,
    project_id TEXT NOT NULL,
    creator_id TEXT NOT NULL,
    type TEXT NOT NULL,
    status TEXT NOT NULL,
    name TEXT,
    algorithm TEXT NOT NULL,
    bit_length INTEGER NOT NULL,
    mode TEXT,
    payload_content_type TEXT,
    expiration INTEGER,
    secret_id TEXT,
    container_id TEXT,
    error_code INTEGER,
    error_reason TEXT,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL
);
CREATE INDEX orders_by_project ON orders (project_id, created, id);
CREATE TABLE containers (
    id TEXT PRIMARY KEY NOT NULL,
    project_id TEXT NOT NULL,
    creator_id TEXT NOT NULL,
    name TEXT,
    type TEXT NOT NULL,
    status TEXT NOT NULL,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL
);
CREATE INDEX containers_by_project ON containers (project_id, created, id);
CREATE TABLE container_secrets (
    container_id TEXT NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    secret_id TEXT NOT NULL,
    PRIMARY KEY (container_id, name)
) WITHOUT ROWID;
"#];

/// Connection settings.
#[derive(Clone, Debug)]
pub struct SqliteOptions {
    /// How long a writer waits for another process's lock.
    pub busy_timeout: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            busy_timeout: Duration::from_secs(10),
        }
    }
}

/// The SQLite catalog.
pub struct SqliteCatalog {
    path: PathBuf,
    options: SqliteOptions,
    queue: Mutex<VecDeque<Job>>,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

struct Job {
    batch: Vec<Write>,
    done: SyncSender<Result<()>>,
}

impl SqliteCatalog {
    /// Opens (creating if needed) the database at `path` and brings its
    /// schema up to date.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, SqliteOptions::default())
    }

    pub fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self> {
        Self::open_inner(path.as_ref(), options, true)
    }

    /// Opens an existing catalog (bringing its schema up to date); refuses a
    /// missing file, or a file that is not a keywarden catalog, naming it.
    pub fn open_existing(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if !path.is_file() {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("catalog {} does not exist", path.display()),
            ));
        }
        let not_ours = |why: String| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("{} is not a keywarden catalog: {why}", path.display()),
            )
        };
        let probe = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| not_ours(e.to_string()))?;
        let version: u32 = probe
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| not_ours(e.to_string()))?;
        let has_secrets: bool = probe
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'secrets')",
                [],
                |r| r.get(0),
            )
            .map_err(|e| not_ours(e.to_string()))?;
        drop(probe);
        if version == 0 || !has_secrets {
            return Err(not_ours("it has no keywarden schema".to_owned()));
        }
        Self::open_inner(path, SqliteOptions::default(), false)
    }

    fn open_inner(path: &Path, options: SqliteOptions, create: bool) -> Result<Self> {
        let path = path.to_path_buf();
        let mut writer = connect(&path, &options, create)?;
        migrate(&mut writer)?;
        Ok(SqliteCatalog {
            path,
            options,
            queue: Mutex::new(VecDeque::new()),
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version this database is at.
    pub fn schema_version(&self) -> Result<u32> {
        self.read(|c| Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0))?))
    }

    /// Writes a consistent copy of the database to `dest` (SQLite's
    /// `VACUUM INTO`) while other writers carry on.
    pub fn backup_to(&self, dest: impl AsRef<Path>) -> Result<()> {
        let dest = dest.as_ref();
        let dest_str = dest
            .to_str()
            .ok_or_else(|| Error::invalid("output", "backup path must be valid UTF-8"))?;
        self.read(|c| {
            c.execute("VACUUM INTO ?1", [dest_str]).map_err(|e| {
                Error::new(
                    ErrorKind::Unavailable,
                    format!("cannot write the backup {}", dest.display()),
                )
                .with_source(e)
            })?;
            Ok(())
        })
    }

    fn scan(
        &self,
        after: Option<&SecretId>,
        limit: u32,
    ) -> Result<Vec<(SecretMeta, Option<StoredSecret>)>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {SECRET_COLUMNS}, stored, kek_id FROM secrets WHERE id > ?1 ORDER BY id LIMIT ?2"
            ))?;
            let after = after.map(ToString::to_string).unwrap_or_default();
            let mut rows = stmt.query(params![after, limit])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let meta = secret_from_row(r)?;
                let stored = r
                    .get::<_, Option<Vec<u8>>>(14)?
                    .map(|bytes| -> Result<StoredSecret> {
                        Ok(StoredSecret {
                            bytes,
                            kek_id: r.get(15)?,
                        })
                    })
                    .transpose()?;
                out.push((meta, stored));
            }
            Ok(out)
        })
    }

    /// Replaces this database's whole content with the database at `src`,
    /// atomically for other connections (SQLite's online backup API, run on
    /// the write connection so no local write interleaves). `progress` gets
    /// (pages copied, pages in all).
    pub fn restore_from(
        &self,
        src: impl AsRef<Path>,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<()> {
        let src = Connection::open_with_flags(src.as_ref(), OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| {
                Error::new(ErrorKind::Unavailable, "cannot open the backup").with_source(e)
            })?;
        let mut conn = lock(&self.writer);
        {
            let backup = rusqlite::backup::Backup::new(&src, &mut conn)?;
            // Another process holding the database busy: wait as a writer
            // would, then give up rather than block this process's writers.
            let deadline = std::time::Instant::now() + self.options.busy_timeout;
            loop {
                let more = backup.step(256)?;
                let p = backup.progress();
                let total = u64::try_from(p.pagecount).unwrap_or(0);
                let remaining = u64::try_from(p.remaining).unwrap_or(0);
                progress(total.saturating_sub(remaining), total);
                match more {
                    rusqlite::backup::StepResult::Done => break,
                    rusqlite::backup::StepResult::More => {}
                    _ if std::time::Instant::now() >= deadline => {
                        return Err(Error::new(
                            ErrorKind::Unavailable,
                            "the catalog stayed busy; nothing was restored, stop its writers and retry",
                        ));
                    }
                    _ => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        }
        // Readers in the pool may hold a stale schema cache; start afresh.
        lock(&self.readers).clear();
        conn.flush_prepared_statement_cache();
        // The backup may come from an older keywarden: bring it up to date
        // (or refuse one from a newer keywarden).
        migrate(&mut conn)
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = match lock(&self.readers).pop() {
            Some(c) => c,
            None => connect(&self.path, &self.options, false)?,
        };
        let out = f(&conn);
        lock(&self.readers).push(conn);
        out
    }

    /// Group commit: queue the batch, then drain the queue while holding the
    /// write connection (ours may already have been committed by another).
    fn submit(&self, batches: Vec<Vec<Write>>) -> Vec<Result<()>> {
        let mut waiting = Vec::with_capacity(batches.len());
        {
            // Queued together, so they commit together unless another
            // writer's group picks some of them up first.
            let mut queue = lock(&self.queue);
            for batch in batches {
                let (done, outcome) = sync_channel(1);
                queue.push_back(Job { batch, done });
                waiting.push(outcome);
            }
        }
        {
            let mut conn = lock(&self.writer);
            let jobs: Vec<Job> = lock(&self.queue).drain(..).collect();
            if !jobs.is_empty() {
                run_jobs(&mut conn, jobs, self.options.busy_timeout);
            }
        }
        waiting
            .into_iter()
            .map(|outcome| {
                outcome.recv().unwrap_or_else(|_| {
                    Err(Error::new(
                        ErrorKind::Storage,
                        "catalog writer stopped before reporting",
                    ))
                })
            })
            .collect()
    }
}

impl fmt::Debug for SqliteCatalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteCatalog")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves a connection or queue
    // that is still consistent (SQLite rolls back), so carry on with it.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn connect(path: &Path, options: &SqliteOptions, create: bool) -> Result<Connection> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags).map_err(|e| {
        Error::new(
            ErrorKind::Unavailable,
            format!("cannot open SQLite catalog {}", path.display()),
        )
        .with_source(e)
    })?;
    conn.busy_timeout(options.busy_timeout)?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::new(
            ErrorKind::Storage,
            format!("SQLite catalog refused WAL mode (got {mode})"),
        ));
    }
    // temp_store=MEMORY keeps statement journals (copies of pages a
    // savepoint touches) off disk: faster, and no temp files of catalog
    // pages. A 16 MiB page cache holds a bulk transaction's dirty pages.
    conn.execute_batch(
        "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA secure_delete=ON;
         PRAGMA temp_store=MEMORY; PRAGMA cache_size=-16384;",
    )?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: u32 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let known = MIGRATIONS.len() as u32;
    if version > known {
        return Err(Error::new(
            ErrorKind::Config,
            format!(
                "catalog schema version {version} is newer than this keywarden understands ({known}); upgrade keywarden"
            ),
        ));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as u32)?;
    }
    tx.commit()?;
    Ok(())
}

/// After a delete: copy the WAL into the database file (where
/// `secure_delete` has zeroed the freed pages) and truncate it, so the
/// deleted ciphertext does not linger in old WAL frames. Best effort: when
/// readers are busy it is left to the next checkpoint.
fn scrub_wal(conn: &Connection, busy_timeout: Duration) {
    let _ = conn.busy_timeout(Duration::ZERO);
    let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    let _ = conn.busy_timeout(busy_timeout);
}

/// What happened to one group transaction.
enum GroupOutcome {
    /// Committed: each job's own outcome (failed jobs were rolled back to
    /// their savepoint and left nothing behind).
    Committed(Vec<Result<()>>),
    /// Job `culprit` failed in a way that made SQLite roll back the whole
    /// transaction (disk full, I/O error): nothing in the group is durable.
    RolledBack { culprit: usize, error: Error },
}

fn run_jobs(conn: &mut Connection, jobs: Vec<Job>, busy_timeout: Duration) {
    let mut pending = jobs;
    while !pending.is_empty() {
        match run_group(conn, &pending) {
            Ok(GroupOutcome::Committed(outcomes)) => {
                let deleted = pending.iter().zip(&outcomes).any(|(job, outcome)| {
                    outcome.is_ok()
                        && job
                            .batch
                            .iter()
                            .any(|w| matches!(w, Write::DeleteSecret { .. }))
                });
                if deleted {
                    scrub_wal(conn, busy_timeout);
                }
                for (job, outcome) in pending.drain(..).zip(outcomes) {
                    // The waiter may have given up; nothing to do then.
                    let _ = job.done.send(outcome);
                }
            }
            Ok(GroupOutcome::RolledBack { culprit, error }) => {
                // Fail the batch that broke the transaction, run the rest again.
                let job = pending.remove(culprit);
                let _ = job.done.send(Err(error));
            }
            Err(e) => {
                // BEGIN or COMMIT failed: nothing in this group is durable.
                let kind = e.kind();
                let shared = std::sync::Arc::new(e);
                for job in pending.drain(..) {
                    let err = Error::new(kind, "the catalog could not commit this write")
                        .with_source(shared.clone());
                    let _ = job.done.send(Err(err));
                }
            }
        }
    }
}

/// A statement run often enough that parsing it each time shows.
fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

fn run_group(conn: &Connection, jobs: &[Job]) -> Result<GroupOutcome> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let mut outcomes = Vec::with_capacity(jobs.len());
    for (i, job) in jobs.iter().enumerate() {
        if let Err(e) = run_cached(conn, "SAVEPOINT job") {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e.into());
        }
        let outcome = match job.batch.iter().try_for_each(|w| apply_write(conn, w)) {
            // SQLite already rolled the whole transaction back.
            Err(error) if conn.is_autocommit() => {
                return Ok(GroupOutcome::RolledBack { culprit: i, error });
            }
            other => other,
        };
        let end = if outcome.is_ok() {
            run_cached(conn, "RELEASE job")
        } else {
            run_cached(conn, "ROLLBACK TO job").and_then(|()| run_cached(conn, "RELEASE job"))
        };
        if let Err(e) = end {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e.into());
        }
        outcomes.push(outcome);
    }
    if let Err(e) = conn.execute_batch("COMMIT") {
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        return Err(e.into());
    }
    Ok(GroupOutcome::Committed(outcomes))
}

fn apply_write(c: &Connection, w: &Write) -> Result<()> {
    match w {
        Write::InsertSecret { meta, stored } => {
            c.prepare_cached(
                "INSERT INTO secrets (id, project_id, name, algorithm, bit_length, mode, secret_type,
                 expiration, created, updated, status, content_type, creator_id, backend_id, stored, kek_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            )?
            .execute(params![
                meta.id.to_string(),
                meta.project_id.as_str(),
                meta.name,
                meta.algorithm,
                meta.bit_length,
                meta.mode,
                meta.secret_type.as_str(),
                meta.expiration.map(Timestamp::unix),
                meta.created.unix(),
                meta.updated.unix(),
                meta.status.as_str(),
                meta.content_type.map(ContentType::as_str),
                meta.creator_id.as_str(),
                meta.backend_id.as_str(),
                stored.as_ref().map(|s| s.bytes.as_slice()),
                stored.as_ref().and_then(|s| s.kek_id.as_deref()),
            ])
            .map_err(|e| match unique_violation(&e) {
                true => Error::new(ErrorKind::Conflict, format!("secret {} already exists", meta.id)),
                false => kek_violation(e),
            })?;
        }
        Write::SetPayload {
            id,
            content_type,
            stored,
            updated,
        } => {
            let n = c
                .prepare_cached(
                    "UPDATE secrets SET content_type = ?2, stored = ?3, kek_id = ?5, updated = ?4
                     WHERE id = ?1 AND stored IS NULL",
                )?
                .execute(params![
                    id.to_string(),
                    content_type.as_str(),
                    stored.bytes,
                    updated.unix(),
                    stored.kek_id,
                ])
                .map_err(kek_violation)?;
            if n == 0 {
                return Err(if secret_exists(c, id)? {
                    Error::new(
                        ErrorKind::Conflict,
                        "Secret already has data, cannot modify it.",
                    )
                } else {
                    Error::new(ErrorKind::NotFound, format!("secret {id} not found"))
                });
            }
        }
        Write::DeleteSecret { id, force } => {
            if !force {
                let consumers: i64 = c
                    .prepare_cached("SELECT COUNT(*) FROM secret_consumers WHERE secret_id = ?1")?
                    .query_row([id.to_string()], |r| r.get(0))?;
                if consumers > 0 {
                    return Err(Error::new(
                        ErrorKind::Conflict,
                        format!(
                            "Secret cannot be deleted as it has consumers ({consumers}); use force"
                        ),
                    ));
                }
            }
            let n = c
                .prepare_cached("DELETE FROM secrets WHERE id = ?1")?
                .execute([id.to_string()])?;
            if n == 0 {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!("secret {id} not found"),
                ));
            }
        }
        Write::AddConsumer { id, consumer } => {
            require_secret(c, id)?;
            c.prepare_cached(
                "INSERT OR IGNORE INTO secret_consumers (secret_id, service, resource_type, resource_id)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![id.to_string(), consumer.service, consumer.resource_type, consumer.resource_id])?;
        }
        Write::RemoveConsumer { id, consumer } => {
            let n = c
                .prepare_cached(
                    "DELETE FROM secret_consumers
                     WHERE secret_id = ?1 AND service = ?2 AND resource_type = ?3 AND resource_id = ?4",
                )?
                .execute(params![id.to_string(), consumer.service, consumer.resource_type, consumer.resource_id])?;
            if n == 0 {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    "consumer not registered on this secret",
                ));
            }
        }
        Write::SetAcl { id, acl } => {
            require_secret(c, id)?;
            let acl = acl.clone().unwrap_or_default();
            c.prepare_cached("UPDATE secrets SET read_project_access = ?2 WHERE id = ?1")?
                .execute(params![id.to_string(), acl.project_access])?;
            c.prepare_cached("DELETE FROM secret_acl_users WHERE secret_id = ?1")?
                .execute([id.to_string()])?;
            let mut ins = c.prepare_cached(
                "INSERT OR IGNORE INTO secret_acl_users (secret_id, user_id) VALUES (?1, ?2)",
            )?;
            for user in &acl.users {
                ins.execute(params![id.to_string(), user.as_str()])?;
            }
        }
        Write::GrantRead { id, user } => {
            c.prepare_cached(
                "INSERT OR IGNORE INTO secret_acl_users (secret_id, user_id) VALUES (?1, ?2)",
            )?
            .execute(params![id.to_string(), user.as_str()])
            .map_err(|e| match &e {
                rusqlite::Error::SqliteFailure(f, _)
                    if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY =>
                {
                    Error::new(ErrorKind::NotFound, format!("secret {id} not found"))
                }
                _ => e.into(),
            })?;
        }
        Write::InsertOrder(o) => {
            c.prepare_cached(
                "INSERT INTO orders (id, project_id, creator_id, type, status, name, algorithm, bit_length, mode,
                 payload_content_type, expiration, secret_id, container_id, error_code, error_reason, created, updated)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
            )?
            .execute(params![
                o.id.to_string(),
                o.project_id.as_str(),
                o.creator_id.as_str(),
                o.order_type.as_str(),
                o.status.as_str(),
                o.name,
                o.algorithm,
                o.bit_length,
                o.mode,
                o.payload_content_type.map(ContentType::as_str),
                o.expiration.map(Timestamp::unix),
                o.secret_id.map(|s| s.to_string()),
                o.container_id.map(|s| s.to_string()),
                o.error_code,
                o.error_reason,
                o.created.unix(),
                o.updated.unix(),
            ])?;
        }
        Write::DeleteOrder(id) => {
            let n = c
                .prepare_cached("DELETE FROM orders WHERE id = ?1")?
                .execute([id.to_string()])?;
            if n == 0 {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!("order {id} not found"),
                ));
            }
        }
        Write::InsertContainer(k) => {
            c.prepare_cached(
                "INSERT INTO containers (id, project_id, creator_id, name, type, status, created, updated)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                k.id.to_string(),
                k.project_id.as_str(),
                k.creator_id.as_str(),
                k.name,
                k.container_type.as_str(),
                k.status.as_str(),
                k.created.unix(),
                k.updated.unix(),
            ])?;
            let mut ins = c.prepare_cached(
                "INSERT INTO container_secrets (container_id, name, secret_id) VALUES (?1, ?2, ?3)",
            )?;
            for (name, secret) in &k.secret_refs {
                ins.execute(params![k.id.to_string(), name, secret.to_string()])?;
            }
        }
        Write::DeleteContainer(id) => {
            let n = c
                .prepare_cached("DELETE FROM containers WHERE id = ?1")?
                .execute([id.to_string()])?;
            if n == 0 {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!("container {id} not found"),
                ));
            }
        }
        Write::SetProjectBackend { project, backend } => match backend {
            Some(b) => {
                c.prepare_cached(
                    "INSERT INTO project_backends (project_id, backend_id) VALUES (?1, ?2)
                     ON CONFLICT (project_id) DO UPDATE SET backend_id = excluded.backend_id",
                )?
                .execute(params![project.as_str(), b.as_str()])?;
            }
            None => {
                c.prepare_cached("DELETE FROM project_backends WHERE project_id = ?1")?
                    .execute([project.as_str()])?;
            }
        },
    }
    Ok(())
}

/// A UNIQUE or PRIMARY KEY violation: the row is already there.
fn unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
    )
}

/// A secret written under a KEK the catalog does not hold (a running
/// instance whose KEK row was replaced, e.g. by a restore).
fn kek_violation(e: rusqlite::Error) -> Error {
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY =>
        {
            Error::new(
                ErrorKind::Conflict,
                "the project KEK this secret was encrypted under is not in the catalog; retry",
            )
            .with_source(e)
        }
        _ => e.into(),
    }
}

fn secret_exists(c: &Connection, id: &SecretId) -> Result<bool> {
    Ok(c.prepare_cached("SELECT 1 FROM secrets WHERE id = ?1")?
        .query_row([id.to_string()], |_| Ok(()))
        .optional()?
        .is_some())
}

fn require_secret(c: &Connection, id: &SecretId) -> Result<()> {
    if secret_exists(c, id)? {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::NotFound,
            format!("secret {id} not found"),
        ))
    }
}

/// Column list matching [`secret_from_row`].
const SECRET_COLUMNS: &str = "id, project_id, name, algorithm, bit_length, mode, secret_type, expiration, \
     created, updated, status, content_type, creator_id, backend_id";

fn parse_col<T>(v: String, what: &str, f: impl FnOnce(&str) -> Result<T>) -> Result<T> {
    f(&v).map_err(|_| corrupt(what))
}

fn secret_from_row(r: &Row<'_>) -> Result<SecretMeta> {
    let bit_length: Option<i64> = r.get(4)?;
    Ok(SecretMeta {
        id: parse_col(r.get(0)?, "secret id", str::parse)?,
        project_id: parse_col(r.get(1)?, "project id", str::parse)?,
        name: r.get(2)?,
        algorithm: r.get(3)?,
        bit_length: bit_length
            .map(|b| u32::try_from(b).map_err(|_| corrupt("bit length")))
            .transpose()?,
        mode: r.get(5)?,
        secret_type: parse_col(r.get(6)?, "secret type", str::parse)?,
        expiration: r.get::<_, Option<i64>>(7)?.map(Timestamp::from_unix),
        created: Timestamp::from_unix(r.get(8)?),
        updated: Timestamp::from_unix(r.get(9)?),
        status: parse_col(r.get(10)?, "status", str::parse)?,
        content_type: r
            .get::<_, Option<String>>(11)?
            .map(|c| parse_content_type(&c))
            .transpose()?,
        creator_id: parse_col(r.get(12)?, "creator id", str::parse)?,
        backend_id: parse_col(r.get(13)?, "backend id", str::parse)?,
    })
}

fn order_from_row(r: &Row<'_>) -> Result<Order> {
    let order_type = match r.get::<_, String>(3)?.as_str() {
        "key" => OrderType::Key,
        "asymmetric" => OrderType::Asymmetric,
        _ => return Err(corrupt("order type")),
    };
    Ok(Order {
        id: parse_col(r.get(0)?, "order id", str::parse)?,
        project_id: parse_col(r.get(1)?, "project id", str::parse)?,
        creator_id: parse_col(r.get(2)?, "creator id", str::parse)?,
        order_type,
        status: parse_col(r.get(4)?, "status", str::parse)?,
        name: r.get(5)?,
        algorithm: r.get(6)?,
        bit_length: u32::try_from(r.get::<_, i64>(7)?).map_err(|_| corrupt("bit length"))?,
        mode: r.get(8)?,
        payload_content_type: r
            .get::<_, Option<String>>(9)?
            .map(|c| parse_content_type(&c))
            .transpose()?,
        expiration: r.get::<_, Option<i64>>(10)?.map(Timestamp::from_unix),
        secret_id: r
            .get::<_, Option<String>>(11)?
            .map(|s| parse_col(s, "secret id", str::parse))
            .transpose()?,
        container_id: r
            .get::<_, Option<String>>(12)?
            .map(|s| parse_col(s, "container id", str::parse))
            .transpose()?,
        error_code: r
            .get::<_, Option<i64>>(13)?
            .map(|c| u16::try_from(c).map_err(|_| corrupt("error code")))
            .transpose()?,
        error_reason: r.get(14)?,
        created: Timestamp::from_unix(r.get(15)?),
        updated: Timestamp::from_unix(r.get(16)?),
    })
}

const ORDER_COLUMNS: &str = "id, project_id, creator_id, type, status, name, algorithm, bit_length, mode, \
     payload_content_type, expiration, secret_id, container_id, error_code, error_reason, created, updated";

fn container_from_row(c: &Connection, r: &Row<'_>) -> Result<Container> {
    let id: ContainerId = parse_col(r.get(0)?, "container id", str::parse)?;
    let container_type = match r.get::<_, String>(4)?.as_str() {
        "generic" => ContainerType::Generic,
        "rsa" => ContainerType::Rsa,
        "certificate" => ContainerType::Certificate,
        _ => return Err(corrupt("container type")),
    };
    let mut refs = Vec::new();
    let mut stmt = c.prepare_cached(
        "SELECT name, secret_id FROM container_secrets WHERE container_id = ?1 ORDER BY name",
    )?;
    let mut rows = stmt.query([id.to_string()])?;
    while let Some(row) = rows.next()? {
        refs.push((
            row.get::<_, String>(0)?,
            parse_col(row.get(1)?, "secret id", str::parse)?,
        ));
    }
    Ok(Container {
        id,
        project_id: parse_col(r.get(1)?, "project id", str::parse)?,
        creator_id: parse_col(r.get(2)?, "creator id", str::parse)?,
        name: r.get(3)?,
        container_type,
        status: parse_col(r.get(5)?, "status", str::parse)?,
        secret_refs: refs,
        created: Timestamp::from_unix(r.get(6)?),
        updated: Timestamp::from_unix(r.get(7)?),
    })
}

fn like_or_eq(sql: &mut String, args: &mut Vec<Value>, column: &str, pattern: &str) {
    if pattern.contains(['%', '_']) {
        sql.push_str(&format!(" AND {column} LIKE ? ESCAPE '\\'"));
    } else {
        sql.push_str(&format!(" AND {column} = ?"));
    }
    args.push(Value::Text(pattern.to_owned()));
}

impl Catalog for SqliteCatalog {
    fn apply(&self, batch: Vec<Write>) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        self.submit(vec![batch]).pop().unwrap_or_else(|| {
            Err(Error::new(
                ErrorKind::Storage,
                "catalog writer lost a batch",
            ))
        })
    }

    fn apply_each(&self, batches: Vec<Vec<Write>>) -> Vec<Result<()>> {
        super::apply_each_at_once_first(
            batches,
            |all| matches!(self.submit(vec![all]).pop(), Some(Ok(()))),
            |batches| self.submit(batches),
        )
    }

    fn secret(
        &self,
        id: &SecretId,
        caller: &UserId,
        with_stored: bool,
    ) -> Result<Option<SecretRow>> {
        self.read(|c| {
            let sql = format!(
                "SELECT {SECRET_COLUMNS}, read_project_access,
                   EXISTS (SELECT 1 FROM secret_acl_users a WHERE a.secret_id = s.id AND a.user_id = ?2),
                   CASE WHEN ?3 THEN stored END, kek_id
                 FROM secrets s WHERE id = ?1"
            );
            let mut stmt = c.prepare_cached(&sql)?;
            let mut rows = stmt.query(params![id.to_string(), caller.as_str(), with_stored])?;
            let Some(r) = rows.next()? else {
                return Ok(None);
            };
            let meta = secret_from_row(r)?;
            let acl = AclView {
                project_access: r.get(14)?,
                caller_listed: r.get(15)?,
            };
            let stored = r
                .get::<_, Option<Vec<u8>>>(16)?
                .map(|bytes| -> Result<StoredSecret> {
                    Ok(StoredSecret {
                        bytes,
                        kek_id: r.get(17)?,
                    })
                })
                .transpose()?;
            Ok(Some(SecretRow { meta, acl, stored }))
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
        let mut sql = String::from(" FROM secrets s WHERE (expiration IS NULL OR expiration > ?)");
        let mut args: Vec<Value> = vec![Value::Integer(now.unix())];
        match &filter.acl_user {
            Some(user) => {
                sql.push_str(
                    " AND id IN (SELECT secret_id FROM secret_acl_users WHERE user_id = ?)",
                );
                args.push(Value::Text(user.as_str().to_owned()));
            }
            None => {
                sql.push_str(" AND project_id = ?");
                args.push(Value::Text(project.as_str().to_owned()));
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
            sql.push_str(" AND bit_length = ?");
            args.push(Value::Integer(bits.into()));
        }
        if let Some(t) = filter.secret_type {
            sql.push_str(" AND secret_type = ?");
            args.push(Value::Text(t.as_str().to_owned()));
        }
        for (column, conds) in [
            ("created", &filter.created),
            ("updated", &filter.updated),
            ("expiration", &filter.expiration),
        ] {
            for (cmp, t) in conds {
                sql.push_str(&format!(" AND {column} {} ?", cmp_sql(*cmp)));
                args.push(Value::Integer(t.unix()));
            }
        }
        let mut order = String::from(" ORDER BY ");
        for (key, desc) in &filter.sort {
            order.push_str(sort_column(*key));
            order.push_str(if *desc { " DESC, " } else { " ASC, " });
        }
        order.push_str("created ASC, id ASC LIMIT ? OFFSET ?");
        self.read(|c| {
            // One read transaction, so the total and the page agree.
            let tx = c.unchecked_transaction()?;
            let c = &*tx;
            let total: i64 = c
                .prepare_cached(&format!("SELECT COUNT(*){sql}"))?
                .query_row(rusqlite::params_from_iter(args.iter()), |r| r.get(0))?;
            let mut page_args = args.clone();
            page_args.push(Value::Integer(limit.into()));
            page_args.push(Value::Integer(i64::try_from(offset).unwrap_or(i64::MAX)));
            let mut stmt = c.prepare_cached(&format!("SELECT {SECRET_COLUMNS}{sql}{order}"))?;
            let mut rows = stmt.query(rusqlite::params_from_iter(page_args.iter()))?;
            let mut items = Vec::with_capacity((limit as usize).min(128));
            while let Some(r) = rows.next()? {
                items.push(secret_from_row(r)?);
            }
            drop(rows);
            drop(stmt);
            tx.commit()?;
            Ok(Page {
                items,
                total: u64::try_from(total).unwrap_or(0),
                limit,
                offset,
            })
        })
    }

    fn consumers(&self, id: &SecretId) -> Result<Vec<Consumer>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT service, resource_type, resource_id FROM secret_consumers
                 WHERE secret_id = ?1 ORDER BY service, resource_type, resource_id",
            )?;
            let rows = stmt.query_map([id.to_string()], |r| {
                Ok(Consumer {
                    service: r.get(0)?,
                    resource_type: r.get(1)?,
                    resource_id: r.get(2)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn secret_acl(&self, id: &SecretId) -> Result<Acl> {
        self.read(|c| {
            let project_access: Option<bool> = c
                .prepare_cached("SELECT read_project_access FROM secrets WHERE id = ?1")?
                .query_row([id.to_string()], |r| r.get(0))
                .optional()?;
            let Some(project_access) = project_access else {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!("secret {id} not found"),
                ));
            };
            let mut stmt = c.prepare_cached(
                "SELECT user_id FROM secret_acl_users WHERE secret_id = ?1 ORDER BY user_id",
            )?;
            let mut users = Vec::new();
            let mut rows = stmt.query([id.to_string()])?;
            while let Some(r) = rows.next()? {
                users.push(parse_col(r.get(0)?, "user id", str::parse)?);
            }
            Ok(Acl {
                users,
                project_access,
            })
        })
    }

    fn order(&self, id: &OrderId) -> Result<Option<Order>> {
        self.read(|c| {
            let mut stmt =
                c.prepare_cached(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = ?1"))?;
            let mut rows = stmt.query([id.to_string()])?;
            match rows.next()? {
                Some(r) => Ok(Some(order_from_row(r)?)),
                None => Ok(None),
            }
        })
    }

    fn list_orders(&self, project: &ProjectId, limit: u32, offset: u64) -> Result<Page<Order>> {
        self.read(|c| {
            let total: i64 = c
                .prepare_cached("SELECT COUNT(*) FROM orders WHERE project_id = ?1")?
                .query_row([project.as_str()], |r| r.get(0))?;
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {ORDER_COLUMNS} FROM orders WHERE project_id = ?1
                 ORDER BY created, id LIMIT ?2 OFFSET ?3"
            ))?;
            let mut rows = stmt.query(params![
                project.as_str(),
                limit,
                i64::try_from(offset).unwrap_or(i64::MAX)
            ])?;
            let mut items = Vec::new();
            while let Some(r) = rows.next()? {
                items.push(order_from_row(r)?);
            }
            Ok(Page {
                items,
                total: u64::try_from(total).unwrap_or(0),
                limit,
                offset,
            })
        })
    }

    fn container(&self, id: &ContainerId) -> Result<Option<Container>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, project_id, creator_id, name, type, status, created, updated
                 FROM containers WHERE id = ?1",
            )?;
            let mut rows = stmt.query([id.to_string()])?;
            match rows.next()? {
                Some(r) => Ok(Some(container_from_row(c, r)?)),
                None => Ok(None),
            }
        })
    }

    fn list_containers(
        &self,
        project: &ProjectId,
        limit: u32,
        offset: u64,
    ) -> Result<Page<Container>> {
        self.read(|c| {
            let total: i64 = c
                .prepare_cached("SELECT COUNT(*) FROM containers WHERE project_id = ?1")?
                .query_row([project.as_str()], |r| r.get(0))?;
            let mut stmt = c.prepare_cached(
                "SELECT id, project_id, creator_id, name, type, status, created, updated
                 FROM containers WHERE project_id = ?1 ORDER BY created, id LIMIT ?2 OFFSET ?3",
            )?;
            let mut rows = stmt.query(params![
                project.as_str(),
                limit,
                i64::try_from(offset).unwrap_or(i64::MAX)
            ])?;
            let mut items = Vec::new();
            while let Some(r) = rows.next()? {
                items.push(container_from_row(c, r)?);
            }
            Ok(Page {
                items,
                total: u64::try_from(total).unwrap_or(0),
                limit,
                offset,
            })
        })
    }

    fn project_backend(&self, project: &ProjectId) -> Result<Option<BackendId>> {
        self.read(|c| {
            c.prepare_cached("SELECT backend_id FROM project_backends WHERE project_id = ?1")?
                .query_row([project.as_str()], |r| r.get::<_, String>(0))
                .optional()?
                .map(|b| parse_col(b, "backend id", str::parse))
                .transpose()
        })
    }

    fn project_backends(&self) -> Result<Vec<(ProjectId, BackendId)>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT project_id, backend_id FROM project_backends ORDER BY project_id",
            )?;
            let mut rows = stmt.query([])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push((
                    parse_col(r.get(0)?, "project id", str::parse)?,
                    parse_col(r.get(1)?, "backend id", str::parse)?,
                ));
            }
            Ok(out)
        })
    }

    fn scan_secrets(
        &self,
        after: Option<&SecretId>,
        limit: u32,
    ) -> Result<Vec<(SecretMeta, Option<StoredSecret>)>> {
        self.scan(after, limit)
    }

    fn purge_expired(&self, now: Timestamp) -> Result<u64> {
        let conn = lock(&self.writer);
        let n = conn.execute(
            "DELETE FROM secrets WHERE expiration IS NOT NULL AND expiration <= ?1",
            [now.unix()],
        )?;
        scrub_wal(&conn, self.options.busy_timeout);
        Ok(n as u64)
    }

    fn export(&self, out: &mut RecordSink<'_>) -> Result<()> {
        self.read(|c| {
            // One read transaction: one snapshot for every table.
            let tx = c.unchecked_transaction()?;
            export_rows(&tx, out)?;
            tx.commit()?;
            Ok(())
        })
    }

    fn replace_with(&self, rows: &mut RecordSource<'_>) -> Result<()> {
        let mut conn = lock(&self.writer);
        {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute_batch(
                "DELETE FROM container_secrets; DELETE FROM containers; DELETE FROM orders;
                 DELETE FROM secret_consumers; DELETE FROM secret_acl_users; DELETE FROM secrets;
                 DELETE FROM project_backends; DELETE FROM project_keks;",
            )?;
            rows(&mut |row| insert_record(&tx, row))?;
            tx.commit()?;
        }
        scrub_wal(&conn, self.options.busy_timeout);
        // Readers in the pool may cache statements over the old rows.
        lock(&self.readers).clear();
        Ok(())
    }

    fn counts(&self) -> Result<Counts> {
        self.read(|c| {
            let n = |sql: &str| -> Result<u64> {
                let v: i64 = c.query_row(sql, [], |r| r.get(0))?;
                Ok(u64::try_from(v).unwrap_or(0))
            };
            Ok(Counts {
                secrets: n("SELECT COUNT(*) FROM secrets")?,
                secrets_with_payload: n("SELECT COUNT(*) FROM secrets WHERE stored IS NOT NULL")?,
                orders: n("SELECT COUNT(*) FROM orders")?,
                containers: n("SELECT COUNT(*) FROM containers")?,
                consumers: n("SELECT COUNT(*) FROM secret_consumers")?,
                projects_with_keks: n("SELECT COUNT(*) FROM project_keks")?,
            })
        })
    }
}

fn export_rows(c: &Connection, out: &mut RecordSink<'_>) -> Result<()> {
    let mut stmt = c.prepare(
        "SELECT kek_id, master_fingerprint, wrapped, backend_id, project_id, created
         FROM project_keks ORDER BY backend_id, project_id",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        out(Record::ProjectKek {
            kek: kek_from_row(r)?,
            backend: parse_col(r.get(3)?, "backend id", str::parse)?,
            project: parse_col(r.get(4)?, "project id", str::parse)?,
            created: Timestamp::from_unix(r.get(5)?),
        })?;
    }
    let mut stmt =
        c.prepare("SELECT project_id, backend_id FROM project_backends ORDER BY project_id")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        out(Record::ProjectBackend {
            project: parse_col(r.get(0)?, "project id", str::parse)?,
            backend: parse_col(r.get(1)?, "backend id", str::parse)?,
        })?;
    }
    let mut stmt = c.prepare(&format!(
        "SELECT {SECRET_COLUMNS}, stored, kek_id, read_project_access FROM secrets ORDER BY id"
    ))?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let stored = r
            .get::<_, Option<Vec<u8>>>(14)?
            .map(|bytes| -> Result<StoredSecret> {
                Ok(StoredSecret {
                    bytes,
                    kek_id: r.get(15)?,
                })
            })
            .transpose()?;
        out(Record::Secret {
            meta: secret_from_row(r)?,
            stored,
            project_access: r.get(16)?,
        })?;
    }
    let mut stmt =
        c.prepare("SELECT secret_id, user_id FROM secret_acl_users ORDER BY secret_id, user_id")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        out(Record::AclUser {
            secret: parse_col(r.get(0)?, "secret id", str::parse)?,
            user: parse_col(r.get(1)?, "user id", str::parse)?,
        })?;
    }
    let mut stmt = c.prepare(
        "SELECT secret_id, service, resource_type, resource_id FROM secret_consumers
         ORDER BY secret_id, service, resource_type, resource_id",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        out(Record::Consumer {
            secret: parse_col(r.get(0)?, "secret id", str::parse)?,
            consumer: Consumer {
                service: r.get(1)?,
                resource_type: r.get(2)?,
                resource_id: r.get(3)?,
            },
        })?;
    }
    let mut stmt = c.prepare(&format!("SELECT {ORDER_COLUMNS} FROM orders ORDER BY id"))?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        out(Record::Order(order_from_row(r)?))?;
    }
    let mut stmt = c.prepare(
        "SELECT id, project_id, creator_id, name, type, status, created, updated
         FROM containers ORDER BY id",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        out(Record::Container(container_from_row(c, r)?))?;
    }
    Ok(())
}

fn insert_record(c: &Connection, row: Record) -> Result<()> {
    match row {
        Record::ProjectKek {
            backend,
            project,
            kek,
            created,
        } => {
            c.prepare_cached(
                "INSERT INTO project_keks (backend_id, project_id, kek_id, master_fingerprint, wrapped, created)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                backend.as_str(),
                project.as_str(),
                kek.kek_id,
                kek.master_fingerprint,
                kek.wrapped,
                created.unix()
            ])?;
            Ok(())
        }
        Record::ProjectBackend { project, backend } => apply_write(
            c,
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
            apply_write(c, &Write::InsertSecret { meta, stored })?;
            if !project_access {
                c.prepare_cached("UPDATE secrets SET read_project_access = 0 WHERE id = ?1")?
                    .execute([id.to_string()])?;
            }
            Ok(())
        }
        Record::AclUser { secret, user } => apply_write(c, &Write::GrantRead { id: secret, user }),
        Record::Consumer { secret, consumer } => apply_write(
            c,
            &Write::AddConsumer {
                id: secret,
                consumer,
            },
        ),
        Record::Order(o) => apply_write(c, &Write::InsertOrder(o)),
        Record::Container(k) => apply_write(c, &Write::InsertContainer(k)),
    }
}

fn kek_from_row(r: &Row<'_>) -> rusqlite::Result<WrappedKek> {
    Ok(WrappedKek {
        kek_id: r.get(0)?,
        master_fingerprint: r.get(1)?,
        wrapped: r.get(2)?,
    })
}

impl KekStore for SqliteCatalog {
    fn project_kek(&self, backend: &BackendId, project: &ProjectId) -> Result<Option<WrappedKek>> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT kek_id, master_fingerprint, wrapped FROM project_keks
                 WHERE backend_id = ?1 AND project_id = ?2",
            )?
            .query_row([backend.as_str(), project.as_str()], kek_from_row)
            .optional()?)
        })
    }

    fn insert_project_kek(
        &self,
        backend: &BackendId,
        project: &ProjectId,
        kek: WrappedKek,
    ) -> Result<WrappedKek> {
        // The primary key (backend, project) decides the race; the loser reads
        // the winner's KEK back.
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.prepare_cached(
            "INSERT OR IGNORE INTO project_keks (backend_id, project_id, kek_id, master_fingerprint, wrapped, created)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            backend.as_str(),
            project.as_str(),
            kek.kek_id,
            kek.master_fingerprint,
            kek.wrapped,
            Timestamp::now().unix()
        ])?;
        let stored = tx
            .prepare_cached(
                "SELECT kek_id, master_fingerprint, wrapped FROM project_keks
                 WHERE backend_id = ?1 AND project_id = ?2",
            )?
            .query_row([backend.as_str(), project.as_str()], kek_from_row)?;
        tx.commit()?;
        Ok(stored)
    }

    fn project_keks(&self, backend: &BackendId) -> Result<Vec<(ProjectId, WrappedKek)>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT kek_id, master_fingerprint, wrapped, project_id FROM project_keks
                 WHERE backend_id = ?1 ORDER BY project_id",
            )?;
            let mut rows = stmt.query([backend.as_str()])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let project = parse_col(r.get(3)?, "project id", str::parse)?;
                out.push((project, kek_from_row(r)?));
            }
            Ok(out)
        })
    }

    fn replace_project_keks(
        &self,
        backend: &BackendId,
        keks: Vec<(ProjectId, WrappedKek)>,
    ) -> Result<()> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut stmt = tx.prepare_cached(
                "UPDATE project_keks SET master_fingerprint = ?4, wrapped = ?5
                 WHERE backend_id = ?1 AND project_id = ?2 AND kek_id = ?3",
            )?;
            for (project, kek) in &keks {
                let n = stmt.execute(params![
                    backend.as_str(),
                    project.as_str(),
                    kek.kek_id,
                    kek.master_fingerprint,
                    kek.wrapped
                ])?;
                if n != 1 {
                    return Err(Error::new(
                        ErrorKind::Conflict,
                        format!(
                            "project KEK of {project} changed during rotation; nothing was rewrapped"
                        ),
                    ));
                }
            }
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(project: &ProjectId, user: &UserId) -> Write {
        let now = Timestamp::now();
        Write::InsertOrder(Order {
            id: OrderId::new_random(),
            project_id: project.clone(),
            creator_id: user.clone(),
            order_type: OrderType::Key,
            status: crate::model::Status::Active,
            name: None,
            algorithm: "aes".into(),
            bit_length: 256,
            mode: None,
            payload_content_type: None,
            expiration: None,
            secret_id: None,
            container_id: None,
            error_code: None,
            error_reason: None,
            created: now,
            updated: now,
        })
    }

    /// Writers that queue while a commit is in flight are committed
    /// together by the next one to take the write connection.
    #[test]
    fn waiting_writers_share_one_commit() {
        let dir = tempfile::tempdir().unwrap();
        let cat = std::sync::Arc::new(SqliteCatalog::open(dir.path().join("c.db")).unwrap());
        let project = ProjectId::new("p").unwrap();
        let user = UserId::new("u").unwrap();
        let version = |c: &SqliteCatalog| -> i64 {
            c.read(|conn| Ok(conn.query_row("PRAGMA data_version", [], |r| r.get(0))?))
                .unwrap()
        };
        // Hold the write connection, as a commit in flight does.
        let held = lock(&cat.writer);
        let before = version(&cat);
        let writers: Vec<_> = (0..8)
            .map(|_| {
                let (cat, project, user) = (cat.clone(), project.clone(), user.clone());
                std::thread::spawn(move || cat.apply(vec![order(&project, &user)]))
            })
            .collect();
        while lock(&cat.queue).len() < 8 {
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(held);
        for w in writers {
            w.join().unwrap().unwrap();
        }
        assert_eq!(cat.counts().unwrap().orders, 8);
        // data_version moves once per commit seen from another connection.
        assert_eq!(version(&cat) - before, 1, "eight writes, one commit");
    }

    #[test]
    fn migrations_run_once_and_refuse_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let cat = SqliteCatalog::open(&path).unwrap();
        assert_eq!(cat.schema_version().unwrap(), MIGRATIONS.len() as u32);
        drop(cat);
        let cat = SqliteCatalog::open(&path).unwrap();
        assert_eq!(cat.schema_version().unwrap(), MIGRATIONS.len() as u32);
        drop(cat);
        let c = Connection::open(&path).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
        drop(c);
        let e = SqliteCatalog::open(&path).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.to_string().contains("newer"), "{e}");
    }

    #[test]
    fn pragmas_are_durable() {
        let dir = tempfile::tempdir().unwrap();
        let cat = SqliteCatalog::open(dir.path().join("c.db")).unwrap();
        cat.read(|c| {
            let mode: String = c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
            let sync: i64 = c.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
            let secure: i64 = c.query_row("PRAGMA secure_delete", [], |r| r.get(0))?;
            assert_eq!(mode, "wal");
            assert_eq!(sync, 2, "synchronous=FULL");
            assert_eq!(secure, 1);
            Ok(())
        })
        .unwrap();
    }
}
