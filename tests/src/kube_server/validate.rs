//! The checks the test API server makes on a pod sent to `POST .../pods`, a subset of what the
//! real API server validates, with its status codes: 400 for a body it cannot decode (including
//! unknown fields, as with `fieldValidation=Strict`), 422 `Invalid` for a decodable but invalid pod.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;

/// Why a pod was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 400 BadRequest.
    BadRequest(String),
    /// 422 Invalid.
    Invalid(String),
}

/// Decodes and checks a pod for `namespace`.
pub fn pod_for_create(body: &[u8], namespace: &str) -> Result<Pod, Refusal> {
    let raw: Value = serde_json::from_slice(body)
        .map_err(|e| Refusal::BadRequest(format!("the body is not JSON: {e}")))?;
    let pod: Pod = serde_json::from_value(raw.clone())
        .map_err(|e| Refusal::BadRequest(format!("cannot decode the body as a Pod: {e}")))?;
    // k8s-openapi drops fields it does not know; what did not survive was unknown.
    let decoded = serde_json::to_value(&pod).map_err(|e| Refusal::BadRequest(e.to_string()))?;
    if let Some(path) = first_unknown_field(&raw, &decoded, String::new()) {
        return Err(Refusal::BadRequest(format!(
            "strict decoding error: unknown field \"{path}\""
        )));
    }
    if raw.get("kind").and_then(Value::as_str) != Some("Pod")
        || raw.get("apiVersion").and_then(Value::as_str) != Some("v1")
    {
        return Err(Refusal::BadRequest(
            "expected kind Pod, apiVersion v1".into(),
        ));
    }
    let meta = &pod.metadata;
    if meta.namespace.as_deref().is_some_and(|ns| ns != namespace) {
        return Err(Refusal::BadRequest(
            "the namespace of the provided object does not match the namespace sent on the request"
                .into(),
        ));
    }
    if meta.resource_version.is_some() {
        return Err(Refusal::BadRequest(
            "resourceVersion should not be set on objects to be created".into(),
        ));
    }
    let mut problems = Vec::new();
    match meta.name.as_deref() {
        Some(name) if is_dns_subdomain(name) => {}
        Some(name) => problems.push(format!("metadata.name: Invalid value: \"{name}\"")),
        None => problems.push("metadata.name: Required value".into()),
    }
    check_keys(meta.labels.as_ref(), "metadata.labels", true, &mut problems);
    check_keys(
        meta.annotations.as_ref(),
        "metadata.annotations",
        false,
        &mut problems,
    );
    match &pod.spec {
        None => problems.push("spec: Required value".into()),
        Some(spec) => {
            if spec.containers.is_empty() {
                problems.push("spec.containers: Required value".into());
            }
            for (i, c) in spec.containers.iter().enumerate() {
                if !is_dns_label(&c.name) {
                    problems.push(format!("spec.containers[{i}].name: Invalid value"));
                }
                if c.image.as_deref().is_none_or(str::is_empty) {
                    problems.push(format!("spec.containers[{i}].image: Required value"));
                }
                for var in c.env.iter().flatten() {
                    if !is_env_name(&var.name) {
                        problems.push(format!("spec.containers[{i}].env.name: Invalid value"));
                    }
                }
                let resources = c.resources.iter();
                let quantities = resources
                    .flat_map(|r| r.requests.iter().chain(r.limits.iter()))
                    .flatten();
                for (resource, quantity) in quantities {
                    if !is_quantity(&quantity.0) {
                        problems.push(format!(
                            "spec.containers[{i}].resources.{resource}: Invalid value: \"{}\"",
                            quantity.0
                        ));
                    }
                }
            }
            let policy = spec.restart_policy.as_deref();
            if policy.is_some_and(|p| !["Always", "OnFailure", "Never"].contains(&p)) {
                problems.push("spec.restartPolicy: Unsupported value".into());
            }
        }
    }
    if problems.is_empty() {
        Ok(pod)
    } else {
        Err(Refusal::Invalid(problems.join(", ")))
    }
}

/// The path of the first field of `raw` missing from `decoded`.
fn first_unknown_field(raw: &Value, decoded: &Value, path: String) -> Option<String> {
    match (raw, decoded) {
        (Value::Object(raw), Value::Object(decoded)) => raw.iter().find_map(|(key, value)| {
            let path = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            match decoded.get(key) {
                None if !value.is_null() => Some(path),
                None => None,
                Some(inner) => first_unknown_field(value, inner, path),
            }
        }),
        (Value::Array(raw), Value::Array(decoded)) => raw
            .iter()
            .zip(decoded)
            .enumerate()
            .find_map(|(i, (r, d))| first_unknown_field(r, d, format!("{path}[{i}]"))),
        _ => None,
    }
}

