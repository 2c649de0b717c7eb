//! The configuration a store is built from: catalog, named backends, the
//! global default, policy overrides and limits. Usually read from
//! `keywarden.toml`.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::{SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use zeroize::Zeroizing;

use crate::backend::{DangerFixedKey, KeyManager, MasterKek, SimpleCrypto};
use crate::catalog::Catalog;
pub use crate::catalog::{CatalogLocation, PostgresUrl, redact_url};
use crate::error::{Error, ErrorKind, Result};
use crate::model::BackendId;
use crate::secret::SecretBytes;
use crate::toml_text::push_toml_str;

/// Barbican's `max_allowed_secret_in_bytes` since Xena.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 20_000;
/// Where secret hrefs point unless the config says otherwise.
pub const DEFAULT_ENDPOINT: &str = "http://localhost:9311";

/// A whole keywarden configuration.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Base of secret hrefs (`<endpoint>/v1/secrets/<uuid>`).
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
    /// `sqlite:PATH` (relative paths are relative to the config file) or a
    /// `postgresql://` URL (shared by several instances), parsed when the
    /// config is read and kept as written; [`Config::catalog_location`]
    /// resolves it. A password in the URL never shows in `Debug` or in
    /// errors, and is wiped when dropped.
    pub catalog: CatalogLocation,
    /// The backend new secrets go to unless their project is mapped elsewhere.
    pub default_backend: BackendId,
    /// Largest accepted payload, in bytes of its encoded form.
    #[serde(default = "default_max_payload")]
    pub max_payload_bytes: usize,
    /// A policy file overriding Barbican's default rules.
    #[serde(default)]
    pub policy_file: Option<PathBuf>,
    /// Backends by stable id.
    pub backends: BTreeMap<BackendId, BackendConfig>,
    /// Accept this file although group or others can read it and it holds
    /// key material, for deployments that guard it otherwise (ACLs, a
    /// secrets mount). Without it such a file is refused, as ssh refuses
    /// a private key others can read.
    #[serde(default)]
    pub danger_allow_readable_config: bool,
    /// `keywarden serve`'s `[server]` section, read by `server::ServerConfig`
    /// (kept as a table so the library parses it without the `server` feature).
    #[serde(default)]
    pub server: Option<toml::Table>,
    /// `[keystone_authtoken]`: how `keywarden serve` validates Keystone
    /// tokens (`auth = "keystone"`), read by `server::keystone`. Holds the
    /// service user's password.
    #[serde(default)]
    pub keystone_authtoken: Option<toml::Table>,
    #[serde(skip)]
    base_dir: Option<PathBuf>,
}

/// One configured backend.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", deny_unknown_fields)]
pub enum BackendConfig {
    /// Master KEK in the config, per-project KEKs in the catalog.
    #[serde(rename = "simple_crypto")]
    SimpleCrypto {
        master_kek: MasterKek,
        /// Master KEKs distributed ahead of a rotation (`keywarden kek
        /// stage`): they open project KEKs, and wrap new ones once the
        /// catalog's rollout makes one of them active (`kek rotate` on any
        /// instance), before this config makes one its `master_kek`.
        #[serde(default, deserialize_with = "staged_kek_list")]
        staged_master_keks: Vec<MasterKek>,
        /// Older master KEKs that still open project KEKs until `kek rotate`
        /// has rewrapped them.
        #[serde(default, deserialize_with = "master_kek_list")]
        retired_master_keks: Vec<MasterKek>,
    },
    /// The legacy ConfKeyManager: one hex key, served under the all-zeros
    /// id. Insecure; only for reading volumes made before a key manager.
    #[serde(rename = "danger_fixed_key")]
    DangerFixedKey {
        #[serde(deserialize_with = "hex_key")]
        fixed_key: SecretBytes,
    },
    /// Master KEK and HMAC key in an HSM token (PKCS#11), per-project KEKs
    /// wrapped in the catalog, secrets encrypted inside the token.
    #[cfg(feature = "pkcs11")]
    #[serde(rename = "pkcs11")]
    Pkcs11(crate::backend::Pkcs11Config),
    /// Secrets kept on a KMIP server over mutual TLS; the catalog keeps
    /// their unique identifiers.
    #[cfg(feature = "kmip")]
    #[serde(rename = "kmip")]
    Kmip(crate::backend::KmipConfig),
}

