//! The adapter's errors: [`PostgresError`] for start-up (settings, reaching the database,
//! migrations), and the mapping of query failures onto the port's [`RepoError`]. Messages carry a
//! short cause — never SQL text, never the password.

use std::time::Duration;

use diesel::result::{DatabaseErrorKind, Error as DieselError};

use alsy_app::RepoError;
use alsy_domain::ClientName;

/// The unique constraint PostgreSQL names after `clients.name ... UNIQUE`.
const NAME_CONSTRAINT: &str = "clients_name_key";

/// Why the adapter could not start or migrate.
#[derive(Debug, thiserror::Error)]
pub enum PostgresError {
    /// A setting is out of range; the process should not start.
    #[error("invalid storage setting `{setting}`: {problem}")]
    InvalidSetting {
        /// The field of [`crate::PostgresSettings`] at fault.
        setting: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// The database could not be reached (or refused us) within the start timeout.
    #[error("cannot reach PostgreSQL at {target} within {timeout:?}: {cause}")]
    Unreachable {
        /// `host:port` of every host in the URL.
        target: String,
        /// How long we tried.
        timeout: Duration,
        /// The last error seen, e.g. `connection refused`.
        cause: String,
    },
    /// The server refused us for good: wrong credentials, no such database or role.
    #[error("PostgreSQL at {target} refused the connection: {cause}")]
    Refused {
        /// `host:port` of every host in the URL.
        target: String,
        /// What the server said.
        cause: String,
    },
    /// Applying the embedded migrations failed.
    #[error("migrating the database at {target} failed: {cause}")]
    Migration {
        /// `host:port` of the database.
        target: String,
        /// What went wrong.
        cause: String,
    },
}

/// Maps a failed query. `name` is the name a write tried to store, for a unique violation.
/// A missing row is not handled here: callers know which id they looked for.
pub(crate) fn query_failed(error: DieselError, name: Option<&ClientName>) -> RepoError {
    match error {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info)
            if info.constraint_name() == Some(NAME_CONSTRAINT) =>
        {
            match name {
                Some(name) => RepoError::NameTaken(name.to_string()),
                None => RepoError::Internal(info.message().to_owned()),
            }
        }
        DieselError::DatabaseError(
            DatabaseErrorKind::UnableToSendCommand | DatabaseErrorKind::ClosedConnection,
            info,
        ) => RepoError::Unavailable(info.message().to_owned()),
        DieselError::DatabaseError(_, info) if means_unavailable(info.message()) => {
            RepoError::Unavailable(info.message().to_owned())
        }
        DieselError::DatabaseError(_, info) => RepoError::Internal(info.message().to_owned()),
        DieselError::RollbackErrorOnCommit { commit_error, .. } => {
            query_failed(*commit_error, name)
        }
        DieselError::NotFound => RepoError::Internal("a row the query needed is missing".into()),
        other => RepoError::Internal(other.to_string()),
    }
}

/// Whether a server error means "try again later" rather than a bug. diesel exposes no SQLSTATE
/// for these (57014 query_canceled, 57P01..57P03 shutdown and start-up), so the message tells.
fn means_unavailable(message: &str) -> bool {
    const TRANSIENT: [&str; 6] = [
        "canceling statement due to statement timeout",
        "canceling statement due to lock timeout",
        "terminating connection",
        "the database system is shutting down",
        "the database system is starting up",
        "the database system is in recovery mode",
    ];
    TRANSIENT
        .iter()
        .any(|transient| message.contains(transient))
}

/// A call that got no answer within its bound; `last_connect_error` says why, when the pool
/// could not open a connection.
pub(crate) fn no_answer(
    target: &str,
    timeout: Duration,
    last_connect_error: Option<String>,
) -> RepoError {
    RepoError::Unavailable(match last_connect_error {
        Some(cause) => {
            format!("no answer from {target} within {timeout:?}; last connection attempt: {cause}")
        }
        None => format!("no answer from {target} within {timeout:?}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use diesel::result::DatabaseErrorInformation;

    struct ServerError {
        message: &'static str,
        constraint: Option<&'static str>,
    }

    impl DatabaseErrorInformation for ServerError {
        fn message(&self) -> &str {
            self.message
        }
        fn details(&self) -> Option<&str> {
            None
        }
        fn hint(&self) -> Option<&str> {
            None
        }
        fn table_name(&self) -> Option<&str> {
            None
        }
        fn column_name(&self) -> Option<&str> {
            None
        }
        fn constraint_name(&self) -> Option<&str> {
            self.constraint
        }
        fn statement_position(&self) -> Option<i32> {
            None
        }
    }

    fn server(
        kind: DatabaseErrorKind,
        message: &'static str,
        constraint: Option<&'static str>,
    ) -> DieselError {
        DieselError::DatabaseError(
            kind,
            Box::new(ServerError {
                message,
                constraint,
            }),
        )
    }

    fn jimbo() -> ClientName {
        ClientName::parse("Jimbo").unwrap()
    }

    #[test]
    fn a_duplicate_name_is_name_taken() {
        let error = server(
            DatabaseErrorKind::UniqueViolation,
            "duplicate key value violates unique constraint \"clients_name_key\"",
            Some("clients_name_key"),
        );
        assert_eq!(
            query_failed(error, Some(&jimbo())),
            RepoError::NameTaken("Jimbo".into())
        );
    }

    #[test]
    fn another_unique_violation_is_internal() {
        let error = server(
            DatabaseErrorKind::UniqueViolation,
            "duplicate key value violates unique constraint \"algorithm_status_client_id_key\"",
            Some("algorithm_status_client_id_key"),
        );
        assert!(matches!(
            query_failed(error, Some(&jimbo())),
            RepoError::Internal(_)
        ));
    }

    #[test]
    fn connection_failures_and_timeouts_are_unavailable() {
        for error in [
            DieselError::DatabaseError(
                DatabaseErrorKind::UnableToSendCommand,
                Box::new("connection closed".to_owned()),
            ),
            server(
                DatabaseErrorKind::ClosedConnection,
                "server closed the connection",
                None,
            ),
            server(
                DatabaseErrorKind::Unknown,
                "canceling statement due to statement timeout",
                None,
            ),
            server(
                DatabaseErrorKind::Unknown,
                "terminating connection due to administrator command",
                None,
            ),
        ] {
            assert!(matches!(
                query_failed(error, None),
                RepoError::Unavailable(_)
            ));
        }
    }

    #[test]
    fn a_failed_commit_is_judged_by_the_commit_error() {
        let error = DieselError::RollbackErrorOnCommit {
            rollback_error: Box::new(DieselError::BrokenTransactionManager),
            commit_error: Box::new(DieselError::DatabaseError(
                DatabaseErrorKind::UnableToSendCommand,
                Box::new("connection closed".to_owned()),
            )),
        };
        assert_eq!(
            query_failed(error, None),
            RepoError::Unavailable("connection closed".into())
        );
    }

    #[test]
    fn anything_else_is_internal_with_a_short_cause() {
        let error = server(
            DatabaseErrorKind::Unknown,
            "relation \"clients\" does not exist",
            None,
        );
        assert_eq!(
            query_failed(error, None),
            RepoError::Internal("relation \"clients\" does not exist".into())
        );
    }

    #[test]
    fn no_answer_names_the_target_the_bound_and_the_cause() {
        let error = no_answer(
            "127.0.0.1:5432",
            Duration::from_secs(5),
            Some("connection refused".into()),
        );
        assert_eq!(
            error.to_string(),
            "storage unavailable: no answer from 127.0.0.1:5432 within 5s; \
             last connection attempt: connection refused"
        );
    }
}
