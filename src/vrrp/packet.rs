//! VRRP advertisement codec: v2 (RFC 3768 §5) and v3 (RFC 5798 §5) over IPv4 and IPv6.
//!
//! Owns the bytes of one VRRP message (the IP payload), its checksum, and the IPv4 header a
//! raw IPv4 socket delivers in front of it; makes every RFC 5798 §7.1 check that needs only
//! the bytes. Must not judge policy (VRID, password, interval or TTL match: the state machine
//! does), and must not do I/O, read a clock, log, or panic: any byte string in gives an
//! [`Advertisement`] or a typed [`DecodeError`] out.
//!
//! VRRPv2 (RFC 3768 §5.1), IPv4 only:
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version| Type  | Virtual Rtr ID|   Priority    | Count IP Addrs|
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   Auth Type   |   Adver Int   |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         IP Address (1)                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                            ...                                |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         IP Address (n)                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                     Authentication Data (1)                   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                     Authentication Data (2)                   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! VRRPv3 (RFC 5798 §5.1), IPv4 (4-byte) or IPv6 (16-byte) addresses:
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |(rsvd) |     Max Adver Int     |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       IPvX Address(es)                        |
//! +                                                               +
//! |                            ...                                |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::{Centis, Family, Version};

/// IP protocol number of VRRP, also the IPv6 Next Header (RFC 5798 §5.1.1.4, §5.1.2.4).
pub const IPPROTO_VRRP: u8 = 112;
/// Length of the fixed part of a VRRP message, before the addresses (both versions).
pub const HEADER_LEN: usize = 8;
/// Length of the v2 Authentication Data that follows the addresses (RFC 3768 §5.3.10).
pub const V2_AUTH_LEN: usize = 8;
/// The count field is one byte (RFC 5798 §5.2.5).
pub const MAX_ADDRESSES: usize = 255;
/// Length of an IPv4 header without options (RFC 791 §3.1).
pub const IPV4_MIN_HEADER_LEN: usize = 20;

/// The only VRRP packet type there is (RFC 5798 §5.2.2).
const TYPE_ADVERTISEMENT: u8 = 1;
/// v2 Auth Type values (RFC 3768 §5.3.6); 2 (IP AH) was dropped by RFC 3768 and is refused.
const AUTH_TYPE_NONE: u8 = 0;
const AUTH_TYPE_SIMPLE: u8 = 1;
/// v3: the 4 bits above the 12-bit Max Adver Int are reserved (RFC 5798 §5.2.6).
const V3_INTERVAL_MASK: u16 = 0x0fff;
/// IPv4 flags/fragment offset word: More Fragments bit and the 13-bit offset (RFC 791 §3.1).
const IPV4_MORE_FRAGMENTS: u16 = 0x2000;
const IPV4_OFFSET_MASK: u16 = 0x1fff;

/// One decoded VRRP advertisement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Advertisement {
    pub version: Version,
    pub vrid: u8,
    pub priority: u8,
    /// v3: Max Adver Int as on the wire; v2: the whole-seconds Adver Int times 100.
    pub max_adver_int: Centis,
    /// The virtual addresses, all of the packet's family.
    pub addresses: Vec<IpAddr>,
    /// v2 authentication; always [`Auth::None`] for v3.
    pub auth: Auth,
}

/// VRRPv2 authentication (RFC 3768 §5.3.6; RFC 2338 for the simple password).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Auth {
    None,
    /// Type 1: up to 8 bytes, zero padded on the wire.
    SimplePassword([u8; 8]),
}

impl Auth {
    /// A simple password as keepalived's `auth_pass` sends it: zero padded to 8 bytes.
    /// `None` when longer than 8 bytes: truncating is a config decision, not the codec's.
    pub fn simple_password(password: &[u8]) -> Option<Auth> {
        let mut data = [0u8; V2_AUTH_LEN];
        data.get_mut(..password.len())?.copy_from_slice(password);
        Some(Auth::SimplePassword(data))
    }
}

/// How the v3 checksum over IPv4 is computed (RFC 5798 §5.2.8).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChecksumMode {
    /// Include the IPv4 pseudo-header, as RFC 5798 and keepalived's default do.
    #[default]
    PseudoHeader,
    /// keepalived's `v3_checksum_as_v2`: the VRRP message alone, as RFC 9568 allows.
    V2Compatible,
}

/// Source and destination of the IP packet carrying an advertisement; v3 checksums cover them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoints {
    pub src: IpAddr,
    pub dst: IpAddr,
}