impl BackendConfig {
    /// The backend this entry describes, over `catalog` (where crypto
    /// backends keep their wrapped project KEKs). Fails when a device
    /// backend cannot connect.
    pub fn build(&self, id: &BackendId, catalog: Arc<dyn Catalog>) -> Result<Arc<dyn KeyManager>> {
        Ok(match self {
            BackendConfig::SimpleCrypto {
                master_kek,
                staged_master_keks,
                retired_master_keks,
            } => Arc::new(SimpleCrypto::with_keys(
                id.clone(),
                master_kek,
                staged_master_keks,
                retired_master_keks,
                catalog,
            )),
            BackendConfig::DangerFixedKey { fixed_key } => {
                Arc::new(DangerFixedKey::new(id.clone(), fixed_key.clone()))
            }
            #[cfg(feature = "pkcs11")]
            BackendConfig::Pkcs11(config) => Arc::new(crate::backend::Pkcs11::connect(
                id.clone(),
                config,
                catalog,
            )?),
            #[cfg(feature = "kmip")]
            BackendConfig::Kmip(config) => crate::backend::kmip::build(id, config)?,
        })
    }
}

fn default_endpoint() -> String {
    DEFAULT_ENDPOINT.to_owned()
}

fn default_max_payload() -> usize {
    DEFAULT_MAX_PAYLOAD_BYTES
}

impl Config {
    /// The embedded default: one SimpleCrypto backend `software` with a fresh
    /// master KEK, the catalog in the SQLite file `db_path`.
    pub fn generate(db_path: impl Into<PathBuf>) -> Result<Self> {
        let software = BackendId::new("software")?;
        let mut backends = BTreeMap::new();
        backends.insert(
            software.clone(),
            BackendConfig::SimpleCrypto {
                master_kek: MasterKek::generate()?,
                staged_master_keks: Vec::new(),
                retired_master_keks: Vec::new(),
            },
        );
        Ok(Config {
            endpoint: default_endpoint(),
            catalog: CatalogLocation::Sqlite(db_path.into()),
            default_backend: software,
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
            policy_file: None,
            backends,
            danger_allow_readable_config: false,
            server: None,
            keystone_authtoken: None,
            base_dir: None,
        })
    }

    /// Parses TOML; relative paths resolve against `base_dir`.
    pub fn from_toml(text: &str, base_dir: Option<&Path>) -> Result<Self> {
        let mut config: Config = toml::from_str(text).map_err(|e| {
            // The message only, never toml's rendering of the offending
            // line, and with serde's quotation of the value removed: that
            // line or value may be a key, a PIN or a URL with a password.
            let line = e
                .span()
                .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
            let message = without_values(e.message());
            Error::new(
                ErrorKind::Config,
                match line {
                    Some(line) => format!("invalid configuration at line {line}: {message}"),
                    None => format!("invalid configuration: {message}"),
                },
            )
        })?;
        config.base_dir = base_dir.map(Path::to_path_buf);
        config.validate()?;
        Ok(config)
    }

