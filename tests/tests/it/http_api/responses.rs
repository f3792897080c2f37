//! What every response carries (`X-Request-Id`, an access log line), the shapes of pods and pass
//! reports, and the 503s when storage or the pod runtime is down.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use alsy_fake::InMemoryRepository;
use alsy_tests::app::TestApp;
use alsy_tests::logs::LogLine;

#[tokio::test]
async fn every_response_carries_a_request_id_and_one_access_log_line() {
    let app = TestApp::spawn().await;
    let sent = app
        .http
        .get(app.url("/api/health"))
        .header("x-request-id", "trace-me-123");
    let echoed = app.send(sent).await;
    assert_eq!(echoed.request_id(), "trace-me-123");
    let insane = app
        .http
        .get(app.url("/api/health"))
        .header("x-request-id", "x".repeat(65));
    let replaced = app.send(insane).await;
    assert_eq!(replaced.request_id().len(), 36, "a fresh UUID");

    let replies = [
        app.get("/api/health").await,
        app.get("/nowhere").await,
        app.request(Method::PATCH, "/api/v1/sync", None).await,
        app.post("/api/v1/clients", "{").await,
    ];
    for reply in &replies {
        let id = reply.request_id();
        assert!(!id.is_empty(), "{reply:?}");
        let lines: Vec<LogLine> = app
            .logs
            .lines()
            .into_iter()
            .filter(|l| l.msg == "request" && l.get("request_id") == Some(id))
            .collect();
        assert_eq!(lines.len(), 1, "one access line for {id}");
        let line = &lines[0];
        assert_eq!(line.component, "api/http");
        assert_eq!(line.field("status"), reply.status.as_u16());
        for key in ["method", "path", "latency_ms", "remote_addr"] {
            assert!(!line.field(key).is_null(), "{key} missing from {line:?}");
        }
    }
    app.shutdown().await;
}

#[tokio::test]
async fn storage_down_is_503_storage_unavailable() {
    let repo = InMemoryRepository::new();
    let app = TestApp::builder().repository(repo.clone()).spawn().await;
    assert_eq!(app.get("/api/ready").await.status, StatusCode::OK);
    repo.set_unavailable(true);
    app.get("/api/ready")
        .await
        .assert_error(StatusCode::SERVICE_UNAVAILABLE, "storage unavailable");
    let reply = app.get("/api/v1/clients").await;
    reply.assert_error(StatusCode::SERVICE_UNAVAILABLE, "storage unavailable");
    assert!(!reply.message().contains("switched off"), "no internals");
    let sync = app.post("/api/v1/sync", "").await;
    sync.assert_error(StatusCode::SERVICE_UNAVAILABLE, "storage unavailable");
    assert_eq!(sync.body["data"]["outcome"], "failed");
    assert_eq!(app.get("/api/health").await.status, StatusCode::OK);
    app.shutdown().await;
}

#[tokio::test]
async fn a_dead_watcher_makes_the_service_not_ready_and_is_logged_at_error() {
    // Nudges on, so the next write runs a pass in the watcher's own task.
    let app = TestApp::builder()
        .env("ALSY__SYNC__DEBOUNCE", "10ms")
        .spawn()
        .await;
    assert_eq!(app.get("/api/ready").await.status, StatusCode::OK);
    app.runtime().panic_next_lists(1);
    let id = app.create_client("nudger").await;
    app.put_status(id, json!({"VWAP": true, "TWAP": false, "HFT": false}))
        .await;
    alsy_tests::fixtures::eventually(
        "readiness reports the dead watcher",
        std::time::Duration::from_secs(10),
        || async { app.get("/api/ready").await.status == StatusCode::SERVICE_UNAVAILABLE },
    )
    .await;
    app.get("/api/ready")
        .await
        .assert_error(StatusCode::SERVICE_UNAVAILABLE, "watcher not running");
    let died = app.logs.lines().into_iter().any(|l| {
        l.level == "ERROR" && l.msg.starts_with("the watcher died") && l.field("panicked") == true
    });
    assert!(died, "the watcher's death is logged at ERROR");
    assert_eq!(app.get("/api/health").await.status, StatusCode::OK);
    app.shutdown().await;
}

