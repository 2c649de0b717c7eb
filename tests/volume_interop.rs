//! LUKS interop with the real tools: cryptsetup (Debian cryptsetup-bin)
//! and qemu-img read what we write, and we read what they write. KDF costs
//! are tiny. Under `CI=true` a missing tool fails the test; elsewhere the
//! test prints why it skipped.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use keywarden::ErrorKind;
use keywarden::secret::SecretBytes;
use keywarden::volume::hex_passphrase;
use keywarden::volume::luks::{FormatOptions, LuksHeader, LuksVolume, Pbkdf2Cost};

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

#[test]
fn volumes_we_format_are_read_by_cryptsetup_and_qemu() {
    let Some(t) = tools() else { return };
    for key_bytes in [32usize, 64] {
        let dir = tempfile::tempdir().unwrap();
        let file = sized_file(dir.path(), "ours.img", 4 << 20);
        let (_key, pass) = key_and_passphrase();
        let opts = FormatOptions::default()
            .with_key_bytes(key_bytes)
            .with_cost(Pbkdf2Cost::Iterations(1000));
        let mut vol = LuksVolume::format(&file, &pass, &opts).unwrap();
        let plain = pattern(vol.payload_len() as usize, key_bytes as u8);
        vol.write_at(0, &plain).unwrap();
        vol.sync().unwrap();
        let master = vol.master_key().expose_secret().to_vec();
        drop(vol);

        let (code, dump, err) = run(Command::new(&t.cryptsetup).arg("luksDump").arg(&file), b"");
        assert_eq!(code, 0, "luksDump refused our header: {err}");
        assert!(dump.contains("Version:       \t1"), "{dump}");
        assert!(dump.contains("xts-plain64"), "{dump}");
        assert!(
            dump.contains(&format!("MK bits:       \t{}", key_bytes * 8)),
            "{dump}"
        );
        assert!(dump.contains("Key Slot 0: ENABLED"), "{dump}");

        assert_eq!(test_passphrase(&t, &file, pass.expose_secret()), 0);
        assert_ne!(test_passphrase(&t, &file, b"not the passphrase"), 0);
        assert_eq!(dump_volume_key(&t, &file, pass.expose_secret()), master);

        let back = qemu_read(&t, dir.path(), &file, &pass);
        assert_eq!(back.len(), plain.len());
        assert!(
            back == plain,
            "qemu-img read different plaintext ({key_bytes}-byte key)"
        );
    }
}

#[test]
fn passphrases_we_add_and_remove_are_seen_by_cryptsetup() {
    let Some(t) = tools() else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = sized_file(dir.path(), "slots.img", 3 << 20);
    let (_, first) = key_and_passphrase();
    let (_, second) = key_and_passphrase();
    let opts = FormatOptions::default()
        .with_key_bytes(32)
        .with_cost(Pbkdf2Cost::Iterations(1000));
    let mut vol = LuksVolume::format(&file, &first, &opts).unwrap();
    assert_eq!(
        vol.add_passphrase(&second, Pbkdf2Cost::Iterations(1000))
            .unwrap(),
        1
    );
    assert_eq!(test_passphrase(&t, &file, second.expose_secret()), 0);
    assert_eq!(vol.remove_passphrase(&first).unwrap(), 0);
    drop(vol);
    assert_ne!(test_passphrase(&t, &file, first.expose_secret()), 0);
    assert_eq!(test_passphrase(&t, &file, second.expose_secret()), 0);
    let (_, dump, _) = run(Command::new(&t.cryptsetup).arg("luksDump").arg(&file), b"");
    assert!(dump.contains("Key Slot 0: DISABLED"), "{dump}");
    assert!(dump.contains("Key Slot 1: ENABLED"), "{dump}");
}

#[test]
fn luks1_volumes_cryptsetup_formats_are_opened_by_us() {
    let Some(t) = tools() else { return };
    for key_size in ["256", "512"] {
        let dir = tempfile::tempdir().unwrap();
        let file = sized_file(dir.path(), "cs.img", 6 << 20);
        let (_, pass) = key_and_passphrase();
        let (code, _, err) = run(
            Command::new(&t.cryptsetup)
                .args([
                    "luksFormat",
                    "--type",
                    "luks1",
                    "--batch-mode",
                    "--key-file=-",
                    "--cipher",
                    "aes-xts-plain64",
                    "--hash",
                    "sha256",
                    "--pbkdf-force-iterations",
                    "1000",
                    "--key-size",
                    key_size,
                ])
                .arg(&file),
            pass.expose_secret(),
        );
        assert_eq!(code, 0, "luksFormat failed: {err}");
        let plain = pattern(payload_len(&file), 7);
        qemu_write(&t, dir.path(), &file, &pass, &plain);

        let mut vol = LuksVolume::open(&file, &pass).unwrap();
        assert_eq!(
            vol.master_key().expose_secret(),
            dump_volume_key(&t, &file, pass.expose_secret()).as_slice()
        );
        assert_eq!(
            vol.master_key().len() * 8,
            key_size.parse::<usize>().unwrap()
        );
        let mut back = vec![0u8; plain.len()];
        vol.read_at(0, &mut back).unwrap();
        assert!(
            back == plain,
            "plaintext qemu-img wrote differs ({key_size} bits)"
        );
        drop(vol);

        let before = std::fs::read(&file).unwrap();
        let wrong = LuksVolume::open(&file, &SecretBytes::copy_from(b"wrong")).unwrap_err();
        assert_eq!(wrong.kind(), ErrorKind::Integrity);
        assert!(
            std::fs::read(&file).unwrap() == before,
            "a refused open changed the file"
        );
    }
}

