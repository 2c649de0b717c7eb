//! LUKS2 both ways with cryptsetup, crafted headers refused, and a zeroed
//! primary header opened through the secondary, never reformatted.

use std::process::Command;

use keywarden::ErrorKind;
use keywarden::secret::SecretBytes;
use keywarden::volume::luks::{Argon2Cost, FormatOptions, LuksVersion, LuksVolume, Pbkdf2Cost};
use keywarden::volume::{CipherSpec, EncryptionSpec, VolumeKeys, fetch_passphrase};

use crate::common;
use crate::luks2_headers::{
    PRIMARY_DAMAGE, assert_attach_never_formats, assert_crafted_headers_refused,
    assert_damaged_luks2_is_luks, damage_primary,
};
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

/// The review's reproductions of crafted LUKS2 headers, on a volume
/// cryptsetup formatted: each is a typed error (never a panic or a wrap,
/// never hours of KDF or gigabytes of memory), and the file is left as it
/// was. tests/volume repeats them on a volume we format, without tools.
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
    assert_crafted_headers_refused(&file, &pass);
}

/// The review's reproduction: a cryptsetup LUKS2 image with its first 512
/// bytes zeroed (and the other primary damage: the version field, the
/// checksum, the JSON) is still LUKS, opens through the secondary header
/// and reads what was written, and neither format nor the attach path
/// formats it.
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
    let good = std::fs::read(&file).unwrap();
    for damage in PRIMARY_DAMAGE {
        let mut bytes = good.clone();
        damage_primary(&mut bytes, damage);
        std::fs::write(&file, &bytes).unwrap();
        let what = format!("cryptsetup's volume, {damage:?}");
        assert_damaged_luks2_is_luks(&file, &bytes, &pass, 0, &plain, &what);
        assert_attach_never_formats(&fx, &vol, &file, &what);
    }
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
