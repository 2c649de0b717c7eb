//! Who is asking: the pluggable seam between a request's headers and the
//! store's [`Context`]. `noauth` (Barbican's unauthenticated context) and
//! `http_basic` (a users file of argon2 hashes) are here; Keystone tokens
//! plug in beside them.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;
use std::sync::Mutex;

use argon2::{Algorithm, Argon2, Params, Version};
use axum::http::HeaderMap;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::context::Context;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{ProjectId, UserId};

use super::error::{ApiError, ApiResult};

/// Turns a request's headers into the caller's context.
pub trait Authenticator: Send + Sync + fmt::Debug {
    fn authenticate(&self, headers: &HeaderMap) -> ApiResult<Context>;

    /// Whether `authenticate` is slow (a password hash) and belongs on the
    /// blocking pool.
    fn is_costly(&self) -> bool {
        false
    }

    /// For a costly authenticator: the answer when it needs no slow work
    /// (a cached validation), taken on the async worker without a trip to
    /// the blocking pool; `None` sends the request there.
    fn authenticate_fast(&self, _headers: &HeaderMap) -> Option<ApiResult<Context>> {
        None
    }
}

/// Barbican's unauthenticated context: `X-Project-Id`, `X-User-Id`,
/// `X-Roles`, each falling back to the configured default identity.
#[derive(Debug)]
pub struct NoAuth {
    pub default_project: ProjectId,
    pub default_user: UserId,
    pub default_roles: Vec<String>,
}

impl Authenticator for NoAuth {
    fn authenticate(&self, headers: &HeaderMap) -> ApiResult<Context> {
        let text = |name: &str| -> ApiResult<Option<&str>> {
            match headers.get(name) {
                None => Ok(None),
                Some(v) => match v.to_str() {
                    Ok(s) if s.trim().is_empty() => Ok(None),
                    Ok(s) => Ok(Some(s.trim())),
                    Err(_) => Err(ApiError::bad_request(format!("{name} is not ASCII text"))),
                },
            }
        };
        let project = match text("x-project-id")? {
            Some(p) => {
                ProjectId::new(p).map_err(|_| ApiError::bad_request("Invalid X-Project-Id"))?
            }
            None => self.default_project.clone(),
        };
        let user = match text("x-user-id")? {
            Some(u) => UserId::new(u).map_err(|_| ApiError::bad_request("Invalid X-User-Id"))?,
            None => self.default_user.clone(),
        };
        let ctx = match text("x-roles")? {
            Some(r) => Context::new(user, project, r.split(',')),
            None => Context::new(user, project, &self.default_roles),
        };
        Ok(ctx)
    }
}

/// One entry of the users file.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    /// `$argon2id$v=19$m=…,t=…,p=…$SALT$HASH` (PHC string, unpadded base64).
    pub password_hash: String,
    pub project: String,
    pub roles: Vec<String>,
}

impl fmt::Debug for UserEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserEntry")
            .field("password_hash", &"[REDACTED]")
            .field("project", &self.project)
            .field("roles", &self.roles)
            .finish()
    }
}

/// The users file: `[users.NAME]` tables.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UsersFile {
    #[serde(default)]
    pub users: BTreeMap<String, UserEntry>,
}

impl UsersFile {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("cannot read users file {}", path.display()),
            )
            .with_source(e)
        })?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Self> {
        let file: UsersFile = toml::from_str(text).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("invalid users file: {}", e.message()),
            )
        })?;
        for (name, u) in &file.users {
            UserId::new(name.clone())?;
            ProjectId::new(u.project.clone())?;
            PhcHash::parse(&u.password_hash).ok_or_else(|| {
                Error::new(
                    ErrorKind::Config,
                    format!("users file: password_hash of {name} is not an argon2id PHC string"),
                )
            })?;
        }
        Ok(file)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }

    /// Adds or replaces `name` with a fresh hash of `password`.
    pub fn set_user(
        &mut self,
        name: &str,
        password: &[u8],
        project: &str,
        roles: Vec<String>,
    ) -> Result<()> {
        UserId::new(name)?;
        ProjectId::new(project)?;
        self.users.insert(
            name.to_owned(),
            UserEntry {
                password_hash: hash_password(password)?,
                project: project.to_owned(),
                roles,
            },
        );
        Ok(())
    }
}

