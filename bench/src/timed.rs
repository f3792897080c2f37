//! A [`ClientRepository`] wrapper that adds up the time spent in `desired_state` and in
//! `acknowledge`, so the reconcile bench can split a first pass without touching the reconciler.
//! The reconciler acknowledges in batches, a few at once, so the calls' sum is more than the wall
//! time they take: the span from the first call's start to the last one's end is kept too.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;

use alsy_app::{ClientRepository, RepoError, StoredClients};
use alsy_domain::{
    Acknowledgement, AlgorithmStatus, Client, ClientId, ClientSpec, Page, PageRequest, PodName,
    PodRetry,
};

/// Time spent in the calls a reconcile pass makes.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub struct Spent {
    /// In `desired_state`.
    pub desired_state: Duration,
    /// In `acknowledge`, all calls together.
    pub acknowledge: Duration,
    /// How many `acknowledge` calls.
    pub acknowledgements: u64,
    /// From the start of the first `acknowledge` call to the end of the last: their wall time.
    pub acknowledge_span: Duration,
}

/// Delegates to `R`, timing what a pass calls.
pub struct Timed<R> {
    inner: R,
    spent: Mutex<Spent>,
    /// When the first `acknowledge` call since the last [`Timed::take`] started.
    first_ack: Mutex<Option<Instant>>,
}

impl<R: ClientRepository> Timed<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Timed<R> {
        Timed {
            inner,
            spent: Mutex::new(Spent::default()),
            first_ack: Mutex::new(None),
        }
    }

    /// What was spent since the last call, and starts counting afresh.
    pub fn take(&self) -> Spent {
        *self.first_ack.lock().unwrap_or_else(|p| p.into_inner()) = None;
        std::mem::take(&mut *self.spent.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Counts one `acknowledge` call that started at `clock` and has just ended.
    fn acknowledged(&self, clock: Instant) {
        let first = *self
            .first_ack
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(clock);
        let took = clock.elapsed();
        self.add(|s| {
            s.acknowledge += took;
            s.acknowledgements += 1;
            s.acknowledge_span = first.elapsed();
        });
    }

    fn add(&self, f: impl FnOnce(&mut Spent)) {
        f(&mut self.spent.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

#[async_trait]
impl<R: ClientRepository> ClientRepository for Timed<R> {
    async fn create(&self, spec: &ClientSpec) -> Result<Client, RepoError> {
        self.inner.create(spec).await
    }

    async fn update(
        &self,
        id: ClientId,
        spec: &ClientSpec,
        mark: bool,
    ) -> Result<Client, RepoError> {
        self.inner.update(id, spec, mark).await
    }

    async fn set_status(
        &self,
        id: ClientId,
        status: AlgorithmStatus,
        mark: bool,
    ) -> Result<Client, RepoError> {
        self.inner.set_status(id, status, mark).await
    }

    async fn delete(&self, id: ClientId) -> Result<(), RepoError> {
        self.inner.delete(id).await
    }

    async fn get(&self, id: ClientId) -> Result<Client, RepoError> {
        self.inner.get(id).await
    }

    async fn list(&self, page: PageRequest) -> Result<Page, RepoError> {
        self.inner.list(page).await
    }

    async fn desired_state(&self) -> Result<StoredClients, RepoError> {
        let clock = Instant::now();
        let result = self.inner.desired_state().await;
        let took = clock.elapsed();
        self.add(|s| s.desired_state += took);
        result
    }

    async fn acknowledge(&self, ack: Acknowledgement, at: SystemTime) -> Result<bool, RepoError> {
        let clock = Instant::now();
        let result = self.inner.acknowledge(ack, at).await;
        self.acknowledged(clock);
        result
    }

    async fn acknowledge_all(
        &self,
        acks: &[Acknowledgement],
        at: SystemTime,
    ) -> Result<Vec<bool>, RepoError> {
        let clock = Instant::now();
        let result = self.inner.acknowledge_all(acks, at).await;
        self.acknowledged(clock);
        result
    }

    async fn ping(&self) -> Result<(), RepoError> {
        self.inner.ping().await
    }

    async fn pod_retries(&self) -> Result<Vec<PodRetry>, RepoError> {
        self.inner.pod_retries().await
    }

    async fn client_pod_retries(&self, client: ClientId) -> Result<Vec<PodRetry>, RepoError> {
        self.inner.client_pod_retries(client).await
    }

    async fn client_with_retries(
        &self,
        id: ClientId,
    ) -> Result<(Client, Vec<PodRetry>), RepoError> {
        self.inner.client_with_retries(id).await
    }

    async fn save_pod_retries(
        &self,
        changed: &[PodRetry],
        cleared: &[PodName],
    ) -> Result<(), RepoError> {
        self.inner.save_pod_retries(changed, cleared).await
    }
}
