//! Damaged and crafted LUKS2 headers, shared by the tool-free volume tests
//! (on volumes our formatter writes) and the cryptsetup interop tests (on
//! volumes cryptsetup writes): the same damage, the same crafted fields
//! and the same expectations for both.
//!
//! Included by path from tests/volume and tests/volume_interop only (it is
//! not a module of `common`, which every test binary compiles); it expects
//! the including binary to declare `mod common`.
#![allow(dead_code)]

use std::path::Path;

use keywarden::ErrorKind;
use keywarden::secret::SecretBytes;
use keywarden::volume::luks::{FormatOptions, LuksVersion, LuksVolume, Pbkdf2Cost};
use keywarden::volume::{AttachOptions, EncryptedVolume, attach, is_luks};
use sha2::{Digest, Sha256};

use crate::common::{Fixture, ctx};

/// Each header copy's size: cryptsetup's default, and what we write.
pub const HDR_SIZE: usize = 0x4000;
/// The binary header before the JSON area.
const BINARY_LEN: usize = 4096;

/// Sets the checksum of one header copy (`HDR_SIZE` bytes) over the copy
/// with its checksum field zeroed.
pub fn set_checksum(copy: &mut [u8]) {
    copy[448..512].fill(0);
    let sum = Sha256::digest(&*copy);
    copy[448..480].copy_from_slice(&sum);
}

/// Rewrites the JSON metadata of both header copies with `edit` and
/// recomputes their checksums: a header that parses, with crafted fields.
pub fn craft_luks2(file: &Path, edit: impl Fn(&mut serde_json::Value)) {
    let mut bytes = std::fs::read(file).unwrap();
    for at in [0, HDR_SIZE] {
        let area = &mut bytes[at..at + HDR_SIZE];
        let json_end = area[BINARY_LEN..].iter().position(|&c| c == 0).unwrap() + BINARY_LEN;
        let mut json: serde_json::Value =
            serde_json::from_slice(&area[BINARY_LEN..json_end]).unwrap();
        edit(&mut json);
        let text = serde_json::to_vec(&json).unwrap();
        area[BINARY_LEN..].fill(0);
        area[BINARY_LEN..BINARY_LEN + text.len()].copy_from_slice(&text);
        set_checksum(area);
    }
    std::fs::write(file, bytes).unwrap();
}

/// A JSON edit of a crafted header.
pub type Edit = fn(&mut serde_json::Value);

/// The review's crafted LUKS2 fields: (what, edit, the error kind, the
/// field the error names). Offsets and sizes near `u64::MAX` must not wrap
/// or panic; KDF costs above [`keywarden::volume::KdfLimits`] are refused
/// before any work.
pub const CRAFTED: [(&str, Edit, ErrorKind, &str); 7] = [
    (
        "segment size near u64::MAX",
        |j| j["segments"]["0"]["size"] = "18446744073709551000".into(),
        ErrorKind::InvalidInput,
        "volume",
    ),
    (
        "iv_tweak near u64::MAX",
        |j| j["segments"]["0"]["iv_tweak"] = "18446744073709551000".into(),
        ErrorKind::InvalidInput,
        "iv_tweak",
    ),
    (
        "segment over the header",
        |j| j["segments"]["0"]["offset"] = "0".into(),
        ErrorKind::InvalidInput,
        "segments",
    ),
    (
        "key-slot area past the device",
        |j| j["keyslots"]["0"]["area"]["offset"] = "18446744073709550000".into(),
        ErrorKind::InvalidInput,
        "volume",
    ),
    (
        "4 billion PBKDF2 iterations",
        |j| j["keyslots"]["0"]["kdf"]["iterations"] = 4_294_967_295u32.into(),
        ErrorKind::TooLarge,
        "pbkdf2_iterations",
    ),
    (
        "argon2 with 4 GiB",
        |j| {
            j["keyslots"]["0"]["kdf"] = serde_json::json!({
                "type": "argon2id", "time": 4, "memory": 4194304, "cpus": 1,
                "salt": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
            })
        },
        ErrorKind::TooLarge,
        "argon2_memory_kib",
    ),
    (
        "argon2 for a million passes",
        |j| {
            j["keyslots"]["0"]["kdf"] = serde_json::json!({
                "type": "argon2id", "time": 1000000, "memory": 1024, "cpus": 1,
                "salt": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
            })
        },
        ErrorKind::TooLarge,
        "argon2_time",
    ),
];

