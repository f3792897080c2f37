//! The typed settings, built from the layered text: every value parsed and checked, every
//! problem reported with the setting named as the operator wrote it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use alsy_domain::Policy;

use super::security;
use super::sources::{Layers, Origin, describe};
use super::values::{self, Zero};

/// Every setting of the service.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// `ALSY__SYNC__*`.
    pub sync: SyncSettings,
    /// `ALSY__STORAGE__*`.
    pub storage: StorageSettings,
    /// `ALSY__HTTP__*`.
    pub http: HttpConfig,
    /// `ALSY__RUNTIME__*`.
    pub runtime: RuntimeSettings,
    /// `ALSY__K8S__*`.
    pub k8s: K8sConfig,
    /// `ALSY__AUTH__*`.
    pub auth: AuthSettings,
    /// `ALSY__POLICY__*`: what clients may run.
    pub policy: Policy,
    /// `ALSY__LOG__*`.
    pub log: LogSettings,
}

/// Who may call the API.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthSettings {
    /// The tokens file; `None`: the API is open.
    pub tokens_file: Option<PathBuf>,
}

/// When and how the watcher reconciles.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncSettings {
    /// Time between interval passes.
    pub interval: Duration,
    /// Delay of a nudged pass; zero turns nudges off.
    pub debounce: Duration,
    /// Pod operations applied at once.
    pub concurrency: usize,
}

/// Which storage holds the clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageKind {
    /// PostgreSQL.
    Postgres,
    /// In the process's memory, for demos and tests.
    Memory,
}

/// Storage settings; all but `kind` matter only for PostgreSQL. `Debug` redacts the URL.
#[derive(Clone, PartialEq)]
pub struct StorageSettings {
    /// Which storage.
    pub kind: StorageKind,
    /// PostgreSQL URL (may hold a password: log it through [`super::redact_url`]).
    pub url: String,
    /// Connections the pool keeps open.
    pub min_conns: u32,
    /// Most connections the pool opens.
    pub max_conns: u32,
    /// How long start-up waits for the database.
    pub start_timeout: Duration,
    /// Bound on a read query.
    pub read_timeout: Duration,
    /// Bound on a write query.
    pub write_timeout: Duration,
    /// Idle connections above `min_conns` are closed after this; zero keeps them.
    pub idle_timeout: Duration,
    /// Random spread of connection lifetimes.
    pub lifetime_jitter: Duration,
}

impl std::fmt::Debug for StorageSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageSettings")
            .field("kind", &self.kind)
            .field("url", &super::redact_url(&self.url))
            .field("min_conns", &self.min_conns)
            .field("max_conns", &self.max_conns)
            .field("start_timeout", &self.start_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("write_timeout", &self.write_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("lifetime_jitter", &self.lifetime_jitter)
            .finish()
    }
}

/// The HTTP API's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpConfig {
    /// Where it listens.
    pub address: SocketAddr,
    /// Bound on receiving a request's head, then its body.
    pub read_timeout: Duration,
    /// Bound on answering once the head is read.
    pub write_timeout: Duration,
    /// Keep-alive connections idle this long are closed.
    pub idle_timeout: Duration,
    /// Bound on the graceful shutdown.
    pub shutdown_timeout: Duration,
}

/// Where pods run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeKind {
    /// In memory: pods are remembered and logged, nothing runs.
    Fake,
    /// A Kubernetes cluster.
    Kubernetes,
}

/// Which pod runtime.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeSettings {
    /// Which runtime.
    pub kind: RuntimeKind,
}

/// The Kubernetes runtime's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct K8sConfig {
    /// Namespace of the pods; `None`: in-cluster namespace, else `default`.
    pub namespace: Option<String>,
    /// The kubeconfig file to use; `None`: `KUBECONFIG`, `~/.kube/config`, else in-cluster.
    pub kubeconfig: Option<PathBuf>,
    /// Bound on each API call.
    pub request_timeout: Duration,
    /// How long a restart waits for the old pod to go.
    pub restart_timeout: Duration,
    /// API requests per second; 0 for no limit.
    pub qps: u32,
    /// The Pod Security Standard the algorithm pods are built for.
    pub pod_security: PodSecurityLevel,
    /// The uid of the algorithm containers under `restricted` (never 0).
    pub run_as_user: u32,
    /// Their gid under `restricted`.
    pub run_as_group: u32,
}

