//! The `kind = "kmip"` backend section: where the server is, how we prove
//! who we are (client certificate, and optionally username and password),
//! the protocol version, time limits and the pool size.

use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind, Result};
use crate::secret::SecretBytes;
use crate::toml_text::push_toml_str;

/// The IANA port for KMIP over TLS.
pub const DEFAULT_PORT: u16 = 5696;
/// PyKMIP's default and what Barbican's KMIP plugin speaks.
pub const DEFAULT_PROTOCOL_VERSION: KmipVersion = KmipVersion { major: 1, minor: 2 };
pub const DEFAULT_POOL_SIZE: usize = 4;
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Far above any secret we accept (20 000 bytes by default) plus framing.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// A KMIP 1.x protocol version. KMIP 2.x changed the message layout
/// (attributes), which this client does not speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KmipVersion {
    pub major: i32,
    pub minor: i32,
}

impl KmipVersion {
    pub fn parse(text: &str) -> Result<Self> {
        let bad = || {
            Error::new(
                ErrorKind::Config,
                format!(
                    "kmip backend: protocol_version {text:?} is not one of 1.0, 1.1, 1.2, 1.3, 1.4"
                ),
            )
        };
        let (major, minor) = text.split_once('.').ok_or_else(bad)?;
        let version = KmipVersion {
            major: major.parse().map_err(|_| bad())?,
            minor: minor.parse().map_err(|_| bad())?,
        };
        if version.major != 1 || !(0..=4).contains(&version.minor) {
            return Err(bad());
        }
        Ok(version)
    }
}

impl fmt::Display for KmipVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// One kmip backend's configuration.
#[derive(Clone)]
pub struct KmipConfig {
    pub host: String,
    pub port: u16,
    /// PEM file of the CA(s) that sign the server's certificate.
    pub ca_cert: PathBuf,
    /// PEM client certificate (chain) for mutual TLS.
    pub client_cert: Option<PathBuf>,
    /// Its PEM private key. Refused when group or others may read it.
    pub client_key: Option<PathBuf>,
    /// KMIP Username/Password credential, sent in every request header.
    pub username: Option<SecretBytes>,
    pub password: Option<SecretBytes>,
    pub protocol_version: KmipVersion,
    pub connect_timeout: Duration,
    /// For each read and write, the TLS handshake, and the wait for a free
    /// pooled connection.
    pub io_timeout: Duration,
    /// Connections kept open. `0` opens and closes one per operation, as
    /// Barbican does: only for benchmarks comparing the two, so a config
    /// file cannot ask for it.
    pub pool_size: usize,
    pub max_response_bytes: usize,
}

impl KmipConfig {
    /// Defaults for everything but the server and its CA.
    pub fn new(host: impl Into<String>, port: u16, ca_cert: impl Into<PathBuf>) -> Self {
        KmipConfig {
            host: host.into(),
            port,
            ca_cert: ca_cert.into(),
            client_cert: None,
            client_key: None,
            username: None,
            password: None,
            protocol_version: DEFAULT_PROTOCOL_VERSION,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            io_timeout: DEFAULT_IO_TIMEOUT,
            pool_size: DEFAULT_POOL_SIZE,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }

    /// Mutual TLS with this certificate and key.
    pub fn with_client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.client_cert = Some(cert.into());
        self.client_key = Some(key.into());
        self
    }

    /// Refuses what cannot work, including a client key others may read.
    pub fn check(&self) -> Result<()> {
        let bad = |m: String| Err(Error::new(ErrorKind::Config, m));
        if self.host.is_empty() {
            return bad("kmip backend: `host` is empty".into());
        }
        if self.port == 0 {
            return bad("kmip backend: `port` must not be 0".into());
        }
        match (&self.client_cert, &self.client_key) {
            (Some(_), Some(key)) => check_key_file(key)?,
            (None, None) => {}
            _ => {
                return bad(
                    "kmip backend: give both `client_cert` and `client_key`, or neither".into(),
                );
            }
        }
        if self.client_cert.is_none() && self.username.is_none() {
            return bad(
                "kmip backend: give a client certificate (`client_cert`, `client_key`) or a `username`"
                    .into(),
            );
        }
        if self.password.is_some() && self.username.is_none() {
            return bad("kmip backend: `password` without `username`".into());
        }
        if self.connect_timeout.is_zero() || self.io_timeout.is_zero() {
            return bad("kmip backend: timeouts must be positive".into());
        }
        if self.max_response_bytes < 1024 {
            return bad("kmip backend: max_response_bytes must be at least 1024".into());
        }
        Ok(())
    }

