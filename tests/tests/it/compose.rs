//! `docker-compose.yaml` and `.env.example`, checked without a Docker engine: the services, their
//! ports, health checks and start order, and that every `ALSY__*` name in the file is a setting
//! the configuration loader knows (and that every setting is listed for operators to see).

use std::collections::BTreeSet;

use serde_yaml::Value;

fn repo_file(path: &str) -> String {
    let full = format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("reading {full}: {e}"))
}

fn compose() -> Value {
    serde_yaml::from_str(&repo_file("docker-compose.yaml"))
        .expect("docker-compose.yaml is valid YAML")
}

fn service<'a>(compose: &'a Value, name: &str) -> &'a Value {
    let service = &compose["services"][name];
    assert!(service.is_mapping(), "service `{name}` is defined");
    service
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .map(|s| {
            s.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn storage_is_pinned_postgres_with_a_volume_a_healthcheck_and_credentials_from_env() {
    let compose = compose();
    let storage = service(&compose, "storage");
    let image = storage["image"].as_str().expect("storage has an image");
    let (name, tag) = image.split_once(':').expect("the image has a tag");
    assert_eq!(name, "postgres", "the official image");
    assert!(
        tag.split('.').next().unwrap().parse::<u32>().is_ok(),
        "major version pinned: {image}"
    );
    assert_eq!(strings(&storage["ports"]), ["5433:5432"]);

    let volume = strings(&storage["volumes"]).pop().expect("a volume");
    let (volume_name, mount) = volume.split_once(':').expect("name:path");
    assert_eq!(mount, "/var/lib/postgresql/data");
    assert!(
        compose["volumes"][volume_name].is_null() || compose["volumes"][volume_name].is_mapping()
    );
    assert!(
        compose["volumes"]
            .as_mapping()
            .unwrap()
            .contains_key(volume_name),
        "a named volume"
    );

    let test = strings(&storage["healthcheck"]["test"]).join(" ");
    assert!(test.contains("pg_isready"), "{test}");
    for key in ["POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD"] {
        let value = storage["environment"][key].as_str().unwrap_or_default();
        assert!(
            value.starts_with(&format!("${{{key}")),
            "{key} comes from .env: {value}"
        );
    }
}

#[test]
fn watcher_builds_from_the_repo_and_starts_once_storage_is_healthy() {
    let compose = compose();
    let watcher = service(&compose, "watcher");
    assert_eq!(watcher["build"].as_str(), Some("."));
    assert_eq!(strings(&watcher["ports"]), ["8081:8080"]);
    assert_eq!(
        watcher["depends_on"]["storage"]["condition"].as_str(),
        Some("service_healthy")
    );
    // `alsy healthcheck` asks /api/health: the runtime image has no curl.
    assert_eq!(
        strings(&watcher["healthcheck"]["test"]),
        ["CMD", "/usr/local/bin/alsy", "healthcheck"]
    );

    let env = &watcher["environment"];
    assert_eq!(env["ALSY__STORAGE__KIND"].as_str(), Some("postgres"));
    assert_eq!(env["ALSY__RUNTIME__KIND"].as_str(), Some("fake"));
    assert_eq!(
        env["ALSY__STORAGE__URL"].as_str(),
        Some(
            "postgres://${POSTGRES_USER:-alsy}:${POSTGRES_PASSWORD:-alsy}@storage:5432/${POSTGRES_DB:-alsy}"
        ),
        "the storage URL is built from the same .env"
    );
}

/// `ALSY__*` names in the file, set or commented out.
fn alsy_names_in(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim_start().trim_start_matches('#').trim_start();
            let name = line.split(':').next()?;
            let is_name = name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
            (name.starts_with("ALSY__") && is_name).then(|| name.to_owned())
        })
        .collect()
}

#[test]
fn every_alsy_name_in_the_compose_file_is_a_known_setting_and_every_setting_is_listed() {
    let known: BTreeSet<String> = alsy::config::setting_names().into_iter().collect();
    let listed = alsy_names_in(&repo_file("docker-compose.yaml"));
    let unknown: Vec<_> = listed.difference(&known).collect();
    assert!(
        unknown.is_empty(),
        "names the config loader does not know: {unknown:?}"
    );
    let missing: Vec<_> = known.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "settings an operator can't see in docker-compose.yaml: {missing:?}"
    );
}

#[test]
fn the_compose_files_commented_settings_show_the_real_defaults() {
    let compose = repo_file("docker-compose.yaml");
    let block = compose
        .split("# Every other setting, with its default.")
        .nth(1)
        .and_then(|rest| rest.split("#\n").next())
        .expect("docker-compose.yaml lists every other setting with its default");
    let defaults: std::collections::BTreeMap<String, Option<String>> =
        alsy::config::default_values().into_iter().collect();
    let mut checked = 0;
    for line in block.lines() {
        let line = line.trim_start().trim_start_matches('#').trim();
        let Some((name, value)) = line.split_once(": ") else {
            continue;
        };
        // A value followed by a remark is an example for a setting that is unset or empty by
        // default; the remark says so.
        let value = value
            .split("  ")
            .next()
            .unwrap_or_default()
            .trim_matches('"');
        match &defaults[name] {
            Some(default) if !default.is_empty() => {
                assert_eq!(value, default, "docker-compose.yaml: {name}");
                checked += 1;
            }
            _ => {}
        }
    }
    assert!(
        checked >= 20,
        "only {checked} defaults found in the compose file"
    );
}

