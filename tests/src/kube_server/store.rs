//! The test API server's state: pods per namespace, injected faults, recorded requests, and the
//! semantics of list/get/create/delete as the real API server has them.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ListMeta, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::pod_security::restricted_violations;
use super::selector::Selector;
use super::validate::{Refusal, pod_for_create};
use super::watch::{Change, WatchLog};
use super::{Fault, RecordedRequest, Verb};

/// An answer: HTTP code, JSON body, and for 429 (or an injected throttle) a `Retry-After` in
/// seconds.
#[derive(Debug)]
pub(crate) struct Answer {
    pub code: u16,
    pub body: Value,
    pub retry_after: Option<u32>,
}

impl Answer {
    fn ok(code: u16, body: impl serde::Serialize) -> Answer {
        let body = serde_json::to_value(body).unwrap_or(Value::Null);
        Answer {
            code,
            body,
            retry_after: None,
        }
    }
}

/// A `metav1.Status` failure with the reason the API server uses for `code`.
pub(crate) fn status(code: u16, message: String, name: Option<&str>) -> Answer {
    status_because(code, reason_for(code), message, name)
}

fn reason_for(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "AlreadyExists",
        410 => "Expired",
        422 => "Invalid",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "InternalError",
    }
}

/// A `metav1.Status` failure with `reason` (409 is `Conflict` for a failed precondition, say).
fn status_because(code: u16, reason: &str, message: String, name: Option<&str>) -> Answer {
    let mut body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code,
    });
    if let Some(name) = name {
        body["details"] = json!({"name": name, "kind": "pods"});
    }
    let retry_after = (code == 429).then_some(1);
    Answer {
        code,
        body,
        retry_after,
    }
}

/// The canned failure for an injected `code` on `pod`, with `retry_after` seconds in the header
/// alone when given (a 429 has `Retry-After: 1` anyway).
pub(crate) fn injected_with(code: u16, pod: Option<&str>, retry_after: Option<u32>) -> Answer {
    let mut answer = injected(code, pod);
    if retry_after.is_some() {
        answer.retry_after = retry_after;
    }
    answer
}

/// The canned failure for an injected `code` on `pod`.
pub(crate) fn injected(code: u16, pod: Option<&str>) -> Answer {
    let quoted = pod
        .map(|p| format!("pods \"{p}\""))
        .unwrap_or_else(|| "pods".into());
    let message = match code {
        404 => format!("{quoted} not found"),
        409 => format!("{quoted} already exists"),
        429 => "Too many requests, please try again later.".into(),
        503 => "the server is currently unable to handle the request".into(),
        _ => format!("Internal error occurred: injected HTTP {code}"),
    };
    status(code, message, pod)
}

/// The node every pod of the test server is scheduled on.
const NODE_NAME: &str = "alsy-test-node";

struct Stored {
    pod: Pod,
    /// Set once deleted with a grace period: the pod lingers, terminating, until then.
    gone_at: Option<Instant>,
}

struct Injection {
    verb: Verb,
    pod: Option<String>,
    remaining: usize,
    fault: Fault,
}

/// Requests failed at random (see `KubeServer::fail_randomly`).
struct RandomFailures {
    verbs: Vec<Verb>,
    rate: f64,
    rng: StdRng,
    injected: u64,
}

/// Everything the server knows; behind one mutex.
pub(crate) struct Store {
    pods: BTreeMap<(String, String), Stored>,
    injections: Vec<Injection>,
    random_failures: Option<RandomFailures>,
    pub(crate) requests: Vec<RecordedRequest>,
    pub(crate) latency: Duration,
    pub(crate) created_phase: String,
    pub(crate) grace: Duration,
    pub(crate) ignore_selector: bool,
    /// Namespaces labelled `pod-security.kubernetes.io/enforce=restricted`.
    pub(crate) restricted: std::collections::BTreeSet<String>,
    next_uid: u64,
    resource_version: u64,
    /// The pods with a `gone_at`, so that ending grace periods never walks every pod.
    dying: BTreeMap<(String, String), Instant>,
    /// Every change as a watch event (`watch.rs`).
    pub(crate) watch: WatchLog,
}

