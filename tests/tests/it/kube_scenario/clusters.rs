//! The two API servers the Kubernetes scenarios run on, behind one [`Cluster`] trait: the
//! project's test server (faults injected, requests recorded by the server itself) and the envtest
//! kube-apiserver (a stand-in kubelet runs the pods, a LimitRange makes creates fail for real, the
//! audit log records alsy's requests).

use std::collections::BTreeMap;
use std::time::Duration;

use alsy_tests::app::TestApp;
use alsy_tests::envtest::{ALSY_USER, AuditEvent, StandInKubelet};
use alsy_tests::fixtures::{eventually, foreign_pod};
use alsy_tests::kube_server::{Fault, KubeServer, Verb};
use k8s_openapi::api::core::v1::{
    LimitRange, LimitRangeItem, LimitRangeSpec, Pod, ResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};

use super::{PATIENCE, alsy_on};

/// The pod that is not alsy's, though its name looks like one of alsy's.
pub const FOREIGN: &str = "vwap-1-legacy";

/// What a scenario needs from the API server it runs on.
pub trait Cluster {
    /// alsy, started on this cluster.
    async fn app(&self) -> TestApp;
    /// The pod named `name`, if there is one (terminating or not).
    async fn pod(&self, name: &str) -> Option<Pod>;
    /// The names of the pods with alsy's label, sorted.
    async fn managed_pod_names(&self) -> Vec<String>;
    /// Makes the pod report `phase`, as its node would.
    async fn set_phase(&self, name: &str, phase: &str) -> bool;
    /// Deleted pods stay terminating for `grace` from now on, as on a node.
    async fn set_grace(&self, grace: Duration);
    /// How many pod creates alsy has sent.
    async fn creates_by_alsy(&self) -> usize;
    /// Makes the next create of `pod` fail.
    async fn refuse_creates_of(&self, pod: &str);
    /// Undoes [`Cluster::refuse_creates_of`].
    async fn accept_creates(&self);
    /// No request alsy made named `pod`.
    async fn assert_alsy_never_named(&self, pod: &str);
    /// alsy listed, and only ever listed or watched with its label selector.
    async fn assert_alsy_listed_only_with_its_selector(&self);
}

/// The project's test API server, holding the foreign pod.
pub struct TestServer {
    server: KubeServer,
}

const NS: &str = "alsy-e2e";

impl TestServer {
    pub async fn start() -> TestServer {
        let server = KubeServer::start().await;
        server.set_created_phase("Running");
        server.insert_foreign_pod(NS, FOREIGN);
        TestServer { server }
    }
}

impl Cluster for TestServer {
    async fn app(&self) -> TestApp {
        alsy_on(&self.server.write_kubeconfig(NS)).await
    }
    async fn pod(&self, name: &str) -> Option<Pod> {
        self.server.pod(NS, name)
    }
    async fn managed_pod_names(&self) -> Vec<String> {
        let pods = self.server.pods(NS);
        pods.into_iter()
            .filter(alsy_k8s::is_managed)
            .filter_map(|p| p.metadata.name)
            .collect()
    }
    async fn set_phase(&self, name: &str, phase: &str) -> bool {
        self.server.set_phase(NS, name, phase)
    }
    async fn set_grace(&self, grace: Duration) {
        self.server.set_termination_grace(grace);
    }
    async fn creates_by_alsy(&self) -> usize {
        let requests = self.server.requests();
        requests
            .iter()
            .filter(|r| r.verb == Some(Verb::Create))
            .count()
    }
    async fn refuse_creates_of(&self, pod: &str) {
        self.server
            .inject(Verb::Create, Some(pod), 1, Fault::Status(503));
    }
    async fn accept_creates(&self) {
        // The injected fault is used up by the create it failed.
    }
    async fn assert_alsy_never_named(&self, pod: &str) {
        assert!(self.server.requests_for(pod).is_empty());
    }
    async fn assert_alsy_listed_only_with_its_selector(&self) {
        let requests = self.server.requests();
        let lists: Vec<_> = requests
            .iter()
            .filter(|r| matches!(r.verb, Some(Verb::List | Verb::Watch)))
            .collect();
        assert!(!lists.is_empty());
        for list in lists {
            assert_eq!(
                list.param("labelSelector"),
                Some("app.kubernetes.io/managed-by=alsy")
            );
        }
    }
}

/// A fresh namespace of the envtest API server, holding the foreign pod, with a stand-in kubelet.
pub struct Envtest {
    envtest: &'static alsy_tests::envtest::Envtest,
    namespace: String,
    pods: Api<Pod>,
    limits: Api<LimitRange>,
    kubelet: StandInKubelet,
}

const REFUSAL: &str = "refuse-every-create";

