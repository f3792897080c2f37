//! Loading settings: defaults, the order of sources, and errors that name the setting.

use std::path::PathBuf;
use std::time::Duration;

use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn load(args: &[&str], vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let mut argv = vec!["alsy"];
    argv.extend_from_slice(args);
    load_from(argv, env(vars))
}

fn problems(args: &[&str], vars: &[(&str, &str)]) -> Vec<String> {
    match load(args, vars) {
        Err(ConfigError::Invalid(problems)) => problems,
        other => panic!("expected invalid settings, got {other:?}"),
    }
}

/// A TOML file in the temp dir, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!("alsy-{}-{name}.toml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        TempFile(path)
    }

    fn arg(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn nothing_given_means_the_documented_defaults() {
    // The text layer is `Settings::default()` written out: it must read back unchanged.
    assert_eq!(load(&[], &[]).unwrap(), Settings::default());
}

#[test]
fn baseline_pod_security_uses_the_image_user() {
    let settings = load(&[], &[("ALSY__K8S__POD_SECURITY", "baseline")]).unwrap();
    assert_eq!(settings.k8s.pod_security, alsy_k8s::PodSecurity::Baseline);
    let shown = settings.redacted();
    let uid = shown.iter().find(|(k, _)| *k == "k8s.run_as_user").unwrap();
    assert_eq!(uid.1, "(not used under baseline)");
}

#[test]
fn every_setting_has_one_text_and_one_help_in_the_same_order() {
    let texts: Vec<&str> = Settings::default()
        .texts()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let helps: Vec<&str> = sources::DEFS.iter().map(|d| d.name).collect();
    assert_eq!(texts, helps);
}

#[test]
fn help_shows_the_typed_defaults() {
    let help = cli::command().render_help().to_string();
    for (name, text) in Settings::default().texts() {
        let def = sources::DEFS.iter().find(|d| d.name == name).unwrap();
        let expected = match text {
            Some(text) => format!("[default: {text}] [env: {}]", def.env()),
            None => format!("{} [env: {}]", def.help, def.env()),
        };
        // clap wraps long lines: compare with the whitespace squeezed.
        let squeeze = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            squeeze(&help).contains(&squeeze(&expected)),
            "--help lacks {expected:?}"
        );
    }
}

/// README.md's settings table, row by row: environment variable → (flag, default column).
fn readme_settings_table() -> std::collections::BTreeMap<String, (String, String)> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md next to the workspace's Cargo.toml");
    let section = readme
        .split("\n## Settings\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("README.md has a Settings section");
    section
        .lines()
        .filter(|line| line.starts_with("| `ALSY__"))
        .map(|line| {
            let cells: Vec<&str> = line.split(" | ").collect();
            let unquote = |c: &str| c.trim_matches(['|', ' ', '`']).to_owned();
            (
                unquote(cells[0]),
                (unquote(cells[1]), cells[2].trim().to_owned()),
            )
        })
        .collect()
}

#[test]
fn the_readme_settings_table_lists_every_setting_with_its_typed_default() {
    let table = readme_settings_table();
    let texts = Settings::default().texts();
    assert_eq!(
        table
            .keys()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>(),
        setting_names().into_iter().collect(),
        "README.md's settings table and the settings differ"
    );
    for (name, text) in texts {
        let def = sources::DEFS.iter().find(|d| d.name == name).unwrap();
        let (flag, default) = &table[&def.env()];
        assert_eq!(flag, &format!("--{}", def.flag()), "{name}");
        // Unset and empty defaults are words in the table; every other is the exact text.
        let expected: &[&str] = match text.as_deref() {
            None => &["unset", "`(auto)`"],
            Some("") => &["empty"],
            Some(_) => &[],
        };
        let written = text.map(|t| format!("`{t}`"));
        assert!(
            expected.contains(&default.as_str()) || written.as_ref() == Some(default),
            "README.md says {} defaults to {default}, the code says {:?}",
            def.env(),
            written.unwrap_or_else(|| "unset".into())
        );
    }
}

