//! What a virtual router asks the outside world to do, and how it explains itself.
//!
//! Owns the output vocabulary of [`super::router::VirtualRouter::poll_action`]: packets to
//! send, VIPs to add or remove, announcements, state transitions with their reason, and
//! adverts it refused or found odd (to be counted and logged, never fatal).

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::packet::Advertisement;
use super::Centis;

/// RFC 5798 §6.4 states plus Fault (keepalived's FAULT: interface down or a failed check).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum State {
    Initialize,
    Backup,
    Master,
    Fault,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Initialize => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
        })
    }
}

/// One thing the router wants done, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Send this advertisement to the multicast group or every unicast peer.
    SendAdvert(Advertisement),
    /// Configure every VIP of the instance (entering Master).
    AddVips,
    /// Remove every VIP of the instance (leaving Master).
    RemoveVips,
    /// Gratuitous ARP / unsolicited NA for the VIPs.
    Announce(AnnounceReason),
    /// The state changed. Hooks, status and metrics see only this.
    Transition {
        from: State,
        to: State,
        reason: Reason,
    },
    /// An advert was refused by policy (RFC 5798 §7.1 or our state); count and log it.
    Discard { from: IpAddr, reason: DiscardReason },
    /// An advert was accepted but differs from our configuration; log it, rate-limited.
    Warn {
        from: IpAddr,
        warning: AdvertWarning,
    },
    /// A sync-group member would become Master and waits for the whole group to want it.
    WantMaster,
    /// A switchover found no peer to take over within Master_Down_Interval: still Master.
    HandoverAborted,
}

/// Why the VIPs are announced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AnnounceReason {
    /// RFC 5798 §6.4.2: a new Master broadcasts its addresses.
    BecameMaster,
    /// keepalived's split-brain repair: a Master heard a lower priority and re-claims the VIPs.
    LowerPriorityHeard,
}

/// Why a transition happened, as an operator reads it in logs and status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reason {
    /// Started without an owner's priority: Backup, waiting for a Master.
    Startup,
    /// Priority 255: the address owner starts as Master at once (RFC 5798 §6.4.1).
    AddressOwner,
    /// No advert for Master_Down_Interval (RFC 5798 §6.4.2).
    MasterDown,
    /// The Master sent priority 0; we waited Skew_Time (RFC 5798 §6.4.2).
    MasterResigned {
        from: IpAddr,
    },
    /// A Master heard a higher priority, or an equal one from a higher address (§6.4.3).
    HigherPriorityHeard {
        from: IpAddr,
        priority: u8,
    },
    /// fast_preempt: a Backup heard a lower priority Master and took over at once.
    LowerPriorityHeard {
        from: IpAddr,
        priority: u8,
    },
    /// The router was shut down (RFC 5798 §6.4.3 Shutdown event).
    Shutdown,
    LinkDown,
    LinkUp,
    /// A check with weight 0 failed.
    HealthFault,
    /// Every check with weight 0 is up again.
    HealthRecovered,
    /// The sync group moved this member with the others.
    SyncGroup,
    /// A planned switchover handed the VIPs to the peer.
    Switchover,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Startup => f.write_str("startup"),
            Reason::AddressOwner => f.write_str("address owner (priority 255)"),
            Reason::MasterDown => f.write_str("master down interval expired"),
            Reason::MasterResigned { from } => write!(f, "master {from} resigned (priority 0)"),
            Reason::HigherPriorityHeard { from, priority } => {
                write!(f, "higher priority {priority} from {from}")
            }
            Reason::LowerPriorityHeard { from, priority } => {
                write!(f, "lower priority {priority} from {from} (fast_preempt)")
            }
            Reason::Shutdown => f.write_str("shutdown"),
            Reason::LinkDown => f.write_str("interface down"),
            Reason::LinkUp => f.write_str("interface up"),
            Reason::HealthFault => f.write_str("health check fault"),
            Reason::HealthRecovered => f.write_str("health checks recovered"),
            Reason::SyncGroup => f.write_str("sync group"),
            Reason::Switchover => f.write_str("switchover"),
        }
    }
}

/// Why a received advert was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DiscardReason {
    /// Not started, or shut down.
    NotRunning,
    /// In Fault the router ignores the segment.
    InFault,
    /// Our own advert came back (multicast loop, or a peer list naming ourselves).
    OwnAdvert,
    VridMismatch {
        theirs: u8,
    },
    VersionMismatch,
    FamilyMismatch,
    /// RFC 3768 §7.1: the auth type or password differs from ours.
    AuthMismatch,
    /// RFC 3768 §7.1: a v2 Adver Int different from ours (keepalived drops it too).
    IntervalMismatch {
        ours: Centis,
        theirs: Centis,
    },
    /// RFC 5798 §6.4.2: a Backup that preempts ignores a lower priority Master, so that its
    /// Master_Down_Timer runs out.
    LowerPriority {
        theirs: u8,
        ours: u8,
    },
}

impl DiscardReason {
    /// A stable snake_case name per variant, for counters and metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            DiscardReason::NotRunning => "not_running",
            DiscardReason::InFault => "in_fault",
            DiscardReason::OwnAdvert => "own_advert",
            DiscardReason::VridMismatch { .. } => "vrid_mismatch",
            DiscardReason::VersionMismatch => "version_mismatch",
            DiscardReason::FamilyMismatch => "family_mismatch",
            DiscardReason::AuthMismatch => "auth_mismatch",
            DiscardReason::IntervalMismatch { .. } => "interval_mismatch",
            DiscardReason::LowerPriority { .. } => "lower_priority",
        }
    }
}

/// Odd but accepted adverts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdvertWarning {
    /// v3: the Master advertises another interval; the Backup learns it (RFC 5798 §6.4.2).
    IntervalDiffers { ours: Centis, theirs: Centis },
    /// The VIP list differs from ours (logged but accepted, as keepalived since 2.3.3).
    AddressListMismatch,
}
