//! SecretStore on every catalog and backend (the conformance suite): every
//! behaviour of the foundation, and every refused input leaving the catalog
//! unchanged.
//!
//! One test binary with a module per topic; each conformance test runs as
//! `<topic>::<catalog>_<backend>::<name>`.

#[path = "../common/mod.rs"]
mod common;

mod catalog_copy;
mod consumers_and_acls;
mod expiry_and_listing;
mod objects;
mod orders;
mod secrets;

use keywarden::store::NewSecret;

fn text_secret(name: &str, payload: &str) -> NewSecret {
    NewSecret::new()
        .name(name)
        .payload_text(payload, Some("text/plain"), None)
}
