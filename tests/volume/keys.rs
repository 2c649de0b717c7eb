//! The volume key lifecycle over the store: create, snapshots and clones,
//! delete, transfer.

use keywarden::ErrorKind;
use keywarden::model::SecretType;
use keywarden::store::ListQuery;
use keywarden::volume::{EncryptionSpec, VolumeKeys};

use crate::common::{Fixture, ctx};

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
