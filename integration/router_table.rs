//! Table tests of the VRRP state machine: one test per RFC clause or keepalived rule, each
//! naming its source. docs/state-machine.md lists the same rows.
//!
//! Time is virtual: `at(ms)` sets the clock the next input is handled at, `fire()` jumps to
//! the router's own deadline.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use vipkeeper::vrrp::action::{AdvertWarning, AnnounceReason, DiscardReason};
use vipkeeper::vrrp::packet::{Advertisement, Auth};
use vipkeeper::vrrp::{
    Action, Centis, EffectivePriority, Family, Input, Reason, RouterConfig, State, Timers, Version,
    VirtualRouter,
};

const LOWER_PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
const SELF: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 11));
const HIGHER_PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 12));
const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 50));

fn config(version: Version, priority: u8) -> RouterConfig {
    RouterConfig {
        vrid: 51,
        version,
        family: Family::Ipv4,
        priority,
        advert_interval: Centis::ONE_SECOND,
        preempt: true,
        preempt_delay: Duration::ZERO,
        fast_preempt: false,
        primary_address: SELF,
        vips: vec![VIP],
        auth: Auth::None,
        sync_member: false,
    }
}

fn v3(priority: u8) -> RouterConfig {
    config(Version::V3, priority)
}

fn advert(priority: u8) -> Advertisement {
    Advertisement {
        version: Version::V3,
        vrid: 51,
        priority,
        max_adver_int: Centis::ONE_SECOND,
        addresses: vec![VIP],
        auth: Auth::None,
    }
}

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

struct Harness {
    router: VirtualRouter,
    t0: Instant,
    now: Instant,
}

impl Harness {
    fn new(config: RouterConfig) -> Harness {
        let t0 = Instant::now();
        Harness {
            router: VirtualRouter::new(config),
            t0,
            now: t0,
        }
    }

    /// A started router, its startup actions drained.
    fn started(config: RouterConfig) -> Harness {
        let mut harness = Harness::new(config);
        harness.input(Input::Startup);
        harness
    }

    /// A router that became Master by its Master_Down_Timer, actions drained.
    fn master(config: RouterConfig) -> Harness {
        let mut harness = Harness::started(config);
        harness.fire();
        assert_eq!(harness.router.state(), State::Master);
        harness
    }

    fn at(&mut self, elapsed: Duration) -> &mut Harness {
        self.now = self.t0 + elapsed;
        self
    }

    fn input(&mut self, input: Input) -> Vec<Action> {
        self.router.handle(input, self.now);
        self.drain()
    }

    fn receive(&mut self, src: IpAddr, adv: Advertisement) -> Vec<Action> {
        self.input(Input::Advert { src, adv })
    }

    /// Jump to the armed deadline and fire it.
    fn fire(&mut self) -> Vec<Action> {
        let at = self.router.poll_timeout().expect("a timer is armed");
        self.now = at;
        self.router.handle_timeout(at);
        self.drain()
    }

    fn drain(&mut self) -> Vec<Action> {
        std::iter::from_fn(|| self.router.poll_action()).collect()
    }

    /// The armed deadline, relative to the start of the test.
    fn deadline(&self) -> Option<Duration> {
        self.router.poll_timeout().map(|at| at - self.t0)
    }
}

fn master_down(priority: u8, interval: Centis) -> Duration {
    Timers::compute(Version::V3, priority, interval).master_down_interval
}

fn skew(priority: u8, interval: Centis) -> Duration {
    Timers::compute(Version::V3, priority, interval).skew_time
}

fn sent_priorities(actions: &[Action]) -> Vec<u8> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::SendAdvert(adv) => Some(adv.priority),
            _ => None,
        })
        .collect()
}

fn became_master(reason: Reason) -> Vec<Action> {
    let mut expected_advert = advert(0);
    expected_advert.priority = 100;
    vec![
        Action::AddVips,
        Action::SendAdvert(expected_advert),
        Action::Announce(AnnounceReason::BecameMaster),
        Action::Transition {
            from: State::Backup,
            to: State::Master,
            reason,
        },
    ]
}

// ===== RFC 5798 §6.4.1 Initialize =====