    /// Reads and parses a config file. A file that holds key material
    /// ([`Config::holds_key_material`]) and that group or others can read is
    /// refused unless it sets `danger_allow_readable_config`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        use std::io::Read as _;
        let path = path.as_ref();
        let cannot_read = |e| {
            Error::new(
                ErrorKind::Config,
                format!("cannot read config {}", path.display()),
            )
            .with_source(e)
        };
        // The mode is the open file's, so it is the mode of what was read.
        let mut file = std::fs::File::open(path).map_err(cannot_read)?;
        let meta = file.metadata().map_err(cannot_read)?;
        let mut text = Zeroizing::new(String::with_capacity(
            usize::try_from(meta.len()).unwrap_or(0).min(1 << 20) + 1,
        ));
        file.read_to_string(&mut text).map_err(cannot_read)?;
        let config = Config::from_toml(&text, path.parent())?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0
                && config.holds_key_material()
                && !config.danger_allow_readable_config
            {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!(
                        "config {} holds key material and has mode {mode:04o}, so group or others can read it; \
                         run `chmod 600 {}` (or set danger_allow_readable_config = true where its \
                         permissions are managed otherwise)",
                        path.display(),
                        path.display()
                    ),
                ));
            }
        }
        Ok(config)
    }

    /// Whether the config holds anything that opens secrets: a master KEK
    /// or retired ones, the fixed key, a PKCS#11 PIN, a KMIP password, a
    /// catalog password, or the Keystone service user's password.
    pub fn holds_key_material(&self) -> bool {
        let catalog = matches!(&self.catalog, CatalogLocation::Postgres(url) if url.has_password());
        let keystone = self.keystone_authtoken.as_ref().is_some_and(|k| {
            k.contains_key("password") || k.contains_key("application_credential_secret")
        });
        catalog
            || keystone
            || self.backends.values().any(|b| match b {
                BackendConfig::SimpleCrypto { .. } | BackendConfig::DangerFixedKey { .. } => true,
                #[cfg(feature = "pkcs11")]
                BackendConfig::Pkcs11(_) => true,
                #[cfg(feature = "kmip")]
                BackendConfig::Kmip(config) => config.password.is_some(),
            })
    }

    /// Renders the config as TOML. The text holds master KEKs: it is wiped
    /// when dropped and belongs only in a file of mode 0600.
    pub fn to_toml(&self) -> Zeroizing<String> {
        // Written straight into the wiped buffer, reserved up front so it
        // never reallocates and leaves copies of the keys behind.
        let mut out = Zeroizing::new(String::with_capacity(4096 + 256 * self.backends.len()));
        let _ = writeln!(out, "endpoint = {}", toml_str(&self.endpoint));
        out.push_str("catalog = ");
        push_toml_str(&mut out, &self.catalog.expose_text());
        out.push('\n');
        let _ = writeln!(
            out,
            "default_backend = {}",
            toml_str(self.default_backend.as_str())
        );
        let _ = writeln!(out, "max_payload_bytes = {}", self.max_payload_bytes);
        if self.danger_allow_readable_config {
            out.push_str("danger_allow_readable_config = true\n");
        }
        if let Some(p) = &self.policy_file {
            let _ = writeln!(out, "policy_file = {}", toml_str(&p.display().to_string()));
        }
        for (id, backend) in &self.backends {
            let _ = writeln!(out, "\n[backends.{}]", toml_str(id.as_str()));
            match backend {
                BackendConfig::SimpleCrypto {
                    master_kek,
                    staged_master_keks,
                    retired_master_keks,
                } => {
                    out.push_str("kind = \"simple_crypto\"\nmaster_kek = \"");
                    out.push_str(&master_kek.to_base64());
                    out.push_str("\"\n");
                    // Written only when there are any, so configs of a
                    // deployment that never staged a key stay as they were.
                    if !staged_master_keks.is_empty() {
                        push_key_list(&mut out, "staged_master_keks", staged_master_keks);
                    }
                    push_key_list(&mut out, "retired_master_keks", retired_master_keks);
                }
                BackendConfig::DangerFixedKey { fixed_key } => {
                    out.push_str("kind = \"danger_fixed_key\"\nfixed_key = \"");
                    for b in fixed_key.expose_secret() {
                        let _ = write!(out, "{b:02x}");
                    }
                    out.push_str("\"\n");
                }
                #[cfg(feature = "pkcs11")]
                BackendConfig::Pkcs11(config) => config.write_toml(&mut out),
                #[cfg(feature = "kmip")]
                BackendConfig::Kmip(config) => config.write_toml(&mut out),
            }
        }
        // Written as whole tables, so that a sub-table (`role_map = {…}`)
        // comes out as `[keystone_authtoken.role_map]`, not at the top.
        for (name, table) in [
            ("server", &self.server),
            ("keystone_authtoken", &self.keystone_authtoken),
        ] {
            if let Some(table) = table {
                let whole = toml::Table::from_iter([(name.to_owned(), table.clone().into())]);
                if let Ok(text) = toml::to_string(&whole) {
                    out.push('\n');
                    out.push_str(&text);
                }
            }
        }
        out
    }

    /// The master KEK of a simple_crypto backend.
    pub fn master_kek(&self, backend: &BackendId) -> Option<&MasterKek> {
        match self.backends.get(backend)? {
            BackendConfig::SimpleCrypto { master_kek, .. } => Some(master_kek),
            _ => None,
        }
    }

    /// Where the catalog is, a relative SQLite path resolved against the
    /// config file's directory.
    pub fn catalog_location(&self) -> CatalogLocation {
        self.catalog.resolved(self.base_dir.as_deref())
    }

    /// The policy file, resolved against the config's directory.
    pub fn policy_path(&self) -> Option<PathBuf> {
        self.policy_file.as_deref().map(|p| self.resolve(p))
    }

    /// A path from the config, resolved against the config's directory.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        match &self.base_dir {
            Some(base) if p.is_relative() => base.join(p),
            _ => p.to_path_buf(),
        }
    }

    fn validate(&self) -> Result<()> {
        if !self.backends.contains_key(&self.default_backend) {
            return Err(Error::new(
                ErrorKind::Config,
                format!(
                    "default_backend {} is not one of the configured backends",
                    self.default_backend
                ),
            ));
        }
        if self.max_payload_bytes == 0 {
            return Err(Error::new(
                ErrorKind::Config,
                "max_payload_bytes must be positive",
            ));
        }
        Ok(())
    }
}

