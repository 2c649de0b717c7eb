//! LUKS and plain-mode interop with the real tools: cryptsetup (Debian
//! cryptsetup-bin, and its libcryptsetup through Python's ctypes) and
//! qemu-img read what we write, and we read what they write, for XTS and
//! the CBC ciphers, LUKS1 and LUKS2; crafted and damaged LUKS2 headers cryptsetup made are
//! refused or opened as cryptsetup would. KDF costs are tiny. Under `CI=true` a missing tool fails the test; elsewhere the
//! test prints why it skipped. The one exception is device-mapper (a kernel
//! feature, not a tool): plain.rs skips its `cryptsetup create` half where
//! device-mapper does not work, under CI too, printing why.
//!
//! One test binary with a module per topic; the tools and helpers they
//! share are here.

#[path = "../common/mod.rs"]
mod common;
#[path = "../common/luks2.rs"]
mod luks2_headers;

mod cbc;
mod luks1;
mod luks2;
mod plain;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use keywarden::secret::SecretBytes;
use keywarden::volume::hex_passphrase;
use keywarden::volume::luks::LuksHeader;

/// The path of `tool`, or `None` (with the reason printed) when it is
/// missing outside CI. Under CI a missing tool is a failure.
fn tool(name: &str) -> Option<PathBuf> {
    for dir in ["/usr/sbin", "/sbin", "/usr/bin", "/bin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return Some(p);
        }
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{name} is required under CI (scripts/test.sh installs it)");
    }
    eprintln!("SKIP: {name} is not installed; install it to run this interop test");
    None
}

struct Tools {
    cryptsetup: PathBuf,
    qemu_img: PathBuf,
}

fn tools() -> Option<Tools> {
    let cryptsetup = tool("cryptsetup");
    let qemu_img = tool("qemu-img");
    Some(Tools {
        cryptsetup: cryptsetup?,
        qemu_img: qemu_img?,
    })
}

/// A random 32-byte key as cinder would make, and its hex passphrase.
fn key_and_passphrase() -> (Vec<u8>, SecretBytes) {
    let key = SecretBytes::random(32).unwrap();
    let pass = hex_passphrase(key.expose_secret());
    (key.expose_secret().to_vec(), pass)
}

fn sized_file(dir: &Path, name: &str, bytes: u64) -> PathBuf {
    let p = dir.join(name);
    std::fs::File::create(&p).unwrap().set_len(bytes).unwrap();
    p
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[i % 4] ^ seed)
        .collect()
}

