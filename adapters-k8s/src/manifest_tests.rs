//! Field-by-field checks of the pod alsy creates, and of how listed pods are read back.

use super::*;

use alsy_domain::{Algorithm, ClientId, ImageRef, Priority, Quantity as DomainQuantity, Version};
use k8s_openapi::api::core::v1::PodStatus;
use serde_json::json;

fn desired(algorithm: Algorithm, id: i64) -> DesiredPod {
    let client_id = ClientId::new(id).unwrap();
    DesiredPod {
        name: PodName::of(algorithm, client_id),
        client_id,
        algorithm,
        image: ImageRef::parse("registry.example.com/algos/vwap:1.4.2").unwrap(),
        cpu: DomainQuantity::parse("500m").unwrap(),
        mem: DomainQuantity::parse("512Mi").unwrap(),
        version: Version::parse(3).unwrap(),
        priority: Priority::parse(1.5).unwrap(),
        restart_mark: None,
    }
}

/// The manifest with the default settings: `restricted`.
fn pod_manifest_of(pod: &DesiredPod) -> Pod {
    pod_manifest(pod, PodSecurity::default())
}

fn container(pod: &Pod) -> &Container {
    let spec = pod.spec.as_ref().unwrap();
    assert_eq!(spec.containers.len(), 1, "exactly one container");
    &spec.containers[0]
}

fn string_map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn the_pod_is_named_after_its_algorithm_and_client_and_carries_alsys_labels() {
    let pod = pod_manifest_of(&desired(Algorithm::named("VWAP"), 7));
    assert_eq!(pod.metadata.name.as_deref(), Some("vwap-7"));
    assert_eq!(pod.metadata.namespace, None, "the Api sets the namespace");
    assert_eq!(
        pod.metadata.labels,
        Some(string_map(&[
            ("app.kubernetes.io/managed-by", "alsy"),
            ("app.kubernetes.io/name", "alsy-algorithm"),
            ("alsy.io/client-id", "7"),
            ("alsy.io/algorithm", "vwap"),
            ("alsy.io/version", "3"),
        ]))
    );
    assert_eq!(
        pod.metadata.annotations,
        Some(string_map(&[("alsy.io/priority", "1.5")]))
    );
    assert!(is_managed(&pod));
}

#[test]
fn one_container_named_algorithm_runs_the_clients_image() {
    let pod = pod_manifest_of(&desired(Algorithm::named("TWAP"), 1));
    let container = container(&pod);
    assert_eq!(container.name, "algorithm");
    assert_eq!(
        container.image.as_deref(),
        Some("registry.example.com/algos/vwap:1.4.2")
    );
    assert_eq!(container.command, None, "the image decides what runs");
}

#[test]
fn requests_equal_limits_from_the_clients_cpu_and_mem() {
    let pod = pod_manifest_of(&desired(Algorithm::named("VWAP"), 1));
    let resources = container(&pod).resources.as_ref().unwrap();
    let expected = BTreeMap::from([
        ("cpu".to_owned(), Quantity("500m".to_owned())),
        ("memory".to_owned(), Quantity("512Mi".to_owned())),
    ]);
    assert_eq!(resources.requests.as_ref(), Some(&expected));
    assert_eq!(resources.limits.as_ref(), Some(&expected));
}

#[test]
fn env_names_the_algorithm_the_client_and_its_version() {
    let pod = pod_manifest_of(&desired(Algorithm::named("HFT"), 42));
    let env: Vec<(&str, Option<&str>)> = container(&pod)
        .env
        .as_ref()
        .unwrap()
        .iter()
        .map(|var| {
            assert!(var.value_from.is_none());
            (var.name.as_str(), var.value.as_deref())
        })
        .collect();
    assert_eq!(
        env,
        vec![
            ("ALGORITHM", Some("HFT")),
            ("CLIENT_ID", Some("42")),
            ("CLIENT_VERSION", Some("3")),
        ]
    );
}

#[test]
fn the_pod_restarts_always_and_runs_with_least_privilege() {
    let pod = pod_manifest_of(&desired(Algorithm::named("VWAP"), 1));
    let spec = pod.spec.as_ref().unwrap();
    assert_eq!(spec.restart_policy.as_deref(), Some("Always"));
    assert_eq!(spec.automount_service_account_token, Some(false));
    let seccomp = spec
        .security_context
        .as_ref()
        .unwrap()
        .seccomp_profile
        .as_ref();
    assert_eq!(seccomp.map(|s| s.type_.as_str()), Some("RuntimeDefault"));
    let security = container(&pod).security_context.as_ref().unwrap();
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(
        security.capabilities.as_ref().unwrap().drop,
        Some(vec!["ALL".to_owned()])
    );
    assert_eq!(security.capabilities.as_ref().unwrap().add, None);
    assert_eq!(security.privileged, None);
    // Deliberately unset: many programs write to /tmp.
    assert_eq!(security.read_only_root_filesystem, None);
}

