//! swift's body crypto-meta header is read back from object storage:
//! untrusted. Properties: whatever parses writes back to a header that
//! parses to the same value and writes the same bytes again; deriving the
//! keys it names never panics, and names only configured root secrets.
#![no_main]

use keywarden::ErrorKind;
use keywarden::object_keys::{BodyCryptoMeta, ObjectKeyMaster, ObjectPath, RootSecretId};
use keywarden::secret::SecretBytes;
use libfuzzer_sys::fuzz_target;

/// swift's field layout with the fuzz input's pieces dropped into the
/// values, so mutations reach past the JSON shape.
fn templated(data: &str) -> String {
    let mut parts = data.split('\u{1}');
    let mut next = |default: &str| parts.next().unwrap_or(default).to_owned();
    let iv = next("AAAAAAAAAAAAAAAAAAAAAA==");
    let wrap_iv = next("AAAAAAAAAAAAAAAAAAAAAA==");
    let key = next("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    let v = next("3");
    let path = next("/AUTH_fuzz/c/o");
    let secret_id = parts.next().map(|s| format!(", \"secret_id\": \"{s}\""));
    format!(
        "{{\"body_key\": {{\"iv\": \"{wrap_iv}\", \"key\": \"{key}\"}}, \"cipher\": \"AES_CTR_256\", \"iv\": \"{iv}\", \"key_id\": {{\"path\": \"{path}\"{}, \"v\": \"{v}\"}}}}",
        secret_id.unwrap_or_default()
    )
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let text = match text.strip_prefix('T') {
        Some(rest) => templated(rest),
        None => text.to_owned(),
    };
    let Ok(meta) = BodyCryptoMeta::from_header(&text) else {
        return;
    };
    let header = meta.to_header();
    let again = BodyCryptoMeta::from_header(&header).expect("our own header parses");
    assert_eq!(again, meta);
    assert_eq!(again.to_header(), header);

    let km = ObjectKeyMaster::from_root_secrets(
        [(RootSecretId::DEFAULT, SecretBytes::copy_from(&[7; 32]))],
        RootSecretId::DEFAULT,
    )
    .expect("one root secret");
    let path = ObjectPath::new("AUTH_fuzz", "c", "o").expect("valid path");
    match km.body_decryptor(&path, &meta, 0) {
        Ok(mut dec) => {
            assert_eq!(meta.key_id.secret_id, RootSecretId::DEFAULT);
            dec.apply(&mut [0u8; 33]);
        }
        Err(e) => assert!(
            matches!(e.kind(), ErrorKind::Config | ErrorKind::InvalidInput),
            "{e:?}"
        ),
    }
});
