//! What the watch scenarios run on, behind one [`Backend`] trait: the fake runtime, the project's
//! test API server (someone else's changes made through a kube client of their own, watch outages
//! made by the server), and the envtest kube-apiserver (a stand-in kubelet runs the pods, alsy
//! reaches the server through a TCP proxy that can cut it off, the audit log counts its requests).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use alsy_domain::{PodName, PodPhase};
use alsy_fake::{FakePodRuntime, Gate};
use alsy_tests::app::TestApp;
use alsy_tests::envtest::{ADMIN_USER, ALSY_USER, StandInKubelet};
use alsy_tests::fixtures::eventually;
use alsy_tests::kube_server::{Fault, KubeServer, Verb};
use alsy_tests::tcp_proxy::TcpProxy;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::DeleteParams;

use super::PATIENCE;

/// What a watch scenario needs from where alsy's pods run.
pub trait Backend {
    /// alsy on this backend, with nudges on (the default debounce).
    async fn app(&self) -> TestApp;
    /// The pod `name` exists, runs, and is not being deleted.
    async fn running(&self, name: &str) -> bool;
    /// The identity of the pod now called `name`.
    async fn uid(&self, name: &str) -> Option<String>;
    /// Deletes `name` as someone else would (a `kubectl delete`, a node drain).
    async fn delete_from_outside(&self, name: &str);
    /// Makes `name` report `Failed`, as its node would; whether it exists.
    async fn fail(&self, name: &str) -> bool;
    /// How many requests alsy has sent to the API server so far, its watches not counted.
    async fn alsys_requests(&self) -> usize;
    /// Cuts alsy's watch off until [`Outage::end`]; with `expire`, the server also forgets the
    /// history alsy's watch would resume from, so it gets `410 Gone` when it comes back.
    async fn break_watch(&self, expire: bool) -> Outage;
}

/// A watch outage in progress.
pub enum Outage {
    /// The test server holds alsy's next watch at `gate`.
    Held {
        server: Arc<KubeServer>,
        gate: Gate,
        expire: bool,
    },
    /// The proxy between alsy and the API server refuses every connection.
    Cut(Arc<TcpProxy>),
}

impl Outage {
    /// Lets alsy's watch reach the server again.
    pub fn end(self) {
        match self {
            Outage::Held {
                server,
                gate,
                expire,
            } => {
                if expire {
                    server.expire_watch_history();
                }
                gate.open();
            }
            Outage::Cut(proxy) => proxy.restore(),
        }
    }
}

fn default_debounce(app: alsy_tests::app::TestAppBuilder) -> alsy_tests::app::TestAppBuilder {
    app.default_for("ALSY__SYNC__DEBOUNCE")
}

/// alsy on the Kubernetes runtime through `kubeconfig`, short timeouts, nudges on.
async fn alsy_on(kubeconfig: &std::path::Path) -> TestApp {
    default_debounce(TestApp::builder())
        .kubernetes(kubeconfig)
        .env("ALSY__K8S__REQUEST_TIMEOUT", "2s")
        .env("ALSY__K8S__RESTART_TIMEOUT", "5s")
        .spawn()
        .await
}

/// The fake runtime.
pub struct Fake {
    runtime: FakePodRuntime,
}

impl Fake {
    pub async fn start() -> Option<Fake> {
        Some(Fake {
            runtime: FakePodRuntime::new(),
        })
    }

    fn name(name: &str) -> PodName {
        PodName::parse(name).unwrap()
    }
}

impl Backend for Fake {
    async fn app(&self) -> TestApp {
        default_debounce(TestApp::builder())
            .runtime(self.runtime.clone())
            .spawn()
            .await
    }
    async fn running(&self, name: &str) -> bool {
        let pod = self.runtime.pod(&Fake::name(name));
        pod.is_some_and(|pod| pod.phase == PodPhase::Running)
    }
    async fn uid(&self, name: &str) -> Option<String> {
        let pod = self.runtime.pod(&Fake::name(name));
        pod.map(|pod| pod.uid.to_string())
    }
    async fn delete_from_outside(&self, name: &str) {
        assert!(self.runtime.drop_pod(&Fake::name(name)));
    }
    async fn fail(&self, name: &str) -> bool {
        self.runtime.set_phase(&Fake::name(name), PodPhase::Failed)
    }
    async fn alsys_requests(&self) -> usize {
        unreachable!("the fake runtime has no API server")
    }
    async fn break_watch(&self, _expire: bool) -> Outage {
        unreachable!("the fake runtime has no watch to break")
    }
}

const NS: &str = "alsy-watching";

/// The project's test API server; pods run as soon as they are created.
pub struct TestServer {
    server: Arc<KubeServer>,
    outsider: Api<Pod>,
}

impl TestServer {
    pub async fn start() -> Option<TestServer> {
        let server = KubeServer::start().await;
        server.set_created_phase("Running");
        let kubeconfig = kube::config::Kubeconfig::read_from(server.write_kubeconfig(NS)).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .unwrap();
        let outsider = Api::namespaced(kube::Client::try_from(config).unwrap(), NS);
        Some(TestServer {
            server: Arc::new(server),
            outsider,
        })
    }
}