/// §6.4.1: a non-owner enters Backup and sets Master_Down_Timer to Master_Down_Interval.
#[test]
fn startup_non_owner_waits_master_down_interval_in_backup() {
    let mut harness = Harness::new(v3(100));
    let actions = harness.input(Input::Startup);
    assert_eq!(
        actions,
        vec![Action::Transition {
            from: State::Initialize,
            to: State::Backup,
            reason: Reason::Startup
        }]
    );
    // 3 × 1 s + (256 − 100) / 256 s.
    assert_eq!(harness.deadline(), Some(Duration::from_micros(3_609_375)));
}

/// §6.4.1: "If the Priority = 255": send an advert, announce, become Master at once.
#[test]
fn startup_owner_becomes_master_at_once() {
    let mut harness = Harness::new(v3(255));
    let actions = harness.input(Input::Startup);
    assert_eq!(actions[0], Action::AddVips);
    assert_eq!(sent_priorities(&actions), vec![255]);
    assert!(actions.contains(&Action::Announce(AnnounceReason::BecameMaster)));
    assert_eq!(
        actions.last(),
        Some(&Action::Transition {
            from: State::Initialize,
            to: State::Master,
            reason: Reason::AddressOwner
        })
    );
    assert_eq!(harness.deadline(), Some(ms(1000)));
}

#[test]
fn startup_twice_is_ignored() {
    let mut harness = Harness::started(v3(100));
    assert_eq!(harness.at(ms(10)).input(Input::Startup), vec![]);
}

// ===== RFC 5798 §6.4.2 Backup =====

/// §6.4.2 "If the Master_Down_Timer fires": advert, gratuitous ARP, Master. VIPs first.
#[test]
fn backup_master_down_timer_makes_it_master() {
    let mut harness = Harness::started(v3(100));
    let actions = harness.fire();
    assert_eq!(actions, became_master(Reason::MasterDown));
    assert_eq!(harness.router.state(), State::Master);
}

/// §6.4.2: priority ≥ local: accept, reset Master_Down_Timer.
#[test]
fn backup_accepts_equal_or_higher_priority_and_resets_its_timer() {
    for priority in [100, 200] {
        let mut harness = Harness::started(v3(100));
        let actions = harness.at(ms(2000)).receive(HIGHER_PEER, advert(priority));
        assert_eq!(actions, vec![]);
        assert_eq!(
            harness.deadline(),
            Some(ms(2000) + master_down(100, Centis::ONE_SECOND))
        );
        assert_eq!(harness.router.master_address(), Some(HIGHER_PEER));
    }
}

/// §6.4.2: an equal priority from a *higher* address does not preempt a Backup either:
/// the address tie-break applies only between two Masters.
#[test]
fn backup_with_equal_priority_accepts_a_master_with_a_lower_address() {
    let mut harness = Harness::started(v3(100));
    harness.at(ms(500)).receive(LOWER_PEER, advert(100));
    harness.at(ms(1500)).receive(LOWER_PEER, advert(100));
    assert_eq!(harness.router.state(), State::Backup);
    assert_eq!(
        harness.deadline(),
        Some(ms(1500) + master_down(100, Centis::ONE_SECOND))
    );
}

/// §6.4.2: "If the Priority in the ADVERTISEMENT is zero, then: Set the
/// Master_Down_Timer to Skew_Time".
#[test]
fn backup_hearing_priority_zero_takes_over_after_skew_time() {
    let mut harness = Harness::started(v3(251));
    harness.at(ms(500)).receive(HIGHER_PEER, advert(254));
    assert_eq!(harness.at(ms(900)).receive(HIGHER_PEER, advert(0)), vec![]);
    // keepalived's "about 20 ms": 5/256 s.
    assert_eq!(
        harness.deadline(),
        Some(ms(900) + Duration::from_micros(19_531))
    );
    let actions = harness.fire();
    assert!(actions.contains(&Action::Transition {
        from: State::Backup,
        to: State::Master,
        reason: Reason::MasterResigned { from: HIGHER_PEER }
    }));
}

