//! One request/response exchange, around the warp routes: it gives the request its id and body
//! deadline, bounds the whole exchange by the write timeout, stamps `X-Request-Id` on whatever
//! comes back, and writes the access log line. Doing this outside warp means no route, rejection
//! or timeout can produce a response that lacks the header or the log line.
//!
//! It is also where a request is authenticated (before any route runs, so an unknown path
//! without a token is 401, not 404), where it is counted for the metrics, and where a write's
//! audit line is written with the token's name.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;

use futures::FutureExt;

use hyper::body::Incoming;
use slog::{Logger, error, info, warn};
use tokio::time::Instant;
use warp::http::{Request, StatusCode};
use warp::reply::Response;

use crate::audit::Audit;
use crate::auth::Caller;
use crate::body::BodyDeadline;
use crate::connection::Activity;
use crate::envelope;
use crate::error::ApiError;
use crate::metrics::UNMATCHED;
use crate::request_id::{REQUEST_ID_HEADER, RequestId};
use crate::routes::{Guard, route_of};
use crate::server::HttpSettings;

/// The hyper service of one connection, around `routes` (the warp routes as a hyper service).
#[derive(Clone)]
pub(crate) struct Exchange<S> {
    routes: S,
    guard: Guard,
    peer: SocketAddr,
    settings: HttpSettings,
    activity: Arc<Activity>,
    log: Logger,
}

impl<S> Exchange<S> {
    pub(crate) fn new(
        routes: S,
        guard: Guard,
        peer: SocketAddr,
        settings: HttpSettings,
        activity: Arc<Activity>,
        log: Logger,
    ) -> Exchange<S> {
        Exchange {
            routes,
            guard,
            peer,
            settings,
            activity,
            log,
        }
    }
}

impl<S> hyper::service::Service<Request<Incoming>> for Exchange<S>
where
    S: hyper::service::Service<Request<Incoming>, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, mut request: Request<Incoming>) -> Self::Future {
        let started = Instant::now();
        let id = RequestId::from_headers(request.headers());
        let path = request.uri().path();
        let route = route_of(path).map_or(UNMATCHED, |r| r.template);
        let checked = self
            .guard
            .auth
            .check(request.method(), path, request.headers());
        let mut line = AccessLine {
            log: self.log.clone(),
            activity: self.activity.clone(),
            method: request.method().clone(),
            path: path.to_owned(),
            route,
            caller: checked.as_ref().ok().cloned().flatten(),
            guard: self.guard.clone(),
            peer: self.peer,
            id: id.clone(),
            started,
            answered: false,
        };
        self.activity.request_started();
        if let Err(denied) = checked {
            let status = if denied.challenge().is_some() {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::FORBIDDEN
            };
            let mut response = envelope::error(status, &denied.message());
            if let Some(challenge) = denied.challenge() {
                response.headers_mut().insert(
                    warp::http::header::WWW_AUTHENTICATE,
                    warp::http::HeaderValue::from_static(challenge),
                );
            }
            response
                .headers_mut()
                .insert(REQUEST_ID_HEADER, id.header_value());
            line.answered(&mut response);
            return Box::pin(async move { Ok(response) });
        }
        request.extensions_mut().insert(id.clone());
        request.extensions_mut().insert(BodyDeadline {
            at: started + self.settings.read_timeout,
            timeout: self.settings.read_timeout,
        });
        let write_timeout = self.settings.write_timeout;
        // A panicking handler must still answer (500 with the request id) and be logged, rather
        // than reset the connection.
        let handled =
            AssertUnwindSafe(hyper::service::Service::call(&self.routes, request)).catch_unwind();
        Box::pin(async move {
            let mut response = match tokio::time::timeout(write_timeout, handled).await {
                Ok(Ok(Ok(response))) => response,
                Ok(Ok(Err(never))) => match never {},
                Ok(Err(panic)) => {
                    let detail = panic_message(panic.as_ref());
                    error!(line.log, "request handler panicked";
                        "request_id" => %id, "method" => %line.method, "path" => &line.path,
                        "error" => detail);
                    let err = ApiError::Internal(detail.to_owned());
                    envelope::error(err.status(), &err.public_message(&id))
                }
                Err(_) => {
                    let err = ApiError::TimedOut(write_timeout);
                    envelope::error(err.status(), &err.public_message(&id))
                }
            };
            response
                .headers_mut()
                .insert(REQUEST_ID_HEADER, id.header_value());
            line.answered(&mut response);
            Ok(response)
        })
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message")
}

/// The access log line of one request; written when the response is ready, or, if the
/// exchange is dropped first (the client went away, shutdown cut it short), when it is dropped.
/// Answering also counts the request in the metrics and writes a write's audit line.
struct AccessLine {
    log: Logger,
    activity: Arc<Activity>,
    method: warp::http::Method,
    path: String,
    route: &'static str,
    caller: Option<Caller>,
    guard: Guard,
    peer: SocketAddr,
    id: RequestId,
    started: Instant,
    answered: bool,
}

impl AccessLine {
    fn latency_ms(&self) -> f64 {
        // Milliseconds with microsecond resolution: readable, and enough for fast requests.
        (self.started.elapsed().as_micros() as f64) / 1000.0
    }

    /// The token's name for the logs; absent when the API is open or the path needs none.
    fn token(&self) -> Option<&str> {
        self.caller.as_ref().map(|c| c.name.as_ref())
    }

    fn answered(&mut self, response: &mut Response) {
        self.answered = true;
        let status = response.status().as_u16();
        self.guard
            .metrics
            .request(&self.method, self.route, status, self.started.elapsed());
        info!(self.log, "request";
            "method" => %self.method,
            "path" => &self.path,
            "status" => status,
            "latency_ms" => self.latency_ms(),
            "request_id" => %self.id,
            "remote_addr" => %self.peer,
            "token" => self.token(),
        );
        if let Some(audit) = response.extensions_mut().remove::<Audit>() {
            info!(self.guard.log, "audit";
                "action" => audit.action,
                "token" => self.token(),
                "client_id" => audit.client_id,
                "changed" => &audit.changed,
                "request_id" => %self.id,
            );
        }
    }
}

impl Drop for AccessLine {
    fn drop(&mut self) {
        if !self.answered {
            warn!(self.log, "request abandoned before its response";
                "method" => %self.method,
                "path" => &self.path,
                "latency_ms" => self.latency_ms(),
                "request_id" => %self.id,
                "remote_addr" => %self.peer,
                "token" => self.token(),
            );
        }
        self.activity.request_finished();
    }
}
