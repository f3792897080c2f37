//! The real API server the Kubernetes tests run on, and the stand-in kubelet that makes its pods
//! run: what the other envtest tests rely on, checked on its own.

use std::time::Duration;

use alsy_tests::envtest::{Envtest, NODE_NAME, StandInKubelet};
use alsy_tests::fixtures::{eventually, foreign_pod};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use tokio::time::Instant;

fn pod(name: &str) -> Pod {
    foreign_pod(name, "registry.k8s.io/pause:3.10")
}

fn phase(pod: &Pod) -> Option<&str> {
    pod.status.as_ref()?.phase.as_deref()
}

#[tokio::test]
async fn the_stand_in_kubelet_binds_runs_fails_and_finishes_deletions_after_the_grace_period() {
    let Some(envtest) = Envtest::shared().await else {
        return;
    };
    let namespace = envtest.namespace("kubelet", &[]).await;
    let client = envtest.client().await;
    let grace = Duration::from_secs(2);
    let kubelet = StandInKubelet::start(client.clone(), &namespace, grace);
    let pods: Api<Pod> = Api::namespaced(client, &namespace);
    pods.create(&PostParams::default(), &pod("a"))
        .await
        .unwrap();
    pods.create(&PostParams::default(), &pod("b"))
        .await
        .unwrap();

    for name in ["a", "b"] {
        eventually(
            "the pod is bound and running",
            Duration::from_secs(30),
            || async {
                let pod = pods.get(name).await.unwrap();
                let node = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
                node == Some(NODE_NAME) && phase(&pod) == Some("Running")
            },
        )
        .await;
    }
    assert!(kubelet.set_phase("b", "Failed").await);
    assert_eq!(phase(&pods.get("b").await.unwrap()), Some("Failed"));

    // A bound pod that is deleted stays, terminating, until the kubelet finishes the deletion.
    let asked = Instant::now();
    let terminating = pods.delete("a", &DeleteParams::default()).await.unwrap();
    let terminating = terminating
        .left()
        .expect("the API server answers with the pod");
    assert!(terminating.metadata.deletion_timestamp.is_some());
    assert!(pods.get_opt("a").await.unwrap().is_some());
    eventually("the deletion finished", Duration::from_secs(30), || async {
        pods.get_opt("a").await.unwrap().is_none()
    })
    .await;
    // Not before the grace period the test chose (a lower bound: it cannot pass early).
    assert!(asked.elapsed() >= grace, "{:?}", asked.elapsed());

    // A failed pod goes at once: the API server skips the grace period of a finished pod.
    pods.delete("b", &DeleteParams::default()).await.unwrap();
    assert!(pods.get_opt("b").await.unwrap().is_none());
}