#[test]
fn setting_names_lists_every_env_variable() {
    let names = setting_names();
    for name in [
        "ALSY__SYNC__INTERVAL",
        "ALSY__SYNC__DEBOUNCE",
        "ALSY__SYNC__CONCURRENCY",
        "ALSY__SYNC__ALGORITHMS",
        "ALSY__SYNC__RETRY_BASE",
        "ALSY__SYNC__RETRY_MAX",
        "ALSY__STORAGE__KIND",
        "ALSY__STORAGE__URL",
        "ALSY__STORAGE__MIN_CONNS",
        "ALSY__STORAGE__MAX_CONNS",
        "ALSY__STORAGE__START_TIMEOUT",
        "ALSY__STORAGE__READ_TIMEOUT",
        "ALSY__STORAGE__WRITE_TIMEOUT",
        "ALSY__STORAGE__IDLE_TIMEOUT",
        "ALSY__STORAGE__LIFETIME_JITTER",
        "ALSY__HTTP__ADDRESS",
        "ALSY__HTTP__READ_TIMEOUT",
        "ALSY__HTTP__WRITE_TIMEOUT",
        "ALSY__HTTP__IDLE_TIMEOUT",
        "ALSY__HTTP__SHUTDOWN_TIMEOUT",
        "ALSY__RUNTIME__KIND",
        "ALSY__K8S__NAMESPACE",
        "ALSY__K8S__KUBECONFIG",
        "ALSY__K8S__REQUEST_TIMEOUT",
        "ALSY__K8S__RESTART_TIMEOUT",
        "ALSY__K8S__QPS",
        "ALSY__K8S__POD_SECURITY",
        "ALSY__K8S__RUN_AS_USER",
        "ALSY__K8S__RUN_AS_GROUP",
        "ALSY__AUTH__TOKENS_FILE",
        "ALSY__POLICY__IMAGES",
        "ALSY__POLICY__REQUIRE_DIGEST",
        "ALSY__POLICY__MAX_CPU",
        "ALSY__POLICY__MAX_MEM",
        "ALSY__LOG__LEVEL",
        "ALSY__LOG__FORMAT",
    ] {
        assert!(names.contains(&name.to_owned()), "{name}");
    }
    assert_eq!(names.len(), 36);
}

#[test]
fn every_setting_is_read_from_its_env_variable() {
    let settings = load(
        &[],
        &[
            ("ALSY__SYNC__INTERVAL", "10s"),
            ("ALSY__SYNC__DEBOUNCE", "0"),
            ("ALSY__SYNC__CONCURRENCY", "4"),
            ("ALSY__SYNC__ALGORITHMS", "X,Y,Z"),
            ("ALSY__SYNC__RETRY_BASE", "250ms"),
            ("ALSY__SYNC__RETRY_MAX", "30s"),
            ("ALSY__STORAGE__KIND", "memory"),
            ("ALSY__STORAGE__URL", "postgres://alsy:pw@db:5433/alsy"),
            ("ALSY__STORAGE__MIN_CONNS", "2"),
            ("ALSY__STORAGE__MAX_CONNS", "3"),
            ("ALSY__STORAGE__START_TIMEOUT", "1s"),
            ("ALSY__STORAGE__READ_TIMEOUT", "2s"),
            ("ALSY__STORAGE__WRITE_TIMEOUT", "3s"),
            ("ALSY__STORAGE__IDLE_TIMEOUT", "4m"),
            ("ALSY__STORAGE__LIFETIME_JITTER", "0s"),
            ("ALSY__HTTP__ADDRESS", "127.0.0.1:0"),
            ("ALSY__HTTP__READ_TIMEOUT", "1s"),
            ("ALSY__HTTP__WRITE_TIMEOUT", "2s"),
            ("ALSY__HTTP__IDLE_TIMEOUT", "3s"),
            ("ALSY__HTTP__SHUTDOWN_TIMEOUT", "4s"),
            ("ALSY__RUNTIME__KIND", "kubernetes"),
            ("ALSY__K8S__NAMESPACE", "trading"),
            ("ALSY__K8S__REQUEST_TIMEOUT", "5s"),
            ("ALSY__K8S__RESTART_TIMEOUT", "6s"),
            ("ALSY__K8S__QPS", "0"),
            ("ALSY__K8S__POD_SECURITY", "Restricted"),
            ("ALSY__K8S__RUN_AS_USER", "1000"),
            ("ALSY__K8S__RUN_AS_GROUP", "0"),
            ("ALSY__LOG__LEVEL", "debug"),
            ("ALSY__LOG__FORMAT", "text"),
        ],
    )
    .unwrap();
    let s = Duration::from_secs;
    assert_eq!(settings.sync.interval, s(10));
    assert_eq!(settings.sync.debounce, Duration::ZERO);
    assert_eq!(settings.sync.concurrency, 4);
    assert_eq!(settings.sync.algorithms.to_string(), "X,Y,Z");
    assert_eq!(settings.sync.retry.base(), Duration::from_millis(250));
    assert_eq!(settings.sync.retry.max(), s(30));
    assert_eq!(settings.storage.kind, StorageKind::Memory);
    let storage = &settings.storage.postgres;
    assert_eq!(storage.url, "postgres://alsy:pw@db:5433/alsy");
    assert_eq!((storage.min_conns, storage.max_conns), (2, 3));
    assert_eq!(storage.idle_timeout, s(240));
    assert_eq!(storage.lifetime_jitter, Duration::ZERO);
    assert_eq!(settings.http.address.to_string(), "127.0.0.1:0");
    assert_eq!(settings.http.shutdown_timeout, s(4));
    assert_eq!(settings.runtime.kind, RuntimeKind::Kubernetes);
    assert_eq!(settings.k8s.namespace.as_deref(), Some("trading"));
    assert_eq!(settings.k8s.restart_timeout, s(6));
    assert_eq!(settings.k8s.qps, 0);
    assert_eq!(
        settings.k8s.pod_security,
        alsy_k8s::PodSecurity::Restricted {
            run_as_user: 1000,
            run_as_group: 0
        }
    );
    assert_eq!(settings.log.level, LogLevel::Debug);
    assert_eq!(settings.log.format, LogFormat::Text);
}

