//! LUKS1 (XTS) both ways: cryptsetup and qemu-img read what we format,
//! see the passphrases we add and remove, and we open what they format.

use std::process::Command;

use keywarden::ErrorKind;
use keywarden::secret::SecretBytes;
use keywarden::volume::luks::{FormatOptions, LuksHeader, LuksVolume, Pbkdf2Cost};

use crate::{
    dump_volume_key, key_and_passphrase, pattern, payload_len, qemu_read, qemu_write, run,
    secret_file, sized_file, test_passphrase, tools,
};

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
