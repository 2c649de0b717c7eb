//! The fixed-key migration at scale: 1,000,000 volumes on one host, a tenth
//! of them with a snapshot, migrated to SimpleCrypto secrets. Set
//! KEYWARDEN_BENCH_VOLUMES to change the count. Figures: docs/benchmarks.md.

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use keywarden::config::Config;
use keywarden::context::Context;
use keywarden::migration::{
    ALL_ZEROS, CinderSqlite, HostFilter, MigrationOptions, Service, migrate_fixed_key,
};
use keywarden::model::{ProjectId, UserId};
use keywarden::secret::SecretBytes;
use keywarden::store::SecretStore;

fn volumes() -> usize {
    std::env::var("KEYWARDEN_BENCH_VOLUMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

/// A cinder database with `n` fixed-key volumes on `host-1`.
fn cinder(dir: &std::path::Path, n: usize) -> CinderSqlite {
    let db = CinderSqlite::create_minimal(dir.join("cinder.db")).unwrap();
    let c = db.connection();
    c.execute_batch("BEGIN").unwrap();
    {
        let mut vol = c
            .prepare(
                "INSERT INTO volumes (id, host, user_id, project_id, encryption_key_id, deleted)
                 VALUES (?1, 'host-1', ?2, 'tenant', ?3, 0)",
            )
            .unwrap();
        let mut snap = c
            .prepare("INSERT INTO snapshots (id, volume_id, encryption_key_id, deleted) VALUES (?1, ?2, ?3, 0)")
            .unwrap();
        for i in 0..n {
            let id = format!("{:08x}-0000-4000-8000-{:012x}", i, i);
            vol.execute((&id, format!("user-{}", i % 5000), ALL_ZEROS))
                .unwrap();
            if i % 10 == 0 {
                snap.execute((format!("snap-{id}"), &id, ALL_ZEROS))
                    .unwrap();
            }
        }
    }
    c.execute_batch("COMMIT").unwrap();
    db
}

fn migrate_volumes(c: &mut Criterion) {
    let n = volumes();
    let mut g = c.benchmark_group("fixed_key_migration");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(60));
    g.bench_function(format!("{n} volumes, a tenth with snapshots"), |b| {
        // The cinder database is made once; each iteration migrates a fresh copy.
        let template = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        drop(cinder(template.path(), n));
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
                std::fs::copy(
                    template.path().join("cinder.db"),
                    dir.path().join("cinder.db"),
                )
                .unwrap();
                let mut db = CinderSqlite::open(dir.path().join("cinder.db")).unwrap();
                let config = Config::generate(dir.path().join("keywarden.db")).unwrap();
                let store = SecretStore::open(&config).unwrap();
                let ctx = Context::new(
                    UserId::new("cinder").unwrap(),
                    ProjectId::new("service").unwrap(),
                    ["creator"],
                );
                let options = MigrationOptions::new(
                    Service::Volume,
                    HostFilter::Host("host-1".into()),
                    Some(SecretBytes::copy_from(&[0x42; 32])),
                );
                let start = Instant::now();
                let report =
                    migrate_fixed_key(&store, &ctx, &mut db, &options, &mut |_| {}).unwrap();
                total += start.elapsed();
                assert_eq!(report.migrated as usize, n);
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, migrate_volumes);
criterion_main!(benches);
