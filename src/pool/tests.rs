use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::*;

/// A pooled item that counts how many were made and dropped.
struct Item {
    id: usize,
    healthy: Arc<AtomicBool>,
    dropped: Arc<AtomicUsize>,
}

impl Drop for Item {
    fn drop(&mut self) {
        self.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

#[derive(Default)]
struct Factory {
    made: AtomicUsize,
    dropped: Arc<AtomicUsize>,
}

impl Factory {
    fn open(&self) -> Result<Item, &'static str> {
        Ok(self.item(Arc::new(AtomicBool::new(true))))
    }

    fn item(&self, healthy: Arc<AtomicBool>) -> Item {
        Item {
            id: self.made.fetch_add(1, Ordering::SeqCst),
            healthy,
            dropped: self.dropped.clone(),
        }
    }

    fn made(&self) -> usize {
        self.made.load(Ordering::SeqCst)
    }

    fn dropped(&self) -> usize {
        self.dropped.load(Ordering::SeqCst)
    }
}

fn pool(size: usize, wait: Option<Duration>) -> Pool<Item> {
    Pool::new(size, wait).with_health_check(|i: &Item| i.healthy.load(Ordering::SeqCst))
}

fn unwrap<T>(r: Result<T, CheckoutError<&'static str>>) -> T {
    match r {
        Ok(v) => v,
        Err(CheckoutError::Pool(p)) => panic!("pool refused: {p}"),
        Err(CheckoutError::Open(e)) => panic!("open failed: {e}"),
    }
}

fn refusal<T>(r: Result<T, CheckoutError<&'static str>>) -> PoolError {
    match r {
        Err(CheckoutError::Pool(p)) => p,
        Err(CheckoutError::Open(e)) => panic!("open failed: {e}"),
        Ok(_) => panic!("the checkout should have been refused"),
    }
}

#[test]
fn an_item_given_back_is_reused() {
    let f = Factory::default();
    let pool = pool(2, Some(Duration::from_secs(5)));
    let first = unwrap(pool.checkout(|| f.open()));
    assert!(!first.reused());
    let id = first.id;
    drop(first);
    assert_eq!(pool.occupancy(), Occupancy { open: 1, idle: 1 });
    let again = unwrap(pool.checkout(|| f.open()));
    assert!(again.reused());
    assert_eq!(again.id, id);
    assert_eq!(f.made(), 1);
    assert_eq!(pool.occupancy(), Occupancy { open: 1, idle: 0 });
}

#[test]
fn an_exhausted_pool_refuses_after_its_wait() {
    let f = Factory::default();
    let pool = pool(1, Some(Duration::from_millis(50)));
    let held = unwrap(pool.checkout(|| f.open()));
    let started = Instant::now();
    let e = refusal(pool.checkout(|| f.open()));
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert_eq!(
        e,
        PoolError::Busy {
            size: 1,
            waited: Duration::from_millis(50)
        }
    );
    assert_eq!(e.to_string(), "all 1 pooled items stayed busy for 50ms");
    assert_eq!(f.made(), 1, "nothing past the size is opened");
    drop(held);
    unwrap(pool.checkout(|| f.open()));
}

#[test]
fn a_discarded_item_is_dropped_and_its_slot_freed() {
    let f = Factory::default();
    let pool = pool(1, Some(Duration::from_secs(5)));
    let mut lease = unwrap(pool.checkout(|| f.open()));
    lease.discard();
    drop(lease);
    assert_eq!(f.dropped(), 1);
    assert_eq!(pool.occupancy(), Occupancy { open: 0, idle: 0 });
    let next = unwrap(pool.checkout(|| f.open()));
    assert!(!next.reused());
    assert_eq!(f.made(), 2);
}

#[test]
fn the_health_check_refuses_items_at_checkin_and_checkout() {
    let f = Factory::default();
    let pool = pool(2, Some(Duration::from_secs(5)));
    // Sick when it comes back: dropped, not kept.
    let lease = unwrap(pool.checkout(|| f.open()));
    lease.healthy.store(false, Ordering::SeqCst);
    drop(lease);
    assert_eq!(f.dropped(), 1);
    assert_eq!(pool.occupancy(), Occupancy { open: 0, idle: 0 });
    // Sick while idle: dropped at the next checkout, which opens a new one.
    let lease = unwrap(pool.checkout(|| f.open()));
    let health = lease.healthy.clone();
    drop(lease);
    health.store(false, Ordering::SeqCst);
    let fresh = unwrap(pool.checkout(|| f.open()));
    assert!(!fresh.reused());
    assert_eq!(f.dropped(), 2);
    assert_eq!(pool.occupancy(), Occupancy { open: 1, idle: 0 });
}

#[test]
fn a_failed_open_frees_its_slot() {
    let f = Factory::default();
    let pool = pool(1, Some(Duration::from_millis(10)));
    match pool.checkout(|| Err::<Item, _>("refused")) {
        Err(CheckoutError::Open("refused")) => {}
        _ => panic!("the open error comes back as it is"),
    }
    assert_eq!(pool.occupancy(), Occupancy { open: 0, idle: 0 });
    unwrap(pool.checkout(|| f.open()));
}

#[test]
fn reopen_keeps_the_slot_and_a_failed_reopen_frees_it() {
    let f = Factory::default();
    let pool = pool(1, Some(Duration::from_millis(10)));
    drop(unwrap(pool.checkout(|| f.open())));
    let lease = unwrap(pool.checkout(|| f.open()));
    assert!(lease.reused());
    let lease = lease.reopen(|| f.open()).unwrap();
    assert!(!lease.reused());
    assert_eq!((lease.id, f.dropped()), (1, 1));
    assert_eq!(pool.occupancy(), Occupancy { open: 1, idle: 0 });
    assert!(lease.reopen(|| Err::<Item, _>("down")).is_err());
    assert_eq!(f.dropped(), 2);
    assert_eq!(pool.occupancy(), Occupancy { open: 0, idle: 0 });
    unwrap(pool.checkout(|| f.open()));
}

#[test]
fn concurrent_waiters_never_exceed_the_size_and_all_get_served() {
    let f = Factory::default();
    let pool = pool(2, None);
    let on_loan = AtomicUsize::new(0);
    let most = AtomicUsize::new(0);
    let served = AtomicUsize::new(0);
    thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                for _ in 0..25 {
                    let lease = unwrap(pool.checkout(|| f.open()));
                    let now = on_loan.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    thread::sleep(Duration::from_micros(200));
                    on_loan.fetch_sub(1, Ordering::SeqCst);
                    drop(lease);
                    served.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    });
    assert_eq!(served.load(Ordering::SeqCst), 200);
    assert!(most.load(Ordering::SeqCst) <= 2);
    assert!(f.made() <= 2, "made {}", f.made());
    assert_eq!(pool.occupancy().open, f.made());
}

