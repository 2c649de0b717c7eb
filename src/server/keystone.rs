//! The `keystone` auth mode: what keystonemiddleware's `auth_token` does in
//! front of Barbican. A request's `X-Auth-Token` is validated against
//! Keystone v3 (`GET /v3/auth/tokens` with `X-Subject-Token`), as
//! keywarden's own service user; the token's project, user and role names
//! become the request's context, Barbican's policy applies to those roles.
//!
//! - Validations are cached (a keyed digest of the token, never the token)
//!   until the token expires or `token_cache_time` passes, whichever is
//!   first, so one token costs one Keystone call; a revoked token is
//!   refused once its entry ends, as with keystonemiddleware.
//! - `X-Service-Token` is validated too: a valid one with a service role
//!   lets an expired user token through (`allow_expired`), an invalid one
//!   is a 401.
//! - A missing, invalid or expired token is 401 with `WWW-Authenticate:
//!   Keystone uri="…"`; Keystone unreachable (or refusing keywarden's own
//!   credentials) is 503, so clients retry instead of re-authenticating.
//!
//! The service user's password, its token and callers' tokens are held in
//! wiped buffers and never logged or shown by `Debug`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::context::Context;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{ProjectId, Timestamp, UserId};

use super::auth::Authenticator;
use super::error::{ApiError, ApiResult};

/// `[keystone_authtoken]` as written in the config file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeystone {
    auth_url: String,
    www_authenticate_uri: Option<String>,
    username: Option<String>,
    #[serde(default, deserialize_with = "secret")]
    password: Option<Zeroizing<String>>,
    user_domain_name: Option<String>,
    project_name: Option<String>,
    project_domain_name: Option<String>,
    application_credential_id: Option<String>,
    #[serde(default, deserialize_with = "secret")]
    application_credential_secret: Option<Zeroizing<String>>,
    cafile: Option<PathBuf>,
    token_cache_time: Option<u64>,
    cache_size: Option<usize>,
    timeout_secs: Option<u64>,
    service_token_roles: Option<Vec<String>>,
    service_token_roles_required: Option<bool>,
    role_map: Option<BTreeMap<String, Vec<String>>>,
}

/// A password or secret, kept in a wiped buffer from the start.
fn secret<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Zeroizing<String>>, D::Error> {
    Ok(Some(Zeroizing::new(String::deserialize(d)?)))
}

/// How keywarden proves itself to Keystone.
#[derive(Clone)]
enum Credentials {
    Password {
        username: String,
        password: Zeroizing<String>,
        user_domain_name: String,
        project_name: String,
        project_domain_name: String,
    },
    ApplicationCredential {
        id: String,
        secret: Zeroizing<String>,
    },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Password {
                username,
                project_name,
                ..
            } => f
                .debug_struct("Password")
                .field("username", username)
                .field("password", &"[REDACTED]")
                .field("project_name", project_name)
                .finish_non_exhaustive(),
            Credentials::ApplicationCredential { id, .. } => f
                .debug_struct("ApplicationCredential")
                .field("id", id)
                .field("secret", &"[REDACTED]")
                .finish(),
        }
    }
}

/// The validated `[keystone_authtoken]` section.
#[derive(Clone, Debug)]
pub struct KeystoneConfig {
    /// Keystone's identity endpoint, without `/v3`.
    pub auth_url: String,
    /// What 401s point clients at (`WWW-Authenticate: Keystone uri="…"`).
    pub www_authenticate_uri: String,
    credentials: Credentials,
    pub cafile: Option<PathBuf>,
    /// How long a validation is trusted at most (keystonemiddleware's
    /// `token_cache_time`, 300 s).
    pub token_cache_time: Duration,
    /// Validations remembered at most; the cache is emptied when full.
    pub cache_size: usize,
    /// Each call to Keystone, connect to last byte.
    pub timeout: Duration,
    pub service_token_roles: Vec<String>,
    pub service_token_roles_required: bool,
    /// Keystone role name -> the Barbican roles it grants (added to the
    /// token's own role names, which pass through).
    pub role_map: BTreeMap<String, Vec<String>>,
}

