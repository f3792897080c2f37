//! The project's test API server answers the requests alsy makes as the real kube-apiserver does:
//! the same exchange — create, create again, delete with a stale uid precondition, delete a
//! running pod (it terminates), delete a finished pod (it goes at once), get a missing pod, create
//! a pod Pod Security `restricted` refuses — is sent to both, and the answers (HTTP code, `Status`
//! reason, what the pod looks like afterwards) must be equal. So must what a watch reports while a
//! pod lives and dies.

use std::time::Duration;

use alsy_domain::{
    Algorithm, ClientId, DesiredPod, ImageRef, PodName, Priority, Quantity, Version,
};
use alsy_k8s::{PodSecurity, pod_manifest};
use alsy_tests::envtest::{Envtest, StandInKubelet};
use alsy_tests::fixtures::eventually;
use alsy_tests::kube_server::KubeServer;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams, PostParams, Preconditions, WatchEvent, WatchParams};
use kube::{Api, Client};

fn desired(algorithm: Algorithm, id: i64) -> DesiredPod {
    let client_id = ClientId::new(id).unwrap();
    DesiredPod {
        name: PodName::of(algorithm, client_id),
        client_id,
        algorithm,
        image: ImageRef::parse("ghcr.io/acme/algo:1.0").unwrap(),
        cpu: Quantity::parse("100m").unwrap(),
        mem: Quantity::parse("64Mi").unwrap(),
        version: Version::parse(1).unwrap(),
        priority: Priority::parse(1.0).unwrap(),
        restart_mark: None,
    }
}

/// What one request came back with: the code and reason of a failure, or what the pod showed.
fn outcome<T>(answer: Result<T, kube::Error>, show: impl FnOnce(T) -> String) -> String {
    match answer {
        Ok(value) => format!("ok: {}", show(value)),
        Err(kube::Error::Api(status)) => {
            format!(
                "{} {}: {}",
                status.code,
                status.reason,
                without_uids(&status.message)
            )
        }
        Err(other) => format!("error: {other}"),
    }
}

/// `message` with every uid (36 characters, 4 dashes) replaced by `UID`: each server makes its own.
fn without_uids(message: &str) -> String {
    let is_uid = |word: &str| word.len() == 36 && word.matches('-').count() == 4;
    message
        .split_inclusive([' ', '(', ')'])
        .map(|piece| {
            let word = piece.trim_end_matches([' ', '(', ')']);
            if is_uid(word) {
                piece.replacen(word, "UID", 1)
            } else {
                piece.to_owned()
            }
        })
        .collect()
}

fn terminating(pod: &Pod) -> String {
    let phase = pod.status.as_ref().and_then(|s| s.phase.clone());
    format!(
        "{} {:?} terminating={}",
        pod.metadata.name.clone().unwrap_or_default(),
        phase,
        pod.metadata.deletion_timestamp.is_some()
    )
}

/// The exchange, on `pods` of a namespace that enforces nothing and `guarded` of one that
/// enforces `restricted`; `set_phase` reports a pod's phase as its node would.
async fn exchange(
    pods: &Api<Pod>,
    guarded: &Api<Pod>,
    set_phase: impl AsyncFn(&str, &str) -> bool,
) -> Vec<String> {
    let create = PostParams::default();
    let restricted = pod_manifest(
        &desired(Algorithm::named("VWAP"), 1),
        PodSecurity::default(),
    );
    let baseline = pod_manifest(&desired(Algorithm::named("TWAP"), 1), PodSecurity::Baseline);
    let mut seen = Vec::new();
    seen.push(outcome(pods.create(&create, &restricted).await, |p| {
        terminating(&p)
    }));
    seen.push(outcome(pods.create(&create, &restricted).await, |p| {
        terminating(&p)
    }));
    // Bound to a node and running before the deletes.
    assert!(set_phase("vwap-1", "Running").await);
    eventually("vwap-1 is bound", Duration::from_secs(30), || async {
        let pod = pods.get("vwap-1").await.unwrap();
        pod.spec.and_then(|s| s.node_name).is_some()
    })
    .await;
    let stale = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some("00000000-0000-0000-0000-000000000000".into()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    seen.push(outcome(pods.delete("vwap-1", &stale).await, |_| {
        "deleted".into()
    }));
    let deleted = pods.delete("vwap-1", &DeleteParams::default()).await;
    seen.push(outcome(deleted, |either| {
        either.left().map_or("a Status".into(), |p| terminating(&p))
    }));
    seen.push(outcome(pods.get("vwap-1").await, |p| terminating(&p)));

    seen.push(outcome(pods.create(&create, &baseline).await, |p| {
        terminating(&p)
    }));
    eventually("twap-1 is bound", Duration::from_secs(30), || async {
        let pod = pods.get("twap-1").await.unwrap();
        pod.spec.and_then(|s| s.node_name).is_some()
    })
    .await;
    assert!(set_phase("twap-1", "Failed").await);
    let deleted = pods.delete("twap-1", &DeleteParams::default()).await;
    seen.push(outcome(deleted, |either| {
        either.left().map_or("a Status".into(), |p| terminating(&p))
    }));
    seen.push(outcome(pods.get("twap-1").await, |p| terminating(&p)));

    seen.push(outcome(guarded.create(&create, &baseline).await, |p| {
        terminating(&p)
    }));
    seen.push(outcome(guarded.create(&create, &restricted).await, |p| {
        terminating(&p)
    }));
    seen
}

fn api(client: &Client, namespace: &str) -> Api<Pod> {
    Api::namespaced(client.clone(), namespace)
}

#[tokio::test]
async fn the_test_server_answers_alsys_requests_as_kube_apiserver_does() {
    let Some(envtest) = Envtest::shared().await else {
        return;
    };
    let client = envtest.client().await;
    let open = envtest.namespace("parity", &[]).await;
    let restricted = [("pod-security.kubernetes.io/enforce", "restricted")];
    let guarded = envtest.namespace("parity-restricted", &restricted).await;
    let kubelet = StandInKubelet::start(client.clone(), &open, Duration::ZERO);
    // Deletions never finish: the terminating pod stays to be looked at.
    kubelet.set_grace(None);
    let real = exchange(
        &api(&client, &open),
        &api(&client, &guarded),
        async |name, phase| kubelet.set_phase(name, phase).await,
    )
    .await;

    let server = KubeServer::start().await;
    server.set_termination_grace(Duration::from_secs(3600));
    server.enforce_restricted("guarded");
    let kubeconfig = server.write_kubeconfig("open");
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&kubeconfig).unwrap(),
        &Default::default(),
    )
    .await
    .unwrap();
    let test_client = Client::try_from(config).unwrap();
    let test = exchange(
        &api(&test_client, "open"),
        &api(&test_client, "guarded"),
        async |name, phase| server.set_phase("open", name, phase),
    )
    .await;

    for (real, test) in real.iter().zip(&test) {
        println!("kube-apiserver: {real}\ntest server:    {test}\n");
    }
    assert_eq!(test, real);
}

