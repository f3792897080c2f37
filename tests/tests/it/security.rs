//! Bearer tokens, the image and resource policy, and the audit line, over real HTTP.

use std::path::PathBuf;

use alsy_fake::{FakePodRuntime, InMemoryRepository};
use alsy_http::{Role, file_line};
use alsy_tests::app::TestApp;
use alsy_tests::fixtures::{client_body, client_with};
use reqwest::{Method, StatusCode};
use serde_json::json;

const WRITE_TOKEN: &str = "alsy_test_write_secret";
const READ_TOKEN: &str = "alsy_test_read_secret";

/// A tokens file with a `write` token named `ci` and a `read` token named `grafana`.
fn tokens_file() -> PathBuf {
    let path = std::env::temp_dir().join(format!("alsy-tokens-{}", uuid()));
    let text = format!(
        "# test tokens\n{}\n{}\n",
        file_line("ci", Role::Write, WRITE_TOKEN),
        file_line("grafana", Role::Read, READ_TOKEN)
    );
    std::fs::write(&path, text).expect("writes the tokens file");
    path
}

fn uuid() -> String {
    format!("{}-{:?}", std::process::id(), std::time::SystemTime::now())
        .replace([' ', '{', '}', ':', ','], "")
}

async fn app_with_tokens() -> (TestApp, PathBuf) {
    let path = tokens_file();
    let app = TestApp::builder()
        .env(
            "ALSY__AUTH__TOKENS_FILE",
            path.to_str().expect("UTF-8 path"),
        )
        .spawn()
        .await;
    (app, path)
}

