//! What can go wrong: [`KubeError`] at start-up, and how an API call's failure becomes the port's
//! [`RuntimeError`] (retryable `Unavailable`, `Throttled` with the server's `Retry-After`, or
//! final `Rejected`).

use std::time::Duration;

use alsy_app::RuntimeError;
use alsy_domain::PodName;

/// Why the Kubernetes runtime could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// Neither a kubeconfig (`KUBECONFIG`, `~/.kube/config`) nor an in-cluster service account.
    #[error("no Kubernetes configuration found (KUBECONFIG, ~/.kube/config, in-cluster): {0}")]
    NoConfig(#[source] kube::config::InferConfigError),
    /// A kubeconfig file given explicitly could not be read or used.
    #[error("kubeconfig {path}: {source}")]
    Kubeconfig {
        /// The file.
        path: String,
        /// What was wrong with it.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// The API server URL would make every request fail (kube panics on a URL without a scheme).
    #[error(
        "Kubernetes API server URL `{0}` must be absolute with a scheme, like https://host:6443"
    )]
    ServerUrl(String),
    /// The namespace is not a DNS-1123 label.
    #[error(
        "namespace `{0}` is not valid: at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit"
    )]
    Namespace(String),
    /// A setting would make every call fail.
    #[error("{setting} {problem}")]
    Setting {
        /// The environment name of the setting.
        setting: &'static str,
        /// What is wrong with its value.
        problem: &'static str,
    },
    /// kube could not build a client from the configuration (TLS, credentials).
    #[error("cannot build the Kubernetes client: {0}")]
    Client(#[source] kube::Error),
}

/// What an operation on `pod` (or on the list, `None`) made of a failed call.
pub(crate) fn runtime_error(
    pod: Option<&PodName>,
    what: &str,
    timeout: Duration,
    error: CallError,
) -> RuntimeError {
    let pod = pod.cloned();
    match error {
        CallError::TimedOut => RuntimeError::Unavailable {
            pod,
            detail: format!(
                "{what}: no answer within {}",
                humantime::format_duration(timeout)
            ),
        },
        CallError::Kube(error) if is_retryable(&error) => match retry_after(&error) {
            Some(retry_after) => RuntimeError::Throttled {
                pod,
                detail: format!("{what}: {}", describe(&error)),
                retry_after,
            },
            None => RuntimeError::Unavailable {
                pod,
                detail: format!("{what}: {}", describe(&error)),
            },
        },
        CallError::Kube(error) => RuntimeError::Rejected {
            pod,
            detail: format!("{what}: {}", describe(&error)),
        },
    }
}

/// A failed API call: no answer in time, or kube's error.
#[derive(Debug)]
pub(crate) enum CallError {
    /// The request timeout passed.
    TimedOut,
    /// kube returned an error.
    Kube(kube::Error),
}

impl CallError {
    /// 409 on create: the pod exists already (counts as success).
    pub(crate) fn is_already_exists(&self) -> bool {
        matches!(self, CallError::Kube(kube::Error::Api(s)) if s.code == 409 || s.reason == "AlreadyExists")
    }

    /// 404: the pod is gone (counts as success on delete).
    pub(crate) fn is_not_found(&self) -> bool {
        matches!(self, CallError::Kube(kube::Error::Api(s)) if s.code == 404 || s.reason == "NotFound")
    }
}

/// 429, 5xx, 408, and the reasons the API server uses for them; connection failures; garbled
/// answers (a proxy in the way). Other 4xx — invalid object, forbidden, unauthorised — won't
/// change by retrying.
fn is_retryable(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => {
            let retryable_reason = matches!(
                status.reason.as_str(),
                "TooManyRequests"
                    | "ServiceUnavailable"
                    | "InternalError"
                    | "Timeout"
                    | "ServerTimeout"
            );
            let code = status.code;
            retryable_reason || code == 429 || code == 408 || code >= 500 || code == 0
        }
        kube::Error::HyperError(_)
        | kube::Error::Service(_)
        | kube::Error::SerdeError(_)
        | kube::Error::FromUtf8(_)
        | kube::Error::ReadEvents(_)
        | kube::Error::Auth(_) => true,
        _ => false,
    }
}

/// The wait the API server asked for: `details.retryAfterSeconds` of the `Status`, where
/// kube-apiserver puts it on a 429 and [`crate::retry_after`] copies a `Retry-After` header.
fn retry_after(error: &kube::Error) -> Option<Duration> {
    match error {
        kube::Error::Api(status) => status
            .details
            .as_ref()
            .map(|details| details.retry_after_seconds)
            .filter(|seconds| *seconds > 0)
            .map(|seconds| Duration::from_secs(u64::from(seconds))),
        _ => None,
    }
}

