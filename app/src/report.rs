//! What one reconcile pass did: the report `GET`/`POST /api/v1/sync` return and the summary log.

use std::time::{Duration, SystemTime};

pub use alsy_domain::Operation;
use alsy_domain::{ClientId, PodName};

/// What started a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The pass the watcher runs when it starts.
    Startup,
    /// The `ALSY__SYNC__INTERVAL` ticker.
    Interval,
    /// A debounced nudge after API writes.
    Nudge,
    /// `POST /api/v1/sync`.
    Request,
    /// A pass the watcher runs again shortly after one that left pods terminating, so that their
    /// successors are created soon after they are gone.
    Recheck,
    /// A failed pod operation's retry time came.
    Retry,
}

impl Trigger {
    /// Lower-case name for logs and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Startup => "startup",
            Trigger::Interval => "interval",
            Trigger::Nudge => "nudge",
            Trigger::Request => "request",
            Trigger::Recheck => "recheck",
            Trigger::Retry => "retry",
        }
    }
}

/// A pod operation that failed; it is retried on its own schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodFailure {
    /// The pod.
    pub pod: PodName,
    /// What was attempted.
    pub operation: Operation,
    /// Why it failed.
    pub error: String,
    /// Failures in a row of this operation (the first is 1).
    pub attempt: u32,
    /// When it is tried again.
    pub next_retry_at: SystemTime,
}

/// A planned operation the pass left alone because its retry time has not come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodWaiting {
    /// The pod.
    pub pod: PodName,
    /// The operation that waits.
    pub operation: Operation,
    /// Its failures in a row so far.
    pub attempts: u32,
    /// When it is tried again.
    pub next_retry_at: SystemTime,
}

/// A client the pass held back: it could not use it, so it left its pods as they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldClient {
    /// The client.
    pub client_id: ClientId,
    /// Why it was held back.
    pub reason: String,
}

/// How a pass ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PassOutcome {
    /// The pass read both sides and applied its plan (individual pods may still have failed).
    Completed,
    /// Another replica holds the reconcile lock; this one did nothing.
    Skipped,
    /// Storage or the runtime could not be read; nothing was applied.
    Failed {
        /// Which side could not be read.
        part: FailedPart,
        /// What went wrong, for the report and the log.
        reason: String,
    },
}

/// The side a failed pass could not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailedPart {
    /// Storage: the desired state, or the reconcile lock.
    Storage,
    /// The pod runtime: the list of pods.
    Runtime,
}

/// The report of one reconcile pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassReport {
    /// What started it.
    pub trigger: Trigger,
    /// How it ended.
    pub outcome: PassOutcome,
    /// When it started.
    pub started_at: SystemTime,
    /// When it ended.
    pub finished_at: SystemTime,
    /// How long it took (monotonic clock).
    pub duration: Duration,
    /// Pods created.
    pub created: Vec<PodName>,
    /// Pods deleted.
    pub deleted: Vec<PodName>,
    /// Pods restarted: deleted, and created again unless the old pod is still terminating (then
    /// the pod is in `terminating` too, and a later pass creates its successor).
    pub restarted: Vec<PodName>,
    /// Pods that should run whose old pod is still terminating: restarts this pass began, and
    /// pods it found `Terminating` and left alone. A later pass creates their successors once
    /// they are gone.
    pub terminating: Vec<PodName>,
    /// Operations that failed.
    pub failed: Vec<PodFailure>,
    /// Operations left for their retry time.
    pub waiting: Vec<PodWaiting>,
    /// Pods with a retry schedule after the pass (`failed` and `waiting` together).
    pub retries_pending: usize,
    /// The earliest retry time after the pass; the watcher runs a pass then.
    pub next_retry_at: Option<SystemTime>,
    /// Clients held back, in id order; their pods were left alone.
    pub held: Vec<HeldClient>,
}
