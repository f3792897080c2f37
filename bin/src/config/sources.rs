//! Where a setting's text comes from: the table of every setting with its help, and the
//! layering of the sources over it, strongest last: defaults (the text of
//! [`Settings::default`], so the typed defaults are the only ones), the TOML file, `ALSY__*`
//! environment variables, command-line flags. Each value remembers its origin, so an error
//! can name the setting the way the operator wrote it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::settings::Settings;

/// One setting: its dotted name (`sync.interval`) and help. Its default is not here: it is
/// [`Settings::default`]'s, as text through [`default_text`].
pub(crate) struct Def {
    /// `section.key`.
    pub name: &'static str,
    /// One line of help for `--help`.
    pub help: &'static str,
}

impl Def {
    /// `ALSY__SECTION__KEY`.
    pub fn env(&self) -> String {
        format!(
            "ALSY__{}",
            self.name.replace('.', "__").to_ascii_uppercase()
        )
    }

    /// `section-key`, the long flag without its dashes.
    pub fn flag(&self) -> String {
        self.name.replace(['.', '_'], "-")
    }
}

const fn def(name: &'static str, help: &'static str) -> Def {
    Def { name, help }
}

/// Every setting's default as text (`None`: unset by default), from the typed defaults.
pub(crate) fn default_texts() -> BTreeMap<&'static str, Option<String>> {
    Settings::default().texts().into_iter().collect()
}

/// Every setting (README.md, "Settings"), the Kubernetes runtime's included.
pub(crate) const DEFS: &[Def] = &[
    def("sync.interval", "time between reconcile passes"),
    def(
        "sync.debounce",
        "delay of the pass after API writes; 0 turns nudges off",
    ),
    def("sync.concurrency", "pod operations applied at once"),
    def(
        "sync.algorithms",
        "the algorithms clients switch on and off: 1 to 32 comma-separated names [A-Z][A-Z0-9]{0,14}",
    ),
    def(
        "sync.retry_base",
        "shortest wait before a failed pod operation is retried",
    ),
    def(
        "sync.retry_max",
        "longest wait before a failed pod operation is retried (a refused one waits this long)",
    ),
    def(
        "storage.kind",
        "postgres, or memory (data lives in the process)",
    ),
    def("storage.url", "PostgreSQL URL"),
    def("storage.min_conns", "connections the pool keeps open"),
    def("storage.max_conns", "most connections the pool opens"),
    def(
        "storage.start_timeout",
        "how long start-up waits for the database",
    ),
    def("storage.read_timeout", "bound on a read query"),
    def("storage.write_timeout", "bound on a write query"),
    def(
        "storage.idle_timeout",
        "idle connections are closed after this; 0 keeps them",
    ),
    def(
        "storage.lifetime_jitter",
        "random spread of connection lifetimes (at most 1h)",
    ),
    def("http.address", "IP:PORT the API listens on"),
    def(
        "http.read_timeout",
        "bound on receiving a request's head, then its body",
    ),
    def(
        "http.write_timeout",
        "bound on answering once the head is read",
    ),
    def(
        "http.idle_timeout",
        "keep-alive connections idle this long are closed",
    ),
    def("http.shutdown_timeout", "bound on the graceful shutdown"),
    def("runtime.kind", "fake (remembers pods), or kubernetes"),
    def(
        "k8s.namespace",
        "namespace of the pods (default: in-cluster, else default)",
    ),
    def(
        "k8s.kubeconfig",
        "kubeconfig file (default: KUBECONFIG, ~/.kube/config, else in-cluster)",
    ),
    def("k8s.request_timeout", "bound on each Kubernetes API call"),
    def(
        "k8s.restart_timeout",
        "no longer used: a restart never waits for the old pod (accepted so older configurations start)",
    ),
    def(
        "k8s.qps",
        "Kubernetes API requests per second; 0 for no limit",
    ),
    def(
        "k8s.pod_security",
        "Pod Security Standard of the algorithm pods: restricted, or baseline for images that must run as root",
    ),
    def(
        "k8s.run_as_user",
        "uid of the algorithm containers under restricted (not 0)",
    ),
    def(
        "k8s.run_as_group",
        "gid of the algorithm containers under restricted",
    ),
    def(
        "auth.tokens_file",
        "tokens file (NAME ROLE SHA256-HEX lines); unset: the API is open",
    ),
    def(
        "policy.images",
        "comma-separated allowed image prefixes; empty: any image",
    ),
    def(
        "policy.require_digest",
        "images must pin a digest (@sha256:...)",
    ),
    def(
        "policy.max_cpu",
        "most CPU one pod may ask for; unset: no cap",
    ),
    def(
        "policy.max_mem",
        "most memory one pod may ask for; unset: no cap",
    ),
    def("log.level", "trace, debug, info, warn, error or critical"),
    def(
        "log.format",
        "json (one object a line), or text for a terminal",
    ),
];

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    Default,
    File(PathBuf),
    Env(String),
    Flag(String),
}

/// A setting's text and where it came from.
#[derive(Debug, Clone)]
pub(crate) struct Value {
    pub text: String,
    pub origin: Origin,
}

/// A setting and its value as the operator wrote them: `ALSY__SYNC__INTERVAL="5 parsecs"`,
/// `--sync-interval="5 parsecs"`, `sync.interval="5 parsecs" in alsy.toml`, or
/// `sync.interval="5m" (default)`. `shown` is the value as it should appear.
pub(crate) fn describe(name: &str, origin: &Origin, shown: &str) -> String {
    match origin {
        Origin::Default => format!("{name}={shown} (default)"),
        Origin::File(path) => format!("{name}={shown} in {}", path.display()),
        Origin::Env(var) => format!("{var}={shown}"),
        Origin::Flag(flag) => format!("--{flag}={shown}"),
    }
}

