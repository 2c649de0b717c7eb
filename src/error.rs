//! The crate's one error type.
//!
//! Callers act on [`ErrorKind`]; [`Error::field`] names the offending input for
//! `InvalidInput`; the typed cause stays reachable through
//! [`std::error::Error::source`]. Messages never carry key material.

use std::borrow::Cow;
use std::fmt;

/// What went wrong, in terms a caller can act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The object does not exist, has expired, or belongs to another project.
    NotFound,
    /// The request context is not allowed to do this.
    PermissionDenied,
    /// A request field was refused; [`Error::field`] names it.
    InvalidInput,
    /// The payload is larger than the configured limit.
    TooLarge,
    /// The request conflicts with stored state (payload already set, consumers
    /// still registered, a duplicate).
    Conflict,
    /// Decryption or authentication failed: wrong KEK, tampered or moved data.
    /// Deliberately opaque.
    Integrity,
    /// A peer (database, HSM, KMIP server) could not be reached; retrying may help.
    Unavailable,
    /// The backend cannot do this operation.
    Unsupported,
    /// A project quota refuses the creation (Barbican: 403, "Quota reached
    /// for project …").
    QuotaExceeded,
    /// The configuration is unusable.
    Config,
    /// The catalog holds something we cannot interpret, or a storage call failed.
    Storage,
}

impl ErrorKind {
    fn describe(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::PermissionDenied => "permission denied",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::TooLarge => "too large",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Integrity => "integrity check failed",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::QuotaExceeded => "quota exceeded",
            ErrorKind::Config => "configuration error",
            ErrorKind::Storage => "storage error",
        }
    }
}

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The error returned by every fallible keywarden call.
pub struct Error {
    kind: ErrorKind,
    field: Option<&'static str>,
    context: Cow<'static, str>,
    source: Option<Source>,
}

/// Shorthand used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind` with a human-readable context (never key material).
    pub fn new(kind: ErrorKind, context: impl Into<Cow<'static, str>>) -> Self {
        Error {
            kind,
            field: None,
            context: context.into(),
            source: None,
        }
    }

    /// A refused request field.
    pub fn invalid(field: &'static str, context: impl Into<Cow<'static, str>>) -> Self {
        Error {
            field: Some(field),
            ..Error::new(ErrorKind::InvalidInput, context)
        }
    }

    /// The opaque decrypt/authenticate failure.
    pub fn integrity() -> Self {
        Error::new(
            ErrorKind::Integrity,
            "stored data could not be authenticated with the configured keys",
        )
    }

    /// Keeps `source` as the typed cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Names the field that was refused.
    pub fn with_field(mut self, field: &'static str) -> Self {
        self.field = Some(field);
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// For `InvalidInput` (and `TooLarge`): the request field that was refused.
    pub fn field(&self) -> Option<&'static str> {
        self.field
    }

    /// The message without the kind prefix.
    pub fn context(&self) -> &str {
        &self.context
    }

    /// True when the same call may succeed later (a peer was briefly away).
    pub fn is_retryable(&self) -> bool {
        self.kind == ErrorKind::Unavailable
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.describe())?;
        if let Some(field) = self.field {
            write!(f, " ({field})")?;
        }
        if !self.context.is_empty() {
            write!(f, ": {}", self.context)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind);
        if let Some(field) = self.field {
            d.field("field", &field);
        }
        d.field("context", &self.context);
        if let Some(source) = &self.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_kind_field_and_context() {
        let e = Error::invalid("bit_length", "must be a positive multiple of 8");
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert_eq!(
            e.to_string(),
            "invalid input (bit_length): must be a positive multiple of 8"
        );
    }

    #[test]
    fn source_is_kept_typed() {
        let io = std::io::Error::other("disk");
        let e = Error::new(ErrorKind::Storage, "write").with_source(io);
        let src = std::error::Error::source(&e).expect("source kept");
        assert!(src.downcast_ref::<std::io::Error>().is_some());
    }
}
