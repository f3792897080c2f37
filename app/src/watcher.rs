//! The watcher: runs a pass at start-up, on every interval tick, shortly after API writes nudge
//! it, and when a failed pod operation's retry time comes; `POST /api/v1/sync` runs one on
//! demand. Passes never overlap, so neither do retries: a retry is made by a pass (trigger
//! `retry`), under the same pass mutex and the same reconcile lock as any other.
//!
//! A pass that leaves pods terminating (a restart's old pod, say) is followed by rechecks: a
//! pass [`RECHECK_FIRST`] later, then at growing intervals up to [`RECHECK_MAX`], until no pod
//! that should run waits for a terminating one. That is how a restart's successor is created
//! soon after the old pod is gone without any pass waiting for a grace period. A change feed
//! from the runtime (a watch that nudges when a pod disappears) makes the successor come
//! sooner; the rechecks remain the fallback.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use alsy_domain::{Backoff, Catalogue};
use slog::{Logger, error, info, o};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::reconciler::Reconciler;
use crate::report::{PassOutcome, PassReport, Trigger};

/// When passes run and how much one does at once (`ALSY__SYNC__*`), with their defaults: the one
/// place they are defined. The watcher reads `interval` and `debounce`; `concurrency` is for
/// [`Reconciler::new`]; `algorithms` for [`Reconciler::with_catalogue`] and
/// [`crate::Service::with_catalogue`]; `retry` for [`Reconciler::with_backoff`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncSettings {
    /// Time between interval passes.
    pub interval: Duration,
    /// How long after a nudge the pass starts, so a burst of writes makes one pass. Zero turns
    /// nudges off: only start-up, the interval and explicit requests run passes.
    pub debounce: Duration,
    /// Pod operations a pass applies at once.
    pub concurrency: usize,
    /// The algorithms clients switch on and off (`ALSY__SYNC__ALGORITHMS`); a switch of any
    /// other counts as off.
    pub algorithms: Catalogue,
    /// When failed pod operations are retried (`RETRY_BASE`, `RETRY_MAX`: 1 s, 5 min).
    pub retry: Backoff,
}

impl Default for SyncSettings {
    fn default() -> Self {
        SyncSettings {
            interval: Duration::from_secs(5 * 60),
            debounce: Duration::from_secs(1),
            concurrency: 16,
            algorithms: Catalogue::default(),
            retry: Backoff::default(),
        }
    }
}

/// The watcher task has ended without being told to stop (it panicked): nothing reconciles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the watcher is not running: nothing reconciles until the service restarts")]
pub struct WatcherDead;

/// The watcher has been told to stop and runs no more passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the watcher is shutting down")]
pub struct ShuttingDown;

/// The first recheck after a pass that left pods terminating.
pub const RECHECK_FIRST: Duration = Duration::from_secs(1);
/// The longest wait between rechecks: a successor is created at most this long (plus a pass)
/// after its old pod is gone.
pub const RECHECK_MAX: Duration = Duration::from_secs(5);

/// The wait before the recheck that follows `in_a_row` rechecks that still found pods
/// terminating: 1 s, 2 s, 4 s, then 5 s.
fn recheck_delay(in_a_row: u32) -> Duration {
    RECHECK_FIRST
        .saturating_mul(2u32.saturating_pow(in_a_row))
        .min(RECHECK_MAX)
}

pub(crate) struct Shared {
    pub(crate) reconciler: Reconciler,
    /// Held for the whole of a pass: passes never overlap.
    pub(crate) pass: tokio::sync::Mutex<()>,
    /// Shared, not copied: a first pass over 100k clients reports 300k pod names.
    last: Mutex<Option<Arc<PassReport>>>,
    nudged: Notify,
    /// Told by every pass (whatever ran it) that left pods terminating.
    terminating: Notify,
    nudges_on: bool,
    /// When the next retry pass is due, and when the last pass ended.
    retry: Mutex<RetryTimer>,
    /// A pass outside the loop (`POST /api/v1/sync`) moved the retry time.
    rescheduled: Notify,
    pub(crate) stopping: watch::Sender<bool>,
    /// False once the watcher task has ended, for whatever reason.
    alive: AtomicBool,
}

