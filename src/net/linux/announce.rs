//! Gratuitous ARP and unsolicited neighbour advertisements, sent at layer 2 with pnet.
//!
//! When a router becomes Master it tells the segment that its VIPs now live at its MAC:
//! one gratuitous ARP request per IPv4 VIP, one unsolicited neighbour advertisement (override
//! flag set) per IPv6 VIP. This module owns:
//!
//! - the frames, [`garp_frame`] and [`unsolicited_na_frame`], byte for byte what keepalived
//!   2.2.7 sends (`../shared/vectors/keepalived-2.2.7.jsonl`, last two lines);
//! - [`Announcer`], one `AF_PACKET` socket bound to one interface that sends them.
//!
//! It must not: decide when or how often to announce (one call sends one frame; repeats and
//! delays are the daemon's), add or remove addresses (that is `netlink`), receive frames, or
//! put the interface into promiscuous mode. It never blocks for long and never panics on what
//! the kernel returns; every failure comes back as an [`AnnounceError`] naming the interface.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::IntoRawFd;
use std::time::Duration;

use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
use pnet_datalink::{Channel, ChannelType, Config, DataLinkSender, MacAddr};
use pnet_packet::arp::{ArpHardwareTypes, ArpOperations, MutableArpPacket};
use pnet_packet::ethernet::{EtherType, EtherTypes, MutableEthernetPacket};
use pnet_packet::icmpv6::ndp::{
    MutableNeighborAdvertPacket, NdpOption, NdpOptionTypes, NeighborAdvertFlags,
};
use pnet_packet::icmpv6::{self, Icmpv6Code, Icmpv6Packet, Icmpv6Types};
use pnet_packet::ip::IpNextHeaderProtocols;
use pnet_packet::ipv6::MutableIpv6Packet;
use pnet_packet::Packet;
use thiserror::Error;

/// Errors of opening an announcer or sending one frame. Each names the interface.
#[derive(Debug, Error)]
pub enum AnnounceError {
    #[error("interface {interface}: no such interface")]
    NoInterface { interface: String },
    #[error("interface {interface}: has no Ethernet MAC address to announce")]
    NoMac { interface: String },
    #[error("interface {interface}: cannot create a packet socket: {source}")]
    Socket {
        interface: String,
        #[source]
        source: nix::Error,
    },
    #[error("interface {interface}: cannot open a layer-2 channel: {source}")]
    Channel {
        interface: String,
        #[source]
        source: io::Error,
    },
    #[error("interface {interface}: pnet returned a channel that is not Ethernet")]
    NotEthernet { interface: String },
    #[error("interface {interface}: cannot send the announcement of {address}: {source}")]
    Send {
        interface: String,
        address: IpAddr,
        #[source]
        source: io::Error,
    },
}

/// Ethernet header: destination, source, EtherType.
const ETHERNET_LEN: usize = 14;
/// ARP for IPv4 over Ethernet (RFC 826): 8 bytes of header, two MAC/IPv4 pairs.
const ARP_LEN: usize = 28;
const IPV6_LEN: usize = 40;
/// Neighbour advertisement (RFC 4861 §4.4): type, code, checksum, flags + reserved, target.
const NA_LEN: usize = 24;
/// Target link-layer address option: type, length in units of 8 bytes, the MAC.
const TLLA_OPTION_LEN: usize = 8;

const BROADCAST: [u8; 6] = [0xff; 6];
/// ff02::1, all nodes on the link, and its multicast MAC 33:33 + the low 32 bits (RFC 2464 §7).
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];
/// RFC 4861 §7.1.2: a receiver drops neighbour discovery with any other hop limit.
const ND_HOP_LIMIT: u8 = 255;

/// How long a send may wait for room in the socket before it is an error: the daemon's
/// event loop must not stall on a wedged interface.
const SEND_TIMEOUT: Duration = Duration::from_millis(100);

