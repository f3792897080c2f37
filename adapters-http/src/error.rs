//! What can go wrong with a request, the status each failure gets, and the message a client may
//! see. Details that must not leave the process (storage errors, panics' causes) travel beside
//! the public message and go to the log with the request id.

use std::time::Duration;

use alsy_app::{RepoError, RuntimeError, ServiceError};
use warp::http::StatusCode;

use crate::request_id::RequestId;

/// A failed request, as the API reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed; the message names the field or parameter at fault.
    #[error("{0}")]
    BadRequest(String),
    /// No such route or no such client.
    #[error("{0}")]
    NotFound(String),
    /// The route exists, not with this method.
    #[error("method {method} is not allowed on {path}")]
    MethodNotAllowed {
        /// The method the request used.
        method: String,
        /// The path it was sent to.
        path: String,
    },
    /// The write conflicts with stored data (a name already taken).
    #[error("{0}")]
    Conflict(String),
    /// The body is larger than the API accepts.
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body did not arrive in time.
    #[error("request body not received within {}ms", .0.as_millis())]
    RequestTimeout(Duration),
    /// A dependency (storage, the pod runtime) cannot serve now, or the service is stopping;
    /// worth retrying. `detail` is for the log only.
    #[error("{message}")]
    Unavailable {
        /// What the client is told.
        message: &'static str,
        /// What the log is told.
        detail: String,
    },
    /// The request took longer than the write timeout.
    #[error("request not completed within {}ms", .0.as_millis())]
    TimedOut(Duration),
    /// Anything else. The detail is for the log only; the client gets the request id.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status of this failure.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Unavailable { .. } | ApiError::TimedOut(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The message the response carries: never internals.
    pub fn public_message(&self, request_id: &RequestId) -> String {
        match self {
            ApiError::Internal(_) => format!("internal error (request id {request_id})"),
            other => other.to_string(),
        }
    }

    /// What only the log may see, if anything.
    pub fn detail(&self) -> Option<&str> {
        match self {
            ApiError::Unavailable { detail, .. } if !detail.is_empty() => Some(detail),
            ApiError::Internal(detail) => Some(detail),
            _ => None,
        }
    }

    /// The public message for "storage cannot be reached".
    pub const STORAGE_UNAVAILABLE: &'static str = "storage unavailable";
    /// The public message for "the pod runtime cannot be reached".
    pub const RUNTIME_UNAVAILABLE: &'static str = "pod runtime unavailable";
    /// The public message when the watcher has died.
    pub const WATCHER_DEAD: &'static str = "watcher not running";
    /// The public message while the service stops.
    pub const SHUTTING_DOWN: &'static str = "service is shutting down";
}

impl From<ServiceError> for ApiError {
    fn from(err: ServiceError) -> ApiError {
        match err {
            ServiceError::Repo(RepoError::NotFound(id)) => {
                ApiError::NotFound(format!("client {id} not found"))
            }
            ServiceError::Repo(RepoError::NameTaken(name)) => {
                ApiError::Conflict(format!("a client named {name:?} already exists"))
            }
            ServiceError::Repo(RepoError::Unavailable(detail)) => ApiError::Unavailable {
                message: ApiError::STORAGE_UNAVAILABLE,
                detail,
            },
            // The database answered: a bad stored row is the client's problem, not unavailability.
            ServiceError::Repo(e @ RepoError::Unusable(_)) => ApiError::Conflict(format!(
                "{e}; its pods are left as they are until it is replaced with PUT or deleted"
            )),
            ServiceError::Repo(RepoError::Internal(detail)) => ApiError::Internal(detail),
            ServiceError::Runtime(
                e @ (RuntimeError::Unavailable { .. } | RuntimeError::Throttled { .. }),
            ) => ApiError::Unavailable {
                message: ApiError::RUNTIME_UNAVAILABLE,
                detail: e.to_string(),
            },
            ServiceError::Runtime(e @ RuntimeError::Rejected { .. }) => {
                ApiError::Internal(e.to_string())
            }
            ServiceError::WatcherDead(e) => ApiError::Unavailable {
                message: ApiError::WATCHER_DEAD,
                detail: e.to_string(),
            },
            ServiceError::Policy(violation) => ApiError::BadRequest(violation.to_string()),
            ServiceError::ShuttingDown(_) => ApiError::Unavailable {
                message: ApiError::SHUTTING_DOWN,
                detail: String::new(),
            },
        }
    }
}

