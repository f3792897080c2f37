//! The manifests in `deploy/` parse strictly into k8s-openapi types, grant alsy nothing beyond
//! pods get/list/watch/create/delete in its namespace, wire probes, ports, security context and
//! service account together, and name only settings the config loader knows.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, Namespace, Probe, Secret, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// Every manifest file by name, as JSON.
fn manifests() -> BTreeMap<String, Value> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(deploy_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".yaml") || name.ends_with(".yml") {
            let text = std::fs::read_to_string(&path).unwrap();
            let value: Value = serde_yaml::from_str(&text)
                .unwrap_or_else(|e| panic!("{name} is not one YAML document: {e}"));
            files.insert(name, value);
        }
    }
    files
}

/// Decodes `raw` as `T` and fails on any field `T` does not have (k8s-openapi ignores them, the
/// API server with strict validation does not).
fn strict<T: DeserializeOwned + serde::Serialize>(file: &str, raw: &Value) -> T {
    let typed: T = serde_json::from_value(raw.clone())
        .unwrap_or_else(|e| panic!("{file} does not parse as its kind: {e}"));
    let back = serde_json::to_value(&typed).unwrap();
    if let Some(path) = unknown_field(raw, &back, String::new()) {
        panic!("{file}: unknown field `{path}`");
    }
    typed
}

fn unknown_field(raw: &Value, typed: &Value, path: String) -> Option<String> {
    match (raw, typed) {
        (Value::Object(raw), Value::Object(typed)) => raw.iter().find_map(|(key, value)| {
            let path = format!("{path}.{key}");
            match typed.get(key) {
                None => Some(path),
                Some(inner) => unknown_field(value, inner, path),
            }
        }),
        (Value::Array(raw), Value::Array(typed)) => raw
            .iter()
            .zip(typed)
            .enumerate()
            .find_map(|(i, (r, t))| unknown_field(r, t, format!("{path}[{i}]"))),
        _ => None,
    }
}

fn one_of_kind<T: DeserializeOwned + serde::Serialize>(kind: &str) -> (String, T) {
    let files = manifests();
    let mut found = files
        .iter()
        .filter(|(_, v)| v["kind"] == kind)
        .map(|(file, v)| (file.clone(), strict::<T>(file, v)));
    let first = found
        .next()
        .unwrap_or_else(|| panic!("no {kind} in deploy/"));
    assert!(found.next().is_none(), "more than one {kind}");
    first
}

#[test]
fn every_manifest_parses_strictly_into_its_kubernetes_type() {
    let files = manifests();
    for (file, raw) in &files {
        let kind = raw["kind"].as_str().unwrap_or_default();
        match kind {
            "Namespace" => drop(strict::<Namespace>(file, raw)),
            "ServiceAccount" => drop(strict::<ServiceAccount>(file, raw)),
            "Role" => drop(strict::<Role>(file, raw)),
            "RoleBinding" => drop(strict::<RoleBinding>(file, raw)),
            "Deployment" => drop(strict::<Deployment>(file, raw)),
            "Service" => drop(strict::<Service>(file, raw)),
            "Secret" => drop(strict::<Secret>(file, raw)),
            "Kustomization" => {}
            other => panic!("{file}: unexpected kind `{other}` (a ClusterRole has no place here)"),
        }
        if kind != "Kustomization" && kind != "Namespace" {
            assert_eq!(
                raw["metadata"]["namespace"], "alsy",
                "{file} in alsy's namespace"
            );
        }
    }
}

