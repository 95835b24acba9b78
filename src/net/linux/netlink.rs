//! VIPs and link state through rtnetlink.
//!
//! This module owns the daemon's conversation with the kernel's routing netlink family:
//!
//! - adding and removing VIPs ([`Netlink::add_vip`], [`Netlink::del_vip`]), idempotently so
//!   that the daemon can repeat a transition without tracking what the kernel already has;
//!   IPv6 VIPs carry `IFA_F_NODAD` (usable at once, as keepalived does) and IPv4 ones the
//!   broadcast address `ip addr add ... brd +` would set;
//! - tagging every address it adds with [`VIPKEEPER_ADDRESS_PROTO`] in `IFA_PROTO`, so that
//!   after a crash [`Netlink::remove_stale_vips`] finds exactly ours and nothing else;
//! - reading link state ([`Netlink::link`]) and addresses ([`Netlink::addresses`]);
//! - streaming link and address changes ([`Netlink::monitor`]) from a socket of its own.
//!
//! It must not: touch an address without our tag except the one VIP it is asked to add or
//! delete, change links (no up/down, no MTU, no creation), hold protocol logic (when to add
//! or remove is the router's decision), or panic on whatever the kernel sends.
//!
//! Every socket binds in the network namespace of the thread that creates it; tests rely on
//! that to run this code inside a lab namespace.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures::{Stream, StreamExt, TryStreamExt};
use rtnetlink::packet_core::{NetlinkMessage, NetlinkPayload};
use rtnetlink::packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressProtocol,
};
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::sys::AsyncSocket;
use rtnetlink::{Handle, MulticastGroup};
use thiserror::Error;

use crate::config::Vip;

/// IFA_PROTO value marking addresses vipkeeper added (keepalived uses 18).
pub const VIPKEEPER_ADDRESS_PROTO: u8 = 0x56;

/// Receive buffer of the monitor socket (SO_RCVBUF), bytes.
const MONITOR_RCVBUF: usize = 1 << 20;

// errno values the kernel answers with (as negative codes in NLMSG_ERROR).
const EEXIST: i32 = 17;
const ENODEV: i32 = 19;
const ENOENT: i32 = 2;
const EADDRNOTAVAIL: i32 = 99;

#[derive(Debug, Error)]
pub enum NetlinkError {
    #[error("cannot open a routing netlink socket: {0}")]
    Socket(#[source] io::Error),
    #[error("interface {name}: no such interface")]
    NoSuchInterface { name: String },
    #[error("interface {name}: reading link: {source}")]
    Link {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("interface {name}: the kernel sent no link")]
    NoLinkReply { name: String },
    #[error("adding {address}/{prefix_len} on {dev}: {source}")]
    AddAddress {
        address: IpAddr,
        prefix_len: u8,
        dev: String,
        #[source]
        source: io::Error,
    },
    #[error("removing {address}/{prefix_len} from {dev}: {source}")]
    DelAddress {
        address: IpAddr,
        prefix_len: u8,
        /// An interface name, or `index N` when only the index is known (stale VIPs).
        dev: String,
        #[source]
        source: io::Error,
    },
    #[error("listing addresses: {source}")]
    DumpAddresses {
        #[source]
        source: io::Error,
    },
}

/// A link as the daemon cares about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkInfo {
    pub index: u32,
    /// Administratively up with carrier (IFF_UP and IFF_LOWER_UP), as keepalived's IF_ISUP.
    pub up: bool,
    pub mac: Option<[u8; 6]>,
}

/// An address as the kernel reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressInfo {
    pub index: u32,
    pub address: IpAddr,
    pub prefix_len: u8,
    /// IPv4 only.
    pub label: Option<String>,
    /// IFA_PROTO; `Some(VIPKEEPER_ADDRESS_PROTO)` for ours.
    pub protocol: Option<u8>,
    /// Still doing duplicate address detection (IPv6): not usable as a source yet.
    pub tentative: bool,
    /// Added without duplicate address detection.
    pub nodad: bool,
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

/// Address families for [`Netlink::addresses`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressKind {
    Any,
    V4,
    V6,
}

#[derive(Debug)]
pub struct Netlink {
    handle: Handle,
}

/// The kernel's error as an `io::Error` (errno and its text); anything else rtnetlink
/// reports (an unexpected reply, a closed connection) as an `io::Error` carrying its text.
fn kernel_error(e: rtnetlink::Error) -> io::Error {
    match e {
        rtnetlink::Error::NetlinkError(msg) => msg.to_io(),
        other => io::Error::other(other.to_string()),
    }
}

