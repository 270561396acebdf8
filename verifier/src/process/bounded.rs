//! Work on one ballot, bounded in time: it runs on a worker thread, and a
//! caller that waited longer than the limit gives up on it and goes on. A
//! thread cannot be stopped from outside, so a worker given up on keeps
//! running until its work ends (or the program does), its result is
//! dropped, and it then ends instead of taking more work. How many may run
//! late at once is bounded too: past that, the run stops with an error
//! naming the reason, rather than piling up threads.
//!
//! Workers that finish in time are kept and given the next ballots (a run
//! opens thousands: a new thread for each cost a thread's start and a
//! fresh stack and heap arena every time).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
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

type Job = Box<dyn FnOnce() + Send>;

/// An idle worker thread: it runs the jobs sent to it, one after the
/// other, and ends when this handle is dropped.
#[derive(Debug)]
struct Worker(mpsc::Sender<Job>);

impl Worker {
    fn start() -> Option<Worker> {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("ballot".into())
            .spawn(move || {
                for job in rx {
                    job();
                }
            })
            .ok()?;
        Some(Worker(tx))
    }
}

/// Runs work in bounded time on kept worker threads, counting the threads
/// it gave up on.
#[derive(Debug, Clone)]
pub(super) struct Bounded {
    limit: Duration,
    running_late: Arc<AtomicUsize>,
    idle: Arc<Mutex<Vec<Worker>>>,
}

impl Bounded {
    pub(super) fn new(limit: Duration) -> Self {
        Bounded {
            limit,
            running_late: Arc::new(AtomicUsize::new(0)),
            idle: Arc::new(Mutex::new(Vec::new())),
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
        let kept = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let Some(worker) = kept.or_else(Worker::start) else {
            return Err(Late::TooManyRunning);
        };
        let (tx, rx) = mpsc::sync_channel::<T>(1);
        // Set when the caller gave up; the job then counts itself out of
        // the running-late threads when it ends.
        let given_up = Arc::new(AtomicBool::new(false));
        let (late, flag) = (self.running_late.clone(), given_up.clone());
        let job: Job = Box::new(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
            if let Ok(v) = r {
                let _ = tx.send(v);
            }
            if flag.swap(true, Ordering::SeqCst) {
                late.fetch_sub(1, Ordering::SeqCst);
            }
        });
        if worker.0.send(job).is_err() {
            return Err(Late::TooManyRunning);
        }
        let result = match rx.recv_timeout(self.limit) {
            Ok(v) => Ok(v),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(Late::Panicked),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                // Count it before telling the job, so that it never
                // subtracts what was not added.
                self.running_late.fetch_add(1, Ordering::SeqCst);
                if given_up.swap(true, Ordering::SeqCst) {
                    // It ended just now, after all.
                    self.running_late.fetch_sub(1, Ordering::SeqCst);
                    if let Ok(v) = rx.try_recv() {
                        return self.keep(worker, Ok(v));
                    }
                }
                // The worker is still busy with it: dropping its handle
                // ends the thread once the work ends.
                return Err(Late::TimedOut);
            }
        };
        self.keep(worker, result)
    }

    /// Puts a worker whose work ended back among the idle ones.
    fn keep<T>(&self, worker: Worker, result: Result<T, Late>) -> Result<T, Late> {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(worker);
        }
        result
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

    #[test]
    fn a_worker_that_finished_is_used_again_and_one_given_up_on_is_not() {
        let b = Bounded::new(Duration::from_millis(200));
        let id = || std::thread::current().id();
        let first = b.run(id).unwrap();
        assert_ne!(first, std::thread::current().id());
        assert_eq!(b.run(id), Ok(first));
        // A panic is caught in the worker, which stays.
        assert_eq!(
            b.run(|| -> u8 { panic!("hostile input") }),
            Err(Late::Panicked)
        );
        assert_eq!(b.run(id), Ok(first));
        // Given up on: that worker is not handed work again.
        let (release, wait) = mpsc::channel::<()>();
        assert_eq!(
            b.run(move || {
                let _ = wait.recv();
            }),
            Err(Late::TimedOut)
        );
        let next = b.run(id).unwrap();
        assert_ne!(next, first);
        drop(release);
    }
}
