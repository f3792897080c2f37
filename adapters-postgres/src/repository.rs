//! `PostgresRepository`: the [`ClientRepository`] port over the pool. Each call is bounded by
//! the read or write timeout (check-out included), so a stuck database gives `Unavailable`
//! instead of a hung request, and the first failure of an outage and the recovery are logged once.

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use diesel::QueryResult;
use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};
use slog::{Logger, error, info, o, warn};

use alsy_app::{ClientRepository, RepoError, StoredClients};
use alsy_domain::{
    Acknowledgement, AlgorithmStatus, Client, ClientId, ClientName, ClientSpec, Page, PageRequest,
    PodName, PodRetry,
};

use crate::connect::{ConnectError, Connector};
use crate::error::{no_answer, query_failed};
use crate::pool::{self, Lease, ManagerError, Pool};
use crate::retries::RetryRow;
use crate::{AdvisoryPassLock, PostgresError, PostgresSettings, queries, retries, rows};

/// Reads rows as clients, setting apart the ones that no longer parse so that a bad row affects
/// only itself. A row whose id is not even positive (a hand edit) can own no pods and no API
/// route can name it: it is logged and left out.
fn read_rows(rows: Vec<rows::Joined>, log: &Logger) -> StoredClients {
    let mut read = StoredClients::default();
    for row in rows {
        match rows::client(row) {
            Ok(client) => read.clients.push(client),
            Err(RepoError::Unusable(unusable)) => read.unusable.push(unusable),
            Err(other) => error!(log, "stored row left out"; "error" => %other),
        }
    }
    read
}

/// Clients in PostgreSQL; clones share the pool.
#[derive(Clone)]
pub struct PostgresRepository {
    pool: Pool,
    connector: Connector,
    read_timeout: Duration,
    write_timeout: Duration,
    start_timeout: Duration,
    last_connect_error: Arc<Mutex<Option<ConnectError>>>,
    outage: Arc<AtomicBool>,
    log: Logger,
}

impl PostgresRepository {
    /// Builds the pool, waiting up to the start timeout for the database; fails naming
    /// `host:port` and the cause. Does not migrate: call [`crate::migrate`] first.
    pub async fn connect(
        settings: &PostgresSettings,
        log: &Logger,
    ) -> Result<PostgresRepository, PostgresError> {
        settings.validate()?;
        let log = log.new(o!("component" => "storage/postgres"));
        let connector = Connector::new(settings)?;
        let (pool, last_connect_error) = pool::build(settings, connector.clone(), &log).await?;
        info!(log, "connected to PostgreSQL";
            "target" => connector.target(), "min_conns" => settings.min_conns,
            "max_conns" => settings.max_conns);
        Ok(PostgresRepository {
            pool,
            connector,
            read_timeout: settings.read_timeout,
            write_timeout: settings.write_timeout,
            start_timeout: settings.start_timeout,
            last_connect_error,
            outage: Arc::default(),
            log,
        })
    }

    /// The lock that keeps reconcile passes of several replicas from overlapping.
    pub fn pass_lock(&self) -> AdvisoryPassLock {
        AdvisoryPassLock::new(self.connector.clone(), self.read_timeout, &self.log)
    }

    /// Runs `call` within `timeout`, and logs when storage goes away and comes back.
    async fn bounded<T>(
        &self,
        timeout: Duration,
        call: impl Future<Output = Result<T, RepoError>>,
    ) -> Result<T, RepoError> {
        let result = match tokio::time::timeout(timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(no_answer(
                self.connector.target(),
                timeout,
                self.last_connect_error(),
            )),
        };
        match &result {
            Err(RepoError::Unavailable(cause)) => {
                if !self.outage.swap(true, Ordering::Relaxed) {
                    warn!(self.log, "storage unavailable"; "error" => cause);
                }
            }
            _ => {
                if self.outage.swap(false, Ordering::Relaxed) {
                    info!(self.log, "storage available again");
                }
            }
        }
        result
    }