/// Every setting's text after layering.
#[derive(Debug, Clone)]
pub(crate) struct Layers {
    values: BTreeMap<&'static str, Value>,
}

impl Layers {
    /// The defaults.
    pub fn defaults() -> Layers {
        let values = default_texts()
            .into_iter()
            .filter_map(|(name, text)| {
                let origin = Origin::Default;
                text.map(|text| (name, Value { text, origin }))
            })
            .collect();
        Layers { values }
    }

    fn set(&mut self, name: &'static str, text: String, origin: Origin) {
        self.values.insert(name, Value { text, origin });
    }

    /// The value of a setting, if it has one.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.values.get(name)
    }

    /// Lays a TOML file over: `[section] key = value`. Unknown keys are errors.
    pub fn file(&mut self, path: &Path, problems: &mut Vec<String>) {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) => {
                problems.push(format!(
                    "cannot read the config file {}: {e}",
                    path.display()
                ));
                return;
            }
        };
        let table: toml::Table = match text.parse() {
            Ok(table) => table,
            Err(e) => {
                problems.push(format!(
                    "config file {} is not valid TOML: {e}",
                    path.display()
                ));
                return;
            }
        };
        for (section, keys) in table {
            let Some(keys) = keys.as_table() else {
                problems.push(format!(
                    "unknown setting {section} in {}: settings live in sections like [sync]",
                    path.display()
                ));
                continue;
            };
            for (key, value) in keys {
                let dotted = format!("{section}.{key}");
                let Some(def) = DEFS.iter().find(|d| d.name == dotted) else {
                    problems.push(format!(
                        "unknown setting {dotted} in {}{}",
                        path.display(),
                        suggestion(&dotted, DEFS.iter().map(|d| d.name.to_owned()))
                    ));
                    continue;
                };
                let text = match value {
                    toml::Value::String(s) => s.clone(),
                    toml::Value::Integer(n) => n.to_string(),
                    other => {
                        problems.push(format!(
                            "invalid setting {dotted} in {}: expected a string or an integer, found {}",
                            path.display(),
                            other.type_str()
                        ));
                        continue;
                    }
                };
                self.set(def.name, text, Origin::File(path.to_owned()));
            }
        }
    }

    /// Lays `ALSY__*` variables over. Any other `ALSY__` name is an error: a misspelt setting
    /// silently ignored is a trap.
    pub fn env(
        &mut self,
        env: impl IntoIterator<Item = (String, String)>,
        problems: &mut Vec<String>,
    ) {
        let mut unknown = Vec::new();
        for (var, text) in env {
            if !var.to_ascii_uppercase().starts_with("ALSY__") {
                continue;
            }
            match DEFS.iter().find(|d| d.env() == var) {
                Some(def) => self.set(def.name, text, Origin::Env(var)),
                None => unknown.push(var),
            }
        }
        unknown.sort();
        for var in unknown {
            problems.push(format!(
                "unknown setting {var}{}",
                suggestion(&var, setting_names())
            ));
        }
    }

    /// Lays command-line flags over.
    pub fn flags<'a>(&mut self, given: impl IntoIterator<Item = (&'static str, &'a str)>) {
        for (name, text) in given {
            if let Some(def) = DEFS.iter().find(|d| d.name == name) {
                self.set(def.name, text.to_owned(), Origin::Flag(def.flag()));
            }
        }
    }
}

/// Every environment variable the loader knows.
pub fn setting_names() -> Vec<String> {
    DEFS.iter().map(Def::env).collect()
}

/// `; did you mean X?` when a known name is close to the one given.
fn suggestion(given: &str, known: impl IntoIterator<Item = String>) -> String {
    let given_upper = given.to_ascii_uppercase();
    known
        .into_iter()
        .map(|k| {
            (
                strsim::levenshtein(&given_upper, &k.to_ascii_uppercase()),
                k,
            )
        })
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, k)| format!("; did you mean {k}?"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_and_flags_derive_from_the_dotted_name() {
        let def = DEFS
            .iter()
            .find(|d| d.name == "http.shutdown_timeout")
            .unwrap();
        assert_eq!(def.env(), "ALSY__HTTP__SHUTDOWN_TIMEOUT");
        assert_eq!(def.flag(), "http-shutdown-timeout");
    }

    #[test]
    fn unknown_alsy_variables_are_errors_with_a_suggestion() {
        let mut layers = Layers::defaults();
        let mut problems = Vec::new();
        layers.env(
            [
                ("ALSY__SYNC__INTERVALL".to_owned(), "5m".to_owned()),
                ("HOME".to_owned(), "/root".to_owned()),
            ],
            &mut problems,
        );
        assert_eq!(
            problems,
            vec!["unknown setting ALSY__SYNC__INTERVALL; did you mean ALSY__SYNC__INTERVAL?"]
        );
    }

    #[test]
    fn origins_name_the_setting_as_written() {
        let shown = |origin: Origin| describe("sync.interval", &origin, "\"5 parsecs\"");
        assert_eq!(
            shown(Origin::Env("ALSY__SYNC__INTERVAL".into())),
            r#"ALSY__SYNC__INTERVAL="5 parsecs""#
        );
        assert_eq!(
            shown(Origin::Flag("sync-interval".into())),
            r#"--sync-interval="5 parsecs""#
        );
        assert_eq!(
            shown(Origin::File("alsy.toml".into())),
            r#"sync.interval="5 parsecs" in alsy.toml"#
        );
    }
}