    pub(crate) fn write_toml(&self, out: &mut Zeroizing<String>) {
        out.push_str("kind = \"kmip\"\nhost = ");
        push_toml_str(out, &self.host);
        let _ = write!(out, "\nport = {}\nca_cert = ", self.port);
        push_toml_str(out, &self.ca_cert.to_string_lossy());
        if let (Some(c), Some(k)) = (&self.client_cert, &self.client_key) {
            out.push_str("\nclient_cert = ");
            push_toml_str(out, &c.to_string_lossy());
            out.push_str("\nclient_key = ");
            push_toml_str(out, &k.to_string_lossy());
        }
        // Both were TOML strings (or built from one), so they are UTF-8.
        if let Some(u) = &self.username {
            out.push_str("\nusername = ");
            push_toml_str(out, &String::from_utf8_lossy(u.expose_secret()));
        }
        if let Some(p) = &self.password {
            out.push_str("\npassword = ");
            push_toml_str(out, &String::from_utf8_lossy(p.expose_secret()));
        }
        let _ = write!(
            out,
            "\nprotocol_version = \"{}\"\nconnect_timeout_ms = {}\nio_timeout_ms = {}\npool_size = {}\nmax_response_bytes = {}\n",
            self.protocol_version,
            self.connect_timeout.as_millis(),
            self.io_timeout.as_millis(),
            self.pool_size,
            self.max_response_bytes
        );
    }
}

/// Barbican's KMIP plugin insists on mode 0400; we refuse only what lets
/// anyone but the owner read the key (any bit in 0o077).
pub fn check_key_file(path: &Path) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| {
        Error::new(
            ErrorKind::Config,
            format!("kmip backend: cannot read client_key {}", path.display()),
        )
        .with_source(e)
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "kmip backend: client_key {} has mode {mode:04o}; it must not be readable by group or others (chmod 0400)",
                    path.display()
                ),
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    Ok(())
}

impl fmt::Debug for KmipConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KmipConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("ca_cert", &self.ca_cert)
            .field("client_cert", &self.client_cert)
            .field("client_key", &self.client_key)
            .field("username", &self.username.as_ref().map(|_| "[REDACTED]"))
            .field("password", &self.password.as_ref().map(|_| "[REDACTED]"))
            .field("protocol_version", &self.protocol_version)
            .field("connect_timeout", &self.connect_timeout)
            .field("io_timeout", &self.io_timeout)
            .field("pool_size", &self.pool_size)
            .field("max_response_bytes", &self.max_response_bytes)
            .finish()
    }
}

/// The section as written in TOML.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKmipConfig {
    host: String,
    #[serde(default = "default_port")]
    port: u16,
    ca_cert: PathBuf,
    #[serde(default)]
    client_cert: Option<PathBuf>,
    #[serde(default)]
    client_key: Option<PathBuf>,
    #[serde(default, deserialize_with = "secret")]
    username: Option<SecretBytes>,
    #[serde(default, deserialize_with = "secret")]
    password: Option<SecretBytes>,
    #[serde(default)]
    protocol_version: Option<String>,
    #[serde(default)]
    connect_timeout_ms: Option<u64>,
    #[serde(default)]
    io_timeout_ms: Option<u64>,
    #[serde(default = "default_pool")]
    pool_size: usize,
    #[serde(default = "default_max_response")]
    max_response_bytes: usize,
}

impl TryFrom<RawKmipConfig> for KmipConfig {
    type Error = Error;