/// `ALSY__K8S__POD_SECURITY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodSecurityLevel {
    /// Non-root, numeric uid and gid: admitted where `restricted` is enforced.
    Restricted,
    /// The image's own user, root included.
    Baseline,
}

/// How much is logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Everything.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Warnings and worse.
    Warn,
    /// Errors and worse.
    Error,
    /// Only critical errors.
    Critical,
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object a line (README.md, "Logs").
    Json,
    /// Human-readable lines for a terminal.
    Text,
}

/// Logging settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogSettings {
    /// The least severe level written.
    pub level: LogLevel,
    /// The line format.
    pub format: LogFormat,
}

impl Default for Settings {
    /// The defaults README.md's settings table lists.
    fn default() -> Settings {
        let secs = Duration::from_secs;
        Settings {
            sync: SyncSettings {
                interval: secs(300),
                debounce: secs(1),
                concurrency: 16,
            },
            storage: StorageSettings {
                kind: StorageKind::Postgres,
                url: "postgres://postgres@localhost:5432/postgres".into(),
                min_conns: 1,
                max_conns: 10,
                start_timeout: secs(30),
                read_timeout: secs(5),
                write_timeout: secs(5),
                idle_timeout: secs(1800),
                lifetime_jitter: secs(30),
            },
            http: HttpConfig {
                address: SocketAddr::from(([0, 0, 0, 0], 8080)),
                read_timeout: secs(5),
                write_timeout: secs(5),
                idle_timeout: secs(60),
                shutdown_timeout: secs(10),
            },
            runtime: RuntimeSettings {
                kind: RuntimeKind::Fake,
            },
            k8s: K8sConfig {
                namespace: None,
                kubeconfig: None,
                request_timeout: secs(10),
                restart_timeout: secs(60),
                qps: 50,
                pod_security: PodSecurityLevel::Restricted,
                run_as_user: 65532,
                run_as_group: 65532,
            },
            auth: AuthSettings::default(),
            policy: Policy::default(),
            log: LogSettings {
                level: LogLevel::Info,
                format: LogFormat::Json,
            },
        }
    }
}

/// Reads settings out of the layers, collecting every problem.
struct Reader<'a> {
    layers: &'a Layers,
    problems: &'a mut Vec<String>,
}

impl Reader<'_> {
    fn read<T>(&mut self, name: &str, parse: impl FnOnce(&str) -> Result<T, String>) -> Option<T> {
        let value = self.layers.get(name)?;
        match parse(&value.text) {
            Ok(parsed) => Some(parsed),
            Err(problem) => {
                let shown = if name == "storage.url" {
                    super::redact_url(&value.text)
                } else {
                    value.text.clone()
                };
                let setting = describe(name, &value.origin, &format!("{shown:?}"));
                self.problems
                    .push(format!("invalid setting {setting}: {problem}"));
                None
            }
        }
    }

    fn duration(&mut self, name: &str, zero: Zero) -> Option<Duration> {
        self.read(name, |t| values::duration(t, zero))
    }

    /// A parsed setting as the operator wrote it, for problems spanning two settings.
    fn described(&self, name: &str, value: impl std::fmt::Display) -> String {
        let origin = self
            .layers
            .get(name)
            .map(|v| v.origin.clone())
            .unwrap_or(Origin::Default);
        describe(name, &origin, &value.to_string())
    }
}

