//! LUKS2 both ways with cryptsetup, crafted headers refused, and a zeroed
//! primary header opened through the secondary, never reformatted.

use std::path::Path;
use std::process::Command;

use keywarden::ErrorKind;
use keywarden::secret::SecretBytes;
use keywarden::volume::luks::{Argon2Cost, FormatOptions, LuksVersion, LuksVolume, Pbkdf2Cost};
use keywarden::volume::{
    AttachOptions, CipherSpec, EncryptionSpec, VolumeKeys, attach, fetch_passphrase, is_luks,
};

use crate::common;
use crate::{
    cryptsetup_encrypt_luks2, dump_volume_key, key_and_passphrase, pattern, run, sized_file,
    test_passphrase, tools,
};

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

/// Overwrites the JSON metadata of both LUKS2 header copies (16 KiB each,
/// as cryptsetup writes them by default) and recomputes their checksums.
fn craft_luks2(file: &Path, edit: impl Fn(&mut serde_json::Value)) {
    use sha2::{Digest, Sha256};
    let mut bytes = std::fs::read(file).unwrap();
    for at in [0usize, 0x4000] {
        let area = &mut bytes[at..at + 0x4000];
        let json_end = area[4096..].iter().position(|&c| c == 0).unwrap() + 4096;
        let mut json: serde_json::Value = serde_json::from_slice(&area[4096..json_end]).unwrap();
        edit(&mut json);
        let text = serde_json::to_vec(&json).unwrap();
        area[4096..].fill(0);
        area[4096..4096 + text.len()].copy_from_slice(&text);
        area[448..512].fill(0);
        let sum = Sha256::digest(&*area);
        area[448..480].copy_from_slice(&sum);
    }
    std::fs::write(file, bytes).unwrap();
}

/// The review's reproductions of crafted LUKS2 headers: each is a typed
/// error (never a panic or a wrap, never hours of KDF or gigabytes of
/// memory), and the file is left as it was.
#[test]
fn crafted_luks2_headers_are_refused() {
    let Some(t) = tools() else { return };
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
            .args(["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"])
            .arg(&file),
        pass.expose_secret(),
    );
    assert_eq!(code, 0, "luksFormat failed: {err}");
    let good = std::fs::read(&file).unwrap();
    type Edit = fn(&mut serde_json::Value);
    let cases: [(&str, Edit, ErrorKind, &str); 7] = [
        (
            "segment size near u64::MAX",
            |j| j["segments"]["0"]["size"] = "18446744073709551000".into(),
            ErrorKind::InvalidInput,
            "volume",
        ),
        (
            "iv_tweak near u64::MAX",
            |j| j["segments"]["0"]["iv_tweak"] = "18446744073709551000".into(),
            ErrorKind::InvalidInput,
            "iv_tweak",
        ),
        (
            "segment over the header",
            |j| j["segments"]["0"]["offset"] = "0".into(),
            ErrorKind::InvalidInput,
            "segments",
        ),
        (
            "key-slot area past the device",
            |j| j["keyslots"]["0"]["area"]["offset"] = "18446744073709550000".into(),
            ErrorKind::InvalidInput,
            "volume",
        ),
        (
            "4 billion PBKDF2 iterations",
            |j| j["keyslots"]["0"]["kdf"]["iterations"] = 4_294_967_295u32.into(),
            ErrorKind::TooLarge,
            "pbkdf2_iterations",
        ),
        (
            "argon2 with 4 GiB",
            |j| {
                j["keyslots"]["0"]["kdf"] = serde_json::json!({
                    "type": "argon2id", "time": 4, "memory": 4194304, "cpus": 1,
                    "salt": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
                })
            },
            ErrorKind::TooLarge,
            "argon2_memory_kib",
        ),
        (
            "argon2 for a million passes",
            |j| {
                j["keyslots"]["0"]["kdf"] = serde_json::json!({
                    "type": "argon2id", "time": 1000000, "memory": 1024, "cpus": 1,
                    "salt": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
                })
            },
            ErrorKind::TooLarge,
            "argon2_time",
        ),
    ];
    for (what, edit, kind, field) in cases {
        std::fs::write(&file, &good).unwrap();
        craft_luks2(&file, edit);
        let crafted = std::fs::read(&file).unwrap();
        let start = std::time::Instant::now();
        let e = LuksVolume::open(&file, &pass).unwrap_err();
        assert!(
            start.elapsed().as_secs() < 10,
            "{what}: work was done first"
        );
        assert_eq!((e.kind(), e.field()), (kind, Some(field)), "{what}: {e}");
        assert!(
            std::fs::read(&file).unwrap() == crafted,
            "{what}: file changed"
        );
    }
}

