//! Shared fixtures for the integration tests: a store on a fresh catalog of
//! either kind (SQLite file, or a schema of its own on the PostgreSQL test
//! server), raw access to that catalog, and request contexts.
//!
//! Tests that hold for every catalog and backend are written once, taking a
//! [`Setup`], and listed in `conformance!`, which runs each on SQLite and
//! PostgreSQL times SimpleCrypto and Pkcs11 (as the features allow). Tests
//! about the catalog alone take a [`Kind`] and are listed in
//! `catalog_tests!`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use keywarden::backend::{MasterKek, SimpleCrypto};
use keywarden::catalog::Catalog;
use keywarden::config::{CatalogLocation, Config};
use keywarden::context::Context;
use keywarden::model::{BackendId, ProjectId, UserId};
use keywarden::store::SecretStore;

/// The `keywarden` command as the CLI tests drive it.
#[cfg(feature = "cli")]
pub mod cli;

/// Writes a file only its owner can read (mode 0600, also when it exists),
/// as a config holding keys must be: `Config::from_file` refuses others.
pub fn write_private(path: &Path, bytes: &[u8]) {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .unwrap();
    f.write_all(bytes).unwrap();
}

/// The PostgreSQL server the tests use (scripts/test.sh starts one).
pub const POSTGRES_URL_ENV: &str = "KEYWARDEN_TEST_POSTGRES_URL";

/// Runs each listed `fn name(kind: &Kind)` once per catalog kind, on the
/// default SimpleCrypto backend: the tests that are about the catalog, or
/// that build their own SimpleCrypto backends.
#[macro_export]
macro_rules! catalog_tests {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[test]
                fn $name() {
                    super::$name(&$crate::common::Kind::Sqlite);
                }
            )*
        }
        #[cfg(feature = "postgres")]
        mod on_postgres {
            $(
                #[test]
                fn $name() {
                    if let Some(kind) = $crate::common::Kind::postgres() {
                        super::$name(&kind);
                    }
                }
            )*
        }
    };
}

/// The conformance suite: runs each listed `fn name(setup: &Setup)` once per
/// catalog × backend, e.g. `sqlite_pkcs11::name`. A cell whose peer is
/// missing (no PostgreSQL server, no SoftHSM token) is skipped with a note,
/// and fails under `CI=true`.
#[macro_export]
macro_rules! conformance {
    (@cell $(#[$attr:meta])* $module:ident, $catalog:ident, $backend:ident, [$($name:ident),*]) => {
        $(#[$attr])*
        mod $module {
            $(
                #[test]
                fn $name() {
                    if let Some(setup) = $crate::common::Setup::new(
                        $crate::common::Kind::$catalog(),
                        $crate::common::Backend::$backend,
                    ) {
                        super::$name(&setup);
                    }
                }
            )*
        }
    };
    ($($name:ident),* $(,)?) => {
        $crate::conformance!(@cell sqlite_simple_crypto, sqlite, SimpleCrypto, [$($name),*]);
        $crate::conformance!(@cell #[cfg(feature = "postgres")]
            postgres_simple_crypto, postgres, SimpleCrypto, [$($name),*]);
        $crate::conformance!(@cell #[cfg(feature = "pkcs11")]
            sqlite_pkcs11, sqlite, Pkcs11, [$($name),*]);
        $crate::conformance!(@cell #[cfg(all(feature = "postgres", feature = "pkcs11"))]
            postgres_pkcs11, postgres, Pkcs11, [$($name),*]);
        $crate::conformance!(@cell #[cfg(feature = "kmip")]
            sqlite_kmip, sqlite, Kmip, [$($name),*]);
        $crate::conformance!(@cell #[cfg(all(feature = "postgres", feature = "kmip"))]
            postgres_kmip, postgres, Kmip, [$($name),*]);
    };
}

/// The backend a conformance fixture's store uses as its default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    SimpleCrypto,
    /// The SoftHSM2 token scripts/test.sh sets up.
    #[cfg(feature = "pkcs11")]
    Pkcs11,
    /// The PyKMIP server scripts/test.sh starts.
    #[cfg(feature = "kmip")]
    Kmip,
}

impl Backend {
    /// Whether this backend's peer is here; a missing one fails under CI.
    pub fn available(self) -> bool {
        match self {
            Backend::SimpleCrypto => true,
            #[cfg(feature = "pkcs11")]
            Backend::Pkcs11 => hsm::env().is_some(),
            #[cfg(feature = "kmip")]
            Backend::Kmip => kmip::env().is_some(),
        }
    }

    /// Whether this is a store backend on a KMIP server (PyKMIP here), which
    /// refuses what KMIP cannot hold or the server cannot generate.
    pub fn is_kmip(self) -> bool {
        match self {
            #[cfg(feature = "kmip")]
            Backend::Kmip => true,
            _ => false,
        }
    }

    /// Whether the backend encrypts into the catalog under project KEKs
    /// (SimpleCrypto, Pkcs11); a store backend (KMIP) keeps none.
    pub fn keeps_project_keks(self) -> bool {
        match self {
            #[cfg(feature = "kmip")]
            Backend::Kmip => false,
            _ => true,
        }
    }

    /// Points `config` at this backend, as its only and default backend.
    #[cfg_attr(
        not(any(feature = "pkcs11", feature = "kmip")),
        allow(unused_variables)
    )]
    pub fn configure(self, config: &mut Config) {
        match self {
            Backend::SimpleCrypto => {}
            #[cfg(feature = "pkcs11")]
            Backend::Pkcs11 => {
                let id = BackendId::new("hsm").unwrap();
                config.backends.clear();
                config.backends.insert(
                    id.clone(),
                    keywarden::config::BackendConfig::Pkcs11(hsm::shared_config()),
                );
                config.default_backend = id;
            }
            #[cfg(feature = "kmip")]
            Backend::Kmip => {
                let id = BackendId::new("kmip").unwrap();
                let env = kmip::env().expect("KMIP test server");
                config.backends.clear();
                config.backends.insert(
                    id.clone(),
                    keywarden::config::BackendConfig::Kmip(kmip::config(&env)),
                );
                config.default_backend = id;
            }
        }
    }
}