impl Endpoints {
    /// The family of both endpoints, `None` when they differ (no real IP packet does that).
    pub fn family(&self) -> Option<Family> {
        let src = Family::of(&self.src);
        (src == Family::of(&self.dst)).then_some(src)
    }
}

/// Why a received packet was not an acceptable advertisement. Every variant is an expected
/// outcome of hostile or broken peers: count it, log it, drop the packet.
#[derive(Clone, Debug, PartialEq, Eq, Error, Serialize, Deserialize)]
pub enum DecodeError {
    #[error("packet too short: {len} bytes, need at least {need}")]
    TooShort { len: usize, need: usize },
    #[error("VRRP version {found}, expected 2 or 3")]
    BadVersion { found: u8 },
    #[error("VRRP packet type {found}, expected 1 (Advertisement)")]
    BadType { found: u8 },
    #[error("source is {src:?} but destination is {dst:?}")]
    MixedEndpointFamilies { src: Family, dst: Family },
    #[error("VRRPv2 received over IPv6 (v2 is IPv4 only)")]
    V2OverIpv6,
    #[error("VRRP message of {len} bytes, but a count of {count} addresses needs {expected}")]
    LengthMismatch {
        count: u8,
        expected: usize,
        len: usize,
    },
    #[error("bad VRRP checksum: computed {expected:#06x}, packet has {found:#06x}")]
    BadChecksum { expected: u16, found: u16 },
    #[error("VRID 0 (valid VRIDs are 1-255)")]
    ZeroVrid,
    #[error("advertisement interval 0")]
    ZeroInterval,
    #[error("address count 0 (at least 1 is required)")]
    NoAddresses,
    #[error("VRRPv2 auth type {auth_type} not supported (only 0 and 1 are; 2 is IP AH)")]
    UnsupportedAuthType { auth_type: u8 },
    #[error("IP version {found} where an IPv4 header was expected")]
    NotIpv4 { found: u8 },
    #[error("IPv4 header length of {ihl} words, minimum 5")]
    BadIpv4HeaderLength { ihl: u8 },
    #[error("IPv4 total length {total_length}, but {len} bytes received")]
    Ipv4LengthMismatch { total_length: u16, len: usize },
    #[error("bad IPv4 header checksum: computed {expected:#06x}, packet has {found:#06x}")]
    BadIpv4Checksum { expected: u16, found: u16 },
    #[error("IPv4 fragment (offset {offset} × 8 bytes, more fragments: {more_fragments})")]
    Ipv4Fragment { offset: u16, more_fragments: bool },
}

impl DecodeError {
    /// A stable snake_case name per variant, for counters and metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            DecodeError::TooShort { .. } => "too_short",
            DecodeError::BadVersion { .. } => "bad_version",
            DecodeError::BadType { .. } => "bad_type",
            DecodeError::MixedEndpointFamilies { .. } => "mixed_endpoint_families",
            DecodeError::V2OverIpv6 => "v2_over_ipv6",
            DecodeError::LengthMismatch { .. } => "length_mismatch",
            DecodeError::BadChecksum { .. } => "bad_checksum",
            DecodeError::ZeroVrid => "zero_vrid",
            DecodeError::ZeroInterval => "zero_interval",
            DecodeError::NoAddresses => "no_addresses",
            DecodeError::UnsupportedAuthType { .. } => "unsupported_auth_type",
            DecodeError::NotIpv4 { .. } => "not_ipv4",
            DecodeError::BadIpv4HeaderLength { .. } => "bad_ipv4_header_length",
            DecodeError::Ipv4LengthMismatch { .. } => "ipv4_length_mismatch",
            DecodeError::BadIpv4Checksum { .. } => "bad_ipv4_checksum",
            DecodeError::Ipv4Fragment { .. } => "ipv4_fragment",
        }
    }
}

/// Why an advertisement could not be encoded (a programming or config error, never input).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum EncodeError {
    /// More than [`MAX_ADDRESSES`]: the count field is one byte.
    #[error("too many addresses: {0}")]
    TooManyAddresses(usize),
    #[error("no addresses (at least 1 is required)")]
    NoAddresses,
    #[error("VRID 0 (valid VRIDs are 1-255)")]
    ZeroVrid,
    #[error("source is {src:?} but destination is {dst:?}")]
    MixedEndpointFamilies { src: Family, dst: Family },
    #[error("VRRPv2 cannot be sent over IPv6")]
    V2OverIpv6,
    #[error("address {address} is not {expected:?} like the endpoints")]
    AddressFamily { address: IpAddr, expected: Family },
    #[error("VRRPv2 interval {0} is not a whole number of seconds")]
    IntervalNotWholeSeconds(Centis),
    #[error("interval {interval} out of range for {version:?} (v2: 1-255 s, v3: 1-4095 cs)")]
    IntervalOutOfRange { interval: Centis, version: Version },
    #[error("VRRPv3 has no authentication")]
    AuthWithV3,
}

