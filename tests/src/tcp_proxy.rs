//! `TcpProxy`: a TCP relay on 127.0.0.1 that a test puts between alsy and a server, to make the
//! server misbehave on cue. `pause` stops relaying bytes (a server that stopped answering),
//! `cut` closes every connection and refuses new ones (a server that went away), `restore`
//! relays again.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Relay,
    Pause,
    Cut,
}

/// A relay to one upstream address; see the module comment.
pub struct TcpProxy {
    addr: SocketAddr,
    mode: watch::Sender<Mode>,
    acceptor: JoinHandle<()>,
}

impl TcpProxy {
    /// Listens on 127.0.0.1 (a free port) and relays to `upstream`.
    pub async fn start(upstream: SocketAddr) -> io::Result<TcpProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (mode, _) = watch::channel(Mode::Relay);
        let modes = mode.clone();
        let acceptor = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let mode = modes.subscribe();
                if *mode.borrow() == Mode::Cut {
                    continue; // dropping `inbound` refuses the connection
                }
                tokio::spawn(relay(inbound, upstream, mode));
            }
        });
        Ok(TcpProxy {
            addr,
            mode,
            acceptor,
        })
    }

    /// Where clients should connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Holds every byte in both directions until `restore` (or `cut`).
    pub fn pause(&self) {
        self.mode.send_replace(Mode::Pause);
    }

    /// Closes every connection and refuses new ones until `restore`.
    pub fn cut(&self) {
        self.mode.send_replace(Mode::Cut);
    }

    /// Relays again.
    pub fn restore(&self) {
        self.mode.send_replace(Mode::Relay);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.acceptor.abort();
        self.mode.send_replace(Mode::Cut);
    }
}

async fn relay(inbound: TcpStream, upstream: SocketAddr, mode: watch::Receiver<Mode>) {
    let Ok(outbound) = TcpStream::connect(upstream).await else {
        return;
    };
    let (from_client, to_client) = inbound.into_split();
    let (from_server, to_server) = outbound.into_split();
    // When either direction ends, both sockets close.
    tokio::select! {
        () = pump(from_client, to_server, mode.clone()) => {}
        () = pump(from_server, to_client, mode) => {}
    }
}

async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut mode: watch::Receiver<Mode>) {
    let mut buffer = vec![0; 16 * 1024];
    loop {
        if !relaying(&mut mode).await {
            return;
        }
        tokio::select! {
            read = from.read(&mut buffer) => {
                let n = match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                // Bytes read just before a pause are held, not delivered.
                if !relaying(&mut mode).await || to.write_all(&buffer[..n]).await.is_err() {
                    return;
                }
            }
            changed = mode.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

/// Waits while paused; `true` to relay, `false` when cut or the proxy is gone.
async fn relaying(mode: &mut watch::Receiver<Mode>) -> bool {
    loop {
        match *mode.borrow_and_update() {
            Mode::Relay => return true,
            Mode::Cut => return false,
            Mode::Pause => {}
        }
        if mode.changed().await.is_err() {
            return false;
        }
    }
}
