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
pub mod secret;
pub mod signature;
pub mod store;
pub(crate) mod toml_text;
pub mod volume;

pub use error::{Error, ErrorKind, Result};
