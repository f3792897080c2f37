//! Building a [`KubeRuntime`] from the environment's Kubernetes configuration: kubeconfig
//! (`KUBECONFIG`, `~/.kube/config`) or the in-cluster service account.

use std::path::Path;

use kube::config::{KubeConfigOptions, Kubeconfig};
use slog::{Logger, info};

use crate::errors::KubeError;
use crate::retry_after::RetryAfterLayer;
use crate::runtime::KubeRuntime;
use crate::settings::{KubeSettings, PodSecurity};

impl KubeRuntime {
    /// Connects with `settings.kubeconfig` if set, else with `Config::infer`: `KUBECONFIG` or
    /// `~/.kube/config`, else in-cluster. The namespace is `settings.namespace`, else the
    /// configuration's (the kubeconfig context's, or in-cluster the service account's), else
    /// `default`. Makes no request: an unreachable API server shows up as failed passes, not as
    /// a failed start.
    pub async fn connect(settings: &KubeSettings, log: &Logger) -> Result<KubeRuntime, KubeError> {
        if let Some(path) = &settings.kubeconfig {
            return KubeRuntime::from_kubeconfig(path, settings, log).await;
        }
        let config = kube::Config::infer().await.map_err(KubeError::NoConfig)?;
        KubeRuntime::from_config(config, settings, log)
    }

    /// Like [`KubeRuntime::connect`], from this kubeconfig file (whatever `settings.kubeconfig`
    /// says) and its current context.
    pub async fn from_kubeconfig(
        path: &Path,
        settings: &KubeSettings,
        log: &Logger,
    ) -> Result<KubeRuntime, KubeError> {
        let kubeconfig_error = |source| KubeError::Kubeconfig {
            path: path.display().to_string(),
            source,
        };
        let kubeconfig = Kubeconfig::read_from(path).map_err(kubeconfig_error)?;
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(kubeconfig_error)?;
        KubeRuntime::from_config(config, settings, log)
    }

    /// From a loaded configuration: checks it and the settings, turns kube's retries off (each
    /// call is bounded by the request timeout instead, and the next pass retries), builds the
    /// client.
    pub fn from_config(
        mut config: kube::Config,
        settings: &KubeSettings,
        log: &Logger,
    ) -> Result<KubeRuntime, KubeError> {
        check_settings(settings)?;
        // kube accepts `server: host:6443` and then panics on the first request.
        let url = &config.cluster_url;
        if url.scheme().is_none() || url.authority().is_none() {
            return Err(KubeError::ServerUrl(url.to_string()));
        }
        let namespace = match &settings.namespace {
            Some(namespace) if !namespace.is_empty() => namespace.clone(),
            _ if !config.default_namespace.is_empty() => config.default_namespace.clone(),
            _ => "default".to_owned(),
        };
        if !is_dns_label(&namespace) {
            return Err(KubeError::Namespace(namespace));
        }
        // kube retries 429/503/504 up to 15 times with backoff reaching minutes: that would stall a
        // pass. One attempt per call; the reconciler retries what failed on the pod's own
        // schedule, no sooner than the server's `Retry-After` (kept by `RetryAfterLayer`).
        config.default_retry = false;
        config.connect_timeout = Some(
            config
                .connect_timeout
                .map_or(settings.request_timeout, |t| {
                    t.min(settings.request_timeout)
                }),
        );
        let server = config.cluster_url.to_string();
        let client = kube::client::ClientBuilder::try_from(config)
            .map_err(KubeError::Client)?
            .with_layer(&RetryAfterLayer)
            .build();
        let runtime = KubeRuntime::from_client(client, namespace, settings, log);
        info!(log.new(slog::o!("component" => "runtime/k8s")), "kubernetes runtime configured";
        "server" => server, "namespace" => runtime.namespace(),
        "request_timeout" => format!("{:?}", settings.request_timeout),
        "qps" => settings.qps,
        "pod_security" => settings.pod_security.to_string());
        Ok(runtime)
    }
}

fn check_settings(settings: &KubeSettings) -> Result<(), KubeError> {
    if settings.request_timeout.is_zero() {
        return Err(KubeError::Setting {
            setting: "ALSY__K8S__REQUEST_TIMEOUT",
            problem: "must be greater than zero",
        });
    }
    if let PodSecurity::Restricted { run_as_user: 0, .. } = settings.pod_security {
        return Err(KubeError::Setting {
            setting: "ALSY__K8S__RUN_AS_USER",
            problem: "must not be 0 (root) with ALSY__K8S__POD_SECURITY=restricted",
        });
    }
    Ok(())
}

/// A namespace name: a DNS-1123 label.
fn is_dns_label(name: &str) -> bool {
    let alphanumeric = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = name.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(&first), Some(&last)) => {
            bytes.len() <= 63
                && alphanumeric(first)
                && alphanumeric(last)
                && bytes.iter().all(|&b| alphanumeric(b) || b == b'-')
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log() -> Logger {
        Logger::root(slog::Discard, slog::o!())
    }

    fn config(url: &str) -> kube::Config {
        kube::Config::new(url.parse().unwrap())
    }

    #[tokio::test]
    async fn a_server_url_without_a_scheme_is_refused_instead_of_panicking_later() {
        let result =
            KubeRuntime::from_config(config("127.0.0.1:6443"), &KubeSettings::default(), &log());
        assert!(
            matches!(result, Err(KubeError::ServerUrl(_))),
            "{:?}",
            result.err()
        );
    }

    #[tokio::test]
    async fn the_namespace_comes_from_the_settings_then_the_config_then_default() {
        let settings = KubeSettings {
            namespace: Some("trading".into()),
            ..KubeSettings::default()
        };
        let runtime =
            KubeRuntime::from_config(config("http://127.0.0.1:1"), &settings, &log()).unwrap();
        assert_eq!(runtime.namespace(), "trading");

        let mut with_context = config("http://127.0.0.1:1");
        with_context.default_namespace = "from-context".into();
        let runtime =
            KubeRuntime::from_config(with_context, &KubeSettings::default(), &log()).unwrap();
        assert_eq!(runtime.namespace(), "from-context");

        let mut without = config("http://127.0.0.1:1");
        without.default_namespace = String::new();
        let runtime = KubeRuntime::from_config(without, &KubeSettings::default(), &log()).unwrap();
        assert_eq!(runtime.namespace(), "default");
    }

    #[tokio::test]
    async fn an_invalid_namespace_or_zero_timeout_is_refused() {
        let bad_namespace = KubeSettings {
            namespace: Some("Trading_Desk".into()),
            ..KubeSettings::default()
        };
        let result = KubeRuntime::from_config(config("http://127.0.0.1:1"), &bad_namespace, &log());
        assert!(matches!(result, Err(KubeError::Namespace(_))));
        let zero = KubeSettings {
            request_timeout: std::time::Duration::ZERO,
            ..KubeSettings::default()
        };
        let result = KubeRuntime::from_config(config("http://127.0.0.1:1"), &zero, &log());
        assert!(matches!(
            result,
            Err(KubeError::Setting {
                setting: "ALSY__K8S__REQUEST_TIMEOUT",
                ..
            })
        ));
    }
}
