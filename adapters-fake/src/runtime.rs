//! `FakePodRuntime`: remembers the pods it is asked to run instead of running them. Tests can make
//! operations fail (one pod's next ones, or a share of all at random, as a flaky API server), add
//! latency, hold a list at a [`Gate`], drop a pod behind the service's back,
//! mark one `Failed`, put a pod next to alsy's that alsy does not manage, or give deletions a
//! grace period during which the pod is listed `Terminating`, as a cluster does.
//!
//! Like a Kubernetes watch, its change feed ([`PodRuntime::changes`]) reports every change to a
//! managed pod, alsy's own creates and deletes and the ones made "from outside" alike: a deletion
//! with a grace period shows as the pod turning `Terminating`, then, once the grace ends, gone.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque, btree_map};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use alsy_app::{Operation, PodChange, PodChanges, PodFeed, PodRuntime, Restarted, RuntimeError};
use alsy_domain::{DesiredPod, ObservedPod, PodName, PodPhase};

use tokio::time::Instant;

use crate::Gate;

/// How many operations [`FakePodRuntime::operations`] remembers: the compose stack runs the fake
/// runtime for as long as it is up, so the history keeps only the latest ones.
pub const HISTORY_LIMIT: usize = 10_000;

/// How an injected failure fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FakeFailure {
    /// Unreachable or a server error: retryable.
    Unavailable,
    /// Throttled, asking to wait at least this long: retryable, not sooner.
    Throttled(Duration),
    /// The object is refused: retrying as is won't help.
    Rejected,
}

/// A pod the fake runtime holds.
#[derive(Debug, Clone, PartialEq)]
pub struct FakePod {
    /// The pod as it was last created.
    pub spec: DesiredPod,
    /// Its phase: `Running` once created, unless a test says otherwise; `Terminating` once
    /// deleted, until its grace period ends.
    pub phase: PodPhase,
    /// Changes every time the pod is created again, like a Kubernetes uid.
    pub uid: u64,
}

impl FakePod {
    /// `pod` running, with the uid after `last_uid` (which it advances).
    fn running(pod: &DesiredPod, last_uid: &mut u64) -> FakePod {
        *last_uid += 1;
        FakePod {
            spec: pod.clone(),
            phase: PodPhase::Running,
            uid: *last_uid,
        }
    }

    /// The pod as `list` reports it.
    fn observed(&self, name: &PodName) -> ObservedPod {
        ObservedPod {
            name: name.clone(),
            phase: self.phase,
            restart_mark: self.spec.restart_mark,
        }
    }
}

/// An operation the fake runtime carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeOperation {
    /// What it did.
    pub operation: Operation,
    /// To which pod.
    pub pod: PodName,
}

#[derive(Default)]
struct State {
    pods: BTreeMap<PodName, FakePod>,
    /// Pods alsy does not manage: never listed, never touched.
    foreign: BTreeSet<String>,
    failing: HashMap<PodName, (u32, FakeFailure)>,
    failing_lists: u32,
    panicking_lists: u32,
    held_lists: VecDeque<Gate>,
    latency: Duration,
    last_uid: u64,
    calls: u64,
    in_flight: usize,
    max_in_flight: usize,
    rejecting_lists: u32,
    history: VecDeque<FakeOperation>,
    /// How long a deleted pod stays `Terminating`; zero: it goes at once.
    grace: Duration,
    /// The terminating pods and when they go (`None`: when the test says).
    terminating: HashMap<PodName, Option<Instant>>,
    random_failures: Option<RandomFailures>,
}

struct RandomFailures {
    rate: f64,
    rng: StdRng,
    injected: u64,
}

/// How long a throttled operation is asked to wait, as the project's test API server's 429 says.
pub const THROTTLE_RETRY_AFTER: Duration = Duration::from_secs(1);

impl State {
    /// Consumes one injected failure for `pod`, if any is left.
    fn take_failure(&mut self, pod: &PodName, operation: Operation) -> Result<(), RuntimeError> {
        match self.failing.get_mut(pod) {
            Some((left, failure)) if *left > 0 => {
                *left -= 1;
                let (pod, detail) = (
                    Some(pod.clone()),
                    format!("injected failure of {operation}"),
                );
                Err(match *failure {
                    FakeFailure::Unavailable => RuntimeError::Unavailable { pod, detail },
                    FakeFailure::Throttled(retry_after) => RuntimeError::Throttled {
                        pod,
                        detail,
                        retry_after,
                    },
                    FakeFailure::Rejected => RuntimeError::Rejected { pod, detail },
                })
            }
            _ => self.take_random_failure(pod, operation),
        }
    }