impl Store {
    pub(crate) fn new() -> Store {
        Store {
            pods: BTreeMap::new(),
            injections: Vec::new(),
            random_failures: None,
            requests: Vec::new(),
            latency: Duration::ZERO,
            created_phase: "Pending".into(),
            grace: Duration::ZERO,
            ignore_selector: false,
            restricted: Default::default(),
            next_uid: 0,
            resource_version: 1000,
            dying: BTreeMap::new(),
            watch: WatchLog::new(1000),
        }
    }

    /// The resource version of the latest change.
    pub(crate) fn current_version(&self) -> u64 {
        self.resource_version
    }

    /// The pods of `namespace` now, as a watch without a resource version starts with them.
    pub(crate) fn current_pods(&mut self, namespace: &str) -> Vec<Pod> {
        self.pods(namespace)
    }

    pub(crate) fn inject(&mut self, verb: Verb, pod: Option<&str>, times: usize, fault: Fault) {
        let pod = pod.map(str::to_owned);
        self.injections.push(Injection {
            verb,
            pod,
            remaining: times,
            fault,
        });
    }

    pub(crate) fn fail_randomly(&mut self, verbs: &[Verb], rate: f64, seed: u64) {
        self.random_failures = (rate > 0.0).then(|| RandomFailures {
            verbs: verbs.to_vec(),
            rate: rate.min(1.0),
            rng: StdRng::seed_from_u64(seed),
            injected: 0,
        });
    }

    pub(crate) fn random_failures_injected(&self) -> u64 {
        self.random_failures.as_ref().map_or(0, |r| r.injected)
    }

    /// Takes the first injection that applies to this request, if any, else draws a random
    /// failure.
    pub(crate) fn take_fault(&mut self, verb: Verb, pod: Option<&str>) -> Option<Fault> {
        let hit = self.injections.iter_mut().find(|i| {
            i.remaining > 0 && i.verb == verb && (i.pod.is_none() || i.pod.as_deref() == pod)
        });
        if let Some(hit) = hit {
            hit.remaining -= 1;
            return Some(hit.fault.clone());
        }
        let random = self.random_failures.as_mut()?;
        if !random.verbs.contains(&verb) || !random.rng.random_bool(random.rate) {
            return None;
        }
        random.injected += 1;
        Some(Fault::Status(match random.rng.random_bool(0.5) {
            true => 500,
            false => 429,
        }))
    }

