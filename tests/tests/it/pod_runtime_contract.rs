//! The `PodRuntime` contract: the same cases run against `FakePodRuntime`, against `KubeRuntime`
//! talking real HTTP to the test API server, and against `KubeRuntime` on a real kube-apiserver
//! (envtest) whose pods a stand-in kubelet binds, runs and finishes deleting; each `KubeRuntime`
//! once asking the API server on every list, and once answering from its watch-fed store
//! (`…_watched`). What only Kubernetes can do wrong (status codes, timeouts, terminating pods,
//! foreign pods) is in `kube_only`; the change feed and the store are in `watch`.

mod kube_only;
mod watch;

use std::path::Path;
use std::time::{Duration, SystemTime};

use ::kube::Api;
use ::kube::api::PostParams;
use alsy_app::{PodRuntime, Restarted, RuntimeError};
use alsy_domain::{
    Algorithm, ClientId, DesiredPod, ImageRef, PodName, PodPhase, Priority, Quantity, Version,
};
use alsy_fake::FakePodRuntime;
use alsy_k8s::{KubeRuntime, KubeSettings};
use alsy_tests::envtest::{Envtest, StandInKubelet};
use alsy_tests::fixtures::{eventually, foreign_pod};
use alsy_tests::kube_server::KubeServer;
use k8s_openapi::api::core::v1::Pod;
use slog::Logger;

/// The namespace the kube harness works in.
const NS: &str = "alsy-contract";

/// The pod alsy would run for `algorithm` of client `id`.
pub fn desired(algorithm: Algorithm, id: i64) -> DesiredPod {
    let client_id = ClientId::new(id).unwrap();
    DesiredPod {
        name: PodName::of(algorithm, client_id),
        client_id,
        algorithm,
        image: ImageRef::parse("ghcr.io/acme/algo:1.0").unwrap(),
        cpu: Quantity::parse("250m").unwrap(),
        mem: Quantity::parse("128Mi").unwrap(),
        version: Version::parse(2).unwrap(),
        priority: Priority::parse(0.5).unwrap(),
        restart_mark: None,
    }
}

/// How long a deleted pod stays terminating in the grace-period cases: long enough to be seen,
/// short enough for a test.
const GRACE: Duration = Duration::from_secs(2);

/// How long a runtime may take to act (the stand-in kubelet reacts in milliseconds; the margin
/// is for a busy machine).
const PATIENCE: Duration = Duration::from_secs(30);

fn quiet() -> Logger {
    Logger::root(slog::Discard, slog::o!())
}

/// What a contract case needs from a runtime under test, beyond the port itself.
trait Harness {
    fn runtime(&self) -> &dyn PodRuntime;
    /// Puts a pod alsy does not manage next to alsy's; whether it could.
    async fn add_foreign_pod(&self, name: &str) -> bool;
    /// Whether that foreign pod is still there, still not alsy's.
    async fn foreign_pod_exists(&self, name: &str) -> bool;
    /// Sets a pod's phase behind the runtime's back.
    async fn set_phase(&self, name: &PodName, phase: PodPhase) -> bool;
    /// The identity of the pod incarnation now running under `name`.
    async fn uid(&self, name: &PodName) -> Option<String>;
    /// Deletions asked for from now on leave the pod terminating for `grace`.
    async fn set_grace(&self, grace: Duration);
}

struct Fake(FakePodRuntime);

impl Fake {
    async fn start() -> Fake {
        Fake(FakePodRuntime::new())
    }
}

impl Harness for Fake {
    fn runtime(&self) -> &dyn PodRuntime {
        &self.0
    }
    async fn add_foreign_pod(&self, name: &str) -> bool {
        self.0.add_foreign_pod(name);
        true
    }
    async fn foreign_pod_exists(&self, name: &str) -> bool {
        self.0.foreign_pods().iter().any(|pod| pod == name)
    }
    async fn set_phase(&self, name: &PodName, phase: PodPhase) -> bool {
        self.0.set_phase(name, phase)
    }
    async fn uid(&self, name: &PodName) -> Option<String> {
        self.0.pod(name).map(|pod| pod.uid.to_string())
    }
    async fn set_grace(&self, grace: Duration) {
        self.0.set_termination_grace(grace);
    }
}

