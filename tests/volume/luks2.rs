//! LUKS2 volumes we format, what the format refuses, and LUKS2 on first
//! attach.

use keywarden::ErrorKind;
use keywarden::volume::luks::{Argon2Cost, Luks2Kdf, LuksHeader, LuksVersion, LuksVolume};
use keywarden::volume::{AttachOptions, CipherSpec, EncryptionSpec, VolumeKeys, attach, is_luks};

use crate::common::{Fixture, ctx};
use crate::{FAST, fast, pass, sized_file};

/// A small Argon2id cost, for tests.
const SMALL_ARGON2: Argon2Cost = Argon2Cost {
    time: 1,
    memory_kib: 64,
    cpus: 1,
};

#[test]
fn luks2_volumes_we_format_open_read_and_write() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (CipherSpec::AES_XTS_PLAIN64, 64usize, 512u32, None),
        (CipherSpec::AES_XTS_PLAIN64, 32, 4096, Some(SMALL_ARGON2)),
        (
            CipherSpec::AES_CBC_ESSIV_SHA256,
            32,
            512,
            Some(SMALL_ARGON2),
        ),
        (CipherSpec::AES_CBC_PLAIN64, 16, 4096, None),
        (CipherSpec::AES_CBC_PLAIN, 32, 512, None),
    ];
    for (cipher, key_bytes, sector_size, argon2) in cases {
        let name = format!("{cipher}-{key_bytes}-{sector_size}.img");
        let file = sized_file(dir.path(), &name, 3 << 20);
        let mut opts = fast(key_bytes)
            .with_version(LuksVersion::Luks2)
            .with_cipher(cipher)
            .with_argon2(argon2);
        opts.sector_size = sector_size;
        let mut vol = LuksVolume::format(&file, &pass("pw"), &opts).unwrap();
        assert_eq!(vol.header().version(), 2);
        assert_eq!(vol.sector_size(), sector_size as usize);
        let master = vol.master_key().expose_secret().to_vec();
        let data: Vec<u8> = (0..3 * sector_size as usize)
            .map(|i| (i % 251) as u8)
            .collect();
        vol.write_at(u64::from(sector_size), &data).unwrap();
        drop(vol);

        assert!(is_luks(&file).unwrap());
        let mut vol = LuksVolume::open(&file, &pass("pw")).unwrap();
        let LuksHeader::V2(h) = vol.header() else {
            panic!("LUKS2")
        };
        assert_eq!(h.segments[0].encryption, cipher.to_string());
        assert_eq!(h.segments[0].sector_size, sector_size);
        assert_eq!(h.keyslots.len(), 1);
        assert_eq!(
            matches!(h.keyslots[0].kdf, Luks2Kdf::Argon2 { .. }),
            argon2.is_some(),
            "{name}"
        );
        assert_eq!(vol.master_key().expose_secret(), master.as_slice());
        let mut back = vec![0u8; data.len()];
        vol.read_at(u64::from(sector_size), &mut back).unwrap();
        assert!(back == data, "{name}");
        assert_eq!(
            LuksVolume::open(&file, &pass("not it")).unwrap_err().kind(),
            ErrorKind::Integrity
        );
        // Formatted once: a second format is refused and changes nothing.
        let before = std::fs::read(&file).unwrap();
        let e = LuksVolume::format(&file, &pass("pw"), &opts).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
        assert!(std::fs::read(&file).unwrap() == before);
    }
}

#[test]
fn luks2_format_refuses_what_it_cannot_lay_out() {
    let dir = tempfile::tempdir().unwrap();
    let luks2 = fast(64).with_version(LuksVersion::Luks2);
    // The headers, the key-slot area and 1 MiB alignment fill 1 MiB.
    let small = sized_file(dir.path(), "small.img", 1 << 20);
    let e = LuksVolume::format(&small, &pass("pw"), &luks2).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(
        e.to_string().contains("too small for a LUKS2 volume"),
        "{e}"
    );
    // A payload that is not whole 4096-byte sectors.
    let odd = sized_file(dir.path(), "odd.img", (2 << 20) + 512);
    let mut opts = luks2.clone();
    opts.sector_size = 4096;
    let e = LuksVolume::format(&odd, &pass("pw"), &opts).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    opts.sector_size = 1000;
    let e = LuksVolume::format(&odd, &pass("pw"), &opts).unwrap_err();
    assert_eq!(e.field(), Some("sector_size"), "{e}");
    // LUKS1 has 512-byte sectors only.
    let mut v1 = fast(64);
    v1.sector_size = 4096;
    let e = LuksVolume::format(&odd, &pass("pw"), &v1).unwrap_err();
    assert_eq!(
        (e.kind(), e.field()),
        (ErrorKind::Unsupported, Some("sector_size"))
    );
    for f in [&small, &odd] {
        assert!(
            std::fs::read(f).unwrap().iter().all(|&b| b == 0),
            "untouched"
        );
    }
}

#[test]
fn a_luks2_first_attach_formats_luks2_and_later_attaches_open_it() {
    let fx = Fixture::new();
    let owner = ctx("alice", "p1", &["creator"]);
    let spec =
        EncryptionSpec::parse("luks2", "front-end", Some("aes-xts-plain64"), Some("512")).unwrap();
    let vol = VolumeKeys::new(&fx.store)
        .create_volume(&owner, &spec)
        .unwrap();
    let file = sized_file(fx.dir.path(), "vol.img", 4 << 20);
    let opts = AttachOptions {
        format_cost: FAST,
        luks2_cost: SMALL_ARGON2,
    };
    let meta = vol.encryption_metadata();
    let mut first = attach(&fx.store, &owner, vol.id, &meta, &file, &opts).unwrap();
    assert!(first.formatted);
    let LuksHeader::V2(h) = first.volume.header() else {
        panic!("the luks2 provider formats LUKS2")
    };
    assert!(matches!(
        &h.keyslots[0].kdf,
        Luks2Kdf::Argon2 { variant, time: 1, memory_kib: 64, .. } if variant == "argon2id"
    ));
    assert_eq!(first.volume.master_key().len(), 64);
    first.volume.write_at(0, b"luks2 payload").unwrap();
    drop(first);
    let mut again = attach(&fx.store, &owner, vol.id, &meta, &file, &opts).unwrap();
    assert!(!again.formatted);
    let mut back = [0u8; 13];
    again.volume.read_at(0, &mut back).unwrap();
    assert_eq!(&back, b"luks2 payload");
}
