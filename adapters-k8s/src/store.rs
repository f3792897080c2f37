//! The pod store: alsy's managed pods as the watch (`watch.rs`) and alsy's own writes last saw
//! them, holding only what a pass reads: per pod its name, phase (`Terminating` once its deletion
//! was asked for), restart mark, and the resource version it was seen at. Every change of what it holds goes out on the
//! change feed.
//!
//! Two sources feed it, and they can arrive out of order: the watch stream, in resource-version
//! order, and the answers to alsy's own creates and deletes ("write-through", so the pass after a
//! write sees it without waiting for the watch). A state older than the one held is ignored, and
//! a pod alsy deleted leaves a tombstone until the watch has passed that version, so a late event
//! from before the write cannot bring back what the write changed. Resource versions are compared
//! as integers, which is what etcd-backed API servers send; one that is not an integer is never
//! considered older.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use alsy_app::{PodChange, PodChanges, PodFeed};
use alsy_domain::{ObservedPod, PodName, PodPhase};
use tokio::sync::watch;

/// What the store holds of one pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Seen {
    /// `status.phase`, or `Terminating` when `metadata.deletionTimestamp` is set.
    pub phase: PodPhase,
    /// The restart mark annotation, read as [`ObservedPod::restart_mark`].
    pub restart_mark: Option<SystemTime>,
    /// `metadata.resourceVersion`, when it is an integer.
    pub version: Option<u64>,
}

impl Seen {
    /// Whether a pod seen at `self` looks different from one seen at `other` (the version alone
    /// is no change).
    fn differs(&self, other: &Seen) -> bool {
        (self.phase, self.restart_mark) != (other.phase, other.restart_mark)
    }
}

/// A resource version as the store compares them.
pub(crate) fn version(raw: Option<&str>) -> Option<u64> {
    raw.and_then(|v| v.parse().ok())
}

/// `incoming` is older than `held`: both are known and `incoming` is smaller.
fn older(incoming: Option<u64>, held: Option<u64>) -> bool {
    matches!((incoming, held), (Some(i), Some(h)) if i < h)
}

#[derive(Default)]
struct State {
    pods: BTreeMap<PodName, Seen>,
    /// Pods alsy deleted, with the version of the deletion, until the watch passes it.
    tombstones: HashMap<PodName, u64>,
    /// The same tombstones in the order they were made, to forget them as the watch passes.
    tombstone_order: VecDeque<(u64, PodName)>,
    /// The pods of a re-list in progress, until it is complete.
    relist: Option<BTreeMap<PodName, Seen>>,
    /// A list has completed since the store was made: it holds every managed pod.
    synced: bool,
}

impl State {
    /// The watch has delivered everything up to `version`: no event older than that can come.
    fn passed(&mut self, version: Option<u64>) {
        let Some(version) = version else { return };
        while let Some((made, _)) = self.tombstone_order.front() {
            if *made > version {
                break;
            }
            if let Some((made, name)) = self.tombstone_order.pop_front()
                && self.tombstones.get(&name) == Some(&made)
            {
                self.tombstones.remove(&name);
            }
        }
    }

    /// A state for `name` that is older than a deletion alsy made or a state already held.
    fn stale(&self, name: &PodName, incoming: Option<u64>) -> bool {
        let buried = self.tombstones.get(name).copied();
        let held = self.pods.get(name).and_then(|seen| seen.version);
        older(incoming, buried) || older(incoming, held)
    }

    /// Stores `seen` for `name`; the change to publish, if what the store shows changed.
    fn put(&mut self, name: &PodName, seen: Seen) -> Option<PodChange> {
        if self.stale(name, seen.version) {
            return None;
        }
        let before = self.pods.insert(name.clone(), seen);
        before
            .is_none_or(|before| before.differs(&seen))
            .then(|| PodChange::Seen(observed(name, &seen)))
    }

    /// Removes `name`, gone at `version`; the change to publish, if it was there.
    fn remove(&mut self, name: &PodName, version: Option<u64>) -> Option<PodChange> {
        if self.stale(name, version) {
            return None;
        }
        self.pods
            .remove(name)
            .map(|_| PodChange::Gone(name.clone()))
    }
}

fn observed(name: &PodName, seen: &Seen) -> ObservedPod {
    ObservedPod {
        name: name.clone(),
        phase: seen.phase,
        restart_mark: seen.restart_mark,
    }
}

/// The store; the watch task and the runtime share it.
pub(crate) struct PodStore {
    state: Mutex<State>,
    synced: watch::Sender<bool>,
    feed: PodFeed,
}