/// `KubeRuntime` through a kubeconfig that points at a fresh test API server.
pub struct Kube {
    pub server: KubeServer,
    pub runtime: KubeRuntime,
}

/// Settings for tests: short timeouts, no rate limit, no watch: every call is one request.
pub fn test_settings() -> KubeSettings {
    KubeSettings {
        namespace: None,
        request_timeout: Duration::from_secs(2),
        qps: 0,
        watch: false,
        ..KubeSettings::default()
    }
}

/// [`test_settings`] with the watch on, as alsy runs.
pub fn watched_settings() -> KubeSettings {
    KubeSettings {
        watch: true,
        ..test_settings()
    }
}

impl Kube {
    pub async fn start() -> Kube {
        Kube::start_with(test_settings()).await
    }

    pub async fn start_with(settings: KubeSettings) -> Kube {
        let server = KubeServer::start().await;
        // Like the envtest harness's cluster, which has a (stand-in) kubelet: pods run.
        server.set_created_phase("Running");
        let runtime = connect(&server.write_kubeconfig(NS), &settings).await;
        Kube { server, runtime }
    }
}

pub async fn connect(kubeconfig: &Path, settings: &KubeSettings) -> KubeRuntime {
    KubeRuntime::from_kubeconfig(kubeconfig, settings, &quiet())
        .await
        .unwrap()
}

impl Harness for Kube {
    fn runtime(&self) -> &dyn PodRuntime {
        &self.runtime
    }
    async fn add_foreign_pod(&self, name: &str) -> bool {
        self.server.insert_foreign_pod(NS, name);
        true
    }
    async fn foreign_pod_exists(&self, name: &str) -> bool {
        self.server
            .pod(NS, name)
            .is_some_and(|pod| !alsy_k8s::is_managed(&pod))
    }
    async fn set_phase(&self, name: &PodName, phase: PodPhase) -> bool {
        self.server.set_phase(NS, name.as_str(), phase.as_str())
    }
    async fn uid(&self, name: &PodName) -> Option<String> {
        self.server.pod(NS, name.as_str())?.metadata.uid
    }
    async fn set_grace(&self, grace: Duration) {
        self.server.set_termination_grace(grace);
    }
}

/// `KubeRuntime` through a kubeconfig for a fresh namespace of the envtest API server, with a
/// stand-in kubelet that runs its pods and finishes deletions at once.
struct RealApiServer {
    runtime: KubeRuntime,
    pods: Api<Pod>,
    kubelet: StandInKubelet,
}

impl RealApiServer {
    /// `None` (after a `SKIPPED:` line) without envtest binaries.
    async fn start() -> Option<RealApiServer> {
        RealApiServer::start_with(test_settings()).await
    }

    async fn start_watched() -> Option<RealApiServer> {
        RealApiServer::start_with(watched_settings()).await
    }

    async fn start_with(settings: KubeSettings) -> Option<RealApiServer> {
        let envtest = Envtest::shared().await?;
        let namespace = envtest.namespace("contract", &[]).await;
        let client = envtest.client().await;
        let kubelet = StandInKubelet::start(client.clone(), &namespace, Duration::ZERO);
        let runtime = connect(&envtest.write_alsy_kubeconfig(&namespace), &settings).await;
        let pods = Api::namespaced(client, &namespace);
        Some(RealApiServer {
            runtime,
            pods,
            kubelet,
        })
    }
}

impl Harness for RealApiServer {
    fn runtime(&self) -> &dyn PodRuntime {
        &self.runtime
    }
    async fn add_foreign_pod(&self, name: &str) -> bool {
        let pod = foreign_pod(name, "nginx:1.27");
        self.pods.create(&PostParams::default(), &pod).await.is_ok()
    }
    async fn foreign_pod_exists(&self, name: &str) -> bool {
        let found = self.pods.get_opt(name).await.ok().flatten();
        found.is_some_and(|pod| !alsy_k8s::is_managed(&pod))
    }
    async fn set_phase(&self, name: &PodName, phase: PodPhase) -> bool {
        self.kubelet.set_phase(name.as_str(), phase.as_str()).await
    }
    async fn uid(&self, name: &PodName) -> Option<String> {
        self.pods.get_opt(name.as_str()).await.ok()??.metadata.uid
    }
    async fn set_grace(&self, grace: Duration) {
        self.kubelet.set_grace(Some(grace));
    }
}