fn mac_addr(mac: [u8; 6]) -> MacAddr {
    MacAddr::new(mac[0], mac[1], mac[2], mac[3], mac[4], mac[5])
}

/// Writes the Ethernet header at the start of `frame`.
fn ethernet_header(frame: &mut [u8], destination: [u8; 6], source: [u8; 6], ethertype: EtherType) {
    // The callers size `frame` from the constants above, so it always holds the header.
    let mut ethernet =
        MutableEthernetPacket::new(frame).expect("frame is sized to hold an Ethernet header");
    ethernet.set_destination(mac_addr(destination));
    ethernet.set_source(mac_addr(source));
    ethernet.set_ethertype(ethertype);
}

/// A gratuitous ARP request (who-has VIP tell VIP, broadcast), as keepalived sends it.
///
/// 42 bytes, no padding: the NIC (or the veth) pads to the Ethernet minimum, and keepalived's
/// capture shows the unpadded frame. The target hardware address is the broadcast address,
/// as keepalived sets it (RFC 5227 would have zeros; receivers ignore it in a request).
pub fn garp_frame(mac: [u8; 6], address: Ipv4Addr) -> Vec<u8> {
    let mut frame = vec![0u8; ETHERNET_LEN + ARP_LEN];
    ethernet_header(&mut frame, BROADCAST, mac, EtherTypes::Arp);
    let mut arp = MutableArpPacket::new(&mut frame[ETHERNET_LEN..])
        .expect("frame is sized to hold an ARP packet");
    arp.set_hardware_type(ArpHardwareTypes::Ethernet);
    arp.set_protocol_type(EtherTypes::Ipv4);
    arp.set_hw_addr_len(6);
    arp.set_proto_addr_len(4);
    // A request rather than a reply: every host on the segment processes a broadcast request
    // and updates an existing entry for the sender, which is the point.
    arp.set_operation(ArpOperations::Request);
    arp.set_sender_hw_addr(mac_addr(mac));
    arp.set_sender_proto_addr(address);
    arp.set_target_hw_addr(mac_addr(BROADCAST));
    arp.set_target_proto_addr(address);
    frame
}

/// An unsolicited neighbour advertisement to ff02::1 with the override flag.
///
/// From the VIP itself, hop limit 255, traffic class and flow label 0, flags Override only
/// (not Router, not Solicited: RFC 4861 §7.2.6), a target link-layer address option carrying
/// `mac`, and the ICMPv6 checksum over the IPv6 pseudo-header.
pub fn unsolicited_na_frame(mac: [u8; 6], address: Ipv6Addr) -> Vec<u8> {
    let icmp_len = NA_LEN + TLLA_OPTION_LEN;
    let mut frame = vec![0u8; ETHERNET_LEN + IPV6_LEN + icmp_len];
    ethernet_header(&mut frame, ALL_NODES_MAC, mac, EtherTypes::Ipv6);

    let (_, ip_and_icmp) = frame.split_at_mut(ETHERNET_LEN);
    let (ip_header, icmp) = ip_and_icmp.split_at_mut(IPV6_LEN);
    {
        let mut na = MutableNeighborAdvertPacket::new(icmp).expect("frame is sized to hold the NA");
        na.set_icmpv6_type(Icmpv6Types::NeighborAdvert);
        na.set_icmpv6_code(Icmpv6Code(0));
        na.set_flags(NeighborAdvertFlags::Override);
        na.set_reserved(0);
        na.set_target_addr(address);
        na.set_options(&[NdpOption {
            option_type: NdpOptionTypes::TargetLLAddr,
            // In units of 8 bytes: type, length and the 6-byte MAC.
            length: (TLLA_OPTION_LEN / 8) as u8,
            data: mac.to_vec(),
        }]);
    }
    // The checksum covers the pseudo-header (source, destination, length, next header) and
    // the whole ICMPv6 message with its checksum field still zero.
    let checksum = {
        let message = Icmpv6Packet::new(icmp).expect("frame is sized to hold the NA");
        icmpv6::checksum(&message, &address, &ALL_NODES)
    };
    let mut na = MutableNeighborAdvertPacket::new(icmp).expect("frame is sized to hold the NA");
    na.set_checksum(checksum);
    debug_assert_eq!(na.packet().len(), icmp_len);

    let mut ip = MutableIpv6Packet::new(ip_header).expect("frame is sized to hold IPv6");
    ip.set_version(6);
    ip.set_traffic_class(0);
    ip.set_flow_label(0);
    ip.set_payload_length(icmp_len as u16);
    ip.set_next_header(IpNextHeaderProtocols::Icmpv6);
    ip.set_hop_limit(ND_HOP_LIMIT);
    ip.set_source(address);
    ip.set_destination(ALL_NODES);
    frame
}