#[test]
fn flags_beat_the_environment_which_beats_the_file() {
    let file = TempFile::new(
        "order",
        "[sync]\ninterval = \"1m\"\ndebounce = \"2s\"\nconcurrency = 3\n",
    );
    let settings = load(
        &["--config", file.arg(), "--sync-interval", "10s"],
        &[
            ("ALSY__SYNC__INTERVAL", "20s"),
            ("ALSY__SYNC__DEBOUNCE", "5s"),
        ],
    )
    .unwrap();
    assert_eq!(settings.sync.interval, Duration::from_secs(10));
    assert_eq!(settings.sync.debounce, Duration::from_secs(5));
    assert_eq!(settings.sync.concurrency, 3);
}

#[test]
fn a_bad_env_value_names_the_variable() {
    assert_eq!(
        problems(&[], &[("ALSY__SYNC__INTERVAL", "5 parsecs")]),
        vec![
            r#"invalid setting ALSY__SYNC__INTERVAL="5 parsecs": expected a duration like 500ms, 30s, 5m"#
        ]
    );
}

#[test]
fn a_bad_algorithm_list_names_the_setting_and_the_problem() {
    for (list, problem) in [
        ("VWAP,vwap", r#""vwap" is not an algorithm name"#),
        ("X,Y,X", "algorithm X is named twice"),
        ("", "no algorithm named"),
    ] {
        let problems = problems(&[], &[("ALSY__SYNC__ALGORITHMS", list)]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with(&format!(
                "invalid setting ALSY__SYNC__ALGORITHMS={list:?}: "
            )) && problems[0].contains(problem),
            "{problems:?}"
        );
    }
}

#[test]
fn a_bad_flag_names_the_flag() {
    assert_eq!(
        problems(&["--sync-concurrency", "0"], &[]),
        vec![r#"invalid setting --sync-concurrency="0": expected an integer from 1 to 1024"#]
    );
}

#[test]
fn a_bad_file_value_names_the_key_and_the_file() {
    let file = TempFile::new("bad", "[http]\naddress = \"localhost\"\n");
    let problems = problems(&["--config", file.arg()], &[]);
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].starts_with(&format!(
            "invalid setting http.address=\"localhost\" in {}: expected IP:PORT",
            file.arg()
        )),
        "{problems:?}"
    );
}

#[test]
fn unknown_keys_in_the_file_are_errors() {
    let file = TempFile::new("unknown", "[sync]\nintervall = \"5m\"\n");
    let problems = problems(&["--config", file.arg()], &[]);
    assert!(
        problems[0].starts_with("unknown setting sync.intervall in "),
        "{problems:?}"
    );
    assert!(
        problems[0].ends_with("did you mean sync.interval?"),
        "{problems:?}"
    );
}

#[test]
fn a_missing_config_file_is_an_error() {
    let problems = problems(&["--config", "/nonexistent/alsy.toml"], &[]);
    assert!(problems[0].starts_with("cannot read the config file /nonexistent/alsy.toml"));
}

#[test]
fn unknown_alsy_variables_are_errors() {
    assert_eq!(
        problems(&[], &[("ALSY__HTTP__ADRESS", "0.0.0.0:1")]),
        vec!["unknown setting ALSY__HTTP__ADRESS; did you mean ALSY__HTTP__ADDRESS?"]
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let problems = problems(
        &[],
        &[
            ("ALSY__SYNC__INTERVAL", "0s"),
            ("ALSY__LOG__LEVEL", "loud"),
            ("ALSY__STORAGE__KIND", "mysql"),
        ],
    );
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems[0].contains("ALSY__SYNC__INTERVAL=\"0s\": must be greater than zero"));
}

