//! The API server's `Retry-After`, kept where kube can see it. kube turns an error answer into
//! `Error::Api(Status)` from the body alone and drops the headers, so the `Retry-After` of a 429 or
//! 503 would be lost. This middleware copies it into the `Status` body's
//! `details.retryAfterSeconds` — where kube-apiserver itself also puts it on a 429 — and
//! [`crate::errors`] reads it from there. A body that is not a `Status` (a proxy's text page)
//! becomes one, so the wait survives too.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::SystemTime;

use bytes::Bytes;
use http::header::RETRY_AFTER;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use kube::client::{Body, DynBody};
use serde_json::{Value, json};
use tower::{BoxError, Layer, Service};

/// Adds [`RetryAfter`] to a kube client's stack.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RetryAfterLayer;

impl<S> Layer<S> for RetryAfterLayer {
    type Service = RetryAfter<S>;

    fn layer(&self, inner: S) -> RetryAfter<S> {
        RetryAfter { inner }
    }
}

/// See the module documentation.
#[derive(Debug, Clone)]
pub(crate) struct RetryAfter<S> {
    inner: S,
}

type Answer = Response<Box<DynBody>>;

impl<S> Service<Request<Body>> for RetryAfter<S>
where
    S: Service<Request<Body>, Response = Answer, Error = BoxError>,
    S::Future: Send + 'static,
{
    type Response = Answer;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Answer, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await?;
            let Some(seconds) = throttled_for(response.status(), response.headers()) else {
                return Ok(response);
            };
            let (parts, body) = response.into_parts();
            let text = body.collect().await?.to_bytes();
            let text = with_retry_after(parts.status, &text, seconds);
            let body = Full::new(text).map_err(|never: Infallible| -> BoxError { match never {} });
            Ok(Response::from_parts(parts, Box::new(body) as Box<DynBody>))
        })
    }
}

/// The seconds a 429 or 503 asks to wait: `Retry-After` as seconds or as an HTTP date (rounded
/// up, at least 1).
fn throttled_for(status: StatusCode, headers: &HeaderMap) -> Option<u32> {
    if status != StatusCode::TOO_MANY_REQUESTS && status != StatusCode::SERVICE_UNAVAILABLE {
        return None;
    }
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u32>() {
        return Some(seconds);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let wait = at.duration_since(SystemTime::now()).unwrap_or_default();
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    Some(u32::try_from(seconds).unwrap_or(u32::MAX).max(1))
}

/// `body` with `details.retryAfterSeconds` at least `seconds`; a body that is no `Status`
/// becomes one carrying it as the message.
fn with_retry_after(status: StatusCode, body: &[u8], seconds: u32) -> Bytes {
    let mut parsed = match serde_json::from_slice::<Value>(body) {
        Ok(value @ Value::Object(_)) if value.get("kind") == Some(&json!("Status")) => value,
        _ => json!({
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "message": String::from_utf8_lossy(body).trim(),
            "reason": status.canonical_reason().unwrap_or_default().replace(' ', ""),
            "code": status.as_u16(),
        }),
    };
    let details = &mut parsed["details"];
    if !details.is_object() {
        *details = json!({});
    }
    let stated = details["retryAfterSeconds"].as_u64().unwrap_or(0);
    details["retryAfterSeconds"] = json!(stated.max(u64::from(seconds)));
    Bytes::from(parsed.to_string())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::HeaderValue;
    use kube::core::Status;

    use super::*;

    fn headers(retry_after: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_str(retry_after).unwrap());
        headers
    }

    fn status_of(body: &Bytes) -> Status {
        serde_json::from_slice(body).unwrap()
    }

    #[test]
    fn only_throttling_answers_with_the_header_carry_a_wait() {
        assert_eq!(
            throttled_for(StatusCode::TOO_MANY_REQUESTS, &headers("3")),
            Some(3)
        );
        assert_eq!(
            throttled_for(StatusCode::SERVICE_UNAVAILABLE, &headers(" 1 ")),
            Some(1)
        );
        assert_eq!(
            throttled_for(StatusCode::INTERNAL_SERVER_ERROR, &headers("3")),
            None
        );
        assert_eq!(
            throttled_for(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new()),
            None
        );
        assert_eq!(
            throttled_for(StatusCode::TOO_MANY_REQUESTS, &headers("soon")),
            None
        );
        let in_a_minute = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(61));
        let seconds = throttled_for(StatusCode::TOO_MANY_REQUESTS, &headers(&in_a_minute));
        assert!(matches!(seconds, Some(59..=61)), "{seconds:?}");
        let past = httpdate::fmt_http_date(SystemTime::UNIX_EPOCH);
        assert_eq!(
            throttled_for(StatusCode::TOO_MANY_REQUESTS, &headers(&past)),
            Some(1)
        );
    }

    #[test]
    fn the_wait_goes_into_the_status_details_keeping_the_rest() {
        let body = json!({"kind":"Status","apiVersion":"v1","status":"Failure",
            "message":"slow down","reason":"TooManyRequests","code":429,
            "details":{"name":"vwap-1","kind":"pods"}});
        let out = with_retry_after(
            StatusCode::TOO_MANY_REQUESTS,
            body.to_string().as_bytes(),
            2,
        );
        let status = status_of(&out);
        let details = status.details.unwrap();
        assert_eq!(details.retry_after_seconds, 2);
        assert_eq!(details.name, "vwap-1");
        assert_eq!(status.message, "slow down");
        assert_eq!(status.code, 429);
    }

    #[test]
    fn a_longer_wait_already_in_the_body_stays() {
        let body = json!({"kind":"Status","code":429,"details":{"retryAfterSeconds":9}});
        let out = with_retry_after(
            StatusCode::TOO_MANY_REQUESTS,
            body.to_string().as_bytes(),
            2,
        );
        assert_eq!(status_of(&out).details.unwrap().retry_after_seconds, 9);
    }

    #[test]
    fn a_body_that_is_no_status_becomes_one() {
        let out = with_retry_after(StatusCode::SERVICE_UNAVAILABLE, b"<html>down</html>\n", 5);
        let status = status_of(&out);
        assert_eq!(status.code, 503);
        assert_eq!(status.reason, "ServiceUnavailable");
        assert_eq!(status.message, "<html>down</html>");
        assert_eq!(status.details.unwrap().retry_after_seconds, 5);
    }
}