    /// Forgets pods whose termination grace period has passed; a watch sees them `DELETED`.
    pub(crate) fn purge(&mut self) {
        let now = Instant::now();
        let over: Vec<(String, String)> = self
            .dying
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(key, _)| key.clone())
            .collect();
        for key in over {
            self.dying.remove(&key);
            if let Some(stored) = self.pods.remove(&key) {
                let version = self.resource_version + 1;
                self.resource_version = version;
                let mut pod = stored.pod;
                pod.metadata.resource_version = Some(version.to_string());
                self.watch.record(Change::Deleted, &key.0, &pod, version);
            }
        }
    }

    fn bump(&mut self) -> String {
        self.resource_version += 1;
        self.resource_version.to_string()
    }

    /// Stores `pod` as if created and scheduled at once: uid, creation time, resource version,
    /// namespace, a node, phase.
    pub(crate) fn admit(&mut self, namespace: &str, mut pod: Pod) -> Pod {
        self.next_uid += 1;
        if let Some(spec) = pod.spec.as_mut() {
            spec.node_name.get_or_insert_with(|| NODE_NAME.to_owned());
        }
        let meta = &mut pod.metadata;
        meta.uid = Some(format!("00000000-0000-4000-8000-{:012x}", self.next_uid));
        meta.namespace = Some(namespace.to_owned());
        meta.creation_timestamp = Some(Time(Timestamp::now()));
        meta.resource_version = Some(self.bump());
        if pod.status.as_ref().and_then(|s| s.phase.as_ref()).is_none() {
            pod.status = Some(PodStatus {
                phase: Some(self.created_phase.clone()),
                ..pod.status.unwrap_or_default()
            });
        }
        let name = pod.metadata.name.clone().unwrap_or_default();
        let key = (namespace.to_owned(), name);
        self.pods.insert(
            key,
            Stored {
                pod: pod.clone(),
                gone_at: None,
            },
        );
        self.watch
            .record(Change::Added, namespace, &pod, self.resource_version);
        pod
    }

    pub(crate) fn pod(&mut self, namespace: &str, name: &str) -> Option<Pod> {
        self.purge();
        let key = (namespace.to_owned(), name.to_owned());
        self.pods.get(&key).map(|s| s.pod.clone())
    }

    pub(crate) fn pods(&mut self, namespace: &str) -> Vec<Pod> {
        self.purge();
        self.pods
            .iter()
            .filter(|((ns, _), _)| ns == namespace)
            .map(|(_, s)| s.pod.clone())
            .collect()
    }

    pub(crate) fn set_phase(&mut self, namespace: &str, name: &str, phase: &str) -> bool {
        self.purge();
        let version = self.bump();
        let key = (namespace.to_owned(), name.to_owned());
        let Some(stored) = self.pods.get_mut(&key) else {
            return false;
        };
        stored
            .pod
            .status
            .get_or_insert_with(PodStatus::default)
            .phase = Some(phase.to_owned());
        stored.pod.metadata.resource_version = Some(version);
        let pod = stored.pod.clone();
        self.watch
            .record(Change::Modified, namespace, &pod, self.resource_version);
        true
    }

    pub(crate) fn list(&mut self, namespace: &str, query: &[(String, String)]) -> Answer {
        self.purge();
        let param = |key: &str| {
            query
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        let selector = match Selector::parse(param("labelSelector").unwrap_or_default()) {
            Ok(_) if self.ignore_selector => Selector::default(),
            Ok(selector) => selector,
            Err(message) => return status(400, message, None),
        };
        let limit = match param("limit").map(str::parse::<usize>) {
            None | Some(Ok(0)) => usize::MAX,
            Some(Ok(limit)) => limit,
            Some(Err(_)) => return status(400, "limit: invalid value".into(), None),
        };
        let after = param("continue").filter(|c| !c.is_empty());
        // From the continue token on, in name order: a page costs its own pods, not the whole store.
        let from = (namespace.to_owned(), after.unwrap_or_default().to_owned());
        let mut matching = self
            .pods
            .range(from..)
            .take_while(|((ns, _), _)| ns == namespace)
            .filter(|((_, name), _)| after.is_none_or(|a| name.as_str() > a))
            .map(|(_, s)| &s.pod)
            .filter(|pod| {
                selector.matches(pod.metadata.labels.as_ref().unwrap_or(&BTreeMap::new()))
            });
        let items: Vec<Pod> = matching.by_ref().take(limit).cloned().collect();
        let more = matching.next().is_some();
        let continue_ = more
            .then(|| items.last().and_then(|p| p.metadata.name.clone()))
            .flatten();
        // As the API server: how many remain is known, and said, only without a selector.
        let remaining = (more && selector == Selector::default()).then(|| {
            let rest = self
                .pods
                .range(from_name(namespace, continue_.as_deref())..)
                .take_while(|((ns, _), _)| ns == namespace);
            rest.count() as i64 - 1
        });
        let metadata = ListMeta {
            continue_,
            remaining_item_count: remaining,
            resource_version: Some(self.resource_version.to_string()),
            self_link: None,
        };
        Answer::ok(
            200,
            json!({"kind": "PodList", "apiVersion": "v1", "metadata": metadata, "items": items}),
        )
    }

    pub(crate) fn get(&mut self, namespace: &str, name: &str) -> Answer {
        match self.pod(namespace, name) {
            Some(pod) => Answer::ok(200, pod),
            None => status(404, format!("pods \"{name}\" not found"), Some(name)),
        }
    }

    pub(crate) fn create(&mut self, namespace: &str, body: &[u8]) -> Answer {
        self.purge();
        let pod = match pod_for_create(body, namespace) {
            Ok(pod) => pod,
            Err(Refusal::BadRequest(message)) => return status(400, message, None),
            Err(Refusal::Invalid(message)) => {
                return status(422, format!("Pod is invalid: {message}"), None);
            }
        };
        let name = pod.metadata.name.clone().unwrap_or_default();
        if self.restricted.contains(namespace)
            && let Some(violations) = restricted_violations(&pod)
        {
            let message = format!(
                "pods \"{name}\" is forbidden: violates PodSecurity \"restricted:latest\": {violations}"
            );
            return status(403, message, Some(&name));
        }
        if self
            .pods
            .contains_key(&(namespace.to_owned(), name.clone()))
        {
            return status(409, format!("pods \"{name}\" already exists"), Some(&name));
        }
        // The API server never takes a client's status or uid on create.
        let mut pod = pod;
        pod.status = None;
        pod.metadata.uid = None;
        Answer::ok(201, self.admit(namespace, pod))
    }

    /// Deletes with the server's grace period, or `gracePeriodSeconds` from DeleteOptions; at
    /// once for a pod that has finished (`Failed`, `Succeeded`), as the API server does. A uid
    /// precondition that does not match is 409 `Conflict`.
    pub(crate) fn delete(&mut self, namespace: &str, name: &str, body: &[u8]) -> Answer {
        self.purge();
        let options = serde_json::from_slice::<Value>(body).unwrap_or(Value::Null);
        let grace = options
            .get("gracePeriodSeconds")
            .and_then(Value::as_u64)
            .map_or(self.grace, Duration::from_secs);
        let expected_uid = options
            .pointer("/preconditions/uid")
            .and_then(Value::as_str);
        let version = self.bump();
        let key = (namespace.to_owned(), name.to_owned());
        let Some(stored) = self.pods.get_mut(&key) else {
            return status(404, format!("pods \"{name}\" not found"), Some(name));
        };
        let uid = stored.pod.metadata.uid.clone().unwrap_or_default();
        if let Some(expected) = expected_uid.filter(|expected| *expected != uid) {
            let message = format!(
                "Operation cannot be fulfilled on Pod \"{name}\": the UID in the precondition \
                 ({expected}) does not match the UID in record ({uid}). The object might have \
                 been deleted and then recreated"
            );
            return status_because(409, "Conflict", message, Some(name));
        }
        let phase = stored.pod.status.as_ref().and_then(|s| s.phase.as_deref());
        let finished = matches!(phase, Some("Failed" | "Succeeded"));
        if grace.is_zero() || finished {
            self.dying.remove(&key);
            let mut pod = self.pods.remove(&key).map(|s| s.pod).unwrap_or_default();
            pod.metadata.resource_version = Some(version);
            pod.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
            pod.metadata.deletion_grace_period_seconds = Some(0);
            self.watch
                .record(Change::Deleted, namespace, &pod, self.resource_version);
            return Answer::ok(200, pod);
        }
        if stored.gone_at.is_none() {
            let gone_at = Instant::now() + grace;
            stored.gone_at = Some(gone_at);
            let meta = &mut stored.pod.metadata;
            let seconds = grace.as_secs().max(1);
            let at = Timestamp::now().checked_add(SignedDuration::from_secs(seconds as i64));
            meta.deletion_timestamp = at.ok().map(Time);
            meta.deletion_grace_period_seconds = Some(seconds as i64);
            meta.resource_version = Some(version);
            let pod = stored.pod.clone();
            self.dying.insert(key, gone_at);
            self.watch
                .record(Change::Modified, namespace, &pod, self.resource_version);
            return Answer::ok(200, pod);
        }
        Answer::ok(200, stored.pod.clone())
    }
}

/// The first key of `namespace` at or after pod `name` (its start without one).
fn from_name(namespace: &str, name: Option<&str>) -> (String, String) {
    (namespace.to_owned(), name.unwrap_or_default().to_owned())
}