/// The review's reproduction: a cryptsetup LUKS2 image with its first 512
/// bytes zeroed is still LUKS, opens through the secondary header and reads
/// what was written, and neither format nor the attach path formats it.
#[test]
fn a_luks2_volume_with_a_zeroed_primary_header_opens_and_is_never_reformatted() {
    let Some(t) = tools() else { return };
    let fx = common::Fixture::new();
    let owner = common::ctx("alice", "p1", &["creator"]);
    let spec =
        EncryptionSpec::parse("luks2", "front-end", Some("aes-xts-plain64"), Some("512")).unwrap();
    let vol = VolumeKeys::new(&fx.store)
        .create_volume(&owner, &spec)
        .unwrap();
    let pass = fetch_passphrase(&fx.store, &owner, &vol.key_id).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("damaged.img");
    let plain =
        cryptsetup_encrypt_luks2(&t, &file, pass.expose_secret(), "aes-xts-plain64", 512, &[]);
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[..512].fill(0);
    std::fs::write(&file, &bytes).unwrap();

    assert!(is_luks(&file).unwrap());
    let mut opened = LuksVolume::open(&file, &pass).unwrap();
    let mut back = vec![0u8; plain.len()];
    opened.read_at(0, &mut back).unwrap();
    assert!(back == plain);
    drop(opened);
    let e = LuksVolume::format(
        &file,
        &pass,
        &FormatOptions::default().with_cost(Pbkdf2Cost::Iterations(1000)),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    let attached = attach(
        &fx.store,
        &owner,
        vol.id,
        &vol.encryption_metadata(),
        &file,
        &AttachOptions {
            format_cost: Pbkdf2Cost::Iterations(1000),
            ..AttachOptions::default()
        },
    )
    .unwrap();
    assert!(!attached.formatted);
    drop(attached);
    assert!(
        std::fs::read(&file).unwrap() == bytes,
        "the volume was changed"
    );
}

/// Volumes we format as LUKS2, for XTS and the CBC ciphers, PBKDF2 and
/// Argon2id, 512- and 4096-byte sectors: cryptsetup accepts the header,
/// opens the key slot and finds our master key, and `cryptsetup reencrypt`
/// (offline, in user space) decrypts our payload correctly: after it moved
/// the volume to a new key, we read back the very bytes we wrote.
#[test]
fn luks2_volumes_we_format_are_read_by_cryptsetup() {
    let Some(t) = tools() else { return };
    let argon2 = Some(Argon2Cost {
        time: 1,
        memory_kib: 64,
        cpus: 1,
    });
    let cases = [
        (CipherSpec::AES_XTS_PLAIN64, 64usize, 512u32, None),
        (CipherSpec::AES_XTS_PLAIN64, 32, 4096, argon2),
        (CipherSpec::AES_CBC_ESSIV_SHA256, 16, 512, None),
        (CipherSpec::AES_CBC_ESSIV_SHA256, 32, 512, argon2),
        (CipherSpec::AES_CBC_PLAIN64, 32, 4096, None),
        (CipherSpec::AES_CBC_PLAIN, 16, 512, None),
    ];
    for (cipher, key_bytes, sector_size, argon2) in cases {
        let case = format!("{cipher} {key_bytes}-byte key, {sector_size}-byte sectors");
        let dir = tempfile::tempdir().unwrap();
        let file = sized_file(dir.path(), "ours2.img", 4 << 20);
        let (_, pass) = key_and_passphrase();
        let mut opts = FormatOptions::default()
            .with_version(LuksVersion::Luks2)
            .with_cipher(cipher)
            .with_key_bytes(key_bytes)
            .with_cost(Pbkdf2Cost::Iterations(1000))
            .with_argon2(argon2);
        opts.sector_size = sector_size;
        let mut vol = LuksVolume::format(&file, &pass, &opts).unwrap();
        let plain = pattern(
            vol.payload_len() as usize,
            key_bytes as u8 ^ sector_size as u8,
        );
        vol.write_at(0, &plain).unwrap();
        vol.sync().unwrap();
        let master = vol.master_key().expose_secret().to_vec();
        drop(vol);

        let (code, dump, err) = run(Command::new(&t.cryptsetup).arg("luksDump").arg(&file), b"");
        assert_eq!(code, 0, "{case}: luksDump refused our header: {err}");
        assert!(dump.contains("Version:       \t2"), "{case}: {dump}");
        assert!(
            dump.contains(&format!("cipher: {cipher}")),
            "{case}: {dump}"
        );
        assert!(
            dump.contains(&format!("sector: {sector_size} [bytes]")),
            "{case}: {dump}"
        );
        let kdf = if argon2.is_some() {
            "argon2id"
        } else {
            "pbkdf2"
        };
        assert!(
            dump.contains(&format!("PBKDF:      {kdf}")),
            "{case}: {dump}"
        );
        assert_eq!(
            test_passphrase(&t, &file, pass.expose_secret()),
            0,
            "{case}"
        );
        assert_ne!(
            test_passphrase(&t, &file, b"not the passphrase"),
            0,
            "{case}"
        );
        assert_eq!(
            dump_volume_key(&t, &file, pass.expose_secret()),
            master,
            "{case}"
        );

        let (code, _, err) = run(
            Command::new(&t.cryptsetup)
                .args(["reencrypt", "--force-offline-reencrypt", "--disable-locks"])
                .args(["--batch-mode", "--key-file=-", "--pbkdf", "pbkdf2"])
                .args(["--pbkdf-force-iterations", "1000"])
                .arg(&file),
            pass.expose_secret(),
        );
        assert_eq!(code, 0, "{case}: cryptsetup reencrypt failed: {err}");
        let mut vol = LuksVolume::open(&file, &pass).unwrap();
        assert_ne!(
            vol.master_key().expose_secret(),
            master.as_slice(),
            "{case}"
        );
        let mut back = vec![0u8; plain.len()];
        vol.read_at(0, &mut back).unwrap();
        assert!(back == plain, "{case}: cryptsetup read different plaintext");
    }
}