impl Settings {
    /// Parses every setting; `None` when any is invalid. Every setting is read before giving
    /// up, so one run reports all the problems, not the first.
    pub(crate) fn from_layers(layers: &Layers, problems: &mut Vec<String>) -> Option<Settings> {
        let mut r = Reader { layers, problems };
        let storage_kinds = [
            ("postgres", StorageKind::Postgres),
            ("memory", StorageKind::Memory),
        ];
        let runtime_kinds = [
            ("fake", RuntimeKind::Fake),
            ("kubernetes", RuntimeKind::Kubernetes),
        ];
        let levels = [
            ("trace", LogLevel::Trace),
            ("debug", LogLevel::Debug),
            ("info", LogLevel::Info),
            ("warn", LogLevel::Warn),
            ("error", LogLevel::Error),
            ("critical", LogLevel::Critical),
        ];
        let formats = [("json", LogFormat::Json), ("text", LogFormat::Text)];
        let pod_security_levels = [
            ("restricted", PodSecurityLevel::Restricted),
            ("baseline", PodSecurityLevel::Baseline),
        ];

        let interval = r.duration("sync.interval", Zero::Refused);
        let debounce = r.duration("sync.debounce", Zero::Allowed);
        let concurrency = r.read("sync.concurrency", |t| values::count(t, 1, 1024));
        let storage_kind = r.read("storage.kind", |t| values::one_of(t, &storage_kinds));
        let url = r.read("storage.url", values::postgres_url);
        let min_conns = r.read("storage.min_conns", |t| values::count(t, 0, 1000));
        let max_conns = r.read("storage.max_conns", |t| values::count(t, 1, 1000));
        let start_timeout = r.duration("storage.start_timeout", Zero::Refused);
        let storage_read = r.duration("storage.read_timeout", Zero::Refused);
        let storage_write = r.duration("storage.write_timeout", Zero::Refused);
        // Zero keeps idle connections open (the adapter's meaning).
        let storage_idle = r.duration("storage.idle_timeout", Zero::Allowed);
        // Jitter spreads the adapter's one-hour connection lifetime; more than that is a typo.
        let jitter = r.read("storage.lifetime_jitter", |t| {
            values::duration(t, Zero::Allowed).and_then(|d| {
                (d <= Duration::from_secs(3600))
                    .then_some(d)
                    .ok_or_else(|| "must be at most 1h".to_owned())
            })
        });
        let address = r.read("http.address", values::address);
        let http_read = r.duration("http.read_timeout", Zero::Refused);
        let http_write = r.duration("http.write_timeout", Zero::Refused);
        let http_idle = r.duration("http.idle_timeout", Zero::Refused);
        let shutdown = r.duration("http.shutdown_timeout", Zero::Refused);
        let runtime_kind = r.read("runtime.kind", |t| values::one_of(t, &runtime_kinds));
        // Unset by default: absent is `Ok(None)`, not a problem.
        let namespace = match layers.get("k8s.namespace") {
            Some(_) => r.read("k8s.namespace", values::namespace),
            None => Some(None),
        };
        let kubeconfig = match layers.get("k8s.kubeconfig") {
            Some(_) => r.read("k8s.kubeconfig", values::file_path),
            None => Some(None),
        };
        let request_timeout = r.duration("k8s.request_timeout", Zero::Refused);
        let restart_timeout = r.duration("k8s.restart_timeout", Zero::Refused);
        let qps = r.read("k8s.qps", |t| values::count(t, 0, 100_000));
        let pod_security = r.read("k8s.pod_security", |t| {
            values::one_of(t, &pod_security_levels)
        });
        // Kubernetes takes ids up to 2^31 - 1; uid 0 is root, which `restricted` refuses.
        let run_as_user = r.read("k8s.run_as_user", |t| values::count(t, 1, i32::MAX as u32));
        let run_as_group = r.read("k8s.run_as_group", |t| values::count(t, 0, i32::MAX as u32));
        let tokens_file = match layers.get("auth.tokens_file") {
            Some(_) => r.read("auth.tokens_file", values::file_path),
            None => Some(None),
        };
        let images = r.read("policy.images", security::image_prefixes);
        let require_digest = r.read("policy.require_digest", security::flag);
        let max_cpu = match layers.get("policy.max_cpu") {
            Some(_) => r.read("policy.max_cpu", security::cap),
            None => Some(None),
        };
        let max_mem = match layers.get("policy.max_mem") {
            Some(_) => r.read("policy.max_mem", security::cap),
            None => Some(None),
        };
        let level = r.read("log.level", |t| values::one_of(t, &levels));
        let format = r.read("log.format", |t| values::one_of(t, &formats));

        if let (Some(min), Some(max)) = (min_conns, max_conns)
            && min > max
        {
            let (min, max) = (
                r.described("storage.min_conns", min),
                r.described("storage.max_conns", max),
            );
            r.problems
                .push(format!("invalid settings: {min} is greater than {max}"));
            return None;
        }
        Some(Settings {
            sync: SyncSettings {
                interval: interval?,
                debounce: debounce?,
                concurrency: concurrency? as usize,
            },
            storage: StorageSettings {
                kind: storage_kind?,
                url: url?,
                min_conns: min_conns?,
                max_conns: max_conns?,
                start_timeout: start_timeout?,
                read_timeout: storage_read?,
                write_timeout: storage_write?,
                idle_timeout: storage_idle?,
                lifetime_jitter: jitter?,
            },
            http: HttpConfig {
                address: address?,
                read_timeout: http_read?,
                write_timeout: http_write?,
                idle_timeout: http_idle?,
                shutdown_timeout: shutdown?,
            },
            runtime: RuntimeSettings {
                kind: runtime_kind?,
            },
            k8s: K8sConfig {
                namespace: namespace?,
                kubeconfig: kubeconfig?,
                request_timeout: request_timeout?,
                restart_timeout: restart_timeout?,
                qps: qps?,
                pod_security: pod_security?,
                run_as_user: run_as_user?,
                run_as_group: run_as_group?,
            },
            auth: AuthSettings {
                tokens_file: tokens_file?,
            },
            policy: Policy {
                images: images?,
                require_digest: require_digest?,
                max_cpu: max_cpu?,
                max_mem: max_mem?,
            },
            log: LogSettings {
                level: level?,
                format: format?,
            },
        })
    }