/// One cell of the conformance suite: a catalog kind and a backend.
#[derive(Clone, Debug)]
pub struct Setup {
    pub catalog: Kind,
    pub backend: Backend,
}

impl Setup {
    /// The cell, or `None` (skip) when one of its peers is missing.
    pub fn new(catalog: Option<Kind>, backend: Backend) -> Option<Setup> {
        let catalog = catalog?;
        backend.available().then_some(Setup { catalog, backend })
    }

    /// A config for this cell, its catalog new and empty.
    pub fn config(&self, dir: &Path) -> Config {
        let mut config = Config::generate(dir.join("keywarden.db")).expect("config");
        if let Kind::Postgres(_) = self.catalog {
            config.catalog = self.catalog.fresh_catalog(dir);
        }
        self.backend.configure(&mut config);
        config
    }
}

/// Which catalog a test runs on.
#[derive(Clone, Debug)]
pub enum Kind {
    Sqlite,
    /// The server's URL (a database the tests may make schemas in).
    Postgres(String),
}

impl Kind {
    /// SQLite is always here (the uniform constructor the suite macro calls).
    pub fn sqlite() -> Option<Kind> {
        Some(Kind::Sqlite)
    }

    /// The PostgreSQL test server, or `None` (the test is skipped) when
    /// none is configured. Under `CI=true` a missing server is a failure.
    pub fn postgres() -> Option<Kind> {
        match std::env::var(POSTGRES_URL_ENV) {
            Ok(url) if !url.is_empty() => Some(Kind::Postgres(url)),
            _ if std::env::var("CI").is_ok_and(|v| v == "true") => panic!(
                "CI=true but {POSTGRES_URL_ENV} is not set: the PostgreSQL tests must run \
                 (scripts/test.sh starts a private server)"
            ),
            _ => {
                eprintln!("skipped: {POSTGRES_URL_ENV} is not set (no PostgreSQL server)");
                None
            }
        }
    }

    /// A new, empty catalog of this kind: the `catalog =` value for it.
    pub fn fresh_catalog(&self, dir: &Path) -> CatalogLocation {
        match self {
            Kind::Sqlite => {
                let name = format!("{}.db", uuid::Uuid::new_v4().simple());
                CatalogLocation::Sqlite(dir.join(name))
            }
            Kind::Postgres(server) => {
                let schema = format!("kw_{}", uuid::Uuid::new_v4().simple());
                let mut admin = postgres::Client::connect(server, postgres::NoTls)
                    .expect("connect to the PostgreSQL test server");
                admin
                    .batch_execute(&format!("CREATE SCHEMA {schema}"))
                    .expect("create a test schema");
                with_search_path(server, &schema)
                    .parse()
                    .expect("a PostgreSQL URL")
            }
        }
    }
}

