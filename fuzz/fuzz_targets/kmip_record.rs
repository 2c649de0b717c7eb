//! The KMIP backend's catalog record (version, object type, encoding,
//! unique identifier) is read back from the database: untrusted.
//! Properties: anything refused is `Integrity`; anything accepted writes
//! back to the same bytes.
#![no_main]

use keywarden::ErrorKind;
use keywarden::fuzzing::kmip::record;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| match record(data) {
    Ok(written) => assert_eq!(written, data),
    Err(e) => assert_eq!(e.kind(), ErrorKind::Integrity, "{e}"),
});
