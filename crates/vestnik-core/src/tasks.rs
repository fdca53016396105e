//! The lifecycle of background tasks: every loop a node starts (writers,
//! reapers, pruners, housekeeping, heartbeats, event consumers) is spawned on
//! one [`Background`] and watches its [`Shutdown`], so stopping a node stops
//! them all and can wait until they have (as mini-redis passes its shutdown
//! signal to every connection task).
use std::future::Future;
use std::time::Duration;

pub use tokio_util::sync::CancellationToken as Shutdown;
use tokio_util::task::TaskTracker;

/// The node's background tasks and the signal that stops them.
#[derive(Clone, Default)]
pub struct Background {
    shutdown: Shutdown,
    tasks: TaskTracker,
}

impl Background {
    /// No tasks yet, and a shutdown signal not yet given.
    pub fn new() -> Self {
        Self::default()
    }

    /// The signal every task watches.
    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    /// Spawns a task that watches [`Background::shutdown`] itself.
    pub fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn(task)
    }

    /// Runs `pass` every `period` (the first one after one period) until
    /// shutdown. A pass that has started finishes: passes are bounded
    /// (batched deletes, one checkpoint), and a half-done one would only
    /// be repeated by the next node anyway. A slow pass delays the next
    /// tick instead of queueing a burst of them.
    pub fn every<F, Fut>(&self, period: Duration, mut pass: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let shutdown = self.shutdown.clone();
        self.tasks.spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => break,
                    _ = tick.tick() => pass().await,
                }
            }
        });
    }

    /// Signals shutdown and waits, at most `grace`, for every task to end.
    /// Returns whether they all did.
    pub async fn stop(&self, grace: Duration) -> bool {
        self.shutdown.cancel();
        self.tasks.close();
        tokio::time::timeout(grace, self.tasks.wait()).await.is_ok()
    }

    /// Tasks still running.
    pub fn running(&self) -> usize {
        self.tasks.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn a_periodic_task_runs_once_a_period_and_ends_at_shutdown() {
        let bg = Background::new();
        let passes = Arc::new(AtomicU32::new(0));
        let counter = passes.clone();
        bg.every(Duration::from_secs(60), move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        });
        tokio::time::sleep(Duration::from_secs(59)).await;
        assert_eq!(
            passes.load(Ordering::SeqCst),
            0,
            "not before the first period"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(passes.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_secs(600)).await;
        assert_eq!(passes.load(Ordering::SeqCst), 11);
        assert!(bg.stop(Duration::from_secs(1)).await, "the loop ended");
        assert_eq!(bg.running(), 0);
        tokio::time::sleep(Duration::from_secs(600)).await;
        assert_eq!(passes.load(Ordering::SeqCst), 11, "no pass after shutdown");
    }

    #[tokio::test(start_paused = true)]
    async fn a_pass_in_progress_finishes_before_the_loop_ends() {
        let bg = Background::new();
        let finished = Arc::new(AtomicU32::new(0));
        let f = finished.clone();
        bg.every(Duration::from_secs(1), move || {
            let f = f.clone();
            async move {
                tokio::time::sleep(Duration::from_secs(5)).await;
                f.fetch_add(1, Ordering::SeqCst);
            }
        });
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(bg.stop(Duration::from_secs(10)).await);
        assert_eq!(
            finished.load(Ordering::SeqCst),
            1,
            "the started pass completed"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn stop_reports_a_task_that_ignores_the_signal() {
        let bg = Background::new();
        bg.spawn(async { tokio::time::sleep(Duration::from_secs(3600)).await });
        assert!(!bg.stop(Duration::from_secs(1)).await);
        assert_eq!(bg.running(), 1);
    }
}