/// `url` with its sessions confined to `schema`.
pub fn with_search_path(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-csearch_path%3D{schema}")
}

pub struct Fixture {
    pub kind: Kind,
    pub dir: tempfile::TempDir,
    pub config: Config,
    pub store: SecretStore,
}

impl Fixture {
    /// A store on a fresh SQLite catalog.
    pub fn new() -> Self {
        Fixture::with(&Kind::Sqlite)
    }

    /// A store on a fresh catalog of `kind`, over SimpleCrypto.
    pub fn with(kind: &Kind) -> Self {
        Fixture::on(&Setup {
            catalog: kind.clone(),
            backend: Backend::SimpleCrypto,
        })
    }

    /// A store for one cell of the conformance suite.
    pub fn on(setup: &Setup) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = setup.config(dir.path());
        let store = SecretStore::open(&config).expect("open store");
        Fixture {
            kind: setup.catalog.clone(),
            dir,
            config,
            store,
        }
    }

    /// The id of the store's default backend.
    pub fn backend_id(&self) -> &str {
        self.config.default_backend.as_str()
    }

    /// The SQLite file (SQLite fixtures only).
    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("keywarden.db")
    }

    pub fn reopen(&self) -> SecretStore {
        SecretStore::open(&self.config).expect("reopen store")
    }

    /// Another handle on the fixture's catalog, as a second instance opens it.
    pub fn catalog(&self) -> Arc<dyn Catalog> {
        keywarden::catalog::open(&self.config.catalog_location()).expect("open catalog")
    }

    /// Row count of a table, read straight from the catalog.
    pub fn rows(&self, table: &str) -> i64 {
        self.raw().count(table)
    }

    /// A connection around keywarden, for tampering.
    pub fn raw(&self) -> Raw {
        Raw::open(&self.config.catalog)
    }

    /// Whether `needle` appears anywhere the catalog keeps bytes: the
    /// database file for SQLite, every stored ciphertext and wrapped KEK for
    /// PostgreSQL.
    pub fn holds_bytes(&self, needle: &[u8]) -> bool {
        let found = |hay: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
        match self.kind {
            Kind::Sqlite => found(&std::fs::read(self.db_path()).unwrap()),
            Kind::Postgres(_) => {
                let mut raw = self.raw();
                raw.blobs("SELECT stored FROM secrets WHERE stored IS NOT NULL")
                    .iter()
                    .chain(&raw.blobs("SELECT wrapped FROM project_keks"))
                    .any(|b| found(b))
            }
        }
    }
}

/// Direct SQL on a catalog, bypassing keywarden.
pub enum Raw {
    Sqlite(rusqlite::Connection),
    Postgres(postgres::Client),
}

impl Raw {
    pub fn open(catalog: &CatalogLocation) -> Raw {
        match catalog {
            CatalogLocation::Sqlite(path) => {
                Raw::Sqlite(rusqlite::Connection::open(path).expect("open raw"))
            }
            CatalogLocation::Postgres(url) => Raw::Postgres(
                postgres::Client::connect(url.expose_url(), postgres::NoTls).expect("connect raw"),
            ),
        }
    }

    /// Runs one statement; the error text on failure.
    pub fn exec(&mut self, sql: &str) -> Result<u64, String> {
        match self {
            Raw::Sqlite(c) => c
                .execute(sql, [])
                .map(|n| n as u64)
                .map_err(|e| e.to_string()),
            Raw::Postgres(c) => c.execute(sql, &[]).map_err(|e| {
                let db = e.as_db_error().map(|d| d.message().to_owned());
                db.unwrap_or_else(|| e.to_string())
            }),
        }
    }

    pub fn count(&mut self, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        match self {
            Raw::Sqlite(c) => c.query_row(&sql, [], |r| r.get(0)).expect("count"),
            Raw::Postgres(c) => c.query_one(&sql, &[]).expect("count").get(0),
        }
    }

    /// The one BLOB/BYTEA column of every row `sql` returns.
    pub fn blobs(&mut self, sql: &str) -> Vec<Vec<u8>> {
        match self {
            Raw::Sqlite(c) => c
                .prepare(sql)
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap(),
            Raw::Postgres(c) => c
                .query(sql, &[])
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect(),
        }
    }

    /// `bytes` as an SQL literal of this database.
    pub fn blob_literal(&self, bytes: &[u8]) -> String {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        match self {
            Raw::Sqlite(_) => format!("x'{hex}'"),
            Raw::Postgres(_) => format!("'\\x{hex}'::bytea"),
        }
    }
}

