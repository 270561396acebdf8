//! Work on all cores with a bounded queue, so memory stays flat however
//! many ballots there are.

use anyhow::Result;

/// Runs `work` on every item `feed` sends, on all cores (at most eight
/// threads), and hands each result to `done` on the calling thread as it
/// comes (not in order). At most two items per worker wait in the queue,
/// so memory stays flat however many items there are.
pub(super) fn in_parallel<I: Send, O: Send>(
    feed: impl FnOnce(&mut dyn FnMut(I) -> Result<()>) -> Result<()>,
    work: impl Fn(I) -> O + Sync,
    mut done: impl FnMut(O) -> Result<()>,
) -> Result<()> {
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 8);
    let (in_tx, in_rx) = std::sync::mpsc::sync_channel::<I>(workers * 2);
    let in_rx = std::sync::Mutex::new(in_rx);
    let (out_tx, out_rx) = std::sync::mpsc::channel::<O>();
    std::thread::scope(|s| {
        for _ in 0..workers {
            let (out_tx, in_rx, work) = (out_tx.clone(), &in_rx, &work);
            s.spawn(move || loop {
                let next = match in_rx.lock() {
                    Ok(rx) => rx.recv(),
                    Err(_) => return,
                };
                let Ok(item) = next else { return };
                if out_tx.send(work(item)).is_err() {
                    return;
                }
            });
        }
        drop(out_tx);
        let mut result = feed(&mut |item| {
            in_tx
                .send(item)
                .map_err(|_| anyhow::anyhow!("a worker thread stopped"))?;
            while let Ok(o) = out_rx.try_recv() {
                done(o)?;
            }
            Ok(())
        });
        drop(in_tx);
        for o in out_rx {
            if result.is_ok() {
                result = done(o);
            }
        }
        result
    })
}
