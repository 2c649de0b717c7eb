//! The token connection: one PKCS#11 context per module in the process, a
//! bounded pool of logged-in sessions, and recovery from a lost session or a
//! token reset (one reinitialise-and-retry).
//!
//! Barbican opens and closes a session for every operation; here sessions
//! are opened once and reused. Every session belongs to an *epoch*: recovery
//! starts a new epoch, which retires every session, token handle and cached
//! project KEK of the old one at once.
//!
//! The worker sessions live in the crate's generic [`crate::pool::Pool`]:
//! the epoch rules fit it as its health check (a session of a past epoch
//! is never handed out or kept) and its `clear_idle` (recovery). What is
//! PKCS#11's own stays here: a session of a finalised library instance is
//! forgotten, not closed (its handle number may belong to someone else
//! now), and a checkout waits as long as it takes, since a session is on
//! loan only for one token call. The key-holding session is not pooled.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Function, Pkcs11 as Context};
use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::object::ObjectHandle;
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::RawAuthPin;

use super::config::TokenSelector;
use crate::error::{Error, ErrorKind, Result};
use crate::pool::{Lease, Pool};
use crate::secret::SecretBytes;

/// The process-wide PKCS#11 context for `module`, initialised on first use.
///
/// `C_Initialize` may be called once per process and module; everything in
/// this process that talks to `module` (several backends, tests, tools) must
/// share this context rather than load the module again.
pub fn shared_context(module: &Path) -> Result<Context> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Context>>> = OnceLock::new();
    let key = std::fs::canonicalize(module).unwrap_or_else(|_| module.to_path_buf());
    let mut modules = lock(MODULES.get_or_init(Default::default));
    if let Some(ctx) = modules.get(&key) {
        return Ok(ctx.clone());
    }
    let ctx = Context::new(&key).map_err(|e| {
        Error::new(
            ErrorKind::Config,
            format!("cannot load PKCS#11 module {}", module.display()),
        )
        .with_source(e)
    })?;
    initialize(&ctx)?;
    modules.insert(key, ctx.clone());
    Ok(ctx)
}

/// `C_Initialize` with OS locking; "already initialised" (by someone else in
/// this process, or before a reset) counts as success.
fn initialize(ctx: &Context) -> Result<()> {
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(P11Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(()),
        Err(e) => Err(p11_error(e)),
    }
}

/// A PKCS#11 failure as our error: the context names the function and the
/// return value (`C_Login returned CKR_PIN_INCORRECT`); the cryptoki error
/// stays reachable as the typed source.
pub(crate) fn p11_error(e: P11Error) -> Error {
    match &e {
        P11Error::Pkcs11(rv, function) => {
            let kind = match rv {
                RvError::PinIncorrect
                | RvError::PinInvalid
                | RvError::PinLenRange
                | RvError::PinExpired
                | RvError::PinLocked
                | RvError::SlotIdInvalid
                | RvError::KeyTypeInconsistent
                | RvError::KeySizeRange
                | RvError::KeyFunctionNotPermitted
                | RvError::KeyUnextractable
                | RvError::TemplateInconsistent
                | RvError::TemplateIncomplete
                | RvError::AttributeValueInvalid => ErrorKind::Config,
                RvError::MechanismInvalid | RvError::MechanismParamInvalid => {
                    ErrorKind::Unsupported
                }
                _ => ErrorKind::Unavailable,
            };
            Error::new(
                kind,
                format!(
                    "PKCS#11 {} returned {}",
                    function_name(*function),
                    rv_name(*rv)
                ),
            )
            .with_source(e)
        }
        P11Error::LibraryLoading(_) => {
            Error::new(ErrorKind::Config, "cannot load the PKCS#11 module").with_source(e)
        }
        _ => Error::new(ErrorKind::Unavailable, "PKCS#11 call failed").with_source(e),
    }
}

/// `C_Encrypt` for cryptoki's `Function::Encrypt`.
pub(crate) fn function_name(f: Function) -> String {
    format!("C_{f:?}")
}

