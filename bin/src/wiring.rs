//! The production adapters built from the settings: PostgreSQL storage (migrated first) and the
//! Kubernetes pod runtime. Kept apart from [`crate::start`] so the in-memory wiring does not
//! depend on how these adapters are set up.

use std::sync::Arc;

use alsy_app::{ClientRepository, PassLock, PodRuntime};
use alsy_k8s::{KubeRuntime, KubeSettings, PodSecurity};
use alsy_postgres::{PostgresRepository, PostgresSettings};
use anyhow::Context;
use slog::Logger;

use crate::config::{K8sConfig, PodSecurityLevel, StorageSettings};

/// The adapter's settings from `ALSY__STORAGE__*`.
pub(crate) fn postgres_settings(storage: &StorageSettings) -> PostgresSettings {
    PostgresSettings {
        url: storage.url.clone(),
        min_conns: storage.min_conns,
        max_conns: storage.max_conns,
        start_timeout: storage.start_timeout,
        read_timeout: storage.read_timeout,
        write_timeout: storage.write_timeout,
        idle_timeout: storage.idle_timeout,
        lifetime_jitter: storage.lifetime_jitter,
    }
}

/// The adapter's settings from `ALSY__K8S__*`.
pub(crate) fn kube_settings(k8s: &K8sConfig) -> KubeSettings {
    KubeSettings {
        namespace: k8s.namespace.clone(),
        request_timeout: k8s.request_timeout,
        restart_timeout: k8s.restart_timeout,
        qps: k8s.qps,
        pod_security: match k8s.pod_security {
            PodSecurityLevel::Restricted => PodSecurity::Restricted {
                run_as_user: k8s.run_as_user,
                run_as_group: k8s.run_as_group,
            },
            PodSecurityLevel::Baseline => PodSecurity::Baseline,
        },
    }
}

/// Applies pending migrations (what `alsy migrate` does).
pub(crate) async fn migrate(storage: &StorageSettings, log: &Logger) -> anyhow::Result<()> {
    // The adapter's errors name host:port and the cause; no password.
    alsy_postgres::migrate(&postgres_settings(storage), log).await?;
    Ok(())
}

/// Migrates, then connects the repository and its pass lock.
pub(crate) async fn postgres(
    storage: &StorageSettings,
    log: &Logger,
) -> anyhow::Result<(Arc<dyn ClientRepository>, Arc<dyn PassLock>)> {
    migrate(storage, log).await?;
    let repo = PostgresRepository::connect(&postgres_settings(storage), log).await?;
    let lock = repo.pass_lock();
    Ok((Arc::new(repo), Arc::new(lock)))
}

/// Connects to the Kubernetes API.
pub(crate) async fn kubernetes(
    k8s: &K8sConfig,
    log: &Logger,
) -> anyhow::Result<Arc<dyn PodRuntime>> {
    let settings = kube_settings(k8s);
    let runtime = match &k8s.kubeconfig {
        Some(path) => KubeRuntime::from_kubeconfig(path, &settings, log).await,
        None => KubeRuntime::connect(&settings, log).await,
    }
    .context("cannot use the Kubernetes runtime (ALSY__RUNTIME__KIND=kubernetes)")?;
    Ok(Arc::new(runtime))
}
