//! `InMemoryRepository`: clients kept in the process, with PostgreSQL's semantics — unique
//! names, a status row born with its client and dropped with it, strictly increasing
//! `updated_at`, compare-and-set acknowledge.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use alsy_app::{ClientRepository, RepoError, StoredClients};
use alsy_domain::{
    Acknowledgement, AlgorithmStatus, Client, ClientId, ClientSpec, Page, PageRequest, PodName,
    PodRetry,
};

#[derive(Default)]
struct State {
    last_id: i64,
    clients: BTreeMap<ClientId, Client>,
    /// Who has each name: the uniqueness check is one look-up, not a scan.
    names: HashMap<String, ClientId>,
    retries: BTreeMap<PodName, PodRetry>,
    unavailable: bool,
}

/// Clients in memory; clones share the same data.
#[derive(Clone, Default)]
pub struct InMemoryRepository {
    state: Arc<Mutex<State>>,
}

impl InMemoryRepository {
    /// An empty repository.
    pub fn new() -> InMemoryRepository {
        InMemoryRepository::default()
    }

    /// While `true`, every call fails with [`RepoError::Unavailable`], as if the database were down.
    pub fn set_unavailable(&self, unavailable: bool) {
        self.lock_state().unavailable = unavailable;
    }

    fn lock_state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves no half-written client: every change is one insert
        // or field assignment. Carry on with the data as it is.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn state(&self) -> Result<MutexGuard<'_, State>, RepoError> {
        let state = self.lock_state();
        if state.unavailable {
            return Err(RepoError::Unavailable(
                "in-memory storage switched off by a test".into(),
            ));
        }
        Ok(state)
    }
}

impl State {
    fn client_mut(&mut self, id: ClientId) -> Result<&mut Client, RepoError> {
        self.clients.get_mut(&id).ok_or(RepoError::NotFound(id))
    }

    fn check_name_free(
        &self,
        spec: &ClientSpec,
        except: Option<ClientId>,
    ) -> Result<(), RepoError> {
        let holder = self.names.get(spec.name.as_str()).copied();
        if holder.is_some() && holder != except {
            return Err(RepoError::NameTaken(spec.name.to_string()));
        }
        Ok(())
    }
}

/// A write time later than `previous`, even when the clock has not moved.
fn next_write_time(previous: SystemTime) -> SystemTime {
    SystemTime::now().max(previous + Duration::from_micros(1))
}

#[async_trait]
impl ClientRepository for InMemoryRepository {
    async fn create(&self, spec: &ClientSpec) -> Result<Client, RepoError> {
        let mut state = self.state()?;
        state.check_name_free(spec, None)?;
        state.last_id += 1;
        let id = ClientId::new(state.last_id)
            .ok_or_else(|| RepoError::Internal("client ids exhausted".into()))?;
        let now = SystemTime::now();
        let client = Client {
            id,
            spec: spec.clone(),
            status: AlgorithmStatus::default(),
            need_restart: false,
            spawned_at: None,
            created_at: now,
            updated_at: now,
        };
        state.names.insert(spec.name.to_string(), id);
        state.clients.insert(id, client.clone());
        Ok(client)
    }

    async fn update(
        &self,
        id: ClientId,
        spec: &ClientSpec,
        need_restart: bool,
    ) -> Result<Client, RepoError> {
        let mut state = self.state()?;
        state.client_mut(id)?;
        state.check_name_free(spec, Some(id))?;
        let client = state.client_mut(id)?;
        let old_name = std::mem::replace(&mut client.spec, spec.clone()).name;
        client.need_restart |= need_restart;
        client.updated_at = next_write_time(client.updated_at);
        let client = client.clone();
        state.names.remove(old_name.as_str());
        state.names.insert(spec.name.to_string(), id);
        Ok(client)
    }

    async fn set_status(
        &self,
        id: ClientId,
        status: AlgorithmStatus,
        need_restart: bool,
    ) -> Result<Client, RepoError> {
        let mut state = self.state()?;
        let client = state.client_mut(id)?;
        // Merged, as PostgreSQL merges: a switch the write does not name keeps its value.
        for (algorithm, on) in status.switches() {
            client.status.set(algorithm, on);
        }
        client.need_restart |= need_restart;
        client.updated_at = next_write_time(client.updated_at);
        // As the port says: the switches as written, a kept one not read back.
        Ok(Client {
            status,
            ..client.clone()
        })
    }

    async fn delete(&self, id: ClientId) -> Result<(), RepoError> {
        let mut state = self.state()?;
        let client = state.clients.remove(&id).ok_or(RepoError::NotFound(id))?;
        state.names.remove(client.spec.name.as_str());
        Ok(())
    }

    async fn get(&self, id: ClientId) -> Result<Client, RepoError> {
        let state = self.state()?;
        state
            .clients
            .get(&id)
            .cloned()
            .ok_or(RepoError::NotFound(id))
    }

    async fn list(&self, page: PageRequest) -> Result<Page, RepoError> {
        let state = self.state()?;
        let limit = page.limit.clamp(1, PageRequest::MAX_LIMIT) as usize;
        // Keyset pagination straight to the page's first id, not a scan from the start.
        let start = page.after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut rest = state
            .clients
            .range((start, Bound::Unbounded))
            .map(|(_, c)| c.clone());
        let items: Vec<Client> = rest.by_ref().take(limit).collect();
        let next = match rest.next() {
            Some(_) => items.last().map(|c| c.id),
            None => None,
        };
        Ok(Page {
            items,
            unusable: Vec::new(),
            next,
        })
    }

    async fn desired_state(&self) -> Result<StoredClients, RepoError> {
        // Every client stored here was parsed on the way in: none is unusable.
        Ok(StoredClients {
            clients: self.state()?.clients.values().cloned().collect(),
            unusable: Vec::new(),
        })
    }

    async fn acknowledge(&self, ack: Acknowledgement, at: SystemTime) -> Result<bool, RepoError> {
        let mut state = self.state()?;
        let Some(client) = state.clients.get_mut(&ack.client_id) else {
            return Ok(false);
        };
        match ack.restart_seen {
            Some(seen) if seen != client.updated_at => Ok(false),
            Some(_) => {
                client.need_restart = false;
                client.spawned_at = Some(at);
                Ok(true)
            }
            None => {
                client.spawned_at = Some(at);
                Ok(true)
            }
        }
    }

    async fn ping(&self) -> Result<(), RepoError> {
        self.state().map(drop)
    }

    async fn pod_retries(&self) -> Result<Vec<PodRetry>, RepoError> {
        Ok(self.state()?.retries.values().cloned().collect())
    }

    async fn client_pod_retries(&self, client: ClientId) -> Result<Vec<PodRetry>, RepoError> {
        let state = self.state()?;
        let retries = state.retries.values();
        Ok(retries
            .filter(|r| r.client_id == Some(client))
            .cloned()
            .collect())
    }

    async fn save_pod_retries(
        &self,
        changed: &[PodRetry],
        cleared: &[PodName],
    ) -> Result<(), RepoError> {
        let mut state = self.state()?;
        for pod in cleared {
            state.retries.remove(pod);
        }
        for retry in changed {
            state.retries.insert(retry.pod.clone(), retry.clone());
        }
        Ok(())
    }
}
