//! The `tcp` probe: a connection accepted within the timeout is Up.
//!
//! Owns one thing: opening a TCP connection to the configured address and closing it at
//! once. It sends nothing and reads nothing, so it proves only that something listens (and
//! that the kernel's backlog still takes connections); protocol checks belong to the `http`
//! or `mysql` probes. It must not retry, keep a connection between runs or outlive its
//! timeout: the daemon polls it every interval and counts rise/fall itself.
//!
//! Fixed signatures (the daemon and config are written against them):
//! `TcpSettings { address: SocketAddr }`, `async fn probe(settings: &TcpSettings,
//! timeout: Duration) -> ProbeOutcome`.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;

use super::ProbeOutcome;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpSettings {
    pub address: SocketAddr,
}

/// Connects to `settings.address` within `timeout`. Up if the handshake completes; Down with
/// a reason that names the address otherwise ("192.0.2.10:80: connection refused",
/// "192.0.2.10:80: no answer within 200ms").
pub async fn probe(settings: &TcpSettings, timeout: Duration) -> ProbeOutcome {
    let address = settings.address;
    match tokio::time::timeout(timeout, TcpStream::connect(address)).await {
        // Dropping the stream closes it at once: the probe only needed the handshake.
        Ok(Ok(stream)) => {
            drop(stream);
            ProbeOutcome::Up
        }
        Ok(Err(err)) => ProbeOutcome::down(format!("{address}: {}", describe(&err))),
        // A SYN that is dropped (firewall, or no host: no ARP reply) ends here, not in an
        // error: the kernel would retry SYNs for about two minutes.
        Err(_) => ProbeOutcome::down(format!("{address}: no answer within {timeout:?}")),
    }
}

/// Short lower-case wording for the usual failures, so that logs read "connection refused"
/// rather than "Connection refused (os error 111)"; anything else keeps the OS's text.
fn describe(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        io::ErrorKind::HostUnreachable => "host unreachable".to_owned(),
        io::ErrorKind::NetworkUnreachable => "network unreachable".to_owned(),
        io::ErrorKind::AddrNotAvailable => "address not available".to_owned(),
        io::ErrorKind::TimedOut => "connection timed out".to_owned(),
        _ => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn open_port_is_up() {
        runtime().block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let settings = TcpSettings {
                address: listener.local_addr().unwrap(),
            };
            assert_eq!(
                probe(&settings, Duration::from_secs(1)).await,
                ProbeOutcome::Up
            );
        });
    }

    #[test]
    fn closed_port_is_down_refused() {
        runtime().block_on(async {
            // Bind then drop: the port was free a moment ago and nothing listens on it now.
            let address = {
                let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                listener.local_addr().unwrap()
            };
            let outcome = probe(&TcpSettings { address }, Duration::from_secs(1)).await;
            assert_eq!(
                outcome,
                ProbeOutcome::down(format!("{address}: connection refused"))
            );
        });
    }
}
