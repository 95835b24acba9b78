//! The VRRP state machine of one virtual router (interface, VRID, family).
//!
//! Owns RFC 5798 §6.4 (Initialize, Backup, Master) plus keepalived's Fault state, the two
//! protocol timers, and the receive-side policy checks of RFC 5798 §7.1 / RFC 3768 §7.1.
//! Sans-IO in the manner of quinn-proto: [`VirtualRouter::handle`] and
//! [`VirtualRouter::handle_timeout`] take the current time, [`VirtualRouter::poll_action`]
//! yields what to do and [`VirtualRouter::poll_timeout`] the next deadline. It must not read
//! the clock, touch sockets or log: every observation leaves as an [`Action`].
//!
//! Where the RFC leaves room, keepalived's behaviour is the reference (see
//! docs/state-machine.md, which tabulates every branch below with its clause).

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::action::{Action, AdvertWarning, AnnounceReason, DiscardReason, Reason, State};
use super::input::{EffectivePriority, GroupCommand, Input};
use super::packet::{Advertisement, Auth};
use super::{Centis, Family, Timers, Version, OWNER_PRIORITY, RESIGN_PRIORITY};

/// What the state machine needs to know of its instance. Built by the daemon from the
/// validated configuration and the interface's address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterConfig {
    pub vrid: u8,
    pub version: Version,
    pub family: Family,
    /// Configured priority; 255 makes this router the address owner.
    pub priority: u8,
    /// Our Advertisement_Interval (RFC 5798 §6.1).
    pub advert_interval: Centis,
    /// Preempt_Mode (RFC 5798 §6.1); false is keepalived's `nopreempt`.
    pub preempt: bool,
    /// keepalived's `preempt_delay`, counted from the first lower-priority advert heard.
    pub preempt_delay: Duration,
    /// Take over at once on hearing a lower priority Master (off by default; see the docs).
    pub fast_preempt: bool,
    /// The source address of our adverts; it breaks ties between equal priorities.
    pub primary_address: IpAddr,
    /// The virtual addresses carried in adverts.
    pub vips: Vec<IpAddr>,
    /// v2 authentication we send and require; [`Auth::None`] for v3.
    pub auth: Auth,
    /// A member of a sync group: it becomes Master only when the group says so.
    #[serde(default)]
    pub sync_member: bool,
}

impl RouterConfig {
    fn is_owner(&self) -> bool {
        self.priority == OWNER_PRIORITY
    }
}

/// The protocol timer that is armed; a router runs at most one at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Timer {
    /// Adver_Timer (Master): time to send the next advert.
    Adver,
    /// Master_Down_Timer (Backup): time to declare the Master dead.
    MasterDown,
    /// A resigning Master gives up waiting for the new Master.
    Resign,
}

/// What a Master that sent priority 0 becomes once the new Master is heard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Handover {
    /// Shutdown: stop.
    Stop,
    /// Switchover: Backup, held back from preempting until this instant.
    Backup { hold_until: Instant },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Deadline {
    timer: Timer,
    at: Instant,
}

/// One virtual router. See the module documentation for the driving contract.
#[derive(Debug)]
pub struct VirtualRouter {
    config: RouterConfig,
    state: State,
    /// Between Startup and Shutdown.
    enabled: bool,
    /// The priority we advertise and compute skew from; always 255 for an owner.
    effective_priority: u8,
    /// A weight-0 check is down.
    health_fault: bool,
    link_up: bool,
    /// RFC 5798 §6.1: learned from the Master in v3, our own interval in v2.
    master_adver_interval: Centis,
    deadline: Option<Deadline>,
    /// The Master_Down_Timer was shortened to Skew_Time by a priority 0 advert from this peer.
    resigned_master: Option<IpAddr>,
    /// When the first lower-priority advert was heard while preempt_delay applies.
    preempt_delay_since: Option<Instant>,
    /// The current Master's address as far as we know (ours when Master).
    master_address: Option<IpAddr>,
    /// A sync-group member whose own rules say "become Master", waiting for the group.
    wants_master: Option<Reason>,
    /// In Fault because another member of the sync group is.
    group_fault: bool,
    /// A Master that sent priority 0 and keeps its VIPs until the new Master is heard.
    handover: Option<Handover>,
    /// After a switchover: accept lower-priority Masters (no preemption) until then.
    held_back_until: Option<Instant>,
    actions: VecDeque<Action>,
}