/// §6.4.2: with Preempt_Mode True a lower priority advert is discarded, so the
/// Master_Down_Timer runs out and the Backup preempts.
#[test]
fn backup_discards_lower_priority_and_preempts_at_master_down() {
    let mut harness = Harness::started(v3(150));
    let deadline = harness.deadline();
    let actions = harness.at(ms(500)).receive(LOWER_PEER, advert(100));
    assert_eq!(
        actions,
        vec![Action::Discard {
            from: LOWER_PEER,
            reason: DiscardReason::LowerPriority {
                theirs: 100,
                ours: 150
            }
        }]
    );
    assert_eq!(harness.deadline(), deadline, "the timer is not reset");
    harness.fire();
    assert_eq!(harness.router.state(), State::Master);
}

/// §6.4.2: "If Preempt_Mode is False ... accept": keepalived's nopreempt.
#[test]
fn backup_without_preempt_accepts_a_lower_priority_master() {
    let mut config = v3(150);
    config.preempt = false;
    let mut harness = Harness::started(config);
    assert_eq!(harness.at(ms(500)).receive(LOWER_PEER, advert(100)), vec![]);
    assert_eq!(
        harness.deadline(),
        Some(ms(500) + master_down(150, Centis::ONE_SECOND))
    );
}

/// §6.4.2: v3 "Set Master_Adver_Interval to Adver Interval contained in the
/// ADVERTISEMENT" and recompute Master_Down_Interval from it.
#[test]
fn v3_backup_learns_the_master_adver_interval() {
    let mut harness = Harness::started(v3(100));
    let mut slow = advert(200);
    slow.max_adver_int = Centis::new(200);
    let actions = harness.at(ms(100)).receive(HIGHER_PEER, slow);
    assert_eq!(
        actions,
        vec![Action::Warn {
            from: HIGHER_PEER,
            warning: AdvertWarning::IntervalDiffers {
                ours: Centis::ONE_SECOND,
                theirs: Centis::new(200)
            }
        }]
    );
    assert_eq!(harness.router.master_adver_interval(), Centis::new(200));
    // 3 × 2 s + 156 × 2 s / 256.
    assert_eq!(
        harness.deadline(),
        Some(ms(100) + Duration::from_micros(7_218_750))
    );
}

/// keepalived: preempt_delay counts from the first lower advert; until it runs out the
/// lower Master is accepted, afterwards its adverts are discarded.
#[test]
fn preempt_delay_accepts_a_lower_master_until_the_delay_has_run() {
    let mut config = v3(150);
    config.preempt_delay = ms(2500);
    let mut harness = Harness::started(config);
    for second in 1..=3 {
        let actions = harness
            .at(ms(second * 1000))
            .receive(LOWER_PEER, advert(100));
        assert_eq!(actions, vec![], "second {second} is within the delay");
    }
    let deadline = harness.deadline();
    let actions = harness.at(ms(4000)).receive(LOWER_PEER, advert(100));
    assert!(matches!(
        actions.as_slice(),
        [Action::Discard {
            reason: DiscardReason::LowerPriority { .. },
            ..
        }]
    ));
    assert_eq!(harness.deadline(), deadline);
    harness.fire();
    assert_eq!(harness.router.state(), State::Master);
}

/// Extension: fast_preempt takes over at once on a lower priority advert.
#[test]
fn fast_preempt_takes_over_on_the_first_lower_advert() {
    let mut config = v3(150);
    config.fast_preempt = true;
    let mut harness = Harness::started(config);
    harness.at(ms(500)).receive(LOWER_PEER, advert(200));
    let actions = harness.at(ms(1500)).receive(LOWER_PEER, advert(90));
    assert_eq!(sent_priorities(&actions), vec![150]);
    assert_eq!(
        actions.last(),
        Some(&Action::Transition {
            from: State::Backup,
            to: State::Master,
            reason: Reason::LowerPriorityHeard {
                from: LOWER_PEER,
                priority: 90
            }
        })
    );
}

/// fast_preempt needs preempt: with nopreempt the lower Master is accepted.
#[test]
fn fast_preempt_does_nothing_without_preempt() {
    let mut config = v3(150);
    config.fast_preempt = true;
    config.preempt = false;
    let mut harness = Harness::started(config);
    assert_eq!(harness.at(ms(500)).receive(LOWER_PEER, advert(90)), vec![]);
    assert_eq!(harness.router.state(), State::Backup);
}

