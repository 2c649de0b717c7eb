//! The Kmip backend against a PyKMIP server: store and get a payload beside
//! SimpleCrypto, and pooled TLS connections beside a connection per
//! operation (what Barbican's KMIP plugin does).
//!
//! Needs the server scripts/test.sh starts (KEYWARDEN_TEST_KMIP_HOST, _PORT,
//! _CA, _CERT, _KEY); without it, it says so and measures nothing. Figures
//! and the commands that made them: docs/benchmarks.md.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use keywarden::backend::{KeyManager, Kmip, KmipConfig, Scope};
use keywarden::config::{BackendConfig, Config};
use keywarden::context::Context;
use keywarden::model::{BackendId, ContentType, ProjectId, SecretId, SecretType, UserId};
use keywarden::secret::SecretBytes;
use keywarden::store::{NewSecret, SecretStore};

fn server_config() -> Option<KmipConfig> {
    let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let (Some(host), Some(port), Some(ca), Some(cert), Some(key)) = (
        get("KEYWARDEN_TEST_KMIP_HOST"),
        get("KEYWARDEN_TEST_KMIP_PORT").and_then(|p| p.parse().ok()),
        get("KEYWARDEN_TEST_KMIP_CA"),
        get("KEYWARDEN_TEST_KMIP_CERT"),
        get("KEYWARDEN_TEST_KMIP_KEY"),
    ) else {
        eprintln!(
            "kmip benches skipped: set KEYWARDEN_TEST_KMIP_HOST, _PORT, _CA, _CERT, _KEY (see docs/benchmarks.md)"
        );
        return None;
    };
    let mut c = KmipConfig::new(host, port, ca).with_client_cert(cert, key);
    c.io_timeout = Duration::from_secs(30);
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
fn store_with(dir: &Path, backend: Option<&KmipConfig>) -> SecretStore {
    let mut config = Config::generate(dir.join("bench.db")).unwrap();
    if let Some(kmip) = backend {
        let id = BackendId::new("kmip").unwrap();
        config.backends = BTreeMap::from([(id.clone(), BackendConfig::Kmip(kmip.clone()))]);
        config.default_backend = id;
    }
    SecretStore::open(&config).unwrap()
}

/// Store and get a 32-byte key through SecretStore, per backend.
fn store_and_get(c: &mut Criterion) {
    let Some(kmip) = server_config() else { return };
    let mut g = c.benchmark_group("kmip_vs_simple_crypto");
    g.throughput(Throughput::Elements(1));
    for (name, backend) in [("simple_crypto", None), ("kmip", Some(&kmip))] {
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

/// The backend alone: Query (a trivial round trip), Get (with its Name
/// check) and Register, on pooled connections and on a new TLS connection
/// per operation.
fn connection_pool(c: &mut Criterion) {
    let Some(kmip) = server_config() else { return };
    let mut g = c.benchmark_group("kmip_connections");
    g.throughput(Throughput::Elements(1));
    let project = ProjectId::new("bench-pool").unwrap();
    let id = SecretId::new_random();
    let key = SecretBytes::copy_from(&[0x42; 32]);
    for (name, pool) in [("pool", 4), ("per_operation", 0)] {
        let mut config = kmip.clone();
        config.pool_size = pool;
        let backend =
            Kmip::connect(BackendId::new(format!("kmip-{name}")).unwrap(), &config).unwrap();
        let scope = Scope::new(&project, &id);
        let stored = backend.store(scope, &key).unwrap();
        g.bench_function(format!("query/{name}"), |b| {
            b.iter(|| backend.ping().unwrap())
        });
        g.bench_function(format!("get/{name}"), |b| {
            b.iter(|| backend.retrieve(scope, &stored).unwrap())
        });
        g.bench_function(format!("register/{name}"), |b| {
            b.iter(|| backend.store(scope, &key).unwrap())
        });
        eprintln!("{name}: {:?}", backend.stats());
    }
    g.finish();
}

criterion_group!(benches, store_and_get, connection_pool);
criterion_main!(benches);
