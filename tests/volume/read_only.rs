//! Opening volumes read-only (cryptsetup's `--readonly`): a device or file
//! without write access opens for reading, and writes through a read-only
//! volume are refused, typed, with the file untouched.

use std::fs::{OpenOptions, Permissions};
use std::io::{Read as _, Seek as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use keywarden::ErrorKind;
use keywarden::volume::luks::{LuksVersion, LuksVolume, SectorCipher};
use keywarden::volume::{PlainOptions, PlainVolume, plain_key};

use crate::{FAST, fast, pass, sized_file};

/// Whether this process is refused write access to `path` (a file whose
/// mode denies it, unless we run as root; a running executable).
fn os_refuses_writes(path: &Path) -> bool {
    OpenOptions::new().write(true).open(path).is_err()
}

#[test]
fn luks_volumes_open_read_only_read_and_refuse_writes() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..3000).map(|i| (i * 13 % 251) as u8).collect();
    for version in [LuksVersion::Luks1, LuksVersion::Luks2] {
        let what = format!("{version:?}");
        let file = sized_file(dir.path(), &format!("{what}.img"), 3 << 20);
        let mut vol =
            LuksVolume::format(&file, &pass("pw"), &fast(32).with_version(version)).unwrap();
        assert!(!vol.is_read_only());
        vol.write_at(700, &data).unwrap();
        drop(vol);
        std::fs::set_permissions(&file, Permissions::from_mode(0o444)).unwrap();
        let bytes = std::fs::read(&file).unwrap();

        if os_refuses_writes(&file) {
            let e = LuksVolume::open(&file, &pass("pw")).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Storage, "{what}: {e}");
            assert!(e.context().contains("open_read_only"), "{what}: {e}");
        } else {
            eprintln!(
                "NOTE: running as root, a 0444 file is still writable; the typed refusals are checked"
            );
        }
        let mut ro = LuksVolume::open_read_only(&file, &pass("pw")).unwrap();
        assert!(ro.is_read_only(), "{what}");
        let mut back = vec![0u8; data.len()];
        ro.read_at(700, &mut back).unwrap();
        assert!(back == data, "{what}: reads differently");
        let e = ro.write_at(0, b"x").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{what}: {e}");
        if version == LuksVersion::Luks1 {
            for e in [
                ro.add_passphrase(&pass("second"), FAST).unwrap_err(),
                ro.remove_passphrase(&pass("pw")).unwrap_err(),
                ro.kill_slot(0).unwrap_err(),
            ] {
                assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{what}: {e}");
            }
        }
        drop(ro);
        assert!(
            std::fs::read(&file).unwrap() == bytes,
            "{what}: file changed"
        );
        // The wrong passphrase is still refused.
        let e = LuksVolume::open_read_only(&file, &pass("nope")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Integrity);
    }
}

/// A file this process cannot open for writing even as root: the running
/// test executable (`ETXTBSY`). Plain mode has no header, so any readable
/// file is a plain volume: read-write open fails, read-only open reads
/// exactly the sectors decrypted under cryptsetup's plain key.
#[test]
fn plain_volumes_open_read_only_where_writing_is_refused() {
    let exe = std::env::current_exe().unwrap();
    let opts = PlainOptions::default();
    if os_refuses_writes(&exe) {
        let e = PlainVolume::open(&exe, &pass("pw"), &opts).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Storage, "{e}");
    } else {
        eprintln!("NOTE: this kernel lets a running executable be opened for writing");
    }
    let mut ro = PlainVolume::open_read_only(&exe, &pass("pw"), &opts).unwrap();
    assert!(ro.is_read_only());
    let mut back = vec![0u8; 4096];
    ro.read_at(512, &mut back).unwrap();
    let mut expect = vec![0u8; 4096];
    let mut raw = std::fs::File::open(&exe).unwrap();
    raw.seek(std::io::SeekFrom::Start(512)).unwrap();
    raw.read_exact(&mut expect).unwrap();
    let key = plain_key(&pass("pw"), opts.hash, opts.key_bytes).unwrap();
    SectorCipher::new(key.expose_secret(), opts.cipher, 512)
        .unwrap()
        .decrypt(&mut expect, 1)
        .unwrap();
    assert!(back == expect);
    let e = ro.write_at(0, &[0u8; 512]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");

    // A writable file opened read-only refuses writes too, untouched.
    let dir = tempfile::tempdir().unwrap();
    let file = sized_file(dir.path(), "plain.img", 1 << 20);
    let mut ro = PlainVolume::open_read_only(&file, &pass("pw"), &opts).unwrap();
    let e = ro.write_at(0, b"data").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    drop(ro);
    assert!(std::fs::read(&file).unwrap().iter().all(|&b| b == 0));
}