/// keepalived: a Backup's pending timeout shifts by the change in Skew_Time when its
/// effective priority changes (the skew uses the effective priority).
#[test]
fn backup_priority_change_shifts_the_pending_timeout() {
    let mut harness = Harness::started(v3(100));
    let before = harness.deadline().unwrap();
    harness
        .at(ms(100))
        .input(Input::PriorityChanged(EffectivePriority::Value(200)));
    let shift = skew(100, Centis::ONE_SECOND) - skew(200, Centis::ONE_SECOND);
    assert_eq!(harness.deadline(), Some(before - shift));
    assert_eq!(harness.router.effective_priority(), 200);
}

// ===== RFC 5798 §6.4.3 Master =====

/// §6.4.3 "If the Adver_Timer fires": send an advert, reset the timer, without drift.
#[test]
fn master_advertises_every_interval_from_the_scheduled_instant() {
    let mut harness = Harness::master(v3(100));
    let first = harness.deadline().unwrap();
    // Woken 30 ms late: the advert goes now, the next stays on the original grid.
    harness.now = harness.t0 + first + ms(30);
    harness.router.handle_timeout(harness.now);
    assert_eq!(sent_priorities(&harness.drain()), vec![100]);
    assert_eq!(harness.deadline(), Some(first + ms(1000)));
}

/// After a stall longer than an interval, one advert goes out and the grid restarts from
/// now: no burst of catch-up adverts.
#[test]
fn master_stalled_for_several_intervals_sends_one_advert() {
    let mut harness = Harness::master(v3(100));
    let first = harness.deadline().unwrap();
    harness.now = harness.t0 + first + ms(2500);
    harness.router.handle_timeout(harness.now);
    assert_eq!(sent_priorities(&harness.drain()), vec![100]);
    assert_eq!(harness.deadline(), Some(first + ms(3500)));
    harness.router.handle_timeout(harness.now);
    assert_eq!(harness.drain(), vec![], "nothing more is due yet");
}

/// §6.4.3: a higher priority advert makes the Master a Backup; VIPs go, timer re-armed
/// with the learned interval.
#[test]
fn master_steps_down_for_a_higher_priority() {
    let mut harness = Harness::master(v3(100));
    let actions = harness.at(ms(5000)).receive(HIGHER_PEER, advert(200));
    assert_eq!(
        actions,
        vec![
            Action::RemoveVips,
            Action::Transition {
                from: State::Master,
                to: State::Backup,
                reason: Reason::HigherPriorityHeard {
                    from: HIGHER_PEER,
                    priority: 200
                }
            }
        ]
    );
    assert_eq!(
        harness.deadline(),
        Some(ms(5000) + master_down(100, Centis::ONE_SECOND))
    );
}

/// §6.4.3: equal priority, the sender's address is greater: step down.
#[test]
fn master_steps_down_for_an_equal_priority_from_a_higher_address() {
    let mut harness = Harness::master(v3(100));
    harness.at(ms(5000)).receive(HIGHER_PEER, advert(100));
    assert_eq!(harness.router.state(), State::Backup);
}

/// §6.4.3: equal priority from a lower address: stay Master, and (keepalived) re-assert.
#[test]
fn master_keeps_its_role_against_an_equal_priority_from_a_lower_address() {
    let mut harness = Harness::master(v3(100));
    let actions = harness.at(ms(5000)).receive(LOWER_PEER, advert(100));
    assert_eq!(harness.router.state(), State::Master);
    assert_eq!(sent_priorities(&actions), vec![100]);
}

/// keepalived "forcing new election": a Master that hears a lower priority advertises at
/// once and re-announces its VIPs (split-brain ARP repair).
#[test]
fn master_reasserts_at_once_against_a_lower_priority() {
    let mut harness = Harness::master(v3(100));
    let actions = harness.at(ms(5000)).receive(LOWER_PEER, advert(50));
    assert_eq!(sent_priorities(&actions), vec![100]);
    assert!(actions.contains(&Action::Announce(AnnounceReason::LowerPriorityHeard)));
    assert_eq!(harness.deadline(), Some(ms(6000)));
}