#[test]
fn the_kustomization_applies_every_manifest_but_the_example_secrets() {
    let files = manifests();
    let kustomization = &files["kustomization.yaml"];
    let listed: BTreeSet<&str> = kustomization["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    let expected: BTreeSet<&str> = files
        .keys()
        .map(String::as_str)
        .filter(|f| *f != "kustomization.yaml" && !f.ends_with(".example.yaml"))
        .collect();
    assert_eq!(listed, expected);
    assert_eq!(kustomization["namespace"], "alsy");
}

#[test]
fn the_role_grants_pods_get_list_watch_create_delete_and_nothing_more() {
    let (_, role) = one_of_kind::<Role>("Role");
    let rules = role.rules.unwrap_or_default();
    assert_eq!(rules.len(), 1, "one rule: {rules:?}");
    let rule = &rules[0];
    assert_eq!(
        rule.api_groups.as_deref(),
        Some(&[String::new()][..]),
        "core group only"
    );
    assert_eq!(
        rule.resources.as_deref(),
        Some(&["pods".to_owned()][..]),
        "pods only, no subresources"
    );
    let verbs: BTreeSet<&str> = rule.verbs.iter().map(String::as_str).collect();
    assert_eq!(
        verbs,
        BTreeSet::from(["get", "list", "watch", "create", "delete"])
    );
    assert!(rule.non_resource_urls.is_none() && rule.resource_names.is_none());

    let (_, binding) = one_of_kind::<RoleBinding>("RoleBinding");
    let (_, account) = one_of_kind::<ServiceAccount>("ServiceAccount");
    assert_eq!(binding.role_ref.kind, "Role", "not a ClusterRole");
    assert_eq!(Some(&binding.role_ref.name), role.metadata.name.as_ref());
    let subjects = binding.subjects.unwrap_or_default();
    assert_eq!(subjects.len(), 1);
    assert_eq!(subjects[0].kind, "ServiceAccount");
    assert_eq!(Some(&subjects[0].name), account.metadata.name.as_ref());
    assert_eq!(subjects[0].namespace, account.metadata.namespace);
}

fn the_container(deployment: &Deployment) -> Container {
    let spec = deployment
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap();
    assert_eq!(spec.containers.len(), 1);
    spec.containers[0].clone()
}

fn http_get(probe: Option<&Probe>) -> (String, IntOrString) {
    let action = probe
        .and_then(|p| p.http_get.as_ref())
        .expect("an httpGet probe");
    (action.path.clone().unwrap_or_default(), action.port.clone())
}

#[test]
fn the_deployment_probes_serves_on_8080_and_runs_least_privileged_as_alsys_account() {
    let (_, deployment) = one_of_kind::<Deployment>("Deployment");
    let (_, account) = one_of_kind::<ServiceAccount>("ServiceAccount");
    let spec = deployment.spec.as_ref().unwrap();
    let pod = spec.template.spec.as_ref().unwrap();
    assert_eq!(pod.service_account_name, account.metadata.name);
    assert_ne!(
        pod.automount_service_account_token,
        Some(false),
        "alsy needs its token"
    );

    let container = the_container(&deployment);
    let ports = container.ports.clone().unwrap_or_default();
    assert_eq!(ports.len(), 1);
    assert_eq!(
        (ports[0].container_port, ports[0].name.as_deref()),
        (8080, Some("http"))
    );
    let http = IntOrString::String("http".into());
    let port_8080 = IntOrString::Int(8080);
    let (live, live_port) = http_get(container.liveness_probe.as_ref());
    let (ready, ready_port) = http_get(container.readiness_probe.as_ref());
    assert_eq!(live, "/api/health");
    assert_eq!(ready, "/api/ready");
    for port in [live_port, ready_port] {
        assert!(port == http || port == port_8080, "{port:?}");
    }

    let resources = container.resources.clone().unwrap_or_default();
    for map in [&resources.requests, &resources.limits] {
        let map = map.as_ref().expect("requests and limits");
        assert!(
            map.contains_key("cpu") && map.contains_key("memory"),
            "{map:?}"
        );
    }

    let pod_security = pod.security_context.clone().unwrap_or_default();
    assert_eq!(pod_security.run_as_non_root, Some(true));
    assert!(pod_security.run_as_user.is_some_and(|uid| uid > 0));
    let security = container.security_context.clone().unwrap_or_default();
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.privileged, None);
    let capabilities = security.capabilities.unwrap_or_default();
    assert_eq!(capabilities.drop, Some(vec!["ALL".to_owned()]));
    assert_eq!(capabilities.add, None);

    let template_labels = spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone());
    assert_eq!(spec.selector.match_labels, template_labels);
}