impl PodStore {
    pub(crate) fn new() -> PodStore {
        PodStore {
            state: Mutex::new(State::default()),
            synced: watch::Sender::new(false),
            feed: PodFeed::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every change under the lock is a few map operations that cannot panic halfway.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A subscription to every change of what the store shows, from now on.
    pub(crate) fn subscribe(&self) -> PodChanges {
        self.feed.subscribe()
    }

    /// Every managed pod, sorted by name; `None` until a first list has completed.
    pub(crate) fn list(&self) -> Option<Vec<ObservedPod>> {
        let state = self.state();
        state.synced.then(|| {
            state
                .pods
                .iter()
                .map(|(name, seen)| observed(name, seen))
                .collect()
        })
    }

    /// The pods among `names` that the store holds, in the order asked; `None` until a first
    /// list has completed.
    pub(crate) fn get(&self, names: &[PodName]) -> Option<Vec<ObservedPod>> {
        let state = self.state();
        state.synced.then(|| {
            names
                .iter()
                .filter_map(|name| state.pods.get(name).map(|seen| observed(name, seen)))
                .collect()
        })
    }

    /// Waits up to `limit` for the first list to complete; whether it has.
    pub(crate) async fn wait_synced(&self, limit: Duration) -> bool {
        let mut synced = self.synced.subscribe();
        tokio::time::timeout(limit, synced.wait_for(|synced| *synced))
            .await
            .is_ok_and(|waited| waited.is_ok())
    }

    /// How many pods the store holds.
    pub(crate) fn len(&self) -> usize {
        self.state().pods.len()
    }

    // The watch's events. Its changes are published while the state is locked, so subscribers
    // see them in the order the store took them.

    /// The watch saw `name` created or changed.
    pub(crate) fn applied(&self, name: &PodName, seen: Seen) {
        let mut state = self.state();
        state.passed(seen.version);
        let change = state.put(name, seen);
        self.feed.publish(change);
    }

    /// The watch saw `name` deleted, at `version`.
    pub(crate) fn deleted(&self, name: &PodName, version: Option<u64>) {
        let mut state = self.state();
        state.passed(version);
        let change = state.remove(name, version);
        self.feed.publish(change);
    }

    /// The watch starts a (re-)list: what follows until [`PodStore::relisted`] is every pod.
    pub(crate) fn relist_started(&self) {
        self.state().relist = Some(BTreeMap::new());
    }

    /// A pod of the list in progress.
    pub(crate) fn relist_item(&self, name: PodName, seen: Seen) {
        if let Some(relist) = self.state().relist.as_mut() {
            relist.insert(name, seen);
        }
    }

    /// The list is complete: it replaces what the store held. After a first list nothing is
    /// published (no pass has run on the store yet); after a re-list, every difference is, pods
    /// that went while the watch was down included.
    pub(crate) fn relisted(&self) {
        let mut state = self.state();
        let Some(mut listed) = state.relist.take() else {
            return;
        };
        if !state.synced {
            state.pods = listed;
            state.synced = true;
            drop(state);
            self.synced.send_replace(true);
            return;
        }
        let mut changes = Vec::new();
        for (name, held) in &state.pods {
            match listed.get(name) {
                // alsy wrote this pod after the list was taken: keep what it wrote.
                Some(seen) if older(seen.version, held.version) => {
                    listed.insert(name.clone(), *held);
                }
                Some(seen) if seen.differs(held) => {
                    changes.push(PodChange::Seen(observed(name, seen)));
                }
                Some(_) => {}
                None => changes.push(PodChange::Gone(name.clone())),
            }
        }
        for (name, seen) in &listed {
            if !state.pods.contains_key(name) {
                changes.push(PodChange::Seen(observed(name, seen)));
            }
        }
        state.pods = listed;
        self.feed.publish(changes);
    }

    // alsy's own writes, from the API server's answers.

    /// alsy's create or delete left `name` looking like `seen`.
    pub(crate) fn wrote(&self, name: &PodName, seen: Seen) {
        let mut state = self.state();
        let change = state.put(name, seen);
        self.feed.publish(change);
    }

    /// alsy's delete removed `name`, at `version` when the answer said.
    pub(crate) fn wrote_gone(&self, name: &PodName, version: Option<u64>) {
        let mut state = self.state();
        let change = state.remove(name, version);
        if let Some(version) = version {
            state.tombstones.insert(name.clone(), version);
            state.tombstone_order.push_back((version, name.clone()));
        }
        self.feed.publish(change);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(raw: &str) -> PodName {
        PodName::parse(raw).unwrap()
    }

    fn at(version: u64, phase: PodPhase) -> Seen {
        Seen {
            phase,
            restart_mark: None,
            version: Some(version),
        }
    }

    fn names(store: &PodStore) -> Vec<(String, PodPhase)> {
        let listed = store.list().expect("synced");
        listed
            .into_iter()
            .map(|p| (p.name.to_string(), p.phase))
            .collect()
    }

    fn synced(pods: &[(&str, Seen)]) -> PodStore {
        let store = PodStore::new();
        store.relist_started();
        for (raw, seen) in pods {
            store.relist_item(name(raw), *seen);
        }
        store.relisted();
        store
    }

    fn running(raw: &str) -> PodChange {
        PodChange::Seen(ObservedPod::new(name(raw), PodPhase::Running))
    }

    #[test]
    fn the_store_answers_only_once_a_list_has_completed() {
        let store = PodStore::new();
        store.applied(&name("vwap-1"), at(5, PodPhase::Running));
        assert_eq!(store.list(), None);
        store.relist_started();
        store.relist_item(name("vwap-1"), at(5, PodPhase::Running));
        assert_eq!(store.list(), None, "a list in progress is not an answer");
        store.relisted();
        assert_eq!(names(&store), [("vwap-1".into(), PodPhase::Running)]);
    }

    #[test]
    fn named_pods_are_looked_up_once_synced() {
        let asked = [name("vwap-1"), name("twap-1"), name("hft-1")];
        assert_eq!(PodStore::new().get(&asked), None, "not before a list");
        let store = synced(&[
            ("vwap-1", at(5, PodPhase::Running)),
            ("hft-1", at(6, PodPhase::Failed)),
            ("vwap-2", at(7, PodPhase::Running)),
        ]);
        let found: Vec<(String, PodPhase)> = store
            .get(&asked)
            .expect("synced")
            .into_iter()
            .map(|p| (p.name.to_string(), p.phase))
            .collect();
        assert_eq!(
            found,
            [
                ("vwap-1".into(), PodPhase::Running),
                ("hft-1".into(), PodPhase::Failed)
            ]
        );
    }

    #[tokio::test]
    async fn watch_events_change_the_store_and_go_out_on_the_feed_when_something_changed() {
        let store = synced(&[("vwap-1", at(5, PodPhase::Pending))]);
        let mut changes = store.subscribe();
        store.applied(&name("vwap-1"), at(6, PodPhase::Running));
        store.applied(&name("hft-1"), at(7, PodPhase::Pending));
        store.applied(&name("hft-1"), at(8, PodPhase::Pending));
        store.deleted(&name("vwap-1"), Some(9));
        assert_eq!(names(&store), [("hft-1".into(), PodPhase::Pending)]);
        assert_eq!(
            changes.next().await,
            [
                PodChange::Seen(ObservedPod::new(name("hft-1"), PodPhase::Pending)),
                PodChange::Gone(name("vwap-1")),
            ]
        );
    }

    #[test]
    fn a_late_watch_event_from_before_alsys_write_does_not_undo_it() {
        let store = synced(&[("vwap-1", at(5, PodPhase::Running))]);
        // alsy deletes vwap-1 (version 10) and creates twap-1 (version 11) ...
        store.wrote_gone(&name("vwap-1"), Some(10));
        store.wrote(&name("twap-1"), at(11, PodPhase::Pending));
        // ... and only then does the watch deliver what happened before.
        store.applied(&name("vwap-1"), at(8, PodPhase::Running));
        store.deleted(&name("twap-1"), Some(9));
        assert_eq!(names(&store), [("twap-1".into(), PodPhase::Pending)]);
        // Once the watch has passed the deletion, a new pod of that name is news again.
        store.applied(&name("twap-1"), at(11, PodPhase::Pending));
        store.applied(&name("vwap-1"), at(12, PodPhase::Pending));
        assert_eq!(
            names(&store),
            [
                ("twap-1".into(), PodPhase::Pending),
                ("vwap-1".into(), PodPhase::Pending)
            ]
        );
    }

    #[tokio::test]
    async fn a_relist_publishes_every_difference_and_keeps_writes_newer_than_the_list() {
        let store = synced(&[
            ("vwap-1", at(5, PodPhase::Running)),
            ("vwap-2", at(5, PodPhase::Running)),
            ("vwap-3", at(5, PodPhase::Running)),
        ]);
        let mut changes = store.subscribe();
        store.relist_started();
        // Meanwhile alsy creates vwap-4, after the list was taken at version 20.
        store.wrote(&name("vwap-4"), at(21, PodPhase::Pending));
        store.relist_item(name("vwap-2"), at(15, PodPhase::Failed));
        store.relist_item(name("vwap-3"), at(5, PodPhase::Running));
        store.relist_item(name("hft-9"), at(18, PodPhase::Running));
        assert_eq!(
            names(&store).len(),
            4,
            "the old contents answer until the list is complete"
        );
        // alsy restarted vwap-3 after the list was taken: its write is newer than the list's.
        store.wrote(&name("vwap-3"), at(22, PodPhase::Pending));
        store.relisted();
        let got = changes.next().await;
        assert!(got.contains(&PodChange::Gone(name("vwap-1"))), "{got:?}");
        assert!(got.contains(&running("hft-9")), "{got:?}");
        let failed = PodChange::Seen(ObservedPod::new(name("vwap-2"), PodPhase::Failed));
        assert!(got.contains(&failed), "{got:?}");
        let restarted = PodChange::Seen(ObservedPod::new(name("vwap-3"), PodPhase::Pending));
        assert!(
            got.contains(&restarted),
            "the list does not undo it: {got:?}"
        );
        assert!(
            names(&store).contains(&("vwap-3".into(), PodPhase::Pending)),
            "the newer write is kept"
        );
        // vwap-4 is not in the list: the store cannot tell whether the list was taken before
        // alsy's create, so it follows the list; the watch, which starts at the list's version,
        // brings the create back.
        assert!(!names(&store).iter().any(|(name, _)| name == "vwap-4"));
        store.applied(&name("vwap-4"), at(21, PodPhase::Pending));
        assert!(names(&store).iter().any(|(name, _)| name == "vwap-4"));
    }
}
