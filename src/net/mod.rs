//! The network side of vipkeeper.
//!
//! Today it holds only [`sim`], an in-memory segment that plays sockets, netlink and the
//! clock for many routers at once. The Linux backend (raw VRRP sockets, rtnetlink VIPs,
//! GARP/NA) and the `NetBackend` trait both implement arrive with the daemon; they must not
//! hold protocol logic, which stays in [`crate::vrrp`].
pub mod sim;
