//! A small bounded pool of reusable connections or sessions: the PostgreSQL
//! catalog's connections (a health check for closed clients, `clear_idle`
//! after a broken one), the KMIP backend's TLS connections and the PKCS#11
//! backend's logged-in sessions (whose epochs after a token loss are that
//! backend's own rule, kept beside it).
//!
//! The pool keeps only the books: how many items exist (idle plus on loan),
//! which idle ones may be handed out again, and who waits for a free slot.
//! Opening an item is the caller's closure, run outside the lock, so a slow
//! connect never holds up a checkin. An item is dropped, and its slot freed,
//! when its lease says so after an error, when the health check given at
//! construction refuses it (at checkout and at checkin), or when the pool
//! clears its idle items; whatever an item needs to close is its own `Drop`.
//!
//! Size 0 is no pooling at all: every checkout opens a new item and every
//! checkin drops it (to compare against, as Barbican opens a session per
//! operation).

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub(crate) struct Pool<T> {
    size: usize,
    /// How long a checkout waits for a free slot; `None` waits until one is.
    wait: Option<Duration>,
    healthy: Box<dyn Fn(&T) -> bool + Send + Sync>,
    state: Mutex<State<T>>,
    freed: Condvar,
}

struct State<T> {
    idle: Vec<T>,
    /// Items in existence: idle plus on loan.
    open: usize,
    closed: bool,
}

/// Why the pool gave out nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PoolError {
    /// All `size` slots stayed on loan for the whole `waited`.
    Busy { size: usize, waited: Duration },
    /// [`Pool::close`] was called.
    Closed,
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::Busy { size, waited } => {
                write!(f, "all {size} pooled items stayed busy for {waited:?}")
            }
            PoolError::Closed => f.write_str("the pool is closed"),
        }
    }
}

impl std::error::Error for PoolError {}

/// A failed checkout: the pool's refusal or the opening closure's error.
#[derive(Debug)]
pub(crate) enum CheckoutError<E> {
    Pool(PoolError),
    Open(E),
}

impl<E> CheckoutError<E> {
    /// The opening closure's error as it is, the pool's made into one by `f`.
    pub(crate) fn or_pool(self, f: impl FnOnce(PoolError) -> E) -> E {
        match self {
            CheckoutError::Pool(p) => f(p),
            CheckoutError::Open(e) => e,
        }
    }
}

/// How many items exist and how many of those are idle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Occupancy {
    pub(crate) open: usize,
    pub(crate) idle: usize,
}

impl<T> Pool<T> {
    /// A pool of at most `size` items (0: no pooling) whose checkouts wait
    /// up to `wait` for a free slot (`None`: as long as it takes).
    pub(crate) fn new(size: usize, wait: Option<Duration>) -> Self {
        Pool {
            size,
            wait,
            healthy: Box::new(|_| true),
            state: Mutex::new(State {
                idle: Vec::new(),
                open: 0,
                closed: false,
            }),
            freed: Condvar::new(),
        }
    }

    /// Only items `healthy` accepts are handed out again.
    pub(crate) fn with_health_check(
        mut self,
        healthy: impl Fn(&T) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.healthy = Box::new(healthy);
        self
    }

    pub(crate) fn size(&self) -> usize {
        self.size
    }

    pub(crate) fn occupancy(&self) -> Occupancy {
        let state = self.lock();
        Occupancy {
            open: state.open,
            idle: state.idle.len(),
        }
    }

