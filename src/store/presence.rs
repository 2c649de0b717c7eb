//! A running store tells the catalog, through each backend's
//! [`KeyManager::announce`], which master KEKs it holds: once when it
//! opens, then every [`HEARTBEAT_EVERY`] from a thread of its own, and it
//! withdraws when dropped. Master-KEK rotation and prune wait on what
//! running instances have announced (see `backend::simple_crypto`).

use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;

use crate::backend::{HEARTBEAT_EVERY, KeyManager};
use crate::error::Result;

/// The heartbeat thread; stopping it (drop) withdraws every backend.
pub(crate) struct Presence {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
    backends: Vec<Arc<dyn KeyManager>>,
}

impl Presence {
    /// Announces every backend once (an error refuses the open), then
    /// keeps announcing in the background.
    pub(crate) fn start(backends: Vec<Arc<dyn KeyManager>>) -> Result<Self> {
        let mut announced = Vec::with_capacity(backends.len());
        for b in &backends {
            if let Err(e) = b.announce() {
                announced
                    .iter()
                    .for_each(|b: &Arc<dyn KeyManager>| b.withdraw());
                return Err(e);
            }
            announced.push(b.clone());
        }
        let (stop, stopped) = mpsc::channel::<()>();
        let beating = backends.clone();
        let thread = std::thread::Builder::new()
            .name("keywarden-heartbeat".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(HEARTBEAT_EVERY) {
                    for b in &beating {
                        if let Err(e) = b.announce() {
                            tracing::warn!(backend = %b.id(), error = %e, "heartbeat to the catalog failed");
                        }
                    }
                }
            })
            .ok();
        if thread.is_none() {
            tracing::warn!(
                "could not start the heartbeat thread; this instance ages out of the catalog's instance list"
            );
        }
        Ok(Presence {
            stop: Some(stop),
            thread,
            backends,
        })
    }
}

impl Drop for Presence {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        for b in &self.backends {
            b.withdraw();
        }
    }
}