/// The errno of a kernel refusal, if that is what `e` is.
fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(msg) => Some(msg.raw_code().abs()),
        _ => None,
    }
}

fn link_info(msg: &LinkMessage) -> LinkInfo {
    let flags = msg.header.flags;
    let mac = msg.attributes.iter().find_map(|a| match a {
        // Links without an Ethernet address (tunnels, some virtual devices) have none or a
        // different length; those have no MAC for gratuitous ARP either.
        LinkAttribute::Address(bytes) => <[u8; 6]>::try_from(bytes.as_slice()).ok(),
        _ => None,
    });
    LinkInfo {
        index: msg.header.index,
        up: flags.contains(LinkFlags::Up) && flags.contains(LinkFlags::LowerUp),
        mac,
    }
}

fn link_name(msg: &LinkMessage) -> Option<String> {
    msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(name) => Some(name.clone()),
        _ => None,
    })
}

/// The interface's own address: IFA_LOCAL when present (on a point-to-point IPv4 link
/// IFA_ADDRESS is the peer), IFA_ADDRESS otherwise (IPv6 usually sends only that).
fn message_address(msg: &AddressMessage) -> Option<IpAddr> {
    let local = msg.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(ip) => Some(*ip),
        _ => None,
    });
    local.or_else(|| {
        msg.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(ip) => Some(*ip),
            _ => None,
        })
    })
}

fn address_info(msg: &AddressMessage) -> Option<AddressInfo> {
    let address = message_address(msg)?;
    let mut label = None;
    let mut protocol = None;
    // IFA_FLAGS (32 bits) supersedes the 8-bit header field when present.
    let mut flags = AddressFlags::from_bits_truncate(u32::from(msg.header.flags.bits()));
    for attribute in &msg.attributes {
        match attribute {
            AddressAttribute::Label(l) => label = Some(l.clone()),
            AddressAttribute::Protocol(p) => protocol = Some(u8::from(*p)),
            AddressAttribute::Flags(f) => flags = *f,
            _ => {}
        }
    }
    Some(AddressInfo {
        index: msg.header.index,
        address,
        prefix_len: msg.header.prefix_len,
        label,
        protocol,
        tentative: flags.contains(AddressFlags::Tentative),
        nodad: flags.contains(AddressFlags::Nodad),
    })
}