/// `CKR_SESSION_HANDLE_INVALID` for cryptoki's `RvError::SessionHandleInvalid`.
pub(crate) fn rv_name(rv: RvError) -> String {
    let camel = format!("{rv:?}");
    let mut out = String::from("CKR_");
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// The PKCS#11 return value behind `e`, if it came from a PKCS#11 call.
pub(crate) fn rv_of(e: &Error) -> Option<RvError> {
    let source = std::error::Error::source(e)?;
    match source.downcast_ref::<P11Error>()? {
        P11Error::Pkcs11(rv, _) => Some(*rv),
        _ => None,
    }
}

/// What a failure says about the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lost {
    /// The library lost its state (finalised, reset): initialise again.
    Library,
    /// Sessions, login or handles are gone: new sessions, new handles.
    Sessions,
}

pub(crate) fn lost(e: &Error) -> Option<Lost> {
    match rv_of(e)? {
        RvError::CryptokiNotInitialized => Some(Lost::Library),
        RvError::SessionHandleInvalid
        | RvError::SessionClosed
        | RvError::SessionCount
        | RvError::DeviceRemoved
        | RvError::DeviceError
        | RvError::TokenNotPresent
        | RvError::TokenNotRecognized
        | RvError::UserNotLoggedIn
        | RvError::KeyHandleInvalid
        | RvError::ObjectHandleInvalid => Some(Lost::Sessions),
        _ => None,
    }
}

/// Counters for tests, benchmarks and operators.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Sessions opened since the backend started (C_OpenSession calls).
    pub sessions_opened: u64,
    /// Sessions open now for operations (the key-holding session not counted).
    pub sessions_open: usize,
    /// Times the connection was rebuilt after a lost session or reset.
    pub recoveries: u64,
}

/// One token, logged in, with its session pool.
pub(crate) struct Token {
    ctx: Context,
    selector: TokenSelector,
    pin: SecretBytes,
    slot: Mutex<Slot>,
    /// Worker sessions; size 0 opens one per operation (Barbican's way, for
    /// comparison).
    pool: Pool<Pooled>,
    /// The session that creates (and so owns) unwrapped project KEKs: session
    /// objects die with the session that made them, so this one stays open
    /// for the epoch, whatever the workers do.
    holder: Mutex<Option<Pooled>>,
    epochs: Arc<Epochs>,
    recovering: Mutex<()>,
    /// Handles whose cache entry was dropped, destroyed by the holder.
    graveyard: Arc<Mutex<Vec<(ObjectHandle, u64)>>>,
    opened: AtomicU64,
    recoveries: AtomicU64,
}

struct Epochs {
    current: AtomicU64,
    /// Sessions of epochs before this one died with the library: their
    /// handles may be reused by the new library instance, so they are
    /// forgotten rather than closed.
    library: AtomicU64,
}

/// A logged-in session and the epoch it belongs to.
struct Pooled {
    /// `Some` until dropped.
    session: Option<Session>,
    epoch: u64,
    epochs: Arc<Epochs>,
}

impl Pooled {
    fn session(&self) -> Result<&Session> {
        self.session.as_ref().ok_or_else(internal)
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        // Closing it could close an unrelated session of the new library
        // instance that happens to reuse the handle number.
        if let Some(session) = self.session.take()
            && self.epoch < self.epochs.library.load(Ordering::Acquire)
        {
            std::mem::forget(session);
        }
    }
}

