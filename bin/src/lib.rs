//! alsy, the outermost ring of the hexagon: it knows every adapter and wires them together.
//!
//! [`config`] loads the settings (flags, `ALSY__*` environment, a TOML file, defaults), [`logging`]
//! sets up the JSON log, and [`start`] builds storage, pod runtime, reconciler, watcher and HTTP
//! server from them and returns the [`Running`] service, which [`Running::shutdown`] stops
//! gracefully. `main.rs` adds signals and exit codes; the integration tests call [`start`]
//! directly, with [`Overrides`] for the fakes they drive.

pub mod config;
pub mod healthcheck;
pub mod logging;
mod start;
pub mod tokens;
mod wiring;

pub use start::{Overrides, Running, start};

/// Applies pending database migrations (`alsy migrate`); `Ok(false)` when the storage is in
/// memory and there is nothing to migrate.
pub async fn migrate(settings: &config::Settings, log: &slog::Logger) -> anyhow::Result<bool> {
    match settings.storage.kind {
        config::StorageKind::Memory => Ok(false),
        config::StorageKind::Postgres => {
            wiring::migrate(&settings.storage.postgres, log).await?;
            Ok(true)
        }
    }
}
