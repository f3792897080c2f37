//! The typed settings, built from the layered text: every value parsed and checked, every
//! problem reported with the setting named as the operator wrote it.
//!
//! Each default is defined once, in the `Default` of the type that uses the setting: the
//! adapters' ([`PostgresSettings`], [`HttpSettings`], [`KubeSettings`]), the watcher's
//! ([`SyncSettings`]), the domain's [`Policy`], and here for the choices only `bin` makes. The
//! text layer, `--help` and README.md's table take them from [`Settings::default`] through
//! [`Settings::texts`]; a test checks the README against it.

use std::path::PathBuf;
use std::time::Duration;

use alsy_app::SyncSettings;
use alsy_domain::{Backoff, Catalogue, Policy};
use alsy_http::HttpSettings;
use alsy_k8s::{KubeSettings, PodSecurity};
use alsy_postgres::PostgresSettings;

use super::security;
use super::sources::{Layers, Origin, describe};
use super::values::{self, Zero};

/// Every setting of the service.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    /// `ALSY__SYNC__*`.
    pub sync: SyncSettings,
    /// `ALSY__STORAGE__*`.
    pub storage: StorageSettings,
    /// `ALSY__HTTP__*`.
    pub http: HttpSettings,
    /// `ALSY__RUNTIME__*`.
    pub runtime: RuntimeSettings,
    /// `ALSY__K8S__*`.
    pub k8s: KubeSettings,
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

/// Which storage holds the clients.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StorageKind {
    /// PostgreSQL.
    #[default]
    Postgres,
    /// In the process's memory, for demos and tests.
    Memory,
}

/// `ALSY__STORAGE__*`: which storage, and PostgreSQL's settings (which matter only for it).
/// `Debug` redacts the URL ([`PostgresSettings`]'s does).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StorageSettings {
    /// Which storage.
    pub kind: StorageKind,
    /// The PostgreSQL adapter's settings, from the other `ALSY__STORAGE__*` settings.
    pub postgres: PostgresSettings,
}

/// Where pods run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RuntimeKind {
    /// In memory: pods are remembered and logged, nothing runs.
    #[default]
    Fake,
    /// A Kubernetes cluster.
    Kubernetes,
}

/// Which pod runtime.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuntimeSettings {
    /// Which runtime.
    pub kind: RuntimeKind,
}

/// How much is logged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogLevel {
    /// Everything.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    #[default]
    Info,
    /// Warnings and worse.
    Warn,
    /// Errors and worse.
    Error,
    /// Only critical errors.
    Critical,
}

/// How log lines look.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object a line (README.md, "Logs").
    #[default]
    Json,
    /// Human-readable lines for a terminal.
    Text,
}