/// Encode `adv` as the VRRP message (the IP payload), checksum included.
///
/// Refuses anything [`decode`] would refuse, so `decode(encode(a)) == a` for every `Ok`.
pub fn encode(
    adv: &Advertisement,
    endpoints: Endpoints,
    mode: ChecksumMode,
) -> Result<Vec<u8>, EncodeError> {
    let family = endpoints
        .family()
        .ok_or(EncodeError::MixedEndpointFamilies {
            src: Family::of(&endpoints.src),
            dst: Family::of(&endpoints.dst),
        })?;
    if adv.vrid == 0 {
        return Err(EncodeError::ZeroVrid);
    }
    if adv.addresses.is_empty() {
        return Err(EncodeError::NoAddresses);
    }
    let count = u8::try_from(adv.addresses.len())
        .map_err(|_| EncodeError::TooManyAddresses(adv.addresses.len()))?;
    if let Some(address) = adv.addresses.iter().find(|a| Family::of(a) != family) {
        return Err(EncodeError::AddressFamily {
            address: *address,
            expected: family,
        });
    }
    let out_of_range = EncodeError::IntervalOutOfRange {
        interval: adv.max_adver_int,
        version: adv.version,
    };
    // Second header word, high half: v2 Auth Type and Adver Int in seconds (RFC 3768
    // §5.3.6-7); v3 zero reserved bits and Max Adver Int in centiseconds (RFC 5798 §5.2.6-7).
    let (word_high, auth_data) = match adv.version {
        Version::V2 => {
            if family == Family::Ipv6 {
                return Err(EncodeError::V2OverIpv6);
            }
            let seconds = adv
                .max_adver_int
                .whole_seconds()
                .ok_or(EncodeError::IntervalNotWholeSeconds(adv.max_adver_int))?;
            let seconds = u8::try_from(seconds)
                .ok()
                .filter(|s| *s != 0)
                .ok_or(out_of_range)?;
            let (auth_type, data) = match adv.auth {
                Auth::None => (AUTH_TYPE_NONE, [0; V2_AUTH_LEN]),
                Auth::SimplePassword(data) => (AUTH_TYPE_SIMPLE, data),
            };
            ([auth_type, seconds], Some(data))
        }
        Version::V3 => {
            if adv.auth != Auth::None {
                return Err(EncodeError::AuthWithV3);
            }
            let centis = adv.max_adver_int.get();
            if centis == 0 || centis > V3_INTERVAL_MASK {
                return Err(out_of_range);
            }
            (centis.to_be_bytes(), None)
        }
    };

    let mut out = Vec::with_capacity(
        message_len(adv.version, family, count).unwrap_or(HEADER_LEN + V2_AUTH_LEN),
    );
    out.push((adv.version.number() << 4) | TYPE_ADVERTISEMENT);
    out.extend_from_slice(&[adv.vrid, adv.priority, count]);
    out.extend_from_slice(&word_high);
    out.extend_from_slice(&[0, 0]); // checksum, filled in below
    for address in &adv.addresses {
        match address {
            IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
            IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
        }
    }
    if let Some(data) = auth_data {
        out.extend_from_slice(&data);
    }
    let checksum = finish(checksum_sum(&out, adv.version, endpoints, mode));
    if let Some(field) = out.get_mut(6..8) {
        field.copy_from_slice(&checksum.to_be_bytes());
    }
    Ok(out)
}

