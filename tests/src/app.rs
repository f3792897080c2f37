//! `TestApp`: the real service started in-process on 127.0.0.1:0 and driven over real HTTP, the
//! one harness of every test that talks to the API. `TestApp::builder()` picks what it runs on:
//! in-memory storage wired from `ALSY__STORAGE__KIND` (the default), a PostgreSQL test database,
//! or an `InMemoryRepository` the test holds (to switch it off); the fake pod runtime the test
//! holds (the default) or the Kubernetes runtime of the settings. Its logs are the real JSON lines.
//!
//! The watcher is quiet (no nudges, a one-hour interval, failed operations retried after an hour)
//! and `spawn` returns once its start-up pass has finished: a test runs passes when it wants
//! them, with `POST /api/v1/sync` (which retries every failed operation at once), and so never
//! sleeps to synchronise.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use alsy::{Overrides, Running};
use alsy_app::{ClientRepository, PassLock, PodRuntime};
use alsy_fake::{FakePodRuntime, InMemoryRepository, LocalPassLock};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;

use crate::fixtures::{client_body, eventually};
use crate::logs::Logs;
use crate::postgres::TestDatabase;
use crate::reply::Reply;

/// The service running in this test process.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// A keep-alive HTTP client.
    pub http: reqwest::Client,
    /// Everything the service logged.
    pub logs: Logs,
    runtime: Option<FakePodRuntime>,
    running: Option<Running>,
}

/// What a [`TestApp`] runs on; [`TestAppBuilder::spawn`] starts it.
#[must_use]
pub struct TestAppBuilder {
    env: Vec<(String, String)>,
    repository: Option<InMemoryRepository>,
    runtime: Option<FakePodRuntime>,
}

/// The settings every test app starts with; the builder's `env` overrides them.
const DEFAULT_ENV: [(&str, &str); 8] = [
    ("ALSY__STORAGE__KIND", "memory"),
    ("ALSY__RUNTIME__KIND", "fake"),
    ("ALSY__HTTP__ADDRESS", "127.0.0.1:0"),
    ("ALSY__SYNC__INTERVAL", "1h"),
    ("ALSY__SYNC__DEBOUNCE", "0s"),
    ("ALSY__SYNC__RETRY_BASE", "1h"),
    ("ALSY__SYNC__RETRY_MAX", "1h"),
    ("ALSY__HTTP__SHUTDOWN_TIMEOUT", "5s"),
];

impl TestAppBuilder {
    /// Sets the `ALSY__*` setting `key`, replacing an earlier value.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Leaves the `ALSY__*` setting `key` unset, so its default applies.
    pub fn default_for(mut self, key: &str) -> Self {
        self.env.retain(|(k, _)| k != key);
        self
    }

    /// Storage on `database`, wired by `ALSY__STORAGE__KIND=postgres` as in production.
    pub fn postgres(self, database: &TestDatabase) -> Self {
        self.postgres_url(database.url())
    }

    /// Storage on the PostgreSQL database at `url` (through a proxy, say).
    pub fn postgres_url(self, url: &str) -> Self {
        self.env("ALSY__STORAGE__KIND", "postgres")
            .env("ALSY__STORAGE__URL", url)
            .env("ALSY__STORAGE__READ_TIMEOUT", "2s")
    }

    /// Storage on `repository`, which the test keeps (to make it unavailable, say).
    pub fn repository(mut self, repository: InMemoryRepository) -> Self {
        self.repository = Some(repository);
        self
    }

    /// Pods on `runtime`, which may already hold pods, as after a restart of the service.
    pub fn runtime(mut self, runtime: FakePodRuntime) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// Pods on the Kubernetes runtime alsy's own wiring builds from `kubeconfig`.
    pub fn kubernetes(mut self, kubeconfig: &Path) -> Self {
        self.runtime = None;
        let kubeconfig = kubeconfig.to_str().expect("a UTF-8 kubeconfig path");
        self.env("ALSY__RUNTIME__KIND", "kubernetes")
            .env("ALSY__K8S__KUBECONFIG", kubeconfig)
    }