async fn names(harness: &impl Harness) -> Vec<String> {
    let listed = harness.runtime().list().await.unwrap();
    listed.into_iter().map(|p| p.name.to_string()).collect()
}

async fn a_created_pod_is_listed(h: impl Harness) {
    let pod = desired(Algorithm::named("VWAP"), 1);
    h.runtime().create(&pod).await.unwrap();
    let listed = h.runtime().list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, pod.name);
    assert!(!listed[0].phase.is_terminated(), "{:?}", listed[0].phase);
}

async fn creating_a_pod_twice_succeeds_and_keeps_one_pod(h: impl Harness) {
    let pod = desired(Algorithm::named("TWAP"), 2);
    h.runtime().create(&pod).await.unwrap();
    let uid = h.uid(&pod.name).await;
    h.runtime().create(&pod).await.unwrap();
    assert_eq!(names(&h).await, vec!["twap-2"]);
    assert_eq!(
        h.uid(&pod.name).await,
        uid,
        "the existing pod was left alone"
    );
}

async fn a_deleted_pod_is_no_longer_listed(h: impl Harness) {
    let (keep, gone) = (
        desired(Algorithm::named("VWAP"), 1),
        desired(Algorithm::named("HFT"), 1),
    );
    h.runtime().create(&keep).await.unwrap();
    h.runtime().create(&gone).await.unwrap();
    h.runtime().delete(&gone.name).await.unwrap();
    // A real cluster keeps a running pod, terminating, until its kubelet has stopped it.
    eventually(
        "the deleted pod is gone",
        Duration::from_secs(30),
        || async { names(&h).await == vec!["vwap-1"] },
    )
    .await;
}

async fn deleting_a_pod_that_is_not_there_succeeds(h: impl Harness) {
    let name = PodName::parse("vwap-404").unwrap();
    h.runtime().delete(&name).await.unwrap();
    assert!(names(&h).await.is_empty());
}

/// The phase `list` reports for `name`, `None` when it is not listed.
async fn phase_of(h: &impl Harness, name: &PodName) -> Option<PodPhase> {
    let listed = h.runtime().list().await.unwrap();
    listed
        .into_iter()
        .find(|p| &p.name == name)
        .map(|p| p.phase)
}

/// Waits until `pod` runs (on a real API server, an unbound pod is deleted at once, with no
/// grace period: bind it first).
async fn wait_running(h: &impl Harness, pod: &PodName) {
    eventually("the pod runs", PATIENCE, || async {
        phase_of(h, pod).await == Some(PodPhase::Running)
    })
    .await;
}

async fn a_restarted_pod_exists_again_as_a_new_incarnation(h: impl Harness) {
    let pod = desired(Algorithm::named("VWAP"), 3);
    h.runtime().create(&pod).await.unwrap();
    wait_running(&h, &pod.name).await;
    let before = h.uid(&pod.name).await.unwrap();
    match h.runtime().restart(&pod).await.unwrap() {
        Restarted::Replaced => {}
        // A real API server gives a bound pod a grace period: the successor comes once it is
        // gone, from a later restart (or create).
        Restarted::OldPodTerminating => {
            eventually("the old pod is gone", PATIENCE, || async {
                names(&h).await.is_empty()
            })
            .await;
            assert_eq!(
                h.runtime().restart(&pod).await.unwrap(),
                Restarted::Replaced,
                "a missing pod is created"
            );
        }
    }
    assert_eq!(names(&h).await, vec!["vwap-3"]);
    let after = h.uid(&pod.name).await.unwrap();
    assert_ne!(before, after, "restart replaced the pod");
}

async fn restarting_a_missing_pod_creates_it(h: impl Harness) {
    let pod = desired(Algorithm::named("HFT"), 4);
    assert_eq!(
        h.runtime().restart(&pod).await.unwrap(),
        Restarted::Replaced
    );
    assert_eq!(names(&h).await, vec!["hft-4"]);
}

