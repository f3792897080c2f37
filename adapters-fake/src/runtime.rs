//! `FakePodRuntime`: remembers the pods it is asked to run instead of running them. Tests can make
//! operations fail, add latency, drop a pod behind the service's back, or mark one `Failed`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;

use alsy_app::{Operation, PodRuntime, RuntimeError};
use alsy_domain::{DesiredPod, ObservedPod, PodName, PodPhase};

/// A pod the fake runtime holds.
#[derive(Debug, Clone, PartialEq)]
pub struct FakePod {
    /// The pod as it was last created.
    pub spec: DesiredPod,
    /// Its phase: `Running` once created, unless a test says otherwise.
    pub phase: PodPhase,
    /// Changes every time the pod is created again, like a Kubernetes uid.
    pub uid: u64,
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
    failing: HashMap<PodName, u32>,
    failing_lists: u32,
    latency: Duration,
    last_uid: u64,
    calls: u64,
    history: Vec<FakeOperation>,
}

impl State {
    /// Consumes one injected failure for `pod`, if any is left.
    fn take_failure(&mut self, pod: &PodName, operation: Operation) -> Result<(), RuntimeError> {
        match self.failing.get_mut(pod) {
            Some(left) if *left > 0 => {
                *left -= 1;
                Err(RuntimeError::Unavailable {
                    pod: Some(pod.clone()),
                    detail: format!("injected failure of {operation}"),
                })
            }
            _ => Ok(()),
        }
    }

    fn start(&mut self, pod: &DesiredPod) {
        self.last_uid += 1;
        let started = FakePod {
            spec: pod.clone(),
            phase: PodPhase::Running,
            uid: self.last_uid,
        };
        self.pods.insert(pod.name.clone(), started);
    }
}

/// Pods in memory; clones share the same pods.
#[derive(Clone, Default)]
pub struct FakePodRuntime {
    state: Arc<Mutex<State>>,
}

impl FakePodRuntime {
    /// A runtime with no pods.
    pub fn new() -> FakePodRuntime {
        FakePodRuntime::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every change under the lock is a single insert or assignment: the data stays whole.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every pod, sorted by name.
    pub fn pods(&self) -> Vec<FakePod> {
        self.state().pods.values().cloned().collect()
    }

    /// One pod, if it exists.
    pub fn pod(&self, name: &PodName) -> Option<FakePod> {
        self.state().pods.get(name).cloned()
    }

    /// Every create, delete and restart carried out so far, in order.
    pub fn operations(&self) -> Vec<FakeOperation> {
        self.state().history.clone()
    }

    /// Makes the next `count` operations on `pod` fail as retryable errors.
    pub fn fail_next(&self, pod: &PodName, count: u32) {
        self.state().failing.insert(pod.clone(), count);
    }

    /// Makes the next `count` calls to `list` fail as retryable errors.
    pub fn fail_next_lists(&self, count: u32) {
        self.state().failing_lists = count;
    }

    /// Adds `latency` to every call from now on.
    pub fn set_latency(&self, latency: Duration) {
        self.state().latency = latency;
    }

    /// Removes a pod as if someone deleted it behind the service's back; whether it existed.
    pub fn drop_pod(&self, name: &PodName) -> bool {
        self.state().pods.remove(name).is_some()
    }

    /// Sets a pod's phase (for example `Failed`); whether it exists.
    pub fn set_phase(&self, name: &PodName, phase: PodPhase) -> bool {
        self.state()
            .pods
            .get_mut(name)
            .map(|pod| pod.phase = phase)
            .is_some()
    }

    /// How many calls (of any kind) the runtime has received, counted before any latency.
    pub fn calls_started(&self) -> u64 {
        self.state().calls
    }

    /// Counts the call, then waits out the injected latency.
    async fn delay(&self) {
        let latency = {
            let mut state = self.state();
            state.calls += 1;
            state.latency
        };
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
    }
}

#[async_trait]
impl PodRuntime for FakePodRuntime {
    async fn list(&self) -> Result<Vec<ObservedPod>, RuntimeError> {
        self.delay().await;
        let mut state = self.state();
        if state.failing_lists > 0 {
            state.failing_lists -= 1;
            return Err(RuntimeError::Unavailable {
                pod: None,
                detail: "injected failure of list".into(),
            });
        }
        Ok(state
            .pods
            .iter()
            .map(|(name, pod)| ObservedPod {
                name: name.clone(),
                phase: pod.phase,
            })
            .collect())
    }

    async fn create(&self, pod: &DesiredPod) -> Result<(), RuntimeError> {
        self.delay().await;
        let mut state = self.state();
        state.take_failure(&pod.name, Operation::Create)?;
        if !state.pods.contains_key(&pod.name) {
            state.start(pod);
            state.history.push(FakeOperation {
                operation: Operation::Create,
                pod: pod.name.clone(),
            });
        }
        Ok(())
    }

    async fn delete(&self, name: &PodName) -> Result<(), RuntimeError> {
        self.delay().await;
        let mut state = self.state();
        state.take_failure(name, Operation::Delete)?;
        if state.pods.remove(name).is_some() {
            state.history.push(FakeOperation {
                operation: Operation::Delete,
                pod: name.clone(),
            });
        }
        Ok(())
    }

    async fn restart(&self, pod: &DesiredPod) -> Result<(), RuntimeError> {
        self.delay().await;
        let mut state = self.state();
        state.take_failure(&pod.name, Operation::Restart)?;
        state.start(pod);
        state.history.push(FakeOperation {
            operation: Operation::Restart,
            pod: pod.name.clone(),
        });
        Ok(())
    }
}