    /// Starts the service and waits for its start-up pass to finish.
    pub async fn spawn(self) -> TestApp {
        let settings =
            alsy::config::load_from(["alsy"], self.env).expect("test settings are valid");
        let logs = Logs::default();
        let overrides = Overrides {
            storage: self.repository.map(|repo| {
                (
                    Arc::new(repo) as Arc<dyn ClientRepository>,
                    Arc::new(LocalPassLock::new()) as Arc<dyn PassLock>,
                )
            }),
            runtime: self
                .runtime
                .clone()
                .map(|runtime| Arc::new(runtime) as Arc<dyn PodRuntime>),
        };
        let running = alsy::start(settings, logs.logger(), overrides)
            .await
            .expect("the service starts");
        let watcher = running.watcher();
        // Until it has finished, the start-up pass could consume a fault a test injects.
        eventually(
            "the start-up pass finished",
            Duration::from_secs(5),
            || async { watcher.last_report().is_some() },
        )
        .await;
        TestApp {
            base: running.base_url(),
            http: reqwest::Client::new(),
            logs,
            runtime: self.runtime,
            running: Some(running),
        }
    }
}

impl TestApp {
    /// Options for a test app: in-memory storage and a fake runtime unless told otherwise.
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder {
            env: DEFAULT_ENV
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            repository: None,
            runtime: Some(FakePodRuntime::new()),
        }
    }

    /// In-memory storage, the fake runtime, default settings otherwise.
    pub async fn spawn() -> TestApp {
        Self::builder().spawn().await
    }

    /// The service on `database`, wired by `ALSY__STORAGE__KIND=postgres` as in production.
    pub async fn spawn_on_postgres(database: &TestDatabase) -> TestApp {
        Self::builder().postgres(database).spawn().await
    }

    /// The fake pod runtime the service uses, to inspect and to inject faults.
    pub fn runtime(&self) -> &FakePodRuntime {
        self.runtime
            .as_ref()
            .expect("this app runs on the Kubernetes runtime, not the fake one")
    }

    /// `127.0.0.1:PORT`, for raw connections.
    pub fn addr(&self) -> String {
        self.base.trim_start_matches("http://").to_owned()
    }

    /// The full URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends `method` to `path` with an optional raw body, as `application/json`.
    pub async fn request(&self, method: Method, path: &str, body: Option<&str>) -> Reply {
        let mut request = self.http.request(method, self.url(path));
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        self.send(request).await
    }

    /// Sends a request the test built itself (its own headers, say).
    pub async fn send(&self, request: RequestBuilder) -> Reply {
        Reply::read(request.send().await.expect("the service answers")).await
    }

    /// GET `path`.
    pub async fn get(&self, path: &str) -> Reply {
        self.request(Method::GET, path, None).await
    }

    /// POST `body` (a JSON `Value`, or raw text) to `path`.
    pub async fn post(&self, path: &str, body: impl std::fmt::Display) -> Reply {
        self.request(Method::POST, path, Some(&body.to_string()))
            .await
    }

    /// PUT `body` (a JSON `Value`, or raw text) to `path`.
    pub async fn put(&self, path: &str, body: impl std::fmt::Display) -> Reply {
        self.request(Method::PUT, path, Some(&body.to_string()))
            .await
    }

    /// DELETE `path`.
    pub async fn delete(&self, path: &str) -> Reply {
        self.request(Method::DELETE, path, None).await
    }

    /// Creates a client named `name` with a valid body; returns its id.
    pub async fn create_client(&self, name: &str) -> i64 {
        self.create_client_from(&client_body(name)).await
    }

    /// Creates a client from `body`, which must be accepted (201); returns its id.
    pub async fn create_client_from(&self, body: &Value) -> i64 {
        let reply = self.post("/api/v1/clients", body).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        reply.body["data"]["id"].as_i64().expect("data.id")
    }

    /// PUTs `switches` (`{"VWAP": …, "TWAP": …, "HFT": …}`, a JSON `Value` or raw text) as client
    /// `id`'s status.
    pub async fn put_status(&self, id: i64, switches: impl std::fmt::Display) -> Reply {
        self.put(&format!("/api/v1/status/{id}"), switches).await
    }

    /// Runs a reconcile pass now (`POST /api/v1/sync`) and returns its report.
    pub async fn sync(&self) -> Value {
        let reply = self.request(Method::POST, "/api/v1/sync", None).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        reply.body["data"].clone()
    }

    /// Names of the pods the fake runtime holds, sorted.
    pub fn pod_names(&self) -> Vec<String> {
        self.runtime()
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