async fn a_restart_with_a_grace_period_returns_at_once_leaving_the_old_pod_terminating(
    h: impl Harness,
) {
    h.set_grace(GRACE).await;
    let pod = desired(Algorithm::named("TWAP"), 5);
    h.runtime().create(&pod).await.unwrap();
    wait_running(&h, &pod.name).await;
    let old = h.uid(&pod.name).await;

    assert_eq!(
        h.runtime().restart(&pod).await.unwrap(),
        Restarted::OldPodTerminating
    );
    assert_eq!(phase_of(&h, &pod.name).await, Some(PodPhase::Terminating));
    // Neither a second delete nor a create touches the terminating pod.
    h.runtime().delete(&pod.name).await.unwrap();
    h.runtime().create(&pod).await.unwrap();
    assert_eq!(h.uid(&pod.name).await, old);
    assert_eq!(phase_of(&h, &pod.name).await, Some(PodPhase::Terminating));

    eventually("the grace period ends", PATIENCE, || async {
        phase_of(&h, &pod.name).await.is_none()
    })
    .await;
    h.runtime().create(&pod).await.unwrap();
    assert_ne!(h.uid(&pod.name).await, old, "the successor is a new pod");
}

async fn a_deleted_pod_is_listed_terminating_until_its_grace_period_ends(h: impl Harness) {
    h.set_grace(GRACE).await;
    let pod = desired(Algorithm::named("HFT"), 6);
    h.runtime().create(&pod).await.unwrap();
    wait_running(&h, &pod.name).await;
    h.runtime().delete(&pod.name).await.unwrap();
    assert_eq!(phase_of(&h, &pod.name).await, Some(PodPhase::Terminating));
    eventually("the grace period ends", PATIENCE, || async {
        names(&h).await.is_empty()
    })
    .await;
}

async fn the_restart_mark_a_pod_was_created_for_is_listed_with_it(h: impl Harness) {
    // To the nanosecond: the in-memory store's marks have nanoseconds.
    let mark = SystemTime::UNIX_EPOCH + Duration::new(1_790_000_000, 123_456_789);
    let replacement = DesiredPod {
        restart_mark: Some(mark),
        ..desired(Algorithm::named("VWAP"), 7)
    };
    h.runtime().create(&replacement).await.unwrap();
    h.runtime()
        .create(&desired(Algorithm::named("TWAP"), 7))
        .await
        .unwrap();
    let mut listed = h.runtime().list().await.unwrap();
    listed.sort_by(|a, b| a.name.cmp(&b.name));
    let marks: Vec<_> = listed.iter().map(|p| p.restart_mark).collect();
    assert_eq!(marks, [None, Some(mark)], "twap-7, vwap-7");
}

async fn list_named_shows_the_named_managed_pods_that_exist(h: impl Harness) {
    // A client's sync state asks for its catalogue's pods by name: only those that exist and
    // are alsy's come back.
    assert!(
        h.add_foreign_pod("twap-1").await,
        "the runtime holds foreign pods"
    );
    for (algorithm, client) in [("VWAP", 1), ("HFT", 1), ("VWAP", 2)] {
        h.runtime()
            .create(&desired(Algorithm::named(algorithm), client))
            .await
            .unwrap();
    }
    let asked: Vec<PodName> = ["vwap-1", "twap-1", "hft-1", "x-1"]
        .iter()
        .map(|n| PodName::parse(n).unwrap())
        .collect();
    let mut named = h.runtime().list_named(&asked).await.unwrap();
    named.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(
        named.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        vec!["hft-1", "vwap-1"]
    );
    assert!(named.iter().all(|p| !p.phase.is_terminated()), "{named:?}");
}

async fn list_never_shows_a_pod_alsy_does_not_manage(h: impl Harness) {
    // A foreign pod with a name alsy could have given is the dangerous one.
    let held = h.add_foreign_pod("vwap-99").await & h.add_foreign_pod("nginx").await;
    assert!(held, "every runtime under contract can hold foreign pods");
    h.runtime()
        .create(&desired(Algorithm::named("VWAP"), 1))
        .await
        .unwrap();
    assert_eq!(names(&h).await, vec!["vwap-1"]);
    assert!(h.foreign_pod_exists("vwap-99").await && h.foreign_pod_exists("nginx").await);
}

