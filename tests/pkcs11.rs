//! The Pkcs11 backend against a real SoftHSM2 token (scripts/test.sh sets
//! one up): what lives in the token and how, `keywarden hsm`, mechanism
//! probing, the session pool, the project-KEK cache, master-KEK rotation and
//! a deployment mixing SimpleCrypto and Pkcs11. The backend-agnostic
//! behaviour runs as the conformance suite in store/, integrity.rs,
//! policy_matrix.rs and concurrency.rs.
#![cfg(all(feature = "pkcs11", feature = "cli"))]

#[macro_use]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use common::cli::{Keywarden, Outcome};
use common::{admin, hsm};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use keywarden::ErrorKind;
use keywarden::backend::pkcs11::{
    EncryptionMechanism, Pkcs11, Pkcs11Config, WrapMechanism, shared_context,
};
use keywarden::backend::{KeyManager, Scope};
use keywarden::catalog::{Catalog, SqliteCatalog};
use keywarden::config::{BackendConfig, Config};
use keywarden::model::{BackendId, ProjectId, SecretId};
use keywarden::secret::SecretBytes;
use keywarden::store::{NewSecret, SecretStore};

/// Skips (or, under CI, fails) when no token is set up. Holds a lock for
/// the rest of the test: SoftHSM's file store is shared with the child
/// processes some tests start, and a child that opens the token while
/// another test writes token objects can miss the token.
macro_rules! need_token {
    () => {
        let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        if hsm::env().is_none() {
            return;
        }
    };
}

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn secret(payload: &str) -> NewSecret {
    NewSecret::new().payload_text(payload, Some("text/plain"), None)
}

/// A keywarden installation with a catalog and a config naming `software`
/// (SimpleCrypto, the default) and `hsm` (Pkcs11 with `p11`).
struct Deployment {
    kw: Keywarden,
    config: Config,
}

impl Deployment {
    fn new(p11: Pkcs11Config, default: &str) -> Self {
        let kw = Keywarden::uninitialised();
        let mut config = Config::generate(kw.db()).unwrap();
        config
            .backends
            .insert(BackendId::new("hsm").unwrap(), BackendConfig::Pkcs11(p11));
        config.default_backend = BackendId::new(default).unwrap();
        // The catalog exists (an operator would have run `keywarden init`).
        SqliteCatalog::open(kw.db()).unwrap();
        common::write_private(&kw.config, config.to_toml().as_bytes());
        Deployment { kw, config }
    }

    fn config_path(&self) -> &Path {
        &self.kw.config
    }

    fn db(&self) -> PathBuf {
        self.kw.db()
    }

    fn reload(&mut self) {
        self.config = Config::from_file(self.config_path()).unwrap();
    }

    fn p11(&self) -> &Pkcs11Config {
        match &self.config.backends[&BackendId::new("hsm").unwrap()] {
            BackendConfig::Pkcs11(p) => p,
            _ => unreachable!("hsm is the pkcs11 backend"),
        }
    }

    /// Runs the built `keywarden` with this config; must succeed quietly.
    fn ok(&self, args: &[&str]) -> String {
        self.kw.ok(args)
    }