    /// Fails the operation at the random rate, if one is set: half as a server error, half
    /// throttled with a `Retry-After`.
    fn take_random_failure(
        &mut self,
        pod: &PodName,
        operation: Operation,
    ) -> Result<(), RuntimeError> {
        let Some(random) = &mut self.random_failures else {
            return Ok(());
        };
        if !random.rng.random_bool(random.rate) {
            return Ok(());
        }
        random.injected += 1;
        let pod = Some(pod.clone());
        Err(match random.rng.random_bool(0.5) {
            true => RuntimeError::Unavailable {
                pod,
                detail: format!("injected failure of {operation}: HTTP 500 InternalError"),
            },
            false => RuntimeError::Throttled {
                pod,
                detail: format!("injected failure of {operation}: HTTP 429 TooManyRequests"),
                retry_after: THROTTLE_RETRY_AFTER,
            },
        })
    }

    fn record(&mut self, operation: Operation, pod: &PodName) {
        if self.history.len() == HISTORY_LIMIT {
            self.history.pop_front();
        }
        self.history.push_back(FakeOperation {
            operation,
            pod: pod.clone(),
        });
    }

    /// Forgets the terminating pods whose grace period has ended; returns them.
    fn purge(&mut self) -> Vec<PodName> {
        let now = Instant::now();
        let ended: Vec<PodName> = self
            .terminating
            .iter()
            .filter(|(_, gone_at)| gone_at.is_some_and(|at| at <= now))
            .map(|(name, _)| name.clone())
            .collect();
        for name in &ended {
            self.terminating.remove(name);
            self.pods.remove(name);
        }
        ended
    }

    /// `name` as the feed reports it now.
    fn change(&self, name: &PodName) -> PodChange {
        match self.pods.get(name) {
            Some(pod) => PodChange::Seen(pod.observed(name)),
            None => PodChange::Gone(name.clone()),
        }
    }

    fn is_terminating(&self, name: &PodName) -> bool {
        self.terminating.contains_key(name)
    }

    /// Deletes `name` with the grace period; whether the pod is gone at once, and otherwise
    /// when it goes (`None`: when the test says).
    fn terminate(&mut self, name: &PodName) -> Result<(), Option<Instant>> {
        if self.grace.is_zero() {
            self.pods.remove(name);
            return Ok(());
        }
        let gone_at = Instant::now().checked_add(self.grace);
        if let Some(pod) = self.pods.get_mut(name) {
            pod.phase = PodPhase::Terminating;
            self.terminating.insert(name.clone(), gone_at);
        }
        Err(gone_at)
    }

    fn start(&mut self, pod: &DesiredPod) {
        let started = FakePod::running(pod, &mut self.last_uid);
        self.pods.insert(pod.name.clone(), started);
    }
}

/// Pods in memory; clones share the same pods and the same change feed.
#[derive(Clone, Default)]
pub struct FakePodRuntime {
    state: Arc<Mutex<State>>,
    feed: PodFeed,
}

impl FakePodRuntime {
    /// A runtime with no pods.
    pub fn new() -> FakePodRuntime {
        FakePodRuntime::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every change under the lock is a single insert or assignment: the data stays whole.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let ended = state.purge();
        self.feed.publish(ended.into_iter().map(PodChange::Gone));
        state
    }

    /// Tells the feed's subscribers how `name` looks now. Called with the state locked, so
    /// subscribers see a pod's changes in the order they happened.
    fn publish(&self, state: &State, name: &PodName) {
        self.feed.publish([state.change(name)]);
    }

    /// Publishes the end of a grace period when it comes, as a watch reports `DELETED` then,
    /// not when someone next looks.
    fn gone_later(&self, gone_at: Option<Instant>) {
        let (Some(at), Ok(tokio)) = (gone_at, tokio::runtime::Handle::try_current()) else {
            return;
        };
        let runtime = self.clone();
        tokio.spawn(async move {
            tokio::time::sleep_until(at).await;
            // Looking purges, and purging publishes.
            drop(runtime.state());
        });
    }