    /// Every setting as `(name, value)` for the start-up log line, the database password
    /// replaced by `***`.
    pub fn redacted(&self) -> Vec<(&'static str, String)> {
        let d = |d: Duration| humantime::format_duration(d).to_string();
        vec![
            ("sync.interval", d(self.sync.interval)),
            ("sync.debounce", d(self.sync.debounce)),
            ("sync.concurrency", self.sync.concurrency.to_string()),
            (
                "storage.kind",
                format!("{:?}", self.storage.kind).to_lowercase(),
            ),
            ("storage.url", super::redact_url(&self.storage.url)),
            ("storage.min_conns", self.storage.min_conns.to_string()),
            ("storage.max_conns", self.storage.max_conns.to_string()),
            ("storage.start_timeout", d(self.storage.start_timeout)),
            ("storage.read_timeout", d(self.storage.read_timeout)),
            ("storage.write_timeout", d(self.storage.write_timeout)),
            ("storage.idle_timeout", d(self.storage.idle_timeout)),
            ("storage.lifetime_jitter", d(self.storage.lifetime_jitter)),
            ("http.address", self.http.address.to_string()),
            ("http.read_timeout", d(self.http.read_timeout)),
            ("http.write_timeout", d(self.http.write_timeout)),
            ("http.idle_timeout", d(self.http.idle_timeout)),
            ("http.shutdown_timeout", d(self.http.shutdown_timeout)),
            (
                "runtime.kind",
                format!("{:?}", self.runtime.kind).to_lowercase(),
            ),
            (
                "k8s.namespace",
                self.k8s
                    .namespace
                    .clone()
                    .unwrap_or_else(|| "(auto)".into()),
            ),
            (
                "k8s.kubeconfig",
                self.k8s
                    .kubeconfig
                    .as_ref()
                    .map_or_else(|| "(auto)".into(), |p| p.display().to_string()),
            ),
            ("k8s.request_timeout", d(self.k8s.request_timeout)),
            ("k8s.restart_timeout", d(self.k8s.restart_timeout)),
            ("k8s.qps", self.k8s.qps.to_string()),
            (
                "k8s.pod_security",
                format!("{:?}", self.k8s.pod_security).to_lowercase(),
            ),
            ("k8s.run_as_user", self.k8s.run_as_user.to_string()),
            ("k8s.run_as_group", self.k8s.run_as_group.to_string()),
            (
                "auth.tokens_file",
                self.auth.tokens_file.as_ref().map_or_else(
                    || "(none: the API is open)".into(),
                    |p| p.display().to_string(),
                ),
            ),
            (
                "policy.images",
                self.policy
                    .images
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            (
                "policy.require_digest",
                self.policy.require_digest.to_string(),
            ),
            (
                "policy.max_cpu",
                self.policy
                    .max_cpu
                    .as_ref()
                    .map_or_else(|| "(no cap)".into(), |q| q.to_string()),
            ),
            (
                "policy.max_mem",
                self.policy
                    .max_mem
                    .as_ref()
                    .map_or_else(|| "(no cap)".into(), |q| q.to_string()),
            ),
            ("log.level", format!("{:?}", self.log.level).to_lowercase()),
            (
                "log.format",
                format!("{:?}", self.log.format).to_lowercase(),
            ),
        ]
    }
}
