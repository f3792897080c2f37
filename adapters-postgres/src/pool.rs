//! The bb8 pool of diesel-async connections, plus what bb8 lacks:
//!
//! - **Lifetime with jitter.** bb8's `max_lifetime` is one value for every connection, so a pool
//!   opened at once would expire at once. Instead each connection draws its own deadline when it
//!   is opened — [`MAX_LIFETIME`](crate::MAX_LIFETIME) plus a uniformly random part of
//!   `lifetime_jitter` — and the manager retires it once past that deadline: on check-out
//!   (`is_valid`) and on return (`has_broken`).
//! - **Abandoned calls.** A call cut short by its timeout may leave its connection mid-query or
//!   mid-transaction. Connections are marked in use at check-out and unmarked when the call ends;
//!   one returned still marked is discarded, never reused.
//! - **A server-side `statement_timeout`** on each connection, so the server stops work the client
//!   gave up on, and the last connection error kept for messages.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use diesel_async::pooled_connection::PoolableConnection;
use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};
use slog::{Logger, debug, warn};

use crate::connect::{ConnectError, Connector};
use crate::{PostgresError, PostgresSettings};

/// How long after its last call a connection is handed out without a `SELECT 1` check.
const FRESH_FOR: Duration = Duration::from_secs(5);

/// The pool the repository draws from.
pub(crate) type Pool = bb8::Pool<Manager>;

/// A pooled connection with its own retirement deadline.
pub(crate) struct PooledPg {
    conn: AsyncPgConnection,
    expires_at: Instant,
    in_call: bool,
    last_used: Instant,
}

impl PooledPg {
    fn expired(&self) -> bool {
        Instant::now() >= self.expires_at
    }
}

/// A connection checked out for one call. Until [`Lease::release`] the connection counts as
/// abandoned, so if the call's future is dropped midway the pool discards it.
pub(crate) struct Lease<'p>(bb8::PooledConnection<'p, Manager>);

impl Lease<'_> {
    /// The connection to run the call on.
    pub(crate) fn conn(&mut self) -> &mut AsyncPgConnection {
        &mut self.0.conn
    }

    /// The call finished (successfully or not): the connection may be reused.
    pub(crate) fn release(mut self) {
        self.0.in_call = false;
        self.0.last_used = Instant::now();
    }
}

/// Checks a connection out of `pool` for one call.
pub(crate) async fn lease(pool: &Pool) -> Result<Lease<'_>, bb8::RunError<ManagerError>> {
    let mut pooled = pool.get().await?;
    pooled.in_call = true;
    Ok(Lease(pooled))
}

/// Why the manager could not provide a connection.
#[derive(Debug)]
pub(crate) enum ManagerError {
    Connect(ConnectError),
    Ping,
    Expired,
}

/// Opens, checks and retires the pool's connections.
pub(crate) struct Manager {
    connector: Connector,
    settings: PostgresSettings,
    last_error: Arc<Mutex<Option<ConnectError>>>,
    log: Logger,
}

impl Manager {
    /// The error of the latest failed connection attempt, until one succeeds.
    pub(crate) fn last_error_handle(&self) -> Arc<Mutex<Option<ConnectError>>> {
        Arc::clone(&self.last_error)
    }

    async fn open(&self) -> Result<PooledPg, ConnectError> {
        let (client, connection) = self.connector.open().await?;
        let mut conn = AsyncPgConnection::try_from_client_and_connection(client, connection)
            .await
            .map_err(|error| ConnectError::transient(&error))?;
        let timeout_ms = self
            .settings
            .statement_timeout()
            .as_millis()
            .min(i32::MAX as u128);
        conn.batch_execute(&format!("SET statement_timeout = {timeout_ms}"))
            .await
            .map_err(|error| ConnectError::transient(&error))?;
        Ok(PooledPg {
            conn,
            expires_at: Instant::now() + self.settings.connection_lifetime(),
            in_call: false,
            last_used: Instant::now(),
        })
    }
}

impl bb8::ManageConnection for Manager {
    type Connection = PooledPg;
    type Error = ManagerError;

