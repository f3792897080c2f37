//! The service end to end on the Kubernetes runtime: alsy started in-process with
//! `ALSY__RUNTIME__KIND=kubernetes` and `ALSY__K8S__KUBECONFIG` naming a kubeconfig the test
//! writes, pointing at the test API server; driven over real HTTP. A pod without alsy's label,
//! present before start, survives every pass untouched.

use alsy::{Overrides, Running};
use alsy_tests::kube_server::{Fault, KubeServer, Verb};
use k8s_openapi::api::core::v1::Pod;
use reqwest::StatusCode;
use serde_json::{Value, json};

const NS: &str = "alsy-e2e";

struct KubeApp {
    server: KubeServer,
    running: Running,
    http: reqwest::Client,
}

impl KubeApp {
    /// The API server already holds `foreign`, a pod that is not alsy's.
    async fn start(foreign: &str) -> KubeApp {
        let server = KubeServer::start().await;
        server.set_created_phase("Running");
        server.insert_foreign_pod(NS, foreign);
        // The kubeconfig is named by ALSY__K8S__KUBECONFIG, not KUBECONFIG: the environment is
        // process-wide and tests run in parallel. alsy's own wiring loads it.
        let kubeconfig = server.write_kubeconfig(NS);
        let env = [
            ("ALSY__STORAGE__KIND", "memory"),
            ("ALSY__RUNTIME__KIND", "kubernetes"),
            (
                "ALSY__K8S__KUBECONFIG",
                kubeconfig.to_str().expect("a UTF-8 temp path"),
            ),
            ("ALSY__HTTP__ADDRESS", "127.0.0.1:0"),
            ("ALSY__SYNC__INTERVAL", "1h"),
            ("ALSY__SYNC__DEBOUNCE", "0s"),
            ("ALSY__K8S__REQUEST_TIMEOUT", "2s"),
            ("ALSY__K8S__RESTART_TIMEOUT", "5s"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let settings = alsy::config::load_from(["alsy"], env).expect("valid settings");
        let log = slog::Logger::root(slog::Discard, slog::o!());
        let running = alsy::start(settings, log, Overrides::default())
            .await
            .expect("alsy starts");
        KubeApp {
            server,
            running,
            http: reqwest::Client::new(),
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let url = format!("{}{path}", self.running.base_url());
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let bytes = response.bytes().await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn sync(&self) -> Value {
        let (status, body) = self.call(reqwest::Method::POST, "/api/v1/sync", None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["data"].clone()
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
    let app = KubeApp::start("vwap-1-legacy").await;
    let put = reqwest::Method::PUT;

    let (status, created) = app
        .call(
            reqwest::Method::POST,
            "/api/v1/clients",
            Some(json!({
                "name": "Jimbo", "version": 3, "image": "ghcr.io/acme/algo:1.0",
                "cpu": "500m", "mem": "512Mi", "priority": 0.5
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["data"]["id"].as_i64().unwrap();
    let switches = json!({"VWAP": true, "TWAP": false, "HFT": true});
    let (status, _) = app
        .call(put.clone(), &format!("/api/v1/status/{id}"), Some(switches))
        .await;
    assert_eq!(status, StatusCode::OK);

    let report = app.sync().await;
    assert_eq!(
        report["created"],
        json!([format!("hft-{id}"), format!("vwap-{id}")])
    );
    assert_eq!(
        app.managed_pod_names(),
        [format!("hft-{id}"), format!("vwap-{id}")]
    );
    let vwap = app.pod(&format!("vwap-{id}")).unwrap();
    let labels = vwap.metadata.labels.clone().unwrap();
    assert_eq!(labels["alsy.io/client-id"], id.to_string());
    assert_eq!(labels["alsy.io/algorithm"], "vwap");
    assert_eq!(labels["alsy.io/version"], "3");
    let (_, pods) = app.call(reqwest::Method::GET, "/api/v1/pods", None).await;
    assert_eq!(pods["data"][0]["name"], format!("hft-{id}"));
    assert_eq!(pods["data"][0]["phase"], "Running");

    // A restart replaces both pods: new uids.
    let (status, _) = app
        .call(
            put.clone(),
            &format!("/api/v1/status/{id}?need_restart=true"),
            Some(json!({"VWAP": true, "TWAP": false, "HFT": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let report = app.sync().await;
    assert_eq!(
        report["restarted"],
        json!([format!("hft-{id}"), format!("vwap-{id}")])
    );
    let new_vwap = app.pod(&format!("vwap-{id}")).unwrap();
    assert_ne!(new_vwap.metadata.uid, vwap.metadata.uid);

    // One pod's API call fails: the other is still done, and the next pass catches up.
    let (status, _) = app
        .call(
            put.clone(),
            &format!("/api/v1/status/{id}"),
            Some(json!({"VWAP": false, "TWAP": true, "HFT": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    app.server.inject(
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
        app.managed_pod_names(),
        [format!("hft-{id}"), format!("twap-{id}")]
    );

    // Deleting the client deletes its pods.
    let (status, _) = app
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/clients/{id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    app.sync().await;
    assert!(app.managed_pod_names().is_empty());

    // The foreign pod was there all along, and no request ever named it.
    assert!(app.pod("vwap-1-legacy").is_some());
    assert!(app.server.requests_for("vwap-1-legacy").is_empty());
    let lists = app
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
    app.running.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_failed_pod_in_the_cluster_is_replaced() {
    let app = KubeApp::start("nginx").await;
    let (_, created) = app
        .call(
            reqwest::Method::POST,
            "/api/v1/clients",
            Some(json!({
                "name": "Failing", "version": 1, "image": "ghcr.io/acme/algo:1.0",
                "cpu": "1", "mem": "1Gi", "priority": 1
            })),
        )
        .await;
    let id = created["data"]["id"].as_i64().unwrap();
    let on = json!({"VWAP": false, "TWAP": false, "HFT": true});
    app.call(
        reqwest::Method::PUT,
        &format!("/api/v1/status/{id}"),
        Some(on),
    )
    .await;
    app.sync().await;
    let name = format!("hft-{id}");
    let before = app.pod(&name).unwrap().metadata.uid;
    assert!(app.server.set_phase(NS, &name, "Failed"));
    app.server.set_phase(NS, "nginx", "Failed");

    let report = app.sync().await;

    assert_eq!(report["restarted"], json!([name.clone()]), "{report}");
    assert_ne!(app.pod(&name).unwrap().metadata.uid, before);
    assert!(
        app.pod("nginx").is_some(),
        "a failed foreign pod is not alsy's to replace"
    );
    app.running.shutdown().await.unwrap();
}