/// Decode a VRRP message (the IP payload) and verify its checksum.
///
/// The checks follow RFC 5798 §7.1 in its order where they overlap: version, completeness,
/// checksum, then the field values; a corrupt packet therefore reports [`DecodeError::BadChecksum`]
/// rather than whatever its garbled fields happen to say.
pub fn decode(
    bytes: &[u8],
    endpoints: Endpoints,
    mode: ChecksumMode,
) -> Result<Advertisement, DecodeError> {
    let Some((header, body)) = bytes.split_first_chunk::<HEADER_LEN>() else {
        return Err(DecodeError::TooShort {
            len: bytes.len(),
            need: HEADER_LEN,
        });
    };
    let [ver_type, vrid, priority, count, word_hi0, word_hi1, sum0, sum1] = *header;

    let version = match ver_type >> 4 {
        2 => Version::V2,
        3 => Version::V3,
        found => return Err(DecodeError::BadVersion { found }),
    };
    // RFC 5798 §5.2.2: "A packet with unknown type MUST be discarded."
    if ver_type & 0x0f != TYPE_ADVERTISEMENT {
        return Err(DecodeError::BadType {
            found: ver_type & 0x0f,
        });
    }
    // v3 infers the address family from the IP packet (RFC 5798 §5.2.9), so the endpoints
    // decide how long an address is and which pseudo-header the checksum covers.
    let family = endpoints
        .family()
        .ok_or(DecodeError::MixedEndpointFamilies {
            src: Family::of(&endpoints.src),
            dst: Family::of(&endpoints.dst),
        })?;
    if version == Version::V2 && family == Family::Ipv6 {
        return Err(DecodeError::V2OverIpv6);
    }

    // RFC 5798 §7.1: the packet must hold the complete message. An exact match, not a
    // minimum: trailing bytes mean the sender and we disagree on the format.
    let expected = message_len(version, family, count).unwrap_or(usize::MAX);
    if bytes.len() != expected {
        return Err(DecodeError::LengthMismatch {
            count,
            expected,
            len: bytes.len(),
        });
    }

    // RFC 5798 §7.1 / RFC 3768 §7.1: verify the checksum. Summing the whole message with
    // the checksum in place and expecting all ones is how keepalived and the kernel verify
    // (RFC 1071 §1); unlike comparing with a recomputed value, it also accepts 0xffff where
    // the computed checksum is 0x0000, the other one's complement zero.
    if finish(checksum_sum(bytes, version, endpoints, mode)) != 0 {
        let mut zeroed = bytes.to_vec();
        if let Some(field) = zeroed.get_mut(6..8) {
            field.fill(0);
        }
        return Err(DecodeError::BadChecksum {
            expected: finish(checksum_sum(&zeroed, version, endpoints, mode)),
            found: u16::from_be_bytes([sum0, sum1]),
        });
    }

    // RFC 5798 §5.2.3: VRIDs are 1-255.
    if vrid == 0 {
        return Err(DecodeError::ZeroVrid);
    }
    // RFC 5798 §5.2.5: "The minimum value is 1."
    if count == 0 {
        return Err(DecodeError::NoAddresses);
    }
    let max_adver_int = match version {
        // RFC 3768 §5.3.7: whole seconds.
        Version::V2 => Centis::from_seconds(word_hi1),
        // RFC 5798 §5.2.6-7: reserved bits are ignored on receive.
        Version::V3 => Centis::new(u16::from_be_bytes([word_hi0, word_hi1]) & V3_INTERVAL_MASK),
    };
    // An interval of 0 would make a Backup's Master_Down_Interval a mere skew (RFC 5798 §6.1).
    if max_adver_int.get() == 0 {
        return Err(DecodeError::ZeroInterval);
    }

    let address_len = address_len(family);
    let (address_bytes, auth_bytes) = body
        .split_at_checked(usize::from(count) * address_len)
        .ok_or(DecodeError::LengthMismatch {
            count,
            expected,
            len: bytes.len(),
        })?;
    let auth = match version {
        Version::V3 => Auth::None,
        // RFC 3768 §5.3.6; §5.3.10: with no authentication the data is ignored on receive.
        Version::V2 => match word_hi0 {
            AUTH_TYPE_NONE => Auth::None,
            AUTH_TYPE_SIMPLE => match <[u8; V2_AUTH_LEN]>::try_from(auth_bytes) {
                Ok(data) => Auth::SimplePassword(data),
                Err(_) => {
                    return Err(DecodeError::LengthMismatch {
                        count,
                        expected,
                        len: bytes.len(),
                    })
                }
            },
            auth_type => return Err(DecodeError::UnsupportedAuthType { auth_type }),
        },
    };
    let addresses = match family {
        Family::Ipv4 => read_addresses(address_bytes, |a: [u8; 4]| Ipv4Addr::from(a).into()),
        Family::Ipv6 => read_addresses(address_bytes, |a: [u8; 16]| Ipv6Addr::from(a).into()),
    };

    Ok(Advertisement {
        version,
        vrid,
        priority,
        max_adver_int,
        addresses,
        auth,
    })
}

/// An IPv4 packet as a raw IPv4 socket delivers it, header validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Packet<'a> {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    pub protocol: u8,
    /// The bytes after the header (and its options), up to the total length.
    pub payload: &'a [u8],
}

