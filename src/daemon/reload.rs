//! Reload (SIGHUP or `vipkeeper reload`): the new configuration applied as a diff.
//!
//! Owns carrying out a [`ConfigDiff`] on the running daemon. The new file is validated
//! first; if it is invalid nothing changes. Instances keep their state, timers and VIPs
//! unless what identifies them on the wire changed: a changed priority goes into an advert
//! at once, VIPs added or removed on a Master are applied without touching the others, new
//! instances start, removed ones stop make-before-break. Checks are restarted on a new
//! health thread; unchanged ones keep their rise/fall state. Runs inside the loop: it
//! must not wait (link states of new interfaces come from sysfs, a file read).

use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use tracing::{info, warn};

use super::instance::{InstanceRuntime, InstanceTrack};
use super::vip_worker::VipCommand;
use super::{CheckRuntime, Daemon, SocketEntry};
use crate::config::diff::{diff, InstanceChange};
use crate::config::{self, CheckKind, Config};
use crate::health::tracker::Tracker;
use crate::health::ProbeOutcome;
use crate::net::linux::vrrp_socket::VrrpSocket;
use crate::vrrp::Input;

/// Administratively up with carrier, from sysfs (IFF_UP in `flags`, and `carrier`).
pub fn link_up_now(interface: &str) -> bool {
    let base = Path::new("/sys/class/net").join(interface);
    let flags = std::fs::read_to_string(base.join("flags")).unwrap_or_default();
    let flags = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).unwrap_or(0);
    let carrier = std::fs::read_to_string(base.join("carrier")).unwrap_or_default();
    flags & 1 == 1 && carrier.trim() == "1"
}

impl Daemon {
    /// Validate and apply the file at `config_path`; a summary, or why nothing changed.
    pub(super) fn reload(&mut self) -> Result<String, String> {
        self.notify_systemd(|sd, _| sd.reloading());
        let result = self.reload_file();
        self.notify_systemd(|sd, count| sd.ready(&format!("{count} instances running")));
        result
    }

    fn reload_file(&mut self) -> Result<String, String> {
        let new = match config::load(&self.config_path) {
            Ok(new) => new,
            Err(errors) => {
                let text = errors.to_string();
                for line in text.lines() {
                    warn!(error = %line, "reload refused: the running configuration is kept");
                }
                self.reloads.failed += 1;
                self.reloads.last_error = Some(text.clone());
                return Err(format!("invalid configuration, nothing changed:\n{text}"));
            }
        };
        let plan = diff(&self.config, &new);
        for key in &plan.needs_daemon_restart {
            warn!(key, "changed, but only a restart of vipkeeper applies it");
        }
        let now = super::now();
        let mut summary = Vec::new();

        // Checks first: instances' tracks refer to them by index.
        self.restart_checks(&new);

        // Kept instances: live changes, or a restart (stop now, start as new below).
        let mut restarted = Vec::new();
        for kept in &plan.kept {
            match &kept.change {
                InstanceChange::Unchanged => {}
                InstanceChange::Live(change) => {
                    let config = new.instances[kept.new].clone();
                    let id = kept.old;
                    if self.instances[id].holds_vips {
                        if !change.vips_added.is_empty() {
                            super::queue(
                                &self.vip_commands,
                                VipCommand::Add {
                                    instance: id,
                                    vips: change.vips_added.clone(),
                                },
                            );
                        }
                        if !change.vips_removed.is_empty() {
                            super::queue(
                                &self.vip_commands,
                                VipCommand::Remove {
                                    instance: id,
                                    vips: change.vips_removed.clone(),
                                },
                            );
                        }
                    }
                    let instance = &mut self.instances[id];
                    instance.notify = Arc::new(config.notify.clone());
                    instance.config = config;
                    summary.push(format!("{} updated", instance.config.name));
                }
                InstanceChange::Restart { why } => {
                    self.instances[kept.old].router.handle(Input::Shutdown, now);
                    self.instances[kept.old].retired = true;
                    restarted.push(kept.new);
                    let name = &new.instances[kept.new].name;
                    summary.push(format!("{name} restarted ({why} changed)"));
                }
            }
        }
        for &old in &plan.removed {
            let instance = &mut self.instances[old];
            instance.router.handle(Input::Shutdown, now);
            instance.retired = true;
            summary.push(format!("{} removed", instance.config.name));
        }
        for &index in plan.added.iter().chain(&restarted) {
            let config = new.instances[index].clone();
            let name = config.name.clone();
            match self.start_instance(config, &new) {
                Ok(()) => summary.push(format!("{name} started")),
                Err(error) => {
                    warn!(instance = %name, %error, "cannot start the new instance");
                    summary.push(format!("{name} NOT started: {error}"));
                }
            }
        }

        // Tracks (indices into the new check table), groups and routers' settings.
        self.config = new;
        self.rebuild_tracks_and_groups();
        for id in 0..self.instances.len() {
            if self.instances[id].retired {
                continue;
            }
            let primary = self.instances[id].router.config().primary_address;
            let sync_member = self.groups.iter().any(|g| g.members.contains(&id));
            let mut router_config =
                super::instance::router_config(&self.instances[id].config, primary);
            router_config.sync_member = sync_member;
            let priority = self.score(id);
            let instance = &mut self.instances[id];
            instance.router.reconfigure(router_config, now);
            if priority != instance.priority {
                instance.priority = priority;
                instance
                    .router
                    .handle(Input::PriorityChanged(priority), now);
            }
        }
        self.reloads.succeeded += 1;
        self.reloads.last_error = None;
        let summary = if summary.is_empty() {
            "no instance changed".to_owned()
        } else {
            summary.join("; ")
        };
        info!(%summary, "configuration reloaded");
        Ok(summary)
    }

