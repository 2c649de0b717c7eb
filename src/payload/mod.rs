//! Barbican's payload rules: which content types and encodings a secret
//! payload may arrive in, how large it may be, and how it is turned into the
//! bytes we store (and back).
//!
//! Two ways in, as in Barbican:
//!
//! * [`decode`]: the one-step create (`POST /v1/secrets`), where the payload is
//!   a JSON string with `payload_content_type` and `payload_content_encoding`
//!   (barbican, `barbican/common/validators.py` `NewSecretValidator`).
//! * [`decode_bytes`]: the two-step create (`PUT /v1/secrets/{id}`), where the
//!   payload is the raw request body with `Content-Type` and `Content-Encoding`
//!   headers (barbican, `barbican/api/controllers/secrets.py` `on_put`).
//!
//! And one way out, [`encode`], which is what a JSON API would send back.
//!
//! Refusals are [`ErrorKind::InvalidInput`] naming the field (`payload`,
//! `payload_content_type`, `payload_content_encoding`) with Barbican's reason
//! text where it has one; an oversized payload is [`ErrorKind::TooLarge`]
//! naming `payload`. The checks run in Barbican's order, so the same bad
//! request is refused for the same reason.
//!
//! Where we differ from Barbican, on purpose:
//!
//! * Content types are parsed, not matched against Barbican's loose
//!   normaliser: the type is case-insensitive and may carry surrounding
//!   whitespace; `text/plain` may carry exactly one parameter, `charset`
//!   (name and value case-insensitive, whitespace around `=` allowed, value
//!   optionally quoted) whose value is `utf-8`. Barbican also accepts any
//!   parameter name (`text/plain; foo=utf-8`), ignores a third parameter, and
//!   lets a charset ride on the binary types; we refuse those.
//! * base64 is strict RFC 4648 (standard alphabet, canonical padding). ASCII
//!   whitespace inside is ignored so line-wrapped base64 is accepted; anything
//!   else outside the alphabet is refused, where Python's `b64decode` would
//!   silently drop it.
//! * On the PUT path a `text/plain` body must be UTF-8 (the only charset we
//!   accept) and may not carry a `Content-Encoding`; Barbican stores any bytes
//!   and ignores the header for text.
//!
//! What we keep from Barbican even though it is surprising: the one-step path
//! stores the payload with leading and trailing whitespace removed (Python's
//! `str.strip()`), so `"hunter2\n"` is stored as `hunter2`. The PUT path
//! stores the body as sent.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as STANDARD_BASE64;
use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind, Result};
use crate::model::{ContentType, Payload};
use crate::secret::SecretBytes;

/// Limits applied to every incoming payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PayloadRules {
    /// Largest accepted payload, measured as Barbican measures it: the UTF-8
    /// length of the string as sent (so the base64 text, not the decoded
    /// bytes), or the raw body length on the PUT path.
    pub max_bytes: usize,
}

impl PayloadRules {
    /// Barbican's `max_allowed_secret_in_bytes` since 13.0.0 (Xena); it was
    /// 10000 before.
    pub const DEFAULT_MAX_BYTES: usize = 20_000;

    pub fn new(max_bytes: usize) -> Self {
        PayloadRules { max_bytes }
    }
}

impl Default for PayloadRules {
    fn default() -> Self {
        PayloadRules::new(Self::DEFAULT_MAX_BYTES)
    }
}

/// A payload ready to be sent as JSON text: what [`encode`] returns.
pub struct EncodedPayload {
    /// The normalised content type to report (`text/plain`,
    /// `application/octet-stream` or `application/pkcs8`).
    pub content_type: &'static str,
    /// `None` for text, `Some("base64")` for binary.
    pub encoding: Option<&'static str>,
    /// The payload as text; wiped on drop.
    pub text: Zeroizing<String>,
}

// Hand-written: `Zeroizing` passes `Debug` through to the secret text.
impl fmt::Debug for EncodedPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncodedPayload")
            .field("content_type", &self.content_type)
            .field("encoding", &self.encoding)
            .field(
                "text",
                &format_args!("[REDACTED; {} bytes]", self.text.len()),
            )
            .finish()
    }
}

/// The content types Barbican accepts, in its own words (`mime_types.SUPPORTED`).
pub const SUPPORTED_CONTENT_TYPES: [&str; 5] = [
    "text/plain",
    "text/plain;charset=utf-8",
    "text/plain; charset=utf-8",
    "application/octet-stream",
    "application/pkcs8",
];

/// The one encoding a JSON payload may declare (the POST schema's enum).
pub const BASE64: &str = "base64";

