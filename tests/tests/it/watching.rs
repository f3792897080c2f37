//! alsy as a controller (README.md, "Watching the pods"), over real HTTP, with nudges on (the
//! default debounce) and the test app's one-hour interval: a managed pod deleted from outside, or
//! turned `Failed`, is replaced by a nudged pass, without a write to alsy's API and long before the
//! interval; a pass that changes nothing sends no request to the API server; a dropped watch and a
//! `410 Gone` recover and heal what happened meanwhile. Each case runs on the fake runtime where it
//! applies (`watching::fake::…`), on the project's test API server (`…::test_server::…`) and on a
//! real kube-apiserver (`…::envtest::…`), the Kubernetes ones through alsy's own Kubernetes wiring.

mod backends;

use std::time::Duration;

use alsy_tests::app::TestApp;
use alsy_tests::fixtures::eventually;
use reqwest::StatusCode;
use serde_json::json;

use self::backends::{Backend, Envtest, Fake, TestServer};

/// How long a pod may take to come back: a debounce (1 s), a pass, the API server's answer, on a
/// busy machine. How fast it comes back is the bench's business.
const PATIENCE: Duration = Duration::from_secs(30);

/// A client with VWAP and HFT on, and its pods running; returns its id.
async fn client_with_pods(app: &TestApp, backend: &impl Backend) -> i64 {
    let id = app.create_client("Watched").await;
    let reply = app
        .put_status(id, json!({"VWAP": true, "TWAP": false, "HFT": true}))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    eventually("the client's pods are running", PATIENCE, || async {
        backend.running(&format!("vwap-{id}")).await && backend.running(&format!("hft-{id}")).await
    })
    .await;
    id
}

/// The triggers of the passes alsy has finished, in order.
fn passes(app: &TestApp) -> Vec<String> {
    app.logs
        .lines()
        .into_iter()
        .filter(|l| l.msg == "pass finished")
        .map(|l| l.field("trigger").as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Waits until a pod named `name` runs again under a new identity, created by a nudged pass.
async fn comes_back(app: &TestApp, backend: &impl Backend, name: &str, old: &str) {
    eventually("the pod is back under a new identity", PATIENCE, || async {
        let now = backend.uid(name).await;
        now.is_some_and(|uid| uid != old) && backend.running(name).await
    })
    .await;
    let passes = passes(app);
    assert_eq!(
        passes.last().map(String::as_str),
        Some("nudge"),
        "a nudged pass, not the interval nor a request: {passes:?}"
    );
}

async fn a_managed_pod_deleted_from_outside_comes_back_without_an_api_write(backend: impl Backend) {
    let app = backend.app().await;
    let id = client_with_pods(&app, &backend).await;
    let name = format!("vwap-{id}");
    let old = backend.uid(&name).await.unwrap();

    backend.delete_from_outside(&name).await;

    comes_back(&app, &backend, &name, &old).await;
    app.shutdown().await;
}

async fn a_failed_pod_is_replaced_without_an_api_write(backend: impl Backend) {
    let app = backend.app().await;
    let id = client_with_pods(&app, &backend).await;
    let name = format!("hft-{id}");
    let old = backend.uid(&name).await.unwrap();

    assert!(backend.fail(&name).await);

    comes_back(&app, &backend, &name, &old).await;
    app.shutdown().await;
}

async fn a_pass_that_changes_nothing_sends_no_request_to_the_api_server(backend: impl Backend) {
    let app = backend.app().await;
    client_with_pods(&app, &backend).await;
    let report = app.sync().await;
    assert_eq!(report["created"], json!([]), "{report}");
    let before = backend.alsys_requests().await;

    for _ in 0..3 {
        let report = app.sync().await;
        assert_eq!(
            (report["created"].clone(), report["deleted"].clone()),
            (json!([]), json!([])),
            "{report}"
        );
    }

    assert_eq!(
        backend.alsys_requests().await,
        before,
        "three passes that change nothing asked nothing of the API server"
    );
    app.shutdown().await;
}

async fn a_dropped_watch_recovers_and_heals_what_happened_meanwhile(backend: impl Backend) {
    let app = backend.app().await;
    let id = client_with_pods(&app, &backend).await;
    let name = format!("vwap-{id}");
    let old = backend.uid(&name).await.unwrap();

    let outage = backend.break_watch(false).await;
    backend.delete_from_outside(&name).await;
    outage.end();

    comes_back(&app, &backend, &name, &old).await;
    app.shutdown().await;
}

async fn a_410_gone_recovers_and_heals_what_happened_meanwhile(backend: impl Backend) {
    let app = backend.app().await;
    let id = client_with_pods(&app, &backend).await;
    let name = format!("vwap-{id}");
    let old = backend.uid(&name).await.unwrap();

    let outage = backend.break_watch(true).await;
    backend.delete_from_outside(&name).await;
    outage.end();

    comes_back(&app, &backend, &name, &old).await;
    app.shutdown().await;
}

/// Each case on the backends named.
macro_rules! on {
    ($module:ident: $backend:ident => $($case:ident),* $(,)?) => {
        mod $module {
            $(#[tokio::test]
            async fn $case() {
                if let Some(backend) = super::$backend::start().await {
                    super::$case(backend).await;
                }
            })*
        }
    };
}

on!(fake: Fake =>
    a_managed_pod_deleted_from_outside_comes_back_without_an_api_write,
    a_failed_pod_is_replaced_without_an_api_write,
);
on!(test_server: TestServer =>
    a_managed_pod_deleted_from_outside_comes_back_without_an_api_write,
    a_failed_pod_is_replaced_without_an_api_write,
    a_pass_that_changes_nothing_sends_no_request_to_the_api_server,
    a_dropped_watch_recovers_and_heals_what_happened_meanwhile,
    a_410_gone_recovers_and_heals_what_happened_meanwhile,
);
on!(envtest: Envtest =>
    a_managed_pod_deleted_from_outside_comes_back_without_an_api_write,
    a_failed_pod_is_replaced_without_an_api_write,
    a_pass_that_changes_nothing_sends_no_request_to_the_api_server,
    a_dropped_watch_recovers_and_heals_what_happened_meanwhile,
);
