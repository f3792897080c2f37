//! The read, write and idle timeouts over raw connections, and a graceful shutdown that lets a
//! request in flight finish.

use std::time::Duration;

use reqwest::StatusCode;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use alsy_tests::app::TestApp;
use alsy_tests::fixtures::{LOAD_MARGIN, eventually};

use super::{raw_exchange, read_response, read_until_closed};

#[tokio::test]
async fn an_idle_connection_is_closed_after_the_idle_timeout() {
    let app = TestApp::builder()
        .env("ALSY__HTTP__IDLE_TIMEOUT", "300ms")
        .spawn()
        .await;
    // The exchange itself gives up after 60 s: closing before that is the server's doing.
    let (text, took) = raw_exchange(&app.addr(), b"", Duration::from_secs(60)).await;
    assert_eq!(text, "");
    assert!(took >= Duration::from_millis(250), "closed after {took:?}");
    assert!(
        took < Duration::from_millis(300) + LOAD_MARGIN,
        "closed after {took:?}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_keep_alive_connection_outlives_the_read_timeout_while_idle() {
    let app = TestApp::builder()
        .env("ALSY__HTTP__READ_TIMEOUT", "200ms")
        .env("ALSY__HTTP__IDLE_TIMEOUT", "5s")
        .spawn()
        .await;
    let mut stream = TcpStream::connect(app.addr()).await.unwrap();
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
    app.shutdown().await;
}

#[tokio::test]
async fn a_request_head_that_stalls_is_cut_off_after_the_read_timeout() {
    let app = TestApp::builder()
        .env("ALSY__HTTP__READ_TIMEOUT", "300ms")
        .env("ALSY__HTTP__IDLE_TIMEOUT", "30s")
        .spawn()
        .await;
    let (_, took) = raw_exchange(
        &app.addr(),
        b"GET /api/health HTTP/1.1\r\nHost:",
        Duration::from_secs(60),
    )
    .await;
    // Neither the 30 s idle timeout nor the exchange's 60 s: the read timeout closed it.
    assert!(took >= Duration::from_millis(250), "closed after {took:?}");
    assert!(
        took < Duration::from_millis(300) + LOAD_MARGIN,
        "closed after {took:?}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_body_that_stalls_is_408() {
    let app = TestApp::builder()
        .env("ALSY__HTTP__READ_TIMEOUT", "300ms")
        .spawn()
        .await;
    let head =
        b"POST /api/v1/clients HTTP/1.1\r\nHost: alsy\r\nContent-Length: 100\r\n\r\n{\"name\"";
    let mut stream = TcpStream::connect(app.addr()).await.unwrap();
    stream.write_all(head).await.unwrap();
    let text = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        text.contains("request body not received within 300ms"),
        "{text}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_request_slower_than_the_write_timeout_is_503() {
    let app = TestApp::builder()
        .env("ALSY__HTTP__WRITE_TIMEOUT", "200ms")
        .spawn()
        .await;
    app.runtime().set_latency(Duration::from_secs(2));
    app.get("/api/v1/pods").await.assert_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "not completed within 200ms",
    );
    app.runtime().set_latency(Duration::ZERO);
    app.shutdown().await;
}

#[tokio::test]
async fn shutdown_lets_a_request_in_flight_finish() {
    let app = TestApp::spawn().await;
    app.runtime().set_latency(Duration::from_millis(300));
    let calls = app.runtime().calls_started();
    let http = app.http.clone();
    let url = app.url("/api/v1/pods");
    let in_flight = tokio::spawn(async move { http.get(url).send().await.map(|r| r.status()) });
    eventually(
        "the request reached the runtime",
        Duration::from_secs(5),
        || async { app.runtime().calls_started() > calls },
    )
    .await;
    let addr = app.addr();
    app.shutdown().await;
    assert_eq!(in_flight.await.unwrap().unwrap(), StatusCode::OK);
    // And nothing is listening any more.
    assert!(TcpStream::connect(addr).await.is_err());
}
