//! Shared fixtures for the integration tests: a store in a temp dir over
//! any backend kind, request contexts, and the conformance-suite macro.
#![allow(dead_code, unused_macros)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use keywarden::backend::{MasterKek, SimpleCrypto};
use keywarden::catalog::{Catalog, SqliteCatalog};
use keywarden::config::Config;
use keywarden::context::Context;
use keywarden::model::{BackendId, ProjectId, UserId};
use keywarden::store::SecretStore;

/// Runs each named test once per backend kind: `fn name(kind: Kind)` becomes
/// `simple_crypto::name` and `pkcs11::name` (the latter with the `pkcs11`
/// feature, skipped outside CI when no SoftHSM token is set up, a failure
/// under `CI=true`).
macro_rules! conformance {
    ($($test:ident),+ $(,)?) => {
        mod simple_crypto {
            $(
                #[test]
                fn $test() {
                    super::$test($crate::common::Kind::SimpleCrypto)
                }
            )+
        }
        #[cfg(feature = "pkcs11")]
        mod pkcs11 {
            $(
                #[test]
                fn $test() {
                    if $crate::common::Kind::Pkcs11.available() {
                        super::$test($crate::common::Kind::Pkcs11)
                    }
                }
            )+
        }
    };
}

/// Which backend a fixture's store uses as its default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    SimpleCrypto,
    #[cfg(feature = "pkcs11")]
    Pkcs11,
}

impl Kind {
    /// Whether this kind can run here (a missing token fails under CI).
    pub fn available(self) -> bool {
        match self {
            Kind::SimpleCrypto => true,
            #[cfg(feature = "pkcs11")]
            Kind::Pkcs11 => hsm::env().is_some(),
        }
    }
}

/// A config whose default backend is of `kind`, its catalog at `db`.
pub fn config_of(kind: Kind, db: &Path) -> Config {
    #[cfg_attr(not(feature = "pkcs11"), allow(unused_mut))]
    let mut config = Config::generate(db).expect("config");
    match kind {
        Kind::SimpleCrypto => {}
        #[cfg(feature = "pkcs11")]
        Kind::Pkcs11 => {
            let hsm = BackendId::new("hsm").unwrap();
            config.backends.clear();
            config.backends.insert(
                hsm.clone(),
                keywarden::config::BackendConfig::Pkcs11(hsm::shared_config()),
            );
            config.default_backend = hsm;
        }
    }
    config
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub config: Config,
    pub store: SecretStore,
}

impl Fixture {
    /// A store over SimpleCrypto.
    pub fn new() -> Self {
        Fixture::of(Kind::SimpleCrypto)
    }

    /// A store whose default backend is of `kind`.
    pub fn of(kind: Kind) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = config_of(kind, &dir.path().join("keywarden.db"));
        let store = SecretStore::open(&config).expect("open store");
        Fixture { dir, config, store }
    }

    /// The id of the store's default backend.
    pub fn backend_id(&self) -> &str {
        self.config.default_backend.as_str()
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("keywarden.db")
    }

    pub fn reopen(&self) -> SecretStore {
        SecretStore::open(&self.config).expect("reopen store")
    }

    /// Row count of a table, read straight from the file.
    pub fn rows(&self, table: &str) -> i64 {
        raw_count(&self.db_path(), table)
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
    db: &Path,
    default: &str,
) -> (Arc<SqliteCatalog>, SecretStore, MasterKek, MasterKek) {
    let catalog = Arc::new(SqliteCatalog::open(db).unwrap());
    let a = MasterKek::generate().unwrap();
    let b = MasterKek::generate().unwrap();
    let store = build_two(&catalog, &a, &b, default);
    (catalog, store, a, b)
}

pub fn build_two(
    catalog: &Arc<SqliteCatalog>,
    a: &MasterKek,
    b: &MasterKek,
    default: &str,
) -> SecretStore {
    let dyn_cat: Arc<dyn Catalog> = catalog.clone();
    SecretStore::builder(dyn_cat.clone())
        .backend(Arc::new(SimpleCrypto::new(
            BackendId::new("soft-a").unwrap(),
            a,
            &[],
            dyn_cat.clone(),
        )))
        .backend(Arc::new(SimpleCrypto::new(
            BackendId::new("soft-b").unwrap(),
            b,
            &[],
            dyn_cat.clone(),
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