fn pod_asking_for_cpu(name: &str, cpu: &str) -> Pod {
    let cpu = BTreeMap::from([("cpu".to_owned(), Quantity(cpu.to_owned()))]);
    let mut pod = foreign_pod(name, "nginx:1.27");
    if let Some(spec) = pod.spec.as_mut() {
        spec.containers[0].resources = Some(ResourceRequirements {
            limits: Some(cpu.clone()),
            requests: Some(cpu),
            ..ResourceRequirements::default()
        });
    }
    pod
}

impl Envtest {
    /// `None` (after a `SKIPPED:` line) without envtest binaries.
    pub async fn start() -> Option<Envtest> {
        let envtest = alsy_tests::envtest::Envtest::shared().await?;
        let namespace = envtest.namespace("scenario", &[]).await;
        let client = envtest.client().await;
        let kubelet = StandInKubelet::start(client.clone(), &namespace, Duration::ZERO);
        let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
        let foreign = pod_asking_for_cpu(FOREIGN, "10m");
        pods.create(&PostParams::default(), &foreign).await.unwrap();
        Some(Envtest {
            envtest,
            limits: Api::namespaced(client, &namespace),
            namespace,
            pods,
            kubelet,
        })
    }

    /// Whether the API server would admit a pod asking for 1 CPU now (a dry run: nothing stays).
    async fn admits_a_one_cpu_pod(&self) -> bool {
        let dry_run = PostParams {
            dry_run: true,
            ..PostParams::default()
        };
        let probe = pod_asking_for_cpu("admission-probe", "1");
        self.pods.create(&dry_run, &probe).await.is_ok()
    }

    fn alsys_requests(&self) -> Vec<AuditEvent> {
        let events = self.envtest.audit(&self.namespace);
        events
            .into_iter()
            .filter(|e| e.user.username == ALSY_USER)
            .collect()
    }
}

impl Cluster for Envtest {
    async fn app(&self) -> TestApp {
        alsy_on(&self.envtest.write_alsy_kubeconfig(&self.namespace)).await
    }
    async fn pod(&self, name: &str) -> Option<Pod> {
        self.pods.get_opt(name).await.unwrap()
    }
    async fn managed_pod_names(&self) -> Vec<String> {
        let params = ListParams::default().labels(alsy_k8s::MANAGED_SELECTOR);
        let listed = self.pods.list(&params).await.unwrap();
        let mut names: Vec<String> = listed
            .items
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .collect();
        names.sort();
        names
    }
    async fn set_phase(&self, name: &str, phase: &str) -> bool {
        self.kubelet.set_phase(name, phase).await
    }
    async fn set_grace(&self, grace: Duration) {
        self.kubelet.set_grace(Some(grace));
    }
    async fn creates_by_alsy(&self) -> usize {
        let requests = self.alsys_requests();
        requests.iter().filter(|e| e.verb == "create").count()
    }
    /// A LimitRange capping containers at 1m of CPU: the LimitRanger admission plugin refuses
    /// every create (403) until it goes. Waits until admission sees it.
    async fn refuse_creates_of(&self, _pod: &str) {
        let limit = LimitRange {
            metadata: ObjectMeta {
                name: Some(REFUSAL.into()),
                ..ObjectMeta::default()
            },
            spec: Some(LimitRangeSpec {
                limits: vec![LimitRangeItem {
                    type_: "Container".into(),
                    max: Some(BTreeMap::from([("cpu".to_owned(), Quantity("1m".into()))])),
                    ..LimitRangeItem::default()
                }],
            }),
        };
        self.limits
            .create(&PostParams::default(), &limit)
            .await
            .unwrap();
        eventually("admission applies the LimitRange", PATIENCE, || async {
            !self.admits_a_one_cpu_pod().await
        })
        .await;
    }
    async fn accept_creates(&self) {
        self.limits
            .delete(REFUSAL, &DeleteParams::default())
            .await
            .unwrap();
        eventually("admission forgets the LimitRange", PATIENCE, || async {
            self.admits_a_one_cpu_pod().await
        })
        .await;
    }
    async fn assert_alsy_never_named(&self, pod: &str) {
        let requests = self.alsys_requests();
        assert!(!requests.is_empty(), "the audit log has alsy's requests");
        let named: Vec<_> = requests
            .iter()
            .filter(|e| e.object_ref.as_ref().is_some_and(|o| o.name == pod))
            .collect();
        assert!(named.is_empty(), "{named:#?}");
    }
    async fn assert_alsy_listed_only_with_its_selector(&self) {
        let requests = self.alsys_requests();
        let lists: Vec<_> = requests
            .iter()
            .filter(|e| e.verb == "list" || e.verb == "watch")
            .collect();
        assert!(!lists.is_empty());
        for list in lists {
            assert!(
                list.request_uri
                    .contains("labelSelector=app.kubernetes.io%2Fmanaged-by%3Dalsy"),
                "{}",
                list.request_uri
            );
        }
    }
}