/// A serde error message with the values it quotes taken out:
/// `invalid type: string "…", expected …` keeps only `string`, and
/// `unknown variant `…`` keeps no variant. Field names and what was
/// expected (our own words) stay.
pub(crate) fn without_values(message: &str) -> String {
    let mut out = message.to_owned();
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(at) = out.find(prefix) {
            let start = at + prefix.len();
            let end = out[start..]
                .find(", expected")
                .map_or(out.len(), |i| start + i);
            let what = out[start..end]
                .split([' ', '`', '"'])
                .next()
                .unwrap_or_default()
                .to_owned();
            out.replace_range(start..end, &format!("{what} (not repeated)"));
        }
    }
    let prefix = "unknown variant `";
    if let Some(at) = out.find(prefix) {
        let start = at + prefix.len() - 1;
        // The variant ends at the last backtick before ", expected" (it may
        // itself hold backticks); without one, everything after goes.
        let tail_at = out[start..].find(", expected").map(|i| start + i);
        let end = match tail_at {
            Some(t) => out[start + 1..t]
                .rfind('`')
                .map_or(t, |i| start + 1 + i + 1),
            None => out.len(),
        };
        out.replace_range(start..end, "(not repeated)");
    }
    out
}

fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_toml_str(&mut out, s);
    out
}

impl<'de> Deserialize<'de> for MasterKek {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = Zeroizing::new(String::deserialize(d)?);
        MasterKek::from_base64(&text).map_err(|e| serde::de::Error::custom(e.context()))
    }
}

/// `name = ["…", "…"]` and a newline, into the wiped buffer.
fn push_key_list(out: &mut String, name: &str, keys: &[MasterKek]) {
    out.push_str(name);
    out.push_str(" = [");
    for (i, k) in keys.iter().enumerate() {
        out.push_str(if i > 0 { ", \"" } else { "\"" });
        out.push_str(&k.to_base64());
        out.push('"');
    }
    out.push_str("]\n");
}

fn staged_kek_list<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<MasterKek>, D::Error> {
    master_kek_list_named(d, "staged_master_keks")
}

fn master_kek_list<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<MasterKek>, D::Error> {
    master_kek_list_named(d, "retired_master_keks")
}

