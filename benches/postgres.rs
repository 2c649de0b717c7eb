//! The shared PostgreSQL catalog beside the embedded SQLite one: store and
//! get of a payload on each (the ratio), then aggregate store throughput
//! from 1, 2 and 4 processes sharing one server.
//!
//! Needs a server: `KEYWARDEN_BENCH_POSTGRES_URL`, else
//! `KEYWARDEN_TEST_POSTGRES_URL` (scripts/test.sh starts one and prints it).
//! Without one the bench says so and does nothing. Figures and the commands
//! that made them: docs/benchmarks.md.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use criterion::{Criterion, Throughput};
use keywarden::config::Config;
use keywarden::context::Context;
use keywarden::model::{ContentType, ProjectId, SecretType, UserId};
use keywarden::secret::SecretBytes;
use keywarden::store::{NewSecret, SecretStore};

const CHILD_ENV: &str = "KEYWARDEN_BENCH_CHILD";
/// Seconds each throughput run lasts (`KEYWARDEN_BENCH_SECS` overrides).
const DEFAULT_SECS: u64 = 5;

fn main() {
    if let Ok(config) = std::env::var(CHILD_ENV) {
        child(Path::new(&config));
        return;
    }
    let Some(server) = [
        "KEYWARDEN_BENCH_POSTGRES_URL",
        "KEYWARDEN_TEST_POSTGRES_URL",
    ]
    .iter()
    .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty())) else {
        eprintln!(
            "postgres bench: no server (set KEYWARDEN_BENCH_POSTGRES_URL or KEYWARDEN_TEST_POSTGRES_URL); nothing measured"
        );
        return;
    };
    let mut c = Criterion::default().configure_from_args();
    store_and_get(&mut c, &server);
    c.final_summary();
    throughput(&server);
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
        .name("bench-key")
        .secret_type(SecretType::Symmetric)
        .algorithm("aes")
        .bit_length(256)
        .payload_bytes(
            SecretBytes::copy_from(&[0x42; 32]),
            ContentType::OctetStream,
        )
}

/// A config on a fresh schema of the server (or, for SQLite, a file under
/// target/, a real disk like the server's).
fn config(server: Option<&str>, dir: &Path) -> Config {
    let mut config = Config::generate(dir.join("bench.db")).unwrap();
    if let Some(server) = server {
        let schema = format!("kw_bench_{}", uuid::Uuid::new_v4().simple());
        let mut admin = postgres::Client::connect(server, postgres::NoTls).unwrap();
        admin
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .unwrap();
        let sep = if server.contains('?') { '&' } else { '?' };
        config.catalog = format!("{server}{sep}options=-csearch_path%3D{schema}")
            .parse()
            .expect("a PostgreSQL URL");
    }
    config
}

fn store_and_get(c: &mut Criterion, server: &str) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let ctx = ctx();
    for (name, catalog) in [("sqlite", None), ("postgres", Some(server))] {
        let store = SecretStore::open(&config(catalog, dir.path())).unwrap();
        let id = store.store_secret(&ctx, key_secret()).unwrap(); // project KEK made
        let mut g = c.benchmark_group("catalog_store_durable");
        g.throughput(Throughput::Elements(1));
        g.sample_size(20);
        g.bench_function(name, |b| {
            b.iter(|| store.store_secret(&ctx, key_secret()).unwrap())
        });
        g.finish();
        let mut g = c.benchmark_group("catalog_get_payload");
        g.throughput(Throughput::Elements(1));
        g.bench_function(name, |b| b.iter(|| store.payload(&ctx, &id).unwrap()));
        g.finish();
    }
}

/// Stores from 1, 2 and 4 processes (1 and 4 threads each) for a fixed
/// time against one catalog; prints the aggregate rate.
fn throughput(server: &str) {
    let secs: u64 = std::env::var("KEYWARDEN_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SECS);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let exe = std::env::current_exe().unwrap();
    println!("\naggregate durable stores on one PostgreSQL catalog, {secs} s per run");
    println!("processes  threads/process  stores/s");
    for threads in [1usize, 4] {
        for processes in [1usize, 2, 4] {
            let config = config(Some(server), dir.path());
            drop(SecretStore::open(&config).unwrap()); // schema made once
            let path = dir.path().join("bench.toml");
            std::fs::write(&path, config.to_toml().as_bytes()).unwrap();
            // Every child starts at the same instant, after opening its store.
            let start_at =
                SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + Duration::from_millis(1500);
            let children: Vec<_> = (0..processes)
                .map(|_| {
                    Command::new(&exe)
                        .env(CHILD_ENV, &path)
                        .env("KEYWARDEN_BENCH_THREADS", threads.to_string())
                        .env("KEYWARDEN_BENCH_SECS", secs.to_string())
                        .env("KEYWARDEN_BENCH_START_MS", start_at.as_millis().to_string())
                        .stdout(Stdio::piped())
                        .spawn()
                        .unwrap()
                })
                .collect();
            let mut total = 0u64;
            for mut child in children {
                let out = child.stdout.take().unwrap();
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if let Some(n) = line.strip_prefix("STORED ") {
                        total += n.parse::<u64>().unwrap();
                    }
                }
                assert!(child.wait().unwrap().success(), "bench child failed");
            }
            println!(
                "{processes:>9}  {threads:>15}  {:>8.0}",
                total as f64 / secs as f64
            );
        }
    }
}

/// One process of a throughput run: `threads` threads storing until the
/// deadline; prints how many stores were acknowledged.
fn child(config_path: &Path) {
    let var = |name: &str| -> u64 { std::env::var(name).unwrap().parse().unwrap() };
    let threads = var("KEYWARDEN_BENCH_THREADS") as usize;
    let secs = var("KEYWARDEN_BENCH_SECS");
    let start_ms = var("KEYWARDEN_BENCH_START_MS");
    let config = Config::from_file(config_path).unwrap();
    let store = Arc::new(SecretStore::open(&config).unwrap());
    store.store_secret(&ctx(), key_secret()).unwrap(); // connected, KEK made
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    std::thread::sleep(Duration::from_millis(start_ms.saturating_sub(now_ms)));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || {
                let ctx = ctx();
                let mut n = 0u64;
                while Instant::now() < deadline {
                    store.store_secret(&ctx, key_secret()).unwrap();
                    n += 1;
                }
                n
            })
        })
        .collect();
    let n: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    println!("STORED {n}");
}