impl KeystoneConfig {
    /// Parses the section; errors name keys, never values.
    pub fn from_table(table: &toml::Table, config: &crate::config::Config) -> Result<Self> {
        let raw: RawKeystone = table.clone().try_into().map_err(|e: toml::de::Error| {
            Error::new(
                ErrorKind::Config,
                format!(
                    "invalid [keystone_authtoken] section: {}",
                    crate::config::without_values(e.message())
                ),
            )
        })?;
        let bad = |m: &str| Error::new(ErrorKind::Config, format!("[keystone_authtoken] {m}"));
        let auth_url = raw.auth_url.trim_end_matches('/');
        let auth_url = auth_url.strip_suffix("/v3").unwrap_or(auth_url).to_owned();
        if !(auth_url.starts_with("http://") || auth_url.starts_with("https://")) {
            return Err(bad("auth_url must start with http:// or https://"));
        }
        let credentials = match (
            raw.application_credential_id,
            raw.application_credential_secret,
        ) {
            (Some(id), Some(secret)) => Credentials::ApplicationCredential { id, secret },
            (None, None) => Credentials::Password {
                username: raw.username.ok_or_else(|| {
                    bad("needs username and password, or an application credential")
                })?,
                password: raw.password.ok_or_else(|| {
                    bad("needs username and password, or an application credential")
                })?,
                user_domain_name: raw.user_domain_name.unwrap_or_else(|| "Default".into()),
                project_name: raw
                    .project_name
                    .ok_or_else(|| bad("needs project_name (keywarden's service project)"))?,
                project_domain_name: raw.project_domain_name.unwrap_or_else(|| "Default".into()),
            },
            _ => {
                return Err(bad(
                    "needs both application_credential_id and application_credential_secret",
                ));
            }
        };
        let role_map = raw.role_map.unwrap_or_else(|| {
            BTreeMap::from([
                ("member".to_owned(), vec!["creator".to_owned()]),
                ("reader".to_owned(), vec!["observer".to_owned()]),
            ])
        });
        Ok(KeystoneConfig {
            www_authenticate_uri: raw
                .www_authenticate_uri
                .map(|u| u.trim_end_matches('/').to_owned())
                .unwrap_or_else(|| auth_url.clone()),
            auth_url,
            credentials,
            cafile: raw.cafile.map(|p| config.resolve(&p)),
            token_cache_time: Duration::from_secs(raw.token_cache_time.unwrap_or(300)),
            cache_size: raw.cache_size.unwrap_or(10_000).max(1),
            timeout: Duration::from_secs(raw.timeout_secs.unwrap_or(5).max(1)),
            service_token_roles: raw
                .service_token_roles
                .unwrap_or_else(|| vec!["service".into()]),
            service_token_roles_required: raw.service_token_roles_required.unwrap_or(true),
            role_map,
        })
    }
}

/// What a validated token says about its bearer.
#[derive(Clone, Debug)]
struct Identity {
    user: UserId,
    project: Option<ProjectId>,
    roles: Vec<String>,
    expires: Timestamp,
}

struct CacheEntry {
    identity: Identity,
    /// When this validation stops being trusted (token expiry or
    /// `token_cache_time`, whichever is first).
    until: Instant,
}

/// keywarden's own token, reused until shortly before it expires.
struct ServiceToken {
    token: Zeroizing<String>,
    renew_at: Instant,
}

/// The `keystone` authenticator.
pub struct Keystone {
    config: KeystoneConfig,
    agent: ureq::Agent,
    cache_key: Zeroizing<[u8; 32]>,
    cache: Mutex<HashMap<[u8; 32], CacheEntry>>,
    service: Mutex<Option<ServiceToken>>,
    /// Requests sent to Keystone (validations and logins), for tests and
    /// operators.
    calls: AtomicU64,
    challenge: String,
}

impl fmt::Debug for Keystone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keystone")
            .field("auth_url", &self.config.auth_url)
            .field("credentials", &self.config.credentials)
            .finish_non_exhaustive()
    }
}

/// Why a Keystone call did not give an answer.
enum Failure {
    /// The token is not valid (Keystone's 404, or a token without a
    /// project): 401.
    Invalid,
    /// Keystone cannot be asked (down, timing out, refusing keywarden's
    /// credentials, answering nonsense): 503.
    Unavailable(String),
}

