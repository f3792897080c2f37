//! A test Kubernetes API server on 127.0.0.1: the pods API of any namespace (list with
//! `labelSelector`/`limit`/`continue`, get, create, delete) over real HTTP, answering with the real
//! status codes and `metav1.Status` bodies, so kube's error helpers see what a cluster sends.
//!
//! Tests seed it (pods without alsy's label, a phase), slow it down, inject failures for the next
//! N requests of a verb on a pod, make deleted pods linger while terminating, make a namespace
//! enforce Pod Security `restricted`, and read back every request it received.
//!
//! It serves watches as kube-apiserver does (`watch.rs`): events from a resource version, bookmarks,
//! `410 Gone` past its window, a deletion with a grace period as `MODIFIED` then `DELETED`; tests
//! can end every open stream and expire the window.
//! `write_kubeconfig` points kube (or the alsy binary) at it.
//!
//! Like a cluster with a scheduler, it binds every pod to a node as it is created; like the real
//! API server, it deletes a finished (`Failed`, `Succeeded`) pod at once whatever the grace period,
//! honours a uid precondition on delete (409 `Conflict`), and answers an immediate delete with the
//! pod, its `deletionTimestamp` set.

mod http;
mod pod_security;
mod selector;
mod store;
mod validate;
mod watch;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, PodStatus};
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use selector::Selector;

use self::http::{Shared, lock, routes};
use self::store::Store;

/// An operation of the pods API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    /// `GET .../pods`
    List,
    /// `GET .../pods?watch=true`
    Watch,
    /// `GET .../pods/{name}`
    Get,
    /// `POST .../pods`
    Create,
    /// `DELETE .../pods/{name}`
    Delete,
}

/// What an injection does to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this code and a `Status` body with the matching reason (409 `AlreadyExists`,
    /// 404 `NotFound`, 429 `TooManyRequests` with `Retry-After: 1`, 500 `InternalError`, 503 …),
    /// without touching the stored pods.
    Status(u16),
    /// Answer with this code (429 or 503, say) and `Retry-After` of this many seconds, only in the
    /// header as a proxy or an API server under load does; the `Status` body says nothing of it.
    Throttle {
        /// The HTTP code.
        code: u16,
        /// The `Retry-After` header's seconds.
        retry_after: u32,
    },
    /// Wait this long, then answer normally.
    Delay(Duration),
    /// Wait until the gate opens, then answer normally: holds a process's pass at a point the
    /// test chooses, whichever process sends the request.
    Hold(alsy_fake::Gate),
}

/// One request as the server received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// `GET`, `POST`, `DELETE`, …
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query's decoded pairs, in order.
    pub query: Vec<(String, String)>,
    /// The pods API operation, `None` for any other path.
    pub verb: Option<Verb>,
    /// The pod it names: from the path, or for a create from the body's `metadata.name`.
    pub pod: Option<String>,
    /// When it arrived.
    pub at: Instant,
}

