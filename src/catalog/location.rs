//! Where a catalog lives: a SQLite file or a PostgreSQL URL whose password
//! never shows in `Debug`, `Display` or errors.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind, Result};

/// Where the catalog lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CatalogLocation {
    Sqlite(PathBuf),
    /// A PostgreSQL database (needs the `postgres` cargo feature to open).
    Postgres(PostgresUrl),
}

impl CatalogLocation {
    /// Parses `sqlite:PATH` or a `postgres://` / `postgresql://` URL;
    /// relative SQLite paths resolve against `base_dir`.
    pub fn parse(text: &str, base_dir: Option<&Path>) -> Result<Self> {
        match text.split_once(':') {
            Some(("sqlite", path)) if !path.is_empty() => {
                let path = Path::new(path);
                Ok(CatalogLocation::Sqlite(match base_dir {
                    Some(base) if path.is_relative() => base.join(path),
                    _ => path.to_path_buf(),
                }))
            }
            Some(("postgres" | "postgresql", _)) => {
                Ok(CatalogLocation::Postgres(PostgresUrl::parse(text)?))
            }
            _ => Err(Error::new(
                ErrorKind::Config,
                format!(
                    "catalog {:?} is not understood; expected \"sqlite:PATH\" or a \"postgresql://\" URL",
                    redact_url(text)
                ),
            )),
        }
    }

    /// The same location with a relative SQLite path taken relative to
    /// `base_dir` (a config file's directory); other locations unchanged.
    pub fn resolved(&self, base_dir: Option<&Path>) -> CatalogLocation {
        match (self, base_dir) {
            (CatalogLocation::Sqlite(path), Some(base)) if path.is_relative() => {
                CatalogLocation::Sqlite(base.join(path))
            }
            _ => self.clone(),
        }
    }

    /// The text this location parses from, password included (for a config
    /// file or a driver, never for a log): wiped when dropped.
    pub fn expose_text(&self) -> Zeroizing<String> {
        match self {
            CatalogLocation::Sqlite(path) => Zeroizing::new(format!("sqlite:{}", path.display())),
            CatalogLocation::Postgres(url) => Zeroizing::new(url.expose_url().to_owned()),
        }
    }
}

/// `"sqlite:PATH"` or a PostgreSQL URL; a relative path stays relative.
impl FromStr for CatalogLocation {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        CatalogLocation::parse(text, None)
    }
}

/// From the config's `catalog` string, which is wiped once parsed.
impl<'de> Deserialize<'de> for CatalogLocation {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = Zeroizing::new(String::deserialize(d)?);
        CatalogLocation::parse(&text, None).map_err(|e| serde::de::Error::custom(e.context()))
    }
}

/// A PostgreSQL connection URL (`postgresql://user:password@host:port/db?…`).
/// `Debug` and `Display` mask the password; the full text is reachable only
/// through [`PostgresUrl::expose_url`], and is wiped when dropped.
#[derive(Clone)]
pub struct PostgresUrl {
    url: Zeroizing<String>,
    shown: String,
}

impl PostgresUrl {
    pub fn parse(text: &str) -> Result<Self> {
        let ok = ["postgres://", "postgresql://"]
            .iter()
            .any(|scheme| text.starts_with(scheme));
        if !ok {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "{:?} is not a postgres:// or postgresql:// URL",
                    redact_url(text)
                ),
            ));
        }
        Ok(PostgresUrl {
            url: Zeroizing::new(text.to_owned()),
            shown: redact_url(text),
        })
    }

    /// The URL with its password, for the driver only.
    pub fn expose_url(&self) -> &str {
        &self.url
    }

    /// The URL with the password masked (safe to log).
    pub fn redacted(&self) -> &str {
        &self.shown
    }
}

impl PartialEq for PostgresUrl {
    fn eq(&self, other: &Self) -> bool {
        *self.url == *other.url
    }
}

impl Eq for PostgresUrl {}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PostgresUrl({:?})", self.shown)
    }
}

impl fmt::Display for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

/// Masks the password of a URL (`user:***@host`, `password=***`); text that
/// is not a URL comes back unchanged.
pub fn redact_url(text: &str) -> String {
    let Some(start) = text.find("://").map(|i| i + 3) else {
        return text.to_owned();
    };
    let rest = &text[start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let mut out = text[..start].to_owned();
    match authority.rfind('@') {
        Some(at) => {
            match authority[..at].split_once(':') {
                Some((user, _)) => {
                    out.push_str(user);
                    out.push_str(":***");
                }
                None => out.push_str(&authority[..at]),
            }
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    let tail = &rest[authority_end..];
    match tail.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            let params: Vec<&str> = query
                .split('&')
                .map(|kv| {
                    if kv.to_ascii_lowercase().starts_with("password=") {
                        "password=***"
                    } else {
                        kv
                    }
                })
                .collect();
            out.push_str(&params.join("&"));
        }
        None => out.push_str(tail),
    }
    out
}

impl fmt::Display for CatalogLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CatalogLocation::Sqlite(p) => write!(f, "sqlite:{}", p.display()),
            CatalogLocation::Postgres(url) => write!(f, "{url}"),
        }
    }
}
