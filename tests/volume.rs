//! Encrypted volumes without outside tools: the key lifecycle over the
//! store, attach, LUKS refusing bad input without touching the file, the
//! CBC ciphers and plain mode.

mod common;

use std::path::{Path, PathBuf};

use common::{Fixture, ctx};
use keywarden::ErrorKind;
use keywarden::model::SecretType;
use keywarden::secret::SecretBytes;
use keywarden::store::ListQuery;
use keywarden::volume::luks::{
    Argon2Cost, FormatOptions, Luks2Kdf, LuksHeader, LuksVersion, LuksVolume, Pbkdf2Cost, SECTOR,
};
use keywarden::volume::{
    AttachOptions, CipherSpec, EncryptionSpec, KdfLimits, PlainHash, PlainOptions, PlainVolume,
    VolumeKeys, attach, attach_plain, fetch_passphrase, hex_passphrase, is_luks, plain_key,
};

const FAST: Pbkdf2Cost = Pbkdf2Cost::Iterations(1000);

fn fast(key_bytes: usize) -> FormatOptions {
    FormatOptions::default()
        .with_key_bytes(key_bytes)
        .with_cost(FAST)
}

fn sized_file(dir: &Path, name: &str, bytes: u64) -> PathBuf {
    let p = dir.join(name);
    std::fs::File::create(&p).unwrap().set_len(bytes).unwrap();
    p
}

fn pass(text: &str) -> SecretBytes {
    SecretBytes::copy_from(text.as_bytes())
}

#[test]
fn create_needs_the_creator_role_and_lists_the_key() {
    let fx = Fixture::new();
    let keys = VolumeKeys::new(&fx.store);
    let spec = EncryptionSpec::luks_default();
    let observer = ctx("olga", "p1", &["observer"]);
    let e = keys.create_volume(&observer, &spec).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);

    let owner = ctx("alice", "p1", &["creator"]);
    let vol = keys.create_volume(&owner, &spec).unwrap();
    let meta = fx.store.secret(&owner, &vol.key_id).unwrap();
    assert_eq!(meta.secret_type, SecretType::Symmetric);
    assert_eq!(meta.algorithm.as_deref(), Some("aes"));
    assert_eq!(meta.bit_length, Some(256));
    let listed = fx
        .store
        .list_secrets(&owner, &ListQuery::default())
        .unwrap();
    assert!(listed.items.iter().any(|m| m.id == vol.key_id));
    let key = fx.store.get_object(&owner, &vol.key_id).unwrap();
    assert_eq!(key.expose_secret().len(), 32);
    // castellan drops the order once the key is made, where the policy
    // lets the caller (Barbican: admin only; a creator's order stays).
    let admin = ctx("root", "p1", &["admin"]);
    keys.create_volume(&admin, &spec).unwrap();
    assert_eq!(fx.store.list_orders(&admin, None, None).unwrap().total, 1);
}

#[test]
fn a_512_bit_xts_volume_type_gets_a_64_byte_key() {
    let fx = Fixture::new();
    let spec =
        EncryptionSpec::parse("luks", "front-end", Some("aes-xts-plain64"), Some("512")).unwrap();
    let owner = ctx("alice", "p1", &["creator"]);
    let vol = VolumeKeys::new(&fx.store)
        .create_volume(&owner, &spec)
        .unwrap();
    let key = fx.store.get_object(&owner, &vol.key_id).unwrap();
    assert_eq!(key.expose_secret().len(), 64);
}