    /// Runs the built `keywarden` with this config, and `env` set.
    fn run_env(&self, args: &[&str], env: &[(&str, &Path)]) -> Outcome {
        Outcome::of(self.kw.command().envs(env.iter().copied()).args(args))
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `pkcs11-tool --list-objects` of the test token, one block per object.
fn list_objects() -> Vec<String> {
    let env = hsm::env().unwrap();
    let out = Command::new("pkcs11-tool")
        .args(["--module", &env.module, "--token-label", &env.token])
        .args(["--login", "--pin", &env.pin, "--list-objects"])
        .output()
        .expect("pkcs11-tool (opensc) is installed");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let mut blocks: Vec<String> = Vec::new();
    for line in text.lines() {
        if !line.starts_with(' ') {
            blocks.push(String::new());
        }
        if let Some(b) = blocks.last_mut() {
            b.push_str(line);
            b.push('\n');
        }
    }
    blocks
}

fn object_block(blocks: &[String], label: &str) -> Option<String> {
    blocks
        .iter()
        .find(|b| {
            b.lines()
                .any(|l| l.trim() == format!("label:      {label}"))
        })
        .cloned()
}

#[test]
fn hsm_init_is_explicit_and_the_master_kek_never_leaves_the_token() {
    need_token!();
    let (mkek, hmac) = hsm::unique_labels("init");
    let d = Deployment::new(hsm::config(&mkek, &hmac), "hsm");

    // Without its keys the backend refuses to start, and creates nothing.
    let e = SecretStore::open(&d.config).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    assert!(
        e.to_string()
            .contains(&format!("master KEK {mkek:?} is not on PKCS#11 token")),
        "{e}"
    );
    assert!(e.to_string().contains("keywarden hsm init"), "{e}");
    d.kw.run(&["check"]).assert_refused("keywarden hsm init");
    assert!(
        object_block(&list_objects(), &mkek).is_none(),
        "nothing was created silently"
    );

    // `keywarden hsm init` creates both, once.
    let first = d.ok(&["hsm", "init"]);
    assert!(
        first.contains(&format!("master KEK {mkek:?} created")),
        "{first}"
    );
    assert!(
        first.contains(&format!("HMAC key {hmac:?} created")),
        "{first}"
    );
    let again = d.ok(&["hsm", "init"]);
    assert!(again.contains("already present"), "{again}");
    assert_eq!(again.matches("already present").count(), 2, "{again}");

    // As pkcs11-tool shows them: sensitive, never extractable, one job each.
    let blocks = list_objects();
    let m = object_block(&blocks, &mkek).expect("master KEK listed");
    assert!(m.contains("Secret Key Object; AES length 32"), "{m}");
    let access = |b: &str| {
        b.lines()
            .find(|l| l.trim_start().starts_with("Access:"))
            .unwrap_or_default()
            .to_owned()
    };
    let usage = |b: &str| {
        b.lines()
            .find(|l| l.trim_start().starts_with("Usage:"))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(access(&m).contains("sensitive"), "{m}");
    assert!(access(&m).contains("never extractable"), "{m}");
    assert!(
        usage(&m).contains("wrap, unwrap") && !usage(&m).contains("encrypt"),
        "{m}"
    );
    let h = object_block(&blocks, &hmac).expect("HMAC key listed");
    assert!(access(&h).contains("sensitive"), "{h}");
    assert!(access(&h).contains("never extractable"), "{h}");

    // The store works and its catalog holds only wrapped project KEKs.
    let store = SecretStore::open(&d.config).unwrap();
    let id = store
        .store_secret(&admin("p1"), secret("in the hsm"))
        .unwrap();
    assert_eq!(
        store
            .payload(&admin("p1"), &id)
            .unwrap()
            .bytes
            .expose_secret(),
        b"in the hsm"
    );
    let fingerprint: String = rusqlite::Connection::open(d.db())
        .unwrap()
        .query_row("SELECT master_fingerprint FROM project_keks", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(
        fingerprint.starts_with(&format!("{mkek}/")),
        "{fingerprint}"
    );

    // No way to get the master KEK's value out: not readable, not wrappable.
    let env = hsm::env().unwrap();
    let ctx = shared_context(Path::new(&env.module)).unwrap();
    let slot = ctx
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).unwrap().label() == env.token)
        .unwrap();
    let s = ctx.open_ro_session(slot).unwrap();
    match s.login(UserType::User, Some(&AuthPin::new(env.pin.clone().into()))) {
        Ok(())
        | Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::UserAlreadyLoggedIn, _)) => {
        }
        Err(e) => panic!("login: {e}"),
    }
    let handle = s
        .find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Label(mkek.as_bytes().to_vec()),
        ])
        .unwrap()[0];
    let value = s.get_attributes(handle, &[AttributeType::Value]);
    assert!(
        !matches!(value.as_deref(), Ok([Attribute::Value(_)])),
        "the master KEK's value was readable: {value:?}"
    );
    let wrapped = s.wrap_key(&Mechanism::AesKeyWrapPad, handle, handle);
    assert!(
        matches!(
            wrapped,
            Err(cryptoki::error::Error::Pkcs11(
                cryptoki::error::RvError::KeyUnextractable,
                _
            ))
        ),
        "{wrapped:?}"
    );
}

