//! One configured instance at run time: its router, its socket, where its adverts go.
//!
//! Owns the mapping from the validated [`config::Instance`] to the state machine's
//! [`RouterConfig`], and the per-instance facts the loop needs around the router. Must not
//! do I/O.

use std::net::IpAddr;
use std::time::Instant;

use super::announcer::Target;
use super::event::SocketId;
use crate::config;
use crate::control::status::{Histogram, InstanceCounters, TransitionStatus, LATENESS_BOUNDS};
use crate::vrrp::{EffectivePriority, RouterConfig, VirtualRouter};

/// One tracked check of an instance, by its index in the daemon's check table.
#[derive(Clone, Copy, Debug)]
pub struct InstanceTrack {
    pub check: usize,
    pub weight: i32,
    pub reverse: bool,
}

pub struct InstanceRuntime {
    pub config: config::Instance,
    pub router: VirtualRouter,
    pub socket: SocketId,
    /// The multicast group, or every unicast peer.
    pub destinations: Vec<IpAddr>,
    /// Interfaces whose link state counts: the instance's own and each VIP's `dev`
    /// (keepalived tracks these implicitly; a VIP on a dead interface cannot be served).
    pub tracked_interfaces: Vec<String>,
    /// When the last odd-advert warning was logged, to keep one per minute at most.
    pub last_warning: Option<Instant>,
    pub tracks: Vec<InstanceTrack>,
    /// The effective priority last handed to the router.
    pub priority: EffectivePriority,
    /// Shared with the notify thread, which runs them.
    pub notify: std::sync::Arc<crate::notify::HookSet>,
    /// For status and metrics.
    pub counters: InstanceCounters,
    pub advert_lateness: Histogram,
    pub last_transition: Option<TransitionStatus>,
    /// The VIPs were requested on (AddVips) and not yet off (RemoveVips).
    pub holds_vips: bool,
    /// Removed (or replaced) by a reload: stopping or stopped, kept so that indices stay.
    pub retired: bool,
    /// A `switchover` waiting to be answered when the handover resolves.
    pub pending_switchover:
        Option<tokio::sync::oneshot::Sender<crate::control::protocol::Response>>,
}

impl InstanceRuntime {
    pub fn new(
        config: config::Instance,
        socket: SocketId,
        primary_address: IpAddr,
        tracks: Vec<InstanceTrack>,
        sync_member: bool,
    ) -> Self {
        let mut router_config = router_config(&config, primary_address);
        router_config.sync_member = sync_member;
        let router = VirtualRouter::new(router_config);
        let destinations = match config.multicast_group() {
            Some(group) => vec![group],
            None => config.unicast_peers.clone(),
        };
        let mut tracked_interfaces = vec![config.interface.clone()];
        for vip in &config.vips {
            if !tracked_interfaces.contains(&vip.dev) {
                tracked_interfaces.push(vip.dev.clone());
            }
        }
        let priority = EffectivePriority::Value(config.priority);
        let notify = std::sync::Arc::new(config.notify.clone());
        InstanceRuntime {
            config,
            router,
            socket,
            destinations,
            tracked_interfaces,
            last_warning: None,
            tracks,
            priority,
            notify,
            counters: InstanceCounters::default(),
            advert_lateness: Histogram::with_bounds(LATENESS_BOUNDS),
            last_transition: None,
            holds_vips: false,
            retired: false,
            pending_switchover: None,
        }
    }

    /// The VIPs as `address/prefix` strings, for hooks and status.
    pub fn vip_strings(&self) -> Vec<String> {
        self.config.vips.iter().map(ToString::to_string).collect()
    }

    pub fn is_unicast(&self) -> bool {
        !self.config.unicast_peers.is_empty()
    }

    /// The VIPs as announcement targets, each on its own interface.
    pub fn announce_targets(&self) -> Vec<Target> {
        self.config
            .vips
            .iter()
            .map(|vip| Target {
                interface: vip.dev.clone(),
                address: vip.address,
            })
            .collect()
    }
}

/// What the state machine needs of an instance; `primary_address` is our advert source.
pub fn router_config(instance: &config::Instance, primary_address: IpAddr) -> RouterConfig {
    RouterConfig {
        vrid: instance.vrid,
        version: instance.version,
        family: instance.family,
        priority: instance.priority,
        advert_interval: instance.advert_interval,
        preempt: instance.preempt,
        preempt_delay: instance.preempt_delay,
        fast_preempt: instance.fast_preempt,
        primary_address,
        vips: instance.vips.iter().map(|vip| vip.address).collect(),
        auth: instance.auth.clone(),
        sync_member: false,
    }
}
