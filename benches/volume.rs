//! Encrypted volumes: XTS and CBC sector throughput (to set beside
//! `openssl speed -evp aes-256-xts` / `aes-256-cbc`) and opening a LUKS1
//! header at a fixed PBKDF2 count (beside `cryptsetup open
//! --test-passphrase` on the same file).
//!
//! After criterion, `xts_openssl` sets `SectorCipher` beside `openssl speed
//! -elapsed -evp aes-{256,128}-xts -bytes 1048576`, and `cbc_openssl` sets
//! aes-256-cbc-essiv:sha256 beside `openssl speed -elapsed -evp aes-256-cbc`
//! (the raw CBC, without ESSIV's IVs), in alternating rounds on the same
//! machine, and prints the ratios (run them alone with `cargo bench --bench
//! volume -- xts_openssl`, `-- cbc_openssl`).
//!
//! Figures and the commands that made them: docs/benchmarks.md.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use keywarden::secret::SecretBytes;
use keywarden::volume::CipherSpec;
use keywarden::volume::luks::{FormatOptions, LuksVolume, Pbkdf2Cost, SectorCipher};

const BUF: usize = 1 << 20;

/// Every cipher the bench compares: (openssl's name, our spec, key bytes).
const CIPHERS: [(&str, CipherSpec, usize); 3] = [
    ("aes-256-xts", CipherSpec::AES_XTS_PLAIN64, 64),
    ("aes-128-xts", CipherSpec::AES_XTS_PLAIN64, 32),
    ("aes-256-cbc", CipherSpec::AES_CBC_ESSIV_SHA256, 32),
];

fn sectors(c: &mut Criterion) {
    let mut group = c.benchmark_group("sectors");
    group.throughput(Throughput::Bytes(BUF as u64));
    for (openssl_name, spec, key_len) in CIPHERS {
        let name = format!("{openssl_name}-{}", spec.ivgen.as_str());
        let key: Vec<u8> = (0..key_len as u8).collect();
        let cipher = SectorCipher::new(&key, spec, 512).unwrap();
        let mut buf = vec![0x5Au8; BUF];
        group.bench_with_input(BenchmarkId::new("encrypt", &name), &(), |b, ()| {
            b.iter(|| cipher.encrypt(&mut buf, 0).unwrap())
        });
        group.bench_with_input(BenchmarkId::new("decrypt", &name), &(), |b, ()| {
            b.iter(|| cipher.decrypt(&mut buf, 0).unwrap())
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

/// Bytes per second of `SectorCipher` over one `BUF`-byte buffer (512-byte
/// sectors) for about `secs` seconds of wall-clock time.
fn our_rate(spec: CipherSpec, key_len: usize, encrypt: bool, secs: f64) -> f64 {
    let key: Vec<u8> = (0..key_len as u8).collect();
    let cipher = SectorCipher::new(&key, spec, 512).unwrap();
    let mut buf = vec![0x5Au8; BUF];
    let start = Instant::now();
    let mut bytes = 0u64;
    while start.elapsed() < Duration::from_secs_f64(secs) {
        for _ in 0..16 {
            if encrypt {
                cipher.encrypt(&mut buf, 0).unwrap();
            } else {
                cipher.decrypt(&mut buf, 0).unwrap();
            }
        }
        bytes += 16 * BUF as u64;
    }
    bytes as f64 / start.elapsed().as_secs_f64()
}

/// `openssl speed -elapsed -evp CIPHER [-decrypt] -bytes 1048576 -seconds N`
/// in bytes/s. `-elapsed` divides by wall-clock time, as we do; without it
/// openssl divides by its own CPU time, which flatters it on a busy machine.
fn openssl_rate(cipher: &str, encrypt: bool, secs: u32) -> Option<f64> {
    let mut cmd = Command::new("openssl");
    cmd.args(["speed", "-elapsed", "-evp", cipher]);
    if !encrypt {
        cmd.arg("-decrypt");
    }
    let out = cmd
        .args(["-bytes", &BUF.to_string(), "-seconds", &secs.to_string()])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    // Last line: "AES-256-XTS   1234567.89k" (thousands of bytes per second).
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().rev().find(|l| l.trim_end().ends_with('k'))?;
    let k: f64 = last
        .split_whitespace()
        .last()?
        .trim_end_matches('k')
        .parse()
        .ok()?;
    Some(k * 1000.0)
}

/// Five alternating one-second rounds of ours and of openssl for each
/// cipher and direction; the best round of each counts (the machine is
/// shared, so the best round is the least disturbed one). CBC encryption
/// is sequential within a sector (openssl's one long chain is too), so its
/// target applies to decryption only.
fn compare_with_openssl(filter: &dyn Fn(&str) -> bool) {
    for (cipher, spec, key_len) in CIPHERS {
        let tag = if spec.mode() == "xts" {
            "xts_openssl"
        } else {
            "cbc_openssl"
        };
        if !filter(tag) {
            continue;
        }
        for encrypt in [true, false] {
            let (mut ours, mut theirs) = (0f64, None::<f64>);
            for _ in 0..5 {
                ours = ours.max(our_rate(spec, key_len, encrypt, 1.0));
                if let Some(t) = openssl_rate(cipher, encrypt, 1) {
                    theirs = Some(theirs.map_or(t, |b| b.max(t)));
                }
            }
            let dir = if encrypt { "encrypt" } else { "decrypt" };
            let ourname = format!("{spec}");
            let target = if spec.mode() == "cbc" && encrypt {
                "recorded, no target"
            } else {
                "target >= 0.5"
            };
            match theirs {
                Some(theirs) => println!(
                    "{tag} {ourname} ({} bytes key) vs openssl {cipher} {dir}, 1 MiB, best of 5: keywarden {:.0} MB/s, openssl {:.0} MB/s, ratio {:.2} ({target})",
                    key_len,
                    ours / 1e6,
                    theirs / 1e6,
                    ours / theirs
                ),
                None => println!(
                    "{tag} {ourname} {dir}: keywarden {:.0} MB/s; openssl speed not available",
                    ours / 1e6
                ),
            }
        }
    }
}

/// Whether the command line's filter (if any) selects an openssl
/// comparison: no filter, or one that its name (`xts_openssl`,
/// `cbc_openssl`) contains.
fn wants_openssl_comparison(name: &str) -> bool {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-') && a.parse::<f64>().is_err())
        .collect();
    filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()))
}

criterion_group!(benches, sectors, open);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    compare_with_openssl(&wants_openssl_comparison);
}
