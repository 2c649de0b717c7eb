//! A cinder.conf or nova.conf is operator-supplied text. Properties:
//! reading it never panics and a refusal is `Config`; the fixed key read
//! is spelled out in the text in hex; the settings read, written as a
//! `[key_manager]` group, read back the same.
#![no_main]

use keywarden::ErrorKind;
use keywarden::migration::ServiceConf;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let conf = match ServiceConf::parse(text) {
        Ok(c) => c,
        Err(e) => return assert_eq!(e.kind(), ErrorKind::Config, "{e}"),
    };
    let mut written = String::from("[key_manager]\n");
    if let Some(key) = &conf.fixed_key {
        let hex: String = key
            .expose_secret()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(
            text.to_ascii_lowercase().contains(&hex),
            "{hex} is not in the text"
        );
        written.push_str(&format!("fixed_key = {hex}\n"));
    }
    if let Some(backend) = &conf.backend {
        written.push_str(&format!("backend = \"{backend}\"\n"));
    }
    let again = ServiceConf::parse(&written).expect("written settings read back");
    assert_eq!(
        again.fixed_key.as_ref().map(|k| k.expose_secret()),
        conf.fixed_key.as_ref().map(|k| k.expose_secret())
    );
    assert_eq!(again.backend, conf.backend);
});
