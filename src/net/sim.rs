//! An in-memory Ethernet segment with a virtual clock, for deterministic many-node tests.
//!
//! Owns: simulated nodes (each with one [`VirtualRouter`] per VRID), packets in flight with
//! latency, loss and partitions, node crashes and restarts, link state, and a ledger of who
//! holds each VRID's VIPs. Adverts cross the segment as real bytes: encoded and decoded by
//! [`crate::vrrp::packet`], so the codec is exercised on every hop. Everything random comes
//! from one seeded [`SimRng`], so a seed replays exactly. Must not read the system clock or
//! sleep: time only moves when the driver calls [`SimNetwork::run_until`].

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use crate::vrrp::packet::{self, ChecksumMode, Endpoints};
use crate::vrrp::{
    sync_group, Action, EffectivePriority, Family, GroupCommand, Input, RouterConfig, State,
    VirtualRouter,
};

/// Index of a node in a [`SimNetwork`].
pub type NodeId = usize;

/// VRRP's IPv4 multicast group (RFC 5798 §5.1.1.2).
pub const MULTICAST_V4: IpAddr = IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18));
/// VRRP's IPv6 multicast group (RFC 5798 §5.1.2.2).
pub const MULTICAST_V6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12));

/// SplitMix64: tiny, seedable, and good enough to pick simulation events.
#[derive(Clone, Debug)]
pub struct SimRng(u64);

impl SimRng {
    pub fn new(seed: u64) -> SimRng {
        SimRng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `low..=high`.
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        debug_assert!(low <= high);
        low + self.next_u64() % (high - low + 1)
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    pub fn duration(&mut self, low: Duration, high: Duration) -> Duration {
        let micros = self.range(low.as_micros() as u64, high.as_micros() as u64);
        Duration::from_micros(micros)
    }
}

/// One virtual router on a simulated node, with the VIP ledger entry it drives.
#[derive(Debug)]
struct SimRouter {
    config: RouterConfig,
    /// `None` while the node is crashed.
    router: Option<VirtualRouter>,
    /// The VIPs are configured on this node (they survive a crash, as on a real host).
    holds_vips: bool,
}

#[derive(Debug)]
struct SimNode {
    name: String,
    address: IpAddr,
    routers: Vec<SimRouter>,
    alive: bool,
    link_up: bool,
    /// Nodes only hear each other within the same partition group.
    group: u32,
    /// Sync groups: indices into `routers`.
    groups: Vec<Vec<usize>>,
    /// Stopping gracefully: gone once every router has reached Initialize.
    stopping: bool,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct InFlight {
    at: Instant,
    seq: u64,
    to: NodeId,
    endpoints_src: IpAddr,
    endpoints_dst: IpAddr,
    bytes: Vec<u8>,
}

/// What happened on the segment, for assertions and for printing a failing seed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    pub adverts_sent: u64,
    pub delivered: u64,
    pub lost: u64,
    pub decode_errors: u64,
    pub discarded: u64,
    pub unknown_vrid: u64,
    pub announcements: u64,
    pub transitions: u64,
}

/// The simulated segment.
#[derive(Debug)]
pub struct SimNetwork {
    start: Instant,
    now: Instant,
    rng: SimRng,
    nodes: Vec<SimNode>,
    in_flight: BinaryHeap<Reverse<InFlight>>,
    next_seq: u64,
    latency: (Duration, Duration),
    loss_percent: u64,
    checksum_mode: ChecksumMode,
    stats: SimStats,
    timeline: String,
}

impl SimNetwork {
    /// A segment whose packets take `latency.0..=latency.1` each, drawn from `seed`.
    pub fn new(seed: u64, latency: (Duration, Duration)) -> SimNetwork {
        let start = Instant::now();
        SimNetwork {
            start,
            now: start,
            rng: SimRng::new(seed),
            nodes: Vec::new(),
            in_flight: BinaryHeap::new(),
            next_seq: 0,
            latency,
            loss_percent: 0,
            checksum_mode: ChecksumMode::default(),
            stats: SimStats::default(),
            timeline: String::new(),
        }
    }

    pub fn now(&self) -> Instant {
        self.now
    }

