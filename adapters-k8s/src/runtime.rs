//! [`KubeRuntime`]: the [`PodRuntime`] port over the Kubernetes pods API of one namespace.
//!
//! Every call waits for the client-side rate limit, then is bounded by the request timeout; kube's
//! own retries are off (see [`crate::connect`]), so a pass never stalls on one pod: what fails is
//! retried on the next pass. Nor does a restart wait for a grace period: it deletes the old pod
//! and, unless the API server removed it at once, leaves the successor to a later pass.
//!
//! With the watch on (the default), `list` answers from the pod store once the watch's first list
//! has completed, so a pass that changes nothing sends no request; the answers to creates and
//! deletes go into the store at once, so the next pass sees them without waiting for the watch.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use alsy_app::{PodChanges, PodRuntime, Restarted, RuntimeError};
use alsy_domain::{DesiredPod, ObservedPod, PodName};
use async_trait::async_trait;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use slog::{Logger, debug, warn};
use tokio::task::JoinHandle;

use crate::errors::{CallError, runtime_error};
use crate::manifest::{MANAGED_SELECTOR, Unobservable, is_managed, observe, pod_manifest};
use crate::rate_limit::RateLimiter;
use crate::settings::{KubeSettings, PodSecurity};
use crate::store::{PodStore, version};
use crate::watch::{self, LeanPod, seen};

/// Pods per list page: bounds the size of one answer when thousands of pods run.
const LIST_PAGE: u32 = 500;

/// What a DELETE left behind.
enum Deletion {
    /// The pod is gone (or was already).
    Gone,
    /// The pod is terminating: it goes when its grace period ends.
    Terminating,
}

/// The Kubernetes [`PodRuntime`]: pods in one namespace, labelled as alsy's. Cheap to clone;
/// clones share the rate limit.
#[derive(Clone)]
pub struct KubeRuntime {
    pods: Api<Pod>,
    namespace: String,
    request_timeout: Duration,
    pod_security: PodSecurity,
    limiter: Option<Arc<RateLimiter>>,
    watched: Option<Arc<Watched>>,
    log: Logger,
}

