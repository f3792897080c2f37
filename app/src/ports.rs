//! The ports: what the use cases and the reconciler need from storage and from a pod runtime.
//! Adapters implement them; nothing in this crate knows which adapter it talks to.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use alsy_domain::{
    Acknowledgement, AlgorithmStatus, Client, ClientId, ClientSpec, DesiredPod, Failure,
    ObservedPod, Page, PageRequest, PodName, PodRetry, UnusableClient,
};

use crate::feed::PodChanges;

/// Why storage could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepoError {
    /// No client has this id.
    #[error("client {0} not found")]
    NotFound(ClientId),
    /// Another client already has this name.
    #[error("a client named `{0}` already exists")]
    NameTaken(String),
    /// Storage cannot be reached or did not answer in time; worth retrying.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The client is stored with values that no longer parse (see [`UnusableClient`]); a write
    /// that answers this was stored all the same.
    #[error("client {} is stored with values alsy no longer accepts: {}", .0.id, .0.reason)]
    Unusable(UnusableClient),
    /// Anything else; the detail is for the log, never for an HTTP response.
    #[error("storage error: {0}")]
    Internal(String),
}

/// Where clients and their switches are kept.
///
/// Every write is atomic. Every API write (`create`, `update`, `set_status`) sets `updated_at` to
/// a value different from any earlier one for that client, so the reconciler's compare-and-set
/// [`ClientRepository::acknowledge`] can tell that a write arrived after its read.
#[async_trait]
pub trait ClientRepository: Send + Sync + 'static {
    /// Stores a new client with every algorithm off (its status row in the same transaction).
    /// `NameTaken` if the name is in use.
    async fn create(&self, spec: &ClientSpec) -> Result<Client, RepoError>;

    /// Replaces a client's spec. `need_restart = true` marks it for restart; `false` leaves an
    /// existing mark in place (a pending restart is never cancelled by a later write).
    async fn update(
        &self,
        id: ClientId,
        spec: &ClientSpec,
        need_restart: bool,
    ) -> Result<Client, RepoError>;

    /// Sets the switches `status` gives, at once, and bumps `updated_at`; `need_restart` as in
    /// `update`. A stored switch `status` does not name keeps its value: the API always names
    /// every algorithm of the catalogue, so what stays is the switch of an algorithm dropped from
    /// it, kept for when it returns. Returns the client with the switches as written: a kept
    /// switch is not read back ([`ClientRepository::get`] shows it), so the write need not send
    /// the stored object back.
    async fn set_status(
        &self,
        id: ClientId,
        status: AlgorithmStatus,
        need_restart: bool,
    ) -> Result<Client, RepoError>;

    /// Deletes a client and its status row.
    async fn delete(&self, id: ClientId) -> Result<(), RepoError>;

    /// One client with its status.
    async fn get(&self, id: ClientId) -> Result<Client, RepoError>;

    /// A page of clients in id order.
    async fn list(&self, page: PageRequest) -> Result<Page, RepoError>;

    /// Every client with its status, in id order, read in one consistent query: the reconciler's
    /// desired state. Rows that no longer parse come back apart, in `unusable`, so that one bad
    /// row holds back only its own client instead of failing the read.
    async fn desired_state(&self) -> Result<StoredClients, RepoError>;

    /// Records that a client's pods were (re)started: `spawned_at = now()`. With
    /// `restart_seen = Some(t)` this is a compare-and-set: it also clears `need_restart`, and does
    /// anything at all, only if `updated_at` is still `t`. Returns whether the row was changed;
    /// a client deleted meanwhile is `Ok(false)`, not an error.
    async fn acknowledge(&self, ack: Acknowledgement, at: SystemTime) -> Result<bool, RepoError>;

    /// [`ClientRepository::acknowledge`] for many clients at once: whether each row changed, in
    /// the order of `acks`. Storage with round trips should override the one-by-one default: a
    /// first pass over 100k clients acknowledges 100k of them.
    async fn acknowledge_all(
        &self,
        acks: &[Acknowledgement],
        at: SystemTime,
    ) -> Result<Vec<bool>, RepoError> {
        let mut changed = Vec::with_capacity(acks.len());
        for ack in acks {
            changed.push(self.acknowledge(*ack, at).await?);
        }
        Ok(changed)
    }

    /// Answers when storage can serve requests (readiness).
    async fn ping(&self) -> Result<(), RepoError>;

    /// Every pod's retry schedule (the pods whose last operation failed), in pod-name order.
    /// Kept in storage, not in the reconciling replica, so that every replica answers the same
    /// sync state and a replica taking over the reconcile lock keeps the schedules.
    async fn pod_retries(&self) -> Result<Vec<PodRetry>, RepoError>;

    /// The retry schedules of `client`'s pods, in pod-name order.
    async fn client_pod_retries(&self, client: ClientId) -> Result<Vec<PodRetry>, RepoError>;

    /// `get(id)` and `client_pod_retries(id)` together, as `GET /api/v1/clients/{id}` needs
    /// them. Storage that can read both in one round trip overrides this.
    async fn client_with_retries(
        &self,
        id: ClientId,
    ) -> Result<(Client, Vec<PodRetry>), RepoError> {
        let client = self.get(id).await?;
        Ok((client, self.client_pod_retries(id).await?))
    }

    /// Stores `changed` schedules (replacing any of the same pod) and forgets those of `cleared`,
    /// in one transaction.
    async fn save_pod_retries(
        &self,
        changed: &[PodRetry],
        cleared: &[PodName],
    ) -> Result<(), RepoError>;

    /// The connection pool's figures, for storage that has a pool; `None` otherwise.
    fn connections(&self) -> Option<ConnectionCounts> {
        None
    }
}