pub fn raw_count(db: &Path, table: &str) -> i64 {
    let c = rusqlite::Connection::open(db).expect("open raw");
    c.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
        .expect("count")
}

pub fn ctx(user: &str, project: &str, roles: &[&str]) -> Context {
    Context::new(
        UserId::new(user).unwrap(),
        ProjectId::new(project).unwrap(),
        roles.iter().copied(),
    )
}

pub fn admin(project: &str) -> Context {
    ctx("admin-user", project, &["admin"])
}

/// Two SimpleCrypto backends under different master KEKs over one catalog.
pub fn two_backend_store(
    catalog: Arc<dyn Catalog>,
    default: &str,
) -> (Arc<dyn Catalog>, SecretStore, MasterKek, MasterKek) {
    let a = MasterKek::generate().unwrap();
    let b = MasterKek::generate().unwrap();
    let store = build_two(&catalog, &a, &b, default);
    (catalog, store, a, b)
}

pub fn build_two(
    catalog: &Arc<dyn Catalog>,
    a: &MasterKek,
    b: &MasterKek,
    default: &str,
) -> SecretStore {
    SecretStore::builder(catalog.clone())
        .backend(Arc::new(SimpleCrypto::new(
            BackendId::new("soft-a").unwrap(),
            a,
            &[],
            catalog.clone(),
        )))
        .backend(Arc::new(SimpleCrypto::new(
            BackendId::new("soft-b").unwrap(),
            b,
            &[],
            catalog.clone(),
        )))
        .default_backend(BackendId::new(default).unwrap())
        .build()
        .unwrap()
}

/// The SoftHSM2 token the tests use, as scripts/test.sh sets it up.
#[cfg(feature = "pkcs11")]
pub mod hsm {
    use std::sync::OnceLock;

    use keywarden::backend::pkcs11::{Pkcs11, Pkcs11Config, TokenSelector};
    use keywarden::secret::SecretBytes;

    pub const MODULE_ENV: &str = "KEYWARDEN_TEST_PKCS11_MODULE";
    pub const TOKEN_ENV: &str = "KEYWARDEN_TEST_PKCS11_TOKEN";
    pub const PIN_ENV: &str = "KEYWARDEN_TEST_PKCS11_PIN";
    /// Labels of the keys the conformance suite shares.
    pub const MKEK: &str = "kw-test-mkek";
    pub const HMAC: &str = "kw-test-hmac";

    #[derive(Clone, Debug)]
    pub struct Env {
        pub module: String,
        pub token: String,
        pub pin: String,
    }

    /// The token from the environment. Missing: `None` (the test is skipped
    /// with a note), except under `CI=true`, where it is a failure.
    pub fn env() -> Option<Env> {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        match (get(MODULE_ENV), get(TOKEN_ENV), get(PIN_ENV)) {
            (Some(module), Some(token), Some(pin)) => Some(Env { module, token, pin }),
            _ if std::env::var("CI").as_deref() == Ok("true") => panic!(
                "CI=true but no SoftHSM token: set {MODULE_ENV}, {TOKEN_ENV} and {PIN_ENV} (scripts/test.sh does)"
            ),
            _ => {
                eprintln!(
                    "skipped: no PKCS#11 token ({MODULE_ENV} unset); scripts/test.sh sets one up"
                );
                None
            }
        }
    }

    /// A backend config for the test token with these key labels.
    pub fn config(mkek: &str, hmac: &str) -> Pkcs11Config {
        let env = env().expect("PKCS#11 test token");
        let mut c = Pkcs11Config::new(
            env.module,
            TokenSelector::Label(env.token),
            SecretBytes::copy_from(env.pin.as_bytes()),
        );
        c.mkek_label = mkek.to_owned();
        c.hmac_label = hmac.to_owned();
        c
    }

    /// The shared keys, created once per process (as `keywarden hsm init`
    /// would) and found again by later processes.
    pub fn shared_config() -> Pkcs11Config {
        static READY: OnceLock<()> = OnceLock::new();
        let c = config(MKEK, HMAC);
        READY.get_or_init(|| {
            Pkcs11::init_token(&c).expect("create the shared test keys");
        });
        c
    }

    /// Labels no other test uses, for tests that make or rotate keys.
    pub fn unique_labels(tag: &str) -> (String, String) {
        let n = uuid::Uuid::new_v4().simple().to_string();
        (
            format!("kw-{tag}-mkek-{}", &n[..8]),
            format!("kw-{tag}-hmac-{}", &n[..8]),
        )
    }
}