/// The pod store and the watch task feeding it, stopped when the last clone of the runtime goes.
struct Watched {
    store: Arc<PodStore>,
    task: JoinHandle<()>,
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl KubeRuntime {
    /// A runtime over an existing client. Unlike [`KubeRuntime::connect`], it keeps the client's
    /// retry behaviour as built; calls are still rate-limited and bounded by the request timeout.
    /// With `settings.watch`, starts the watch on the current tokio runtime.
    pub fn from_client(
        client: kube::Client,
        namespace: String,
        settings: &KubeSettings,
        log: &Logger,
    ) -> KubeRuntime {
        let log = log.new(slog::o!("component" => "runtime/k8s", "namespace" => namespace.clone()));
        let watched = settings.watch.then(|| {
            let store = Arc::new(PodStore::new());
            let pods = Api::<LeanPod>::namespaced(client.clone(), &namespace);
            let task = tokio::spawn(watch::feed(pods, store.clone(), log.clone()));
            Arc::new(Watched { store, task })
        });
        KubeRuntime {
            pods: Api::namespaced(client, &namespace),
            log,
            namespace,
            request_timeout: settings.request_timeout,
            pod_security: settings.pod_security,
            limiter: RateLimiter::new(settings.qps).map(Arc::new),
            watched,
        }
    }

    /// The namespace the pods live in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// One API call: rate-limited, then bounded by the request timeout.
    async fn call<T>(
        &self,
        request: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, CallError> {
        if let Some(limiter) = &self.limiter {
            limiter.acquire().await;
        }
        match tokio::time::timeout(self.request_timeout, request).await {
            Err(_elapsed) => Err(CallError::TimedOut),
            Ok(answer) => answer.map_err(CallError::Kube),
        }
    }

    fn failed(&self, pod: Option<&PodName>, what: &str, error: CallError) -> RuntimeError {
        runtime_error(pod, what, self.request_timeout, error)
    }

    /// Deletes `name` with the pod's own grace period, and says whether it is gone.
    async fn delete_pod(&self, name: &PodName) -> Result<Deletion, RuntimeError> {
        match self
            .call(self.pods.delete(name.as_str(), &DeleteParams::default()))
            .await
        {
            // The API server answers with the pod: a grace period above zero means it is
            // terminating; zero (a pod that had finished, or was never bound) that it is gone,
            // unless a finalizer holds it, which the create that follows a restart finds out.
            // A bare Status (no pod) means the deletion is done.
            Ok(answer) => {
                let pod = answer.left();
                self.wrote_deleted(name, pod.as_ref());
                let grace = pod
                    .as_ref()
                    .and_then(|pod| pod.metadata.deletion_grace_period_seconds);
                Ok(match grace.unwrap_or(0) > 0 {
                    true => Deletion::Terminating,
                    false => Deletion::Gone,
                })
            }
            Err(error) if error.is_not_found() => {
                debug!(self.log, "pod already gone"; "pod" => name.as_str());
                self.wrote_deleted(name, None);
                Ok(Deletion::Gone)
            }
            Err(error) => Err(self.failed(Some(name), "delete", error)),
        }
    }

    /// After a 409 on create. alsy's own pod under that name (a retried create, another replica's
    /// pass) is success. A pod alsy does not manage is refused: alsy may neither adopt it nor
    /// delete it, so its algorithm cannot run until someone renames or removes that pod, and the
    /// failure must say so instead of passing for a running pod.
    async fn check_existing(&self, name: &PodName) -> Result<(), RuntimeError> {
        let existing = self
            .call(self.pods.get_opt(name.as_str()))
            .await
            .map_err(|error| self.failed(Some(name), "create: reading the existing pod", error))?;
        match existing {
            Some(pod) if is_managed(&pod) => {
                debug!(self.log, "pod already exists"; "pod" => name.as_str());
                Ok(())
            }
            Some(_) => Err(RuntimeError::Rejected {
                pod: Some(name.clone()),
                detail: format!(
                    "create: a pod named {name} already exists in namespace {} and alsy does not \
                     manage it (no label {MANAGED_SELECTOR}); alsy will not adopt or delete it: \
                     rename or remove that pod",
                    self.namespace
                ),
            }),
            // Deleted between the create and the read: the next pass creates it.
            None => Err(RuntimeError::Unavailable {
                pod: Some(name.clone()),
                detail: "create: the pod existed, then was gone when read".into(),
            }),
        }
    }

    /// Puts what the API server answered to a create into the store.
    fn wrote_created(&self, pod: &Pod) {
        if let (Some(watched), Ok((name, seen))) = (&self.watched, seen(pod)) {
            watched.store.wrote(&name, seen);
        }
    }

    /// Puts what the API server answered to a delete of `name` into the store: the pod as it is
    /// now (terminating), or gone (`pod` is `None`: 404 or a bare Status).
    fn wrote_deleted(&self, name: &PodName, pod: Option<&Pod>) {
        let Some(watched) = &self.watched else { return };
        match pod {
            // Deleted at once (no grace period, no finalizer): the answer is its last state.
            Some(pod) if removed(pod) => {
                watched
                    .store
                    .wrote_gone(name, version(pod.metadata.resource_version.as_deref()));
            }
            Some(pod) => {
                if let Ok((name, seen)) = seen(pod) {
                    watched.store.wrote(&name, seen);
                }
            }
            None => watched.store.wrote_gone(name, None),
        }
    }

    /// Every managed pod, asked of the API server page by page.
    async fn list_from_server(&self) -> Result<Vec<ObservedPod>, RuntimeError> {
        let mut observed = Vec::new();
        let mut params = ListParams::default()
            .labels(MANAGED_SELECTOR)
            .limit(LIST_PAGE);
        loop {
            let page = self
                .call(self.pods.list(&params))
                .await
                .map_err(|error| self.failed(None, "list", error))?;
            for pod in &page.items {
                match observe(pod) {
                    Ok(seen) => observed.push(seen),
                    // The selector should have kept it out; never report or touch it.
                    Err(Unobservable::Foreign) => warn!(
                        self.log, "the API server listed a pod without alsy's label; ignored";
                        "pod" => pod.metadata.name.as_deref().unwrap_or_default()
                    ),
                    Err(Unobservable::BadName(name)) => warn!(
                        self.log, "managed pod name is not a DNS-1123 label; ignored";
                        "pod" => name
                    ),
                }
            }
            match page.metadata.continue_.filter(|token| !token.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => return Ok(observed),
            }
        }
    }
}

/// Whether the answer to a delete is the pod's last state: removed at once, as the API server
/// does with a pod that never ran or a grace period of zero, when no finalizer holds it.
fn removed(pod: &Pod) -> bool {
    let finalizers = pod
        .metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| !f.is_empty());
    pod.metadata.deletion_grace_period_seconds.unwrap_or(0) == 0 && !finalizers
}

#[async_trait]
impl PodRuntime for KubeRuntime {
    async fn list(&self) -> Result<Vec<ObservedPod>, RuntimeError> {
        if let Some(watched) = &self.watched {
            // Until the watch's first list completes, wait for it a while rather than list twice.
            let store = &watched.store;
            if let Some(pods) = store.list() {
                return Ok(pods);
            }
            if store.wait_synced(self.request_timeout).await
                && let Some(pods) = store.list()
            {
                return Ok(pods);
            }
        }
        self.list_from_server().await
    }