/// Runs `cmd` with `stdin` fed; returns (exit code, stdout, stderr).
fn run(cmd: &mut Command, stdin: &[u8]) -> (i32, String, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn test_passphrase(t: &Tools, file: &Path, pass: &[u8]) -> i32 {
    run(
        Command::new(&t.cryptsetup)
            .args(["open", "--test-passphrase", "--key-file=-"])
            .arg(file),
        pass,
    )
    .0
}

/// `luksDump --dump-volume-key`, the hex bytes after "MK dump:" (LUKS1) or
/// "Volume key:" (cryptsetup 2.6 wording).
fn dump_volume_key(t: &Tools, file: &Path, pass: &[u8]) -> Vec<u8> {
    let (code, out, err) = run(
        Command::new(&t.cryptsetup)
            .args([
                "luksDump",
                "--dump-volume-key",
                "--batch-mode",
                "--key-file=-",
            ])
            .arg(file),
        pass,
    );
    assert_eq!(code, 0, "dump-volume-key failed: {err}");
    let mut hex = String::new();
    let mut in_key = false;
    for line in out.lines() {
        if line.starts_with("MK dump:") || line.starts_with("Volume key:") {
            in_key = true;
            hex.push_str(line.split_once(':').unwrap().1);
        } else if in_key && line.starts_with(['\t', ' ']) && !line.trim().is_empty() {
            hex.push_str(line);
        } else if in_key {
            break;
        }
    }
    let digits: String = hex.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    assert!(!digits.is_empty(), "no key in dump: {out}");
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
        .collect()
}

fn secret_file(dir: &Path, pass: &SecretBytes) -> PathBuf {
    let p = dir.join("passphrase");
    std::fs::write(&p, pass.expose_secret()).unwrap();
    p
}

/// `qemu-img convert` the payload of a LUKS file into a raw file.
fn qemu_read(t: &Tools, dir: &Path, file: &Path, pass: &SecretBytes) -> Vec<u8> {
    let sec = secret_file(dir, pass);
    let out = dir.join("back.raw");
    let status = Command::new(&t.qemu_img)
        .arg("convert")
        .arg("--object")
        .arg(format!("secret,id=sec0,format=raw,file={}", sec.display()))
        .arg("--image-opts")
        .arg(format!(
            "driver=luks,key-secret=sec0,file.filename={}",
            file.display()
        ))
        .args(["-O", "raw"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success(), "qemu-img convert (read) failed");
    std::fs::read(&out).unwrap()
}

/// `qemu-img convert` a raw file into the payload of a LUKS file.
fn qemu_write(t: &Tools, dir: &Path, file: &Path, pass: &SecretBytes, plain: &[u8]) {
    let sec = secret_file(dir, pass);
    let src = dir.join("plain.raw");
    std::fs::write(&src, plain).unwrap();
    let (code, _, err) = run(
        Command::new(&t.qemu_img)
            .arg("convert")
            .arg("--object")
            .arg(format!("secret,id=sec0,format=raw,file={}", sec.display()))
            .args(["-n", "-f", "raw"])
            .arg(&src)
            .arg("--target-image-opts")
            .arg(format!(
                "driver=luks,key-secret=sec0,file.filename={}",
                file.display()
            )),
        b"",
    );
    assert_eq!(code, 0, "qemu-img convert (write) failed: {err}");
}

fn payload_len(file: &Path) -> usize {
    let size = std::fs::metadata(file).unwrap().len();
    match LuksHeader::read(file).unwrap() {
        LuksHeader::V1(h) => (size - h.payload_start()) as usize,
        LuksHeader::V2(_) => unreachable!("LUKS1 expected"),
    }
}

/// The CBC ciphers (cinder's older volume types) at both key sizes.
const CBC: [(&str, usize); 6] = [
    ("aes-cbc-essiv:sha256", 16),
    ("aes-cbc-essiv:sha256", 32),
    ("aes-cbc-plain64", 16),
    ("aes-cbc-plain64", 32),
    ("aes-cbc-plain", 16),
    ("aes-cbc-plain", 32),
];

/// `cryptsetup reencrypt --encrypt` (offline, in user space, no
/// device-mapper) turns a plaintext file into a LUKS2 volume; returns the
/// plaintext it encrypted (the file's first `len - 8 MiB` bytes).
fn cryptsetup_encrypt_luks2(
    t: &Tools,
    file: &Path,
    pass: &[u8],
    cipher: &str,
    key_bits: usize,
    extra: &[&str],
) -> Vec<u8> {
    let len = 12usize << 20;
    let plain = pattern(len, key_bits as u8);
    std::fs::write(file, &plain).unwrap();
    let (code, _, err) = run(
        Command::new(&t.cryptsetup)
            .args(["reencrypt", "--encrypt", "--type", "luks2", "--batch-mode"])
            .args(["--reduce-device-size", "8M", "--force-offline-reencrypt"])
            .args(["--disable-locks", "--key-file=-", "--pbkdf", "pbkdf2"])
            .args(["--pbkdf-force-iterations", "1000", "--cipher", cipher])
            .arg("--key-size")
            .arg(key_bits.to_string())
            .args(extra)
            .arg(file),
        pass,
    );
    assert_eq!(
        code, 0,
        "cryptsetup reencrypt --encrypt {cipher} failed: {err}"
    );
    plain[..len - (8 << 20)].to_vec()
}
