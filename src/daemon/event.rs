//! What the daemon loop reacts to: everything its tasks observe, as one enum.
//!
//! `Event` is the loop's input (the router's is `vrrp::Input`): received packets already
//! decoded into a `Result`, kernel link and address changes, the outcome of VIP changes, and
//! signals. Tasks only send events; they never touch a router.

use std::net::IpAddr;

use crate::vrrp::packet::{Advertisement, DecodeError};

/// Index of a VRRP socket in the daemon's socket table.
pub type SocketId = usize;
/// Index of an instance in the daemon's instance table.
pub type InstanceId = usize;

#[derive(Debug)]
pub enum Event {
    /// A VRRP message arrived on a socket, decoded by the receive task.
    Advert {
        socket: SocketId,
        src: IpAddr,
        dst: IpAddr,
        ttl: u8,
        /// Byte 1 of the message (the VRID field), read even when decoding failed, so a
        /// malformed advert for one of our instances is counted on that instance.
        wire_vrid: Option<u8>,
        result: Result<Advertisement, DecodeError>,
    },
    /// A packet arrived that could not be read as an IP packet (dropped, counted).
    Unreadable { socket: SocketId, error: String },
    /// Receiving failed (the task keeps going after a short pause).
    ReceiveFailed { socket: SocketId, error: String },
    /// An interface went up or down (administratively or its carrier).
    Link { name: String, up: bool },
    /// An address disappeared from an interface (ours, by hand, or with its link).
    AddressRemoved { address: IpAddr },
    /// A VIP change requested by the loop has been carried out (or failed).
    VipsChanged {
        instance: InstanceId,
        added: bool,
        failures: Vec<String>,
    },
    /// An operator's request on the control socket, with where to send the answer.
    Control {
        request: crate::control::protocol::Request,
        reply: tokio::sync::oneshot::Sender<crate::control::protocol::Response>,
    },
    /// A hook or action finished (from the notify thread).
    Hook(crate::notify::HookReport),
    /// A check produced a result (from the health thread).
    Health(crate::health::runner::HealthEvent),
    /// SIGTERM or SIGINT: stop gracefully.
    Stop { signal: &'static str },
    /// SIGHUP: reload (the configuration diff arrives with the operations work).
    Reload,
}
