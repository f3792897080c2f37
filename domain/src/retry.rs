//! Per-pod retries: when a failed create, delete or restart is tried again. Each pod keeps its
//! own schedule ([`PodRetry`]): exponential backoff with full jitter between a base and a
//! maximum ([`Backoff`]), the maximum for an operation the runtime refused, never sooner than the
//! runtime's `Retry-After`. A success, or a change of what the pod should be, ends the schedule.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{ClientId, PodAction, PodName};

/// A pod operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Create a pod.
    Create,
    /// Delete a pod.
    Delete,
    /// Delete and create a pod.
    Restart,
}

impl Operation {
    /// The tag of the `pod_operation` log field: `CREATE`, `DELETE`, `RESTART`.
    pub fn tag(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Delete => "DELETE",
            Operation::Restart => "RESTART",
        }
    }

    /// Lower-case name for the API and storage: `create`, `delete`, `restart`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Delete => "delete",
            Operation::Restart => "restart",
        }
    }

    /// The operation named by [`Operation::as_str`].
    pub fn parse(name: &str) -> Option<Operation> {
        [Operation::Create, Operation::Delete, Operation::Restart]
            .into_iter()
            .find(|op| op.as_str() == name)
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tag())
    }
}

/// What an action sets out to do, as a number: equal for the same operation on the same pod
/// spec, different when the operation or anything of the pod's spec changes. A retry schedule
/// belongs to one intent; a new intent starts afresh.
///
/// FNV-1a over a canonical text: stable across builds and Rust releases, so a schedule stored by
/// one replica is recognised by another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Intent(pub u64);

impl PodAction {
    /// The operation the action performs.
    pub fn operation(&self) -> Operation {
        match self {
            PodAction::Create(_) => Operation::Create,
            PodAction::Delete(_) => Operation::Delete,
            PodAction::Restart { .. } => Operation::Restart,
        }
    }

    /// See [`Intent`].
    pub fn intent(&self) -> Intent {
        let mut text = format!("{}|{}", self.operation().as_str(), self.pod_name());
        if let PodAction::Create(pod) | PodAction::Restart { pod, .. } = self {
            text.push_str(&format!(
                "|{}|{}|{}|{}|{:x}",
                pod.image.as_str(),
                pod.cpu.as_str(),
                pod.mem.as_str(),
                pod.version.get(),
                pod.priority.get().to_bits()
            ));
            // A new restart mark (the client was marked again) is a new thing to do.
            if let Some(mark) = pod.restart_mark {
                let since = mark.duration_since(UNIX_EPOCH).unwrap_or_default();
                text.push_str(&format!("|{}", since.as_nanos()));
            }
        }
        Intent(fnv1a(text.as_bytes()))
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Why an operation failed, as far as its schedule is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// It may succeed later (unreachable, timed out, throttled, a server error). `retry_after`
    /// is the runtime's own `Retry-After`, if it sent one.
    Retryable {
        /// The least the runtime asked us to wait.
        retry_after: Option<Duration>,
    },
    /// The runtime refused the object; the same request will be refused again until something
    /// changes.
    Rejected,
}

/// Exponential backoff with full jitter: after the `n`th failure in a row the wait is drawn
/// uniformly between `base` and `min(max, base·1.3ⁿ⁻¹)`. Full jitter spreads the retries of many
/// pods that failed together (a throttling burst) instead of sending them back in waves.
///
/// The ceiling grows by [`Backoff::GROWTH`] (1.3) per failure, not 2: with the 1 s base, a pod
/// refused seven times in a row has waited 67 s on average at 2, 19.6 s at 1.5 and 12.3 s at
/// 1.3. Against an API server refusing 30 % of requests, that tail decides whether 300 pods
/// converge within 30 s (`alsy-bench converge`; README, "Retries"). The price: the ceiling
/// reaches the 5-minute maximum after 23 failures instead of 10, so a pod asks a server that is
/// down more often before its retries thin out to one per 2.5 minutes on average. What all pods
/// together send stays bounded by the runtime's own rate limit (the Kubernetes runtime's 50
/// requests/s), whatever the growth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    max: Duration,
}

/// Bounds that make no schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BackoffError {
    /// A zero base would retry in a busy loop.
    #[error("the retry base must be greater than zero")]
    ZeroBase,
    /// The maximum is below the base.
    #[error("the retry maximum ({max:?}) must be at least the retry base ({base:?})")]
    MaxBelowBase {
        /// The base.
        base: Duration,
        /// The maximum.
        max: Duration,
    },
}

