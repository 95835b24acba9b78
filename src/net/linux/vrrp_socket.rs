//! Raw VRRP sockets, IPv4 and IPv6: one per (interface, family).
//!
//! Owns: the kernel side of sending and receiving VRRP messages on one interface. A raw IP
//! socket of protocol 112 ([`IPPROTO_VRRP`]), bound to the device, joined to 224.0.0.18 or
//! ff02::12 on it, TTL / hop limit 255 for multicast and unicast alike (keepalived sends
//! unicast with 255 too), multicast loop off, non-blocking, read through tokio's
//! [`AsyncFd`]. The source of our adverts is the configured one or the interface's first
//! IPv4 address (keepalived's primary address) / its IPv6 link-local address (RFC 5798
//! §5.1.2.1).
//!
//! Must not: judge what it receives (TTL, peer, VRID, checksum are the daemon's and the
//! codec's), retry or block in `send`, let the kernel compute the IPv6 checksum (our codec
//! does, over a pseudo-header holding the source we bind, so that source must be the one the
//! kernel uses), or touch any interface other than the one it was opened on.
//!
//! How each rule is met, and why:
//!
//! - The socket is *not* `bind()`-ed to its source. A raw IPv4 socket with a bound address
//!   receives only packets addressed to it (`raw_v4_match`), so never 224.0.0.18; a raw IPv6
//!   one receives its joined groups but no unicast to the host's other addresses
//!   (`raw_v6_match`), so a peer sending to our global address would go unheard (the lab
//!   test of unicast to a global address caught this). The source and the outgoing
//!   interface are instead fixed on every packet with an `IP_PKTINFO` / `IPV6_PKTINFO`
//!   control message; the kernel uses exactly that source (so the IPv6 pseudo-header
//!   checksum our codec computed holds) and refuses one that is not local (a link-local one
//!   must be on this interface), so a wrong source fails loudly at `send`; `open` already
//!   checks the configured one is an address of this host.
//! - The IPv6 checksum is left to our codec: for a raw socket of any protocol but ICMPv6
//!   the kernel computes none unless `IPV6_CHECKSUM` is set, and we never set it.
//! - The outgoing interface of multicast is the bound device: with `SO_BINDTODEVICE` both
//!   `raw_sendmsg` and `rawv6_sendmsg` route through it, so no `IP(V6)_MULTICAST_IF` is
//!   needed (nix 0.30 has neither).
//! - IPv4 membership: nix 0.30 only has `ip_mreq`, which names the interface by one of its
//!   addresses; we pass the interface's own first IPv4 address, which the kernel maps back
//!   to the interface. (Limit: if that same address is also configured on another interface,
//!   the kernel may pick that one.) IPv6 membership and `IPV6_MULTICAST_LOOP`, which nix
//!   0.30 lacks, are set through `std::net::UdpSocket`'s setters on the same descriptor:
//!   they are plain `setsockopt` calls that do not care about the socket type.
//! - Received IPv4 packets carry their IP header: [`decode_ipv4_header`] gives src, dst and
//!   TTL. Received IPv6 packets are the bare payload; hop limit and destination come from
//!   `IPV6_HOPLIMIT` / `IPV6_PKTINFO` ancillary data.
//! - A packet that cannot be read as one (bad IPv4 header, truncated, ancillary data
//!   missing) is returned as an error for which [`SocketError::is_packet_error`] is true:
//!   the caller counts it and calls `recv` again. Every other error is an operational fault.
//!
//! The socket itself is created with socket2 (nix's safe `socket()` cannot name protocol
//! 112); every option after that goes through nix or std on the same descriptor.

use std::ffi::OsString;
use std::io::{self, IoSlice, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, OwnedFd};

use nix::libc;
use nix::sys::socket::{
    self, sockopt, ControlMessage, ControlMessageOwned, IpMembershipRequest, MsgFlags, SockaddrIn,
    SockaddrIn6,
};
use thiserror::Error;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::vrrp::packet::{decode_ipv4_header, DecodeError, IPPROTO_VRRP};
use crate::vrrp::Family;

/// The VRRP groups (RFC 5798 §5.1.1.2, §5.1.2.2).
pub const GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
pub const GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);

/// TTL / hop limit of everything we send (RFC 5798 §5.1.1.3, §5.1.2.3).
const TTL: u8 = 255;

