//! `TestApp`: the real service started in-process on 127.0.0.1:0, driven over real HTTP, on
//! in-memory storage or on a PostgreSQL test database, with a fake pod runtime the test holds.
//! The watcher is quiet by default (no nudges, a one-hour interval): a test runs passes when it
//! wants them, with `POST /api/v1/sync`, and so never sleeps to synchronise.

use std::sync::Arc;

use alsy::{Overrides, Running};
use alsy_app::PodRuntime;
use alsy_fake::FakePodRuntime;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::fixtures::CapturedLogs;
use crate::postgres::TestDatabase;

/// The service running in this test process.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// A keep-alive HTTP client.
    pub http: reqwest::Client,
    /// The pod runtime the service uses, to inspect and to inject faults.
    pub runtime: FakePodRuntime,
    /// Everything the service logged.
    pub logs: CapturedLogs,
    running: Option<Running>,
}

/// A response: status, `X-Request-Id`, and the body as JSON (`Value::Null` when empty).
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: StatusCode,
    /// Response headers.
    pub headers: reqwest::header::HeaderMap,
    /// The body parsed as JSON, or `Value::Null` for an empty body.
    pub body: Value,
}

impl Reply {
    /// `body.message` as a string ("" when absent).
    pub fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or_default()
    }
}

/// Settings that put the service on the PostgreSQL database at `url`.
pub fn postgres_env(url: &str) -> [(&'static str, &str); 3] {
    [
        ("ALSY__STORAGE__KIND", "postgres"),
        ("ALSY__STORAGE__URL", url),
        ("ALSY__STORAGE__READ_TIMEOUT", "2s"),
    ]
}

/// The environment every test app starts with; `extra` overrides it.
fn environment(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let base = [
        ("ALSY__STORAGE__KIND", "memory"),
        ("ALSY__RUNTIME__KIND", "fake"),
        ("ALSY__HTTP__ADDRESS", "127.0.0.1:0"),
        ("ALSY__SYNC__INTERVAL", "1h"),
        ("ALSY__SYNC__DEBOUNCE", "0s"),
        ("ALSY__HTTP__SHUTDOWN_TIMEOUT", "5s"),
    ];
    let mut env: Vec<(String, String)> = base
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (key, value) in extra {
        env.retain(|(k, _)| k != key);
        env.push((key.to_string(), value.to_string()));
    }
    env
}

impl TestApp {
    /// In-memory storage, the fake runtime, default settings otherwise.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(&[], FakePodRuntime::new()).await
    }

    /// The service on `database`, wired by `ALSY__STORAGE__KIND=postgres` as in production.
    pub async fn spawn_on_postgres(database: &TestDatabase) -> TestApp {
        Self::spawn_with(&postgres_env(database.url()), FakePodRuntime::new()).await
    }

    /// The service with extra `ALSY__*` settings, running its pods on `runtime` (which may
    /// already hold pods, as after a restart of the service).
    pub async fn spawn_with(env: &[(&str, &str)], runtime: FakePodRuntime) -> TestApp {
        let logs = CapturedLogs::default();
        let settings = alsy::config::load_from(["alsy"].map(String::from), environment(env))
            .expect("test settings are valid");
        let overrides = Overrides {
            storage: None,
            runtime: Some(Arc::new(runtime.clone()) as Arc<dyn PodRuntime>),
        };
        let running = alsy::start(settings, logs.logger(), overrides)
            .await
            .expect("the service starts");
        TestApp {
            base: format!("http://{}", running.local_addr()),
            http: reqwest::Client::new(),
            runtime,
            logs,
            running: Some(running),
        }
    }

    /// Sends a request with an optional raw body.
    pub async fn request(&self, method: Method, path: &str, body: Option<String>) -> Reply {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let response = request.send().await.expect("the service answers");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("a readable body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!("body is JSON ({e}): {}", String::from_utf8_lossy(&bytes))
            })
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    /// GET `path`.
    pub async fn get(&self, path: &str) -> Reply {
        self.request(Method::GET, path, None).await
    }

    /// POST `path` with a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.request(Method::POST, path, Some(body.to_string()))
            .await
    }

    /// PUT `path` with a JSON body.
    pub async fn put(&self, path: &str, body: &Value) -> Reply {
        self.request(Method::PUT, path, Some(body.to_string()))
            .await
    }

    /// DELETE `path`.
    pub async fn delete(&self, path: &str) -> Reply {
        self.request(Method::DELETE, path, None).await
    }

    /// Creates a client named `name` with a valid body; returns its id.
    pub async fn create_client(&self, name: &str) -> i64 {
        let reply = self.post("/api/v1/clients", &client_body(name)).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        reply.body["data"]["id"].as_i64().expect("data.id")
    }

    /// Runs a reconcile pass now (`POST /api/v1/sync`) and returns its report.
    pub async fn sync(&self) -> Value {
        let reply = self.request(Method::POST, "/api/v1/sync", None).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        reply.body["data"].clone()
    }

    /// Names of the pods the fake runtime holds, sorted.
    pub fn pod_names(&self) -> Vec<String> {
        self.runtime
            .pods()
            .into_iter()
            .map(|p| p.spec.name.to_string())
            .collect()
    }

    /// Shuts the service down gracefully, as SIGTERM would.
    pub async fn shutdown(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await.expect("graceful shutdown");
        }
    }
}

/// A valid client body for `name`.
pub fn client_body(name: &str) -> Value {
    json!({
        "name": name,
        "version": 1,
        "image": "ghcr.io/acme/algo:1.0",
        "cpu": "500m",
        "mem": "512Mi",
        "priority": 0.26
    })
}
