//! Receive tasks: one per VRRP socket, decoding every message before it reaches the loop.
//!
//! Decoding here keeps the loop's work per packet small and makes malformed packets an
//! ordinary `Result` the loop counts (holo's design). The checksum mode depends on the
//! instance, so the task is given the mode per VRID; a VRID we do not run is decoded with
//! the default mode and the loop counts it as unknown. Must not touch routers or sockets'
//! send side.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

use super::event::{Event, SocketId};
use crate::net::linux::vrrp_socket::VrrpSocket;
use crate::vrrp::packet::{self, ChecksumMode, Endpoints};

/// Pause after a socket fault (not a bad packet), so a broken socket cannot spin the loop.
const ERROR_PAUSE: Duration = Duration::from_millis(100);

pub async fn receive(
    socket_id: SocketId,
    socket: Rc<VrrpSocket>,
    checksum_modes: HashMap<u8, ChecksumMode>,
    events: UnboundedSender<Event>,
) {
    loop {
        let event = match socket.recv().await {
            Ok(received) => {
                // Byte 1 of every VRRP message is the VRID; a message too short to have one
                // fails decoding anyway.
                let wire_vrid = received.payload.get(1).copied();
                let mode = wire_vrid
                    .and_then(|vrid| checksum_modes.get(&vrid))
                    .copied()
                    .unwrap_or_default();
                let endpoints = Endpoints {
                    src: received.src,
                    dst: received.dst,
                };
                Event::Advert {
                    socket: socket_id,
                    src: received.src,
                    dst: received.dst,
                    ttl: received.ttl,
                    wire_vrid,
                    result: packet::decode(&received.payload, endpoints, mode),
                }
            }
            // One unreadable packet (a bad IPv4 header, say) is the sender's problem: report
            // it and read on at once, so a flood of them cannot stall reception.
            Err(error) if error.is_packet_error() => Event::Unreadable {
                socket: socket_id,
                error: error.to_string(),
            },
            Err(error) => {
                let event = Event::ReceiveFailed {
                    socket: socket_id,
                    error: error.to_string(),
                };
                if events.send(event).is_err() {
                    return;
                }
                tokio::time::sleep(ERROR_PAUSE).await;
                continue;
            }
        };
        if events.send(event).is_err() {
            // The loop has gone: the daemon is stopping.
            return;
        }
    }
}
