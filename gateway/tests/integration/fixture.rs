//! The gateway tests' world comes from the test-support crate (`testkit`):
//! a real gateway on 127.0.0.1:0 with a generated PKI, the county's real
//! key ceremony, a signed manifest and roster, and TLS clients for each
//! test voter. What is only for these tests is here.

pub use testkit::server::spawn_server;
pub use testkit::world::{post, Running, World, ELECTION, ORIGIN};

/// Waits until the sequencer has written a security event (refusals are
/// counted in memory and written within a second or so; 10 s allows for a
/// loaded machine).
pub async fn wait_for_event(w: &World, code: &str) -> u64 {
    for _ in 0..500 {
        let n = w.events(code);
        if n > 0 {
            return n;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    0
}

/// Tests that load the machine (the crash and abuse tests) take this, so
/// they do not run at the same time and skew each other's timings.
pub async fn heavy() -> tokio::sync::MutexGuard<'static, ()> {
    static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    HEAVY.lock().await
}

/// Kills a server the test started if the test fails while it runs (it
/// would otherwise outlive the test, and hold a mount busy).
pub struct Reaper(pub std::process::Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