impl Default for Backoff {
    /// 1 s to 5 min, as `ALSY__SYNC__RETRY_BASE` and `ALSY__SYNC__RETRY_MAX` default.
    fn default() -> Backoff {
        Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(300),
        }
    }
}

impl Backoff {
    /// Waits between `base` (> 0) and `max` (≥ `base`).
    pub fn new(base: Duration, max: Duration) -> Result<Backoff, BackoffError> {
        if base.is_zero() {
            return Err(BackoffError::ZeroBase);
        }
        if max < base {
            return Err(BackoffError::MaxBelowBase { base, max });
        }
        Ok(Backoff { base, max })
    }

    /// The shortest wait.
    pub fn base(&self) -> Duration {
        self.base
    }

    /// The longest wait, unless the runtime asks for longer.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// How much the longest wait grows per failure in a row.
    pub const GROWTH: f64 = 1.3;

    /// The longest wait after the `attempt`th failure in a row (the first is 1):
    /// `base·1.3^(attempt−1)`, at most `max`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        // 1.3^2706 overflows f64 to infinity, which falls back to `max` below as any
        // unrepresentable wait does; clamping keeps the exponent an i32.
        let growths = attempt.saturating_sub(1).min(4_000) as i32;
        let secs = self.base.as_secs_f64() * Backoff::GROWTH.powi(growths);
        Duration::try_from_secs_f64(secs).map_or(self.max, |ceiling| ceiling.min(self.max))
    }

    /// How long to wait after the `attempt`th failure in a row. `jitter` is a uniform sample of
    /// [0, 1] (clamped; NaN counts as 0) placing the wait between `base` and the ceiling. A
    /// rejected operation waits `max`; a `Retry-After` is a lower bound, even above `max`: asking
    /// sooner would only be refused.
    pub fn delay(&self, attempt: u32, failure: Failure, jitter: f64) -> Duration {
        match failure {
            Failure::Rejected => self.max,
            Failure::Retryable { retry_after } => {
                let jitter = if jitter.is_nan() {
                    0.0
                } else {
                    jitter.clamp(0.0, 1.0)
                };
                let spread = self.ceiling(attempt) - self.base;
                let wait = self.base + spread.mul_f64(jitter).min(spread);
                wait.max(retry_after.unwrap_or_default())
            }
        }
    }
}

/// A pod whose last operation failed, and when it is tried again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRetry {
    /// The pod.
    pub pod: PodName,
    /// Its client, when the name has alsy's form.
    pub client_id: Option<ClientId>,
    /// The operation that failed.
    pub operation: Operation,
    /// What the operation set out to do; a different intent starts a fresh schedule.
    pub intent: Intent,
    /// Failures in a row of this intent (the first is 1).
    pub attempts: u32,
    /// The last failure's message.
    pub error: String,
    /// The runtime refused the object (it waits the maximum).
    pub rejected: bool,
    /// When it failed last.
    pub failed_at: SystemTime,
    /// Not tried again before this.
    pub next_retry_at: SystemTime,
}

impl PodRetry {
    /// The schedule after `action` failed at `now`: the next attempt of the same intent as
    /// `previous`, else the first. `jitter` as in [`Backoff::delay`].
    pub fn after_failure(
        previous: Option<&PodRetry>,
        action: &PodAction,
        failure: Failure,
        error: String,
        now: SystemTime,
        backoff: &Backoff,
        jitter: f64,
    ) -> PodRetry {
        let attempts = match previous {
            Some(previous) if previous.is_for(action) => previous.attempts.saturating_add(1),
            _ => 1,
        };
        let pod = action.pod_name().clone();
        PodRetry {
            client_id: pod.owner().map(|(_, id)| id),
            pod,
            operation: action.operation(),
            intent: action.intent(),
            attempts,
            error,
            rejected: failure == Failure::Rejected,
            failed_at: now,
            next_retry_at: now + backoff.delay(attempts, failure, jitter),
        }
    }

    /// Whether this schedule belongs to `action` (same operation, same intent).
    pub fn is_for(&self, action: &PodAction) -> bool {
        self.operation == action.operation() && self.intent == action.intent()
    }

    /// Whether its retry time has come at `now`.
    pub fn is_due(&self, now: SystemTime) -> bool {
        self.next_retry_at <= now
    }
}

#[cfg(test)]
#[path = "retry_tests.rs"]
mod tests;