/// Receive buffer: the largest VRRP message (255 IPv6 addresses, 8 + 4080 bytes) plus the
/// largest IPv4 header (60 bytes) fits; anything longer is reported as truncated.
const RECV_BUFFER: usize = 8192;

#[derive(Debug, Error)]
pub enum SocketError {
    #[error("interface {interface}: no such interface")]
    NoInterface {
        interface: String,
        #[source]
        source: io::Error,
    },
    #[error("interface {interface}: cannot list addresses")]
    ListAddresses {
        interface: String,
        #[source]
        source: io::Error,
    },
    #[error("interface {interface}: has no IPv4 address (needed to join 224.0.0.18 and as the default source)")]
    NoIpv4Address { interface: String },
    #[error("interface {interface}: has no IPv6 link-local address to send VRRPv3 from")]
    NoLinkLocal { interface: String },
    #[error("interface {interface}: source {address} is not an {family:?} address")]
    SourceFamily {
        interface: String,
        address: IpAddr,
        family: Family,
    },
    #[error("interface {interface}: source {address} is not an address of this host")]
    SourceNotLocal { interface: String, address: IpAddr },
    #[error("interface {interface}: VRRP sockets need a tokio runtime with I/O enabled")]
    NoRuntime {
        interface: String,
        #[source]
        source: io::Error,
    },
    /// One step of `open` failed (`what` names the socket option or call).
    #[error("interface {interface}: {what} failed")]
    Setup {
        interface: String,
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("interface {interface}: {dst} is not an {family:?} destination")]
    DestinationFamily {
        interface: String,
        dst: IpAddr,
        family: Family,
    },
    /// The kernel refused or could not queue the packet (EAGAIN and ENOBUFS included: we
    /// never wait or retry, the next advert is the retry).
    #[error("interface {interface}: sending to {dst} failed")]
    Send {
        interface: String,
        dst: IpAddr,
        #[source]
        source: io::Error,
    },
    #[error("interface {interface}: sent {sent} of {len} bytes to {dst}")]
    ShortSend {
        interface: String,
        dst: IpAddr,
        sent: usize,
        len: usize,
    },
    #[error("interface {interface}: receiving failed")]
    Recv {
        interface: String,
        #[source]
        source: io::Error,
    },
    /// Packet error: an IPv4 packet whose header does not parse.
    #[error("interface {interface}: received a bad IPv4 packet")]
    BadIpv4Header {
        interface: String,
        #[source]
        source: DecodeError,
    },
    /// Packet error: longer than any VRRP message, cut by the kernel.
    #[error("interface {interface}: received a packet longer than {max} bytes")]
    Truncated { interface: String, max: usize },
    /// Packet error: an IPv6 packet without the hop limit, destination or source we asked
    /// the kernel for.
    #[error("interface {interface}: received an IPv6 packet without its {missing}")]
    MissingPacketInfo {
        interface: String,
        missing: &'static str,
    },
}

impl SocketError {
    /// True for errors caused by one received packet: count it and call `recv` again.
    /// False for operational faults (the socket or interface is unusable).
    pub fn is_packet_error(&self) -> bool {
        matches!(
            self,
            SocketError::BadIpv4Header { .. }
                | SocketError::Truncated { .. }
                | SocketError::MissingPacketInfo { .. }
        )
    }
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
    fd: AsyncFd<OwnedFd>,
    interface: String,
    ifindex: u32,
    family: Family,
    source: IpAddr,
}

