//! The watch that feeds the pod store (README.md, "Running on Kubernetes"): kube's runtime
//! `watcher` over the managed-by label selector (a paged list, then a watch from the list's
//! version, with bookmarks; a dropped stream resumes from the last version seen, a `410 Gone`
//! starts over with a list) behind kube's default backoff (0.8 s doubling to 30 s, with jitter),
//! into [`PodStore`].
//!
//! The watch reads pods as [`LeanPod`]: only the fields alsy looks at are decoded, so a list of
//! 300k pods never builds 300k full `Pod` objects, and the store keeps less still (see
//! `store.rs`).

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde::Deserialize;
use slog::{Logger, info, warn};

use crate::manifest::{
    MANAGED_BY_LABEL, MANAGED_SELECTOR, RESTART_MARK_ANNOTATION, Unobservable, observe,
};
use crate::store::{PodStore, Seen, version};

/// A pod with only what alsy reads: name, resource version, uid, deletion timestamp, alsy's
/// label, the restart mark annotation, and the phase. Decoded from a full pod, the rest skipped.
#[derive(Debug, Clone, Deserialize)]
#[serde(from = "WirePod")]
pub(crate) struct LeanPod(Pod);

#[derive(Deserialize)]
struct WirePod {
    #[serde(default)]
    metadata: WireMeta,
    #[serde(default)]
    status: Option<WireStatus>,
}

#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct WireMeta {
    name: Option<String>,
    resource_version: Option<String>,
    uid: Option<String>,
    deletion_timestamp: Option<Time>,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct WireStatus {
    #[serde(default)]
    phase: Option<String>,
}

impl From<WirePod> for LeanPod {
    fn from(wire: WirePod) -> LeanPod {
        let WireMeta {
            name,
            resource_version,
            uid,
            deletion_timestamp,
            mut labels,
            mut annotations,
        } = wire.metadata;
        // Only the label that says whose pod it is and the annotation a restart reads: the
        // store need not carry the others.
        let managed = labels.remove_entry(MANAGED_BY_LABEL);
        let mark = annotations.remove_entry(RESTART_MARK_ANNOTATION);
        LeanPod(Pod {
            metadata: ObjectMeta {
                name,
                resource_version,
                uid,
                deletion_timestamp,
                labels: managed.map(|label| BTreeMap::from([label])),
                annotations: mark.map(|mark| BTreeMap::from([mark])),
                ..ObjectMeta::default()
            },
            spec: None,
            status: wire.status.map(|status| PodStatus {
                phase: status.phase,
                ..PodStatus::default()
            }),
        })
    }
}

impl k8s_openapi::Resource for LeanPod {
    const API_VERSION: &'static str = <Pod as k8s_openapi::Resource>::API_VERSION;
    const GROUP: &'static str = <Pod as k8s_openapi::Resource>::GROUP;
    const KIND: &'static str = <Pod as k8s_openapi::Resource>::KIND;
    const VERSION: &'static str = <Pod as k8s_openapi::Resource>::VERSION;
    const URL_PATH_SEGMENT: &'static str = <Pod as k8s_openapi::Resource>::URL_PATH_SEGMENT;
    type Scope = k8s_openapi::NamespaceResourceScope;
}

impl k8s_openapi::Metadata for LeanPod {
    type Ty = ObjectMeta;
    fn metadata(&self) -> &ObjectMeta {
        &self.0.metadata
    }
    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.0.metadata
    }
}

impl LeanPod {
    /// What the store keeps of the pod, under its name; `Err` for a pod alsy must not report
    /// (see [`observe`]).
    pub(crate) fn seen(&self) -> Result<(alsy_domain::PodName, Seen), Unobservable> {
        seen(&self.0)
    }

    /// The pod's resource version, as the store compares them.
    fn version(&self) -> Option<u64> {
        version(self.0.metadata.resource_version.as_deref())
    }
}

/// What the store keeps of `pod`, under its name.
pub(crate) fn seen(pod: &Pod) -> Result<(alsy_domain::PodName, Seen), Unobservable> {
    let observed = observe(pod)?;
    let seen = Seen {
        phase: observed.phase,
        restart_mark: observed.restart_mark,
        version: version(pod.metadata.resource_version.as_deref()),
    };
    Ok((observed.name, seen))
}

/// Feeds `store` from a watch of `pods` for as long as it runs; never ends on its own.
pub(crate) async fn feed(pods: Api<LeanPod>, store: Arc<PodStore>, log: Logger) {
    let config = watcher::Config::default().labels(MANAGED_SELECTOR);
    let mut events = watcher::watcher(pods, config).default_backoff().boxed();
    let mut failing = false;
    while let Some(event) = events.next().await {
        let event = match event {
            Ok(event) => event,
            Err(error) => {
                // The watcher recovers by itself on the next poll, after the backoff; until
                // then the store holds what it last saw.
                warn!(log, "pod watch failed; retrying with backoff (a 410 Gone re-lists)";
                    "error" => %error);
                failing = true;
                continue;
            }
        };
        if std::mem::take(&mut failing) {
            info!(log, "pod watch recovered"; "event" => %event_kind(&event));
        }
        match event {
            Event::Init => store.relist_started(),
            Event::InitApply(pod) => match pod.seen() {
                Ok((name, seen)) => store.relist_item(name, seen),
                Err(why) => ignored(&log, &why),
            },
            Event::InitDone => {
                store.relisted();
                info!(log, "pod store synced from a list"; "pods" => store.len());
            }
            Event::Apply(pod) => match pod.seen() {
                Ok((name, seen)) => store.applied(&name, seen),
                Err(why) => ignored(&log, &why),
            },
            Event::Delete(pod) => match pod.seen() {
                Ok((name, _)) => store.deleted(&name, pod.version()),
                Err(why) => ignored(&log, &why),
            },
        }
    }
}

fn event_kind(event: &Event<LeanPod>) -> &'static str {
    match event {
        Event::Init => "list started",
        Event::InitApply(_) => "listed pod",
        Event::InitDone => "list done",
        Event::Apply(_) => "pod changed",
        Event::Delete(_) => "pod deleted",
    }
}

/// The selector should keep such pods out; never report or touch them.
fn ignored(log: &Logger, why: &Unobservable) {
    match why {
        Unobservable::Foreign => {
            warn!(
                log,
                "the API server sent a pod without alsy's label; ignored"
            )
        }
        Unobservable::BadName(name) => {
            warn!(log, "managed pod name is not a DNS-1123 label; ignored"; "pod" => name)
        }
    }
}