/// A send-only layer-2 socket on one interface, with that interface's MAC.
///
/// The socket is bound to the interface index found at [`Announcer::open`]; if the interface
/// is deleted and created again, sends fail and the daemon opens a new announcer.
pub struct Announcer {
    interface: String,
    mac: [u8; 6],
    sender: Box<dyn DataLinkSender>,
}

impl std::fmt::Debug for Announcer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Announcer")
            .field("interface", &self.interface)
            .field("mac", &mac_addr(self.mac))
            .finish_non_exhaustive()
    }
}

impl Announcer {
    /// Opens a send-only layer-2 channel on `interface` (in the calling thread's network
    /// namespace) and remembers its MAC.
    pub fn open(interface: &str) -> Result<Announcer, AnnounceError> {
        let found = pnet_datalink::interfaces()
            .into_iter()
            .find(|candidate| candidate.name == interface)
            .ok_or_else(|| AnnounceError::NoInterface {
                interface: interface.to_owned(),
            })?;
        // Loopback and layer-3 tunnels report no MAC or an all-zero one: nothing to announce.
        let mac = match found.mac {
            Some(mac) if mac != MacAddr::zero() => mac.octets(),
            _ => {
                return Err(AnnounceError::NoMac {
                    interface: interface.to_owned(),
                })
            }
        };

        // pnet's own socket would use protocol ETH_P_ALL: the kernel would then copy every
        // frame of the interface into a queue nobody reads. Protocol 0 receives nothing
        // (packet(7)) and still sends whole frames given to it. CLOEXEC keeps it out of the
        // hook scripts the daemon runs.
        let fd = socket(
            AddressFamily::Packet,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(|source| AnnounceError::Socket {
            interface: interface.to_owned(),
            source,
        })?;
        let config = Config {
            // Our frames are at most 86 bytes (send_to does not use this buffer, but pnet
            // allocates it); the receiver is dropped unread, so its buffer stays minimal.
            write_buffer_size: 128,
            read_buffer_size: 1,
            write_timeout: Some(SEND_TIMEOUT),
            // Layer3(0) only makes pnet bind with protocol 0, keeping the socket receive-free;
            // the socket is SOCK_RAW, so frames still go out exactly as built.
            channel_type: ChannelType::Layer3(0),
            promiscuous: false,
            // pnet takes ownership of the descriptor and closes it when the channel drops.
            socket_fd: Some(fd.into_raw_fd()),
            ..Config::default()
        };
        let channel =
            pnet_datalink::channel(&found, config).map_err(|source| AnnounceError::Channel {
                interface: interface.to_owned(),
                source,
            })?;
        let sender = match channel {
            // The receiver shares the socket but would never see a frame; drop it.
            Channel::Ethernet(sender, _receiver) => sender,
            _ => {
                return Err(AnnounceError::NotEthernet {
                    interface: interface.to_owned(),
                })
            }
        };
        Ok(Announcer {
            interface: interface.to_owned(),
            mac,
            sender,
        })
    }

    /// The interface's MAC as it was when the announcer was opened.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// The interface name the announcer was opened on.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// Send one frame announcing `address` from this interface's MAC.
    pub fn announce(&mut self, address: IpAddr) -> Result<(), AnnounceError> {
        let frame = match address {
            IpAddr::V4(v4) => garp_frame(self.mac, v4),
            IpAddr::V6(v6) => unsolicited_na_frame(self.mac, v6),
        };
        let result = self
            .sender
            .send_to(&frame, None)
            // pnet's Linux sender always answers; None would mean "buffer too small".
            .unwrap_or_else(|| Err(io::Error::other("pnet did not send the frame")));
        result.map_err(|source| AnnounceError::Send {
            interface: self.interface.clone(),
            address,
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0xae, 0x8c, 0xd1, 0xd2, 0x13, 0x94];

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("test vector is hex"))
            .collect()
    }

    /// keepalived-2.2.7.jsonl, second to last line: GARP for 192.0.2.52.
    #[test]
    fn garp_matches_keepalived() {
        let expected = hex(concat!(
            "ffffffffffff",
            "ae8cd1d21394",
            "0806", // Ethernet: broadcast, MAC, ARP
            "0001",
            "0800",
            "06",
            "04",
            "0001", // Ethernet/IPv4, request
            "ae8cd1d21394",
            "c0000234", // sender MAC, 192.0.2.52
            "ffffffffffff",
            "c0000234", // target MAC broadcast, 192.0.2.52
        ));
        assert_eq!(garp_frame(MAC, Ipv4Addr::new(192, 0, 2, 52)), expected);
    }

    /// keepalived-2.2.7.jsonl, last line: unsolicited NA for 2001:db8::54.
    #[test]
    fn na_matches_keepalived() {
        let expected = hex(concat!(
            "333300000001",
            "ae8cd1d21394",
            "86dd", // Ethernet: all-nodes, MAC, IPv6
            "60000000",
            "0020",
            "3a",
            "ff",                               // v6, tc 0, flow 0, length 32, ICMPv6, hlim 255
            "20010db8000000000000000000000054", // source 2001:db8::54
            "ff020000000000000000000000000001", // destination ff02::1
            "88",
            "00",
            "6692",
            "20000000",                         // NA, code 0, checksum, Override
            "20010db8000000000000000000000054", // target 2001:db8::54
            "0201",
            "ae8cd1d21394", // target link-layer address option
        ));
        let address: Ipv6Addr = "2001:db8::54".parse().expect("literal");
        assert_eq!(unsolicited_na_frame(MAC, address), expected);
    }

    /// The checksum is recomputed for each address, not carried over from the vector.
    #[test]
    fn na_checksum_verifies_for_other_addresses() {
        for address in ["2001:db8::50", "2001:db8:ffff::1", "2001:db8::ffff:ffff"] {
            let address: Ipv6Addr = address.parse().expect("literal");
            let frame = unsolicited_na_frame([0x02, 0, 0, 0, 0, 0x0b], address);
            let icmp = &frame[ETHERNET_LEN + IPV6_LEN..];
            // One's-complement sum over pseudo-header and message is 0xffff when correct.
            let mut sum: u32 = 0;
            let mut add = |bytes: &[u8]| {
                for pair in bytes.chunks(2) {
                    sum += u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
                }
            };
            add(&address.octets());
            add(&ALL_NODES.octets());
            add(&(icmp.len() as u32).to_be_bytes());
            add(&[0, 0, 0, 58]);
            add(icmp);
            while sum > 0xffff {
                sum = (sum & 0xffff) + (sum >> 16);
            }
            assert_eq!(sum, 0xffff, "{address}");
        }
    }

    #[test]
    fn missing_interface_is_named() {
        let err = Announcer::open("vk-no-such0").expect_err("no such interface");
        assert!(matches!(err, AnnounceError::NoInterface { .. }));
        assert!(err.to_string().contains("vk-no-such0"), "{err}");
    }
}