/// Decodes a payload sent as a JSON string (Barbican's one-step create).
///
/// `content_type` and `encoding` are `payload_content_type` and
/// `payload_content_encoding` as sent (`None` when absent or `null`).
pub fn decode(
    payload: &str,
    content_type: Option<&str>,
    encoding: Option<&str>,
    rules: &PayloadRules,
) -> Result<Payload> {
    // The JSON schema runs first in Barbican, so an encoding other than
    // `base64` (`binary` included) is refused before anything else is looked at.
    check_encoding_schema(encoding)?;
    let Some(content_type) = content_type else {
        return Err(Error::invalid(
            "payload_content_type",
            "If 'payload' is supplied, 'payload_content_type' must also be supplied.",
        ));
    };
    let content_type = parse_content_type(content_type)?;
    match (content_type.is_binary(), encoding) {
        (false, Some(_)) => {
            return Err(Error::invalid(
                "payload_content_encoding",
                "payload_content_encoding is not one of None",
            ));
        }
        (true, None) => {
            return Err(Error::invalid(
                "payload_content_encoding",
                "payload_content_encoding is not one of ['base64', 'binary']",
            ));
        }
        _ => {}
    }
    check_size(payload.len(), rules)?;
    let payload = python_strip(payload);
    if payload.is_empty() {
        return Err(empty_payload());
    }
    let bytes = if content_type.is_binary() {
        decode_base64(payload.as_bytes())?
    } else {
        SecretBytes::copy_from(payload.as_bytes())
    };
    Ok(Payload {
        content_type,
        bytes,
    })
}

/// The one-step create when the payload itself may be absent: a request
/// without `payload` makes a metadata-only secret (`Ok(None)`) whose payload
/// comes later through [`decode_bytes`].
///
/// A content type without a payload is refused, as Barbican refuses it for
/// secrets (orders carry a content type and no payload, but do not come
/// through here). We cannot tell an absent field from a JSON `null`, so a
/// `null` content type counts as absent. A lone `payload_content_encoding` is
/// checked against the schema and otherwise ignored, as in Barbican.
pub fn decode_optional(
    payload: Option<&str>,
    content_type: Option<&str>,
    encoding: Option<&str>,
    rules: &PayloadRules,
) -> Result<Option<Payload>> {
    match payload {
        Some(payload) => decode(payload, content_type, encoding, rules).map(Some),
        None => {
            check_encoding_schema(encoding)?;
            if content_type.is_some() {
                return Err(Error::invalid(
                    "payload",
                    "payload must be provided when payload_content_type is specified",
                ));
            }
            Ok(None)
        }
    }
}

/// Decodes a raw request body (Barbican's two-step create, `PUT`).
///
/// `content_type` and `encoding` are the `Content-Type` and
/// `Content-Encoding` headers. The content types are those of [`decode`]:
/// Barbican's API guide names only `text/plain` and
/// `application/octet-stream` for PUT, but its `store_secret` normalises
/// the header with the same table, so `application/pkcs8` is taken too.
/// Binary bodies are stored as sent, or base64-decoded under
/// `Content-Encoding: base64` (case-insensitive). The body is taken by value
/// so it is wiped here once decoded.
pub fn decode_bytes(
    bytes: Vec<u8>,
    content_type: Option<&str>,
    encoding: Option<&str>,
    rules: &PayloadRules,
) -> Result<Payload> {
    let bytes = Zeroizing::new(bytes);
    let content_type = match content_type {
        None => {
            return Err(Error::invalid(
                "payload_content_type",
                "Content-Type of 'None' is not supported for PUT.",
            ));
        }
        Some(raw) => {
            let essence = raw.split(';').next().unwrap_or_default().trim();
            if essence.eq_ignore_ascii_case("application/json") {
                return Err(Error::invalid(
                    "payload_content_type",
                    "Content-Type of 'application/json' is not supported for PUT.",
                ));
            }
            parse_content_type(raw).map_err(|_| {
                Error::invalid(
                    "payload_content_type",
                    format!("content-type of {} not supported", python_repr(raw)),
                )
            })?
        }
    };
    if bytes.is_empty() {
        return Err(Error::invalid("payload", "No data supplied to process."));
    }
    check_size(bytes.len(), rules)?;
    // HTTP content-codings are case-insensitive tokens (RFC 9110 §8.4.1).
    let base64 = match encoding.map(str::trim) {
        None => false,
        Some(enc) if enc.eq_ignore_ascii_case(BASE64) => true,
        Some(enc) => {
            return Err(Error::invalid(
                "payload_content_encoding",
                format!(
                    "Secret Content-Encoding of {} not supported",
                    python_repr(enc)
                ),
            ));
        }
    };
    let secret = match (content_type.is_binary(), base64) {
        (false, true) => {
            return Err(Error::invalid(
                "payload_content_encoding",
                "payload_content_encoding is not one of None",
            ));
        }
        (false, false) => {
            if std::str::from_utf8(&bytes).is_err() {
                return Err(Error::invalid(
                    "payload",
                    "A text/plain payload must be UTF-8",
                ));
            }
            SecretBytes::from(bytes)
        }
        (true, false) => SecretBytes::from(bytes),
        (true, true) => decode_base64(&bytes)?,
    };
    Ok(Payload {
        content_type,
        bytes: secret,
    })
}

