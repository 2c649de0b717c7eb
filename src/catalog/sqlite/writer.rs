//! Group commit: a writer queues its batch and takes the write connection;
//! whoever holds it runs every queued batch (each in its own savepoint)
//! inside one transaction and commits once, then hands each waiter its own
//! outcome. A lone writer commits its own batch and returns only once that
//! commit is durable; many writers share one fsync.

use std::sync::mpsc::{SyncSender, sync_channel};
use std::time::Duration;

use rusqlite::Connection;

use super::error::Fail;
use super::write::Sqlite;
use super::{SqliteCatalog, lock};
use crate::catalog::Write;
use crate::catalog::write::apply_batch;
use crate::error::{Error, ErrorKind, Result};

pub(crate) struct Job {
    batch: Vec<Write>,
    done: SyncSender<Result<()>>,
}

impl SqliteCatalog {
    /// Group commit: queue the batch, then drain the queue while holding the
    /// write connection (ours may already have been committed by another).
    pub(crate) fn submit(&self, batches: Vec<Vec<Write>>) -> Vec<Result<()>> {
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

/// After a delete: copy the WAL into the database file (where
/// `secure_delete` has zeroed the freed pages) and truncate it, so the
/// deleted ciphertext does not linger in old WAL frames. Best effort: when
/// readers are busy it is left to the next checkpoint.
pub(crate) fn scrub_wal(conn: &Connection, busy_timeout: Duration) {
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
        match run_group(conn, &pending, busy_timeout) {
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
                let e = e.into_error();
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

/// `BEGIN IMMEDIATE`, waiting up to `busy_timeout` while another process
/// writes. SQLite's own busy handler backs off to 100 ms between tries, so
/// a writer waiting on processes that write in a loop can lose the lock to
/// them for seconds; retrying every millisecond takes its turn as soon as
/// the lock is free.
fn begin_immediate(conn: &Connection, busy_timeout: Duration) -> rusqlite::Result<()> {
    let deadline = std::time::Instant::now() + busy_timeout;
    conn.busy_timeout(Duration::from_millis(1))?;
    let begun = loop {
        match conn.execute_batch("BEGIN IMMEDIATE") {
            Err(e)
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                    && std::time::Instant::now() < deadline =>
            {
                continue;
            }
            other => break other,
        }
    };
    let reset = conn.busy_timeout(busy_timeout);
    if begun.is_ok() && reset.is_err() {
        // Not left in a transaction the caller believes never began.
        let _ = conn.execute_batch("ROLLBACK");
    }
    begun.and(reset)
}

/// A statement run often enough that parsing it each time shows.
fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

fn run_group(
    conn: &Connection,
    jobs: &[Job],
    busy_timeout: Duration,
) -> Result<GroupOutcome, Fail> {
    begin_immediate(conn, busy_timeout)?;
    let mut outcomes = Vec::with_capacity(jobs.len());
    for (i, job) in jobs.iter().enumerate() {
        if let Err(e) = run_cached(conn, "SAVEPOINT job") {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e.into());
        }
        let outcome = match apply_batch(&mut Sqlite(conn), &job.batch) {
            // SQLite already rolled the whole transaction back.
            Err(error) if conn.is_autocommit() => {
                let error = error.into_error();
                return Ok(GroupOutcome::RolledBack { culprit: i, error });
            }
            other => other.map_err(Fail::into_error),
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