    /// Deleted pods stay `Terminating` for `grace` from now on, as on a cluster (zero, the
    /// default: they go at once). A grace too long to represent lasts until
    /// [`FakePodRuntime::finish_terminating`].
    pub fn set_termination_grace(&self, grace: Duration) {
        self.state().grace = grace;
    }

    /// Ends every grace period now: the terminating pods are gone. Returns how many went.
    pub fn finish_terminating(&self) -> usize {
        let mut state = self.state();
        let names: Vec<PodName> = state.terminating.drain().map(|(name, _)| name).collect();
        for name in &names {
            state.pods.remove(name);
        }
        self.feed
            .publish(names.iter().cloned().map(PodChange::Gone));
        names.len()
    }

    /// Every pod, sorted by name.
    pub fn pods(&self) -> Vec<FakePod> {
        self.state().pods.values().cloned().collect()
    }

    /// One pod, if it exists.
    pub fn pod(&self, name: &PodName) -> Option<FakePod> {
        self.state().pods.get(name).cloned()
    }

    /// The creates, deletes and restarts carried out so far, in order: the latest
    /// [`HISTORY_LIMIT`] of them.
    pub fn operations(&self) -> Vec<FakeOperation> {
        self.state().history.iter().cloned().collect()
    }

    /// Holds the next call to `list` at `gate` until it opens (calls queue gates in order).
    pub fn hold_next_list(&self, gate: &Gate) {
        self.state().held_lists.push_back(gate.clone());
    }

    /// Puts a pod alsy does not manage next to alsy's pods, as another team's pod in the same
    /// namespace: `list` never shows it, and no operation touches it.
    pub fn add_foreign_pod(&self, name: &str) {
        self.state().foreign.insert(name.to_owned());
    }

    /// The foreign pods, sorted by name.
    pub fn foreign_pods(&self) -> Vec<String> {
        self.state().foreign.iter().cloned().collect()
    }

    /// Makes the next `count` operations on `pod` fail as retryable errors.
    pub fn fail_next(&self, pod: &PodName, count: u32) {
        self.fail_next_with(pod, count, FakeFailure::Unavailable);
    }

    /// Makes the next `count` operations on `pod` fail as `failure` says.
    pub fn fail_next_with(&self, pod: &PodName, count: u32, failure: FakeFailure) {
        self.state().failing.insert(pod.clone(), (count, failure));
    }

    /// From now on, fails each create, delete and restart with probability `rate` (0–1): half
    /// as a server error (500), half throttled (429 with a `Retry-After` of
    /// [`THROTTLE_RETRY_AFTER`]). `seed` makes the sequence repeatable; `rate` 0 stops it.
    pub fn fail_randomly(&self, rate: f64, seed: u64) {
        self.state().random_failures = (rate > 0.0).then(|| RandomFailures {
            rate: rate.min(1.0),
            rng: StdRng::seed_from_u64(seed),
            injected: 0,
        });
    }

    /// How many operations [`FakePodRuntime::fail_randomly`] has failed so far.
    pub fn random_failures_injected(&self) -> u64 {
        self.state()
            .random_failures
            .as_ref()
            .map_or(0, |r| r.injected)
    }

    /// Makes the next `count` calls to `list` fail as retryable errors.
    pub fn fail_next_lists(&self, count: u32) {
        self.state().failing_lists = count;
    }

    /// Makes the next `count` calls to `list` panic, as a bug would: the caller's task dies.
    pub fn panic_next_lists(&self, count: u32) {
        self.state().panicking_lists = count;
    }

    /// Adds `latency` to every call from now on.
    pub fn set_latency(&self, latency: Duration) {
        self.state().latency = latency;
    }

    /// Removes a pod as if someone deleted it behind the service's back; whether it existed.
    pub fn drop_pod(&self, name: &PodName) -> bool {
        let mut state = self.state();
        state.terminating.remove(name);
        let existed = state.pods.remove(name).is_some();
        if existed {
            self.publish(&state, name);
        }
        existed
    }

    /// Sets a pod's phase behind the service's back (for example `Failed`); whether it exists.
    pub fn set_phase(&self, name: &PodName, phase: PodPhase) -> bool {
        let mut state = self.state();
        let Some(pod) = state.pods.get_mut(name) else {
            return false;
        };
        pod.phase = phase;
        self.publish(&state, name);
        true
    }