/// `Authorization: Basic` against a [`UsersFile`]. Verified credentials
/// are remembered (as a keyed digest, never the password) so a client
/// that sends them on every request pays for argon2 once.
pub struct HttpBasic {
    users: UsersFile,
    cache_key: Zeroizing<[u8; 32]>,
    verified: Mutex<HashMap<[u8; 32], String>>,
}

/// Remembered credentials, at most; the cache is cleared when full.
const VERIFIED_CACHE_MAX: usize = 1024;

impl HttpBasic {
    pub fn new(users: UsersFile) -> Result<Self> {
        let mut cache_key = Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut cache_key[..])
            .map_err(|_| Error::new(ErrorKind::Unavailable, "no randomness"))?;
        Ok(HttpBasic {
            users,
            cache_key,
            verified: Mutex::new(HashMap::new()),
        })
    }

    fn digest(&self, user: &str, password: &[u8]) -> [u8; 32] {
        let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&self.cache_key[..])
            .expect("HMAC takes any key length"); // invariant of HMAC
        mac.update(user.as_bytes());
        mac.update(&[0]);
        mac.update(password);
        mac.finalize().into_bytes().into()
    }

    fn context(&self, name: &str, entry: &UserEntry) -> ApiResult<Context> {
        let user = UserId::new(name).map_err(|_| ApiError::unauthorized())?;
        let project =
            ProjectId::new(entry.project.clone()).map_err(|_| ApiError::unauthorized())?;
        Ok(Context::new(user, project, &entry.roles))
    }
}

impl fmt::Debug for HttpBasic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpBasic")
            .field("users", &self.users.users.len())
            .finish_non_exhaustive()
    }
}

impl Authenticator for HttpBasic {
    fn authenticate(&self, headers: &HeaderMap) -> ApiResult<Context> {
        let value = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(ApiError::unauthorized)?;
        let (scheme, b64) = value
            .trim()
            .split_once(' ')
            .ok_or_else(ApiError::unauthorized)?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(ApiError::unauthorized());
        }
        let decoded = Zeroizing::new(
            STANDARD
                .decode(b64.trim())
                .map_err(|_| ApiError::unauthorized())?,
        );
        let colon = decoded
            .iter()
            .position(|b| *b == b':')
            .ok_or_else(ApiError::unauthorized)?;
        let (name, password) = (&decoded[..colon], &decoded[colon + 1..]);
        let name = std::str::from_utf8(name).map_err(|_| ApiError::unauthorized())?;
        let entry = self.users.users.get(name).ok_or_else(|| {
            // Same cost whether or not the user exists.
            let _ = verify_password(DUMMY_HASH, password);
            ApiError::unauthorized()
        })?;
        let digest = self.digest(name, password);
        if let Ok(cache) = self.verified.lock()
            && cache
                .get(&digest)
                .is_some_and(|h| *h == entry.password_hash)
        {
            return self.context(name, entry);
        }
        if !verify_password(&entry.password_hash, password) {
            return Err(ApiError::unauthorized());
        }
        if let Ok(mut cache) = self.verified.lock() {
            if cache.len() >= VERIFIED_CACHE_MAX {
                cache.clear();
            }
            cache.insert(digest, entry.password_hash.clone());
        }
        self.context(name, entry)
    }

    fn is_costly(&self) -> bool {
        true
    }
}

// ---- argon2id PHC strings ----

/// OWASP's argon2id minimum: 19 MiB, 2 passes, 1 lane.
const M_COST: u32 = 19 * 1024;
const T_COST: u32 = 2;
const P_COST: u32 = 1;
/// A valid hash of a random password, verified when the user is unknown.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$4rvoqEO8MQ0wkmjdp8ZURMlkjMc7QxGdiEhQMyNZGDs";

