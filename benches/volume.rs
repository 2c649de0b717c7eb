//! Encrypted volumes: XTS sector throughput (to set beside
//! `openssl speed -evp aes-256-xts`) and opening a LUKS1 header at a fixed
//! PBKDF2 count (beside `cryptsetup open --test-passphrase` on the same
//! file).
//!
//! Figures and the commands that made them: docs/benchmarks.md.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use keywarden::secret::SecretBytes;
use keywarden::volume::luks::{FormatOptions, LuksVolume, Pbkdf2Cost, SectorCipher};
use keywarden::volume::spec::IvGen;

const BUF: usize = 1 << 20;

fn sectors(c: &mut Criterion) {
    let mut group = c.benchmark_group("xts_sectors");
    group.throughput(Throughput::Bytes(BUF as u64));
    for (name, key_len) in [("aes-128-xts", 32usize), ("aes-256-xts", 64)] {
        let key: Vec<u8> = (0..key_len as u8).collect();
        let cipher = SectorCipher::new(&key, IvGen::Plain64, 512).unwrap();
        let mut buf = vec![0x5Au8; BUF];
        group.bench_with_input(BenchmarkId::new("encrypt", name), &(), |b, ()| {
            b.iter(|| cipher.encrypt(&mut buf, 0))
        });
        group.bench_with_input(BenchmarkId::new("decrypt", name), &(), |b, ()| {
            b.iter(|| cipher.decrypt(&mut buf, 0))
        });
    }
    group.finish();
}

fn cryptsetup() -> Option<PathBuf> {
    ["/usr/sbin/cryptsetup", "/sbin/cryptsetup"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

fn run_with_stdin(cmd: &mut Command, stdin: &[u8]) -> bool {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait().unwrap().success()
}

fn open(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let pass = SecretBytes::copy_from(&[b'a'; 64]);
    let mut group = c.benchmark_group("luks1_open");
    group.sample_size(10);
    for iterations in [1000u32, 100_000] {
        // Our own format: `iterations` for the key slot and the digest.
        let ours = dir.path().join(format!("ours-{iterations}.img"));
        std::fs::File::create(&ours)
            .unwrap()
            .set_len(3 << 20)
            .unwrap();
        let opts = FormatOptions::default()
            .with_key_bytes(64)
            .with_cost(Pbkdf2Cost::Iterations(iterations));
        LuksVolume::format(&ours, &pass, &opts).unwrap();
        bench_open(&mut group, "keywarden/ours", iterations, &ours, &pass);

        let Some(cs) = cryptsetup() else {
            eprintln!("cryptsetup not installed: skipping the cryptsetup side");
            continue;
        };
        bench_cryptsetup(&mut group, &cs, "cryptsetup/ours", iterations, &ours, &pass);
        // cryptsetup's format: the slot at `iterations`, the digest at
        // whatever its own benchmark picks; both tools open the same file.
        let theirs = dir.path().join(format!("theirs-{iterations}.img"));
        std::fs::File::create(&theirs)
            .unwrap()
            .set_len(3 << 20)
            .unwrap();
        let made = run_with_stdin(
            Command::new(&cs)
                .args([
                    "luksFormat",
                    "--type",
                    "luks1",
                    "--batch-mode",
                    "--key-file=-",
                ])
                .args([
                    "--key-size",
                    "512",
                    "--hash",
                    "sha256",
                    "--pbkdf-force-iterations",
                ])
                .arg(iterations.to_string())
                .arg(&theirs),
            pass.expose_secret(),
        );
        assert!(made, "cryptsetup luksFormat failed");
        bench_open(
            &mut group,
            "keywarden/cryptsetup-made",
            iterations,
            &theirs,
            &pass,
        );
        bench_cryptsetup(
            &mut group,
            &cs,
            "cryptsetup/cryptsetup-made",
            iterations,
            &theirs,
            &pass,
        );
    }
    group.finish();
}

fn bench_open(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    iterations: u32,
    file: &Path,
    pass: &SecretBytes,
) {
    group.bench_with_input(BenchmarkId::new(name, iterations), &(), |b, ()| {
        b.iter(|| LuksVolume::open(file, pass).unwrap())
    });
}

fn bench_cryptsetup(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    cs: &Path,
    name: &str,
    iterations: u32,
    file: &Path,
    pass: &SecretBytes,
) {
    group.bench_with_input(BenchmarkId::new(name, iterations), &(), |b, ()| {
        b.iter(|| {
            assert!(run_with_stdin(
                Command::new(cs)
                    .args(["open", "--test-passphrase", "--key-file=-"])
                    .arg(file),
                pass.expose_secret(),
            ))
        })
    });
}

criterion_group!(benches, sectors, open);
criterion_main!(benches);