    /// Starts a managed pod that alsy did not ask for, as someone applying a manifest with
    /// alsy's label would.
    pub fn add_unasked_pod(&self, pod: &DesiredPod) {
        let mut state = self.state();
        state.start(pod);
        self.publish(&state, &pod.name);
    }

    /// How many calls (of any kind) the runtime has received, counted before any latency.
    pub fn calls_started(&self) -> u64 {
        self.state().calls
    }

    /// The most calls that were waiting out the latency at the same moment.
    pub fn max_in_flight(&self) -> usize {
        self.state().max_in_flight
    }

    /// Makes the next `count` calls to `list` fail as refused (not retryable), as a runtime that
    /// forbids the request would.
    pub fn reject_next_lists(&self, count: u32) {
        self.state().rejecting_lists = count;
    }

    /// Counts the call, then waits out the injected latency (counted as in flight meanwhile).
    async fn delay(&self) {
        let latency = {
            let mut state = self.state();
            state.calls += 1;
            state.in_flight += 1;
            state.max_in_flight = state.max_in_flight.max(state.in_flight);
            state.latency
        };
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        self.state().in_flight -= 1;
    }
    /// A list's latency, gate and injected faults; then the state to answer from.
    async fn listing(&self) -> Result<MutexGuard<'_, State>, RuntimeError> {
        self.delay().await;
        let held = self.state().held_lists.pop_front();
        if let Some(gate) = held {
            gate.pass().await;
        }
        let mut state = self.state();
        if state.panicking_lists > 0 {
            state.panicking_lists -= 1;
            drop(state);
            panic!("injected panic in list");
        }
        if state.rejecting_lists > 0 {
            state.rejecting_lists -= 1;
            return Err(RuntimeError::Rejected {
                pod: None,
                detail: "injected refusal of list".into(),
            });
        }
        if state.failing_lists > 0 {
            state.failing_lists -= 1;
            return Err(RuntimeError::Unavailable {
                pod: None,
                detail: "injected failure of list".into(),
            });
        }
        Ok(state)
    }
}

#[async_trait]
impl PodRuntime for FakePodRuntime {
    async fn list(&self) -> Result<Vec<ObservedPod>, RuntimeError> {
        let state = self.listing().await?;
        Ok(state
            .pods
            .iter()
            .map(|(name, pod)| pod.observed(name))
            .collect())
    }

    async fn list_named(&self, names: &[PodName]) -> Result<Vec<ObservedPod>, RuntimeError> {
        // A client's GET asks for its few pods: look them up rather than copy every pod (the
        // soak's reads did, at 15,000 pods). Injected list faults apply as they do to `list`.
        let state = self.listing().await?;
        Ok(names
            .iter()
            .filter_map(|name| state.pods.get(name).map(|pod| pod.observed(name)))
            .collect())
    }

    async fn create(&self, pod: &DesiredPod) -> Result<(), RuntimeError> {
        self.delay().await;
        let mut state = self.state();
        state.take_failure(&pod.name, Operation::Create)?;
        // As in a cluster: the name is taken, and the pod holding it is not alsy's to touch.
        if state.foreign.contains(pod.name.as_str()) {
            return Err(RuntimeError::Rejected {
                pod: Some(pod.name.clone()),
                detail: format!(
                    "create: a pod named {} already exists and alsy does not manage it",
                    pod.name
                ),
            });
        }
        // One search of the map, not three (is it there, insert, read back for the feed): a
        // first pass over 100k clients creates 300k pods, and each search compares names.
        let state = &mut *state;
        if let btree_map::Entry::Vacant(slot) = state.pods.entry(pod.name.clone()) {
            let started = slot.insert(FakePod::running(pod, &mut state.last_uid));
            let change = PodChange::Seen(started.observed(&pod.name));
            state.record(Operation::Create, &pod.name);
            self.feed.publish([change]);
        }
        Ok(())
    }

