//! KMIP 1.x request and response messages: the framing (header, protocol
//! version, credential, one batch item per payload), the eight payloads we
//! send, and the server's result turned into our error kinds.
//!
//! Everything is written and read by our own TTLV codec (`ttlv`), one
//! codec for both directions. A Register carries the secret, which stays
//! in one wiped buffer; the protocol version is the configured one and the
//! password never becomes a `String`. Responses are untrusted and read by
//! the bounded reader, which knows every object type and result reason we
//! map. (kmip-protocol, which once encoded five of the payloads, can neither
//! register Secret Data, Opaque Objects or Certificates nor read their
//! responses; Cargo.toml says why it went.)

use std::fmt;

use super::ttlv::{self, Item, Writer};
use crate::error::{Error, ErrorKind, Result};
use crate::secret::SecretBytes;

mod request;

pub use request::{Credential, Object, Payload, encode_request};

// Tags (KMIP 1.0 §9.1.3.1).
pub const ATTRIBUTE: u32 = 0x420008;
pub const ATTRIBUTE_NAME: u32 = 0x42000A;
pub const ATTRIBUTE_VALUE: u32 = 0x42000B;
pub const AUTHENTICATION: u32 = 0x42000C;
pub const BATCH_COUNT: u32 = 0x42000D;
pub const BATCH_ITEM: u32 = 0x42000F;
pub const CERTIFICATE: u32 = 0x420013;
pub const CERTIFICATE_TYPE: u32 = 0x42001D;
pub const CERTIFICATE_VALUE: u32 = 0x42001E;
pub const COMMON_TEMPLATE_ATTRIBUTE: u32 = 0x42001F;
pub const CREDENTIAL: u32 = 0x420023;
pub const CREDENTIAL_TYPE: u32 = 0x420024;
pub const CREDENTIAL_VALUE: u32 = 0x420025;
pub const CRYPTOGRAPHIC_ALGORITHM: u32 = 0x420028;
pub const CRYPTOGRAPHIC_LENGTH: u32 = 0x42002A;
pub const KEY_BLOCK: u32 = 0x420040;
pub const KEY_FORMAT_TYPE: u32 = 0x420042;
pub const KEY_MATERIAL: u32 = 0x420043;
pub const KEY_VALUE: u32 = 0x420045;
pub const NAME_TYPE: u32 = 0x420054;
pub const NAME_VALUE: u32 = 0x420055;
pub const OBJECT_TYPE: u32 = 0x420057;
pub const OPAQUE_DATA_TYPE: u32 = 0x420059;
pub const OPAQUE_DATA_VALUE: u32 = 0x42005A;
pub const OPAQUE_OBJECT: u32 = 0x42005B;
pub const OPERATION: u32 = 0x42005C;
pub const PRIVATE_KEY: u32 = 0x420064;
pub const PRIVATE_KEY_TEMPLATE_ATTRIBUTE: u32 = 0x420065;
pub const PRIVATE_KEY_UNIQUE_IDENTIFIER: u32 = 0x420066;
pub const PROTOCOL_VERSION: u32 = 0x420069;
pub const PROTOCOL_VERSION_MAJOR: u32 = 0x42006A;
pub const PROTOCOL_VERSION_MINOR: u32 = 0x42006B;
pub const PUBLIC_KEY: u32 = 0x42006D;
pub const PUBLIC_KEY_TEMPLATE_ATTRIBUTE: u32 = 0x42006E;
pub const PUBLIC_KEY_UNIQUE_IDENTIFIER: u32 = 0x42006F;
pub const QUERY_FUNCTION: u32 = 0x420074;
pub const REQUEST_HEADER: u32 = 0x420077;
pub const REQUEST_MESSAGE: u32 = 0x420078;
pub const REQUEST_PAYLOAD: u32 = 0x420079;
pub const RESPONSE_HEADER: u32 = 0x42007A;
pub const RESPONSE_MESSAGE: u32 = 0x42007B;
pub const RESPONSE_PAYLOAD: u32 = 0x42007C;
pub const RESULT_MESSAGE: u32 = 0x42007D;
pub const RESULT_REASON: u32 = 0x42007E;
pub const RESULT_STATUS: u32 = 0x42007F;
pub const REVOCATION_REASON: u32 = 0x420081;
pub const REVOCATION_REASON_CODE: u32 = 0x420082;
pub const SECRET_DATA: u32 = 0x420085;
pub const SECRET_DATA_TYPE: u32 = 0x420086;
pub const SYMMETRIC_KEY: u32 = 0x42008F;
pub const TEMPLATE_ATTRIBUTE: u32 = 0x420091;
pub const UNIQUE_BATCH_ITEM_ID: u32 = 0x420093;
pub const UNIQUE_IDENTIFIER: u32 = 0x420094;
pub const USERNAME: u32 = 0x420099;
pub const PASSWORD: u32 = 0x4200A1;

