//! The daemon: one event loop that owns every virtual router and drives the network.
//!
//! ```text
//!  rx task per socket --Event::Advert (decoded)--+
//!  netlink monitor ----Event::Link/Address-------+--> loop: routers --SendAdvert--> VrrpSocket::send
//!  signals ------------Event::Stop/Reload--------+      |
//!  VIP worker ---------Event::VipsChanged--------+      +--Add/Remove/Announce--> VIP worker
//!                                                          (netlink, in order) --> announcer (GARP/NA)
//! ```
//!
//! Owns start-up (stale VIPs removed, sockets opened, routers started), the loop, and the
//! graceful stop. Everything runs on one thread (a tokio `LocalSet`); the loop's only await
//! is the `select!` over its inputs and the routers' next deadline, and timers win over
//! events (`biased`), so an advert is never late because of a packet flood, netlink, an
//! announcement or a log write. Tasks send [`Event`]s; only the loop touches a router.

pub mod announcer;
mod control;
pub mod counters;
mod drop_log;
pub mod event;
pub mod instance;
mod reload;
pub mod rx;
pub mod vip_worker;

use std::collections::HashMap;
use std::net::IpAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use thiserror::Error;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::task::LocalSet;
use tracing::{debug, error, info, warn};

use self::announcer::AnnounceCommand;
use self::counters::Counters;
use self::drop_log::DropLog;
use self::event::{Event, InstanceId, SocketId};
use self::instance::{InstanceRuntime, InstanceTrack};
use self::vip_worker::VipCommand;
use crate::config::{CheckKind, Config};
use crate::control::status::{HookStatus, TransitionStatus};
use crate::health::runner::HealthEvent;
use crate::health::score::{self, Track};
use crate::health::tracker::Tracker;
use crate::health::ProbeOutcome;
use crate::net::linux::netlink::{Netlink, NetlinkError, NetlinkEvent};
use crate::net::linux::vrrp_socket::{SocketError, VrrpSocket};
use crate::notify::runner::Notifier;
use crate::notify::{HookReport, HookState, Notification, Scope};
use crate::vrrp::action::{AnnounceReason, DiscardReason};
use crate::vrrp::packet::{self, Endpoints};
use crate::vrrp::{sync_group, Action, EffectivePriority, Family, GroupCommand, Input, State};

/// How long a graceful stop may wait for the VIPs to be removed.
const SHUTDOWN_BUDGET: Duration = Duration::from_secs(5);
/// At most one warning about odd adverts per instance per period.
const WARNING_PERIOD: Duration = Duration::from_secs(60);

