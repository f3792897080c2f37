//! The use cases behind the HTTP API: one method per endpoint.

use std::collections::HashMap;
use std::sync::Arc;

use alsy_domain::{
    Algorithm, AlgorithmStatus, Catalogue, Client, ClientId, ClientSpec, ClientSync, ObservedPod,
    Page, PageRequest, PodName, PodPhase, PodRetry, Policy, PolicyViolation, SyncSummary,
    UnusableClient,
};

use crate::ports::{ClientRepository, PodRuntime, RepoError, RuntimeError};
use crate::report::PassReport;
use crate::watcher::{ShuttingDown, WatcherDead, WatcherHandle};

/// Why a use case failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    /// Storage refused or failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// The pod runtime failed.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The service is shutting down.
    #[error(transparent)]
    ShuttingDown(#[from] ShuttingDown),
    /// The watcher died: nothing reconciles.
    #[error(transparent)]
    WatcherDead(#[from] WatcherDead),
    /// The write breaks the operator's policy.
    #[error(transparent)]
    Policy(#[from] PolicyViolation),
}

/// A pod as `GET /api/v1/pods` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodView {
    /// Its name.
    pub name: PodName,
    /// The client it runs for, when its name has alsy's form.
    pub client_id: Option<ClientId>,
    /// The algorithm it runs, when its name has alsy's form.
    pub algorithm: Option<Algorithm>,
    /// Its phase.
    pub phase: PodPhase,
}

/// A client's sync state as the API shows it: known, or why it is not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncView {
    /// Derived from the client, its pods and their retry schedules.
    Known(ClientSync),
    /// The runtime could not say which pods run; the client itself is still shown.
    Unknown(RuntimeError),
}

/// A page of the clients whose summary is the one asked for, with their sync state.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncPage {
    /// The clients, in id order, each with its sync state.
    pub items: Vec<(Client, ClientSync)>,
    /// Stored rows in the scanned range that can no longer be read as clients.
    pub unusable: Vec<UnusableClient>,
    /// Pass as `after` to go on; `None` when the scan reached the last client.
    pub next: Option<ClientId>,
}

/// The service's use cases, shared by every HTTP request; cheap to clone.
#[derive(Clone)]
pub struct Service {
    repo: Arc<dyn ClientRepository>,
    runtime: Arc<dyn PodRuntime>,
    watcher: WatcherHandle,
    policy: Arc<Policy>,
    catalogue: Catalogue,
}

impl Service {
    /// Use cases over this storage, runtime and watcher.
    pub fn new(
        repo: Arc<dyn ClientRepository>,
        runtime: Arc<dyn PodRuntime>,
        watcher: WatcherHandle,
    ) -> Service {
        Service {
            repo,
            runtime,
            watcher,
            policy: Arc::new(Policy::default()),
            catalogue: Catalogue::default(),
        }
    }

    /// Refuses writes that break `policy`.
    pub fn with_policy(mut self, policy: Arc<Policy>) -> Service {
        self.policy = policy;
        self
    }

    /// Serves the algorithms of `catalogue` (the default: VWAP, TWAP, HFT).
    pub fn with_catalogue(mut self, catalogue: Catalogue) -> Service {
        self.catalogue = catalogue;
        self
    }

    /// The algorithms this service runs: the keys of a status.
    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    /// Adds a client with every algorithm off. Nothing should run yet, so the watcher is not nudged.
    pub async fn create_client(&self, spec: ClientSpec) -> Result<Client, ServiceError> {
        self.policy.check(&spec)?;
        Ok(self.repo.create(&spec).await?)
    }

    /// Replaces a client's spec; with `need_restart` its pods restart on the next pass.
    pub async fn update_client(
        &self,
        id: ClientId,
        spec: ClientSpec,
        need_restart: bool,
    ) -> Result<Client, ServiceError> {
        self.policy.check(&spec)?;
        let client = self.repo.update(id, &spec, need_restart).await?;
        if need_restart {
            self.watcher.nudge();
        }
        Ok(client)
    }

    /// Deletes a client; its pods go on the next pass.
    pub async fn delete_client(&self, id: ClientId) -> Result<(), ServiceError> {
        self.repo.delete(id).await?;
        self.watcher.nudge();
        Ok(())
    }

    /// Sets a client's switches (and with `need_restart` marks it for restart).
    pub async fn set_status(
        &self,
        id: ClientId,
        status: AlgorithmStatus,
        need_restart: bool,
    ) -> Result<Client, ServiceError> {
        // Switching something on runs the stored spec: it must meet the policy as it is now.
        // Switching everything off is always allowed. An open policy costs no extra read.
        if !self.policy.is_open() && status.enabled().next().is_some() {
            self.policy.check(&self.repo.get(id).await?.spec)?;
        }
        let client = self.repo.set_status(id, status, need_restart).await?;
        self.watcher.nudge();
        Ok(client)
    }

