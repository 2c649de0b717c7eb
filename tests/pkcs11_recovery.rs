//! The Pkcs11 backend survives a logout and a library reset: one
//! reinitialise-and-retry, then the operation succeeds. A test binary of its
//! own, with one test: it finalises the process-wide PKCS#11 library, which
//! would disturb any other test running beside it.
#![cfg(feature = "pkcs11")]

#[macro_use]
mod common;

use std::path::Path;
use std::sync::Arc;

use common::hsm;
use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use keywarden::backend::pkcs11::{Pkcs11, shared_context};
use keywarden::backend::{KeyManager, Scope};
use keywarden::catalog::{Catalog, SqliteCatalog};
use keywarden::model::{BackendId, ProjectId, SecretId};
use keywarden::secret::SecretBytes;

#[test]
fn relogin_after_logout_and_reinitialise_after_a_library_reset() {
    let Some(env) = hsm::env() else { return };
    let dir = tempfile::tempdir().unwrap();
    let catalog: Arc<dyn Catalog> = Arc::new(SqliteCatalog::open(dir.path().join("k.db")).unwrap());
    let backend = Pkcs11::connect(
        BackendId::new("hsm").unwrap(),
        &hsm::shared_config(),
        catalog,
    )
    .unwrap();
    let project = ProjectId::new("recovery").unwrap();
    let round_trip = |payload: &str| {
        let id = SecretId::new_random();
        let scope = Scope::new(&project, &id);
        let stored = backend
            .store(scope, &SecretBytes::copy_from(payload.as_bytes()))
            .unwrap();
        (id, stored)
    };
    let read = |id: &SecretId, stored| {
        let scope = Scope::new(&project, id);
        backend.retrieve(scope, stored).unwrap()
    };
    let (first, first_stored) = round_trip("before");
    assert_eq!(backend.stats().pool.recoveries, 0);

    // Another part of this process logs the token out: the login (and with
    // it every private session object, our cached project KEK) is gone.
    let ctx = shared_context(Path::new(&env.module)).unwrap();
    let slot = ctx
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).unwrap().label() == env.token)
        .unwrap();
    let s = ctx.open_rw_session(slot).unwrap();
    match s.login(UserType::User, Some(&AuthPin::new(env.pin.clone().into()))) {
        Ok(())
        | Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::UserAlreadyLoggedIn, _)) => {
        }
        Err(e) => panic!("login: {e}"),
    }
    s.logout().unwrap();
    drop(s);
    assert_eq!(read(&first, &first_stored).expose_secret(), b"before");
    let after_logout = backend.stats();
    assert_eq!(after_logout.pool.recoveries, 1, "{after_logout:?}");
    let (second, second_stored) = round_trip("after logout");

    // The library itself is finalised (a token reset, a fork, another
    // library user): every session handle is dead.
    ctx.clone().finalize().unwrap();
    assert_eq!(
        read(&second, &second_stored).expose_secret(),
        b"after logout"
    );
    assert_eq!(backend.stats().pool.recoveries, 2);
    let (third, third_stored) = round_trip("after reset");
    assert_eq!(read(&third, &third_stored).expose_secret(), b"after reset");
    assert_eq!(read(&first, &first_stored).expose_secret(), b"before");
    assert_eq!(backend.stats().pool.recoveries, 2, "one recovery per loss");
}
