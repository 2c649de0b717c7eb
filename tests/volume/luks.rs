//! LUKS volumes we format: key slots, unaligned reads and writes, a known
//! master key, key material kept out of `Debug`, and bad input refused
//! (typed, the file untouched), existing data and crafted KDF costs
//! included.

use std::path::Path;

use keywarden::ErrorKind;
use keywarden::secret::SecretBytes;
use keywarden::volume::luks::{LuksHeader, LuksVolume, SECTOR};
use keywarden::volume::{KdfLimits, is_luks};

use crate::{FAST, fast, pass, sized_file};

#[test]
fn several_key_slots_add_and_remove() {
    let dir = tempfile::tempdir().unwrap();
    let file = sized_file(dir.path(), "slots.img", 3 << 20);
    let mut vol = LuksVolume::format(&file, &pass("p0"), &fast(32)).unwrap();
    for i in 1..8 {
        let slot = vol.add_passphrase(&pass(&format!("p{i}")), FAST).unwrap();
        assert_eq!(slot, i);
    }
    assert_eq!(
        vol.add_passphrase(&pass("p8"), FAST).unwrap_err().kind(),
        ErrorKind::Conflict
    );
    vol.write_at(100, b"data").unwrap();
    drop(vol);
    for i in 0..8 {
        let v = LuksVolume::open(&file, &pass(&format!("p{i}"))).unwrap();
        assert_eq!(v.opened_slot(), i);
    }
    let mut v = LuksVolume::open(&file, &pass("p3")).unwrap();
    assert_eq!(v.remove_passphrase(&pass("p5")).unwrap(), 5);
    assert_eq!(
        LuksVolume::open(&file, &pass("p5")).unwrap_err().kind(),
        ErrorKind::Integrity
    );
    // A freed slot is reused.
    assert_eq!(v.add_passphrase(&pass("p5b"), FAST).unwrap(), 5);
    for i in [0, 1, 2, 4, 5, 6, 7] {
        v.kill_slot(i).unwrap();
    }
    assert_eq!(
        v.remove_passphrase(&pass("p3")).unwrap_err().kind(),
        ErrorKind::Conflict,
        "the last passphrase stays"
    );
    let mut back = [0u8; 4];
    v.read_at(100, &mut back).unwrap();
    assert_eq!(&back, b"data");
}

#[test]
fn unaligned_reads_and_writes_keep_their_neighbours() {
    let dir = tempfile::tempdir().unwrap();
    let file = sized_file(dir.path(), "rw.img", 4 << 20);
    let mut vol = LuksVolume::format(&file, &pass("pw"), &fast(64)).unwrap();
    let len = vol.payload_len() as usize;
    let all: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
    vol.write_at(0, &all).unwrap();
    let patch = vec![0xEE; 1500];
    vol.write_at(511, &patch).unwrap();
    drop(vol);
    let mut vol = LuksVolume::open(&file, &pass("pw")).unwrap();
    let mut back = vec![0u8; len];
    vol.read_at(0, &mut back).unwrap();
    let mut expect = all.clone();
    expect[511..2011].copy_from_slice(&patch);
    assert!(back == expect);
    assert_eq!(
        vol.read_at(len as u64 - 1, &mut [0u8; 2])
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
    // The payload on disk is not the plaintext.
    let raw = std::fs::read(&file).unwrap();
    let start = vol.payload_start() as usize;
    assert!(raw[start..start + 4096] != expect[..4096]);
}

#[test]
fn a_known_master_key_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let file = sized_file(dir.path(), "kat.img", 3 << 20);
    let mk: Vec<u8> = (0u8..64).collect();
    let opts = fast(64).with_master_key(SecretBytes::copy_from(&mk));
    LuksVolume::format(&file, &pass("pw"), &opts).unwrap();
    let vol = LuksVolume::open(&file, &pass("pw")).unwrap();
    assert_eq!(vol.master_key().expose_secret(), mk.as_slice());
    let LuksHeader::V1(h) = vol.header() else {
        panic!("LUKS1")
    };
    assert_eq!(h.cipher_name(), "aes");
    assert_eq!(h.cipher_mode(), "xts-plain64");
    assert_eq!(h.hash_spec(), "sha256");
    assert_eq!(h.key_bytes, 64);
    // cryptsetup's layout: slots at 8 + 504*i, payload aligned to 1 MiB.
    assert_eq!(h.key_slots[1].key_material_offset, 8 + 504);
    assert_eq!(h.payload_offset, 4096);
}