/// Longest unique identifier we accept from a server (and keep in the catalog).
pub const MAX_UID_LEN: usize = 128;
/// How much of a server's result message we repeat in errors.
const MAX_SHOWN_MESSAGE: usize = 200;

/// The KMIP operations keywarden sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Create,
    CreateKeyPair,
    Register,
    Get,
    GetAttributes,
    Revoke,
    Destroy,
    Query,
}

impl Operation {
    pub const fn code(self) -> u32 {
        match self {
            Operation::Create => 0x01,
            Operation::CreateKeyPair => 0x02,
            Operation::Register => 0x03,
            Operation::Get => 0x0A,
            Operation::GetAttributes => 0x0B,
            Operation::Revoke => 0x13,
            Operation::Destroy => 0x14,
            Operation::Query => 0x18,
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// KMIP object types (§9.1.3.2.12).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectType {
    Certificate = 1,
    SymmetricKey = 2,
    PublicKey = 3,
    PrivateKey = 4,
    SecretData = 7,
    OpaqueObject = 8,
}

impl ObjectType {
    pub fn from_code(code: u32) -> Option<Self> {
        [
            ObjectType::Certificate,
            ObjectType::SymmetricKey,
            ObjectType::PublicKey,
            ObjectType::PrivateKey,
            ObjectType::SecretData,
            ObjectType::OpaqueObject,
        ]
        .into_iter()
        .find(|t| *t as u32 == code)
    }

    fn object_tag(self) -> u32 {
        match self {
            ObjectType::Certificate => CERTIFICATE,
            ObjectType::SymmetricKey => SYMMETRIC_KEY,
            ObjectType::PublicKey => PUBLIC_KEY,
            ObjectType::PrivateKey => PRIVATE_KEY,
            ObjectType::SecretData => SECRET_DATA,
            ObjectType::OpaqueObject => OPAQUE_OBJECT,
        }
    }
}

/// Key format types (§9.1.3.2.3) that we send or read.
pub mod key_format {
    pub const RAW: u32 = 0x01;
    pub const OPAQUE: u32 = 0x02;
    pub const PKCS1: u32 = 0x03;
    pub const PKCS8: u32 = 0x04;
    pub const X509: u32 = 0x05;
    pub const EC_PRIVATE_KEY: u32 = 0x06;
}

/// Cryptographic algorithms (§9.1.3.2.13).
pub mod algorithm {
    pub const DES: u32 = 0x01;
    pub const TRIPLE_DES: u32 = 0x02;
    pub const AES: u32 = 0x03;
    pub const RSA: u32 = 0x04;
    pub const DSA: u32 = 0x05;
    pub const ECDSA: u32 = 0x06;
    pub const HMAC_SHA1: u32 = 0x07;
    pub const HMAC_SHA224: u32 = 0x08;
    pub const HMAC_SHA256: u32 = 0x09;
    pub const HMAC_SHA384: u32 = 0x0A;
    pub const HMAC_SHA512: u32 = 0x0B;
    pub const CAMELLIA: u32 = 0x11;
    pub const EC: u32 = 0x1A;
}

/// Cryptographic Usage Mask bits (§9.1.3.3.1).
pub mod usage {
    pub const SIGN: i32 = 0x01;
    pub const VERIFY: i32 = 0x02;
    pub const ENCRYPT: i32 = 0x04;
    pub const DECRYPT: i32 = 0x08;
}

/// Secret Data Type Password (§9.1.3.2.8).
const SECRET_DATA_PASSWORD: u32 = 0x01;
/// Opaque Data Type: KMIP 1.x defines no value; PyKMIP (and Barbican's
/// KMIP plugin) use this one from the extension range.
const OPAQUE_DATA_NONE: u32 = 0x8000_0000;
const CERTIFICATE_X509: u32 = 0x01;
const CREDENTIAL_USERNAME_AND_PASSWORD: u32 = 0x01;
const NAME_UNINTERPRETED_TEXT: u32 = 0x01;
/// Revocation Reason Code Cessation of Operation (§9.1.3.2.17).
const REVOCATION_CESSATION_OF_OPERATION: u32 = 0x06;
/// Query Function Query Server Information (§9.1.3.2.23).
const QUERY_SERVER_INFORMATION: u32 = 0x03;
const RESULT_SUCCESS: u32 = 0x00;

/// The server's Result Reason (§9.1.3.2.29), kept when it is one we do
/// not know so the error can still name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResultReason {
    ItemNotFound,
    ResponseTooLarge,
    AuthenticationNotSuccessful,
    InvalidMessage,
    OperationNotSupported,
    MissingData,
    InvalidField,
    FeatureNotSupported,
    OperationCanceledByRequester,
    CryptographicFailure,
    IllegalOperation,
    PermissionDenied,
    ObjectArchived,
    IndexOutOfBounds,
    ApplicationNamespaceNotSupported,
    KeyFormatTypeNotSupported,
    KeyCompressionTypeNotSupported,
    EncodingOptionError,
    KeyValueNotPresent,
    Sensitive,
    NotExtractable,
    ObjectAlreadyExists,
    GeneralFailure,
    Other(u32),
}

impl ResultReason {
    pub fn from_code(code: u32) -> Self {
        use ResultReason::*;
        match code {
            0x01 => ItemNotFound,
            0x02 => ResponseTooLarge,
            0x03 => AuthenticationNotSuccessful,
            0x04 => InvalidMessage,
            0x05 => OperationNotSupported,
            0x06 => MissingData,
            0x07 => InvalidField,
            0x08 => FeatureNotSupported,
            0x09 => OperationCanceledByRequester,
            0x0A => CryptographicFailure,
            0x0B => IllegalOperation,
            0x0C => PermissionDenied,
            0x0D => ObjectArchived,
            0x0E => IndexOutOfBounds,
            0x0F => ApplicationNamespaceNotSupported,
            0x10 => KeyFormatTypeNotSupported,
            0x11 => KeyCompressionTypeNotSupported,
            0x12 => EncodingOptionError,
            0x13 => KeyValueNotPresent,
            0x16 => Sensitive,
            0x17 => NotExtractable,
            0x18 => ObjectAlreadyExists,
            0x100 => GeneralFailure,
            other => Other(other),
        }
    }

