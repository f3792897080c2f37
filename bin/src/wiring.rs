//! The production adapters built from the settings: PostgreSQL storage (migrated first) and the
//! Kubernetes pod runtime. Kept apart from [`crate::start`] so the in-memory wiring does not
//! depend on how these adapters are set up.

use std::sync::Arc;

use alsy_app::{ClientRepository, PassLock, PodRuntime};
use alsy_k8s::{KubeRuntime, KubeSettings};
use alsy_postgres::{PostgresRepository, PostgresSettings};
use anyhow::Context;
use slog::Logger;

/// Applies pending migrations (what `alsy migrate` does).
pub(crate) async fn migrate(storage: &PostgresSettings, log: &Logger) -> anyhow::Result<()> {
    // The adapter's errors name host:port and the cause; no password.
    alsy_postgres::migrate(storage, log).await?;
    Ok(())
}

/// Migrates, then connects the repository and its pass lock.
pub(crate) async fn postgres(
    storage: &PostgresSettings,
    log: &Logger,
) -> anyhow::Result<(Arc<dyn ClientRepository>, Arc<dyn PassLock>)> {
    migrate(storage, log).await?;
    let repo = PostgresRepository::connect(storage, log).await?;
    let lock = repo.pass_lock();
    Ok((Arc::new(repo), Arc::new(lock)))
}

/// Connects to the Kubernetes API.
pub(crate) async fn kubernetes(
    k8s: &KubeSettings,
    log: &Logger,
) -> anyhow::Result<Arc<dyn PodRuntime>> {
    let runtime = KubeRuntime::connect(k8s, log)
        .await
        .context("cannot use the Kubernetes runtime (ALSY__RUNTIME__KIND=kubernetes)")?;
    Ok(Arc::new(runtime))
}
