//! SecretStore throughput on the embedded default (SimpleCrypto + SQLite).
//!
//! Figures and the commands that made them: docs/benchmarks.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use keywarden::catalog::Write;
use keywarden::config::Config;
use keywarden::context::Context;
use keywarden::model::{
    BackendId, ContentType, ProjectId, SecretId, SecretMeta, SecretType, Status, Timestamp, UserId,
};
use keywarden::secret::SecretBytes;
use keywarden::store::{KeyOrder, ListQuery, NewSecret, SecretStore};

fn ctx() -> Context {
    Context::new(
        UserId::new("bench").unwrap(),
        ProjectId::new("bench-project").unwrap(),
        ["creator"],
    )
}

fn fresh_store() -> (tempfile::TempDir, SecretStore) {
    // The bench database lives under target/ (a real disk), not in a tmpfs
    // /tmp where fsync would cost nothing.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let config = Config::generate(dir.path().join("bench.db")).unwrap();
    let store = SecretStore::open(&config).unwrap();
    (dir, store)
}

fn key_secret() -> NewSecret {
    NewSecret::new()
        .name("bench-key")
        .secret_type(SecretType::Symmetric)
        .algorithm("aes")
        .bit_length(256)
        .payload_bytes(
            SecretBytes::copy_from(&[0x42; 32]),
            ContentType::OctetStream,
        )
}

fn get_payload(c: &mut Criterion) {
    let (_dir, store) = fresh_store();
    let ctx = ctx();
    let order = store.create_key(&ctx, &KeyOrder::aes(256)).unwrap();
    let id = order.secret_id.unwrap();
    let mut g = c.benchmark_group("get_payload");
    g.throughput(Throughput::Elements(1));
    g.bench_function("32-byte key, 1 thread", |b| {
        b.iter(|| store.payload(&ctx, &id).unwrap())
    });
    g.finish();
}

fn durable_store(c: &mut Criterion) {
    let mut g = c.benchmark_group("durable_store");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    for threads in [1usize, 8] {
        let (_dir, store) = fresh_store();
        let store = Arc::new(store);
        store.store_secret(&ctx(), key_secret()).unwrap(); // project KEK made
        g.throughput(Throughput::Elements(1));
        g.bench_with_input(
            BenchmarkId::new("threads", threads),
            &threads,
            |b, &threads| {
                b.iter_custom(|iters| {
                    let per_thread = iters.div_ceil(threads as u64);
                    let start = Instant::now();
                    let handles: Vec<_> = (0..threads)
                        .map(|_| {
                            let store = store.clone();
                            std::thread::spawn(move || {
                                let ctx = ctx();
                                for _ in 0..per_thread {
                                    store.store_secret(&ctx, key_secret()).unwrap();
                                }
                            })
                        })
                        .collect();
                    for h in handles {
                        h.join().unwrap();
                    }
                    // Scale to `iters` stores: the threads made per_thread * threads.
                    start
                        .elapsed()
                        .mul_f64(iters as f64 / (per_thread * threads as u64) as f64)
                })
            },
        );
    }
    g.finish();
}

fn list_page(c: &mut Criterion) {
    const TOTAL: usize = 100_000;
    let (_dir, store) = fresh_store();
    let ctx = ctx();
    // Fill the catalog in one batch: metadata rows as a store writes them
    // (listing never reads ciphertext).
    let now = Timestamp::now();
    let batch: Vec<Write> = (0..TOTAL)
        .map(|i| Write::InsertSecret {
            meta: SecretMeta {
                id: SecretId::new_random(),
                name: Some(format!("app-{}", i % 1000)),
                algorithm: Some("aes".into()),
                bit_length: Some(256),
                mode: Some("cbc".into()),
                secret_type: SecretType::Symmetric,
                expiration: None,
                created: Timestamp::from_unix(now.unix() - (TOTAL - i) as i64),
                updated: now,
                status: Status::Active,
                content_type: None,
                creator_id: ctx.user_id.clone(),
                project_id: ctx.project_id.clone(),
                backend_id: BackendId::new("software").unwrap(),
            },
            stored: None,
        })
        .collect();
    store.operator().danger_catalog().apply(batch).unwrap();
    let query = ListQuery {
        name: Some("app-517".into()),
        ..ListQuery::default()
    };
    let page = store.list_secrets(&ctx, &query).unwrap();
    assert_eq!((page.items.len(), page.total), (10, 100));
    let mut g = c.benchmark_group("list");
    g.bench_function("page of 10 from 100k, name filter", |b| {
        b.iter(|| store.list_secrets(&ctx, &query).unwrap())
    });
    let unfiltered = ListQuery::default();
    g.bench_function("page of 10 from 100k, no filter", |b| {
        b.iter(|| store.list_secrets(&ctx, &unfiltered).unwrap())
    });
    g.finish();
}

criterion_group!(benches, get_payload, durable_store, list_page);
criterion_main!(benches);
