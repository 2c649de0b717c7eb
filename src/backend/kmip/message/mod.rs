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

/// Who we are to the server beside the TLS client certificate.
pub struct Credential<'a> {
    pub username: &'a SecretBytes,
    pub password: Option<&'a SecretBytes>,
}

/// What goes into a batch item's Request Payload.
pub enum Payload<'a> {
    /// Register of any object type.
    Register(&'a Object<'a>),
    /// Create of a symmetric key.
    Create {
        name: &'a str,
        algorithm: u32,
        length: i32,
    },
    /// Create Key Pair.
    CreateKeyPair {
        private_name: &'a str,
        public_name: &'a str,
        algorithm: u32,
        length: i32,
    },
    /// Get of an object as the server holds it (no key format asked for).
    Get {
        uid: &'a str,
    },
    /// Get Attributes of an object's Name attributes: how a catalog row is
    /// checked to point at the object made for that secret.
    GetNames {
        uid: &'a str,
    },
    /// Revoke, for Cessation of Operation (before destroying an active key).
    Revoke {
        uid: &'a str,
    },
    Destroy {
        uid: &'a str,
    },
    /// Query of the server's information: the startup check.
    Query,
}

impl Payload<'_> {
    pub fn operation(&self) -> Operation {
        match self {
            Payload::Register(_) => Operation::Register,
            Payload::Create { .. } => Operation::Create,
            Payload::CreateKeyPair { .. } => Operation::CreateKeyPair,
            Payload::Get { .. } => Operation::Get,
            Payload::GetNames { .. } => Operation::GetAttributes,
            Payload::Revoke { .. } => Operation::Revoke,
            Payload::Destroy { .. } => Operation::Destroy,
            Payload::Query => Operation::Query,
        }
    }

    /// Roughly how many bytes it encodes to (the buffer is sized once).
    fn size_hint(&self) -> usize {
        256 + match self {
            Payload::Register(o) => o.material.len() + o.name.len(),
            Payload::Create { name, .. } => name.len(),
            Payload::CreateKeyPair {
                private_name,
                public_name,
                ..
            } => private_name.len() + public_name.len(),
            Payload::Get { uid }
            | Payload::GetNames { uid }
            | Payload::Revoke { uid }
            | Payload::Destroy { uid } => uid.len(),
            Payload::Query => 0,
        }
    }
}

/// An object to register: its type, attributes and material.
pub struct Object<'a> {
    pub object_type: ObjectType,
    pub name: &'a str,
    /// For keys: the key format of `material`.
    pub key_format: u32,
    pub algorithm: Option<u32>,
    pub length: Option<i32>,
    pub usage_mask: Option<i32>,
    pub material: &'a [u8],
}