/// The message that adds `vip` on link `index`: prefix, broadcast (IPv4 below /31, as
/// `brd +`; rtnetlink's builder computes it), label (IPv4), NODAD (IPv6) and our tag.
fn vip_message(vip: &Vip, index: u32) -> AddressMessage {
    let mut msg = match vip.address {
        IpAddr::V4(ip) => rtnetlink::AddressMessageBuilder::<Ipv4Addr>::new()
            .index(index)
            .address(ip, vip.prefix_len)
            .build(),
        IpAddr::V6(ip) => rtnetlink::AddressMessageBuilder::<Ipv6Addr>::new()
            .index(index)
            .address(ip, vip.prefix_len)
            .build(),
    };
    match vip.address {
        IpAddr::V4(_) => {
            // The kernel ignores IFA_LABEL for IPv6; validation refuses it there anyway.
            if let Some(label) = &vip.label {
                msg.attributes.push(AddressAttribute::Label(label.clone()));
            }
        }
        IpAddr::V6(_) => {
            // Both the header byte and IFA_FLAGS, as iproute2 sends them.
            msg.header.flags = AddressHeaderFlags::Nodad;
            msg.attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
    }
    msg.attributes
        .push(AddressAttribute::Protocol(AddressProtocol::Other(
            VIPKEEPER_ADDRESS_PROTO,
        )));
    msg
}

/// The message that deletes one address: the kernel matches on IFA_LOCAL, and with
/// IFA_ADDRESS present also on the prefix length, so a same IP with another prefix stays.
fn delete_message(index: u32, address: IpAddr, prefix_len: u8) -> AddressMessage {
    let mut msg = AddressMessage::default();
    msg.header.family = match address {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    msg.header.prefix_len = prefix_len;
    msg.header.index = index;
    msg.attributes.push(AddressAttribute::Local(address));
    msg.attributes.push(AddressAttribute::Address(address));
    msg
}

/// A monitor message as an event; `None` for what the daemon does not follow.
fn event(message: NetlinkMessage<RouteNetlinkMessage>) -> Option<NetlinkEvent> {
    let inner = match message.payload {
        NetlinkPayload::InnerMessage(inner) => inner,
        NetlinkPayload::Overrun(_) => {
            // The kernel dropped notifications (receive buffer full). NetlinkEvent has no
            // variant for it, so the loss is only logged; the buffer below makes it rare.
            tracing::warn!("netlink monitor overrun: some link/address changes were lost");
            return None;
        }
        _ => return None,
    };
    match inner {
        RouteNetlinkMessage::NewLink(link) => Some(NetlinkEvent::Link {
            index: link.header.index,
            name: link_name(&link)?,
            up: link_info(&link).up,
        }),
        // A link that is gone is down, whatever its last flags said.
        RouteNetlinkMessage::DelLink(link) => Some(NetlinkEvent::Link {
            index: link.header.index,
            name: link_name(&link)?,
            up: false,
        }),
        RouteNetlinkMessage::NewAddress(msg) => Some(NetlinkEvent::AddressAdded {
            index: msg.header.index,
            address: message_address(&msg)?,
            prefix_len: msg.header.prefix_len,
        }),
        RouteNetlinkMessage::DelAddress(msg) => Some(NetlinkEvent::AddressRemoved {
            index: msg.header.index,
            address: message_address(&msg)?,
            prefix_len: msg.header.prefix_len,
        }),
        _ => None,
    }
}

impl Netlink {
    /// Connect; spawns the rtnetlink connection task on the current tokio runtime.
    ///
    /// Panics outside a tokio runtime, like `tokio::spawn`.
    pub fn connect() -> Result<Netlink, NetlinkError> {
        let (connection, handle, _unsolicited) =
            rtnetlink::new_connection().map_err(NetlinkError::Socket)?;
        // The task ends when the last handle is dropped.
        tokio::spawn(connection);
        Ok(Netlink { handle })
    }

    pub async fn link(&self, name: &str) -> Result<LinkInfo, NetlinkError> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_owned())
            .execute();
        match links.try_next().await {
            Ok(Some(msg)) => Ok(link_info(&msg)),
            Ok(None) => Err(NetlinkError::NoLinkReply {
                name: name.to_owned(),
            }),
            Err(e) if errno(&e) == Some(ENODEV) => Err(NetlinkError::NoSuchInterface {
                name: name.to_owned(),
            }),
            Err(e) => Err(NetlinkError::Link {
                name: name.to_owned(),
                source: kernel_error(e),
            }),
        }
    }

    /// Every address on interface `name` of the given family.
    pub async fn addresses(
        &self,
        name: &str,
        kind: AddressKind,
    ) -> Result<Vec<AddressInfo>, NetlinkError> {
        let index = self.link(name).await?.index;
        let all = self.dump_addresses().await?;
        Ok(all
            .into_iter()
            .filter(|a| a.index == index)
            .filter(|a| match kind {
                AddressKind::Any => true,
                AddressKind::V4 => a.address.is_ipv4(),
                AddressKind::V6 => a.address.is_ipv6(),
            })
            .collect())
    }

    async fn dump_addresses(&self) -> Result<Vec<AddressInfo>, NetlinkError> {
        let messages: Vec<AddressMessage> = self
            .handle
            .address()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|e| NetlinkError::DumpAddresses {
                source: kernel_error(e),
            })?;
        // An address message without an address is not one we could act on.
        Ok(messages.iter().filter_map(address_info).collect())
    }

    /// Adds `vip` on `vip.dev`; an address that is already there is success.
    pub async fn add_vip(&self, vip: &Vip) -> Result<(), NetlinkError> {
        let index = self.link(&vip.dev).await?.index;
        let message = vip_message(vip, index);
        let mut request = self
            .handle
            .address()
            .add(index, vip.address, vip.prefix_len);
        *request.message_mut() = message;
        match request.execute().await {
            Ok(()) => Ok(()),
            // Already there (ours from an earlier transition, or the operator's): the VIP
            // is usable either way, which is all the caller asked for.
            Err(e) if errno(&e) == Some(EEXIST) => Ok(()),
            Err(e) => Err(NetlinkError::AddAddress {
                address: vip.address,
                prefix_len: vip.prefix_len,
                dev: vip.dev.clone(),
                source: kernel_error(e),
            }),
        }
    }

    /// Removes `vip` from `vip.dev`; an address that is already gone is success.
    pub async fn del_vip(&self, vip: &Vip) -> Result<(), NetlinkError> {
        let index = self.link(&vip.dev).await?.index;
        self.delete(index, vip.address, vip.prefix_len)
            .await
            .map_err(|source| NetlinkError::DelAddress {
                address: vip.address,
                prefix_len: vip.prefix_len,
                dev: vip.dev.clone(),
                source,
            })
    }

    async fn delete(&self, index: u32, address: IpAddr, prefix_len: u8) -> Result<(), io::Error> {
        let message = delete_message(index, address, prefix_len);
        match self.handle.address().del(message).execute().await {
            Ok(()) => Ok(()),
            Err(e) if matches!(errno(&e), Some(EADDRNOTAVAIL | ENOENT)) => Ok(()),
            Err(e) => Err(kernel_error(e)),
        }
    }

    /// Remove every address carrying our tag (left by a crashed run), nothing else.
    pub async fn remove_stale_vips(&self) -> Result<Vec<IpAddr>, NetlinkError> {
        let stale: Vec<AddressInfo> = self
            .dump_addresses()
            .await?
            .into_iter()
            .filter(|a| a.protocol == Some(VIPKEEPER_ADDRESS_PROTO))
            .collect();
        let mut removed = Vec::with_capacity(stale.len());
        for a in stale {
            self.delete(a.index, a.address, a.prefix_len)
                .await
                .map_err(|source| NetlinkError::DelAddress {
                    address: a.address,
                    prefix_len: a.prefix_len,
                    dev: format!("index {}", a.index),
                    source,
                })?;
            removed.push(a.address);
        }
        Ok(removed)
    }

    /// Link and address changes, from the moment of the call.
    ///
    /// A socket of its own, subscribed to RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR and
    /// RTNLGRP_IPV6_IFADDR; its connection task runs on the current tokio runtime until the
    /// stream is dropped.
    pub fn monitor() -> Result<impl Stream<Item = NetlinkEvent> + Send + Unpin, NetlinkError> {
        let (mut connection, _handle, messages) = rtnetlink::new_multicast_connection(&[
            MulticastGroup::Link,
            MulticastGroup::Ipv4Ifaddr,
            MulticastGroup::Ipv6Ifaddr,
        ])
        .map_err(NetlinkError::Socket)?;
        // The kernel does not wait for a slow reader: a burst (many VIPs or links changing
        // at once) beyond the default buffer would be dropped. The kernel caps the size at
        // net.core.rmem_max; more than that would need SO_RCVBUFFORCE.
        connection
            .socket_mut()
            .socket_ref()
            .set_rx_buf_sz(MONITOR_RCVBUF)
            .map_err(NetlinkError::Socket)?;
        // Without a handle the task lives exactly as long as `messages` is read from.
        tokio::spawn(connection);
        Ok(messages.filter_map(|(message, _from)| futures::future::ready(event(message))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vip(address: &str, prefix_len: u8, label: Option<&str>) -> Vip {
        Vip {
            address: address.parse().expect("test address"),
            prefix_len,
            dev: "eth0".into(),
            label: label.map(str::to_owned),
        }
    }

    #[test]
    fn ipv4_message_has_broadcast_label_and_tag() {
        let msg = vip_message(&vip("192.0.2.50", 24, Some("eth0:vip")), 3);
        assert_eq!(msg.header.index, 3);
        assert_eq!(msg.header.prefix_len, 24);
        let a = &msg.attributes;
        assert!(a.contains(&AddressAttribute::Broadcast(Ipv4Addr::new(192, 0, 2, 255))));
        assert!(a.contains(&AddressAttribute::Label("eth0:vip".into())));
        assert!(
            a.contains(&AddressAttribute::Protocol(AddressProtocol::Other(
                VIPKEEPER_ADDRESS_PROTO
            )))
        );
    }

    #[test]
    fn ipv4_host_and_point_to_point_prefixes_have_no_broadcast() {
        for prefix in [31, 32] {
            let msg = vip_message(&vip("192.0.2.50", prefix, None), 3);
            assert!(
                !msg.attributes
                    .iter()
                    .any(|a| matches!(a, AddressAttribute::Broadcast(_))),
                "/{prefix}"
            );
        }
    }

    #[test]
    fn ipv6_message_is_nodad_without_label() {
        let msg = vip_message(&vip("2001:db8::50", 64, Some("ignored")), 3);
        assert_eq!(msg.header.flags, AddressHeaderFlags::Nodad);
        let a = &msg.attributes;
        assert!(a.contains(&AddressAttribute::Flags(AddressFlags::Nodad)));
        assert!(!a.iter().any(|a| matches!(a, AddressAttribute::Label(_))));
    }

    #[test]
    fn other_messages_are_no_event() {
        let msg = NetlinkMessage::from(RouteNetlinkMessage::GetAddress(AddressMessage::default()));
        assert_eq!(event(msg), None);
    }
}