#[test]
fn bad_input_is_typed_and_leaves_the_file_alone() {
    let dir = tempfile::tempdir().unwrap();
    let file = sized_file(dir.path(), "v.img", 3 << 20);
    LuksVolume::format(&file, &pass("right"), &fast(32)).unwrap();
    let good = std::fs::read(&file).unwrap();
    let check_unchanged = |p: &Path, want: &[u8]| assert!(std::fs::read(p).unwrap() == want);

    // Wrong passphrase.
    let e = LuksVolume::open(&file, &pass("wrong")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Integrity);
    check_unchanged(&file, &good);

    // Formatting a LUKS volume again is refused.
    let e = LuksVolume::format(&file, &pass("x"), &fast(32)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    check_unchanged(&file, &good);

    // Truncated inside the key material, and inside the header.
    for cut in [600u64, 200 * SECTOR, 4096 * SECTOR - 1] {
        let t = dir.path().join(format!("cut{cut}.img"));
        std::fs::write(&t, &good[..cut as usize]).unwrap();
        let e = LuksVolume::open(&t, &pass("right")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "cut at {cut}: {e}");
        check_unchanged(&t, &good[..cut as usize]);
    }
    let tiny = dir.path().join("tiny.img");
    std::fs::write(&tiny, &good[..100]).unwrap();
    assert!(LuksVolume::open(&tiny, &pass("right")).is_err());

    // Every single-byte corruption of the header: a typed error or (for
    // bytes the header does not check, such as salts) a refused passphrase.
    // Never a panic, never a changed file.
    let c = dir.path().join("corrupt.img");
    for at in (0..592).step_by(7) {
        let mut bad = good.clone();
        bad[at] ^= 0x5A;
        std::fs::write(&c, &bad).unwrap();
        if let Err(e) = LuksVolume::open(&c, &pass("right")) {
            assert!(
                matches!(
                    e.kind(),
                    ErrorKind::InvalidInput | ErrorKind::Integrity | ErrorKind::Unsupported
                ),
                "byte {at}: {e:?}"
            );
        }
        check_unchanged(&c, &bad);
    }

    // Not LUKS at all; too small to format.
    let zeros = sized_file(dir.path(), "zeros.img", 3 << 20);
    let e = LuksVolume::open(&zeros, &pass("right")).unwrap_err();
    assert_eq!(
        (e.kind(), e.field()),
        (ErrorKind::InvalidInput, Some("volume"))
    );
    let small = sized_file(dir.path(), "small.img", 1 << 20);
    let e = LuksVolume::format(&small, &pass("x"), &fast(32)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    check_unchanged(&small, &vec![0u8; 1 << 20]);
    let e = LuksVolume::format(&zeros, &pass("x"), &fast(20)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    check_unchanged(&zeros, &vec![0u8; 3 << 20]);
}

#[test]
fn key_material_never_shows_in_debug() {
    let dir = tempfile::tempdir().unwrap();
    let file = sized_file(dir.path(), "d.img", 3 << 20);
    let mk = [0xC3u8; 32];
    let opts = fast(32).with_master_key(SecretBytes::copy_from(&mk));
    let passphrase = pass("hunter2hunter2");
    let vol = LuksVolume::format(&file, &passphrase, &opts).unwrap();
    let shown = format!("{vol:?} {:?} {opts:?} {passphrase:?}", vol.header());
    for needle in ["c3c3", "C3C3", "195, 195", "hunter2"] {
        assert!(!shown.contains(needle), "{needle} in {shown}");
    }
}

#[test]
fn format_refuses_existing_data_without_the_overwrite_flag() {
    let dir = tempfile::tempdir().unwrap();
    let file = sized_file(dir.path(), "data.img", 3 << 20);
    // A filesystem-like signature where the LUKS header would go.
    let mut data = std::fs::read(&file).unwrap();
    data[1080..1082].copy_from_slice(&[0x53, 0xEF]);
    std::fs::write(&file, &data).unwrap();
    let e = LuksVolume::format(&file, &pass("pw"), &fast(32)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    assert!(e.context().contains("byte 1080"), "{e}");
    assert!(
        std::fs::read(&file).unwrap() == data,
        "the data was touched"
    );

    // With the flag the operator asked for it: the volume is formatted.
    LuksVolume::format(
        &file,
        &pass("pw"),
        &fast(32).danger_overwrite_existing_data(),
    )
    .unwrap();
    assert!(is_luks(&file).unwrap());
    // Even with the flag, a LUKS volume is formatted again only with it.
    let e = LuksVolume::format(&file, &pass("pw2"), &fast(32)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    LuksVolume::open(&file, &pass("pw")).unwrap();
}

/// The review's reproduction: a header's KDF cost is bounded before any
/// work. Today's defaults refuse u32::MAX iterations at once (instead of
/// spinning for most of an hour), naming the limit; callers may choose
/// their own limits.
#[test]
fn crafted_luks1_kdf_costs_are_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let file = sized_file(dir.path(), "kdf.img", 3 << 20);
    LuksVolume::format(&file, &pass("pw"), &fast(32)).unwrap();
    let good = std::fs::read(&file).unwrap();
    // Slot 0's iterations (offset 208 + 4), then the digest's (164).
    for at in [212usize, 164] {
        let mut bad = good.clone();
        bad[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        std::fs::write(&file, &bad).unwrap();
        let start = std::time::Instant::now();
        let e = LuksVolume::open(&file, &pass("pw")).unwrap_err();
        assert!(start.elapsed().as_secs() < 5, "work was done first");
        assert_eq!(
            (e.kind(), e.field()),
            (ErrorKind::TooLarge, Some("pbkdf2_iterations")),
            "{e}"
        );
        assert!(e.context().contains("KdfLimits::pbkdf2_iterations"), "{e}");
        assert!(std::fs::read(&file).unwrap() == bad);
    }
    std::fs::write(&file, &good).unwrap();
    let strict = KdfLimits {
        pbkdf2_iterations: 999,
        ..KdfLimits::default()
    };
    let e = LuksVolume::open_with_limits(&file, &pass("pw"), &strict).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TooLarge);
    LuksVolume::open_with_limits(&file, &pass("pw"), &KdfLimits::default()).unwrap();
}
