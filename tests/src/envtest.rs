//! A real Kubernetes API server for the tests, as controller-runtime's envtest runs one: etcd and
//! kube-apiserver from `KUBEBUILDER_ASSETS`, started once per test run by the first test that
//! asks ([`Envtest::shared`]) and killed with SIGKILL when the run ends. Each test works in a fresh
//! namespace of its own ([`Envtest::namespace`]; without the namespace controller a deleted
//! namespace never finishes terminating, so names are never reused). Nothing runs pods: a test that
//! needs them running starts a [`StandInKubelet`].
//!
//! Without `KUBEBUILDER_ASSETS` the tests that need it print `SKIPPED: …` and return, unless
//! `CI=true`, where they fail. The README says how to get the binaries.

mod kubelet;
mod processes;
mod start;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::PostParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};
use serde::Deserialize;
use tokio::sync::OnceCell;

pub use kubelet::{NODE_NAME, StandInKubelet};

use crate::fixtures::skip_unless_ci;

/// The user the tests' own requests (and the stand-in kubelet's) come from.
pub const ADMIN_USER: &str = "alsy-test-admin";
/// The user of [`Envtest::write_alsy_kubeconfig`]: alsy under test, with every permission, and
/// told apart from the test in the audit log.
pub const ALSY_USER: &str = "alsy-under-test";

/// The API server of this test run.
#[derive(Debug)]
pub struct Envtest {
    url: String,
    ca: PathBuf,
    admin_token: String,
    alsy_token: String,
    audit_log: PathBuf,
    dir: PathBuf,
}

/// One request as the API server's audit log recorded it (the fields the tests read).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    /// `get`, `list`, `watch`, `create`, `delete`, `patch`, …
    pub verb: String,
    /// The path and query as sent.
    #[serde(rename = "requestURI")]
    pub request_uri: String,
    /// Who sent it.
    pub user: AuditUser,
    /// The object it was about, if any.
    #[serde(default)]
    pub object_ref: Option<AuditObject>,
    /// The answer.
    #[serde(default)]
    pub response_status: Option<AuditStatus>,
}

/// `user` of an [`AuditEvent`].
#[derive(Debug, Clone, Deserialize)]
pub struct AuditUser {
    /// `system:serviceaccount:NS:NAME`, `alsy-test-admin`, …
    pub username: String,
}

/// `objectRef` of an [`AuditEvent`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AuditObject {
    /// `pods`, `namespaces`, …
    pub resource: String,
    /// `binding`, `status`, … or empty.
    pub subresource: String,
    /// The namespace, empty for cluster-wide objects.
    pub namespace: String,
    /// The object's name, empty for lists.
    pub name: String,
}

/// `responseStatus` of an [`AuditEvent`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AuditStatus {
    /// The HTTP status code.
    pub code: u16,
    /// The refusal's message, for failures.
    pub message: String,
}

static SHARED: OnceCell<Result<Envtest, String>> = OnceCell::const_new();

impl Envtest {
    /// The API server of this run, started on first use. `None`, after a `SKIPPED:` line, when
    /// `KUBEBUILDER_ASSETS` does not name a folder holding `etcd` and `kube-apiserver`; with
    /// `CI=true` that panics instead. Panics if the binaries are there but do not start.
    pub async fn shared() -> Option<&'static Envtest> {
        if let Err(reason) = assets() {
            skip_unless_ci(&reason);
            return None;
        }
        match Envtest::try_shared().await {
            Ok(envtest) => Some(envtest),
            Err(problem) => panic!("{problem}"),
        }
    }

    /// Like [`Envtest::shared`], for a program that is not a test (the bench): says why when
    /// there is no API server.
    pub async fn try_shared() -> Result<&'static Envtest, String> {
        let assets = assets()?;
        let started = SHARED
            .get_or_init(|| async { start::start(&assets).await })
            .await;
        started
            .as_ref()
            .map_err(|problem| format!("the envtest API server did not start: {problem}"))
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The folder holding the run's files (logs, certificates, etcd's data).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A kubeconfig whose current context reaches this API server as `token`'s user, with
    /// `namespace` as the context's namespace.
    pub fn kubeconfig(&self, namespace: &str, token: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\n\
             clusters:\n- name: envtest\n  cluster:\n    server: {url}\n    certificate-authority: {ca}\n\
             users:\n- name: envtest\n  user:\n    token: {token}\n\
             contexts:\n- name: envtest\n  context:\n    cluster: envtest\n    user: envtest\n    namespace: {namespace}\n\
             current-context: envtest\n",
            url = self.url,
            ca = self.ca.display(),
        )
    }

    /// Writes [`Envtest::kubeconfig`] for [`ALSY_USER`] (in `system:masters`) to a fresh file.
    pub fn write_alsy_kubeconfig(&self, namespace: &str) -> PathBuf {
        self.write_kubeconfig(namespace, &self.alsy_token)
    }

    /// Writes [`Envtest::kubeconfig`] for `token` to a fresh file in the run's folder.
    pub fn write_kubeconfig(&self, namespace: &str, token: &str) -> PathBuf {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.join(format!("kubeconfig-{namespace}-{n}.yaml"));
        std::fs::write(&path, self.kubeconfig(namespace, token)).expect("write a kubeconfig");
        path
    }

    /// A kube client for the admin user, on the calling test's runtime (a client must not
    /// outlive the runtime it was made on, so none is shared between tests).
    pub async fn client(&self) -> Client {
        self.try_client("default", &self.admin_token)
            .await
            .expect("a kube client for the envtest API server")
    }

    async fn try_client(&self, namespace: &str, token: &str) -> Result<Client, String> {
        let kubeconfig =
            Kubeconfig::from_yaml(&self.kubeconfig(namespace, token)).map_err(|e| e.to_string())?;
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|e| e.to_string())?;
        Client::try_from(config).map_err(|e| e.to_string())
    }

    /// Creates a namespace of its own for a test, `{prefix}-{n}`, with `labels`; returns its name.
    pub async fn namespace(&self, prefix: &str, labels: &[(&str, &str)]) -> String {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!("{prefix}-{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>();
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some(labels),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(self.client().await)
            .create(&PostParams::default(), &namespace)
            .await
            .expect("create the test namespace");
        name
    }

    /// Every request recorded so far about objects in `namespace` (the audit log is written as
    /// requests complete; a test waits for the one it expects last).
    pub fn audit(&self, namespace: &str) -> Vec<AuditEvent> {
        let text = std::fs::read_to_string(&self.audit_log).unwrap_or_default();
        text.lines()
            .filter_map(|line| serde_json::from_str::<AuditEvent>(line).ok())
            .filter(|event| {
                event
                    .object_ref
                    .as_ref()
                    .is_some_and(|object| object.namespace == namespace)
            })
            .collect()
    }
}

/// `KUBEBUILDER_ASSETS`, if it names a folder with both binaries.
fn assets() -> Result<PathBuf, String> {
    let Some(dir) = std::env::var_os("KUBEBUILDER_ASSETS").map(PathBuf::from) else {
        return Err(
            "KUBEBUILDER_ASSETS is not set (README: \"Tests against a real API \
                    server\" says how to get etcd and kube-apiserver)"
                .into(),
        );
    };
    for binary in ["etcd", "kube-apiserver"] {
        if !dir.join(binary).is_file() {
            return Err(format!(
                "KUBEBUILDER_ASSETS={} holds no {binary}",
                dir.display()
            ));
        }
    }
    Ok(dir)
}
