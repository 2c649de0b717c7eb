//! The `[server]` section of the config: where `keywarden serve` listens,
//! how it writes refs, TLS, authentication and limits.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};

/// Barbican's `max_allowed_request_size_in_bytes`.
pub const DEFAULT_MAX_BODY_BYTES: usize = 25_000;
/// Where `keywarden serve` listens unless told otherwise (Barbican's port).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9311";

/// How requests are authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// Barbican's unauthenticated context: `X-Project-Id`, `X-User-Id`,
    /// `X-Roles`, with the configured default identity when absent.
    Noauth,
    /// `Authorization: Basic` against a users file of argon2 hashes.
    HttpBasic,
    /// Keystone tokens (`X-Auth-Token`), validated as keystonemiddleware
    /// does; the `[keystone_authtoken]` section says how.
    Keystone,
}

/// The `[server]` section as written in the file (every key optional).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServerConfig {
    listen: Option<String>,
    host_href: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    #[serde(default)]
    plain_http: bool,
    auth: Option<AuthMode>,
    #[serde(default)]
    danger_allow_noauth_on_public_address: bool,
    default_project: Option<String>,
    default_user: Option<String>,
    default_roles: Option<Vec<String>>,
    #[allow(dead_code)] // read by `users_file`, which needs no valid section
    users_file: Option<String>,
    max_body_bytes: Option<usize>,
    header_read_timeout_secs: Option<u64>,
    blocking_threads: Option<usize>,
}

/// TLS material, as paths resolved against the config's directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsPaths {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The validated `[server]` section.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Base of every returned ref (`<host_href>/v1/secrets/<uuid>`).
    pub host_href: String,
    /// `None` only when `plain_http = true`.
    pub tls: Option<TlsPaths>,
    pub auth: AuthMode,
    pub default_project: String,
    pub default_user: String,
    pub default_roles: Vec<String>,
    pub users_file: PathBuf,
    pub max_body_bytes: usize,
    pub header_read_timeout: Duration,
    /// Threads for store calls (the catalog is the limit, not the CPUs).
    pub blocking_threads: usize,
    /// `[keystone_authtoken]`, when `auth = "keystone"`.
    pub keystone: Option<super::keystone::KeystoneConfig>,
}

impl ServerConfig {
    /// Reads `config.server`; an absent section means every default, which
    /// still needs TLS paths or `plain_http = true`.
    pub fn from_config(config: &Config) -> Result<Self> {
        let raw: RawServerConfig = match &config.server {
            None => RawServerConfig::default(),
            Some(table) => table.clone().try_into().map_err(|e: toml::de::Error| {
                Error::new(
                    ErrorKind::Config,
                    format!(
                        "invalid [server] section: {}",
                        crate::config::without_values(e.message())
                    ),
                )
            })?,
        };
        let bad = |m: String| Error::new(ErrorKind::Config, m);
        let listen_text = raw.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            bad("[server] listen is not an address:port (such as \"127.0.0.1:9311\")".into())
        })?;
        let tls = match (raw.tls_cert, raw.tls_key, raw.plain_http) {
            (Some(cert), Some(key), false) => Some(TlsPaths {
                cert: config.resolve(&cert),
                key: config.resolve(&key),
            }),
            (None, None, true) => None,
            (Some(_), Some(_), true) => {
                return Err(bad(
                    "[server] has tls_cert/tls_key and plain_http = true; choose one".into(),
                ));
            }
            (None, None, false) => {
                return Err(bad(
                    "[server] needs tls_cert and tls_key, or plain_http = true to serve without TLS"
                        .into(),
                ));
            }
            _ => return Err(bad("[server] needs both tls_cert and tls_key".into())),
        };
        let auth = raw.auth.unwrap_or(AuthMode::Noauth);
        if auth == AuthMode::Noauth
            && !listen.ip().is_loopback()
            && !raw.danger_allow_noauth_on_public_address
        {
            return Err(bad(format!(
                "[server] auth = \"noauth\" trusts any caller's headers; refusing to listen on \
                 {listen} (not loopback) without danger_allow_noauth_on_public_address = true"
            )));
        }
        let scheme = if tls.is_some() { "https" } else { "http" };
        let host_href = raw
            .host_href
            .unwrap_or_else(|| format!("{scheme}://{listen}"))
            .trim_end_matches('/')
            .to_owned();
        if !(host_href.starts_with("http://") || host_href.starts_with("https://")) {
            return Err(bad(
                "[server] host_href must start with http:// or https://".into(),
            ));
        }
        let max_body_bytes = raw.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES);
        if max_body_bytes == 0 {
            return Err(bad("[server] max_body_bytes must be positive".into()));
        }
        let timeout = raw.header_read_timeout_secs.unwrap_or(10);
        if timeout == 0 {
            return Err(bad(
                "[server] header_read_timeout_secs must be positive".into()
            ));
        }
        let blocking_threads = raw.blocking_threads.unwrap_or(16);
        if !(1..=512).contains(&blocking_threads) {
            return Err(bad("[server] blocking_threads must be 1 to 512".into()));
        }
        let users_file = users_file(config);
        let keystone = match (auth, &config.keystone_authtoken) {
            (AuthMode::Keystone, Some(table)) => {
                Some(super::keystone::KeystoneConfig::from_table(table, config)?)
            }
            (AuthMode::Keystone, None) => {
                return Err(bad(
                    "[server] auth = \"keystone\" needs a [keystone_authtoken] section".into(),
                ));
            }
            _ => None,
        };
        Ok(ServerConfig {
            listen,
            host_href,
            tls,
            auth,
            default_project: raw.default_project.unwrap_or_else(|| "default".into()),
            default_user: raw.default_user.unwrap_or_else(|| "admin".into()),
            default_roles: raw.default_roles.unwrap_or_else(|| vec!["admin".into()]),
            users_file,
            max_body_bytes,
            header_read_timeout: Duration::from_secs(timeout),
            blocking_threads,
            keystone,
        })
    }
}

