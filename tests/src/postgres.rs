//! Per-test PostgreSQL databases. Each test creates its own, uniquely named, migrated database
//! on the server of `ALSY_TEST_DATABASE_URL` and drops it afterwards, so tests run in parallel.
//! Without a reachable server a test is skipped loudly — or fails, when `CI=true`.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alsy_postgres::{PostgresRepository, PostgresSettings, redact_url};
use tokio_postgres::{Client, NoTls};

use crate::logs::Logs;

/// Where the tests find PostgreSQL: a `postgres://` URL of a role that may create databases.
pub const URL_VARIABLE: &str = "ALSY_TEST_DATABASE_URL";
/// The server used when [`URL_VARIABLE`] is not set.
pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// How long the server may take to answer the test harness itself.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);

/// A fresh database, dropped (with `WITH (FORCE)`, so open connections don't keep it) when this
/// value is dropped.
pub struct TestDatabase {
    name: String,
    url: String,
    server_url: String,
}

/// Skips the calling test when PostgreSQL is not reachable: evaluates to a [`TestDatabase`], or
/// returns from the test.
#[macro_export]
macro_rules! test_database {
    () => {
        match $crate::postgres::TestDatabase::create().await {
            Some(database) => database,
            None => return,
        }
    };
}

impl TestDatabase {
    /// Creates and migrates a uniquely named database. When the server cannot be reached this
    /// prints `SKIPPED: ...` and returns `None`, or panics if `CI=true`.
    pub async fn create() -> Option<TestDatabase> {
        let server_url = std::env::var(URL_VARIABLE).unwrap_or_else(|_| DEFAULT_URL.to_owned());
        let admin = match connect(&server_url).await {
            Ok(admin) => admin,
            Err(cause) => return unreachable(&server_url, &cause),
        };
        let name = unique_name();
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("creating test database {name}: {e}"));
        let database = TestDatabase {
            url: with_database(&server_url, &name),
            name,
            server_url,
        };
        alsy_postgres::migrate(&database.settings(), &Logs::default().logger())
            .await
            .unwrap_or_else(|e| panic!("migrating {}: {e}", database.name));
        Some(database)
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A URL of the database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's URL with its host and port replaced by `addr` (a proxy, for instance).
    pub fn url_via(&self, addr: SocketAddr) -> String {
        with_host(&self.url, &addr.to_string())
    }

    /// The address of the server, to point a proxy at.
    pub async fn server_addr(&self) -> SocketAddr {
        let config: tokio_postgres::Config = self.url.parse().expect("a valid test URL");
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
            _ => "localhost".to_owned(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        tokio::net::lookup_host((host.as_str(), port))
            .await
            .expect("resolving the test server")
            .next()
            .expect("the test server has an address")
    }

    /// Settings for a small pool on this database, with timeouts short enough for tests.
    pub fn settings(&self) -> PostgresSettings {
        PostgresSettings {
            url: self.url.clone(),
            min_conns: 1,
            max_conns: 8,
            start_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
            lifetime_jitter: Duration::from_secs(1),
        }
    }

    /// A repository on this database with [`TestDatabase::settings`].
    pub async fn repository(&self) -> PostgresRepository {
        PostgresRepository::connect(&self.settings(), &Logs::default().logger())
            .await
            .expect("connecting to the test database")
    }

    /// A plain connection to this database, for SQL the repository doesn't offer.
    pub async fn sql(&self) -> Client {
        connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", self.name))
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop may run inside the test's runtime, which must not be blocked on: a thread with its
        // own runtime does the work.
        let (server_url, name) = (self.server_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let admin = connect(&server_url).await?;
                admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .map_err(|e| e.to_string())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            loud(&format!(
                "WARNING: test database {} was not dropped: {dropped:?}",
                self.name
            ));
        }
    }
}

async fn connect(url: &str) -> Result<Client, String> {
    let connecting = tokio_postgres::connect(url, NoTls);
    let (client, connection) = tokio::time::timeout(ADMIN_TIMEOUT, connecting)
        .await
        .map_err(|_| format!("no answer within {ADMIN_TIMEOUT:?}"))?
        .map_err(|e| match std::error::Error::source(&e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        })?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

fn unreachable(url: &str, cause: &str) -> Option<TestDatabase> {
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    let url = redact_url(url);
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("PostgreSQL not reachable at {url} ({cause}); CI=true, so {test} fails");
    }
    loud(&format!(
        "SKIPPED: PostgreSQL not reachable at {url} ({cause}): {test} did not run; \
         start PostgreSQL or set {URL_VARIABLE}"
    ));
    None
}

/// Writes straight to the process's stderr: libtest captures `eprintln!` of passing tests, and a
/// skip must be seen.
fn loud(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

fn unique_name() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "alsy_test_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// `postgres://auth@host/db?query` → the same with another database.
fn with_database(url: &str, database: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let query = tail.find('?').map_or("", |i| &tail[i..]);
    format!("{scheme}://{authority}/{database}{query}")
}

/// `postgres://auth@host:port/db` → the same with another `host:port`.
fn with_host(url: &str, host: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let auth = authority.rsplit_once('@').map_or("", |(auth, _)| auth);
    let at = if auth.is_empty() { "" } else { "@" };
    format!("{scheme}://{auth}{at}{host}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_rewritten_keeping_credentials_and_options() {
        assert_eq!(
            with_database("postgres://u:p@h:1/postgres?sslmode=disable", "t"),
            "postgres://u:p@h:1/t?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "t"), "postgres://h/t");
        assert_eq!(
            with_host("postgres://u@h:1/t", "127.0.0.1:9"),
            "postgres://u@127.0.0.1:9/t"
        );
        assert_eq!(
            with_host("postgres://h/t", "127.0.0.1:9"),
            "postgres://127.0.0.1:9/t"
        );
    }
}
