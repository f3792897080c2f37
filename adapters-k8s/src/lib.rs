//! alsy's Kubernetes adapter: the [`alsy_app::PodRuntime`] port over the pods API, with kube and
//! k8s-openapi.
//!
//! [`pod_manifest`] turns a domain `DesiredPod` into the pod README.md shows in "What a pod looks
//! like" (a pure function), meeting the Pod Security Standard of the settings ([`PodSecurity`],
//! `restricted` by default); [`KubeRuntime`] lists, creates, deletes and restarts those pods in one
//! namespace, seeing only the ones labelled `app.kubernetes.io/managed-by=alsy`. A watch keeps
//! those pods in a lean local store (`watch.rs`, `store.rs`) that answers `list` and feeds the
//! change feed. It depends on the app and domain crates only; `bin` chooses it with
//! `ALSY__RUNTIME__KIND=kubernetes`.

mod connect;
mod errors;
mod manifest;
mod rate_limit;
mod retry_after;
mod runtime;
mod settings;
mod store;
mod watch;

pub use errors::KubeError;
pub use manifest::{
    ALGORITHM_LABEL, CLIENT_ID_LABEL, CONTAINER_NAME, MANAGED_BY_LABEL, MANAGED_BY_VALUE,
    MANAGED_SELECTOR, NAME_LABEL, PRIORITY_ANNOTATION, RESTART_MARK_ANNOTATION, VERSION_LABEL,
    is_managed, pod_manifest,
};
pub use runtime::KubeRuntime;
pub use settings::{KubeSettings, PodSecurity};