    async fn list_named(&self, names: &[PodName]) -> Result<Vec<ObservedPod>, RuntimeError> {
        // A client's GET asks for its few pods: look them up in the store rather than copy
        // every managed pod out of it (300,000 pods are a 10-ms copy).
        if let Some(pods) = self.watched.as_ref().and_then(|w| w.store.get(names)) {
            return Ok(pods);
        }
        let mut pods = self.list().await?;
        pods.retain(|pod| names.contains(&pod.name));
        Ok(pods)
    }

    async fn create(&self, pod: &DesiredPod) -> Result<(), RuntimeError> {
        let manifest = pod_manifest(pod, self.pod_security);
        match self
            .call(self.pods.create(&PostParams::default(), &manifest))
            .await
        {
            Ok(created) => {
                self.wrote_created(&created);
                Ok(())
            }
            Err(error) if error.is_already_exists() => self.check_existing(&pod.name).await,
            Err(error) => Err(self.failed(Some(&pod.name), "create", error)),
        }
    }

    async fn delete(&self, name: &PodName) -> Result<(), RuntimeError> {
        self.delete_pod(name).await.map(drop)
    }

    async fn restart(&self, pod: &DesiredPod) -> Result<Restarted, RuntimeError> {
        if let Deletion::Terminating = self.delete_pod(&pod.name).await? {
            debug!(self.log, "old pod terminating; a later pass creates its successor";
                "pod" => pod.name.as_str());
            return Ok(Restarted::OldPodTerminating);
        }
        let manifest = pod_manifest(pod, self.pod_security);
        match self
            .call(self.pods.create(&PostParams::default(), &manifest))
            .await
        {
            Ok(created) => {
                self.wrote_created(&created);
                Ok(Restarted::Replaced)
            }
            // The old pod is still there after all (a finalizer holds it): the successor waits.
            Err(error) if error.is_already_exists() => Ok(Restarted::OldPodTerminating),
            Err(error) => Err(self.failed(Some(&pod.name), "create", error)),
        }
    }

    fn changes(&self) -> Option<PodChanges> {
        self.watched
            .as_ref()
            .map(|watched| watched.store.subscribe())
    }
}
