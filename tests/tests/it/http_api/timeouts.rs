//! The read, write and idle timeouts over raw connections, and a graceful shutdown that lets a
//! request in flight finish.

use std::time::Duration;

use reqwest::StatusCode;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{Api, raw_exchange, read_response, read_until_closed};

#[tokio::test]
async fn an_idle_connection_is_closed_after_the_idle_timeout() {
    let api = Api::start(&[("ALSY__HTTP__IDLE_TIMEOUT", "300ms")]).await;
    let (text, took) = raw_exchange(&api.addr(), b"", Duration::from_secs(5)).await;
    assert_eq!(text, "");
    assert!(took >= Duration::from_millis(250), "closed after {took:?}");
    assert!(took < Duration::from_secs(3), "closed after {took:?}");
    api.shutdown().await;
}

#[tokio::test]
async fn a_keep_alive_connection_outlives_the_read_timeout_while_idle() {
    let api = Api::start(&[
        ("ALSY__HTTP__READ_TIMEOUT", "200ms"),
        ("ALSY__HTTP__IDLE_TIMEOUT", "5s"),
    ])
    .await;
    let mut stream = TcpStream::connect(api.addr()).await.unwrap();
    let request = b"GET /api/health HTTP/1.1\r\nHost: alsy\r\n\r\n";
    stream.write_all(request).await.unwrap();
    assert!(
        read_response(&mut stream, "{\"status\":\"ok\"}")
            .await
            .starts_with("HTTP/1.1 200")
    );
    // Idle for longer than the read timeout, shorter than the idle timeout.
    tokio::time::sleep(Duration::from_millis(600)).await;
    stream.write_all(request).await.unwrap();
    assert!(
        read_response(&mut stream, "{\"status\":\"ok\"}")
            .await
            .starts_with("HTTP/1.1 200")
    );
    api.shutdown().await;
}

#[tokio::test]
async fn a_request_head_that_stalls_is_cut_off_after_the_read_timeout() {
    let api = Api::start(&[
        ("ALSY__HTTP__READ_TIMEOUT", "300ms"),
        ("ALSY__HTTP__IDLE_TIMEOUT", "30s"),
    ])
    .await;
    let (_, took) = raw_exchange(
        &api.addr(),
        b"GET /api/health HTTP/1.1\r\nHost:",
        Duration::from_secs(10),
    )
    .await;
    assert!(took >= Duration::from_millis(250), "closed after {took:?}");
    assert!(took < Duration::from_secs(5), "closed after {took:?}");
    api.shutdown().await;
}

#[tokio::test]
async fn a_body_that_stalls_is_408() {
    let api = Api::start(&[("ALSY__HTTP__READ_TIMEOUT", "300ms")]).await;
    let head =
        b"POST /api/v1/clients HTTP/1.1\r\nHost: alsy\r\nContent-Length: 100\r\n\r\n{\"name\"";
    let mut stream = TcpStream::connect(api.addr()).await.unwrap();
    stream.write_all(head).await.unwrap();
    let text = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        text.contains("request body not received within 300ms"),
        "{text}"
    );
    api.shutdown().await;
}

#[tokio::test]
async fn a_request_slower_than_the_write_timeout_is_503() {
    let api = Api::start(&[("ALSY__HTTP__WRITE_TIMEOUT", "200ms")]).await;
    api.runtime.set_latency(Duration::from_secs(2));
    api.get("/api/v1/pods").await.assert_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "not completed within 200ms",
    );
    api.runtime.set_latency(Duration::ZERO);
    api.shutdown().await;
}

#[tokio::test]
async fn shutdown_lets_a_request_in_flight_finish() {
    let mut api = Api::start(&[]).await;
    api.runtime.set_latency(Duration::from_millis(300));
    let calls = api.runtime.calls_started();
    let http = api.http.clone();
    let url = format!("{}/api/v1/pods", api.base);
    let in_flight = tokio::spawn(async move { http.get(url).send().await.map(|r| r.status()) });
    let deadline = Instant::now() + Duration::from_secs(5);
    while api.runtime.calls_started() == calls {
        assert!(
            Instant::now() < deadline,
            "the request never reached the runtime"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let running = api.running.take().unwrap();
    running.shutdown().await.expect("a clean shutdown");
    assert_eq!(in_flight.await.unwrap().unwrap(), StatusCode::OK);
    // And nothing is listening any more.
    assert!(TcpStream::connect(api.addr()).await.is_err());
}