impl RecordedRequest {
    /// The value of query parameter `key`.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The running server; stops when dropped.
pub struct KubeServer {
    addr: SocketAddr,
    shared: Shared,
    task: JoinHandle<()>,
    /// The kubeconfigs written for it; removed when the server is dropped.
    kubeconfigs: tempfile::TempDir,
    /// Ends the grace periods on time, so watches see `DELETED` when they end.
    reaper: JoinHandle<()>,
}

impl KubeServer {
    /// Starts on 127.0.0.1 with a free port, on the current tokio runtime.
    pub async fn start() -> KubeServer {
        let shared: Shared = Arc::new(Mutex::new(Store::new()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("the listener has an address");
        let server = warp::serve(routes(shared.clone())).incoming(listener);
        let task = tokio::spawn(server.run());
        let kubeconfigs = tempfile::Builder::new()
            .prefix("alsy-kube-server-")
            .tempdir()
            .expect("a temporary folder for the kubeconfigs");
        let reaper = tokio::spawn(reap(shared.clone()));
        KubeServer {
            addr,
            shared,
            task,
            kubeconfigs,
            reaper,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Writes a kubeconfig whose current context points at this server with `namespace`, and
    /// returns its path: a fresh file in the server's temporary folder, removed with the server
    /// (it points at nothing once the server is gone).
    pub fn write_kubeconfig(&self, namespace: &str) -> PathBuf {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = self.kubeconfigs.path().join(format!("kubeconfig-{n}.yaml"));
        let text = format!(
            "apiVersion: v1\nkind: Config\n\
             clusters:\n- name: alsy-test\n  cluster:\n    server: {url}\n\
             users:\n- name: alsy-test\n  user:\n    token: alsy-test-token\n\
             contexts:\n- name: alsy-test\n  context:\n    cluster: alsy-test\n    user: alsy-test\n    namespace: {namespace}\n\
             current-context: alsy-test\n",
            url = self.url()
        );
        std::fs::write(&path, text).expect("write the kubeconfig");
        path
    }

    /// Makes the next `times` requests of `verb` on `pod` (any pod, and the list, with `None`)
    /// suffer `fault`. Injections apply in the order they were made.
    pub fn inject(&self, verb: Verb, pod: Option<&str>, times: usize, fault: Fault) {
        lock(&self.shared).inject(verb, pod, times, fault);
    }

    /// From now on, fails each request of `verbs` with probability `rate` (0–1), as a flaky API
    /// server: half with 500 `InternalError`, half with 429 `TooManyRequests` and
    /// `Retry-After: 1`. Injections made with [`KubeServer::inject`] come first. `seed` makes the
    /// draws repeatable; `rate` 0 stops it.
    pub fn fail_randomly(&self, verbs: &[Verb], rate: f64, seed: u64) {
        lock(&self.shared).fail_randomly(verbs, rate, seed);
    }

    /// How many requests [`KubeServer::fail_randomly`] has failed so far.
    pub fn random_failures_injected(&self) -> u64 {
        lock(&self.shared).random_failures_injected()
    }

    /// Delays every request by `latency` before it is answered.
    pub fn set_latency(&self, latency: Duration) {
        lock(&self.shared).latency = latency;
    }

    /// The phase new pods get (`Pending` unless set, as a real API server reports a fresh pod).
    pub fn set_created_phase(&self, phase: &str) {
        lock(&self.shared).created_phase = phase.to_owned();
    }

    /// Deleted pods stay, terminating (`deletionTimestamp` set), for `grace` before they go
    /// (zero, the default: they go at once). A `gracePeriodSeconds` in the request wins.
    pub fn set_termination_grace(&self, grace: Duration) {
        lock(&self.shared).grace = grace;
    }

    /// Makes `namespace` enforce Pod Security `restricted`, as the label
    /// `pod-security.kubernetes.io/enforce=restricted` does: a create that breaks it is 403
    /// `Forbidden` with the admission plugin's message.
    pub fn enforce_restricted(&self, namespace: &str) {
        lock(&self.shared).restricted.insert(namespace.to_owned());
    }

    /// Makes list answer every pod of the namespace whatever the label selector says, as a
    /// broken proxy might, to check the client filters on its own.
    pub fn ignore_label_selector(&self, ignore: bool) {
        lock(&self.shared).ignore_selector = ignore;
    }

    /// Stores a pod as if it had been created (uid, timestamps, phase if it has none).
    pub fn insert_pod(&self, namespace: &str, pod: Pod) -> Pod {
        lock(&self.shared).admit(namespace, pod)
    }

    /// Stores a running pod that is not alsy's: no `app.kubernetes.io/managed-by` label.
    pub fn insert_foreign_pod(&self, namespace: &str, name: &str) -> Pod {
        let mut pod = crate::fixtures::foreign_pod(name, "nginx:1.27");
        pod.metadata.labels = Some(BTreeMap::from([("app".to_owned(), name.to_owned())]));
        pod.status = Some(PodStatus {
            phase: Some("Running".into()),
            ..PodStatus::default()
        });
        self.insert_pod(namespace, pod)
    }

    /// Sets a stored pod's `status.phase` (`Failed`, `Running`, …); false if there is no such pod.
    pub fn set_phase(&self, namespace: &str, name: &str, phase: &str) -> bool {
        lock(&self.shared).set_phase(namespace, name, phase)
    }

    /// The stored pod, terminating ones included until their grace period ends.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<Pod> {
        lock(&self.shared).pod(namespace, name)
    }

    /// Every stored pod of the namespace, in name order.
    pub fn pods(&self, namespace: &str) -> Vec<Pod> {
        lock(&self.shared).pods(namespace)
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared).requests.clone()
    }

    /// The requests that named `pod`.
    pub fn requests_for(&self, pod: &str) -> Vec<RecordedRequest> {
        let all = self.requests();
        all.into_iter()
            .filter(|r| r.pod.as_deref() == Some(pod))
            .collect()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        lock(&self.shared).requests.clear();
    }

    /// The requests received since the first `skip` ones (`requests().len()` taken earlier).
    pub fn requests_after(&self, skip: usize) -> Vec<RecordedRequest> {
        lock(&self.shared)
            .requests
            .iter()
            .skip(skip)
            .cloned()
            .collect()
    }

    /// The watch streams opened so far (requests with `watch=true`).
    pub fn watches_opened(&self) -> usize {
        let store = lock(&self.shared);
        store
            .requests
            .iter()
            .filter(|r| r.verb == Some(Verb::Watch))
            .count()
    }

    /// How many watch streams are open now (a watch request held by a fault is not open yet).
    pub fn open_watches(&self) -> usize {
        lock(&self.shared).watch.open_streams()
    }

    /// Ends every open watch stream, as an API server restart or a broken connection would; the
    /// clients' next watch resumes from the last version they saw.
    pub fn drop_watches(&self) {
        lock(&self.shared).watch.drop_all();
    }

    /// Forgets every watch event so far: a watch from an older version than the current one gets
    /// `410 Gone` and the client must list again.
    pub fn expire_watch_history(&self) {
        let mut store = lock(&self.shared);
        let current = store.current_version();
        store.watch.expire(current);
    }

    /// Keeps only the latest `events` watch events (10,000 unless set), as a watch cache does.
    pub fn set_watch_history(&self, events: usize) {
        lock(&self.shared).watch.set_limit(events);
    }

    /// Sends a bookmark at the current resource version to every watch that allows them.
    pub fn send_bookmark(&self) {
        let store = lock(&self.shared);
        store.watch.bookmark(store.current_version());
    }

    /// How often watches that allow bookmarks get one (every minute unless set), for streams
    /// opened from now on.
    pub fn set_bookmark_interval(&self, interval: Duration) {
        lock(&self.shared).watch.bookmark_interval = interval;
    }

    /// The resource version of the latest change.
    pub fn resource_version(&self) -> u64 {
        lock(&self.shared).current_version()
    }
}

/// Removes pods whose grace period has ended, every few milliseconds, as a kubelet would finish
/// them: otherwise they would go only when the next request looks.
async fn reap(shared: Shared) {
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    loop {
        tick.tick().await;
        lock(&shared).purge();
    }
}

impl Drop for KubeServer {
    fn drop(&mut self) {
        self.task.abort();
        self.reaper.abort();
    }
}
