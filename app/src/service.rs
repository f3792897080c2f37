//! The use cases behind the HTTP API: one method per endpoint.

use std::sync::Arc;

use alsy_domain::{
    Algorithm, AlgorithmStatus, Catalogue, Client, ClientId, ClientSpec, Page, PageRequest,
    PodName, PodPhase, Policy, PolicyViolation,
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

    /// One client with its status.
    pub async fn client(&self, id: ClientId) -> Result<Client, ServiceError> {
        Ok(self.repo.get(id).await?)
    }

    /// A page of clients with their status.
    pub async fn clients(&self, page: PageRequest) -> Result<Page, ServiceError> {
        Ok(self.repo.list(page).await?)
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