impl Token {
    pub(crate) fn open(
        module: &Path,
        selector: TokenSelector,
        pin: SecretBytes,
        pool_size: usize,
    ) -> Result<Self> {
        let ctx = shared_context(module)?;
        let slot = find_slot(&ctx, &selector)?;
        let epochs = Arc::new(Epochs {
            current: AtomicU64::new(0),
            library: AtomicU64::new(0),
        });
        let current = epochs.clone();
        let token = Token {
            ctx,
            selector,
            pin,
            slot: Mutex::new(slot),
            pool: Pool::new(pool_size, None).with_health_check(move |p: &Pooled| {
                p.epoch == current.current.load(Ordering::Acquire)
            }),
            holder: Mutex::new(None),
            epochs,
            recovering: Mutex::new(()),
            graveyard: Arc::new(Mutex::new(Vec::new())),
            opened: AtomicU64::new(0),
            recoveries: AtomicU64::new(0),
        };
        // Logs in (a wrong PIN fails here) and keeps the login alive.
        token.with_holder(|_, _| Ok(()))?;
        Ok(token)
    }

    pub(crate) fn context(&self) -> &Context {
        &self.ctx
    }

    pub(crate) fn slot(&self) -> Slot {
        *lock(&self.slot)
    }

    pub(crate) fn epoch(&self) -> u64 {
        self.epochs.current.load(Ordering::Acquire)
    }

    pub(crate) fn stats(&self) -> PoolStats {
        PoolStats {
            sessions_opened: self.opened.load(Ordering::Relaxed),
            sessions_open: self.pool.occupancy().open,
            recoveries: self.recoveries.load(Ordering::Relaxed),
        }
    }

    /// Runs `op`; if it failed because the session, the login or the
    /// library was lost, rebuilds the connection once and runs it again.
    pub(crate) fn retrying<T>(&self, op: impl Fn() -> Result<T>) -> Result<T> {
        let epoch = self.epoch();
        match op() {
            Err(e) if lost(&e).is_some() => {
                let how = lost(&e).unwrap_or(Lost::Sessions);
                tracing::warn!(error = %e, "PKCS#11 connection lost; reinitialising and retrying once");
                self.recover(epoch, how)?;
                op()
            }
            other => other,
        }
    }

    /// Runs `op` on a worker session from the pool.
    pub(crate) fn with_session<T>(&self, op: impl FnOnce(&Session, u64) -> Result<T>) -> Result<T> {
        let lease = self.checkout()?;
        op(lease.session()?, lease.epoch)
    }

    /// Runs `op` on the key-holding session (serialised: unwraps and key
    /// generation are rare thanks to the cache).
    pub(crate) fn with_holder<T>(&self, op: impl FnOnce(&Session, u64) -> Result<T>) -> Result<T> {
        let epoch = self.epoch();
        let mut holder = lock(&self.holder);
        if holder.as_ref().is_some_and(|h| h.epoch != epoch) {
            drop(holder.take());
        }
        if holder.is_none() {
            *holder = Some(self.open_session(epoch)?);
        }
        let h = holder.as_ref().ok_or_else(internal)?.session()?;
        self.bury(h, epoch);
        op(h, epoch)
    }

    /// Queues a handle for destruction by the holder session.
    pub(crate) fn destroy_later(&self, handle: ObjectHandle, epoch: u64) {
        lock(&self.graveyard).push((handle, epoch));
    }

    /// Where dropped cache entries queue their handles.
    pub(crate) fn graveyard(&self) -> Arc<Mutex<Vec<(ObjectHandle, u64)>>> {
        self.graveyard.clone()
    }

    fn bury(&self, session: &Session, epoch: u64) {
        let dead = std::mem::take(&mut *lock(&self.graveyard));
        for (handle, e) in dead {
            // Handles of earlier epochs died with their session.
            if e == epoch
                && let Err(err) = session.destroy_object(handle)
            {
                tracing::debug!(error = %p11_error(err), "could not destroy an evicted project KEK handle");
            }
        }
    }

