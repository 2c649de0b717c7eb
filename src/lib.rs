#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod backend;
pub mod catalog;
pub mod config;
pub mod context;
pub(crate) mod crypto;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod keygen;
pub mod migration;
pub mod model;
pub mod object_keys;
pub mod payload;
pub mod policy;
#[cfg(any(test, feature = "kmip", feature = "pkcs11", feature = "postgres"))]
#[cfg_attr(
    not(all(feature = "kmip", feature = "pkcs11")),
    allow(
        dead_code,
        reason = "each pool user needs part of it; built together they use it all"
    )
)]
pub(crate) mod pool;
pub mod secret;
#[cfg(feature = "server")]
pub mod server;
pub mod signature;
pub mod store;
pub(crate) mod toml_text;
pub mod volume;

pub use error::{Error, ErrorKind, Result};
