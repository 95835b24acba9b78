//! STUB (issue 3): raw VRRP sockets, IPv4 and IPv6, one per (interface, family).
//!
//! Agreed API, filled in by the socket work:
//! - `VrrpSocket::open(interface: &str, family: Family, source: Option<IpAddr>)
//!   -> Result<VrrpSocket, SocketError>`: protocol 112 raw socket bound to the device,
//!   joined to 224.0.0.18 / ff02::12 on it, TTL / hop limit 255, multicast loop off; the
//!   source is `source` or the interface's primary IPv4 address / IPv6 link-local address.
//! - `VrrpSocket::source(&self) -> IpAddr`
//! - `VrrpSocket::send(&self, payload: &[u8], dst: IpAddr) -> Result<(), SocketError>`:
//!   non-blocking, never waits.
//! - `async VrrpSocket::recv(&self) -> Result<Received, SocketError>` where `Received { src,
//!   dst, ttl, payload: Vec<u8> }` is the VRRP message with its IP-level facts (the IPv4
//!   header is parsed with `vrrp::packet::decode_ipv4_header`; IPv6 facts come from
//!   ancillary data).

use thiserror::Error;

#[derive(Debug, Error)]
pub enum SocketError {}