/// The users file `http_basic` reads (and `keywarden user add` writes),
/// without validating the rest of the section.
pub fn users_file(config: &Config) -> PathBuf {
    let configured = config
        .server
        .as_ref()
        .and_then(|t| t.get("users_file"))
        .and_then(|v| v.as_str())
        .unwrap_or("keywarden-users.toml");
    config.resolve(std::path::Path::new(configured))
}

/// The commented `[server]` section `keywarden init` appends.
pub const INIT_SECTION: &str = r#"
# `keywarden serve` (Barbican's v1 API). Every key is optional.
[server]
# listen = "127.0.0.1:9311"
# Base of every returned ref; defaults to the listen address.
# host_href = "https://keymanager.example.org:9311"
# TLS (rustls). Without both, the server refuses to start unless
# plain_http = true.
# tls_cert = "server.crt"
# tls_key = "server.key"
plain_http = true
# "noauth": X-Project-Id / X-User-Id / X-Roles headers, or the default
# identity below; refused on a non-loopback address unless
# danger_allow_noauth_on_public_address = true.
# "http_basic": users_file (written by `keywarden user add`).
# "keystone": X-Auth-Token validated against Keystone as the
# [keystone_authtoken] section below says (README: "Keystone").
# auth = "noauth"
# default_project = "default"
# default_user = "admin"
# default_roles = ["admin"]
# users_file = "keywarden-users.toml"
# max_body_bytes = 25000
# header_read_timeout_secs = 10
# blocking_threads = 16
#
# [keystone_authtoken]
# auth_url = "http://keystone.example.org:5000"
# username = "keywarden"
# password = "…"                 # or application_credential_id / _secret
# project_name = "service"
# user_domain_name = "Default"
# project_domain_name = "Default"
# cafile = "keystone-ca.pem"
# token_cache_time = 300         # seconds a validation is trusted at most
# role_map = { member = ["creator"], reader = ["observer"] }
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn config(server: &str) -> Result<ServerConfig> {
        let mut c = Config::generate("x.db")?;
        c.server = Some(toml::from_str(server).map_err(|_| Error::new(ErrorKind::Config, "t"))?);
        ServerConfig::from_config(&c)
    }

    #[test]
    fn defaults_and_refusals() {
        let c = config("plain_http = true").unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.host_href, "http://127.0.0.1:9311");
        assert_eq!(c.max_body_bytes, 25_000);
        assert_eq!(c.auth, AuthMode::Noauth);
        assert!(config("").is_err(), "no TLS and no plain_http");
        assert!(config("plain_http = true\nlisten = \"0.0.0.0:9311\"").is_err());
        assert!(
            config("plain_http = true\nlisten = \"0.0.0.0:9311\"\nauth = \"http_basic\"").is_ok()
        );
        assert!(
            config(
                "plain_http = true\nlisten = \"0.0.0.0:1\"\ndanger_allow_noauth_on_public_address = true"
            )
            .is_ok()
        );
        assert!(config("plain_http = true\nbogus = 1").is_err());
        assert!(config("plain_http = true\nlisten = \"nowhere\"").is_err());
        assert!(config("tls_cert = \"a\"").is_err());
        let tls = config("tls_cert = \"a.crt\"\ntls_key = \"a.key\"").unwrap();
        assert!(tls.host_href.starts_with("https://"));
    }

    /// A value may hold a credential (a ref base with user:password@, a
    /// mistyped secret): errors name the key, never repeat the value.
    #[test]
    fn errors_never_repeat_a_value() {
        for (section, value) in [
            (
                "plain_http = true\nlisten = \"s3cret-listen\"",
                "s3cret-listen",
            ),
            (
                "plain_http = true\nhost_href = \"ftp://u:s3cret@h\"",
                "s3cret",
            ),
            ("plain_http = true\nauth = \"s3cret-mode\"", "s3cret-mode"),
            ("plain_http = true\nmax_body_bytes = \"s3cret\"", "s3cret"),
        ] {
            let e = config(section).unwrap_err();
            let text = format!("{e} {e:?}");
            assert!(!text.contains(value), "{text}");
            assert!(text.contains("[server]"), "{text}");
        }
    }

    #[test]
    fn init_section_parses() {
        let mut text = Config::generate("x.db").unwrap().to_toml();
        text.push_str(INIT_SECTION);
        let c = ServerConfig::from_config(&Config::from_toml(&text, None).unwrap()).unwrap();
        assert!(c.tls.is_none());
        // `kek rotate` and friends rewrite the config: the section survives.
        let again = Config::from_toml(&Config::from_toml(&text, None).unwrap().to_toml(), None);
        assert!(again.unwrap().server.is_some());
    }
}
