//! The network side of vipkeeper.
//!
//! [`linux`] talks to the kernel (raw VRRP sockets, rtnetlink, layer-2 announcements);
//! [`sim`] is an in-memory segment that plays sockets, netlink and the clock for many
//! routers at once. Neither holds protocol logic, which stays in [`crate::vrrp`].

pub mod linux;
pub mod sim;

use thiserror::Error;

/// Errors of the network layer. Every variant is an operational fault to log and count
/// (a missing interface, a refused netlink request); none is caused by a peer's packet.
#[derive(Debug, Error)]
pub enum NetError {
    #[error(transparent)]
    Socket(#[from] linux::vrrp_socket::SocketError),
    #[error(transparent)]
    Netlink(#[from] linux::netlink::NetlinkError),
    #[error(transparent)]
    Announce(#[from] linux::announce::AnnounceError),
}