impl Keystone {
    pub fn new(config: KeystoneConfig) -> Result<Self> {
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(path) = &config.cafile {
            let pem = std::fs::read(path).map_err(|e| {
                Error::new(
                    ErrorKind::Config,
                    format!("cannot read [keystone_authtoken] cafile {}", path.display()),
                )
                .with_source(e)
            })?;
            let certs = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect::<Vec<_>>();
            if certs.is_empty() {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!(
                        "[keystone_authtoken] cafile {} holds no certificate",
                        path.display()
                    ),
                ));
            }
            tls = tls.root_certs(ureq::tls::RootCerts::Specific(Arc::new(certs)));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(config.timeout))
            .http_status_as_error(false)
            .tls_config(tls.build())
            .build()
            .into();
        let mut cache_key = Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut cache_key[..])
            .map_err(|_| Error::new(ErrorKind::Unavailable, "no randomness"))?;
        let challenge = format!("Keystone uri=\"{}\"", config.www_authenticate_uri);
        HeaderValue::from_str(&challenge).map_err(|_| {
            Error::new(
                ErrorKind::Config,
                "[keystone_authtoken] www_authenticate_uri is not a valid header value",
            )
        })?;
        Ok(Keystone {
            config,
            agent,
            cache_key,
            cache: Mutex::new(HashMap::new()),
            service: Mutex::new(None),
            calls: AtomicU64::new(0),
            challenge,
        })
    }

    /// Requests sent to Keystone so far (token validations and keywarden's
    /// own logins).
    pub fn keystone_calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    fn unauthorized(&self) -> ApiError {
        ApiError::unauthorized_with(self.challenge.clone())
    }

    fn unavailable(&self, why: &str) -> ApiError {
        tracing::warn!(reason = why, "Keystone cannot validate tokens");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "The identity service cannot be reached; retry later",
        )
    }

    fn digest(&self, token: &[u8], allow_expired: bool) -> [u8; 32] {
        let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&self.cache_key[..])
            .expect("HMAC takes any key length"); // invariant of HMAC
        mac.update(&[u8::from(allow_expired)]);
        mac.update(token);
        mac.finalize().into_bytes().into()
    }

    /// The identity a token carries, from the cache or from Keystone.
    fn identity(&self, token: &str, allow_expired: bool) -> ApiResult<Identity> {
        let key = self.digest(token.as_bytes(), allow_expired);
        let now = Instant::now();
        if let Ok(cache) = self.cache.lock()
            && let Some(e) = cache.get(&key)
            && now < e.until
        {
            return Ok(e.identity.clone());
        }
        let identity = match self.validate(token, allow_expired) {
            Ok(i) => i,
            Err(Failure::Invalid) => {
                if let Ok(mut cache) = self.cache.lock() {
                    cache.remove(&key);
                }
                return Err(self.unauthorized());
            }
            Err(Failure::Unavailable(why)) => return Err(self.unavailable(&why)),
        };
        let left = identity
            .expires
            .unix()
            .saturating_sub(Timestamp::now().unix());
        let ttl = if allow_expired {
            self.config.token_cache_time
        } else {
            Duration::from_secs(u64::try_from(left).unwrap_or(0)).min(self.config.token_cache_time)
        };
        if !ttl.is_zero()
            && let Ok(mut cache) = self.cache.lock()
        {
            if cache.len() >= self.config.cache_size {
                cache.retain(|_, e| now < e.until);
                if cache.len() >= self.config.cache_size {
                    cache.clear();
                }
            }
            cache.insert(
                key,
                CacheEntry {
                    identity: identity.clone(),
                    until: now + ttl,
                },
            );
        }
        Ok(identity)
    }

    /// `GET /v3/auth/tokens` for `token`, as keywarden; a refused service
    /// token is renewed once.
    fn validate(&self, token: &str, allow_expired: bool) -> std::result::Result<Identity, Failure> {
        let url = if allow_expired {
            format!("{}/v3/auth/tokens?allow_expired=1", self.config.auth_url)
        } else {
            format!("{}/v3/auth/tokens", self.config.auth_url)
        };
        for attempt in 0..2 {
            let service = self.service_token(attempt > 0)?;
            self.calls.fetch_add(1, Ordering::Relaxed);
            let mut resp = self
                .agent
                .get(&url)
                .header("X-Auth-Token", service.as_str())
                .header("X-Subject-Token", token)
                .header("Accept", "application/json")
                .call()
                .map_err(|e| Failure::Unavailable(format!("GET /v3/auth/tokens: {e}")))?;
            match resp.status().as_u16() {
                200 => {
                    let body = resp
                        .body_mut()
                        .with_config()
                        .limit(4 << 20)
                        .read_to_vec()
                        .map_err(|e| Failure::Unavailable(format!("reading a token: {e}")))?;
                    return self.identity_from(&body);
                }
                // The subject token is unknown, expired or revoked.
                404 => return Err(Failure::Invalid),
                // Our own token was refused: log in again, once.
                401 if attempt == 0 => continue,
                s => {
                    return Err(Failure::Unavailable(format!(
                        "GET /v3/auth/tokens answered {s}"
                    )));
                }
            }
        }
        Err(Failure::Unavailable(
            "Keystone refuses keywarden's service credentials".into(),
        ))
    }

    fn identity_from(&self, body: &[u8]) -> std::result::Result<Identity, Failure> {
        let doc: TokenDoc = serde_json::from_slice(body)
            .map_err(|_| Failure::Unavailable("a token document that does not parse".into()))?;
        let t = doc.token;
        let expires = Timestamp::parse_iso8601(&t.expires_at)
            .map_err(|_| Failure::Unavailable("a token expiry that does not parse".into()))?;
        let user = UserId::new(t.user.id).map_err(|_| Failure::Invalid)?;
        let project = match t.project {
            Some(p) => Some(ProjectId::new(p.id).map_err(|_| Failure::Invalid)?),
            None => None,
        };
        let mut roles = Vec::new();
        for r in t.roles {
            if let Some(granted) = self.config.role_map.get(&r.name) {
                roles.extend(granted.iter().cloned());
            }
            roles.push(r.name);
        }
        roles.sort();
        roles.dedup();
        Ok(Identity {
            user,
            project,
            roles,
            expires,
        })
    }

    /// keywarden's own token, logging in when there is none or it is
    /// about to expire (or `renew`).
    fn service_token(&self, renew: bool) -> std::result::Result<Zeroizing<String>, Failure> {
        let mut held = self
            .service
            .lock()
            .map_err(|_| Failure::Unavailable("service token lock poisoned".into()))?;
        if !renew
            && let Some(t) = held.as_ref()
            && Instant::now() < t.renew_at
        {
            return Ok(t.token.clone());
        }
        *held = None;
        let body = self.login_body();
        self.calls.fetch_add(1, Ordering::Relaxed);
        let mut resp = self
            .agent
            .post(format!("{}/v3/auth/tokens", self.config.auth_url))
            .header("Content-Type", "application/json")
            .send(&body[..])
            .map_err(|e| Failure::Unavailable(format!("POST /v3/auth/tokens: {e}")))?;
        if resp.status() != 201 {
            return Err(Failure::Unavailable(format!(
                "keywarden's own login answered {}",
                resp.status().as_u16()
            )));
        }
        let token = resp
            .headers()
            .get("X-Subject-Token")
            .and_then(|v| v.to_str().ok())
            .map(|s| Zeroizing::new(s.to_owned()))
            .ok_or_else(|| Failure::Unavailable("a login without X-Subject-Token".into()))?;
        let body = resp
            .body_mut()
            .with_config()
            .limit(4 << 20)
            .read_to_vec()
            .map_err(|e| Failure::Unavailable(format!("reading keywarden's token: {e}")))?;
        let doc: TokenDoc = serde_json::from_slice(&body)
            .map_err(|_| Failure::Unavailable("keywarden's token does not parse".into()))?;
        let left = Timestamp::parse_iso8601(&doc.token.expires_at)
            .map(|e| e.unix().saturating_sub(Timestamp::now().unix()))
            .unwrap_or(0);
        // Renewed a minute early (or at once, for a token that short).
        let renew_at = Instant::now() + Duration::from_secs(u64::try_from(left - 60).unwrap_or(0));
        *held = Some(ServiceToken {
            token: token.clone(),
            renew_at,
        });
        Ok(token)
    }

    /// The login request, written straight into a wiped buffer.
    fn login_body(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(1024));
        let result = match &self.config.credentials {
            Credentials::Password {
                username,
                password,
                user_domain_name,
                project_name,
                project_domain_name,
            } => serde_json::to_writer(
                &mut *out,
                &LoginPassword {
                    auth: PasswordAuth {
                        identity: PasswordIdentity {
                            methods: ["password"],
                            password: PasswordBlock {
                                user: PasswordUser {
                                    name: username,
                                    domain: Named {
                                        name: user_domain_name,
                                    },
                                    password,
                                },
                            },
                        },
                        scope: Scope {
                            project: ScopeProject {
                                name: project_name,
                                domain: Named {
                                    name: project_domain_name,
                                },
                            },
                        },
                    },
                },
            ),
            Credentials::ApplicationCredential { id, secret } => serde_json::to_writer(
                &mut *out,
                &LoginAppCred {
                    auth: AppCredAuth {
                        identity: AppCredIdentity {
                            methods: ["application_credential"],
                            application_credential: AppCred { id, secret },
                        },
                    },
                },
            ),
        };
        // Serializing strings into a Vec cannot fail.
        debug_assert!(result.is_ok());
        out
    }
}

