//! Bench 3: one reconcile pass creating pods through the Kubernetes test API server (real HTTP on
//! 127.0.0.1) with alsy's default concurrency, with and without injected latency and client-side
//! rate limit; and, when `KUBEBUILDER_ASSETS` names etcd and kube-apiserver, the same pass through
//! a real API server (envtest: HTTPS, authentication, admission, etcd).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};

use alsy_app::{ClientRepository, PassOutcome, Reconciler, Trigger};
use alsy_domain::{AlgorithmStatus, Catalogue, ClientSpec, ClientSpecInput};
use alsy_fake::{InMemoryRepository, LocalPassLock};
use alsy_k8s::{KubeRuntime, KubeSettings};
use alsy_tests::envtest::{ALSY_USER, Envtest};
use alsy_tests::kube_server::KubeServer;

use crate::report::Table;
use crate::{Options, progress};

/// alsy's default `ALSY__SYNC__CONCURRENCY`.
const CONCURRENCY: usize = 16;

/// Which API server the pass talks to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Server {
    /// `alsy_tests::kube_server`, in this process.
    TestServer,
    /// kube-apiserver and etcd from `KUBEBUILDER_ASSETS`.
    Envtest,
}

struct Scenario {
    server: Server,
    latency: Duration,
    qps: u32,
}

struct Measured {
    scenario: Scenario,
    created: usize,
    failed: usize,
    first_failure: Option<String>,
    pass: Duration,
    requests: usize,
}

/// Runs each scenario against a fresh API server (or namespace, for envtest).
pub async fn run(options: &Options) -> anyhow::Result<String> {
    let default_qps = KubeSettings::default().qps;
    let mut scenarios = Vec::new();
    for (latency, qps) in [
        (Duration::ZERO, default_qps),
        (options.kube_latency, default_qps),
        (Duration::ZERO, 0),
        (options.kube_latency, 0),
    ] {
        let server = Server::TestServer;
        scenarios.push(Scenario {
            server,
            latency,
            qps,
        });
    }
    if std::env::var_os("KUBEBUILDER_ASSETS").is_some() {
        for qps in [default_qps, 0] {
            scenarios.push(Scenario {
                server: Server::Envtest,
                latency: Duration::ZERO,
                qps,
            });
        }
    } else {
        progress("kube: KUBEBUILDER_ASSETS is not set: no run against a real API server");
    }
    let mut rows = Vec::new();
    for scenario in scenarios {
        progress(format!(
            "kube: {} pods on {}, latency {:?}, qps {}",
            options.pods,
            scenario.server.name(),
            scenario.latency,
            scenario.qps
        ));
        let measured = measure(scenario, options.pods).await?;
        progress(format!(
            "kube:   {:.2} s, {} requests, {} failed",
            measured.pass.as_secs_f64(),
            measured.requests,
            measured.failed
        ));
        rows.push(measured);
    }
    Ok(render(&rows, options.pods, default_qps))
}

impl Server {
    fn name(self) -> &'static str {
        match self {
            Server::TestServer => "test server",
            Server::Envtest => "kube-apiserver (envtest)",
        }
    }
}

/// The API server of one measurement, and how to count the requests alsy sent it.
enum Target {
    TestServer(KubeServer),
    Envtest(&'static Envtest, String),
}

impl Target {
    async fn start(scenario: &Scenario) -> anyhow::Result<Target> {
        Ok(match scenario.server {
            Server::TestServer => {
                let server = KubeServer::start().await;
                server.set_latency(scenario.latency);
                Target::TestServer(server)
            }
            Server::Envtest => {
                let envtest = Envtest::try_shared().await.map_err(anyhow::Error::msg)?;
                let namespace = envtest.namespace("alsy-bench", &[]).await;
                Target::Envtest(envtest, namespace)
            }
        })
    }

    fn namespace(&self) -> &str {
        match self {
            Target::TestServer(_) => "alsy-bench",
            Target::Envtest(_, namespace) => namespace,
        }
    }

    fn write_kubeconfig(&self) -> std::path::PathBuf {
        match self {
            Target::TestServer(server) => server.write_kubeconfig(self.namespace()),
            Target::Envtest(envtest, namespace) => envtest.write_alsy_kubeconfig(namespace),
        }
    }

    fn clear_requests(&self) {
        if let Target::TestServer(server) = self {
            server.clear_requests();
        }
    }

