//! `keywarden volume …` for what issue 18 added: CBC ciphers, the
//! overwrite flag, and plain dm-crypt volumes (`--plain`), driven through
//! the built binary with an explicit `--config`.
#![cfg(feature = "cli")]

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use keywarden::secret::SecretBytes;
use keywarden::volume::{PlainOptions, PlainVolume};

struct Kw {
    dir: tempfile::TempDir,
}

impl Kw {
    fn new() -> Self {
        let kw = Kw {
            dir: tempfile::tempdir().unwrap(),
        };
        assert!(kw.run(&["init"]).status.success());
        kw
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_keywarden"))
            .arg("--config")
            .arg(self.path("keywarden.toml"))
            .args(args)
            .env_remove("KEYWARDEN_CONFIG")
            .env_remove("OS_PROJECT_ID")
            .env_remove("OS_USER_ID")
            .env_remove("OS_ROLES")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?} should fail");
        String::from_utf8(out.stderr).unwrap()
    }

    fn key(&self) -> String {
        let args = ["secret", "order", "create", "key", "-f", "value"];
        self.ok(&[&args[..], &["-c", "Secret href"]].concat())
            .trim()
            .to_owned()
    }
}

#[test]
fn cbc_format_and_the_overwrite_flag() {
    let kw = Kw::new();
    let key = kw.key();
    let vol = kw.path("cbc.img");
    let v = vol.to_str().unwrap();
    let mut data = vec![0u8; 3 << 20];
    data[600] = 1;
    std::fs::write(&vol, &data).unwrap();
    let base = [
        "volume",
        "format",
        v,
        "--key",
        &key,
        "--pbkdf2-iterations",
        "1000",
    ];
    let cbc = [&base[..], &["--cipher", "aes-cbc-essiv:sha256"]].concat();
    let err = kw.fails(&cbc);
    assert!(err.contains("holds data at byte 600"), "{err}");
    assert!(std::fs::read(&vol).unwrap() == data);
    let err = kw.fails(&[&cbc[..], &["--key-size", "512"]].concat());
    assert!(err.contains("128, 192 or 256"), "{err}");
    let out = kw.ok(&[&cbc[..], &["--danger-overwrite-existing-data"]].concat());
    assert!(out.contains("aes-cbc-essiv:sha256"), "{out}");
    assert!(out.contains("| Key bits       | 256"), "{out}");
    assert!(kw.ok(&["volume", "dump", v]).contains("cbc-essiv:sha256"));
}

#[test]
fn plain_volumes_write_and_read_back() {
    let kw = Kw::new();
    let key = kw.key();
    let vol = kw.path("plain.img");
    let v = vol.to_str().unwrap();
    std::fs::File::create(&vol)
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    let input = kw.path("in.raw");
    std::fs::write(&input, b"os-brick plain volume").unwrap();
    let i = input.to_str().unwrap();
    kw.ok(&["volume", "write", v, "--key", &key, "--input", i, "--plain"]);
    let output = kw.path("out.raw");
    let o = output.to_str().unwrap();
    kw.ok(&["volume", "read", v, "--key", &key, "--output", o, "--plain"]);
    let back = std::fs::read(&output).unwrap();
    assert_eq!(back.len(), 1 << 20);
    assert_eq!(&back[..21], b"os-brick plain volume");

    // The library's plain path, from the printed passphrase, agrees.
    let pass = SecretBytes::copy_from(kw.ok(&["volume", "passphrase", &key]).as_bytes());
    let mut lib = PlainVolume::open(&vol, &pass, &PlainOptions::default()).unwrap();
    let mut buf = [0u8; 21];
    lib.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"os-brick plain volume");

    // Another cipher reads noise: plain mode cannot tell.
    kw.ok(&[
        "volume",
        "read",
        v,
        "--key",
        &key,
        "--output",
        o,
        "--plain",
        "--plain-cipher",
        "aes-cbc-plain64",
    ]);
    assert_ne!(
        &std::fs::read(&output).unwrap()[..21],
        b"os-brick plain volume"
    );
    let err = kw.fails(&[
        "volume",
        "read",
        v,
        "--key",
        &key,
        "--output",
        o,
        "--plain-hash",
        "sha1",
    ]);
    assert!(err.contains("--plain"), "{err}");
    // The plain volume is not LUKS: the LUKS path refuses it.
    let err = kw.fails(&["volume", "read", v, "--key", &key, "--output", o]);
    assert!(err.contains("not a LUKS volume"), "{err}");
}
