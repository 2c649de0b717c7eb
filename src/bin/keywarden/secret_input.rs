//! Secrets given to the command: from a file or standard input
//! (`--payload-file PATH|-`, `--passphrase-file`, `--fixed-key-file`) so
//! they never sit in argv, where other local users read them in `/proc`;
//! and the argv forms kept for compatibility, held wiped.

use std::io::Read;
use std::path::Path;

use keywarden::secret::SecretBytes;
use keywarden::{Error, ErrorKind};
use zeroize::Zeroizing;

use crate::{CliResult, Failure, admin};

/// More than any payload limit a config would set: a larger input is a
/// mistake (the wrong file), not a secret.
const MAX_INPUT_BYTES: usize = 16 << 20;

/// clap's parser for a secret given on the command line: the copy the
/// command keeps is wiped when dropped and never shown by `Debug`.
pub fn secret_arg(text: &str) -> Result<SecretBytes, std::convert::Infallible> {
    Ok(SecretBytes::copy_from(text.as_bytes()))
}

/// The bytes of `path`, or of standard input for `-`, exactly as they are:
/// what `--payload` or `--passphrase` would have held (no newline is taken
/// off here; the payload rules strip a text payload as Barbican does).
pub fn read_secret(path: &Path, what: &str) -> CliResult<SecretBytes> {
    let bytes = if path.as_os_str() == "-" {
        read_wiped(&mut std::io::stdin().lock(), 0)
            .map_err(|e| admin::io_failure(&format!("cannot read the {what} from stdin"), e))?
    } else {
        let mut f = std::fs::File::open(path)
            .map_err(|e| admin::io_failure(&format!("cannot open {}", path.display()), e))?;
        let hint = f
            .metadata()
            .map_or(0, |m| usize::try_from(m.len()).unwrap_or(usize::MAX));
        read_wiped(&mut f, hint)
            .map_err(|e| admin::io_failure(&format!("cannot read {}", path.display()), e))?
    };
    if bytes.len() > MAX_INPUT_BYTES {
        return Err(Failure::Store(Error::new(
            ErrorKind::TooLarge,
            format!("the {what} is larger than {MAX_INPUT_BYTES} bytes"),
        )));
    }
    Ok(SecretBytes::copy_from(&bytes))
}

/// A secret as text (what `--payload` would have held).
pub fn secret_text(secret: &SecretBytes, what: &str) -> CliResult<Zeroizing<String>> {
    match std::str::from_utf8(secret.expose_secret()) {
        Ok(text) => Ok(Zeroizing::new(text.to_owned())),
        Err(_) => Err(Failure::Usage(format!(
            "the {what} is not UTF-8 text; give binary data base64-encoded with \
             --payload-content-encoding base64"
        ))),
    }
}

/// Reads to the end (at most one byte past the limit) into buffers that are
/// wiped: growing copies into a larger wiped buffer instead of letting a
/// `Vec` reallocate and leave the old bytes behind.
fn read_wiped(r: &mut impl Read, size_hint: usize) -> std::io::Result<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(vec![0u8; size_hint.clamp(64, MAX_INPUT_BYTES) + 1]);
    let mut len = 0;
    loop {
        if len == buf.len() {
            if len > MAX_INPUT_BYTES {
                break;
            }
            let mut bigger = Zeroizing::new(vec![0u8; buf.len() * 2]);
            bigger[..len].copy_from_slice(&buf[..len]);
            buf = bigger;
        }
        match r.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    // Truncating keeps the buffer; Zeroizing wipes its whole capacity.
    buf.truncate(len);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_everything_across_growth() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        for hint in [0, 10, 10_000, 50_000] {
            let got = read_wiped(&mut &data[..], hint).unwrap();
            assert_eq!(&got[..], &data[..], "hint {hint}");
        }
    }
}
