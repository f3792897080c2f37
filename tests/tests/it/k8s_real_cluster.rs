//! `KubeRuntime` against a real cluster: in a namespace of its own (deleted afterwards, also when
//! the test fails) it creates, lists, restarts and deletes a `pause` pod, next to a foreign pod
//! that must survive untouched. The cluster is the one `ALSY_TEST_KUBECONFIG` names; without it,
//! the envtest API server of the run, whose pods a stand-in kubelet runs, with a grace period on
//! deletions as on a node: the restart returns while the old pod is `Terminating`, and the
//! successor is created once it is gone. Without either it says loudly that it did not run (and
//! fails with `CI=true`).

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alsy_app::{PodRuntime, Restarted};
use alsy_domain::{
    Algorithm, ClientId, DesiredPod, ImageRef, PodName, PodPhase, Priority, Quantity, Version,
};
use alsy_k8s::{KubeRuntime, KubeSettings};
use alsy_tests::envtest::{Envtest, StandInKubelet};
use alsy_tests::fixtures::{eventually, foreign_pod};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};

const PAUSE: &str = "registry.k8s.io/pause:3.10";
/// Pulling an image on a fresh node can take a while.
const PATIENCE: Duration = Duration::from_secs(180);

/// How long the stand-in kubelet takes to stop a deleted pod.
const ENVTEST_GRACE: Duration = Duration::from_secs(2);

#[tokio::test]
async fn k8s_real_cluster_create_list_restart_delete() {
    let (path, envtest) = match std::env::var_os("ALSY_TEST_KUBECONFIG").map(PathBuf::from) {
        Some(path) => (path, None),
        // Says SKIPPED (fails with CI=true) without KUBEBUILDER_ASSETS either.
        None => match Envtest::shared().await {
            Some(envtest) => (envtest.write_alsy_kubeconfig("default"), Some(envtest)),
            None => return,
        },
    };
    let client = client(&path).await;
    let suffix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let namespace = format!("alsy-it-{}-{suffix}", std::process::id());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let meta = ObjectMeta {
        name: Some(namespace.clone()),
        ..ObjectMeta::default()
    };
    namespaces
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: meta,
                ..Namespace::default()
            },
        )
        .await
        .expect("create the test namespace");
    // Nothing runs pods on the envtest API server but the kubelet the test brings.
    let _kubelet =
        envtest.map(|_| StandInKubelet::start(client.clone(), &namespace, ENVTEST_GRACE));

    // Run the body as a task so a failed assertion still lets the namespace be deleted.
    let body = tokio::spawn(exercise(path, client.clone(), namespace.clone()));
    let outcome = body.await;
    let cleanup = namespaces
        .delete(&namespace, &DeleteParams::default())
        .await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic.into_panic());
    }
    cleanup.expect("delete the test namespace");
}

async fn client(path: &PathBuf) -> Client {
    let kubeconfig = Kubeconfig::read_from(path).expect("read ALSY_TEST_KUBECONFIG");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("a usable kubeconfig");
    Client::try_from(config).expect("a kube client")
}

fn pause_pod(algorithm: Algorithm, id: i64) -> DesiredPod {
    let client_id = ClientId::new(id).unwrap();
    DesiredPod {
        name: PodName::of(algorithm, client_id),
        client_id,
        algorithm,
        image: ImageRef::parse(PAUSE).unwrap(),
        cpu: Quantity::parse("10m").unwrap(),
        mem: Quantity::parse("16Mi").unwrap(),
        version: Version::parse(1).unwrap(),
        priority: Priority::parse(1.0).unwrap(),
        restart_mark: None,
    }
}

async fn phase_of(runtime: &KubeRuntime, name: &PodName) -> Option<PodPhase> {
    let pods = runtime.list().await.unwrap();
    pods.into_iter().find(|p| &p.name == name).map(|p| p.phase)
}

async fn exercise(path: PathBuf, client: Client, namespace: String) {
    let pods: Api<Pod> = Api::namespaced(client, &namespace);
    let foreign = foreign_pod("vwap-2", PAUSE);
    pods.create(&PostParams::default(), &foreign)
        .await
        .expect("a foreign pod");
    let settings = KubeSettings {
        namespace: Some(namespace.clone()),
        ..KubeSettings::default()
    };
    let log = slog::Logger::root(slog::Discard, slog::o!());
    let runtime = KubeRuntime::from_kubeconfig(&path, &settings, &log)
        .await
        .unwrap();
    let pod = pause_pod(Algorithm::named("VWAP"), 1);

    runtime.create(&pod).await.unwrap();
    runtime.create(&pod).await.unwrap();
    eventually("the pod runs", PATIENCE, || async {
        phase_of(&runtime, &pod.name).await == Some(PodPhase::Running)
    })
    .await;
    let listed = runtime.list().await.unwrap();
    assert_eq!(listed.len(), 1, "only alsy's pod is listed: {listed:?}");
    let uid = |p: Pod| p.metadata.uid;
    let first = pods.get("vwap-1").await.map(uid).unwrap();

    // A running pod has a grace period (30 s by default on a node): the restart returns at
    // once, leaving it terminating; its successor comes once it is gone.
    let restarted = runtime.restart(&pod).await.unwrap();
    assert_eq!(restarted, Restarted::OldPodTerminating);
    assert_eq!(
        phase_of(&runtime, &pod.name).await,
        Some(PodPhase::Terminating)
    );
    eventually("the old pod is gone", PATIENCE, || async {
        phase_of(&runtime, &pod.name).await.is_none()
    })
    .await;
    assert_eq!(runtime.restart(&pod).await.unwrap(), Restarted::Replaced);
    let second = pods.get("vwap-1").await.map(uid).unwrap();
    assert_ne!(first, second, "restart replaced the pod");
    eventually("the restarted pod runs", PATIENCE, || async {
        phase_of(&runtime, &pod.name).await == Some(PodPhase::Running)
    })
    .await;

    runtime.delete(&pod.name).await.unwrap();
    runtime.delete(&pod.name).await.unwrap();
    eventually("the pod is gone", PATIENCE, || async {
        phase_of(&runtime, &pod.name).await.is_none()
    })
    .await;
    let survivor = pods.get("vwap-2").await.expect("the foreign pod survives");
    assert!(survivor.metadata.deletion_timestamp.is_none());
}
