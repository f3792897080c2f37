//! Serving the routes over HTTP/1.1 with hyper, with the three timeouts of `ALSY__HTTP__*` and a
//! graceful shutdown.
//!
//! What the timeouts mean here:
//! - **read timeout**: a request's head must arrive within it of the request's first byte, or
//!   the connection is closed; its body within it of the head, or the answer is 408.
//! - **write timeout**: from the head being read to the response being ready (reading the body
//!   and running the handler): past it the answer is 503 `request not completed within ...`.
//!   A `POST /api/v1/sync` pass cut off this way goes on in the background.
//! - **idle timeout**: a connection with no request in progress (new, or a keep-alive one
//!   between requests) is closed after it.
//!
//! Shutdown stops accepting at once, closes idle connections, lets in-flight requests finish and
//! then closes their connections. [`serve`] has no deadline of its own: the caller bounds it, and
//! dropping its future aborts the connections still open.
//!
//! hyper's HTTP/2 is not offered: the API is small JSON over HTTP/1.1 keep-alive, and the
//! watchdog's notion of "a request in progress" is per HTTP/1 connection.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use slog::{Logger, error, info, o, warn};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::connection;
use crate::routes::Routes;

/// The HTTP API's settings (`ALSY__HTTP__*`), with their defaults: the one place they are
/// defined. [`serve`] applies the three timeouts; the caller binds `address` (tests bind port 0)
/// and bounds the shutdown with `shutdown_timeout`, since [`serve`] has no deadline of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpSettings {
    /// Where the API listens.
    pub address: SocketAddr,
    /// Bound on receiving a request's head (from its first byte) and then its body.
    pub read_timeout: Duration,
    /// Bound on producing a response once the head is read.
    pub write_timeout: Duration,
    /// How long a connection may wait for its next request.
    pub idle_timeout: Duration,
    /// Bound on the graceful shutdown.
    pub shutdown_timeout: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            address: SocketAddr::from(([0, 0, 0, 0], 8080)),
            read_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

/// Serves `routes` on `listener` until `shutdown` resolves, then shuts down gracefully and
/// returns once every connection is closed.
pub async fn serve(
    listener: TcpListener,
    routes: Routes,
    settings: HttpSettings,
    shutdown: impl Future<Output = ()>,
    log: &Logger,
) {
    let log = log.new(o!("component" => "api/http"));
    let (stop, stopped) = watch::channel(false);
    // Dropping the set aborts every connection task: that is how the caller's deadline bites.
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // Small JSON responses: send them now rather than wait for Nagle.
                    let _ = stream.set_nodelay(true);
                    connections.spawn(connection::run(
                        stream,
                        peer,
                        routes.clone(),
                        settings,
                        stopped.clone(),
                        log.clone(),
                    ));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    warn!(log, "could not accept a connection"; "error" => %e);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(joined) = connections.join_next(), if !connections.is_empty() => {
                report_panic(&log, joined);
            }
        }
    }
    drop(listener);
    info!(log, "HTTP server stopping: no new connections; waiting for requests in flight";
        "open_connections" => connections.len());
    stop.send_replace(true);
    while let Some(joined) = connections.join_next().await {
        report_panic(&log, joined);
    }
    info!(log, "HTTP server stopped");
}

fn report_panic(log: &Logger, joined: Result<(), tokio::task::JoinError>) {
    if let Err(e) = joined
        && e.is_panic()
    {
        error!(log, "a connection task panicked"; "error" => %e);
    }
}