/// Encodes one request message with one batch item per payload.
pub fn encode_request(
    version: (i32, i32),
    credential: Option<&Credential<'_>>,
    payloads: &[Payload<'_>],
) -> zeroize::Zeroizing<Vec<u8>> {
    let size = 1024 + payloads.iter().map(Payload::size_hint).sum::<usize>();
    let mut w = Writer::with_capacity(size);
    w.structure(REQUEST_MESSAGE, |w| {
        w.structure(REQUEST_HEADER, |w| {
            w.structure(PROTOCOL_VERSION, |w| {
                w.integer(PROTOCOL_VERSION_MAJOR, version.0);
                w.integer(PROTOCOL_VERSION_MINOR, version.1);
            });
            if let Some(c) = credential {
                w.structure(AUTHENTICATION, |w| {
                    w.structure(CREDENTIAL, |w| {
                        w.enumeration(CREDENTIAL_TYPE, CREDENTIAL_USERNAME_AND_PASSWORD);
                        w.structure(CREDENTIAL_VALUE, |w| {
                            w.secret_text(USERNAME, c.username);
                            if let Some(p) = c.password {
                                w.secret_text(PASSWORD, p);
                            }
                        });
                    });
                });
            }
            w.integer(
                BATCH_COUNT,
                i32::try_from(payloads.len()).unwrap_or(i32::MAX),
            );
        });
        for (index, payload) in payloads.iter().enumerate() {
            w.structure(BATCH_ITEM, |w| {
                w.enumeration(OPERATION, payload.operation().code());
                // Required once a message has more than one item (§6.4).
                if payloads.len() > 1 {
                    w.bytes(
                        UNIQUE_BATCH_ITEM_ID,
                        &[u8::try_from(index).unwrap_or(u8::MAX)],
                    );
                }
                match payload {
                    Payload::Register(object) => write_register(w, object),
                    Payload::Create {
                        name,
                        algorithm,
                        length,
                    } => w.structure(REQUEST_PAYLOAD, |w| {
                        w.enumeration(OBJECT_TYPE, ObjectType::SymmetricKey as u32);
                        w.structure(TEMPLATE_ATTRIBUTE, |w| {
                            name_attribute(w, name);
                            enum_attribute(w, "Cryptographic Algorithm", *algorithm);
                            int_attribute(w, "Cryptographic Length", *length);
                            int_attribute(
                                w,
                                "Cryptographic Usage Mask",
                                usage::ENCRYPT | usage::DECRYPT,
                            );
                        });
                    }),
                    Payload::CreateKeyPair {
                        private_name,
                        public_name,
                        algorithm,
                        length,
                    } => w.structure(REQUEST_PAYLOAD, |w| {
                        w.structure(COMMON_TEMPLATE_ATTRIBUTE, |w| {
                            enum_attribute(w, "Cryptographic Algorithm", *algorithm);
                            int_attribute(w, "Cryptographic Length", *length);
                        });
                        w.structure(PRIVATE_KEY_TEMPLATE_ATTRIBUTE, |w| {
                            name_attribute(w, private_name);
                            int_attribute(
                                w,
                                "Cryptographic Usage Mask",
                                usage::SIGN | usage::DECRYPT,
                            );
                        });
                        w.structure(PUBLIC_KEY_TEMPLATE_ATTRIBUTE, |w| {
                            name_attribute(w, public_name);
                            int_attribute(
                                w,
                                "Cryptographic Usage Mask",
                                usage::VERIFY | usage::ENCRYPT,
                            );
                        });
                    }),
                    Payload::Get { uid } | Payload::Destroy { uid } => {
                        w.structure(REQUEST_PAYLOAD, |w| w.text(UNIQUE_IDENTIFIER, uid));
                    }
                    Payload::GetNames { uid } => w.structure(REQUEST_PAYLOAD, |w| {
                        w.text(UNIQUE_IDENTIFIER, uid);
                        w.text(ATTRIBUTE_NAME, "Name");
                    }),
                    Payload::Revoke { uid } => w.structure(REQUEST_PAYLOAD, |w| {
                        w.text(UNIQUE_IDENTIFIER, uid);
                        w.structure(REVOCATION_REASON, |w| {
                            w.enumeration(
                                REVOCATION_REASON_CODE,
                                REVOCATION_CESSATION_OF_OPERATION,
                            );
                        });
                    }),
                    Payload::Query => w.structure(REQUEST_PAYLOAD, |w| {
                        w.enumeration(QUERY_FUNCTION, QUERY_SERVER_INFORMATION);
                    }),
                }
            });
        }
    });
    w.into_bytes()
}

fn name_attribute(w: &mut Writer, name: &str) {
    w.structure(ATTRIBUTE, |w| {
        w.text(ATTRIBUTE_NAME, "Name");
        w.structure(ATTRIBUTE_VALUE, |w| {
            w.text(NAME_VALUE, name);
            w.enumeration(NAME_TYPE, NAME_UNINTERPRETED_TEXT);
        });
    });
}

fn enum_attribute(w: &mut Writer, name: &str, value: u32) {
    w.structure(ATTRIBUTE, |w| {
        w.text(ATTRIBUTE_NAME, name);
        w.enumeration(ATTRIBUTE_VALUE, value);
    });
}

fn int_attribute(w: &mut Writer, name: &str, value: i32) {
    w.structure(ATTRIBUTE, |w| {
        w.text(ATTRIBUTE_NAME, name);
        w.integer(ATTRIBUTE_VALUE, value);
    });
}

fn write_register(w: &mut Writer, o: &Object<'_>) {
    w.structure(REQUEST_PAYLOAD, |w| {
        w.enumeration(OBJECT_TYPE, o.object_type as u32);
        w.structure(TEMPLATE_ATTRIBUTE, |w| {
            name_attribute(w, o.name);
            if let Some(mask) = o.usage_mask {
                int_attribute(w, "Cryptographic Usage Mask", mask);
            }
        });
        let key_block = |w: &mut Writer| {
            w.structure(KEY_BLOCK, |w| {
                w.enumeration(KEY_FORMAT_TYPE, o.key_format);
                w.structure(KEY_VALUE, |w| w.bytes(KEY_MATERIAL, o.material));
                if let Some(a) = o.algorithm {
                    w.enumeration(CRYPTOGRAPHIC_ALGORITHM, a);
                }
                if let Some(l) = o.length {
                    w.integer(CRYPTOGRAPHIC_LENGTH, l);
                }
            });
        };
        w.structure(o.object_type.object_tag(), |w| match o.object_type {
            ObjectType::SymmetricKey | ObjectType::PublicKey | ObjectType::PrivateKey => {
                key_block(w)
            }
            ObjectType::SecretData => {
                w.enumeration(SECRET_DATA_TYPE, SECRET_DATA_PASSWORD);
                key_block(w);
            }
            ObjectType::OpaqueObject => {
                w.enumeration(OPAQUE_DATA_TYPE, OPAQUE_DATA_NONE);
                w.bytes(OPAQUE_DATA_VALUE, o.material);
            }
            ObjectType::Certificate => {
                w.enumeration(CERTIFICATE_TYPE, CERTIFICATE_X509);
                w.bytes(CERTIFICATE_VALUE, o.material);
            }
        });
    });
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
mod tests {
    use super::*;

    fn response(status: u32, reason: Option<u32>, message: Option<&str>) -> Item {
        let mut w = Writer::with_capacity(256);
        w.structure(RESPONSE_MESSAGE, |w| {
            w.structure(RESPONSE_HEADER, |w| w.integer(BATCH_COUNT, 1));
            w.structure(BATCH_ITEM, |w| {
                w.enumeration(OPERATION, Operation::Get.code());
                w.enumeration(RESULT_STATUS, status);
                if let Some(r) = reason {
                    w.enumeration(RESULT_REASON, r);
                }
                if let Some(m) = message {
                    w.text(RESULT_MESSAGE, m);
                }
            });
        });
        ttlv::decode(&w.into_bytes()).unwrap()
    }

    #[test]
    fn failures_name_operation_and_reason_and_map_to_kinds() {
        let e = response_payloads(&[Operation::Get], response(1, Some(1), Some("gone\n")))
            .err()
            .unwrap();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(e.to_string().contains("KMIP Get failed"), "{e}");
        assert!(e.to_string().contains("ItemNotFound"), "{e}");
        let src = std::error::Error::source(&e).unwrap();
        let failure = src.downcast_ref::<KmipFailure>().unwrap();
        assert_eq!(failure.message.as_deref(), Some("gone"));
        let e = response_payloads(&[Operation::Get], response(1, Some(0x0C), None))
            .err()
            .unwrap();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
        let e = response_payloads(&[Operation::Get], response(1, Some(0x4242), None))
            .err()
            .unwrap();
        assert_eq!(e.kind(), ErrorKind::Storage);
        assert!(e.to_string().contains("0x4242"), "{e}");
        assert!(response_payloads(&[Operation::Get], response(0, None, None)).is_ok());
        let e = response_payloads(&[Operation::Destroy], response(0, None, None))
            .err()
            .unwrap();
        assert_eq!(e.kind(), ErrorKind::Storage);
    }

    #[test]
    fn register_request_carries_every_object_type() {
        for t in [
            ObjectType::SymmetricKey,
            ObjectType::PrivateKey,
            ObjectType::PublicKey,
            ObjectType::SecretData,
            ObjectType::OpaqueObject,
            ObjectType::Certificate,
        ] {
            let object = Object {
                object_type: t,
                name: "n",
                key_format: key_format::RAW,
                algorithm: Some(algorithm::AES),
                length: Some(128),
                usage_mask: None,
                material: &[9; 16],
            };
            let bytes = encode_request((1, 2), None, &[Payload::Register(&object)]);
            let msg = ttlv::decode(&bytes).unwrap();
            let payload = msg
                .child(BATCH_ITEM)
                .and_then(|b| b.child(REQUEST_PAYLOAD))
                .unwrap();
            assert_eq!(
                payload.child(OBJECT_TYPE).and_then(Item::as_enum),
                Some(t as u32)
            );
            assert!(payload.child(t.object_tag()).is_some(), "{t:?}");
        }
    }

    /// Request Payloads as kmip-protocol 0.4.3 / kmip-ttlv 0.3.5 encoded them
    /// (`kmip_ttlv::ser::to_vec` of its `RequestPayload`, captured before
    /// they were removed), which PyKMIP 0.11 accepts: (payload, uid, TTLV).
    const KMIP_PROTOCOL_PAYLOADS: &[(&str, &str, &str)] = &[
        (
            "get",
            "1",
            concat!("42007901000000104200940700000001", "3100000000000000",),
        ),
        (
            "get_names",
            "1",
            concat!(
                "42007901000000204200940700000001",
                "310000000000000042000a0700000004",
                "4e616d6500000000",
            ),
        ),
        (
            "revoke",
            "1",
            concat!(
                "42007901000000284200940700000001",
                "31000000000000004200810100000010",
                "42008205000000040000000600000000",
            ),
        ),
        (
            "destroy",
            "1",
            concat!("42007901000000104200940700000001", "3100000000000000",),
        ),
        (
            "get",
            "uid-1234",
            concat!("42007901000000104200940700000008", "7569642d31323334",),
        ),
        (
            "get_names",
            "uid-1234",
            concat!(
                "42007901000000204200940700000008",
                "7569642d3132333442000a0700000004",
                "4e616d6500000000",
            ),
        ),
        (
            "revoke",
            "uid-1234",
            concat!(
                "42007901000000284200940700000008",
                "7569642d313233344200810100000010",
                "42008205000000040000000600000000",
            ),
        ),
        (
            "destroy",
            "uid-1234",
            concat!("42007901000000104200940700000008", "7569642d31323334",),
        ),
        (
            "get",
            "a-longer-unique-identifier-9",
            concat!(
                "4200790100000028420094070000001c",
                "612d6c6f6e6765722d756e697175652d",
                "6964656e7469666965722d3900000000",
            ),
        ),
        (
            "get_names",
            "a-longer-unique-identifier-9",
            concat!(
                "4200790100000038420094070000001c",
                "612d6c6f6e6765722d756e697175652d",
                "6964656e7469666965722d3900000000",
                "42000a07000000044e616d6500000000",
            ),
        ),
        (
            "revoke",
            "a-longer-unique-identifier-9",
            concat!(
                "4200790100000040420094070000001c",
                "612d6c6f6e6765722d756e697175652d",
                "6964656e7469666965722d3900000000",
                "42008101000000104200820500000004",
                "0000000600000000",
            ),
        ),
        (
            "destroy",
            "a-longer-unique-identifier-9",
            concat!(
                "4200790100000028420094070000001c",
                "612d6c6f6e6765722d756e697175652d",
                "6964656e7469666965722d3900000000",
            ),
        ),
        (
            "query",
            "-",
            concat!("42007901000000104200740500000004", "0000000300000000",),
        ),
    ];

    /// A whole two-item request (Get and Get Attributes of `uid-1234`,
    /// protocol 1.2, no credential) as the backend sent it with those
    /// payloads from kmip-protocol.
    const KMIP_PROTOCOL_MESSAGE: &str = concat!(
        "42007801000000d04200770100000038",
        "420069010000002042006a0200000004",
        "000000010000000042006b0200000004",
        "000000020000000042000d0200000004",
        "000000020000000042000f0100000038",
        "42005c05000000040000000a00000000",
        "42009308000000010000000000000000",
        "42007901000000104200940700000008",
        "7569642d3132333442000f0100000048",
        "42005c05000000040000000b00000000",
        "42009308000000010100000000000000",
        "42007901000000204200940700000008",
        "7569642d3132333442000a0700000004",
        "4e616d6500000000",
    );

    fn unhex(hex: &str) -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    fn payload<'a>(name: &str, uid: &'a str) -> Payload<'a> {
        match name {
            "get" => Payload::Get { uid },
            "get_names" => Payload::GetNames { uid },
            "revoke" => Payload::Revoke { uid },
            "destroy" => Payload::Destroy { uid },
            "query" => Payload::Query,
            other => panic!("no payload {other}"),
        }
    }

    #[test]
    fn the_five_payloads_encode_as_kmip_protocol_did() {
        for (name, uid, hex) in KMIP_PROTOCOL_PAYLOADS {
            let bytes = encode_request((1, 2), None, &[payload(name, uid)]);
            let message = ttlv::decode(&bytes).unwrap();
            let item = message
                .child(BATCH_ITEM)
                .and_then(|b| b.child(REQUEST_PAYLOAD))
                .unwrap();
            let mut w = Writer::with_capacity(256);
            w.item(item);
            assert_eq!(*w.into_bytes(), unhex(hex), "{name} {uid}");
            // The payload is the batch item's last field, written as it is.
            assert!(bytes.ends_with(&unhex(hex)), "{name} {uid}");
        }
        let two = encode_request(
            (1, 2),
            None,
            &[
                Payload::Get { uid: "uid-1234" },
                Payload::GetNames { uid: "uid-1234" },
            ],
        );
        assert_eq!(*two, unhex(KMIP_PROTOCOL_MESSAGE));
    }
}
