//! `Reply`: one HTTP response of alsy's API as a test reads it — status, headers, the body as
//! JSON — with the checks every error envelope must pass.

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

/// A response: status, headers, and the body as JSON (`Value::Null` when empty).
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: StatusCode,
    /// Response headers.
    pub headers: HeaderMap,
    /// The body parsed as JSON, or `Value::Null` for an empty body.
    pub body: Value,
}

impl Reply {
    /// Reads `response` whole; panics when its body is neither empty nor JSON.
    pub async fn read(response: reqwest::Response) -> Reply {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("a readable body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                panic!(
                    "body is not JSON ({e}): {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    /// `body.message` as a string ("" when absent).
    pub fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or_default()
    }

    /// The `X-Request-Id` header ("" when absent).
    pub fn request_id(&self) -> &str {
        self.headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// Checks this is an error envelope with `status` whose message contains `needle`, and that
    /// it carries a request id.
    pub fn assert_error(&self, status: StatusCode, needle: &str) {
        assert_eq!(self.status, status, "{:?}", self.body);
        assert_eq!(self.body["status"], "error", "{:?}", self.body);
        assert!(
            self.message().contains(needle),
            "message {:?} should contain {needle:?}",
            self.message()
        );
        assert!(!self.request_id().is_empty(), "no X-Request-Id");
    }
}