    /// New trackers for new or changed checks, the old ones for the rest, and a new
    /// health thread; results of the old one are no longer listened to.
    fn restart_checks(&mut self, new: &Config) {
        let mut checks = Vec::new();
        for check in &new.checks {
            let unchanged = self.config.checks.iter().position(|old| old == check);
            let tracker = match unchanged {
                Some(old) => self.checks[old].tracker.clone(),
                None => Tracker::new(check.rise, check.fall, check.init_fail),
            };
            let mut runtime = CheckRuntime::new(check, tracker);
            if let CheckKind::Interface { interface } = &check.kind {
                if unchanged.is_none() {
                    let outcome = if link_up_now(interface) {
                        ProbeOutcome::Up
                    } else {
                        ProbeOutcome::down(format!("{interface} is down"))
                    };
                    runtime.tracker.record(&outcome);
                }
            }
            checks.push(runtime);
        }
        self.checks = checks;
        if let Some(forward) = self.health_forward.take() {
            forward.abort();
        }
        match super::start_health(new.checks.clone(), self.events.clone()) {
            Ok(forward) => self.health_forward = Some(forward),
            Err(error) => warn!(%error, "cannot restart the health checks"),
        }
    }

    fn rebuild_tracks_and_groups(&mut self) {
        let index = |name: &str, checks: &[CheckRuntime]| {
            checks.iter().position(|check| check.name == name)
        };
        for id in 0..self.instances.len() {
            let instance = &self.instances[id];
            let group = self
                .config
                .groups
                .iter()
                .find(|group| group.instances.contains(&instance.config.name));
            let group_tracks = group.map(|g| g.tracks.as_slice()).unwrap_or_default();
            let tracks: Vec<InstanceTrack> = instance
                .config
                .tracks
                .iter()
                .chain(group_tracks)
                .filter_map(|track| {
                    Some(InstanceTrack {
                        check: index(&track.check, &self.checks)?,
                        weight: track.weight,
                        reverse: track.reverse,
                    })
                })
                .collect();
            self.instances[id].tracks = tracks;
        }
        self.groups = super::build_groups(&self.config, &self.instances, &self.groups);
    }

    /// Open (or reuse) the socket and start a new instance, as at start-up.
    fn start_instance(&mut self, config: config::Instance, new: &Config) -> Result<(), String> {
        let key = (&config.interface, config.family, config.unicast_source);
        let existing = self
            .sockets
            .iter()
            .position(|entry| (&entry.interface, entry.family, entry.bound_source) == key);
        let socket_id = match existing {
            Some(id) => id,
            None => {
                let socket =
                    VrrpSocket::open(&config.interface, config.family, config.unicast_source)
                        .map_err(|error| error.to_string())?;
                self.sockets.push(SocketEntry {
                    interface: config.interface.clone(),
                    family: config.family,
                    bound_source: config.unicast_source,
                    socket: Rc::new(socket),
                });
                let id = self.sockets.len() - 1;
                let modes = std::iter::once((config.vrid, config.checksum_mode)).collect();
                let task = super::rx::receive(
                    id,
                    Rc::clone(&self.sockets[id].socket),
                    modes,
                    self.events.clone(),
                );
                tokio::task::spawn_local(task);
                id
            }
        };
        let primary = self.sockets[socket_id].socket.source();
        let grouped = new
            .groups
            .iter()
            .any(|group| group.instances.contains(&config.name));
        let runtime = InstanceRuntime::new(config, socket_id, primary, Vec::new(), grouped);
        for interface in &runtime.tracked_interfaces {
            self.link_up
                .entry(interface.clone())
                .or_insert_with(|| link_up_now(interface));
        }
        self.instances.push(runtime);
        let id = self.instances.len() - 1;
        let now = super::now();
        let up = self.tracked_links_up(id);
        let router = &mut self.instances[id].router;
        if !up {
            router.handle(Input::Link { up: false }, now);
        }
        router.handle(Input::Startup, now);
        Ok(())
    }
}
