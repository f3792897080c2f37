//! `AdvisoryPassLock`: the reconcile lock shared by every replica on one database, a PostgreSQL
//! session advisory lock. It lives on a dedicated connection, not a pooled one: a pooled connection
//! goes back to the pool after use and would go on holding the lock for whoever borrows it next.
//! Releasing unlocks and closes that connection; dropping the held lock without releasing it
//! closes the connection, and the server frees the lock with the session.

use std::time::Duration;

use async_trait::async_trait;
use slog::{Logger, debug, o, warn};
use tokio::task::JoinHandle;
use tokio_postgres::Client;

use alsy_app::{HeldPassLock, PassLock, RepoError};

use crate::connect::{Connector, describe};
use crate::error::no_answer;

/// The advisory lock key of reconcile passes: "alsypass" in ASCII.
const PASS_LOCK_KEY: i64 = 0x616c_7379_7061_7373;

/// Takes the reconcile lock without waiting; see the module comment.
#[derive(Clone)]
pub struct AdvisoryPassLock {
    connector: Connector,
    timeout: Duration,
    log: Logger,
}

impl AdvisoryPassLock {
    pub(crate) fn new(connector: Connector, timeout: Duration, log: &Logger) -> AdvisoryPassLock {
        AdvisoryPassLock {
            connector,
            timeout,
            log: log.new(o!("lock" => "reconcile")),
        }
    }

    async fn try_lock(&self) -> Result<Option<HeldAdvisoryLock>, RepoError> {
        let (client, connection) = self.connector.open().await.map_err(|error| {
            RepoError::Unavailable(format!(
                "cannot connect to {}: {error}",
                self.connector.target()
            ))
        })?;
        let held = HeldAdvisoryLock {
            client: Some(client),
            driver: tokio::spawn(async move {
                // The session ends with this task; errors show up on the client's calls.
                let _ = connection.await;
            }),
            timeout: self.timeout,
            log: self.log.clone(),
        };
        let locked: bool = held
            .client()?
            .query_one("SELECT pg_try_advisory_lock($1)", &[&PASS_LOCK_KEY])
            .await
            .and_then(|row| row.try_get(0))
            .map_err(|error| RepoError::Unavailable(describe(&error)))?;
        Ok(locked.then_some(held))
    }
}

#[async_trait]
impl PassLock for AdvisoryPassLock {
    async fn try_acquire(&self) -> Result<Option<Box<dyn HeldPassLock>>, RepoError> {
        let held = tokio::time::timeout(self.timeout, self.try_lock())
            .await
            .unwrap_or_else(|_| Err(no_answer(self.connector.target(), self.timeout, None)))?;
        debug!(self.log, "reconcile lock"; "acquired" => held.is_some());
        Ok(held.map(|held| Box::new(held) as Box<dyn HeldPassLock>))
    }
}

/// The session holding the lock, until released or dropped.
struct HeldAdvisoryLock {
    client: Option<Client>,
    driver: JoinHandle<()>,
    timeout: Duration,
    log: Logger,
}

impl HeldAdvisoryLock {
    fn client(&self) -> Result<&Client, RepoError> {
        self.client
            .as_ref()
            .ok_or_else(|| RepoError::Internal("the lock's connection is already closed".into()))
    }
}

#[async_trait]
impl HeldPassLock for HeldAdvisoryLock {
    async fn release(mut self: Box<Self>) {
        let Some(client) = self.client.take() else {
            return;
        };
        let unlock = client.execute("SELECT pg_advisory_unlock($1)", &[&PASS_LOCK_KEY]);
        match tokio::time::timeout(self.timeout, unlock).await {
            Ok(Ok(_)) => debug!(self.log, "reconcile lock released"),
            // Closing the session below frees the lock anyway.
            Ok(Err(error)) => {
                warn!(self.log, "unlocking failed; closing the session instead"; "error" => describe(&error))
            }
            Err(_) => warn!(self.log, "unlocking timed out; closing the session instead"),
        }
        // Dropping the only client makes the driver say goodbye to the server and finish.
        drop(client);
        let _ = tokio::time::timeout(self.timeout, &mut self.driver).await;
    }
}

impl Drop for HeldAdvisoryLock {
    fn drop(&mut self) {
        // Without a release (or if its goodbye hung), cut the connection: the server ends the
        // session and frees the lock.
        self.driver.abort();
    }
}