/// §6.4.3: "If the Priority in the ADVERTISEMENT is zero": send an advert at once.
#[test]
fn master_answers_priority_zero_with_an_advert() {
    let mut harness = Harness::master(v3(100));
    let actions = harness.at(ms(5000)).receive(HIGHER_PEER, advert(0));
    assert_eq!(sent_priorities(&actions), vec![100]);
    assert_eq!(harness.router.state(), State::Master);
    assert_eq!(harness.deadline(), Some(ms(6000)));
}

/// A change of effective priority goes into an advert at once, not at the next interval.
#[test]
fn master_advertises_a_new_priority_at_once() {
    let mut harness = Harness::master(v3(150));
    let actions = harness
        .at(ms(4000))
        .input(Input::PriorityChanged(EffectivePriority::Value(90)));
    assert_eq!(sent_priorities(&actions), vec![90]);
    assert_eq!(harness.deadline(), Some(ms(5000)));
    assert_eq!(harness.router.state(), State::Master);
}

/// keepalived `vrrp_set_effective_priority`: clamp to 1..=254; an owner never changes.
#[test]
fn effective_priority_is_clamped_and_owner_is_fixed() {
    let mut harness = Harness::started(v3(100));
    harness.input(Input::PriorityChanged(EffectivePriority::Value(255)));
    assert_eq!(harness.router.effective_priority(), 254);
    harness.input(Input::PriorityChanged(EffectivePriority::Value(0)));
    assert_eq!(harness.router.effective_priority(), 1);

    let mut owner = Harness::started(v3(255));
    assert_eq!(
        owner.input(Input::PriorityChanged(EffectivePriority::Value(10))),
        vec![]
    );
    assert_eq!(owner.router.effective_priority(), 255);
}

// ===== Shutdown =====

/// §6.4.3 "If a Shutdown event is received": advert with priority 0. Make before break:
/// the VIPs stay (and no advert is sent) until the new Master's first advert is heard.
#[test]
fn shutdown_of_a_master_keeps_the_vips_until_the_new_master_is_heard() {
    let mut harness = Harness::master(v3(150));
    let actions = harness.at(ms(5000)).input(Input::Shutdown);
    assert_eq!(sent_priorities(&actions), vec![0]);
    assert!(!actions.contains(&Action::RemoveVips), "VIPs kept for now");
    assert_eq!(harness.router.state(), State::Master);
    assert!(harness.router.handing_over());
    // Bounded by Master_Down_Interval.
    assert_eq!(
        harness.deadline(),
        Some(ms(5000) + master_down(150, Centis::ONE_SECOND))
    );
    // The Backup took over after its skew and advertises: now the VIPs go.
    let actions = harness.at(ms(5240)).receive(LOWER_PEER, advert(100));
    assert_eq!(
        actions,
        vec![
            Action::RemoveVips,
            Action::Transition {
                from: State::Master,
                to: State::Initialize,
                reason: Reason::Shutdown
            }
        ]
    );
    assert_eq!(harness.deadline(), None);
    assert_eq!(harness.input(Input::Shutdown), vec![], "idempotent");
}

/// Nobody takes over: a stopping Master stops anyway at Master_Down_Interval.
#[test]
fn shutdown_with_no_peer_stops_after_master_down_interval() {
    let mut harness = Harness::master(v3(150));
    harness.at(ms(5000)).input(Input::Shutdown);
    let actions = harness.fire();
    assert_eq!(actions[0], Action::RemoveVips);
    assert_eq!(harness.router.state(), State::Initialize);
}

/// A second signal: everything goes at once.
#[test]
fn shutdown_now_removes_the_vips_at_once() {
    let mut harness = Harness::master(v3(150));
    harness.at(ms(5000)).input(Input::Shutdown);
    let actions = harness.at(ms(5010)).input(Input::ShutdownNow);
    assert_eq!(
        sent_priorities(&actions),
        Vec::<u8>::new(),
        "priority 0 was already sent"
    );
    assert!(actions.contains(&Action::RemoveVips));
    assert_eq!(harness.router.state(), State::Initialize);
}