#[tokio::test]
async fn with_the_default_debounce_a_write_is_reconciled_without_asking() {
    let app = TestApp::builder()
        .default_for("ALSY__SYNC__DEBOUNCE")
        .spawn()
        .await;
    let id = app.create_client("nudged").await;
    app.put_status(id, json!({"VWAP": true, "TWAP": false, "HFT": false}))
        .await;
    // The default debounce is 1 s; the deadline only bounds a broken test.
    alsy_tests::fixtures::eventually(
        "the nudged pass created the pod",
        std::time::Duration::from_secs(30),
        || async { app.pod_names() == [format!("vwap-{id}")] },
    )
    .await;
    let last = app.get("/api/v1/sync").await;
    assert_eq!(last.body["data"]["trigger"], "nudge");
    app.shutdown().await;
}

#[tokio::test]
async fn a_runtime_that_refuses_a_call_is_500_with_only_the_request_id_and_the_detail_logged() {
    let app = TestApp::spawn().await;
    app.runtime().reject_next_lists(1);
    let reply = app.get("/api/v1/pods").await;
    reply.assert_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error (request id",
    );
    assert!(
        !reply.message().contains("injected"),
        "no detail in the body"
    );
    let logged = app.logs.lines().into_iter().any(|l| {
        l.level == "ERROR"
            && l.get("request_id") == Some(reply.request_id())
            && l.get("error")
                .is_some_and(|e| e.contains("injected refusal of list"))
    });
    assert!(logged, "the detail is logged under the request id");
    app.shutdown().await;
}

#[tokio::test]
async fn a_sync_pass_outlives_its_callers_disconnect() {
    let app = TestApp::spawn().await;
    let id = app.create_client("abandoned").await;
    app.put_status(id, json!({"VWAP": true, "TWAP": false, "HFT": false}))
        .await;
    let gate = alsy_fake::Gate::new();
    app.runtime().hold_next_list(&gate);
    let caller = tokio::spawn({
        let request = app.http.post(app.url("/api/v1/sync"));
        async move { request.send().await }
    });
    gate.arrived(1).await;
    // The pass is running; the caller goes away (its connection closes), then the pass goes on.
    caller.abort();
    assert!(caller.await.unwrap_err().is_cancelled());
    gate.open();
    alsy_tests::fixtures::eventually(
        "the abandoned pass finished",
        std::time::Duration::from_secs(10),
        || async {
            let last = app.get("/api/v1/sync").await.body["data"].clone();
            last["trigger"] == "request" && last["outcome"] == "completed"
        },
    )
    .await;
    assert_eq!(app.pod_names(), [format!("vwap-{id}")]);
    app.shutdown().await;
}

#[tokio::test]
async fn runtime_down_is_503_pod_runtime_unavailable() {
    let app = TestApp::spawn().await;
    app.runtime().fail_next_lists(2);
    app.get("/api/v1/pods")
        .await
        .assert_error(StatusCode::SERVICE_UNAVAILABLE, "pod runtime unavailable");
    // A pass that cannot list pods says which side failed, with its report.
    let sync = app.post("/api/v1/sync", "").await;
    sync.assert_error(StatusCode::SERVICE_UNAVAILABLE, "pod runtime unavailable");
    assert_eq!(sync.body["data"]["outcome"], "failed");
    assert!(
        sync.body["data"]["error"]
            .as_str()
            .unwrap()
            .starts_with("listing pods")
    );
    app.shutdown().await;
}

#[tokio::test]
async fn pods_and_sync_reports_have_the_contract_shape() {
    let app = TestApp::spawn().await;
    let id = app.create_client("Jimbo").await;
    app.put_status(id, r#"{"VWAP":true,"TWAP":false,"HFT":false}"#)
        .await;
    let sync = app.post("/api/v1/sync", "").await;
    assert_eq!(sync.status, StatusCode::OK);
    let report = &sync.body["data"];
    assert_eq!(report["trigger"], "request");
    assert_eq!(report["outcome"], "completed");
    assert_eq!(report["created"], json!([format!("vwap-{id}")]));
    for key in [
        "started_at",
        "finished_at",
        "duration_ms",
        "deleted",
        "restarted",
        "failed",
    ] {
        assert!(!report[key].is_null(), "{key}");
    }
    assert_eq!(app.get("/api/v1/sync").await.body["data"], *report);
    let pods = app.get("/api/v1/pods").await;
    assert_eq!(
        pods.body["data"],
        json!([{"name": format!("vwap-{id}"), "client_id": id, "algorithm": "VWAP", "phase": "Running"}])
    );
    let deleted = app.delete(&format!("/api/v1/clients/{id}")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(deleted.body, Value::Null);
    app.shutdown().await;
}
