//! The daemon's answers to the control socket, and the status snapshot it publishes.
//!
//! Owns turning the loop's state into a [`Status`] and carrying out operators' requests:
//! `switchover` (make before break: answered when the handover resolves), `resume`,
//! `maintenance` and `status`. Runs inside the loop, so it may touch routers; it must not
//! wait for anything.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::oneshot;
use tracing::info;

use super::{Daemon, InstanceId};
use crate::control::protocol::{Request, Response};
use crate::control::status::{CheckStatus, GroupStatus, InstanceStatus, Status, TrackStatus};
use crate::health::score::{contribution, Contribution, Track};
use crate::health::tracker::CheckState;
use crate::vrrp::{EffectivePriority, Family, Input, State};

/// Maintenance holds instances back "for good": until `maintenance off`.
const MAINTENANCE_HOLD: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

impl Daemon {
    pub(super) fn control(&mut self, request: Request, reply: oneshot::Sender<Response>) {
        let now = super::now();
        match request {
            Request::Status => {
                let mut response = Response::ok("status");
                response.status = Some(self.status());
                let _ = reply.send(response);
            }
            Request::Switchover { instance } => {
                let Some(id) = self.instance_named(&instance) else {
                    let _ = reply.send(Response::refused(format!("no instance {instance:?}")));
                    return;
                };
                let runtime = &mut self.instances[id];
                let state = runtime.router.state();
                if state != State::Master || runtime.router.handing_over() {
                    let _ = reply.send(Response::refused(format!(
                        "{instance} is {state}, not MASTER: nothing to hand over"
                    )));
                    return;
                }
                info!(%instance, "switchover requested");
                runtime.pending_switchover = Some(reply);
                let hold = self.switchover_hold;
                self.instances[id]
                    .router
                    .handle(Input::Switchover { hold }, now);
            }
            Request::Resume { instance } => {
                let Some(id) = self.instance_named(&instance) else {
                    let _ = reply.send(Response::refused(format!("no instance {instance:?}")));
                    return;
                };
                self.instances[id].router.handle(Input::Resume, now);
                let _ = reply.send(Response::ok(format!("{instance} may preempt again")));
            }
            Request::Maintenance { on } => {
                self.maintenance = on;
                let input = if on {
                    Input::Switchover {
                        hold: MAINTENANCE_HOLD,
                    }
                } else {
                    Input::Resume
                };
                for instance in &mut self.instances {
                    instance.router.handle(input.clone(), now);
                }
                info!(on, "maintenance");
                let message = if on {
                    "maintenance on: every Master hands over (VIPs kept until a peer is heard); \
                     no instance preempts until `maintenance off`"
                } else {
                    "maintenance off: instances preempt again"
                };
                let _ = reply.send(Response::ok(message));
            }
            Request::Reload => {
                let response = match self.reload() {
                    Ok(summary) => Response::ok(format!("reloaded: {summary}")),
                    Err(why) => Response::refused(why),
                };
                let _ = reply.send(response);
            }
        }
    }

    fn instance_named(&self, name: &str) -> Option<InstanceId> {
        self.instances.iter().position(|i| i.config.name == name)
    }

    /// Everything `vipkeeper status` and `/metrics` show, as of now.
    pub(super) fn status(&self) -> Status {
        let now = super::now();
        let instances = self
            .instances
            .iter()
            .filter(|instance| !instance.retired)
            .map(|instance| {
                let tracks = instance
                    .tracks
                    .iter()
                    .map(|track| {
                        let check = &self.checks[track.check];
                        let points = contribution(&Track {
                            weight: track.weight,
                            reverse: track.reverse,
                            view: check.tracker.view(),
                        });
                        TrackStatus {
                            check: check.name.clone(),
                            weight: track.weight,
                            reverse: track.reverse,
                            contribution: match points {
                                Contribution::Points(points) => Some(points),
                                Contribution::Fault => None,
                            },
                        }
                    })
                    .collect();
                InstanceStatus {
                    name: instance.config.name.clone(),
                    interface: instance.config.interface.clone(),
                    vrid: instance.config.vrid,
                    family: match instance.config.family {
                        Family::Ipv4 => "IPv4",
                        Family::Ipv6 => "IPv6",
                    }
                    .to_owned(),
                    version: instance.config.version.number(),
                    state: instance.router.state().to_string(),
                    base_priority: instance.config.priority,
                    effective_priority: match instance.priority {
                        EffectivePriority::Value(value) => Some(value),
                        EffectivePriority::Fault => None,
                    },
                    tracks,
                    master_address: instance.router.master_address(),
                    vips: instance.vip_strings(),
                    holds_vips: instance.holds_vips,
                    last_transition: instance.last_transition.clone(),
                    held_back: instance.router.held_back(now),
                    counters: instance.counters.clone(),
                    advert_lateness: instance.advert_lateness.clone(),
                }
            })
            .collect();
        let groups = self
            .groups
            .iter()
            .map(|group| GroupStatus {
                name: group.name.clone(),
                instances: group
                    .members
                    .iter()
                    .map(|&member| self.instances[member].config.name.clone())
                    .collect(),
                state: group
                    .state
                    .map_or("INIT".to_owned(), |state| state.to_string()),
            })
            .collect();
        let checks = self
            .checks
            .iter()
            .map(|check| {
                let view = check.tracker.view();
                CheckStatus {
                    name: check.name.clone(),
                    kind: check.kind.to_owned(),
                    state: match view.state {
                        CheckState::Up => "up",
                        CheckState::Down => "down",
                        CheckState::Unknown => "unknown",
                    }
                    .to_owned(),
                    last_result: check.last_result.clone(),
                    fraction: view.fraction,
                    value: view.value,
                    latency: check.latency.clone(),
                    runs: check.runs,
                    failures: check.failures,
                }
            })
            .collect();
        Status {
            node: self.node_name.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_seconds: self.started.elapsed().as_secs(),
            maintenance: self.maintenance,
            instances,
            groups,
            checks,
            hooks: self.hooks.values().cloned().collect(),
            reloads: self.reloads.clone(),
            unmatched_dropped: self
                .counters
                .unmatched
                .iter()
                .map(|(reason, count)| ((*reason).to_owned(), *count))
                .collect(),
        }
    }
}
