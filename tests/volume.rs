//! Encrypted volumes without outside tools: the key lifecycle over the
//! store, attach, and LUKS refusing bad input without touching the file.

mod common;

use std::path::{Path, PathBuf};

use common::{Fixture, ctx};
use keywarden::ErrorKind;
use keywarden::model::SecretType;
use keywarden::secret::SecretBytes;
use keywarden::store::ListQuery;
use keywarden::volume::luks::{FormatOptions, LuksHeader, LuksVolume, Pbkdf2Cost, SECTOR};
use keywarden::volume::{
    AttachOptions, EncryptionSpec, VolumeKeys, attach, fetch_passphrase, hex_passphrase, is_luks,
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
    let opts = AttachOptions { format_cost: FAST };

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
        &AttachOptions { format_cost: FAST },
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
