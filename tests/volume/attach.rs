//! Attach: the first formats, later ones open, none formats over data or
//! sees another project's key.

use keywarden::ErrorKind;
use keywarden::volume::{
    AttachOptions, EncryptionSpec, VolumeKeys, attach, fetch_passphrase, hex_passphrase, is_luks,
};

use crate::common::{Fixture, ctx};
use crate::{FAST, sized_file};

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