#[test]
fn snapshots_share_clones_copy_and_delete_waits_for_snapshots() {
    let fx = Fixture::new();
    let keys = VolumeKeys::new(&fx.store);
    let owner = ctx("alice", "p1", &["creator"]);
    let vol = keys
        .create_volume(&owner, &EncryptionSpec::luks_default())
        .unwrap();
    let snap = keys.snapshot(&vol);
    assert_eq!(snap.key_id, vol.key_id);

    let from_snap = keys.volume_from_snapshot(&owner, &snap).unwrap();
    let clone = keys.clone_volume(&owner, &vol).unwrap();
    let backup = keys.backup_key(&owner, &vol).unwrap();
    let original = fx.store.get_object(&owner, &vol.key_id).unwrap();
    for id in [from_snap.key_id, clone.key_id, backup] {
        assert_ne!(id, vol.key_id);
        let copy = fx.store.get_object(&owner, &id).unwrap();
        assert_eq!(copy.expose_secret(), original.expose_secret());
        assert_eq!(copy.algorithm(), original.algorithm());
        assert_eq!(copy.bit_length(), original.bit_length());
        assert_eq!(copy.secret_type(), original.secret_type());
    }

    let e = keys
        .delete_volume(&owner, &vol, std::slice::from_ref(&snap))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert!(fx.store.secret(&owner, &vol.key_id).is_ok());
    keys.delete_snapshot(snap);
    keys.delete_volume(&owner, &vol, &[]).unwrap();
    assert_eq!(
        fx.store.secret(&owner, &vol.key_id).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    // A key already gone is not an error (cinder ignores it too).
    keys.delete_volume(&owner, &vol, &[]).unwrap();
    // The clone's key lives on.
    assert!(fx.store.get_object(&owner, &clone.key_id).is_ok());
}

#[test]
fn delete_retries_with_the_service_context() {
    let fx = Fixture::new();
    let owner = ctx("alice", "p1", &["creator"]);
    let vol = VolumeKeys::new(&fx.store)
        .create_volume(&owner, &EncryptionSpec::luks_default())
        .unwrap();
    // An observer of the project may not delete; the service admin may.
    let observer = ctx("olga", "p1", &["observer"]);
    let plain = VolumeKeys::new(&fx.store);
    assert_eq!(
        plain
            .delete_volume(&observer, &vol, &[])
            .unwrap_err()
            .kind(),
        ErrorKind::PermissionDenied
    );
    let with_service =
        VolumeKeys::new(&fx.store).with_service_context(ctx("cinder", "p1", &["admin"]));
    with_service.delete_volume(&observer, &vol, &[]).unwrap();
    assert!(fx.store.secret(&owner, &vol.key_id).is_err());
}

#[test]
fn transfer_moves_the_key_to_the_recipient() {
    let fx = Fixture::new();
    let keys = VolumeKeys::new(&fx.store);
    let alice = ctx("alice", "p1", &["creator"]);
    let bob = ctx("bob", "p2", &["creator"]);
    let mut vol = keys
        .create_volume(&alice, &EncryptionSpec::luks_default())
        .unwrap();
    let bytes = fx
        .store
        .get_object(&alice, &vol.key_id)
        .unwrap()
        .expose_secret()
        .to_vec();
    let mut snaps = vec![keys.snapshot(&vol)];
    let old = vol.key_id;
    keys.transfer(&alice, &bob, &mut vol, &mut snaps).unwrap();
    assert_ne!(vol.key_id, old);
    assert_eq!(snaps[0].key_id, vol.key_id);
    assert_eq!(
        fx.store
            .get_object(&bob, &vol.key_id)
            .unwrap()
            .expose_secret(),
        bytes.as_slice()
    );
    assert!(fx.store.secret(&alice, &old).is_err());
}

#[test]
fn first_attach_formats_later_attaches_open_and_never_reformat() {
    let fx = Fixture::new();
    let owner = ctx("alice", "p1", &["creator"]);
    let keys = VolumeKeys::new(&fx.store);
    let vol = keys
        .create_volume(&owner, &EncryptionSpec::luks_default())
        .unwrap();
    let file = sized_file(fx.dir.path(), "vol.img", 3 << 20);
    let opts = AttachOptions {
        format_cost: FAST,
        ..AttachOptions::default()
    };

    let mut first = attach(
        &fx.store,
        &owner,
        vol.id,
        &vol.encryption_metadata(),
        &file,
        &opts,
    )
    .unwrap();
    assert!(first.formatted);
    // key_size 256 with cryptsetup's meaning: AES-128-XTS, a 32-byte master key.
    assert_eq!(first.volume.master_key().len(), 32);
    let key = fx.store.get_object(&owner, &vol.key_id).unwrap();
    assert_eq!(
        first.libvirt_secret.value().expose_secret(),
        hex_passphrase(key.expose_secret()).expose_secret()
    );
    assert_eq!(first.libvirt_secret.usage_type(), "volume");
    assert_eq!(first.libvirt_secret.usage_id(), vol.id.to_string());
    first.volume.write_at(0, b"hello, encrypted world").unwrap();
    let master = first.volume.master_key().expose_secret().to_vec();
    drop(first);

    let mut second = attach(
        &fx.store,
        &owner,
        vol.id,
        &vol.encryption_metadata(),
        &file,
        &opts,
    )
    .unwrap();
    assert!(!second.formatted);
    assert_eq!(
        second.volume.master_key().expose_secret(),
        master.as_slice()
    );
    let mut back = [0u8; 22];
    second.volume.read_at(0, &mut back).unwrap();
    assert_eq!(&back, b"hello, encrypted world");
    drop(second);

    // Another volume's key: refused, and the volume is not formatted again.
    let other = keys
        .create_volume(&owner, &EncryptionSpec::luks_default())
        .unwrap();
    let before = std::fs::read(&file).unwrap();
    let mut wrong = vol.encryption_metadata();
    wrong.encryption_key_id = other.key_id;
    let e = attach(&fx.store, &owner, vol.id, &wrong, &file, &opts).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Integrity);
    assert!(std::fs::read(&file).unwrap() == before);
}

