//! STUB (issue 3): raw VRRP sockets, IPv4 and IPv6, one per (interface, family).
//!
//! To be filled in by the socket work, keeping these signatures: a protocol 112 raw socket
//! bound to the device, joined to 224.0.0.18 / ff02::12 on it, TTL / hop limit 255,
//! multicast loop off; the source is the configured one or the interface's primary IPv4
//! address / IPv6 link-local address.

use std::net::IpAddr;

use thiserror::Error;

use crate::vrrp::Family;

#[derive(Debug, Error)]
pub enum SocketError {
    #[error("VRRP sockets are not built yet")]
    NotBuilt,
}

/// One received VRRP message with the IP-level facts the receiver checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// TTL (IPv4) or hop limit (IPv6) as received.
    pub ttl: u8,
    /// The VRRP message, IP header removed.
    pub payload: Vec<u8>,
}

#[derive(Debug)]
pub struct VrrpSocket {
    _private: (),
}

impl VrrpSocket {
    pub fn open(
        interface: &str,
        family: Family,
        source: Option<IpAddr>,
    ) -> Result<VrrpSocket, SocketError> {
        let _ = (interface, family, source);
        Err(SocketError::NotBuilt)
    }

    /// The source address of our adverts (the tie-breaking primary address).
    pub fn source(&self) -> IpAddr {
        unimplemented!("issue 3: VrrpSocket::source")
    }

    /// Send one VRRP message to `dst` (the group or a unicast peer); never blocks.
    pub fn send(&self, payload: &[u8], dst: IpAddr) -> Result<(), SocketError> {
        let _ = (payload, dst);
        Err(SocketError::NotBuilt)
    }

    /// The next VRRP message on the interface.
    pub async fn recv(&self) -> Result<Received, SocketError> {
        Err(SocketError::NotBuilt)
    }
}