/// The PyKMIP test server scripts/test.sh starts (scripts/pykmip.sh).
#[cfg(feature = "kmip")]
pub mod kmip {
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use keywarden::backend::KmipConfig;

    pub const HOST_ENV: &str = "KEYWARDEN_TEST_KMIP_HOST";
    pub const PORT_ENV: &str = "KEYWARDEN_TEST_KMIP_PORT";
    pub const CA_ENV: &str = "KEYWARDEN_TEST_KMIP_CA";
    pub const CERT_ENV: &str = "KEYWARDEN_TEST_KMIP_CERT";
    pub const KEY_ENV: &str = "KEYWARDEN_TEST_KMIP_KEY";

    #[derive(Clone, Debug)]
    pub struct Env {
        pub host: String,
        pub port: u16,
        pub ca: PathBuf,
        pub cert: PathBuf,
        pub key: PathBuf,
    }

    impl Env {
        /// Where the test certificates are (server's, and a second CA).
        pub fn certs_dir(&self) -> PathBuf {
            self.ca.parent().expect("CA in a directory").to_path_buf()
        }
    }

    /// The server from the environment. Missing: `None` (the test is
    /// skipped with a note), except under `CI=true`, where it is a failure.
    pub fn env() -> Option<Env> {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        match (
            get(HOST_ENV),
            get(PORT_ENV).and_then(|p| p.parse().ok()),
            get(CA_ENV),
            get(CERT_ENV),
            get(KEY_ENV),
        ) {
            (Some(host), Some(port), Some(ca), Some(cert), Some(key)) => Some(Env {
                host,
                port,
                ca: ca.into(),
                cert: cert.into(),
                key: key.into(),
            }),
            _ if std::env::var("CI").as_deref() == Ok("true") => panic!(
                "CI=true but no KMIP server: set {HOST_ENV}, {PORT_ENV}, {CA_ENV}, {CERT_ENV} and {KEY_ENV} (scripts/test.sh does)"
            ),
            _ => {
                eprintln!("skipped: no KMIP server ({HOST_ENV} unset); scripts/test.sh starts one");
                None
            }
        }
    }

    /// A backend config for the test server (mutual TLS).
    pub fn config(env: &Env) -> KmipConfig {
        let mut c = KmipConfig::new(env.host.clone(), env.port, env.ca.clone())
            .with_client_cert(env.cert.clone(), env.key.clone());
        c.io_timeout = Duration::from_secs(5);
        c.connect_timeout = Duration::from_secs(2);
        c
    }

    /// A PyKMIP server of the test's own (to stop and restart), on a free
    /// port, with its database in `dir`; killed when dropped.
    pub struct PrivateServer {
        pub port: u16,
        dir: PathBuf,
        certs: PathBuf,
        child: Option<Child>,
    }

    impl PrivateServer {
        pub fn start(env: &Env, dir: &Path) -> Self {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let mut s = PrivateServer {
                port,
                dir: dir.to_path_buf(),
                certs: env.certs_dir(),
                child: None,
            };
            s.restart();
            s
        }

        /// Starts the server (again, on the same port and database).
        pub fn restart(&mut self) {
            assert!(self.child.is_none(), "already running");
            use std::os::unix::process::CommandExt;
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/pykmip.sh");
            // Its own process group: PyKMIP forks helpers, stopped with it.
            let child = Command::new("bash")
                .process_group(0)
                .arg(script)
                .arg("serve")
                .arg(&self.dir)
                .arg(self.port.to_string())
                .env("KEYWARDEN_TEST_KMIP_CERTS", &self.certs)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start pykmip-server");
            self.child = Some(child);
            let deadline = Instant::now() + Duration::from_secs(60);
            while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
                assert!(Instant::now() < deadline, "pykmip-server did not start");
                std::thread::sleep(Duration::from_millis(200));
            }
        }

        /// Stops the server and its helper processes (SIGTERM to the group,
        /// SIGKILL if it lingers).
        pub fn stop(&mut self) {
            let Some(mut c) = self.child.take() else {
                return;
            };
            let group = format!("-{}", c.id());
            let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
            let _ = c.wait();
        }
    }

    impl Drop for PrivateServer {
        fn drop(&mut self) {
            self.stop();
        }
    }
}

/// Runs `f` with a subscriber that records formatted log lines.
pub fn capture_logs<T>(f: impl FnOnce() -> T) -> (String, T) {
    #[derive(Clone, Default)]
    struct Buf(Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().write(b)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    (text, out)
}
