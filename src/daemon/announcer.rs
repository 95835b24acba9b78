//! The announcer task: gratuitous ARP / unsolicited NA bursts and their schedule.
//!
//! Owns one [`Announcer`] per interface (opened on first use) and keepalived's timing: a
//! burst of `garp_master_repeat` frames per VIP on becoming Master, a second burst after
//! `garp_master_delay`, then one every `garp_master_refresh`; and when a Master hears a
//! lower priority, a burst at once and follow-ups shortly after (the other node's own
//! burst, sent as it became Master, may land after ours and must not have the last word). Commands arrive from the VIP worker, in the same order as
//! the VIP changes, so an announcement never runs ahead of the address it announces or
//! survives the step-down that removed it. Must not touch routers or addresses.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::event::InstanceId;
use crate::config::Garp;
use crate::net::linux::announce::Announcer;

/// One VIP to announce and the interface it lives on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub interface: String,
    pub address: IpAddr,
}

#[derive(Debug)]
pub enum AnnounceCommand {
    /// Became Master: burst now, then the second burst and the refreshes of `garp`.
    Start {
        instance: InstanceId,
        targets: Vec<Target>,
        garp: Garp,
    },
    /// One extra burst of `repeat` frames per VIP now, and again after each of `again_after`
    /// while the instance stays Master (a Master heard a lower priority).
    Burst {
        instance: InstanceId,
        targets: Vec<Target>,
        repeat: u32,
        again_after: Vec<Duration>,
    },
    /// Left Master: forget everything scheduled for the instance.
    Stop { instance: InstanceId },
}

#[derive(Debug)]
struct Scheduled {
    at: Instant,
    instance: InstanceId,
    generation: u64,
    targets: Vec<Target>,
    repeat: u32,
    /// Announce again this long after this burst (refresh), if set.
    then_every: Option<Duration>,
}

#[derive(Default)]
struct State {
    announcers: HashMap<String, Announcer>,
    /// Bumped by Start and Stop; a scheduled burst of an older generation is dropped.
    generations: HashMap<InstanceId, u64>,
    scheduled: Vec<Scheduled>,
}

pub async fn run(mut commands: UnboundedReceiver<AnnounceCommand>) {
    let mut state = State::default();
    loop {
        let next = state.scheduled.iter().map(|entry| entry.at).min();
        tokio::select! {
            command = commands.recv() => match command {
                Some(command) => state.command(command),
                None => return,
            },
            () = sleep_until(next) => state.fire_due(),
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl State {
    fn command(&mut self, command: AnnounceCommand) {
        let now = Instant::now();
        match command {
            AnnounceCommand::Start {
                instance,
                targets,
                garp,
            } => {
                let generation = self.next_generation(instance);
                self.burst(&targets, garp.master_repeat);
                if !garp.master_delay.is_zero() {
                    self.scheduled.push(Scheduled {
                        at: now + garp.master_delay,
                        instance,
                        generation,
                        targets,
                        repeat: garp.master_repeat,
                        then_every: garp.master_refresh,
                    });
                } else if let Some(refresh) = garp.master_refresh {
                    self.scheduled.push(Scheduled {
                        at: now + refresh,
                        instance,
                        generation,
                        targets,
                        repeat: 1,
                        then_every: Some(refresh),
                    });
                }
            }
            AnnounceCommand::Burst {
                instance,
                targets,
                repeat,
                again_after,
            } => {
                self.burst(&targets, repeat);
                // The current generation: a step-down (Stop) cancels the follow-ups.
                let generation = *self.generations.entry(instance).or_default();
                for delay in again_after {
                    self.scheduled.push(Scheduled {
                        at: now + delay,
                        instance,
                        generation,
                        targets: targets.clone(),
                        repeat,
                        then_every: None,
                    });
                }
            }
            AnnounceCommand::Stop { instance } => {
                self.next_generation(instance);
            }
        }
    }

    fn next_generation(&mut self, instance: InstanceId) -> u64 {
        let generation = self.generations.entry(instance).or_default();
        *generation += 1;
        let current = *generation;
        self.scheduled
            .retain(|entry| entry.instance != instance || entry.generation == current);
        current
    }

    fn fire_due(&mut self) {
        let now = Instant::now();
        let (due, later): (Vec<Scheduled>, Vec<Scheduled>) = std::mem::take(&mut self.scheduled)
            .into_iter()
            .partition(|entry| entry.at <= now);
        self.scheduled = later;
        for entry in due {
            if self.generations.get(&entry.instance) != Some(&entry.generation) {
                continue;
            }
            self.burst(&entry.targets, entry.repeat);
            if let Some(period) = entry.then_every {
                self.scheduled.push(Scheduled {
                    at: now + period,
                    repeat: 1,
                    ..entry
                });
            }
        }
    }

    /// Frames go back to back, as keepalived sends them with its default pacing of 0.
    fn burst(&mut self, targets: &[Target], repeat: u32) {
        for target in targets {
            let announcer = match self.announcers.entry(target.interface.clone()) {
                std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
                std::collections::hash_map::Entry::Vacant(entry) => {
                    match Announcer::open(&target.interface) {
                        Ok(announcer) => entry.insert(announcer),
                        Err(error) => {
                            warn!(iface = %target.interface, %error, "cannot announce VIPs");
                            continue;
                        }
                    }
                }
            };
            for _ in 0..repeat {
                if let Err(error) = announcer.announce(target.address) {
                    warn!(iface = %target.interface, vip = %target.address, %error,
                        "announcement failed");
                    break;
                }
            }
            debug!(iface = %target.interface, vip = %target.address, repeat, "announced");
        }
    }
}
