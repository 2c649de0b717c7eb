//! TTLV from a KMIP server is untrusted. Properties: decoding never
//! panics; whatever decodes writes back (in the canonical form) to a message
//! of the same length that differs from the input only where the input had
//! padding or a Boolean's value, and the canonical form writes back to
//! itself.
#![no_main]

use keywarden::fuzzing::kmip::ttlv_canonical;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(canonical) = ttlv_canonical(data) else {
        return;
    };
    assert_eq!(canonical.len(), data.len());
    for (written, read) in canonical.iter().zip(data) {
        // Padding becomes 0, a Boolean 0 or 1; nothing else changes.
        assert!(written == read || *written <= 1, "{written} for {read}");
    }
    let again = ttlv_canonical(&canonical).expect("the canonical form decodes");
    assert_eq!(*again, *canonical);
});
