//! The Linux network backend: raw VRRP sockets, VIPs through rtnetlink, and gratuitous
//! ARP / unsolicited NA at layer 2.
//!
//! Each submodule owns one kernel interface and one external crate (nix sockets,
//! rtnetlink, pnet). None of them holds protocol logic: they move bytes and addresses as
//! the daemon asks, and report what the kernel says.

pub mod announce;
pub mod netlink;
pub mod vrrp_socket;