impl VrrpSocket {
    /// Opens the VRRP socket of `family` on `interface`, sending from `source` or, when
    /// `None`, from the interface's first IPv4 address / its link-local IPv6 address.
    ///
    /// Must be called inside a tokio runtime with I/O enabled; the socket lives in the
    /// network namespace of the calling thread.
    pub fn open(
        interface: &str,
        family: Family,
        source: Option<IpAddr>,
    ) -> Result<VrrpSocket, SocketError> {
        let ifindex =
            nix::net::if_::if_nametoindex(interface).map_err(|e| SocketError::NoInterface {
                interface: interface.to_owned(),
                source: e.into(),
            })?;
        let addresses = InterfaceAddresses::of(interface)?;
        let source =
            match (family, source) {
                (_, Some(address)) if Family::of(&address) != family => {
                    return Err(SocketError::SourceFamily {
                        interface: interface.to_owned(),
                        address,
                        family,
                    })
                }
                (_, Some(address)) if !addresses.host.contains(&address) => {
                    return Err(SocketError::SourceNotLocal {
                        interface: interface.to_owned(),
                        address,
                    })
                }
                (_, Some(address)) => address,
                (Family::Ipv4, None) => addresses.first_ipv4.map(IpAddr::V4).ok_or_else(|| {
                    SocketError::NoIpv4Address {
                        interface: interface.to_owned(),
                    }
                })?,
                (Family::Ipv6, None) => addresses.link_local.map(IpAddr::V6).ok_or_else(|| {
                    SocketError::NoLinkLocal {
                        interface: interface.to_owned(),
                    }
                })?,
            };
        // Fail before creating anything if there is no runtime: AsyncFd would panic.
        tokio::runtime::Handle::try_current().map_err(|e| SocketError::NoRuntime {
            interface: interface.to_owned(),
            source: io::Error::other(e),
        })?;

        let fd = raw_socket(interface, family)?;
        let setup = |what: &'static str| {
            move |source: io::Error| SocketError::Setup {
                interface: interface.to_owned(),
                what,
                source,
            }
        };
        let nix_setup = |what: &'static str| {
            move |errno: nix::Error| SocketError::Setup {
                interface: interface.to_owned(),
                what,
                source: errno.into(),
            }
        };
        socket::setsockopt(&fd, sockopt::BindToDevice, &OsString::from(interface))
            .map_err(nix_setup("SO_BINDTODEVICE"))?;
        let fd = match source {
            IpAddr::V4(_) => {
                let membership =
                    addresses
                        .first_ipv4
                        .ok_or_else(|| SocketError::NoIpv4Address {
                            interface: interface.to_owned(),
                        })?;
                socket::setsockopt(
                    &fd,
                    sockopt::IpAddMembership,
                    &IpMembershipRequest::new(GROUP_V4, Some(membership)),
                )
                .map_err(nix_setup("IP_ADD_MEMBERSHIP 224.0.0.18"))?;
                socket::setsockopt(&fd, sockopt::IpMulticastTtl, &TTL)
                    .map_err(nix_setup("IP_MULTICAST_TTL"))?;
                socket::setsockopt(&fd, sockopt::Ipv4Ttl, &libc::c_int::from(TTL))
                    .map_err(nix_setup("IP_TTL"))?;
                socket::setsockopt(&fd, sockopt::IpMulticastLoop, &false)
                    .map_err(nix_setup("IP_MULTICAST_LOOP"))?;
                fd
            }
            IpAddr::V6(_) => {
                socket::setsockopt(&fd, sockopt::Ipv6MulticastHops, &libc::c_int::from(TTL))
                    .map_err(nix_setup("IPV6_MULTICAST_HOPS"))?;
                socket::setsockopt(&fd, sockopt::Ipv6Ttl, &libc::c_int::from(TTL))
                    .map_err(nix_setup("IPV6_UNICAST_HOPS"))?;
                socket::setsockopt(&fd, sockopt::Ipv6RecvHopLimit, &true)
                    .map_err(nix_setup("IPV6_RECVHOPLIMIT"))?;
                socket::setsockopt(&fd, sockopt::Ipv6RecvPacketInfo, &true)
                    .map_err(nix_setup("IPV6_RECVPKTINFO"))?;
                // nix 0.30 has neither an ipv6_mreq with an interface index nor
                // IPV6_MULTICAST_LOOP; std's setters are the same setsockopt calls.
                let options = std::net::UdpSocket::from(fd);
                options
                    .join_multicast_v6(&GROUP_V6, ifindex)
                    .map_err(setup("IPV6_JOIN_GROUP ff02::12"))?;
                options
                    .set_multicast_loop_v6(false)
                    .map_err(setup("IPV6_MULTICAST_LOOP"))?;
                OwnedFd::from(options)
            }
        };
        // tokio 1.54 deprecates the safe constructors because an arbitrary `T: AsRawFd` may
        // close or swap its descriptor; `OwnedFd` cannot, which is the whole contract of the
        // unsafe replacement, so the deprecated safe one is sound here.
        #[allow(deprecated)]
        let fd = AsyncFd::with_interest(fd, Interest::READABLE)
            .map_err(setup("registering with the tokio reactor"))?;
        Ok(VrrpSocket {
            fd,
            interface: interface.to_owned(),
            ifindex,
            family,
            source,
        })
    }

    /// The source address of our adverts (the tie-breaking primary address).
    pub fn source(&self) -> IpAddr {
        self.source
    }

    /// The interface the socket is bound to.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// Send one VRRP message to `dst` (the group or a unicast peer); never blocks.
    ///
    /// A full socket buffer (EAGAIN, ENOBUFS) is an error like any other: adverts are
    /// periodic, so the next one is the retry.
    pub fn send(&self, payload: &[u8], dst: IpAddr) -> Result<(), SocketError> {
        let fd = self.fd.get_ref().as_raw_fd();
        let sent = match (self.source, dst) {
            (IpAddr::V4(source), IpAddr::V4(dst)) => {
                // Source and interface per packet: see the module doc for why the socket
                // is not bound.
                let info = libc::in_pktinfo {
                    ipi_ifindex: libc::c_int::try_from(self.ifindex).unwrap_or(0),
                    ipi_spec_dst: libc::in_addr {
                        s_addr: u32::from(source).to_be(),
                    },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                socket::sendmsg(
                    fd,
                    &[IoSlice::new(payload)],
                    &[ControlMessage::Ipv4PacketInfo(&info)],
                    MsgFlags::MSG_DONTWAIT,
                    Some(&SockaddrIn::from(SocketAddrV4::new(dst, 0))),
                )
            }
            (IpAddr::V6(source), IpAddr::V6(dst)) => {
                let info = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr {
                        s6_addr: source.octets(),
                    },
                    ipi6_ifindex: self.ifindex,
                };
                // Link-local unicast and link-scope multicast need the interface as scope.
                let scope = if is_link_local(&dst) || dst.is_multicast() {
                    self.ifindex
                } else {
                    0
                };
                socket::sendmsg(
                    fd,
                    &[IoSlice::new(payload)],
                    &[ControlMessage::Ipv6PacketInfo(&info)],
                    MsgFlags::MSG_DONTWAIT,
                    Some(&SockaddrIn6::from(SocketAddrV6::new(dst, 0, 0, scope))),
                )
            }
            _ => {
                return Err(SocketError::DestinationFamily {
                    interface: self.interface.clone(),
                    dst,
                    family: self.family,
                })
            }
        };
        match sent {
            Ok(n) if n == payload.len() => Ok(()),
            Ok(sent) => Err(SocketError::ShortSend {
                interface: self.interface.clone(),
                dst,
                sent,
                len: payload.len(),
            }),
            Err(errno) => Err(SocketError::Send {
                interface: self.interface.clone(),
                dst,
                source: errno.into(),
            }),
        }
    }

    /// The next VRRP message on the interface. Cancel-safe: dropping the future loses no
    /// packet.
    pub async fn recv(&self) -> Result<Received, SocketError> {
        loop {
            let mut guard = self
                .fd
                .readable()
                .await
                .map_err(|source| SocketError::Recv {
                    interface: self.interface.clone(),
                    source,
                })?;
            // try_io clears readiness on WouldBlock, so the next readable() really waits.
            match guard.try_io(|fd| self.recv_now(fd.get_ref())) {
                Ok(Ok(result)) => return result,
                Ok(Err(source)) => {
                    return Err(SocketError::Recv {
                        interface: self.interface.clone(),
                        source,
                    })
                }
                Err(_would_block) => continue,
            }
        }
    }

    /// One non-blocking `recvmsg`. The outer `io::Result` is the call (WouldBlock included);
    /// the inner one is what the packet turned out to be.
    fn recv_now(&self, fd: &OwnedFd) -> io::Result<Result<Received, SocketError>> {
        let mut buffer = vec![0u8; RECV_BUFFER];
        let mut cmsg = nix::cmsg_space!(libc::in6_pktinfo, libc::c_int);
        let (len, truncated, src, dst, ttl) = {
            let mut iov = [IoSliceMut::new(&mut buffer)];
            let msg = socket::recvmsg::<socket::SockaddrStorage>(
                fd.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_DONTWAIT,
            )?;
            let truncated = msg.flags.contains(MsgFlags::MSG_TRUNC);
            let src = msg
                .address
                .as_ref()
                .and_then(|a| a.as_sockaddr_in6())
                .map(|a| a.ip());
            let (mut dst, mut ttl) = (None, None);
            // Only IPv6 asked for ancillary data; ENOBUFS here means it was cut short.
            if let Ok(cmsgs) = msg.cmsgs() {
                for c in cmsgs {
                    match c {
                        ControlMessageOwned::Ipv6PacketInfo(info) => {
                            dst = Some(Ipv6Addr::from(info.ipi6_addr.s6_addr));
                        }
                        ControlMessageOwned::Ipv6HopLimit(hops) => {
                            ttl = u8::try_from(hops).ok();
                        }
                        _ => {}
                    }
                }
            }
            (msg.bytes, truncated, src, dst, ttl)
        };
        if truncated {
            return Ok(Err(SocketError::Truncated {
                interface: self.interface.clone(),
                max: RECV_BUFFER,
            }));
        }
        let bytes = buffer.get(..len).unwrap_or(&[]);
        Ok(match self.family {
            Family::Ipv4 => match decode_ipv4_header(bytes) {
                Ok(packet) => Ok(Received {
                    src: packet.src.into(),
                    dst: packet.dst.into(),
                    ttl: packet.ttl,
                    payload: packet.payload.to_vec(),
                }),
                Err(source) => Err(SocketError::BadIpv4Header {
                    interface: self.interface.clone(),
                    source,
                }),
            },
            Family::Ipv6 => {
                let missing = |missing| SocketError::MissingPacketInfo {
                    interface: self.interface.clone(),
                    missing,
                };
                match (src, dst, ttl) {
                    (Some(src), Some(dst), Some(ttl)) => Ok(Received {
                        src: src.into(),
                        dst: dst.into(),
                        ttl,
                        payload: bytes.to_vec(),
                    }),
                    (None, _, _) => Err(missing("source address")),
                    (_, None, _) => Err(missing("destination (IPV6_PKTINFO)")),
                    (_, _, None) => Err(missing("hop limit (IPV6_HOPLIMIT)")),
                }
            }
        })
    }
}