    /// A healthy idle item, or one `open` makes while fewer than `size`
    /// exist; otherwise waits for a slot to free up.
    pub(crate) fn checkout<E>(
        &self,
        open: impl FnOnce() -> Result<T, E>,
    ) -> Result<Lease<'_, T>, CheckoutError<E>> {
        if self.size == 0 {
            return open()
                .map(|item| self.lease(item, false))
                .map_err(CheckoutError::Open);
        }
        let deadline = self.wait.and_then(|w| Instant::now().checked_add(w));
        // Declared before the guard, so refused items drop after it unlocks.
        let mut refused = Vec::new();
        let mut state = self.lock();
        loop {
            if state.closed {
                return Err(CheckoutError::Pool(PoolError::Closed));
            }
            while let Some(item) = state.idle.pop() {
                if (self.healthy)(&item) {
                    return Ok(self.lease(item, true));
                }
                state.open -= 1;
                refused.push(item);
            }
            if !refused.is_empty() {
                drop(state);
                refused.clear();
                state = self.lock();
                continue;
            }
            if state.open < self.size {
                state.open += 1;
                drop(state);
                return match open() {
                    Ok(item) => Ok(self.lease(item, false)),
                    Err(e) => {
                        self.free_slot();
                        Err(CheckoutError::Open(e))
                    }
                };
            }
            state = match deadline {
                None => self.freed.wait(state).unwrap_or_else(|p| p.into_inner()),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(CheckoutError::Pool(PoolError::Busy {
                            size: self.size,
                            waited: self.wait.unwrap_or_default(),
                        }));
                    }
                    self.freed
                        .wait_timeout(state, deadline - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
        }
    }

    /// Drops every idle item (when one turned out broken, the others likely
    /// are too; or when they all belong to a past epoch).
    pub(crate) fn clear_idle(&self) {
        let stale = {
            let mut state = self.lock();
            let stale = std::mem::take(&mut state.idle);
            state.open -= stale.len();
            stale
        };
        self.freed.notify_all();
        drop(stale);
    }

    /// Drops the idle items and refuses every checkout from now on, waiting
    /// ones included; items on loan are dropped when they come back.
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "for an owner that shuts down while others wait")
    )]
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.clear_idle();
    }

    fn lease(&self, item: T, reused: bool) -> Lease<'_, T> {
        Lease {
            pool: self,
            item: Some(item),
            reused,
            keep: true,
        }
    }

    fn checkin(&self, item: T, keep: bool) {
        if self.size == 0 {
            return;
        }
        let keep = keep && (self.healthy)(&item);
        let mut state = self.lock();
        if keep && !state.closed {
            state.idle.push(item);
            drop(state);
        } else {
            state.open -= 1;
            drop(state);
            // Closing may wait on a dead peer: outside the lock.
            drop(item);
        }
        self.freed.notify_one();
    }

    fn free_slot(&self) {
        if self.size == 0 {
            return;
        }
        self.lock().open -= 1;
        self.freed.notify_one();
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A list and a counter, updated together under the lock: a panic
        // elsewhere cannot leave them half-done, so carry on with them.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<T> fmt::Debug for Pool<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("size", &self.size)
            .field("wait", &self.wait)
            .field("occupancy", &self.occupancy())
            .finish_non_exhaustive()
    }
}

/// An item on loan; back to the pool when dropped, unless discarded.
pub(crate) struct Lease<'a, T> {
    pool: &'a Pool<T>,
    /// `Some` from checkout until drop (`reopen` refills it or consumes the lease).
    item: Option<T>,
    reused: bool,
    keep: bool,
}

impl<T> Lease<'_, T> {
    /// Whether the item sat idle in the pool before (the peer may have
    /// closed it meanwhile) rather than being opened for this checkout.
    pub(crate) fn reused(&self) -> bool {
        self.reused
    }

    /// Drops the item instead of putting it back, freeing its slot.
    pub(crate) fn discard(&mut self) {
        self.keep = false;
    }

    /// Replaces the item with a new one from `open`, keeping the slot (no
    /// wait). On failure the slot is freed.
    pub(crate) fn reopen<E>(mut self, open: impl FnOnce() -> Result<T, E>) -> Result<Self, E> {
        drop(self.item.take());
        let item = open()?;
        self.item = Some(item);
        self.reused = false;
        self.keep = true;
        Ok(self)
    }
}

impl<T> Deref for Lease<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // Invariant: `item` is only empty inside `reopen` and `drop`.
        self.item
            .as_ref()
            .expect("a lease holds its item until dropped")
    }
}

impl<T> DerefMut for Lease<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // Invariant: as in `deref`.
        self.item
            .as_mut()
            .expect("a lease holds its item until dropped")
    }
}

impl<T> Drop for Lease<'_, T> {
    fn drop(&mut self) {
        match self.item.take() {
            Some(item) => self.pool.checkin(item, self.keep),
            // `reopen` failed: the slot has no item any more.
            None => self.pool.free_slot(),
        }
    }
}

#[cfg(test)]
mod tests;
