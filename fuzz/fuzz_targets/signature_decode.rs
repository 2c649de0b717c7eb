//! Certificate payloads and image signatures are untrusted bytes.
//! Properties: a certificate that decodes re-encodes to DER whose encoding
//! is stable (decode, encode: the same bytes), also through base64; and a signature made of
//! arbitrary bytes never verifies (nor panics) against real certificates.
#![no_main]

use base64::Engine as _;
use keywarden::signature::{ImageSignature, ImageVerifier, SigningCertificate, VerifyOptions};
use libfuzzer_sys::fuzz_target;

const CERTS: [(&[u8], &str); 3] = [
    (include_bytes!("../certs/rsa-1024.crt"), "RSA-PSS"),
    (include_bytes!("../certs/p384.crt"), "ECC_SECP384R1"),
    (include_bytes!("../certs/dsa-2048.crt"), "DSA"),
];
const HASHES: [&str; 4] = ["SHA-224", "SHA-256", "SHA-384", "SHA-512"];
const CERT_ID: &str = "6f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    if selector & 1 == 0 {
        // Raw bytes, or (to get past the outer DER) a fixture certificate's
        // DER with bytes overwritten at (position, value) pairs from the input.
        let input = if selector & 2 == 0 {
            rest.to_vec()
        } else {
            let fixture =
                SigningCertificate::decode(CERTS[usize::from(selector >> 2) % CERTS.len()].0)
                    .expect("fixture certificate");
            let mut der = fixture.to_der().expect("fixture encodes");
            for pair in rest.chunks_exact(3) {
                let pos = usize::from(u16::from_le_bytes([pair[0], pair[1]])) % der.len();
                der[pos] = pair[2];
            }
            der
        };
        if let Ok(cert) = SigningCertificate::decode(&input) {
            // The first encoding may normalise what the input chose freely
            // (x509-cert writes a time before 2050 as UTCTime, as RFC 5280
            // says, whatever the input used); from then on it is stable.
            let der = cert.to_der().expect("a decoded certificate encodes");
            let again = SigningCertificate::decode(&der).expect("its DER decodes");
            assert_eq!(again.to_der().expect("it encodes again"), der);
            let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
            assert_eq!(
                SigningCertificate::decode(b64.as_bytes()).expect("its base64 decodes"),
                again
            );
        }
        return;
    }
    let (cert, key_type) = CERTS[usize::from(selector >> 1) % CERTS.len()];
    let hash = HASHES[usize::from(selector >> 3) % HASHES.len()];
    let cert = SigningCertificate::decode(cert).expect("fixture certificate");
    // Half the time the bytes are the signature, half the time its base64 text.
    let text = if selector & 0x20 == 0 {
        base64::engine::general_purpose::STANDARD.encode(rest)
    } else {
        String::from_utf8_lossy(rest).into_owned()
    };
    let Ok(signature) = ImageSignature::new(&text, hash, key_type, CERT_ID) else {
        return;
    };
    let mut verifier = ImageVerifier::with_certificate(&cert, signature, &VerifyOptions::default())
        .expect("fixture certificate suits its key type");
    verifier.update(b"fuzzed image");
    assert!(
        verifier.verify().is_err(),
        "an arbitrary signature verified"
    );
});