#[test]
fn attach_in_another_project_does_not_see_the_key() {
    let fx = Fixture::new();
    let owner = ctx("alice", "p1", &["creator"]);
    let vol = VolumeKeys::new(&fx.store)
        .create_volume(&owner, &EncryptionSpec::luks_default())
        .unwrap();
    let file = sized_file(fx.dir.path(), "vol.img", 3 << 20);
    let mallory = ctx("mallory", "p2", &["admin"]);
    let e = attach(
        &fx.store,
        &mallory,
        vol.id,
        &vol.encryption_metadata(),
        &file,
        &AttachOptions {
            format_cost: FAST,
            ..AttachOptions::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(!is_luks(&file).unwrap(), "nothing was formatted");
    assert!(fetch_passphrase(&fx.store, &mallory, &vol.key_id).is_err());
}

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

#[test]
fn attach_never_formats_over_data() {
    let fx = Fixture::new();
    let owner = ctx("alice", "p1", &["creator"]);
    let vol = VolumeKeys::new(&fx.store)
        .create_volume(&owner, &EncryptionSpec::luks_default())
        .unwrap();
    let file = sized_file(fx.dir.path(), "old.img", 3 << 20);
    let mut data = std::fs::read(&file).unwrap();
    data[4096..4100].copy_from_slice(b"data");
    std::fs::write(&file, &data).unwrap();
    let e = attach(
        &fx.store,
        &owner,
        vol.id,
        &vol.encryption_metadata(),
        &file,
        &AttachOptions {
            format_cost: FAST,
            ..AttachOptions::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict);
    assert!(std::fs::read(&file).unwrap() == data);
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

#[test]
fn cbc_volumes_format_open_read_and_write() {
    let dir = tempfile::tempdir().unwrap();
    for cipher in [
        CipherSpec::AES_CBC_ESSIV_SHA256,
        CipherSpec::AES_CBC_PLAIN64,
        CipherSpec::AES_CBC_PLAIN,
    ] {
        for key_bytes in [16usize, 24, 32] {
            let file = sized_file(dir.path(), &format!("{cipher}-{key_bytes}.img"), 3 << 20);
            let mk: Vec<u8> = (0..key_bytes as u8).map(|b| b ^ 0xA5).collect();
            let opts = fast(key_bytes)
                .with_cipher(cipher)
                .with_master_key(SecretBytes::copy_from(&mk));
            let mut vol = LuksVolume::format(&file, &pass("pw"), &opts).unwrap();
            let data: Vec<u8> = (0..5000).map(|i| (i % 253) as u8).collect();
            vol.write_at(700, &data).unwrap();
            drop(vol);
            let mut vol = LuksVolume::open(&file, &pass("pw")).unwrap();
            assert_eq!(vol.cipher(), cipher);
            assert_eq!(vol.master_key().expose_secret(), mk.as_slice());
            let LuksHeader::V1(h) = vol.header() else {
                panic!("LUKS1")
            };
            assert_eq!(h.cipher_mode(), cipher.cipher_mode());
            let mut back = vec![0u8; data.len()];
            vol.read_at(700, &mut back).unwrap();
            assert!(back == data, "{cipher} {key_bytes}");
        }
    }
    let file = sized_file(dir.path(), "bad.img", 3 << 20);
    let opts = fast(64).with_cipher(CipherSpec::AES_CBC_ESSIV_SHA256);
    let e = LuksVolume::format(&file, &pass("pw"), &opts).unwrap_err();
    assert_eq!(
        (e.kind(), e.field()),
        (ErrorKind::Unsupported, Some("key_bytes"))
    );
}

#[test]
fn plain_volumes_open_with_any_key_and_are_never_formatted() {
    let dir = tempfile::tempdir().unwrap();
    let file = sized_file(dir.path(), "plain.img", 1 << 20);
    let before = std::fs::read(&file).unwrap();
    let pw = hex_passphrase(&[0x11; 32]);
    let mut vol = PlainVolume::open(&file, &pw, &PlainOptions::default()).unwrap();
    assert!(
        std::fs::read(&file).unwrap() == before,
        "open wrote something"
    );
    assert_eq!(vol.payload_len(), 1 << 20);
    assert_eq!(
        vol.key().expose_secret(),
        plain_key(&pw, PlainHash::Ripemd160, 32)
            .unwrap()
            .expose_secret()
    );
    vol.write_at(1024, b"plain text").unwrap();
    drop(vol);
    let raw = std::fs::read(&file).unwrap();
    assert!(!raw.windows(10).any(|w| w == b"plain text"));

    let mut again = PlainVolume::open(&file, &pw, &PlainOptions::default()).unwrap();
    let mut back = [0u8; 10];
    again.read_at(1024, &mut back).unwrap();
    assert_eq!(&back, b"plain text");
    // A wrong key cannot be told apart: it opens and reads noise.
    let mut wrong = PlainVolume::open(&file, &pass("wrong"), &PlainOptions::default()).unwrap();
    wrong.read_at(1024, &mut back).unwrap();
    assert_ne!(&back, b"plain text");
    // --offset and --skip: the same sector under another IV differs (in
    // CBC, its first block).
    let mut skipped = PlainVolume::open(&file, &pw, &PlainOptions::default().with_skip(1)).unwrap();
    skipped.read_at(1024, &mut back).unwrap();
    assert_ne!(&back, b"plain text");
    let shifted = PlainVolume::open(&file, &pw, &PlainOptions::default().with_offset(2)).unwrap();
    assert_eq!(shifted.payload_start(), 1024);
    let e =
        PlainVolume::open(&file, &pw, &PlainOptions::default().with_offset(1 << 20)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let e =
        PlainVolume::open(&file, &pw, &PlainOptions::default().with_offset(u64::MAX)).unwrap_err();
    assert_eq!(e.field(), Some("offset"));
    assert!(std::fs::read(&file).unwrap() == raw);
    assert!(!format!("{again:?}").contains("11111111"));
}

#[test]
fn plain_attach_derives_the_key_as_os_brick_and_cryptsetup_do() {
    let fx = Fixture::new();
    let owner = ctx("alice", "p1", &["creator"]);
    let spec = EncryptionSpec::parse(
        "nova.volume.encryptors.cryptsetup.CryptsetupEncryptor",
        "front-end",
        Some("aes-cbc-essiv:sha256"),
        Some("256"),
    )
    .unwrap();
    let vol = VolumeKeys::new(&fx.store)
        .create_volume(&owner, &spec)
        .unwrap();
    let file = sized_file(fx.dir.path(), "plain.img", 1 << 20);
    let meta = vol.encryption_metadata();
    let mut attached = attach_plain(&fx.store, &owner, &meta, &file).unwrap();
    let key = fx.store.get_object(&owner, &vol.key_id).unwrap();
    let expect = plain_key(
        &hex_passphrase(key.expose_secret()),
        PlainHash::Ripemd160,
        32,
    )
    .unwrap();
    assert_eq!(attached.key().expose_secret(), expect.expose_secret());
    attached.write_at(0, b"sector zero").unwrap();
    drop(attached);
    let e = attach(
        &fx.store,
        &owner,
        vol.id,
        &meta,
        &file,
        &AttachOptions {
            format_cost: FAST,
            ..AttachOptions::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.field(), Some("provider"));
    assert!(!is_luks(&file).unwrap());
    let luks = VolumeKeys::new(&fx.store)
        .create_volume(&owner, &EncryptionSpec::luks_default())
        .unwrap();
    let e = attach_plain(&fx.store, &owner, &luks.encryption_metadata(), &file).unwrap_err();
    assert_eq!(e.field(), Some("provider"));
}

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
