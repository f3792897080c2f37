//! The service end to end on the Kubernetes runtime: alsy started in-process with
//! `ALSY__RUNTIME__KIND=kubernetes` and `ALSY__K8S__KUBECONFIG` naming a kubeconfig the test
//! writes, pointing at the test API server; driven over real HTTP. A pod without alsy's label,
//! present before start, survives every pass untouched.

use alsy_tests::app::TestApp;
use alsy_tests::kube_server::{Fault, KubeServer, Verb};
use k8s_openapi::api::core::v1::Pod;
use reqwest::StatusCode;
use serde_json::json;

const NS: &str = "alsy-e2e";

/// The test API server and alsy running on it.
struct KubeApp {
    server: KubeServer,
    app: TestApp,
}

impl KubeApp {
    /// The API server already holds `foreign`, a pod that is not alsy's.
    async fn start(foreign: &str) -> KubeApp {
        let server = KubeServer::start().await;
        server.set_created_phase("Running");
        server.insert_foreign_pod(NS, foreign);
        // The kubeconfig is named by ALSY__K8S__KUBECONFIG, not KUBECONFIG: the environment is
        // process-wide and tests run in parallel. alsy's own wiring loads it.
        let app = TestApp::builder()
            .kubernetes(&server.write_kubeconfig(NS))
            .env("ALSY__K8S__REQUEST_TIMEOUT", "2s")
            .env("ALSY__K8S__RESTART_TIMEOUT", "5s")
            .spawn()
            .await;
        KubeApp { server, app }
    }

    fn pod(&self, name: &str) -> Option<Pod> {
        self.server.pod(NS, name)
    }

    fn managed_pod_names(&self) -> Vec<String> {
        let pods = self.server.pods(NS);
        pods.into_iter()
            .filter(alsy_k8s::is_managed)
            .filter_map(|p| p.metadata.name)
            .collect()
    }
}

#[tokio::test]
async fn clients_switches_restarts_and_deletes_become_pods_in_the_cluster() {
    let kube = KubeApp::start("vwap-1-legacy").await;
    let app = &kube.app;

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
        kube.managed_pod_names(),
        [format!("hft-{id}"), format!("vwap-{id}")]
    );
    let vwap = kube.pod(&format!("vwap-{id}")).unwrap();
    let labels = vwap.metadata.labels.clone().unwrap();
    assert_eq!(labels["alsy.io/client-id"], id.to_string());
    assert_eq!(labels["alsy.io/algorithm"], "vwap");
    assert_eq!(labels["alsy.io/version"], "3");
    let pods = app.get("/api/v1/pods").await.body;
    assert_eq!(pods["data"][0]["name"], format!("hft-{id}"));
    assert_eq!(pods["data"][0]["phase"], "Running");

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
    let new_vwap = kube.pod(&format!("vwap-{id}")).unwrap();
    assert_ne!(new_vwap.metadata.uid, vwap.metadata.uid);

    // One pod's API call fails: the other is still done, and the next pass catches up.
    let switched = app
        .put_status(id, json!({"VWAP": false, "TWAP": true, "HFT": true}))
        .await;
    assert_eq!(switched.status, StatusCode::OK);
    kube.server.inject(
        Verb::Create,
        Some(&format!("twap-{id}")),
        1,
        Fault::Status(503),
    );
    let report = app.sync().await;
    assert_eq!(report["deleted"], json!([format!("vwap-{id}")]));
    assert_eq!(
        report["failed"].as_array().map(Vec::len),
        Some(1),
        "{report}"
    );
    let report = app.sync().await;
    assert_eq!(report["created"], json!([format!("twap-{id}")]));
    assert_eq!(
        kube.managed_pod_names(),
        [format!("hft-{id}"), format!("twap-{id}")]
    );

    // Deleting the client deletes its pods.
    let deleted = app.delete(&format!("/api/v1/clients/{id}")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    app.sync().await;
    assert!(kube.managed_pod_names().is_empty());

    // The foreign pod was there all along, and no request ever named it.
    assert!(kube.pod("vwap-1-legacy").is_some());
    assert!(kube.server.requests_for("vwap-1-legacy").is_empty());
    let lists = kube
        .server
        .requests()
        .into_iter()
        .filter(|r| r.verb == Some(Verb::List));
    for list in lists {
        assert_eq!(
            list.param("labelSelector"),
            Some("app.kubernetes.io/managed-by=alsy")
        );
    }
    kube.app.shutdown().await;
}

#[tokio::test]
async fn a_failed_pod_in_the_cluster_is_replaced() {
    let kube = KubeApp::start("nginx").await;
    let app = &kube.app;
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
    let before = kube.pod(&name).unwrap().metadata.uid;
    assert!(kube.server.set_phase(NS, &name, "Failed"));
    kube.server.set_phase(NS, "nginx", "Failed");

    let report = app.sync().await;

    assert_eq!(report["restarted"], json!([name.clone()]), "{report}");
    assert_ne!(kube.pod(&name).unwrap().metadata.uid, before);
    assert!(
        kube.pod("nginx").is_some(),
        "a failed foreign pod is not alsy's to replace"
    );
    kube.app.shutdown().await;
}