/// A non-blocking, close-on-exec raw socket of protocol [`IPPROTO_VRRP`].
///
/// Not possible safely with nix 0.30 (see the module doc): `SockProtocol` has no 112.
fn raw_socket(interface: &str, family: Family) -> Result<OwnedFd, SocketError> {
    // socket2, because nix's safe `socket()` only takes its own list of protocols and
    // VRRP's 112 is not on it.
    use socket2::{Domain, Protocol, Socket, Type};
    let domain = match family {
        Family::Ipv4 => Domain::IPV4,
        Family::Ipv6 => Domain::IPV6,
    };
    let socket = Socket::new(
        domain,
        Type::RAW.nonblocking().cloexec(),
        Some(Protocol::from(i32::from(IPPROTO_VRRP))),
    )
    .map_err(|source| SocketError::Setup {
        interface: interface.to_owned(),
        what: "socket(SOCK_RAW, 112)",
        source,
    })?;
    Ok(OwnedFd::from(socket))
}

/// What `open` needs to know about the addresses of the host and of the interface.
struct InterfaceAddresses {
    /// The interface's first IPv4 address, in the kernel's order (the primary comes first).
    first_ipv4: Option<Ipv4Addr>,
    link_local: Option<Ipv6Addr>,
    /// Every address of every interface in this network namespace.
    host: Vec<IpAddr>,
}

impl InterfaceAddresses {
    fn of(interface: &str) -> Result<InterfaceAddresses, SocketError> {
        let all = nix::ifaddrs::getifaddrs().map_err(|e| SocketError::ListAddresses {
            interface: interface.to_owned(),
            source: e.into(),
        })?;
        let mut found = InterfaceAddresses {
            first_ipv4: None,
            link_local: None,
            host: Vec::new(),
        };
        for entry in all {
            let Some(address) = entry.address else {
                continue;
            };
            let ours = entry.interface_name == interface;
            if let Some(v4) = address.as_sockaddr_in() {
                let ip = v4.ip();
                found.host.push(ip.into());
                if ours && found.first_ipv4.is_none() {
                    found.first_ipv4 = Some(ip);
                }
            } else if let Some(v6) = address.as_sockaddr_in6() {
                let ip = v6.ip();
                found.host.push(ip.into());
                if ours && found.link_local.is_none() && is_link_local(&ip) {
                    found.link_local = Some(ip);
                }
            }
        }
        Ok(found)
    }
}

/// fe80::/10: needs the interface as scope id.
fn is_link_local(address: &Ipv6Addr) -> bool {
    address.is_unicast_link_local()
}