impl VirtualRouter {
    pub fn new(config: RouterConfig) -> VirtualRouter {
        let effective_priority = config.priority;
        let master_adver_interval = config.advert_interval;
        VirtualRouter {
            config,
            state: State::Initialize,
            enabled: false,
            effective_priority,
            health_fault: false,
            link_up: true,
            master_adver_interval,
            deadline: None,
            resigned_master: None,
            preempt_delay_since: None,
            master_address: None,
            wants_master: None,
            group_fault: false,
            handover: None,
            held_back_until: None,
            actions: VecDeque::new(),
        }
    }

    /// A sync-group member waiting for the group to go Master.
    pub fn wants_master(&self) -> bool {
        self.wants_master.is_some()
    }

    /// Apply settings that may change under a running router (a reload): base priority,
    /// VIPs, preemption, timing, sync-group membership. What identifies it on the wire
    /// (VRID, version, family, auth, its address) is kept: a change there is a restart.
    /// The caller hands over the effective priority computed from the new base; a Master
    /// advertises the new settings at once (keepalived PR #793: no gap on reload).
    pub fn reconfigure(&mut self, config: RouterConfig, now: Instant) {
        debug_assert_eq!(
            (config.vrid, config.version, config.family),
            (self.config.vrid, self.config.version, self.config.family),
            "identity changes are restarts"
        );
        let identity = (
            self.config.primary_address,
            self.config.auth.clone(),
            self.config.priority == OWNER_PRIORITY,
        );
        self.config = RouterConfig {
            primary_address: identity.0,
            auth: identity.1,
            ..config
        };
        if self.state == State::Master && self.handover.is_none() {
            self.send_advert(self.effective_priority);
            self.arm(
                Timer::Adver,
                now + self.config.advert_interval.as_duration(),
            );
        }
    }

    /// Held back from preempting by a switchover, at `now`.
    pub fn held_back(&self, now: Instant) -> bool {
        self.held_back_until.is_some_and(|until| now < until)
    }

    /// A Master that sent priority 0 and waits to hear its successor.
    pub fn handing_over(&self) -> bool {
        self.handover.is_some()
    }

    /// In Fault for a reason of its own (link or check), not only because its group is.
    pub fn fault_is_own(&self) -> bool {
        self.state == State::Fault && (self.health_fault || !self.link_up)
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn config(&self) -> &RouterConfig {
        &self.config
    }

    pub fn effective_priority(&self) -> u8 {
        self.effective_priority
    }

    pub fn master_adver_interval(&self) -> Centis {
        self.master_adver_interval
    }

    /// The current Master's address, if one is known.
    pub fn master_address(&self) -> Option<IpAddr> {
        self.master_address
    }

    /// Skew_Time and Master_Down_Interval as they stand now.
    pub fn timers(&self) -> Timers {
        Timers::compute(
            self.config.version,
            self.effective_priority,
            self.master_adver_interval,
        )
    }

    /// The next instant [`Self::handle_timeout`] must be called at.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline.map(|deadline| deadline.at)
    }