#[test]
fn by_default_the_pod_meets_pod_security_restricted_as_a_numeric_non_root_user() {
    let pod = pod_manifest_of(&desired(Algorithm::named("VWAP"), 1));
    let context = pod.spec.unwrap().security_context.unwrap();
    assert_eq!(context.run_as_non_root, Some(true));
    assert_eq!(context.run_as_user, Some(65532));
    assert_eq!(context.run_as_group, Some(65532));

    let chosen = PodSecurity::Restricted {
        run_as_user: 1000,
        run_as_group: 3000,
    };
    let context = pod_manifest(&desired(Algorithm::named("VWAP"), 1), chosen)
        .spec
        .unwrap()
        .security_context
        .unwrap();
    assert_eq!(
        (context.run_as_user, context.run_as_group),
        (Some(1000), Some(3000))
    );
}

#[test]
fn baseline_pods_run_as_the_images_user_with_the_rest_of_the_least_privilege_context() {
    let pod = pod_manifest(&desired(Algorithm::named("VWAP"), 1), PodSecurity::Baseline);
    let context = pod.spec.as_ref().unwrap().security_context.clone().unwrap();
    assert_eq!(context.run_as_non_root, None);
    assert_eq!(context.run_as_user, None);
    assert_eq!(context.run_as_group, None);
    assert_eq!(
        context.seccomp_profile.map(|s| s.type_),
        Some("RuntimeDefault".to_owned())
    );
    let security = container(&pod).security_context.as_ref().unwrap();
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(
        security.capabilities.as_ref().unwrap().drop,
        Some(vec!["ALL".to_owned()])
    );
}

#[test]
fn the_pod_serializes_to_exactly_the_fields_the_api_expects() {
    let pod = pod_manifest_of(&desired(Algorithm::named("VWAP"), 7));
    let expected = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "vwap-7",
            "labels": {
                "app.kubernetes.io/managed-by": "alsy",
                "app.kubernetes.io/name": "alsy-algorithm",
                "alsy.io/algorithm": "vwap",
                "alsy.io/client-id": "7",
                "alsy.io/version": "3"
            },
            "annotations": {"alsy.io/priority": "1.5"}
        },
        "spec": {
            "automountServiceAccountToken": false,
            "restartPolicy": "Always",
            "securityContext": {
                "runAsNonRoot": true,
                "runAsUser": 65532,
                "runAsGroup": 65532,
                "seccompProfile": {"type": "RuntimeDefault"}
            },
            "containers": [{
                "name": "algorithm",
                "image": "registry.example.com/algos/vwap:1.4.2",
                "env": [
                    {"name": "ALGORITHM", "value": "VWAP"},
                    {"name": "CLIENT_ID", "value": "7"},
                    {"name": "CLIENT_VERSION", "value": "3"}
                ],
                "resources": {
                    "requests": {"cpu": "500m", "memory": "512Mi"},
                    "limits": {"cpu": "500m", "memory": "512Mi"}
                },
                "securityContext": {
                    "allowPrivilegeEscalation": false,
                    "capabilities": {"drop": ["ALL"]}
                }
            }]
        }
    });
    let serialized = serde_json::to_value(&pod).unwrap();
    assert_eq!(serialized, expected, "no field more, no field less");
    let back: Pod = serde_json::from_value(serialized).unwrap();
    assert_eq!(back, pod, "round-trips through the API's JSON");
}

#[test]
fn label_values_are_valid_for_every_algorithm_and_extreme_ids() {
    let valid_value = |v: &str| {
        v.len() <= 63
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            && v.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && v.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
    };
    for algorithm in ["VWAP", "X", "A23456789012345"].map(Algorithm::named) {
        let mut pod = desired(algorithm, i64::MAX);
        pod.version = Version::parse(i32::MAX.into()).unwrap();
        let manifest = pod_manifest_of(&pod);
        for (key, value) in manifest.metadata.labels.unwrap() {
            assert!(valid_value(&value), "{key}={value}");
        }
    }
}

