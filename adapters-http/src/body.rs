//! Reading a request body: at most [`BODY_LIMIT`] bytes, and within the read timeout.
//!
//! A declared `Content-Length` over the limit is refused before a byte is read; a body without
//! one (chunked) is accepted and counted as it arrives, so neither form can get past the limit.

use futures::{Stream, StreamExt};
use tokio::time::Instant;
use warp::Buf;

use crate::error::ApiError;

/// The largest request body the API accepts: 64 KiB.
pub const BODY_LIMIT: usize = 64 * 1024;

/// When the body must have arrived by; the server puts it in the request's extensions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyDeadline {
    /// The instant.
    pub at: Instant,
    /// The timeout it came from, for the message.
    pub timeout: std::time::Duration,
}

/// Reads the whole body, refusing more than [`BODY_LIMIT`] bytes and giving up at `deadline`.
pub(crate) async fn read<S, B>(
    content_length: Option<u64>,
    deadline: Option<BodyDeadline>,
    body: S,
) -> Result<Vec<u8>, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let too_large = ApiError::PayloadTooLarge { limit: BODY_LIMIT };
    if content_length.is_some_and(|n| n > BODY_LIMIT as u64) {
        return Err(too_large);
    }
    let collect = collect(body, BODY_LIMIT);
    let collected = match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline.at, collect)
            .await
            .map_err(|_| ApiError::RequestTimeout(deadline.timeout))?,
        None => collect.await,
    };
    match collected {
        Collected::Whole(bytes) => Ok(bytes),
        Collected::TooLarge => Err(too_large),
        Collected::Broken(e) => Err(ApiError::BadRequest(format!(
            "could not read the request body: {e}"
        ))),
    }
}

enum Collected {
    Whole(Vec<u8>),
    TooLarge,
    Broken(warp::Error),
}

async fn collect<S, B>(body: S, limit: usize) -> Collected
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let mut body = std::pin::pin!(body);
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        let mut chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => return Collected::Broken(e),
        };
        if bytes.len() + chunk.remaining() > limit {
            return Collected::TooLarge;
        }
        while chunk.has_remaining() {
            let piece = chunk.chunk();
            bytes.extend_from_slice(piece);
            let n = piece.len();
            chunk.advance(n);
        }
    }
    Collected::Whole(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn chunks(sizes: &[usize]) -> impl Stream<Item = Result<&'static [u8], warp::Error>> {
        static ZEROS: [u8; BODY_LIMIT + 1] = [b' '; BODY_LIMIT + 1];
        futures::stream::iter(sizes.iter().map(|n| Ok(&ZEROS[..*n])).collect::<Vec<_>>())
    }

    #[tokio::test]
    async fn a_body_within_the_limit_is_read_whole() {
        let body = read(None, None, chunks(&[10, BODY_LIMIT - 10]))
            .await
            .unwrap();
        assert_eq!(body.len(), BODY_LIMIT);
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_is_refused_unread() {
        let err = read(Some(BODY_LIMIT as u64 + 1), None, chunks(&[]))
            .await
            .unwrap_err();
        assert_eq!(err, ApiError::PayloadTooLarge { limit: BODY_LIMIT });
    }

    #[tokio::test]
    async fn an_undeclared_body_over_the_limit_is_refused() {
        let err = read(None, None, chunks(&[BODY_LIMIT, 1]))
            .await
            .unwrap_err();
        assert_eq!(err, ApiError::PayloadTooLarge { limit: BODY_LIMIT });
    }

    #[tokio::test]
    async fn a_body_that_does_not_arrive_in_time_is_a_timeout() {
        let deadline = BodyDeadline {
            at: Instant::now() + Duration::from_millis(20),
            timeout: Duration::from_millis(20),
        };
        let never = futures::stream::pending::<Result<&'static [u8], warp::Error>>();
        let err = read(None, Some(deadline), never).await.unwrap_err();
        assert_eq!(err, ApiError::RequestTimeout(Duration::from_millis(20)));
    }
}
