//! The Kubernetes runtime's settings (`ALSY__K8S__*`), with their defaults: the one place they
//! are defined (the settings loader, `--help` and README.md's table take them from here).

use std::path::PathBuf;
use std::time::Duration;

/// How the runtime talks to the API server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeSettings {
    /// Namespace of the pods (`ALSY__K8S__NAMESPACE`); `None`: the kubeconfig context's
    /// namespace, in-cluster the service account's, else `default`.
    pub namespace: Option<String>,
    /// The kubeconfig file (`ALSY__K8S__KUBECONFIG`); `None`: `KUBECONFIG`, `~/.kube/config`,
    /// else in-cluster.
    pub kubeconfig: Option<PathBuf>,
    /// Bound on each API call (`ALSY__K8S__REQUEST_TIMEOUT`).
    pub request_timeout: Duration,
    /// No longer used: a restart never waits for the old pod (README.md, "Restarts and
    /// terminating pods"). Still read and checked (`ALSY__K8S__RESTART_TIMEOUT`) so that
    /// configurations written for earlier versions start.
    pub restart_timeout: Duration,
    /// Client-side rate limit in requests per second, with bursts of up to one second's worth
    /// (`ALSY__K8S__QPS`); 0 turns it off.
    pub qps: u32,
    /// The Pod Security Standard the algorithm pods are built to pass
    /// (`ALSY__K8S__POD_SECURITY`).
    pub pod_security: PodSecurity,
    /// Keep the managed pods in a store fed by a watch, which answers `list` and feeds the change
    /// feed (default). Off, every `list` asks the API server and there is no change feed: what
    /// tests that count requests of single calls use.
    pub watch: bool,
}

/// The Pod Security Standard alsy's algorithm pods meet. Both levels drop every capability,
/// forbid privilege escalation and use the runtime's default seccomp profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodSecurity {
    /// `restricted`: also `runAsNonRoot`, as this numeric user and group
    /// (`ALSY__K8S__RUN_AS_USER`, `ALSY__K8S__RUN_AS_GROUP`, by default
    /// [`PodSecurity::DEFAULT_ID`]). Admitted by namespaces that enforce `restricted`.
    Restricted {
        /// The uid every container runs as; never 0.
        run_as_user: u32,
        /// The primary gid.
        run_as_group: u32,
    },
    /// `baseline`: the image's own user, root included, for algorithm images that need it.
    /// A namespace that enforces `restricted` refuses these pods.
    Baseline,
}

impl PodSecurity {
    /// The default user and group of [`PodSecurity::Restricted`]: the non-root user of
    /// distroless images.
    pub const DEFAULT_ID: u32 = 65532;
}

impl std::fmt::Display for PodSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PodSecurity::Restricted {
                run_as_user,
                run_as_group,
            } => write!(f, "restricted (uid {run_as_user}, gid {run_as_group})"),
            PodSecurity::Baseline => f.write_str("baseline"),
        }
    }
}

impl Default for PodSecurity {
    fn default() -> Self {
        PodSecurity::Restricted {
            run_as_user: PodSecurity::DEFAULT_ID,
            run_as_group: PodSecurity::DEFAULT_ID,
        }
    }
}

impl Default for KubeSettings {
    fn default() -> Self {
        KubeSettings {
            namespace: None,
            kubeconfig: None,
            request_timeout: Duration::from_secs(10),
            restart_timeout: Duration::from_secs(60),
            qps: 50,
            pod_security: PodSecurity::default(),
            watch: true,
        }
    }
}
