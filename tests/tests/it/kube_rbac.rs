//! alsy with exactly the permissions `deploy/` grants it, on a real API server that enforces RBAC:
//! `deploy/`'s ServiceAccount, Role and RoleBinding are applied to a fresh namespace (which
//! enforces Pod Security `restricted`, as a production namespace may), a token for the
//! ServiceAccount comes from the TokenRequest API, and the `alsy` binary runs with a kubeconfig
//! holding that token, its own wiring doing the rest. Every pod operation alsy has — create,
//! list, restart, delete — runs, and the API server's audit log shows that none of its requests
//! was forbidden.

use std::path::Path;
use std::time::Duration;

use alsy_tests::envtest::{Envtest, StandInKubelet};
use alsy_tests::fixtures::eventually;
use alsy_tests::process::{AlsyProcess, alsy_binary, free_port};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::PostParams;
use kube::{Api, Client};
use serde_json::{Value, json};

/// Reads `deploy/{file}` as a `T`.
fn manifest<T: serde::de::DeserializeOwned>(file: &str) -> T {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Applies `deploy/`'s ServiceAccount, Role and RoleBinding to `namespace` instead of `alsy`,
/// and returns a token for the ServiceAccount.
async fn deploy_identity(client: &Client, namespace: &str) -> String {
    let create = PostParams::default();
    let mut account: ServiceAccount = manifest("serviceaccount.yaml");
    account.metadata.namespace = Some(namespace.into());
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    accounts.create(&create, &account).await.unwrap();
    let mut role: Role = manifest("role.yaml");
    role.metadata.namespace = Some(namespace.into());
    Api::<Role>::namespaced(client.clone(), namespace)
        .create(&create, &role)
        .await
        .unwrap();
    let mut binding: RoleBinding = manifest("rolebinding.yaml");
    binding.metadata.namespace = Some(namespace.into());
    for subject in binding.subjects.iter_mut().flatten() {
        subject.namespace = Some(namespace.into());
    }
    Api::<RoleBinding>::namespaced(client.clone(), namespace)
        .create(&create, &binding)
        .await
        .unwrap();

    let name = account.metadata.name.unwrap();
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: Vec::new(),
            expiration_seconds: Some(3600),
            ..TokenRequestSpec::default()
        },
        ..TokenRequest::default()
    };
    let answer = accounts
        .create_token_request(&name, &create, &request)
        .await
        .expect("a token through the TokenRequest API");
    answer.status.expect("the token request's status").token
}

