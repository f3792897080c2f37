//! The HTTP API over real HTTP: the envelope, every 4xx of design §4 with malformed, missing,
//! unknown, wrong-typed and oversized input, ids, query parameters, `X-Request-Id`, the access
//! log, 503s when storage or the runtime is down, and the read, write and idle timeouts.
//! This file holds the small harness the three test files share.

mod input;
mod responses;
mod timeouts;

use std::sync::Arc;
use std::time::Duration;

use alsy::config::{LogFormat, LogLevel, LogSettings};
use alsy::logging::MemorySink;
use alsy::{Overrides, Running};
use alsy_fake::{FakePodRuntime, InMemoryRepository, LocalPassLock};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// The service on 127.0.0.1:0 with in-memory storage and a fake runtime the test holds.
struct Api {
    base: String,
    http: reqwest::Client,
    repo: InMemoryRepository,
    runtime: FakePodRuntime,
    logs: MemorySink,
    running: Option<Running>,
}

/// A response: status, headers, body as JSON (`Null` when empty).
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Reply {
    fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or_default()
    }

    fn request_id(&self) -> &str {
        self.headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// An error envelope with this status whose message contains `needle`.
    fn assert_error(&self, status: StatusCode, needle: &str) {
        assert_eq!(self.status, status, "{:?}", self.body);
        assert_eq!(self.body["status"], "error", "{:?}", self.body);
        assert!(
            self.message().contains(needle),
            "message {:?} should contain {needle:?}",
            self.message()
        );
        assert!(!self.request_id().is_empty(), "no X-Request-Id");
    }
}

impl Api {
    async fn start(env: &[(&str, &str)]) -> Api {
        let mut vars = vec![
            ("ALSY__STORAGE__KIND", "memory"),
            ("ALSY__RUNTIME__KIND", "fake"),
            ("ALSY__HTTP__ADDRESS", "127.0.0.1:0"),
            ("ALSY__SYNC__INTERVAL", "1h"),
            ("ALSY__SYNC__DEBOUNCE", "0s"),
        ];
        vars.retain(|(k, _)| !env.iter().any(|(e, _)| e == k));
        vars.extend_from_slice(env);
        let vars = vars.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        let settings = alsy::config::load_from(["alsy"], vars).expect("valid test settings");
        let logs = MemorySink::new();
        let log = alsy::logging::synchronous(
            &LogSettings {
                level: LogLevel::Debug,
                format: LogFormat::Json,
            },
            logs.clone(),
        );
        let repo = InMemoryRepository::new();
        let runtime = FakePodRuntime::new();
        let overrides = Overrides {
            storage: Some((Arc::new(repo.clone()), Arc::new(LocalPassLock::new()))),
            runtime: Some(Arc::new(runtime.clone())),
        };
        let running = alsy::start(settings, log, overrides)
            .await
            .expect("the service starts");
        let api = Api {
            base: running.base_url(),
            http: reqwest::Client::new(),
            repo,
            runtime,
            logs,
            running: Some(running),
        };
        api.startup_pass_done().await;
        api
    }

    fn addr(&self) -> String {
        self.base.trim_start_matches("http://").to_owned()
    }

    /// The watcher's start-up pass has finished, so it won't consume injected faults.
    async fn startup_pass_done(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.get("/api/v1/sync").await.body["data"].is_null() {
            assert!(Instant::now() < deadline, "no start-up pass within 5s");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn send(&self, method: Method, path: &str, body: Option<&str>) -> Reply {
        self.send_with(
            self.http.request(method, format!("{}{path}", self.base)),
            body,
        )
        .await
    }

    async fn send_with(&self, request: reqwest::RequestBuilder, body: Option<&str>) -> Reply {
        let request = match body {
            Some(body) => request.body(body.to_owned()),
            None => request,
        };
        let response = request.send().await.expect("the service answers");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("a body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!(
                    "body is not JSON ({e}): {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: &str) -> Reply {
        self.send(Method::POST, path, Some(body)).await
    }

    async fn put(&self, path: &str, body: &str) -> Reply {
        self.send(Method::PUT, path, Some(body)).await
    }

    async fn create(&self, name: &str) -> i64 {
        let reply = self
            .post("/api/v1/clients", &client(name).to_string())
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        reply.body["data"]["id"].as_i64().expect("an id")
    }

    async fn shutdown(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await.expect("a clean shutdown");
        }
    }
}

fn client(name: &str) -> Value {
    json!({
        "name": name,
        "version": 1,
        "image": "ghcr.io/acme/algo:1.0",
        "cpu": "500m",
        "mem": "512Mi",
        "priority": 0.26
    })
}

fn client_with(field: &str, value: Value) -> String {
    let mut body = client("Jimbo");
    body[field] = value;
    body.to_string()
}

fn client_without(field: &str) -> String {
    let mut body = client("Jimbo");
    body.as_object_mut().map(|o| o.remove(field));
    body.to_string()
}

/// Sends raw bytes on a new connection and reads until the server closes it or `within` passes.
async fn raw_exchange(addr: &str, bytes: &[u8], within: Duration) -> (String, Duration) {
    let mut stream = TcpStream::connect(addr).await.expect("connects");
    let started = Instant::now();
    stream.write_all(bytes).await.expect("writes");
    let text = read_until_closed(&mut stream, within).await;
    (text, started.elapsed())
}

async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> String {
    let mut received = Vec::new();
    let _ = tokio::time::timeout(within, stream.read_to_end(&mut received)).await;
    String::from_utf8_lossy(&received).into_owned()
}

/// Reads one response whose body ends with `end`.
async fn read_response(stream: &mut TcpStream, end: &str) -> String {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(5);
    while !String::from_utf8_lossy(&received).ends_with(end) {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .expect("a response within 5s")
            .expect("reads");
        assert!(
            n > 0,
            "connection closed early: {}",
            String::from_utf8_lossy(&received)
        );
        received.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&received).into_owned()
}
