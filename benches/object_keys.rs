//! swift object body encryption (AES-256-CTR under a wrapped body key)
//! beside `openssl speed -evp aes-256-ctr` on the same machine.
//!
//! After the criterion group, the bench measures both itself at the same
//! block size and prints the ratio (target: at least 0.5).
//! Figures and the commands that made them: docs/benchmarks.md.

use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use keywarden::object_keys::{ObjectKeyMaster, ObjectPath, RootSecretId};
use keywarden::secret::SecretBytes;

/// openssl speed's largest default block.
const OPENSSL_BLOCK: usize = 16 * 1024;

fn keymaster() -> ObjectKeyMaster {
    ObjectKeyMaster::from_root_secrets(
        [(RootSecretId::DEFAULT, SecretBytes::random(32).unwrap())],
        RootSecretId::DEFAULT,
    )
    .unwrap()
}

fn body_encryption(c: &mut Criterion) {
    let km = keymaster();
    let path = ObjectPath::new("AUTH_bench", "c", "o").unwrap();
    let mut group = c.benchmark_group("object_body_encrypt");
    for size in [OPENSSL_BLOCK, 64 * 1024, 1024 * 1024] {
        let mut buf = vec![0x5au8; size];
        let mut enc = km.body_encryptor(&path).unwrap();
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, _| {
            b.iter(|| enc.apply(&mut buf))
        });
    }
    // A whole 16 MiB object through the streaming helper (read, encrypt, write).
    let body = vec![0xa5u8; 16 * 1024 * 1024];
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("encrypt_object_16MiB", |b| {
        let mut out = Vec::with_capacity(body.len());
        b.iter(|| {
            out.clear();
            km.encrypt_object(&path, &body[..], &mut out).unwrap()
        })
    });
    group.finish();
}

/// Bytes per second of `apply` over `OPENSSL_BLOCK` chunks for about `secs`
/// seconds of wall-clock time.
fn rate(secs: f64, mut apply: impl FnMut(&mut [u8])) -> f64 {
    let mut buf = vec![0x5au8; OPENSSL_BLOCK];
    let start = Instant::now();
    let mut bytes = 0u64;
    while start.elapsed() < Duration::from_secs_f64(secs) {
        for _ in 0..64 {
            apply(&mut buf);
        }
        bytes += 64 * OPENSSL_BLOCK as u64;
    }
    bytes as f64 / start.elapsed().as_secs_f64()
}

fn our_rate(secs: f64) -> f64 {
    let km = keymaster();
    let path = ObjectPath::new("AUTH_bench", "c", "o").unwrap();
    let mut enc = km.body_encryptor(&path).unwrap();
    rate(secs, |b| enc.apply(b))
}

/// The `ctr` crate's AES-256-CTR on the same machine, for reference.
fn ctr_crate_rate(secs: f64) -> f64 {
    use ctr::cipher::{KeyIvInit as _, StreamCipher as _};
    let mut c = ctr::Ctr128BE::<aes::Aes256>::new(&[1u8; 32].into(), &[2u8; 16].into());
    rate(secs, |b| c.apply_keystream(b))
}

/// `openssl speed -elapsed -evp aes-256-ctr -bytes 16384 -seconds N` in
/// bytes/s (`-elapsed`: wall-clock time, as we measure ourselves).
fn openssl_rate(secs: u32) -> Option<f64> {
    let out = Command::new("openssl")
        .args([
            "speed",
            "-elapsed",
            "-evp",
            "aes-256-ctr",
            "-bytes",
            &OPENSSL_BLOCK.to_string(),
        ])
        .args(["-seconds", &secs.to_string()])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // Last line: "AES-256-CTR   1234567.89k" (thousands of bytes per second).
    let last = text.lines().rev().find(|l| l.trim_end().ends_with('k'))?;
    let k: f64 = last
        .split_whitespace()
        .last()?
        .trim_end_matches('k')
        .parse()
        .ok()?;
    Some(k * 1000.0)
}

/// Five alternating one-second rounds each; the best round of each counts
/// (the machine is shared, so the best round is the least disturbed one).
fn compare_with_openssl() {
    let (mut ours, mut reference, mut theirs) = (0f64, 0f64, None::<f64>);
    for _ in 0..5 {
        ours = ours.max(our_rate(1.0));
        reference = reference.max(ctr_crate_rate(1.0));
        if let Some(t) = openssl_rate(1) {
            theirs = Some(theirs.map_or(t, |b| b.max(t)));
        }
    }
    match theirs {
        Some(theirs) => println!(
            "aes-256-ctr {OPENSSL_BLOCK}-byte blocks, best of 5: keywarden {:.0} MB/s, openssl {:.0} MB/s, ratio {:.2} (target >= 0.5); ctr crate {:.0} MB/s",
            ours / 1e6,
            theirs / 1e6,
            ours / theirs,
            reference / 1e6
        ),
        None => println!(
            "aes-256-ctr: keywarden {:.0} MB/s; openssl speed not available",
            ours / 1e6
        ),
    }
}

criterion_group!(benches, body_encryption);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    compare_with_openssl();
}
