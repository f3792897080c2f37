//! The request id every response carries in `X-Request-Id` and every log line about the request
//! names: the caller's own, when it sent a sane one, so ids can be followed across services.

use std::fmt;

use warp::http::{HeaderMap, HeaderValue};

/// The header that carries the request id, both ways.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// One request's id: at most 64 printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestId(String);

impl RequestId {
    const MAX_LEN: usize = 64;

    /// Accepts an id a caller sent; `None` when it is empty, too long or not printable ASCII
    /// (such an id could break log lines or headers downstream).
    pub fn parse(raw: &str) -> Option<RequestId> {
        let sane = !raw.is_empty()
            && raw.len() <= Self::MAX_LEN
            && raw.bytes().all(|b| b.is_ascii_graphic());
        sane.then(|| RequestId(raw.to_owned()))
    }

    /// A fresh random id (a UUID v4).
    pub fn generate() -> RequestId {
        RequestId(uuid::Uuid::new_v4().to_string())
    }

    /// The caller's id from `X-Request-Id` when sane, else a fresh one.
    pub fn from_headers(headers: &HeaderMap) -> RequestId {
        headers
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(RequestId::parse)
            .unwrap_or_else(RequestId::generate)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as a header value.
    pub fn header_value(&self) -> HeaderValue {
        // Only printable ASCII gets in, which is always a valid header value.
        HeaderValue::from_str(&self.0).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sane_incoming_id_is_kept() {
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID_HEADER, HeaderValue::from_static("abc-123"));
        assert_eq!(RequestId::from_headers(&headers).as_str(), "abc-123");
    }

    #[test]
    fn a_missing_long_or_unprintable_id_is_replaced() {
        let mut headers = HeaderMap::new();
        assert_eq!(RequestId::from_headers(&headers).as_str().len(), 36);
        headers.insert(
            REQUEST_ID_HEADER,
            HeaderValue::from_str(&"x".repeat(65)).unwrap(),
        );
        assert_ne!(RequestId::from_headers(&headers).as_str(), "x".repeat(65));
        headers.insert(REQUEST_ID_HEADER, HeaderValue::from_static("has space"));
        assert_ne!(RequestId::from_headers(&headers).as_str(), "has space");
        assert!(RequestId::parse(&"y".repeat(64)).is_some());
        assert!(RequestId::parse("").is_none());
    }

    #[test]
    fn generated_ids_differ() {
        assert_ne!(RequestId::generate(), RequestId::generate());
    }
}