    async fn lease(&self) -> Result<Lease<'_>, RepoError> {
        pool::lease(&self.pool).await.map_err(|error| match error {
            bb8::RunError::User(ManagerError::Connect(cause)) => {
                RepoError::Unavailable(cause.to_string())
            }
            // bb8 waits for a connection up to the start timeout.
            bb8::RunError::User(_) | bb8::RunError::TimedOut => no_answer(
                self.connector.target(),
                self.start_timeout,
                self.last_connect_error(),
            ),
        })
    }

    /// Runs `query` on a pooled connection within `timeout` (the wait for a connection
    /// included), then hands the connection back; a unique violation names `name`.
    async fn call<T>(
        &self,
        timeout: Duration,
        name: Option<&ClientName>,
        query: impl AsyncFnOnce(&mut AsyncPgConnection) -> QueryResult<T>,
    ) -> Result<T, RepoError> {
        self.bounded(timeout, async {
            let mut lease = self.lease().await?;
            let result = query(lease.conn()).await;
            lease.release();
            result.map_err(|e| query_failed(e, name))
        })
        .await
    }

    /// Reads schedules, leaving out (and logging) rows that no longer parse.
    async fn load_retries(&self, client: Option<ClientId>) -> Result<Vec<PodRetry>, RepoError> {
        let rows = self
            .call(self.read_timeout, None, async |conn| {
                retries::load(conn, client).await
            })
            .await?;
        Ok(self.parse_retries(rows))
    }

    /// Schedules from their rows in pod-name order, leaving out (and logging) rows that no
    /// longer parse.
    fn parse_retries(&self, rows: impl IntoIterator<Item = RetryRow>) -> Vec<PodRetry> {
        let mut retries: Vec<PodRetry> = rows
            .into_iter()
            .filter_map(|row| {
                row.parse()
                    .inspect_err(
                        |problem| error!(self.log, "retry schedule left out"; "error" => problem),
                    )
                    .ok()
            })
            .collect();
        // The database's collation may order names otherwise than the bytes do.
        retries.sort_by(|a, b| a.pod.cmp(&b.pod));
        retries
    }

    fn last_connect_error(&self) -> Option<String> {
        self.last_connect_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(ToString::to_string)
    }
}

#[async_trait]
impl ClientRepository for PostgresRepository {
    async fn create(&self, spec: &ClientSpec) -> Result<Client, RepoError> {
        let inserted = self
            .call(self.write_timeout, Some(&spec.name), async |conn| {
                queries::insert(conn, spec).await
            })
            .await?;
        rows::client(inserted)
    }

    async fn update(
        &self,
        id: ClientId,
        spec: &ClientSpec,
        need_restart: bool,
    ) -> Result<Client, RepoError> {
        let updated = self
            .call(self.write_timeout, Some(&spec.name), async |conn| {
                queries::update(conn, id, spec, need_restart).await
            })
            .await?;
        rows::client(updated.ok_or(RepoError::NotFound(id))?)
    }

    async fn set_status(
        &self,
        id: ClientId,
        status: AlgorithmStatus,
        need_restart: bool,
    ) -> Result<Client, RepoError> {
        let updated = self
            .call(self.write_timeout, None, async |conn| {
                queries::set_status(conn, id, &status, need_restart).await
            })
            .await?;
        rows::client_with(updated.ok_or(RepoError::NotFound(id))?, Ok(status))
    }

    async fn delete(&self, id: ClientId) -> Result<(), RepoError> {
        let deleted = self
            .call(self.write_timeout, None, async |conn| {
                queries::delete(conn, id).await
            })
            .await?;
        match deleted {
            true => Ok(()),
            false => Err(RepoError::NotFound(id)),
        }
    }

    async fn get(&self, id: ClientId) -> Result<Client, RepoError> {
        let found = self
            .call(self.read_timeout, None, async |conn| {
                queries::find(conn, id).await
            })
            .await?;
        rows::client(found.ok_or(RepoError::NotFound(id))?)
    }