/// The `data` of the reply to `request`, which must succeed (`null` for a 204).
async fn data(request: reqwest::RequestBuilder) -> Value {
    let response = request.send().await.expect("alsy answers");
    let status = response.status();
    let text = response.text().await.expect("a body");
    assert!(status.is_success(), "{status}: {text}");
    if text.is_empty() {
        return Value::Null;
    }
    let body: Value = serde_json::from_str(&text).expect("a JSON body");
    body["data"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn alsy_with_deploys_service_account_is_never_forbidden() {
    let binary = alsy_binary();
    let Some(envtest) = Envtest::shared().await else {
        return;
    };
    let restricted = [("pod-security.kubernetes.io/enforce", "restricted")];
    let namespace = envtest.namespace("rbac", &restricted).await;
    let admin = envtest.client().await;
    let token = deploy_identity(&admin, &namespace).await;
    let kubeconfig = envtest.write_kubeconfig(&namespace, &token);
    let _kubelet = StandInKubelet::start(admin.clone(), &namespace, Duration::from_secs(1));

    let kubeconfig = kubeconfig.to_str().unwrap();
    let address = format!("127.0.0.1:{}", free_port());
    let env: Vec<(String, String)> = [
        ("ALSY__STORAGE__KIND", "memory"),
        ("ALSY__RUNTIME__KIND", "kubernetes"),
        ("ALSY__K8S__KUBECONFIG", kubeconfig),
        ("ALSY__SYNC__INTERVAL", "1h"),
        ("ALSY__SYNC__DEBOUNCE", "0s"),
        ("ALSY__HTTP__ADDRESS", address.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let alsy = AlsyProcess::start(&binary, &env, &[]);
    let http = reqwest::Client::new();
    let url = |path: &str| format!("http://{address}{path}");
    eventually(
        "alsy answers /api/ready",
        Duration::from_secs(30),
        || async {
            let ready = http.get(url("/api/ready")).send().await;
            ready.is_ok_and(|r| r.status() == 200)
        },
    )
    .await;

    let client = json!({"name": "Ruled", "version": 1, "image": "registry.k8s.io/pause:3.10",
        "cpu": "100m", "mem": "64Mi", "priority": 1});
    let id = data(http.post(url("/api/v1/clients")).body(client.to_string())).await["id"]
        .as_i64()
        .unwrap();
    let all_on = json!({"VWAP": true, "TWAP": true, "HFT": true}).to_string();
    data(
        http.put(url(&format!("/api/v1/status/{id}")))
            .body(all_on.clone()),
    )
    .await;
    let sync = || async { data(http.post(url("/api/v1/sync"))).await };
    let report = sync().await;
    assert_eq!(
        report["created"].as_array().map(Vec::len),
        Some(3),
        "{report}"
    );
    assert_eq!(report["failed"], json!([]), "{report}");
    let pods: Api<Pod> = Api::namespaced(admin.clone(), &namespace);
    eventually("alsy's pods run", Duration::from_secs(30), || async {
        let listed = data(http.get(url("/api/v1/pods"))).await;
        let phases: Vec<&str> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["phase"].as_str().unwrap_or(""))
            .collect();
        phases == ["Running"; 3]
    })
    .await;

    let uids = || async {
        let listed = pods.list(&Default::default()).await.unwrap().items;
        listed
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter_map(|p| p.metadata.uid)
            .collect::<Vec<_>>()
    };
    let before = uids().await;
    let restart = http
        .put(url(&format!("/api/v1/status/{id}?need_restart=true")))
        .body(all_on);
    data(restart).await;
    let report = sync().await;
    assert_eq!(report["failed"], json!([]), "{report}");
    // The restart returns while the old pods terminate (this pass, or the nudged one before it,
    // began it); the watcher's rechecks create the successors once they are gone.
    eventually(
        "the restart replaces the pods",
        Duration::from_secs(30),
        || async {
            let client = data(http.get(url(&format!("/api/v1/clients/{id}")))).await;
            let now = uids().await;
            client["need_restart"] == false
                && now.len() == 3
                && now.iter().all(|uid| !before.contains(uid))
        },
    )
    .await;

    data(http.delete(url(&format!("/api/v1/clients/{id}")))).await;
    let report = sync().await;
    assert_eq!(
        report["deleted"].as_array().map(Vec::len),
        Some(3),
        "{report}"
    );
    assert_eq!(report["failed"], json!([]), "{report}");
    eventually("the pods are gone", Duration::from_secs(30), || async {
        pods.list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    })
    .await;

    // Every request alsy made, as the API server saw it.
    let user = format!("system:serviceaccount:{namespace}:alsy");
    let mut seen = Vec::new();
    eventually(
        "the audit log has alsy's last delete",
        Duration::from_secs(10),
        || {
            seen = envtest
                .audit(&namespace)
                .into_iter()
                .filter(|e| e.user.username == user)
                .collect();
            let deletes = seen.iter().filter(|e| e.verb == "delete").count();
            async move { deletes >= 6 }
        },
    )
    .await;
    let forbidden: Vec<_> = seen
        .iter()
        .filter(|e| e.response_status.as_ref().is_some_and(|s| s.code == 403))
        .collect();
    assert!(forbidden.is_empty(), "forbidden requests: {forbidden:#?}");
    // Every verb alsy sends here (a restart no longer polls the old pod with GETs; a GET follows
    // only a create answered 409, which this run has none of).
    for verb in ["list", "create", "delete"] {
        assert!(
            seen.iter().any(|e| e.verb == verb),
            "no {verb} in {seen:#?}"
        );
    }
    let output = alsy.lines().join("\n");
    assert!(!output.contains("Forbidden"), "{output}");
}