impl Ipv4Packet<'_> {
    /// The endpoints the VRRP checksum of the payload covers.
    pub fn endpoints(&self) -> Endpoints {
        Endpoints {
            src: self.src.into(),
            dst: self.dst.into(),
        }
    }
}

/// Validate the IPv4 header of `bytes` (RFC 791 §3.1) and split off the payload.
///
/// Checks only what makes the payload trustworthy as one whole datagram: version, header
/// length, total length against the bytes received, header checksum, and not a fragment.
/// TTL and protocol are returned, not judged: the TTL rule (RFC 5798 §7.1) is the state
/// machine's.
pub fn decode_ipv4_header(bytes: &[u8]) -> Result<Ipv4Packet<'_>, DecodeError> {
    let Some(fixed) = bytes.first_chunk::<IPV4_MIN_HEADER_LEN>() else {
        return Err(DecodeError::TooShort {
            len: bytes.len(),
            need: IPV4_MIN_HEADER_LEN,
        });
    };
    let [ver_ihl, _, len0, len1, _, _, frag0, frag1, ttl, protocol, sum0, sum1, ..] = *fixed;
    let [.., s0, s1, s2, s3, d0, d1, d2, d3] = *fixed;
    if ver_ihl >> 4 != 4 {
        return Err(DecodeError::NotIpv4 {
            found: ver_ihl >> 4,
        });
    }
    let ihl = ver_ihl & 0x0f;
    if usize::from(ihl) * 4 < IPV4_MIN_HEADER_LEN {
        return Err(DecodeError::BadIpv4HeaderLength { ihl });
    }
    let header_len = usize::from(ihl) * 4;
    let Some((header, payload)) = bytes.split_at_checked(header_len) else {
        return Err(DecodeError::TooShort {
            len: bytes.len(),
            need: header_len,
        });
    };
    // Linux raw sockets hand over the datagram exactly, so any difference is a broken
    // packet; a total length shorter than the header fails here too.
    let total_length = u16::from_be_bytes([len0, len1]);
    if usize::from(total_length) != bytes.len() {
        return Err(DecodeError::Ipv4LengthMismatch {
            total_length,
            len: bytes.len(),
        });
    }
    if finish(ones_sum(0, header)) != 0 {
        let mut zeroed = header.to_vec();
        if let Some(field) = zeroed.get_mut(10..12) {
            field.fill(0);
        }
        return Err(DecodeError::BadIpv4Checksum {
            expected: finish(ones_sum(0, &zeroed)),
            found: u16::from_be_bytes([sum0, sum1]),
        });
    }
    // The kernel reassembles before raw delivery; a fragment here holds part of a message.
    let frag = u16::from_be_bytes([frag0, frag1]);
    if frag & (IPV4_MORE_FRAGMENTS | IPV4_OFFSET_MASK) != 0 {
        return Err(DecodeError::Ipv4Fragment {
            offset: frag & IPV4_OFFSET_MASK,
            more_fragments: frag & IPV4_MORE_FRAGMENTS != 0,
        });
    }
    Ok(Ipv4Packet {
        src: Ipv4Addr::new(s0, s1, s2, s3),
        dst: Ipv4Addr::new(d0, d1, d2, d3),
        ttl,
        protocol,
        payload,
    })
}

/// Length of a well-formed message with `count` addresses; `None` cannot happen for a u8
/// count but keeps the arithmetic checked.
fn message_len(version: Version, family: Family, count: u8) -> Option<usize> {
    let auth = match version {
        Version::V2 => V2_AUTH_LEN,
        Version::V3 => 0,
    };
    usize::from(count)
        .checked_mul(address_len(family))?
        .checked_add(HEADER_LEN + auth)
}

fn address_len(family: Family) -> usize {
    match family {
        Family::Ipv4 => 4,
        Family::Ipv6 => 16,
    }
}

fn read_addresses<const N: usize>(
    mut rest: &[u8],
    to_ip: impl Fn([u8; N]) -> IpAddr,
) -> Vec<IpAddr> {
    let mut addresses = Vec::with_capacity(rest.len() / N);
    while let Some((address, tail)) = rest.split_first_chunk::<N>() {
        addresses.push(to_ip(*address));
        rest = tail;
    }
    addresses
}