    /// What a caller can do about it.
    pub fn kind(self) -> ErrorKind {
        use ResultReason::*;
        match self {
            ItemNotFound => ErrorKind::NotFound,
            AuthenticationNotSuccessful | PermissionDenied | Sensitive | NotExtractable => {
                ErrorKind::PermissionDenied
            }
            InvalidMessage | MissingData | InvalidField | IndexOutOfBounds
            | EncodingOptionError | KeyValueNotPresent => ErrorKind::InvalidInput,
            OperationNotSupported
            | FeatureNotSupported
            | ApplicationNamespaceNotSupported
            | KeyFormatTypeNotSupported
            | KeyCompressionTypeNotSupported => ErrorKind::Unsupported,
            ObjectAlreadyExists | IllegalOperation | ObjectArchived => ErrorKind::Conflict,
            ResponseTooLarge
            | OperationCanceledByRequester
            | CryptographicFailure
            | GeneralFailure
            | Other(_) => ErrorKind::Storage,
        }
    }
}

/// A KMIP operation the server refused, as the typed source of our error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KmipFailure {
    pub operation: Operation,
    /// `None` when the server gave no reason (or the status was not "failed").
    pub reason: Option<ResultReason>,
    /// The server's Result Message, shortened and stripped of control characters.
    pub message: Option<String>,
}

