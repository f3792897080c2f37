//! The embedded migrations and running them: at start-up and by `alsy migrate`. diesel's
//! migration harness is synchronous, so it runs through diesel-async's `AsyncConnectionWrapper`
//! on a blocking thread, under a session advisory lock so replicas starting together take turns
//! instead of racing to create the same tables.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use slog::{Logger, info, o};

use crate::connect::{ConnectError, Connector};
use crate::pool::retry_until_started;
use crate::{PostgresError, PostgresSettings};

/// The migrations in `adapters-postgres/migrations`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// The advisory lock key of migrating: "alsymigr" in ASCII.
const MIGRATION_LOCK_KEY: i64 = 0x616c_7379_6d69_6772;

/// Applies every pending migration, waiting up to the start timeout for the database and for
/// any other replica that is migrating at the same moment.
pub async fn migrate(settings: &PostgresSettings, log: &Logger) -> Result<(), PostgresError> {
    settings.validate()?;
    let log = log.new(o!("component" => "storage/postgres"));
    let connector = Connector::new(settings)?;
    let conn = retry_until_started(&connector, settings.start_timeout, &log, || async {
        let (client, connection) = connector.open().await?;
        AsyncPgConnection::try_from_client_and_connection(client, connection)
            .await
            .map_err(|error| ConnectError::transient(&error))
    })
    .await?;
    let failed = |cause: String| PostgresError::Migration {
        target: connector.target().to_owned(),
        cause,
    };
    let lock_wait = settings.start_timeout;
    let applied = tokio::task::spawn_blocking(move || run_locked(conn, lock_wait))
        .await
        .map_err(|_| failed("the migration task panicked".into()))?
        .map_err(failed)?;
    info!(log, "database migrated";
        "target" => connector.target(), "applied" => applied.len(), "versions" => applied.join(","));
    Ok(())
}

/// Runs the pending migrations on a blocking thread, holding the migration lock meanwhile and
/// waiting at most `lock_wait` for it.
fn run_locked(conn: AsyncPgConnection, lock_wait: Duration) -> Result<Vec<String>, String> {
    // Built here, not in async code: the wrapper blocks on the runtime for every call.
    let mut conn: AsyncConnectionWrapper<AsyncPgConnection> = AsyncConnectionWrapper::from(conn);
    // `lock_timeout` bounds the wait for an advisory lock too.
    conn.batch_execute(&format!(
        "SET lock_timeout = {}; SELECT pg_advisory_lock({MIGRATION_LOCK_KEY}); RESET lock_timeout",
        lock_wait.as_millis().clamp(1, i32::MAX as u128)
    ))
    .map_err(|error| format!("waiting for the migration lock: {error}"))?;
    let applied = conn
        .run_pending_migrations(MIGRATIONS)
        .map(|versions| versions.iter().map(ToString::to_string).collect())
        .map_err(|error| error.to_string());
    // If unlocking fails the connection is broken, and closing it frees the lock anyway.
    let _ = conn.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"));
    applied
}