impl Shared {
    /// See [`WatcherHandle::nudge`].
    pub(crate) fn nudge(&self) {
        if self.nudges_on {
            self.nudged.notify_one();
        }
    }

    async fn pass(&self, trigger: Trigger) -> Arc<PassReport> {
        let _running = self.pass.lock().await;
        let report = Arc::new(self.reconciler.run_pass(trigger).await);
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(report.clone());
        if !report.terminating.is_empty() {
            self.terminating.notify_one();
        }
        let mut timer = self.retry.lock().unwrap_or_else(PoisonError::into_inner);
        timer.next = match &report.outcome {
            PassOutcome::Completed => report.next_retry_at,
            // The replica holding the reconcile lock runs the retries; this one takes over, if
            // it ever holds the lock, from the schedules in storage.
            PassOutcome::Skipped => None,
            // The schedules could not be read: keep the retries coming, at the base rate at most.
            PassOutcome::Failed { .. } => {
                let soon = self.reconciler.clock().now() + self.reconciler.backoff().base();
                timer.next.map(|next| next.max(soon))
            }
        };
        timer.last_pass_end = Some(Instant::now());
        report
    }

    /// When the next retry pass starts: at the earliest retry time, but no sooner than a tenth of
    /// the retry base after the last pass ended, so that retries falling due one after the other
    /// (their jitter spreads them) are made by a few passes rather than one pass each.
    fn retry_deadline(&self) -> Option<Instant> {
        let gap = self.reconciler.backoff().base() / 10;
        let timer = self.retry.lock().unwrap_or_else(PoisonError::into_inner);
        let next = timer.next?;
        // A millisecond late rather than a hair early: a pass woken before the retry time would
        // find nothing due and leave it for another wake-up.
        let wait = next
            .duration_since(self.reconciler.clock().now())
            .unwrap_or_default();
        let due = Instant::now() + wait + Duration::from_millis(1);
        Some(match timer.last_pass_end {
            Some(end) => due.max(end + gap),
            None => due,
        })
    }
}

/// The retry pass the schedules ask for.
#[derive(Default)]
struct RetryTimer {
    /// The earliest retry time after the last pass (wall clock: the schedules are stored).
    next: Option<SystemTime>,
    last_pass_end: Option<Instant>,
}

/// What the API holds to talk to the watcher; cheap to clone.
#[derive(Clone)]
pub struct WatcherHandle {
    shared: Arc<Shared>,
}

impl WatcherHandle {
    /// Asks for a pass soon (after the debounce); many nudges in a row make one pass.
    pub fn nudge(&self) {
        self.shared.nudge();
    }

    /// `Err` once the watcher task has died without being told to stop (readiness says so).
    pub fn check_alive(&self) -> Result<(), WatcherDead> {
        let stopping = *self.shared.stopping.borrow();
        match self.shared.alive.load(Ordering::Acquire) || stopping {
            true => Ok(()),
            false => Err(WatcherDead),
        }
    }

    /// The report of the last finished pass, if any.
    pub fn last_report(&self) -> Option<Arc<PassReport>> {
        self.shared
            .last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits for a running pass to end, then runs a fresh one and returns its report, so the
    /// report reflects every write made before the call.
    pub async fn sync_now(&self) -> Result<Arc<PassReport>, ShuttingDown> {
        if *self.shared.stopping.borrow() {
            return Err(ShuttingDown);
        }
        let report = self.shared.pass(Trigger::Request).await;
        self.shared.rescheduled.notify_one();
        Ok(report)
    }
}

/// The running watcher task.
pub struct Watcher {
    handle: WatcherHandle,
    task: JoinHandle<()>,
    /// Nudges a pass when the runtime's pods drift; absent without a change feed.
    drift: Option<JoinHandle<()>>,
    log: Logger,
}

impl Watcher {
    /// Spawns the watcher loop on the current tokio runtime; its first pass starts at once.
    pub fn start(reconciler: Reconciler, config: SyncSettings, log: &Logger) -> Watcher {
        let shared = Arc::new(Shared {
            reconciler,
            pass: tokio::sync::Mutex::new(()),
            last: Mutex::new(None),
            nudged: Notify::new(),
            terminating: Notify::new(),
            nudges_on: !config.debounce.is_zero(),
            retry: Mutex::new(RetryTimer::default()),
            rescheduled: Notify::new(),
            stopping: watch::channel(false).0,
            alive: AtomicBool::new(true),
        });
        let log = log.new(o!("component" => "sync/watcher"));
        // Subscribed before the start-up pass lists, so no change after that list is missed.
        let drift = shared.reconciler.changes().map(|changes| {
            tokio::spawn(crate::drift::nudge_on_drift(
                shared.clone(),
                changes,
                log.clone(),
            ))
        });
        let task = tokio::spawn(run(
            shared.clone(),
            config,
            Alive {
                shared: shared.clone(),
                log: log.clone(),
            },
        ));
        Watcher {
            handle: WatcherHandle { shared },
            task,
            drift,
            log,
        }
    }