    async fn list(&self, page: PageRequest) -> Result<Page, RepoError> {
        let limit = page.limit.clamp(1, PageRequest::MAX_LIMIT) as usize;
        // One row more than asked tells whether another page follows.
        let mut fetched = self
            .call(self.read_timeout, None, async |conn| {
                queries::page(conn, page.after, limit as i64 + 1).await
            })
            .await?;
        let more = fetched.len() > limit;
        fetched.truncate(limit);
        // The cursor is the last row of the page, usable or not.
        let next = match more {
            true => fetched.last().and_then(|(row, _)| ClientId::new(row.id)),
            false => None,
        };
        let read = read_rows(fetched, &self.log);
        Ok(Page {
            items: read.clients,
            unusable: read.unusable,
            next,
        })
    }

    async fn desired_state(&self) -> Result<StoredClients, RepoError> {
        let all = self
            .call(self.read_timeout, None, async |conn| {
                queries::everything(conn).await
            })
            .await?;
        // Parsing every client is CPU-bound (milliseconds per ten thousand).
        let log = self.log.clone();
        Ok(alsy_app::off_the_workers(move || read_rows(all, &log)).await)
    }

    async fn acknowledge(&self, ack: Acknowledgement, at: SystemTime) -> Result<bool, RepoError> {
        let restart_seen = ack.restart_seen.map(rows::db_time).transpose()?;
        let at = rows::db_time(at)?;
        self.call(self.write_timeout, None, async |conn| {
            queries::acknowledge(conn, ack.client_id, restart_seen, at).await
        })
        .await
    }

    async fn acknowledge_all(
        &self,
        acks: &[Acknowledgement],
        at: SystemTime,
    ) -> Result<Vec<bool>, RepoError> {
        let mut plain = Vec::new();
        let mut restarts = Vec::new();
        for ack in acks {
            match ack.restart_seen {
                None => plain.push(ack.client_id.get()),
                Some(seen) => restarts.push((ack.client_id.get(), rows::db_time(seen)?)),
            }
        }
        let at = rows::db_time(at)?;
        let changed: HashSet<i64> = self
            .call(self.write_timeout, None, async |conn| {
                queries::acknowledge_all(conn, &plain, &restarts, at).await
            })
            .await?
            .into_iter()
            .collect();
        Ok(acks
            .iter()
            .map(|ack| changed.contains(&ack.client_id.get()))
            .collect())
    }

    async fn ping(&self) -> Result<(), RepoError> {
        self.call(self.read_timeout, None, async |conn| {
            conn.batch_execute("SELECT 1").await
        })
        .await
    }

    async fn pod_retries(&self) -> Result<Vec<PodRetry>, RepoError> {
        self.load_retries(None).await
    }

    async fn client_pod_retries(&self, client: ClientId) -> Result<Vec<PodRetry>, RepoError> {
        self.load_retries(Some(client)).await
    }

    /// The client's row, and its schedules only when its status row says it has any: one
    /// round trip for nearly every read (`queries::find_with_retries`).
    async fn client_with_retries(
        &self,
        id: ClientId,
    ) -> Result<(Client, Vec<PodRetry>), RepoError> {
        let found = self
            .call(self.read_timeout, None, async |conn| {
                queries::find_with_retries(conn, id).await
            })
            .await?;
        let (client, schedules) = found.ok_or(RepoError::NotFound(id))?;
        Ok((rows::client(client)?, self.parse_retries(schedules)))
    }

    async fn save_pod_retries(
        &self,
        changed: &[PodRetry],
        cleared: &[PodName],
    ) -> Result<(), RepoError> {
        let changed = changed
            .iter()
            .map(RetryRow::of)
            .collect::<Result<Vec<_>, _>>()?;
        let cleared: Vec<String> = cleared.iter().map(ToString::to_string).collect();
        self.call(self.write_timeout, None, async |conn| {
            retries::save(conn, &changed, &cleared).await
        })
        .await
    }

    fn connections(&self) -> Option<alsy_app::ConnectionCounts> {
        let state = self.pool.state();
        Some(alsy_app::ConnectionCounts {
            idle: state.idle_connections,
            in_use: state.connections.saturating_sub(state.idle_connections),
        })
    }
}
