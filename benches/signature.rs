//! Image signature verification is bounded by SHA-256: verifying a 1 GiB
//! image file (RSA-PSS, certificate in the store) beside
//! `openssl dgst -sha256` of the same file, both from the page cache.
//!
//! The file is made under target/ and deleted afterwards. The comparison
//! takes the best of three runs each and prints the ratio (target: at
//! least 0.8). Set KEYWARDEN_BENCH_IMAGE_MIB for another size.
//! Figures and the commands that made them: docs/benchmarks.md.

use std::fs::File;
use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use keywarden::config::Config;
use keywarden::context::Context;
use keywarden::model::{ProjectId, SecretId, SecretType, UserId};
use keywarden::signature::{ImageSignature, VerifyOptions, verify_image};
use keywarden::store::{NewSecret, SecretStore};

struct Setup {
    dir: tempfile::TempDir,
    store: SecretStore,
    cert: SecretId,
    signature_b64: String,
    image_len: u64,
}

fn ctx() -> Context {
    Context::new(
        UserId::new("bench").unwrap(),
        ProjectId::new("images").unwrap(),
        ["creator"],
    )
}

fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn setup() -> Setup {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let mib: u64 = std::env::var("KEYWARDEN_BENCH_IMAGE_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let mut f = File::create(dir.path().join("image")).unwrap();
    let block: Vec<u8> = (0..1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    for i in 0..mib {
        let mut b = block.clone();
        b[..8].copy_from_slice(&i.to_le_bytes());
        f.write_all(&b).unwrap();
    }
    f.sync_all().unwrap();
    drop(f);
    let d = dir.path();
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "key.pem",
        ],
    );
    openssl(
        d,
        &[
            "req",
            "-new",
            "-x509",
            "-key",
            "key.pem",
            "-days",
            "2",
            "-subj",
            "/CN=bench",
            "-out",
            "cert.pem",
        ],
    );
    openssl(
        d,
        &[
            "dgst",
            "-sha256",
            "-sign",
            "key.pem",
            "-sigopt",
            "rsa_padding_mode:pss",
            "-out",
            "image.sig",
            "image",
        ],
    );
    let sig = std::fs::read(d.join("image.sig")).unwrap();
    use base64::Engine as _;
    let signature_b64 = base64::engine::general_purpose::STANDARD.encode(sig);
    let config = Config::generate(d.join("keywarden.db")).unwrap();
    let store = SecretStore::open(&config).unwrap();
    let pem = std::fs::read_to_string(d.join("cert.pem")).unwrap();
    let cert = store
        .store_secret(
            &ctx(),
            NewSecret::new()
                .secret_type(SecretType::Certificate)
                .payload_text(pem, Some("text/plain"), None),
        )
        .unwrap();
    Setup {
        dir,
        store,
        cert,
        signature_b64,
        image_len: mib * 1024 * 1024,
    }
}

fn verify_file(s: &Setup) {
    let sig =
        ImageSignature::new(&s.signature_b64, "SHA-256", "RSA-PSS", &s.cert.to_string()).unwrap();
    let image = File::open(s.dir.path().join("image")).unwrap();
    let v = verify_image(&s.store, &ctx(), sig, image, &VerifyOptions::default()).unwrap();
    assert_eq!(v.bytes, s.image_len);
}

fn best_of_3(mut f: impl FnMut()) -> Duration {
    (0..3)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap()
}

fn verification(c: &mut Criterion, s: &Setup) {
    let mut group = c.benchmark_group("image_verify");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(s.image_len));
    group.bench_function("rsa_pss_sha256_file", |b| b.iter(|| verify_file(s)));
    group.finish();
}

fn main() {
    let s = setup();
    let mut c = Criterion::default().configure_from_args();
    // Warm the page cache, then compare best-of-3 wall times.
    verify_file(&s);
    let ours = best_of_3(|| verify_file(&s));
    let path = s.dir.path().join("image");
    let path = path.to_str().unwrap();
    let theirs = best_of_3(|| {
        openssl(s.dir.path(), &["dgst", "-sha256", path]);
    });
    let gib = s.image_len as f64 / (1u64 << 30) as f64;
    println!(
        "verify {gib:.2} GiB image: keywarden {:.2} s ({:.0} MB/s), openssl dgst -sha256 {:.2} s ({:.0} MB/s), ratio {:.2} (target >= 0.8)",
        ours.as_secs_f64(),
        s.image_len as f64 / ours.as_secs_f64() / 1e6,
        theirs.as_secs_f64(),
        s.image_len as f64 / theirs.as_secs_f64() / 1e6,
        theirs.as_secs_f64() / ours.as_secs_f64()
    );
    verification(&mut c, &s);
    c.final_summary();
    // TempDir removes the image here.
}
