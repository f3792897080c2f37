//! A stand-in kubelet for one namespace of the envtest API server, which has no scheduler and no
//! kubelet of its own. It watches the namespace's pods and does the three things a node would that
//! alsy can see: binds each new pod to [`NODE_NAME`] (`pods/NAME/binding`), reports it `Running`
//! (`pods/NAME/status`), and finishes a deletion once the grace period the test chose has passed
//! (`DELETE` with `gracePeriodSeconds: 0` and the pod's uid as precondition, as a kubelet does
//! when the containers have stopped). A test can also set a pod's phase (`Failed`, say).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions};
use kube::api::{WatchEvent, WatchParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// The node every pod is bound to.
pub const NODE_NAME: &str = "envtest-node";

/// How long a deleted pod stays terminating: `None`, for ever (a dead node's kubelet).
type Grace = Arc<Mutex<Option<Duration>>>;

/// The running stand-in kubelet; stops when dropped (or when the test's runtime ends).
pub struct StandInKubelet {
    pods: Api<Pod>,
    grace: Grace,
    task: JoinHandle<()>,
}

impl StandInKubelet {
    /// Starts on the pods of `namespace`; deletions finish `grace` after they were asked for.
    pub fn start(client: Client, namespace: &str, grace: Duration) -> StandInKubelet {
        let pods: Api<Pod> = Api::namespaced(client, namespace);
        let grace: Grace = Arc::new(Mutex::new(Some(grace)));
        let task = tokio::spawn(run(pods.clone(), grace.clone()));
        StandInKubelet { pods, grace, task }
    }

    /// Changes the grace period of deletions asked for from now on; `None`: they never finish.
    pub fn set_grace(&self, grace: Option<Duration>) {
        *self.grace.lock().unwrap_or_else(PoisonError::into_inner) = grace;
    }

    /// Reports pod `name` in `phase` (`Failed`, `Succeeded`, `Running`); false if it is not there.
    pub async fn set_phase(&self, name: &str, phase: &str) -> bool {
        let patch = Patch::Merge(json!({"status": {"phase": phase}}));
        self.pods
            .patch_status(name, &PatchParams::default(), &patch)
            .await
            .is_ok()
    }
}

impl Drop for StandInKubelet {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// List, then watch from the list's version; after an expired version or a failed call, again.
async fn run(pods: Api<Pod>, grace: Grace) {
    let mut finishing = HashSet::new();
    loop {
        let list = match pods.list(&ListParams::default()).await {
            Ok(list) => list,
            Err(error) => {
                complain("list", &error);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        for pod in list.items {
            handle(&pods, pod, &grace, &mut finishing).await;
        }
        let mut version = list.metadata.resource_version.unwrap_or_default();
        'watch: loop {
            let params = WatchParams::default().timeout(60);
            let events = match pods.watch(&params, &version).await {
                Ok(events) => events,
                Err(error) => {
                    complain("watch", &error);
                    break 'watch;
                }
            };
            let mut events = std::pin::pin!(events);
            while let Some(event) = events.next().await {
                match event {
                    Ok(WatchEvent::Added(pod) | WatchEvent::Modified(pod)) => {
                        version = pod.metadata.resource_version.clone().unwrap_or(version);
                        handle(&pods, pod, &grace, &mut finishing).await;
                    }
                    Ok(WatchEvent::Deleted(pod)) => {
                        version = pod.metadata.resource_version.unwrap_or(version);
                    }
                    Ok(WatchEvent::Bookmark(bookmark)) => {
                        version = bookmark.metadata.resource_version;
                    }
                    // 410 Gone: the version expired; start over from a list.
                    Ok(WatchEvent::Error(_)) | Err(_) => break 'watch,
                }
            }
        }
    }
}

/// What a node does about `pod` as it is now.
async fn handle(pods: &Api<Pod>, pod: Pod, grace: &Grace, finishing: &mut HashSet<String>) {
    let meta = &pod.metadata;
    let (Some(name), Some(uid)) = (meta.name.clone(), meta.uid.clone()) else {
        return;
    };
    if meta.deletion_timestamp.is_some() {
        if finishing.insert(uid.clone()) {
            let grace = *grace.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(grace) = grace {
                tokio::spawn(finish_deletion(pods.clone(), name, uid, grace));
            }
        }
        return;
    }
    let node = pod.spec.as_ref().and_then(|spec| spec.node_name.as_deref());
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    match node {
        None => {
            let binding = json!({
                "apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
                "target": {"apiVersion": "v1", "kind": "Node", "name": NODE_NAME},
            });
            let bound = pods
                .create_subresource::<Value, Value>(
                    "binding",
                    &name,
                    &PostParams::default(),
                    &binding,
                )
                .await;
            if let Err(error) = bound {
                complain(&format!("bind {name}"), &error);
            }
        }
        Some(NODE_NAME) if phase.is_none_or(|p| p == "Pending") => {
            // Only if nothing changed since this event: a phase a test set meanwhile wins.
            let patch = Patch::Merge(json!({
                "metadata": {"resourceVersion": meta.resource_version},
                "status": {"phase": "Running"},
            }));
            let started = pods
                .patch_status(&name, &PatchParams::default(), &patch)
                .await;
            match started {
                Err(kube::Error::Api(status)) if status.code == 409 || status.code == 404 => {}
                Err(error) => complain(&format!("start {name}"), &error),
                Ok(_) => {}
            }
        }
        Some(_) => {}
    }
}

/// After `grace`, removes the pod for good, unless a newer pod has taken its name.
async fn finish_deletion(pods: Api<Pod>, name: String, uid: String, grace: Duration) {
    tokio::time::sleep(grace).await;
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: Some(uid),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match pods.delete(&name, &params).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => {}
        Err(error) => complain(&format!("finish the deletion of {name}"), &error),
    }
}

/// The stand-in kubelet has no one to report to but the test's output.
fn complain(what: &str, error: &kube::Error) {
    eprintln!("stand-in kubelet: {what}: {error}");
}