fn check_keys(
    map: Option<&BTreeMap<String, String>>,
    field: &str,
    values_are_labels: bool,
    problems: &mut Vec<String>,
) {
    for (key, value) in map.into_iter().flatten() {
        if !is_qualified_name(key) {
            problems.push(format!(
                "{field}: Invalid value: \"{key}\": name part must be valid"
            ));
        }
        if values_are_labels && !is_label_value(value) {
            problems.push(format!("{field}: Invalid value: \"{value}\": a valid label must be 63 characters or less, alphanumeric, '-', '_' or '.'"));
        }
    }
}

/// `[prefix/]name`: prefix a DNS subdomain, name ≤ 63 alphanumerics with `-_.` inside.
fn is_qualified_name(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    prefix.is_none_or(is_dns_subdomain) && !name.is_empty() && is_label_value(name)
}

/// Empty, or ≤ 63 characters of alphanumerics and `-_.` starting and ending alphanumeric.
fn is_label_value(value: &str) -> bool {
    let b = value.as_bytes();
    b.is_empty()
        || (b.len() <= 63
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(c))
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric())
}

/// Lower-case alphanumerics and `-`, ≤ 63, alphanumeric at both ends.
fn is_dns_label(value: &str) -> bool {
    let b = value.as_bytes();
    let ok = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| ok(c) || *c == b'-')
        && ok(&b[0])
        && ok(&b[b.len() - 1])
}

/// DNS labels joined by dots, ≤ 253.
fn is_dns_subdomain(value: &str) -> bool {
    value.len() <= 253 && value.split('.').all(is_dns_label)
}

/// `[-._a-zA-Z][-._a-zA-Z0-9]*`.
fn is_env_name(value: &str) -> bool {
    let valid = |c: char, first: bool| {
        c.is_ascii_alphabetic() || "-._".contains(c) || (!first && c.is_ascii_digit())
    };
    value.chars().enumerate().all(|(i, c)| valid(c, i == 0)) && !value.is_empty()
}

/// A loose check of Kubernetes' quantity grammar: a signed decimal then a known suffix.
fn is_quantity(value: &str) -> bool {
    let unsigned = value.strip_prefix(['+', '-']).unwrap_or(value);
    let split = unsigned
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(unsigned.len());
    let (number, suffix) = unsigned.split_at(split);
    let suffixes = [
        "", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P", "E",
    ];
    let exponent = suffix
        .strip_prefix(['e', 'E'])
        .map(|e| e.strip_prefix(['+', '-']).unwrap_or(e))
        .is_some_and(|e| !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()));
    number.bytes().any(|b| b.is_ascii_digit())
        && number.bytes().filter(|b| *b == b'.').count() <= 1
        && (suffixes.contains(&suffix) || exponent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "vwap-1", "labels": {"app.kubernetes.io/managed-by": "alsy"}},
            "spec": {"containers": [{"name": "algorithm", "image": "nginx",
                "resources": {"limits": {"cpu": "500m", "memory": "512Mi"}}}]}})
    }

    fn check(body: &Value) -> Result<Pod, Refusal> {
        pod_for_create(body.to_string().as_bytes(), "ns")
    }

    #[test]
    fn a_valid_pod_is_accepted() {
        assert!(check(&pod()).is_ok());
    }

    #[test]
    fn unknown_fields_are_a_bad_request() {
        let mut body = pod();
        body["spec"]["containers"][0]["cpus"] = json!(2);
        assert_eq!(
            check(&body).unwrap_err(),
            Refusal::BadRequest(
                "strict decoding error: unknown field \"spec.containers[0].cpus\"".into()
            )
        );
    }

    #[test]
    fn invalid_names_labels_and_quantities_are_invalid() {
        for (pointer, value) in [
            ("/metadata/name", json!("VWAP_1")),
            ("/metadata/labels/alsy.io~1algorithm", json!("VWAP!")),
            ("/spec/containers/0/resources/limits/cpu", json!("lots")),
            ("/spec/restartPolicy", json!("Sometimes")),
        ] {
            let mut body = pod();
            let (parent, key) = pointer.rsplit_once('/').unwrap();
            body.pointer_mut(parent).unwrap()[key.replace("~1", "/")] = value;
            assert!(
                matches!(check(&body), Err(Refusal::Invalid(_))),
                "{pointer}"
            );
        }
    }

    #[test]
    fn a_namespace_other_than_the_paths_is_refused() {
        let mut body = pod();
        body["metadata"]["namespace"] = json!("other");
        assert!(matches!(check(&body), Err(Refusal::BadRequest(_))));
    }
}