/// Switchover: hand over like a stop, then stay Backup without preempting the lower
/// Master until the hold ends or Resume.
#[test]
fn switchover_hands_over_and_holds_back_from_preempting() {
    let mut harness = Harness::master(v3(150));
    let hold = Duration::from_secs(600);
    let actions = harness.at(ms(5000)).input(Input::Switchover { hold });
    assert_eq!(sent_priorities(&actions), vec![0]);
    let actions = harness.at(ms(5240)).receive(LOWER_PEER, advert(100));
    assert_eq!(
        actions.last(),
        Some(&Action::Transition {
            from: State::Master,
            to: State::Backup,
            reason: Reason::Switchover
        })
    );
    assert!(actions.contains(&Action::RemoveVips));
    // Held back: the lower Master is accepted, not discarded.
    assert_eq!(
        harness.at(ms(6240)).receive(LOWER_PEER, advert(100)),
        vec![]
    );
    assert!(harness.router.held_back(harness.now));
    // Resume: preemption is back (the lower advert is discarded, the timer runs out).
    harness.input(Input::Resume);
    let actions = harness.at(ms(7240)).receive(LOWER_PEER, advert(100));
    assert!(matches!(
        actions.as_slice(),
        [Action::Discard {
            reason: DiscardReason::LowerPriority { .. },
            ..
        }]
    ));
}

/// Switchover with nobody to take over: called off, the Master goes on advertising.
#[test]
fn switchover_without_a_peer_is_called_off() {
    let mut harness = Harness::master(v3(150));
    harness.at(ms(5000)).input(Input::Switchover {
        hold: Duration::from_secs(600),
    });
    let actions = harness.fire();
    assert_eq!(sent_priorities(&actions), vec![150]);
    assert!(actions.contains(&Action::HandoverAborted));
    assert!(!actions.contains(&Action::RemoveVips));
    assert_eq!(harness.router.state(), State::Master);
    assert!(!harness.router.handing_over());
}

/// §6.4.2 Shutdown in Backup: cancel the timer, no advert.
#[test]
fn shutdown_of_a_backup_is_silent() {
    let mut harness = Harness::started(v3(100));
    let actions = harness.at(ms(100)).input(Input::Shutdown);
    assert_eq!(
        actions,
        vec![Action::Transition {
            from: State::Backup,
            to: State::Initialize,
            reason: Reason::Shutdown
        }]
    );
    assert_eq!(harness.deadline(), None);
}

// ===== Fault (keepalived) =====

/// keepalived: a Master leaving for FAULT sends priority 0 and removes its VIPs.
#[test]
fn link_down_on_a_master_resigns_and_faults() {
    let mut harness = Harness::master(v3(100));
    let actions = harness.at(ms(5000)).input(Input::Link { up: false });
    assert_eq!(sent_priorities(&actions), vec![0]);
    assert!(actions.contains(&Action::RemoveVips));
    assert_eq!(harness.router.state(), State::Fault);
    assert_eq!(harness.deadline(), None);
    // Adverts are ignored while in Fault.
    assert_eq!(
        harness.receive(HIGHER_PEER, advert(200)),
        vec![Action::Discard {
            from: HIGHER_PEER,
            reason: DiscardReason::InFault
        }]
    );
    // Back up: the election restarts from Backup with a full Master_Down_Interval.
    let actions = harness.at(ms(6000)).input(Input::Link { up: true });
    assert_eq!(
        actions,
        vec![Action::Transition {
            from: State::Fault,
            to: State::Backup,
            reason: Reason::LinkUp
        }]
    );
    assert_eq!(
        harness.deadline(),
        Some(ms(6000) + master_down(100, Centis::ONE_SECOND))
    );
}

/// Weight 0 check down = FAULT; the instance recovers only when it is up again.
#[test]
fn health_fault_and_recovery() {
    let mut harness = Harness::started(v3(100));
    let actions = harness.input(Input::PriorityChanged(EffectivePriority::Fault));
    assert_eq!(
        actions,
        vec![Action::Transition {
            from: State::Backup,
            to: State::Fault,
            reason: Reason::HealthFault
        }]
    );
    // The link flapping meanwhile does not end the fault.
    harness.input(Input::Link { up: false });
    harness.input(Input::Link { up: true });
    assert_eq!(harness.router.state(), State::Fault);
    harness.input(Input::PriorityChanged(EffectivePriority::Value(120)));
    assert_eq!(harness.router.state(), State::Backup);
    assert_eq!(harness.router.effective_priority(), 120);
}

