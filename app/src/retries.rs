//! The retry schedules during one pass: which planned actions wait for their retry time, and what
//! the pass's results make of the schedules. Read from storage when a pass starts and written back
//! (only what changed) when it ends, so every replica sees them and a replica that takes over the
//! reconcile lock keeps them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use alsy_domain::{Backoff, PodAction, PodName, PodRetry};

use crate::ports::RuntimeError;

/// The schedules as a pass changes them.
pub(crate) struct RetryBook {
    backoff: Backoff,
    /// As read when the pass started.
    stored: BTreeMap<PodName, PodRetry>,
    /// As the pass leaves them.
    current: BTreeMap<PodName, PodRetry>,
}

/// What a pass did to the schedules.
pub(crate) struct RetryChanges {
    /// New or changed schedules, to store.
    pub changed: Vec<PodRetry>,
    /// Pods whose schedule ended (a success, nothing left to do, or a new intent that succeeded).
    pub cleared: Vec<PodName>,
    /// Every schedule after the pass.
    pub pending: Vec<PodRetry>,
}

impl RetryChanges {
    /// Whether storage must be written.
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.cleared.is_empty()
    }
}

impl RetryBook {
    /// The book of `stored` schedules, extended with `backoff`.
    pub fn new(stored: Vec<PodRetry>, backoff: Backoff) -> RetryBook {
        let stored: BTreeMap<PodName, PodRetry> =
            stored.into_iter().map(|r| (r.pod.clone(), r)).collect();
        RetryBook {
            backoff,
            current: stored.clone(),
            stored,
        }
    }

    /// The schedule `action` waits for at `now`: one of the same intent whose time has not come.
    /// An action whose intent changed (the pod should now be something else) never waits.
    pub fn waiting(&self, action: &PodAction, now: SystemTime) -> Option<&PodRetry> {
        self.current
            .get(action.pod_name())
            .filter(|retry| retry.is_for(action) && !retry.is_due(now))
    }

    /// `action` succeeded: its pod's schedule ends.
    pub fn succeeded(&mut self, action: &PodAction) {
        self.current.remove(action.pod_name());
    }

    /// `action` failed at `now` with `error`: the pod's next attempt, counted on from the same
    /// intent's earlier failures.
    pub fn failed(
        &mut self,
        action: &PodAction,
        error: &RuntimeError,
        now: SystemTime,
    ) -> &PodRetry {
        let retry = PodRetry::after_failure(
            self.current.get(action.pod_name()),
            action,
            error.failure(),
            error.to_string(),
            now,
            &self.backoff,
            rand::random::<f64>(),
        );
        let pod = retry.pod.clone();
        self.current.insert(pod.clone(), retry);
        &self.current[&pod]
    }

    /// Ends the pass. `planned` names every pod the plan had an action for: a schedule of any
    /// other pod ends, as nothing is left to retry (the pod settled on its own, its switch or
    /// client went, or its client is held back).
    pub fn finish(mut self, planned: &BTreeSet<PodName>) -> RetryChanges {
        self.current.retain(|pod, _| planned.contains(pod));
        let changed = self
            .current
            .values()
            .filter(|retry| self.stored.get(&retry.pod) != Some(retry))
            .cloned()
            .collect();
        let cleared = self
            .stored
            .keys()
            .filter(|pod| !self.current.contains_key(*pod))
            .cloned()
            .collect();
        RetryChanges {
            changed,
            cleared,
            pending: self.current.into_values().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use alsy_domain::{Failure, Intent, Operation};

    use super::*;

    fn delete(name: &str) -> PodAction {
        PodAction::Delete(PodName::parse(name).unwrap())
    }

    fn unavailable() -> RuntimeError {
        RuntimeError::Unavailable {
            pod: None,
            detail: "HTTP 500".into(),
        }
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn a_failure_waits_for_its_time_and_a_success_ends_the_schedule() {
        let mut book = RetryBook::new(Vec::new(), Backoff::default());
        let action = delete("vwap-1");
        assert!(book.waiting(&action, at(10)).is_none());
        let retry = book.failed(&action, &unavailable(), at(10)).clone();
        assert_eq!(retry.attempts, 1);
        assert_eq!(retry.next_retry_at, at(11), "the first wait is the base");
        assert!(book.waiting(&action, at(10)).is_some());
        assert!(book.waiting(&action, at(11)).is_none(), "due at its time");

        let changes = book.finish(&BTreeSet::from([action.pod_name().clone()]));
        assert_eq!(changes.changed, std::slice::from_ref(&retry));
        assert!(changes.cleared.is_empty());

        let mut next = RetryBook::new(changes.pending, Backoff::default());
        next.succeeded(&action);
        let changes = next.finish(&BTreeSet::from([action.pod_name().clone()]));
        assert!(changes.changed.is_empty());
        assert_eq!(changes.cleared, [retry.pod]);
    }

    #[test]
    fn a_schedule_with_nothing_left_to_do_ends_and_an_untouched_one_is_not_written() {
        let stored = |name: &str| PodRetry {
            pod: PodName::parse(name).unwrap(),
            client_id: None,
            operation: Operation::Delete,
            intent: delete(name).intent(),
            attempts: 2,
            error: "e".into(),
            rejected: false,
            failed_at: at(0),
            next_retry_at: at(100),
        };
        let book = RetryBook::new(vec![stored("vwap-1"), stored("vwap-2")], Backoff::default());
        assert!(book.waiting(&delete("vwap-2"), at(50)).is_some());
        let changes = book.finish(&BTreeSet::from([PodName::parse("vwap-2").unwrap()]));
        assert!(
            changes.changed.is_empty(),
            "vwap-2's schedule did not change"
        );
        assert_eq!(changes.cleared, [PodName::parse("vwap-1").unwrap()]);
        assert_eq!(changes.pending.len(), 1);
    }

    #[test]
    fn a_throttled_failure_waits_at_least_the_retry_after() {
        let mut book = RetryBook::new(Vec::new(), Backoff::default());
        let throttled = RuntimeError::Throttled {
            pod: None,
            detail: "HTTP 429".into(),
            retry_after: Duration::from_secs(30),
        };
        let retry = book.failed(&delete("vwap-1"), &throttled, at(0));
        assert!(retry.next_retry_at >= at(30));
        assert_eq!(
            throttled.failure(),
            Failure::Retryable {
                retry_after: Some(Duration::from_secs(30))
            }
        );
        assert_ne!(retry.intent, Intent(0));
    }
}
