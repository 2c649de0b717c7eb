//! LUKS2 hardening without cryptsetup, on volumes our own formatter
//! writes (the interop tests repeat it on cryptsetup's): a damaged primary
//! header opens through the secondary copy and is never reformatted, and
//! crafted fields are typed errors.

use keywarden::volume::luks::{LuksVersion, LuksVolume};
use keywarden::volume::{EncryptionSpec, VolumeKeys, fetch_passphrase};

use crate::common::{Fixture, ctx};
use crate::luks2_headers::{
    PRIMARY_DAMAGE, assert_attach_never_formats, assert_crafted_headers_refused,
    assert_damaged_luks2_is_luks, damage_primary,
};
use crate::{fast, pass, sized_file};

/// The review's reproduction and its variants: the first 512 bytes zeroed,
/// the version field damaged (the magic intact), the checksum damaged, the
/// JSON damaged. Each volume is still LUKS, opens through its secondary
/// header as cryptsetup does, and neither format nor attach formats it.
#[test]
fn a_luks2_volume_with_a_damaged_primary_header_opens_through_the_secondary() {
    let fx = Fixture::new();
    let owner = ctx("alice", "p1", &["creator"]);
    let spec =
        EncryptionSpec::parse("luks2", "front-end", Some("aes-xts-plain64"), Some("512")).unwrap();
    let vol = VolumeKeys::new(&fx.store)
        .create_volume(&owner, &spec)
        .unwrap();
    let passphrase = fetch_passphrase(&fx.store, &owner, &vol.key_id).unwrap();
    let file = sized_file(fx.dir.path(), "l2.img", 3 << 20);
    let opts = fast(64).with_version(LuksVersion::Luks2);
    let mut fresh = LuksVolume::format(&file, &passphrase, &opts).unwrap();
    let plain: Vec<u8> = (0..8192).map(|i| (i * 31 % 251) as u8).collect();
    fresh.write_at(4096, &plain).unwrap();
    drop(fresh);
    let good = std::fs::read(&file).unwrap();
    for damage in PRIMARY_DAMAGE {
        let mut bytes = good.clone();
        damage_primary(&mut bytes, damage);
        std::fs::write(&file, &bytes).unwrap();
        let what = format!("{damage:?}");
        assert_damaged_luks2_is_luks(&file, &bytes, &passphrase, 4096, &plain, &what);
        assert_attach_never_formats(&fx, &vol, &file, &what);
    }
}

/// The review's crafted LUKS2 fields, on a volume we formatted: typed
/// errors naming the field, no panic, no wrap, no KDF work first.
#[test]
fn crafted_luks2_headers_we_formatted_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = sized_file(dir.path(), "crafted.img", 3 << 20);
    let opts = fast(32).with_version(LuksVersion::Luks2);
    LuksVolume::format(&file, &pass("pw"), &opts).unwrap();
    assert_crafted_headers_refused(&file, &pass("pw"));
    LuksVolume::open(&file, &pass("pw")).unwrap();
}