#[test]
fn min_conns_may_not_exceed_max_conns() {
    assert_eq!(
        problems(
            &[],
            &[
                ("ALSY__STORAGE__MIN_CONNS", "20"),
                ("ALSY__STORAGE__MAX_CONNS", "10")
            ]
        ),
        vec![
            "invalid settings: ALSY__STORAGE__MIN_CONNS=20 is greater than ALSY__STORAGE__MAX_CONNS=10"
        ]
    );
}

#[test]
fn retry_bounds_must_make_a_schedule() {
    assert_eq!(
        problems(
            &[],
            &[
                ("ALSY__SYNC__RETRY_BASE", "10s"),
                ("ALSY__SYNC__RETRY_MAX", "5s")
            ]
        ),
        vec![
            "invalid settings: ALSY__SYNC__RETRY_BASE=10s is longer than ALSY__SYNC__RETRY_MAX=5s"
        ]
    );
    for (name, value, problem) in [
        ("ALSY__SYNC__RETRY_BASE", "0s", "must be greater than zero"),
        ("ALSY__SYNC__RETRY_MAX", "0", "must be greater than zero"),
        ("ALSY__SYNC__RETRY_MAX", "2days", "must be at most 1day"),
        ("ALSY__SYNC__RETRY_BASE", "soon", "expected a duration"),
    ] {
        let found = problems(&[], &[(name, value)]);
        assert_eq!(found.len(), 1, "{name}={value}: {found:?}");
        assert!(
            found[0].contains(&format!("{name}=\"{value}\": {problem}")),
            "{found:?}"
        );
    }
    // A base above the default maximum needs a maximum too.
    assert_eq!(problems(&[], &[("ALSY__SYNC__RETRY_BASE", "10m")]).len(), 1);
}

#[test]
fn a_bad_url_is_reported_without_its_password() {
    let problems = problems(&[], &[("ALSY__STORAGE__URL", "mysql://root:hunter2@db/x")]);
    assert!(!problems[0].contains("hunter2"), "{problems:?}");
    assert!(problems[0].contains("root:***@db"), "{problems:?}");
}

#[test]
fn the_settings_of_adapters_not_in_use_are_checked_too() {
    assert_eq!(problems(&[], &[("ALSY__K8S__NAMESPACE", "Prod")]).len(), 1);
    for (name, value) in [
        ("ALSY__K8S__POD_SECURITY", "privileged"),
        ("ALSY__K8S__RUN_AS_USER", "0"),
        ("ALSY__K8S__RUN_AS_USER", "nobody"),
        ("ALSY__K8S__RUN_AS_GROUP", "2147483648"),
    ] {
        let found = problems(&[], &[(name, value)]);
        assert_eq!(found.len(), 1, "{name}={value}: {found:?}");
        assert!(found[0].contains(name), "{found:?}");
    }
    assert_eq!(
        problems(&[], &[("ALSY__STORAGE__READ_TIMEOUT", "0")]).len(),
        1
    );
}

#[test]
fn the_migrate_command_is_recognised() {
    let invocation = invocation_from(["alsy", "migrate"], env(&[])).unwrap();
    assert_eq!(invocation.command, Command::Migrate);
}

#[test]
fn help_exits_zero_and_bad_flags_exit_two() {
    let help = load(&["--help"], &[]).unwrap_err();
    assert_eq!(help.exit_code(), 0);
    let bad = load(&["--no-such-flag"], &[]).unwrap_err();
    assert_eq!(bad.exit_code(), 2);
    assert_eq!(problems(&[], &[("ALSY__LOG__FORMAT", "xml")]).len(), 1);
}

#[test]
fn the_redacted_view_hides_the_password() {
    let settings = load(&[], &[("ALSY__STORAGE__URL", "postgres://a:secret@h/d")]).unwrap();
    let shown = settings.redacted();
    let url = shown.iter().find(|(k, _)| *k == "storage.url").unwrap();
    assert_eq!(url.1, "postgres://a:***@h/d");
    assert_eq!(shown.len(), setting_names().len());
}

#[test]
fn a_kubeconfig_that_does_not_exist_is_a_bad_setting() {
    let err = load(&[], &[("ALSY__K8S__KUBECONFIG", "/nonexistent/kubeconfig")]).unwrap_err();
    assert!(err.to_string().contains("ALSY__K8S__KUBECONFIG"), "{err}");
    assert_eq!(err.exit_code(), 2);
    let unset = load(&[], &[("ALSY__K8S__KUBECONFIG", "")]).unwrap();
    assert_eq!(unset.k8s.kubeconfig, None);
}