impl Authenticator for Keystone {
    fn authenticate(&self, headers: &HeaderMap) -> ApiResult<Context> {
        let token = |name: &str| -> ApiResult<Option<Zeroizing<String>>> {
            match headers.get(name) {
                None => Ok(None),
                Some(v) => match v.to_str() {
                    Ok(s) if !s.trim().is_empty() => Ok(Some(Zeroizing::new(s.trim().to_owned()))),
                    _ => Err(self.unauthorized()),
                },
            }
        };
        let user_token = token("x-auth-token")?.ok_or_else(|| self.unauthorized())?;
        // keystonemiddleware: an invalid service token refuses the request;
        // a valid one with a service role lets an expired user token in.
        let allow_expired = match token("x-service-token")? {
            None => false,
            Some(service) => {
                let s = self.identity(&service, false)?;
                let is_service = s
                    .roles
                    .iter()
                    .any(|r| self.config.service_token_roles.contains(r));
                if !is_service && self.config.service_token_roles_required {
                    return Err(self.unauthorized());
                }
                is_service
            }
        };
        let id = self.identity(&user_token, allow_expired)?;
        // Barbican acts within a project; a domain-scoped or unscoped token
        // has none.
        let project = id.project.ok_or_else(|| self.unauthorized())?;
        Ok(Context::new(id.user, project, &id.roles))
    }