/// What a watch of alsy's pods from the list's version reports while a pod is created, runs, is
/// deleted with a grace period and goes: each event's type with the pod's phase and whether it is
/// terminating, repeats of the same look folded (the real server reports the binding as a change
/// of its own), bookmarks left out. (A `410 Gone` cannot be compared: kube-apiserver's watch
/// cache keeps a window no test can wait out, even after etcd is compacted.)
async fn watch_exchange(
    pods: &Api<Pod>,
    set_phase: impl AsyncFn(&str, &str) -> bool,
) -> Vec<String> {
    let selected = ListParams::default().labels(alsy_k8s::MANAGED_SELECTOR);
    let version = pods
        .list(&selected)
        .await
        .unwrap()
        .metadata
        .resource_version;
    let params = WatchParams::default()
        .labels(alsy_k8s::MANAGED_SELECTOR)
        .timeout(60);
    let events = pods.watch(&params, &version.unwrap()).await.unwrap();
    let watched = tokio::spawn(async move {
        let mut seen: Vec<String> = Vec::new();
        let mut events = std::pin::pin!(events);
        while let Some(event) = events.next().await {
            let (kind, pod) = match event.unwrap() {
                WatchEvent::Added(pod) => ("ADDED", pod),
                WatchEvent::Modified(pod) => ("MODIFIED", pod),
                WatchEvent::Deleted(pod) => ("DELETED", pod),
                WatchEvent::Bookmark(_) => continue,
                WatchEvent::Error(error) => panic!("{error:?}"),
            };
            let look = terminating(&pod);
            if seen.last().is_none_or(|last| !last.ends_with(&look)) || kind == "DELETED" {
                seen.push(format!("{kind} {look}"));
            }
            if kind == "DELETED" {
                return seen;
            }
        }
        seen
    });
    let manifest = pod_manifest(
        &desired(Algorithm::named("VWAP"), 2),
        PodSecurity::default(),
    );
    pods.create(&PostParams::default(), &manifest)
        .await
        .unwrap();
    eventually("vwap-2 is bound", Duration::from_secs(30), || async {
        let pod = pods.get("vwap-2").await.unwrap();
        pod.spec.and_then(|s| s.node_name).is_some()
    })
    .await;
    assert!(set_phase("vwap-2", "Running").await);
    pods.delete("vwap-2", &DeleteParams::default())
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(60), watched)
        .await
        .expect("the watch reports the deletion")
        .unwrap()
}

#[tokio::test]
async fn the_test_servers_watch_reports_what_kube_apiservers_does() {
    let Some(envtest) = Envtest::shared().await else {
        return;
    };
    let client = envtest.client().await;
    let namespace = envtest.namespace("parity-watch", &[]).await;
    let kubelet = StandInKubelet::start(client.clone(), &namespace, Duration::from_secs(1));
    let real = watch_exchange(&api(&client, &namespace), async |name, phase| {
        kubelet.set_phase(name, phase).await
    })
    .await;

    let server = KubeServer::start().await;
    server.set_termination_grace(Duration::from_secs(1));
    let kubeconfig = server.write_kubeconfig("open");
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&kubeconfig).unwrap(),
        &Default::default(),
    )
    .await
    .unwrap();
    let test_client = Client::try_from(config).unwrap();
    let test = watch_exchange(&api(&test_client, "open"), async |name, phase| {
        server.set_phase("open", name, phase)
    })
    .await;

    for (real, test) in real.iter().zip(&test) {
        println!("kube-apiserver: {real}\ntest server:    {test}\n");
    }
    assert_eq!(test, real);
}