/// The unfolded one's complement sum a VRRP checksum is made of: the message, preceded by
/// the pseudo-header where the version and family call for one.
fn checksum_sum(message: &[u8], version: Version, endpoints: Endpoints, mode: ChecksumMode) -> u64 {
    // A VRRP message is at most 8 + 255 × 16 + 8 bytes, so its length fits either field.
    let len = u32::try_from(message.len()).unwrap_or(u32::MAX);
    let pseudo = match (version, endpoints.src, endpoints.dst, mode) {
        // RFC 3768 §5.3.8: v2 covers the VRRP message only.
        (Version::V2, ..) => 0,
        // RFC 5798 §5.2.8 (RFC 2460 §8.1): over IPv6 always with the pseudo-header:
        // source, destination, upper-layer length (32 bits), 3 zero bytes, next header.
        (Version::V3, IpAddr::V6(src), IpAddr::V6(dst), _) => {
            let sum = ones_sum(ones_sum(0, &src.octets()), &dst.octets());
            ones_sum(ones_sum(sum, &len.to_be_bytes()), &[0, 0, 0, IPPROTO_VRRP])
        }
        // RFC 5798 §5.2.8: over IPv4 with source, destination, zero, protocol, length...
        (Version::V3, IpAddr::V4(src), IpAddr::V4(dst), ChecksumMode::PseudoHeader) => {
            let len = u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes();
            let sum = ones_sum(ones_sum(0, &src.octets()), &dst.octets());
            ones_sum(sum, &[0, IPPROTO_VRRP, len[0], len[1]])
        }
        // ...unless configured like keepalived's `v3_checksum_as_v2`, for peers that leave
        // the pseudo-header out and sum the message alone as v2 does.
        (Version::V3, IpAddr::V4(_), IpAddr::V4(_), ChecksumMode::V2Compatible) => 0,
        // Mixed families are refused before any checksum is computed.
        (Version::V3, ..) => 0,
    };
    ones_sum(pseudo, message)
}

/// Add `bytes` as big-endian 16-bit words to `sum` (RFC 1071); an odd last byte is padded
/// with zero. Callers pass slices that start at an even offset of the checksummed data.
fn ones_sum(sum: u64, bytes: &[u8]) -> u64 {
    let mut words = bytes.chunks(2);
    let mut sum = sum;
    for word in &mut words {
        let high = word.first().copied().unwrap_or(0);
        let low = word.get(1).copied().unwrap_or(0);
        sum += u64::from(u16::from_be_bytes([high, low]));
    }
    sum
}

