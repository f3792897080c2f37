//! The service end to end on the Kubernetes runtime: alsy started in-process with
//! `ALSY__RUNTIME__KIND=kubernetes` and `ALSY__K8S__KUBECONFIG` naming a kubeconfig the test
//! writes, driven over real HTTP. Each scenario runs twice: on the project's test API server
//! (`test_server::…`), and on a real kube-apiserver (`envtest::…`) whose pods a stand-in kubelet
//! runs. A pod without alsy's label, present before start, survives every pass untouched, and no
//! request of alsy's ever names it.

mod clusters;

use std::time::Duration;

use alsy_tests::app::TestApp;
use alsy_tests::fixtures::eventually;
use reqwest::StatusCode;
use serde_json::json;

use self::clusters::{Cluster, Envtest, TestServer};

/// How long a real cluster may take to act on what alsy asked (the stand-in kubelet reacts in
/// milliseconds; the margin is for a busy machine).
const PATIENCE: Duration = Duration::from_secs(30);

/// The grace period of a restarted pod: long enough for several passes to see it terminating.
const GRACE: Duration = Duration::from_secs(3);

async fn clients_switches_restarts_and_deletes_become_pods_in_the_cluster(kube: impl Cluster) {
    let app = kube.app().await;

    let id = app
        .create_client_from(&json!({
            "name": "Jimbo", "version": 3, "image": "ghcr.io/acme/algo:1.0",
            "cpu": "500m", "mem": "512Mi", "priority": 0.5
        }))
        .await;
    let switches = json!({"VWAP": true, "TWAP": false, "HFT": true});
    assert_eq!(app.put_status(id, switches).await.status, StatusCode::OK);

    let report = app.sync().await;
    assert_eq!(
        report["created"],
        json!([format!("hft-{id}"), format!("vwap-{id}")])
    );
    assert_eq!(
        kube.managed_pod_names().await,
        [format!("hft-{id}"), format!("vwap-{id}")]
    );
    let vwap = kube.pod(&format!("vwap-{id}")).await.unwrap();
    let labels = vwap.metadata.labels.clone().unwrap();
    assert_eq!(labels["alsy.io/client-id"], id.to_string());
    assert_eq!(labels["alsy.io/algorithm"], "vwap");
    assert_eq!(labels["alsy.io/version"], "3");
    eventually("alsy reports its pods running", PATIENCE, || async {
        let pods = app.get("/api/v1/pods").await.body;
        pods["data"][0]["name"] == format!("hft-{id}") && pods["data"][0]["phase"] == "Running"
    })
    .await;

    // A restart replaces both pods: new uids.
    let restart = app
        .put(
            &format!("/api/v1/status/{id}?need_restart=true"),
            json!({"VWAP": true, "TWAP": false, "HFT": true}),
        )
        .await;
    assert_eq!(restart.status, StatusCode::OK);
    let report = app.sync().await;
    assert_eq!(
        report["restarted"],
        json!([format!("hft-{id}"), format!("vwap-{id}")])
    );
    // On a cluster with a grace period the successors come with a later pass.
    eventually("the restart replaces the pods", PATIENCE, || async {
        let new_vwap = kube.pod(&format!("vwap-{id}")).await;
        new_vwap.is_some_and(|p| p.metadata.uid != vwap.metadata.uid)
            && app.get(&format!("/api/v1/clients/{id}")).await.body["data"]["need_restart"] == false
    })
    .await;

    // One pod's create is refused: the other change is still made, and the next pass catches up.
    let switched = app
        .put_status(id, json!({"VWAP": false, "TWAP": true, "HFT": true}))
        .await;
    assert_eq!(switched.status, StatusCode::OK);
    kube.refuse_creates_of(&format!("twap-{id}")).await;
    let report = app.sync().await;
    assert_eq!(report["deleted"], json!([format!("vwap-{id}")]));
    assert_eq!(
        report["failed"].as_array().map(Vec::len),
        Some(1),
        "{report}"
    );
    kube.accept_creates().await;
    let report = app.sync().await;
    assert_eq!(report["created"], json!([format!("twap-{id}")]));
    eventually("the switched-off pod is gone", PATIENCE, || async {
        kube.managed_pod_names().await == [format!("hft-{id}"), format!("twap-{id}")]
    })
    .await;

    // Deleting the client deletes its pods.
    let deleted = app.delete(&format!("/api/v1/clients/{id}")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    app.sync().await;
    eventually("the client's pods are gone", PATIENCE, || async {
        kube.managed_pod_names().await.is_empty()
    })
    .await;

    // The foreign pod was there all along, and no request of alsy's ever named it.
    assert!(kube.pod(clusters::FOREIGN).await.is_some());
    kube.assert_alsy_never_named(clusters::FOREIGN).await;
    kube.assert_alsy_listed_only_with_its_selector().await;
    app.shutdown().await;
}

async fn a_failed_pod_in_the_cluster_is_replaced(kube: impl Cluster) {
    let app = kube.app().await;
    let id = app
        .create_client_from(&json!({
            "name": "Failing", "version": 1, "image": "ghcr.io/acme/algo:1.0",
            "cpu": "1", "mem": "1Gi", "priority": 1
        }))
        .await;
    app.put_status(id, json!({"VWAP": false, "TWAP": false, "HFT": true}))
        .await;
    app.sync().await;
    let name = format!("hft-{id}");
    let before = kube.pod(&name).await.unwrap().metadata.uid;
    assert!(kube.set_phase(&name, "Failed").await);
    assert!(kube.set_phase(clusters::FOREIGN, "Failed").await);
    // alsy's watch brings the change; nudges are off in this app, so the test runs the pass.
    eventually("alsy sees the pod failed", PATIENCE, || async {
        let pods = app.get("/api/v1/pods").await.body;
        pods["data"][0]["phase"] == "Failed"
    })
    .await;

    let report = app.sync().await;

    assert_eq!(report["restarted"], json!([name.clone()]), "{report}");
    assert_ne!(kube.pod(&name).await.unwrap().metadata.uid, before);
    assert!(
        kube.pod(clusters::FOREIGN).await.is_some(),
        "a failed foreign pod is not alsy's to replace"
    );
    app.shutdown().await;
}

async fn a_restart_answers_at_once_and_the_successor_follows_the_terminating_pod(
    kube: impl Cluster,
) {
    let app = kube.app().await;
    let id = app
        .create_client_from(&json!({
            "name": "Graceful", "version": 1, "image": "ghcr.io/acme/algo:1.0",
            "cpu": "1", "mem": "1Gi", "priority": 1
        }))
        .await;
    let on = json!({"VWAP": true, "TWAP": false, "HFT": false});
    app.put_status(id, &on).await;
    app.sync().await;
    let name = format!("vwap-{id}");
    eventually("the pod runs", PATIENCE, || async {
        app.get("/api/v1/pods").await.body["data"][0]["phase"] == "Running"
    })
    .await;
    let old = kube.pod(&name).await.unwrap();
    kube.set_grace(GRACE).await;

    app.put(&format!("/api/v1/status/{id}?need_restart=true"), &on)
        .await;
    let report = app.sync().await;

    assert_eq!(report["restarted"], json!([name]), "{report}");
    assert_eq!(report["terminating"], json!([name]));
    let pods = app.get("/api/v1/pods").await.body;
    assert_eq!(pods["data"][0]["phase"], "Terminating", "{pods}");
    let client = app.get(&format!("/api/v1/clients/{id}")).await.body;
    assert_eq!(client["data"]["need_restart"], true);

    // The watcher's rechecks create the successor once the kubelet has finished the old pod,
    // and only then clear the mark.
    eventually("the restart is acknowledged", PATIENCE, || async {
        let client = app.get(&format!("/api/v1/clients/{id}")).await.body;
        client["data"]["need_restart"] == false
    })
    .await;
    let new = kube.pod(&name).await.expect("the successor exists");
    assert_ne!(new.metadata.uid, old.metadata.uid);
    // A name holds one pod at a time: the successor exists, so the old pod is gone. No create
    // was tried while it terminated: the first pod's, then the successor's.
    assert_eq!(kube.creates_by_alsy().await, 2);
    let lines = app.logs.lines();
    let begun = lines
        .iter()
        .filter(|l| l.msg.starts_with("pod restart begun"))
        .count();
    let deleted = lines.iter().filter(|l| l.msg == "pod deleted").count();
    assert_eq!((begun, deleted), (1, 0), "one restart, no repeated deletes");
    app.shutdown().await;
}

/// Each scenario on both servers: `kube_scenario::test_server::<case>` and `…::envtest::<case>`.
macro_rules! on_both_servers {
    ($($case:ident),* $(,)?) => {
        mod test_server {
            $(#[tokio::test]
            async fn $case() {
                super::$case(super::TestServer::start().await).await;
            })*
        }
        mod envtest {
            $(#[tokio::test]
            async fn $case() {
                if let Some(cluster) = super::Envtest::start().await {
                    super::$case(cluster).await;
                }
            })*
        }
    };
}

on_both_servers!(
    clients_switches_restarts_and_deletes_become_pods_in_the_cluster,
    a_failed_pod_in_the_cluster_is_replaced,
    a_restart_answers_at_once_and_the_successor_follows_the_terminating_pod,
);

/// Starts alsy on `kubeconfig` with short Kubernetes timeouts.
async fn alsy_on(kubeconfig: &std::path::Path) -> TestApp {
    // The kubeconfig is named by ALSY__K8S__KUBECONFIG, not KUBECONFIG: the environment is
    // process-wide and tests run in parallel. alsy's own wiring loads it.
    TestApp::builder()
        .kubernetes(kubeconfig)
        .env("ALSY__K8S__REQUEST_TIMEOUT", "2s")
        .spawn()
        .await
}