impl Backend for TestServer {
    async fn app(&self) -> TestApp {
        let app = alsy_on(&self.server.write_kubeconfig(NS)).await;
        eventually("alsy's watch is open", PATIENCE, || async {
            self.server.open_watches() == 1
        })
        .await;
        app
    }
    async fn running(&self, name: &str) -> bool {
        self.server.pod(NS, name).is_some_and(|pod| {
            pod.metadata.deletion_timestamp.is_none()
                && pod.status.and_then(|s| s.phase).as_deref() == Some("Running")
        })
    }
    async fn uid(&self, name: &str) -> Option<String> {
        self.server.pod(NS, name)?.metadata.uid
    }
    async fn delete_from_outside(&self, name: &str) {
        self.outsider
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }
    async fn fail(&self, name: &str) -> bool {
        self.server.set_phase(NS, name, "Failed")
    }
    async fn alsys_requests(&self) -> usize {
        // The test's own requests come from `outsider`, which only ever deletes.
        let requests = self.server.requests();
        requests
            .iter()
            .filter(|r| r.verb != Some(Verb::Watch) && r.verb != Some(Verb::Delete))
            .count()
    }
    async fn break_watch(&self, expire: bool) -> Outage {
        let gate = Gate::new();
        self.server
            .inject(Verb::Watch, None, 1, Fault::Hold(gate.clone()));
        self.server.drop_watches();
        gate.arrived(1).await;
        Outage::Held {
            server: self.server.clone(),
            gate,
            expire,
        }
    }
}

/// A fresh namespace of the envtest API server with a stand-in kubelet that runs pods and finishes
/// deletions at once; alsy reaches the server through a proxy.
pub struct Envtest {
    envtest: &'static alsy_tests::envtest::Envtest,
    namespace: String,
    pods: Api<Pod>,
    kubelet: StandInKubelet,
    proxy: Arc<TcpProxy>,
}

impl Envtest {
    /// `None` (after a `SKIPPED:` line) without envtest binaries.
    pub async fn start() -> Option<Envtest> {
        let envtest = alsy_tests::envtest::Envtest::shared().await?;
        let namespace = envtest.namespace("watching", &[]).await;
        let client = envtest.client().await;
        let kubelet = StandInKubelet::start(client.clone(), &namespace, Duration::ZERO);
        let upstream: SocketAddr = envtest
            .url()
            .trim_start_matches("https://")
            .parse()
            .unwrap();
        let proxy = TcpProxy::start(upstream).await.unwrap();
        Some(Envtest {
            envtest,
            pods: Api::namespaced(client, &namespace),
            namespace,
            kubelet,
            proxy: Arc::new(proxy),
        })
    }
}

impl Backend for Envtest {
    async fn app(&self) -> TestApp {
        // alsy's kubeconfig, pointed at the proxy (the server's certificate is for 127.0.0.1).
        let direct = self.envtest.write_alsy_kubeconfig(&self.namespace);
        let text = std::fs::read_to_string(&direct).unwrap();
        let proxied = text.replace(
            self.envtest.url(),
            &format!("https://{}", self.proxy.addr()),
        );
        let path = direct.with_extension("proxied.yaml");
        std::fs::write(&path, proxied).unwrap();
        alsy_on(&path).await
    }
    async fn running(&self, name: &str) -> bool {
        let pod = self.pods.get_opt(name).await.unwrap();
        pod.is_some_and(|pod| {
            pod.metadata.deletion_timestamp.is_none()
                && pod.status.and_then(|s| s.phase).as_deref() == Some("Running")
        })
    }
    async fn uid(&self, name: &str) -> Option<String> {
        self.pods.get_opt(name).await.unwrap()?.metadata.uid
    }
    async fn delete_from_outside(&self, name: &str) {
        self.pods
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }
    async fn fail(&self, name: &str) -> bool {
        self.kubelet.set_phase(name, "Failed").await
    }
    /// The audit log is written as requests complete: a request of the test's own, once it
    /// shows, comes after every request alsy finished before it was sent.
    async fn alsys_requests(&self) -> usize {
        static MARKS: AtomicU64 = AtomicU64::new(0);
        let mark = format!("audit-mark-{}", MARKS.fetch_add(1, Ordering::Relaxed));
        assert!(self.pods.get_opt(&mark).await.unwrap().is_none());
        eventually("the audit log has the mark", PATIENCE, || async {
            self.envtest.audit(&self.namespace).iter().any(|e| {
                e.user.username == ADMIN_USER
                    && e.object_ref.as_ref().is_some_and(|o| o.name == mark)
            })
        })
        .await;
        let events = self.envtest.audit(&self.namespace);
        events
            .iter()
            .filter(|e| e.user.username == ALSY_USER && e.verb != "watch")
            .count()
    }
    async fn break_watch(&self, expire: bool) -> Outage {
        assert!(
            !expire,
            "kube-apiserver's watch window cannot be expired on demand"
        );
        self.proxy.cut();
        Outage::Cut(self.proxy.clone())
    }
}