    async fn connect(&self) -> Result<PooledPg, ManagerError> {
        let opened = self.open().await;
        let mut last_error = self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match opened {
            Ok(conn) => {
                *last_error = None;
                Ok(conn)
            }
            Err(error) => {
                debug!(self.log, "opening a database connection failed"; "error" => %error);
                *last_error = Some(error.clone());
                Err(ManagerError::Connect(error))
            }
        }
    }

    async fn is_valid(&self, pooled: &mut PooledPg) -> Result<(), ManagerError> {
        if pooled.expired() {
            return Err(ManagerError::Expired);
        }
        if pooled.conn.is_broken() {
            return Err(ManagerError::Ping);
        }
        // A connection that finished a call moments ago is not pinged again: under load the ping
        // was a round trip per request. One whose socket closed since is caught just above;
        // idle ones are still pinged.
        if pooled.last_used.elapsed() < FRESH_FOR {
            return Ok(());
        }
        // Marked in use while pinging: a check-out abandoned here must not return the connection.
        pooled.in_call = true;
        pooled
            .conn
            .batch_execute("SELECT 1")
            .await
            .map_err(|_| ManagerError::Ping)?;
        pooled.in_call = false;
        Ok(())
    }

    fn has_broken(&self, pooled: &mut PooledPg) -> bool {
        pooled.in_call || pooled.expired() || pooled.conn.is_broken()
    }
}

/// Builds the pool once a first connection opens, retrying until the start timeout.
pub(crate) async fn build(
    settings: &PostgresSettings,
    connector: Connector,
    log: &Logger,
) -> Result<(Pool, Arc<Mutex<Option<ConnectError>>>), PostgresError> {
    let manager = Manager {
        connector: connector.clone(),
        settings: settings.clone(),
        last_error: Arc::default(),
        log: log.clone(),
    };
    let first =
        retry_until_started(&connector, settings.start_timeout, log, || manager.open()).await?;
    let last_error = manager.last_error_handle();
    let pool = bb8::Pool::builder()
        .max_size(settings.max_conns)
        .min_idle(settings.min_conns)
        .connection_timeout(settings.start_timeout)
        .idle_timeout(settings.idle_timeout())
        // Lifetimes are per connection, with jitter: see the module comment.
        .max_lifetime(None)
        .test_on_check_out(true)
        // bb8's own retries back off up to half the start timeout, holding their slots meanwhile,
        // which would delay recovery after an outage by as much. Without them a failed attempt
        // frees its slot and the next check-out tries again at once.
        .retry_connection(false)
        .build_unchecked(manager);
    // The pool has room for it (max_size ≥ 1); if not, dropping it just closes it.
    let _ = pool.add(first);
    Ok((pool, last_error))
}

/// Calls `attempt` until it succeeds or `timeout` has passed, backing off between attempts, and
/// fails naming the target and the last cause. A permanent refusal (wrong password, no such
/// database) fails at once: waiting would not change it.
pub(crate) async fn retry_until_started<T, F, Fut>(
    connector: &Connector,
    timeout: Duration,
    log: &Logger,
    mut attempt: F,
) -> Result<T, PostgresError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ConnectError>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let unreachable = |cause: Option<String>| PostgresError::Unreachable {
        target: connector.target().to_owned(),
        timeout,
        cause: cause.unwrap_or_else(|| "no answer".into()),
    };
    let mut delay = Duration::from_millis(100);
    let mut last_cause = None;
    loop {
        match tokio::time::timeout_at(deadline, attempt()).await {
            Ok(Ok(connected)) => return Ok(connected),
            Ok(Err(error)) if error.permanent => {
                return Err(PostgresError::Refused {
                    target: connector.target().to_owned(),
                    cause: error.cause,
                });
            }
            Ok(Err(error)) => {
                if last_cause.is_none() {
                    warn!(log, "PostgreSQL is not reachable yet; retrying until the start timeout";
                        "target" => connector.target(), "error" => %error, "start_timeout" => ?timeout);
                }
                last_cause = Some(error.cause);
            }
            Err(_) => return Err(unreachable(last_cause)),
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Err(unreachable(last_cause));
        }
        tokio::time::sleep_until((now + delay).min(deadline)).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}
