//! The HTTP API over real HTTP: the envelope, every 4xx README.md lists, with malformed, missing,
//! unknown, wrong-typed and oversized input, ids, query parameters, `X-Request-Id`, the access
//! log, 503s when storage or the runtime is down, and the read, write and idle timeouts.
//! They run on `TestApp`; this file holds the raw-connection helpers the three files share.

mod input;
mod responses;
mod timeouts;

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Sends raw bytes on a new connection and reads until the server closes it or `within` passes.
async fn raw_exchange(addr: &str, bytes: &[u8], within: Duration) -> (String, Duration) {
    let mut stream = TcpStream::connect(addr).await.expect("connects");
    let started = Instant::now();
    stream.write_all(bytes).await.expect("writes");
    let text = read_until_closed(&mut stream, within).await;
    (text, started.elapsed())
}

async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> String {
    let mut received = Vec::new();
    let _ = tokio::time::timeout(within, stream.read_to_end(&mut received)).await;
    String::from_utf8_lossy(&received).into_owned()
}

/// Reads one response whose body ends with `end`.
async fn read_response(stream: &mut TcpStream, end: &str) -> String {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(5);
    while !String::from_utf8_lossy(&received).ends_with(end) {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .expect("a response within 5s")
            .expect("reads");
        assert!(
            n > 0,
            "connection closed early: {}",
            String::from_utf8_lossy(&received)
        );
        received.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&received).into_owned()
}