async fn phases_are_reported_as_the_runtime_sees_them(h: impl Harness) {
    let (failed, done, running) = (
        desired(Algorithm::named("VWAP"), 1),
        desired(Algorithm::named("TWAP"), 1),
        desired(Algorithm::named("HFT"), 1),
    );
    for pod in [&failed, &done, &running] {
        h.runtime().create(pod).await.unwrap();
    }
    assert!(h.set_phase(&failed.name, PodPhase::Failed).await);
    assert!(h.set_phase(&done.name, PodPhase::Succeeded).await);
    assert!(h.set_phase(&running.name, PodPhase::Running).await);
    let expected = vec![
        ("hft-1".to_owned(), PodPhase::Running),
        ("twap-1".to_owned(), PodPhase::Succeeded),
        ("vwap-1".to_owned(), PodPhase::Failed),
    ];
    // A watched runtime sees a change made behind its back once the watch brings it.
    eventually(
        "the runtime reports the phases set",
        Duration::from_secs(30),
        || async {
            let mut listed: Vec<(String, PodPhase)> = h
                .runtime()
                .list()
                .await
                .unwrap()
                .into_iter()
                .map(|p| (p.name.to_string(), p.phase))
                .collect();
            listed.sort_by(|a, b| a.0.cmp(&b.0));
            listed == expected
        },
    )
    .await;
}

async fn creating_a_pod_whose_name_a_foreign_pod_holds_is_rejected_naming_it(h: impl Harness) {
    assert!(h.add_foreign_pod("vwap-7").await);
    let pod = desired(Algorithm::named("VWAP"), 7);
    match h.runtime().create(&pod).await {
        Err(RuntimeError::Rejected {
            pod: Some(name),
            detail,
        }) => {
            assert_eq!(name, pod.name);
            assert!(
                detail.contains("vwap-7") && detail.contains("alsy does not manage it"),
                "{detail}"
            );
        }
        other => panic!("expected Rejected naming vwap-7, got {other:?}"),
    }
    assert!(
        h.foreign_pod_exists("vwap-7").await,
        "the foreign pod is left alone"
    );
    assert!(names(&h).await.is_empty());
}

/// Each case once per runtime: `pod_runtime_contract::fake::<case>`, `…::kube::<case>` (the test
/// API server) and `…::envtest::<case>` (the real one), and the last two again with the watch on
/// (`…::kube_watched::<case>`, `…::envtest_watched::<case>`).
macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod fake {
            $(#[tokio::test]
            async fn $case() {
                super::$case(super::Fake::start().await).await;
            })*
        }
        mod kube {
            $(#[tokio::test]
            async fn $case() {
                super::$case(super::Kube::start().await).await;
            })*
        }
        mod envtest {
            $(#[tokio::test]
            async fn $case() {
                if let Some(harness) = super::RealApiServer::start().await {
                    super::$case(harness).await;
                }
            })*
        }
        mod kube_watched {
            $(#[tokio::test]
            async fn $case() {
                super::$case(super::Kube::start_with(super::watched_settings()).await).await;
            })*
        }
        mod envtest_watched {
            $(#[tokio::test]
            async fn $case() {
                if let Some(harness) = super::RealApiServer::start_watched().await {
                    super::$case(harness).await;
                }
            })*
        }
    };
}

contract!(
    a_created_pod_is_listed,
    creating_a_pod_twice_succeeds_and_keeps_one_pod,
    a_deleted_pod_is_no_longer_listed,
    deleting_a_pod_that_is_not_there_succeeds,
    a_restarted_pod_exists_again_as_a_new_incarnation,
    restarting_a_missing_pod_creates_it,
    a_restart_with_a_grace_period_returns_at_once_leaving_the_old_pod_terminating,
    a_deleted_pod_is_listed_terminating_until_its_grace_period_ends,
    the_restart_mark_a_pod_was_created_for_is_listed_with_it,
    list_never_shows_a_pod_alsy_does_not_manage,
    list_named_shows_the_named_managed_pods_that_exist,
    creating_a_pod_whose_name_a_foreign_pod_holds_is_rejected_naming_it,
    phases_are_reported_as_the_runtime_sees_them,
);