/// Logging settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogSettings {
    /// The least severe level written.
    pub level: LogLevel,
    /// The line format.
    pub format: LogFormat,
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
        // The uid and gid are filled in below: they are settings of their own.
        let pod_security_levels = [
            ("restricted", PodSecurity::default()),
            ("baseline", PodSecurity::Baseline),
        ];

        let interval = r.duration("sync.interval", Zero::Refused);
        let debounce = r.duration("sync.debounce", Zero::Allowed);
        let concurrency = r.read("sync.concurrency", |t| values::count(t, 1, 1024));
        let algorithms = r.read("sync.algorithms", |t| {
            Catalogue::parse(t).map_err(|e| e.to_string())
        });
        // Longer than a day is a typo: a failed pod would wait days for its retry.
        let at_most_a_day = |t: &str| {
            values::duration(t, Zero::Refused).and_then(|d| {
                (d <= Duration::from_secs(86_400))
                    .then_some(d)
                    .ok_or_else(|| "must be at most 1day".to_owned())
            })
        };
        let retry_base = r.read("sync.retry_base", at_most_a_day);
        let retry_max = r.read("sync.retry_max", at_most_a_day);
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
        // Kubernetes takes ids up to 2^31 - 1; uid 0 is root, which `restricted` refuses. Unset
        // only when the defaults are `baseline` (see `texts`); `restricted` then uses its default.
        let run_as_user = match layers.get("k8s.run_as_user") {
            Some(_) => r
                .read("k8s.run_as_user", |t| values::count(t, 1, i32::MAX as u32))
                .map(Some),
            None => Some(None),
        };
        let run_as_group = match layers.get("k8s.run_as_group") {
            Some(_) => r
                .read("k8s.run_as_group", |t| values::count(t, 0, i32::MAX as u32))
                .map(Some),
            None => Some(None),
        };
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

        if let (Some(base), Some(max)) = (retry_base, retry_max)
            && base > max
        {
            let (base, max) = (
                r.described("sync.retry_base", humantime::format_duration(base)),
                r.described("sync.retry_max", humantime::format_duration(max)),
            );
            r.problems
                .push(format!("invalid settings: {base} is longer than {max}"));
            return None;
        }
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
                algorithms: algorithms?,
                retry: Backoff::new(retry_base?, retry_max?).ok()?,
            },
            storage: StorageSettings {
                kind: storage_kind?,
                postgres: PostgresSettings {
                    url: url?,
                    min_conns: min_conns?,
                    max_conns: max_conns?,
                    start_timeout: start_timeout?,
                    read_timeout: storage_read?,
                    write_timeout: storage_write?,
                    idle_timeout: storage_idle?,
                    lifetime_jitter: jitter?,
                },
            },
            http: HttpSettings {
                address: address?,
                read_timeout: http_read?,
                write_timeout: http_write?,
                idle_timeout: http_idle?,
                shutdown_timeout: shutdown?,
            },
            runtime: RuntimeSettings {
                kind: runtime_kind?,
            },
            k8s: KubeSettings {
                namespace: namespace?,
                kubeconfig: kubeconfig?,
                request_timeout: request_timeout?,
                restart_timeout: restart_timeout?,
                qps: qps?,
                pod_security: match pod_security? {
                    PodSecurity::Restricted { .. } => PodSecurity::Restricted {
                        run_as_user: run_as_user?.unwrap_or(PodSecurity::DEFAULT_ID),
                        run_as_group: run_as_group?.unwrap_or(PodSecurity::DEFAULT_ID),
                    },
                    PodSecurity::Baseline => PodSecurity::Baseline,
                },
                // No setting: alsy always watches its pods (README.md, "Running on Kubernetes").
                watch: true,
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

    /// Every setting as the text its parser reads back to the same value, `None` when unset, in
    /// the order of [`super::sources::DEFS`]. `Settings::default().texts()` gives the defaults of
    /// the text layer, `--help` and README.md's table, so none can drift from the typed ones.
    pub(crate) fn texts(&self) -> Vec<(&'static str, Option<String>)> {
        let d = |d: Duration| Some(humantime::format_duration(d).to_string());
        let lower = |v: &dyn std::fmt::Debug| Some(format!("{v:?}").to_lowercase());
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        let (pod_security, ids) = match self.k8s.pod_security {
            PodSecurity::Restricted {
                run_as_user,
                run_as_group,
            } => ("restricted", Some((run_as_user, run_as_group))),
            PodSecurity::Baseline => ("baseline", None),
        };
        let storage = &self.storage.postgres;
        vec![
            ("sync.interval", d(self.sync.interval)),
            ("sync.debounce", d(self.sync.debounce)),
            ("sync.concurrency", Some(self.sync.concurrency.to_string())),
            ("sync.algorithms", Some(self.sync.algorithms.to_string())),
            ("sync.retry_base", d(self.sync.retry.base())),
            ("sync.retry_max", d(self.sync.retry.max())),
            ("storage.kind", lower(&self.storage.kind)),
            ("storage.url", Some(storage.url.clone())),
            ("storage.min_conns", Some(storage.min_conns.to_string())),
            ("storage.max_conns", Some(storage.max_conns.to_string())),
            ("storage.start_timeout", d(storage.start_timeout)),
            ("storage.read_timeout", d(storage.read_timeout)),
            ("storage.write_timeout", d(storage.write_timeout)),
            ("storage.idle_timeout", d(storage.idle_timeout)),
            ("storage.lifetime_jitter", d(storage.lifetime_jitter)),
            ("http.address", Some(self.http.address.to_string())),
            ("http.read_timeout", d(self.http.read_timeout)),
            ("http.write_timeout", d(self.http.write_timeout)),
            ("http.idle_timeout", d(self.http.idle_timeout)),
            ("http.shutdown_timeout", d(self.http.shutdown_timeout)),
            ("runtime.kind", lower(&self.runtime.kind)),
            ("k8s.namespace", self.k8s.namespace.clone()),
            ("k8s.kubeconfig", path(&self.k8s.kubeconfig)),
            ("k8s.request_timeout", d(self.k8s.request_timeout)),
            ("k8s.restart_timeout", d(self.k8s.restart_timeout)),
            ("k8s.qps", Some(self.k8s.qps.to_string())),
            ("k8s.pod_security", Some(pod_security.to_owned())),
            ("k8s.run_as_user", ids.map(|(uid, _)| uid.to_string())),
            ("k8s.run_as_group", ids.map(|(_, gid)| gid.to_string())),
            ("auth.tokens_file", path(&self.auth.tokens_file)),
            (
                "policy.images",
                Some(
                    self.policy
                        .images
                        .iter()
                        .map(|p| p.to_string())
                        .collect::<Vec<_>>()
                        .join(","),
                ),
            ),
            (
                "policy.require_digest",
                Some(self.policy.require_digest.to_string()),
            ),
            (
                "policy.max_cpu",
                self.policy.max_cpu.as_ref().map(|q| q.to_string()),
            ),
            (
                "policy.max_mem",
                self.policy.max_mem.as_ref().map(|q| q.to_string()),
            ),
            ("log.level", lower(&self.log.level)),
            ("log.format", lower(&self.log.format)),
        ]
    }

    /// Every setting as `(name, value)` for the start-up log line, the database password
    /// replaced by `***` and an unset setting saying what that means.
    pub fn redacted(&self) -> Vec<(&'static str, String)> {
        self.texts()
            .into_iter()
            .map(|(name, text)| {
                let shown = match (name, text) {
                    ("storage.url", Some(url)) => super::redact_url(&url),
                    (_, Some(text)) => text,
                    ("k8s.namespace" | "k8s.kubeconfig", None) => "(auto)".into(),
                    ("k8s.run_as_user" | "k8s.run_as_group", None) => {
                        "(not used under baseline)".into()
                    }
                    ("auth.tokens_file", None) => "(none: the API is open)".into(),
                    ("policy.max_cpu" | "policy.max_mem", None) => "(no cap)".into(),
                    (_, None) => "(unset)".into(),
                };
                (name, shown)
            })
            .collect()
    }
}
