//! VRRP advertisement codec: v2 (RFC 3768 §5) and v3 (RFC 5798 §5) over IPv4 and IPv6.
//!
//! SKELETON: the types below are the agreed seam; the functions are filled in by the codec
//! work. Pure: bytes in, typed values out; never panics on any input.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::{Centis, Version};

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

/// Why a received packet was not an acceptable advertisement. Every variant is an expected
/// outcome of hostile or broken peers: count it, log it, drop the packet.
#[derive(Clone, Debug, PartialEq, Eq, Error, Serialize, Deserialize)]
pub enum DecodeError {
    #[error("packet too short: {len} bytes, need at least {need}")]
    TooShort { len: usize, need: usize },
}

/// Why an advertisement could not be encoded (a programming or config error, never input).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum EncodeError {
    #[error("too many addresses: {0}")]
    TooManyAddresses(usize),
}

/// Encode `adv` as the VRRP message (the IP payload), checksum included.
pub fn encode(
    adv: &Advertisement,
    endpoints: Endpoints,
    mode: ChecksumMode,
) -> Result<Vec<u8>, EncodeError> {
    let _ = (adv, endpoints, mode);
    todo!("codec")
}

/// Decode a VRRP message (the IP payload) and verify its checksum.
pub fn decode(
    bytes: &[u8],
    endpoints: Endpoints,
    mode: ChecksumMode,
) -> Result<Advertisement, DecodeError> {
    let _ = (bytes, endpoints, mode);
    todo!("codec")
}