/// `staged_master_keks` and `retired_master_keks`. serde's own refusal of one string where the
/// list belongs would quote the string, which is a master KEK.
fn master_kek_list_named<'de, D: Deserializer<'de>>(
    d: D,
    name: &'static str,
) -> std::result::Result<Vec<MasterKek>, D::Error> {
    struct Keys(&'static str);

    impl<'de> Visitor<'de> for Keys {
        type Value = Vec<MasterKek>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of base64 master KEKs")
        }

        fn visit_seq<A: SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> std::result::Result<Self::Value, A::Error> {
            let mut keys = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(16));
            while let Some(k) = seq.next_element()? {
                keys.push(k);
            }
            Ok(keys)
        }

        fn visit_str<E: serde::de::Error>(self, _: &str) -> std::result::Result<Self::Value, E> {
            Err(E::custom(format_args!(
                "{} must be a list of base64 master KEKs, not one string",
                self.0
            )))
        }
    }

    d.deserialize_any(Keys(name))
}

fn hex_key<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<SecretBytes, D::Error> {
    let text = Zeroizing::new(String::deserialize(d)?);
    crate::backend::fixed::parse_hex_key(&text).map_err(|e| serde::de::Error::custom(e.context()))
}

impl<'de> Deserialize<'de> for BackendId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        BackendId::new(text).map_err(|e| serde::de::Error::custom(e.context()))
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("endpoint", &self.endpoint)
            .field("catalog", &self.catalog)
            .field("default_backend", &self.default_backend)
            .field("max_payload_bytes", &self.max_payload_bytes)
            .field("policy_file", &self.policy_file)
            .field("backends", &self.backends)
            .field(
                "danger_allow_readable_config",
                &self.danger_allow_readable_config,
            )
            .field("base_dir", &self.base_dir)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `kek rotate` and friends rewrite the config: the server's sections
    /// survive, sub-tables included.
    #[test]
    fn server_and_keystone_sections_round_trip_with_sub_tables() {
        let mut text = Config::generate("kw.db").unwrap().to_toml().to_string();
        text.push_str(
            "\n[server]\nauth = \"keystone\"\n\n[keystone_authtoken]\nauth_url = \"http://k\"\n\
             password = \"pw\"\nrole_map = { member = [\"creator\"], reader = [] }\n",
        );
        let c = Config::from_toml(&text, None).unwrap();
        assert!(c.holds_key_material());
        let again = Config::from_toml(&c.to_toml(), None).unwrap();
        let ks = again.keystone_authtoken.unwrap();
        assert_eq!(ks["role_map"]["member"][0].as_str(), Some("creator"));
        assert_eq!(again.server.unwrap()["auth"].as_str(), Some("keystone"));
    }

    #[test]
    fn generated_config_round_trips_through_toml() {
        let c = Config::generate("keywarden.db").unwrap();
        let text = c.to_toml();
        let back = Config::from_toml(&text, Some(Path::new("/etc/kw"))).unwrap();
        assert_eq!(back.default_backend.as_str(), "software");
        assert_eq!(
            back.catalog_location(),
            CatalogLocation::Sqlite(PathBuf::from("/etc/kw/keywarden.db"))
        );
        let a = c.master_kek(&c.default_backend).unwrap();
        let b = back.master_kek(&back.default_backend).unwrap();
        assert_eq!(a.expose_secret(), b.expose_secret());
    }

    #[test]
    fn the_catalog_is_parsed_once_and_written_back_as_written() {
        let c = Config::generate("keywarden.db").unwrap();
        let back = Config::from_toml(&c.to_toml(), Some(Path::new("/etc/kw"))).unwrap();
        assert_eq!(back.catalog, CatalogLocation::Sqlite("keywarden.db".into()));
        assert!(
            back.to_toml().contains("catalog = \"sqlite:keywarden.db\""),
            "a relative path stays relative to wherever the file goes"
        );
        let text = c.to_toml().replace("sqlite:keywarden.db", "sqlite:");
        let e = Config::from_toml(&text, None).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.to_string().contains("not understood"), "{e}");
    }

    #[test]
    fn debug_never_shows_the_master_kek() {
        let c = Config::generate("x.db").unwrap();
        let master_kek = c.master_kek(&c.default_backend).unwrap();
        let b64 = master_kek.to_base64();
        let shown = format!("{c:?}");
        assert!(!shown.contains(b64.as_str()));
    }

    #[test]
    fn bad_configs_are_refused() {
        let short = "catalog = \"sqlite:x.db\"\ndefault_backend = \"s\"\n[backends.s]\nkind = \"simple_crypto\"\nmaster_kek = \"AAAA\"\n";
        let e = Config::from_toml(short, None).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.to_string().contains("32 bytes"), "{e}");
        let c = Config::generate("x.db").unwrap();
        let text = c.to_toml().replace(
            "default_backend = \"software\"",
            "default_backend = \"nope\"",
        );
        assert_eq!(
            Config::from_toml(&text, None).unwrap_err().kind(),
            ErrorKind::Config
        );
        let text = c.to_toml().replace("sqlite:x.db", "mysql://u:hunter2@x");
        let e = Config::from_toml(&text, None).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    /// Whatever the value, an error about it never repeats it: a catalog
    /// value, a backend kind or a key pasted in the wrong place may hold a
    /// password or a key.
    #[test]
    fn config_errors_never_repeat_a_value() {
        let c = Config::generate("x.db").unwrap();
        let good = c.to_toml();
        let key = c.master_kek(&c.default_backend).unwrap().to_base64();
        let secret = "hunter2";
        let cases = [
            good.replace("sqlite:x.db", "host=db password=hunter2"),
            good.replace("sqlite:x.db", "postgres//kw:hunter2@db/k"),
            good.replace("kind = \"simple_crypto\"", "kind = \"hunter2\""),
            good.replace(
                "kind = \"simple_crypto\"",
                "kind = \"postgresql://kw:hunter2@db/k\"",
            ),
            good.replace(&format!("\"{}\"", key.as_str()), "8675309"),
            good.replace(
                "retired_master_keks = []",
                "retired_master_keks = [8675309]",
            ),
            good.replace("retired_master_keks = []", "retired_master_keks = 8675309"),
            good.replace(
                "max_payload_bytes = 20000",
                "max_payload_bytes = \"hunter2\"",
            ),
            good.replace("endpoint = ", "endpoint = 8675309\nx = "),
            format!("{}\nhunter2\n", good.as_str()),
        ];
        for text in &cases {
            assert_ne!(text.as_str(), good.as_str());
            let e = Config::from_toml(text, None).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config);
            let shown = format!("{e} {e:?}");
            for leaked in [secret, "8675309", key.as_str()] {
                assert!(!shown.contains(leaked), "{leaked} in {shown}");
            }
            assert!(shown.contains("line "), "says where: {shown}");
        }
        let shown = redact_url("postgresql://kw@db/k?sslpassword=hunter2&PassWord=x");
        assert_eq!(shown, "postgresql://kw@db/k?sslpassword=***&PassWord=***");
    }

    /// ssh's rule for private keys: a config holding key material that
    /// group or others can read is refused, naming the file and the fix.
    #[cfg(unix)]
    #[test]
    fn a_config_with_keys_that_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keywarden.toml");
        let chmod = |mode| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode));
        let c = Config::generate("x.db").unwrap();
        std::fs::write(&path, c.to_toml().as_bytes()).unwrap();
        for mode in [0o644, 0o640, 0o604, 0o660] {
            chmod(mode).unwrap();
            let e = Config::from_file(&path).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config);
            let shown = e.to_string();
            assert!(shown.contains(&path.display().to_string()), "{shown}");
            assert!(shown.contains("chmod 600"), "{shown}");
        }
        for mode in [0o600, 0o400] {
            chmod(mode).unwrap();
            Config::from_file(&path).unwrap();
        }
        // A deployment that manages permissions otherwise says so.
        chmod(0o600).unwrap();
        let allowed = format!(
            "danger_allow_readable_config = true\n{}",
            c.to_toml().as_str()
        );
        std::fs::write(&path, allowed).unwrap();
        chmod(0o640).unwrap();
        let back = Config::from_file(&path).unwrap();
        assert!(back.danger_allow_readable_config);
        assert!(
            back.to_toml()
                .contains("danger_allow_readable_config = true")
        );
        // A catalog password is key material too, alone.
        let mut pg = Config::generate("x.db").unwrap();
        pg.catalog = "postgresql://kw:hunter2@db/k".parse().unwrap();
        assert!(pg.holds_key_material());
    }

    /// Staged master KEKs are key material like the others: they round-trip
    /// through the file, never show in `Debug` or in an error, and make the
    /// file subject to the readable-config check.
    #[test]
    fn staged_master_keks_round_trip_and_stay_secret() {
        let mut c = Config::generate("x.db").unwrap();
        assert!(
            !c.to_toml().contains("staged_master_keks"),
            "not written when there are none"
        );
        let staged = MasterKek::generate().unwrap();
        let Some(BackendConfig::SimpleCrypto {
            staged_master_keks, ..
        }) = c.backends.get_mut(&c.default_backend.clone())
        else {
            panic!("a simple_crypto backend");
        };
        staged_master_keks.push(staged.clone());
        let text = c.to_toml();
        assert!(
            text.contains("staged_master_keks = [\""),
            "{}",
            text.as_str()
        );
        let back = Config::from_toml(&text, None).unwrap();
        assert_eq!(*back.to_toml(), *text);
        let shown = format!("{back:?}");
        assert!(!shown.contains(staged.to_base64().as_str()), "{shown}");
        assert!(shown.contains(&staged.fingerprint()), "{shown}");
        assert!(back.holds_key_material());
        let one = text.replace(
            &format!("staged_master_keks = [\"{}\"]", staged.to_base64().as_str()),
            &format!("staged_master_keks = \"{}\"", staged.to_base64().as_str()),
        );
        let e = Config::from_toml(&one, None).unwrap_err();
        assert!(
            e.to_string().contains("staged_master_keks must be a list"),
            "{e}"
        );
        assert!(!e.to_string().contains(staged.to_base64().as_str()), "{e}");
        let short = text.replace(staged.to_base64().as_str(), "AAAA");
        let e = Config::from_toml(&short, None).unwrap_err();
        assert!(e.to_string().contains("32 bytes"), "{e}");
    }

    #[test]
    fn a_master_kek_where_a_list_belongs_is_not_repeated() {
        let c = Config::generate("x.db").unwrap();
        let key = c.master_kek(&c.default_backend).unwrap().to_base64();
        let text = c.to_toml().replace(
            "retired_master_keks = []",
            &format!("retired_master_keks = \"{}\"", key.as_str()),
        );
        let e = Config::from_toml(&text, None).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.to_string().contains("must be a list"), "{e}");
        assert!(!e.to_string().contains(key.as_str()), "{e}");
        let text = c.to_toml().replace(
            "retired_master_keks = []",
            &format!("retired_master_keks = [\"{}\"]", key.as_str()),
        );
        let back = Config::from_toml(&text, None).unwrap();
        let BackendConfig::SimpleCrypto {
            retired_master_keks,
            ..
        } = &back.backends[&back.default_backend]
        else {
            panic!("a simple_crypto backend");
        };
        assert_eq!(retired_master_keks.len(), 1);
    }

    #[test]
    fn postgres_urls_are_understood_and_their_password_never_shows() {
        let mut c = Config::generate("x.db").unwrap();
        let written =
            "postgresql://kw:hunter2@db.example:5433/keywarden?password=hunter2&sslmode=disable";
        c.catalog = written.parse().unwrap();
        let text = c.to_toml();
        let back = Config::from_toml(&text, None).unwrap();
        let CatalogLocation::Postgres(url) = back.catalog_location() else {
            panic!("a PostgreSQL location");
        };
        assert_eq!(url.expose_url(), written);
        for shown in [
            format!("{back:?}"),
            format!("{url:?}"),
            url.to_string(),
            back.catalog_location().to_string(),
        ] {
            assert!(!shown.contains("hunter2"), "{shown}");
        }
        assert_eq!(
            url.redacted(),
            "postgresql://kw:***@db.example:5433/keywarden?password=***&sslmode=disable"
        );
        assert_eq!(
            redact_url("postgres://host/db"),
            "postgres://host/db",
            "nothing to mask"
        );
    }
}
