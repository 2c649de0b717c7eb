//! The CBC ciphers both ways, LUKS1 with cryptsetup and qemu-img, and
//! LUKS2 written by `cryptsetup reencrypt`.

use std::process::Command;

use keywarden::volume::CipherSpec;
use keywarden::volume::luks::{FormatOptions, LuksVolume, Pbkdf2Cost};

use crate::{
    CBC, cryptsetup_encrypt_luks2, dump_volume_key, key_and_passphrase, pattern, payload_len,
    qemu_read, qemu_write, run, secret_file, sized_file, test_passphrase, tools,
};

/// QEMU's `-o` options for a cipher spec and key size.
fn qemu_cipher_opts(cipher: &str, key_bytes: usize) -> String {
    let ivgen = cipher.rsplit('-').next().unwrap();
    let ivgen = match ivgen.split_once(':') {
        Some((alg, hash)) => format!("ivgen-alg={alg},ivgen-hash-alg={hash}"),
        None => format!("ivgen-alg={ivgen}"),
    };
    format!("cipher-alg=aes-{},cipher-mode=cbc,{ivgen}", key_bytes * 8)
}

#[test]
fn cbc_luks1_volumes_cryptsetup_formats_are_opened_by_us() {
    let Some(t) = tools() else { return };
    for (cipher, key_bytes) in CBC {
        let dir = tempfile::tempdir().unwrap();
        let file = sized_file(dir.path(), "cs.img", 3 << 20);
        let (_, pass) = key_and_passphrase();
        let (code, _, err) = run(
            Command::new(&t.cryptsetup)
                .args([
                    "luksFormat",
                    "--type",
                    "luks1",
                    "--batch-mode",
                    "--key-file=-",
                ])
                .args(["--cipher", cipher, "--hash", "sha256"])
                .args(["--pbkdf-force-iterations", "1000", "--key-size"])
                .arg((key_bytes * 8).to_string())
                .arg(&file),
            pass.expose_secret(),
        );
        assert_eq!(code, 0, "luksFormat {cipher} failed: {err}");
        let plain = pattern(payload_len(&file), key_bytes as u8);
        qemu_write(&t, dir.path(), &file, &pass, &plain);
        let mut vol = LuksVolume::open(&file, &pass).unwrap();
        assert_eq!(vol.cipher().to_string(), cipher);
        assert_eq!(
            vol.master_key().expose_secret(),
            dump_volume_key(&t, &file, pass.expose_secret()).as_slice()
        );
        let mut back = vec![0u8; plain.len()];
        vol.read_at(0, &mut back).unwrap();
        assert!(
            back == plain,
            "{cipher} {key_bytes}: qemu-img's plaintext differs"
        );
    }
}

#[test]
fn cbc_luks1_volumes_we_format_are_read_by_cryptsetup_and_qemu() {
    let Some(t) = tools() else { return };
    for (cipher, key_bytes) in CBC {
        let dir = tempfile::tempdir().unwrap();
        let file = sized_file(dir.path(), "ours.img", 3 << 20);
        let (_, pass) = key_and_passphrase();
        let opts = FormatOptions::default()
            .with_cipher(cipher.parse::<CipherSpec>().unwrap())
            .with_key_bytes(key_bytes)
            .with_cost(Pbkdf2Cost::Iterations(1000));
        let mut vol = LuksVolume::format(&file, &pass, &opts).unwrap();
        let plain = pattern(vol.payload_len() as usize, 5);
        vol.write_at(0, &plain).unwrap();
        vol.sync().unwrap();
        let master = vol.master_key().expose_secret().to_vec();
        drop(vol);
        let (_, dump, _) = run(Command::new(&t.cryptsetup).arg("luksDump").arg(&file), b"");
        let (_, mode) = cipher.split_once('-').unwrap();
        assert!(dump.contains(&format!("Cipher mode:   \t{mode}")), "{dump}");
        assert_eq!(test_passphrase(&t, &file, pass.expose_secret()), 0);
        assert_eq!(dump_volume_key(&t, &file, pass.expose_secret()), master);
        let back = qemu_read(&t, dir.path(), &file, &pass);
        assert!(
            back == plain,
            "{cipher} {key_bytes}: qemu-img read different plaintext"
        );
    }
}

#[test]
fn cbc_volumes_qemu_img_creates_are_opened_by_us() {
    let Some(t) = tools() else { return };
    for (cipher, key_bytes) in CBC {
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
                    "key-secret=sec0,iter-time=10,hash-alg=sha256,{}",
                    qemu_cipher_opts(cipher, key_bytes)
                ))
                .arg(&file)
                .arg("1M"),
            b"",
        );
        assert_eq!(code, 0, "qemu-img create {cipher} failed: {err}");
        let plain = pattern(1 << 20, 11);
        qemu_write(&t, dir.path(), &file, &pass, &plain);
        let mut vol = LuksVolume::open(&file, &pass).unwrap();
        assert_eq!(vol.master_key().len(), key_bytes);
        let mut back = vec![0u8; plain.len()];
        vol.read_at(0, &mut back).unwrap();
        assert!(
            back == plain,
            "{cipher} {key_bytes}: plaintext qemu-img wrote differs"
        );
    }
}

#[test]
fn cbc_luks2_volumes_cryptsetup_writes_are_read_by_us() {
    let Some(t) = tools() else { return };
    for (cipher, key_bytes) in CBC {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("l2.img");
        let (_, pass) = key_and_passphrase();
        let plain =
            cryptsetup_encrypt_luks2(&t, &file, pass.expose_secret(), cipher, key_bytes * 8, &[]);
        let mut vol = LuksVolume::open(&file, &pass).unwrap();
        assert_eq!(vol.header().version(), 2);
        assert_eq!(vol.cipher().to_string(), cipher);
        let mut back = vec![0u8; plain.len()];
        vol.read_at(0, &mut back).unwrap();
        assert!(
            back == plain,
            "{cipher} {key_bytes}: cryptsetup's plaintext differs"
        );
    }
}