#[test]
fn volumes_qemu_img_creates_are_opened_by_us() {
    let Some(t) = tools() else { return };
    // QEMU doubles `aes-N` for XTS: aes-128 gives a 32-byte master key,
    // aes-256 a 64-byte one.
    for (alg, key_bytes) in [("aes-128", 32usize), ("aes-256", 64)] {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("q.luks");
        let (_, pass) = key_and_passphrase();
        let sec = secret_file(dir.path(), &pass);
        let (code, _, err) = run(
            Command::new(&t.qemu_img)
                .args(["create", "-f", "luks", "--object"])
                .arg(format!("secret,id=sec0,format=raw,file={}", sec.display()))
                .arg("-o")
                .arg(format!(
                    "key-secret=sec0,iter-time=10,cipher-alg={alg},cipher-mode=xts,ivgen-alg=plain64,hash-alg=sha256"
                ))
                .arg(&file)
                .arg("2M"),
            b"",
        );
        assert_eq!(code, 0, "qemu-img create failed: {err}");
        let plain = pattern(2 << 20, 3);
        qemu_write(&t, dir.path(), &file, &pass, &plain);

        let header = LuksHeader::read(&file).unwrap();
        let LuksHeader::V1(h) = &header else {
            panic!("qemu-img makes LUKS1")
        };
        // QEMU lays the payload out without cryptsetup's 1 MiB alignment.
        assert_ne!(
            h.payload_offset % 2048,
            0,
            "payload offset {}",
            h.payload_offset
        );
        let mut vol = LuksVolume::open(&file, &pass).unwrap();
        assert_eq!(vol.master_key().len(), key_bytes);
        assert_eq!(vol.payload_len(), plain.len() as u64);
        let mut back = vec![0u8; plain.len()];
        vol.read_at(0, &mut back).unwrap();
        assert!(back == plain, "plaintext qemu-img wrote differs ({alg})");
        drop(vol);
        assert_eq!(
            LuksVolume::open(&file, &SecretBytes::copy_from(b"nope"))
                .unwrap_err()
                .kind(),
            ErrorKind::Integrity
        );
    }
}

#[test]
fn luks2_volumes_cryptsetup_formats_are_opened_by_us() {
    let Some(t) = tools() else { return };
    let kdfs: [&[&str]; 2] = [
        &["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"],
        &[
            "--pbkdf",
            "argon2id",
            "--pbkdf-force-iterations",
            "4",
            "--pbkdf-memory",
            "32",
            "--pbkdf-parallel",
            "1",
        ],
    ];
    for (kdf, key_size) in kdfs.iter().zip(["256", "512"]) {
        let dir = tempfile::tempdir().unwrap();
        let file = sized_file(dir.path(), "l2.img", 20 << 20);
        let (_, pass) = key_and_passphrase();
        let (code, _, err) = run(
            Command::new(&t.cryptsetup)
                .args([
                    "luksFormat",
                    "--type",
                    "luks2",
                    "--batch-mode",
                    "--key-file=-",
                ])
                .args(["--key-size", key_size])
                .args(*kdf)
                .arg(&file),
            pass.expose_secret(),
        );
        assert_eq!(code, 0, "luksFormat --type luks2 failed: {err}");
        let mut vol = LuksVolume::open(&file, &pass).unwrap();
        assert_eq!(vol.header().version(), 2);
        assert_eq!(
            vol.master_key().expose_secret(),
            dump_volume_key(&t, &file, pass.expose_secret()).as_slice()
        );
        let data = pattern(3 * 4096 + 100, 9);
        vol.write_at(5000, &data).unwrap();
        drop(vol);
        let mut again = LuksVolume::open(&file, &pass).unwrap();
        let mut back = vec![0u8; data.len()];
        again.read_at(5000, &mut back).unwrap();
        assert!(back == data);
        assert_eq!(
            LuksVolume::open(&file, &SecretBytes::copy_from(b"nope"))
                .unwrap_err()
                .kind(),
            ErrorKind::Integrity
        );
        // The header we opened still satisfies cryptsetup.
        assert_eq!(test_passphrase(&t, &file, pass.expose_secret()), 0);
    }
}
