//! The Kubernetes runtime's settings (`ALSY__K8S__*`), with their defaults.

use std::time::Duration;

/// How the runtime talks to the API server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeSettings {
    /// Namespace of the pods (`ALSY__K8S__NAMESPACE`); `None`: the kubeconfig context's
    /// namespace, in-cluster the service account's, else `default`.
    pub namespace: Option<String>,
    /// Bound on each API call (`ALSY__K8S__REQUEST_TIMEOUT`, default 10s).
    pub request_timeout: Duration,
    /// How long `restart` waits for the old pod to be gone (`ALSY__K8S__RESTART_TIMEOUT`,
    /// default 60s: more than the pods' 30s termination grace period).
    pub restart_timeout: Duration,
    /// Client-side rate limit in requests per second, with bursts of up to one second's worth
    /// (`ALSY__K8S__QPS`, default 50); 0 turns it off.
    pub qps: u32,
}

impl Default for KubeSettings {
    fn default() -> Self {
        KubeSettings {
            namespace: None,
            request_timeout: Duration::from_secs(10),
            restart_timeout: Duration::from_secs(60),
            qps: 50,
        }
    }
}
