//! The Prometheus metrics `GET /metrics` serves, from `prometheus-client`.
//!
//! HTTP series are recorded by the exchange around every request, labelled by the route
//! *template* (`/api/v1/clients/{id}`), never the raw path, and by a method from a fixed list,
//! so no request can create a new series. Reconciliation series come from the pass reports
//! ([`alsy_app::PassObserver`]); storage connections are read from the pool at scrape time.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use alsy_app::{ConnectionCounts, PassFigures, PassObserver, PassOutcome, PassReport};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use warp::http::Method;

/// `alsy_http_requests_total` labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PassLabels {
    trigger: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

type DurationHistogram = Family<RouteLabels, Histogram, fn() -> Histogram>;

struct Inner {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_duration: DurationHistogram,
    passes: Family<PassLabels, Counter>,
    pass_duration: Histogram,
    operations: Family<OperationLabels, Counter>,
    pods: Family<StateLabels, Gauge>,
    retries_pending: Gauge,
    clients: Gauge,
    connections: Family<StateLabels, Gauge<u64, AtomicU64>>,
}

/// Every metric of the service, and the registry they are encoded from. Cheap to clone.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

/// Label for a request that matched no route: one series for every unknown path.
pub(crate) const UNMATCHED: &str = "unmatched";

fn request_histogram() -> Histogram {
    // 0.5 ms … ~4 s: the API answers in about a millisecond; storage timeouts are seconds.
    Histogram::new(exponential_buckets(0.0005, 2.0, 14))
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every series.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "alsy_http_requests",
            "HTTP requests answered, by method, route template and status",
            requests.clone(),
        );
        let request_duration: DurationHistogram =
            Family::new_with_constructor(request_histogram as fn() -> Histogram);
        registry.register(
            "alsy_http_request_duration_seconds",
            "Time from a request's head to its response, by route template",
            request_duration.clone(),
        );
        let passes = Family::<PassLabels, Counter>::default();
        registry.register(
            "alsy_reconcile_passes",
            "Reconcile passes, by trigger and outcome",
            passes.clone(),
        );
        // 1 ms … ~65 s: an idle pass takes milliseconds, one over 100k clients seconds.
        let pass_duration = Histogram::new(exponential_buckets(0.001, 2.0, 17));
        registry.register(
            "alsy_reconcile_pass_duration_seconds",
            "Duration of reconcile passes",
            pass_duration.clone(),
        );
        let operations = Family::<OperationLabels, Counter>::default();
        registry.register(
            "alsy_pod_operations",
            "Pod operations applied by passes, by operation and outcome",
            operations.clone(),
        );
        let pods = Family::<StateLabels, Gauge>::default();
        registry.register(
            "alsy_pods",
            "Pods that should run (desired) and managed pods the runtime reported (observed), as of the last pass that read both",
            pods.clone(),
        );
        let retries_pending = Gauge::default();
        registry.register(
            "alsy_pod_retries_pending",
            "Pods whose last operation failed and wait for their retry (as of this replica's last pass; a replica without the reconcile lock schedules none: sum over replicas)",
            retries_pending.clone(),
        );
        let clients = Gauge::default();
        registry.register(
            "alsy_clients",
            "Stored clients, as of the last pass that read storage",
            clients.clone(),
        );
        let connections = Family::<StateLabels, Gauge<u64, AtomicU64>>::default();
        registry.register(
            "alsy_storage_connections",
            "Open storage connections, idle or in use (PostgreSQL only)",
            connections.clone(),
        );
        Metrics(Arc::new(Inner {
            registry,
            requests,
            request_duration,
            passes,
            pass_duration,
            operations,
            pods,
            retries_pending,
            clients,
            connections,
        }))
    }

    /// Counts one answered request. `route` is a template, or [`UNMATCHED`].
    pub(crate) fn request(
        &self,
        method: &Method,
        route: &'static str,
        status: u16,
        took: Duration,
    ) {
        let labels = RequestLabels {
            method: method_label(method),
            route,
            status,
        };
        self.0.requests.get_or_create(&labels).inc();
        self.0
            .request_duration
            .get_or_create(&RouteLabels { route })
            .observe(took.as_secs_f64());
    }

    /// The text of a scrape (OpenMetrics, which Prometheus reads), storage connections
    /// refreshed from `connections` first.
    pub(crate) fn encode(&self, connections: Option<ConnectionCounts>) -> Result<String, String> {
        if let Some(counts) = connections {
            let set = |state, value: u32| {
                self.0
                    .connections
                    .get_or_create(&StateLabels { state })
                    .set(u64::from(value));
            };
            set("idle", counts.idle);
            set("in_use", counts.in_use);
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.0.registry)
            .map_err(|e| format!("encoding the metrics: {e}"))?;
        Ok(text)
    }
}

/// The method as a label: the API's methods and a few common ones by name, anything else
/// `other`, so made-up methods cannot create series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

fn gauge_value(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl PassObserver for Metrics {
    fn pass_finished(&self, report: &PassReport, figures: Option<PassFigures>) {
        let outcome = match report.outcome {
            PassOutcome::Completed => "completed",
            PassOutcome::Skipped => "skipped",
            PassOutcome::Failed { .. } => "failed",
        };
        let inner = &self.0;
        inner
            .passes
            .get_or_create(&PassLabels {
                trigger: report.trigger.as_str(),
                outcome,
            })
            .inc();
        inner.pass_duration.observe(report.duration.as_secs_f64());
        let count = |operation, outcome, n: usize| {
            inner
                .operations
                .get_or_create(&OperationLabels { operation, outcome })
                .inc_by(n as u64);
        };
        count("create", "succeeded", report.created.len());
        count("delete", "succeeded", report.deleted.len());
        count("restart", "succeeded", report.restarted.len());
        for failure in &report.failed {
            count(failure.operation.as_str(), "failed", 1);
        }
        if let Some(figures) = figures {
            let set = |state, n| {
                inner
                    .pods
                    .get_or_create(&StateLabels { state })
                    .set(gauge_value(n));
            };
            set("desired", figures.desired_pods);
            set("observed", figures.observed_pods);
            inner.clients.set(gauge_value(figures.clients));
            inner
                .retries_pending
                .set(gauge_value(report.retries_pending));
        }
        // The replica holding the lock keeps the schedules: this one holds none of them.
        if report.outcome == PassOutcome::Skipped {
            inner.retries_pending.set(0);
        }
    }
}