    /// A page of clients with their status.
    pub async fn clients(&self, page: PageRequest) -> Result<Page, ServiceError> {
        Ok(self.repo.list(page).await?)
    }

    /// One client with its sync state. Any replica answers the same: the retry schedules are
    /// read from storage, the pods from this replica's runtime.
    pub async fn client_with_sync(&self, id: ClientId) -> Result<(Client, SyncView), ServiceError> {
        let (client, retries) = self.repo.client_with_retries(id).await?;
        let names: Vec<PodName> = self
            .catalogue
            .algorithms()
            .iter()
            .map(|&algorithm| PodName::of(algorithm, id))
            .collect();
        let sync = match self.runtime.list_named(&names).await {
            Ok(observed) => SyncView::Known(self.sync_of(&client, &observed, &retries)),
            Err(e) => SyncView::Unknown(e),
        };
        Ok((client, sync))
    }

    /// The clients after `page.after` whose summary is `summary`, at most `page.limit` of them.
    /// Reads every pod and retry schedule once, then scans clients in id order until the page
    /// is full: a filter an operator runs, not a hot path.
    pub async fn clients_in_state(
        &self,
        page: PageRequest,
        summary: SyncSummary,
    ) -> Result<SyncPage, ServiceError> {
        /// Clients read per storage call while scanning.
        const SCAN: u32 = PageRequest::MAX_LIMIT;
        let mut observed: HashMap<ClientId, Vec<ObservedPod>> = HashMap::new();
        for pod in self.runtime.list().await? {
            if let Some((_, id)) = pod.name.owner() {
                observed.entry(id).or_default().push(pod);
            }
        }
        let mut retries: HashMap<ClientId, Vec<PodRetry>> = HashMap::new();
        for retry in self.repo.pod_retries().await? {
            if let Some(id) = retry.client_id {
                retries.entry(id).or_default().push(retry);
            }
        }
        let limit = page.limit.clamp(1, PageRequest::MAX_LIMIT) as usize;
        let mut found = SyncPage {
            items: Vec::new(),
            unusable: Vec::new(),
            next: None,
        };
        let mut after = page.after;
        loop {
            let scanned = self.repo.list(PageRequest { after, limit: SCAN }).await?;
            found.unusable.extend(scanned.unusable);
            let mut clients = scanned.items.into_iter().peekable();
            while let Some(client) = clients.next() {
                let pods = observed.get(&client.id).map_or(&[][..], Vec::as_slice);
                let schedules = retries.get(&client.id).map_or(&[][..], Vec::as_slice);
                let sync = self.sync_of(&client, pods, schedules);
                if sync.summary != summary {
                    continue;
                }
                let id = client.id;
                found.items.push((client, sync));
                if found.items.len() == limit {
                    let more = clients.peek().is_some() || scanned.next.is_some();
                    found.next = more.then_some(id);
                    return Ok(found);
                }
            }
            match scanned.next {
                Some(next) => after = Some(next),
                None => return Ok(found),
            }
        }
    }

    fn sync_of(
        &self,
        client: &Client,
        observed: &[ObservedPod],
        retries: &[PodRetry],
    ) -> ClientSync {
        // As the reconciler does on every pass: a client breaking the policy is held back.
        let held = self.policy.check(&client.spec).err().map(|v| v.to_string());
        ClientSync::of(client, &self.catalogue, held.as_deref(), observed, retries)
    }

    /// The managed pods the runtime reports now, sorted by name.
    pub async fn pods(&self) -> Result<Vec<PodView>, ServiceError> {
        let mut pods: Vec<PodView> = self
            .runtime
            .list()
            .await?
            .into_iter()
            .map(|pod| {
                let owner = pod.name.owner();
                PodView {
                    client_id: owner.map(|(_, id)| id),
                    algorithm: owner.map(|(a, _)| a),
                    name: pod.name,
                    phase: pod.phase,
                }
            })
            .collect();
        pods.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(pods)
    }

    /// The storage connection pool's figures, when storage has one.
    pub fn storage_connections(&self) -> Option<crate::ports::ConnectionCounts> {
        self.repo.connections()
    }

    /// Whether the watcher runs and storage answers (readiness).
    pub async fn ready(&self) -> Result<(), ServiceError> {
        self.watcher.check_alive()?;
        Ok(self.repo.ping().await?)
    }

    /// The last pass's report, if a pass has finished.
    pub fn last_pass(&self) -> Option<Arc<PassReport>> {
        self.watcher.last_report()
    }

    /// Runs a fresh pass after any running one and returns its report.
    pub async fn sync_now(&self) -> Result<Arc<PassReport>, ServiceError> {
        Ok(self.watcher.sync_now().await?)
    }
}