    fn is_costly(&self) -> bool {
        true
    }

    /// A warm token (no service token beside it): the cached validation.
    fn authenticate_fast(&self, headers: &HeaderMap) -> Option<ApiResult<Context>> {
        if headers.contains_key("x-service-token") {
            return None;
        }
        let token = headers.get("x-auth-token")?.to_str().ok()?.trim();
        let key = self.digest(token.as_bytes(), false);
        let cache = self.cache.lock().ok()?;
        let entry = cache.get(&key).filter(|e| Instant::now() < e.until)?;
        let id = &entry.identity;
        Some(match &id.project {
            Some(project) => Ok(Context::new(id.user.clone(), project.clone(), &id.roles)),
            None => Err(self.unauthorized()),
        })
    }
}

// ---- Keystone's JSON ----

#[derive(Deserialize)]
struct TokenDoc {
    token: TokenBody,
}

#[derive(Deserialize)]
struct TokenBody {
    expires_at: String,
    user: IdOnly,
    project: Option<IdOnly>,
    #[serde(default)]
    roles: Vec<RoleName>,
}

#[derive(Deserialize)]
struct IdOnly {
    id: String,
}

#[derive(Deserialize)]
struct RoleName {
    name: String,
}

#[derive(Serialize)]
struct Named<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct LoginPassword<'a> {
    auth: PasswordAuth<'a>,
}

#[derive(Serialize)]
struct PasswordAuth<'a> {
    identity: PasswordIdentity<'a>,
    scope: Scope<'a>,
}

#[derive(Serialize)]
struct PasswordIdentity<'a> {
    methods: [&'static str; 1],
    password: PasswordBlock<'a>,
}

#[derive(Serialize)]
struct PasswordBlock<'a> {
    user: PasswordUser<'a>,
}

