//! Work on one ballot, bounded in time: it runs on a thread of its own,
//! and a caller that waited longer than the limit gives up on it and goes
//! on. A thread cannot be stopped from outside, so one given up on keeps
//! running until it ends (or the program does); its result is dropped.
//! How many may run late at once is bounded too: past that, the run stops
//! with an error naming the reason, rather than piling up threads.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// The most threads given up on that may still be running.
pub(super) const MAX_RUNNING_LATE: usize = 4;

/// Why bounded work gave no result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Late {
    /// It took longer than the limit.
    TimedOut,
    /// It panicked (a library met input it did not expect).
    Panicked,
    /// Too many earlier ones are still running late: stop the run.
    TooManyRunning,
}

/// Runs work in bounded time, counting the threads it gave up on.
#[derive(Debug, Clone)]
pub(super) struct Bounded {
    limit: Duration,
    running_late: Arc<AtomicUsize>,
}

impl Bounded {
    pub(super) fn new(limit: Duration) -> Self {
        Bounded {
            limit,
            running_late: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The limit.
    pub(super) fn limit(&self) -> Duration {
        self.limit
    }

    /// `work`'s result, if it ends within the limit.
    pub(super) fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Late> {
        if self.running_late.load(Ordering::SeqCst) >= MAX_RUNNING_LATE {
            return Err(Late::TooManyRunning);
        }
        let (tx, rx) = mpsc::sync_channel::<T>(1);
        // Set when the caller gave up; the thread then counts itself out
        // of the running-late threads when it ends.
        let given_up = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (late, flag) = (self.running_late.clone(), given_up.clone());
        let spawned = std::thread::Builder::new()
            .name("ballot".into())
            .spawn(move || {
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
                if let Ok(v) = r {
                    let _ = tx.send(v);
                }
                if flag.swap(true, Ordering::SeqCst) {
                    late.fetch_sub(1, Ordering::SeqCst);
                }
            });
        if spawned.is_err() {
            return Err(Late::TooManyRunning);
        }
        match rx.recv_timeout(self.limit) {
            Ok(v) => Ok(v),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(Late::Panicked),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                // Count it before telling the thread, so that it never
                // subtracts what was not added.
                self.running_late.fetch_add(1, Ordering::SeqCst);
                if given_up.swap(true, Ordering::SeqCst) {
                    // It ended just now, after all.
                    self.running_late.fetch_sub(1, Ordering::SeqCst);
                    if let Ok(v) = rx.try_recv() {
                        return Ok(v);
                    }
                }
                Err(Late::TimedOut)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gives_up_on_slow_work_and_counts_it_until_it_ends() {
        // Ends in time, or panics: the answer comes as soon as it ends.
        let patient = Bounded::new(Duration::from_secs(60));
        assert_eq!(patient.run(|| 7), Ok(7));
        assert_eq!(
            patient.run(|| -> u8 { panic!("hostile input") }),
            Err(Late::Panicked)
        );
        // Never ends until released: given up on after 50 ms.
        let b = Bounded::new(Duration::from_millis(50));
        let (release, wait) = mpsc::channel::<()>();
        let wait = std::sync::Mutex::new(wait);
        let stuck = Arc::new(wait);
        for _ in 0..MAX_RUNNING_LATE {
            let s = stuck.clone();
            assert_eq!(
                b.run(move || {
                    let _ = s.lock().map(|w| w.recv());
                }),
                Err(Late::TimedOut)
            );
        }
        assert_eq!(b.run(|| 1), Err(Late::TooManyRunning));
        // Released, the late threads end and are counted out.
        drop(release);
        let t = std::time::Instant::now();
        while b.running_late.load(Ordering::SeqCst) > 0 {
            assert!(t.elapsed() < Duration::from_secs(30));
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(b.run(|| 2), Ok(2));
    }
}