    /// A handle for the API.
    pub fn handle(&self) -> WatcherHandle {
        self.handle.clone()
    }

    /// Stops taking passes and waits for the running one to finish. Bound it with a timeout:
    /// a pass abandoned half-way is safe, the next start-up pass picks up where it left off.
    pub async fn stop(self) {
        info!(self.log, "watcher stopping; waiting for the running pass");
        self.handle.shared.stopping.send_replace(true);
        // The loop ends after its current pass; a panic was logged when the watcher died.
        let _ = self.task.await;
        if let Some(drift) = self.drift {
            let _ = drift.await;
        }
        // Wait too for a pass started by `POST /api/v1/sync`.
        let _idle = self.handle.shared.pass.lock().await;
        info!(self.log, "watcher stopped");
    }
}

/// Lives as long as the watcher loop: when the loop ends — returning, or unwinding from a panic —
/// it marks the watcher dead and, unless the watcher was told to stop, says so at ERROR.
struct Alive {
    shared: Arc<Shared>,
    log: Logger,
}

impl Drop for Alive {
    fn drop(&mut self) {
        self.shared.alive.store(false, Ordering::Release);
        if !*self.shared.stopping.borrow() {
            error!(self.log, "the watcher died: nothing reconciles until the service restarts";
                "panicked" => std::thread::panicking());
        }
    }
}

async fn run(shared: Arc<Shared>, config: SyncSettings, _alive: Alive) {
    let mut stopping = shared.stopping.subscribe();
    shared.pass(Trigger::Startup).await;
    let mut ticker = tokio::time::interval_at(Instant::now() + config.interval, config.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut recheck: Option<Instant> = None;
    let mut rechecks_in_a_row = 0;
    loop {
        if *stopping.borrow_and_update() {
            return;
        }
        let retry_at = shared.retry_deadline();
        let trigger = tokio::select! {
            _ = stopping.changed() => return,
            _ = ticker.tick() => Trigger::Interval,
            _ = retry_time(retry_at) => Trigger::Retry,
            _ = shared.rescheduled.notified() => continue,
            _ = shared.terminating.notified() => {
                recheck.get_or_insert_with(|| Instant::now() + recheck_delay(rechecks_in_a_row));
                continue;
            }
            _ = tokio::time::sleep_until(recheck.unwrap_or_else(Instant::now)), if recheck.is_some() => {
                rechecks_in_a_row += 1;
                Trigger::Recheck
            }
            _ = shared.nudged.notified() => {
                tokio::select! {
                    _ = stopping.changed() => return,
                    _ = tokio::time::sleep(config.debounce) => Trigger::Nudge,
                }
            }
        };
        // Whatever ran, the pass looks at every pod: it asks for a recheck itself if it still
        // finds pods terminating.
        recheck = None;
        let report = shared.pass(trigger).await;
        if report.terminating.is_empty() {
            rechecks_in_a_row = 0;
        }
        // Another replica held the lock, and it may have read the desired state before the write
        // that nudged us: a skipped nudge is owed, so try again after the debounce until a pass
        // of ours runs (the holder's passes are short next to the 5-minute interval).
        if trigger == Trigger::Nudge && report.outcome == PassOutcome::Skipped {
            shared.nudged.notify_one();
        }
    }
}

/// Resolves at `at`; never without one.
async fn retry_time(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rechecks_back_off_from_one_second_to_five() {
        let delays: Vec<u64> = (0..6).map(|n| recheck_delay(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 5, 5, 5]);
        assert_eq!(recheck_delay(u32::MAX), RECHECK_MAX);
    }
}