/// Each [`CRAFTED`] header, made from the good LUKS2 volume at `file`
/// (16 KiB header copies, key slot 0 and segment 0), is a typed error
/// naming its field: never a panic or a wrap, never seconds of KDF work,
/// and the file is left as it was. Restores the good volume afterwards.
pub fn assert_crafted_headers_refused(file: &Path, pass: &SecretBytes) {
    let good = std::fs::read(file).unwrap();
    for (what, edit, kind, field) in CRAFTED {
        std::fs::write(file, &good).unwrap();
        craft_luks2(file, edit);
        let crafted = std::fs::read(file).unwrap();
        let start = std::time::Instant::now();
        let e = LuksVolume::open(file, pass).unwrap_err();
        assert!(
            start.elapsed().as_secs() < 10,
            "{what}: work was done first"
        );
        assert_eq!((e.kind(), e.field()), (kind, Some(field)), "{what}: {e}");
        assert!(
            std::fs::read(file).unwrap() == crafted,
            "{what}: file changed"
        );
    }
    std::fs::write(file, &good).unwrap();
}

/// Ways the primary header of a LUKS2 volume gets damaged while its
/// secondary copy (at [`HDR_SIZE`]) stays intact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrimaryDamage {
    /// The review's reproduction: the first 512 bytes zeroed (magic gone).
    ZeroFirst512,
    /// The magic survives, the version field does not.
    Version(u16),
    /// The magic and version survive, the checksum does not match.
    Checksum,
    /// The checksum matches, the JSON metadata is not JSON.
    Json,
}

/// Every [`PrimaryDamage`] the tests apply, version 1 included (a LUKS2
/// primary is no LUKS1 header, so it must not stop at the LUKS1 parse).
pub const PRIMARY_DAMAGE: [PrimaryDamage; 7] = [
    PrimaryDamage::ZeroFirst512,
    PrimaryDamage::Version(0),
    PrimaryDamage::Version(1),
    PrimaryDamage::Version(3),
    PrimaryDamage::Version(0xFFFF),
    PrimaryDamage::Checksum,
    PrimaryDamage::Json,
];

/// Applies `damage` to the primary header copy in `bytes`.
pub fn damage_primary(bytes: &mut [u8], damage: PrimaryDamage) {
    match damage {
        PrimaryDamage::ZeroFirst512 => bytes[..512].fill(0),
        PrimaryDamage::Version(v) => bytes[6..8].copy_from_slice(&v.to_be_bytes()),
        PrimaryDamage::Checksum => bytes[460] ^= 0xFF,
        PrimaryDamage::Json => {
            bytes[BINARY_LEN] = b'!';
            set_checksum(&mut bytes[..HDR_SIZE]);
        }
    }
}

/// A LUKS2 volume at `file` whose primary header was damaged (the file's
/// bytes are `bytes`) is still LUKS: `is_luks` says so, `open` uses the
/// secondary header and reads `plain` at payload offset `at`, `format`
/// (LUKS1 or LUKS2) refuses it without the overwrite flag, and the file is
/// left as it was.
pub fn assert_damaged_luks2_is_luks(
    file: &Path,
    bytes: &[u8],
    pass: &SecretBytes,
    at: u64,
    plain: &[u8],
    what: &str,
) {
    assert!(is_luks(file).unwrap(), "{what}: is_luks");
    let mut opened = LuksVolume::open(file, pass)
        .unwrap_or_else(|e| panic!("{what}: open through the secondary header: {e:?}"));
    assert_eq!(opened.header().version(), 2, "{what}");
    let mut back = vec![0u8; plain.len()];
    opened.read_at(at, &mut back).unwrap();
    assert!(back == plain, "{what}: the payload reads differently");
    drop(opened);
    for version in [LuksVersion::Luks1, LuksVersion::Luks2] {
        let opts = FormatOptions::default()
            .with_version(version)
            .with_cost(Pbkdf2Cost::Iterations(1000));
        let e = LuksVolume::format(file, pass, &opts).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict, "{what}: {version:?}: {e}");
    }
    assert!(
        std::fs::read(file).unwrap() == bytes,
        "{what}: the volume was changed"
    );
}

/// The attach path opens the damaged volume `vol` (its key in `fx`, owned
/// by alice of p1) and never formats it; the file is left as it was.
pub fn assert_attach_never_formats(fx: &Fixture, vol: &EncryptedVolume, file: &Path, what: &str) {
    let owner = ctx("alice", "p1", &["creator"]);
    let before = std::fs::read(file).unwrap();
    let attached = attach(
        &fx.store,
        &owner,
        vol.id,
        &vol.encryption_metadata(),
        file,
        &AttachOptions {
            format_cost: Pbkdf2Cost::Iterations(1000),
            ..AttachOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("{what}: attach: {e:?}"));
    assert!(!attached.formatted, "{what}: attach formatted the volume");
    drop(attached);
    assert!(
        std::fs::read(file).unwrap() == before,
        "{what}: the volume was changed"
    );
}