    async fn delete(&self, name: &PodName) -> Result<(), RuntimeError> {
        self.delay().await;
        let mut state = self.state();
        state.take_failure(name, Operation::Delete)?;
        // Deleting a terminating pod again changes nothing, as on Kubernetes.
        if state.pods.contains_key(name) && !state.is_terminating(name) {
            if let Err(gone_at) = state.terminate(name) {
                self.gone_later(gone_at);
            }
            state.record(Operation::Delete, name);
            self.publish(&state, name);
        }
        Ok(())
    }

    async fn restart(&self, pod: &DesiredPod) -> Result<Restarted, RuntimeError> {
        self.delay().await;
        let mut state = self.state();
        state.take_failure(&pod.name, Operation::Restart)?;
        if state.is_terminating(&pod.name) {
            return Ok(Restarted::OldPodTerminating);
        }
        // As a watch would see it: the old pod goes (or starts terminating), then the new one
        // comes.
        if state.pods.contains_key(&pod.name) {
            let terminated = state.terminate(&pod.name);
            state.record(Operation::Restart, &pod.name);
            self.publish(&state, &pod.name);
            if let Err(gone_at) = terminated {
                self.gone_later(gone_at);
                return Ok(Restarted::OldPodTerminating);
            }
        } else {
            state.record(Operation::Restart, &pod.name);
        }
        state.start(pod);
        self.publish(&state, &pod.name);
        Ok(Restarted::Replaced)
    }

    fn changes(&self) -> Option<PodChanges> {
        Some(self.feed.subscribe())
    }
}

#[cfg(test)]
mod tests {
    use alsy_domain::{Algorithm, ClientId, ImageRef, Priority, Quantity, Version};

    use super::*;

    fn desired(id: i64) -> DesiredPod {
        let client_id = ClientId::new(id).unwrap();
        DesiredPod {
            name: PodName::of(Algorithm::named("VWAP"), client_id),
            client_id,
            algorithm: Algorithm::named("VWAP"),
            image: ImageRef::parse("algo:1").unwrap(),
            cpu: Quantity::parse("1").unwrap(),
            mem: Quantity::parse("1Gi").unwrap(),
            version: Version::parse(1).unwrap(),
            priority: Priority::parse(1.0).unwrap(),
            restart_mark: None,
        }
    }

    #[tokio::test]
    async fn the_history_keeps_only_the_latest_operations() {
        let runtime = FakePodRuntime::new();
        let pod = desired(1);
        for _ in 0..HISTORY_LIMIT + 5 {
            runtime.restart(&pod).await.unwrap();
        }
        runtime.delete(&pod.name).await.unwrap();
        let operations = runtime.operations();
        assert_eq!(operations.len(), HISTORY_LIMIT);
        assert_eq!(operations.last().unwrap().operation, Operation::Delete);
    }

    #[tokio::test(start_paused = true)]
    async fn with_a_grace_period_a_deleted_pod_is_terminating_until_it_ends() {
        let runtime = FakePodRuntime::new();
        runtime.set_termination_grace(Duration::from_secs(30));
        let pod = desired(1);
        runtime.create(&pod).await.unwrap();

        let restarted = runtime.restart(&pod).await.unwrap();
        assert_eq!(restarted, Restarted::OldPodTerminating);
        let listed = runtime.list().await.unwrap();
        assert_eq!(listed[0].phase, PodPhase::Terminating);
        // A create while the old pod exists changes nothing; a second delete neither.
        runtime.create(&pod).await.unwrap();
        runtime.delete(&pod.name).await.unwrap();
        assert_eq!(runtime.pod(&pod.name).unwrap().phase, PodPhase::Terminating);
        assert_eq!(runtime.operations().len(), 2, "create, restart");

        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(runtime.list().await.unwrap().is_empty());
        let replaced = runtime.restart(&pod).await.unwrap();
        assert_eq!(replaced, Restarted::Replaced, "a missing pod is created");
        assert_eq!(runtime.pod(&pod.name).unwrap().phase, PodPhase::Running);
    }

    #[tokio::test]
    async fn finish_terminating_ends_every_grace_period_at_once() {
        let runtime = FakePodRuntime::new();
        runtime.set_termination_grace(Duration::MAX);
        let pod = desired(1);
        runtime.create(&pod).await.unwrap();
        runtime.delete(&pod.name).await.unwrap();
        assert_eq!(runtime.pods().len(), 1);
        assert_eq!(runtime.finish_terminating(), 1);
        assert!(runtime.pods().is_empty());
    }
}
