//! The SQLite catalog: one database file in WAL mode, `synchronous=FULL`.
//!
//! Writes use group commit (`writer.rs`); reads use a small pool of read
//! connections (`read.rs`). The statements and rules are the shared ones
//! of `catalog/` (`read.rs`, `write.rs`, `query.rs`), run through this
//! catalog's [`Db`](crate::catalog::sql::Db) (`write.rs` here).

use std::collections::VecDeque;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::backend::{KekInsert, KekInstance, KekStore, RewrapFn, WrappedKek};
use crate::catalog::write::{apply_each_at_once_first, delete_everything, insert_record};
use crate::catalog::{
    Catalog, RecordSink, RecordSource, Write, read as reads, rollout, write as rules,
};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{BackendId, ProjectId, Timestamp};

mod error;
mod read;
mod schema;
mod write;
mod writer;

pub(crate) use error::{error_kind, sqlite_error};
use schema::{connect, migrate};
use write::Sqlite;
use writer::{Job, scrub_wal};

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
        writer
            .execute_batch(schema::WRITER_CACHE)
            .map_err(error::Fail::from)?;
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
        self.read_conn(|c| Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0))?))
    }

    /// Writes a consistent copy of the database to `dest` (SQLite's
    /// `VACUUM INTO`) while other writers carry on.
    pub fn backup_to(&self, dest: impl AsRef<Path>) -> Result<()> {
        let dest = dest.as_ref();
        let dest_str = dest
            .to_str()
            .ok_or_else(|| Error::invalid("output", "backup path must be valid UTF-8"))?;
        self.read_conn(|c| {
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

    /// Replaces this database's whole content with the database at `src`,
    /// atomically for other connections (SQLite's online backup API, run on
    /// the write connection so no local write interleaves). `progress` gets
    /// (pages copied, pages in all).
    ///
    /// The backup is first copied beside this database and opened there as
    /// a catalog: one that is not a keywarden catalog, is damaged, or comes
    /// from a newer schema is refused before anything here is replaced, and
    /// one from an older schema is migrated in the copy. What replaces this
    /// database is that checked copy. (Whether this config's keys open it is
    /// the store's question: see the CLI's `restore`.)
    pub fn restore_from(
        &self,
        src: impl AsRef<Path>,
        progress: impl FnMut(u64, u64),
    ) -> Result<()> {
        let scratch = scratch_beside(&self.path, "restore-from");
        let outcome = self
            .checked_copy(src.as_ref(), &scratch)
            .and_then(|()| self.replace_from(&scratch, progress));
        for suffix in ["", "-wal", "-shm"] {
            let mut p = scratch.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(p));
        }
        outcome
    }

    /// Copies `src` to `scratch` (a consistent copy, WAL included) and opens
    /// it as a catalog: schema checked and migrated, pages checked.
    fn checked_copy(&self, src: &Path, scratch: &Path) -> Result<()> {
        let _ = std::fs::remove_file(scratch);
        // Private from the start: it holds ciphertext and wrapped KEKs (and
        // SQLite gives its -wal and -shm files the database file's mode).
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(scratch)
                .map_err(|e| {
                    Error::new(
                        ErrorKind::Unavailable,
                        format!("cannot create {}", scratch.display()),
                    )
                    .with_source(e)
                })?;
        }
        {
            let from = Connection::open_with_flags(src, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(
                |e| Error::new(ErrorKind::Unavailable, "cannot open the backup").with_source(e),
            )?;
            let mut to = Connection::open(scratch).map_err(sqlite_error)?;
            rusqlite::backup::Backup::new(&from, &mut to)
                .and_then(|b| b.run_to_completion(256, Duration::ZERO, None))
                .map_err(|e| {
                    Error::new(ErrorKind::InvalidInput, "the backup cannot be read").with_source(e)
                })?;
        }
        let candidate = SqliteCatalog::open_existing(scratch).map_err(|e| {
            Error::new(
                e.kind(),
                format!(
                    "the backup cannot be restored; nothing was replaced: {}",
                    e.context()
                        .replace(&scratch.display().to_string(), "the backup")
                ),
            )
        })?;
        let check: String = candidate
            .read_conn(|c| Ok(c.query_row("PRAGMA integrity_check", [], |r| r.get(0))?))?;
        if check != "ok" {
            return Err(Error::new(
                ErrorKind::Integrity,
                "the backup is damaged (SQLite's integrity check failed); nothing was replaced",
            ));
        }
        // The instances it lists ran when the backup was made: the running
        // ones record themselves again within a heartbeat.
        candidate.write_tx(|db| {
            use crate::catalog::sql::Db as _;
            db.execute("DELETE FROM kek_instances", &[])?;
            Ok(())
        })?;
        // Fold its WAL into the file the backup API reads next.
        candidate.read_conn(|c| {
            c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
            Ok(())
        })?;
        Ok(())
    }

    fn replace_from(&self, src: &Path, mut progress: impl FnMut(u64, u64)) -> Result<()> {
        let src =
            Connection::open_with_flags(src, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(|e| {
                Error::new(ErrorKind::Unavailable, "cannot open the backup").with_source(e)
            })?;
        let mut conn = lock(&self.writer);
        {
            let backup = rusqlite::backup::Backup::new(&src, &mut conn).map_err(sqlite_error)?;
            // Another process holding the database busy: wait as a writer
            // would, then give up rather than block this process's writers.
            let deadline = std::time::Instant::now() + self.options.busy_timeout;
            loop {
                let more = backup.step(256).map_err(sqlite_error)?;
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
        // Already migrated in the checked copy; this only confirms it.
        Ok(migrate(&mut conn)?)
    }

    /// Runs `f` on the write connection, in one immediate transaction.
    fn write_tx<T>(&self, f: impl FnOnce(&mut Sqlite<'_>) -> Result<T, error::Fail>) -> Result<T> {
        let mut conn = lock(&self.writer);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite_error)?;
        let out = f(&mut Sqlite(&tx))?;
        tx.commit().map_err(sqlite_error)?;
        Ok(out)
    }
}

impl fmt::Debug for SqliteCatalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteCatalog")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// `<path>.<what>`: a scratch file in the database's own directory (same
/// filesystem, same permissions as the catalog's directory).
fn scratch_beside(path: &Path, what: &str) -> PathBuf {
    let mut p = path.to_path_buf().into_os_string();
    p.push(".");
    p.push(what);
    PathBuf::from(p)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves a connection or queue
    // that is still consistent (SQLite rolls back), so carry on with it.
    m.lock().unwrap_or_else(|p| p.into_inner())
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
        apply_each_at_once_first(
            batches,
            |all| matches!(self.submit(vec![all]).pop(), Some(Ok(()))),
            |batches| self.submit(batches),
        )
    }

    crate::catalog::read::catalog_reads!();

    fn purge_expired(&self, now: Timestamp) -> Result<u64> {
        let conn = lock(&self.writer);
        let n = rules::purge_expired(&mut Sqlite(&conn), now)?;
        scrub_wal(&conn, self.options.busy_timeout);
        Ok(n)
    }

    fn export(&self, out: &mut RecordSink<'_>) -> Result<()> {
        self.snapshot(|db| reads::export_rows(db, out))
    }

    fn replace_with(&self, rows: &mut RecordSource<'_>) -> Result<()> {
        let mut conn = lock(&self.writer);
        {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sqlite_error)?;
            let mut db = Sqlite(&tx);
            delete_everything(&mut db)?;
            rows(&mut |row| Ok(insert_record(&mut db, row)?))?;
            tx.commit().map_err(sqlite_error)?;
        }
        scrub_wal(&conn, self.options.busy_timeout);
        // Readers in the pool may cache statements over the old rows.
        lock(&self.readers).clear();
        Ok(())
    }
}

impl KekStore for SqliteCatalog {
    fn project_kek(&self, backend: &BackendId, project: &ProjectId) -> Result<Option<WrappedKek>> {
        self.read(|db| reads::project_kek(db, backend, project))
    }

    fn insert_project_kek(
        &self,
        backend: &BackendId,
        project: &ProjectId,
        kek: WrappedKek,
    ) -> Result<WrappedKek> {
        self.write_tx(|db| rules::insert_project_kek(db, backend, project, &kek))
    }

    fn project_keks(&self, backend: &BackendId) -> Result<Vec<(ProjectId, WrappedKek)>> {
        self.read(|db| reads::project_keks(db, backend))
    }

    fn replace_project_keks(
        &self,
        backend: &BackendId,
        keks: Vec<(ProjectId, WrappedKek)>,
    ) -> Result<()> {
        self.write_tx(|db| rules::replace_project_keks(db, backend, &keks))
    }

    fn rollout_active(&self, backend: &BackendId) -> Result<Option<String>> {
        self.read(|db| rollout::active(db, backend, ""))
    }

    fn propose_rollout_active(&self, backend: &BackendId, fingerprint: &str) -> Result<String> {
        self.write_tx(|db| rollout::propose(db, backend, fingerprint))
    }

    fn insert_project_kek_if_active(
        &self,
        backend: &BackendId,
        project: &ProjectId,
        kek: WrappedKek,
    ) -> Result<KekInsert> {
        self.write_tx(|db| rollout::insert_project_kek_if_active(db, backend, project, &kek))
    }

    fn rotate_project_keks(
        &self,
        backend: &BackendId,
        new_active: &str,
        live_since: Timestamp,
        rewrap: &mut RewrapFn<'_>,
    ) -> Result<usize> {
        // One writer holds the whole database: nothing interleaves.
        self.write_tx(|db| rollout::rotate(db, backend, new_active, live_since, rewrap))
    }

    fn project_keks_not_under(&self, backend: &BackendId, fingerprint: &str) -> Result<u64> {
        self.read(|db| rollout::wrapped_by_others(db, backend, fingerprint))
    }

    fn heartbeat_instance(&self, instance: &KekInstance, forget_before: Timestamp) -> Result<()> {
        self.write_tx(|db| rollout::heartbeat(db, instance, forget_before))
    }

    fn remove_instance(&self, instance_id: &str) -> Result<()> {
        self.write_tx(|db| rollout::remove(db, instance_id))
    }

    fn live_instances(&self, backend: &BackendId, since: Timestamp) -> Result<Vec<KekInstance>> {
        self.read(|db| rollout::live(db, backend, since))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Order, OrderId, OrderType, UserId};
    use schema::MIGRATIONS;

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
            c.read_conn(|conn| Ok(conn.query_row("PRAGMA data_version", [], |r| r.get(0))?))
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

    /// A backup from a newer schema, or one that is no catalog at all, is
    /// refused before the live catalog is touched.
    #[test]
    fn restore_refuses_a_bad_backup_before_replacing_anything() {
        let dir = tempfile::tempdir().unwrap();
        let live = SqliteCatalog::open(dir.path().join("live.db")).unwrap();
        let (project, user) = (ProjectId::new("p").unwrap(), UserId::new("u").unwrap());
        live.apply(vec![order(&project, &user)]).unwrap();
        let newer = dir.path().join("newer.db");
        let backup = SqliteCatalog::open(&newer).unwrap();
        backup
            .apply(vec![order(&project, &user), order(&project, &user)])
            .unwrap();
        drop(backup);
        let c = Connection::open(&newer).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
        drop(c);
        let text = dir.path().join("text.db");
        std::fs::write(&text, "not a database, just some text").unwrap();
        let empty = dir.path().join("empty.db");
        Connection::open(&empty)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        for (bad, phrase) in [
            (&newer, "newer"),
            (&text, ""),
            (&empty, "not a keywarden catalog"),
        ] {
            let e = live.restore_from(bad, |_, _| {}).unwrap_err();
            assert!(e.to_string().contains(phrase), "{e}");
            assert_eq!(live.counts().unwrap().orders, 1, "live catalog untouched");
            assert_eq!(live.schema_version().unwrap(), MIGRATIONS.len() as u32);
        }
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.contains("restore-from"))
            .collect();
        assert!(names.is_empty(), "scratch left behind: {names:?}");
        // A good backup still restores.
        let good = dir.path().join("good.db");
        let backup = SqliteCatalog::open(&good).unwrap();
        backup
            .apply(vec![order(&project, &user), order(&project, &user)])
            .unwrap();
        drop(backup);
        live.restore_from(&good, |_, _| {}).unwrap();
        assert_eq!(live.counts().unwrap().orders, 2);
    }

    #[test]
    fn pragmas_are_durable() {
        let dir = tempfile::tempdir().unwrap();
        let cat = SqliteCatalog::open(dir.path().join("c.db")).unwrap();
        cat.read_conn(|c| {
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
