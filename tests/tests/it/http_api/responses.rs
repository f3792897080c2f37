//! What every response carries (`X-Request-Id`, an access log line), the shapes of pods and pass
//! reports, and the 503s when storage or the pod runtime is down.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::Api;

#[tokio::test]
async fn every_response_carries_a_request_id_and_one_access_log_line() {
    let api = Api::start(&[]).await;
    let sent = api
        .http
        .get(format!("{}/api/health", api.base))
        .header("x-request-id", "trace-me-123");
    let echoed = api.send_with(sent, None).await;
    assert_eq!(echoed.request_id(), "trace-me-123");
    let insane = api
        .http
        .get(format!("{}/api/health", api.base))
        .header("x-request-id", "x".repeat(65));
    let replaced = api.send_with(insane, None).await;
    assert_eq!(replaced.request_id().len(), 36, "a fresh UUID");

    let replies = [
        api.get("/api/health").await,
        api.get("/nowhere").await,
        api.send(Method::PATCH, "/api/v1/sync", None).await,
        api.post("/api/v1/clients", "{").await,
    ];
    for reply in &replies {
        let id = reply.request_id();
        assert!(!id.is_empty(), "{reply:?}");
        let lines: Vec<Value> = api
            .logs
            .json_lines()
            .into_iter()
            .filter(|l| l["msg"] == "request" && l["request_id"] == id)
            .collect();
        assert_eq!(lines.len(), 1, "one access line for {id}");
        let line = &lines[0];
        assert_eq!(line["component"], "api/http");
        assert_eq!(line["status"], reply.status.as_u16());
        for key in ["method", "path", "latency_ms", "remote_addr"] {
            assert!(!line[key].is_null(), "{key} missing from {line}");
        }
    }
    api.shutdown().await;
}

#[tokio::test]
async fn storage_down_is_503_storage_unavailable() {
    let api = Api::start(&[]).await;
    assert_eq!(api.get("/api/ready").await.status, StatusCode::OK);
    api.repo.set_unavailable(true);
    api.get("/api/ready")
        .await
        .assert_error(StatusCode::SERVICE_UNAVAILABLE, "storage unavailable");
    let reply = api.get("/api/v1/clients").await;
    reply.assert_error(StatusCode::SERVICE_UNAVAILABLE, "storage unavailable");
    assert!(!reply.message().contains("switched off"), "no internals");
    let sync = api.post("/api/v1/sync", "").await;
    sync.assert_error(StatusCode::SERVICE_UNAVAILABLE, "storage unavailable");
    assert_eq!(sync.body["data"]["outcome"], "failed");
    assert_eq!(api.get("/api/health").await.status, StatusCode::OK);
    api.shutdown().await;
}

#[tokio::test]
async fn runtime_down_is_503_pod_runtime_unavailable() {
    let api = Api::start(&[]).await;
    api.runtime.fail_next_lists(1);
    api.get("/api/v1/pods")
        .await
        .assert_error(StatusCode::SERVICE_UNAVAILABLE, "pod runtime unavailable");
    api.shutdown().await;
}

#[tokio::test]
async fn pods_and_sync_reports_have_the_contract_shape() {
    let api = Api::start(&[]).await;
    let id = api.create("Jimbo").await;
    api.put(
        &format!("/api/v1/status/{id}"),
        r#"{"VWAP":true,"TWAP":false,"HFT":false}"#,
    )
    .await;
    let sync = api.post("/api/v1/sync", "").await;
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
    assert_eq!(api.get("/api/v1/sync").await.body["data"], *report);
    let pods = api.get("/api/v1/pods").await;
    assert_eq!(
        pods.body["data"],
        json!([{"name": format!("vwap-{id}"), "client_id": id, "algorithm": "VWAP", "phase": "Running"}])
    );
    let deleted = api
        .send(Method::DELETE, &format!("/api/v1/clients/{id}"), None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(deleted.body, Value::Null);
    api.shutdown().await;
}