#[test]
fn a_configured_algorithms_name_is_the_env_and_its_lower_case_form_the_label_and_pod_name() {
    let pod = pod_manifest_of(&desired(Algorithm::named("X"), 168317));
    assert_eq!(pod.metadata.name.as_deref(), Some("x-168317"));
    assert_eq!(pod.metadata.labels.unwrap()["alsy.io/algorithm"], "x");
    let env = pod.spec.unwrap().containers[0].env.clone().unwrap();
    let algorithm = env.iter().find(|e| e.name == "ALGORITHM").unwrap();
    assert_eq!(algorithm.value.as_deref(), Some("X"));
}

#[test]
fn the_priority_annotation_keeps_the_number_exactly() {
    let mut pod = desired(Algorithm::named("VWAP"), 1);
    pod.priority = Priority::parse(0.1).unwrap();
    let annotations = pod_manifest_of(&pod).metadata.annotations.unwrap();
    let raw = &annotations["alsy.io/priority"];
    assert_eq!(raw.parse::<f64>().unwrap(), 0.1);
}

fn listed(name: &str, labels: &[(&str, &str)], phase: Option<&str>) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(string_map(labels)),
            ..ObjectMeta::default()
        },
        spec: None,
        status: phase.map(|p| PodStatus {
            phase: Some(p.to_owned()),
            ..PodStatus::default()
        }),
    }
}

const MANAGED: &[(&str, &str)] = &[("app.kubernetes.io/managed-by", "alsy")];

#[test]
fn listed_phases_map_to_domain_phases() {
    for (raw, phase) in [
        (Some("Pending"), PodPhase::Pending),
        (Some("Running"), PodPhase::Running),
        (Some("Succeeded"), PodPhase::Succeeded),
        (Some("Failed"), PodPhase::Failed),
        (Some("Unknown"), PodPhase::Unknown),
        (Some("Evicted?"), PodPhase::Unknown),
        (None, PodPhase::Pending),
    ] {
        let observed = observe(&listed("vwap-1", MANAGED, raw)).unwrap();
        assert_eq!(observed.name.as_str(), "vwap-1");
        assert_eq!(observed.phase, phase, "{raw:?}");
    }
}

#[test]
fn a_pod_with_a_deletion_timestamp_is_terminating_whatever_its_phase() {
    for raw in [Some("Running"), Some("Failed"), Some("Pending"), None] {
        let mut pod = listed("vwap-1", MANAGED, raw);
        pod.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Timestamp::now()),
        );
        assert_eq!(
            observe(&pod).unwrap().phase,
            PodPhase::Terminating,
            "{raw:?}"
        );
    }
}

#[test]
fn the_restart_mark_goes_on_the_pod_and_is_read_back_to_the_nanosecond() {
    let mark = SystemTime::UNIX_EPOCH + std::time::Duration::new(1_790_000_000, 123_456_789);
    let mut pod = desired(Algorithm::named("VWAP"), 1);
    assert!(
        !pod_manifest_of(&pod)
            .metadata
            .annotations
            .unwrap()
            .contains_key(RESTART_MARK_ANNOTATION),
        "no mark, no annotation"
    );
    pod.restart_mark = Some(mark);
    let mut manifest = pod_manifest_of(&pod);
    let annotations = manifest.metadata.annotations.clone().unwrap();
    assert_eq!(
        annotations[RESTART_MARK_ANNOTATION],
        "2026-09-21T14:13:20.123456789Z"
    );
    assert_eq!(observe(&manifest).unwrap().restart_mark, Some(mark));
    // A mark someone garbled reads as none: the pod is restarted again, never taken for a
    // replacement.
    manifest
        .metadata
        .annotations
        .as_mut()
        .unwrap()
        .insert(RESTART_MARK_ANNOTATION.into(), "yesterday".into());
    assert_eq!(observe(&manifest).unwrap().restart_mark, None);
}

#[test]
fn a_pod_without_alsys_label_is_never_observed() {
    for labels in [
        &[][..],
        &[("app.kubernetes.io/managed-by", "helm")][..],
        &[("app.kubernetes.io/name", "alsy-algorithm")][..],
    ] {
        assert_eq!(
            observe(&listed("vwap-1", labels, Some("Running"))),
            Err(Unobservable::Foreign)
        );
    }
}

#[test]
fn a_managed_pod_whose_name_is_not_a_dns_label_is_not_observed() {
    assert_eq!(
        observe(&listed("vwap.1", MANAGED, None)),
        Err(Unobservable::BadName("vwap.1".to_owned()))
    );
}