/// The owner recovering from Fault goes straight back to Master (§6.4.1 applies again).
#[test]
fn owner_leaves_fault_as_master() {
    let mut harness = Harness::started(v3(255));
    harness.input(Input::Link { up: false });
    assert_eq!(harness.router.state(), State::Fault);
    let actions = harness.input(Input::Link { up: true });
    assert_eq!(sent_priorities(&actions), vec![255]);
    assert_eq!(harness.router.state(), State::Master);
}

/// Started with the interface down: Fault at once, no election.
#[test]
fn startup_with_link_down_enters_fault() {
    let mut harness = Harness::new(v3(100));
    harness.input(Input::Link { up: false });
    let actions = harness.input(Input::Startup);
    assert_eq!(
        actions,
        vec![Action::Transition {
            from: State::Initialize,
            to: State::Fault,
            reason: Reason::LinkDown
        }]
    );
    assert_eq!(harness.deadline(), None);
}

// ===== RFC 5798 §7.1 / RFC 3768 §7.1 receive checks =====

#[test]
fn adverts_before_startup_are_discarded() {
    let mut harness = Harness::new(v3(100));
    assert_eq!(
        harness.receive(HIGHER_PEER, advert(200)),
        vec![Action::Discard {
            from: HIGHER_PEER,
            reason: DiscardReason::NotRunning
        }]
    );
}

#[test]
fn policy_mismatches_are_discarded_with_their_reason() {
    let mut harness = Harness::started(v3(100));
    let deadline = harness.deadline();
    let mut other_vrid = advert(200);
    other_vrid.vrid = 52;
    let mut v2 = advert(200);
    v2.version = Version::V2;
    let v6_peer = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1));
    let cases = [
        (SELF, advert(200), DiscardReason::OwnAdvert),
        (
            HIGHER_PEER,
            other_vrid,
            DiscardReason::VridMismatch { theirs: 52 },
        ),
        (HIGHER_PEER, v2, DiscardReason::VersionMismatch),
        (v6_peer, advert(200), DiscardReason::FamilyMismatch),
    ];
    for (src, adv, reason) in cases {
        assert_eq!(
            harness.at(ms(100)).receive(src, adv),
            vec![Action::Discard { from: src, reason }]
        );
    }
    assert_eq!(
        harness.deadline(),
        deadline,
        "no discarded advert resets the timer"
    );
}

fn v2_config() -> RouterConfig {
    let mut config = config(Version::V2, 100);
    config.auth = Auth::SimplePassword(*b"secret12");
    config
}

fn v2_advert(priority: u8, password: &[u8; 8], interval: Centis) -> Advertisement {
    Advertisement {
        version: Version::V2,
        vrid: 51,
        priority,
        max_adver_int: interval,
        addresses: vec![VIP],
        auth: Auth::SimplePassword(*password),
    }
}

/// RFC 3768 §7.1: the auth type and password must match ours.
#[test]
fn v2_auth_must_match() {
    let mut harness = Harness::started(v2_config());
    assert_eq!(
        harness.receive(HIGHER_PEER, v2_advert(200, b"wrong!!!", Centis::ONE_SECOND)),
        vec![Action::Discard {
            from: HIGHER_PEER,
            reason: DiscardReason::AuthMismatch
        }]
    );
    assert_eq!(
        harness
            .at(ms(10))
            .receive(HIGHER_PEER, v2_advert(200, b"secret12", Centis::ONE_SECOND)),
        vec![]
    );
    assert_eq!(harness.router.master_address(), Some(HIGHER_PEER));
}

/// RFC 3768 §7.1 (and keepalived): a v2 advert with another interval is dropped; v2 never
/// learns the Master's interval.
#[test]
fn v2_interval_mismatch_is_dropped() {
    let mut harness = Harness::started(v2_config());
    let deadline = harness.deadline();
    assert_eq!(
        harness.receive(HIGHER_PEER, v2_advert(200, b"secret12", Centis::new(200))),
        vec![Action::Discard {
            from: HIGHER_PEER,
            reason: DiscardReason::IntervalMismatch {
                ours: Centis::ONE_SECOND,
                theirs: Centis::new(200)
            }
        }]
    );
    assert_eq!(harness.deadline(), deadline);
}

