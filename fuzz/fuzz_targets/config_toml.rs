//! keywarden's TOML config is operator-supplied text. Properties: parsing
//! never panics and a refusal is `Config`; a config that parses is written
//! (`to_toml`) as text that parses to a config written the same way; its
//! `Debug` shows no master KEK and no fixed key.
#![no_main]

use keywarden::ErrorKind;
use keywarden::config::{BackendConfig, Config};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let config = match Config::from_toml(text, None) {
        Ok(c) => c,
        Err(e) => return assert_eq!(e.kind(), ErrorKind::Config, "{e}"),
    };
    let written = config.to_toml();
    let again = Config::from_toml(&written, None).expect("a written config parses");
    assert_eq!(*again.to_toml(), *written);

    let shown = format!("{config:?}");
    for backend in config.backends.values() {
        match backend {
            BackendConfig::SimpleCrypto {
                master_kek,
                staged_master_keks,
                retired_master_keks,
            } => {
                for k in std::iter::once(master_kek)
                    .chain(staged_master_keks)
                    .chain(retired_master_keks)
                {
                    assert!(!shown.contains(k.to_base64().as_str()), "{shown}");
                }
            }
            // Short keys could match any hex-looking text by chance.
            BackendConfig::DangerFixedKey { fixed_key } if fixed_key.len() >= 8 => {
                let hex: String = fixed_key
                    .expose_secret()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                assert!(!shown.to_ascii_lowercase().contains(&hex), "{shown}");
            }
            _ => {}
        }
    }
});
