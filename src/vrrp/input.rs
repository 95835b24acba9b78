//! What drives a virtual router: the inputs of [`super::router::VirtualRouter::handle`].
//!
//! Owns the vocabulary of events the state machine reacts to (RFC 5798 §6.4 "events") plus
//! vipkeeper's own (effective priority from health checks, link state). The router knows
//! nothing of where they come from: sockets, netlink, probes or a simulator.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::packet::Advertisement;

/// One input to the state machine. Time is passed beside it, never inside it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Input {
    /// RFC 5798 §6.4.1: the virtual router is enabled.
    Startup,
    /// RFC 5798 §6.4.2/§6.4.3 "Shutdown event", make before break: a Master sends
    /// priority 0 but keeps its VIPs until it hears the new Master (bounded by
    /// Master_Down_Interval), then removes them.
    Shutdown,
    /// A second stop signal: remove everything now, without waiting for a new Master.
    ShutdownNow,
    /// Planned failover: a Master hands over as on Shutdown but stays as a Backup that
    /// does not preempt for `hold`; a Backup only holds back.
    Switchover { hold: std::time::Duration },
    /// End a switchover's hold-back.
    Resume,
    /// A decoded advertisement for this router's VRID and family; `src` is the IP source.
    Advert { src: IpAddr, adv: Advertisement },
    /// The effective priority computed from health checks changed (or became a fault).
    PriorityChanged(EffectivePriority),
    /// The router's interface went down (`up = false`) or came back.
    Link { up: bool },
    /// A sync group's decision for this member (keepalived's vrrp_sync_group).
    Group(GroupCommand),
}

/// What a sync group tells a member to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupCommand {
    /// Every member wants Master: a member waiting for that becomes Master now.
    Master,
    /// Another member stepped down: a Master member steps down too.
    Backup,
    /// Another member is in Fault: this one goes to Fault too.
    Fault,
    /// The faulty member recovered: leave the group's Fault (unless faulty itself).
    Recover,
}

/// The verdict of the health score: a priority to advertise, or "must not be Master".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EffectivePriority {
    /// Clamped by the router to 1..=254; ignored for an address owner (255 never changes).
    Value(u8),
    /// An unweighted check failed (keepalived's weight 0): go to Fault and stay there.
    Fault,
}
