//! PostgreSQL's failures: which are worth a retry, and how each reads as
//! the crate's error.

use ::postgres::error::SqlState;

use crate::error::{Error, ErrorKind};

/// A failure inside a transaction body: from the server (maybe worth a
/// retry) or already decided (`NotFound`, `Conflict`…).
pub(crate) enum Fail {
    Pg(::postgres::Error),
    Kw(Error),
}

impl Fail {
    pub(crate) fn into_error(self) -> Error {
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

impl From<Fail> for Error {
    fn from(f: Fail) -> Self {
        f.into_error()
    }
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Fail::Kw(e)
    }
}

pub(crate) fn is_serialization_failure(e: &::postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    )
}

/// The connection is gone: closed, an I/O error, or the server said it is
/// shutting down or cannot take the session.
pub(crate) fn is_connection_error(e: &::postgres::Error) -> bool {
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

pub(crate) fn connect_error(shown: &str, e: ::postgres::Error) -> Error {
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

pub(crate) fn pg_error(e: ::postgres::Error) -> Error {
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

pub(crate) fn constraint_violation(e: &::postgres::Error, state: &SqlState) -> Option<String> {
    let db = e.as_db_error()?;
    (db.code() == state).then(|| db.constraint().unwrap_or("").to_owned())
}
