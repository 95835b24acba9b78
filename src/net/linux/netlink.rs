//! STUB (issue 3): VIPs and link state through rtnetlink.
//!
//! To be filled in by the netlink work, keeping these signatures: add and remove VIPs
//! (idempotent; IPv6 with nodad; label set; every address tagged with
//! [`VIPKEEPER_ADDRESS_PROTO`] in IFA_PROTO so that ours are known after a crash), read link
//! state, and stream link and address changes.

use std::net::IpAddr;

use futures::Stream;
use thiserror::Error;

use crate::config::Vip;

/// IFA_PROTO value marking addresses vipkeeper added (keepalived uses 18).
pub const VIPKEEPER_ADDRESS_PROTO: u8 = 0x56;

#[derive(Debug, Error)]
pub enum NetlinkError {
    #[error("netlink is not built yet")]
    NotBuilt,
}

/// A link as the daemon cares about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkInfo {
    pub index: u32,
    /// Administratively up with carrier (IFF_UP and IFF_LOWER_UP), as keepalived's IF_ISUP.
    pub up: bool,
    pub mac: Option<[u8; 6]>,
}

/// A change reported by the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetlinkEvent {
    Link {
        index: u32,
        name: String,
        up: bool,
    },
    AddressAdded {
        index: u32,
        address: IpAddr,
        prefix_len: u8,
    },
    AddressRemoved {
        index: u32,
        address: IpAddr,
        prefix_len: u8,
    },
}

#[derive(Debug)]
pub struct Netlink {
    _private: (),
}

impl Netlink {
    /// Connect; spawns the rtnetlink connection task on the current tokio runtime.
    pub fn connect() -> Result<Netlink, NetlinkError> {
        Err(NetlinkError::NotBuilt)
    }

    pub async fn link(&self, name: &str) -> Result<LinkInfo, NetlinkError> {
        let _ = name;
        Err(NetlinkError::NotBuilt)
    }

    pub async fn add_vip(&self, vip: &Vip) -> Result<(), NetlinkError> {
        let _ = vip;
        Err(NetlinkError::NotBuilt)
    }

    pub async fn del_vip(&self, vip: &Vip) -> Result<(), NetlinkError> {
        let _ = vip;
        Err(NetlinkError::NotBuilt)
    }

    /// Remove every address carrying our tag (left by a crashed run), nothing else.
    pub async fn remove_stale_vips(&self) -> Result<Vec<IpAddr>, NetlinkError> {
        Err(NetlinkError::NotBuilt)
    }

    /// Link and address changes, from the moment of the call.
    pub fn monitor() -> Result<impl Stream<Item = NetlinkEvent> + Send + Unpin, NetlinkError> {
        Err::<futures::stream::Empty<NetlinkEvent>, _>(NetlinkError::NotBuilt)
    }
}
