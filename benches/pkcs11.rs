//! The Pkcs11 backend on SoftHSM2: store and get a payload beside
//! SimpleCrypto, and the session pool beside a session per operation (what
//! Barbican's p11_crypto does).
//!
//! Needs the token scripts/test.sh sets up (KEYWARDEN_TEST_PKCS11_MODULE,
//! _TOKEN, _PIN and SOFTHSM2_CONF); without it, it says so and measures
//! nothing. Figures and the commands that made them: docs/benchmarks.md.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use keywarden::backend::pkcs11::{Pkcs11, Pkcs11Config, TokenSelector};
use keywarden::backend::{KeyManager, Scope};
use keywarden::catalog::{Catalog, SqliteCatalog};
use keywarden::config::{BackendConfig, Config};
use keywarden::context::Context;
use keywarden::model::{BackendId, ContentType, ProjectId, SecretId, SecretType, UserId};
use keywarden::secret::SecretBytes;
use keywarden::store::{NewSecret, SecretStore};

fn token_config() -> Option<Pkcs11Config> {
    let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let (Some(module), Some(token), Some(pin)) = (
        get("KEYWARDEN_TEST_PKCS11_MODULE"),
        get("KEYWARDEN_TEST_PKCS11_TOKEN"),
        get("KEYWARDEN_TEST_PKCS11_PIN"),
    ) else {
        eprintln!(
            "pkcs11 benches skipped: set KEYWARDEN_TEST_PKCS11_MODULE, _TOKEN, _PIN (see docs/benchmarks.md)"
        );
        return None;
    };
    let mut c = Pkcs11Config::new(
        module,
        TokenSelector::Label(token),
        SecretBytes::copy_from(pin.as_bytes()),
    );
    c.mkek_label = "kw-bench-mkek".into();
    c.hmac_label = "kw-bench-hmac".into();
    Pkcs11::init_token(&c).expect("create the bench keys");
    Some(c)
}

fn ctx() -> Context {
    Context::new(
        UserId::new("bench").unwrap(),
        ProjectId::new("bench-project").unwrap(),
        ["creator"],
    )
}

fn key_secret() -> NewSecret {
    NewSecret::new()
        .secret_type(SecretType::Symmetric)
        .algorithm("aes")
        .bit_length(256)
        .payload_bytes(
            SecretBytes::copy_from(&[0x42; 32]),
            ContentType::OctetStream,
        )
}

/// A store under target/ whose only backend is `backend`.
fn store_with(dir: &Path, backend: Option<&Pkcs11Config>) -> SecretStore {
    let mut config = Config::generate(dir.join("bench.db")).unwrap();
    if let Some(p11) = backend {
        let id = BackendId::new("hsm").unwrap();
        config.backends = BTreeMap::from([(id.clone(), BackendConfig::Pkcs11(p11.clone()))]);
        config.default_backend = id;
    }
    SecretStore::open(&config).unwrap()
}

/// Store and get a 32-byte key through SecretStore, per backend.
fn store_and_get(c: &mut Criterion) {
    let Some(p11) = token_config() else { return };
    let mut g = c.benchmark_group("pkcs11_vs_simple_crypto");
    g.throughput(Throughput::Elements(1));
    for (name, backend) in [("simple_crypto", None), ("pkcs11", Some(&p11))] {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let store = store_with(dir.path(), backend);
        let ctx = ctx();
        let id = store.store_secret(&ctx, key_secret()).unwrap();
        g.bench_function(format!("get_payload/{name}"), |b| {
            b.iter(|| store.payload(&ctx, &id).unwrap())
        });
        g.bench_function(format!("store_secret/{name}"), |b| {
            b.iter(|| store.store_secret(&ctx, key_secret()).unwrap())
        });
    }
    g.finish();
}

/// The backend alone (no catalog write): a trivial call, a decrypt and an
/// encrypt in the token with the pool, and with a session opened, logged in
/// and closed for each operation; with one project KEK open, and with 100
/// (Barbican's default `pkek_cache_limit`, the cache full).
fn session_pool(c: &mut Criterion) {
    let Some(p11) = token_config() else { return };
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let catalog: Arc<dyn Catalog> = Arc::new(SqliteCatalog::open(dir.path().join("k.db")).unwrap());
    let mut g = c.benchmark_group("pkcs11_sessions");
    g.throughput(Throughput::Elements(1));
    for projects in [1usize, 100] {
        for (name, pool) in [("pool", 4), ("per_operation", 0)] {
            let mut config = p11.clone();
            config.session_pool_size = pool;
            let backend = Pkcs11::connect(
                BackendId::new(format!("hsm-{name}-{projects}")).unwrap(),
                &config,
                catalog.clone(),
            )
            .unwrap();
            let key = SecretBytes::copy_from(&[0x42; 32]);
            let ids: Vec<(ProjectId, SecretId)> = (0..projects)
                .map(|p| {
                    (
                        ProjectId::new(format!("bench-{p}")).unwrap(),
                        SecretId::new_random(),
                    )
                })
                .collect();
            let scope = |i: usize| Scope::new(&ids[i].0, &ids[i].1);
            let stored: Vec<_> = (0..projects)
                .map(|i| backend.store(scope(i), &key).unwrap())
                .collect();
            let label = format!("{name}/{projects} KEKs open");
            // What the pool saves, alone: the session around a trivial call.
            g.bench_function(format!("ping/{label}"), |b| {
                b.iter(|| backend.ping().unwrap())
            });
            g.bench_function(format!("decrypt/{label}"), |b| {
                b.iter(|| backend.retrieve(scope(0), &stored[0]).unwrap())
            });
            g.bench_function(format!("encrypt/{label}"), |b| {
                b.iter(|| backend.store(scope(0), &key).unwrap())
            });
            eprintln!("{label}: {:?}", backend.stats());
        }
    }
    g.finish();
}

criterion_group!(benches, store_and_get, session_pool);
criterion_main!(benches);