#[derive(Serialize)]
struct PasswordUser<'a> {
    name: &'a str,
    domain: Named<'a>,
    password: &'a str,
}

#[derive(Serialize)]
struct Scope<'a> {
    project: ScopeProject<'a>,
}

#[derive(Serialize)]
struct ScopeProject<'a> {
    name: &'a str,
    domain: Named<'a>,
}

#[derive(Serialize)]
struct LoginAppCred<'a> {
    auth: AppCredAuth<'a>,
}

#[derive(Serialize)]
struct AppCredAuth<'a> {
    identity: AppCredIdentity<'a>,
}

#[derive(Serialize)]
struct AppCredIdentity<'a> {
    methods: [&'static str; 1],
    application_credential: AppCred<'a>,
}

#[derive(Serialize)]
struct AppCred<'a> {
    id: &'a str,
    secret: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(section: &str) -> Result<KeystoneConfig> {
        let table: toml::Table = toml::from_str(section).unwrap();
        KeystoneConfig::from_table(&table, &crate::config::Config::generate("x.db")?)
    }

    #[test]
    fn sections_parse_and_never_show_secrets() {
        let c = config(
            "auth_url = \"http://127.0.0.1:5000/v3/\"\nusername = \"keywarden\"\n\
             password = \"s3cret-pw\"\nproject_name = \"service\"",
        )
        .unwrap();
        assert_eq!(c.auth_url, "http://127.0.0.1:5000");
        assert_eq!(c.www_authenticate_uri, "http://127.0.0.1:5000");
        assert_eq!(c.role_map["member"], ["creator"]);
        assert!(!format!("{c:?}").contains("s3cret-pw"));
        let k = Keystone::new(c).unwrap();
        assert!(!format!("{k:?}").contains("s3cret-pw"));
        let body = k.login_body();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v["auth"]["identity"]["password"]["user"]["password"],
            "s3cret-pw"
        );
        assert_eq!(v["auth"]["scope"]["project"]["domain"]["name"], "Default");
        let c = config(
            "auth_url = \"https://ks\"\napplication_credential_id = \"ac\"\n\
             application_credential_secret = \"s3cret-ac\"",
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("s3cret-ac"));
    }

    #[test]
    fn refusals_name_keys_not_values() {
        for (section, value) in [
            (
                "auth_url = \"ftp://s3cret\"\nusername = \"u\"\npassword = \"p\"\nproject_name = \"s\"",
                "s3cret",
            ),
            ("auth_url = \"http://k\"\nusername = \"u\"", "u\""),
            (
                "auth_url = \"http://k\"\napplication_credential_secret = \"s3cret\"",
                "s3cret",
            ),
            ("auth_url = \"http://k\"\npassword = 5", "5"),
            ("auth_url = \"http://k\"\nbogus = \"s3cret\"", "s3cret"),
        ] {
            let e = config(section).unwrap_err();
            let text = format!("{e} {e:?}");
            assert!(text.contains("[keystone_authtoken]"), "{text}");
            assert!(!text.contains(value), "{text}");
        }
    }

    #[test]
    fn roles_are_mapped_and_kept() {
        let c = config(
            "auth_url = \"http://k\"\nusername = \"u\"\npassword = \"p\"\nproject_name = \"s\"",
        )
        .unwrap();
        let k = Keystone::new(c).unwrap();
        let body = br#"{"token": {"expires_at": "2099-01-01T00:00:00.000000Z",
            "user": {"id": "u1", "name": "alice"}, "project": {"id": "p1", "name": "a"},
            "roles": [{"id": "r1", "name": "member"}, {"id": "r2", "name": "audit"}]}}"#;
        let Ok(id) = k.identity_from(body) else {
            panic!("a valid token document")
        };
        assert_eq!(id.roles, ["audit", "creator", "member"]);
        assert_eq!(id.project.unwrap().as_str(), "p1");
        let no_project = br#"{"token": {"expires_at": "2099-01-01T00:00:00Z",
            "user": {"id": "u1"}, "roles": []}}"#;
        assert!(
            k.identity_from(no_project)
                .is_ok_and(|i| i.project.is_none())
        );
        assert!(matches!(
            k.identity_from(b"{}"),
            Err(Failure::Unavailable(_))
        ));
    }
}
