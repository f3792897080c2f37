//! The pod alsy creates for a [`DesiredPod`] (README.md, "What a pod looks like"), its labels, and
//! how a listed pod is read back into an [`ObservedPod`].

use std::collections::BTreeMap;
use std::time::SystemTime;

use alsy_domain::{DesiredPod, ObservedPod, PodName, PodPhase};

use crate::settings::PodSecurity;
use k8s_openapi::api::core::v1::{
    Capabilities, Container, EnvVar, Pod, PodSecurityContext, PodSpec, ResourceRequirements,
    SeccompProfile, SecurityContext,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;

/// The label every pod alsy manages carries; `list` selects on it and nothing else is touched.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// The value of [`MANAGED_BY_LABEL`] on alsy's pods.
pub const MANAGED_BY_VALUE: &str = "alsy";
/// The label selector `list` sends: `app.kubernetes.io/managed-by=alsy`.
pub const MANAGED_SELECTOR: &str = "app.kubernetes.io/managed-by=alsy";
/// `app.kubernetes.io/name` of alsy's pods.
pub const NAME_LABEL: &str = "app.kubernetes.io/name";
/// The client whose algorithm the pod runs.
pub const CLIENT_ID_LABEL: &str = "alsy.io/client-id";
/// The algorithm's lower-case slug (`vwap`): label values must be DNS-friendly.
pub const ALGORITHM_LABEL: &str = "alsy.io/algorithm";
/// The client's algorithm version.
pub const VERSION_LABEL: &str = "alsy.io/version";
/// The client's priority; an annotation because a float is not a valid label value in general.
pub const PRIORITY_ANNOTATION: &str = "alsy.io/priority";
/// On a pod created for a client's restart mark: the mark's `updated_at` (RFC 3339, to the
/// nanosecond), so that a later pass knows this pod is the replacement ([`DesiredPod::restart_mark`]).
pub const RESTART_MARK_ANNOTATION: &str = "alsy.io/restart-mark";
/// The one container's name.
pub const CONTAINER_NAME: &str = "algorithm";

/// The Kubernetes pod for `pod`: one container `algorithm` running the client's image with
/// requests = limits (Guaranteed QoS), its identity in env, labels and annotation, and a
/// least-privilege security context that passes the Pod Security Standard `security` names (see
/// the README for what is deliberately not set).
pub fn pod_manifest(pod: &DesiredPod, security: PodSecurity) -> Pod {
    let labels = BTreeMap::from([
        (MANAGED_BY_LABEL.to_owned(), MANAGED_BY_VALUE.to_owned()),
        (NAME_LABEL.to_owned(), "alsy-algorithm".to_owned()),
        (CLIENT_ID_LABEL.to_owned(), pod.client_id.to_string()),
        (ALGORITHM_LABEL.to_owned(), pod.algorithm.slug().to_string()),
        (VERSION_LABEL.to_owned(), pod.version.to_string()),
    ]);
    let mut annotations = BTreeMap::from([(
        PRIORITY_ANNOTATION.to_owned(),
        pod.priority.get().to_string(),
    )]);
    // A mark outside jiff's range (years -9999..=9999) cannot come from storage.
    if let Some(mark) = pod.restart_mark.and_then(|m| Timestamp::try_from(m).ok()) {
        annotations.insert(RESTART_MARK_ANNOTATION.to_owned(), mark.to_string());
    }
    let resources = BTreeMap::from([
        ("cpu".to_owned(), Quantity(pod.cpu.as_str().to_owned())),
        ("memory".to_owned(), Quantity(pod.mem.as_str().to_owned())),
    ]);
    let env = [
        ("ALGORITHM", pod.algorithm.as_str().to_owned()),
        ("CLIENT_ID", pod.client_id.to_string()),
        ("CLIENT_VERSION", pod.version.to_string()),
    ]
    .into_iter()
    .map(|(name, value)| EnvVar {
        name: name.to_owned(),
        value: Some(value),
        ..EnvVar::default()
    })
    .collect();
    let container = Container {
        name: CONTAINER_NAME.to_owned(),
        image: Some(pod.image.as_str().to_owned()),
        env: Some(env),
        resources: Some(ResourceRequirements {
            requests: Some(resources.clone()),
            limits: Some(resources),
            ..ResourceRequirements::default()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_owned()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }),
        ..Container::default()
    };
    Pod {
        metadata: ObjectMeta {
            name: Some(pod.name.as_str().to_owned()),
            labels: Some(labels),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: vec![container],
            restart_policy: Some("Always".to_owned()),
            // Algorithms have no business with the Kubernetes API.
            automount_service_account_token: Some(false),
            security_context: Some(pod_security_context(security)),
            ..PodSpec::default()
        }),
        status: None,
    }
}

