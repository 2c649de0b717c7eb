//! LUKS header parsing: any bytes are refused or accepted without a panic;
//! an accepted LUKS1 header writes back to the same bytes and parses to the
//! same header. The input is also XORed over a valid LUKS1 header, so most
//! runs reach the cross-field checks and the round trip. For LUKS2 the
//! input also becomes the JSON metadata of a header with a valid checksum,
//! so the metadata parser is reached.
#![no_main]

use keywarden::volume::luks::{HEADER_LEN, Luks1Header, Luks2Header};
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

const LUKS2_HDR_SIZE: usize = 16 * 1024;

/// A LUKS1 header as cryptsetup lays it out for a 32-byte key.
fn template() -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..6].copy_from_slice(b"LUKS\xba\xbe");
    h[6..8].copy_from_slice(&1u16.to_be_bytes());
    h[8..11].copy_from_slice(b"aes");
    h[40..51].copy_from_slice(b"xts-plain64");
    h[72..78].copy_from_slice(b"sha256");
    h[104..108].copy_from_slice(&4096u32.to_be_bytes());
    h[108..112].copy_from_slice(&32u32.to_be_bytes());
    h[164..168].copy_from_slice(&1000u32.to_be_bytes());
    h[168..204].copy_from_slice(b"6b2c3f4e-0000-4000-8000-000000000000");
    for i in 0..8 {
        let at = 208 + 48 * i;
        let state: u32 = if i == 0 { 0x00AC_71F3 } else { 0x0000_DEAD };
        h[at..at + 4].copy_from_slice(&state.to_be_bytes());
        h[at + 4..at + 8].copy_from_slice(&1000u32.to_be_bytes());
        h[at + 40..at + 44].copy_from_slice(&(8 + 256 * i as u32).to_be_bytes());
        h[at + 44..at + 48].copy_from_slice(&4000u32.to_be_bytes());
    }
    h
}

fn round_trip(bytes: &[u8]) {
    if let Ok(header) = Luks1Header::parse(bytes) {
        let written = header.to_bytes();
        assert_eq!(&written[..], &bytes[..HEADER_LEN]);
        let again = Luks1Header::parse(&written).expect("a written header parses");
        assert_eq!(again, header);
        let _ = header.to_string();
    }
}

fuzz_target!(|data: &[u8]| {
    round_trip(data);
    let mut near = template();
    for (t, d) in near.iter_mut().zip(data) {
        *t ^= d;
    }
    round_trip(&near);
    if let Ok(header) = Luks2Header::parse(data) {
        let _ = header.to_string();
    }
    if data.len() <= LUKS2_HDR_SIZE - 4096 {
        let mut area = vec![0u8; LUKS2_HDR_SIZE];
        area[..6].copy_from_slice(b"LUKS\xba\xbe");
        area[6..8].copy_from_slice(&2u16.to_be_bytes());
        area[8..16].copy_from_slice(&(LUKS2_HDR_SIZE as u64).to_be_bytes());
        area[72..78].copy_from_slice(b"sha256");
        area[4096..4096 + data.len()].copy_from_slice(data);
        let sum = Sha256::digest(&area);
        area[448..480].copy_from_slice(&sum);
        if let Ok(header) = Luks2Header::parse(&area) {
            let _ = header.to_string();
        }
    }
});
