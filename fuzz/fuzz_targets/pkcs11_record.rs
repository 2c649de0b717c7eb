//! The PKCS#11 backend's catalog records (a wrapped project KEK, a secret's
//! ciphertext) are read back from the database: untrusted. They are parsed
//! before any token call. Properties: anything refused is `Integrity`;
//! anything accepted writes back to the same bytes, and a KEK record's
//! parts are where its length field says.
//!
//! The first byte picks the record kind; the rest is the record.
#![no_main]

use keywarden::ErrorKind;
use keywarden::fuzzing::pkcs11::{kek_record, secret_record};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, record)) = data.split_first() else {
        return;
    };
    if kind % 2 == 0 {
        match kek_record(record) {
            Ok((written, wrapped_key, mac)) => {
                assert_eq!(written, record);
                assert_eq!(mac.len(), 32);
                let len = usize::from(u16::from_be_bytes([record[2], record[3]]));
                assert_eq!(wrapped_key, &record[4..4 + len]);
            }
            Err(e) => assert_eq!(e.kind(), ErrorKind::Integrity, "{e}"),
        }
    } else {
        match secret_record(record) {
            Ok(written) => assert_eq!(written, record),
            Err(e) => assert_eq!(e.kind(), ErrorKind::Integrity, "{e}"),
        }
    }
});
