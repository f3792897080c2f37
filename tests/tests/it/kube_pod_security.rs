//! Pod Security admission on a real API server: alsy's pods, as its own wiring builds them, in
//! namespaces labelled `pod-security.kubernetes.io/enforce`. By default they pass `restricted`;
//! with `ALSY__K8S__POD_SECURITY=baseline` a `restricted` namespace refuses them, and the refusal
//! is reported — in the pass's report, in `GET /api/v1/sync` and in the log — naming the policy,
//! as not retryable. A `baseline` namespace admits them.

use std::time::Duration;

use alsy_tests::app::TestApp;
use alsy_tests::envtest::{Envtest, StandInKubelet};
use alsy_tests::fixtures::eventually;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use serde_json::{Value, json};

const ENFORCE: &str = "pod-security.kubernetes.io/enforce";

/// alsy on a fresh namespace enforcing `level`, with `env` on top of the test settings; one
/// client with every algorithm switched on. Returns the app, the namespace and the client's id.
async fn alsy_in(envtest: &Envtest, level: &str, env: &[(&str, &str)]) -> (TestApp, String, i64) {
    let namespace = envtest
        .namespace(&format!("psa-{level}"), &[(ENFORCE, level)])
        .await;
    let mut builder = TestApp::builder().kubernetes(&envtest.write_alsy_kubeconfig(&namespace));
    for (key, value) in env {
        builder = builder.env(key, value);
    }
    let app = builder.spawn().await;
    let id = app.create_client("Guarded").await;
    let switched = app
        .put_status(id, json!({"VWAP": true, "TWAP": true, "HFT": true}))
        .await;
    assert_eq!(switched.status, 200);
    (app, namespace, id)
}

fn names(list: &Value) -> Vec<String> {
    let items = list.as_array().cloned().unwrap_or_default();
    let mut names: Vec<String> = items
        .iter()
        .map(|item| {
            item.as_str()
                .map_or_else(|| item["pod"].to_string(), str::to_owned)
        })
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn alsys_pods_are_admitted_and_run_where_restricted_is_enforced() {
    let Some(envtest) = Envtest::shared().await else {
        return;
    };
    let (app, namespace, id) = alsy_in(envtest, "restricted", &[]).await;
    let client = envtest.client().await;
    let _kubelet = StandInKubelet::start(client.clone(), &namespace, Duration::ZERO);

    let report = app.sync().await;

    assert_eq!(report["failed"], json!([]), "{report}");
    let expected = [
        format!("hft-{id}"),
        format!("twap-{id}"),
        format!("vwap-{id}"),
    ];
    assert_eq!(names(&report["created"]), expected);
    eventually("the pods run", Duration::from_secs(30), || async {
        let pods = app.get("/api/v1/pods").await.body;
        let data = pods["data"].as_array().cloned().unwrap_or_default();
        data.len() == 3 && data.iter().all(|p| p["phase"] == "Running")
    })
    .await;
    let pod = Api::<Pod>::namespaced(client, &namespace)
        .get(&format!("vwap-{id}"))
        .await
        .unwrap();
    let context = pod.spec.unwrap().security_context.unwrap();
    assert_eq!(context.run_as_non_root, Some(true));
    assert_eq!(context.run_as_user, Some(65532));
    app.shutdown().await;
}

#[tokio::test]
async fn baseline_pods_refused_by_a_restricted_namespace_are_reported_naming_the_policy() {
    let Some(envtest) = Envtest::shared().await else {
        return;
    };
    let baseline = [("ALSY__K8S__POD_SECURITY", "baseline")];
    let (app, _namespace, id) = alsy_in(envtest, "restricted", &baseline).await;

    let report = app.sync().await;

    assert_eq!(report["created"], json!([]), "{report}");
    let failed = report["failed"].as_array().cloned().unwrap_or_default();
    assert_eq!(failed.len(), 3, "{report}");
    for failure in &failed {
        assert_eq!(failure["operation"], "create");
        let error = failure["error"].as_str().unwrap();
        assert!(
            error.contains("HTTP 403 Forbidden")
                && error.contains("violates PodSecurity \"restricted:latest\"")
                && error.contains("ALSY__K8S__POD_SECURITY"),
            "{error}"
        );
    }
    let last = app.get("/api/v1/sync").await.body;
    assert_eq!(last["data"]["failed"], report["failed"]);
    let refusal = app
        .logs
        .lines()
        .into_iter()
        .find(|l| {
            l.msg == "pod create failed"
                && l.get("pod_operation") == Some(&format!("<CREATE> vwap-{id}"))
        })
        .expect("an ERROR line for the refused pod");
    assert_eq!(refusal.level, "ERROR");
    assert!(
        refusal
            .get("error")
            .is_some_and(|e| e.contains("violates PodSecurity \"restricted:latest\"")),
        "{refusal:?}"
    );
    assert_eq!(refusal.field("retryable"), &json!(false));
    app.shutdown().await;

    // The same pods are admitted where only baseline is enforced.
    let (app, _namespace, _id) = alsy_in(envtest, "baseline", &baseline).await;
    let report = app.sync().await;
    assert_eq!(report["failed"], json!([]), "{report}");
    assert_eq!(report["created"].as_array().map(Vec::len), Some(3));
    app.shutdown().await;
}
