//! The VRRP protocol, pure: wire codec, timers and the per-virtual-router state machine.
//!
//! Owns everything RFC 3768 (v2) and RFC 5798 (v3) say about packets, timers and states.
//! Must not touch sockets, tokio, the system clock, randomness or logging sinks: every
//! function takes the current time as an argument and returns what to do. The daemon and
//! the simulator drive it through [`router::VirtualRouter`].

pub mod action;
pub mod input;
pub mod interval;
pub mod packet;
pub mod router;
pub mod sync_group;

pub use action::{Action, Reason, State};
pub use input::{EffectivePriority, GroupCommand, Input};
pub use interval::{Centis, Timers};
pub use router::{RouterConfig, VirtualRouter};

use serde::{Deserialize, Serialize};

/// VRRP protocol version: 2 (RFC 3768, IPv4 only) or 3 (RFC 5798, IPv4 and IPv6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Version {
    V2,
    V3,
}

impl Version {
    /// The value of the 4-bit version field.
    pub const fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }
}

/// The address family of a virtual router; one instance never mixes families.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Family {
    Ipv4,
    Ipv6,
}

impl Family {
    pub fn of(address: &std::net::IpAddr) -> Family {
        match address {
            std::net::IpAddr::V4(_) => Family::Ipv4,
            std::net::IpAddr::V6(_) => Family::Ipv6,
        }
    }
}

/// Priority of the IP address owner (RFC 5798 §5.2.4): always Master, never changed by checks.
pub const OWNER_PRIORITY: u8 = 255;
/// Priority sent by a Master that stops being Master on purpose (RFC 5798 §5.2.4).
pub const RESIGN_PRIORITY: u8 = 0;
