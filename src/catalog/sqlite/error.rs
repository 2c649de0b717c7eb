//! SQLite's failures as the crate's errors.

use crate::error::{Error, ErrorKind};

/// A failure inside the SQLite catalog: from SQLite (still typed, so a
/// duplicate or a broken reference can be told apart) or already decided
/// (`NotFound`, `Conflict`…).
#[derive(Debug)]
pub(crate) enum Fail {
    Sqlite(rusqlite::Error),
    Kw(Error),
}

impl Fail {
    pub(crate) fn into_error(self) -> Error {
        match self {
            Fail::Sqlite(e) => sqlite_error(e),
            Fail::Kw(e) => e,
        }
    }

    /// The SQLite extended result code, when SQLite refused a statement.
    pub(crate) fn extended_code(&self) -> Option<std::ffi::c_int> {
        match self {
            Fail::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => Some(f.extended_code),
            _ => None,
        }
    }
}

impl From<rusqlite::Error> for Fail {
    fn from(e: rusqlite::Error) -> Self {
        Fail::Sqlite(e)
    }
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Fail::Kw(e)
    }
}

impl From<Fail> for Error {
    fn from(f: Fail) -> Self {
        f.into_error()
    }
}

/// What a caller can do about a SQLite failure: a busy or unopenable
/// database is worth a retry; only a duplicate is a conflict (CHECK, NOT
/// NULL and foreign-key failures mean a bug or a damaged database).
pub(crate) fn error_kind(e: &rusqlite::Error) -> ErrorKind {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy)
        | Some(rusqlite::ErrorCode::DatabaseLocked)
        | Some(rusqlite::ErrorCode::CannotOpen) => ErrorKind::Unavailable,
        Some(rusqlite::ErrorCode::ConstraintViolation) => match e {
            rusqlite::Error::SqliteFailure(f, _)
                if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                    || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
            {
                ErrorKind::Conflict
            }
            _ => ErrorKind::Storage,
        },
        _ => ErrorKind::Storage,
    }
}

/// A failed call on the SQLite catalog.
pub(crate) fn sqlite_error(e: rusqlite::Error) -> Error {
    Error::new(error_kind(&e), "SQLite catalog call failed").with_source(e)
}