    fn checkout(&self) -> Result<Lease<'_, Pooled>> {
        let epoch = self.epoch();
        self.pool
            .checkout(|| self.open_session(epoch))
            .map_err(|e| {
                e.or_pool(|refused| {
                    Error::new(
                        ErrorKind::Unavailable,
                        format!("PKCS#11 sessions: {refused}"),
                    )
                    .with_source(refused)
                })
            })
    }

    /// C_OpenSession (read-write) and C_Login as the user.
    fn open_session(&self, epoch: u64) -> Result<Pooled> {
        let session = self.ctx.open_rw_session(self.slot()).map_err(p11_error)?;
        self.opened.fetch_add(1, Ordering::Relaxed);
        let pin = RawAuthPin::new(Box::new(self.pin.expose_secret().to_vec()));
        match session.login_with_raw(UserType::User, &pin) {
            // Login state is per token and application: another session of
            // this process logged in already.
            Ok(()) | Err(P11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => return Err(p11_error(e)),
        }
        Ok(Pooled {
            session: Some(session),
            epoch,
            epochs: self.epochs.clone(),
        })
    }

    /// Starts a new epoch unless another thread already did since `seen`:
    /// initialises the library again if it was lost, finds the token again,
    /// and retires every session and handle of the old epoch.
    fn recover(&self, seen: u64, how: Lost) -> Result<()> {
        let _one_at_a_time = lock(&self.recovering);
        if self.epoch() != seen {
            return Ok(());
        }
        if how == Lost::Library {
            initialize(&self.ctx)?;
            self.epochs.library.store(seen + 1, Ordering::Release);
        }
        self.epochs.current.store(seen + 1, Ordering::Release);
        self.recoveries.fetch_add(1, Ordering::Relaxed);
        *lock(&self.slot) = find_slot(&self.ctx, &self.selector)?;
        self.pool.clear_idle();
        drop(lock(&self.holder).take());
        lock(&self.graveyard).clear();
        Ok(())
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("token", &self.selector)
            .field("slot", &self.slot())
            .field("pool_size", &self.pool.size())
            .finish_non_exhaustive()
    }
}

/// The slot holding the selected token.
fn find_slot(ctx: &Context, selector: &TokenSelector) -> Result<Slot> {
    let slots = ctx.get_slots_with_token().map_err(p11_error)?;
    match selector {
        TokenSelector::Slot(id) => slots
            .into_iter()
            .find(|s| s.id() == *id)
            .ok_or_else(|| Error::new(ErrorKind::Config, format!("no PKCS#11 token in slot {id}"))),
        TokenSelector::Label(label) => {
            let mut found = Vec::new();
            for slot in slots {
                let info = ctx.get_token_info(slot).map_err(p11_error)?;
                if info.label().trim_end() == label {
                    found.push(slot);
                }
            }
            match found.as_slice() {
                [one] => Ok(*one),
                [] => Err(Error::new(
                    ErrorKind::Config,
                    format!("no PKCS#11 token labelled {label:?}"),
                )),
                _ => Err(Error::new(
                    ErrorKind::Config,
                    format!(
                        "{} PKCS#11 tokens are labelled {label:?}; name the slot instead",
                        found.len()
                    ),
                )),
            }
        }
    }
}

fn internal() -> Error {
    Error::new(
        ErrorKind::Unavailable,
        "PKCS#11 session pool lost a session",
    )
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_values_are_named_as_the_standard_names_them() {
        assert_eq!(
            rv_name(RvError::SessionHandleInvalid),
            "CKR_SESSION_HANDLE_INVALID"
        );
        assert_eq!(rv_name(RvError::PinIncorrect), "CKR_PIN_INCORRECT");
        assert_eq!(function_name(Function::Login), "C_Login");
        let e = p11_error(P11Error::Pkcs11(RvError::PinIncorrect, Function::Login));
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(
            e.to_string()
                .contains("PKCS#11 C_Login returned CKR_PIN_INCORRECT"),
            "{e}"
        );
        assert_eq!(rv_of(&e), Some(RvError::PinIncorrect));
        assert_eq!(lost(&e), None);
        let gone = p11_error(P11Error::Pkcs11(
            RvError::CryptokiNotInitialized,
            Function::Encrypt,
        ));
        assert_eq!(lost(&gone), Some(Lost::Library));
    }
}