struct PhcHash {
    m: u32,
    t: u32,
    p: u32,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

impl PhcHash {
    fn parse(s: &str) -> Option<Self> {
        let mut parts = s.split('$');
        if !parts.next()?.is_empty() || parts.next()? != "argon2id" || parts.next()? != "v=19" {
            return None;
        }
        let (mut m, mut t, mut p) = (None, None, None);
        for kv in parts.next()?.split(',') {
            let (k, v) = kv.split_once('=')?;
            let v: u32 = v.parse().ok()?;
            match k {
                "m" => m = Some(v),
                "t" => t = Some(v),
                "p" => p = Some(v),
                _ => return None,
            }
        }
        let salt = STANDARD_NO_PAD.decode(parts.next()?).ok()?;
        let hash = STANDARD_NO_PAD.decode(parts.next()?).ok()?;
        if parts.next().is_some() || hash.len() < 16 || hash.len() > 64 {
            return None;
        }
        // A users file is trusted config, but a typo must not exhaust memory.
        let (m, t, p) = (m?, t?, p?);
        if m > 1 << 21 || t > 64 || p > 16 {
            return None;
        }
        Some(PhcHash {
            m,
            t,
            p,
            salt,
            hash,
        })
    }
}

/// A PHC string of `password` with a random salt.
pub fn hash_password(password: &[u8]) -> Result<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|_| Error::new(ErrorKind::Unavailable, "no randomness"))?;
    let mut out = [0u8; 32];
    argon2(M_COST, T_COST, P_COST, out.len())?
        .hash_password_into(password, &salt, &mut out)
        .map_err(|_| Error::new(ErrorKind::InvalidInput, "password cannot be hashed"))?;
    Ok(format!(
        "$argon2id$v=19$m={M_COST},t={T_COST},p={P_COST}${}${}",
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(out)
    ))
}

/// Constant-time comparison of `password`'s hash with `phc`.
pub fn verify_password(phc: &str, password: &[u8]) -> bool {
    let Some(h) = PhcHash::parse(phc) else {
        return false;
    };
    let Ok(a) = argon2(h.m, h.t, h.p, h.hash.len()) else {
        return false;
    };
    let mut out = Zeroizing::new(vec![0u8; h.hash.len()]);
    if a.hash_password_into(password, &h.salt, &mut out).is_err() {
        return false;
    }
    subtle::ConstantTimeEq::ct_eq(&out[..], &h.hash[..]).into()
}

fn argon2(m: u32, t: u32, p: u32, len: usize) -> Result<Argon2<'static>> {
    let params = Params::new(m, t, p, Some(len))
        .map_err(|_| Error::new(ErrorKind::Config, "invalid argon2 parameters"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_wrong_passwords_do_not() {
        let h = hash_password(b"s3cret").unwrap();
        assert!(verify_password(&h, b"s3cret"));
        assert!(!verify_password(&h, b"s3creT"));
        assert!(!verify_password(
            "$argon2id$v=19$m=1,t=1,p=1$x$y",
            b"s3cret"
        ));
        assert!(PhcHash::parse(DUMMY_HASH).is_some());
    }

    #[test]
    fn basic_auth_maps_users_to_contexts() {
        let mut f = UsersFile::default();
        f.set_user("alice", b"pw", "proj-a", vec!["creator".into()])
            .unwrap();
        let text = f.to_toml();
        assert!(!text.contains("pw\""));
        let auth = HttpBasic::new(UsersFile::parse(&text).unwrap()).unwrap();
        let mut h = HeaderMap::new();
        assert_eq!(auth.authenticate(&h).unwrap_err().status.as_u16(), 401);
        h.insert(
            "authorization",
            format!("Basic {}", STANDARD.encode("alice:pw"))
                .parse()
                .unwrap(),
        );
        for _ in 0..2 {
            let ctx = auth.authenticate(&h).unwrap();
            assert_eq!(ctx.project_id.as_str(), "proj-a");
            assert!(ctx.has_role("creator"));
        }
        h.insert(
            "authorization",
            format!("Basic {}", STANDARD.encode("alice:pW"))
                .parse()
                .unwrap(),
        );
        assert_eq!(auth.authenticate(&h).unwrap_err().status.as_u16(), 401);
        assert!(!format!("{auth:?}{f:?}").contains("argon2id$"));
    }
}