    fn try_from(raw: RawKmipConfig) -> Result<Self> {
        if raw.pool_size == 0 {
            return Err(Error::new(
                ErrorKind::Config,
                "kmip backend: pool_size must be at least 1",
            ));
        }
        let config = KmipConfig {
            host: raw.host,
            port: raw.port,
            ca_cert: raw.ca_cert,
            client_cert: raw.client_cert,
            client_key: raw.client_key,
            username: raw.username,
            password: raw.password,
            protocol_version: match raw.protocol_version.as_deref() {
                Some(v) => KmipVersion::parse(v)?,
                None => DEFAULT_PROTOCOL_VERSION,
            },
            connect_timeout: raw
                .connect_timeout_ms
                .map_or(DEFAULT_CONNECT_TIMEOUT, Duration::from_millis),
            io_timeout: raw
                .io_timeout_ms
                .map_or(DEFAULT_IO_TIMEOUT, Duration::from_millis),
            pool_size: raw.pool_size,
            max_response_bytes: raw.max_response_bytes,
        };
        config.check()?;
        Ok(config)
    }
}

impl<'de> Deserialize<'de> for KmipConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let raw = RawKmipConfig::deserialize(d)?;
        KmipConfig::try_from(raw).map_err(|e| serde::de::Error::custom(e.context()))
    }
}

fn secret<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<SecretBytes>, D::Error> {
    let text = Zeroizing::new(String::deserialize(d)?);
    if text.is_empty() {
        return Err(serde::de::Error::custom(
            "kmip backend: `username` and `password` must not be empty",
        ));
    }
    Ok(Some(SecretBytes::copy_from(text.as_bytes())))
}

fn default_port() -> u16 {
    DEFAULT_PORT
}

fn default_pool() -> usize {
    DEFAULT_POOL_SIZE
}

fn default_max_response() -> usize {
    DEFAULT_MAX_RESPONSE_BYTES
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<KmipConfig> {
        toml::from_str::<KmipConfig>(body)
            .map_err(|e| Error::new(ErrorKind::Config, e.message().to_owned()))
    }

    fn key_file(mode: u32) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client.key");
        std::fs::write(&path, b"not really a key").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        (dir, path)
    }

    #[test]
    fn defaults_and_password_stay_hidden() {
        let c = parse(
            "host = \"kmip.example\"\nca_cert = \"/ca.pem\"\nusername = \"svc\"\npassword = \"hunter2\"\n",
        )
        .unwrap();
        assert_eq!(c.port, 5696);
        assert_eq!(c.protocol_version, KmipVersion { major: 1, minor: 2 });
        assert_eq!(c.pool_size, DEFAULT_POOL_SIZE);
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        let mut out = Zeroizing::new(String::new());
        c.write_toml(&mut out);
        let back = toml::from_str::<toml::Table>(&out).unwrap();
        assert_eq!(back["password"].as_str(), Some("hunter2"));
    }

    #[test]
    fn bad_sections_are_refused() {
        for (body, why) in [
            (
                "host = \"\"\nca_cert = \"/ca\"\nusername = \"u\"\n",
                "empty",
            ),
            ("host = \"h\"\nca_cert = \"/ca\"\n", "client certificate"),
            (
                "host = \"h\"\nca_cert = \"/ca\"\nusername = \"u\"\nprotocol_version = \"2.0\"\n",
                "1.4",
            ),
            (
                "host = \"h\"\nca_cert = \"/ca\"\nusername = \"u\"\npool_size = 0\n",
                "pool_size",
            ),
            (
                "host = \"h\"\nca_cert = \"/ca\"\nclient_cert = \"/c\"\n",
                "both",
            ),
        ] {
            let e = parse(body).unwrap_err();
            assert!(e.context().contains(why), "{body}: {e}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_client_key_others_can_read_is_refused() {
        let (_d, loose) = key_file(0o644);
        let e = check_key_file(&loose).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.context().contains("0644"), "{e}");
        let (_d, group) = key_file(0o640);
        assert!(check_key_file(&group).is_err());
        for mode in [0o400, 0o600] {
            let (_d, tight) = key_file(mode);
            check_key_file(&tight).unwrap();
        }
    }
}
