//! `alsy healthcheck`: asks the service on this host for `/api/health`, so a container health
//! check needs nothing but the binary (the runtime image has no curl).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, bail};
use http_body_util::Empty;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

/// The address to ask: the listen address, with a wildcard IP replaced by loopback.
pub fn target(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// `GET /api/health` on `listen`'s port; `Ok` only for a 200 within `timeout`.
pub async fn check(listen: SocketAddr, timeout: Duration) -> anyhow::Result<()> {
    let address = target(listen);
    tokio::time::timeout(timeout, ask(address))
        .await
        .with_context(|| format!("no answer from {address} within {timeout:?}"))?
}

async fn ask(address: SocketAddr) -> anyhow::Result<()> {
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .with_context(|| format!("connecting to {address}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP handshake")?;
    tokio::spawn(connection);
    let request = hyper::Request::get("/api/health")
        .header(hyper::header::HOST, address.to_string())
        .body(Empty::<Bytes>::new())
        .context("building the request")?;
    let response = sender
        .send_request(request)
        .await
        .context("GET /api/health")?;
    if response.status() != hyper::StatusCode::OK {
        bail!(
            "GET /api/health on {address} answered {}",
            response.status()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_listen_address_is_asked_on_loopback() {
        let v4: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(target(v4), "127.0.0.1:8080".parse().unwrap());
        let v6: SocketAddr = "[::]:8080".parse().unwrap();
        assert_eq!(target(v6), "[::1]:8080".parse().unwrap());
        let fixed: SocketAddr = "10.1.2.3:9000".parse().unwrap();
        assert_eq!(target(fixed), fixed);
    }

    #[tokio::test]
    async fn nothing_listening_is_an_error_naming_the_address() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let err = check(address, Duration::from_secs(2)).await.unwrap_err();
        assert!(format!("{err:#}").contains(&address.to_string()), "{err:#}");
    }
}