#[test]
fn a_waiter_gets_the_item_given_back() {
    let f = Factory::default();
    let pool = pool(1, Some(Duration::from_secs(10)));
    let held = unwrap(pool.checkout(|| f.open()));
    let started = Instant::now();
    thread::scope(|s| {
        s.spawn(move || {
            thread::sleep(Duration::from_millis(50));
            drop(held);
        });
        let lease = unwrap(pool.checkout(|| f.open()));
        assert!(lease.reused());
    });
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(f.made(), 1);
}

#[test]
fn a_closed_pool_refuses_waiters_and_later_checkouts() {
    let f = Factory::default();
    let pool = pool(1, None);
    drop(unwrap(pool.checkout(|| f.open())));
    let held = unwrap(pool.checkout(|| f.open()));
    thread::scope(|s| {
        let waiter = s.spawn(|| refusal(pool.checkout(|| f.open())));
        thread::sleep(Duration::from_millis(50));
        pool.close();
        assert_eq!(waiter.join().unwrap(), PoolError::Closed);
    });
    assert_eq!(refusal(pool.checkout(|| f.open())), PoolError::Closed);
    assert_eq!(PoolError::Closed.to_string(), "the pool is closed");
    // What comes back after the close is dropped.
    drop(held);
    assert_eq!(f.dropped(), 1);
    assert_eq!(pool.occupancy(), Occupancy { open: 0, idle: 0 });
}

#[test]
fn clear_idle_drops_only_the_idle_items() {
    let f = Factory::default();
    let pool = pool(3, Some(Duration::from_secs(5)));
    let a = unwrap(pool.checkout(|| f.open()));
    let b = unwrap(pool.checkout(|| f.open()));
    drop(a);
    pool.clear_idle();
    assert_eq!(f.dropped(), 1);
    assert_eq!(pool.occupancy(), Occupancy { open: 1, idle: 0 });
    drop(b);
    assert_eq!(pool.occupancy(), Occupancy { open: 1, idle: 1 });
}

#[test]
fn size_zero_opens_an_item_per_checkout_and_keeps_none() {
    let f = Factory::default();
    let pool = pool(0, Some(Duration::from_millis(1)));
    let a = unwrap(pool.checkout(|| f.open()));
    let b = unwrap(pool.checkout(|| f.open()));
    assert!(!a.reused() && !b.reused());
    drop((a, b));
    assert_eq!((f.made(), f.dropped()), (2, 2));
    assert_eq!(pool.occupancy(), Occupancy::default());
    assert_eq!(pool.size(), 0);
}