    /// The next thing to do, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    pub fn handle(&mut self, input: Input, now: Instant) {
        match input {
            Input::Startup => self.startup(now),
            Input::Shutdown => self.shutdown(now),
            Input::ShutdownNow => self.shutdown_now(),
            Input::Switchover { hold } => self.switchover(hold, now),
            Input::Resume => self.held_back_until = None,
            Input::Advert { src, adv } => self.receive(src, adv, now),
            Input::PriorityChanged(verdict) => self.priority_changed(verdict, now),
            Input::Link { up } => self.link_changed(up, now),
            Input::Group(command) => self.group_command(command, now),
        }
    }

    /// Fire the armed timer if its deadline has passed; a call before then does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(deadline) = self.deadline else {
            return;
        };
        if now < deadline.at {
            return;
        }
        match (deadline.timer, self.state) {
            // RFC 5798 §6.4.3: "If the Adver_Timer fires": send an ADVERTISEMENT and reset
            // the timer. Re-armed from the scheduled instant, not from `now`, so a late
            // wake-up does not push every later advert back; after a stall longer than an
            // interval the grid restarts from `now` rather than bursting to catch up.
            (Timer::Adver, State::Master) => {
                self.send_advert(self.effective_priority);
                let interval = self.config.advert_interval.as_duration();
                let scheduled = deadline.at + interval;
                let next = if scheduled > now {
                    scheduled
                } else {
                    now + interval
                };
                self.arm(Timer::Adver, next);
            }
            // RFC 5798 §6.4.2: "If the Master_Down_Timer fires": become Master.
            (Timer::MasterDown, State::Backup) => {
                let reason = match self.resigned_master {
                    Some(from) => Reason::MasterResigned { from },
                    None => Reason::MasterDown,
                };
                self.take_over(now, reason);
            }
            // Nobody was heard taking over: a stopping Master stops anyway; a switchover
            // is called off and the Master goes on as before.
            (Timer::Resign, State::Master) => match self.handover.take() {
                Some(Handover::Stop) | None => self.finish_handover(Handover::Stop, now),
                Some(Handover::Backup { .. }) => {
                    self.send_advert(self.effective_priority);
                    let next = now + self.config.advert_interval.as_duration();
                    self.arm(Timer::Adver, next);
                    self.actions.push_back(Action::HandoverAborted);
                }
            },
            // Every transition re-arms or clears the timer, so no other pair can be armed.
            (timer, state) => {
                debug_assert!(false, "timer {timer:?} armed in state {state:?}");
                self.deadline = None;
            }
        }
    }

    // ===== events =====

    fn startup(&mut self, now: Instant) {
        if self.enabled {
            return;
        }
        self.enabled = true;
        if self.faulted() {
            let reason = if self.link_up {
                Reason::HealthFault
            } else {
                Reason::LinkDown
            };
            self.transition(State::Fault, reason);
        } else {
            self.start(now, Reason::Startup);
        }
    }

    /// RFC 5798 §6.4.1, also used when leaving Fault (keepalived restarts the election).
    fn start(&mut self, now: Instant, reason: Reason) {
        self.master_adver_interval = self.config.advert_interval;
        self.resigned_master = None;
        self.preempt_delay_since = None;
        self.wants_master = None;
        if self.config.is_owner() {
            // §6.4.1: "If the Priority = 255 ... transition to the Master state".
            let reason = if reason == Reason::Startup {
                Reason::AddressOwner
            } else {
                reason
            };
            self.become_master(now, reason);
        } else {
            // §6.4.1: "else ... Set Master_Down_Timer to Master_Down_Interval, transition
            // to the Backup state". keepalived waits the full interval too.
            self.become_backup(now, reason);
        }
    }

    /// RFC 5798 §6.4.2/§6.4.3 "If a Shutdown event is received", make before break.
    /// Idempotent.
    fn shutdown(&mut self, now: Instant) {
        if !self.enabled {
            return;
        }
        if self.state == State::Master {
            match self.handover {
                // Already handing over (a switchover): the new Master's advert now ends it
                // in a stop instead.
                Some(_) => self.handover = Some(Handover::Stop),
                None => self.hand_over(Handover::Stop, now),
            }
            return;
        }
        self.enabled = false;
        self.deadline = None;
        self.master_address = None;
        self.transition(State::Initialize, Reason::Shutdown);
    }

    /// The second stop signal: no more waiting.
    fn shutdown_now(&mut self) {
        if !self.enabled {
            return;
        }
        if self.state == State::Master {
            if self.handover.is_none() {
                self.send_advert(RESIGN_PRIORITY);
            }
            self.actions.push_back(Action::RemoveVips);
        }
        self.handover = None;
        self.enabled = false;
        self.deadline = None;
        self.master_address = None;
        self.transition(State::Initialize, Reason::Shutdown);
    }

    fn switchover(&mut self, hold: Duration, now: Instant) {
        if !self.enabled {
            return;
        }
        match self.state {
            State::Master if self.handover.is_none() => {
                let hold_until = now + hold;
                self.hand_over(Handover::Backup { hold_until }, now);
            }
            State::Backup => self.held_back_until = Some(now + hold),
            _ => {}
        }
    }

    /// §6.4.3: send an ADVERTISEMENT with Priority = 0 so a Backup takes over after
    /// Skew_Time instead of Master_Down_Interval. Unlike keepalived, the VIPs stay until
    /// that Backup is heard (keepalived removes them at once, so its clients see the whole
    /// skew as an outage); no more adverts meanwhile, so nobody hears us as Master again.
    fn hand_over(&mut self, handover: Handover, now: Instant) {
        self.send_advert(RESIGN_PRIORITY);
        self.handover = Some(handover);
        self.arm(Timer::Resign, now + self.timers().master_down_interval);
    }

    /// The new Master was heard (or waiting ran out on a stop): release the VIPs.
    fn finish_handover(&mut self, handover: Handover, now: Instant) {
        self.handover = None;
        self.actions.push_back(Action::RemoveVips);
        match handover {
            Handover::Stop => {
                self.enabled = false;
                self.deadline = None;
                self.master_address = None;
                self.transition(State::Initialize, Reason::Shutdown);
            }
            Handover::Backup { hold_until } => {
                self.held_back_until = Some(hold_until);
                self.arm(Timer::MasterDown, now + self.timers().master_down_interval);
                self.transition(State::Backup, Reason::Switchover);
            }
        }
    }

    fn priority_changed(&mut self, verdict: EffectivePriority, now: Instant) {
        match verdict {
            EffectivePriority::Fault => {
                self.health_fault = true;
                if self.enabled && self.state != State::Fault {
                    self.enter_fault(Reason::HealthFault);
                }
            }
            EffectivePriority::Value(value) => {
                let was_faulted = self.faulted();
                self.health_fault = false;
                self.set_effective_priority(value, now);
                if self.enabled && was_faulted && !self.faulted() {
                    self.start(now, Reason::HealthRecovered);
                }
            }
        }
    }

    /// keepalived `vrrp_set_effective_priority`: clamp to 1..=254, never touch an owner.
    fn set_effective_priority(&mut self, value: u8, now: Instant) {
        if self.config.is_owner() {
            return;
        }
        let value = value.clamp(1, OWNER_PRIORITY - 1);
        if value == self.effective_priority {
            return;
        }
        let before = self.timers().master_down_interval;
        self.effective_priority = value;
        match self.state {
            // A Master advertises its new priority at once, not at the next interval, so a
            // Backup that now outranks it starts its takeover without waiting.
            // (A Master handing over stays silent: it already said priority 0.)
            State::Master if self.handover.is_none() => {
                self.send_advert(value);
                self.arm(
                    Timer::Adver,
                    now + self.config.advert_interval.as_duration(),
                );
            }
            // keepalived shifts a pending master-down timeout by the change in the interval
            // (the skew depends on our priority), rather than restarting it.
            State::Backup => {
                let after = self.timers().master_down_interval;
                if let Some(deadline) = self.deadline.as_mut() {
                    deadline.at = if after >= before {
                        deadline.at + (after - before)
                    } else {
                        deadline
                            .at
                            .checked_sub(before - after)
                            .unwrap_or(now)
                            .max(now)
                    };
                }
            }
            State::Master | State::Initialize | State::Fault => {}
        }
    }

    fn link_changed(&mut self, up: bool, now: Instant) {
        if self.link_up == up {
            return;
        }
        self.link_up = up;
        if !self.enabled {
            return;
        }
        if !up {
            if self.state != State::Fault {
                self.enter_fault(Reason::LinkDown);
            }
        } else if self.state == State::Fault && !self.faulted() {
            self.start(now, Reason::LinkUp);
        }
    }

    fn faulted(&self) -> bool {
        self.health_fault || !self.link_up || self.group_fault
    }

    /// keepalived's vrrp_sync_group, as seen by one member (reference section 1.5).
    fn group_command(&mut self, command: GroupCommand, now: Instant) {
        if !self.enabled {
            return;
        }
        match command {
            GroupCommand::Master => {
                if let (State::Backup, Some(reason)) = (self.state, self.wants_master) {
                    self.become_master(now, reason);
                }
            }
            GroupCommand::Backup => {
                self.wants_master = None;
                if self.state == State::Master {
                    self.actions.push_back(Action::RemoveVips);
                    self.master_address = None;
                    self.arm(Timer::MasterDown, now + self.timers().master_down_interval);
                    self.transition(State::Backup, Reason::SyncGroup);
                }
            }
            GroupCommand::Fault => {
                self.group_fault = true;
                if self.state != State::Fault {
                    self.enter_fault(Reason::SyncGroup);
                }
            }
            GroupCommand::Recover => {
                let was_faulted = self.faulted();
                self.group_fault = false;
                if was_faulted && !self.faulted() && self.state == State::Fault {
                    self.start(now, Reason::SyncGroup);
                }
            }
        }
    }

    /// Our own rules say "become Master": a sync-group member asks the group first.
    fn take_over(&mut self, now: Instant, reason: Reason) {
        if !self.config.sync_member {
            self.become_master(now, reason);
            return;
        }
        if self.wants_master.is_none() {
            self.actions.push_back(Action::WantMaster);
        }
        self.wants_master = Some(reason);
        // No timer while waiting: a Master heard meanwhile is accepted as usual (and
        // clears the wish); otherwise the group decides.
        self.deadline = None;
    }

    // ===== receiving =====

    fn receive(&mut self, src: IpAddr, adv: Advertisement, now: Instant) {
        if let Err(reason) = self.check_advert(src, &adv) {
            self.actions
                .push_back(Action::Discard { from: src, reason });
            return;
        }
        match self.state {
            State::Backup => self.backup_receive(src, adv, now),
            State::Master => self.master_receive(src, adv, now),
            State::Initialize | State::Fault => {}
        }
    }

    /// RFC 5798 §7.1 and RFC 3768 §7.1 receiver checks that depend on our configuration
    /// or state (the codec has already checked everything about the bytes themselves).
    fn check_advert(&mut self, src: IpAddr, adv: &Advertisement) -> Result<(), DiscardReason> {
        match self.state {
            State::Initialize => return Err(DiscardReason::NotRunning),
            // keepalived ignores the segment in FAULT; leaving it restarts the election.
            State::Fault => return Err(DiscardReason::InFault),
            State::Backup | State::Master => {}
        }
        if src == self.config.primary_address {
            return Err(DiscardReason::OwnAdvert);
        }
        // §7.1: "MUST verify that the VRID is configured on the receiving interface".
        if adv.vrid != self.config.vrid {
            return Err(DiscardReason::VridMismatch { theirs: adv.vrid });
        }
        if adv.version != self.config.version {
            return Err(DiscardReason::VersionMismatch);
        }
        if Family::of(&src) != self.config.family {
            return Err(DiscardReason::FamilyMismatch);
        }
        if self.config.version == Version::V2 {
            // RFC 3768 §7.1: "MUST verify that the Auth Type matches the locally configured
            // authentication method" and, for simple text, the password.
            if adv.auth != self.config.auth {
                return Err(DiscardReason::AuthMismatch);
            }
            // RFC 3768 §7.1: "MUST verify that the Adver Interval in the packet is the same
            // as the locally configured for this virtual router". keepalived drops it too,
            // to avoid two Masters that time each other out.
            if adv.max_adver_int != self.config.advert_interval {
                return Err(DiscardReason::IntervalMismatch {
                    ours: self.config.advert_interval,
                    theirs: adv.max_adver_int,
                });
            }
        } else if adv.max_adver_int != self.config.advert_interval && adv.priority != 0 {
            // RFC 5798 §6.4.2: a v3 Backup adopts the Master's interval; only worth a note.
            self.actions.push_back(Action::Warn {
                from: src,
                warning: AdvertWarning::IntervalDiffers {
                    ours: self.config.advert_interval,
                    theirs: adv.max_adver_int,
                },
            });
        }
        // RFC 5798 §7.1 makes the address-list check a MAY; keepalived (>= 2.3.3) logs a
        // mismatch and accepts the advert, because dropping it causes a dual Master.
        if !same_addresses(&adv.addresses, &self.config.vips) {
            self.actions.push_back(Action::Warn {
                from: src,
                warning: AdvertWarning::AddressListMismatch,
            });
        }
        Ok(())
    }

    /// RFC 5798 §6.4.2 "If an ADVERTISEMENT is received" in Backup.
    fn backup_receive(&mut self, src: IpAddr, adv: Advertisement, now: Instant) {
        // §6.4.2: "If the Priority in the ADVERTISEMENT is zero, then: Set the
        // Master_Down_Timer to Skew_Time".
        if adv.priority == RESIGN_PRIORITY {
            self.resigned_master = Some(src);
            self.arm(Timer::MasterDown, now + self.timers().skew_time);
            return;
        }
        let lower = adv.priority < self.effective_priority;
        // §6.4.2: "If Preempt_Mode is False, or if the Priority in the ADVERTISEMENT is
        // greater than or equal to the local Priority, then" accept the Master.
        // keepalived adds: while preempt_delay runs, a lower Master is accepted too.
        if !self.config.preempt || !lower || self.held_back(now) || self.preempt_delay_pending(now)
        {
            if !lower {
                self.preempt_delay_since = None;
            }
            self.accept_master(src, &adv, now);
            return;
        }
        if self.config.fast_preempt {
            // Extension (docs/state-machine.md): the Master told us it is worse than us;
            // waiting out Master_Down_Interval only prolongs a degraded service. A second
            // Backup doing the same is resolved by §6.4.3 at the next advert.
            let reason = Reason::LowerPriorityHeard {
                from: src,
                priority: adv.priority,
            };
            self.take_over(now, reason);
            return;
        }
        // §6.4.2: "Otherwise, discard the ADVERTISEMENT": our Master_Down_Timer runs out
        // and we preempt.
        self.actions.push_back(Action::Discard {
            from: src,
            reason: DiscardReason::LowerPriority {
                theirs: adv.priority,
                ours: self.effective_priority,
            },
        });
    }

    /// keepalived: preempt_delay counts from the first lower-priority advert; until it has
    /// run out, the lower Master is accepted (its adverts reset our Master_Down_Timer).
    fn preempt_delay_pending(&mut self, now: Instant) -> bool {
        if self.config.preempt_delay.is_zero() {
            return false;
        }
        let since = *self.preempt_delay_since.get_or_insert(now);
        now < since + self.config.preempt_delay
    }

    /// §6.4.2: "Set Master_Adver_Interval to Adver Interval contained in the ADVERTISEMENT,
    /// Recompute the Master_Down_Interval, Reset the Master_Down_Timer".
    fn accept_master(&mut self, src: IpAddr, adv: &Advertisement, now: Instant) {
        if self.config.version == Version::V3 {
            self.master_adver_interval = adv.max_adver_int;
        }
        self.resigned_master = None;
        self.wants_master = None;
        self.master_address = Some(src);
        self.arm(Timer::MasterDown, now + self.timers().master_down_interval);
    }

    /// RFC 5798 §6.4.3 "If an ADVERTISEMENT is received" in Master.
    fn master_receive(&mut self, src: IpAddr, adv: Advertisement, now: Instant) {
        // Handing over: the first advert of a new Master ends it; nothing else matters.
        if let Some(handover) = self.handover {
            if adv.priority != RESIGN_PRIORITY {
                self.master_address = Some(src);
                self.finish_handover(handover, now);
            }
            return;
        }
        // §6.4.3: "If the Priority in the ADVERTISEMENT is zero, then: Send an
        // ADVERTISEMENT, Reset the Adver_Timer".
        if adv.priority == RESIGN_PRIORITY {
            self.send_advert(self.effective_priority);
            self.arm(
                Timer::Adver,
                now + self.config.advert_interval.as_duration(),
            );
            return;
        }
        // §6.4.3: "If the Priority in the ADVERTISEMENT is greater than the local Priority,
        // or the Priority is equal and the primary IPvX Address of the sender is greater
        // than the local primary IPvX Address", step down.
        let higher = adv.priority > self.effective_priority
            || (adv.priority == self.effective_priority && src > self.config.primary_address);
        if higher {
            self.accept_master(src, &adv, now);
            self.actions.push_back(Action::RemoveVips);
            self.transition(
                State::Backup,
                Reason::HigherPriorityHeard {
                    from: src,
                    priority: adv.priority,
                },
            );
            return;
        }
        // §6.4.3 says discard. keepalived instead "forces a new election": it advertises
        // at once and re-announces the VIPs, which repairs ARP caches after a split brain
        // (RFC 9568 §6.4.3 also recommends sending an advert here).
        self.send_advert(self.effective_priority);
        self.arm(
            Timer::Adver,
            now + self.config.advert_interval.as_duration(),
        );
        self.actions
            .push_back(Action::Announce(AnnounceReason::LowerPriorityHeard));
    }

    // ===== transitions =====

    /// §6.4.2 "If the Master_Down_Timer fires" / §6.4.1 for an owner: send an
    /// ADVERTISEMENT, broadcast gratuitous ARP / unsolicited NA, set the Adver_Timer.
    /// The VIPs are configured first, so the announcement never points at a missing address.
    fn become_master(&mut self, now: Instant, reason: Reason) {
        self.resigned_master = None;
        self.wants_master = None;
        self.preempt_delay_since = None;
        self.master_address = Some(self.config.primary_address);
        self.actions.push_back(Action::AddVips);
        self.send_advert(self.effective_priority);
        self.actions
            .push_back(Action::Announce(AnnounceReason::BecameMaster));
        self.arm(
            Timer::Adver,
            now + self.config.advert_interval.as_duration(),
        );
        self.transition(State::Master, reason);
    }

    fn become_backup(&mut self, now: Instant, reason: Reason) {
        if self.state == State::Master {
            self.actions.push_back(Action::RemoveVips);
        }
        self.master_address = None;
        self.arm(Timer::MasterDown, now + self.timers().master_down_interval);
        self.transition(State::Backup, reason);
    }

    /// keepalived sends priority 0 when a Master leaves for FAULT, so the peer takes over
    /// after Skew_Time rather than Master_Down_Interval.
    fn enter_fault(&mut self, reason: Reason) {
        if self.state == State::Master {
            if self.handover.take().is_none() {
                self.send_advert(RESIGN_PRIORITY);
            }
            self.actions.push_back(Action::RemoveVips);
        }
        self.deadline = None;
        self.master_address = None;
        self.resigned_master = None;
        self.preempt_delay_since = None;
        self.wants_master = None;
        self.transition(State::Fault, reason);
    }

    fn transition(&mut self, to: State, reason: Reason) {
        let from = self.state;
        self.state = to;
        self.actions
            .push_back(Action::Transition { from, to, reason });
    }

    fn arm(&mut self, timer: Timer, at: Instant) {
        self.deadline = Some(Deadline { timer, at });
    }

    fn send_advert(&mut self, priority: u8) {
        let adv = Advertisement {
            version: self.config.version,
            vrid: self.config.vrid,
            priority,
            max_adver_int: self.config.advert_interval,
            addresses: self.config.vips.clone(),
            auth: self.config.auth.clone(),
        };
        self.actions.push_back(Action::SendAdvert(adv));
    }
}

/// Order-insensitive comparison of two address lists.
fn same_addresses(theirs: &[IpAddr], ours: &[IpAddr]) -> bool {
    theirs.len() == ours.len() && theirs.iter().all(|address| ours.contains(address))
}