impl fmt::Display for KmipFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KMIP {} failed", self.operation)?;
        match self.reason {
            Some(ResultReason::Other(code)) => write!(f, ", result reason {code:#x}")?,
            Some(r) => write!(f, ", result reason {r:?}")?,
            None => f.write_str(", no result reason")?,
        }
        if let Some(m) = &self.message {
            write!(f, ": {m}")?;
        }
        Ok(())
    }
}

impl std::error::Error for KmipFailure {}

/// A response the client could not make sense of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MalformedResponse {
    pub operation: Operation,
    pub problem: &'static str,
    pub decode: Option<ttlv::DecodeError>,
}

impl fmt::Display for MalformedResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "malformed KMIP {} response: {}",
            self.operation, self.problem
        )?;
        if let Some(d) = &self.decode {
            write!(f, " ({d})")?;
        }
        Ok(())
    }
}

impl std::error::Error for MalformedResponse {}

pub fn malformed(operation: Operation, problem: &'static str) -> Error {
    Error::new(
        ErrorKind::Storage,
        format!("the KMIP server's {operation} response is not understood: {problem}"),
    )
    .with_source(MalformedResponse {
        operation,
        problem,
        decode: None,
    })
}

/// Decodes a whole response message as read off the connection.
pub fn decode_response(operation: Operation, bytes: &[u8]) -> Result<Item> {
    ttlv::decode(bytes).map_err(|d| {
        Error::new(
            ErrorKind::Storage,
            format!("the KMIP server's {operation} response is not valid TTLV"),
        )
        .with_source(MalformedResponse {
            operation,
            problem: "not valid TTLV",
            decode: Some(d),
        })
    })
}

/// Reads a decoded response to a batch: one successful item per operation,
/// in order. The first failed item is the error.
pub fn response_payloads(operations: &[Operation], message: Item) -> Result<Vec<Item>> {
    let first = operations.first().copied().unwrap_or(Operation::Query);
    if message.tag != RESPONSE_MESSAGE {
        return Err(malformed(first, "not a Response Message"));
    }
    if message.child(RESPONSE_HEADER).is_none() {
        return Err(malformed(first, "no Response Header"));
    }
    let ttlv::Value::Structure(items) = message.value else {
        return Err(malformed(first, "not a structure"));
    };
    let mut batch: Vec<Item> = items.into_iter().filter(|i| i.tag == BATCH_ITEM).collect();
    if batch.len() == 1 && operations.len() > 1 {
        // A message-level failure comes back as one item: report it.
        batch_item_payload(first, batch.remove(0))?;
    }
    if batch.len() != operations.len() {
        return Err(malformed(
            first,
            "a Batch Item count that does not match the request",
        ));
    }
    let mut out = Vec::with_capacity(batch.len());
    for (item, &operation) in batch.into_iter().zip(operations) {
        out.push(batch_item_payload(operation, item)?);
    }
    Ok(out)
}

fn batch_item_payload(operation: Operation, item: Item) -> Result<Item> {
    if let Some(op) = item.child(OPERATION).and_then(Item::as_enum)
        && op != operation.code()
    {
        return Err(malformed(
            operation,
            "the Batch Item answers another operation",
        ));
    }
    let status = item
        .child(RESULT_STATUS)
        .and_then(Item::as_enum)
        .ok_or_else(|| malformed(operation, "no Result Status"))?;
    if status != RESULT_SUCCESS {
        let reason = item
            .child(RESULT_REASON)
            .and_then(Item::as_enum)
            .map(ResultReason::from_code);
        let message = item
            .child(RESULT_MESSAGE)
            .and_then(Item::as_text)
            .map(shown);
        let failure = KmipFailure {
            operation,
            reason,
            message,
        };
        let kind = match (status, reason) {
            // 2 = pending, 3 = undone: we never ask for asynchronous operations.
            (2 | 3, _) => ErrorKind::Unsupported,
            (_, Some(r)) => r.kind(),
            (_, None) => ErrorKind::Storage,
        };
        return Err(Error::new(kind, failure.to_string()).with_source(failure));
    }
    let ttlv::Value::Structure(fields) = item.value else {
        return Err(malformed(operation, "Batch Item is not a structure"));
    };
    Ok(fields
        .into_iter()
        .find(|i| i.tag == RESPONSE_PAYLOAD)
        .unwrap_or(Item {
            tag: RESPONSE_PAYLOAD,
            value: ttlv::Value::Structure(Vec::new()),
        }))
}