/// Turns what warp rejected (no route, wrong method, a query it could not decode) into an
/// [`ApiError`]; anything unexpected is an internal error whose detail is logged.
pub(crate) fn from_rejection(rejection: &warp::Rejection, method: &str, path: &str) -> ApiError {
    // First: only the route that matched both path and method rejects a query.
    if let Some(crate::routes::UnknownQuery(message)) = rejection.find() {
        return ApiError::BadRequest(message.clone());
    }
    if rejection.is_not_found() {
        return ApiError::NotFound(format!("no route for {method} {}", shorten(path)));
    }
    if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        return ApiError::MethodNotAllowed {
            method: method.to_owned(),
            path: shorten(path),
        };
    }
    if rejection.find::<warp::reject::InvalidQuery>().is_some() {
        return ApiError::BadRequest("invalid query string".into());
    }
    if let Some(header) = rejection.find::<warp::reject::InvalidHeader>() {
        return ApiError::BadRequest(format!("invalid header {:?}", header.name()));
    }
    if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        return ApiError::PayloadTooLarge {
            limit: crate::BODY_LIMIT,
        };
    }
    ApiError::Internal(format!("unhandled rejection: {rejection:?}"))
}

/// Paths echoed in messages are cut, so a client cannot make the error body arbitrarily large.
fn shorten(path: &str) -> String {
    const MAX: usize = 200;
    match path.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &path[..cut]),
        None => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alsy_domain::{ClientId, PodName};

    fn id() -> RequestId {
        RequestId::parse("req-1").unwrap_or_else(RequestId::generate)
    }

    #[test]
    fn a_missing_client_is_404_naming_its_id() {
        let err = ApiError::from(ServiceError::Repo(RepoError::NotFound(
            ClientId::new(7).unwrap(),
        )));
        assert_eq!(err.status(), StatusCode::NOT_FOUND);
        assert_eq!(err.public_message(&id()), "client 7 not found");
    }

    #[test]
    fn a_taken_name_is_409() {
        let err = ApiError::from(ServiceError::Repo(RepoError::NameTaken("Jimbo".into())));
        assert_eq!(err.status(), StatusCode::CONFLICT);
        assert!(err.public_message(&id()).contains("Jimbo"));
    }

    #[test]
    fn an_unusable_stored_client_is_409_naming_it_and_the_reason() {
        let err = ApiError::from(ServiceError::Repo(RepoError::Unusable(
            alsy_domain::UnusableClient {
                id: ClientId::new(7).unwrap(),
                reason: "name: must not be blank".into(),
            },
        )));
        assert_eq!(err.status(), StatusCode::CONFLICT);
        assert_eq!(
            err.public_message(&id()),
            "client 7 is stored with values alsy no longer accepts: name: must not be blank; \
             its pods are left as they are until it is replaced with PUT or deleted"
        );
    }

    #[test]
    fn storage_unavailable_is_503_and_keeps_the_detail_out_of_the_message() {
        let err = ApiError::from(ServiceError::Repo(RepoError::Unavailable(
            "connection refused to 10.0.0.5:5432".into(),
        )));
        assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(err.public_message(&id()), "storage unavailable");
        assert_eq!(err.detail(), Some("connection refused to 10.0.0.5:5432"));
    }

    #[test]
    fn runtime_unavailable_is_503() {
        let err = ApiError::from(ServiceError::Runtime(RuntimeError::Unavailable {
            pod: PodName::parse("vwap-1"),
            detail: "timed out".into(),
        }));
        assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(err.public_message(&id()), "pod runtime unavailable");
    }

    #[test]
    fn a_runtime_that_rejects_a_call_is_500_with_the_detail_for_the_log_only() {
        let err = ApiError::from(ServiceError::Runtime(RuntimeError::Rejected {
            pod: PodName::parse("vwap-1"),
            detail: "pods is forbidden: User cannot list pods".into(),
        }));
        assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            err.public_message(&id()),
            "internal error (request id req-1)"
        );
        assert!(err.detail().is_some_and(|d| d.contains("forbidden")));
    }

    #[test]
    fn internal_errors_show_only_the_request_id() {
        let err = ApiError::from(ServiceError::Repo(RepoError::Internal(
            "syntax error at or near SELECT".into(),
        )));
        assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let message = err.public_message(&id());
        assert_eq!(message, "internal error (request id req-1)");
        assert!(!message.contains("SELECT"));
    }

    #[test]
    fn shutting_down_is_503() {
        let err = ApiError::from(ServiceError::ShuttingDown(alsy_app::ShuttingDown));
        assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(err.public_message(&id()), "service is shutting down");
    }

    #[test]
    fn long_paths_are_cut_in_messages() {
        let path = format!("/{}", "x".repeat(1000));
        let err = from_rejection(&warp::reject::not_found(), "GET", &path);
        assert!(err.public_message(&id()).chars().count() < 230);
    }
}