/// A storage connection pool's connections, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionCounts {
    /// Open and waiting for a request.
    pub idle: u32,
    /// Open and serving a request.
    pub in_use: u32,
}

/// Everything storage holds, as [`ClientRepository::desired_state`] reads it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoredClients {
    /// The clients, in id order.
    pub clients: Vec<Client>,
    /// The rows that could not be read as clients, in id order.
    pub unusable: Vec<UnusableClient>,
}

/// Proof that this replica is the one reconciling; release it when the pass ends.
#[async_trait]
pub trait HeldPassLock: Send {
    /// Gives the lock back. Dropping without release must also free it eventually (for example by
    /// closing the connection that holds it).
    async fn release(self: Box<Self>);
}

/// Makes sure only one replica reconciles at a time.
#[async_trait]
pub trait PassLock: Send + Sync + 'static {
    /// Takes the lock without waiting; `None` when another replica holds it.
    async fn try_acquire(&self) -> Result<Option<Box<dyn HeldPassLock>>, RepoError>;
}

/// Why the runtime could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeError {
    /// The runtime could not be reached, timed out, or asked us to back off (429, 5xx): retry later.
    #[error("{}runtime unavailable: {detail}", on(.pod))]
    Unavailable {
        /// The pod the operation was for, if any.
        pod: Option<PodName>,
        /// What happened.
        detail: String,
    },
    /// The runtime asked us to back off for at least `retry_after` (HTTP 429 or 503 with
    /// `Retry-After`): retry, not sooner.
    #[error("{}runtime asked to retry after {}: {detail}", on(.pod), seconds(.retry_after))]
    Throttled {
        /// The pod the operation was for, if any.
        pod: Option<PodName>,
        /// What happened.
        detail: String,
        /// The least time to wait.
        retry_after: Duration,
    },
    /// The runtime refused the request (for example an invalid object); retrying as is won't help.
    #[error("{}runtime rejected the request: {detail}", on(.pod))]
    Rejected {
        /// The pod the operation was for, if any.
        pod: Option<PodName>,
        /// What the runtime said.
        detail: String,
    },
}

fn on(pod: &Option<PodName>) -> String {
    pod.as_ref()
        .map(|p| format!("pod {p}: "))
        .unwrap_or_default()
}

fn seconds(wait: &Duration) -> String {
    format!("{}s", wait.as_secs_f64())
}

impl RuntimeError {
    /// Whether the same request may succeed later.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, RuntimeError::Rejected { .. })
    }

    /// What the failure means for the pod's retry schedule.
    pub fn failure(&self) -> Failure {
        match self {
            RuntimeError::Unavailable { .. } => Failure::Retryable { retry_after: None },
            RuntimeError::Throttled { retry_after, .. } => Failure::Retryable {
                retry_after: Some(*retry_after),
            },
            RuntimeError::Rejected { .. } => Failure::Rejected,
        }
    }
}

/// Where pods run. Implementations only ever see and touch the pods alsy manages.
#[async_trait]
pub trait PodRuntime: Send + Sync + 'static {
    /// The managed pods that exist now, with their phases.
    async fn list(&self) -> Result<Vec<ObservedPod>, RuntimeError>;

    /// The managed pods among `names` that exist now (a client's sync state asks for the pods
    /// of its catalogue's algorithms). The default filters [`PodRuntime::list`]; the Kubernetes
    /// runtime looks the names up in its watch store once it has synced, so one client's
    /// `GET` costs a few lookups, not a copy of every managed pod.
    async fn list_named(&self, names: &[PodName]) -> Result<Vec<ObservedPod>, RuntimeError> {
        let mut pods = self.list().await?;
        pods.retain(|pod| names.contains(&pod.name));
        Ok(pods)
    }

    /// Starts a pod; one that already exists counts as success.
    async fn create(&self, pod: &DesiredPod) -> Result<(), RuntimeError>;

    /// Stops a pod; one that is already gone counts as success. Returns once the runtime has
    /// accepted the deletion, without waiting for the pod to terminate.
    async fn delete(&self, name: &PodName) -> Result<(), RuntimeError>;

    /// Deletes the pod and, if the runtime removed it at once (no grace period, or a pod that
    /// had finished), creates it again from `pod`. Never waits for a grace period: when the old
    /// pod is still terminating it answers [`Restarted::OldPodTerminating`], and a later pass
    /// creates the successor once the old pod is gone. A missing pod is simply created.
    async fn restart(&self, pod: &DesiredPod) -> Result<Restarted, RuntimeError>;

    /// The change feed: every change to a managed pod from now on, alsy's own included. `None`
    /// for a runtime that cannot see changes; then only passes notice them.
    fn changes(&self) -> Option<PodChanges> {
        None
    }
}

/// How far a [`PodRuntime::restart`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restarted {
    /// The old pod is gone and its successor created.
    Replaced,
    /// The old pod is deleted and still terminating: no successor yet.
    OldPodTerminating,
}

/// Where the reconciler reads the time: the wall clock in production; tests drive their own, so
/// that a retry schedule can be stepped through without sleeping.
pub trait Clock: Send + Sync + 'static {
    /// Now.
    fn now(&self) -> SystemTime;
}

/// The system's wall clock. Retry times are wall-clock times because they are stored and read by
/// every replica.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}