#[tokio::test]
async fn requests_without_a_valid_token_are_401_with_a_bearer_challenge() {
    let (app, path) = app_with_tokens().await;
    let missing = app.get("/api/v1/clients").await;
    missing.assert_error(StatusCode::UNAUTHORIZED, "missing bearer token");
    assert_eq!(missing.headers["www-authenticate"], "Bearer realm=\"alsy\"");
    let wrong = app
        .send(
            app.http
                .get(app.url("/api/v1/clients"))
                .bearer_auth("guess"),
        )
        .await;
    wrong.assert_error(StatusCode::UNAUTHORIZED, "invalid bearer token");
    assert!(
        wrong.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    // Unknown paths too: nothing about the API is told without a token.
    let unknown = app.get("/api/v1/nothing-here").await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    // A write without a token changes nothing.
    let created = app.post("/api/v1/clients", client_body("Jimbo")).await;
    assert_eq!(created.status, StatusCode::UNAUTHORIZED);
    let listed = app
        .send(
            app.http
                .get(app.url("/api/v1/clients"))
                .bearer_auth(READ_TOKEN),
        )
        .await;
    assert_eq!(listed.body["data"]["items"], json!([]));
    let _ = std::fs::remove_file(path);
}

#[tokio::test]
async fn a_read_token_reads_and_gets_403_on_a_write() {
    let (app, path) = app_with_tokens().await;
    let read = app
        .send(
            app.http
                .get(app.url("/api/v1/pods"))
                .bearer_auth(READ_TOKEN),
        )
        .await;
    assert_eq!(read.status, StatusCode::OK, "{:?}", read.body);
    for (method, path) in [
        (Method::POST, "/api/v1/clients"),
        (Method::PUT, "/api/v1/clients/1"),
        (Method::DELETE, "/api/v1/clients/1"),
        (Method::PUT, "/api/v1/status/1"),
        (Method::POST, "/api/v1/sync"),
    ] {
        let request = app
            .http
            .request(method.clone(), app.url(path))
            .bearer_auth(READ_TOKEN)
            .body(client_body("Jimbo").to_string());
        app.send(request)
            .await
            .assert_error(StatusCode::FORBIDDEN, "has role read");
    }
    let written = app
        .send(
            app.http
                .post(app.url("/api/v1/clients"))
                .bearer_auth(WRITE_TOKEN)
                .body(client_body("Jimbo").to_string()),
        )
        .await;
    assert_eq!(written.status, StatusCode::CREATED, "{:?}", written.body);
    let _ = std::fs::remove_file(path);
}

#[tokio::test]
async fn probes_metrics_and_the_description_need_no_token() {
    let (app, path) = app_with_tokens().await;
    for open in ["/api/health", "/api/ready", "/metrics", "/api/openapi.json"] {
        let response = app.http.get(app.url(open)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{open}");
    }
    let _ = std::fs::remove_file(path);
}

#[tokio::test]
async fn the_logs_name_the_token_never_the_secret_and_audit_every_write() {
    let (app, path) = app_with_tokens().await;
    let created = app
        .send(
            app.http
                .post(app.url("/api/v1/clients"))
                .bearer_auth(WRITE_TOKEN)
                .header("x-request-id", "audit-req-1")
                .body(client_body("Jimbo").to_string()),
        )
        .await;
    let id = created.body["data"]["id"].as_i64().unwrap();
    app.send(
        app.http
            .put(app.url(&format!("/api/v1/status/{id}?need_restart=true")))
            .bearer_auth(WRITE_TOKEN)
            .header("x-request-id", "audit-req-2")
            .body(r#"{"VWAP":true,"TWAP":false,"HFT":true}"#),
    )
    .await;
    let lines = app.logs.lines();
    let access = lines
        .iter()
        .find(|l| l.msg == "request" && l.get("request_id") == Some("audit-req-1"))
        .expect("an access log line");
    assert_eq!(access.get("token"), Some("ci"));
    let audits: Vec<_> = lines.iter().filter(|l| l.msg == "audit").collect();
    assert_eq!(audits.len(), 2, "one audit line per write");
    assert_eq!(audits[0].level, "INFO");
    assert_eq!(audits[0].get("action"), Some("client created"));
    assert_eq!(audits[0].get("token"), Some("ci"));
    assert_eq!(audits[0].field("client_id"), &json!(id));
    assert_eq!(
        audits[0].get("changed"),
        Some("name,version,image,cpu,mem,priority")
    );
    assert_eq!(audits[0].get("request_id"), Some("audit-req-1"));
    assert_eq!(audits[1].get("action"), Some("status updated"));
    assert_eq!(
        audits[1].get("changed"),
        Some("VWAP=on,TWAP=off,HFT=on,need_restart")
    );
    assert_eq!(audits[1].get("request_id"), Some("audit-req-2"));
    let everything: String = lines.iter().map(|l| format!("{:?}", l)).collect();
    assert!(!everything.contains(WRITE_TOKEN), "the secret was logged");
    let _ = std::fs::remove_file(path);
}

async fn app_with_policy() -> TestApp {
    TestApp::builder()
        .env(
            "ALSY__POLICY__IMAGES",
            "ghcr.io/acme/, registry.internal:5000/algos/",
        )
        .env("ALSY__POLICY__MAX_CPU", "4")
        .env("ALSY__POLICY__MAX_MEM", "8Gi")
        .spawn()
        .await
}

#[tokio::test]
async fn a_write_that_breaks_the_policy_is_400_naming_the_rule() {
    let app = app_with_policy().await;
    let cases = [
        (
            client_with("image", json!("evil.example/miner:latest")),
            "image: \"evil.example/miner:latest\" is not allowed by the image policy",
        ),
        (
            client_with("image", json!("ghcr.io/acme-evil/x:1")),
            "allowed prefixes: ghcr.io/acme/, registry.internal:5000/algos/",
        ),
        (
            client_with("cpu", json!("64")),
            "cpu: 64 is over the policy's cap of 4 per pod",
        ),
        (
            client_with("mem", json!("512Gi")),
            "mem: 512Gi is over the policy's cap of 8Gi per pod",
        ),
    ];
    for (body, says) in cases {
        app.post("/api/v1/clients", &body)
            .await
            .assert_error(StatusCode::BAD_REQUEST, says);
    }
    let id = app
        .create_client_from(&client_with("cpu", json!("4000m")))
        .await;
    app.put(
        &format!("/api/v1/clients/{id}"),
        client_with("image", json!("nginx")),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "image policy");
    let listed = app.get("/api/v1/clients").await;
    assert_eq!(listed.body["data"]["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_tightened_policy_holds_back_stored_clients_and_leaves_their_pods_alone() {
    let repository = InMemoryRepository::new();
    let runtime = FakePodRuntime::new();
    let open = TestApp::builder()
        .repository(repository.clone())
        .runtime(runtime.clone())
        .spawn()
        .await;
    let evil = open
        .create_client_from(&client_with("image", json!("evil.example/miner:1")))
        .await;
    let good = open.create_client("Good").await;
    open.put_status(evil, json!({"VWAP": true, "TWAP": false, "HFT": false}))
        .await;
    open.sync().await;
    assert_eq!(open.pod_names(), [format!("vwap-{evil}")]);
    open.shutdown().await;

    // Restarted with a policy that the stored client breaks.
    let strict = TestApp::builder()
        .repository(repository)
        .runtime(runtime)
        .env("ALSY__POLICY__IMAGES", "ghcr.io/acme/")
        .spawn()
        .await;
    strict
        .put_status(good, json!({"VWAP": true, "TWAP": false, "HFT": false}))
        .await;
    strict
        .put_status(evil, json!({"VWAP": true, "TWAP": true, "HFT": false}))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "image policy");
    let report = strict.sync().await;
    let held = report["held"].as_array().expect("held clients");
    assert_eq!(held.len(), 1, "{report}");
    assert_eq!(held[0]["client_id"], json!(evil));
    assert!(held[0]["reason"].as_str().unwrap().contains("image policy"));
    // The running pod of the held client is left alone; the good client's pod starts.
    assert_eq!(
        strict.pod_names(),
        [format!("vwap-{evil}"), format!("vwap-{good}")]
    );
    let log = strict.logs.lines();
    assert!(
        log.iter()
            .any(|l| l.msg.starts_with("client held back") && l.field("client_id") == &json!(evil))
    );
    assert!(
        log.iter()
            .any(|l| l.msg == "pass finished" && l.field("held") == &json!(1))
    );

    // Switching everything off is always allowed, and then its pod goes.
    let off = strict
        .put_status(evil, json!({"VWAP": false, "TWAP": false, "HFT": false}))
        .await;
    assert_eq!(off.status, StatusCode::OK, "{:?}", off.body);
    let report = strict.sync().await;
    assert_eq!(report["held"], json!([]));
    assert_eq!(strict.pod_names(), [format!("vwap-{good}")]);
}