#[test]
fn env_example_defines_the_credentials_compose_uses() {
    let example = repo_file(".env.example");
    for key in ["POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD"] {
        assert!(
            example
                .lines()
                .any(|l| l.starts_with(&format!("{key}=")) && l.len() > key.len() + 1),
            "{key} has a value in .env.example"
        );
    }
}

#[test]
fn dockerignore_keeps_build_output_and_git_out_of_the_context() {
    let ignored = repo_file(".dockerignore");
    for entry in ["target", ".git"] {
        assert!(
            ignored.lines().any(|l| l.trim_end_matches('/') == entry),
            "{entry} is ignored"
        );
    }
}

#[test]
fn the_dockerfile_builds_locked_in_release_and_runs_as_a_named_non_root_user() {
    let dockerfile = repo_file("Dockerfile");
    assert!(dockerfile.contains("cargo build --release --locked -p alsy"));
    let stages = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .count();
    assert!(stages >= 2, "multi-stage");
    let runtime_stage = dockerfile.rsplit("\nFROM ").next().unwrap();
    assert!(runtime_stage.contains("ca-certificates"));
    let user = runtime_stage
        .lines()
        .find(|l| l.starts_with("USER "))
        .expect("a USER in the runtime stage");
    let (uid, gid) = user["USER ".len()..]
        .trim()
        .split_once(':')
        .expect("USER uid:gid");
    assert!(uid != "0" && !uid.contains("root"), "{user}");
    assert_eq!(uid, gid, "the group has the user's id");
    // Named, with the same id, and not --system: useradd warns about a system uid above 999.
    assert!(
        runtime_stage.contains(&format!("groupadd --gid {gid} alsy")),
        "a group named alsy with gid {gid}"
    );
    assert!(
        runtime_stage.contains(&format!("useradd --uid {uid} --gid alsy")),
        "a user named alsy with uid {uid} in that group"
    );
    let useradd = runtime_stage
        .lines()
        .find(|l| !l.trim_start().starts_with('#') && l.contains("useradd "))
        .expect("useradd");
    assert!(!useradd.contains("--system"), "no system user: {useradd}");
}

#[test]
fn the_dockerfile_follows_the_workspace_and_needs_no_frontend_image() {
    let dockerfile = repo_file("Dockerfile");
    // A `syntax` directive makes every BuildKit build fetch a frontend image from a registry.
    assert!(
        !dockerfile
            .lines()
            .any(|l| l.trim_start().starts_with('#') && l.contains("syntax=")),
        "no syntax directive"
    );
    // The dependency layer comes from cargo-chef's recipe of the whole workspace, never from a
    // hand-kept list of crate manifests that a new crate would have to join.
    assert!(dockerfile.contains("cargo chef prepare"));
    assert!(dockerfile.contains("cargo chef cook --release --locked -p alsy"));
    let copied_manifests: Vec<&str> = dockerfile
        .lines()
        .filter(|l| l.starts_with("COPY ") && l.contains("/Cargo.toml"))
        .collect();
    assert!(
        copied_manifests.is_empty(),
        "a hand-kept crate list: {copied_manifests:?}"
    );
    // BuildKit-only syntax would break the legacy builder (DOCKER_BUILDKIT=0).
    for buildkit_only in ["--mount=", "--chmod=", "--link", "<<"] {
        assert!(!dockerfile.contains(buildkit_only), "{buildkit_only}");
    }
}

#[test]
fn the_compose_file_has_only_what_compose_1_29_accepts() {
    let compose = compose();
    // Compose 1.29 rejects a top-level `name:` (and any key it does not know but `x-*`).
    let allowed = [
        "version", "services", "volumes", "networks", "configs", "secrets",
    ];
    for key in compose.as_mapping().expect("a mapping").keys() {
        let key = key.as_str().expect("string keys");
        assert!(
            allowed.contains(&key) || key.starts_with("x-"),
            "top-level `{key}` breaks docker-compose 1.29"
        );
    }
}

#[test]
fn env_example_says_the_volume_keeps_the_first_credentials_and_names_the_project() {
    let example = repo_file(".env.example");
    assert!(
        example.contains("docker compose down -v"),
        "how to reset credentials"
    );
    assert!(
        example
            .lines()
            .any(|l| l.starts_with("COMPOSE_PROJECT_NAME=") && l.len() > 21),
        "a project name Compose 1.29 accepts"
    );
}
