//! Opening connections: the parsed URL, the `host:port` that messages name, and errors that keep
//! the driver's cause (bb8 alone would only ever say "timed out"). TLS is not supported yet:
//! connections are plain TCP or a Unix socket.

use std::error::Error;
use std::fmt;

use tokio_postgres::config::Host;
use tokio_postgres::error::SqlState;
use tokio_postgres::tls::NoTlsStream;
use tokio_postgres::{Client, Config, Connection, NoTls, Socket};

use crate::{PostgresError, PostgresSettings};

/// PostgreSQL's port when the URL names none.
const DEFAULT_PORT: u16 = 5432;

/// Opens connections to the database of the settings.
#[derive(Clone)]
pub(crate) struct Connector {
    config: Config,
    target: String,
}

/// Why a connection could not be opened: the driver's whole chain of causes, and whether
/// waiting could help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConnectError {
    /// What went wrong, e.g. `error connecting to server: Connection refused (os error 111)`.
    pub(crate) cause: String,
    /// The server answered and said no for good (wrong password, no such database or role):
    /// retrying with the same settings cannot succeed.
    pub(crate) permanent: bool,
}

impl ConnectError {
    /// A failure that may pass: the server is down, starting, or busy.
    pub(crate) fn transient(error: &(dyn Error + 'static)) -> ConnectError {
        ConnectError {
            cause: describe(error),
            permanent: false,
        }
    }

    fn from_driver(error: &tokio_postgres::Error) -> ConnectError {
        let code = error.as_db_error().map(|db| db.code());
        let mut cause = describe(error);
        if code == Some(&SqlState::INVALID_PASSWORD) {
            cause.push_str(PASSWORD_HINT);
        }
        ConnectError {
            cause,
            permanent: code.is_some_and(|code| !is_transient(code)),
        }
    }
}

/// Appended to a refused password: the usual cause is credentials changed after the first start,
/// since PostgreSQL's image sets the password only when it creates its data volume.
const PASSWORD_HINT: &str = " (the database volume keeps the password of its first start; \
    `docker compose down -v` resets it, deleting the data)";

/// Server errors at connection time that go away by themselves.
fn is_transient(code: &SqlState) -> bool {
    [
        SqlState::CANNOT_CONNECT_NOW,
        SqlState::TOO_MANY_CONNECTIONS,
        SqlState::ADMIN_SHUTDOWN,
        SqlState::CRASH_SHUTDOWN,
        SqlState::CONFIGURATION_LIMIT_EXCEEDED,
    ]
    .contains(code)
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.cause)
    }
}

impl Connector {
    /// Parses the URL; connection attempts give up after the start timeout.
    pub(crate) fn new(settings: &PostgresSettings) -> Result<Connector, PostgresError> {
        let mut config: Config =
            settings
                .url
                .parse()
                .map_err(|error| PostgresError::InvalidSetting {
                    setting: "url",
                    problem: describe(&error),
                })?;
        config.connect_timeout(settings.start_timeout);
        if config.get_application_name().is_none() {
            config.application_name("alsy");
        }
        let target = target_of(&config);
        Ok(Connector { config, target })
    }

    /// `host:port` of the database, for messages and logs.
    pub(crate) fn target(&self) -> &str {
        &self.target
    }

    /// A new connection. The caller must drive (spawn) the returned `Connection`.
    pub(crate) async fn open(
        &self,
    ) -> Result<(Client, Connection<Socket, NoTlsStream>), ConnectError> {
        self.config
            .connect(NoTls)
            .await
            .map_err(|error| ConnectError::from_driver(&error))
    }
}

/// An error and its causes, `outer: inner: innermost` — tokio-postgres puts the useful part
/// (`Connection refused`, the server's `FATAL`) in the causes.
pub(crate) fn describe(error: &(dyn Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn target_of(config: &Config) -> String {
    let ports = config.get_ports();
    let hosts = config.get_hosts();
    if hosts.is_empty() {
        return format!(
            "localhost:{}",
            ports.first().copied().unwrap_or(DEFAULT_PORT)
        );
    }
    hosts
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port = ports
                .get(i)
                .or(ports.first())
                .copied()
                .unwrap_or(DEFAULT_PORT);
            match host {
                Host::Tcp(name) => format!("{name}:{port}"),
                #[cfg(unix)]
                Host::Unix(path) => format!("{}/.s.PGSQL.{port}", path.display()),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn connector(url: &str) -> Result<Connector, PostgresError> {
        Connector::new(&PostgresSettings {
            url: url.into(),
            min_conns: 1,
            max_conns: 1,
            start_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(1),
            write_timeout: Duration::from_secs(1),
            idle_timeout: Duration::ZERO,
            lifetime_jitter: Duration::ZERO,
        })
    }

    #[test]
    fn the_target_names_every_host_and_port_but_no_credentials() {
        let target = |url: &str| connector(url).unwrap().target().to_owned();
        assert_eq!(target("postgres://u:secret@db:6432/alsy"), "db:6432");
        assert_eq!(
            target("postgres://postgres@127.0.0.1/postgres"),
            "127.0.0.1:5432"
        );
        assert_eq!(target("postgres://u@a,b:5433/x"), "a:5432,b:5433");
        assert_eq!(
            target("host=/run/postgresql user=u"),
            "/run/postgresql/.s.PGSQL.5432"
        );
    }

    #[test]
    fn a_malformed_url_names_the_url_setting_and_not_the_password() {
        let error = connector("postgres://u:secret@db:notaport/x")
            .err()
            .unwrap();
        let message = error.to_string();
        assert!(
            message.starts_with("invalid storage setting `url`"),
            "{message}"
        );
        assert!(!message.contains("secret"), "{message}");
    }
}