    /// Virtual time since the segment was created.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    pub fn stats(&self) -> &SimStats {
        &self.stats
    }

    /// Every transition and disruption so far, one line each, for failure reports.
    pub fn timeline(&self) -> &str {
        &self.timeline
    }

    pub fn rng(&mut self) -> &mut SimRng {
        &mut self.rng
    }

    pub fn add_node(&mut self, name: &str, address: IpAddr) -> NodeId {
        self.nodes.push(SimNode {
            name: name.to_owned(),
            address,
            routers: Vec::new(),
            alive: true,
            link_up: true,
            group: 0,
            groups: Vec::new(),
            stopping: false,
        });
        self.nodes.len() - 1
    }

    /// Add a virtual router to `node`; its `primary_address` is the node's address.
    pub fn add_router(&mut self, node: NodeId, mut config: RouterConfig) {
        config.primary_address = self.nodes[node].address;
        self.nodes[node].routers.push(SimRouter {
            router: Some(VirtualRouter::new(config.clone())),
            config,
            holds_vips: false,
        });
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub fn node_name(&self, node: NodeId) -> &str {
        &self.nodes[node].name
    }

    pub fn is_alive(&self, node: NodeId) -> bool {
        self.nodes[node].alive
    }

    pub fn link_up(&self, node: NodeId) -> bool {
        self.nodes[node].link_up
    }

    /// The router for `vrid` on `node`, unless the node is crashed.
    pub fn router(&self, node: NodeId, vrid: u8) -> Option<&VirtualRouter> {
        self.nodes[node]
            .routers
            .iter()
            .find(|entry| entry.config.vrid == vrid)
            .and_then(|entry| entry.router.as_ref())
    }

    pub fn state(&self, node: NodeId, vrid: u8) -> Option<State> {
        self.router(node, vrid).map(VirtualRouter::state)
    }

    /// Nodes whose router for `vrid` is Master.
    pub fn masters(&self, vrid: u8) -> Vec<NodeId> {
        (0..self.nodes.len())
            .filter(|&node| self.state(node, vrid) == Some(State::Master))
            .collect()
    }

    /// Nodes that have `vrid`'s VIPs configured, crashed ones included.
    pub fn vip_holders(&self, vrid: u8) -> Vec<NodeId> {
        (0..self.nodes.len())
            .filter(|&node| {
                self.nodes[node]
                    .routers
                    .iter()
                    .any(|entry| entry.config.vrid == vrid && entry.holds_vips)
            })
            .collect()
    }

    /// Every VRID configured anywhere on the segment.
    pub fn vrids(&self) -> Vec<u8> {
        let mut vrids: Vec<u8> = self
            .nodes
            .iter()
            .flat_map(|node| node.routers.iter().map(|entry| entry.config.vrid))
            .collect();
        vrids.sort_unstable();
        vrids.dedup();
        vrids
    }

    // ===== driving =====

    /// Send Startup to every router of every live node.
    pub fn start_all(&mut self) {
        for node in 0..self.nodes.len() {
            self.input_all(node, Input::Startup);
        }
    }

    /// Process every timer and delivery due up to `until`, then set the clock to it.
    /// `after_each` runs after every processed event (to check invariants step by step).
    pub fn run_until<F>(&mut self, until: Instant, mut after_each: F) -> Result<(), String>
    where
        F: FnMut(&SimNetwork) -> Result<(), String>,
    {
        // Bounded: a router that re-arms a timer in the past would spin forever otherwise.
        for _ in 0..10_000_000u32 {
            let Some(at) = self.next_event_at() else {
                break;
            };
            if at > until {
                break;
            }
            self.now = self.now.max(at);
            self.process_next_event();
            after_each(self)?;
        }
        self.now = self.now.max(until);
        Ok(())
    }

    /// Run for `duration` of virtual time without per-event checks.
    pub fn advance(&mut self, duration: Duration) {
        let until = self.now + duration;
        // The closure never fails, so neither does the run.
        let _ = self.run_until(until, |_| Ok(()));
    }

    fn next_event_at(&self) -> Option<Instant> {
        let delivery = self.in_flight.peek().map(|Reverse(packet)| packet.at);
        let timer = self
            .nodes
            .iter()
            .flat_map(|node| node.routers.iter())
            .filter_map(|entry| entry.router.as_ref()?.poll_timeout())
            .min();
        match (delivery, timer) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn process_next_event(&mut self) {
        let now = self.now;
        // Deliveries first at equal instants: the packet was on the wire before the timer.
        if let Some(Reverse(packet)) = self.in_flight.peek() {
            if packet.at <= now {
                if let Some(Reverse(packet)) = self.in_flight.pop() {
                    self.deliver(packet);
                }
                return;
            }
        }
        for node in 0..self.nodes.len() {
            for index in 0..self.nodes[node].routers.len() {
                let due = self.nodes[node].routers[index]
                    .router
                    .as_ref()
                    .and_then(VirtualRouter::poll_timeout)
                    .is_some_and(|at| at <= now);
                if due {
                    if let Some(router) = self.nodes[node].routers[index].router.as_mut() {
                        router.handle_timeout(now);
                    }
                    self.drain_actions(node, index);
                    return;
                }
            }
        }
    }

    fn deliver(&mut self, packet: InFlight) {
        let node = &self.nodes[packet.to];
        // Checked again at delivery: the receiver may have crashed, lost its link or been
        // partitioned away while the packet was in flight.
        if !node.alive || !node.link_up {
            self.stats.lost += 1;
            return;
        }
        let endpoints = Endpoints {
            src: packet.endpoints_src,
            dst: packet.endpoints_dst,
        };
        let adv = match packet::decode(&packet.bytes, endpoints, self.checksum_mode) {
            Ok(adv) => adv,
            Err(_) => {
                self.stats.decode_errors += 1;
                return;
            }
        };
        self.stats.delivered += 1;
        let family = Family::of(&packet.endpoints_src);
        // Demultiplex by VRID and family, as one socket per interface and family does.
        let index = node
            .routers
            .iter()
            .position(|entry| entry.config.vrid == adv.vrid && entry.config.family == family);
        let Some(index) = index else {
            self.stats.unknown_vrid += 1;
            return;
        };
        let to = packet.to;
        if let Some(router) = self.nodes[to].routers[index].router.as_mut() {
            let input = Input::Advert {
                src: packet.endpoints_src,
                adv,
            };
            router.handle(input, self.now);
        }
        self.drain_actions(to, index);
    }

    fn drain_actions(&mut self, node: NodeId, index: usize) {
        loop {
            let Some(router) = self.nodes[node].routers[index].router.as_mut() else {
                return;
            };
            let Some(action) = router.poll_action() else {
                return;
            };
            let commands = self.group_commands(node, index, &action);
            match action {
                Action::SendAdvert(adv) => self.transmit(node, &adv),
                Action::AddVips => self.nodes[node].routers[index].holds_vips = true,
                Action::RemoveVips => self.nodes[node].routers[index].holds_vips = false,
                Action::Announce(_) => self.stats.announcements += 1,
                Action::Transition { from, to, reason } => {
                    self.stats.transitions += 1;
                    let vrid = self.nodes[node].routers[index].config.vrid;
                    let line = format!(
                        "{} vrid {vrid}: {from} -> {to} ({reason})",
                        self.nodes[node].name
                    );
                    self.note(&line);
                    if to == State::Initialize {
                        self.finish_stop(node);
                        if !self.nodes[node].alive {
                            return;
                        }
                    }
                }
                Action::Discard { .. } => self.stats.discarded += 1,
                Action::Warn { .. } | Action::WantMaster | Action::HandoverAborted => {}
            }
            for (member, command) in commands {
                self.input(node, member, Input::Group(command));
            }
        }
    }

    /// What the node's sync group (if `index` is in one) makes of the action.
    fn group_commands(
        &self,
        node: NodeId,
        index: usize,
        action: &Action,
    ) -> Vec<(usize, GroupCommand)> {
        let Some(group) = self.nodes[node]
            .groups
            .iter()
            .find(|group| group.contains(&index))
        else {
            return Vec::new();
        };
        let members: Vec<&VirtualRouter> = group
            .iter()
            .filter_map(|&member| self.nodes[node].routers[member].router.as_ref())
            .collect();
        if members.len() != group.len() {
            return Vec::new();
        }
        let Some(position) = group.iter().position(|&member| member == index) else {
            return Vec::new();
        };
        sync_group::react(&members, position, action)
            .into_iter()
            .map(|(position, command)| (group[position], command))
            .collect()
    }

    /// Make `vrids` on `node` a sync group (keepalived's vrrp_sync_group).
    pub fn add_group(&mut self, node: NodeId, vrids: &[u8]) {
        let members: Vec<usize> = vrids
            .iter()
            .filter_map(|vrid| {
                self.nodes[node]
                    .routers
                    .iter()
                    .position(|entry| entry.config.vrid == *vrid)
            })
            .collect();
        for &member in &members {
            let entry = &mut self.nodes[node].routers[member];
            entry.config.sync_member = true;
            entry.router = Some(VirtualRouter::new(entry.config.clone()));
        }
        self.nodes[node].groups.push(members);
    }

    fn transmit(&mut self, from: NodeId, adv: &packet::Advertisement) {
        self.stats.adverts_sent += 1;
        let sender = &self.nodes[from];
        if !sender.link_up {
            return;
        }
        let src = sender.address;
        let dst = match Family::of(&src) {
            Family::Ipv4 => MULTICAST_V4,
            Family::Ipv6 => MULTICAST_V6,
        };
        let bytes = match packet::encode(adv, Endpoints { src, dst }, self.checksum_mode) {
            Ok(bytes) => bytes,
            Err(error) => {
                let line = format!("{}: cannot encode advert: {error}", sender.name);
                self.note(&line);
                return;
            }
        };
        let group = sender.group;
        for to in 0..self.nodes.len() {
            // Multicast loop is off on a real VRRP socket: a node never hears itself.
            if to == from || self.nodes[to].group != group {
                continue;
            }
            if self.loss_percent > 0 && self.rng.chance(self.loss_percent) {
                self.stats.lost += 1;
                continue;
            }
            let latency = self.rng.duration(self.latency.0, self.latency.1);
            let seq = self.next_seq;
            self.next_seq += 1;
            self.in_flight.push(Reverse(InFlight {
                at: self.now + latency,
                seq,
                to,
                endpoints_src: src,
                endpoints_dst: dst,
                bytes: bytes.clone(),
            }));
        }
    }

    fn input_all(&mut self, node: NodeId, input: Input) {
        for index in 0..self.nodes[node].routers.len() {
            self.input(node, index, input.clone());
        }
    }

    fn input(&mut self, node: NodeId, index: usize, input: Input) {
        let now = self.now;
        if let Some(router) = self.nodes[node].routers[index].router.as_mut() {
            router.handle(input, now);
        }
        self.drain_actions(node, index);
    }

    fn note(&mut self, line: &str) {
        let elapsed = self.elapsed();
        let _ = writeln!(self.timeline, "{:>9.3}s  {line}", elapsed.as_secs_f64());
    }

    // ===== disruptions =====

    /// kill -9: the routers vanish mid-state; configured VIPs stay on the host.
    pub fn crash(&mut self, node: NodeId) {
        let name = self.nodes[node].name.clone();
        self.note(&format!("{name} crashed"));
        let entry = &mut self.nodes[node];
        entry.alive = false;
        for sim_router in &mut entry.routers {
            sim_router.router = None;
        }
    }

    /// Start a crashed node again: stale VIPs are removed first (as the daemon does at
    /// start), then fresh routers get Startup.
    pub fn restart(&mut self, node: NodeId) {
        let name = self.nodes[node].name.clone();
        self.note(&format!("{name} restarted"));
        let entry = &mut self.nodes[node];
        entry.alive = true;
        entry.stopping = false;
        let link_up = entry.link_up;
        for sim_router in &mut entry.routers {
            sim_router.holds_vips = false;
            let mut router = VirtualRouter::new(sim_router.config.clone());
            router.handle(Input::Link { up: link_up }, self.now);
            sim_router.router = Some(router);
        }
        for index in 0..self.nodes[node].routers.len() {
            self.drain_actions(node, index);
        }
        self.input_all(node, Input::Startup);
    }

    /// Graceful stop: Shutdown to every router (priority 0 from a Master, which keeps its
    /// VIPs until it hears the new Master); the node is gone once all have stopped.
    pub fn stop(&mut self, node: NodeId) {
        self.nodes[node].stopping = true;
        self.input_all(node, Input::Shutdown);
        self.finish_stop(node);
    }

    fn finish_stop(&mut self, node: NodeId) {
        let entry = &self.nodes[node];
        let stopped = entry.routers.iter().all(|r| {
            r.router
                .as_ref()
                .is_none_or(|router| router.state() == State::Initialize)
        });
        if entry.stopping && entry.alive && stopped {
            self.nodes[node].stopping = false;
            self.crash(node);
        }
    }

    /// Feed a health verdict to `node`'s router for `vrid`.
    pub fn set_priority(&mut self, node: NodeId, vrid: u8, verdict: EffectivePriority) {
        let name = self.nodes[node].name.clone();
        self.note(&format!(
            "{name} vrid {vrid}: effective priority {verdict:?}"
        ));
        if let Some(index) = self.nodes[node]
            .routers
            .iter()
            .position(|entry| entry.config.vrid == vrid)
        {
            self.input(node, index, Input::PriorityChanged(verdict));
        }
    }

    /// Cable pulled or restored: no packets in or out, and the routers see the link event.
    pub fn set_link(&mut self, node: NodeId, up: bool) {
        let name = self.nodes[node].name.clone();
        self.note(&format!("{name} link {}", if up { "up" } else { "down" }));
        self.nodes[node].link_up = up;
        if self.nodes[node].alive {
            self.input_all(node, Input::Link { up });
        }
    }

    /// Split the segment: `group_of[node]` names each node's side.
    pub fn partition(&mut self, group_of: &[u32]) {
        self.note(&format!("partition {group_of:?}"));
        for (node, group) in self.nodes.iter_mut().zip(group_of) {
            node.group = *group;
        }
    }

    pub fn heal(&mut self) {
        self.note("partition healed");
        for node in &mut self.nodes {
            node.group = 0;
        }
    }

    /// Drop each packet with probability `percent`/100 from now on.
    pub fn set_loss(&mut self, percent: u64) {
        self.note(&format!("loss {percent}%"));
        self.loss_percent = percent.min(100);
    }

    /// Every router's settings, state and deadline, for failure reports.
    pub fn describe(&self) -> String {
        let mut text = String::new();
        for node in &self.nodes {
            for entry in &node.routers {
                let config = &entry.config;
                let _ = write!(
                    text,
                    "{} {} vrid {} {:?} prio {} interval {} preempt {} fast {} delay {:?}",
                    node.name,
                    node.address,
                    config.vrid,
                    config.version,
                    config.priority,
                    config.advert_interval,
                    config.preempt,
                    config.fast_preempt,
                    config.preempt_delay,
                );
                match &entry.router {
                    Some(router) => {
                        let deadline = router.poll_timeout().map(|at| at - self.start);
                        let _ = writeln!(
                            text,
                            ": {} eff {} deadline {deadline:?}",
                            router.state(),
                            router.effective_priority()
                        );
                    }
                    None => text.push_str(": crashed\n"),
                }
            }
        }
        text
    }

    // ===== invariants =====

    /// No live router holds its VIPs outside Master, and every Master holds them.
    pub fn check_vips_follow_state(&self) -> Result<(), String> {
        for node in &self.nodes {
            if !node.alive {
                continue;
            }
            for entry in &node.routers {
                let Some(router) = entry.router.as_ref() else {
                    continue;
                };
                let master = router.state() == State::Master;
                if master != entry.holds_vips {
                    return Err(format!(
                        "{} vrid {}: state {} but VIPs {}",
                        node.name,
                        entry.config.vrid,
                        router.state(),
                        if entry.holds_vips { "held" } else { "not held" }
                    ));
                }
            }
        }
        Ok(())
    }
}
