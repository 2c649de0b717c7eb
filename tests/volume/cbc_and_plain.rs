//! The CBC ciphers and plain mode (os-brick's and cryptsetup's key
//! derivation).

use keywarden::ErrorKind;
use keywarden::secret::SecretBytes;
use keywarden::volume::luks::{LuksHeader, LuksVolume};
use keywarden::volume::{
    AttachOptions, CipherSpec, EncryptionSpec, PlainHash, PlainOptions, PlainVolume, VolumeKeys,
    attach, attach_plain, hex_passphrase, is_luks, plain_key,
};

use crate::common::{Fixture, ctx};
use crate::{FAST, fast, pass, sized_file};

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