#[test]
fn a_missing_mechanism_is_named_and_cbc_hmac_works_without_gcm() {
    need_token!();
    let shared = hsm::shared_config();
    let mut d = Deployment::new(shared, "hsm");
    // The same token, seen by a process whose SoftHSM offers no AES-GCM.
    let env_conf =
        std::env::var("SOFTHSM2_CONF").expect("SOFTHSM2_CONF names the test token's config");
    let mut conf = std::fs::read_to_string(&env_conf).unwrap();
    // SoftHSM 2.6.1 ignores the "-CKM_…" (deny-list) form: list what stays.
    conf.push_str(
        "\nslots.mechanisms = CKM_AES_KEY_GEN,CKM_GENERIC_SECRET_KEY_GEN,CKM_AES_KEY_WRAP,CKM_AES_KEY_WRAP_PAD,CKM_AES_CBC_PAD,CKM_SHA256_HMAC\n",
    );
    let no_gcm = d.kw.path("softhsm2-no-gcm.conf");
    std::fs::write(&no_gcm, conf).unwrap();
    let env = [("SOFTHSM2_CONF", no_gcm.as_path())];

    d.run_env(&["check"], &env)
        .assert_refused("does not offer CKM_AES_GCM (encryption_mechanism)");

    // A mechanism that still authenticates: CBC in the token, HMAC in the token.
    let mut text = std::fs::read_to_string(d.config_path()).unwrap();
    text = text.replace(
        "encryption_mechanism = \"CKM_AES_GCM\"",
        "encryption_mechanism = \"CKM_AES_CBC_PAD\"",
    );
    std::fs::write(d.config_path(), text).unwrap();
    d.reload();
    assert_eq!(
        d.p11().encryption_mechanism,
        EncryptionMechanism::AesCbcPadHmac
    );
    let args = [
        "secret",
        "store",
        "-p",
        "cbc payload",
        "-f",
        "value",
        "-c",
        "Secret href",
    ];
    let stored = d.run_env(&args, &env).assert_ok(&args);
    let href = stored.trim();
    let args = ["secret", "get", href, "--payload", "-f", "value"];
    let got = d.run_env(&args, &env).assert_ok(&args);
    assert_eq!(got.trim(), "cbc payload");
}

#[test]
fn a_wrong_pin_names_the_function_and_return_value() {
    need_token!();
    let mut p11 = hsm::shared_config();
    p11.pin = SecretBytes::copy_from(b"not-the-pin");
    // A child process: in this one the token may already be logged in.
    let d = Deployment::new(p11, "hsm");
    let err =
        d.kw.refused(&["check"], "C_Login returned CKR_PIN_INCORRECT");
    assert!(!err.contains("not-the-pin"), "{err}");
}