    /// The requests alsy sent (the envtest API server's audit log is written as requests
    /// complete: wait until it holds at least `expected`).
    async fn requests(&self, expected: usize) -> usize {
        match self {
            Target::TestServer(server) => server.requests().len(),
            Target::Envtest(envtest, namespace) => {
                let count = || {
                    let events = envtest.audit(namespace);
                    events
                        .iter()
                        .filter(|e| e.user.username == ALSY_USER)
                        .count()
                };
                let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
                while count() < expected && tokio::time::Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                count()
            }
        }
    }
}

async fn measure(scenario: Scenario, pods: usize) -> anyhow::Result<Measured> {
    let log = slog::Logger::root(slog::Discard, slog::o!());
    let server = Target::start(&scenario).await?;
    let kubeconfig = server.write_kubeconfig();
    let settings = KubeSettings {
        namespace: Some(server.namespace().to_owned()),
        qps: scenario.qps,
        // One pass's creates alone: the pass lists once itself. The watch's requests are the
        // watch bench's business.
        watch: false,
        ..KubeSettings::default()
    };
    let runtime = KubeRuntime::from_kubeconfig(&kubeconfig, &settings, &log).await;
    let _ = std::fs::remove_file(&kubeconfig);
    let runtime = runtime.context("building the Kubernetes runtime")?;
    let repo = Arc::new(InMemoryRepository::new());
    for n in 0..pods {
        let spec = ClientSpec::parse(ClientSpecInput {
            name: format!("bench-client-{n}"),
            version: 1,
            image: "ghcr.io/acme/algo:1.0".into(),
            cpu: "500m".into(),
            mem: "512Mi".into(),
            priority: 0.5,
        })
        .context("the bench's client spec is invalid")?;
        let client = repo
            .create(&spec)
            .await
            .context("seeding the in-memory repository")?;
        let on: AlgorithmStatus = Catalogue::DEFAULT
            .into_iter()
            .map(|algorithm| (algorithm, algorithm.as_str() == "VWAP"))
            .collect();
        repo.set_status(client.id, on, false)
            .await
            .context("switching VWAP on")?;
    }
    let reconciler = Reconciler::new(
        repo,
        Arc::new(runtime),
        Arc::new(LocalPassLock::new()),
        CONCURRENCY,
        &log,
    );
    server.clear_requests();
    let report = reconciler.run_pass(Trigger::Request).await;
    if report.outcome != PassOutcome::Completed {
        bail!("the pass did not complete: {:?}", report.outcome);
    }
    Ok(Measured {
        scenario,
        created: report.created.len(),
        failed: report.failed.len(),
        first_failure: report.failed.first().map(|f| f.error.clone()),
        pass: report.duration,
        // One list, one create per pod.
        requests: server.requests(report.created.len() + 1).await,
    })
}

fn render(rows: &[Measured], pods: usize, default_qps: u32) -> String {
    let mut table = Table::new(&[
        "API server",
        "injected latency",
        "client qps limit",
        "pods created",
        "failed",
        "pass s",
        "API requests",
        "requests/s",
        "lower bound s",
        "bound by",
    ]);
    for m in rows {
        let requests = m.requests as f64;
        // A token bucket with a burst of `qps` lets the first `qps` requests through at once.
        let by_qps = if m.scenario.qps == 0 {
            0.0
        } else {
            (requests - m.scenario.qps as f64).max(0.0) / m.scenario.qps as f64
        };
        let by_latency = requests * m.scenario.latency.as_secs_f64() / CONCURRENCY as f64;
        let (bound, by) = if by_qps >= by_latency && by_qps > 0.0 {
            (by_qps, "rate limit")
        } else if by_latency > 0.0 {
            (by_latency, "latency × requests / concurrency")
        } else {
            (0.0, "CPU")
        };
        table.row(vec![
            m.scenario.server.name().into(),
            format!("{} ms", m.scenario.latency.as_millis()),
            if m.scenario.qps == 0 {
                "off (0)".into()
            } else {
                m.scenario.qps.to_string()
            },
            m.created.to_string(),
            match &m.first_failure {
                Some(e) => format!("{} (first: {e})", m.failed),
                None => m.failed.to_string(),
            },
            format!("{:.2}", m.pass.as_secs_f64()),
            m.requests.to_string(),
            format!("{:.0}", requests / m.pass.as_secs_f64()),
            format!("{bound:.2}"),
            by.into(),
        ]);
    }
    format!(
        "## 3. Kubernetes runtime: one pass creating {pods} pods\n\n\
         `KubeRuntime` (built from a kubeconfig, as `alsy` builds it: kube's retries off) against the test API server \
         of `alsy-tests` (warp on 127.0.0.1, same process, plain HTTP) and, when `KUBEBUILDER_ASSETS` is set, against a \
         real kube-apiserver with etcd (envtest: HTTPS with a bearer token, RBAC, admission, a fresh namespace, no \
         kubelet: the pods stay Pending), `InMemoryRepository` with {pods} clients with one algorithm \
         on, `Reconciler` at the default concurrency {CONCURRENCY}. Requests are every request the server received \
         during the pass (one list, one create per pod; for kube-apiserver, alsy's requests in its audit log). The \
         default client-side limit is {default_qps} requests/s with bursts of {default_qps}; \"lower bound\" is what \
         the limit or the latency alone allow.\n\n{}",
        table.markdown()
    )
}