/// kube's messages repeat themselves (`ApiError: m: r (Status {..})`); keep the useful part.
fn describe(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => {
            let message = if status.message.is_empty() {
                "no message"
            } else {
                status.message.as_str()
            };
            let hint = if message.contains("violates PodSecurity") {
                " (the namespace's Pod Security admission refused the pod; \
                 ALSY__K8S__POD_SECURITY sets the level alsy's pods are built for)"
            } else {
                ""
            };
            if status.reason.is_empty() {
                format!("HTTP {}: {message}{hint}", status.code)
            } else {
                format!("HTTP {} {}: {message}{hint}", status.code, status.reason)
            }
        }
        other => {
            // Service errors wrap the cause (connection refused) a level or two down.
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(cause) = source {
                let cause_text = cause.to_string();
                if !text.contains(&cause_text) {
                    text = format!("{text}: {cause_text}");
                }
                source = cause.source();
            }
            text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn api(code: u16, reason: &str) -> CallError {
        CallError::Kube(kube::Error::Api(
            Status::failure("the server says so", reason)
                .with_code(code)
                .boxed(),
        ))
    }

    fn pod() -> PodName {
        PodName::parse("vwap-1").unwrap()
    }

    #[test]
    fn throttling_server_errors_and_timeouts_are_unavailable_and_name_the_pod() {
        for error in [
            api(429, "TooManyRequests"),
            api(500, "InternalError"),
            api(503, "ServiceUnavailable"),
            api(504, "Timeout"),
            api(502, "Failed to parse error data"),
            CallError::TimedOut,
        ] {
            let error = runtime_error(Some(&pod()), "create", Duration::from_secs(10), error);
            assert!(error.is_retryable(), "{error}");
            assert!(error.to_string().contains("pod vwap-1"), "{error}");
        }
    }

    #[test]
    fn a_wait_the_server_asked_for_makes_the_failure_throttled() {
        let mut status = Status::failure("slow down", "TooManyRequests").with_code(429);
        status.details =
            Some(serde_json::from_value(serde_json::json!({"retryAfterSeconds": 3})).unwrap());
        let error = runtime_error(
            Some(&pod()),
            "create",
            Duration::from_secs(1),
            CallError::Kube(kube::Error::Api(status.boxed())),
        );
        assert!(
            matches!(&error, RuntimeError::Throttled { retry_after, .. } if *retry_after == Duration::from_secs(3)),
            "{error:?}"
        );
        assert!(error.is_retryable());
        assert_eq!(
            error.to_string(),
            "pod vwap-1: runtime asked to retry after 3s: create: HTTP 429 TooManyRequests: slow down"
        );
    }

    #[test]
    fn other_client_errors_are_rejected() {
        for error in [
            api(422, "Invalid"),
            api(403, "Forbidden"),
            api(400, "BadRequest"),
        ] {
            let error = runtime_error(Some(&pod()), "create", Duration::from_secs(1), error);
            assert!(
                matches!(&error, RuntimeError::Rejected { pod: Some(p), .. } if p.as_str() == "vwap-1"),
                "{error:?}"
            );
        }
    }

    #[test]
    fn a_pod_security_refusal_is_rejected_and_names_the_policy_and_the_setting() {
        let refusal = CallError::Kube(kube::Error::Api(
            Status::failure(
                "pods \"vwap-1\" is forbidden: violates PodSecurity \"restricted:latest\": \
                 runAsNonRoot != true (pod or container \"algorithm\" must set \
                 securityContext.runAsNonRoot=true)",
                "Forbidden",
            )
            .with_code(403)
            .boxed(),
        ));
        let error = runtime_error(Some(&pod()), "create", Duration::from_secs(1), refusal);
        assert!(!error.is_retryable(), "{error}");
        let text = error.to_string();
        assert!(
            text.contains("HTTP 403 Forbidden: pods \"vwap-1\" is forbidden: violates PodSecurity \"restricted:latest\""),
            "{text}"
        );
        assert!(text.contains("ALSY__K8S__POD_SECURITY"), "{text}");
    }

    #[test]
    fn messages_carry_the_code_reason_and_server_message() {
        let error = runtime_error(
            None,
            "list",
            Duration::from_millis(1500),
            api(429, "TooManyRequests"),
        );
        assert_eq!(
            error.to_string(),
            "runtime unavailable: list: HTTP 429 TooManyRequests: the server says so"
        );
        let error = runtime_error(
            None,
            "list",
            Duration::from_millis(1500),
            CallError::TimedOut,
        );
        assert_eq!(
            error.to_string(),
            "runtime unavailable: list: no answer within 1s 500ms"
        );
    }
}
