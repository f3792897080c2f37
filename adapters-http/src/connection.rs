//! One client connection: hyper's HTTP/1.1 connection plus a watchdog for the read and idle
//! timeouts, which hyper alone cannot tell apart (its header-read timer also runs while a
//! keep-alive connection waits for its next request).
//!
//! The watchdog knows three states: **idle** (no request in progress: new, or between
//! keep-alive requests), **reading** (the first bytes of a request arrived, its head is not
//! complete yet) and **busy** (a request is being handled). Idle longer than the idle timeout,
//! or reading longer than the read timeout, closes the connection; busy is bounded by the
//! handler's own timeouts instead.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use slog::{Logger, debug};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::exchange::Exchange;
use crate::routes::Routes;
use crate::server::HttpSettings;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle(Instant),
    Reading(Instant),
    Busy(usize),
}

/// What a connection is doing, shared by its stream, its requests and its watchdog.
pub(crate) struct Activity {
    state: Mutex<State>,
    changed: Notify,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            state: Mutex::new(State::Idle(Instant::now())),
            changed: Notify::new(),
        }
    }

    fn update(&self, f: impl FnOnce(State) -> State) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let next = f(*state);
        if next != *state {
            *state = next;
            self.changed.notify_one();
        }
    }

    /// Bytes arrived: an idle connection starts reading a request.
    fn bytes_read(&self) {
        self.update(|state| match state {
            State::Idle(_) => State::Reading(Instant::now()),
            other => other,
        });
    }

    /// A request's head was read and its handling starts.
    pub(crate) fn request_started(&self) {
        self.update(|state| match state {
            State::Busy(n) => State::Busy(n + 1),
            _ => State::Busy(1),
        });
    }

    /// A request was answered (or abandoned).
    pub(crate) fn request_finished(&self) {
        self.update(|state| match state {
            State::Busy(n) if n > 1 => State::Busy(n - 1),
            _ => State::Idle(Instant::now()),
        });
    }

    /// When the connection is to be closed if nothing changes, and why.
    fn deadline(&self, settings: &HttpSettings) -> Option<(Instant, &'static str)> {
        match *self.state.lock().unwrap_or_else(PoisonError::into_inner) {
            State::Idle(since) => Some((since + settings.idle_timeout, "idle timeout")),
            State::Reading(since) => Some((
                since + settings.read_timeout,
                "request head not received within the read timeout",
            )),
            State::Busy(_) => None,
        }
    }
}

/// The TCP stream, reporting reads to the connection's [`Activity`].
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_read();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Serves one connection until the client closes it, a timeout closes it, or shutdown has let
/// its in-flight request finish.
pub(crate) async fn run(
    stream: TcpStream,
    peer: SocketAddr,
    routes: Routes,
    settings: HttpSettings,
    mut stop: watch::Receiver<bool>,
    log: Logger,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Tracked {
        inner: stream,
        activity: activity.clone(),
    });
    let guard = routes.guard.clone();
    let routes = TowerToHyperService::new(warp::service(routes.filter));
    let exchange = Exchange::new(routes, guard, peer, settings, activity.clone(), log.clone());
    let mut builder = http1::Builder::new();
    // hyper's own header-read timer is only a backstop here (the watchdog is sharper); it must
    // be set, or hyper's default of 30s would cut idle keep-alive connections short.
    builder
        .timer(TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout(settings.idle_timeout + settings.read_timeout);
    let connection = builder.serve_connection(io, exchange);
    let mut connection = std::pin::pin!(connection);
    let mut stopping = *stop.borrow();
    if stopping {
        connection.as_mut().graceful_shutdown();
    }
    loop {
        let deadline = activity.deadline(&settings);
        let expiry = async {
            match deadline {
                Some((at, _)) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    debug!(log, "connection ended with an error"; "remote_addr" => %peer, "error" => %e);
                }
                return;
            }
            _ = stop.changed(), if !stopping => {
                // Idle connections close now; one with a request in flight closes after it.
                stopping = true;
                connection.as_mut().graceful_shutdown();
            }
            _ = activity.changed.notified() => {}
            _ = expiry => {
                // Still the same state? Then close: dropping the connection closes the socket.
                if activity.deadline(&settings).is_some_and(|(at, _)| at <= Instant::now()) {
                    let reason = deadline.map(|(_, why)| why).unwrap_or_default();
                    debug!(log, "closing connection"; "remote_addr" => %peer, "reason" => reason);
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn settings() -> HttpSettings {
        HttpSettings::default()
    }

    #[tokio::test]
    async fn a_connection_moves_between_idle_reading_and_busy() {
        let activity = Activity::new();
        let (at, why) = activity.deadline(&settings()).unwrap();
        assert_eq!(why, "idle timeout");
        assert!(at > Instant::now() + Duration::from_secs(59));

        activity.bytes_read();
        let (at, _) = activity.deadline(&settings()).unwrap();
        assert!(at <= Instant::now() + Duration::from_secs(5));

        activity.request_started();
        assert_eq!(activity.deadline(&settings()), None);
        activity.bytes_read();
        assert_eq!(activity.deadline(&settings()), None);
        activity.request_started();
        activity.request_finished();
        assert_eq!(activity.deadline(&settings()), None);
        activity.request_finished();
        assert_eq!(activity.deadline(&settings()).unwrap().1, "idle timeout");
    }
}