/// Why the daemon could not start or had to stop. All are faults of the host's setup
/// (a missing interface, no permission), reported with exit code 2.
#[derive(Debug, Error)]
pub enum DaemonError {
    #[error("cannot start the runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("netlink: {0}")]
    Netlink(#[from] NetlinkError),
    #[error("instance {instance}: interface {interface}: {source}")]
    Interface {
        instance: String,
        interface: String,
        source: NetlinkError,
    },
    #[error("instance {instance}: VRRP socket on {interface}: {source}")]
    Socket {
        instance: String,
        interface: String,
        source: SocketError,
    },
    #[error("cannot install signal handlers: {0}")]
    Signals(#[source] std::io::Error),
    #[error("cannot start the health checks: {0}")]
    Health(#[source] std::io::Error),
    #[error("metrics on {address}: {source}")]
    Metrics {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("control socket {path}: {source}")]
    Control {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl CheckRuntime {
    fn new(check: &crate::config::Check, tracker: Tracker) -> CheckRuntime {
        CheckRuntime {
            name: check.name.clone(),
            kind: check.kind.type_name(),
            tracker,
            last_result: None,
            latency: crate::control::status::Histogram::with_bounds(
                crate::control::status::LATENCY_BOUNDS,
            ),
            runs: 0,
            failures: 0,
            interface: match &check.kind {
                CheckKind::Interface { interface } => Some(interface.clone()),
                _ => None,
            },
        }
    }
}

/// Start the health thread for `checks` and forward its results to the loop; the
/// forwarder's handle, so a reload can stop listening to an old thread.
fn start_health(
    checks: Vec<crate::config::Check>,
    events: UnboundedSender<Event>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let (health_tx, mut health_rx) = mpsc::unbounded_channel::<HealthEvent>();
    crate::health::runner::start(checks, health_tx)?;
    Ok(tokio::task::spawn_local(async move {
        while let Some(event) = health_rx.recv().await {
            if events.send(Event::Health(event)).is_err() {
                return;
            }
        }
    }))
}

/// The sync groups of `config` over the running (not retired) instances, keeping the
/// state hooks last saw of groups that already existed.
fn build_groups(
    config: &Config,
    instances: &[InstanceRuntime],
    previous: &[GroupRuntime],
) -> Vec<GroupRuntime> {
    config
        .groups
        .iter()
        .map(|group| GroupRuntime {
            name: group.name.clone(),
            members: group
                .instances
                .iter()
                .filter_map(|name| {
                    instances
                        .iter()
                        .position(|i| !i.retired && &i.config.name == name)
                })
                .collect(),
            notify: std::sync::Arc::new(group.notify.clone()),
            state: previous
                .iter()
                .find(|old| old.name == group.name)
                .and_then(|old| old.state),
        })
        .collect()
}

/// A sync group at run time.
struct GroupRuntime {
    name: String,
    /// Member instances, by index.
    members: Vec<InstanceId>,
    notify: std::sync::Arc<crate::notify::HookSet>,
    /// The group's state as hooks last saw it.
    state: Option<State>,
}

/// A configured check at run time: its debounced state.
struct CheckRuntime {
    name: String,
    /// The check's `type`.
    kind: &'static str,
    tracker: Tracker,
    last_result: Option<String>,
    latency: crate::control::status::Histogram,
    runs: u64,
    failures: u64,
    /// For interface checks: the interface whose link state is the result.
    interface: Option<String>,
}

/// Run the daemon until SIGTERM or SIGINT; SIGHUP re-reads `config_path`.
pub fn run(config: Config, config_path: &std::path::Path) -> Result<(), DaemonError> {
    let config_path = config_path.to_path_buf();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(DaemonError::Runtime)?;
    LocalSet::new().block_on(&runtime, async move {
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let daemon = Daemon::start(config, config_path, events_tx).await?;
        daemon.run(events_rx).await;
        Ok(())
    })
}

/// The loop's clock: tokio's, so tests on a paused clock see the same time.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

struct SocketEntry {
    interface: String,
    family: Family,
    /// The configured `unicast_source`, part of the socket's identity.
    bound_source: Option<IpAddr>,
    socket: Rc<VrrpSocket>,
}

struct Daemon {
    instances: Vec<InstanceRuntime>,
    sockets: Vec<SocketEntry>,
    /// Last known state of every tracked interface.
    link_up: HashMap<String, bool>,
    vip_commands: UnboundedSender<VipCommand>,
    vip_worker: tokio::task::JoinHandle<()>,
    counters: Counters,
    /// Rate-limits the warnings about dropped packets (the counts are in `counters`).
    drop_log: DropLog,
    checks: Vec<CheckRuntime>,
    groups: Vec<GroupRuntime>,
    /// Shared with the VIP worker, which starts hooks in queue order.
    notifier: Rc<Notifier>,
    node_name: String,
    started: Instant,
    maintenance: bool,
    switchover_hold: Duration,
    /// The last run of each hook, by (scope, owner, state, hook).
    hooks: std::collections::BTreeMap<(String, String, String, String), HookStatus>,
    reloads: crate::control::status::ReloadStatus,
    /// The latest snapshot, for the metrics server.
    status: tokio::sync::watch::Sender<crate::control::status::Status>,
    /// The running configuration and where it came from, for reloads.
    config: Config,
    config_path: std::path::PathBuf,
    /// The loop's own event channel, for tasks started later (reload).
    events: UnboundedSender<Event>,
    /// Forwards the current health thread's results; replaced on reload.
    health_forward: Option<tokio::task::JoinHandle<()>>,
    /// systemd's notify socket, when started by systemd with Type=notify.
    systemd: Option<crate::systemd::SdNotify>,
}

impl Daemon {
    async fn start(
        config: Config,
        config_path: std::path::PathBuf,
        events: UnboundedSender<Event>,
    ) -> Result<Daemon, DaemonError> {
        info!(node = %config.global.node_name, instances = config.instances.len(), "starting");
        let config_copy = config.clone();
        let events_copy = events.clone();
        // The monitor is subscribed before link states are read, so no change between
        // the read and the subscription is lost.
        let monitor = Netlink::monitor()?;
        let netlink = Netlink::connect()?;
        for address in netlink.remove_stale_vips().await? {
            warn!(vip = %address, "removed a VIP left by a previous run");
        }

        let checks: Vec<CheckRuntime> = config
            .checks
            .iter()
            .map(|check| {
                let tracker = Tracker::new(check.rise, check.fall, check.init_fail);
                CheckRuntime::new(check, tracker)
            })
            .collect();
        let check_index = |name: &str| checks.iter().position(|check| check.name == name);

        let mut daemon_sockets: Vec<SocketEntry> = Vec::new();
        let mut link_up = HashMap::new();
        let mut instances = Vec::new();
        for instance in config.instances {
            let key = (
                &instance.interface,
                instance.family,
                instance.unicast_source,
            );
            let existing = daemon_sockets
                .iter()
                .position(|entry| (&entry.interface, entry.family, entry.bound_source) == key);
            let socket_id = match existing {
                Some(id) => id,
                None => {
                    let socket = VrrpSocket::open(
                        &instance.interface,
                        instance.family,
                        instance.unicast_source,
                    )
                    .map_err(|source| DaemonError::Socket {
                        instance: instance.name.clone(),
                        interface: instance.interface.clone(),
                        source,
                    })?;
                    daemon_sockets.push(SocketEntry {
                        interface: instance.interface.clone(),
                        family: instance.family,
                        bound_source: instance.unicast_source,
                        socket: Rc::new(socket),
                    });
                    daemon_sockets.len() - 1
                }
            };
            let primary = daemon_sockets[socket_id].socket.source();
            // Validation guarantees every tracked check exists. A sync group's tracks
            // apply to each of its members.
            let group = config
                .groups
                .iter()
                .find(|group| group.instances.contains(&instance.name));
            let group_tracks = group
                .map(|group| group.tracks.as_slice())
                .unwrap_or_default();
            let tracks = instance
                .tracks
                .iter()
                .chain(group_tracks)
                .filter_map(|track| {
                    Some(InstanceTrack {
                        check: check_index(&track.check)?,
                        weight: track.weight,
                        reverse: track.reverse,
                    })
                })
                .collect();
            let runtime =
                InstanceRuntime::new(instance, socket_id, primary, tracks, group.is_some());
            for interface in &runtime.tracked_interfaces {
                if link_up.contains_key(interface) {
                    continue;
                }
                let link =
                    netlink
                        .link(interface)
                        .await
                        .map_err(|source| DaemonError::Interface {
                            instance: runtime.config.name.clone(),
                            interface: interface.clone(),
                            source,
                        })?;
                link_up.insert(interface.clone(), link.up);
            }
            info!(instance = %runtime.config.name, vrid = runtime.config.vrid,
                iface = %runtime.config.interface, source = %primary,
                priority = runtime.config.priority, "instance configured");
            instances.push(runtime);
        }

        // Interface checks start from the link state read now; the monitor updates them.
        let mut checks = checks;
        for check in &mut checks {
            let Some(interface) = &check.interface else {
                continue;
            };
            let outcome = match netlink.link(interface).await {
                Ok(link) if link.up => ProbeOutcome::Up,
                Ok(_) => ProbeOutcome::down(format!("{interface} is down")),
                Err(error) => ProbeOutcome::down(error.to_string()),
            };
            check.tracker.record(&outcome);
        }
        let groups = build_groups(&config_copy, &instances, &[]);
        let (reports_tx, mut reports_rx) = mpsc::unbounded_channel::<HookReport>();
        let notifier = Rc::new(Notifier::start(reports_tx).map_err(DaemonError::Health)?);
        let forward = events.clone();
        tokio::task::spawn_local(async move {
            while let Some(report) = reports_rx.recv().await {
                if forward.send(Event::Hook(report)).is_err() {
                    return;
                }
            }
        });
        let (status_tx, status_rx) =
            tokio::sync::watch::channel(crate::control::status::Status::default());
        if let Some(listen) = config.global.metrics_listen {
            // Bound now so that a port in use stops the start with a clear error.
            let listener =
                std::net::TcpListener::bind(listen).map_err(|source| DaemonError::Metrics {
                    address: listen.to_string(),
                    source,
                })?;
            info!(%listen, "metrics on /metrics and /healthz");
            tokio::task::spawn_local(async move {
                if let Err(error) =
                    crate::control::metrics::serve_listener(listener, status_rx).await
                {
                    error!(%error, "the metrics server stopped");
                }
            });
        }
        let health_forward =
            start_health(config.checks.clone(), events.clone()).map_err(DaemonError::Health)?;

        // Tasks: receive per socket, the netlink monitor, signals, the VIP worker and the
        // announcer behind it.
        for (id, entry) in daemon_sockets.iter().enumerate() {
            let modes = instances
                .iter()
                .filter(|instance| instance.socket == id)
                .map(|instance| (instance.config.vrid, instance.config.checksum_mode))
                .collect();
            let task = rx::receive(id, Rc::clone(&entry.socket), modes, events.clone());
            tokio::task::spawn_local(task);
        }
        tokio::task::spawn_local(forward_netlink(monitor, events.clone()));
        spawn_signals(events.clone())?;
        // The control socket: a second daemon must not steal a live one's socket, so a
        // failure here stops the start.
        let listener =
            crate::control::socket::bind(&config.global.control_socket).map_err(|source| {
                DaemonError::Control {
                    path: config.global.control_socket.display().to_string(),
                    source,
                }
            })?;
        let (requests_tx, mut requests_rx) = mpsc::unbounded_channel();
        tokio::task::spawn_local(crate::control::socket::serve(listener, requests_tx));
        let forward = events.clone();
        tokio::task::spawn_local(async move {
            while let Some((request, reply)) = requests_rx.recv().await {
                if forward.send(Event::Control { request, reply }).is_err() {
                    return;
                }
            }
        });
        let (announce_tx, announce_rx) = mpsc::unbounded_channel::<AnnounceCommand>();
        tokio::task::spawn_local(announcer::run(announce_rx));
        let (vip_tx, vip_rx) = mpsc::unbounded_channel();
        let vip_worker = tokio::task::spawn_local(vip_worker::run(
            netlink,
            vip_rx,
            announce_tx,
            Rc::clone(&notifier),
            events,
        ));

        let mut daemon = Daemon {
            instances,
            sockets: daemon_sockets,
            link_up,
            vip_commands: vip_tx,
            vip_worker,
            counters: Counters::default(),
            drop_log: DropLog::default(),
            checks,
            groups,
            notifier,
            node_name: config.global.node_name.clone(),
            started: Instant::now(),
            maintenance: false,
            switchover_hold: config.global.switchover_hold,
            hooks: std::collections::BTreeMap::new(),
            reloads: crate::control::status::ReloadStatus::default(),
            status: status_tx,
            config: config_copy,
            config_path,
            events: events_copy,
            health_forward: Some(health_forward),
            systemd: crate::systemd::SdNotify::from_env(),
        };
        let now = now();
        for id in 0..daemon.instances.len() {
            let up = daemon.tracked_links_up(id);
            let priority = daemon.score(id);
            let instance = &mut daemon.instances[id];
            if !up {
                instance.router.handle(Input::Link { up: false }, now);
            }
            if priority != instance.priority {
                instance.priority = priority;
                instance
                    .router
                    .handle(Input::PriorityChanged(priority), now);
            }
            instance.router.handle(Input::Startup, now);
        }
        Ok(daemon)
    }

    async fn run(mut self, mut events: UnboundedReceiver<Event>) {
        let mut stopping = false;
        self.notify_systemd(|sd, count| sd.ready(&format!("{count} instances running")));
        // systemd's watchdog: pinged at half its interval, from the loop itself, so a
        // stuck loop is what gets the daemon restarted.
        let mut watchdog = crate::systemd::watchdog_interval().map(|interval| {
            let mut ticker = tokio::time::interval(interval / 2);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker
        });
        // The metrics snapshot is refreshed once a second; `status` builds a fresh one.
        let mut publish = tokio::time::interval(Duration::from_secs(1));
        publish.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            self.drain_actions();
            // A stop is complete once every router has stopped: a Master does so when it
            // hears the Backup that took over (make before break) or after its
            // Master_Down_Interval.
            if stopping && self.all_stopped() {
                break;
            }
            let deadline = self
                .instances
                .iter()
                .filter_map(|instance| instance.router.poll_timeout())
                .min();
            tokio::select! {
                biased;
                () = sleep_until(deadline) => {
                    let now = now();
                    for instance in &mut self.instances {
                        // A Master's due timer is its Adver_Timer: how late we are is
                        // what its advert will be.
                        if let Some(due) = instance.router.poll_timeout() {
                            let advertising = instance.router.state() == State::Master
                                && !instance.router.handing_over();
                            if advertising && due <= now {
                                instance.advert_lateness.observe((now - due).as_secs_f64());
                            }
                        }
                        instance.router.handle_timeout(now);
                    }
                }
                () = watchdog_tick(&mut watchdog) => {
                    self.notify_systemd(|sd, _| sd.watchdog());
                }
                _ = publish.tick() => {
                    // The tail of an attack is reported even if no further packet comes.
                    for summary in self.drop_log.flush(now()) {
                        warn_dropped(&summary);
                    }
                    let status = self.status();
                    self.status.send_replace(status);
                }
                event = events.recv() => match event {
                    Some(Event::Stop { signal }) if !stopping => {
                        info!(signal, "stopping: Masters hand over before removing their VIPs");
                        self.notify_systemd(|sd, _| sd.stopping());
                        stopping = true;
                        self.broadcast(Input::Shutdown);
                    }
                    Some(Event::Stop { signal }) => {
                        warn!(signal, "second stop signal: removing the VIPs now");
                        self.broadcast(Input::ShutdownNow);
                    }
                    Some(event) => self.handle(event),
                    None => {
                        stopping = true;
                        self.broadcast(Input::ShutdownNow);
                    }
                },
            }
        }
        self.stop().await;
    }

    /// Tell systemd something, if it listens; a failure is logged, never fatal.
    fn notify_systemd(
        &self,
        message: impl FnOnce(&crate::systemd::SdNotify, usize) -> std::io::Result<()>,
    ) {
        if let Some(sd) = &self.systemd {
            if let Err(error) = message(sd, self.instances.len()) {
                warn!(%error, socket = %sd.address(), "cannot notify systemd");
            }
        }
    }

    fn broadcast(&mut self, input: Input) {
        let now = now();
        for instance in &mut self.instances {
            instance.router.handle(input.clone(), now);
        }
    }

    fn all_stopped(&self) -> bool {
        self.instances
            .iter()
            .all(|instance| instance.router.state() == State::Initialize)
    }

    /// The end of a stop: every router has stopped (its VIPs queued for removal); wait for
    /// the VIP worker, then the STOP hooks, each bounded by [`SHUTDOWN_BUDGET`].
    async fn stop(mut self) {
        self.drain_actions();
        let Daemon {
            vip_commands,
            vip_worker,
            counters,
            notifier,
            ..
        } = self;
        info!(sent = counters.adverts_sent, received = counters.adverts_received,
            send_failures = counters.send_failures, dropped = ?counters.dropped, "advert counters");
        // Closing the queue lets the worker finish what is queued and return.
        drop(vip_commands);
        if tokio::time::timeout(SHUTDOWN_BUDGET, vip_worker)
            .await
            .is_err()
        {
            error!(budget = ?SHUTDOWN_BUDGET, "VIPs not removed in time; stopping anyway");
        }
        // STOP hooks last, once the VIPs are gone; blocking is fine now: nothing else on
        // this thread needs to run any more.
        notifier.drain(SHUTDOWN_BUDGET);
        info!("stopped");
    }

    fn handle(&mut self, event: Event) {
        let now = now();
        match event {
            Event::Advert {
                socket,
                src,
                dst,
                ttl,
                wire_vrid,
                result,
            } => self.receive(socket, src, dst, ttl, wire_vrid, result, now),
            Event::Unreadable { socket, error } => {
                self.count_drop(None, counters::UNREADABLE, now);
                let entry = &self.sockets[socket];
                debug!(iface = %entry.interface, %error, "unreadable packet dropped");
            }
            Event::ReceiveFailed { socket, error } => {
                let entry = &self.sockets[socket];
                warn!(iface = %entry.interface, %error, "receiving VRRP failed");
            }
            Event::Link { name, up } => {
                if self.link_up.get(&name) == Some(&up) {
                    return;
                }
                info!(iface = %name, up, "link changed");
                self.link_up.insert(name.clone(), up);
                let outcome = if up {
                    ProbeOutcome::Up
                } else {
                    ProbeOutcome::down(format!("{name} is down"))
                };
                let matching: Vec<usize> = (0..self.checks.len())
                    .filter(|&index| self.checks[index].interface.as_deref() == Some(name.as_str()))
                    .collect();
                for index in matching {
                    self.check_result(index, &outcome, now);
                }
                for id in 0..self.instances.len() {
                    if self.instances[id].tracked_interfaces.contains(&name) {
                        let up = self.tracked_links_up(id);
                        self.instances[id].router.handle(Input::Link { up }, now);
                    }
                }
            }
            Event::AddressRemoved { address } => self.address_removed(address),
            Event::VipsChanged {
                instance,
                added,
                failures,
            } => {
                if !failures.is_empty() {
                    let instance = &self.instances[instance].config.name;
                    error!(%instance, added, failures = ?failures, "VIP change incomplete");
                }
            }
            Event::Control { request, reply } => self.control(request, reply),
            Event::Health(event) => {
                if let Some(check) = self.checks.get_mut(event.check) {
                    check.runs += 1;
                    match &event.outcome {
                        ProbeOutcome::Down { reason } => {
                            check.failures += 1;
                            check.last_result = Some(reason.clone());
                        }
                        ProbeOutcome::Graded { detail, .. } => {
                            check.last_result = Some(detail.clone());
                        }
                        _ => check.last_result = None,
                    }
                    if !event.latency.is_zero() {
                        check.latency.observe(event.latency.as_secs_f64());
                    }
                }
                self.check_result(event.check, &event.outcome, now);
            }
            Event::Hook(report) => self.hook_report(report),
            Event::Reload => {
                info!("SIGHUP: reloading the configuration");
                let _ = self.reload();
            }
            Event::Stop { .. } => {}
        }
    }

    /// The running instance on `socket` with `vrid`, if any.
    fn instance_for(&self, socket: SocketId, vrid: u8) -> Option<InstanceId> {
        self.instances.iter().position(|instance| {
            !instance.retired && instance.socket == socket && instance.config.vrid == vrid
        })
    }

    /// Counts a dropped received packet: daemon-wide, on its instance when we know it
    /// (status and metrics show per-instance counts, and the unmatched ones apart), and in
    /// the rate-limited warning.
    fn count_drop(&mut self, instance: Option<InstanceId>, reason: &'static str, now: Instant) {
        self.counters.drop(reason);
        match instance {
            Some(id) => {
                counters::count_instance_drop(&mut self.instances[id].counters.dropped, reason)
            }
            None => *self.counters.unmatched.entry(reason).or_default() += 1,
        }
        if let Some(summary) = self.drop_log.record(reason, now) {
            warn_dropped(&summary);
        }
    }

    /// RFC 5798 §7.1 checks that need the socket's view (TTL, destination, unicast
    /// source), then the router's own.
    #[allow(clippy::too_many_arguments)]
    fn receive(
        &mut self,
        socket: SocketId,
        src: IpAddr,
        dst: IpAddr,
        ttl: u8,
        wire_vrid: Option<u8>,
        result: Result<packet::Advertisement, packet::DecodeError>,
        now: Instant,
    ) {
        let adv = match result {
            Ok(adv) => adv,
            Err(error) => {
                let id = wire_vrid.and_then(|vrid| self.instance_for(socket, vrid));
                self.count_drop(id, error.kind(), now);
                debug!(from = %src, %error, "malformed VRRP packet dropped");
                return;
            }
        };
        self.counters.adverts_received += 1;
        let Some(id) = self.instance_for(socket, adv.vrid) else {
            self.count_drop(None, counters::UNKNOWN_VRID, now);
            debug!(from = %src, vrid = adv.vrid, "advert for a VRID not configured here");
            return;
        };
        let instance = &mut self.instances[id];
        instance.counters.adverts_received += 1;
        if adv.priority == 0 {
            instance.counters.priority_zero_received += 1;
        }
        let refused = if instance.is_unicast() {
            // keepalived's check_unicast_src: only listed peers; TTL is not checked in
            // unicast mode (peers may be routed), and multicast adverts are not ours.
            let listed = instance.config.unicast_peers.contains(&src);
            (!listed || dst.is_multicast()).then_some(counters::UNLISTED_PEER)
        } else if ttl != 255 {
            // RFC 5798 §7.1: "MUST verify that the IPvX TTL/HL is 255".
            Some(counters::TTL_NOT_255)
        } else if !dst.is_multicast() {
            // A multicast instance also rejects unicast adverts (keepalived).
            Some(counters::NOT_TO_GROUP)
        } else {
            None
        };
        if let Some(reason) = refused {
            self.count_drop(Some(id), reason, now);
            let name = &self.instances[id].config.name;
            debug!(instance = %name, from = %src, ttl, %dst, reason, "advert dropped");
            return;
        }
        let instance = &mut self.instances[id];
        instance.router.handle(Input::Advert { src, adv }, now);
    }

    /// keepalived restores a VIP deleted by hand while Master (without `no_track` it
    /// would go Backup; restoring keeps the service up).
    fn address_removed(&mut self, address: IpAddr) {
        for (id, instance) in self.instances.iter().enumerate() {
            if instance.router.state() != State::Master {
                continue;
            }
            let Some(vip) = instance
                .config
                .vips
                .iter()
                .find(|vip| vip.address == address)
            else {
                continue;
            };
            if self.link_up.get(&vip.dev) != Some(&true) {
                continue;
            }
            warn!(instance = %instance.config.name, vip = %vip, "VIP removed while Master; restoring");
            let target = announcer::Target {
                interface: vip.dev.clone(),
                address,
            };
            self.queue(VipCommand::Add {
                instance: id,
                vips: vec![vip.clone()],
            });
            self.queue(VipCommand::Announce(AnnounceCommand::Burst {
                instance: id,
                targets: vec![target],
                repeat: instance.config.garp.master_repeat,
                again_after: Vec::new(),
            }));
        }
    }

    /// A hook finished (the notify thread has logged it): keep it for status and metrics.
    fn hook_report(&mut self, report: HookReport) {
        let key = (
            report.scope.to_string(),
            report.owner.clone(),
            report.state.to_string(),
            report.hook.clone(),
        );
        let entry = self.hooks.entry(key).or_default();
        entry.scope = report.scope.to_string();
        entry.owner = report.owner;
        entry.state = report.state.to_string();
        entry.hook = report.hook;
        entry.ok = report.result.is_ok();
        entry.detail = match report.result {
            Ok(note) => note,
            Err(why) => why,
        };
        entry.duration_seconds = report.duration.as_secs_f64();
        entry.at_unix_ms = control::unix_ms();
        if entry.ok {
            entry.succeeded += 1;
        } else {
            entry.failed += 1;
        }
    }

    /// A check result: debounce it, and when the check's view changes, recompute the
    /// priority of every instance tracking it. A new priority reaches the router at once,
    /// so a Master advertises it without waiting for its next interval.
    fn check_result(&mut self, index: usize, outcome: &ProbeOutcome, now: Instant) {
        let Some(check) = self.checks.get_mut(index) else {
            return;
        };
        let before = check.tracker.view().state;
        if !check.tracker.record(outcome) {
            return;
        }
        let after = check.tracker.view().state;
        if before != after {
            let reason = match outcome {
                ProbeOutcome::Down { reason } => reason.as_str(),
                _ => "",
            };
            info!(check = %check.name, state = ?after, reason, "check changed");
        }
        for id in 0..self.instances.len() {
            if !self.instances[id]
                .tracks
                .iter()
                .any(|track| track.check == index)
            {
                continue;
            }
            let priority = self.score(id);
            let instance = &mut self.instances[id];
            if priority != instance.priority {
                info!(instance = %instance.config.name, from = ?instance.priority,
                    to = ?priority, "effective priority changed");
                instance.priority = priority;
                instance
                    .router
                    .handle(Input::PriorityChanged(priority), now);
            }
        }
    }

    /// The instance's effective priority from its tracks' current views.
    fn score(&self, id: InstanceId) -> EffectivePriority {
        let instance = &self.instances[id];
        let tracks: Vec<Track> = instance
            .tracks
            .iter()
            .map(|track| Track {
                weight: track.weight,
                reverse: track.reverse,
                view: self.checks[track.check].tracker.view(),
            })
            .collect();
        score::effective_priority(instance.config.priority, &tracks)
    }

    fn tracked_links_up(&self, id: InstanceId) -> bool {
        self.instances[id]
            .tracked_interfaces
            .iter()
            .all(|interface| self.link_up.get(interface) == Some(&true))
    }

    /// Carry out every router's actions, and the sync-group moves they cause, until no
    /// router has anything left (bounded: a group's moves settle in a few rounds).
    fn drain_actions(&mut self) {
        for _round in 0..64 {
            let mut any = false;
            for id in 0..self.instances.len() {
                while let Some(action) = self.instances[id].router.poll_action() {
                    any = true;
                    let commands = self.group_commands(id, &action);
                    let config = &self.instances[id].config;
                    let span = tracing::info_span!(
                        "instance",
                        instance = %config.name,
                        vrid = config.vrid,
                        iface = %config.interface
                    )
                    .entered();
                    self.act(id, action);
                    drop(span);
                    let now = now();
                    for (member, command) in commands {
                        self.instances[member]
                            .router
                            .handle(Input::Group(command), now);
                    }
                }
            }
            if !any {
                self.notify_groups();
                return;
            }
        }
        error!("sync-group moves did not settle; some actions wait for the next event");
    }

    /// A group's state as its hooks see it: MASTER when every member is, FAULT when one
    /// is, STOP once stopped, BACKUP otherwise; hooks run when it changes.
    fn notify_groups(&mut self) {
        for group in &mut self.groups {
            let states: Vec<State> = group
                .members
                .iter()
                .map(|&member| self.instances[member].router.state())
                .collect();
            let state = if states.iter().all(|s| *s == State::Master) {
                State::Master
            } else if states.contains(&State::Fault) {
                State::Fault
            } else if states.iter().all(|s| *s == State::Initialize) {
                State::Initialize
            } else {
                State::Backup
            };
            if group.state == Some(state) || (group.state.is_none() && state == State::Initialize) {
                continue;
            }
            let from = group.state.map_or("INIT".to_owned(), |s| s.to_string());
            group.state = Some(state);
            info!(group = %group.name, %from, to = %hook_state(state), "sync group changed");
            if group.notify.is_empty() {
                continue;
            }
            let vips = group
                .members
                .iter()
                .flat_map(|&member| self.instances[member].config.vips.iter())
                .map(ToString::to_string)
                .collect();
            let notification = Notification {
                scope: Scope::Group,
                name: group.name.clone(),
                state: hook_state(state),
                prev_state: from,
                // keepalived passes 0 as a group's priority.
                priority: 0,
                vips,
                reason: "sync group".to_owned(),
            };
            queue(
                &self.vip_commands,
                VipCommand::Notify(std::sync::Arc::clone(&group.notify), notification),
            );
        }
    }

    /// What the instance's sync group, if any, makes of one of its actions.
    fn group_commands(&self, id: InstanceId, action: &Action) -> Vec<(InstanceId, GroupCommand)> {
        let Some(group) = self.groups.iter().find(|group| group.members.contains(&id)) else {
            return Vec::new();
        };
        let members: Vec<&crate::vrrp::VirtualRouter> = group
            .members
            .iter()
            .map(|&member| &self.instances[member].router)
            .collect();
        let Some(position) = group.members.iter().position(|&member| member == id) else {
            return Vec::new();
        };
        sync_group::react(&members, position, action)
            .into_iter()
            .map(|(position, command)| (group.members[position], command))
            .collect()
    }

    fn act(&mut self, id: InstanceId, action: Action) {
        // Disjoint field borrows: the instance is changed while commands are queued.
        let vip_commands = &self.vip_commands;
        let queue = |command| queue(vip_commands, command);
        let counters = &mut self.counters;
        let drop_log = &mut self.drop_log;
        let instance = &mut self.instances[id];
        let name = &instance.config.name;
        match action {
            Action::SendAdvert(adv) => {
                let socket = &self.sockets[instance.socket].socket;
                let src = socket.source();
                for &dst in &instance.destinations {
                    let endpoints = Endpoints { src, dst };
                    let sent = packet::encode(&adv, endpoints, instance.config.checksum_mode)
                        .map_err(|error| error.to_string())
                        .and_then(|bytes| {
                            socket.send(&bytes, dst).map_err(|error| error.to_string())
                        });
                    match sent {
                        Ok(()) => {
                            counters.adverts_sent += 1;
                            instance.counters.adverts_sent += 1;
                            if adv.priority == 0 {
                                instance.counters.priority_zero_sent += 1;
                            }
                        }
                        Err(error) => {
                            counters.send_failures += 1;
                            warn!(instance = %name, %dst, %error, "advert not sent");
                        }
                    }
                }
                if adv.priority == 0 {
                    info!(instance = %name, "sent priority 0: handing over");
                }
            }
            Action::AddVips => {
                instance.holds_vips = true;
                let vips = instance.config.vips.clone();
                queue(VipCommand::Add { instance: id, vips });
            }
            Action::RemoveVips => {
                instance.holds_vips = false;
                let vips = instance.config.vips.clone();
                queue(VipCommand::Announce(AnnounceCommand::Stop { instance: id }));
                queue(VipCommand::Remove { instance: id, vips });
            }
            Action::Announce(reason) => {
                let targets = instance.announce_targets();
                let garp = instance.config.garp;
                let command = match reason {
                    AnnounceReason::BecameMaster => AnnounceCommand::Start {
                        instance: id,
                        targets,
                        garp,
                    },
                    AnnounceReason::LowerPriorityHeard => AnnounceCommand::Burst {
                        instance: id,
                        targets,
                        repeat: garp.lower_prio_repeat,
                        again_after: lower_priority_follow_ups(
                            instance.config.advert_interval.as_duration(),
                        ),
                    },
                };
                queue(VipCommand::Announce(command));
            }
            Action::Transition { from, to, reason } => {
                info!(instance = %name, vrid = instance.config.vrid,
                    iface = %instance.config.interface, %from, %to, %reason, "transition");
                instance.counters.transitions += 1;
                if to == State::Master {
                    instance.counters.became_master += 1;
                }
                if from == State::Master {
                    instance.counters.released_master += 1;
                }
                instance.last_transition = Some(TransitionStatus {
                    from: from.to_string(),
                    to: to.to_string(),
                    reason: reason.to_string(),
                    at_unix_ms: control::unix_ms(),
                });
                if reason == crate::vrrp::Reason::Switchover {
                    if let Some(reply) = instance.pending_switchover.take() {
                        let to = instance
                            .router
                            .master_address()
                            .map_or("the peer".to_owned(), |a| a.to_string());
                        let _ = reply.send(crate::control::protocol::Response::ok(format!(
                            "{name} handed over to {to}; it will not preempt until \
                             `vipkeeper resume {name}`"
                        )));
                    }
                }
                if !instance.config.notify.is_empty() {
                    let priority = match instance.priority {
                        EffectivePriority::Value(value) => value,
                        EffectivePriority::Fault => 0,
                    };
                    let notification = Notification {
                        scope: Scope::Instance,
                        name: name.clone(),
                        state: hook_state(to),
                        prev_state: from.to_string(),
                        priority,
                        vips: instance.vip_strings(),
                        reason: reason.to_string(),
                    };
                    queue(VipCommand::Notify(
                        std::sync::Arc::clone(&instance.notify),
                        notification,
                    ));
                }
            }
            Action::Discard { from, reason } => {
                counters.drop(reason.kind());
                counters::count_instance_drop(&mut instance.counters.dropped, reason.kind());
                // Routine while a lower Master runs and we wait to preempt.
                if !matches!(reason, DiscardReason::LowerPriority { .. }) {
                    if let Some(summary) = drop_log.record(reason.kind(), now()) {
                        warn_dropped(&summary);
                    }
                    debug!(instance = %name, %from, ?reason, "advert discarded");
                }
            }
            Action::HandoverAborted => {
                warn!(instance = %name, "switchover called off: no peer took over; still MASTER");
                if let Some(reply) = instance.pending_switchover.take() {
                    let _ = reply.send(crate::control::protocol::Response::refused(format!(
                        "no healthy peer took over {name} within its Master_Down_Interval; it \
                         is still MASTER and kept its VIPs"
                    )));
                }
            }
            Action::WantMaster => {
                info!(instance = %name, "ready to become MASTER; waiting for its sync group");
            }
            Action::Warn { from, warning } => {
                let due = instance
                    .last_warning
                    .is_none_or(|last| last.elapsed() >= WARNING_PERIOD);
                if due {
                    instance.last_warning = Some(Instant::now());
                    warn!(instance = %name, %from, ?warning, "advert differs from our configuration");
                }
            }
        }
    }

    fn queue(&self, command: VipCommand) {
        queue(&self.vip_commands, command);
    }
}

fn queue(vip_commands: &UnboundedSender<VipCommand>, command: VipCommand) {
    if vip_commands.send(command).is_err() {
        error!("the VIP worker has stopped; VIP changes are no longer applied");
    }
}

/// The hook state for a router state; Initialize is only reached by stopping.
fn hook_state(state: State) -> HookState {
    match state {
        State::Master => HookState::Master,
        State::Backup => HookState::Backup,
        State::Fault => HookState::Fault,
        State::Initialize => HookState::Stop,
    }
}

async fn watchdog_tick(ticker: &mut Option<tokio::time::Interval>) {
    match ticker {
        Some(ticker) => {
            ticker.tick().await;
        }
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

async fn forward_netlink(
    mut monitor: impl futures::Stream<Item = NetlinkEvent> + Unpin,
    events: UnboundedSender<Event>,
) {
    while let Some(event) = monitor.next().await {
        let event = match event {
            NetlinkEvent::Link { name, up, .. } => Event::Link { name, up },
            NetlinkEvent::AddressRemoved { address, .. } => Event::AddressRemoved { address },
            NetlinkEvent::AddressAdded { .. } => continue,
        };
        if events.send(event).is_err() {
            return;
        }
    }
    error!("the netlink monitor ended; link changes are no longer seen");
}

fn spawn_signals(events: UnboundedSender<Event>) -> Result<(), DaemonError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;
    let mut hangup = signal(SignalKind::hangup()).map_err(DaemonError::Signals)?;
    tokio::task::spawn_local(async move {
        loop {
            let event = tokio::select! {
                _ = terminate.recv() => Event::Stop { signal: "SIGTERM" },
                _ = interrupt.recv() => Event::Stop { signal: "SIGINT" },
                _ = hangup.recv() => Event::Reload,
            };
            if events.send(event).is_err() {
                return;
            }
        }
    });
    Ok(())
}

/// The operator's line about dropped packets (rate-limited by `DropLog`); the per-packet
/// detail stays at debug level.
fn warn_dropped(summary: &drop_log::Summary) {
    warn!(
        reason = summary.reason,
        count = summary.count,
        period = ?drop_log::PERIOD,
        "received VRRP packets dropped (at most one line per reason per period)"
    );
}

/// When a Master hears a lower priority, the other node has just become Master and sent
/// its own gratuitous ARP / NA burst, after its advert and a netlink round trip, so often
/// after our answer to that advert. If it then hears us and steps down, hosts are left
/// pointing at it until their caches expire (seen in the 50% loss lab test). Announcing
/// again once the other node's burst is surely out (50 ms) and once more at the next
/// advert repairs that; a step-down cancels both.
fn lower_priority_follow_ups(advert_interval: Duration) -> Vec<Duration> {
    const AFTER_THE_OTHER_BURST: Duration = Duration::from_millis(50);
    if advert_interval > AFTER_THE_OTHER_BURST {
        vec![AFTER_THE_OTHER_BURST, advert_interval]
    } else {
        vec![AFTER_THE_OTHER_BURST]
    }
}