#[test]
fn sessions_are_pooled_not_opened_per_operation() {
    need_token!();
    let dir = tempfile::tempdir().unwrap();
    let catalog: Arc<dyn Catalog> = Arc::new(SqliteCatalog::open(dir.path().join("k.db")).unwrap());
    let mut config = hsm::shared_config();
    config.session_pool_size = 2;
    let backend =
        Arc::new(Pkcs11::connect(BackendId::new("hsm").unwrap(), &config, catalog).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let backend = backend.clone();
            std::thread::spawn(move || {
                let project = ProjectId::new(format!("pool-{}", t % 2)).unwrap();
                for i in 0..50 {
                    let id = SecretId::new_random();
                    let scope = Scope::new(&project, &id);
                    let payload = format!("t{t}-{i}");
                    let stored = backend
                        .store(scope, &SecretBytes::copy_from(payload.as_bytes()))
                        .unwrap();
                    let back = backend.retrieve(scope, &stored).unwrap();
                    assert_eq!(back.expose_secret(), payload.as_bytes());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let stats = backend.stats();
    // 400 operations: two worker sessions and the key-holding one.
    assert!(stats.pool.sessions_opened <= 3, "{stats:?}");
    assert!(stats.pool.sessions_open <= 2, "{stats:?}");
    assert_eq!(stats.pool.recoveries, 0);
    // A KEK is cached as it is made; only an instance that lost the race to
    // make a project's first KEK unwraps the winner's.
    assert!(stats.project_kek_unwraps <= 2, "{stats:?}");
}

#[test]
fn the_project_kek_cache_is_bounded_and_expires() {
    need_token!();
    let dir = tempfile::tempdir().unwrap();
    let catalog: Arc<dyn Catalog> = Arc::new(SqliteCatalog::open(dir.path().join("k.db")).unwrap());
    let mut config = hsm::shared_config();
    config.pkek_cache_limit = 2;
    config.pkek_cache_ttl = Duration::from_millis(800);
    let backend = Pkcs11::connect(BackendId::new("hsm").unwrap(), &config, catalog).unwrap();
    let mut stored = Vec::new();
    for p in 0..5 {
        let project = ProjectId::new(format!("cache-{p}")).unwrap();
        let id = SecretId::new_random();
        let scope = Scope::new(&project, &id);
        let s = backend.store(scope, &SecretBytes::copy_from(b"x")).unwrap();
        stored.push((project, id, s));
        assert!(backend.stats().cached_project_keks <= 2);
    }
    let read = |i: usize| {
        let (project, id, s) = &stored[i];
        let scope = Scope::new(project, id);
        backend.retrieve(scope, s).unwrap();
    };
    let unwraps = || backend.stats().project_kek_unwraps;
    assert_eq!(unwraps(), 0);
    read(4); // still cached
    assert_eq!(unwraps(), 0);
    read(0); // evicted long ago: unwrapped again
    assert_eq!(unwraps(), 1);
    read(0);
    assert_eq!(unwraps(), 1, "now cached");
    std::thread::sleep(Duration::from_millis(900));
    read(0); // expired
    assert_eq!(unwraps(), 2);
    assert!(backend.stats().cached_project_keks <= 2);
}

#[test]
fn hsm_rotate_rewraps_project_keks_in_the_token_without_touching_secrets() {
    need_token!();
    let (mkek, hmac) = hsm::unique_labels("rot");
    let mut d = Deployment::new(hsm::config(&mkek, &hmac), "hsm");
    d.ok(&["hsm", "init"]);
    // `kek rotate` is SimpleCrypto's; it says so rather than doing nothing.
    d.kw.refused(
        &["kek", "rotate", "--backend", "hsm"],
        "keywarden hsm rotate",
    );
    let store = SecretStore::open(&d.config).unwrap();
    let ids: Vec<_> = (0..3)
        .map(|i| {
            store
                .store_secret(&admin(&format!("r{i}")), secret(&format!("v{i}")))
                .unwrap()
        })
        .collect();
    drop(store);
    let rows = |db: &Path, sql: &str| -> Vec<String> {
        let c = rusqlite::Connection::open(db).unwrap();
        let mut st = c.prepare(sql).unwrap();
        st.query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let secrets_before = rows(&d.db(), "SELECT hex(stored) FROM secrets ORDER BY id");
    let keks_before = rows(
        &d.db(),
        "SELECT hex(wrapped) FROM project_keks ORDER BY kek_id",
    );

    let new_label = format!("{mkek}-2");
    let out = d.ok(&[
        "hsm",
        "rotate",
        "--backend",
        "hsm",
        "--new-label",
        &new_label,
    ]);
    assert!(
        out.contains("3 project KEKs rewrapped in the token; secrets untouched"),
        "{out}"
    );
    d.reload();
    assert_eq!(d.p11().mkek_label, new_label);
    assert_eq!(d.p11().retired_mkek_labels, vec![mkek.clone()]);
    assert_eq!(
        rows(&d.db(), "SELECT hex(stored) FROM secrets ORDER BY id"),
        secrets_before,
        "secrets were not re-encrypted"
    );
    assert_ne!(
        rows(
            &d.db(),
            "SELECT hex(wrapped) FROM project_keks ORDER BY kek_id"
        ),
        keks_before
    );
    for f in rows(&d.db(), "SELECT master_fingerprint FROM project_keks") {
        assert!(f.starts_with(&format!("{new_label}/")), "{f}");
    }

    // The retired label can go; the new master KEK alone opens everything.
    let pruned = d.ok(&["hsm", "prune", "--backend", "hsm"]);
    assert!(pruned.contains(&mkek), "{pruned}");
    d.reload();
    assert!(d.p11().retired_mkek_labels.is_empty());
    let store = SecretStore::open(&d.config).unwrap();
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            store
                .payload(&admin(&format!("r{i}")), id)
                .unwrap()
                .bytes
                .expose_secret(),
            format!("v{i}").as_bytes()
        );
    }
    // And the old master KEK alone no longer opens them.
    let mut old = d.config.clone();
    if let Some(BackendConfig::Pkcs11(p)) = old.backends.get_mut(&BackendId::new("hsm").unwrap()) {
        p.mkek_label = mkek.clone();
    }
    assert_eq!(
        SecretStore::open(&old).unwrap_err().kind(),
        ErrorKind::Integrity
    );
}

#[test]
fn tampered_wrapped_keks_and_secrets_are_integrity() {
    need_token!();
    let d = Deployment::new(hsm::shared_config(), "hsm");
    let store = SecretStore::open(&d.config).unwrap();
    let c = admin("t1");
    store.store_secret(&c, secret("payload")).unwrap();
    let conn = rusqlite::Connection::open(d.db()).unwrap();
    // The HMAC's last byte.
    conn.execute(
        "UPDATE project_keks SET wrapped = CAST(substr(wrapped, 1, length(wrapped) - 1) || x'00' AS BLOB)",
        [],
    )
    .unwrap();
    let e = SecretStore::open(&d.config).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
    assert!(
        e.to_string().contains("do not open 1 of 1 project KEKs"),
        "{e}"
    );
    drop(store);
}

#[test]
fn the_wrap_mechanism_is_recorded_so_old_keks_open_after_a_change() {
    need_token!();
    let mut d = Deployment::new(hsm::shared_config(), "hsm");
    let store = SecretStore::open(&d.config).unwrap();
    let old = store.store_secret(&admin("w1"), secret("kwp")).unwrap();
    drop(store);
    let hsm_id = BackendId::new("hsm").unwrap();
    if let Some(BackendConfig::Pkcs11(p)) = d.config.backends.get_mut(&hsm_id) {
        p.wrap_mechanism = WrapMechanism::AesKeyWrap;
        p.encryption_mechanism = EncryptionMechanism::AesCbcPadHmac;
    }
    let store = SecretStore::open(&d.config).unwrap();
    let new = store
        .store_secret(&admin("w2"), secret("kw + cbc"))
        .unwrap();
    assert_eq!(
        store
            .payload(&admin("w1"), &old)
            .unwrap()
            .bytes
            .expose_secret(),
        b"kwp"
    );
    assert_eq!(
        store
            .payload(&admin("w2"), &new)
            .unwrap()
            .bytes
            .expose_secret(),
        b"kw + cbc"
    );
    // CBC+HMAC ciphertexts are bound to their row too.
    let conn = rusqlite::Connection::open(d.db()).unwrap();
    let stored: Vec<u8> = conn
        .query_row(
            "SELECT stored FROM secrets WHERE id = ?1",
            [new.to_string()],
            |r| r.get(0),
        )
        .unwrap();
    for i in [0, 1, 5, stored.len() / 2, stored.len() - 1] {
        let mut bad = stored.clone();
        bad[i] ^= 0x40;
        conn.execute(
            "UPDATE secrets SET stored = ?2 WHERE id = ?1",
            rusqlite::params![new.to_string(), bad],
        )
        .unwrap();
        assert_eq!(
            store.payload(&admin("w2"), &new).unwrap_err().kind(),
            ErrorKind::Integrity,
            "byte {i}"
        );
    }
    d.reload();
}

/// Barbican's multiple-backend deployment (seed guide §2.1): project A on
/// SimpleCrypto, project B on Pkcs11, project C moved from one to the other.
#[test]
fn mixed_deployment_with_a_project_moved_to_the_hsm() {
    need_token!();
    let d = Deployment::new(hsm::shared_config(), "software");
    let store = SecretStore::open(&d.config).unwrap();
    let (a, b, moved) = (admin("project-a"), admin("project-b"), admin("project-c"));
    let hsm_id = BackendId::new("hsm").unwrap();
    store.set_project_backend(&b, &hsm_id).unwrap();

    let on_a = store.store_secret(&a, secret("a on software")).unwrap();
    let on_b = store.store_secret(&b, secret("b in the hsm")).unwrap();
    let before = store
        .store_secret(&moved, secret("c before the move"))
        .unwrap();
    store.set_project_backend(&moved, &hsm_id).unwrap();
    let after = store
        .store_secret(&moved, secret("c after the move"))
        .unwrap();
    let key = store
        .create_key(&moved, &keywarden::store::KeyOrder::aes(256))
        .unwrap();

    let backend_of = |ctx, id| {
        store
            .secret(ctx, id)
            .unwrap()
            .backend_id
            .as_str()
            .to_owned()
    };
    assert_eq!(backend_of(&a, &on_a), "software");
    assert_eq!(backend_of(&b, &on_b), "hsm");
    assert_eq!(backend_of(&moved, &before), "software");
    assert_eq!(backend_of(&moved, &after), "hsm");
    assert_eq!(backend_of(&moved, &key.secret_id.unwrap()), "hsm");

    // A fresh process reads every secret from the backend that stored it.
    drop(store);
    let store = SecretStore::open(&d.config).unwrap();
    for (ctx, id, want) in [
        (&a, on_a, &b"a on software"[..]),
        (&b, on_b, b"b in the hsm"),
        (&moved, before, b"c before the move"),
        (&moved, after, b"c after the move"),
    ] {
        assert_eq!(store.payload(ctx, &id).unwrap().bytes.expose_secret(), want);
    }
    assert_eq!(
        store
            .payload(&moved, &key.secret_id.unwrap())
            .unwrap()
            .bytes
            .len(),
        32
    );
    let report = store.operator().check().unwrap();
    assert_eq!(
        report.backends[&BackendId::new("software").unwrap()].project_keks,
        2
    );
    assert_eq!(report.backends[&hsm_id].project_keks, 2);
    // Each project KEK row names the backend that made it.
    let conn = rusqlite::Connection::open(d.db()).unwrap();
    let mut st = conn
        .prepare("SELECT project_id, backend_id FROM project_keks ORDER BY project_id, backend_id")
        .unwrap();
    let rows: Vec<(String, String)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        rows,
        [
            ("project-a".into(), "software".into()),
            ("project-b".into(), "hsm".into()),
            ("project-c".into(), "hsm".into()),
            ("project-c".into(), "software".into()),
        ]
    );
}