#[test]
fn the_service_reaches_the_deployments_http_port() {
    let (_, deployment) = one_of_kind::<Deployment>("Deployment");
    let (_, service) = one_of_kind::<Service>("Service");
    let spec = service.spec.unwrap();
    let template = deployment.spec.unwrap().template;
    let labels = template.metadata.and_then(|m| m.labels).unwrap_or_default();
    let selector = spec.selector.expect("a selector");
    assert!(
        selector.iter().all(|(k, v)| labels.get(k) == Some(v)),
        "{selector:?} vs {labels:?}"
    );
    let ports = spec.ports.unwrap_or_default();
    assert_eq!(ports.len(), 1);
    let target = ports[0].target_port.clone().expect("a target port");
    assert!(target == IntOrString::String("http".into()) || target == IntOrString::Int(8080));
}

#[test]
fn the_deployment_runs_the_kubernetes_runtime_with_the_storage_url_from_the_secret() {
    let (_, deployment) = one_of_kind::<Deployment>("Deployment");
    let secret = secret_named("alsy-storage");
    let env = the_container(&deployment).env.unwrap_or_default();
    let var = |name: &str| {
        env.iter()
            .find(|v| v.name == name)
            .unwrap_or_else(|| panic!("{name}"))
    };
    assert_eq!(
        var("ALSY__RUNTIME__KIND").value.as_deref(),
        Some("kubernetes")
    );
    let from = var("ALSY__STORAGE__URL")
        .value_from
        .as_ref()
        .and_then(|f| f.secret_key_ref.as_ref());
    let from = from.expect("ALSY__STORAGE__URL comes from a Secret");
    assert_eq!(Some(&from.name), secret.metadata.name.as_ref());
    let keys = secret.string_data.unwrap_or_default();
    assert!(
        keys.contains_key(&from.key),
        "the example Secret has key {}",
        from.key
    );
    assert!(
        var("ALSY__STORAGE__URL").value.is_none(),
        "no URL in plain text"
    );
}

/// The example Secret named `name`.
fn secret_named(name: &str) -> Secret {
    let files = manifests();
    let mut found = files
        .iter()
        .filter(|(_, v)| v["kind"] == "Secret" && v["metadata"]["name"] == name)
        .map(|(file, v)| strict::<Secret>(file, v));
    let secret = found
        .next()
        .unwrap_or_else(|| panic!("no Secret {name} in deploy/"));
    assert!(found.next().is_none(), "more than one Secret {name}");
    secret
}

#[test]
fn the_deployment_requires_bearer_tokens_from_a_mounted_secret() {
    let (_, deployment) = one_of_kind::<Deployment>("Deployment");
    let container = the_container(&deployment);
    let env = container.env.clone().unwrap_or_default();
    let file = env
        .iter()
        .find(|v| v.name == "ALSY__AUTH__TOKENS_FILE")
        .and_then(|v| v.value.clone())
        .expect("the Deployment sets ALSY__AUTH__TOKENS_FILE: the API is not open");
    let mounts = container.volume_mounts.clone().unwrap_or_default();
    let mount = mounts
        .iter()
        .find(|m| file.starts_with(&format!("{}/", m.mount_path)))
        .expect("the tokens file is inside a mount");
    assert_eq!(mount.read_only, Some(true));
    let volumes = deployment
        .spec
        .and_then(|s| s.template.spec)
        .and_then(|s| s.volumes)
        .unwrap_or_default();
    let volume = volumes
        .iter()
        .find(|v| v.name == mount.name)
        .expect("the mount's volume");
    let from = volume.secret.as_ref().expect("the volume is a Secret");
    let secret = secret_named(from.secret_name.as_deref().unwrap_or_default());
    let key = file.rsplit('/').next().unwrap_or_default();
    let text = secret.string_data.unwrap_or_default();
    let lines = text
        .get(key)
        .expect("the example Secret holds the file's key");
    alsy_http::Tokens::parse(lines).expect("the example tokens file parses");
}

#[test]
fn every_alsy_setting_the_deployment_names_is_one_the_config_loader_knows() {
    let (_, deployment) = one_of_kind::<Deployment>("Deployment");
    let known: BTreeSet<String> = alsy::config::setting_names().into_iter().collect();
    let env = the_container(&deployment).env.unwrap_or_default();
    let named: Vec<&str> = env
        .iter()
        .map(|v| v.name.as_str())
        .filter(|n| n.starts_with("ALSY"))
        .collect();
    assert!(!named.is_empty());
    for name in named {
        assert!(
            known.contains(name),
            "{name} is not a setting alsy knows ({known:?})"
        );
    }
}