/// Encodes a stored payload for a JSON reply: text as text, binary as base64.
///
/// A `text/plain` payload whose bytes are not UTF-8 (only possible for data
/// that did not come through [`decode`] or [`decode_bytes`], e.g. imported
/// from a Barbican database, where PUT stores any bytes) cannot be sent as
/// text without loss. It is sent as `application/octet-stream` with `base64`:
/// the bytes survive exactly and the reply says truthfully what it carries.
pub fn encode(payload: &Payload) -> EncodedPayload {
    let bytes = payload.bytes.expose_secret();
    if !payload.content_type.is_binary()
        && let Ok(text) = std::str::from_utf8(bytes)
    {
        return EncodedPayload {
            content_type: ContentType::TextPlain.as_str(),
            encoding: None,
            text: Zeroizing::new(text.to_owned()),
        };
    }
    let content_type = if payload.content_type.is_binary() {
        payload.content_type
    } else {
        ContentType::OctetStream
    };
    // Sized up front so the buffer never reallocates and leaves a copy behind.
    let mut text = Zeroizing::new(String::with_capacity(base64_len(bytes.len())));
    STANDARD_BASE64.encode_string(bytes, &mut text);
    EncodedPayload {
        content_type: content_type.as_str(),
        encoding: Some(BASE64),
        text,
    }
}

/// Parses a payload content type into its normalised form (see the module
/// docs for what is tolerated). Refusals name `payload_content_type`.
pub fn parse_content_type(raw: &str) -> Result<ContentType> {
    let mut parts = raw.split(';');
    // `split` always yields at least one item.
    let essence = parts.next().unwrap_or_default().trim();
    let params: Vec<&str> = parts.collect();
    let content_type = if essence.eq_ignore_ascii_case("text/plain") {
        ContentType::TextPlain
    } else if essence.eq_ignore_ascii_case("application/octet-stream") {
        ContentType::OctetStream
    } else if essence.eq_ignore_ascii_case("application/pkcs8") {
        ContentType::Pkcs8
    } else {
        return Err(unsupported_content_type());
    };
    match params.as_slice() {
        [] => Ok(content_type),
        [param] if content_type == ContentType::TextPlain && is_utf8_charset(param) => {
            Ok(content_type)
        }
        _ => Err(unsupported_content_type()),
    }
}

/// The POST schema's enum for `payload_content_encoding`: exactly `base64`.
fn check_encoding_schema(encoding: Option<&str>) -> Result<()> {
    match encoding {
        Some(enc) if enc != BASE64 => Err(Error::invalid(
            "payload_content_encoding",
            format!("{} is not one of ['base64']", python_repr(enc)),
        )),
        _ => Ok(()),
    }
}

fn unsupported_content_type() -> Error {
    Error::invalid(
        "payload_content_type",
        "payload_content_type is not one of ['text/plain', 'text/plain;charset=utf-8', \
         'text/plain; charset=utf-8', 'application/octet-stream', 'application/pkcs8']",
    )
}

fn empty_payload() -> Error {
    Error::invalid("payload", "If 'payload' specified, must be non empty")
}

fn invalid_base64() -> Error {
    Error::invalid("payload", "Invalid payload for payload_content_encoding")
}

fn is_utf8_charset(param: &str) -> bool {
    let Some((name, value)) = param.split_once('=') else {
        return false;
    };
    let value = value.trim();
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    name.trim().eq_ignore_ascii_case("charset") && value.eq_ignore_ascii_case("utf-8")
}

fn check_size(len: usize, rules: &PayloadRules) -> Result<()> {
    if len > rules.max_bytes {
        return Err(Error::new(
            ErrorKind::TooLarge,
            "Provided information too large to process",
        )
        .with_field("payload"));
    }
    Ok(())
}

/// Python's `str.strip()` with no argument: Unicode whitespace plus the
/// separators U+001C..U+001F, which Python counts as space and Rust does not.
fn python_strip(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}

/// Strict base64 into a wiped buffer, ignoring ASCII whitespace (line breaks).
fn decode_base64(text: &[u8]) -> Result<SecretBytes> {
    let compact;
    let text = if text.iter().any(u8::is_ascii_whitespace) {
        compact = Zeroizing::new(
            text.iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect::<Vec<u8>>(),
        );
        compact.as_slice()
    } else {
        text
    };
    let mut out = Zeroizing::new(vec![0u8; text.len() / 4 * 3 + 3]);
    let len = STANDARD_BASE64
        .decode_slice(text, &mut out)
        .map_err(|e| invalid_base64().with_source(e))?;
    if len == 0 {
        return Err(empty_payload());
    }
    out.truncate(len);
    Ok(SecretBytes::from(out))
}

fn base64_len(len: usize) -> usize {
    len.div_ceil(3).saturating_mul(4)
}

/// Quotes user input the way Barbican's messages show it (`'…'`), escaped and
/// cut short so an error message stays one short line.
fn python_repr(s: &str) -> String {
    const MAX_CHARS: usize = 64;
    let mut shown: String = s
        .chars()
        .take(MAX_CHARS)
        .flat_map(char::escape_debug)
        .collect();
    if s.chars().nth(MAX_CHARS).is_some() {
        shown.push('…');
    }
    format!("'{shown}'")
}

#[cfg(test)]
mod tests;
