//! STUB (issue 3): gratuitous ARP and unsolicited neighbour advertisements with pnet.
//!
//! Agreed API, filled in by the announce work:
//! - `garp_frame(mac: [u8; 6], address: Ipv4Addr) -> Vec<u8>` and
//!   `unsolicited_na_frame(mac: [u8; 6], address: Ipv6Addr) -> Vec<u8>`: pure, byte-exact to
//!   keepalived's frames in ../shared/vectors.
//! - `Announcer::open(interface: &str) -> Result<Announcer, AnnounceError>`,
//!   `Announcer::mac()`, `Announcer::announce(&mut self, address: IpAddr)
//!   -> Result<(), AnnounceError>` (one frame; repeats and delays are the daemon's).

use thiserror::Error;

#[derive(Debug, Error)]
pub enum AnnounceError {}