/// Fold the carries back in and complement: the checksum of the summed data.
fn finish(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    // The loop leaves at most 16 bits.
    !u16::try_from(sum).unwrap_or(u16::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> IpAddr {
        IpAddr::V4(s.parse().unwrap())
    }

    fn v6(s: &str) -> IpAddr {
        IpAddr::V6(s.parse().unwrap())
    }

    fn ends4() -> Endpoints {
        Endpoints {
            src: v4("192.0.2.11"),
            dst: v4("224.0.0.18"),
        }
    }

    fn ends6() -> Endpoints {
        Endpoints {
            src: v6("fe80::1"),
            dst: v6("ff02::12"),
        }
    }

    fn adv(version: Version, interval: u16, addresses: Vec<IpAddr>, auth: Auth) -> Advertisement {
        Advertisement {
            version,
            vrid: 51,
            priority: 150,
            max_adver_int: Centis::new(interval),
            addresses,
            auth,
        }
    }

    fn many_v4(n: usize) -> Vec<IpAddr> {
        (0..n)
            .map(|i| IpAddr::V4(Ipv4Addr::new(198, 51, (i / 256) as u8, i as u8)))
            .collect()
    }

    fn round_trip(adv: &Advertisement, ends: Endpoints, mode: ChecksumMode) -> Vec<u8> {
        let bytes = encode(adv, ends, mode).expect("encodes");
        assert_eq!(decode(&bytes, ends, mode).as_ref(), Ok(adv));
        bytes
    }

    #[test]
    fn v2_without_auth_round_trips() {
        let a = adv(Version::V2, 300, vec![v4("192.0.2.50")], Auth::None);
        let bytes = round_trip(&a, ends4(), ChecksumMode::PseudoHeader);
        assert_eq!(bytes.len(), 8 + 4 + 8);
        assert_eq!(bytes[..6], [0x21, 51, 150, 1, 0, 3]);
        assert_eq!(bytes[12..], [0; 8]);
    }

    #[test]
    fn v2_with_simple_password_round_trips() {
        let auth = Auth::simple_password(b"pw").unwrap();
        assert_eq!(auth, Auth::SimplePassword(*b"pw\0\0\0\0\0\0"));
        let a = adv(Version::V2, 100, many_v4(3), auth);
        let bytes = round_trip(&a, ends4(), ChecksumMode::PseudoHeader);
        assert_eq!(bytes[4], AUTH_TYPE_SIMPLE);
        assert_eq!(&bytes[20..], b"pw\0\0\0\0\0\0");
        assert_eq!(Auth::simple_password(b"123456789"), None);
    }

    #[test]
    fn v2_ignores_the_checksum_mode_and_endpoints() {
        let a = adv(Version::V2, 100, many_v4(2), Auth::None);
        let plain = encode(&a, ends4(), ChecksumMode::PseudoHeader).unwrap();
        let other = Endpoints {
            src: v4("198.51.100.1"),
            dst: v4("198.51.100.2"),
        };
        assert_eq!(
            encode(&a, other, ChecksumMode::V2Compatible).unwrap(),
            plain
        );
    }

    #[test]
    fn v3_ipv4_round_trips_in_both_checksum_modes_and_only_its_own() {
        let a = adv(Version::V3, 10, vec![v4("192.0.2.52")], Auth::None);
        let pseudo = round_trip(&a, ends4(), ChecksumMode::PseudoHeader);
        let compat = round_trip(&a, ends4(), ChecksumMode::V2Compatible);
        assert_eq!(pseudo[..6], compat[..6]);
        assert_ne!(pseudo[6..8], compat[6..8]);
        assert!(matches!(
            decode(&pseudo, ends4(), ChecksumMode::V2Compatible),
            Err(DecodeError::BadChecksum { .. })
        ));
        assert!(matches!(
            decode(&compat, ends4(), ChecksumMode::PseudoHeader),
            Err(DecodeError::BadChecksum { .. })
        ));
    }

    #[test]
    fn v3_ipv4_pseudo_header_covers_the_endpoints() {
        let a = adv(Version::V3, 100, vec![v4("192.0.2.53")], Auth::None);
        let bytes = encode(&a, ends4(), ChecksumMode::PseudoHeader).unwrap();
        let unicast = Endpoints {
            src: v4("192.0.2.11"),
            dst: v4("192.0.2.12"),
        };
        assert!(matches!(
            decode(&bytes, unicast, ChecksumMode::PseudoHeader),
            Err(DecodeError::BadChecksum { .. })
        ));
    }

    #[test]
    fn v3_ipv6_round_trips_whatever_the_mode() {
        let addresses = vec![v6("2001:db8::54"), v6("2001:db8::55"), v6("fe80::54")];
        let a = adv(Version::V3, 4095, addresses, Auth::None);
        let bytes = round_trip(&a, ends6(), ChecksumMode::PseudoHeader);
        assert_eq!(bytes.len(), 8 + 3 * 16);
        assert_eq!(bytes[4..6], [0x0f, 0xff]);
        // RFC 5798 §5.2.8: IPv6 always uses the pseudo-header; the mode is for IPv4.
        assert_eq!(
            encode(&a, ends6(), ChecksumMode::V2Compatible).unwrap(),
            bytes
        );
    }

    #[test]
    fn one_and_many_addresses_round_trip() {
        for n in [1, 2, 17, 255] {
            let a = adv(Version::V3, 100, many_v4(n), Auth::None);
            let bytes = round_trip(&a, ends4(), ChecksumMode::PseudoHeader);
            assert_eq!(bytes[3] as usize, n);
            let a = adv(
                Version::V2,
                100,
                many_v4(n),
                Auth::SimplePassword(*b"secret12"),
            );
            round_trip(&a, ends4(), ChecksumMode::PseudoHeader);
        }
        let many_v6: Vec<IpAddr> = (0..255u16)
            .map(|i| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i)))
            .collect();
        let a = adv(Version::V3, 100, many_v6, Auth::None);
        round_trip(&a, ends6(), ChecksumMode::PseudoHeader);
    }

    #[test]
    fn v3_reserved_bits_are_sent_as_zero_and_ignored_on_receive() {
        let a = adv(Version::V3, 0x0abc, vec![v4("192.0.2.52")], Auth::None);
        let mut bytes = round_trip(&a, ends4(), ChecksumMode::V2Compatible);
        assert_eq!(bytes[4] >> 4, 0);
        // Set the reserved bits and fix the checksum by hand (one's complement arithmetic:
        // adding 0xf000 to a word subtracts it from the checksum).
        bytes[4] |= 0xf0;
        let sum = u16::from_be_bytes([bytes[6], bytes[7]]);
        let fixed = finish(u64::from(!sum) + 0xf000);
        bytes[6..8].copy_from_slice(&fixed.to_be_bytes());
        assert_eq!(decode(&bytes, ends4(), ChecksumMode::V2Compatible), Ok(a));
    }

    #[test]
    fn both_ones_complement_zeros_are_accepted() {
        // Find an address whose message sums to all ones, so the checksum is 0x0000.
        let zero = (0..=u16::MAX)
            .map(|i| {
                let [hi, lo] = i.to_be_bytes();
                adv(
                    Version::V2,
                    100,
                    vec![v4(&format!("10.0.{hi}.{lo}"))],
                    Auth::None,
                )
            })
            .find(|a| encode(a, ends4(), ChecksumMode::PseudoHeader).unwrap()[6..8] == [0, 0])
            .expect("some address gives checksum 0");
        let mut bytes = encode(&zero, ends4(), ChecksumMode::PseudoHeader).unwrap();
        bytes[6..8].copy_from_slice(&[0xff, 0xff]);
        assert_eq!(
            decode(&bytes, ends4(), ChecksumMode::PseudoHeader),
            Ok(zero)
        );
    }

    #[test]
    fn encode_refuses_what_decode_would_refuse() {
        let ok = adv(Version::V3, 100, vec![v4("192.0.2.1")], Auth::None);
        let m = ChecksumMode::PseudoHeader;
        let with = |f: &dyn Fn(&mut Advertisement)| {
            let mut a = ok.clone();
            f(&mut a);
            a
        };
        assert_eq!(
            encode(&with(&|a| a.vrid = 0), ends4(), m),
            Err(EncodeError::ZeroVrid)
        );
        assert_eq!(
            encode(&with(&|a| a.addresses.clear()), ends4(), m),
            Err(EncodeError::NoAddresses)
        );
        assert_eq!(
            encode(&with(&|a| a.addresses = many_v4(256)), ends4(), m),
            Err(EncodeError::TooManyAddresses(256))
        );
        assert_eq!(
            encode(&ok, ends6(), m),
            Err(EncodeError::AddressFamily {
                address: v4("192.0.2.1"),
                expected: Family::Ipv6
            })
        );
        let mixed = Endpoints {
            src: v4("192.0.2.11"),
            dst: v6("ff02::12"),
        };
        assert_eq!(
            encode(&ok, mixed, m),
            Err(EncodeError::MixedEndpointFamilies {
                src: Family::Ipv4,
                dst: Family::Ipv6
            })
        );
        for interval in [0, 4096] {
            assert_eq!(
                encode(
                    &with(&|a| a.max_adver_int = Centis::new(interval)),
                    ends4(),
                    m
                ),
                Err(EncodeError::IntervalOutOfRange {
                    interval: Centis::new(interval),
                    version: Version::V3
                })
            );
        }
        assert_eq!(
            encode(
                &with(&|a| a.auth = Auth::SimplePassword([1; 8])),
                ends4(),
                m
            ),
            Err(EncodeError::AuthWithV3)
        );

        let v2 = with(&|a| a.version = Version::V2);
        assert_eq!(
            encode(
                &with(&|a| {
                    a.version = Version::V2;
                    a.addresses = vec![v6("2001:db8::1")];
                }),
                ends6(),
                m
            ),
            Err(EncodeError::V2OverIpv6)
        );
        let v2_interval = |centis| {
            let mut a = v2.clone();
            a.max_adver_int = Centis::new(centis);
            encode(&a, ends4(), m)
        };
        assert_eq!(
            v2_interval(150),
            Err(EncodeError::IntervalNotWholeSeconds(Centis::new(150)))
        );
        for centis in [0, 25600] {
            assert_eq!(
                v2_interval(centis),
                Err(EncodeError::IntervalOutOfRange {
                    interval: Centis::new(centis),
                    version: Version::V2
                })
            );
        }
        assert!(v2_interval(25500).is_ok());
    }

    #[test]
    fn ipv4_header_with_options_is_skipped() {
        // 24-byte header (IHL 6, one 4-byte option), then a 4-byte payload.
        let mut packet = vec![
            0x46, 0, 0, 28, 0, 1, 0x40, 0, 255, 112, 0, 0, 192, 0, 2, 11, 224, 0, 0, 18, 1, 1, 1,
            0, 9, 8, 7, 6,
        ];
        let sum = finish(ones_sum(0, &packet[..24]));
        packet[10..12].copy_from_slice(&sum.to_be_bytes());
        let ip = decode_ipv4_header(&packet).unwrap();
        assert_eq!(ip.payload, [9, 8, 7, 6]);
        assert_eq!(ip.endpoints(), ends4());
        assert_eq!((ip.ttl, ip.protocol), (255, IPPROTO_VRRP));
    }
}