/// The pod-level security context: the runtime's default seccomp profile, and for `restricted`
/// a non-root numeric user and group (numeric, so the kubelet can check `runAsNonRoot` whatever
/// user name the image declares).
fn pod_security_context(security: PodSecurity) -> PodSecurityContext {
    let seccomp_profile = Some(SeccompProfile {
        type_: "RuntimeDefault".to_owned(),
        ..SeccompProfile::default()
    });
    match security {
        PodSecurity::Restricted {
            run_as_user,
            run_as_group,
        } => PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(i64::from(run_as_user)),
            run_as_group: Some(i64::from(run_as_group)),
            seccomp_profile,
            ..PodSecurityContext::default()
        },
        PodSecurity::Baseline => PodSecurityContext {
            seccomp_profile,
            ..PodSecurityContext::default()
        },
    }
}

/// Whether a pod carries alsy's label: the only pods the runtime reports or touches.
pub fn is_managed(pod: &Pod) -> bool {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|labels| labels.get(MANAGED_BY_LABEL))
        .is_some_and(|value| value == MANAGED_BY_VALUE)
}

/// Why a listed pod is not reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unobservable {
    /// It lacks alsy's label (a server that ignored the selector).
    Foreign,
    /// Its name is not a DNS-1123 label (for example a subdomain with dots).
    BadName(String),
}

/// Reads a listed pod. A pod with a `deletionTimestamp` is `Terminating`, whatever its phase
/// (as `kubectl get pods` shows it). A pod without a status or phase is reported `Pending`: the
/// API server sets `Pending` as soon as it accepts a pod, so a missing phase means "not started
/// yet". An unreadable restart mark reads as none: the pod is then restarted once more, never
/// taken for a replacement it is not.
pub fn observe(pod: &Pod) -> Result<ObservedPod, Unobservable> {
    if !is_managed(pod) {
        return Err(Unobservable::Foreign);
    }
    let raw = pod.metadata.name.as_deref().unwrap_or_default();
    let name = PodName::parse(raw).ok_or_else(|| Unobservable::BadName(raw.to_owned()))?;
    let phase = match &pod.metadata.deletion_timestamp {
        Some(_) => PodPhase::Terminating,
        None => pod
            .status
            .as_ref()
            .and_then(|status| status.phase.as_deref())
            .map_or(PodPhase::Pending, phase_of),
    };
    let restart_mark = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|annotations| annotations.get(RESTART_MARK_ANNOTATION))
        .and_then(|mark| mark.parse::<Timestamp>().ok())
        .map(SystemTime::from);
    Ok(ObservedPod {
        name,
        phase,
        restart_mark,
    })
}

/// Kubernetes' `status.phase`; anything unrecognised is `Unknown`.
fn phase_of(raw: &str) -> PodPhase {
    match raw {
        "Pending" => PodPhase::Pending,
        "Running" => PodPhase::Running,
        "Succeeded" => PodPhase::Succeeded,
        "Failed" => PodPhase::Failed,
        _ => PodPhase::Unknown,
    }
}

#[cfg(test)]
#[path = "manifest_tests.rs"]
mod tests;
