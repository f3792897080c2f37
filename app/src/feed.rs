//! The runtime's change feed (README.md, "Watching the pods"): a runtime that can see its managed
//! pods change publishes each change; the watcher subscribes and nudges a pass when a change makes
//! what runs differ from what the last pass wanted (`drift.rs`).
//!
//! A subscription coalesces: it keeps only the latest state of each pod until it is read, so a
//! slow reader costs at most one entry per pod, never a growing queue, and never misses the end
//! state of a pod.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use alsy_domain::{ObservedPod, PodName};
use tokio::sync::Notify;

/// What a runtime saw happen to one managed pod: its state now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodChange {
    /// The pod exists (created, or changed: its phase, say) and looks like this now.
    Seen(ObservedPod),
    /// The pod is gone.
    Gone(PodName),
}

impl PodChange {
    /// The pod the change is about.
    pub fn name(&self) -> &PodName {
        match self {
            PodChange::Seen(pod) => &pod.name,
            PodChange::Gone(name) => name,
        }
    }
}

/// One subscriber's changes not read yet, latest state per pod.
#[derive(Default)]
struct Mailbox {
    pending: Mutex<BTreeMap<PodName, PodChange>>,
    arrived: Notify,
}

impl Mailbox {
    fn pending(&self) -> MutexGuard<'_, BTreeMap<PodName, PodChange>> {
        // Every change under the lock is one insert or one take: the map stays whole.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The publishing side of a change feed, kept by a runtime; clones publish to the same
/// subscribers.
#[derive(Clone, Default)]
pub struct PodFeed {
    subscribers: Arc<Mutex<Vec<Weak<Mailbox>>>>,
}

impl PodFeed {
    /// A feed with no subscribers yet.
    pub fn new() -> PodFeed {
        PodFeed::default()
    }

    /// A subscription to every change published from now on.
    pub fn subscribe(&self) -> PodChanges {
        let mailbox = Arc::new(Mailbox::default());
        self.subscribers().push(Arc::downgrade(&mailbox));
        PodChanges { mailbox }
    }

    /// Tells every subscriber about `changes` (several at once: one wake-up per subscriber).
    pub fn publish(&self, changes: impl IntoIterator<Item = PodChange>) {
        let mut subscribers = self.subscribers();
        subscribers.retain(|s| s.strong_count() > 0);
        let live: Vec<Arc<Mailbox>> = subscribers.iter().filter_map(Weak::upgrade).collect();
        drop(subscribers);
        if live.is_empty() {
            return;
        }
        let mut any = false;
        for change in changes {
            any = true;
            for mailbox in &live {
                mailbox
                    .pending()
                    .insert(change.name().clone(), change.clone());
            }
        }
        if any {
            for mailbox in &live {
                mailbox.arrived.notify_one();
            }
        }
    }

    fn subscribers(&self) -> MutexGuard<'_, Vec<Weak<Mailbox>>> {
        self.subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A subscription to a [`PodFeed`]; dropping it unsubscribes.
pub struct PodChanges {
    mailbox: Arc<Mailbox>,
}

impl PodChanges {
    /// Waits until at least one pod changed since the last call, then returns every pod that
    /// did, each once with its latest state, in name order.
    pub async fn next(&mut self) -> Vec<PodChange> {
        loop {
            self.ready().await;
            let taken = self.take();
            if !taken.is_empty() {
                return taken;
            }
        }
    }

    /// Waits until at least one pod changed since the last take, without taking anything.
    pub async fn ready(&mut self) {
        while self.mailbox.pending().is_empty() {
            self.mailbox.arrived.notified().await;
        }
    }

    /// Every pod that changed since the last take, each once with its latest state, in name
    /// order; empty if none did. Never waits.
    pub fn take(&mut self) -> Vec<PodChange> {
        std::mem::take(&mut *self.mailbox.pending())
            .into_values()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use alsy_domain::PodPhase;

    use super::*;

    fn name(raw: &str) -> PodName {
        PodName::parse(raw).unwrap()
    }

    fn seen(raw: &str, phase: PodPhase) -> PodChange {
        PodChange::Seen(ObservedPod::new(name(raw), phase))
    }

    #[tokio::test]
    async fn a_subscriber_gets_each_pods_latest_state_once() {
        let feed = PodFeed::new();
        let mut changes = feed.subscribe();
        feed.publish([seen("vwap-1", PodPhase::Pending)]);
        feed.publish([
            seen("vwap-1", PodPhase::Running),
            PodChange::Gone(name("hft-2")),
        ]);
        feed.publish([seen("vwap-1", PodPhase::Failed)]);
        assert_eq!(
            changes.next().await,
            vec![
                PodChange::Gone(name("hft-2")),
                seen("vwap-1", PodPhase::Failed)
            ]
        );
        feed.publish([PodChange::Gone(name("vwap-1"))]);
        assert_eq!(changes.next().await, vec![PodChange::Gone(name("vwap-1"))]);
    }

    #[tokio::test]
    async fn only_later_changes_are_delivered_and_every_subscriber_gets_its_own() {
        let feed = PodFeed::new();
        feed.publish([seen("vwap-1", PodPhase::Running)]);
        let mut first = feed.subscribe();
        let mut second = feed.subscribe();
        feed.publish([PodChange::Gone(name("twap-1"))]);
        assert_eq!(first.next().await, vec![PodChange::Gone(name("twap-1"))]);
        assert_eq!(second.next().await, vec![PodChange::Gone(name("twap-1"))]);
        drop(second);
        feed.publish([PodChange::Gone(name("twap-2"))]);
        assert_eq!(first.next().await, vec![PodChange::Gone(name("twap-2"))]);
        assert_eq!(
            feed.subscribers().len(),
            1,
            "a dropped subscription is forgotten"
        );
    }
}
