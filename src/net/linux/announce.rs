//! STUB (issue 3): gratuitous ARP and unsolicited neighbour advertisements with pnet.
//!
//! To be filled in by the announce work, keeping these signatures: frames byte-exact to
//! keepalived's (../shared/vectors), sent at layer 2 on the VIP's interface. One call sends
//! one frame; repeats and delays are scheduled by the daemon.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum AnnounceError {
    #[error("announcements are not built yet")]
    NotBuilt,
}

/// A gratuitous ARP request (who-has VIP tell VIP, broadcast), as keepalived sends it.
pub fn garp_frame(mac: [u8; 6], address: Ipv4Addr) -> Vec<u8> {
    let _ = (mac, address);
    unimplemented!("issue 3: garp_frame")
}

/// An unsolicited neighbour advertisement to ff02::1 with the override flag.
pub fn unsolicited_na_frame(mac: [u8; 6], address: Ipv6Addr) -> Vec<u8> {
    let _ = (mac, address);
    unimplemented!("issue 3: unsolicited_na_frame")
}

pub struct Announcer {
    _private: (),
}

impl Announcer {
    pub fn open(interface: &str) -> Result<Announcer, AnnounceError> {
        let _ = interface;
        Err(AnnounceError::NotBuilt)
    }

    pub fn mac(&self) -> [u8; 6] {
        unimplemented!("issue 3: Announcer::mac")
    }

    /// Send one frame announcing `address` from this interface's MAC.
    pub fn announce(&mut self, address: IpAddr) -> Result<(), AnnounceError> {
        let _ = address;
        Err(AnnounceError::NotBuilt)
    }
}
