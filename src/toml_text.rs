//! TOML text written by hand, for configs that hold secrets: the writer
//! puts each value straight into the caller's (wiped) buffer.

use std::fmt::Write as _;

/// Writes `s` as a TOML basic string straight into `out`: no intermediate
/// copy, since `s` may be a PIN or a password.
pub(crate) fn push_toml_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