/// RFC 3768 §6.1: the v2 skew does not scale with the interval.
#[test]
fn v2_master_down_interval_uses_the_v2_skew() {
    let harness = Harness::started(v2_config());
    assert_eq!(harness.deadline(), Some(Duration::from_micros(3_609_375)));
}

/// keepalived >= 2.3.3: a VIP list that differs is logged and accepted.
#[test]
fn address_list_mismatch_is_accepted_with_a_warning() {
    let mut harness = Harness::started(v3(100));
    let mut other_vips = advert(200);
    other_vips.addresses = vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 99))];
    let actions = harness.at(ms(100)).receive(HIGHER_PEER, other_vips);
    assert_eq!(
        actions,
        vec![Action::Warn {
            from: HIGHER_PEER,
            warning: AdvertWarning::AddressListMismatch
        }]
    );
    assert_eq!(harness.router.master_address(), Some(HIGHER_PEER));
}

// ===== Sync groups (keepalived's vrrp_sync_group, reference section 1.5) =====

use vipkeeper::vrrp::GroupCommand;

fn member(priority: u8) -> RouterConfig {
    RouterConfig {
        sync_member: true,
        ..v3(priority)
    }
}

/// A member whose Master_Down_Timer fires does not take over alone: it asks the group.
#[test]
fn a_sync_member_waits_for_its_group_before_becoming_master() {
    let mut harness = Harness::started(member(100));
    let actions = harness.fire();
    assert_eq!(actions, vec![Action::WantMaster]);
    assert_eq!(harness.router.state(), State::Backup);
    assert!(harness.router.wants_master());
    assert_eq!(
        harness.deadline(),
        None,
        "no timer while waiting for the group"
    );
    // The group agrees: Master, with the reason of its own timer.
    let actions = harness
        .at(ms(4000))
        .input(Input::Group(GroupCommand::Master));
    assert_eq!(
        actions.last(),
        Some(&Action::Transition {
            from: State::Backup,
            to: State::Master,
            reason: Reason::MasterDown
        })
    );
}

/// A Master heard while waiting is accepted as usual, and the wish is dropped.
#[test]
fn a_waiting_member_accepts_a_master_and_forgets_its_wish() {
    let mut harness = Harness::started(member(100));
    harness.fire();
    harness.at(ms(4000)).receive(HIGHER_PEER, advert(200));
    assert!(!harness.router.wants_master());
    assert_eq!(
        harness
            .at(ms(4001))
            .input(Input::Group(GroupCommand::Master)),
        vec![]
    );
    assert_eq!(harness.router.state(), State::Backup);
}

#[test]
fn the_group_takes_a_master_member_down_to_backup_and_to_fault() {
    let mut harness = Harness::started(member(100));
    harness.fire();
    harness.input(Input::Group(GroupCommand::Master));
    let actions = harness
        .at(ms(5000))
        .input(Input::Group(GroupCommand::Backup));
    assert_eq!(
        actions,
        vec![
            Action::RemoveVips,
            Action::Transition {
                from: State::Master,
                to: State::Backup,
                reason: Reason::SyncGroup
            }
        ]
    );
    // Fault from the group: priority 0 if Master (here Backup: none), and Recover restarts.
    harness
        .at(ms(6000))
        .input(Input::Group(GroupCommand::Fault));
    assert_eq!(harness.router.state(), State::Fault);
    assert!(!harness.router.fault_is_own());
    harness
        .at(ms(7000))
        .input(Input::Group(GroupCommand::Recover));
    assert_eq!(harness.router.state(), State::Backup);
}

/// Recover does not end a fault of the member's own.
#[test]
fn recover_keeps_a_member_faulty_on_its_own_account() {
    let mut harness = Harness::started(member(100));
    harness.input(Input::Link { up: false });
    harness.input(Input::Group(GroupCommand::Fault));
    harness.input(Input::Group(GroupCommand::Recover));
    assert_eq!(harness.router.state(), State::Fault);
    assert!(harness.router.fault_is_own());
}