/// The Name values in a Get Attributes response payload.
pub fn names(payload: &Item) -> Vec<&str> {
    payload
        .children()
        .iter()
        .filter(|a| a.tag == ATTRIBUTE)
        .filter(|a| a.child(ATTRIBUTE_NAME).and_then(Item::as_text) == Some("Name"))
        .filter_map(|a| a.child(ATTRIBUTE_VALUE))
        .filter_map(|v| v.child(NAME_VALUE).and_then(Item::as_text))
        .collect()
}

/// A unique identifier from a response, checked for what we can keep.
pub fn uid(operation: Operation, item: Option<&Item>) -> Result<String> {
    let text = item
        .and_then(Item::as_text)
        .ok_or_else(|| malformed(operation, "no Unique Identifier"))?;
    if text.is_empty() || text.len() > MAX_UID_LEN || text.chars().any(char::is_control) {
        return Err(malformed(
            operation,
            "Unique Identifier is empty, too long or not printable",
        ));
    }
    Ok(text.to_owned())
}

fn shown(message: &str) -> String {
    message
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_SHOWN_MESSAGE)
        .collect()
}

/// The object returned by Get: its type, key format (for keys) and material.
pub struct Retrieved {
    pub object_type: ObjectType,
    pub key_format: Option<u32>,
    pub material: SecretBytes,
}

/// Reads a Get response payload.
pub fn retrieved(payload: &Item) -> Result<Retrieved> {
    let op = Operation::Get;
    let object_type = payload
        .child(OBJECT_TYPE)
        .and_then(Item::as_enum)
        .and_then(ObjectType::from_code)
        .ok_or_else(|| malformed(op, "no Object Type we know"))?;
    let object = payload
        .child(object_type.object_tag())
        .ok_or_else(|| malformed(op, "no object of the announced type"))?;
    let bytes_of = |item: Option<&Item>| {
        item.and_then(Item::as_bytes)
            .cloned()
            .ok_or_else(|| malformed(op, "object value is missing or not a byte string"))
    };
    Ok(match object_type {
        ObjectType::Certificate => Retrieved {
            object_type,
            key_format: None,
            material: bytes_of(object.child(CERTIFICATE_VALUE))?,
        },
        ObjectType::OpaqueObject => Retrieved {
            object_type,
            key_format: None,
            material: bytes_of(object.child(OPAQUE_DATA_VALUE))?,
        },
        ObjectType::SymmetricKey
        | ObjectType::PublicKey
        | ObjectType::PrivateKey
        | ObjectType::SecretData => {
            let block = object
                .child(KEY_BLOCK)
                .ok_or_else(|| malformed(op, "no Key Block"))?;
            if block.child(0x420046).is_some() {
                return Err(malformed(
                    op,
                    "the key came back wrapped, which was not asked for",
                ));
            }
            let format = block
                .child(KEY_FORMAT_TYPE)
                .and_then(Item::as_enum)
                .ok_or_else(|| malformed(op, "no Key Format Type"))?;
            let value = block
                .child(KEY_VALUE)
                .ok_or_else(|| malformed(op, "no Key Value"))?;
            // KMIP allows the Key Value to be the bare byte string too.
            let material = match value.as_bytes() {
                Some(b) => b.clone(),
                None => bytes_of(value.child(KEY_MATERIAL))?,
            };
            Retrieved {
                object_type,
                key_format: Some(format),
                material,
            }
        }
    })
}

/// Both identifiers of a CreateKeyPair response.
pub fn key_pair_uids(payload: &Item) -> Result<(String, String)> {
    let op = Operation::CreateKeyPair;
    Ok((
        uid(op, payload.child(PRIVATE_KEY_UNIQUE_IDENTIFIER))?,
        uid(op, payload.child(PUBLIC_KEY_UNIQUE_IDENTIFIER))?,
    ))
}

#[cfg(test)]
mod tests;
