//! The JSON envelope every response body is wrapped in:
//! `{"status":"ok"|"error","message":...,"data":...}`, with `message` and `data` left out when
//! there is none (`data: null` is kept where "nothing yet" is the answer). 204 has no body.

use serde::Serialize;
use warp::http::header::{CONTENT_TYPE, HeaderValue};
use warp::http::{HeaderName, StatusCode};
use warp::reply::Response;

// Serialised straight from the DTOs (not through `serde_json::Value`, whose maps sort their
// keys), so fields come out in the order the contract lists them.
#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a T>,
}

/// A successful response: `{"status":"ok"}` plus the message and data given.
pub(crate) fn ok<T: Serialize>(
    status: StatusCode,
    message: Option<&str>,
    data: Option<&T>,
) -> Response {
    envelope(status, "ok", message, data)
}

/// `{"status":"ok"}` alone.
pub(crate) fn ok_empty(status: StatusCode) -> Response {
    envelope::<()>(status, "ok", None, None)
}

/// A failed response: `{"status":"error","message":...}`.
pub(crate) fn error(status: StatusCode, message: &str) -> Response {
    envelope::<()>(status, "error", Some(message), None)
}

/// A failed response that still carries data (a failed pass's report).
pub(crate) fn error_with<T: Serialize>(status: StatusCode, message: &str, data: &T) -> Response {
    envelope(status, "error", Some(message), Some(data))
}

/// `204 No Content`, no body.
pub(crate) fn no_content() -> Response {
    let mut response = Response::new(Vec::<u8>::new().into());
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

/// Adds a header to a response (a `Location`, say).
pub(crate) fn with_header(mut response: Response, name: HeaderName, value: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
    response
}

fn envelope<T: Serialize>(
    status: StatusCode,
    outcome: &'static str,
    message: Option<&str>,
    data: Option<&T>,
) -> Response {
    let mut response = Response::new(body(outcome, message, data).into());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Room for a typical body (a client with its sync state is about 700 bytes), so that writing
/// one does not grow the buffer five times over.
const BODY_CAPACITY: usize = 1024;

fn body<T: Serialize>(outcome: &'static str, message: Option<&str>, data: Option<&T>) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(BODY_CAPACITY);
    let envelope = Envelope {
        status: outcome,
        message,
        data,
    };
    match serde_json::to_writer(&mut bytes, &envelope) {
        Ok(()) => bytes,
        // The DTOs have string keys and no fallible Serialize impls; keep a valid body regardless.
        Err(_) => br#"{"status":"error","message":"internal error"}"#.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn parsed(bytes: Vec<u8>) -> Value {
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn absent_message_and_data_are_left_out() {
        assert_eq!(
            parsed(body::<()>("ok", None, None)),
            json!({"status": "ok"})
        );
    }

    #[test]
    fn null_data_is_kept_when_given() {
        assert_eq!(
            parsed(body("ok", None, Some(&None::<u8>))),
            json!({"status": "ok", "data": null})
        );
    }

    #[test]
    fn errors_carry_their_message() {
        assert_eq!(
            String::from_utf8(body::<()>("error", Some("client 7 not found"), None)).unwrap(),
            r#"{"status":"error","message":"client 7 not found"}"#
        );
    }

    #[test]
    fn responses_are_json() {
        let response = ok(StatusCode::CREATED, Some("created"), Some(&1));
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
        assert_eq!(no_content().status(), StatusCode::NO_CONTENT);
    }
}
